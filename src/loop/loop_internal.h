/* SPDX-License-Identifier: MIT */
/*
 * The loop's interface to the rest of eddy (not installed).
 *
 * Futures and streams settle things by queueing tasks. A task is a node
 * embedded in the object that owns it, so queueing never allocates and
 * cannot fail: this is why settling a future cannot fail either.
 */
#ifndef EDDY_LOOP_INTERNAL_H
#define EDDY_LOOP_INTERNAL_H

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/types.h>

#include "eddy/loop.h"
#include "common/list.h"
#include "loop/spares.h"

/*
 * The loop's first member: what the layers above count in it directly, so
 * that counting a future or a stream costs an increment, not a call, and
 * no field in the counted object.
 */
struct eddy__loop_head {
  size_t nfutures;      /* futures alive */
  size_t nstreams;      /* streams alive (closed or not, until freed) */
  struct eddy_list objs; /* struct eddy__loop_obj: the servers */
  unsigned char debug;  /* eddy_loop_set_debug() */
  /* Set by the stream layer when it makes a stream on this loop:
   * eddy_loop_free() closes each stream it still watches with it. */
  void (*close_stream)(void *stream);
  /* The loop's number in eddy__loops (registry.c): a future or a stream
   * keeps this, two bytes, instead of a pointer. */
  uint16_t id;
  /* Freed futures, and write waiters (stream/writeq.c), kept for the next
   * ones (spares.h says why). */
  struct eddy__spares spare_futures;
  struct eddy__spares spare_waiters;
};

static inline struct eddy__loop_head *eddy__head(eddy_loop_t *loop)
{
  return (struct eddy__loop_head *)(void *)loop;
}

/* A node an object embeds to be found by eddy_loop_walk(): for the few
 * objects (servers) that can afford 32 bytes. */
struct eddy__loop_obj {
  struct eddy_list link;
  void *object;
  int kind; /* eddy_loop_object_kind_t */
};

void eddy__loop_obj_add(eddy_loop_t *loop, struct eddy__loop_obj *o, int kind,
                        void *object);
void eddy__loop_obj_remove(struct eddy__loop_obj *o);

/* What an fd handler belongs to; eddy_loop_add_handler() makes USER. */
enum eddy__fd_kind {
  EDDY__FD_USER = 0,
  EDDY__FD_INTERNAL, /* the wakeup, signals: never keeps a loop busy */
  EDDY__FD_STREAM,   /* arg is the stream */
  EDDY__FD_LISTEN    /* a server's listening socket */
};

/* Labels the handler of @fd (added just before); a no-op without one. */
void eddy__loop_set_fd_kind(eddy_loop_t *loop, int fd, enum eddy__fd_kind kind);

/* Calls @fn for the stream of each EDDY__FD_STREAM handler, in fd order:
 * every open stream that has been used or linked to an owner is there
 * (stream/close_watch.h), so a server finds its connections without a
 * list through them. @fn may close the stream. @return how many. */
size_t eddy__loop_each_stream(eddy_loop_t *loop, void (*fn)(void *stream, void *ctx),
                              void *ctx);

/*
 * The loop's deferred FIFO and a future's waiter list link two kinds of
 * node, each starting with the link to the node after it. A link is the
 * node's address, its three low bits a tag: 0 for a task (below), which
 * carries its run function, else a future's node, which does not (three
 * futures wait behind every idle connection of a read loop, and those 8
 * bytes each decide their malloc chunk): the tag, named by the code that
 * made the future when it starts waiting, picks its run function from
 * eddy__future_runners, so running either kind costs one indirect call.
 */
typedef uintptr_t eddy__link_t;
#define EDDY__LINK_TAG ((eddy__link_t)7)

/* For the tables the hot paths index: declared hidden, as they are
 * defined (-fvisibility=hidden), a reference is PC-relative instead of
 * a load through the GOT. */
#define EDDY__HIDDEN __attribute__((visibility("hidden")))

/* The link field of the node @link names (both kinds start with it). */
static inline eddy__link_t *eddy__link_next(eddy__link_t link)
{
  return (eddy__link_t *)(link & ~EDDY__LINK_TAG);
}

/*
 * An interest bit beside EDDY_READ, for stream sockets: a read is waiting,
 * so the bytes may be received ahead of the reader. The io_uring backend
 * then receives on the ring (src/loop/uring_recv.c); the others ignore it.
 * Without it, READ is plain readiness (an idle stream's watch).
 */
#define EDDY__RECV 0x040u

/*
 * recv() for a stream socket the loop watches (@flags 0 or MSG_PEEK): on
 * io_uring, bytes the ring received for @fd come first, then the end that
 * stopped the receive; the kernel is asked only while no receive is in
 * flight. Elsewhere plain recv(). errno as recv() (EINTR retried by the
 * caller).
 */
ssize_t eddy__loop_recv(eddy_loop_t *loop, int fd, void *buf, size_t len, int flags);

/*
 * The same for listening sockets: EDDY__ACCEPT beside EDDY_READ asks the
 * io_uring backend to accept on the ring (src/loop/uring_accept.c).
 * eddy__loop_accept() hands out what it accepted, then the error that
 * stopped it, else calls @direct (accept4 and its flags, the caller's);
 * -1 and errno as accept(). Accepted fds not handed out stay the loop's
 * across a pause (the handler removed and added again), as connections
 * wait in the backlog; eddy__loop_accept_drop() closes them, before the
 * listener is closed.
 */
#define EDDY__ACCEPT 0x080u
typedef int (*eddy__accept_fn)(int lfd, struct sockaddr_storage *ss, socklen_t *len);
int eddy__loop_accept(eddy_loop_t *loop, int lfd, struct sockaddr_storage *ss,
                      socklen_t *len, eddy__accept_fn direct);
void eddy__loop_accept_drop(eddy_loop_t *loop, int lfd);

/*
 * Sends on the ring (the io_uring backend; elsewhere -ENOTSUP, and the
 * caller makes the system call). eddy__loop_send() queues a sendmsg() of
 * @iov (@n pieces, copied; the bytes they point to are not) on @fd with
 * @flags, submitted with the loop's next kernel entry, and returns an id
 * (> 0) naming it until @fn runs, once, from the loop's wait, with what
 * sendmsg() would have returned: the bytes sent, or -errno. Until then the
 * kernel may read the bytes: the caller keeps them as they are, and keeps
 * the fd open. -ENOMEM or -EBUSY (no submission slot): nothing is queued.
 *
 * eddy__loop_send_settle() makes @id's send end now, before a close or
 * before its bytes go back to their owner: it is submitted if it was not,
 * what the socket takes at once is sent, the rest is cancelled, and @fn
 * runs before this returns (with the bytes sent, or -ECANCELED if none).
 * Should the kernel hold on to it (not seen in half a second), @fn runs
 * later from the wait as usual.
 *
 * In a fork's child, and when the loop is freed with a send in flight, @fn
 * gets EDDY__SEND_ORPHANED: the child's ring never completes the parent's
 * requests, and a loop being freed sends nothing more.
 */
#define EDDY__SEND_ORPHANED (-ECHILD)
typedef void (*eddy__sent_fn)(void *arg, int res);
int eddy__loop_send(eddy_loop_t *loop, int fd, const struct iovec *iov, int n, int flags,
                    eddy__sent_fn fn, void *arg);
void eddy__loop_send_settle(eddy_loop_t *loop, unsigned id);
/* Whether a send queued on the ring now would leave with others: the
 * loop sends on a ring and this pass handles events of several fds (a
 * busy server answering several connections). 0 without a ring. */
int eddy__loop_send_batching(const eddy_loop_t *loop);

struct eddy__task {
  eddy__link_t next;
  void (*run)(struct eddy__task *task);
};

/* Defined with the futures (src/future/future.c): what runs a future's
 * node, by its link's tag (1 to 7). */
extern EDDY__HIDDEN void (*const eddy__future_runners[8])(eddy_future_t *f);

/*
 * Queues @task to run from the loop, after everything queued before it.
 * The loop keeps running deferred tasks (including ones they queue) until
 * the queue is empty or a per-iteration quota is used up, then polls I/O
 * without blocking before it continues, so a long chain cannot starve I/O.
 * A task must not be queued twice before it has run.
 */
void eddy__loop_defer(eddy_loop_t *loop, struct eddy__task *task);
/* The same for either kind of node, by its link. */
void eddy__loop_defer_link(eddy_loop_t *loop, eddy__link_t link);

/*
 * Every live loop by its id (registry.c), so that what a loop owns in
 * bulk can name it in two bytes. Id 0 is never given out. A loop is
 * entered before eddy_loop_new() returns it and left when it is freed;
 * reading a live loop's entry needs no lock (nothing else writes it).
 */
#define EDDY__LOOPS_MAX 65535
extern EDDY__HIDDEN eddy_loop_t *eddy__loops[EDDY__LOOPS_MAX + 1];

static inline eddy_loop_t *eddy__loop_by_id(unsigned id)
{
  return eddy__loops[id];
}

/*
 * The end of a pass: a stream with writes held back to leave together
 * (src/stream/write.c) links itself here, one pointer, and the loop calls
 * @fn for it once the deferred tasks of the pass have run, before it
 * polls; then it runs the tasks that queued, and again, until no node is
 * left. Every node of a loop has the same @fn (only the stream layer uses
 * this). A node must not be queued twice before its call; nodes queued
 * while the loop is not running wait for its next pass.
 */
struct eddy__pass_node {
  struct eddy__pass_node *next;
};
void eddy__loop_at_pass_end(eddy_loop_t *loop, struct eddy__pass_node *node,
                            void (*fn)(struct eddy__pass_node *node));
/* Whether @loop is inside eddy_loop_run(), run_until() or run_once(): only
 * then does a pass end soon. */
int eddy__loop_running(const eddy_loop_t *loop);

/*
 * Marks @t (from eddy_timer_new(), its arg a future) as keeping that future
 * alive: eddy_loop_free() then passes the future to
 * eddy__future_abandon_timer() instead of just freeing the timer, which
 * would leak the future and whatever chain waits on it.
 */
void eddy__timer_owns_future(eddy_timer_t *t);

/*
 * Defined with sleep and with_timeout (src/future/combinators.c): settles
 * or unblocks @f, the future a marked timer keeps alive, so that the
 * timer is freed and the future released once the deferred tasks this
 * queues have run.
 */
void eddy__future_abandon_timer(eddy_future_t *f);

/*
 * Debug mode's record of each future (src/loop/debug.c), keyed by its
 * address. The future layer calls these only while eddy__head(loop)->debug
 * is set, so normal mode pays one test per call site.
 */
void eddy__debug_future_new(eddy_future_t *f);
void eddy__debug_future_site(eddy_future_t *f, const char *file, int line,
                             const char *func);
/* Someone waits on f or read its error: its rejection is not lost. */
void eddy__debug_future_observed(const eddy_future_t *f);
/* Before f is freed: warns of a rejection nobody observed. */
void eddy__debug_future_free(eddy_future_t *f);

/* Logs through the loop's logger (same as eddy_loop_log()). */
void eddy__log(eddy_loop_t *loop, eddy_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Takes over the socket @fd to send its last @len bytes @data (copied) when
 * it is writable, then closes it; after at most @seconds, or at
 * eddy_loop_free(), it is closed with whatever is still unsent. For a
 * closing stream whose last words (a TLS alert or close_notify) the kernel
 * did not take at once. @return 0, or -ENOMEM (the caller still owns @fd).
 */
int eddy__loop_linger(eddy_loop_t *loop, int fd, const void *data, size_t len,
                      double seconds);

#endif
