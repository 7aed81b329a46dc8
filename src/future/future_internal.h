/* SPDX-License-Identifier: MIT */
/*
 * The future object, shared by the files of src/future (not installed).
 *
 * One struct serves every role: a plain promise, a then-step, an adopting
 * future, a hidden add_done node and a repeat driver. The role is `kind`;
 * what it waits on is `upstream`. Waiting costs no allocation: a future
 * waits through its embedded node, which sits in the awaited future's
 * waiter list and moves to the loop's FIFO when that future settles (the
 * list is linked through `next`, free while the node is not queued); the
 * loop then runs it by its link's tag, which says what its kind needs.
 *
 * References, who holds them (docs/ownership.md says the same for users):
 *   - every handle given out by the API;
 *   - a waiter list (then the loop's FIFO) holds one on each future
 *     waiting in it, so a then-future runs even if its caller dropped it;
 *   - `upstream` holds one on the future waited on, so the source lives
 *     until the step has read it;
 *   - `shared` holds one on the future whose outcome this one reports.
 * The cycle upstream <-> waiter is broken when the upstream settles and the
 * node runs; a future nobody ever settles keeps its waiters alive, as a
 * never-settled promise does everywhere.
 */
#ifndef EDDY_FUTURE_INTERNAL_H
#define EDDY_FUTURE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "eddy/future.h"
#include "loop/loop_internal.h"
#include "common/list.h"

enum eddy__future_kind {
  EDDY__PLAIN = 0, /* settled by whoever produced it */
  EDDY__THEN,      /* runs fn.then on any outcome of upstream */
  EDDY__THEN_OK,   /* runs fn.then if upstream resolved, else settles as it */
  EDDY__CATCH,     /* runs fn.then if upstream failed, else settles as it */
  EDDY__FINALLY,   /* runs fn.fin, then settles as upstream */
  EDDY__ADOPT,     /* settles as upstream (a future a then-callback returned) */
  EDDY__DONE,      /* hidden node of eddy_future_add_done() */
  EDDY__TIMEOUT,   /* eddy_with_timeout(); arg is the timer */
  EDDY__REPEAT     /* drives eddy_repeat(); upstream is the running step */
};
_Static_assert(EDDY__REPEAT < 16, "a future keeps its kind in 4 bits");

union eddy__future_fn {
  eddy_then_fn then;
  eddy_callback_fn fin;
  eddy_done_fn done;
  eddy_step_fn step;
};

/* A cancel hook on a future whose hook slot holds its step callback (the
 * step kinds, see eddy__has_step): rare, so kept out of the object. */
struct eddy__hook {
  eddy_cancel_fn fn;
  void *arg;
};

/* The budget of struct eddy_future (tests/test_sizes.c pins it): three of
 * these are pending behind every idle connection of a read_until loop, and
 * 56 bytes is what fits a 64-byte malloc chunk on 64-bit glibc. */
#define EDDY__FUTURE_BUDGET 56

struct eddy_future {
  /* Its node in a waiter list, then in the loop's FIFO, once upstream
   * settles: first, so that the node's address is the future's. What runs
   * it follows from `kind`, and the link's tag says which (see
   * eddy__future_link), so it carries no function. */
  eddy__link_t next;
  /* What this future waits on (owned), or NULL. Outside the union below:
   * a step cancelled while it waits still holds it until its node runs. */
  eddy_future_t *upstream;
  unsigned refs;
  unsigned char state;      /* eddy_future_state_t */
  unsigned char kind : 4;   /* enum eddy__future_kind */
  unsigned char is_shared : 1; /* the outcome is read through `shared` */
  uint16_t loop_id;         /* its loop in eddy__loops: eddy__future_loop() */
  /* The step's argument; sleep and with_timeout keep their timer here,
   * which outlives settling (a sleep settled by hand still owns it). */
  void *arg;

  /* What a pending future needs and what a settled one holds never live at
   * the same time, so they share storage: that is what keeps the object in
   * 56 bytes. Settling takes the pending part out first (eddy__unpend in
   * future.c); readers check the state before touching either.
   *
   * Settled: a future settled by eddy_future_settle_as() keeps only its
   * state and reads everything else through `shared`, the future that owns
   * the outcome (never itself sharing: sharing is always one level deep).
   * Otherwise a resolved future has a value and no error, a failed one an
   * error and no value, so they share storage too. */
  union {
    struct {                /* EDDY_FUTURE_PENDING (zero when made) */
      /* The nodes waiting on this one: a circular FIFO reached through
       * the link to its last (whose next is the first), so one word gives
       * both ends. */
      eddy__link_t waiters;
      union {
        struct {            /* steps: see eddy__has_step */
          union eddy__future_fn fn;
          struct eddy__hook *hook; /* owned; NULL: none */
        };
        struct {            /* the others: the producer's hook, inline */
          eddy_cancel_fn on_cancel;
          void *cancel_arg;
        };
      };
    };
    eddy_future_t *shared;  /* is_shared */
    struct {                /* EDDY_FUTURE_RESOLVED */
      void *value;
      size_t size;
      eddy_free_fn value_free;
    };
    struct {                /* EDDY_FUTURE_REJECTED, EDDY_FUTURE_CANCELLED */
      int error;
      int cause;
      char *message;        /* owned; NULL: eddy_strerror(error) is used */
    };
  };
};

/* Whether @kind keeps a callback in fn (and so its cancel hook, if any,
 * behind `hook`). ADOPT was a then-step and may still own a hook. */
static inline int eddy__has_step(unsigned kind)
{
  return kind != EDDY__PLAIN && kind != EDDY__TIMEOUT;
}

/* A new pending future of @kind with one reference, or NULL (ENOMEM,
 * NULL loop). */
eddy_future_t *eddy__future_alloc(eddy_loop_t *loop, enum eddy__future_kind kind);

static inline eddy_loop_t *eddy__future_loop(const eddy_future_t *f)
{
  return eddy__loop_by_id(f->loop_id);
}

/* The tags of a future's link (loop_internal.h), by what runs it. */
enum eddy__runner {
  EDDY__RUN_STEP = 1, /* eddy__step_run: the then-steps, ADOPT */
  EDDY__RUN_DONE,     /* eddy__done_run */
  EDDY__RUN_REPEAT,   /* eddy__repeat_run */
  EDDY__RUN_TIMEOUT   /* eddy__timeout_run */
};

/* The link that queues @f's own node, to be run by @runner: each maker
 * knows which (a then-step that adopts keeps EDDY__RUN_STEP). */
static inline eddy__link_t eddy__future_link(eddy_future_t *f, enum eddy__runner runner)
{
  return (eddy__link_t)f | (eddy__link_t)runner;
}

/*
 * Makes @task wait for @f: queued on the loop when f settles, after the
 * tasks registered before it, or queued now if f has settled already. The
 * caller's reference to whatever owns the task passes to the list.
 */
void eddy__future_wait(eddy_future_t *f, struct eddy__task *task);
/* The same for either kind of node, by its link. */
void eddy__future_wait_link(eddy_future_t *f, eddy__link_t link);

/*
 * Makes @d wait on @f through d's own node, run by @runner: d->upstream
 * takes the caller's reference to f, and f's waiter list a new one on d.
 */
void eddy__future_wait_on(eddy_future_t *d, eddy_future_t *f, enum eddy__runner runner);

/* The runners, by tag (eddy__future_runners): chain.c's steps and
 * add_done nodes, repeat.c's driver, combinators.c's with_timeout. Each
 * takes over the reference the waiter list held on the future. */
void eddy__step_run(eddy_future_t *d);
void eddy__done_run(eddy_future_t *node);
void eddy__repeat_run(eddy_future_t *r);
void eddy__timeout_run(eddy_future_t *r);

/* eddy_future_reject_cause() with a va_list. */
int eddy__future_reject_va(eddy_future_t *f, int code, int cause,
                           const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* The future whose fields hold f's outcome (f itself unless it shares). */
static inline const eddy_future_t *eddy__outcome(const eddy_future_t *f)
{
  return f->is_shared ? f->shared : f;
}

static inline int eddy__failed(const eddy_future_t *f)
{
  return f->state == EDDY_FUTURE_REJECTED || f->state == EDDY_FUTURE_CANCELLED;
}

#endif
