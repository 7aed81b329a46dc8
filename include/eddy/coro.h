/* SPDX-License-Identifier: MIT */
/*
 * eddy/coro.h - coroutines: straight-line code over futures.
 *
 * A coroutine is a function that runs on a stack of its own, as a task on
 * the loop, and can stop in the middle to wait for a future:
 *
 *   static eddy_future_t *echo(eddy_stream_t *s, void *arg)
 *   {
 *     for (;;) {
 *       eddy_future_t *line = eddy_await(eddy_stream_read_until(s, "\n", 1, 0));
 *       if (line == NULL || eddy_future_error(line) != 0)
 *         return line;          // the coroutine's future settles as it did
 *       eddy_future_unref(eddy_await(eddy_stream_write_bytes_of(s, line)));
 *       eddy_future_unref(line);
 *     }
 *   }
 *
 * While it waits, the loop runs everything else; when the future settles,
 * the loop resumes the coroutine (from a task, as it runs any callback),
 * and eddy_await() returns. Everything still happens on the loop's thread,
 * one thing at a time: a coroutine runs until it awaits or returns.
 *
 * Ownership follows the four rules of eddy/future.h: eddy_await() consumes
 * the future it is given and returns that same reference to the caller,
 * so `eddy_await(x)` owns what `x` returned and the caller unrefs it once,
 * as it would have unref'ed x. A coroutine function returns what a
 * then-callback returns (a new reference, EDDY_NO_VALUE, or NULL for out
 * of memory), and the coroutine's future settles as that.
 *
 * Nothing else in eddy depends on this layer; a program that never spawns
 * a coroutine maps no stacks.
 */
#ifndef EDDY_CORO_H
#define EDDY_CORO_H

#include <stddef.h>

#include "error.h"
#include "loop.h"
#include "future.h"
#include "stream.h"
#include "tcp.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The default usable stack size of a coroutine: 256 KiB of address space,
 *  of which only the pages the coroutine touches take memory. */
#define EDDY_CORO_DEFAULT_STACK_SIZE (256 * 1024)

/** The smallest stack a coroutine gets (smaller requests are raised to
 *  it): enough for libc's formatted output and a TLS record. */
#define EDDY_CORO_MIN_STACK_SIZE (16 * 1024)

/** The largest stack_size accepted. */
#define EDDY_CORO_MAX_STACK_SIZE (1024 * 1024 * 1024)

/** Coroutine settings; initialise with eddy_coro_options_init() (or zero). */
typedef struct eddy_coro_options {
  /** Usable stack bytes (0: EDDY_CORO_DEFAULT_STACK_SIZE), rounded up to
   *  whole pages and to at least EDDY_CORO_MIN_STACK_SIZE. Below the stack
   *  lies one inaccessible guard page, so a coroutine that overflows its
   *  stack dies of SIGSEGV instead of overwriting other memory. */
  size_t stack_size;
  /** Room for the fields later 0.x releases add, so the struct keeps its
   *  size and the layout old binaries were built with (docs/design.md,
   *  "Binary compatibility"). Must be zero, as eddy_coro_options_init() leaves it. */
  size_t reserved_[4];
} eddy_coro_options_t;

/** Fills @p options with the defaults. */
EDDY_API void eddy_coro_options_init(eddy_coro_options_t *options);

/**
 * A coroutine's body. It may call eddy_await() any number of times, and
 * returns what a then-callback returns (future.h, rule 4):
 *   - a new reference to a future: the coroutine's future settles as that
 *     one does (once it settles, if it is still pending);
 *   - EDDY_NO_VALUE: the coroutine's future resolves with no value;
 *   - NULL: out of memory; the coroutine's future is rejected with -ENOMEM.
 */
typedef eddy_future_t *(*eddy_coro_fn)(void *arg);

/**
 * Starts fn(arg) as a coroutine on @p loop. fn does not run inside this
 * call: it starts from a task of the loop, after what is already queued
 * (as a then-callback would), on a stack of its own.
 *
 * Cancelling the returned future cancels the future the coroutine is
 * awaiting at that moment, and the coroutine resumes with it, so its
 * eddy_await() returns a future that failed with EDDY_ECANCELLED (or, if
 * the awaited future had settled already and the coroutine was only
 * waiting for its turn, with that outcome). The coroutine then runs on
 * as it chooses: later awaits wait as usual, so it can still clean up (a
 * last write, a close), and what it finally returns is released. A
 * coroutine cancelled before it started never runs fn: as for a
 * then-callback, free @p arg in a finally on the returned future, not in fn.
 *
 * Stacks come from mmap and go back to a per-thread cache of up to 64 when
 * a coroutine ends, so a server making a coroutine per connection does not
 * map and unmap one per connection. A coroutine that never ends (it awaits
 * a future nobody settles) keeps its stack and its future, as a then-step
 * on such a future does: eddy_loop_free() expects them gone.
 *
 * @param options  copied; NULL for defaults.
 * @return a new reference to the coroutine's future, settled as described
 *         for eddy_coro_fn; rejected at once with EDDY_EUSAGE for a
 *         stack_size above EDDY_CORO_MAX_STACK_SIZE or a reserved_ byte
 *         set, or with -ENOMEM if no stack can be mapped. NULL with errno
 *         EINVAL for a NULL loop or fn, or ENOMEM when even the future
 *         cannot be allocated.
 */
EDDY_API eddy_future_t *eddy_coro_spawn(eddy_loop_t *loop, eddy_coro_fn fn,
                                        void *arg,
                                        const eddy_coro_options_t *options);

/**
 * Suspends the calling coroutine until @p f settles, and returns @p f.
 *
 * Ownership: consumes the caller's reference to @p f and returns that same
 * reference, now the caller's again: unref what eddy_await() returns,
 * exactly once. So
 *
 *   eddy_future_t *line = eddy_await(eddy_stream_read_until(s, "\n", 1, 0));
 *   ... eddy_future_value(line) ...
 *   eddy_future_unref(line);
 *
 * leaks nothing, and the value stays valid as long as `line` is kept,
 * across later awaits. A future that has already settled is returned at
 * once, without suspending (an inline write does not cost a switch).
 *
 * NULL (a call that ran out of memory) and EDDY_NO_VALUE are returned as
 * they are, without suspending, so one NULL check after the await covers
 * the call inside it.
 *
 * Outside a coroutine, or for a future of another loop than the
 * coroutine's, it never blocks: it releases @p f and returns a new
 * reference to a future rejected with EDDY_EUSAGE (on f's loop), or NULL
 * if that cannot be allocated.
 *
 * Do not run the loop (eddy_loop_run(), eddy_loop_run_until()) from inside
 * a coroutine: a coroutine waits with eddy_await().
 */
EDDY_API eddy_future_t *eddy_await(eddy_future_t *f);

/** Non-zero when called from inside a coroutine (eddy_await() can wait). */
EDDY_API int eddy_in_coro(void);

/* ------------------------------------------------------------------------ */
/* Servers: one coroutine per connection                                     */
/* ------------------------------------------------------------------------ */

/**
 * A connection handler that runs as a coroutine. @p s is borrowed, and
 * stays valid until the coroutine returns (it holds a reference of its
 * own): eddy_stream_ref() it to keep it longer. The peer's address is
 * eddy_stream_peer_address(s). Return as for eddy_coro_fn; the server
 * treats the coroutine's future as it treats a callback handler's future
 * (eddy/tcp.h: a failure is logged, NULL closes the stream with -ENOMEM).
 */
typedef eddy_future_t *(*eddy_coro_stream_fn)(eddy_stream_t *s, void *arg);

/** A coroutine handler's function, argument and options, made by
 *  eddy_coro_handler_new() for eddy_coro_stream_handler(). */
typedef struct eddy_coro_handler eddy_coro_handler_t;

/**
 * Makes the argument for eddy_coro_stream_handler(): every connection it is
 * given runs fn(stream, arg) as a coroutine with @p options.
 *
 * @param options  copied; NULL for defaults.
 * @return the handler, owned by the caller (eddy_coro_handler_free()), or
 *         NULL with errno EINVAL (NULL fn, a reserved_ byte set,
 *         stack_size above EDDY_CORO_MAX_STACK_SIZE) or ENOMEM.
 */
EDDY_API eddy_coro_handler_t *eddy_coro_handler_new(eddy_coro_stream_fn fn,
                                                    void *arg,
                                                    const eddy_coro_options_t *options);

/**
 * Frees a handler made by eddy_coro_handler_new(). Coroutines it started
 * run on (each copied what it needs), but the server must no longer call
 * eddy_coro_stream_handler() with it: free it after eddy_tcp_server_free()
 * or after setting another handler. NULL is allowed.
 */
EDDY_API void eddy_coro_handler_free(eddy_coro_handler_t *handler);

/**
 * An eddy_stream_handler_fn (eddy/tcp.h) that runs each connection in a
 * coroutine of its own:
 *
 *   eddy_coro_handler_t *h = eddy_coro_handler_new(echo, NULL, NULL);
 *   eddy_tcp_server_set_handler(srv, eddy_coro_stream_handler, h);
 *
 * @param handler  an eddy_coro_handler_t (borrowed).
 * @return the coroutine's future (eddy_coro_spawn()), which the server
 *         waits for before it drops its reference to the stream.
 */
EDDY_API eddy_future_t *eddy_coro_stream_handler(eddy_stream_t *s,
                                                 const struct sockaddr *peer,
                                                 void *handler);

#ifdef __cplusplus
}
#endif
#endif /* EDDY_CORO_H */
