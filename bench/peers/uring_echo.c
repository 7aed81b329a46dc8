/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/uring_echo.c - the completion ceiling: a bare io_uring echo
 * server (liburing).
 *
 * One thread, one ring. The listening socket has a multishot accept; every
 * connection has a multishot receive that picks its buffers from one
 * provided buffer ring (registered with io_uring_register_buf_ring, which
 * Debian 12's liburing 2.3 has; io_uring_setup_buf_ring came later). What
 * a receive brings is sent back as it is, straight from the provided
 * buffer: an echo server returns the same bytes whether or not it looks for
 * the newlines, so unlike epoll_echo it does not scan them (one memrchr per
 * read there, a few nanoseconds). One send is in flight per connection;
 * what arrives meanwhile is queued (by buffer id) and leaves in one
 * sendmsg when that send completes. Buffers go back to the ring once sent.
 *
 * Each pass of the loop is one io_uring_submit_and_wait: new receives,
 * sends and buffer returns go in, completions come out. The ring asks for
 * IORING_SETUP_DEFER_TASKRUN | SINGLE_ISSUER (completion work runs only in
 * that call, no interrupts of the loop), falling back to COOP_TASKRUN and
 * then to no flags on kernels without them.
 *
 * Backpressure: a connection holding more than PAUSE_BUFS buffers (a peer
 * that sends but does not read) has its receive cancelled until the queue
 * drains; a receive that finds the buffer ring empty (-ENOBUFS) is armed
 * again once buffers come back.
 *
 * usage: uring_echo [--address 127.0.0.1] [--port 0]
 */
#include "common.h"

#include <liburing.h>
#include <stdint.h>

#define RING_ENTRIES 1024
#define CQ_ENTRIES 16384
#define BGID 1
#define NBUFS 256 /* a power of two: the buffer ring's size */
#define BUF_SIZE (64 * 1024) /* as epoll_echo's reads */
#define PAUSE_BUFS 8
#define MAX_IOV 8

/* The low two bits of user_data say what completed; the rest is the
 * connection (NULL for the listener and for cancels). */
enum { UD_IGNORE = 0, UD_ACCEPT = 1, UD_RECV = 2, UD_SEND = 3 };

typedef struct conn {
  int fd;
  int16_t head, tail;     /* queued buffer ids, linked through buf_next */
  uint8_t recv_armed;     /* a multishot receive is outstanding */
  uint8_t send_busy;      /* a send is in flight */
  uint8_t want_recv;      /* no receive, but one should be armed */
  uint8_t eof;            /* the peer ended (or an error): close when idle */
  uint8_t cancelling;     /* the receive is being cancelled (backpressure) */
  uint16_t queued;        /* buffers in the queue */
  struct conn *starved;   /* next on the list waiting for buffers */
  struct msghdr msg;      /* the in-flight sendmsg's */
  struct iovec iov[MAX_IOV];
} conn_t;

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static int16_t buf_next[NBUFS];
static uint32_t buf_off[NBUFS], buf_len[NBUFS];
static int returned;        /* buffers added to the ring, not yet published */
static int free_bufs;       /* buffers the kernel may pick */
static conn_t *starved;     /* connections whose receive found no buffer */

static struct io_uring_sqe *sqe_get(void) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  if (!sqe) { /* the submission queue is full: hand it over early */
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

static uint64_t ud(conn_t *c, int tag) { return (uint64_t)(uintptr_t)c | (uint64_t)tag; }

static void buf_return(int bid) {
  io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                        io_uring_buf_ring_mask(NBUFS), returned++);
  free_bufs++;
}

static void arm_accept(int lfd) {
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UD_ACCEPT);
}

static void arm_recv(conn_t *c) {
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BGID;
  io_uring_sqe_set_data64(sqe, ud(c, UD_RECV));
  c->recv_armed = 1;
  c->want_recv = 0;
}

/* Closes and frees @c once nothing of it is in flight. */
static void conn_maybe_free(conn_t *c) {
  if (!c->eof || c->recv_armed || c->send_busy || c->want_recv == 2)
    return;
  while (c->head >= 0) { /* an error left bytes unsent */
    int bid = c->head;
    c->head = buf_next[bid];
    buf_return(bid);
  }
  close(c->fd);
  free(c);
}

/* Sends everything queued (up to MAX_IOV buffers) in one operation. */
static void send_queued(conn_t *c) {
  if (c->send_busy || c->head < 0)
    return;
  int n = 0;
  for (int bid = c->head; bid >= 0 && n < MAX_IOV; bid = buf_next[bid], n++) {
    c->iov[n].iov_base = bufs + (size_t)bid * BUF_SIZE + buf_off[bid];
    c->iov[n].iov_len = buf_len[bid] - buf_off[bid];
  }
  struct io_uring_sqe *sqe = sqe_get();
  if (n == 1) {
    io_uring_prep_send(sqe, c->fd, c->iov[0].iov_base, c->iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    memset(&c->msg, 0, sizeof c->msg);
    c->msg.msg_iov = c->iov;
    c->msg.msg_iovlen = (size_t)n;
    io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, ud(c, UD_SEND));
  c->send_busy = 1;
}

static void cancel_recv(conn_t *c) {
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_cancel64(sqe, ud(c, UD_RECV), 0);
  io_uring_sqe_set_data64(sqe, UD_IGNORE);
  c->cancelling = 1;
}

static void on_accept(int lfd, struct io_uring_cqe *cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE))
    arm_accept(lfd); /* the multishot ended (e.g. an error): start another */
  if (cqe->res < 0)
    return;
  int fd = cqe->res, one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conn_t *c = calloc(1, sizeof *c);
  if (!c) { close(fd); return; }
  c->fd = fd;
  c->head = c->tail = -1;
  arm_recv(c);
}

static void on_recv(conn_t *c, struct io_uring_cqe *cqe) {
  int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (cqe->res > 0) {
    int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    free_bufs--;
    buf_off[bid] = 0;
    buf_len[bid] = (uint32_t)cqe->res;
    buf_next[bid] = -1;
    if (c->tail >= 0) buf_next[c->tail] = (int16_t)bid;
    else c->head = (int16_t)bid;
    c->tail = (int16_t)bid;
    c->queued++;
    send_queued(c);
    if (more && c->queued > PAUSE_BUFS && !c->cancelling)
      cancel_recv(c);
  } else if (cqe->res == 0) {
    c->eof = 1; /* the peer ended: send what is queued, then close */
  } else if (cqe->res == -ENOBUFS) {
    if (!c->eof && c->want_recv != 2) { /* wait on the list for buffers */
      c->want_recv = 2;
      c->starved = starved;
      starved = c;
    }
  } else if (cqe->res == -ECANCELED) {
    if (!c->eof) c->want_recv = 1; /* armed again once the queue drains */
  } else {
    c->eof = 1; /* a reset or other error */
  }
  if (!more) {
    c->recv_armed = 0;
    if (!c->eof && !c->want_recv)
      c->want_recv = 1; /* the multishot ended early (e.g. overflow): again */
    c->cancelling = 0;
    if (c->want_recv == 1 && c->queued <= PAUSE_BUFS / 2)
      arm_recv(c);
    conn_maybe_free(c);
  }
}

static void on_send(conn_t *c, struct io_uring_cqe *cqe) {
  c->send_busy = 0;
  if (cqe->res < 0) {
    c->eof = 1;
    if (c->recv_armed && !c->cancelling) cancel_recv(c);
    c->want_recv = c->want_recv == 2 ? 2 : 0;
    conn_maybe_free(c);
    return;
  }
  size_t done = (size_t)cqe->res;
  while (c->head >= 0) { /* release what went; a short send leaves the rest */
    int bid = c->head;
    size_t left = buf_len[bid] - buf_off[bid];
    if (done < left) { buf_off[bid] += (uint32_t)done; break; }
    done -= left;
    c->head = buf_next[bid];
    if (c->head < 0) c->tail = -1;
    c->queued--;
    buf_return(bid);
  }
  send_queued(c);
  if (c->want_recv == 1 && !c->recv_armed && !c->eof && c->queued <= PAUSE_BUFS / 2)
    arm_recv(c);
  conn_maybe_free(c);
}

/* Connections whose receive found the ring empty try again while there are
 * buffers for them. */
static void feed_starved(void) {
  while (starved && free_bufs > 0) {
    conn_t *c = starved;
    starved = c->starved;
    c->want_recv = 0;
    if (c->eof) conn_maybe_free(c);
    else arm_recv(c);
  }
}

static int ring_init(void) {
  const unsigned tries[] = {IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER,
                            IORING_SETUP_COOP_TASKRUN, 0};
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = tries[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    if (io_uring_queue_init_params(RING_ENTRIES, &ring, &p) == 0)
      return 0;
  }
  return -1;
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  int lfd = peer_listen();
  if (ring_init() < 0) { fprintf(stderr, "io_uring_queue_init failed\n"); return 1; }
  size_t br_size = NBUFS * sizeof(struct io_uring_buf);
  void *mem = NULL;
  if (posix_memalign(&mem, 4096, br_size) || posix_memalign((void **)&bufs, 4096,
                                                           (size_t)NBUFS * BUF_SIZE)) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  memset(mem, 0, br_size);
  br = mem;
  io_uring_buf_ring_init(br);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (unsigned long)(uintptr_t)br;
  reg.ring_entries = NBUFS;
  reg.bgid = BGID;
  int rc = io_uring_register_buf_ring(&ring, &reg, 0);
  if (rc < 0) {
    fprintf(stderr, "io_uring_register_buf_ring: %s\n", strerror(-rc));
    return 1;
  }
  for (int i = 0; i < NBUFS; i++)
    buf_return(i);
  arm_accept(lfd);
  peer_announce(lfd);
  for (;;) {
    if (returned) {
      io_uring_buf_ring_advance(br, returned);
      returned = 0;
    }
    feed_starved();
    rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-rc));
      return 1;
    }
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      uint64_t u = cqe->user_data;
      conn_t *c = (conn_t *)(uintptr_t)(u & ~(uint64_t)3);
      switch ((int)(u & 3)) {
      case UD_ACCEPT: on_accept(lfd, cqe); break;
      case UD_RECV: on_recv(c, cqe); break;
      case UD_SEND: on_send(c, cqe); break;
      default: break;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
}
