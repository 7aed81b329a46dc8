/* SPDX-License-Identifier: MIT */
/*
 * tests/test_ownership.c - every ownership promise of the headers, counted.
 *
 * Where a header says "X is called once the bytes are sent or dropped
 * (even if this call fails)" or "the stream keeps its own reference", these
 * tests count the frees (and references) on every path: success at once,
 * success after queueing, failure at call time, failure after queueing,
 * a close with the write pending, and zero length. A free that never
 * comes is a leak; one that comes twice shows under ASan and valgrind.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "stream_fixtures.h"

#define KiB 1024u

static int frees;

static void counted_free(void *p)
{
  frees++;
  free(p);
}

static void *dup_bytes(const char *s, size_t len)
{
  void *p = malloc(len ? len : 1);
  ck_assert(p != NULL);
  memcpy(p, s, len);
  return p;
}

/* ---- write_take: data_free once the bytes are sent or dropped ---------- */

START_TEST(test_take_sent_at_once)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_UNIX, 0, NULL, 0, &peer);
  frees = 0;
  for (int i = 0; i < 1000; i++) {
    eddy_future_t *w = eddy_stream_write_take(s, dup_bytes("x", 1), 1, counted_free);
    sfx_expect_ok(w);
    char c;
    sfx_raw_read_exact(peer, &c, 1);
  }
  ck_assert_int_eq(frees, 1000);
  close(peer);
}
END_TEST

START_TEST(test_take_zero_length)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_UNIX, 0, NULL, 0, &peer);
  frees = 0;
  for (int i = 0; i < 1000; i++)
    sfx_expect_ok(eddy_stream_write_take(s, dup_bytes("", 0), 0, counted_free));
  ck_assert_int_eq(frees, 1000);
  /* Zero length behind a queued write: freed at once, resolved after it. */
  size_t big = 4u << 20;
  eddy_future_t *w1 = eddy_stream_write(s, NULL, 0);
  char *data = calloc(1, big);
  eddy_future_t *w2 = eddy_stream_write_take(s, data, big, counted_free);
  eddy_future_t *w3 = eddy_stream_write_take(s, dup_bytes("", 0), 0, counted_free);
  ck_assert(!eddy_future_done(w3));
  ck_assert_int_eq(frees, 1001);
  eddy_future_unref(w1);
  eddy_stream_close(s, 0);
  sfx_expect_error(w2, EDDY_ECLOSED, SFX_ANY);
  sfx_expect_error(w3, EDDY_ECLOSED, SFX_ANY);
  ck_assert_int_eq(frees, 1002);
  close(peer);
}
END_TEST

START_TEST(test_take_queued_then_sent)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_UNIX, 0, NULL, 1, &peer);
  frees = 0;
  size_t len = 256 * KiB;
  char *data = malloc(len);
  sfx_pattern_fill(data, len, 0);
  eddy_future_t *w = eddy_stream_write_take(s, data, len, counted_free);
  ck_assert(!eddy_future_done(w));
  ck_assert_int_eq(frees, 0); /* the stream still sends from it */
  char *got = malloc(len);
  size_t n = 0;
  while (n < len) {
    ssize_t r = recv(peer, got + n, len - n, MSG_DONTWAIT);
    if (r > 0)
      n += (size_t)r;
    else
      sfx_run_for(0.005);
  }
  ck_assert(sfx_pattern_check(got, len, 0));
  free(got);
  sfx_expect_ok(w);
  ck_assert_int_eq(frees, 1);
  close(peer);
}
END_TEST

START_TEST(test_take_fails_at_call_time)
{
  int peer;
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.max_write_buffer_size = 16;
  eddy_stream_t *s = sfx_raw_peer(SFX_UNIX, 0, &o, 0, &peer);
  frees = 0;
  /* NULL stream (errno EINVAL, no future), bad arguments, over the limit. */
  errno = 0;
  ck_assert_ptr_null(eddy_stream_write_take(NULL, dup_bytes("x", 1), 1, counted_free));
  ck_assert_int_eq(errno, EINVAL);
  sfx_expect_error(eddy_stream_write_take(s, dup_bytes("x", 1), (size_t)SIZE_MAX, counted_free),
                   EDDY_EUSAGE, SFX_ANY);
  sfx_expect_error(eddy_stream_write_take(s, dup_bytes("0123456789abcdefg", 17), 17,
                                          counted_free),
                   EDDY_EBUFFERFULL, SFX_ANY);
  ck_assert_int_eq(frees, 3);
  /* A closed stream. */
  eddy_stream_close(s, 0);
  sfx_expect_error(eddy_stream_write_take(s, dup_bytes("x", 1), 1, counted_free),
                   EDDY_ECLOSED, SFX_ANY);
  sfx_expect_error(eddy_stream_write_take(s, dup_bytes("", 0), 0, counted_free),
                   EDDY_ECLOSED, SFX_ANY);
  ck_assert_int_eq(frees, 5);
  close(peer);
}
END_TEST

/* Failure after queueing: the peer resets while the write waits. */
START_TEST(test_take_fails_after_queueing)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 0, NULL, 1, &peer);
  frees = 0;
  size_t len = 4u << 20;
  eddy_future_t *w = eddy_stream_write_take(s, calloc(1, len), len, counted_free);
  ck_assert(!eddy_future_done(w));
  sfx_set_linger0(peer);
  close(peer);
  sfx_expect_error(w, EDDY_ECLOSED, SFX_ANY);
  sfx_run_until_closed(s);
  ck_assert_int_eq(frees, 1);
}
END_TEST

/* The last reference goes with a write pending: the stream lives until the
 * write is done, then frees the data once; a close drops it once. */
START_TEST(test_take_pending_at_unref_and_close)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_UNIX, 0, NULL, 1, &peer);
  frees = 0;
  size_t len = 1u << 20;
  eddy_future_t *w1 = eddy_stream_write_take(s, calloc(1, len), len, counted_free);
  eddy_future_t *w2 = eddy_stream_write_take(s, calloc(1, len), len, counted_free);
  ck_assert(!eddy_future_done(w2));
  eddy_stream_close(s, 0);
  sfx_expect_error(w2, EDDY_ECLOSED, SFX_ANY);
  eddy_future_unref(w1);
  ck_assert_int_eq(frees, 2);
  close(peer);
}
END_TEST

/* ---- write_bytes_of: the stream's own reference, until sent ----------- */

static void note_value_free(void *p)
{
  frees++;
  free(p);
}

START_TEST(test_bytes_of_reference)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_UNIX, 0, NULL, 1, &peer);
  frees = 0;
  size_t len = 1u << 20;
  eddy_future_t *src = eddy_future_new(sfx_loop);
  eddy_future_resolve_bytes(src, calloc(1, len), len, note_value_free);
  eddy_future_t *w = eddy_stream_write_bytes_of(s, src);
  eddy_future_unref(src); /* borrowed: ours goes, the stream's stays */
  ck_assert(!eddy_future_done(w));
  ck_assert_int_eq(frees, 0);
  char *buf = malloc(64 * KiB);
  for (size_t n = 0; n < len;) {
    ssize_t r = recv(peer, buf, 64 * KiB, MSG_DONTWAIT);
    if (r > 0)
      n += (size_t)r;
    else
      sfx_run_for(0.005);
  }
  free(buf);
  sfx_expect_ok(w);
  ck_assert_int_eq(frees, 1);
  close(peer);
}
END_TEST

/* ---- eddy_future_resolved: value_free even when it fails --------------- */

START_TEST(test_resolved_value_freed_once)
{
  frees = 0;
  eddy_future_t *f = eddy_future_resolved(sfx_loop, malloc(8), counted_free);
  eddy_future_unref(f);
  ck_assert_int_eq(frees, 1);
  /* A NULL loop makes it fail: the value is still freed. */
  ck_assert_ptr_null(eddy_future_resolved(NULL, malloc(8), counted_free));
  ck_assert_int_eq(frees, 2);
  /* Taken: the caller frees, the future does not. */
  f = eddy_future_resolved(sfx_loop, malloc(8), counted_free);
  void *v = eddy_future_take(f, NULL);
  eddy_future_unref(f);
  ck_assert_int_eq(frees, 2);
  counted_free(v);
  ck_assert_int_eq(frees, 3);
}
END_TEST

static Suite *ownership_suite(void)
{
  Suite *s = suite_create("ownership");
  TCase *tc = tcase_create("write_take");
  sfx_tcase_setup(tc, 30);
  tcase_add_test(tc, test_take_sent_at_once);
  tcase_add_test(tc, test_take_zero_length);
  tcase_add_test(tc, test_take_queued_then_sent);
  tcase_add_test(tc, test_take_fails_at_call_time);
  tcase_add_test(tc, test_take_fails_after_queueing);
  tcase_add_test(tc, test_take_pending_at_unref_and_close);
  suite_add_tcase(s, tc);
  tc = tcase_create("futures");
  sfx_tcase_setup(tc, 30);
  tcase_add_test(tc, test_bytes_of_reference);
  tcase_add_test(tc, test_resolved_value_freed_once);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(ownership_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
