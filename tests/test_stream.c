/* SPDX-License-Identifier: MIT */
/*
 * tests/test_stream.c - behavioural tests for eddy streams.
 *
 * Written from include/eddy/stream.h and the Tornado reference
 * (/work/shared/reference/tornado.md): the iostream_test.py methods that
 * apply to plain TCP streams and pipes (§2.2, numbered as there), the
 * behaviour no Tornado test covers (§2.6), and eddy's own contract.
 *
 * The TestReadWriteMixin tests (8-31) and most eddy-specific read/write
 * tests are loop tests over a table of fixtures: a TCP pair over 127.0.0.1,
 * a pipe, and an AF_UNIX socketpair (_i is the sfx_kind_t).
 *
 * Built twice: tests/test_stream (default backend) and tests/test_stream_poll
 * (EDDY_TEST_BACKEND="poll"). Sizes shrink under valgrind or with
 * EDDY_TEST_SLOW=1 (see sfx_slow()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "eddy/stream.h"
#include "stream_fixtures.h"
#include "test_backend.h"

#define KIND ((sfx_kind_t)_i)
#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static int seq; /* global completion sequence for ordering checks */

typedef struct closed_rec {
  int calls;
  int error;
  int seq;
  eddy_stream_t *stream;
} closed_rec_t;

static void on_close(eddy_stream_t *s, int error, void *arg) {
  closed_rec_t *r = arg;
  r->calls++;
  r->error = error;
  r->seq = ++seq;
  r->stream = s;
}

typedef struct done_rec {
  int calls;
  int seq;
  int error;
} done_rec_t;

static void on_done(eddy_future_t *f, void *arg) {
  done_rec_t *d = arg;
  d->calls++;
  d->seq = ++seq;
  d->error = eddy_future_error(f);
}

/* Accumulates the chunks of a streaming read. */
typedef struct acc {
  char *buf;
  size_t len, cap;
  int calls;
  int empty_calls;
} acc_t;

static void on_chunk(eddy_stream_t *s, const void *data, size_t len,
                     void *arg) {
  (void)s;
  acc_t *a = arg;
  a->calls++;
  if (len == 0) {
    a->empty_calls++;
    return;
  }
  if (a->len + len > a->cap) {
    size_t cap = a->cap ? a->cap : 4096;
    while (cap < a->len + len)
      cap *= 2;
    a->buf = realloc(a->buf, cap);
    ck_assert(a->buf != NULL);
    a->cap = cap;
  }
  memcpy(a->buf + a->len, data, len);
  a->len += len;
}

static eddy_future_t *until(eddy_stream_t *s, int regex, const char *delim,
                            size_t max_bytes) {
  return regex ? eddy_stream_read_until_regex(s, delim, max_bytes)
               : eddy_stream_read_until(s, delim, strlen(delim), max_bytes);
}

static char *pattern_alloc(size_t len, size_t off) {
  char *p = malloc(len + 1);
  ck_assert(p != NULL);
  sfx_pattern_fill(p, len, off);
  p[len] = '\0';
  return p;
}

/* Reads exactly len bytes with read_bytes and checks them against the
 * pattern at offset off. */
static void expect_pattern(eddy_stream_t *s, size_t len, size_t off) {
  eddy_future_t *f = eddy_stream_read_bytes(s, len, 0);
  sfx_wait(f);
  ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED,
                "read of %zu bytes failed: %s (cause %s)", len,
                eddy_err_name(eddy_future_error(f)),
                eddy_err_name(eddy_future_cause(f)));
  ck_assert_uint_eq(eddy_future_size(f), len);
  ck_assert_msg(sfx_pattern_check(eddy_future_value(f), len, off),
                "pattern mismatch in %zu bytes at offset %zu", len, off);
  eddy_future_unref(f);
}

/* Reads with partial reads of at most chunk bytes until total bytes have
 * arrived, checking the pattern from offset 0. */
static void expect_pattern_partial(eddy_stream_t *s, size_t total,
                                   size_t chunk) {
  size_t got = 0;
  while (got < total) {
    size_t want = total - got < chunk ? total - got : chunk;
    eddy_future_t *f = eddy_stream_read_bytes(s, want, 1);
    sfx_wait(f);
    ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED,
                  "partial read failed after %zu bytes: %s (cause %s)", got,
                  eddy_err_name(eddy_future_error(f)),
                  eddy_err_name(eddy_future_cause(f)));
    size_t n = eddy_future_size(f);
    ck_assert(n >= 1 && n <= want);
    ck_assert_msg(sfx_pattern_check(eddy_future_value(f), n, got),
                  "pattern mismatch at offset %zu", got);
    got += n;
    eddy_future_unref(f);
  }
}

static int free_calls;
static void counting_free(void *p) {
  free_calls++;
  free(p);
}

/* ======================================================================== */
/* TestReadWriteMixin (tornado.md §2.2, tests 8-31) over tcp, pipe, unix     */
/* ======================================================================== */

/* 8. An empty write completes; no hang. */
START_TEST(test_write_zero_bytes) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_write(p.ws, "", 0);
  sfx_expect_ok(f);
  ck_assert(!eddy_stream_writing(p.ws));
  ck_assert(!eddy_stream_closed(p.ws));
}
END_TEST

/* W4: an empty write resolves no earlier than the writes before it. */
START_TEST(test_write_zero_after_pending) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  size_t len = 512 * KiB;
  char *data = pattern_alloc(len, 0);
  eddy_future_t *w1 = eddy_stream_write(p.ws, data, len);
  eddy_future_t *w0 = eddy_stream_write(p.ws, "", 0);
  free(data);
  ck_assert(w1 != NULL && w0 != NULL);
  ck_assert_msg(!eddy_future_done(w1),
                "512 KiB into shrunk kernel buffers cannot be sent at once");
  ck_assert_msg(!eddy_future_done(w0),
                "an empty write must wait for the write queued before it");
  done_rec_t d1 = {0}, d0 = {0};
  ck_assert_int_eq(eddy_future_add_done(w1, on_done, &d1), 0);
  ck_assert_int_eq(eddy_future_add_done(w0, on_done, &d0), 0);
  expect_pattern_partial(p.rs, len, 64 * KiB);
  sfx_wait(w0);
  sfx_wait(w1);
  sfx_run_until_flag(&d0.calls);
  ck_assert_int_eq(eddy_future_state(w1), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(eddy_future_state(w0), EDDY_FUTURE_RESOLVED);
  ck_assert_msg(d1.seq < d0.seq, "empty write resolved before the earlier one");
  eddy_future_unref(w1);
  eddy_future_unref(w0);
}
END_TEST

/* 9. Data sent before the writer closed stays readable. */
START_TEST(test_future_delayed_close_callback) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "12");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "1");
  eddy_stream_close(p.ws, 0);
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "2");
}
END_TEST

/* 10. EOF is not signalled ahead of data still in the kernel. */
START_TEST(test_close_buffered_data) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.read_chunk_size = 256;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  char a[512];
  memset(a, 'A', sizeof a);
  sfx_write_ok(p.ws, a, sizeof a);
  sfx_expect_bytes(eddy_stream_read_bytes(p.rs, 256, 0), a, 256);
  eddy_stream_close(p.ws, 0);
  sfx_run_for(0.05);
  sfx_expect_bytes(eddy_stream_read_bytes(p.rs, 256, 0), a, 256);
}
END_TEST

/* 11. read_until_close after the writer closed returns the rest. */
START_TEST(test_read_until_close_after_close) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "1234");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "1");
  eddy_stream_close(p.ws, 0);
  sfx_expect_str(eddy_stream_read_until_close(p.rs), "234");
}
END_TEST

/* 12. A 4 MiB read_until is not quadratic. */
START_TEST(test_large_read_until) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  size_t lines = sfx_slow() ? 512 : 4096;
  size_t total = lines * KiB + 2;
  char *data = malloc(total);
  ck_assert(data != NULL);
  for (size_t i = 0; i < lines * KiB; i++)
    data[i] = (char)('a' + i % 26);
  memcpy(data + lines * KiB, "\r\n", 2);
  eddy_future_t *last = NULL;
  for (size_t i = 0; i < lines; i++)
    sfx_write_nowait(p.ws, data + i * KiB, KiB);
  last = eddy_stream_write(p.ws, "\r\n", 2);
  sfx_expect_bytes(eddy_stream_read_until(p.rs, "\r\n", 2, 0), data, total);
  sfx_expect_ok(last);
  free(data);
}
END_TEST

/* 13. The final delimiter search happens even when the buffer did not
 * double (Tornado #2717). */
START_TEST(test_read_until_with_close_after_second_packet) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *rf = eddy_stream_read_until(p.rs, "done", 4, 0);
  char x[2048 + 4];
  memset(x, 'x', 2048);
  memcpy(x + 2048, "done", 4);
  sfx_write_ok(p.ws, x, 2048);
  sfx_write_ok(p.ws, "done", 4);
  eddy_stream_close(p.ws, 0);
  sfx_expect_bytes(rf, x, sizeof x);
}
END_TEST

/* 14. A read_until unsatisfied at EOF fails with a plain ECLOSED, not an
 * unsatisfiable-read error. */
START_TEST(test_read_until_unsatisfied_after_close) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *rf = eddy_stream_read_until(p.rs, "done", 4, 0);
  char x[2048];
  memset(x, 'x', sizeof x);
  sfx_write_ok(p.ws, x, sizeof x);
  sfx_write_str(p.ws, "foo");
  eddy_stream_close(p.ws, 0);
  sfx_wait(rf);
  ck_assert_int_eq(eddy_future_error(rf), EDDY_ECLOSED);
  ck_assert_int_ne(eddy_future_cause(rf), EDDY_EUNSATISFIABLE);
  ck_assert_int_eq(eddy_future_cause(rf), 0);
  eddy_future_unref(rf);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
}
END_TEST

/* 15. The close callback fires when the peer closes during a read. */
START_TEST(test_close_callback_with_pending_read) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  sfx_write_str(p.ws, "abc\r\n");
  sfx_expect_str(eddy_stream_read_until(p.rs, "\r\n", 2, 0), "abc\r\n");
  eddy_future_t *f = eddy_stream_read_until(p.rs, "\r\n", 2, 0);
  eddy_stream_close(p.ws, 0);
  sfx_expect_error(f, EDDY_ECLOSED, SFX_ANY);
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert_int_eq(cr.error, 0);
  ck_assert_ptr_eq(cr.stream, p.rs);
}
END_TEST

/* 16. The close callback does not fire while the peer is open; it fires
 * once the peer closes. */
START_TEST(test_future_close_callback) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  sfx_write_str(p.ws, "a");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "a");
  sfx_run_for(0.05);
  ck_assert_int_eq(cr.calls, 0);
  ck_assert(!eddy_stream_closed(p.rs));
  eddy_stream_close(p.ws, 0);
  sfx_run_until_flag(&cr.calls);
  sfx_run_for(0.05);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert(eddy_stream_closed(p.rs));
}
END_TEST

/* 17. A write from a borrowed slice of a larger buffer (memoryview). */
START_TEST(test_write_memoryview) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  static const char big[] = "xxhelloxx";
  eddy_future_t *w = eddy_stream_write_borrowed(p.ws, big + 2, 5);
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 4, 0), "hell");
  sfx_expect_ok(w);
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "o");
}
END_TEST

/* Partial reads of at most @max bytes, starting with @f (pending), until
 * they have given @want: each gives at least one byte and at most @max. A
 * write may reach the reader in pieces (make check-faults makes sure), so
 * where one read ends is not asserted. */
static void expect_partial_reads(eddy_stream_t *rs, eddy_future_t *f, size_t max,
                                 const char *want)
{
  size_t len = strlen(want), got = 0;
  for (;;) {
    sfx_wait(f);
    ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
    size_t n = eddy_future_size(f);
    ck_assert_msg(n >= 1 && n <= max && got + n <= len, "a partial read of %zu bytes", n);
    ck_assert(memcmp(eddy_future_value(f), want + got, n) == 0);
    eddy_future_unref(f);
    if ((got += n) == len)
      return;
    f = eddy_stream_read_bytes(rs, max, 1);
  }
}

/* 18. Partial reads. */
START_TEST(test_read_bytes_partial) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 50, 1);
  sfx_write_str(p.ws, "hello");
  expect_partial_reads(p.rs, f, 50, "hello");

  sfx_write_str(p.ws, "hello");
  expect_partial_reads(p.rs, eddy_stream_read_bytes(p.rs, 3, 1), 3, "hello");

  f = eddy_stream_read_bytes(p.rs, 0, 1);
  sfx_assert_done(f);
  sfx_expect_str(f, "");
}
END_TEST

/* 19, 22: read_until(_regex) max_bytes: room, exact fit, overflow. */
static void max_bytes_case(sfx_kind_t kind, int regex) {
  sfx_pair_t p = sfx_pair(kind, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);

  eddy_future_t *f = until(p.rs, regex, "def", 50);
  sfx_write_str(p.ws, "abcdef");
  sfx_expect_str(f, "abcdef");

  f = until(p.rs, regex, "def", 6); /* just enough */
  sfx_write_str(p.ws, "abcdef");
  sfx_expect_str(f, "abcdef");

  f = until(p.rs, regex, "def", 5); /* not enough */
  sfx_write_str(p.ws, "123456");
  sfx_expect_error(f, EDDY_ECLOSED, EDDY_EUNSATISFIABLE);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), EDDY_EUNSATISFIABLE);
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert_int_eq(cr.error, EDDY_EUNSATISFIABLE);
  ck_assert_msg(sfx_log_contains("unsatisfiable read"),
                "an 'Unsatisfiable read' message should be logged");
}

START_TEST(test_read_until_max_bytes) { max_bytes_case(KIND, 0); }
END_TEST

START_TEST(test_read_until_regex_max_bytes) { max_bytes_case(KIND, 1); }
END_TEST

/* 20, 23: the same failure when the data is already buffered: a rejected
 * future, a log line and the close callback. */
static void max_bytes_inline_case(sfx_kind_t kind, int regex) {
  sfx_pair_t p = sfx_pair(kind, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  sfx_write_str(p.ws, "x123456");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "x");
  sfx_run_until_buffered(p.rs, 6);
  eddy_future_t *f = until(p.rs, regex, "def", 5);
  ck_assert(f != NULL);
  sfx_expect_error(f, EDDY_ECLOSED, EDDY_EUNSATISFIABLE);
  ck_assert(eddy_stream_closed(p.rs));
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert(sfx_log_contains("unsatisfiable read"));
}

START_TEST(test_read_until_max_bytes_inline) { max_bytes_inline_case(KIND, 0); }
END_TEST

START_TEST(test_read_until_regex_max_bytes_inline) {
  max_bytes_inline_case(KIND, 1);
}
END_TEST

/* 21, 24: a delimiter that ends past max_bytes fails even if present. */
static void max_bytes_ignores_extra_case(sfx_kind_t kind, int regex) {
  sfx_pair_t p = sfx_pair(kind, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  sfx_write_str(p.ws, "abcdef");
  sfx_expect_error(until(p.rs, regex, "def", 5), EDDY_ECLOSED,
                   EDDY_EUNSATISFIABLE);
  ck_assert(eddy_stream_closed(p.rs));
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert(sfx_log_contains("unsatisfiable read"));
}

START_TEST(test_read_until_max_bytes_ignores_extra) {
  max_bytes_ignores_extra_case(KIND, 0);
}
END_TEST

START_TEST(test_read_until_regex_max_bytes_ignores_extra) {
  max_bytes_ignores_extra_case(KIND, 1);
}
END_TEST

/* 25. Small reads from a large peer write never overflow a small buffer
 * (R6: the stream does not over-read). */
START_TEST(test_small_reads_from_large_buffer) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.max_buffer_size = 10 * KiB;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  char *data = pattern_alloc(100 * KiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, 100 * KiB);
  free(data);
  for (size_t i = 0; i < 100; i++)
    expect_pattern(p.rs, KiB, i * KiB);
  sfx_expect_ok(w);
  ck_assert(!eddy_stream_closed(p.rs));
}
END_TEST

/* 26. The same with read_until and max_bytes. */
START_TEST(test_small_read_untils_from_large_buffer) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.max_buffer_size = 10 * KiB;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  char *data = malloc(100 * KiB);
  ck_assert(data != NULL);
  for (size_t i = 0; i < 100; i++) {
    memset(data + i * KiB, 'a' + (int)(i % 26), KiB - 1);
    data[i * KiB + KiB - 1] = '\n';
  }
  eddy_future_t *w = eddy_stream_write(p.ws, data, 100 * KiB);
  for (size_t i = 0; i < 100; i++)
    sfx_expect_bytes(eddy_stream_read_until(p.rs, "\n", 1, 4096),
                     data + i * KiB, KiB);
  sfx_expect_ok(w);
  free(data);
}
END_TEST

/* 27. Flow control: 10 MiB through a 5 MiB read buffer with a pause. */
START_TEST(test_flow_control) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.max_buffer_size = 5 * MiB;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  char *data = pattern_alloc(10 * MiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, 10 * MiB);
  free(data);
  expect_pattern(p.rs, MiB, 0);
  sfx_run_for(0.1);
  ck_assert(!eddy_stream_closed(p.rs));
  for (size_t i = 1; i < 10; i++)
    expect_pattern(p.rs, MiB, i * MiB);
  sfx_expect_ok(w);
  ck_assert(!eddy_stream_closed(p.rs));
}
END_TEST

/* 28. read_into: pending across a short write, leftovers kept. */
START_TEST(test_read_into) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  char buf[10];
  memset(buf, 0, sizeof buf);
  eddy_future_t *f = eddy_stream_read_into(p.rs, buf, 10, 0);
  sfx_write_str(p.ws, "hello");
  sfx_run_for(0.05);
  ck_assert(eddy_stream_reading(p.rs));
  ck_assert(!eddy_future_done(f));
  sfx_write_str(p.ws, "world!!");
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert(!eddy_stream_reading(p.rs));
  ck_assert_uint_eq(eddy_future_size(f), 10);
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert(memcmp(buf, "helloworld", 10) == 0);
  eddy_future_unref(f);

  /* The leftover "!!" goes first into the next read_into. */
  f = eddy_stream_read_into(p.rs, buf, 10, 0);
  sfx_run_for(0.05);
  ck_assert(eddy_stream_reading(p.rs));
  sfx_write_str(p.ws, "1234567890");
  sfx_wait(f);
  ck_assert(!eddy_stream_reading(p.rs));
  ck_assert_uint_eq(eddy_future_size(f), 10);
  ck_assert(memcmp(buf, "!!12345678", 10) == 0);
  eddy_future_unref(f);

  /* Satisfied straight from what is there. */
  char small[4];
  sfx_write_str(p.ws, "abcdefghi");
  f = eddy_stream_read_into(p.rs, small, 4, 0);
  sfx_wait(f);
  ck_assert_uint_eq(eddy_future_size(f), 4);
  ck_assert(memcmp(small, "90ab", 4) == 0);
  eddy_future_unref(f);

  sfx_expect_str(eddy_stream_read_bytes(p.rs, 7, 0), "cdefghi");
}
END_TEST

/* 29. Partial read_into. */
START_TEST(test_read_into_partial) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  char buf[10];
  memset(buf, 0, sizeof buf);
  eddy_future_t *f = eddy_stream_read_into(p.rs, buf, 10, 1);
  sfx_write_str(p.ws, "hello");
  sfx_wait(f);
  ck_assert(!eddy_stream_reading(p.rs));
  ck_assert_uint_eq(eddy_future_size(f), 5);
  ck_assert(memcmp(buf, "hello\0\0\0\0\0", 10) == 0);
  eddy_future_unref(f);

  /* A full read despite partial. */
  sfx_write_str(p.ws, "world!1234567890");
  f = eddy_stream_read_into(p.rs, buf, 10, 1);
  sfx_wait(f);
  ck_assert_uint_eq(eddy_future_size(f), 10);
  ck_assert(memcmp(buf, "world!1234", 10) == 0);
  eddy_future_unref(f);

  /* The rest: partial reads may take it in pieces (the writer's kernel
   * may take it in pieces: make check-faults makes it). */
  size_t got = 0;
  while (got < 6) {
    f = eddy_stream_read_into(p.rs, buf + got, 10 - got, 1);
    sfx_wait(f);
    ck_assert_uint_gt(eddy_future_size(f), 0);
    got += eddy_future_size(f);
    eddy_future_unref(f);
  }
  ck_assert_uint_eq(got, 6);
  ck_assert(memcmp(buf, "5678901234", 10) == 0);
}
END_TEST

/* 30. A zero-length read_into is resolved on return with 0. */
START_TEST(test_read_into_zero_bytes) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  char buf[1] = {'z'};
  for (int partial = 0; partial <= 1; partial++) {
    eddy_future_t *f = eddy_stream_read_into(p.rs, buf, 0, partial);
    sfx_assert_done(f);
    ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
    ck_assert_uint_eq(eddy_future_size(f), 0);
    ck_assert(!eddy_stream_reading(p.rs));
    eddy_future_unref(f);
  }
  ck_assert_int_eq(buf[0], 'z');
}
END_TEST

/* 31. 1 000 000 random bytes in random awaited writes, read back by a
 * random mix of read_bytes and read_into. */
typedef struct writer_chain {
  eddy_stream_t *s;
  const unsigned char *data;
  size_t len, off;
  unsigned rng;
  int done, failed, writes;
} writer_chain_t;

static void chain_next(writer_chain_t *w);

static void chain_written(eddy_future_t *f, void *arg) {
  writer_chain_t *w = arg;
  if (eddy_future_state(f) != EDDY_FUTURE_RESOLVED) {
    w->failed = 1;
    w->done = 1;
    return;
  }
  if (w->off >= w->len)
    w->done = 1;
  else
    chain_next(w);
}

static void chain_next(writer_chain_t *w) {
  size_t n = 1 + sfx_rand(&w->rng) % 1000;
  if (n > w->len - w->off)
    n = w->len - w->off;
  eddy_future_t *f = eddy_stream_write(w->s, w->data + w->off, n);
  ck_assert(f != NULL);
  w->off += n;
  w->writes++;
  ck_assert_int_eq(eddy_future_add_done(f, chain_written, w), 0);
  eddy_future_unref(f);
}

START_TEST(test_many_mixed_reads) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  size_t total = sfx_slow() ? 100000 : 1000000;
  unsigned char *data = malloc(total), *got = malloc(total);
  ck_assert(data && got);
  unsigned rng = 12345;
  for (size_t i = 0; i < total; i++)
    data[i] = (unsigned char)sfx_rand(&rng);
  writer_chain_t w = {p.ws, data, total, 0, 777, 0, 0, 0};
  chain_next(&w);
  size_t off = 0;
  unsigned rr = 4242;
  while (off < total) {
    size_t n = 1 + sfx_rand(&rr) % 1000;
    if (n > total - off)
      n = total - off;
    if (sfx_rand(&rr) & 1) {
      eddy_future_t *f = eddy_stream_read_bytes(p.rs, n, 0);
      sfx_wait(f);
      ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
      ck_assert_uint_eq(eddy_future_size(f), n);
      memcpy(got + off, eddy_future_value(f), n);
      eddy_future_unref(f);
    } else {
      eddy_future_t *f = eddy_stream_read_into(p.rs, got + off, n, 0);
      sfx_wait(f);
      ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
      ck_assert_uint_eq(eddy_future_size(f), n);
      eddy_future_unref(f);
    }
    off += n;
  }
  sfx_run_until_flag(&w.done);
  ck_assert(!w.failed);
  ck_assert(memcmp(data, got, total) == 0);
  free(data);
  free(got);
}
END_TEST

/* 48. Pipe-style exchange (run over every kind). */
START_TEST(test_pipe_iostream) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_nowait(p.ws, "hel", 3);
  sfx_write_str(p.ws, "lo world");
  sfx_expect_str(eddy_stream_read_until(p.rs, " ", 1, 0), "hello ");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 3, 0), "wor");
  eddy_stream_close(p.ws, 0);
  sfx_expect_str(eddy_stream_read_until_close(p.rs), "ld");
}
END_TEST

/* 49. A 1 MiB write, more than a pipe holds, read back in one read. */
START_TEST(test_pipe_iostream_big_write) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, MiB);
  sfx_expect_bytes(eddy_stream_read_bytes(p.rs, MiB, 0), data, MiB);
  sfx_expect_ok(w);
  free(data);
}
END_TEST

/* ======================================================================== */
/* eddy's read contract (stream.h), over every kind                          */
/* ======================================================================== */

/* One read at a time: a second read fails at once, the first goes on. */
START_TEST(test_one_read_at_a_time) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 5, 0);
  ck_assert(!eddy_future_done(f));
  ck_assert(eddy_stream_reading(p.rs));
  char buf[4];
  eddy_future_t *second[] = {
      eddy_stream_read_bytes(p.rs, 1, 0),
      eddy_stream_read_bytes(p.rs, 1, 1),
      eddy_stream_read_until(p.rs, "x", 1, 0),
      eddy_stream_read_until_regex(p.rs, "x", 0),
      eddy_stream_read_until_close(p.rs),
      eddy_stream_read_into(p.rs, buf, sizeof buf, 0),
  };
  for (size_t i = 0; i < sizeof second / sizeof second[0]; i++) {
    sfx_assert_done(second[i]);
    ck_assert_msg(eddy_future_error(second[i]) == EDDY_EALREADYREADING,
                  "second read #%zu: expected EDDY_EALREADYREADING, got %s", i,
                  eddy_err_name(eddy_future_error(second[i])));
    eddy_future_unref(second[i]);
  }
  ck_assert_int_eq(eddy_stream_consume(p.rs, 1), EDDY_EALREADYREADING);
  ck_assert(!eddy_stream_closed(p.rs));
  sfx_write_str(p.ws, "hello");
  sfx_expect_str(f, "hello");
  ck_assert(!eddy_stream_reading(p.rs));
  /* Once the read is done, a new one is accepted. */
  sfx_write_str(p.ws, "!");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "!");
}
END_TEST

/* A read the buffer satisfies is resolved on return; its callbacks still
 * run from the loop, never inline. */
START_TEST(test_buffered_read_done_on_return) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "hello world\n");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 2, 0), "he");
  /* R6: each OS read asks for a whole chunk, so the rest is buffered. */
  sfx_run_until_buffered(p.rs, 10);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 10);

  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 3, 0);
  sfx_assert_done(f);
  done_rec_t d = {0};
  ck_assert_int_eq(eddy_future_add_done(f, on_done, &d), 0);
  ck_assert_msg(d.calls == 0, "callback ran inline");
  sfx_run_until_flag(&d.calls);
  ck_assert_int_eq(d.calls, 1);
  sfx_expect_str(f, "llo");

  f = eddy_stream_read_until(p.rs, "o", 1, 0);
  sfx_assert_done(f);
  sfx_expect_str(f, " wo");
  f = eddy_stream_read_until_regex(p.rs, "l+", 0);
  sfx_assert_done(f);
  sfx_expect_str(f, "rl");
  char c[1];
  f = eddy_stream_read_into(p.rs, c, 1, 0);
  sfx_assert_done(f);
  ck_assert_uint_eq(eddy_future_size(f), 1);
  ck_assert_int_eq(c[0], 'd');
  eddy_future_unref(f);
  f = eddy_stream_read_bytes(p.rs, 5, 1);
  sfx_assert_done(f);
  sfx_expect_str(f, "\n");
  ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 0);
}
END_TEST

/* Data that arrived before the peer closed is delivered to the reads it
 * satisfies; only then do reads fail. */
START_TEST(test_data_with_close_delivered) {
  int peer;
  eddy_stream_t *rs = sfx_raw_peer(KIND, 1, NULL, 0, &peer);
  sfx_raw_write_all(peer, "hello", 5);
  close(peer);
  sfx_expect_str(eddy_stream_read_bytes(rs, 2, 0), "he");
  sfx_expect_str(eddy_stream_read_bytes(rs, 10, 1), "llo");
  eddy_future_t *f = eddy_stream_read_bytes(rs, 1, 0);
  sfx_expect_error(f, EDDY_ECLOSED, SFX_ANY);
  ck_assert(eddy_stream_closed(rs));
  ck_assert_int_eq(eddy_stream_error(rs), 0);
}
END_TEST

/* A pending read satisfied by data that arrives together with the EOF. */
START_TEST(test_pending_read_data_then_close) {
  int peer;
  eddy_stream_t *rs = sfx_raw_peer(KIND, 1, NULL, 0, &peer);
  eddy_future_t *f = eddy_stream_read_bytes(rs, 5, 0);
  eddy_future_t *g;
  ck_assert(!eddy_future_done(f));
  sfx_raw_write_all(peer, "hello", 5);
  close(peer);
  sfx_expect_str(f, "hello");
  /* A read larger than what is left fails with ECLOSED (orderly: cause 0). */
  g = eddy_stream_read_bytes(rs, 10, 0);
  sfx_expect_error(g, EDDY_ECLOSED, 0);
}
END_TEST

/* A pending read that the data before EOF cannot satisfy fails, and
 * (partial) a pending partial read gets what there is. */
START_TEST(test_pending_read_short_then_close) {
  int peer;
  eddy_stream_t *rs = sfx_raw_peer(KIND, 1, NULL, 0, &peer);
  eddy_future_t *f = eddy_stream_read_bytes(rs, 10, 0);
  sfx_raw_write_all(peer, "hello", 5);
  close(peer);
  sfx_expect_error(f, EDDY_ECLOSED, 0);
  ck_assert(eddy_stream_closed(rs));
  /* The five bytes stay readable after the close (R2). */
  f = eddy_stream_read_bytes(rs, 10, 1);
  sfx_assert_done(f);
  sfx_expect_str(f, "hello");
}
END_TEST

/* A read's buffer: malloc'ed, NUL-terminated, owned by the future, and
 * eddy_future_take() hands it over. */
START_TEST(test_read_result_ownership) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "hello");
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 5, 0);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  char *v = eddy_future_value(f);
  ck_assert_ptr_nonnull(v);
  ck_assert_uint_eq(eddy_future_size(f), 5);
  ck_assert_str_eq(v, "hello"); /* NUL-terminated: usable as a C string */
  size_t size = 0;
  char *t = eddy_future_take(f, &size);
  ck_assert_ptr_eq(t, v);
  ck_assert_uint_eq(size, 5);
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert_uint_eq(eddy_future_size(f), 5);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_null(eddy_future_take(f, NULL));
  eddy_future_unref(f);
  /* Still ours after the future is gone: realloc proves it is malloc'ed. */
  t = realloc(t, 64);
  ck_assert_ptr_nonnull(t);
  ck_assert_str_eq(t, "hello");
  free(t);

  /* An empty read still has a NUL-terminated buffer or none at all. */
  f = eddy_stream_read_bytes(p.rs, 0, 0);
  sfx_assert_done(f);
  ck_assert_uint_eq(eddy_future_size(f), 0);
  if (eddy_future_value(f) != NULL)
    ck_assert_int_eq(((char *)eddy_future_value(f))[0], '\0');
  eddy_future_unref(f);
}
END_TEST

/* read_into reads from the kernel straight into the caller's buffer: only
 * the room left is asked for, nothing extra lands in the stream's buffer. */
START_TEST(test_read_into_direct) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  char buf[8];
  memset(buf, '.', sizeof buf);
  eddy_future_t *f = eddy_stream_read_into(p.rs, buf, 8, 0);
  ck_assert(!eddy_future_done(f));
  sfx_write_str(p.ws, "abcdefghijkl");
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), 8);
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert(memcmp(buf, "abcdefgh", 8) == 0);
  eddy_future_unref(f);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 0);
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 4, 0), "ijkl");
}
END_TEST

/* read_until with the delimiter split across two writes. */
START_TEST(test_read_until_split_delimiter) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_read_until(p.rs, "\r\n", 2, 0);
  sfx_write_str(p.ws, "abc\r");
  sfx_run_until_buffered(p.rs, 4);
  ck_assert(!eddy_future_done(f));
  sfx_write_str(p.ws, "\ndef");
  sfx_expect_str(f, "abc\r\n");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 3, 0), "def");
}
END_TEST

/* A multi-byte delimiter over three writes, after a near miss. */
START_TEST(test_read_until_multibyte_delimiter) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  const char *d = "--BOUNDARY--";
  eddy_future_t *f = eddy_stream_read_until(p.rs, d, strlen(d), 0);
  sfx_write_str(p.ws, "a--BOUNDARY-x--BOUN");
  sfx_run_until_buffered(p.rs, 19);
  ck_assert(!eddy_future_done(f));
  sfx_write_str(p.ws, "DARY");
  sfx_run_until_buffered(p.rs, 23);
  ck_assert(!eddy_future_done(f));
  sfx_write_str(p.ws, "--tail");
  sfx_expect_str(f, "a--BOUNDARY-x--BOUNDARY--");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 4, 0), "tail");
}
END_TEST

/* Binary delimiters with NUL bytes; binary-safe results. */
START_TEST(test_read_until_binary_delimiter) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  static const char data[] = {'x', '\0', 'y', '\0', '\1', '\0', 'z'};
  static const char delim[] = {'\0', '\1', '\0'};
  sfx_write_ok(p.ws, data, sizeof data);
  sfx_expect_bytes(eddy_stream_read_until(p.rs, delim, sizeof delim, 0), data,
                   6);
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "z");
}
END_TEST

/* An empty delimiter is a usage error; the stream is unaffected. */
START_TEST(test_read_until_empty_delimiter) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_read_until(p.rs, "", 0, 0);
  sfx_assert_done(f);
  sfx_expect_error(f, EDDY_EUSAGE, SFX_ANY);
  ck_assert(!eddy_stream_reading(p.rs));
  ck_assert(!eddy_stream_closed(p.rs));
  sfx_write_str(p.ws, "ok");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 2, 0), "ok");
}
END_TEST

/* Regex reads: leftmost match, across writes, invalid patterns. */
START_TEST(test_read_until_regex) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "abc 123; rest");
  sfx_expect_str(eddy_stream_read_until_regex(p.rs, "[0-9]+;", 0),
                 "abc 123;");
  eddy_future_t *f = eddy_stream_read_until_regex(p.rs, "x{3}", 0);
  sfx_write_str(p.ws, "ax");
  sfx_run_until_buffered(p.rs, 7);
  ck_assert(!eddy_future_done(f));
  sfx_write_str(p.ws, "xx!");
  sfx_expect_str(f, " restaxxx");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "!");

  f = eddy_stream_read_until_regex(p.rs, "(", 0);
  sfx_assert_done(f);
  sfx_expect_error(f, EDDY_EREGEX, SFX_ANY);
  ck_assert(!eddy_stream_reading(p.rs));
  ck_assert(!eddy_stream_closed(p.rs));
}
END_TEST

/* Orderly close: read_until_close gets everything, error stays 0. */
START_TEST(test_read_until_close_orderly) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_read_until_close(p.rs);
  sfx_write_str(p.ws, "abc");
  sfx_write_str(p.ws, "def");
  eddy_stream_close(p.ws, 0);
  sfx_expect_str(f, "abcdef");
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
  ck_assert_ptr_null(eddy_stream_error_message(p.rs));
}
END_TEST

/* On an already closed stream, read_until_close resolves at once with what
 * is buffered; read_bytes(0) too; other reads fail at once. */
START_TEST(test_reads_on_closed_stream) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "xyz");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "x");
  sfx_run_until_buffered(p.rs, 2);
  eddy_stream_close(p.rs, 0);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_fd(p.rs), -1);
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 0, 0);
  sfx_assert_done(f);
  sfx_expect_str(f, "");
  f = eddy_stream_read_until_close(p.rs);
  sfx_assert_done(f);
  sfx_expect_str(f, "yz");
  f = eddy_stream_read_bytes(p.rs, 1, 0);
  sfx_assert_done(f);
  sfx_expect_error(f, EDDY_ECLOSED, SFX_ANY);
  char b[2];
  f = eddy_stream_read_into(p.rs, b, 0, 0);
  sfx_assert_done(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(f);
  f = eddy_stream_read_until_close(p.rs);
  sfx_assert_done(f);
  sfx_expect_str(f, "");
}
END_TEST

/* R8 with eddy's fix: the read buffer passing max_buffer_size closes the
 * stream with EDDY_EBUFFERFULL recorded, and the read carries it. */
START_TEST(test_read_buffer_overflow) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.max_buffer_size = 4 * KiB;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  eddy_future_t *f = eddy_stream_read_until(p.rs, "\n", 1, 0);
  char *junk = malloc(16 * KiB);
  memset(junk, 'a', 16 * KiB);
  eddy_future_t *w = eddy_stream_write(p.ws, junk, 16 * KiB);
  free(junk);
  sfx_expect_error(f, EDDY_ECLOSED, EDDY_EBUFFERFULL);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), EDDY_EBUFFERFULL);
  ck_assert_ptr_nonnull(eddy_stream_error_message(p.rs));
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.error, EDDY_EBUFFERFULL);
  sfx_wait(w); /* resolved or rejected: the reader went away */
  eddy_future_unref(w);
}
END_TEST

/* A read_bytes larger than max_buffer_size can never be satisfied. The
 * header leaves open whether it is refused up front (EDDY_EBUFFERFULL, the
 * stream untouched) or overflows like Tornado (ECLOSED / EBUFFERFULL);
 * either way it must not hang and must say "buffer full". */
START_TEST(test_read_bytes_overflow) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.max_buffer_size = 4 * KiB;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  char *data = pattern_alloc(8 * KiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, 8 * KiB);
  free(data);
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 8 * KiB, 0);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_REJECTED);
  if (eddy_future_error(f) == EDDY_EBUFFERFULL) {
    /* Refused up front: nothing consumed, the stream still works. */
    ck_assert(!eddy_stream_closed(p.rs));
    ck_assert(!eddy_stream_reading(p.rs));
    expect_pattern(p.rs, 4 * KiB, 0);
    expect_pattern(p.rs, 4 * KiB, 4 * KiB);
  } else {
    ck_assert_int_eq(eddy_future_error(f), EDDY_ECLOSED);
    ck_assert_int_eq(eddy_future_cause(f), EDDY_EBUFFERFULL);
    ck_assert_int_eq(eddy_stream_error(p.rs), EDDY_EBUFFERFULL);
  }
  eddy_future_unref(f);
  sfx_wait(w);
  eddy_future_unref(w);
}
END_TEST

/* Q1 fixed: read_until_close past max_buffer_size fails, not truncates. */
START_TEST(test_read_until_close_overflow) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.max_buffer_size = 4 * KiB;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  eddy_future_t *f = eddy_stream_read_until_close(p.rs);
  char *data = pattern_alloc(16 * KiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, 16 * KiB);
  free(data);
  sfx_expect_error(f, EDDY_ECLOSED, EDDY_EBUFFERFULL);
  ck_assert_int_eq(eddy_stream_error(p.rs), EDDY_EBUFFERFULL);
  sfx_wait(w);
  eddy_future_unref(w);
}
END_TEST

/* read_bytes_chunked hands exactly n bytes to the callback, then resolves
 * with no data; the stream goes on from byte n. */
START_TEST(test_read_bytes_chunked) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  size_t n = 100000, total = 150000;
  char *data = pattern_alloc(total, 0);
  acc_t a = {0};
  eddy_future_t *f = eddy_stream_read_bytes_chunked(p.rs, n, on_chunk, &a);
  eddy_future_t *w = eddy_stream_write(p.ws, data, total);
  free(data);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_null(eddy_future_value(f));
  eddy_future_unref(f);
  ck_assert_uint_eq(a.len, n);
  ck_assert(a.calls >= 1);
  ck_assert(sfx_pattern_check(a.buf, a.len, 0));
  expect_pattern(p.rs, total - n, n);
  sfx_expect_ok(w);
  free(a.buf);
}
END_TEST

/* read_until_close_chunked has no total limit: far more than
 * max_buffer_size goes through. */
START_TEST(test_read_until_close_chunked) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.max_buffer_size = 4 * KiB;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  size_t total = 256 * KiB;
  char *data = pattern_alloc(total, 0);
  acc_t a = {0};
  eddy_future_t *f = eddy_stream_read_until_close_chunked(p.rs, on_chunk, &a);
  eddy_future_t *w = eddy_stream_write(p.ws, data, total);
  free(data);
  sfx_expect_ok(w);
  eddy_stream_close(p.ws, 0);
  sfx_wait(f);
  ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED,
                "chunked read_until_close failed: %s (cause %s)",
                eddy_err_name(eddy_future_error(f)),
                eddy_err_name(eddy_future_cause(f)));
  ck_assert_ptr_null(eddy_future_value(f));
  eddy_future_unref(f);
  ck_assert_uint_eq(a.len, total);
  ck_assert(sfx_pattern_check(a.buf, a.len, 0));
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
  free(a.buf);
}
END_TEST

/* peek/consume over the read buffer. */
START_TEST(test_peek_consume) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  size_t len = 99;
  ck_assert_ptr_null(eddy_stream_peek(p.rs, &len));
  ck_assert_uint_eq(len, 0);
  sfx_write_str(p.ws, "hello world");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "h");
  sfx_run_until_buffered(p.rs, 10);
  const char *v = eddy_stream_peek(p.rs, &len);
  ck_assert_ptr_nonnull(v);
  ck_assert(len >= 1 && len <= 10);
  ck_assert(memcmp(v, "ello world", len) == 0);
  ck_assert_int_eq(eddy_stream_consume(p.rs, 4), 4);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 6);
  v = eddy_stream_peek(p.rs, &len);
  ck_assert(len >= 1 && memcmp(v, " world", len) == 0);
  ck_assert_int_eq(eddy_stream_consume(p.rs, 100), 6);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 0);
  ck_assert_ptr_null(eddy_stream_peek(p.rs, &len));
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(eddy_stream_consume(p.rs, 1), 0);
  /* Consumed bytes are gone for the next read. */
  sfx_write_str(p.ws, "next");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 4, 0), "next");
}
END_TEST

/* Q4 fixed: cancelling a pending read returns the stream to idle and
 * consumes nothing. */
START_TEST(test_cancel_read) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 10, 0);
  sfx_write_str(p.ws, "hello");
  sfx_run_until_buffered(p.rs, 5);
  ck_assert(!eddy_future_done(f));
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  ck_assert(!eddy_stream_reading(p.rs));
  ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 5);
  eddy_future_unref(f);
  sfx_write_str(p.ws, "world");
  sfx_run_for(0.05);
  ck_assert(!eddy_stream_closed(p.rs));
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 10, 0), "helloworld");
}
END_TEST

/* Cancelling a read_into: the caller's buffer is never written after. */
START_TEST(test_cancel_read_into) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  char buf[10];
  memset(buf, 'z', sizeof buf);
  eddy_future_t *f = eddy_stream_read_into(p.rs, buf, sizeof buf, 0);
  sfx_run_for(0.05);
  ck_assert(eddy_stream_reading(p.rs));
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  ck_assert(!eddy_stream_reading(p.rs));
  eddy_future_unref(f);
  sfx_write_str(p.ws, "abcdefghij");
  sfx_run_for(0.05);
  for (size_t i = 0; i < sizeof buf; i++)
    ck_assert_int_eq(buf[i], 'z');
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 10, 0), "abcdefghij");
}
END_TEST

/* eddy_with_timeout on a read: the read times out, the stream stays open
 * and idle with its buffer intact. */
START_TEST(test_with_timeout_read) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "abc");
  eddy_future_t *f = eddy_with_timeout(eddy_stream_read_bytes(p.rs, 10, 0), 0.1);
  sfx_expect_error(f, EDDY_ETIMEOUT, SFX_ANY);
  ck_assert(!eddy_stream_closed(p.rs));
  ck_assert(!eddy_stream_reading(p.rs));
  sfx_write_str(p.ws, "defghij");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 10, 0), "abcdefghij");
}
END_TEST

/* ======================================================================== */
/* Writing                                                                   */
/* ======================================================================== */

/* eddy_stream_write copies: the caller may reuse its buffer at once. */
START_TEST(test_write_copies) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, MiB);
  ck_assert(!eddy_future_done(w));
  memset(data, 'X', MiB);
  free(data);
  expect_pattern(p.rs, MiB, 0);
  sfx_expect_ok(w);
}
END_TEST

/* write_take: no copy, data_free called exactly once after the send. */
START_TEST(test_write_take) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  free_calls = 0;
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write_take(p.ws, data, MiB, counting_free);
  ck_assert(!eddy_future_done(w));
  ck_assert_int_eq(free_calls, 0);
  expect_pattern(p.rs, MiB, 0);
  sfx_expect_ok(w);
  sfx_run_until_flag(&free_calls);
  ck_assert_int_eq(free_calls, 1);
}
END_TEST

/* Under 512 bytes left queued, take and borrowed writes are copied into the
 * queue: the take's block is freed at once, the borrowed buffer may change,
 * and each future still waits for its bytes to reach the kernel. */
START_TEST(test_short_queued_rest_copied) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  free_calls = 0;
  char *big = pattern_alloc(MiB, 0);
  eddy_future_t *w0 = eddy_stream_write_take(p.ws, big, MiB, counting_free);
  ck_assert(!eddy_future_done(w0)); /* the kernel is full: the rest is queued */
  ck_assert_int_eq(free_calls, 0);  /* large: held, not copied */
  char *small = pattern_alloc(100, MiB);
  eddy_future_t *w1 = eddy_stream_write_take(p.ws, small, 100, counting_free);
  ck_assert_int_eq(free_calls, 1); /* copied, freed at once */
  char *lent = pattern_alloc(200, MiB + 100);
  eddy_future_t *w2 = eddy_stream_write_borrowed(p.ws, lent, 200);
  memset(lent, 'X', 200); /* copied: the stream no longer reads it */
  free(lent);
  ck_assert(!eddy_future_done(w1));
  ck_assert(!eddy_future_done(w2));
  expect_pattern(p.rs, MiB + 300, 0);
  sfx_expect_ok(w0);
  sfx_expect_ok(w1);
  sfx_expect_ok(w2);
  ck_assert_int_eq(free_calls, 2);
}
END_TEST

/* write_take on a closed stream fails and still frees the data, once. */
START_TEST(test_write_take_closed) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  free_calls = 0;
  eddy_stream_close(p.ws, 0);
  char *data = pattern_alloc(100, 0);
  eddy_future_t *w = eddy_stream_write_take(p.ws, data, 100, counting_free);
  sfx_assert_done(w);
  sfx_expect_error(w, EDDY_ECLOSED, SFX_ANY);
  sfx_run_until_flag(&free_calls);
  ck_assert_int_eq(free_calls, 1);
}
END_TEST

/* write_take dropped by a close frees the data once. */
START_TEST(test_write_take_dropped) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  free_calls = 0;
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write_take(p.ws, data, MiB, counting_free);
  ck_assert(!eddy_future_done(w));
  eddy_stream_close(p.ws, 0);
  sfx_expect_error(w, EDDY_ECLOSED, SFX_ANY);
  sfx_run_until_flag(&free_calls);
  ck_assert_int_eq(free_calls, 1);
}
END_TEST

/* write_borrowed: no copy; the data is used until the future settles. */
START_TEST(test_write_borrowed) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write_borrowed(p.ws, data, MiB);
  ck_assert(!eddy_future_done(w));
  expect_pattern(p.rs, MiB, 0);
  sfx_expect_ok(w);
  free(data);
}
END_TEST

/* write_bytes_of: echo a read's result without a copy; the stream keeps
 * its own reference (we drop ours at once). */
START_TEST(test_write_bytes_of_echo) {
  sfx_pair_t a = sfx_pair(KIND, NULL, NULL, 0);
  sfx_pair_t b = sfx_pair(KIND, NULL, NULL, 1);
  size_t len = 256 * KiB;
  char *data = pattern_alloc(len, 0);
  eddy_future_t *w0 = eddy_stream_write(a.ws, data, len);
  free(data);
  eddy_future_t *r = eddy_stream_read_bytes(a.rs, len, 0);
  sfx_wait(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  eddy_future_t *w = eddy_stream_write_bytes_of(b.ws, r);
  ck_assert_ptr_nonnull(w);
  /* Borrowed (rule 3): r is still ours and intact. */
  ck_assert_uint_eq(eddy_future_size(r), len);
  ck_assert_ptr_nonnull(eddy_future_value(r));
  eddy_future_unref(r);
  expect_pattern(b.rs, len, 0);
  sfx_expect_ok(w);
  sfx_expect_ok(w0);
}
END_TEST

/* write_bytes_of a pending or rejected future fails with its error. */
START_TEST(test_write_bytes_of_unresolved) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *pending = eddy_future_new(sfx_loop);
  eddy_future_t *w = eddy_stream_write_bytes_of(p.ws, pending);
  sfx_expect_error(w, EDDY_EPENDING, SFX_ANY);
  eddy_future_unref(pending);
  eddy_future_t *bad = eddy_future_rejected(sfx_loop, EDDY_ETIMEOUT, NULL);
  w = eddy_stream_write_bytes_of(p.ws, bad);
  sfx_expect_error(w, EDDY_ETIMEOUT, SFX_ANY);
  eddy_future_unref(bad);
  ck_assert(!eddy_stream_closed(p.ws));
  ck_assert_uint_eq(eddy_stream_write_buffer_size(p.ws), 0);
  sfx_write_str(p.ws, "ok");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 2, 0), "ok");
}
END_TEST

/* write_file: a slice of a temporary file (sendfile on sockets, read and
 * write on pipes). */
START_TEST(test_write_file) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  char path[] = "/tmp/eddy-test-stream-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
  unlink(path);
  size_t flen = 300 * KiB;
  char *data = pattern_alloc(flen, 0);
  sfx_raw_write_all(fd, data, flen);
  free(data);
  eddy_future_t *w0 = eddy_stream_write(p.ws, "head", 4);
  eddy_future_t *w = eddy_stream_write_file(p.ws, fd, 1000, 200000);
  eddy_future_t *w2 = eddy_stream_write(p.ws, "tail", 4);
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 4, 0), "head");
  expect_pattern(p.rs, 200000, 1000);
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 4, 0), "tail");
  sfx_expect_ok(w0);
  sfx_expect_ok(w);
  sfx_expect_ok(w2);
  close(fd);
}
END_TEST

/* Many writes against a slow reader: every write future resolves, in
 * order, and every byte arrives in order. */
static void record_seq(eddy_future_t *f, void *arg) {
  int *slot = arg;
  *slot = eddy_future_state(f) == EDDY_FUTURE_RESOLVED ? ++seq : -1;
}

START_TEST(test_write_order_slow_reader) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  enum { N = 200 };
  int done_seq[N];
  unsigned rng = 99;
  size_t off = 0;
  for (int i = 0; i < N; i++) {
    size_t n = 1 + sfx_rand(&rng) % (16 * KiB);
    char *chunk = pattern_alloc(n, off);
    eddy_future_t *w = eddy_stream_write(p.ws, chunk, n);
    free(chunk);
    done_seq[i] = 0;
    ck_assert_int_eq(eddy_future_add_done(w, record_seq, &done_seq[i]), 0);
    eddy_future_unref(w);
    off += n;
  }
  sfx_run_for(0.05); /* the reader reads nothing: the writer backs up */
  ck_assert(eddy_stream_writing(p.ws));
  ck_assert(eddy_stream_write_buffer_size(p.ws) > 0);
  ck_assert(eddy_stream_write_buffer_size(p.ws) <= off);
  expect_pattern_partial(p.rs, off, 3000);
  sfx_run_until_flag(&done_seq[N - 1]);
  for (int i = 0; i < N; i++) {
    ck_assert_msg(done_seq[i] > 0, "write %d did not resolve", i);
    if (i > 0)
      ck_assert_msg(done_seq[i] > done_seq[i - 1],
                    "write %d resolved before write %d", i, i - 1);
  }
  ck_assert(!eddy_stream_writing(p.ws));
  ck_assert_uint_eq(eddy_stream_write_buffer_size(p.ws), 0);
}
END_TEST

/* 37. Ten producers each issue awaited writes of 5000 bytes while a
 * consumer reads 5000 at a time: every write future resolves, and since
 * writes go out whole and in order each read is one write. */
typedef struct producer {
  eddy_stream_t *s;
  int id, left, resolved, failed;
  char block[5000];
} producer_t;

static void producer_next(producer_t *pr);

static int writes_left; /* write futures not yet settled */
static int all_writes_settled;

static void producer_written(eddy_future_t *f, void *arg) {
  producer_t *pr = arg;
  if (--writes_left == 0)
    all_writes_settled = 1;
  if (eddy_future_state(f) == EDDY_FUTURE_RESOLVED)
    pr->resolved++;
  else
    pr->failed++;
  if (pr->left > 0)
    producer_next(pr);
}

static void producer_next(producer_t *pr) {
  pr->left--;
  eddy_future_t *f = eddy_stream_write(pr->s, pr->block, sizeof pr->block);
  ck_assert(f != NULL);
  ck_assert_int_eq(eddy_future_add_done(f, producer_written, pr), 0);
  eddy_future_unref(f);
}

START_TEST(test_future_write) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  enum { NPROD = 10 };
  int per = sfx_slow() ? 50 : 1000;
  static producer_t prod[NPROD];
  int seen[NPROD] = {0};
  writes_left = NPROD * per;
  all_writes_settled = 0;
  for (int i = 0; i < NPROD; i++) {
    prod[i].s = p.ws;
    prod[i].id = i;
    prod[i].left = per;
    prod[i].resolved = prod[i].failed = 0;
    memset(prod[i].block, 'A' + i, sizeof prod[i].block);
    producer_next(&prod[i]);
  }
  for (int k = 0; k < NPROD * per; k++) {
    eddy_future_t *f = eddy_stream_read_bytes(p.rs, 5000, 0);
    sfx_wait(f);
    ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
    const char *v = eddy_future_value(f);
    int id = v[0] - 'A';
    ck_assert(id >= 0 && id < NPROD);
    /* (one assertion per read: Check reports every ck_assert over a pipe) */
    ck_assert_msg(memcmp(v, prod[id].block, 5000) == 0,
                  "read %d mixes two writes", k);
    seen[id]++;
    eddy_future_unref(f);
  }
  sfx_run_until_flag(&all_writes_settled);
  for (int i = 0; i < NPROD; i++) {
    ck_assert_int_eq(seen[i], per);
    ck_assert_int_eq(prod[i].failed, 0);
    ck_assert_int_eq(prod[i].resolved, per);
  }
}
END_TEST

/* W2: max_write_buffer_size rejects a write that would pass it; nothing is
 * queued, lost or reordered, and the stream stays open. */
START_TEST(test_write_buffer_full) {
  eddy_stream_options_t wo;
  eddy_stream_options_init(&wo);
  wo.max_write_buffer_size = 64 * KiB;
  sfx_pair_t p = sfx_pair(KIND, NULL, &wo, 1);
  char *first = pattern_alloc(64 * KiB, 0);
  eddy_future_t *w1 = eddy_stream_write(p.ws, first, 64 * KiB);
  free(first);
  ck_assert_int_ne(eddy_future_state(w1), EDDY_FUTURE_REJECTED);
  sfx_run_for(0.05); /* the kernel takes what it can; the rest stays queued */
  size_t queued = eddy_stream_write_buffer_size(p.ws);
  ck_assert_msg(queued > 0, "64 KiB into shrunk kernel buffers must queue");
  char *junk = malloc(64 * KiB);
  memset(junk, 'X', 64 * KiB);
  eddy_future_t *w2 = eddy_stream_write(p.ws, junk, 64 * KiB);
  free(junk);
  sfx_assert_done(w2);
  sfx_expect_error(w2, EDDY_EBUFFERFULL, SFX_ANY);
  ck_assert_uint_eq(eddy_stream_write_buffer_size(p.ws), queued);
  ck_assert(!eddy_stream_closed(p.ws));
  free_calls = 0;
  char *tj = malloc(64 * KiB);
  memset(tj, 'Y', 64 * KiB);
  w2 = eddy_stream_write_take(p.ws, tj, 64 * KiB, counting_free);
  sfx_expect_error(w2, EDDY_EBUFFERFULL, SFX_ANY);
  sfx_run_until_flag(&free_calls);
  ck_assert_int_eq(free_calls, 1);
  char *tail = pattern_alloc(100, 64 * KiB);
  eddy_future_t *w3 = eddy_stream_write(p.ws, tail, 100);
  free(tail);
  ck_assert_int_ne(eddy_future_state(w3), EDDY_FUTURE_REJECTED);
  expect_pattern(p.rs, 64 * KiB + 100, 0);
  sfx_expect_ok(w1);
  sfx_expect_ok(w3);
}
END_TEST

/* W2/Q15, Tornado's reading: a single write larger than the cap is
 * rejected even with an empty queue (the check happens before sending). */
START_TEST(test_write_buffer_full_single) {
  eddy_stream_options_t wo;
  eddy_stream_options_init(&wo);
  wo.max_write_buffer_size = 64 * KiB;
  sfx_pair_t p = sfx_pair(KIND, NULL, &wo, 0);
  char *big = pattern_alloc(64 * KiB + 1, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, big, 64 * KiB + 1);
  free(big);
  sfx_assert_done(w);
  sfx_expect_error(w, EDDY_EBUFFERFULL, SFX_ANY);
  ck_assert(!eddy_stream_closed(p.ws));
  sfx_write_str(p.ws, "ok");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 2, 0), "ok");
}
END_TEST

/* Watermarks: write_blocked past the high mark, drain() resolves at the
 * low mark. */
START_TEST(test_watermarks_drain) {
  eddy_stream_options_t wo;
  eddy_stream_options_init(&wo);
  wo.write_high_watermark = 16 * KiB;
  wo.write_low_watermark = 4 * KiB;
  sfx_pair_t p = sfx_pair(KIND, NULL, &wo, 1);
  eddy_future_t *d = eddy_stream_drain(p.ws);
  sfx_expect_ok(d); /* nothing queued */
  ck_assert(!eddy_stream_write_blocked(p.ws));
  size_t len = 256 * KiB;
  char *data = pattern_alloc(len, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, len);
  free(data);
  ck_assert(eddy_stream_write_buffer_size(p.ws) > 16 * KiB);
  ck_assert(eddy_stream_write_blocked(p.ws));
  d = eddy_stream_drain(p.ws);
  sfx_run_for(0.05);
  ck_assert(!eddy_future_done(d));
  ck_assert(eddy_stream_write_blocked(p.ws));
  expect_pattern_partial(p.rs, len, 16 * KiB);
  sfx_expect_ok(d);
  ck_assert(eddy_stream_write_buffer_size(p.ws) <= 4 * KiB);
  ck_assert(!eddy_stream_write_blocked(p.ws));
  sfx_expect_ok(w);
}
END_TEST

/* Default watermarks: high 1 MiB. */
START_TEST(test_watermarks_default) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  char *data = pattern_alloc(3 * MiB, 0);
  eddy_future_t *w1 = eddy_stream_write(p.ws, data, 512 * KiB);
  ck_assert(eddy_stream_write_buffer_size(p.ws) <= MiB);
  ck_assert(!eddy_stream_write_blocked(p.ws));
  eddy_future_t *w2 = eddy_stream_write(p.ws, data + 512 * KiB,
                                        3 * MiB - 512 * KiB);
  free(data);
  ck_assert(eddy_stream_write_buffer_size(p.ws) > MiB);
  ck_assert(eddy_stream_write_blocked(p.ws));
  eddy_future_t *d = eddy_stream_drain(p.ws);
  expect_pattern_partial(p.rs, 3 * MiB, 64 * KiB);
  sfx_expect_ok(d);
  ck_assert_uint_eq(eddy_stream_write_buffer_size(p.ws), 0);
  ck_assert(!eddy_stream_write_blocked(p.ws));
  sfx_expect_ok(w1);
  sfx_expect_ok(w2);
}
END_TEST

/* drain() is rejected with ECLOSED if the stream closes first. */
START_TEST(test_drain_closed) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  char *data = pattern_alloc(2 * MiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, 2 * MiB);
  free(data);
  eddy_future_t *d = eddy_stream_drain(p.ws);
  ck_assert(!eddy_future_done(d));
  eddy_stream_close(p.ws, 0);
  sfx_expect_error(d, EDDY_ECLOSED, SFX_ANY);
  sfx_expect_error(w, EDDY_ECLOSED, SFX_ANY);
}
END_TEST

/* drain() on a stream that is already closed is rejected at once with
 * EDDY_ECLOSED (cause: why it closed), like a write. */
START_TEST(test_drain_already_closed) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_stream_close(p.ws, 0);
  eddy_future_t *d = eddy_stream_drain(p.ws);
  sfx_assert_done(d);
  sfx_expect_error(d, EDDY_ECLOSED, 0);
  eddy_stream_close(p.rs, -EPROTO);
  d = eddy_stream_drain(p.rs);
  sfx_assert_done(d);
  sfx_expect_error(d, EDDY_ECLOSED, -EPROTO);
}
END_TEST

/* Writes on a closed stream fail at once; nothing is queued. */
START_TEST(test_write_closed) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_stream_close(p.ws, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, "x", 1);
  sfx_assert_done(w);
  sfx_expect_error(w, EDDY_ECLOSED, SFX_ANY);
  w = eddy_stream_write_borrowed(p.ws, "x", 1);
  sfx_assert_done(w);
  sfx_expect_error(w, EDDY_ECLOSED, SFX_ANY);
  ck_assert(!eddy_stream_writing(p.ws));
  ck_assert_uint_eq(eddy_stream_write_buffer_size(p.ws), 0);
}
END_TEST

/* close_when_drained: everything queued goes out, then the stream closes
 * cleanly. */
START_TEST(test_close_when_drained) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  size_t len = MiB;
  char *data = pattern_alloc(len, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, len);
  free(data);
  eddy_stream_close_when_drained(p.ws);
  ck_assert(!eddy_stream_closed(p.ws));
  eddy_future_t *f = eddy_stream_read_until_close(p.rs);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), len);
  ck_assert(sfx_pattern_check(eddy_future_value(f), len, 0));
  eddy_future_unref(f);
  sfx_expect_ok(w);
  sfx_run_until_closed(p.ws);
  ck_assert_int_eq(eddy_stream_error(p.ws), 0);
}
END_TEST

/* close_when_drained on an idle stream closes it. */
START_TEST(test_close_when_drained_idle) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_stream_close_when_drained(p.ws);
  sfx_run_until_closed(p.ws);
  sfx_expect_str(eddy_stream_read_until_close(p.rs), "");
}
END_TEST

/* SIGPIPE safety must not come from changing the process's signal state:
 * the disposition stays default, the signal unblocked, none left pending. */
static void assert_sigpipe_untouched(void) {
  struct sigaction sa;
  ck_assert(sigaction(SIGPIPE, NULL, &sa) == 0);
  ck_assert_msg(sa.sa_handler == SIG_DFL,
                "the library changed the SIGPIPE disposition");
  sigset_t set;
  ck_assert(sigprocmask(SIG_BLOCK, NULL, &set) == 0);
  ck_assert_msg(!sigismember(&set, SIGPIPE), "SIGPIPE left blocked");
  ck_assert(sigpending(&set) == 0);
  ck_assert_msg(!sigismember(&set, SIGPIPE), "a SIGPIPE is left pending");
}

/* SIGPIPE safety: writing to a pipe or socket whose reader is gone fails
 * with EPIPE (or ECONNRESET) instead of killing the process. */
START_TEST(test_no_sigpipe) {
  int peer;
  eddy_stream_t *ws = sfx_raw_peer(KIND, 0, NULL, 0, &peer);
  close(peer);
  char *data = pattern_alloc(64 * KiB, 0);
  int failed = 0;
  for (int i = 0; i < 100 && !failed; i++) {
    eddy_future_t *w = eddy_stream_write(ws, data, 64 * KiB);
    sfx_wait(w);
    if (eddy_future_state(w) == EDDY_FUTURE_REJECTED) {
      failed = 1;
      ck_assert_int_eq(eddy_future_error(w), EDDY_ECLOSED);
      int cause = eddy_future_cause(w);
      ck_assert_msg(cause == -EPIPE || cause == -ECONNRESET,
                    "cause %s, expected EPIPE or ECONNRESET",
                    eddy_err_name(cause));
    }
    eddy_future_unref(w);
  }
  free(data);
  ck_assert_msg(failed, "writes to a closed peer never failed");
  ck_assert(eddy_stream_closed(ws));
  ck_assert(eddy_stream_error(ws) == -EPIPE ||
            eddy_stream_error(ws) == -ECONNRESET);
  assert_sigpipe_untouched();
}
END_TEST

/* The same through write_file (sendfile raises SIGPIPE on sockets too). */
START_TEST(test_no_sigpipe_write_file) {
  int peer;
  eddy_stream_t *ws = sfx_raw_peer(KIND, 0, NULL, 0, &peer);
  close(peer);
  char path[] = "/tmp/eddy-test-stream-XXXXXX";
  int fd = mkstemp(path);
  ck_assert(fd >= 0);
  unlink(path);
  char *data = pattern_alloc(64 * KiB, 0);
  sfx_raw_write_all(fd, data, 64 * KiB);
  free(data);
  int failed = 0;
  for (int i = 0; i < 100 && !failed; i++) {
    eddy_future_t *w = eddy_stream_write_file(ws, fd, 0, 64 * KiB);
    sfx_wait(w);
    if (eddy_future_state(w) == EDDY_FUTURE_REJECTED) {
      failed = 1;
      ck_assert_int_eq(eddy_future_error(w), EDDY_ECLOSED);
      int cause = eddy_future_cause(w);
      ck_assert_msg(cause == -EPIPE || cause == -ECONNRESET, "cause %s",
                    eddy_err_name(cause));
    }
    eddy_future_unref(w);
  }
  close(fd);
  ck_assert_msg(failed, "file writes to a closed peer never failed");
  assert_sigpipe_untouched();
}
END_TEST

/* ======================================================================== */
/* Closing, close callback, wait_closed                                      */
/* ======================================================================== */

/* The close callback runs exactly once, from the loop; close is
 * idempotent and the first close's cause sticks. */
START_TEST(test_close_callback_once) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  eddy_stream_close(p.rs, 0);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_msg(cr.calls == 0, "close callback ran inside eddy_stream_close");
  eddy_stream_close(p.rs, 0);
  eddy_stream_close(p.rs, -EIO);
  sfx_run_until_flag(&cr.calls);
  sfx_run_for(0.05);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert_int_eq(cr.error, 0);
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
  ck_assert_int_eq(eddy_stream_fd(p.rs), -1);
}
END_TEST

/* The close callback never fires for a stream that stays open. */
START_TEST(test_close_callback_not_for_open_stream) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0}, cw = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  eddy_stream_set_close_callback(p.ws, on_close, &cw);
  for (int i = 0; i < 3; i++) {
    sfx_write_str(p.ws, "ping");
    sfx_expect_str(eddy_stream_read_bytes(p.rs, 4, 0), "ping");
  }
  sfx_run_for(0.05);
  ck_assert_int_eq(cr.calls, 0);
  ck_assert_int_eq(cw.calls, 0);
  ck_assert(!eddy_stream_closed(p.rs) && !eddy_stream_closed(p.ws));
  /* Replacing the callback with NULL clears it: no call on close. */
  eddy_stream_set_close_callback(p.ws, NULL, NULL);
  eddy_stream_close(p.ws, 0);
  sfx_run_until_flag(&cr.calls); /* rs notices the peer's close */
  sfx_run_for(0.05);
  ck_assert_int_eq(cw.calls, 0);
  ck_assert_int_eq(cr.calls, 1);
}
END_TEST

/* On close, the futures it fails run their callbacks before the close
 * callback and the closed-future. */
START_TEST(test_close_order) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0};
  done_rec_t dr = {0}, dc = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  eddy_future_t *r = eddy_stream_read_bytes(p.rs, 10, 0);
  eddy_future_t *wc = eddy_stream_wait_closed(p.rs);
  ck_assert_int_eq(eddy_future_add_done(r, on_done, &dr), 0);
  ck_assert_int_eq(eddy_future_add_done(wc, on_done, &dc), 0);
  eddy_stream_close(p.rs, 0);
  sfx_run_until_flag(&cr.calls);
  sfx_run_until_flag(&dc.calls);
  ck_assert_int_eq(dr.calls, 1);
  ck_assert_int_eq(dr.error, EDDY_ECLOSED);
  ck_assert_msg(dr.seq < cr.seq, "close callback ran before the read failed");
  ck_assert_msg(dr.seq < dc.seq, "closed-future ran before the read failed");
  eddy_future_unref(r);
  eddy_future_unref(wc);
}
END_TEST

/* Setting a close callback on a closed stream queues it (not inline). */
START_TEST(test_close_callback_after_close) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_stream_close(p.rs, -EPROTO);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  ck_assert_int_eq(cr.calls, 0);
  sfx_run_until_flag(&cr.calls);
  sfx_run_for(0.05);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert_int_eq(cr.error, -EPROTO);
}
END_TEST

/* close(error): pending operations carry the cause; the stream records it
 * and hands it to the close callback. */
START_TEST(test_close_with_error) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  eddy_future_t *r = eddy_stream_read_bytes(p.rs, 10, 0);
  eddy_stream_close(p.rs, -EPROTO);
  sfx_expect_error(r, EDDY_ECLOSED, -EPROTO);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), -EPROTO);
  ck_assert_ptr_nonnull(eddy_stream_error_message(p.rs));
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.error, -EPROTO);
  /* A new read on the closed stream fails at once with the same cause. */
  r = eddy_stream_read_bytes(p.rs, 1, 0);
  sfx_assert_done(r);
  sfx_expect_error(r, EDDY_ECLOSED, -EPROTO);
}
END_TEST

/* A local close keeps the buffered input readable. */
START_TEST(test_close_keeps_buffered_input) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  sfx_write_str(p.ws, "abcdef");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 1, 0), "a");
  sfx_run_until_buffered(p.rs, 5);
  eddy_stream_close(p.rs, 0);
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 5, 0);
  sfx_assert_done(f);
  sfx_expect_str(f, "bcdef");
  sfx_expect_error(eddy_stream_read_bytes(p.rs, 1, 0), EDDY_ECLOSED, SFX_ANY);
}
END_TEST

/* close() drops unsent data and rejects pending writes. */
START_TEST(test_close_rejects_pending_writes) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w1 = eddy_stream_write(p.ws, data, MiB);
  eddy_future_t *w2 = eddy_stream_write(p.ws, data, MiB);
  free(data);
  ck_assert(eddy_stream_writing(p.ws));
  eddy_stream_close(p.ws, 0);
  ck_assert(!eddy_stream_writing(p.ws));
  ck_assert_uint_eq(eddy_stream_write_buffer_size(p.ws), 0);
  sfx_expect_error(w1, EDDY_ECLOSED, 0);
  sfx_expect_error(w2, EDDY_ECLOSED, 0);
}
END_TEST

/* wait_closed: pending while open, resolved (no value) once closed by the
 * peer or locally; one asked for after the close resolves too. */
START_TEST(test_wait_closed) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr); /* watch the peer */
  eddy_future_t *f = eddy_stream_wait_closed(p.rs);
  sfx_run_for(0.05);
  ck_assert(!eddy_future_done(f));
  eddy_stream_close(p.ws, 0);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_null(eddy_future_value(f));
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
  eddy_future_unref(f);
  f = eddy_stream_wait_closed(p.rs);
  sfx_expect_ok(f);

  f = eddy_stream_wait_closed(p.ws); /* closed locally */
  sfx_expect_ok(f);
}
END_TEST

/* wait_closed alone (no close callback, no read ever issued) watches an
 * idle stream, so the peer's close is noticed promptly. */
START_TEST(test_wait_closed_without_callback) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f = eddy_stream_wait_closed(p.rs);
  sfx_run_for(0.05);
  ck_assert(!eddy_future_done(f));
  ck_assert(!eddy_stream_closed(p.rs));
  eddy_stream_close(p.ws, 0);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
  eddy_future_unref(f);
}
END_TEST

/* Each wait_closed call has a future of its own: cancelling one (or a
 * timeout around one) leaves the others waiting. */
START_TEST(test_wait_closed_independent) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  done_rec_t d1 = {0}, d2 = {0};
  eddy_future_t *f1 = eddy_stream_wait_closed(p.rs);
  eddy_future_t *f2 = eddy_stream_wait_closed(p.rs);
  ck_assert_ptr_ne(f1, f2);
  ck_assert_int_eq(eddy_future_add_done(f1, on_done, &d1), 0);
  ck_assert_int_eq(eddy_future_add_done(f2, on_done, &d2), 0);
  ck_assert_int_eq(eddy_future_cancel(f1), 0);
  ck_assert_int_eq(eddy_future_state(f1), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(eddy_future_state(f2), EDDY_FUTURE_PENDING);
  sfx_expect_error(eddy_with_timeout(eddy_stream_wait_closed(p.rs), 0.05),
                   EDDY_ETIMEOUT, SFX_ANY);
  sfx_run_for(0.05);
  ck_assert_int_eq(eddy_future_state(f2), EDDY_FUTURE_PENDING);
  ck_assert_int_eq(d1.calls, 1);
  ck_assert_int_eq(d2.calls, 0);
  eddy_stream_close(p.ws, 0);
  sfx_wait(f2);
  ck_assert_int_eq(eddy_future_state(f2), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(eddy_future_state(f1), EDDY_FUTURE_CANCELLED);
  sfx_run_for(0.05);
  ck_assert_int_eq(d1.calls, 1);
  ck_assert_int_eq(d2.calls, 1);
  eddy_future_unref(f1);
  eddy_future_unref(f2);
  /* Asked for after the close: resolved at once, and distinct again. */
  f1 = eddy_stream_wait_closed(p.rs);
  f2 = eddy_stream_wait_closed(p.rs);
  ck_assert_ptr_ne(f1, f2);
  sfx_assert_done(f1);
  ck_assert_int_eq(eddy_future_cancel(f1), EDDY_ESETTLED);
  sfx_expect_ok(f1);
  sfx_expect_ok(f2);
}
END_TEST

/* The last reference goes while wait_closed futures are pending: they
 * resolve (the stream closes and is freed after them), one cancelled
 * before stays cancelled. */
START_TEST(test_wait_closed_unref) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_future_t *f1 = eddy_stream_wait_closed(p.rs);
  eddy_future_t *f2 = eddy_stream_wait_closed(p.rs);
  ck_assert_int_eq(eddy_future_cancel(f2), 0);
  sfx_release(&p.rs);
  sfx_expect_ok(f1);
  ck_assert_int_eq(eddy_future_state(f2), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(f2);
}
END_TEST

/* ======================================================================== */
/* References                                                                */
/* ======================================================================== */

static void assert_fd_closed(int fd) {
  errno = 0;
  ck_assert_msg(fcntl(fd, F_GETFD) == -1 && errno == EBADF,
                "fd %d should have been closed", fd);
}

/* Guard against a second close(): the next fd we open takes the stream's
 * old number; it must survive the loop running on. */
static void assert_fd_not_closed_again(int old_fd) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ck_assert(fd >= 0);
  sfx_run_for(0.05);
  ck_assert_msg(fcntl(fd, F_GETFD) != -1,
                "fd %d (was %d) was closed behind our back", fd, old_fd);
  close(fd);
}

/* Dropping the only reference while a read is pending: the read still
 * completes; then the stream closes its fd, once. */
START_TEST(test_unref_with_pending_read) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  int rfd = eddy_stream_fd(p.rs);
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 5, 0);
  sfx_release(&p.rs);
  sfx_run_for(0.05);
  ck_assert_msg(fcntl(rfd, F_GETFD) != -1,
                "a stream with a pending read must stay open");
  sfx_write_str(p.ws, "hello");
  sfx_expect_str(f, "hello");
  sfx_run_for(0.05);
  assert_fd_closed(rfd);
  assert_fd_not_closed_again(rfd);
}
END_TEST

/* Dropping the only reference of an idle stream closes it. */
START_TEST(test_unref_idle_closes) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  int wfd = eddy_stream_fd(p.ws);
  sfx_release(&p.ws);
  sfx_run_for(0.01);
  assert_fd_closed(wfd);
  /* The peer sees the close as EOF. */
  sfx_expect_str(eddy_stream_read_until_close(p.rs), "");
  assert_fd_not_closed_again(wfd);
}
END_TEST

/* Dropping the only reference while writes are pending: they still go
 * out, then the stream closes (the peer sees every byte, then EOF). */
START_TEST(test_unref_with_pending_write) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, MiB);
  free(data);
  ck_assert(!eddy_future_done(w));
  sfx_release(&p.ws);
  eddy_future_t *f = eddy_stream_read_until_close(p.rs);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), MiB);
  ck_assert(sfx_pattern_check(eddy_future_value(f), MiB, 0));
  eddy_future_unref(f);
  sfx_expect_ok(w);
}
END_TEST

/* A reference taken with eddy_stream_ref keeps the stream open. */
START_TEST(test_ref_keeps_open) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_stream_t *extra = eddy_stream_ref(p.rs);
  ck_assert_ptr_eq(extra, p.rs);
  int rfd = eddy_stream_fd(p.rs);
  sfx_release(&p.rs);
  sfx_run_for(0.05);
  ck_assert(fcntl(rfd, F_GETFD) != -1);
  ck_assert(!eddy_stream_closed(extra));
  sfx_write_str(p.ws, "x");
  sfx_expect_str(eddy_stream_read_bytes(extra, 1, 0), "x");
  eddy_stream_unref(extra);
  sfx_run_for(0.01);
  assert_fd_closed(rfd);
  eddy_stream_unref(NULL); /* allowed */
}
END_TEST

/* ======================================================================== */
/* Deadlines                                                                 */
/* ======================================================================== */

/* read_timeout: a pending read that waits too long closes the stream with
 * EDDY_ETIMEOUT; an idle stream (no read pending) is not affected. */
START_TEST(test_read_timeout) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.read_timeout = 0.05;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  sfx_run_for(0.15);
  ck_assert(!eddy_stream_closed(p.rs));
  eddy_future_t *f = eddy_stream_read_bytes(p.rs, 10, 0);
  sfx_expect_error(f, EDDY_ECLOSED, EDDY_ETIMEOUT);
  ck_assert(eddy_stream_closed(p.rs));
  ck_assert_int_eq(eddy_stream_error(p.rs), EDDY_ETIMEOUT);
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.error, EDDY_ETIMEOUT);
}
END_TEST

/* idle_timeout: a stream that sees no I/O closes with EDDY_ETIMEOUT. */
START_TEST(test_idle_timeout) {
  eddy_stream_options_t ro;
  eddy_stream_options_init(&ro);
  ro.idle_timeout = 0.1;
  sfx_pair_t p = sfx_pair(KIND, &ro, NULL, 0);
  sfx_run_until_closed(p.rs);
  ck_assert_int_eq(eddy_stream_error(p.rs), EDDY_ETIMEOUT);
  ck_assert(!eddy_stream_closed(p.ws));
}
END_TEST

/* write_timeout: a queue that makes no progress closes the stream. */
START_TEST(test_write_timeout) {
  eddy_stream_options_t wo;
  eddy_stream_options_init(&wo);
  wo.write_timeout = 0.1;
  sfx_pair_t p = sfx_pair(KIND, NULL, &wo, 1);
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, MiB);
  free(data);
  sfx_expect_error(w, EDDY_ECLOSED, EDDY_ETIMEOUT);
  ck_assert(eddy_stream_closed(p.ws));
  ck_assert_int_eq(eddy_stream_error(p.ws), EDDY_ETIMEOUT);
}
END_TEST

/* ======================================================================== */
/* State and socket options                                                  */
/* ======================================================================== */

START_TEST(test_options_init) {
  eddy_stream_options_t o;
  memset(&o, 0xa5, sizeof o);
  eddy_stream_options_init(&o);
  ck_assert_uint_eq(o.max_buffer_size, 0);
  ck_assert_uint_eq(o.read_chunk_size, 0);
  ck_assert_uint_eq(o.max_write_buffer_size, 0);
  ck_assert_uint_eq(o.write_high_watermark, 0);
  ck_assert_uint_eq(o.write_low_watermark, 0);
  ck_assert(o.connect_timeout == 0 && o.read_timeout == 0);
  ck_assert(o.write_timeout == 0 && o.idle_timeout == 0);
}
END_TEST

START_TEST(test_state_queries) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 1);
  ck_assert_ptr_eq(eddy_stream_loop(p.rs), sfx_loop);
  ck_assert(eddy_stream_fd(p.rs) >= 0);
  ck_assert(!eddy_stream_closed(p.rs));
  ck_assert(!eddy_stream_reading(p.rs));
  ck_assert(!eddy_stream_writing(p.ws));
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
  ck_assert_ptr_null(eddy_stream_error_message(p.rs));
  ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 0);
  ck_assert_uint_eq(eddy_stream_write_buffer_size(p.ws), 0);
  eddy_future_t *r = eddy_stream_read_bytes(p.rs, 1, 0);
  ck_assert(eddy_stream_reading(p.rs));
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, MiB);
  free(data);
  ck_assert(eddy_stream_writing(p.ws));
  ck_assert(eddy_stream_write_buffer_size(p.ws) > 0);
  sfx_wait(r);
  ck_assert(!eddy_stream_reading(p.rs));
  eddy_future_unref(r);
  expect_pattern(p.rs, MiB - 1, 1);
  sfx_expect_ok(w);
  ck_assert(!eddy_stream_writing(p.ws));
}
END_TEST

/* The constructors make the fd non-blocking and close-on-exec. */
START_TEST(test_constructor_fd_flags) {
  int fd = socket(AF_INET, SOCK_STREAM, 0); /* blocking, inheritable */
  ck_assert(fd >= 0);
  eddy_stream_t *s = sfx_track(eddy_stream_new_socket(sfx_loop, fd, NULL));
  ck_assert_int_eq(eddy_stream_fd(s), fd);
  ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
  ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ck_assert_int_eq(eddy_stream_peer_address(s, &ss, &len), -ENOTCONN);

  int pfd[2];
  ck_assert(pipe(pfd) == 0);
  eddy_stream_t *r = sfx_track(eddy_stream_new_pipe(sfx_loop, pfd[0], NULL));
  eddy_stream_t *w = sfx_track(eddy_stream_new_pipe(sfx_loop, pfd[1], NULL));
  for (int i = 0; i < 2; i++) {
    ck_assert(fcntl(pfd[i], F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(pfd[i], F_GETFD) & FD_CLOEXEC);
  }
  len = sizeof ss;
  ck_assert_int_eq(eddy_stream_peer_address(r, &ss, &len), -ENOTSOCK);
  sfx_write_str(w, "pipe");
  sfx_expect_str(eddy_stream_read_bytes(r, 4, 0), "pipe");
}
END_TEST

/* set_nodelay sets TCP_NODELAY on TCP and is a no-op returning 0
 * elsewhere and on closed streams. */
START_TEST(test_set_nodelay) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  eddy_stream_t *both[2] = {p.rs, p.ws};
  for (int i = 0; i < 2; i++) {
    eddy_stream_t *s = both[i];
    ck_assert_int_eq(eddy_stream_set_nodelay(s, 1), 0);
    if (KIND == SFX_TCP) {
      int on = 0;
      socklen_t len = sizeof on;
      ck_assert(getsockopt(eddy_stream_fd(s), IPPROTO_TCP, TCP_NODELAY, &on,
                           &len) == 0);
      ck_assert_int_ne(on, 0);
      ck_assert_int_eq(eddy_stream_set_nodelay(s, 0), 0);
      len = sizeof on;
      ck_assert(getsockopt(eddy_stream_fd(s), IPPROTO_TCP, TCP_NODELAY, &on,
                           &len) == 0);
      ck_assert_int_eq(on, 0);
    }
  }
  sfx_write_str(p.ws, "ok");
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 2, 0), "ok");
  eddy_stream_close(p.rs, 0);
  ck_assert_int_eq(eddy_stream_set_nodelay(p.rs, 1), 0);
}
END_TEST

/* eddy_format_address reads only the bytes the kernel reported: an
 * unnamed AF_UNIX peer (a socketpair end) is just its family, and the
 * rest of sun_path, garbage here, never reaches the text. */
START_TEST(test_format_address) {
  char buf[EDDY_ADDRSTRLEN];
  struct sockaddr_storage ss;
  struct sockaddr_un *un = (struct sockaddr_un *)&ss;
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(8888)};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
  socklen_t len;
  int fds[2];

  ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr), 1);
  ck_assert_int_eq(eddy_format_address((struct sockaddr *)&v4, sizeof v4, buf, sizeof buf), 14);
  ck_assert_str_eq(buf, "127.0.0.1:8888");
  ck_assert_int_eq(inet_pton(AF_INET6, "fe80::1", &v6.sin6_addr), 1);
  ck_assert_int_gt(eddy_format_address((struct sockaddr *)&v6, sizeof v6, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "[fe80::1]:443");
  v6.sin6_scope_id = if_nametoindex("lo"); /* a zone is part of the address */
  ck_assert_uint_ne(v6.sin6_scope_id, 0);
  ck_assert_int_gt(eddy_format_address((struct sockaddr *)&v6, sizeof v6, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "[fe80::1%lo]:443");
  /* A length too short for the family is refused, not read past. */
  ck_assert_int_eq(eddy_format_address((struct sockaddr *)&v4, sizeof v4 - 1, buf, sizeof buf),
                   -EINVAL);
  ck_assert_str_eq(buf, "?");
  ck_assert_int_eq(eddy_format_address((struct sockaddr *)&v6, sizeof v4, buf, sizeof buf),
                   -EINVAL);

  /* Real sockets, as getpeername reports them: IPv4, IPv6, unnamed unix. */
  sfx_tcp_fds(fds);
  len = sizeof ss;
  ck_assert_int_eq(getpeername(fds[0], (struct sockaddr *)&ss, &len), 0);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%u",
           (unsigned)ntohs(((struct sockaddr_in *)&ss)->sin_port));
  ck_assert_int_eq(eddy_format_address((struct sockaddr *)&ss, len, buf, sizeof buf),
                   (int)strlen(want));
  ck_assert_str_eq(buf, want);
  close(fds[0]);
  close(fds[1]);
  int l = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(l, 0);
  v6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
  ck_assert_int_eq(bind(l, (struct sockaddr *)&v6, sizeof v6), 0);
  len = sizeof ss;
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&ss, &len), 0);
  ck_assert_int_gt(eddy_format_address((struct sockaddr *)&ss, len, buf, sizeof buf), 0);
  snprintf(want, sizeof want, "[::1]:%u", (unsigned)ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  ck_assert_str_eq(buf, want);
  close(l);
  sfx_unix_fds(fds);
  memset(&ss, 'X', sizeof ss);
  len = sizeof ss;
  ck_assert_int_eq(getpeername(fds[0], (struct sockaddr *)&ss, &len), 0);
  ck_assert_uint_eq(len, sizeof(sa_family_t));
  ck_assert_int_gt(eddy_format_address((struct sockaddr *)&ss, len, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "unix:(unnamed)");
  close(fds[0]);
  close(fds[1]);

  /* Named and abstract unix addresses end where their length says. */
  memset(&ss, 'X', sizeof ss);
  un->sun_family = AF_UNIX;
  strcpy(un->sun_path, "/run/eddy.sock");
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(un->sun_path) + 1);
  eddy_format_address((struct sockaddr *)&ss, len, buf, sizeof buf);
  ck_assert_str_eq(buf, "unix:/run/eddy.sock");
  eddy_format_address((struct sockaddr *)&ss, len - 1, buf, sizeof buf); /* no NUL counted */
  ck_assert_str_eq(buf, "unix:/run/eddy.sock");
  memcpy(un->sun_path, "\0eddy\0x", 7);
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 7);
  eddy_format_address((struct sockaddr *)&ss, len, buf, sizeof buf);
  ck_assert_str_eq(buf, "unix:@eddy?x");
  /* The longest path there is still fits. */
  memset(un->sun_path, 'p', sizeof un->sun_path);
  ck_assert_int_eq(eddy_format_address((struct sockaddr *)&ss, sizeof(struct sockaddr_un), buf,
                                       sizeof buf),
                   (int)(5 + sizeof un->sun_path));

  /* Too small: an error, and a truncated, terminated text. */
  ck_assert_int_eq(eddy_format_address((struct sockaddr *)&v4, sizeof v4, buf, 6), -ENOSPC);
  ck_assert_str_eq(buf, "127.0");
  /* Bad input. */
  ck_assert_int_eq(eddy_format_address(NULL, 0, buf, sizeof buf), -EINVAL);
  ck_assert_str_eq(buf, "?");
  struct sockaddr other = {.sa_family = AF_UNSPEC};
  ck_assert_int_eq(eddy_format_address(&other, sizeof other, buf, sizeof buf), -EINVAL);
  ck_assert_int_eq(eddy_format_address((struct sockaddr *)&v4, sizeof v4, NULL, 0), -EINVAL);
}
END_TEST

/* peer_address of a TCP pair is the other side's local address. */
START_TEST(test_peer_address) {
  sfx_pair_t p = sfx_pair(SFX_TCP, NULL, NULL, 0);
  struct sockaddr_storage ss, local;
  socklen_t len = sizeof ss, llen = sizeof local;
  ck_assert_int_eq(eddy_stream_peer_address(p.rs, &ss, &len), 0);
  ck_assert(getsockname(eddy_stream_fd(p.ws), (struct sockaddr *)&local,
                        &llen) == 0);
  ck_assert_int_eq(ss.ss_family, AF_INET);
  ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
  struct sockaddr_in *a = (struct sockaddr_in *)&ss;
  struct sockaddr_in *b = (struct sockaddr_in *)&local;
  ck_assert_uint_eq(a->sin_port, b->sin_port);
  ck_assert_uint_eq(a->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}
END_TEST

/* ======================================================================== */
/* Peer resets (TCP: SO_LINGER {1, 0} then close sends a RST)                */
/* ======================================================================== */

static void reset_peer(int fd) {
  sfx_set_linger0(fd);
  close(fd);
}

/* 36, adapted: a reset during an event-driven read fails the read with
 * ECLOSED / -ECONNRESET, records the error and runs the close callback
 * exactly once; a reset is not worth a warning (Tornado W7). */
START_TEST(test_peer_reset_pending_read) {
  int peer;
  eddy_stream_t *rs = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(rs, on_close, &cr);
  eddy_future_t *f = eddy_stream_read_bytes(rs, 10, 0);
  sfx_run_for(0.05);
  ck_assert(!eddy_future_done(f));
  reset_peer(peer);
  sfx_expect_error(f, EDDY_ECLOSED, -ECONNRESET);
  ck_assert(eddy_stream_closed(rs));
  ck_assert_int_eq(eddy_stream_error(rs), -ECONNRESET);
  ck_assert_ptr_nonnull(eddy_stream_error_message(rs));
  sfx_run_until_flag(&cr.calls);
  sfx_run_for(0.05);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert_int_eq(cr.error, -ECONNRESET);
  ck_assert_int_eq(sfx_log_count_at_least(EDDY_LOG_WARNING), 0);
}
END_TEST

/* An idle stream with a close callback notices a reset without any read
 * pending (stream.h: setting the callback watches the stream). */
START_TEST(test_idle_reset_noticed) {
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(s, on_close, &cr);
  sfx_run_for(0.05);
  ck_assert_int_eq(cr.calls, 0);
  reset_peer(peer);
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.error, -ECONNRESET);
  ck_assert(eddy_stream_closed(s));
  ck_assert_int_eq(eddy_stream_error(s), -ECONNRESET);
}
END_TEST

/* An idle socket that watches for the peer's close (a close callback)
 * leaves data that arrives in the kernel: it peeks, so nothing is read
 * before a read asks for it (and a STARTTLS peer's first record stays
 * for the filter). A pipe, which cannot be peeked, reads one chunk. */
START_TEST(test_idle_watch_leaves_data_in_kernel) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(p.rs, on_close, &cr);
  sfx_run_for(0.05);
  sfx_write_str(p.ws, "hello");
  sfx_run_for(0.05);
  if (KIND == SFX_PIPE)
    ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 5);
  else
    ck_assert_uint_eq(eddy_stream_read_buffer_size(p.rs), 0);
  ck_assert(!eddy_stream_closed(p.rs));
  sfx_expect_str(eddy_stream_read_bytes(p.rs, 5, 0), "hello");
  /* Idle and empty again: the watch goes on. */
  sfx_run_for(0.05);
  eddy_stream_close(p.ws, 0);
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.error, 0);
}
END_TEST

/* Data the idle peek left in the kernel is taken into the buffer when the
 * stream closes, as the idle read would have: the peer gets a FIN after
 * our last write, not a RST (which could discard it), and the bytes stay
 * readable after the close. */
START_TEST(test_close_after_idle_peek_sends_fin) {
  int peer;
  char buf[64];
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  eddy_future_t *wc = eddy_stream_wait_closed(s);
  sfx_raw_write_all(peer, "extra", 5);
  sfx_run_for(0.05);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(s), 0);
  sfx_write_str(s, "answer");
  eddy_stream_close(s, 0);
  sfx_expect_ok(wc);
  sfx_raw_read_exact(peer, buf, 6);
  ck_assert(memcmp(buf, "answer", 6) == 0);
  errno = 0;
  ck_assert_int_eq(read(peer, buf, sizeof buf), 0); /* FIN, not ECONNRESET */
  close(peer);
  sfx_expect_str(eddy_stream_read_bytes(s, 5, 0), "extra");
}
END_TEST

/* Data left in the kernel by the idle watch, then a reset: still noticed
 * (the error event makes one read, which finds the reset). */
START_TEST(test_idle_unread_then_reset) {
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  eddy_future_t *wc = eddy_stream_wait_closed(s);
  sfx_raw_write_all(peer, "abc", 3);
  sfx_run_for(0.05);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(s), 0);
  ck_assert(!eddy_future_done(wc));
  reset_peer(peer);
  sfx_expect_ok(wc);
  ck_assert(eddy_stream_closed(s));
  ck_assert_int_eq(eddy_stream_error(s), -ECONNRESET);
}
END_TEST

/* An idle stream with only wait_closed notices a reset too. */
START_TEST(test_idle_reset_noticed_wait_closed) {
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  eddy_future_t *wc = eddy_stream_wait_closed(s);
  sfx_run_for(0.05);
  ck_assert(!eddy_future_done(wc));
  reset_peer(peer);
  sfx_expect_ok(wc);
  ck_assert_int_eq(eddy_stream_error(s), -ECONNRESET);
  ck_assert_int_eq(sfx_log_count_at_least(EDDY_LOG_WARNING), 0);
}
END_TEST

/* 35, adapted: a read started after the RST arrived (the stream was not
 * watching) fails with the reset, without a warning. */
START_TEST(test_inline_read_error) {
  int peer;
  eddy_stream_t *rs = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  reset_peer(peer);
  sfx_run_for(0.05);
  eddy_future_t *f = eddy_stream_read_bytes(rs, 1, 0);
  sfx_expect_error(f, EDDY_ECLOSED, -ECONNRESET);
  ck_assert(eddy_stream_closed(rs));
  ck_assert_int_eq(eddy_stream_error(rs), -ECONNRESET);
  ck_assert_int_eq(sfx_log_count_at_least(EDDY_LOG_WARNING), 0);
}
END_TEST

/* read_until_close on a reset resolves with the data (Tornado's success)
 * and makes the reset visible through eddy_stream_error(). */
START_TEST(test_read_until_close_reset) {
  int peer;
  eddy_stream_t *rs = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  eddy_future_t *f = eddy_stream_read_until_close(rs);
  sfx_raw_write_all(peer, "abc", 3);
  sfx_run_until_buffered(rs, 3);
  reset_peer(peer);
  sfx_expect_str(f, "abc");
  ck_assert(eddy_stream_closed(rs));
  ck_assert_int_eq(eddy_stream_error(rs), -ECONNRESET);
}
END_TEST

/* W7: a reset while writes are pending fails them with ECLOSED and the
 * reset (ECONNRESET or EPIPE); later writes fail at once. */
START_TEST(test_peer_reset_pending_write) {
  int peer;
  eddy_stream_t *ws = sfx_raw_peer(SFX_TCP, 0, NULL, 1, &peer);
  char *data = pattern_alloc(MiB, 0);
  eddy_future_t *w1 = eddy_stream_write(ws, data, MiB);
  eddy_future_t *w2 = eddy_stream_write(ws, data, 100);
  free(data);
  sfx_run_for(0.05);
  ck_assert(!eddy_future_done(w1));
  reset_peer(peer);
  sfx_wait(w1);
  ck_assert_int_eq(eddy_future_error(w1), EDDY_ECLOSED);
  int cause = eddy_future_cause(w1);
  ck_assert_msg(cause == -ECONNRESET || cause == -EPIPE, "cause %s",
                eddy_err_name(cause));
  sfx_expect_error(w2, EDDY_ECLOSED, cause);
  eddy_future_unref(w1);
  ck_assert(eddy_stream_closed(ws));
  ck_assert_int_eq(eddy_stream_error(ws), cause);
  eddy_future_t *w3 = eddy_stream_write(ws, "x", 1);
  sfx_assert_done(w3);
  sfx_expect_error(w3, EDDY_ECLOSED, SFX_ANY);
}
END_TEST

/* shutdown_write: the peer sees EOF after every queued byte and can still
 * answer; later writes fail. Sockets only. */
START_TEST(test_shutdown_write) {
  sfx_kind_t kind = _i == 0 ? SFX_TCP : SFX_UNIX;
  sfx_pair_t p = sfx_pair(kind, NULL, NULL, 1);
  size_t len = 256 * KiB;
  char *data = pattern_alloc(len, 0);
  eddy_future_t *w = eddy_stream_write(p.ws, data, len);
  free(data);
  eddy_future_t *sd = eddy_stream_shutdown_write(p.ws);
  ck_assert_ptr_nonnull(sd);
  eddy_future_t *f = eddy_stream_read_until_close(p.rs);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), len);
  ck_assert(sfx_pattern_check(eddy_future_value(f), len, 0));
  eddy_future_unref(f);
  sfx_expect_ok(w);
  sfx_expect_ok(sd);
  ck_assert(!eddy_stream_closed(p.ws));
  eddy_future_t *late = eddy_stream_write(p.ws, "late", 4);
  sfx_assert_done(late);
  sfx_expect_error(late, EDDY_ECLOSED, SFX_ANY);
}
END_TEST

/* Half-close with a raw peer: after our FIN the peer can still send. */
START_TEST(test_shutdown_write_peer_replies) {
  sfx_kind_t kind = _i == 0 ? SFX_TCP : SFX_UNIX;
  int peer;
  eddy_stream_t *s = sfx_raw_peer(kind, 0, NULL, 0, &peer);
  eddy_future_t *w = eddy_stream_write(s, "request", 7);
  sfx_expect_ok(eddy_stream_shutdown_write(s));
  sfx_expect_ok(w);
  char buf[16];
  sfx_raw_read_exact(peer, buf, 7);
  ck_assert(memcmp(buf, "request", 7) == 0);
  ck_assert_int_eq(read(peer, buf, sizeof buf), 0); /* EOF */
  sfx_raw_write_all(peer, "reply", 5);
  sfx_expect_str(eddy_stream_read_bytes(s, 5, 0), "reply");
  ck_assert(!eddy_stream_closed(s));
  close(peer);
  sfx_expect_str(eddy_stream_read_until_close(s), "");
}
END_TEST

/* ======================================================================== */
/* Connecting (TestIOStreamWebMixin 2-7 with a canned responder; 32, 33)     */
/* ======================================================================== */

static const char http_request[] = "GET / HTTP/1.0\r\n\r\n";
static const char http_response[] = "HTTP/1.1 200 OK\r\n"
                                    "Content-Type: text/plain\r\n"
                                    "Content-Length: 5\r\n"
                                    "\r\n"
                                    "Hello";

/* The raw one-shot responder: accepts one connection on listener @p l
 * (then closes it), checks the request, answers; closes the connection
 * unless @p keep, in which case it returns its fd. */
static int http_serve(int l, int keep) {
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_msg(s >= 0, "accept: %s", strerror(errno));
  close(l);
  char req[sizeof http_request];
  sfx_raw_read_exact(s, req, strlen(http_request));
  ck_assert(memcmp(req, http_request, strlen(http_request)) == 0);
  sfx_raw_write_all(s, http_response, strlen(http_response));
  if (keep)
    return s;
  close(s);
  return -1;
}

/* A client stream connected to the responder, which has answered and
 * closed. */
static eddy_stream_t *http_client(void) {
  struct sockaddr_storage addr;
  socklen_t alen;
  int l = sfx_tcp_listener(&addr, &alen);
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&addr, alen);
  eddy_future_t *wf = eddy_stream_write(c, http_request, strlen(http_request));
  sfx_wait(cf);
  ck_assert_msg(eddy_future_state(cf) == EDDY_FUTURE_RESOLVED,
                "connect failed: %s (cause %s)",
                eddy_err_name(eddy_future_error(cf)),
                eddy_err_name(eddy_future_cause(cf)));
  eddy_future_unref(cf);
  sfx_expect_ok(wf);
  http_serve(l, 0);
  return c;
}

/* 2. read_until_close returns the whole response. */
START_TEST(test_web_read_until_close) {
  eddy_stream_t *c = http_client();
  sfx_expect_str(eddy_stream_read_until_close(c), http_response);
}
END_TEST

/* 3. read_bytes(0) returns empty and consumes nothing. */
START_TEST(test_web_read_zero_bytes) {
  eddy_stream_t *c = http_client();
  sfx_expect_str(eddy_stream_read_bytes(c, 9, 0), "HTTP/1.1 ");
  eddy_future_t *f = eddy_stream_read_bytes(c, 0, 0);
  sfx_assert_done(f);
  sfx_expect_str(f, "");
  sfx_expect_str(eddy_stream_read_bytes(c, 3, 0), "200");
}
END_TEST

/* 4. A write issued while connecting goes out once connected; the connect
 * future settles first. */
START_TEST(test_web_write_while_connecting) {
  struct sockaddr_storage addr;
  socklen_t alen;
  int l = sfx_tcp_listener(&addr, &alen);
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&addr, alen);
  eddy_future_t *wf = eddy_stream_write(c, http_request, strlen(http_request));
  done_rec_t dc = {0}, dw = {0};
  ck_assert_int_eq(eddy_future_add_done(cf, on_done, &dc), 0);
  ck_assert_int_eq(eddy_future_add_done(wf, on_done, &dw), 0);
  sfx_wait(wf);
  sfx_run_until_flag(&dw.calls);
  ck_assert_int_eq(dc.calls, 1);
  ck_assert_msg(dc.seq < dw.seq, "write future settled before connect");
  ck_assert_int_eq(eddy_future_state(cf), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(eddy_future_state(wf), EDDY_FUTURE_RESOLVED);
  http_serve(l, 0);
  sfx_expect_str(eddy_stream_read_until_close(c), http_response);
  eddy_future_unref(cf);
  eddy_future_unref(wf);
}
END_TEST

/* 5. The connect future's value is the stream; a request/response. */
START_TEST(test_web_future_interface) {
  struct sockaddr_storage addr;
  socklen_t alen;
  int l = sfx_tcp_listener(&addr, &alen);
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&addr, alen);
  sfx_wait(cf);
  ck_assert_int_eq(eddy_future_state(cf), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_eq(eddy_future_value(cf), c);
  eddy_future_unref(cf);
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  ck_assert_int_eq(eddy_stream_peer_address(c, &peer, &plen), 0);
  ck_assert_uint_eq(((struct sockaddr_in *)&peer)->sin_port,
                    ((struct sockaddr_in *)&addr)->sin_port);
  sfx_expect_ok(eddy_stream_write(c, http_request, strlen(http_request)));
  int s = http_serve(l, 1);
  sfx_expect_str(eddy_stream_read_until(c, "\r\n", 2, 0), "HTTP/1.1 200 OK\r\n");
  eddy_future_t *h = eddy_stream_read_until(c, "\r\n\r\n", 4, 0);
  sfx_wait(h);
  ck_assert_int_eq(eddy_future_state(h), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_nonnull(strstr(eddy_future_value(h), "Content-Length: 5\r\n"));
  eddy_future_unref(h);
  sfx_expect_str(eddy_stream_read_bytes(c, 5, 0), "Hello");
  close(s);
}
END_TEST

/* 6. A read larger than the response fails when the server closes. */
START_TEST(test_web_future_close_while_reading) {
  eddy_stream_t *c = http_client();
  sfx_expect_error(eddy_stream_read_bytes(c, MiB, 0), EDDY_ECLOSED, SFX_ANY);
}
END_TEST

/* 7. read_until_close after the headers is the body; a read after that
 * fails at once, without running the loop. */
START_TEST(test_web_future_read_until_close) {
  eddy_stream_t *c = http_client();
  eddy_future_t *h = eddy_stream_read_until(c, "\r\n\r\n", 4, 0);
  sfx_expect_ok(h);
  sfx_expect_str(eddy_stream_read_until_close(c), "Hello");
  eddy_future_t *f = eddy_stream_read_bytes(c, 1, 0);
  sfx_assert_done(f);
  sfx_expect_error(f, EDDY_ECLOSED, SFX_ANY);
}
END_TEST

/* 32. Connecting to a refusing port: ECLOSED / -ECONNREFUSED, the error is
 * recorded and the close callback runs. */
START_TEST(test_connection_refused) {
  int keep;
  int port = sfx_refusing_port(&keep);
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  closed_rec_t cr = {0};
  eddy_stream_set_close_callback(c, on_close, &cr);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&sin, sizeof sin);
  sfx_expect_error(cf, EDDY_ECLOSED, -ECONNREFUSED);
  ck_assert(eddy_stream_closed(c));
  ck_assert_int_eq(eddy_stream_error(c), -ECONNREFUSED);
  sfx_run_until_flag(&cr.calls);
  ck_assert_int_eq(cr.error, -ECONNREFUSED);
  close(keep);
}
END_TEST

/* 33, adapted: an immediate connect error (unsupported family, short
 * address) fails the future cleanly; nothing crashes or leaks. */
START_TEST(test_connect_bad_address) {
  struct sockaddr_storage bad;
  memset(&bad, 0, sizeof bad);
  bad.ss_family = 0x7fff; /* no such family */
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&bad,
                                          sizeof(struct sockaddr_in));
  sfx_wait(cf);
  ck_assert_int_eq(eddy_future_state(cf), EDDY_FUTURE_REJECTED);
  ck_assert_int_ne(eddy_future_error(cf), 0);
  if (eddy_future_error(cf) == EDDY_ECLOSED) {
    ck_assert(eddy_stream_closed(c));
    ck_assert_int_ne(eddy_stream_error(c), 0);
  }
  eddy_future_unref(cf);

  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  eddy_stream_t *d = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  cf = eddy_stream_connect(d, (struct sockaddr *)&sin, 2); /* too short */
  sfx_wait(cf);
  ck_assert_int_eq(eddy_future_state(cf), EDDY_FUTURE_REJECTED);
  eddy_future_unref(cf);
}
END_TEST

/* Connect on a socket the caller made (fd not yet connected). */
START_TEST(test_connect_existing_fd) {
  struct sockaddr_storage addr;
  socklen_t alen;
  int l = sfx_tcp_listener(&addr, &alen);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert(fd >= 0);
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, fd, NULL));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&addr, alen);
  sfx_wait(cf);
  ck_assert_int_eq(eddy_future_state(cf), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_eq(eddy_future_value(cf), c);
  ck_assert_int_eq(eddy_stream_fd(c), fd);
  eddy_future_unref(cf);
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  ck_assert(s >= 0);
  close(l);
  eddy_stream_t *srv = sfx_track(eddy_stream_new_socket(sfx_loop, s, NULL));
  sfx_write_str(c, "ping");
  sfx_expect_str(eddy_stream_read_bytes(srv, 4, 0), "ping");
  sfx_write_str(srv, "pong");
  sfx_expect_str(eddy_stream_read_bytes(c, 4, 0), "pong");
}
END_TEST

/* connect_timeout: a listener whose backlog is full drops our SYN; the
 * connect fails with ECLOSED / EDDY_ETIMEOUT. */
START_TEST(test_connect_timeout) {
  struct sockaddr_storage addr;
  socklen_t alen;
  int l = sfx_tcp_listener(&addr, &alen);
  ck_assert(listen(l, 0) == 0);
  int fill[4];
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ck_assert(fill[i] >= 0);
    (void)connect(fill[i], (struct sockaddr *)&addr, alen);
  }
  sfx_run_for(0.05);
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.connect_timeout = 0.2;
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, &o));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&addr, alen);
  sfx_expect_error(cf, EDDY_ECLOSED, EDDY_ETIMEOUT);
  ck_assert(eddy_stream_closed(c));
  ck_assert_int_eq(eddy_stream_error(c), EDDY_ETIMEOUT);
  for (int i = 0; i < 4; i++)
    close(fill[i]);
  close(l);
}
END_TEST

/* ======================================================================== */
/* UNIX sockets                                                              */
/* ======================================================================== */

typedef struct unix_path {
  char dir[64];
  struct sockaddr_un sun;
} unix_path_t;

static void unix_path_make(unix_path_t *u, const char *name) {
  strcpy(u->dir, "/tmp/eddy-test-unix-XXXXXX");
  ck_assert(mkdtemp(u->dir) != NULL);
  memset(&u->sun, 0, sizeof u->sun);
  u->sun.sun_family = AF_UNIX;
  snprintf(u->sun.sun_path, sizeof u->sun.sun_path, "%s/%s", u->dir, name);
}

static void unix_path_clean(unix_path_t *u) {
  unlink(u->sun.sun_path);
  rmdir(u->dir);
}

START_TEST(test_unix_connect_path) {
  unix_path_t u;
  unix_path_make(&u, "sock");
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert(l >= 0);
  ck_assert(bind(l, (struct sockaddr *)&u.sun, sizeof u.sun) == 0);
  ck_assert(listen(l, 4) == 0);
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&u.sun,
                                          sizeof u.sun);
  eddy_future_t *wf = eddy_stream_write(c, "ping", 4);
  sfx_wait(cf);
  ck_assert_msg(eddy_future_state(cf) == EDDY_FUTURE_RESOLVED,
                "UNIX connect failed: %s (cause %s)",
                eddy_err_name(eddy_future_error(cf)),
                eddy_err_name(eddy_future_cause(cf)));
  ck_assert_ptr_eq(eddy_future_value(cf), c);
  eddy_future_unref(cf);
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  ck_assert(s >= 0);
  close(l);
  eddy_stream_t *srv = sfx_track(eddy_stream_new_socket(sfx_loop, s, NULL));
  sfx_expect_str(eddy_stream_read_bytes(srv, 4, 0), "ping");
  sfx_expect_ok(wf);
  sfx_write_str(srv, "pong");
  sfx_expect_str(eddy_stream_read_bytes(c, 4, 0), "pong");
  ck_assert_int_eq(eddy_stream_set_nodelay(c, 1), 0);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ck_assert_int_eq(eddy_stream_peer_address(c, &ss, &len), 0);
  ck_assert_int_eq(ss.ss_family, AF_UNIX);
  unix_path_clean(&u);
}
END_TEST

START_TEST(test_unix_connect_missing) {
  unix_path_t u;
  unix_path_make(&u, "nobody-here");
  eddy_stream_t *c = sfx_track(eddy_stream_new_socket(sfx_loop, -1, NULL));
  eddy_future_t *cf = eddy_stream_connect(c, (struct sockaddr *)&u.sun,
                                          sizeof u.sun);
  sfx_wait(cf);
  ck_assert_int_eq(eddy_future_error(cf), EDDY_ECLOSED);
  int cause = eddy_future_cause(cf);
  ck_assert_msg(cause == -ENOENT || cause == -ECONNREFUSED, "cause %s",
                eddy_err_name(cause));
  eddy_future_unref(cf);
  ck_assert(eddy_stream_closed(c));
  ck_assert_int_eq(eddy_stream_error(c), cause);
  unix_path_clean(&u);
}
END_TEST

/* ======================================================================== */
/* Large transfer                                                            */
/* ======================================================================== */

/* 200 MiB (16 MiB when slow) through a TCP pair, borrowed writes from a
 * pattern table, read_into on the other side, every byte checked. */
START_TEST(test_large_transfer) {
  sfx_pair_t p = sfx_pair(KIND, NULL, NULL, 0);
  size_t total = sfx_slow() ? 16 * MiB : 200 * MiB;
  size_t chunk = MiB;
  unsigned char *ref = malloc(chunk + 251), *buf = malloc(chunk);
  ck_assert(ref && buf);
  sfx_pattern_fill(ref, chunk + 251, 0);
  size_t sent = 0, got = 0;
  eddy_future_t *last = NULL;
  while (got < total) {
    while (sent < total && eddy_stream_write_buffer_size(p.ws) < 4 * MiB) {
      size_t n = total - sent < chunk ? total - sent : chunk;
      eddy_future_t *w = eddy_stream_write_borrowed(p.ws, ref + sent % 251, n);
      ck_assert(w != NULL);
      ck_assert_int_ne(eddy_future_state(w), EDDY_FUTURE_REJECTED);
      eddy_future_unref(last);
      last = w;
      sent += n;
    }
    eddy_future_t *f = eddy_stream_read_into(p.rs, buf, chunk, 1);
    sfx_wait(f);
    ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
    size_t n = eddy_future_size(f);
    eddy_future_unref(f);
    ck_assert(n >= 1 && n <= chunk);
    ck_assert_msg(sfx_pattern_check(buf, n, got), "mismatch near offset %zu",
                  got);
    got += n;
  }
  ck_assert_uint_eq(got, total);
  sfx_expect_ok(last);
  free(ref);
  free(buf);
}
END_TEST

/* ======================================================================== */
/* Suite                                                                     */
/* ======================================================================== */

#define TIMEOUT 30.0

/* Each entry runs once per fixture kind (tcp, pipe, unix). */
static void add_kinds(TCase *tc, const TTest *t) {
  tcase_add_loop_test(tc, t, 0, SFX_NKINDS);
}

static Suite *stream_suite(void) {
  Suite *s = suite_create("stream");

  TCase *mix = tcase_create("readwrite_mixin");
  sfx_tcase_setup(mix, TIMEOUT);
  add_kinds(mix, test_write_zero_bytes);
  add_kinds(mix, test_write_zero_after_pending);
  add_kinds(mix, test_future_delayed_close_callback);
  add_kinds(mix, test_close_buffered_data);
  add_kinds(mix, test_read_until_close_after_close);
  add_kinds(mix, test_large_read_until);
  add_kinds(mix, test_read_until_with_close_after_second_packet);
  add_kinds(mix, test_read_until_unsatisfied_after_close);
  add_kinds(mix, test_close_callback_with_pending_read);
  add_kinds(mix, test_future_close_callback);
  add_kinds(mix, test_write_memoryview);
  add_kinds(mix, test_read_bytes_partial);
  add_kinds(mix, test_read_until_max_bytes);
  add_kinds(mix, test_read_until_max_bytes_inline);
  add_kinds(mix, test_read_until_max_bytes_ignores_extra);
  add_kinds(mix, test_read_until_regex_max_bytes);
  add_kinds(mix, test_read_until_regex_max_bytes_inline);
  add_kinds(mix, test_read_until_regex_max_bytes_ignores_extra);
  add_kinds(mix, test_small_reads_from_large_buffer);
  add_kinds(mix, test_small_read_untils_from_large_buffer);
  add_kinds(mix, test_flow_control);
  add_kinds(mix, test_read_into);
  add_kinds(mix, test_read_into_partial);
  add_kinds(mix, test_read_into_zero_bytes);
  add_kinds(mix, test_many_mixed_reads);
  add_kinds(mix, test_pipe_iostream);
  add_kinds(mix, test_pipe_iostream_big_write);
  suite_add_tcase(s, mix);

  TCase *rd = tcase_create("read");
  sfx_tcase_setup(rd, TIMEOUT);
  add_kinds(rd, test_one_read_at_a_time);
  add_kinds(rd, test_buffered_read_done_on_return);
  add_kinds(rd, test_data_with_close_delivered);
  add_kinds(rd, test_pending_read_data_then_close);
  add_kinds(rd, test_pending_read_short_then_close);
  add_kinds(rd, test_read_result_ownership);
  add_kinds(rd, test_read_into_direct);
  add_kinds(rd, test_read_until_split_delimiter);
  add_kinds(rd, test_read_until_multibyte_delimiter);
  add_kinds(rd, test_read_until_binary_delimiter);
  add_kinds(rd, test_read_until_empty_delimiter);
  add_kinds(rd, test_read_until_regex);
  add_kinds(rd, test_read_until_close_orderly);
  add_kinds(rd, test_reads_on_closed_stream);
  add_kinds(rd, test_read_buffer_overflow);
  add_kinds(rd, test_read_bytes_overflow);
  add_kinds(rd, test_read_until_close_overflow);
  add_kinds(rd, test_read_bytes_chunked);
  add_kinds(rd, test_read_until_close_chunked);
  add_kinds(rd, test_peek_consume);
  add_kinds(rd, test_cancel_read);
  add_kinds(rd, test_cancel_read_into);
  add_kinds(rd, test_with_timeout_read);
  suite_add_tcase(s, rd);

  TCase *wr = tcase_create("write");
  sfx_tcase_setup(wr, TIMEOUT);
  add_kinds(wr, test_write_copies);
  add_kinds(wr, test_write_take);
  add_kinds(wr, test_short_queued_rest_copied);
  add_kinds(wr, test_write_take_closed);
  add_kinds(wr, test_write_take_dropped);
  add_kinds(wr, test_write_borrowed);
  add_kinds(wr, test_write_bytes_of_echo);
  add_kinds(wr, test_write_bytes_of_unresolved);
  add_kinds(wr, test_write_file);
  add_kinds(wr, test_write_order_slow_reader);
  add_kinds(wr, test_future_write);
  add_kinds(wr, test_write_buffer_full);
  add_kinds(wr, test_write_buffer_full_single);
  add_kinds(wr, test_watermarks_drain);
  add_kinds(wr, test_watermarks_default);
  add_kinds(wr, test_drain_closed);
  add_kinds(wr, test_drain_already_closed);
  add_kinds(wr, test_write_closed);
  add_kinds(wr, test_close_when_drained);
  add_kinds(wr, test_close_when_drained_idle);
  add_kinds(wr, test_no_sigpipe);
  add_kinds(wr, test_no_sigpipe_write_file);
  tcase_add_loop_test(wr, test_shutdown_write, 0, 2); /* tcp, unix */
  tcase_add_loop_test(wr, test_shutdown_write_peer_replies, 0, 2);
  suite_add_tcase(s, wr);

  TCase *cl = tcase_create("close");
  sfx_tcase_setup(cl, TIMEOUT);
  add_kinds(cl, test_close_callback_once);
  add_kinds(cl, test_close_callback_not_for_open_stream);
  add_kinds(cl, test_close_order);
  add_kinds(cl, test_close_callback_after_close);
  add_kinds(cl, test_close_with_error);
  add_kinds(cl, test_close_keeps_buffered_input);
  add_kinds(cl, test_close_rejects_pending_writes);
  add_kinds(cl, test_wait_closed);
  add_kinds(cl, test_wait_closed_without_callback);
  add_kinds(cl, test_wait_closed_independent);
  add_kinds(cl, test_wait_closed_unref);
  add_kinds(cl, test_idle_watch_leaves_data_in_kernel);
  add_kinds(cl, test_unref_with_pending_read);
  add_kinds(cl, test_unref_idle_closes);
  add_kinds(cl, test_unref_with_pending_write);
  add_kinds(cl, test_ref_keeps_open);
  tcase_add_test(cl, test_peer_reset_pending_read);
  tcase_add_test(cl, test_inline_read_error);
  tcase_add_test(cl, test_idle_reset_noticed);
  tcase_add_test(cl, test_idle_reset_noticed_wait_closed);
  tcase_add_test(cl, test_idle_unread_then_reset);
  tcase_add_test(cl, test_close_after_idle_peek_sends_fin);
  tcase_add_test(cl, test_read_until_close_reset);
  tcase_add_test(cl, test_peer_reset_pending_write);
  suite_add_tcase(s, cl);

  TCase *dl = tcase_create("deadline");
  sfx_tcase_setup(dl, TIMEOUT);
  add_kinds(dl, test_read_timeout);
  add_kinds(dl, test_idle_timeout);
  add_kinds(dl, test_write_timeout);
  suite_add_tcase(s, dl);

  TCase *st = tcase_create("state");
  sfx_tcase_setup(st, TIMEOUT);
  tcase_add_test(st, test_options_init);
  add_kinds(st, test_state_queries);
  tcase_add_test(st, test_constructor_fd_flags);
  add_kinds(st, test_set_nodelay);
  tcase_add_test(st, test_peer_address);
  tcase_add_test(st, test_format_address);
  suite_add_tcase(s, st);

  TCase *cn = tcase_create("connect");
  sfx_tcase_setup(cn, TIMEOUT);
  tcase_add_test(cn, test_web_read_until_close);
  tcase_add_test(cn, test_web_read_zero_bytes);
  tcase_add_test(cn, test_web_write_while_connecting);
  tcase_add_test(cn, test_web_future_interface);
  tcase_add_test(cn, test_web_future_close_while_reading);
  tcase_add_test(cn, test_web_future_read_until_close);
  tcase_add_test(cn, test_connection_refused);
  tcase_add_test(cn, test_connect_bad_address);
  tcase_add_test(cn, test_connect_existing_fd);
  tcase_add_test(cn, test_connect_timeout);
  tcase_add_test(cn, test_unix_connect_path);
  tcase_add_test(cn, test_unix_connect_missing);
  suite_add_tcase(s, cn);

  TCase *big = tcase_create("large");
  sfx_tcase_setup(big, TIMEOUT);
  tcase_add_loop_test(big, test_large_transfer, SFX_TCP, SFX_TCP + 1);
  suite_add_tcase(s, big);
  return s;
}

int main(void) {
  if (test_select_backend() != 0)
    return 77;
  SRunner *sr = srunner_create(stream_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
