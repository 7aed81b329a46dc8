/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's state, shared by its three files: backend_uring.c
 * (the ring, readiness polls, interest, the wait), uring_recv.c (the
 * receives that complete on the ring into the loop's provided buffers),
 * uring_accept.c (the listeners' accepts on the ring) and uring_send.c
 * (the streams' sends on the ring).
 */
#ifndef EDDY_LOOP_URING_H
#define EDDY_LOOP_URING_H

#ifdef EDDY_HAVE_LIBURING
#include <liburing.h>
#include <stdint.h>

#include "loop/loop_impl.h"

#define EDDY__URING_NOBUF 0xffu /* no buffer: an empty list */

/* The receive a socket, or the accept a listener, has on the ring
 * (uring_fd.rstate; racc tells which). */
enum { EDDY__RECV_IDLE = 0, EDDY__RECV_ARMED, EDDY__RECV_CANCELLING };

/* Sequence numbers of requests. 8 bits are plenty: a withdrawn request's
 * last completion comes by the next io_uring_enter, and an fd is armed at
 * most once per wait, so no stale completion is ever 128 arms behind. */
typedef uint8_t eddy__uring_seq;

/* One per fd number, so every connection pays for it: 8 bytes. A
 * registered fd is always watched, even for no events: as with epoll, an
 * error or hang-up is reported whatever the interest (a half-open stream
 * that reads and writes nothing still learns of a reset). Either a poll
 * does it or, while one is armed, the receive, whose completions carry
 * the error or the end. */
struct uring_fd {
  eddy__uring_seq seq;     /* of the poll in flight (or the last one) */
  eddy__uring_seq rseq;    /* of the receive or accept in flight (or last) */
  unsigned char rhead;     /* first received buffer not yet read, or NOBUF */
  unsigned char want;      /* READ|WRITE|EDDY__RECV|EDDY__ACCEPT asked for */
  unsigned char armed;     /* the mask of the poll in flight */
  unsigned char watched : 1;   /* registered (between ADD and DEL) */
  unsigned char in_flight : 1; /* a poll is armed */
  unsigned char to_arm : 1;    /* listed in arm[] */
  unsigned char rstate : 2;    /* EDDY__RECV_* */
  unsigned char listed : 1;    /* in the ready list (received, unread) */
  unsigned char starved : 1;   /* the buffer ring ran dry on it */
  unsigned char racc : 1;      /* rstate is a listener's accept's */
  unsigned char bulk : 1;      /* filling whole buffers: readiness and recv() */
  /* What ended the receive, reported after the data: 0 none, 1 the
   * peer's end (EOF), else 1 + errno. */
  unsigned char rend;
};

struct eddy__urecv; /* uring_recv.c */

struct eddy__uring {
  struct io_uring ring;
  struct uring_fd *fds;
  int nfds;
  int *arm; /* fds whose kernel state to bring up to date before the wait */
  int narm, caparm;
  struct eddy__urecv *rx; /* the buffer ring, made on the first receive */
  struct eddy__uaccept *acc; /* listeners' accepted fds (uring_accept.c) */
  int nacc;
  struct eddy__usends *tx; /* the sends' records (uring_send.c), made on the first */
};

/* user_data: the fd, and the sequence number of the request in the high
 * half (eddy__uring_seq_of); bits 31 and 30 (never set in an fd: Linux caps fds below 2^30)
 * mark a receive or an accept. */
#define EDDY__URING_RECV_BIT 0x80000000u
#define EDDY__URING_ACCEPT_BIT 0x40000000u
#define EDDY__URING_FD_MASK 0x3fffffffu
#define EDDY__URING_IGNORE UINT64_MAX /* removals and cancels */
/* A send's tag: bit 63 and its record's id (uring_send.c). The tags above
 * never set bit 63 (a small sequence number from bit 32); IGNORE does,
 * and is told apart first. */
#define EDDY__URING_OP_BIT (UINT64_C(1) << 63)

enum { EDDY__OP_POLL, EDDY__OP_RECV, EDDY__OP_ACCEPT };

static inline eddy__uring_seq eddy__uring_seq_of(uint64_t user_data)
{
  return (eddy__uring_seq)(user_data >> 32);
}

static inline uint64_t eddy__uring_tag(int fd, eddy__uring_seq seq, int op)
{
  uint32_t bits = op == EDDY__OP_RECV     ? EDDY__URING_RECV_BIT
                  : op == EDDY__OP_ACCEPT ? EDDY__URING_ACCEPT_BIT
                                          : 0;
  return ((uint64_t)seq << 32) | (uint32_t)fd | bits;
}

/* backend_uring.c */
struct io_uring_sqe *eddy__uring_sqe(struct eddy__uring *u);
int eddy__uring_queue_arm(struct eddy__uring *u, int fd);
/* Appends @fd to the growable array *@v (*@n used of *@cap). @return 0 or
 * -ENOMEM (the array unchanged). */
int eddy__uring_push_fd(int **v, int *n, int *cap, int fd);
/* Withdraws @fd's receive or accept: CANCELLING until its last completion.
 * @return 0 or -EBUSY (no submission slot). */
int eddy__uring_cancel(struct eddy__uring *u, int fd);

/* uring_accept.c: a listener with EDDY__ACCEPT interest accepts on the
 * ring; the same shape as the receives below. */
int eddy__uaccept_sync(eddy_loop_t *loop, int fd);
void eddy__uaccept_complete(eddy_loop_t *loop, const struct io_uring_cqe *cqe);
void eddy__uaccept_fire(eddy_loop_t *loop);
int eddy__uaccept_pending(eddy_loop_t *loop);
/* The fork's child and fini: every accepted fd not handed out is closed. */
void eddy__uaccept_fini(eddy_loop_t *loop);
int eddy__uaccept_take(eddy_loop_t *loop, int lfd, struct sockaddr_storage *ss,
                       socklen_t *len, eddy__accept_fn direct);
void eddy__uaccept_drop(eddy_loop_t *loop, int lfd);

/* uring_recv.c */
/* Whether @f should have a multishot receive armed. */
int eddy__urecv_wanted(const struct eddy__uring *u, const struct uring_fd *f);
/* Arms or withdraws @fd's receive to match what it wants. @return 0 or
 * -EBUSY (no submission slot: try again at the next wait). */
int eddy__urecv_sync(eddy_loop_t *loop, int fd);
/* At DEL or ADD, once the receive is withdrawn: drops its data. */
void eddy__urecv_forget(eddy_loop_t *loop, int fd);
/* A receive's completion. */
void eddy__urecv_complete(eddy_loop_t *loop, const struct io_uring_cqe *cqe);
/* After the completions: READ for each fd with received bytes or an end
 * to report, level-triggered as epoll would for bytes in the kernel. */
void eddy__urecv_fire(eddy_loop_t *loop);
/* Whether something received waits for a reader that wants it (the wait
 * must not block). */
int eddy__urecv_pending(eddy_loop_t *loop);
/* Before the wait: starved receives go again once buffers came back. */
void eddy__urecv_refill(eddy_loop_t *loop);
/* Before a wait of @timeout_ms (-1: forever): once the ring has been quiet,
 * the buffers' pages go back to the system. @return the timeout to wait
 * with, shortened to wake up for a trim that is not due yet. */
int eddy__urecv_trim(eddy_loop_t *loop, int timeout_ms);
/* The fork's child and fini: every buffer back, nothing received kept. */
void eddy__urecv_reset(eddy_loop_t *loop);
void eddy__urecv_fini(eddy_loop_t *loop);
ssize_t eddy__urecv_read(eddy_loop_t *loop, int fd, void *buf, size_t len,
                         int flags);

/* uring_send.c: eddy__loop_send() and eddy__loop_send_settle(). */
int eddy__usend_submit(eddy_loop_t *loop, int fd, const struct iovec *iov, int n, int flags,
                       eddy__sent_fn fn, void *arg);
void eddy__usend_settle(eddy_loop_t *loop, unsigned id);
void eddy__usend_flush(eddy_loop_t *loop);
/* A send's completion (tagged with EDDY__URING_OP_BIT): kept for the fire. */
void eddy__usend_complete(eddy_loop_t *loop, const struct io_uring_cqe *cqe);
/* After the completions: calls the senders back. */
void eddy__usend_fire(eddy_loop_t *loop);
/* The fork's child: every send in flight is the parent's; each is
 * reported EDDY__SEND_ORPHANED at the next fire. */
void eddy__usend_orphan(eddy_loop_t *loop);
/* Before the ring goes: the sends in flight are cancelled, waited for and
 * reported EDDY__SEND_ORPHANED; the records are freed. */
void eddy__usend_fini(eddy_loop_t *loop);

#endif /* EDDY_HAVE_LIBURING */
#endif
