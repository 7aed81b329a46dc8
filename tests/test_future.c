/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/future, through the public API only.
 *
 * Check forks each test, so a crash fails one test, and every test frees
 * its loop in the teardown: running the suite under ASan or valgrind
 * (make check-valgrind) turns any leaked future or double free into a
 * failure. Values carry counting destructors so that "freed exactly once"
 * and "at most one step future alive" are checked precisely, not guessed.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <eddy.h>
#include "future_fixtures.h"
#include "test_backend.h"

/* ---- recording --------------------------------------------------------- */

static char order[64];
static size_t norder;

static void note(char c)
{
  ck_assert_uint_lt(norder, sizeof order - 1);
  order[norder++] = c;
  order[norder] = '\0';
}

static char labels[] = "ABCDEFGH";

static eddy_future_t *note_then(eddy_future_t *settled, void *arg)
{
  note(*(char *)arg);
  return EDDY_NO_VALUE;
}

static void note_done(eddy_future_t *f, void *arg)
{
  note(*(char *)arg);
}

static void note_finally(void *arg)
{
  note(*(char *)arg);
}

/* Heap ints whose destructor counts: exactly-once shows as nfreed, and a
 * double free shows under ASan/valgrind. */
static int nfreed;

static void counted_free(void *p)
{
  nfreed++;
  free(p);
}

static int *new_int(int v)
{
  int *p = malloc(sizeof *p);

  ck_assert_ptr_nonnull(p);
  *p = v;
  return p;
}

static int int_of(const eddy_future_t *f)
{
  const int *p = eddy_future_value(f);

  ck_assert_ptr_nonnull(p);
  return *p;
}

/* A pending future resolved with 42 from a call_soon callback. */
static void resolve_42(void *arg)
{
  eddy_future_t *f = arg;

  ck_assert_int_eq(eddy_future_resolve(f, new_int(42), counted_free), 0);
  eddy_future_unref(f);
}

static eddy_future_t *pending_42(void)
{
  eddy_future_t *f = eddy_future_new(L);

  ck_assert_int_eq(eddy_loop_call_soon(L, resolve_42, eddy_future_ref(f)), 0);
  return f;
}

static void reject_closed(void *arg)
{
  eddy_future_t *f = arg;

  ck_assert_int_eq(eddy_future_reject(f, EDDY_ECLOSED, "late"), 0);
  eddy_future_unref(f);
}

/* Cancel hooks that count. */
static int hooks;

static void count_hook(eddy_future_t *f, void *arg)
{
  hooks++;
  if (arg != NULL)
    ++*(int *)arg;
}

static eddy_future_t *never_called(eddy_future_t *settled, void *arg)
{
  ck_abort_msg("callback must not run");
  return EDDY_NO_VALUE;
}

/* ------------------------------------------------------------------------ */
/* Settling and reading                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(test_resolve_and_read)
{
  eddy_future_t *f = eddy_future_new(L);
  char buf[] = "hello";

  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_PENDING);
  ck_assert(!eddy_future_done(f));
  ck_assert_ptr_eq(eddy_future_loop(f), L);
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert_ptr_null(eddy_future_message(f));
  ck_assert_int_eq(eddy_future_resolve_bytes(f, buf, 5, NULL), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert(eddy_future_done(f));
  ck_assert_ptr_eq(eddy_future_value(f), buf);
  ck_assert_uint_eq(eddy_future_size(f), 5);
  ck_assert_int_eq(eddy_future_error(f), 0);
  ck_assert_int_eq(eddy_future_cause(f), 0);
  ck_assert_ptr_null(eddy_future_message(f));
  eddy_future_unref(f);
}
END_TEST

START_TEST(test_settle_twice)
{
  eddy_future_t *f = eddy_future_new(L);
  int *v = new_int(1), *w = new_int(2);

  ck_assert_int_eq(eddy_future_resolve(f, v, counted_free), 0);
  /* The second value stays the caller's: not freed, not stored. */
  ck_assert_int_eq(eddy_future_resolve(f, w, counted_free), EDDY_ESETTLED);
  ck_assert_int_eq(eddy_future_resolve_bytes(f, w, 4, counted_free), EDDY_ESETTLED);
  ck_assert_int_eq(eddy_future_reject(f, EDDY_ECLOSED, NULL), EDDY_ESETTLED);
  ck_assert_int_eq(eddy_future_reject_cause(f, EDDY_ECLOSED, -EPIPE, "x"),
                   EDDY_ESETTLED);
  ck_assert_int_eq(eddy_future_cancel(f), EDDY_ESETTLED);
  ck_assert_int_eq(nfreed, 0);
  ck_assert_ptr_eq(eddy_future_value(f), v);
  free(w);
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 1);

  f = eddy_future_new(L);
  ck_assert_int_eq(eddy_future_reject(f, 0, NULL), EDDY_EUSAGE); /* code >= 0 */
  ck_assert_int_eq(eddy_future_reject(f, 5, NULL), EDDY_EUSAGE);
  ck_assert(!eddy_future_done(f));
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  ck_assert_int_eq(eddy_future_resolve(f, NULL, NULL), EDDY_ESETTLED);
  ck_assert_int_eq(eddy_future_reject(f, EDDY_ECLOSED, NULL), EDDY_ESETTLED);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(f);
}
END_TEST

START_TEST(test_null_inputs)
{
  eddy_future_t *none[1] = { NULL };

  ck_assert_ptr_null(eddy_future_new(NULL));
  ck_assert_ptr_null(eddy_then(NULL, note_then, labels));
  ck_assert_ptr_null(eddy_then_ok(NULL, note_then, labels));
  ck_assert_ptr_null(eddy_catch(NULL, note_then, labels));
  ck_assert_ptr_null(eddy_finally(NULL, note_finally, labels));
  ck_assert_ptr_null(eddy_with_timeout(NULL, 1.0));
  ck_assert_ptr_null(eddy_repeat(NULL, NULL));
  ck_assert_ptr_null(eddy_all(L, none, 1));
  ck_assert_ptr_null(eddy_race(NULL, NULL, 0));
  ck_assert_ptr_null(eddy_sleep(NULL, 1.0));
  ck_assert_ptr_null(eddy_future_ref(NULL));
  eddy_future_unref(NULL);
  ck_assert_int_eq(eddy_future_state(NULL), EDDY_FUTURE_PENDING);
  ck_assert_int_eq(eddy_future_done(NULL), 0);
  ck_assert_ptr_null(eddy_future_loop(NULL));
  ck_assert_ptr_null(eddy_future_value(NULL));
  ck_assert_uint_eq(eddy_future_size(NULL), 0);
  ck_assert_ptr_null(eddy_future_take(NULL, NULL));
  ck_assert_int_eq(eddy_future_error(NULL), 0);
  ck_assert_int_eq(eddy_future_cause(NULL), 0);
  ck_assert_ptr_null(eddy_future_message(NULL));
  ck_assert_int_eq(eddy_future_resolve(NULL, NULL, NULL), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_future_resolve_bytes(NULL, NULL, 1, NULL), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_future_reject(NULL, EDDY_ECLOSED, NULL), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_future_reject_cause(NULL, EDDY_ECLOSED, -EPIPE, NULL),
                   EDDY_EUSAGE);
  ck_assert_int_eq(eddy_future_settle_as(NULL, NULL), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_future_cancel(NULL), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_future_add_done(NULL, note_done, labels), EDDY_EUSAGE);
  eddy_future_on_cancel(NULL, count_hook, NULL);

  /* A NULL in a chain built in one expression: one check at the end. */
  ck_assert_ptr_null(eddy_then_ok(eddy_catch(eddy_then(NULL, note_then, labels),
                                             note_then, labels),
                                  note_then, labels));

  /* The value of a failed resolved() is still taken (and freed). */
  ck_assert_ptr_null(eddy_future_resolved(NULL, new_int(1), counted_free));
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

START_TEST(test_take)
{
  int *v = new_int(7);
  eddy_future_t *f = eddy_future_new(L);
  size_t size = 0;

  ck_assert_ptr_null(eddy_future_take(f, &size)); /* pending */
  ck_assert_int_eq(eddy_future_resolve_bytes(f, v, sizeof *v, counted_free), 0);
  ck_assert_ptr_eq(eddy_future_take(f, &size), v);
  ck_assert_uint_eq(size, sizeof *v);
  /* State and size stay; the value is gone, and the caller owns it. */
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), sizeof *v);
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert_ptr_null(eddy_future_take(f, NULL));
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 0);
  counted_free(v);

  f = eddy_future_rejected(L, EDDY_ECLOSED, NULL);
  ck_assert_ptr_null(eddy_future_take(f, &size));
  ck_assert_uint_eq(size, 0);
  eddy_future_unref(f);
}
END_TEST

START_TEST(test_refcount_and_destructor)
{
  eddy_future_t *f = eddy_future_resolved(L, new_int(3), counted_free);

  ck_assert_ptr_eq(eddy_future_ref(f), f);
  ck_assert_ptr_eq(eddy_future_ref(f), f);
  eddy_future_unref(f);
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 0);
  ck_assert_int_eq(int_of(f), 3);
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 1);

  /* Dropping a pending future does not cancel it: its producer's reference
   * keeps it, and its callbacks still run. */
  f = pending_42(); /* call_soon holds the producer's reference */
  {
    eddy_future_t *d = eddy_then(f, note_then, labels);

    run(d);
    eddy_future_unref(d);
  }
  ck_assert_str_eq(order, "A");
  ck_assert_int_eq(nfreed, 2);
}
END_TEST

START_TEST(test_messages_and_causes)
{
  eddy_future_t *f;

  f = eddy_future_new(L);
  ck_assert_int_eq(eddy_future_reject(f, EDDY_ECLOSED, "peer left after %d bytes", 12), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_REJECTED);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(f), 0);
  ck_assert_str_eq(eddy_future_message(f), "peer left after 12 bytes");
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert_uint_eq(eddy_future_size(f), 0);
  eddy_future_unref(f);

  f = eddy_future_new(L);
  ck_assert_int_eq(eddy_future_reject(f, -ECONNREFUSED, NULL), 0);
  ck_assert_str_eq(eddy_future_message(f), eddy_strerror(-ECONNREFUSED));
  eddy_future_unref(f);

  f = eddy_future_new(L);
  ck_assert_int_eq(eddy_future_reject_cause(f, EDDY_ECLOSED, -ECONNRESET, NULL), 0);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(f), -ECONNRESET);
  {
    char want[256];

    snprintf(want, sizeof want, "%s: %s", eddy_strerror(EDDY_ECLOSED),
             eddy_strerror(-ECONNRESET));
    ck_assert_str_eq(eddy_future_message(f), want);
    ck_assert_str_eq(eddy_future_message(f),
                     "stream closed: Connection reset by peer");
  }
  eddy_future_unref(f);

  f = eddy_future_new(L);
  ck_assert_int_eq(eddy_future_reject_cause(f, EDDY_ETLS, -EPROTO, "bad record %s", "mac"), 0);
  ck_assert_str_eq(eddy_future_message(f), "bad record mac");
  ck_assert_int_eq(eddy_future_cause(f), -EPROTO);
  eddy_future_unref(f);

  f = eddy_future_rejected(L, EDDY_ETIMEOUT, "after %.1f s", 1.5);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ETIMEOUT);
  ck_assert_str_eq(eddy_future_message(f), "after 1.5 s");
  eddy_future_unref(f);

  /* A non-negative code is a usage error, reported as such. */
  f = eddy_future_rejected(L, 0, NULL);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);

  f = eddy_future_new(L);
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECANCELLED);
  ck_assert_str_eq(eddy_future_message(f), eddy_strerror(EDDY_ECANCELLED));
  eddy_future_unref(f);
}
END_TEST

START_TEST(test_settle_as)
{
  eddy_future_t *from = eddy_future_new(L), *to = eddy_future_new(L);
  int *v = new_int(5);

  ck_assert_int_eq(eddy_future_settle_as(to, from), EDDY_EPENDING);
  ck_assert_int_eq(eddy_future_resolve_bytes(from, v, 4, counted_free), 0);
  ck_assert_int_eq(eddy_future_settle_as(to, from), 0);
  ck_assert_int_eq(eddy_future_settle_as(to, from), EDDY_ESETTLED);
  /* Shared, not copied. */
  ck_assert_ptr_eq(eddy_future_value(to), v);
  ck_assert_uint_eq(eddy_future_size(to), 4);
  eddy_future_unref(from); /* `to` keeps the value alive */
  ck_assert_int_eq(nfreed, 0);
  ck_assert_int_eq(int_of(to), 5);
  eddy_future_unref(to);
  ck_assert_int_eq(nfreed, 1);

  from = eddy_future_new(L);
  to = eddy_future_new(L);
  eddy_future_reject_cause(from, EDDY_ECLOSED, -EPIPE, "gone");
  ck_assert_int_eq(eddy_future_settle_as(to, from), 0);
  ck_assert_int_eq(eddy_future_state(to), EDDY_FUTURE_REJECTED);
  ck_assert_int_eq(eddy_future_error(to), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(to), -EPIPE);
  ck_assert_str_eq(eddy_future_message(to), "gone");
  eddy_future_unref(from);
  eddy_future_unref(to);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Scheduling                                                                */
/* ------------------------------------------------------------------------ */

static int flag;

static eddy_future_t *see_flag(eddy_future_t *settled, void *arg)
{
  *(int *)arg = flag;
  return EDDY_NO_VALUE;
}

static void see_flag_done(eddy_future_t *f, void *arg)
{
  *(int *)arg = flag;
}

START_TEST(test_never_inline)
{
  int a = -1, b = -1, c = -1, d = -1;
  eddy_future_t *p = eddy_future_new(L), *q = eddy_future_new(L);
  eddy_future_t *fa, *fb, *fd;

  /* On an already settled future... */
  fa = eddy_then(eddy_future_resolved(L, NULL, NULL), see_flag, &a);
  /* ...on one settled after registering... */
  fb = eddy_then(eddy_future_ref(p), see_flag, &b);
  ck_assert_int_eq(eddy_future_add_done(p, see_flag_done, &c), 0);
  ck_assert_int_eq(eddy_future_resolve(p, NULL, NULL), 0);
  /* ...and on one cancelled. */
  fd = eddy_catch(eddy_future_ref(q), see_flag, &d);
  ck_assert_int_eq(eddy_future_cancel(q), 0);
  ck_assert_int_eq(a, -1);
  ck_assert_int_eq(b, -1);
  ck_assert_int_eq(c, -1);
  ck_assert_int_eq(d, -1);
  flag = 1; /* set after registering: every callback must see it */
  run(fa);
  run(fb);
  run(fd);
  ck_assert_int_eq(a, 1);
  ck_assert_int_eq(b, 1);
  ck_assert_int_eq(c, 1);
  ck_assert_int_eq(d, 1);
  eddy_future_unref(fa);
  eddy_future_unref(fb);
  eddy_future_unref(fd);
  eddy_future_unref(p);
  eddy_future_unref(q);
}
END_TEST

START_TEST(test_callback_order)
{
  eddy_future_t *p = eddy_future_new(L), *q = eddy_future_new(L), *last;

  eddy_future_unref(eddy_then(eddy_future_ref(p), note_then, &labels[0]));
  ck_assert_int_eq(eddy_future_add_done(p, note_done, &labels[1]), 0);
  eddy_future_unref(eddy_then(eddy_future_ref(q), note_then, &labels[2]));
  eddy_future_unref(eddy_finally(eddy_future_ref(p), note_finally, &labels[3]));
  /* q settles first, so its callback runs first; p's run in the order
   * they were registered, whatever their kind. */
  eddy_future_resolve(q, NULL, NULL);
  eddy_future_resolve(p, NULL, NULL);
  /* Registered on a settled future: queued behind, never inline. */
  eddy_future_unref(eddy_then(eddy_future_ref(p), note_then, &labels[4]));
  last = eddy_then(eddy_future_ref(q), note_then, &labels[5]);
  run(last);
  ck_assert_str_eq(order, "CABDEF");
  eddy_future_unref(last);
  eddy_future_unref(p);
  eddy_future_unref(q);
}
END_TEST

START_TEST(test_settled_registration_order)
{
  eddy_future_t *r = eddy_future_resolved(L, NULL, NULL), *last;

  eddy_future_unref(eddy_then(eddy_future_ref(r), note_then, &labels[0]));
  ck_assert_int_eq(eddy_future_add_done(r, note_done, &labels[1]), 0);
  eddy_future_unref(eddy_catch(eddy_future_ref(r), note_then, &labels[7])); /* skipped */
  eddy_future_unref(eddy_then_ok(eddy_future_ref(r), note_then, &labels[2]));
  last = eddy_finally(r, note_finally, &labels[3]);
  run(last);
  ck_assert_str_eq(order, "ABCD");
  eddy_future_unref(last);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Chaining                                                                  */
/* ------------------------------------------------------------------------ */

static int ncalls;

static eddy_future_t *count_then(eddy_future_t *settled, void *arg)
{
  ncalls++;
  return eddy_future_ref(settled);
}

static eddy_future_t *recover(eddy_future_t *settled, void *arg)
{
  ck_assert_int_eq(eddy_future_state(settled), EDDY_FUTURE_REJECTED);
  ck_assert_int_eq(eddy_future_error(settled), EDDY_ECLOSED);
  ck_assert_str_eq(eddy_future_message(settled), "boom");
  note('R');
  return eddy_future_resolved(eddy_future_loop(settled), new_int(7), counted_free);
}

static eddy_future_t *expect_seven(eddy_future_t *settled, void *arg)
{
  ck_assert_int_eq(int_of(settled), 7);
  note('7');
  return eddy_future_ref(settled);
}

START_TEST(test_error_skips_to_catch)
{
  eddy_future_t *f;

  f = eddy_then_ok(eddy_future_rejected(L, EDDY_ECLOSED, "boom"), count_then, NULL);
  f = eddy_then_ok(f, count_then, NULL);
  f = eddy_then_ok(f, count_then, NULL);
  f = eddy_catch(f, recover, NULL);
  f = eddy_then_ok(f, expect_seven, NULL);
  f = eddy_catch(f, never_called, NULL);
  run(f);
  ck_assert_int_eq(ncalls, 0);
  ck_assert_str_eq(order, "R7");
  ck_assert_int_eq(int_of(f), 7);
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

/* What a then-callback returns when its own allocation failed. */
static eddy_future_t *out_of_memory_then(eddy_future_t *settled, void *arg)
{
  ncalls++;
  return NULL;
}

static eddy_future_t *see_enomem(eddy_future_t *settled, void *arg)
{
  ck_assert_int_eq(eddy_future_error(settled), -ENOMEM);
  note('M');
  return EDDY_NO_VALUE;
}

START_TEST(test_null_from_callback_is_enomem)
{
  eddy_future_t *f;

  /* NULL is never "done": the chain is rejected and the steps after it
   * are skipped, down to the first catch. */
  f = eddy_then_ok(eddy_future_resolved(L, NULL, NULL), out_of_memory_then, NULL);
  f = eddy_then_ok(f, never_called, NULL);
  run(f);
  ck_assert_int_eq(ncalls, 1);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_REJECTED);
  ck_assert_int_eq(eddy_future_error(f), -ENOMEM);
  eddy_future_unref(f);

  f = eddy_then(eddy_future_resolved(L, NULL, NULL), out_of_memory_then, NULL);
  f = eddy_catch(f, see_enomem, NULL);
  f = eddy_then_ok(f, note_then, labels);
  run(f);
  ck_assert_str_eq(order, "MA");
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(f);

  /* EDDY_NO_VALUE is done-with-nothing, and a marker the reference calls
   * ignore. */
  ck_assert_ptr_eq(eddy_future_ref(EDDY_NO_VALUE), EDDY_NO_VALUE);
  eddy_future_unref(EDDY_NO_VALUE);
  f = eddy_then(eddy_future_resolved(L, "x", NULL), note_then, labels + 1);
  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert_uint_eq(eddy_future_size(f), 0);
  eddy_future_unref(f);
  ck_assert_str_eq(order, "MAB");
}
END_TEST

START_TEST(test_error_reaches_end)
{
  eddy_future_t *f;

  f = eddy_then_ok(eddy_future_resolved(L, NULL, NULL), count_then, NULL);
  f = eddy_then_ok(f, count_then, NULL);
  f = eddy_then(f, note_then, labels);     /* resolves with no value */
  f = eddy_then_ok(f, count_then, NULL);
  run(f);
  ck_assert_int_eq(ncalls, 3);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_null(eddy_future_value(f));
  eddy_future_unref(f);

  /* Message and cause travel with the error. */
  f = eddy_future_new(L);
  eddy_future_reject_cause(f, EDDY_ECLOSED, -ECONNRESET, NULL);
  f = eddy_then_ok(eddy_then_ok(f, never_called, NULL), never_called, NULL);
  f = eddy_finally(f, note_finally, labels);
  run(f);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(f), -ECONNRESET);
  ck_assert_str_eq(eddy_future_message(f), "stream closed: Connection reset by peer");
  eddy_future_unref(f);
}
END_TEST

START_TEST(test_catch_passes_success)
{
  int *v = new_int(9);
  eddy_future_t *f = eddy_catch(eddy_future_resolved(L, v, counted_free),
                                never_called, NULL);

  run(f);
  ck_assert_ptr_eq(eddy_future_value(f), v); /* the same value, shared */
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

START_TEST(test_finally)
{
  int *v = new_int(4);
  eddy_future_t *a = eddy_finally(eddy_future_resolved(L, v, counted_free),
                                  note_finally, &labels[0]);
  eddy_future_t *b = eddy_finally(eddy_future_rejected(L, EDDY_ETIMEOUT, "t"),
                                  note_finally, &labels[1]);
  eddy_future_t *c = eddy_future_new(L);
  eddy_future_t *d = eddy_finally(eddy_future_ref(c), note_finally, &labels[2]);

  eddy_future_cancel(c);
  run(a);
  run(b);
  run(d);
  ck_assert_str_eq(order, "ABC");
  ck_assert_ptr_eq(eddy_future_value(a), v);
  ck_assert_int_eq(eddy_future_error(b), EDDY_ETIMEOUT);
  ck_assert_str_eq(eddy_future_message(b), "t");
  ck_assert_int_eq(eddy_future_state(d), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(a);
  eddy_future_unref(b);
  eddy_future_unref(c);
  eddy_future_unref(d);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

static void done_reads(eddy_future_t *f, void *arg)
{
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(int_of(f), 42);
  ++*(int *)arg;
}

START_TEST(test_add_done)
{
  int runs = 0;
  eddy_future_t *f = pending_42(), *g;

  ck_assert_int_eq(eddy_future_add_done(f, done_reads, &runs), 0);
  ck_assert_int_eq(eddy_future_add_done(f, done_reads, &runs), 0);
  ck_assert_int_eq(eddy_future_add_done(f, NULL, &runs), EDDY_EUSAGE);
  g = eddy_then(eddy_future_ref(f), NULL, NULL); /* to wait on */
  /* The callback keeps its own reference: dropping ours is fine. */
  eddy_future_unref(f);
  run(g);
  ck_assert_int_eq(runs, 2);
  eddy_future_unref(g);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

START_TEST(test_drop_chain_still_runs)
{
  eddy_future_t *p = eddy_future_new(L);

  /* Fire and forget: nobody holds the chained futures. */
  eddy_future_unref(eddy_then(eddy_then(eddy_future_ref(p), note_then, &labels[0]),
                              note_then, &labels[1]));
  eddy_future_resolve(p, NULL, NULL);
  eddy_future_unref(p);
  drain();
  ck_assert_str_eq(order, "AB");
}
END_TEST

static eddy_future_t *self_slot;

static eddy_future_t *return_self(eddy_future_t *settled, void *arg)
{
  return eddy_future_ref(self_slot);
}

START_TEST(test_then_returns_own_future)
{
  eddy_future_t *d = eddy_then(eddy_future_resolved(L, NULL, NULL), return_self, NULL);

  self_slot = d;
  run(d);
  ck_assert_int_eq(eddy_future_error(d), EDDY_EUSAGE);
  eddy_future_unref(d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Adoption                                                                  */
/* ------------------------------------------------------------------------ */

static eddy_future_t *inner; /* the adopted future, kept to compare */

static eddy_future_t *adopt_pending(eddy_future_t *settled, void *arg)
{
  inner = pending_42();
  return eddy_future_ref(inner);
}

START_TEST(test_adopt_pending)
{
  eddy_future_t *d = eddy_then(eddy_future_resolved(L, NULL, NULL), adopt_pending, NULL);
  int *v;

  run(d);
  ck_assert_int_eq(eddy_future_state(d), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(int_of(d), 42);
  /* Shared: d reads through the inner future, and taking from d takes
   * the inner future's value. */
  ck_assert_ptr_eq(eddy_future_value(d), eddy_future_value(inner));
  v = eddy_future_take(d, NULL);
  ck_assert_int_eq(*v, 42);
  ck_assert_ptr_null(eddy_future_value(inner));
  ck_assert_ptr_null(eddy_future_value(d));
  eddy_future_unref(inner);
  eddy_future_unref(d);
  ck_assert_int_eq(nfreed, 0);
  counted_free(v);
}
END_TEST

static eddy_future_t *adopt_rejected(eddy_future_t *settled, void *arg)
{
  return eddy_future_rejected(L, EDDY_ENONAME, "no such host: %s", "x.invalid");
}

static eddy_future_t *adopt_resolved(eddy_future_t *settled, void *arg)
{
  return eddy_future_resolved(L, new_int(11), counted_free);
}

START_TEST(test_adopt_settled)
{
  eddy_future_t *a = eddy_then(eddy_future_resolved(L, NULL, NULL), adopt_rejected, NULL);
  eddy_future_t *b = eddy_then(eddy_future_resolved(L, NULL, NULL), adopt_resolved, NULL);

  run(a);
  run(b);
  ck_assert_int_eq(eddy_future_error(a), EDDY_ENONAME);
  ck_assert_str_eq(eddy_future_message(a), "no such host: x.invalid");
  ck_assert_int_eq(int_of(b), 11);
  eddy_future_unref(a);
  eddy_future_unref(b);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

/* Three levels: each callback returns a chain whose own callback returns
 * a pending future. */
static eddy_future_t *level3(eddy_future_t *settled, void *arg)
{
  note('3');
  ck_assert_int_eq(int_of(settled), 42);
  return eddy_future_resolved(L, new_int(int_of(settled) + 1), counted_free);
}

static eddy_future_t *level2(eddy_future_t *settled, void *arg)
{
  note('2');
  return eddy_then_ok(pending_42(), level3, NULL);
}

static eddy_future_t *level1(eddy_future_t *settled, void *arg)
{
  note('1');
  return eddy_then(eddy_then_ok(pending_42(), level2, NULL), count_then, NULL);
}

START_TEST(test_adopt_nested)
{
  eddy_future_t *d = eddy_then_ok(pending_42(), level1, NULL);

  run(d);
  ck_assert_str_eq(order, "123");
  ck_assert_int_eq(ncalls, 1);
  ck_assert_int_eq(int_of(d), 43);
  eddy_future_unref(d);
  ck_assert_int_eq(nfreed, 4); /* three 42s and the 43 */
}
END_TEST

/* Passing a value through many steps shares one value: freed once. */
START_TEST(test_pass_through_shares_value)
{
  int *v = new_int(1);
  eddy_future_t *src = eddy_future_new(L), *f = eddy_future_ref(src);
  int i;

  for (i = 0; i < 50; i++)
    f = (i % 2) ? eddy_then(f, count_then, NULL) : eddy_finally(f, note_finally, labels);
  eddy_future_resolve(src, v, counted_free);
  eddy_future_unref(src);
  run(f);
  ck_assert_ptr_eq(eddy_future_value(f), v);
  ck_assert_int_eq(ncalls, 25);
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Cancellation                                                              */
/* ------------------------------------------------------------------------ */

static eddy_future_t *expect_cancelled(eddy_future_t *settled, void *arg)
{
  ck_assert_int_eq(eddy_future_state(settled), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(eddy_future_error(settled), EDDY_ECANCELLED);
  note(*(char *)arg);
  return EDDY_NO_VALUE;
}

START_TEST(test_cancel_travels_up)
{
  int source_hook = 0, tail_hook = 0;
  eddy_future_t *src = eddy_future_new(L), *tail, *watch;

  eddy_future_on_cancel(src, count_hook, &source_hook);
  tail = eddy_then_ok(eddy_then(eddy_future_ref(src), never_called, NULL),
                      never_called, NULL);
  eddy_future_on_cancel(tail, count_hook, &tail_hook);
  watch = eddy_catch(eddy_future_ref(tail), expect_cancelled, &labels[0]);
  ck_assert_int_eq(eddy_future_cancel(tail), 0);
  /* At once: hooks ran and the whole chain up to the source settled. */
  ck_assert_int_eq(source_hook, 1);
  ck_assert_int_eq(tail_hook, 1);
  ck_assert_int_eq(eddy_future_state(src), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(eddy_future_state(tail), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(eddy_future_cancel(tail), EDDY_ESETTLED);
  ck_assert_int_eq(eddy_future_cancel(src), EDDY_ESETTLED);
  ck_assert_str_eq(order, ""); /* callbacks only queued */
  run(watch);
  ck_assert_str_eq(order, "A");
  ck_assert_int_eq(hooks, 2);
  /* The producer settling late is harmless. */
  ck_assert_int_eq(eddy_future_resolve(src, NULL, NULL), EDDY_ESETTLED);
  eddy_future_unref(watch);
  eddy_future_unref(tail);
  eddy_future_unref(src);
}
END_TEST

START_TEST(test_cancel_travels_down)
{
  eddy_future_t *src = eddy_future_new(L);
  eddy_future_t *a = eddy_then(eddy_future_ref(src), expect_cancelled, &labels[0]);
  eddy_future_t *b = eddy_then_ok(eddy_future_ref(src), never_called, NULL);
  eddy_future_t *c = eddy_catch(eddy_future_ref(src), expect_cancelled, &labels[1]);
  eddy_future_t *d = eddy_then_ok(eddy_then_ok(eddy_future_ref(b), never_called, NULL),
                                  never_called, NULL);

  ck_assert_int_eq(eddy_future_cancel(src), 0);
  run(a);
  run(b);
  run(c);
  run(d);
  ck_assert_str_eq(order, "AB");
  ck_assert_int_eq(eddy_future_state(a), EDDY_FUTURE_RESOLVED); /* fn returned NULL */
  ck_assert_int_eq(eddy_future_state(b), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(eddy_future_error(d), EDDY_ECANCELLED);
  ck_assert_int_eq(eddy_future_state(c), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(a);
  eddy_future_unref(b);
  eddy_future_unref(c);
  eddy_future_unref(d);
  eddy_future_unref(src);
}
END_TEST

static eddy_future_t *adopt_hooked(eddy_future_t *settled, void *arg)
{
  inner = eddy_future_new(L); /* never settled by anyone but cancel */
  eddy_future_on_cancel(inner, count_hook, NULL);
  return eddy_future_ref(inner);
}

START_TEST(test_cancel_adopted)
{
  eddy_future_t *d = eddy_then(eddy_future_resolved(L, NULL, NULL), adopt_hooked, NULL);

  drain(); /* the callback has run: d now adopts `inner` */
  ck_assert_ptr_nonnull(inner);
  ck_assert(!eddy_future_done(d));
  ck_assert_int_eq(eddy_future_cancel(d), 0);
  ck_assert_int_eq(hooks, 1);
  ck_assert_int_eq(eddy_future_state(inner), EDDY_FUTURE_CANCELLED);
  drain();
  eddy_future_unref(inner);
  eddy_future_unref(d);
}
END_TEST

START_TEST(test_on_cancel_replace_remove)
{
  int first = 0, second = 0;
  eddy_future_t *f = eddy_future_new(L);

  eddy_future_on_cancel(f, count_hook, &first);
  eddy_future_on_cancel(f, count_hook, &second); /* replaces */
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  ck_assert_int_eq(first, 0);
  ck_assert_int_eq(second, 1);
  eddy_future_unref(f);

  f = eddy_future_new(L);
  eddy_future_on_cancel(f, count_hook, &first);
  eddy_future_on_cancel(f, NULL, NULL); /* removes */
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  ck_assert_int_eq(first, 0);
  eddy_future_unref(f);

  /* Not called when the future settles normally. */
  f = eddy_future_new(L);
  eddy_future_on_cancel(f, count_hook, &first);
  eddy_future_resolve(f, NULL, NULL);
  ck_assert_int_eq(eddy_future_cancel(f), EDDY_ESETTLED);
  ck_assert_int_eq(first, 0);
  eddy_future_unref(f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Combinators                                                               */
/* ------------------------------------------------------------------------ */

static eddy_future_t *hooked(void)
{
  eddy_future_t *f = eddy_future_new(L);

  eddy_future_on_cancel(f, count_hook, NULL);
  return f;
}

START_TEST(test_all)
{
  eddy_future_t *in[3], *r, **arr;

  in[0] = eddy_future_resolved(L, new_int(1), counted_free);
  in[1] = pending_42();
  in[2] = eddy_then_ok(pending_42(), adopt_resolved, NULL);
  r = eddy_all(L, in, 3);
  ck_assert(!eddy_future_done(r));
  run(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(r), 3);
  arr = eddy_future_value(r);
  ck_assert_ptr_eq(arr[0], in[0]); /* the inputs, in input order */
  ck_assert_ptr_eq(arr[1], in[1]);
  ck_assert_ptr_eq(arr[2], in[2]);
  ck_assert_ptr_null(arr[3]);      /* NULL-terminated as well */
  ck_assert_int_eq(int_of(arr[0]), 1);
  ck_assert_int_eq(int_of(arr[1]), 42);
  ck_assert_int_eq(int_of(arr[2]), 11);
  eddy_future_unref(r); /* owns the inputs: everything goes */
  ck_assert_int_eq(nfreed, 4);
}
END_TEST

START_TEST(test_all_empty)
{
  eddy_future_t *r = eddy_all(L, NULL, 0), *s = eddy_all_settled(L, NULL, 0);

  /* At once, no loop turn needed. */
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(r), 0);
  ck_assert_ptr_nonnull(eddy_future_value(r));
  ck_assert_int_eq(eddy_future_state(s), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(s), 0);
  eddy_future_unref(r);
  eddy_future_unref(s);
}
END_TEST

START_TEST(test_all_fail_fast)
{
  eddy_future_t *in[4], *keep, *r;

  in[0] = hooked();
  in[1] = eddy_future_new(L);
  keep = eddy_future_ref(in[1]);
  in[2] = hooked();
  in[3] = eddy_future_resolved(L, new_int(1), counted_free);
  r = eddy_all(L, in, 4);
  ck_assert_int_eq(eddy_loop_call_soon(L, reject_closed, eddy_future_ref(keep)), 0);
  run(r);
  /* The first failure, at once; the pending others are cancelled. */
  ck_assert_int_eq(eddy_future_error(r), EDDY_ECLOSED);
  ck_assert_str_eq(eddy_future_message(r), "late");
  ck_assert_int_eq(hooks, 2);
  eddy_future_unref(keep);
  eddy_future_unref(r);
  drain();
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

START_TEST(test_all_settled)
{
  eddy_future_t *in[4], *r, **arr;

  in[0] = eddy_future_rejected(L, EDDY_ETIMEOUT, NULL);
  in[1] = pending_42();
  in[2] = eddy_future_new(L);
  eddy_future_cancel(in[2]);
  in[3] = eddy_future_new(L);
  ck_assert_int_eq(eddy_loop_call_soon(L, reject_closed, eddy_future_ref(in[3])), 0);
  r = eddy_all_settled(L, in, 4);
  run(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(r), 4);
  arr = eddy_future_value(r);
  ck_assert_int_eq(eddy_future_error(arr[0]), EDDY_ETIMEOUT);
  ck_assert_int_eq(int_of(arr[1]), 42);
  ck_assert_int_eq(eddy_future_state(arr[2]), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(eddy_future_error(arr[3]), EDDY_ECLOSED);
  eddy_future_unref(r);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

START_TEST(test_any)
{
  eddy_future_t *in[3], *r;

  in[0] = eddy_future_rejected(L, EDDY_ETIMEOUT, NULL);
  in[1] = hooked();
  in[2] = pending_42();
  r = eddy_any(L, in, 3);
  run(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(int_of(r), 42); /* shared with the winner */
  ck_assert_int_eq(hooks, 1);      /* the loser was cancelled */
  eddy_future_unref(r);
  drain();
  ck_assert_int_eq(nfreed, 1);

  /* All fail: the error of the last one to fail. */
  in[0] = eddy_future_new(L);
  ck_assert_int_eq(eddy_loop_call_soon(L, reject_closed, eddy_future_ref(in[0])), 0);
  in[1] = eddy_future_rejected(L, EDDY_ETIMEOUT, NULL);
  r = eddy_any(L, in, 2);
  run(r);
  ck_assert_int_eq(eddy_future_error(r), EDDY_ECLOSED);
  eddy_future_unref(r);

  r = eddy_any(L, NULL, 0);
  ck_assert_int_eq(eddy_future_error(r), EDDY_EUSAGE);
  eddy_future_unref(r);
}
END_TEST

START_TEST(test_race)
{
  eddy_future_t *in[3], *r;

  in[0] = hooked();
  in[1] = eddy_future_new(L);
  ck_assert_int_eq(eddy_loop_call_soon(L, reject_closed, eddy_future_ref(in[1])), 0);
  in[2] = hooked();
  r = eddy_race(L, in, 3);
  run(r);
  /* The first to settle, even by failing; the rest are cancelled. */
  ck_assert_int_eq(eddy_future_error(r), EDDY_ECLOSED);
  ck_assert_int_eq(hooks, 2);
  eddy_future_unref(r);

  in[0] = hooked();
  in[1] = eddy_future_resolved(L, new_int(5), counted_free);
  r = eddy_race(L, in, 2);
  run(r);
  ck_assert_int_eq(int_of(r), 5);
  ck_assert_int_eq(hooks, 3);
  eddy_future_unref(r);
  drain();
  ck_assert_int_eq(nfreed, 1);

  r = eddy_race(L, NULL, 0);
  ck_assert_int_eq(eddy_future_error(r), EDDY_EUSAGE);
  eddy_future_unref(r);
}
END_TEST

START_TEST(test_combinator_cancel)
{
  eddy_future_t *in[3], *r;

  in[0] = hooked();
  in[1] = hooked();
  in[2] = eddy_future_resolved(L, new_int(1), counted_free);
  r = eddy_all(L, in, 3);
  ck_assert_int_eq(eddy_future_cancel(r), 0);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(hooks, 2);
  eddy_future_unref(r);
  drain();
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

START_TEST(test_combinator_null_input)
{
  eddy_future_t *in[2];

  /* A NULL input: NULL result, and the other inputs are still consumed. */
  in[0] = eddy_future_resolved(L, new_int(1), counted_free);
  in[1] = NULL;
  ck_assert_ptr_null(eddy_all(L, in, 2));
  ck_assert_int_eq(nfreed, 1);
  in[0] = eddy_future_resolved(L, new_int(1), counted_free);
  ck_assert_ptr_null(eddy_any(NULL, in, 1));
  ck_assert_int_eq(nfreed, 2);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Timers: with_timeout and sleep                                            */
/* ------------------------------------------------------------------------ */

/* Runs the loop for about @seconds, to show nothing fires late. */
static void idle(double seconds)
{
  eddy_future_t *s = eddy_sleep(L, seconds);

  run(s);
  eddy_future_unref(s);
}

START_TEST(test_with_timeout_in_time)
{
  eddy_future_t *r = eddy_with_timeout(pending_42(), 5.0);

  run(r);
  ck_assert_int_eq(int_of(r), 42);
  eddy_future_unref(r);
  idle(0.01);
  ck_assert_int_eq(nfreed, 1);

  r = eddy_with_timeout(eddy_future_rejected(L, EDDY_ECLOSED, "x"), 5.0);
  run(r);
  ck_assert_int_eq(eddy_future_error(r), EDDY_ECLOSED);
  eddy_future_unref(r);
}
END_TEST

START_TEST(test_with_timeout_expires)
{
  eddy_future_t *f = hooked();
  eddy_future_t *r = eddy_with_timeout(eddy_future_ref(f), 0.02);
  double t0 = eddy_loop_time(L);

  run(r);
  ck_assert_int_eq(eddy_future_error(r), EDDY_ETIMEOUT);
  ck_assert_double_ge(eddy_loop_time(L) - t0, 0.019);
  /* The interrupt reached the operation. */
  ck_assert_int_eq(hooks, 1);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(f);
  eddy_future_unref(r);
  drain();
}
END_TEST

START_TEST(test_with_timeout_cancelled)
{
  eddy_future_t *f = hooked();
  eddy_future_t *r = eddy_with_timeout(eddy_future_ref(f), 0.01);

  ck_assert_int_eq(eddy_future_cancel(r), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(hooks, 1);
  eddy_future_unref(r);
  eddy_future_unref(f);
  idle(0.03); /* the timer was stopped: nothing fires */

  /* A future settled by hand before either side: timer still cleaned up. */
  f = eddy_future_new(L);
  r = eddy_with_timeout(eddy_future_ref(f), 0.01);
  ck_assert_int_eq(eddy_future_resolve(r, NULL, NULL), 0);
  idle(0.03);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_PENDING);
  eddy_future_resolve(f, NULL, NULL);
  eddy_future_unref(f);
  eddy_future_unref(r);
  drain();
}
END_TEST

START_TEST(test_sleep)
{
  eddy_future_t *s;
  double t0;

  eddy_loop_update_time(L);
  t0 = eddy_loop_time(L);
  s = eddy_sleep(L, 0.02);
  ck_assert(!eddy_future_done(s));
  run(s);
  ck_assert_int_eq(eddy_future_state(s), EDDY_FUTURE_RESOLVED);
  ck_assert_double_ge(eddy_loop_time(L) - t0, 0.019);
  eddy_future_unref(s);

  s = eddy_sleep(L, 0.01);
  ck_assert_int_eq(eddy_future_cancel(s), 0);
  ck_assert_int_eq(eddy_future_state(s), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(s);
  idle(0.03);

  /* Dropped before it fires: the timer still holds it, then frees it. */
  eddy_future_unref(eddy_sleep(L, 0.005));
  idle(0.02);
}
END_TEST

/* Told of its sleep's cancellation, it sleeps again: the loop, going
 * away, must release that one too. */
static eddy_future_t *sleep_again(eddy_future_t *settled, void *arg)
{
  ck_assert_int_eq(eddy_future_state(settled), EDDY_FUTURE_CANCELLED);
  note(*(char *)arg);
  return eddy_sleep(eddy_future_loop(settled), 100);
}

static eddy_future_t *sleep_step(void *loop)
{
  return eddy_sleep(loop, 100);
}

/* eddy_loop_free() with sleeps and timeouts pending, every reference
 * dropped: the futures their timers hold are cancelled (chains hear of
 * it) or, settled by hand, released. Nothing may leak: the frees counted
 * here, LeakSanitizer in the sanitizer build and make check-valgrind see
 * to the rest (a dropped pending sleep used to leak 104 bytes). */
START_TEST(test_free_loop_with_pending_timers)
{
  eddy_future_t *f;

  nfreed = 0;
  norder = 0;
  eddy_future_unref(eddy_sleep(L, 100));
  eddy_future_unref(eddy_then(eddy_sleep(L, 100), expect_cancelled, &labels[0]));
  f = eddy_sleep(L, 100);
  eddy_future_resolve(f, new_int(1), counted_free);
  eddy_future_unref(f);
  /* A promise nobody will settle, under a timeout. */
  eddy_future_unref(eddy_finally(eddy_with_timeout(eddy_future_new(L), 100),
                                 note_finally, &labels[1]));
  f = eddy_with_timeout(eddy_future_new(L), 100);
  eddy_future_resolve(f, new_int(2), counted_free);
  eddy_future_unref(f);
  eddy_future_unref(eddy_then(eddy_sleep(L, 100), sleep_again, &labels[2]));
  /* A repeat whose step sleeps: the step's cancellation ends it. */
  eddy_future_unref(eddy_finally(eddy_repeat(sleep_step, L), note_finally,
                                 &labels[3]));
  eddy_loop_free(L);
  L = NULL;
  ck_assert_int_eq(nfreed, 2);
  ck_assert_str_eq(order, "ABCD");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* repeat                                                                    */
/* ------------------------------------------------------------------------ */

static int steps;

static eddy_future_t *count_to_ten(void *arg)
{
  if (++steps == 10)
    return eddy_future_stop(L);
  return (steps % 2) ? eddy_future_resolved(L, NULL, NULL) : pending_42();
}

START_TEST(test_repeat_stop)
{
  eddy_future_t *r = eddy_repeat(count_to_ten, NULL);

  ck_assert_int_eq(steps, 1); /* the first step runs at once */
  run(r);
  ck_assert_int_eq(steps, 10);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_null(eddy_future_value(r));
  eddy_future_unref(r);
  ck_assert_int_eq(nfreed, 4); /* each 42 freed once */
}
END_TEST

static eddy_future_t *fail_at_five(void *arg)
{
  if (++steps == 5)
    return eddy_future_rejected(L, EDDY_ECLOSED, "step %d", steps);
  return eddy_future_resolved(L, NULL, NULL);
}

START_TEST(test_repeat_failure)
{
  eddy_future_t *r = eddy_repeat(fail_at_five, NULL);

  run(r);
  ck_assert_int_eq(steps, 5);
  ck_assert_int_eq(eddy_future_error(r), EDDY_ECLOSED);
  ck_assert_str_eq(eddy_future_message(r), "step 5");
  eddy_future_unref(r);
}
END_TEST

static eddy_future_t *hang(void *arg)
{
  steps++;
  return hooked();
}

START_TEST(test_repeat_cancel)
{
  eddy_future_t *r = eddy_repeat(hang, NULL);

  drain();
  ck_assert_int_eq(eddy_future_cancel(r), 0);
  ck_assert_int_eq(hooks, 1); /* the running step was cancelled */
  ck_assert_int_eq(eddy_future_error(r), EDDY_ECANCELLED);
  drain();
  ck_assert_int_eq(steps, 1);
  eddy_future_unref(r);
}
END_TEST

static eddy_future_t *null_later(void *arg)
{
  return ++steps == 1 ? eddy_future_resolved(L, NULL, NULL) : NULL;
}

static eddy_future_t *null_at_once(void *arg)
{
  return NULL;
}

START_TEST(test_repeat_null_step)
{
  eddy_future_t *r;

  ck_assert_ptr_null(eddy_repeat(null_at_once, NULL));
  r = eddy_repeat(null_later, NULL);
  run(r);
  ck_assert_int_eq(eddy_future_error(r), -ENOMEM);
  eddy_future_unref(r);
}
END_TEST

static eddy_future_t *no_value_later(void *arg)
{
  return ++steps == 1 ? eddy_future_resolved(L, NULL, NULL) : EDDY_NO_VALUE;
}

static eddy_future_t *no_value_at_once(void *arg)
{
  return EDDY_NO_VALUE;
}

/* A step must hand back a future; the marker is a usage error, not a
 * silent end and not an ENOMEM. */
START_TEST(test_repeat_no_value_step)
{
  eddy_future_t *r;

  ck_assert_ptr_null(eddy_repeat(no_value_at_once, NULL));
  r = eddy_repeat(no_value_later, NULL);
  run(r);
  ck_assert_int_eq(eddy_future_error(r), EDDY_EUSAGE);
  eddy_future_unref(r);
}
END_TEST

/*
 * A million iterations, alternating steps that return resolved futures and
 * steps whose futures a call_soon callback resolves later. Every step
 * future carries a value whose destructor decrements `live`, and a step
 * future lives no longer than its value, so `live` counts step futures:
 * it must be 0 whenever a step starts (the previous one was released) and
 * never above 1. The frame address of each step shows the stack is flat.
 *
 * The naive alternative, a then-callback that returns
 * eddy_then(next_step(), itself), makes every level's future adopt the
 * next one: all of them stay alive until the last step, so memory grows
 * by one future per iteration (test_naive_recursion_grows measures it).
 */
#define MILLION 1000000L

struct rep_state {
  long n, live, peak;
  uintptr_t lo, hi;
  size_t heap_early, heap_late;
};

static struct rep_state rep;

static void rep_value_free(void *value)
{
  rep.live--;
}

static void rep_resolve(void *arg)
{
  eddy_future_t *f = arg;

  rep.live++;
  eddy_future_resolve(f, &rep, rep_value_free);
  eddy_future_unref(f);
}

static size_t heap_in_use(void)
{
#ifdef __GLIBC__
  return mallinfo2().uordblks;
#else
  return 0;
#endif
}

static void track_stack(uintptr_t *lo, uintptr_t *hi)
{
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);

  if (*lo == 0 || sp < *lo)
    *lo = sp;
  if (sp > *hi)
    *hi = sp;
}

static eddy_future_t *million_step(void *arg)
{
  eddy_future_t *f;

  if (rep.live != 0)
    ck_abort_msg("step %ld started with %ld step futures alive", rep.n, rep.live);
  if (rep.n > 0) /* the first step is called from the test, not the loop */
    track_stack(&rep.lo, &rep.hi);
  if (rep.n == 1000)
    rep.heap_early = heap_in_use();
  if (rep.n == MILLION - 1000)
    rep.heap_late = heap_in_use();
  if (++rep.n == MILLION)
    return eddy_future_stop(L);
  if (rep.n % 2) {
    rep.live++;
    f = eddy_future_resolved(L, &rep, rep_value_free);
  } else {
    f = eddy_future_new(L);
    ck_assert_int_eq(eddy_loop_call_soon(L, rep_resolve, eddy_future_ref(f)), 0);
  }
  if (rep.live > rep.peak)
    rep.peak = rep.live;
  return f;
}

START_TEST(test_repeat_million_bounded)
{
  eddy_future_t *r = eddy_repeat(million_step, NULL);

  run(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(rep.n, MILLION);
  ck_assert_int_eq(rep.live, 0);
  ck_assert_int_le(rep.peak, 1);
  ck_assert_uint_lt(rep.hi - rep.lo, 4096);
  /* Where mallinfo2 sees the heap (not under ASan or valgrind, which
   * report 0), the heap in use must not grow across the run. */
  ck_assert_uint_lt(rep.heap_late, rep.heap_early + 64 * 1024);
  eddy_future_unref(r);
}
END_TEST

/* A loop keeps some freed futures for the next ones, and only some: after
 * 10,000 futures made and dropped at once, the heap holds at most the
 * loop's spares (256 of them, 64 bytes each) more than before, and the
 * next 10,000 reuse them. */
#define BURST 10000

START_TEST(test_freed_futures_kept_bounded)
{
  static eddy_future_t *fs[BURST];
  size_t before = heap_in_use();

  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < BURST; i++) {
      fs[i] = eddy_future_new(L);
      ck_assert_ptr_nonnull(fs[i]);
    }
    for (int i = 0; i < BURST; i++) {
      ck_assert_int_eq(eddy_future_resolve(fs[i], NULL, NULL), 0);
      ck_assert_int_eq(eddy_future_state(fs[i]), EDDY_FUTURE_RESOLVED);
      eddy_future_unref(fs[i]);
    }
    size_t after = heap_in_use();
    ck_assert_msg(after <= before + 256 * 64 + 4096,
                  "round %d: %zu bytes in use after %d futures were dropped, %zu before",
                  round, after, BURST, before);
  }
}
END_TEST

/* The naive recursion, measured: where mallinfo2 works, N levels keep N
 * futures alive at the deepest point; repeat keeps none. */
#define NAIVE_N 100000L

static long naive_left;
static size_t naive_deepest;

static eddy_future_t *naive_step(eddy_future_t *settled, void *arg)
{
  if (--naive_left == 0) {
    naive_deepest = heap_in_use();
    return EDDY_NO_VALUE;
  }
  return eddy_then(eddy_future_resolved(L, NULL, NULL), naive_step, NULL);
}

START_TEST(test_naive_recursion_grows)
{
  size_t before = heap_in_use();
  eddy_future_t *f;

  naive_left = NAIVE_N;
  f = eddy_then(eddy_future_resolved(L, NULL, NULL), naive_step, NULL);
  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  if (before != 0) /* mallinfo2 is blind under ASan and valgrind */
    ck_assert_uint_gt(naive_deepest - before, (size_t)NAIVE_N * 64);
  eddy_future_unref(f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Long chains                                                               */
/* ------------------------------------------------------------------------ */

static long chain_calls;
static uintptr_t chain_lo, chain_hi;

static eddy_future_t *chain_step(eddy_future_t *settled, void *arg)
{
  chain_calls++;
  track_stack(&chain_lo, &chain_hi);
  return eddy_future_ref(settled); /* pass the value on */
}

START_TEST(test_million_step_chain)
{
  int *v = new_int(1);
  eddy_future_t *src = eddy_future_new(L), *f = eddy_future_ref(src);
  long i;

  /* Built iteratively, run by the loop: every hop goes through the FIFO,
   * so the stack is the same for the first and the millionth step. */
  for (i = 0; i < MILLION; i++) {
    f = eddy_then(f, chain_step, NULL);
    ck_assert_ptr_nonnull(f);
  }
  eddy_future_resolve(src, v, counted_free);
  eddy_future_unref(src);
  run(f);
  ck_assert_int_eq(chain_calls, MILLION);
  ck_assert_uint_lt(chain_hi - chain_lo, 4096);
  ck_assert_ptr_eq(eddy_future_value(f), v);
  eddy_future_unref(f);
  ck_assert_int_eq(nfreed, 1);
}
END_TEST

START_TEST(test_million_step_chain_cancel)
{
  int hook_runs = 0;
  eddy_future_t *src = eddy_future_new(L), *f = eddy_future_ref(src);
  long i;

  eddy_future_on_cancel(src, count_hook, &hook_runs);
  for (i = 0; i < MILLION; i++)
    f = eddy_then_ok(f, never_called, NULL);
  /* Cancelling the tail walks up a million futures without recursion. */
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  ck_assert_int_eq(hook_runs, 1);
  ck_assert_int_eq(eddy_future_state(src), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(src);
  eddy_future_unref(f);
  drain();
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *future_suite(void)
{
  Suite *s = suite_create("future");
  TCase *tc;

  tc = new_case(s, "settle", 10);
  tcase_add_test(tc, test_resolve_and_read);
  tcase_add_test(tc, test_settle_twice);
  tcase_add_test(tc, test_null_inputs);
  tcase_add_test(tc, test_null_from_callback_is_enomem);
  tcase_add_test(tc, test_take);
  tcase_add_test(tc, test_refcount_and_destructor);
  tcase_add_test(tc, test_freed_futures_kept_bounded);
  tcase_add_test(tc, test_messages_and_causes);
  tcase_add_test(tc, test_settle_as);

  tc = new_case(s, "schedule", 10);
  tcase_add_test(tc, test_never_inline);
  tcase_add_test(tc, test_callback_order);
  tcase_add_test(tc, test_settled_registration_order);

  tc = new_case(s, "chain", 10);
  tcase_add_test(tc, test_error_skips_to_catch);
  tcase_add_test(tc, test_error_reaches_end);
  tcase_add_test(tc, test_catch_passes_success);
  tcase_add_test(tc, test_finally);
  tcase_add_test(tc, test_add_done);
  tcase_add_test(tc, test_drop_chain_still_runs);
  tcase_add_test(tc, test_then_returns_own_future);

  tc = new_case(s, "adopt", 10);
  tcase_add_test(tc, test_adopt_pending);
  tcase_add_test(tc, test_adopt_settled);
  tcase_add_test(tc, test_adopt_nested);
  tcase_add_test(tc, test_pass_through_shares_value);

  tc = new_case(s, "cancel", 10);
  tcase_add_test(tc, test_cancel_travels_up);
  tcase_add_test(tc, test_cancel_travels_down);
  tcase_add_test(tc, test_cancel_adopted);
  tcase_add_test(tc, test_on_cancel_replace_remove);

  tc = new_case(s, "combinators", 10);
  tcase_add_test(tc, test_all);
  tcase_add_test(tc, test_all_empty);
  tcase_add_test(tc, test_all_fail_fast);
  tcase_add_test(tc, test_all_settled);
  tcase_add_test(tc, test_any);
  tcase_add_test(tc, test_race);
  tcase_add_test(tc, test_combinator_cancel);
  tcase_add_test(tc, test_combinator_null_input);

  tc = new_case(s, "timers", 10);
  tcase_add_test(tc, test_with_timeout_in_time);
  tcase_add_test(tc, test_with_timeout_expires);
  tcase_add_test(tc, test_with_timeout_cancelled);
  tcase_add_test(tc, test_sleep);
  tcase_add_test(tc, test_free_loop_with_pending_timers);

  tc = new_case(s, "repeat", 10);
  tcase_add_test(tc, test_repeat_stop);
  tcase_add_test(tc, test_repeat_failure);
  tcase_add_test(tc, test_repeat_cancel);
  tcase_add_test(tc, test_repeat_null_step);
  tcase_add_test(tc, test_repeat_no_value_step);

  /* Big ones: seconds natively, minutes under valgrind. */
  tc = new_case(s, "scale", 120);
  tcase_add_test(tc, test_repeat_million_bounded);
  tcase_add_test(tc, test_naive_recursion_grows);
  tcase_add_test(tc, test_million_step_chain);
  tcase_add_test(tc, test_million_step_chain_cancel);
  return s;
}

int main(void)
{
  return test_run_suite(future_suite());
}
