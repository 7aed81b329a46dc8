/* SPDX-License-Identifier: MIT */
/*
 * eddy/loop.h - the event loop.
 *
 * One loop per thread. A loop multiplexes file descriptors (epoll on Linux,
 * poll() everywhere else or on request), runs timers from a binary heap on
 * the monotonic clock, runs deferred callbacks in FIFO order, and settles the
 * futures of everything built on it.
 *
 * Threads. Every function here must be called on the loop's own thread,
 * except eddy_loop_call_soon_threadsafe(), which any thread may call.
 *
 * Callbacks. Nothing registered here ever runs inside the call that
 * registered it: callbacks run from eddy_loop_run() (or run_until) only.
 *
 * Time. Durations and instants are in seconds, as doubles, on the loop's
 * monotonic clock (eddy_loop_time()). Wall-clock steps never move timers.
 */
#ifndef EDDY_LOOP_H
#define EDDY_LOOP_H

#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_loop eddy_loop_t;
typedef struct eddy_timer eddy_timer_t;
typedef struct eddy_future eddy_future_t;

/** A plain deferred callback. */
typedef void (*eddy_callback_fn)(void *arg);

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */
/* ------------------------------------------------------------------------ */

/** Which readiness backend a loop uses. */
typedef enum eddy_backend {
  EDDY_BACKEND_DEFAULT = 0, /**< epoll where built, else poll; see below */
  EDDY_BACKEND_EPOLL = 1,   /**< Linux epoll */
  EDDY_BACKEND_POLL = 2,    /**< portable poll(2) */
  EDDY_BACKEND_IO_URING = 3 /**< Linux io_uring (readiness: one-shot polls
                                 on the ring, one system call per
                                 iteration); built with liburing. On
                                 kernels from 6.1 the ring has a single
                                 issuer: run the loop on the thread that
                                 made it (a forked child gets a ring of
                                 its own) */
} eddy_backend_t;

/**
 * Creates a loop with the default backend. The environment variable
 * EDDY_BACKEND ("epoll", "poll" or "io_uring") overrides the default, which
 * is how the test suite runs once per backend. Where io_uring is asked for
 * this way but cannot be had (built without liburing, a kernel without it,
 * a container's seccomp policy refusing it, kernel.io_uring_disabled), the
 * loop quietly runs on epoll instead; eddy_loop_backend_name() tells.
 *
 * @return a new loop owned by the caller (free it with eddy_loop_free()),
 *         or NULL with errno set (ENOMEM, EMFILE: out of descriptors, or
 *         65,535 loops alive at once, ...).
 */
EDDY_API eddy_loop_t *eddy_loop_new(void);

/**
 * Creates a loop with a given backend; EDDY_BACKEND_DEFAULT behaves as
 * eddy_loop_new(). Asking for epoll or io_uring where it was not built fails
 * with errno = ENOSYS; asking for io_uring where the kernel refuses it fails
 * with the kernel's errno (ENOSYS, EPERM, ...): no fallback when a backend
 * is named.
 *
 * @return a new loop owned by the caller, or NULL with errno set.
 */
EDDY_API eddy_loop_t *eddy_loop_new_with_backend(eddy_backend_t backend);

/**
 * The backend a loop runs on: "epoll", "poll" or "io_uring". A static
 * string.
 */
EDDY_API const char *eddy_loop_backend_name(const eddy_loop_t *loop);

/**
 * Frees a loop. It must not be running. Timers are freed, pending
 * call_soon callbacks are dropped without running, fd handlers are removed
 * (the fds themselves are not closed: they belong to whoever registered
 * them), the thread pool is joined. Futures that still reference the loop
 * must have been released first: a future outliving its loop is a bug.
 * So that released chains do not leak, the futures the loop still owes
 * (pool jobs, wait_signal, pending eddy_sleep() and eddy_with_timeout()
 * futures) are cancelled, sleeps and timeouts settled by hand are released
 * from their timers, streams the loop still watches (an operation pending,
 * a connect in progress, or idle and waiting for the peer's close) are
 * closed, so their operations fail with EDDY_ECLOSED (cause
 * EDDY_ECANCELLED), and future callbacks already queued (including the
 * ones all this queues) run before the loop goes. A stream the caller
 * still holds must not be used afterwards. In debug mode
 * (eddy_loop_set_debug()) what is still alive then is logged. NULL is
 * allowed and does nothing.
 */
EDDY_API void eddy_loop_free(eddy_loop_t *loop);

/**
 * Runs the loop until eddy_loop_stop() is called, even when there is
 * nothing to wait for (Tornado's IOLoop.start()).
 *
 * @return 0 when stopped; a negative error if the backend failed
 *         irrecoverably (EDDY_EUSAGE if called re-entrantly).
 */
EDDY_API int eddy_loop_run(eddy_loop_t *loop);

/**
 * Makes eddy_loop_run() / eddy_loop_run_until() return after the current
 * iteration. Called while the loop is not running, it makes the next run
 * return after one iteration.
 */
EDDY_API void eddy_loop_stop(eddy_loop_t *loop);

/**
 * Runs the loop until @p future settles (Tornado's run_sync), or until
 * @p timeout seconds pass (timeout <= 0: no limit).
 *
 * @param future borrowed; the caller keeps its reference and reads the
 *               outcome from it afterwards.
 * @return 0 once the future has settled (whatever its outcome);
 *         EDDY_ETIMEOUT if the timeout passed first (the future is then
 *         cancelled, as run_sync does); EDDY_ESTOPPED if eddy_loop_stop()
 *         ended the run first; EDDY_EUSAGE for a NULL future or a re-entrant
 *         call.
 */
EDDY_API int eddy_loop_run_until(eddy_loop_t *loop, eddy_future_t *future,
                                 double timeout);

/**
 * The loop's current time in seconds on CLOCK_MONOTONIC. It is sampled once
 * per iteration, so all callbacks of one iteration see the same value.
 */
EDDY_API double eddy_loop_time(const eddy_loop_t *loop);

/**
 * Re-samples the clock now (for code that ran long inside one iteration).
 */
EDDY_API void eddy_loop_update_time(eddy_loop_t *loop);

/**
 * Rebuilds the loop's kernel state in a child process after fork(): a new
 * epoll set with the same registrations, a new wakeup fd and signalfd, and a
 * new (empty) thread pool. eddy_loop_run() also does this by itself when it
 * notices the pid changed, so calling it is only needed to register fds
 * before the first run in the child.
 *
 * @return 0, or a negative errno value (the loop is unusable then).
 */
EDDY_API int eddy_loop_after_fork(eddy_loop_t *loop);

/* ------------------------------------------------------------------------ */
/* Embedding in another main loop                                            */
/* ------------------------------------------------------------------------ */

/*
 * A program that already has a main loop (GLib, Qt, libuv, a game loop)
 * drives eddy from it instead of calling eddy_loop_run(): it watches
 * eddy_loop_backend_fd() for readability, wakes up no later than
 * eddy_loop_next_timeout() says, and then calls eddy_loop_run_once(loop, 0).
 * examples/glib-echo.c does this with a GSource; docs/design.md,
 * "Embedding", explains why these three are enough.
 */

/**
 * A descriptor that becomes readable when the loop has I/O to handle: the
 * epoll descriptor, which holds every fd the loop watches (the cross-thread
 * wakeup and signals included). It is the loop's: poll it, never read,
 * close or change it. Level-triggered: it stays readable until
 * eddy_loop_run_once() has handled the events. Timers and deferred work do
 * not make it readable: ask eddy_loop_next_timeout() for those.
 *
 * A fork()ed child gets a new descriptor (eddy_loop_after_fork()): ask
 * again after forking.
 *
 * @return the descriptor; -ENOTSUP on any backend but epoll: poll has no
 *         single descriptor to offer (its fds are handed to poll(2) on each
 *         call); embed an epoll loop, the default on Linux, or ask for one
 *         with eddy_loop_new_with_backend(EDDY_BACKEND_EPOLL); -EINVAL for
 *         a NULL loop.
 */
EDDY_API int eddy_loop_backend_fd(const eddy_loop_t *loop);

/**
 * Runs one iteration of the loop (see docs/design.md, "The loop"): due
 * timers, call_soon callbacks, deferred future callbacks, then a poll for
 * I/O that waits at most @p timeout seconds, and the handlers of what it
 * found. The poll returns earlier when a timer falls due or work is
 * queued; @p timeout 0 means no wait at all (what an embedding program
 * passes once its own loop saw the backend fd readable or the timeout
 * expire), a negative @p timeout waits as eddy_loop_run() would.
 *
 * Interest changes the handlers made are sent to the kernel before it
 * returns, so the backend fd reflects them at once.
 *
 * @return 0; a negative error if the backend failed; EDDY_EUSAGE for a
 *         NULL loop, a NaN timeout, or a call from inside the loop (a
 *         callback of this loop, or while eddy_loop_run() runs).
 */
EDDY_API int eddy_loop_run_once(eddy_loop_t *loop, double timeout);

/**
 * How long the loop can be left alone: 0 when work is queued (call_soon
 * callbacks, deferred future callbacks, a timer already due, fd interest
 * changed from outside the loop's callbacks that has not reached the kernel
 * yet, so that the backend fd cannot miss it), the seconds
 * until the next timer otherwise, or -1 when no timer is running (only I/O,
 * which makes the backend fd readable, can then give it work). Computed
 * from the clock now, not from the loop's cached time. Work queued by
 * eddy_loop_call_soon_threadsafe() wakes the backend fd instead.
 *
 * @return seconds (>= 0), or -1; -1 for a NULL loop.
 */
EDDY_API double eddy_loop_next_timeout(const eddy_loop_t *loop);

/* ------------------------------------------------------------------------ */
/* Deferred callbacks                                                        */
/* ------------------------------------------------------------------------ */

/**
 * Runs cb(arg) on the next iteration of the loop. Callbacks run in the order
 * they were added; a callback added while callbacks are running waits for
 * the next iteration (so one that re-adds itself cannot starve I/O).
 *
 * @return 0, -ENOMEM, or -EINVAL (NULL @p loop or @p cb).
 */
EDDY_API int eddy_loop_call_soon(eddy_loop_t *loop, eddy_callback_fn cb,
                                 void *arg);

/**
 * The same, from any thread: queues cb(arg) and wakes the loop (an eventfd,
 * or a pipe where there is none). Wakeups coalesce: a thousand calls before
 * the loop wakes cost one wakeup. Safe to call while the loop is not running
 * (the callback runs on the next run). Not async-signal-safe.
 *
 * @return 0, or -ENOMEM.
 */
EDDY_API int eddy_loop_call_soon_threadsafe(eddy_loop_t *loop,
                                            eddy_callback_fn cb, void *arg);

/* ------------------------------------------------------------------------ */
/* File descriptor readiness                                                 */
/* ------------------------------------------------------------------------ */

/** Readiness bits, as in Tornado's IOLoop. */
#define EDDY_READ 0x001u
#define EDDY_WRITE 0x004u
/**
 * Error or hang-up. Never asked for: always reported. With epoll, an error
 * or hang-up is reported as EDDY_ERROR together with whichever of READ and
 * WRITE the handler asked for, so the handler's normal read/write path
 * finds the error in the syscall's result.
 */
#define EDDY_ERROR 0x018u

/** Called with the fd and the events that are ready. */
typedef void (*eddy_io_fn)(eddy_loop_t *loop, int fd, unsigned events,
                           void *arg);

/**
 * Starts watching @p fd for @p events (EDDY_READ and/or EDDY_WRITE; 0 is
 * allowed and watches only for errors). The fd stays owned by the caller,
 * who must remove the handler before closing it. Interest changes are
 * batched and reach the kernel once per iteration, only when they differ
 * from what the kernel has.
 *
 * @return 0; -EEXIST if the fd already has a handler; -EBADF for a negative
 *         fd; -EINVAL for a NULL cb; -ENOMEM.
 */
EDDY_API int eddy_loop_add_handler(eddy_loop_t *loop, int fd, unsigned events,
                                   eddy_io_fn cb, void *arg);

/**
 * Replaces the interest set of a watched fd.
 *
 * @return 0, or -ENOENT if the fd has no handler.
 */
EDDY_API int eddy_loop_update_handler(eddy_loop_t *loop, int fd,
                                      unsigned events);

/**
 * Stops watching @p fd. Events already collected for it in this iteration
 * are dropped. Safe to call from the fd's own handler.
 *
 * @return 0, or -ENOENT if the fd has no handler.
 */
EDDY_API int eddy_loop_remove_handler(eddy_loop_t *loop, int fd);

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */
/* ------------------------------------------------------------------------ */

/**
 * Creates a stopped timer that will call cb(arg). A timer is owned by its
 * creator and is reusable: start, stop and start it again as often as
 * needed; free it with eddy_timer_free(). Timers cost one allocation and
 * O(log n) to start or stop.
 *
 * @return a new timer, or NULL with errno = ENOMEM, or EINVAL (NULL @p loop
 *         or @p cb).
 */
EDDY_API eddy_timer_t *eddy_timer_new(eddy_loop_t *loop, eddy_callback_fn cb,
                                      void *arg);

/**
 * Starts (or restarts) a timer: first run after @p delay seconds (<= 0 means
 * on the next iteration, after I/O), then, if @p repeat > 0, every
 * @p repeat seconds, each run scheduled from the start of the previous
 * scheduled time (Tornado's PeriodicCallback: missed ticks are skipped, not
 * bunched). Timers due at the same time run in the order they were started.
 * Expired timers are collected before any of them runs, so a timer that
 * restarts itself with delay 0 runs once per iteration, never in a loop.
 *
 * @return 0, or EDDY_EUSAGE for a NaN delay or a negative repeat.
 */
EDDY_API int eddy_timer_start(eddy_timer_t *timer, double delay, double repeat);

/**
 * Starts a timer at the absolute loop time @p when (see eddy_loop_time()).
 *
 * @return 0, or EDDY_EUSAGE for a NaN time.
 */
EDDY_API int eddy_timer_start_at(eddy_timer_t *timer, double when);

/**
 * Stops a timer; harmless if it is not running or has already fired.
 */
EDDY_API void eddy_timer_stop(eddy_timer_t *timer);

/** Whether the timer is started and has not fired yet (or repeats). */
EDDY_API int eddy_timer_active(const eddy_timer_t *timer);

/**
 * Stops and frees a timer. Allowed from inside its own callback. NULL is
 * allowed.
 */
EDDY_API void eddy_timer_free(eddy_timer_t *timer);

/**
 * Fire-and-forget: runs cb(arg) once after @p delay seconds. There is no
 * handle, so it cannot be cancelled: use eddy_timer_new() for that.
 *
 * @return 0, -ENOMEM, -EINVAL (NULL @p loop or @p cb), or EDDY_EUSAGE
 *         (@p delay is NaN).
 */
EDDY_API int eddy_loop_call_later(eddy_loop_t *loop, double delay,
                                  eddy_callback_fn cb, void *arg);

/**
 * Fire-and-forget at the absolute loop time @p when.
 *
 * @return as eddy_loop_call_later() (EDDY_EUSAGE for a NaN @p when).
 */
EDDY_API int eddy_loop_call_at(eddy_loop_t *loop, double when,
                               eddy_callback_fn cb, void *arg);

/* ------------------------------------------------------------------------ */
/* Signals                                                                   */
/* ------------------------------------------------------------------------ */

/** Called on the loop's thread, outside signal context, once per delivery
 * (deliveries that arrive together may coalesce into one call). */
typedef void (*eddy_signal_fn)(eddy_loop_t *loop, int signo, void *arg);

/**
 * Delivers @p signo to cb on this loop. On Linux this blocks the signal in
 * the calling thread and reads it from a signalfd; elsewhere a handler
 * writes to a self-pipe. Threads that eddy starts block every signal. One
 * handler per signal per loop; a second call replaces it.
 *
 * @return 0; -EINVAL for a signal that cannot be caught (SIGKILL, SIGSTOP)
 *         or is out of range; -ENOMEM.
 */
EDDY_API int eddy_loop_add_signal(eddy_loop_t *loop, int signo,
                                  eddy_signal_fn cb, void *arg);

/**
 * Stops delivering @p signo and restores its previous disposition and mask.
 *
 * @return 0, or -ENOENT if it was not being delivered.
 */
EDDY_API int eddy_loop_remove_signal(eddy_loop_t *loop, int signo);

/**
 * A future resolved the next time @p signo arrives (value: none; size: the
 * signal number). Cancelling it stops waiting.
 *
 * @return a new reference (see docs/ownership.md), or NULL on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_loop_wait_signal(eddy_loop_t *loop, int signo);

/* ------------------------------------------------------------------------ */
/* Blocking work on a thread pool                                            */
/* ------------------------------------------------------------------------ */

/**
 * Work for the pool. Runs on a pool thread: it must not touch the loop or
 * any future. Return 0 and set *value (and *size) for success, or return a
 * negative error code for failure.
 */
typedef int (*eddy_work_fn)(void *arg, void **value, size_t *size);

/** Frees a value produced by a work function or carried by a future. */
typedef void (*eddy_free_fn)(void *value);

/**
 * Runs fn(arg) on the loop's thread pool (started on first use, 4 threads,
 * or EDDY_THREADS from the environment) and settles the returned future on
 * the loop with its outcome: resolved with (value, size, value_free) or
 * rejected with the code it returned. Cancelling the future before the work
 * starts skips it; once started it runs to the end and its value is freed
 * with value_free.
 *
 * @return a new reference, or NULL on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_loop_run_in_thread(eddy_loop_t *loop,
                                                eddy_work_fn fn, void *arg,
                                                eddy_free_fn value_free);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum eddy_log_level {
  EDDY_LOG_DEBUG = 10,
  EDDY_LOG_INFO = 20,
  EDDY_LOG_WARNING = 30,
  EDDY_LOG_ERROR = 40,
  EDDY_LOG_NONE = 50 /**< a threshold only: nothing is logged at it */
} eddy_log_level_t;

/** Receives one formatted message, without a trailing newline. */
typedef void (*eddy_log_fn)(eddy_log_level_t level, const char *message,
                            void *arg);

/**
 * Sends the loop's log messages (and those of every stream and server on
 * it) to @p fn. NULL restores the default: messages at the loop's
 * threshold and above (WARNING unless EDDY_LOG or eddy_loop_set_log_level()
 * says otherwise) to stderr, prefixed "eddy: ". The threshold applies to
 * the default handler only; a custom handler sees every message.
 */
EDDY_API void eddy_loop_set_logger(eddy_loop_t *loop, eddy_log_fn fn,
                                   void *arg);

/**
 * Sets the default logger's threshold: it prints messages at @p level and
 * above, nothing with EDDY_LOG_NONE. A custom logger (set_logger) keeps
 * seeing every message, and stays installed. A new loop takes its
 * threshold from the environment variable EDDY_LOG ("debug", "info",
 * "warning", "error" or "none"; another value is reported on stderr and
 * ignored), else WARNING.
 *
 * @return 0; -EINVAL for a NULL loop or a level that is none of
 *         eddy_log_level_t's values.
 */
EDDY_API int eddy_loop_set_log_level(eddy_loop_t *loop, eddy_log_level_t level);

/** The default logger's threshold (see eddy_loop_set_log_level());
 *  WARNING for a NULL loop. */
EDDY_API eddy_log_level_t eddy_loop_log_level(const eddy_loop_t *loop);

/** Logs a printf-style message through the loop's logger. */
EDDY_API void eddy_loop_log(eddy_loop_t *loop, eddy_log_level_t level,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* Introspection: what keeps a loop busy                                     */
/* ------------------------------------------------------------------------ */

/**
 * Frees the loop if nothing lives on it any more, as uv_loop_close() does:
 * no future of the loop is alive (pending or not: a future must not
 * outlive its loop), no stream or server is (freed, not only closed), no
 * timer is started (a pending eddy_sleep() counts), no fd handler added
 * with eddy_loop_add_handler() remains and no call_soon callback is queued.
 * Otherwise the loop is left as it was: run it until its work is done, or
 * see what remains with eddy_loop_walk() / eddy_loop_dump().
 *
 * @return 0 (the loop is freed); -EBUSY; -EINVAL for a NULL loop;
 *         EDDY_EUSAGE while the loop runs.
 */
EDDY_API int eddy_loop_close(eddy_loop_t *loop);

/** What eddy_loop_walk() found. */
typedef enum eddy_loop_object_kind {
  EDDY_OBJECT_STREAM = 1,  /**< object: eddy_stream_t * */
  EDDY_OBJECT_SERVER = 2,  /**< object: eddy_tcp_server_t * */
  EDDY_OBJECT_FUTURE = 3,  /**< object: eddy_future_t * (debug mode only) */
  EDDY_OBJECT_TIMER = 4,   /**< object: eddy_timer_t *, a started timer */
  EDDY_OBJECT_HANDLER = 5  /**< object: the arg of eddy_loop_add_handler() */
} eddy_loop_object_kind_t;

/**
 * One live object, as eddy_loop_walk() reports it. Filled by the library
 * and valid during the callback only; later versions may append fields.
 */
typedef struct eddy_loop_object {
  eddy_loop_object_kind_t kind;
  void *object;      /**< see eddy_loop_object_kind_t; borrowed */
  int fd;            /**< the descriptor (streams, handlers), else -1 */
  const char *state; /**< "pending", "resolved", "watched", "started", ... */
  /** Where it was made (futures in debug mode, else NULL and 0): the
   *  call of the eddy function, file and line of the caller. */
  const char *file;
  int line;
  const char *func;
  unsigned refs;     /**< references held (futures), else 0 */
} eddy_loop_object_t;

/** Called for each object; return non-zero to stop the walk. */
typedef int (*eddy_walk_fn)(const eddy_loop_object_t *obj, void *arg);

/**
 * Visits the live objects of the loop: every server; every stream the loop
 * watches (each stream with an operation pending, and idle ones waiting
 * for the peer's close: a stream nobody uses yet has nothing to watch);
 * every started timer; every fd handler the application added; and, in
 * debug mode (eddy_loop_set_debug()), every live future with where it was
 * made. In normal mode futures are only counted, at no cost per future:
 * eddy_loop_close() knows whether any remain, the walk cannot list them.
 * @p fn must not add or remove objects of the loop.
 *
 * @return how many objects were visited; -EINVAL for a NULL loop or fn.
 */
EDDY_API int eddy_loop_walk(eddy_loop_t *loop, eddy_walk_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Debug mode                                                                */
/* ------------------------------------------------------------------------ */

/**
 * Turns debug mode on or off (asyncio's debug mode). A new loop starts in
 * it when the environment has EDDY_DEBUG set to anything but "" or "0".
 * In debug mode:
 *   - every future made from then on is recorded with where it was made:
 *     the file, line and function of the eddy call that made it, through
 *     the macros of eddy/future.h (eddy_then(), eddy_sleep(), ...; futures
 *     made inside eddy, such as a stream read's, are recorded without a
 *     place);
 *   - a future that is freed rejected while nobody observed the rejection
 *     (no then/catch/finally, add_done, combinator or with_timeout waited
 *     on it, no eddy_future_error(), _cause() or _message() read it) logs
 *     a warning: "rejection never observed: EDDY_ETIMEOUT timed out
 *     (created at app.c:42 in start)" (with " (cause E...)" when it has
 *     one). Cancellations are not reported;
 *   - a callback that runs longer than the slow-callback threshold (100 ms,
 *     see eddy_loop_set_slow_callback()) logs "slow callback: ... took
 *     N ms (registered at ...)"; for a future's callback, the place is
 *     where the chaining call was made;
 *   - eddy_loop_free() with futures or streams still alive logs how many,
 *     then one line per future (state, references, where made) and per
 *     watched stream;
 *   - eddy_loop_walk() and eddy_loop_dump() list live futures too.
 * Warnings go through the loop's logger. Normal mode stores nothing per
 * future. Turning debug mode off forgets the records.
 *
 * @return 0; -EINVAL for a NULL loop; -ENOMEM.
 */
EDDY_API int eddy_loop_set_debug(eddy_loop_t *loop, int on);

/** Non-zero if the loop is in debug mode; 0 for NULL. */
EDDY_API int eddy_loop_debug(const eddy_loop_t *loop);

/**
 * Sets the threshold above which debug mode reports a callback as slow
 * (default 0.1 s); kept whether or not debug mode is on.
 *
 * @return 0; -EINVAL for a NULL loop, a negative or NaN duration.
 */
EDDY_API int eddy_loop_set_slow_callback(eddy_loop_t *loop, double seconds);

/**
 * Writes a line per object eddy_loop_walk() finds to @p out, then a
 * summary line with the counts of live futures and streams, e.g.
 *   "future 0x55d0c0 pending refs 1 (created at app.c:42 in start)"
 *   "stream 0x55d1a0 fd 7 watched"
 *   "eddy loop: 3 futures, 1 stream, 0 servers alive"
 *
 * @return the number of objects listed; -EINVAL for a NULL loop or file.
 */
EDDY_API int eddy_loop_dump(eddy_loop_t *loop, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* EDDY_LOOP_H */
