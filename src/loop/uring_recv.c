/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's receives: bytes that arrive on a stream socket
 * complete on the ring, into buffers the loop provides, instead of being
 * announced by a poll and fetched with a recv() of its own.
 *
 * Bounded memory. One buffer ring per loop, NBUFS buffers of BUF_SIZE,
 * mapped on the first receive: the kernel picks a buffer only when bytes
 * come, so an idle connection holds none, and however slowly the
 * application reads, the loop never holds more than the ring. The kernel
 * takes buffers in ring order and they come back at its tail, so every
 * buffer in the ring gets used in turn and its first page stays resident:
 * the ring starts with FIRST_BUFS of them and grows by as many whenever
 * fewer than a quarter are left in it, so its resident pages follow the
 * most buffers ever held at once. A burst (10,000 clients connecting
 * together) still leaves every page it touched resident, so once the ring
 * has been quiet -- the loop about to sleep with no buffer held and none
 * filled for QUIET_NS -- the pages of all the buffers go back to the
 * system (MADV_DONTNEED): an idle server keeps none of them, and a busy
 * one never trims (no page is faulted back in under load). That is
 * safe only on a ring with deferred task running, where the kernel fills
 * buffers inside our io_uring_enter and never while we are elsewhere; on
 * older rings the pages stay. A socket
 * that piles up more than PAUSE_BUFS unread buffers has its receive
 * withdrawn until its reader catches up (the rest waits in the kernel, and
 * TCP pushes back, as on epoll). When the ring runs dry (ENOBUFS) the
 * socket falls back to readiness and plain recv() until buffers come
 * back, so a few stalled readers holding buffers cannot stall the others.
 *
 * Bulk. A receive into the ring costs a copy more than recv() into the
 * stream's buffer: the kernel fills a ring buffer, the reader copies it
 * out. For small messages the system calls saved pay for it many times;
 * a socket that fills whole buffers moves bytes, where the copy costs
 * more than the calls (16 KiB lines: a fifth of the CPU per message). Such
 * a socket goes back to readiness and recv() of a whole read chunk, until
 * a recv() comes back small (BULK_OFF) and the ring pays again.
 *
 * The stream contract. A multishot receive is armed only while the stream
 * has a read waiting (the EDDY__RECV interest): an idle stream watches with
 * a poll and its peek leaves bytes in the kernel. What completes goes on
 * the fd's list, in order, and READ is reported level-triggered, each pass
 * while bytes are listed and the fd wants READ, as epoll would for bytes
 * in the kernel. eddy__loop_recv() takes bytes from the list and gives each
 * buffer back to the ring once emptied, so a read cancelled while its
 * receive was still completing consumes nothing: what came stays listed
 * for the next read. The receive's end (res 0: EOF, or -errno) is kept
 * and reported after the data. recv() goes to the kernel only while no
 * receive is in flight: otherwise a completion not yet reaped could hold
 * earlier bytes.
 *
 * Ownership. The buffers are the loop's, never a stream's: a socket that
 * closes with its receive in flight has the receive cancelled and its list
 * dropped; a completion still to come for it is recognised by its sequence
 * number and its buffer goes straight back to the ring. The mapping is
 * unmapped only after the ring is gone. A forked child gets a ring of its
 * own (backend_uring.c) and starts with every buffer free.
 */
#ifdef EDDY_HAVE_LIBURING
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/uring.h"

#define NBUFS 128u              /* a power of two, below NOBUF: the ring's size */
#define BUF_SIZE (16u * 1024u) /* 2 MiB in all, touched only as used */
#define QUIET_NS 250000000LL     /* no buffer filled for this long: trim */
#define FIRST_BUFS 16u           /* in the ring at first; it grows by as many */
#define PAUSE_BUFS 8u
#define BULK_OFF (BUF_SIZE / 4)
#define BGID 0

_Static_assert(NBUFS % FIRST_BUFS == 0, "the ring grows by FIRST_BUFS up to NBUFS");
_Static_assert(NBUFS < EDDY__URING_NOBUF && BUF_SIZE <= UINT16_MAX + 1u,
               "buffer ids and offsets must fit struct uring_fd");
_Static_assert(sizeof(struct uring_fd) <= 8, "every connection pays for struct uring_fd");

struct eddy__urecv {
  struct io_uring_buf_ring *br; /* NBUFS entries, then the buffers */
  char *bufs;
  size_t maplen;
  unsigned live;     /* buffers 0..live-1 belong to the ring's cycle */
  unsigned held;     /* of those, out of the ring: received, not yet read */
  int registered;    /* with the current ring */
  int off;           /* the kernel has no multishot receive: readiness only */
  int touched;       /* a buffer was filled since the last trim */
  int64_t filled_at; /* loop time a buffer was last filled */
  unsigned char next[NBUFS]; /* each fd's list, linked through its buffers */
  uint32_t len[NBUFS];  /* bytes the kernel put in each */
  uint16_t start[NBUFS]; /* of those, already read (only a list's head has any) */
  int *ready;           /* fds with bytes listed or an end to report */
  int nready, capready;
  int *starved;         /* fds whose receive found the ring empty */
  int nstarved, capstarved;
};

/* Hands FIRST_BUFS more buffers to the ring, if it has room for them. */
static void grow(struct eddy__urecv *rx)
{
  if (rx->live >= NBUFS)
    return;
  for (unsigned i = 0; i < FIRST_BUFS; i++) {
    unsigned bid = rx->live + i;
    io_uring_buf_ring_add(rx->br, rx->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(NBUFS), (int)i);
  }
  io_uring_buf_ring_advance(rx->br, FIRST_BUFS);
  rx->live += FIRST_BUFS;
}

static struct eddy__urecv *rx_get(struct eddy__uring *u)
{
  struct eddy__urecv *rx = u->rx;
  if (rx == NULL) {
    rx = calloc(1, sizeof *rx);
    if (rx == NULL)
      return NULL;
    /* The buffers start on a page of their own, for the trim's madvise. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t ringlen = (NBUFS * sizeof(struct io_uring_buf) + page - 1) / page * page;
    rx->maplen = ringlen + (size_t)NBUFS * BUF_SIZE;
    void *p = mmap(NULL, rx->maplen, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      free(rx);
      return NULL;
    }
    rx->br = p;
    rx->bufs = (char *)p + ringlen;
    /* Room made now for as many fds as could hold buffers: a list that
     * cannot grow later would leave received bytes unannounced. */
    rx->capready = rx->capstarved = 2 * NBUFS;
    rx->ready = malloc((size_t)rx->capready * sizeof *rx->ready);
    rx->starved = malloc((size_t)rx->capstarved * sizeof *rx->starved);
    if (rx->ready == NULL || rx->starved == NULL) {
      free(rx->ready);
      free(rx->starved);
      munmap(p, rx->maplen);
      free(rx);
      return NULL;
    }
    u->rx = rx;
  }
  if (!rx->registered && !rx->off) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)rx->br;
    reg.ring_entries = NBUFS;
    reg.bgid = BGID;
    if (io_uring_register_buf_ring(&u->ring, &reg, 0) < 0) {
      rx->off = 1; /* before 5.19: readiness, as before */
      return rx;
    }
    io_uring_buf_ring_init(rx->br);
    rx->live = 0;
    rx->held = 0;
    grow(rx);
    rx->registered = 1;
  }
  return rx;
}

static void give_back(struct eddy__urecv *rx, unsigned bid)
{
  io_uring_buf_ring_add(rx->br, rx->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
                        (unsigned short)bid, io_uring_buf_ring_mask(NBUFS), 0);
  io_uring_buf_ring_advance(rx->br, 1);
  rx->held--;
}

static unsigned list_count(const struct eddy__urecv *rx, const struct uring_fd *f)
{
  unsigned n = 0;
  for (unsigned b = f->rhead; b != EDDY__URING_NOBUF; b = rx->next[b])
    n++;
  return n;
}

static void list_fd(struct eddy__urecv *rx, struct uring_fd *f, int fd)
{
  if (!f->listed && eddy__uring_push_fd(&rx->ready, &rx->nready, &rx->capready, fd) == 0)
    f->listed = 1;
}

static void drop_list(struct eddy__urecv *rx, struct uring_fd *f)
{
  unsigned b = f->rhead;
  while (b != EDDY__URING_NOBUF) {
    unsigned nb = rx->next[b];
    give_back(rx, b);
    b = nb;
  }
  f->rhead = EDDY__URING_NOBUF;
}

int eddy__urecv_wanted(const struct eddy__uring *u, const struct uring_fd *f)
{
  const struct eddy__urecv *rx = u->rx;
  if (!f->watched || (f->want & (EDDY_READ | EDDY__RECV)) != (EDDY_READ | EDDY__RECV) ||
      f->rend || f->starved || f->bulk)
    return 0;
  if (rx == NULL)
    return 1;
  return !rx->off && list_count(rx, f) <= PAUSE_BUFS / 2;
}

int eddy__urecv_sync(eddy_loop_t *loop, int fd)
{
  struct eddy__uring *u = loop->uring;
  struct uring_fd *f = &u->fds[fd];
  int wanted = eddy__urecv_wanted(u, f);

  if (f->rstate == EDDY__RECV_ARMED && !wanted)
    return eddy__uring_cancel(u, fd);
  if (f->rstate != EDDY__RECV_IDLE || !wanted)
    return 0;
  struct eddy__urecv *rx = rx_get(u);
  if (rx == NULL || rx->off)
    return 0; /* the poll covers it */
  struct io_uring_sqe *sqe = eddy__uring_sqe(u);
  if (sqe == NULL)
    return -EBUSY;
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BGID;
  f->rseq++;
  io_uring_sqe_set_data64(sqe, eddy__uring_tag(fd, f->rseq, EDDY__OP_RECV));
  f->rstate = EDDY__RECV_ARMED;
  return 0;
}

void eddy__urecv_forget(eddy_loop_t *loop, int fd)
{
  struct eddy__uring *u = loop->uring;
  struct uring_fd *f = &u->fds[fd];

  if (u->rx != NULL)
    drop_list(u->rx, f);
  f->rend = 0;
  f->starved = 0;
  f->bulk = 0;
}

void eddy__urecv_complete(eddy_loop_t *loop, const struct io_uring_cqe *cqe)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  uint64_t data = io_uring_cqe_get_data64(cqe);
  int fd = (int)((uint32_t)data & EDDY__URING_FD_MASK);
  int has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
  unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

  if (rx == NULL)
    return;
  if (has_buf) {
    rx->touched = 1;
    rx->filled_at = loop->now;
    if (++rx->held > rx->live - rx->live / 4)
      grow(rx); /* out of the ring until given back; keep a quarter in it */
  }
  struct uring_fd *f = fd < u->nfds ? &u->fds[fd] : NULL;
  if (f == NULL || f->rstate == EDDY__RECV_IDLE || f->racc ||
      f->rseq != eddy__uring_seq_of(data)) {
    if (has_buf)
      give_back(rx, bid); /* an earlier file's, or closed since */
    return;
  }
  int final = !(cqe->flags & IORING_CQE_F_MORE);
  if (final)
    f->rstate = EDDY__RECV_IDLE;
  if (cqe->res > 0 && has_buf) {
    rx->len[bid] = (uint32_t)cqe->res;
    rx->start[bid] = 0;
    rx->next[bid] = EDDY__URING_NOBUF;
    if (f->rhead == EDDY__URING_NOBUF) {
      f->rhead = (unsigned char)bid;
    } else {
      unsigned b = f->rhead;
      while (rx->next[b] != EDDY__URING_NOBUF)
        b = rx->next[b];
      rx->next[b] = (unsigned char)bid;
    }
    list_fd(rx, f, fd);
    if ((uint32_t)cqe->res == BUF_SIZE)
      f->bulk = 1;
    /* A slow reader: the rest waits in the kernel. */
    if (!final && f->rstate == EDDY__RECV_ARMED &&
        (f->bulk || list_count(rx, f) > PAUSE_BUFS))
      eddy__uring_cancel(u, fd);
  } else if (has_buf) {
    give_back(rx, bid);
  } else if (cqe->res == -ENOBUFS) {
    grow(rx);
    if (!f->starved &&
        eddy__uring_push_fd(&rx->starved, &rx->nstarved, &rx->capstarved, fd) == 0)
      f->starved = 1;
  } else if (cqe->res == -EINVAL || cqe->res == -EOPNOTSUPP) {
    rx->off = 1; /* no multishot receive on this kernel: readiness */
  } else if (cqe->res != -ECANCELED && cqe->res <= 0 && f->rend == 0) {
    int e = -cqe->res;
    f->rend = (unsigned char)(e == 0 ? 1 : (e < 255 ? 1 + e : 1 + EIO));
    list_fd(rx, f, fd);
  }
  if (final && f->watched)
    eddy__uring_queue_arm(u, fd); /* again, or a poll in its place */
}

/* Whether @f has something for a reader: bytes, or the receive's end. */
static int has_input(const struct uring_fd *f)
{
  return f->rhead != EDDY__URING_NOBUF || f->rend != 0;
}

void eddy__urecv_fire(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  if (rx == NULL)
    return;
  for (int i = 0; i < rx->nready;) {
    int fd = rx->ready[i];
    struct uring_fd *f = &u->fds[fd];
    if (!has_input(f)) {
      f->listed = 0;
      rx->ready[i] = rx->ready[--rx->nready];
      continue;
    }
    if (f->rend > 1)
      eddy__io_fire(loop, fd, EDDY_ERROR); /* as epoll, whatever the interest */
    else if (f->watched && (f->want & EDDY_READ))
      eddy__io_fire(loop, fd, EDDY_READ);
    i++;
  }
}

int eddy__urecv_pending(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  if (rx == NULL)
    return 0;
  for (int i = 0; i < rx->nready; i++) {
    const struct uring_fd *f = &u->fds[rx->ready[i]];
    if (has_input(f) && (f->rend > 1 || (f->watched && (f->want & EDDY_READ))))
      return 1;
  }
  return 0;
}

void eddy__urecv_refill(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  /* A quarter of the ring back before the starved go again, or they
   * would each find it dry at once. */
  if (rx == NULL || rx->nstarved == 0 || rx->held > rx->live - rx->live / 4)
    return;
  for (int i = 0; i < rx->nstarved; i++) {
    int fd = rx->starved[i];
    if (fd < u->nfds && u->fds[fd].starved) {
      u->fds[fd].starved = 0;
      eddy__uring_queue_arm(u, fd);
    }
  }
  rx->nstarved = 0;
}

int eddy__urecv_trim(eddy_loop_t *loop, int timeout_ms)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  if (timeout_ms == 0 || rx == NULL || !rx->touched || rx->held != 0 ||
      !(u->ring.flags & IORING_SETUP_DEFER_TASKRUN))
    return timeout_ms;
  int64_t due = rx->filled_at + QUIET_NS;
  if (loop->now >= due) {
    /* Every buffer is in the ring, empty: their contents do not matter,
     * and a page the kernel fills next is a fresh zero one. */
    (void)madvise(rx->bufs, (size_t)NBUFS * BUF_SIZE, MADV_DONTNEED);
    rx->touched = 0;
    return timeout_ms;
  }
  int ms = (int)((due - loop->now + 999999) / 1000000); /* wake up to trim */
  return timeout_ms < 0 || ms < timeout_ms ? ms : timeout_ms;
}

ssize_t eddy__urecv_read(eddy_loop_t *loop, int fd, void *buf, size_t len, int flags)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  if (rx == NULL || fd < 0 || fd >= u->nfds)
    return recv(fd, buf, len, flags);
  struct uring_fd *f = &u->fds[fd];
  int peek = (flags & MSG_PEEK) != 0;

  if (f->rhead != EDDY__URING_NOBUF) {
    size_t got = 0;
    unsigned b = f->rhead, off = rx->start[b];
    while (got < len && b != EDDY__URING_NOBUF) {
      size_t n = rx->len[b] - off;
      if (n > len - got)
        n = len - got;
      memcpy((char *)buf + got, rx->bufs + (size_t)b * BUF_SIZE + off, n);
      got += n;
      off += (unsigned)n;
      if (off < rx->len[b])
        break;
      unsigned nb = rx->next[b];
      if (!peek)
        give_back(rx, b);
      b = nb;
      off = 0;
    }
    if (!peek) {
      f->rhead = (unsigned char)b;
      if (b != EDDY__URING_NOBUF)
        rx->start[b] = (uint16_t)off;
      if (f->rstate == EDDY__RECV_IDLE && f->watched && (f->want & EDDY__RECV))
        eddy__uring_queue_arm(u, fd); /* it may have paused for this reader */
    }
    return (ssize_t)got;
  }
  if (f->rend == 1)
    return 0;
  if (f->rend > 1) {
    errno = f->rend - 1;
    if (!peek)
      f->rend = 1; /* as the kernel: the error once, then the end */
    return -1;
  }
  if (f->rstate != EDDY__RECV_IDLE) {
    errno = EAGAIN; /* what comes is the receive's */
    return -1;
  }
  ssize_t r = recv(fd, buf, len, flags);
  if (f->bulk && !peek && r >= 0 && r < (ssize_t)BULK_OFF) {
    f->bulk = 0;
    if (f->watched && (f->want & EDDY__RECV))
      eddy__uring_queue_arm(u, fd);
  }
  return r;
}

void eddy__urecv_reset(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  if (rx == NULL)
    return;
  rx->registered = 0;
  rx->held = 0;
  rx->nready = 0;
  rx->nstarved = 0;
}

void eddy__urecv_fini(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__urecv *rx = u->rx;
  if (rx == NULL)
    return;
  munmap(rx->br, rx->maplen);
  free(rx->ready);
  free(rx->starved);
  free(rx);
  u->rx = NULL;
}
#endif /* EDDY_HAVE_LIBURING */
