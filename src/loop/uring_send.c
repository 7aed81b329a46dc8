/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's sends: eddy__loop_send() queues an
 * IORING_OP_SENDMSG that leaves with the pass's one io_uring_enter, and
 * its completion calls the sender back from the end of the wait that
 * reaped it (eddy__usend_fire), as the receives' bytes are reported then.
 *
 * A send names a record of the loop's, by a small id (the stream keeps
 * it in four bytes it had spare): the msghdr and the iovecs the kernel
 * reads at submission live there, and the id is the request's user_data
 * with bit 63 set. The other requests' tags never set it (an 8-bit
 * sequence number above an fd), and EDDY__URING_IGNORE, which does, is
 * tested first. Records are pointers in a table, so growing it never
 * moves a msghdr the kernel has not read yet; a finished record goes on a
 * free list and serves the next send.
 *
 * What the kernel reads until the completion (the bytes) is the sender's
 * to keep. Settling (eddy__usend_settle) is how a sender gets it back
 * early, before a close or before handing memory back to its owner: the
 * send is submitted if it was not (a close must not overtake it), what
 * the socket takes at once goes, the rest is cancelled, and the
 * completion is delivered there and then, marked in the completion queue
 * so the reap that comes later skips it.
 */
#ifdef EDDY_HAVE_LIBURING
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop/uring.h"

#define SMALL_IOV 4 /* most sends gather one or two pieces */
/* A cancelled send completes by the next io_uring_enter; a send the
 * kernel runs in a worker may take longer: bounded. */
#define SETTLE_WAITS 50
#define SETTLE_WAIT_NS 10000000

enum { SEND_FREE = 0, SEND_INFLIGHT, SEND_DONE };

struct usend {
  eddy__sent_fn fn;
  void *arg;
  struct msghdr msg;
  struct iovec *iov; /* msg.msg_iov: small, or a heap array for more */
  int cap;           /* iovecs iov holds */
  int res;           /* the completion's (SEND_DONE) */
  unsigned state;
  unsigned next_free;
  struct iovec small[SMALL_IOV];
};

struct eddy__usends {
  struct usend **v; /* by id - 1: 0 names no send */
  unsigned n, cap;
  unsigned free_id; /* first free record's id, 0 none */
  unsigned live;    /* records in flight or done */
  unsigned *done;   /* ids reaped, for the fire: room for every live one */
  unsigned ndone, capdone;
  int usable;       /* 1 SENDMSG works on this ring, -1 it does not, 0 not asked */
};

static uint64_t tag_of(unsigned id)
{
  return EDDY__URING_OP_BIT | id;
}

static struct usend *rec_of(struct eddy__usends *t, uint64_t data)
{
  uint64_t id = data & ~EDDY__URING_OP_BIT;
  return id >= 1 && id <= t->n ? t->v[id - 1] : NULL;
}

/* Whether this kernel sends on the ring (IORING_OP_SENDMSG, 5.3); asked
 * once per ring. */
static int usable(struct eddy__uring *u, struct eddy__usends *t)
{
  if (t->usable == 0) {
    struct io_uring_probe *p = io_uring_get_probe_ring(&u->ring);
    t->usable = p != NULL && io_uring_opcode_supported(p, IORING_OP_SENDMSG) &&
                        io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL)
                    ? 1
                    : -1;
    if (p != NULL)
      io_uring_free_probe(p);
  }
  return t->usable > 0;
}

/* A free record with room for @n iovecs, and its id; the done list is
 * grown first so that reaping its completion cannot fail. */
static struct usend *rec_take(struct eddy__usends *t, int n, unsigned *id)
{
  if (t->capdone < t->live + 1) {
    unsigned c = t->capdone ? 2 * t->capdone : 16;
    unsigned *d = realloc(t->done, c * sizeof *d);
    if (d == NULL)
      return NULL;
    t->done = d;
    t->capdone = c;
  }
  if (t->free_id == 0) {
    if (t->n == t->cap) {
      unsigned c = t->cap ? 2 * t->cap : 16;
      struct usend **v = realloc(t->v, c * sizeof *v);
      if (v == NULL)
        return NULL;
      t->v = v;
      t->cap = c;
    }
    struct usend *r = calloc(1, sizeof *r);
    if (r == NULL)
      return NULL;
    r->iov = r->small;
    r->cap = SMALL_IOV;
    t->v[t->n++] = r;
    r->next_free = 0;
    t->free_id = t->n;
  }
  struct usend *r = t->v[t->free_id - 1];
  if (n > r->cap) {
    struct iovec *v = malloc((size_t)n * sizeof *v);
    if (v == NULL)
      return NULL;
    if (r->iov != r->small)
      free(r->iov);
    r->iov = v;
    r->cap = n;
  }
  *id = t->free_id;
  t->free_id = r->next_free;
  t->live++;
  return r;
}

static void rec_put(struct eddy__usends *t, struct usend *r, unsigned id)
{
  r->state = SEND_FREE;
  r->fn = NULL;
  r->arg = NULL;
  r->next_free = t->free_id;
  t->free_id = id;
  t->live--;
}

/* The record goes back before the call: the sender's callback usually
 * sends again, and gets the same record, warm. */
static void deliver(struct eddy__usends *t, struct usend *r, unsigned id)
{
  eddy__sent_fn fn = r->fn;
  void *arg = r->arg;
  int res = r->res;
  rec_put(t, r, id);
  fn(arg, res);
}

int eddy__usend_submit(eddy_loop_t *loop, int fd, const struct iovec *iov, int n, int flags,
                       eddy__sent_fn fn, void *arg)
{
  struct eddy__uring *u = loop->uring;
  if (u->tx == NULL && (u->tx = calloc(1, sizeof *u->tx)) == NULL)
    return -ENOMEM;
  struct eddy__usends *t = u->tx;
  if (!usable(u, t))
    return -ENOTSUP;
  unsigned id;
  struct usend *r = rec_take(t, n, &id);
  if (r == NULL)
    return -ENOMEM;
  struct io_uring_sqe *sqe = eddy__uring_sqe(u);
  if (sqe == NULL) {
    rec_put(t, r, id);
    return -EBUSY;
  }
  memcpy(r->iov, iov, (size_t)n * sizeof *iov);
  memset(&r->msg, 0, sizeof r->msg);
  r->msg.msg_iov = r->iov;
  r->msg.msg_iovlen = (size_t)n;
  r->fn = fn;
  r->arg = arg;
  r->state = SEND_INFLIGHT;
  io_uring_prep_sendmsg(sqe, fd, &r->msg, (unsigned)flags);
  io_uring_sqe_set_data64(sqe, tag_of(id));
  return (int)id;
}

void eddy__usend_flush(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  /* Only sends wait in the queue between two waits (polls are armed just
   * before one): whatever is there leaves now. */
  if (u->tx != NULL && u->tx->live > 0 && io_uring_sq_ready(&u->ring) > 0)
    (void)io_uring_submit(&u->ring);
}

void eddy__usend_complete(eddy_loop_t *loop, const struct io_uring_cqe *cqe)
{
  struct eddy__usends *t = loop->uring->tx;
  struct usend *r = t != NULL ? rec_of(t, io_uring_cqe_get_data64(cqe)) : NULL;
  if (r == NULL || r->state != SEND_INFLIGHT)
    return;
  r->state = SEND_DONE;
  r->res = cqe->res;
  t->done[t->ndone++] = (unsigned)(io_uring_cqe_get_data64(cqe) & ~EDDY__URING_OP_BIT);
}

void eddy__usend_fire(eddy_loop_t *loop)
{
  struct eddy__usends *t = loop->uring->tx;
  if (t == NULL)
    return;
  /* A callback may settle another send of this list (a close): that one
   * is delivered there and is no longer DONE here; nothing it does adds
   * to the list, which only the reap fills. */
  for (unsigned i = 0; i < t->ndone; i++) {
    unsigned id = t->done[i];
    struct usend *r = t->v[id - 1];
    if (r->state == SEND_DONE)
      deliver(t, r, id);
  }
  t->ndone = 0;
}

/* Takes the completions already in the queue of the sends in flight that
 * @only names (0: all of them): marks them for the reap to skip, and the
 * records done, not delivered. @return how many. */
static unsigned take_completions(struct eddy__uring *u, unsigned only)
{
  struct eddy__usends *t = u->tx;
  struct io_uring_cqe *cqe;
  unsigned head, found = 0;
  io_uring_for_each_cqe(&u->ring, head, cqe) {
    uint64_t data = io_uring_cqe_get_data64(cqe);
    if (data == EDDY__URING_IGNORE || !(data & EDDY__URING_OP_BIT))
      continue;
    unsigned id = (unsigned)(data & ~EDDY__URING_OP_BIT);
    struct usend *r = rec_of(t, data);
    if (r == NULL || r->state != SEND_INFLIGHT || (only != 0 && id != only))
      continue;
    r->state = SEND_DONE;
    r->res = cqe->res;
    cqe->user_data = EDDY__URING_IGNORE;
    found++;
  }
  return found;
}

/* Cancels the send @id names, if in flight. */
static void cancel_one(struct eddy__uring *u, unsigned id)
{
  struct io_uring_sqe *sqe = eddy__uring_sqe(u);
  if (sqe == NULL)
    return; /* the ring cannot submit: the wait below gives it its time */
  io_uring_prep_cancel64(sqe, tag_of(id), 0);
  io_uring_sqe_set_data64(sqe, EDDY__URING_IGNORE);
}

/* Enters the kernel until @want sends of @only's kind are done (see
 * take_completions), bounded. @return how many are. */
static unsigned await_completions(struct eddy__uring *u, unsigned only, unsigned want)
{
  unsigned got = 0;
  int rc = io_uring_submit_and_get_events(&u->ring);
  (void)rc; /* errors show as completions that did not come */
  got += take_completions(u, only);
  for (int i = 0; got < want && i < SETTLE_WAITS; i++) {
    struct __kernel_timespec ts = {0, SETTLE_WAIT_NS};
    struct io_uring_cqe *cqe;
    io_uring_wait_cqes(&u->ring, &cqe, io_uring_cq_ready(&u->ring) + 1, &ts, NULL);
    got += take_completions(u, only);
  }
  return got;
}

void eddy__usend_settle(eddy_loop_t *loop, unsigned id)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__usends *t = u->tx;
  struct usend *r = t != NULL ? rec_of(t, tag_of(id)) : NULL;
  if (r == NULL || r->state == SEND_FREE)
    return;
  if (r->state == SEND_INFLIGHT) {
    /* The send's own submission goes first, in ring order, so whatever
     * the socket has room for leaves before the cancel. */
    cancel_one(u, id);
    await_completions(u, id, 1);
  }
  if (r->state == SEND_DONE)
    deliver(t, r, id);
  /* else the kernel kept it (not seen here): its completion comes through
   * the reap as any other, and the sender keeps its bytes until then. */
}

void eddy__usend_orphan(eddy_loop_t *loop)
{
  struct eddy__usends *t = loop->uring->tx;
  if (t == NULL)
    return;
  /* The child's new ring never completes the parent's sends: each ends
   * here, reported at the child's first wait. The parent's kernel request
   * reads the parent's memory, so the child's copies are free to go. */
  t->ndone = 0;
  t->usable = 0; /* a new ring: asked again */
  for (unsigned id = 1; id <= t->n; id++) {
    struct usend *r = t->v[id - 1];
    if (r->state == SEND_FREE)
      continue;
    r->state = SEND_DONE;
    r->res = EDDY__SEND_ORPHANED;
    t->done[t->ndone++] = id;
  }
}

void eddy__usend_fini(eddy_loop_t *loop)
{
  struct eddy__uring *u = loop->uring;
  struct eddy__usends *t = u->tx;
  if (t == NULL)
    return;
  /* Sends still in flight (a stream the loop's free did not close): each
   * is cancelled and seen to its end while the ring can still tell us,
   * then delivered as orphaned (nothing may send again now), so the
   * sender frees its bytes only once the kernel is done with them. */
  unsigned inflight = 0;
  for (unsigned id = 1; id <= t->n; id++) {
    if (t->v[id - 1]->state == SEND_INFLIGHT) {
      cancel_one(u, id);
      inflight++;
    }
  }
  if (inflight > 0)
    await_completions(u, 0, inflight);
  for (unsigned id = 1; id <= t->n; id++) {
    struct usend *r = t->v[id - 1];
    if (r->state == SEND_FREE)
      continue;
    /* One not seen to its end in time is cancelled by the ring's
     * teardown. */
    r->res = EDDY__SEND_ORPHANED;
    deliver(t, r, id);
  }
  for (unsigned i = 0; i < t->n; i++) {
    if (t->v[i]->iov != t->v[i]->small)
      free(t->v[i]->iov);
    free(t->v[i]);
  }
  free(t->v);
  free(t->done);
  free(t);
  u->tx = NULL;
}
#endif /* EDDY_HAVE_LIBURING */
