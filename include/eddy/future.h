/* SPDX-License-Identifier: MIT */
/*
 * eddy/future.h - refcounted futures settled by the loop.
 *
 * A future is the result of an operation that has not finished yet. It is
 * pending, then settles exactly once as one of:
 *
 *   resolved   with a value: a pointer, a size, and the function that frees
 *              the pointer (any of them may be NULL/0);
 *   rejected   with a negative error code (see error.h), an optional cause
 *              (the underlying error, e.g. -ECONNRESET behind EDDY_ECLOSED)
 *              and an optional message;
 *   cancelled  by eddy_future_cancel(); error code EDDY_ECANCELLED.
 *
 * Ownership, in four rules (docs/ownership.md has examples):
 *
 *   1. A function that returns a future returns a NEW REFERENCE: the caller
 *      owns it and must eventually give it away or unref it.
 *   2. Functions that chain a future (then, then_ok, catch, finally, all,
 *      all_settled, any, race, with_timeout) CONSUME the reference passed in,
 *      even when they fail. So `f = eddy_then(eddy_then(read(), a), b)`
 *      leaves the caller exactly one reference: f's.
 *   3. Every other function BORROWS the futures it is given (accessors,
 *      resolve/reject/cancel, eddy_loop_run_until, stream writes of a
 *      future's bytes): the caller's reference is untouched.
 *   4. A callback receives the settled future BORROWED, valid until it
 *      returns (eddy_future_ref() it to keep it). A then-callback returns a
 *      new reference (or EDDY_NO_VALUE), and the chain consumes it.
 *
 * Scheduling. Callbacks never run inside the call that registered them or
 * that settled the future: settling queues them on the loop, in
 * registration order, and the loop runs them. A chain of any length runs in
 * constant stack.
 *
 * NULL means out of memory, everywhere. Functions that create futures
 * return NULL only when memory runs out. Chaining functions given a NULL
 * future return NULL, so a chain built in one expression needs one NULL
 * check at its end. A callback that returns NULL (a then-callback, a
 * repeat step, a stream handler) is taken to have run out of memory: the
 * chain is rejected with -ENOMEM, so a failed allocation inside a chain is
 * never mistaken for success. To say "done, no value" a callback returns
 * EDDY_NO_VALUE, which allocates nothing.
 */
#ifndef EDDY_FUTURE_H
#define EDDY_FUTURE_H

#include <stddef.h>

#include "error.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eddy_future_state {
  EDDY_FUTURE_PENDING = 0,
  EDDY_FUTURE_RESOLVED = 1,
  EDDY_FUTURE_REJECTED = 2,
  EDDY_FUTURE_CANCELLED = 3
} eddy_future_state_t;

/* ------------------------------------------------------------------------ */
/* Creating and settling                                                     */
/* ------------------------------------------------------------------------ */

/**
 * A new pending future on @p loop, for code that produces results (the
 * promise side).
 *
 * @return a new reference, or NULL on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_future_new(eddy_loop_t *loop);

/**
 * An already resolved future. @p value (with @p value_free, may be NULL)
 * becomes the future's, even if this fails (value_free is then called).
 *
 * @return a new reference, or NULL on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_future_resolved(eddy_loop_t *loop, void *value,
                                             eddy_free_fn value_free);

/**
 * An already rejected future with @p code and an optional printf-style
 * message (NULL for none; the text is copied).
 *
 * @return a new reference, or NULL on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_future_rejected(eddy_loop_t *loop, int code,
                                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Resolves a pending future with a value. The future takes @p value: it
 * calls @p value_free(value) when its last reference goes, unless someone
 * takes the value first (eddy_future_take()).
 *
 * @return 0; EDDY_ESETTLED if the future had already settled (the value is
 *         then still the caller's, value_free is not called).
 */
EDDY_API int eddy_future_resolve(eddy_future_t *f, void *value,
                                 eddy_free_fn value_free);

/**
 * Resolves with a byte buffer: @p data of @p size bytes (or, with data NULL,
 * just a count, as read_into does). Ownership as in eddy_future_resolve().
 *
 * @return 0, or EDDY_ESETTLED.
 */
EDDY_API int eddy_future_resolve_bytes(eddy_future_t *f, void *data,
                                       size_t size, eddy_free_fn data_free);

/**
 * Rejects a pending future with a negative @p code and an optional message
 * (printf-style, copied; NULL for none, in which case eddy_strerror(code)
 * is reported).
 *
 * @return 0; EDDY_ESETTLED if it had settled; EDDY_EUSAGE if code >= 0.
 */
EDDY_API int eddy_future_reject(eddy_future_t *f, int code, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));

/**
 * Rejects with a code and its underlying @p cause, e.g.
 * (EDDY_ECLOSED, -ECONNRESET): "stream closed" because the peer reset it.
 *
 * @return as eddy_future_reject().
 */
EDDY_API int eddy_future_reject_cause(eddy_future_t *f, int code, int cause,
                                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * Copies the outcome of the settled future @p from into the pending future
 * @p to (both borrowed). A resolved value is shared, not copied: @p to keeps
 * a reference to @p from and reads the value through it.
 *
 * @return 0; EDDY_ESETTLED if @p to had settled; EDDY_EPENDING if @p from
 *         has not.
 */
EDDY_API int eddy_future_settle_as(eddy_future_t *to, eddy_future_t *from);

/** Called when a pending future is cancelled, to stop the work behind it. */
typedef void (*eddy_cancel_fn)(eddy_future_t *f, void *arg);

/**
 * Installs the hook that eddy_future_cancel() calls (once, before the
 * future's callbacks are queued) so that cancelling reaches the operation:
 * a timer, a read, a connect. Producers set it; one hook per future, a
 * second call replaces it, NULL removes it. Futures that eddy produces
 * (sleep, with_timeout, the combinators, stream operations) carry their
 * own hook already: replacing it would keep cancel from reaching the work.
 * On a future made by eddy_then() and its kin or by eddy_repeat() the hook
 * takes a small allocation; if that fails, the future is rejected with
 * -ENOMEM rather than left with no hook.
 */
EDDY_API void eddy_future_on_cancel(eddy_future_t *f, eddy_cancel_fn fn,
                                    void *arg);

/* ------------------------------------------------------------------------ */
/* References                                                                */
/* ------------------------------------------------------------------------ */

/** Adds a reference. @return @p f (NULL and EDDY_NO_VALUE stay as they
 *  are: neither is counted). */
EDDY_API eddy_future_t *eddy_future_ref(eddy_future_t *f);

/**
 * Drops a reference. The last one frees the future and its value. Dropping
 * the last reference to a pending future does not cancel it: its producer
 * still holds one of its own. NULL and EDDY_NO_VALUE are allowed (no-ops).
 */
EDDY_API void eddy_future_unref(eddy_future_t *f);

/* ------------------------------------------------------------------------ */
/* Reading the outcome (all borrow the future)                               */
/* ------------------------------------------------------------------------ */

/** The future's state. */
EDDY_API eddy_future_state_t eddy_future_state(const eddy_future_t *f);

/** Non-zero once the future has settled in any way. */
EDDY_API int eddy_future_done(const eddy_future_t *f);

/** The loop the future belongs to. */
EDDY_API eddy_loop_t *eddy_future_loop(const eddy_future_t *f);

/**
 * The resolved value, borrowed: valid while the future lives and the value
 * has not been taken. NULL when pending, rejected, cancelled, or resolved
 * with no value.
 */
EDDY_API void *eddy_future_value(const eddy_future_t *f);

/** The resolved size (bytes of data, or a count); 0 when not resolved. */
EDDY_API size_t eddy_future_size(const eddy_future_t *f);

/**
 * Takes the value out of a resolved future, without a copy: the caller now
 * owns it and frees it as its producer documents (stream data: free()).
 * The future keeps its state and size but its value becomes NULL.
 *
 * @param size  if not NULL, receives the size.
 * @return the value, or NULL if there is none (or it was already taken).
 */
EDDY_API void *eddy_future_take(eddy_future_t *f, size_t *size);

/**
 * The error code: 0 when pending or resolved, the negative code when
 * rejected, EDDY_ECANCELLED when cancelled.
 */
EDDY_API int eddy_future_error(const eddy_future_t *f);

/** The underlying cause of a rejection (e.g. -ECONNRESET), or 0. */
EDDY_API int eddy_future_cause(const eddy_future_t *f);

/**
 * The rejection's message: the text given when rejecting, else the cause's
 * and the code's texts ("stream closed: Connection reset by peer"). NULL
 * unless rejected or cancelled. Borrowed: valid while the future lives.
 */
EDDY_API const char *eddy_future_message(const eddy_future_t *f);

/* ------------------------------------------------------------------------ */
/* Cancelling                                                                */
/* ------------------------------------------------------------------------ */

/**
 * Cancels a pending future: it settles as cancelled, its cancel hook runs
 * (stopping the operation behind it), a future it is waiting on (through
 * then or adoption) is cancelled too, and its callbacks are queued, so the
 * cancellation travels down the chain as an error (EDDY_ECANCELLED).
 *
 * @return 0; EDDY_ESETTLED if it had already settled (nothing happens).
 */
EDDY_API int eddy_future_cancel(eddy_future_t *f);

/* ------------------------------------------------------------------------ */
/* Chaining (each consumes the input reference, rule 2)                      */
/* ------------------------------------------------------------------------ */

/**
 * What a callback returns to say "done, with no value" without allocating
 * a future. It is not a future: return it from a then-callback or a stream
 * handler, and never pass it to any other function (eddy_future_ref() and
 * eddy_future_unref() accept it and do nothing, so generic clean-up code
 * is safe).
 */
EDDY_API extern const char eddy_no_value_marker[];
#define EDDY_NO_VALUE ((eddy_future_t *)(void *)eddy_no_value_marker)

/**
 * A then-callback. @p settled is borrowed. Return what the chained future
 * becomes:
 *   - a new reference to any future (pending or settled): the chained
 *     future adopts it and settles as it does. To pass the input on
 *     unchanged, return eddy_future_ref(settled);
 *   - EDDY_NO_VALUE: resolved with no value;
 *   - NULL: out of memory (what every future-making call returns when it
 *     cannot allocate): the chained future is rejected with -ENOMEM, and
 *     the error travels down the chain like any other. So
 *     `return eddy_stream_write(...);` is correct as it stands.
 */
typedef eddy_future_t *(*eddy_then_fn)(eddy_future_t *settled, void *arg);

/**
 * Calls fn(settled, arg) once @p f settles, however it settles.
 *
 * @param f  consumed.
 * @return a new reference to the chained future; NULL if f is NULL or on
 *         ENOMEM (f is released either way).
 */
EDDY_API eddy_future_t *eddy_then(eddy_future_t *f, eddy_then_fn fn, void *arg);

/**
 * Like eddy_then(), but fn runs only if @p f resolves. A rejection or a
 * cancellation skips fn and settles the chained future the same way, so an
 * error travels down the chain to the first catch.
 */
EDDY_API eddy_future_t *eddy_then_ok(eddy_future_t *f, eddy_then_fn fn,
                                     void *arg);

/**
 * Like eddy_then(), but fn runs only if @p f is rejected or cancelled
 * (Promise.catch). A resolution passes through unchanged.
 */
EDDY_API eddy_future_t *eddy_catch(eddy_future_t *f, eddy_then_fn fn,
                                   void *arg);

/**
 * Runs fn(arg) once @p f settles, however it settles, and passes the
 * outcome through unchanged (Promise.finally). For clean-up.
 */
EDDY_API eddy_future_t *eddy_finally(eddy_future_t *f, eddy_callback_fn fn,
                                     void *arg);

/** A completion callback: @p f is borrowed for the duration of the call. */
typedef void (*eddy_done_fn)(eddy_future_t *f, void *arg);

/**
 * A plain completion callback, for code that does not chain: fn(f, arg)
 * runs from the loop once @p f settles. @p f is borrowed and the callback
 * keeps its own reference until it has run.
 *
 * @return 0, -ENOMEM, or EDDY_EUSAGE (NULL @p f or @p fn).
 */
EDDY_API int eddy_future_add_done(eddy_future_t *f, eddy_done_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Combinators (each consumes every input reference, rule 2)                 */
/* ------------------------------------------------------------------------ */

/**
 * Resolves when all @p n futures resolve; rejects as soon as one is
 * rejected or cancelled (fail fast), with that one's error, and cancels the
 * others. Resolved value: an array of the n input futures, in input order
 * (eddy_future_t **, size n, followed by a NULL), owned by the result: read
 * each outcome with the accessors. n == 0 resolves at once with an empty
 * array.
 *
 * @param futures  the array is borrowed, the references in it consumed.
 * @return a new reference, or NULL on ENOMEM or if any input is NULL.
 */
EDDY_API eddy_future_t *eddy_all(eddy_loop_t *loop, eddy_future_t **futures,
                                 size_t n);

/**
 * Resolves when all @p n futures have settled, however they settled (never
 * rejects). Value as for eddy_all().
 */
EDDY_API eddy_future_t *eddy_all_settled(eddy_loop_t *loop,
                                         eddy_future_t **futures, size_t n);

/**
 * Settles as the first of @p n futures to resolve (its value is shared),
 * and cancels the rest. If all of them fail, rejects with the error of the
 * last one to fail. n == 0 rejects with EDDY_EUSAGE.
 */
EDDY_API eddy_future_t *eddy_any(eddy_loop_t *loop, eddy_future_t **futures,
                                 size_t n);

/**
 * Settles as the first of @p n futures to settle, however it settles, and
 * cancels the rest. n == 0 rejects with EDDY_EUSAGE.
 */
EDDY_API eddy_future_t *eddy_race(eddy_loop_t *loop, eddy_future_t **futures,
                                  size_t n);

/**
 * Settles as @p f does, unless @p seconds pass first: then it rejects with
 * EDDY_ETIMEOUT and cancels @p f, so the operation behind it stops (a read
 * leaves the stream idle with its buffer intact). Unlike Tornado's
 * with_timeout, the duration is relative and the operation is interrupted.
 */
EDDY_API eddy_future_t *eddy_with_timeout(eddy_future_t *f, double seconds);

/**
 * A future resolved after @p seconds. Cancelling it stops its timer.
 *
 * @return a new reference, or NULL on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_sleep(eddy_loop_t *loop, double seconds);

/* ------------------------------------------------------------------------ */
/* Loops without growth                                                      */
/* ------------------------------------------------------------------------ */

/**
 * The value a repeat step resolves with to end the loop. Any other outcome
 * of a resolved step means "go on".
 */
EDDY_API extern const char eddy_stop_marker[];
#define EDDY_STOP ((void *)eddy_stop_marker)

/**
 * A new reference to a future already resolved with EDDY_STOP, for a step
 * (or a then-callback inside one) to return.
 */
EDDY_API eddy_future_t *eddy_future_stop(eddy_loop_t *loop);

/** One step of a repeat: returns a new reference to the step's future. */
typedef eddy_future_t *(*eddy_step_fn)(void *arg);

/**
 * Runs step(arg), waits for its future, and runs it again, while each step
 * resolves with anything but EDDY_STOP (seastar's repeat). The returned
 * future resolves (no value) when a step says stop, and rejects with the
 * step's error when one fails or is cancelled. Memory and stack stay
 * constant however long it runs: each step's future is released before the
 * next begins. The first step is called at once, to learn the loop from its
 * future; later steps run from the loop. A step returning NULL ends the
 * loop with -ENOMEM; a step must return a future, so EDDY_NO_VALUE ends it
 * with EDDY_EUSAGE (return eddy_future_stop() to end it cleanly).
 * Cancelling the result cancels the running step and ends the loop.
 *
 * @return a new reference, or NULL if the first step returned NULL or
 *         EDDY_NO_VALUE (no future: no loop to put the result on).
 */
EDDY_API eddy_future_t *eddy_repeat(eddy_step_fn step, void *arg);

/* ------------------------------------------------------------------------ */
/* Where futures are made (debug mode)                                       */
/* ------------------------------------------------------------------------ */

/*
 * Each function below is the one of the same name without "_at", and
 * returns the same, but first takes the place it is called from. The
 * macros that follow route every call of the plain names through them, so
 * a loop in debug mode (eddy_loop_set_debug()) knows where each future was
 * made, with no change to the calling code; outside debug mode the place
 * is not stored. Define EDDY_NO_SITE_MACROS before including eddy.h to
 * call the plain functions (whose symbols stay exported).
 */
/** eddy_future_new() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_future_new_at(const char *file, int line,
                                           const char *func, eddy_loop_t *loop);
/** eddy_future_resolved() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_future_resolved_at(const char *file, int line,
                                                const char *func,
                                                eddy_loop_t *loop, void *value,
                                                eddy_free_fn value_free);
/** eddy_future_rejected() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_future_rejected_at(const char *file, int line,
                                                const char *func,
                                                eddy_loop_t *loop, int code,
                                                const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/** eddy_then() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_then_at(const char *file, int line,
                                     const char *func, eddy_future_t *f,
                                     eddy_then_fn fn, void *arg);
/** eddy_then_ok() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_then_ok_at(const char *file, int line,
                                        const char *func, eddy_future_t *f,
                                        eddy_then_fn fn, void *arg);
/** eddy_catch() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_catch_at(const char *file, int line,
                                      const char *func, eddy_future_t *f,
                                      eddy_then_fn fn, void *arg);
/** eddy_finally() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_finally_at(const char *file, int line,
                                        const char *func, eddy_future_t *f,
                                        eddy_callback_fn fn, void *arg);
/** eddy_all() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_all_at(const char *file, int line,
                                    const char *func, eddy_loop_t *loop,
                                    eddy_future_t **futures, size_t n);
/** eddy_all_settled() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_all_settled_at(const char *file, int line,
                                            const char *func, eddy_loop_t *loop,
                                            eddy_future_t **futures, size_t n);
/** eddy_any() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_any_at(const char *file, int line,
                                    const char *func, eddy_loop_t *loop,
                                    eddy_future_t **futures, size_t n);
/** eddy_race() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_race_at(const char *file, int line,
                                     const char *func, eddy_loop_t *loop,
                                     eddy_future_t **futures, size_t n);
/** eddy_with_timeout() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_with_timeout_at(const char *file, int line,
                                             const char *func, eddy_future_t *f,
                                             double seconds);
/** eddy_sleep() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_sleep_at(const char *file, int line,
                                      const char *func, eddy_loop_t *loop,
                                      double seconds);
/** eddy_repeat() with the caller's place (see above). */
EDDY_API eddy_future_t *eddy_repeat_at(const char *file, int line,
                                       const char *func, eddy_step_fn step,
                                       void *arg);

#ifndef EDDY_NO_SITE_MACROS
#define EDDY_SITE_ __FILE__, __LINE__, __func__
#define eddy_future_new(...) eddy_future_new_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_future_resolved(...) eddy_future_resolved_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_future_rejected(...) eddy_future_rejected_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_then(...) eddy_then_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_then_ok(...) eddy_then_ok_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_catch(...) eddy_catch_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_finally(...) eddy_finally_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_all(...) eddy_all_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_all_settled(...) eddy_all_settled_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_any(...) eddy_any_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_race(...) eddy_race_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_with_timeout(...) eddy_with_timeout_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_sleep(...) eddy_sleep_at(EDDY_SITE_, __VA_ARGS__)
#define eddy_repeat(...) eddy_repeat_at(EDDY_SITE_, __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif
#endif /* EDDY_FUTURE_H */
