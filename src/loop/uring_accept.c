/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's accepts: a listening socket with EDDY__ACCEPT
 * interest has a multishot accept on the ring while it is watched, and the
 * fds it accepts wait in a queue of the listener's until the acceptor takes
 * them through eddy__loop_accept(), which reports READ level-triggered,
 * each pass while the queue holds any, as epoll does for a backlog.
 *
 * The acceptor's rules hold as they are (src/tcp/acceptor.c): it takes
 * connections one at a time, so max_connections pauses it between two;
 * a pause removes the handler, which withdraws the accept, and what was
 * accepted meanwhile stays queued, as connections stay in the backlog,
 * for the resume. Closing the listener drops the queue first
 * (eddy__loop_accept_drop: those clients see a close, as a backlog's do).
 * An error ends the multishot accept (EMFILE, ENFILE, ENOMEM): it is
 * reported after the queued fds, once, and the acceptor handles it as it
 * does from accept4() (shedding the backlog with its spare fd, or backing
 * off); no accept is then in flight, so its own accept4() calls are safe.
 * The listener then goes back to readiness until one of those succeeds.
 * More than AHEAD queued withdraws the accept until the acceptor catches up.
 *
 * A multishot accept cannot return addresses, so each fd handed out costs
 * a getpeername(), as accept4() costs a system call per connection; the
 * gain is the accept4() that finds the backlog empty after each burst.
 * Listeners are few: their queues are a small array, searched by fd.
 */
#ifdef EDDY_HAVE_LIBURING
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/uring.h"

#define AHEAD 64

struct eddy__uaccept {
  int lfd;
  eddy__uring_seq first; /* the sequence number of its first accept */
  int err;    /* what stopped the accept, to report after the queue */
  int polling; /* since an error: readiness and accept4() until one works */
  int *q;     /* accepted fds, oldest first from head */
  int head, n, cap;
};

static struct eddy__uaccept *find(struct eddy__uring *u, int lfd)
{
  for (int i = 0; i < u->nacc; i++)
    if (u->acc[i].lfd == lfd)
      return &u->acc[i];
  return NULL;
}

static struct eddy__uaccept *find_or_add(struct eddy__uring *u, int lfd)
{
  struct eddy__uaccept *a = find(u, lfd);
  if (a != NULL)
    return a;
  a = realloc(u->acc, (size_t)(u->nacc + 1) * sizeof *a);
  if (a == NULL)
    return NULL;
  u->acc = a;
  a = &u->acc[u->nacc++];
  memset(a, 0, sizeof *a);
  a->lfd = lfd;
  return a;
}

static int push(struct eddy__uaccept *a, int fd)
{
  if (a->head > 0 && a->head + a->n == a->cap) {
    memmove(a->q, a->q + a->head, (size_t)a->n * sizeof *a->q);
    a->head = 0;
  }
  if (a->n == a->cap) {
    int cap = a->cap ? 2 * a->cap : 16;
    int *p = realloc(a->q, (size_t)cap * sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    a->q = p;
    a->cap = cap;
  }
  a->q[a->head + a->n++] = fd;
  return 0;
}

static int has_input(const struct eddy__uaccept *a)
{
  return a->n > 0 || a->err != 0;
}

int eddy__uaccept_sync(eddy_loop_t *loop, int fd)
{
  struct eddy__uring *u = loop->uring;
  struct uring_fd *f = &u->fds[fd];
  struct eddy__uaccept *a = find(u, fd);
  int wanted = f->watched && (f->want & (EDDY_READ | EDDY__ACCEPT)) == (EDDY_READ | EDDY__ACCEPT) &&
               (a == NULL || (a->err == 0 && !a->polling && a->n < AHEAD));

  if (f->rstate == EDDY__RECV_ARMED && !wanted)
    return eddy__uring_cancel(u, fd);
  if (f->rstate != EDDY__RECV_IDLE || !wanted)
    return 0;
  if (a == NULL && (a = find_or_add(u, fd)) != NULL)
    a->first = (eddy__uring_seq)(f->rseq + 1);
  if (a == NULL)
    return 0; /* the poll covers it, and accept4() */
  struct io_uring_sqe *sqe = eddy__uring_sqe(u);
  if (sqe == NULL)
    return -EBUSY;
  io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  f->rseq++;
  io_uring_sqe_set_data64(sqe, eddy__uring_tag(fd, f->rseq, EDDY__OP_ACCEPT));
  f->rstate = EDDY__RECV_ARMED;
  f->racc = 1;
  return 0;
}

void eddy__uaccept_complete(eddy_loop_t *loop, const struct io_uring_cqe *cqe)
{
  struct eddy__uring *u = loop->uring;
  uint64_t data = io_uring_cqe_get_data64(cqe);
  int fd = (int)((uint32_t)data & EDDY__URING_FD_MASK);
  struct uring_fd *f = fd < u->nfds ? &u->fds[fd] : NULL;
  struct eddy__uaccept *a = f != NULL ? find(u, fd) : NULL;

  eddy__uring_seq seq = eddy__uring_seq_of(data);
  if (a == NULL || f->rstate == EDDY__RECV_IDLE || !f->racc || f->rseq != seq) {
    /* Withdrawn (a pause) while it accepted: the connection is still
     * the listener's, queued for the resume; with no listener left (or
     * a later one on the same fd number), no one's. */
    if (cqe->res >= 0 && (a == NULL || (int8_t)(seq - a->first) < 0 || push(a, cqe->res) < 0))
      close(cqe->res);
    return;
  }
  int final = !(cqe->flags & IORING_CQE_F_MORE);
  if (final)
    f->rstate = EDDY__RECV_IDLE;
  if (cqe->res >= 0) {
    if (push(a, cqe->res) < 0) {
      close(cqe->res);
      a->err = ENOMEM;
    }
    if (!final && a->n >= AHEAD)
      eddy__uring_cancel(u, fd); /* the acceptor is behind: let the backlog wait */
  } else if (cqe->res != -ECANCELED && cqe->res != -EINTR) {
    /* The ring takes an fd number before it looks at the backlog: out of
     * fds, an accept armed again would fail at once, forever. Readiness
     * until the acceptor's own accept4() gets one. */
    a->err = -cqe->res;
    a->polling = 1;
  }
  if (final && f->watched)
    eddy__uring_queue_arm(u, fd); /* again, or a poll in its place */
}

void eddy__uaccept_fire(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  for (int i = 0; i < u->nacc; i++) {
    struct eddy__uaccept *a = &u->acc[i];
    const struct uring_fd *f = &u->fds[a->lfd];
    if (has_input(a) && f->watched && (f->want & EDDY_READ))
      eddy__io_fire(loop, a->lfd, EDDY_READ);
  }
}

int eddy__uaccept_pending(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  for (int i = 0; i < u->nacc; i++) {
    const struct eddy__uaccept *a = &u->acc[i];
    const struct uring_fd *f = &u->fds[a->lfd];
    if (has_input(a) && f->watched && (f->want & EDDY_READ))
      return 1;
  }
  return 0;
}

int eddy__uaccept_take(eddy_loop_t *loop, int lfd, struct sockaddr_storage *ss,
                       socklen_t *len, eddy__accept_fn direct)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__uaccept *a = find(u, lfd);
  if (a == NULL)
    return direct(lfd, ss, len);
  struct uring_fd *f = &u->fds[lfd];
  if (a->n > 0) {
    int fd = a->q[a->head++];
    if (--a->n == 0)
      a->head = 0;
    if (f->rstate == EDDY__RECV_IDLE && f->watched)
      eddy__uring_queue_arm(u, lfd); /* it may have stopped for this taker */
    if (getpeername(fd, (struct sockaddr *)ss, len) < 0) {
      /* Reset before it was taken: what accept() says of such a one. */
      close(fd);
      errno = ECONNABORTED;
      return -1;
    }
    return fd;
  }
  if (a->err != 0) {
    errno = a->err;
    a->err = 0;
    if (f->watched)
      eddy__uring_queue_arm(u, lfd); /* a poll, while polling */
    return -1;
  }
  if (f->rstate != EDDY__RECV_IDLE) {
    errno = EAGAIN; /* what comes is the ring's */
    return -1;
  }
  int fd = direct(lfd, ss, len);
  if (fd >= 0 && a->polling) {
    a->polling = 0;
    if (f->watched)
      eddy__uring_queue_arm(u, lfd);
  }
  return fd;
}

static void drop_at(struct eddy__uring *u, int i)
{
  struct eddy__uaccept *a = &u->acc[i];
  for (int j = 0; j < a->n; j++)
    close(a->q[a->head + j]);
  free(a->q);
  u->acc[i] = u->acc[--u->nacc];
}

void eddy__uaccept_drop(eddy_loop_t *loop, int lfd)
{
  struct eddy__uring *u = loop->uring;
  for (int i = 0; i < u->nacc; i++)
    if (u->acc[i].lfd == lfd) {
      drop_at(u, i);
      return;
    }
}

void eddy__uaccept_fini(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  while (u->nacc > 0)
    drop_at(u, u->nacc - 1);
  free(u->acc);
  u->acc = NULL;
}
#endif /* EDDY_HAVE_LIBURING */
