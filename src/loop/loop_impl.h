/* SPDX-License-Identifier: MIT */
/*
 * The loop's private state, shared by the files of src/loop only.
 *
 * Each file owns one concern: loop.c the life cycle and the iteration,
 * io.c the fd table, backend_*.c the kernel interface (uring_*.c the
 * io_uring backend's receives and accepts, uring.h), timer.c the heap,
 * wakeup.c the cross-thread queue, signal.c signals, threadpool.c the pool,
 * log.c logging. They talk through the eddy__* functions declared here.
 */
#ifndef EDDY_LOOP_IMPL_H
#define EDDY_LOOP_IMPL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/list.h"
#include "loop/heap.h"
#include "loop/loop_internal.h"

#define EDDY__NSEC 1000000000LL

/* Deferred tasks run per iteration before I/O is polled again. */
#define EDDY__DEFER_QUOTA 10000u

/* ---- fd table (io.c) ---------------------------------------------------- */

/* The budget of struct eddy__slot (tests/test_sizes.c pins it): one per
 * fd number up to the highest in use, so a server pays it per connection,
 * plus the table's headroom (io_grow in io.c). */
#define EDDY__SLOT_BUDGET 24

struct eddy__slot {
  eddy_io_fn cb;
  void *arg;
  unsigned gen;        /* bumped on add and remove: stale events are dropped */
  unsigned char wanted; /* READ|WRITE the handler asked for */
  unsigned char kmask;  /* READ|WRITE the kernel has, when kreg */
  unsigned char kind;   /* enum eddy__fd_kind */
  unsigned char active : 1;
  unsigned char kreg : 1;   /* registered with the kernel */
  unsigned char queued : 1; /* in loop->changes */
};

/* An event collected by the backend, delivered after the poll returns. */
struct eddy__fired {
  int fd;
  unsigned events;
  unsigned gen;
};

/* ---- backends (backend_epoll.c, backend_poll.c, backend_uring.c) --------- */

enum eddy__ctl_op { EDDY__CTL_ADD, EDDY__CTL_MOD, EDDY__CTL_DEL };

struct eddy__backend {
  const char *name;
  int (*init)(eddy_loop_t *loop);
  void (*fini)(eddy_loop_t *loop);
  /* Drops every kernel registration (the caller re-adds them): after fork. */
  int (*reinit)(eddy_loop_t *loop);
  /* @mask is READ|WRITE. @return 0 or -errno. */
  int (*ctl)(eddy_loop_t *loop, int fd, enum eddy__ctl_op op, unsigned mask);
  /* Waits up to @timeout_ms (-1: forever) and reports through
   * eddy__io_fire(). @return 0 or -errno (EINTR is not an error). */
  int (*wait)(eddy_loop_t *loop, int timeout_ms);
  /* eddy__loop_recv(), or NULL for plain recv(). */
  ssize_t (*recv)(eddy_loop_t *loop, int fd, void *buf, size_t len, int flags);
  /* eddy__loop_accept() and _accept_drop(), or NULL for @direct. */
  int (*accept)(eddy_loop_t *loop, int lfd, struct sockaddr_storage *ss,
                socklen_t *len, eddy__accept_fn direct);
  void (*accept_drop)(eddy_loop_t *loop, int lfd);
  /* The interest bits it tells apart: a change in the others costs no ctl. */
  unsigned bits;
  /* eddy__loop_send() and _send_settle(), or NULL: -ENOTSUP. */
  int (*send)(eddy_loop_t *loop, int fd, const struct iovec *iov, int n, int flags,
              eddy__sent_fn fn, void *arg);
  void (*send_settle)(eddy_loop_t *loop, unsigned id);
  /* Submits the sends queued since the wait, or NULL: as the loop returns
   * to its caller, who may not run it again soon. */
  void (*send_flush)(eddy_loop_t *loop);
};

#ifdef EDDY_HAVE_EPOLL
extern const struct eddy__backend eddy__backend_epoll;
#endif
extern const struct eddy__backend eddy__backend_poll;
#ifdef EDDY_HAVE_LIBURING
extern const struct eddy__backend eddy__backend_uring;
#endif

/* ---- queues ------------------------------------------------------------- */

struct eddy__soon {
  struct eddy__soon *next;
  eddy_callback_fn cb;
  void *arg;
};

/* A node of the cross-thread queue, embedded in whatever posts it. run()
 * executes it on the loop thread, or with @drop set releases it unrun
 * (eddy_loop_free()). */
struct eddy__tsnode {
  struct eddy__tsnode *next;
  void (*run)(eddy_loop_t *loop, struct eddy__tsnode *node, int drop);
};

/* ---- timers (timer.c) --------------------------------------------------- */

enum eddy__timer_state { EDDY__TIMER_IDLE, EDDY__TIMER_HEAP, EDDY__TIMER_DUE };

struct eddy_timer {
  struct eddy__hnode hn;     /* key: deadline in ns */
  struct eddy_list link;     /* loop->timers: freed with the loop */
  struct eddy_list due;      /* loop->due while collected, not yet run */
  eddy_loop_t *loop;
  eddy_callback_fn cb;
  void *arg;
  int64_t repeat;            /* ns; 0 for one-shot */
  unsigned char state;
  unsigned char oneshot;     /* call_later: frees itself after running */
  unsigned char listed;      /* on loop->timers */
  unsigned char owns_future; /* arg is a future eddy_loop_free() releases */
};

struct eddy__sigs;
struct eddy__pool;

struct eddy__debug;

struct eddy_loop {
  struct eddy__loop_head head; /* first: see loop_internal.h */
  const struct eddy__backend *backend;
  int64_t now; /* ns on CLOCK_MONOTONIC, sampled once per iteration */
  pid_t pid;
  int running;
  int stop;
  int nonblock;          /* something wants the next poll not to block */
  eddy_future_t *until;  /* run_until's future, borrowed */

  /* fd table */
  struct eddy__slot *slots;
  int nslots;
  int *changes; /* fds whose interest may differ from the kernel's */
  int nchanges;
  struct eddy__fired *fired;
  int nfired, capfired;
  int pass_fds; /* fds the last dispatch ran handlers for: eddy__loop_send_batching() */

  /* backend state: epoll or poll, whichever runs */
  int epfd;
  void *evbuf;
  int evcap;
  struct pollfd *pfds;
  int npfds, cappfds;
  int *pidx;  /* fd -> index in pfds, or -1 (only the poll backend pays) */
  int npidx;
  struct eddy__uring *uring; /* backend_uring.c's own state */

  /* deferred tasks and futures: an intrusive FIFO of links */
  eddy__link_t dhead, *dtail;
  unsigned budget;

  /* the end of the pass: a LIFO of nodes and what each gets */
  struct eddy__pass_node *phead;
  void (*pass_fn)(struct eddy__pass_node *node);

  /* call_soon: a FIFO plus recycled nodes */
  struct eddy__soon *shead, **stail;
  struct eddy__spares spare_soon; /* freed nodes kept for reuse */

  /* timers */
  struct eddy__heap heap;
  struct eddy_list timers;
  struct eddy_list due;
  size_t ntimers; /* heap room reserved for this many */
  uint64_t timer_seq;

  /* cross-thread queue */
  pthread_mutex_t tslock;
  struct eddy__tsnode *tshead, **tstail;
  int tspending;
  int wake_rfd, wake_wfd;

  struct eddy__sigs *sigs;
  struct eddy__pool *pool;
  struct eddy_list lingers; /* linger.c: closed streams' last sends */

  eddy_log_fn logfn;
  void *logarg;
  int log_level; /* the default logger's threshold */

  struct eddy__debug *dbg; /* debug mode's side tables (debug.c), or NULL */
  int64_t slow_ns;         /* debug mode's slow-callback threshold */
};

/* The default slow-callback threshold, asyncio's slow_callback_duration. */
#define EDDY__SLOW_DEFAULT_NS (100 * 1000000LL)

/* loop.c */
void eddy__loop_run_deferred(eddy_loop_t *loop);

/* registry.c: enters @loop (its head's id is set) or fails with -EMFILE
 * when every id is taken; eddy_loop_free() leaves. */
int eddy__loop_register(eddy_loop_t *loop);
void eddy__loop_unregister(eddy_loop_t *loop);
/* Runs eddy_loop_after_fork() if this is a forked child that has not yet:
 * for entry points that would otherwise change kernel state shared with
 * the parent (its epoll set, its signalfd) or use its threads. */
int eddy__loop_check_fork(eddy_loop_t *loop);

/* linger.c: closes every lingering fd (eddy_loop_free) */
void eddy__lingers_fini(eddy_loop_t *loop);

/* io.c */
int eddy__io_init(eddy_loop_t *loop);
void eddy__io_fini(eddy_loop_t *loop);
void eddy__io_fire(eddy_loop_t *loop, int fd, unsigned events);
void eddy__io_apply(eddy_loop_t *loop);
void eddy__io_dispatch(eddy_loop_t *loop);
void eddy__io_forget_kernel(eddy_loop_t *loop);
/* eddy_loop_free(): closes every stream the loop still watches. */
size_t eddy__io_close_streams(eddy_loop_t *loop); /* @return how many */

/* timer.c */
int eddy__timer_init(eddy_timer_t *t, eddy_loop_t *loop, eddy_callback_fn cb,
                     void *arg);
void eddy__timer_deinit(eddy_timer_t *t);
void eddy__timers_run(eddy_loop_t *loop);
int64_t eddy__timers_next(const eddy_loop_t *loop); /* deadline, or -1 */
void eddy__timers_fini(eddy_loop_t *loop);
/* eddy_loop_free(): hands every timer that keeps a future alive to
 * eddy__future_abandon_timer(). @return how many there were. */
size_t eddy__timers_abandon(eddy_loop_t *loop);
int64_t eddy__seconds_to_ns(double s);

/* wakeup.c */
int eddy__wakeup_init(eddy_loop_t *loop);
void eddy__wakeup_fini(eddy_loop_t *loop);
/* Releases queued nodes unrun; only once no other thread can post. */
void eddy__wakeup_drop(eddy_loop_t *loop);
int eddy__wakeup_after_fork(eddy_loop_t *loop);
void eddy__loop_post(eddy_loop_t *loop, struct eddy__tsnode *node);

/* signal.c */
void eddy__signals_fini(eddy_loop_t *loop);
int eddy__signals_after_fork(eddy_loop_t *loop);

/* threadpool.c */
void eddy__pool_fini(eddy_loop_t *loop);
int eddy__pool_after_fork(eddy_loop_t *loop);

/* log.c: the threshold EDDY_LOG asks for (WARNING without it). */
int eddy__log_level_from_env(void);

/* debug.c */
/* Sets up introspection (allocates nothing). */
void eddy__debug_init(eddy_loop_t *loop);
/* Debug mode if EDDY_DEBUG asks for it: once the loop is complete, so a
 * failed construction has no side table to free. */
void eddy__debug_from_env(eddy_loop_t *loop);
/* At eddy_loop_free(): in debug mode, lists what is still alive. */
void eddy__debug_fini(eddy_loop_t *loop);
int64_t eddy__debug_clock(void);
/* In debug mode: logs a callback that ran since @t0 longer than the
 * threshold; @key, if it is a future (its task), tells where it was made. */
void eddy__debug_slow(eddy_loop_t *loop, int64_t t0, const char *what,
                      const void *key);

/* Sets FD_CLOEXEC and O_NONBLOCK where pipe2() is missing. */
int eddy__pipe(int fds[2]);

#endif
