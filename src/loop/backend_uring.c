/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend, readiness stage: the same level-triggered contract
 * as epoll, with the kernel conversation moved onto a ring.
 *
 * Each watched fd has at most one one-shot poll request in flight, armed
 * for the interest it had when armed. A one-shot poll checks readiness
 * when it is armed, so re-arming after each event gives level-triggered
 * behaviour (a stream that stops reading with bytes left in the kernel is
 * told again once it asks again). Interest changes and re-arms are only
 * queued as submissions; one io_uring_enter per iteration submits them all
 * and waits, where epoll makes an epoll_ctl per change plus the wait.
 *
 * A request is named by its user_data, the fd and a sequence number bumped
 * on every arm, so the completion of a poll that was removed (or that
 * belonged to an earlier file with the same fd number) is recognised as
 * stale and dropped. Removing a poll is submitted, and run, at once: the
 * request holds a reference to the file, and the caller is about to close
 * the fd and expects the close to take effect (a FIN, not a socket kept
 * alive until the next iteration).
 *
 * Stream sockets with a read waiting (EDDY__RECV) receive on the ring
 * instead of polling for input: uring_recv.c. While that receive is armed
 * it also reports the socket's errors and end, so the fd needs a poll only
 * for WRITE.
 *
 * Streams' sends go on the ring too (uring_send.c): their completions are
 * tagged with bit 63 and reported after the others, like the receives.
 */
#ifdef EDDY_HAVE_LIBURING
#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop/uring.h"

#define RING_ENTRIES 256

static unsigned poll_mask(unsigned mask)
{
  return ((mask & EDDY_READ) ? POLLIN : 0) | ((mask & EDDY_WRITE) ? POLLOUT : 0);
}

/* A submission slot, submitting what is queued if the ring is full. */
struct io_uring_sqe *eddy__uring_sqe(struct eddy__uring *u)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (sqe == NULL && io_uring_submit(&u->ring) >= 0)
    sqe = io_uring_get_sqe(&u->ring);
  return sqe;
}

/* Kernels without one-shot poll on the ring (before 5.1) or with io_uring
 * refused (seccomp, kernel.io_uring_disabled) make init fail, and the loop
 * falls back to epoll. */
static int ur_open(struct eddy__uring *u)
{
  /* Deferred task running: a finished poll waits for our next
   * io_uring_enter instead of notifying the thread, which would interrupt
   * whatever blocking system call the application is in (a connect()
   * failing with EINTR). It needs a single issuer, the thread that makes
   * the loop, which is the loop's rule anyway. Older kernels (before 6.1)
   * refuse it: cooperative running (5.19), else a plain ring. */
  static const unsigned flags[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    0,
  };
  int rc = -EINVAL;
  for (size_t i = 0; i < sizeof flags / sizeof *flags && rc == -EINVAL; i++)
    rc = io_uring_queue_init(RING_ENTRIES, &u->ring, flags[i]);
  if (rc < 0)
    return rc;
  struct io_uring_probe *p = io_uring_get_probe_ring(&u->ring);
  int ok = p != NULL && io_uring_opcode_supported(p, IORING_OP_POLL_ADD) &&
           io_uring_opcode_supported(p, IORING_OP_POLL_REMOVE);
  if (p != NULL)
    io_uring_free_probe(p);
  if (!ok || !(u->ring.features & IORING_FEAT_EXT_ARG)) {
    io_uring_queue_exit(&u->ring);
    return -ENOSYS;
  }
  return 0;
}

static int ur_init(eddy_loop_t *loop)
{
  struct eddy__uring *u = calloc(1, sizeof *u);
  if (u == NULL)
    return -ENOMEM;
  int rc = ur_open(u);
  if (rc < 0) {
    free(u);
    return rc;
  }
  loop->uring = u;
  return 0;
}

static void ur_fini(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  if (u == NULL)
    return;
  eddy__usend_fini(loop); /* before the cancel-all below would eat them */
  /* Receives and accepts still armed (an fd closed without its handler
   * removed) are cancelled, and run to their end, while the ring can
   * still tell us: then no request writes into the buffers once they are
   * unmapped, and no accepted fd is left behind. */
  if (u->rx != NULL || u->nacc > 0) {
    struct io_uring_sqe *sqe = eddy__uring_sqe(u);
    if (sqe != NULL) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
      io_uring_sqe_set_data64(sqe, EDDY__URING_IGNORE);
      io_uring_submit_and_get_events(&u->ring);
    }
    /* Accepted fds in completions not yet seen are ours to close. */
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
      seen++;
      uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data != EDDY__URING_IGNORE && !(data & EDDY__URING_OP_BIT) &&
          ((uint32_t)data & EDDY__URING_ACCEPT_BIT))
        eddy__uaccept_complete(loop, cqe);
    }
    io_uring_cq_advance(&u->ring, seen);
  }
  io_uring_queue_exit(&u->ring);
  eddy__urecv_fini(loop);
  eddy__uaccept_fini(loop);
  free(u->fds);
  free(u->arm);
  free(u);
  loop->uring = NULL;
}

static int ur_reinit(eddy_loop_t *loop)
{
  /* A child must not share its parent's ring (its requests would be the
   * parent's): a ring of its own, with nothing armed and every buffer
   * free (its buffer ring is registered again on the first receive); the
   * caller re-adds every fd. */
  struct eddy__uring *u = loop->uring;
  io_uring_queue_exit(&u->ring);
  if (u->nfds > 0)
    memset(u->fds, 0, (size_t)u->nfds * sizeof *u->fds);
  for (int fd = 0; fd < u->nfds; fd++)
    u->fds[fd].rhead = EDDY__URING_NOBUF;
  u->narm = 0;
  eddy__urecv_reset(loop);
  eddy__uaccept_fini(loop);
  eddy__usend_orphan(loop);
  return ur_open(u);
}

static int fd_room(struct eddy__uring *u, int fd)
{
  if (fd < u->nfds)
    return 0;
  /* By a quarter, as the loop's own fd table: every connection pays for
   * the headroom. */
  int n = u->nfds ? u->nfds : 64;
  while (n <= fd) {
    if (n > INT_MAX / 2)
      return -ENOMEM;
    n += n / 4;
  }
  struct uring_fd *p = realloc(u->fds, (size_t)n * sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  memset(p + u->nfds, 0, (size_t)(n - u->nfds) * sizeof *p);
  for (int i = u->nfds; i < n; i++)
    p[i].rhead = EDDY__URING_NOBUF;
  u->fds = p;
  u->nfds = n;
  return 0;
}

int eddy__uring_push_fd(int **v, int *n, int *cap, int fd)
{
  if (*n == *cap) {
    int c = *cap ? 2 * *cap : 64;
    int *p = realloc(*v, (size_t)c * sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    *v = p;
    *cap = c;
  }
  (*v)[(*n)++] = fd;
  return 0;
}

int eddy__uring_queue_arm(struct eddy__uring *u, int fd)
{
  if (u->fds[fd].to_arm)
    return 0;
  int rc = eddy__uring_push_fd(&u->arm, &u->narm, &u->caparm, fd);
  if (rc == 0)
    u->fds[fd].to_arm = 1;
  return rc;
}

/* Withdraws the poll in flight on @fd, if any; its completion turns stale. */
static int disarm(struct eddy__uring *u, int fd)
{
  struct uring_fd *f = &u->fds[fd];
  if (!f->in_flight)
    return 0;
  struct io_uring_sqe *sqe = eddy__uring_sqe(u);
  if (sqe == NULL)
    return -EBUSY;
  io_uring_prep_poll_remove(sqe, eddy__uring_tag(fd, f->seq, EDDY__OP_POLL));
  io_uring_sqe_set_data64(sqe, EDDY__URING_IGNORE);
  f->in_flight = 0;
  f->seq++;
  return 0;
}

int eddy__uring_cancel(struct eddy__uring *u, int fd)
{
  struct uring_fd *f = &u->fds[fd];
  struct io_uring_sqe *sqe = eddy__uring_sqe(u);
  if (sqe == NULL)
    return -EBUSY;
  io_uring_prep_cancel64(sqe, eddy__uring_tag(fd, f->rseq, f->racc ? EDDY__OP_ACCEPT : EDDY__OP_RECV), 0);
  io_uring_sqe_set_data64(sqe, EDDY__URING_IGNORE);
  f->rstate = EDDY__RECV_CANCELLING;
  return 0;
}

static int ur_ctl(eddy_loop_t *loop, int fd, enum eddy__ctl_op op, unsigned mask)
{
  struct eddy__uring *u = loop->uring;
  int rc = fd_room(u, fd);
  if (rc < 0)
    return rc;
  struct uring_fd *f = &u->fds[fd];
  if (op == EDDY__CTL_DEL || op == EDDY__CTL_ADD) {
    /* A new registration keeps nothing of an old one: it may be an
     * earlier file's that had the same fd number. */
    f->want = 0;
    f->watched = 0;
    rc = disarm(u, fd);
    if (f->rstate == EDDY__RECV_ARMED)
      eddy__uring_cancel(u, fd); /* if no slot, the close ends it */
    /* Whatever still completes for it is stale: its buffer goes back. */
    f->rstate = EDDY__RECV_IDLE;
    f->rseq++;
    f->racc = 0;
    eddy__urecv_forget(loop, fd);
  }
  if (op == EDDY__CTL_DEL) {
    /* Submitted and run now, deferred work included: the poll and the
     * receive let go of the file before the caller closes the fd, so the
     * close takes effect at once (a FIN a blocked peer is waiting for). */
    if (rc == 0) {
      int r = io_uring_submit_and_get_events(&u->ring);
      if (r < 0 && r != -EINTR)
        rc = r;
    }
    return rc < 0 ? rc : 0;
  }
  if (rc < 0)
    return rc;
  f->want = (unsigned char)(mask & (EDDY_READ | EDDY_WRITE | EDDY__RECV | EDDY__ACCEPT));
  f->watched = 1;
  return eddy__uring_queue_arm(u, fd);
}

/* Brings @fd's requests in line with what it wants: a receive while it
 * reads (uring_recv.c), and a poll for what the receive does not cover. */
static int sync_fd(eddy_loop_t *loop, int fd)
{
  struct eddy__uring *u = loop->uring;
  struct uring_fd *f = &u->fds[fd];
  if (!f->watched)
    return 0;
  int rc = (f->want & EDDY__ACCEPT) || f->racc ? eddy__uaccept_sync(loop, fd)
                                                 : eddy__urecv_sync(loop, fd);
  if (rc < 0)
    return rc;
  unsigned pm = f->want & (EDDY_READ | EDDY_WRITE);
  if (f->rstate == EDDY__RECV_ARMED)
    pm &= ~EDDY_READ;
  int need = pm != 0 || f->rstate != EDDY__RECV_ARMED;
  if (f->in_flight && (!need || f->armed != pm) && (rc = disarm(u, fd)) < 0)
    return rc;
  if (f->in_flight || !need)
    return 0;
  struct io_uring_sqe *sqe = eddy__uring_sqe(u);
  if (sqe == NULL)
    return -EBUSY;
  f->seq++;
  f->armed = (unsigned char)pm;
  f->in_flight = 1;
  io_uring_prep_poll_add(sqe, fd, poll_mask(pm));
  io_uring_sqe_set_data64(sqe, eddy__uring_tag(fd, f->seq, EDDY__OP_POLL));
  return 0;
}

static int arm_pending(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  for (int i = 0; i < u->narm; i++) {
    int fd = u->arm[i];
    u->fds[fd].to_arm = 0;
    if (sync_fd(loop, fd) < 0) {
      /* Keep the rest for the next iteration rather than lose them. */
      memmove(u->arm, u->arm + i, (size_t)(u->narm - i) * sizeof *u->arm);
      u->narm -= i;
      for (int j = 0; j < u->narm; j++)
        u->fds[u->arm[j]].to_arm = 1;
      return -EBUSY;
    }
  }
  u->narm = 0;
  return 0;
}

static void reap(eddy_loop_t *loop, struct eddy__uring *u)
{
  struct io_uring_cqe *cqe;
  unsigned head, seen = 0;

  io_uring_for_each_cqe(&u->ring, head, cqe) {
    seen++;
    uint64_t data = io_uring_cqe_get_data64(cqe);
    if (data == EDDY__URING_IGNORE)
      continue;
    if (data & EDDY__URING_OP_BIT) {
      eddy__usend_complete(loop, cqe);
      continue;
    }
    if ((uint32_t)data & EDDY__URING_ACCEPT_BIT) {
      eddy__uaccept_complete(loop, cqe);
      continue;
    }
    if ((uint32_t)data & EDDY__URING_RECV_BIT) {
      eddy__urecv_complete(loop, cqe);
      continue;
    }
    int fd = (int)((uint32_t)data & EDDY__URING_FD_MASK);
    if (fd < 0 || fd >= u->nfds)
      continue;
    struct uring_fd *f = &u->fds[fd];
    if (!f->in_flight || f->seq != eddy__uring_seq_of(data))
      continue; /* removed, or an earlier file's */
    f->in_flight = 0;
    if (f->watched)
      eddy__uring_queue_arm(u, fd); /* level-triggered: ask again next time */
    unsigned e = 0;
    if (cqe->res < 0) {
      e = EDDY_ERROR; /* let the handler's own syscall say what */
    } else {
      if (cqe->res & POLLIN)
        e |= EDDY_READ;
      if (cqe->res & POLLOUT)
        e |= EDDY_WRITE;
      if (cqe->res & (POLLERR | POLLHUP | POLLNVAL))
        e |= EDDY_ERROR;
    }
    if (e)
      eddy__io_fire(loop, fd, e);
  }
  io_uring_cq_advance(&u->ring, seen);
}

static int ur_wait(eddy_loop_t *loop, int timeout_ms)
{
  struct eddy__uring *u = loop->uring;
  struct io_uring_cqe *cqe = NULL;

  eddy__urecv_refill(loop);
  int rc = arm_pending(loop);
  if (rc < 0 && rc != -EBUSY)
    return rc;
  if (rc == -EBUSY || eddy__urecv_pending(loop) || eddy__uaccept_pending(loop))
    timeout_ms = 0; /* a full ring (reap, then arm the rest), or input to report */
  timeout_ms = eddy__urecv_trim(loop, timeout_ms);
  /* Always through the kernel, even for a zero wait: with cooperative
   * task running, that is where finished polls turn into completions. */
  struct __kernel_timespec ts = {
    .tv_sec = timeout_ms > 0 ? timeout_ms / 1000 : 0,
    .tv_nsec = timeout_ms > 0 ? (long long)(timeout_ms % 1000) * 1000000 : 0,
  };
  rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
    return rc;
  reap(loop, u);
  eddy__uaccept_fire(loop);
  eddy__urecv_fire(loop);
  eddy__usend_fire(loop);
  return 0;
}

const struct eddy__backend eddy__backend_uring = {
  "io_uring", ur_init, ur_fini, ur_reinit, ur_ctl, ur_wait, eddy__urecv_read,
  eddy__uaccept_take, eddy__uaccept_drop,
  EDDY_READ | EDDY_WRITE | EDDY__RECV | EDDY__ACCEPT,
  eddy__usend_submit, eddy__usend_settle, eddy__usend_flush,
};
#endif /* EDDY_HAVE_LIBURING */
