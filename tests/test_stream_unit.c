/* SPDX-License-Identifier: MIT */
/*
 * tests/test_stream_unit.c - unit tests for the stream's internals.
 *
 * The read buffer (incremental delimiter search, compaction, zero-copy
 * handoff), the write queue, the byte-filter layering (a test-only XOR
 * filter), SIGPIPE safety, connect failures, cancellation, bad input and
 * fd leaks. The big behavioural suite is tests/test_stream.c.
 *
 * Internal symbols are hidden in libeddy.so, so this program links the
 * static library (LDFLAGS -static in Makefile.am).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "eddy/stream.h"
#include "stream/buffer.h"
#include "stream/stream_internal.h"
#include "stream/transport.h"
#include "stream/writeq.h"

static eddy_loop_t *loop;

static void setup(void)
{
  signal(SIGPIPE, SIG_DFL); /* a SIGPIPE we cause must kill the test */
  loop = eddy_loop_new();
  ck_assert_ptr_nonnull(loop);
}

static void teardown(void)
{
  eddy_loop_free(loop);
  loop = NULL;
  eddy__buf_cache_flush();
}

static void wait_for(eddy_future_t *f)
{
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10.0), 0);
}

static void spin(double seconds)
{
  eddy_future_t *f = eddy_sleep(loop, seconds);
  wait_for(f);
  eddy_future_unref(f);
}

static void expect_error(eddy_future_t *f, int code, int cause)
{
  wait_for(f);
  ck_assert_msg(eddy_future_error(f) == code, "error %s, wanted %s",
                eddy_err_name(eddy_future_error(f)), eddy_err_name(code));
  if (cause)
    ck_assert_msg(eddy_future_cause(f) == cause, "cause %s, wanted %s",
                  eddy_err_name(eddy_future_cause(f)), eddy_err_name(cause));
  eddy_future_unref(f);
}

static void expect_ok(eddy_future_t *f)
{
  wait_for(f);
  ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED, "failed: %s (cause %s)",
                eddy_err_name(eddy_future_error(f)), eddy_err_name(eddy_future_cause(f)));
  eddy_future_unref(f);
}

static void unix_pair(int fds[2])
{
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
}

static int fd_count(void)
{
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* ------------------------------------------------------------------------ */
/* The read buffer                                                           */
/* ------------------------------------------------------------------------ */

/* Feeds @p msg to a buffer one byte at a time, searching for @p delim after
 * each (resuming where the last search stopped), and returns the end of
 * the first match; asserts it is found as soon as its last byte arrives. */
static size_t find_byte_at_a_time(const char *msg, const char *delim)
{
  struct eddy__buf c = EDDY__BUF_INIT;
  size_t from = 0, hit = 0, pos = 0;
  for (size_t i = 0; msg[i] && !hit; i++) {
    eddy__buf_append(&c, msg + i, 1);
    hit = eddy__buf_find(&c, delim, strlen(delim), &from);
    ck_assert_uint_le(from, i + 1);
    pos = i + 1;
  }
  ck_assert_uint_eq(pos, hit);
  eddy__buf_release(&c);
  return hit;
}

START_TEST(test_buf_find_across_boundaries)
{
  struct eddy__buf b = EDDY__BUF_INIT;
  size_t from = 0;

  ck_assert_int_eq(eddy__buf_append(&b, "abc\r", 4), 0);
  ck_assert_uint_eq(eddy__buf_find(&b, "\r\n", 2, &from), 0);
  /* Only the last byte could start the delimiter: resume there. */
  ck_assert_uint_eq(from, 3);
  ck_assert_int_eq(eddy__buf_append(&b, "\nxyz", 4), 0);
  ck_assert_uint_eq(eddy__buf_find(&b, "\r\n", 2, &from), 5);

  /* A long delimiter arriving one byte at a time. */
  ck_assert_uint_eq(find_byte_at_a_time("0123456789--BOUNDARY--tail", "--BOUNDARY--"), 22);

  /* Binary: NULs in data and delimiter. */
  struct eddy__buf d = EDDY__BUF_INIT;
  from = 0;
  eddy__buf_append(&d, "a\0\0b\0", 5);
  ck_assert_uint_eq(eddy__buf_find(&d, "\0\0", 2, &from), 3);

  /* The delimiter's first byte repeats, in it and just before the match:
   * a false start at every '\r' must not skip the real one. */
  struct eddy__buf e = EDDY__BUF_INIT;
  from = 0;
  eddy__buf_append(&e, "\r\n\r\r\n\r\n", 7);
  ck_assert_uint_eq(eddy__buf_find(&e, "\r\n\r\n", 4, &from), 7);
  /* The same arriving one byte at a time, resuming each time. */
  ck_assert_uint_eq(find_byte_at_a_time("GET / HTTP/1.1\r\nA: b\r\n\r\r\n\r\nbody", "\r\n\r\n"),
                    strlen("GET / HTTP/1.1\r\nA: b\r\n\r\r\n\r\n"));
  /* A match that ends exactly at the buffer's end, and one byte short. */
  struct eddy__buf g = EDDY__BUF_INIT;
  from = 0;
  eddy__buf_append(&g, "xx\r\n\r", 5);
  ck_assert_uint_eq(eddy__buf_find(&g, "\r\n\r\n", 4, &from), 0);
  ck_assert_uint_eq(from, 2);
  eddy__buf_append(&g, "\n", 1);
  ck_assert_uint_eq(eddy__buf_find(&g, "\r\n\r\n", 4, &from), 6);
  eddy__buf_release(&e);
  eddy__buf_release(&g);
  eddy__buf_release(&b);
  eddy__buf_release(&d);
}
END_TEST

/* An empty buffer has no region: its head and tail are NULL rather than
 * NULL + 0 (undefined; clang's UBSan reports it as pointer-overflow), and
 * every operation on it works without touching memory. read_until on a
 * stream with nothing buffered reached this (found by tests/fuzz/stream). */
START_TEST(test_buf_empty_has_no_region)
{
  struct eddy__buf b = EDDY__BUF_INIT;
  size_t from = 0;

  ck_assert_ptr_null(eddy__buf_head(&b));
  ck_assert_ptr_null(eddy__buf_tail(&b));
  ck_assert_uint_eq(eddy__buf_find(&b, "\r\n", 2, &from), 0);
  ck_assert_uint_eq(from, 0);
  ck_assert_uint_eq(eddy__buf_find(&b, "\n", 1, &from), 0);
  char *out = eddy__buf_take(&b, 0);
  ck_assert_ptr_nonnull(out);
  ck_assert_str_eq(out, "");
  free(out);
  eddy__buf_consume(&b, 0);
  ck_assert_int_eq(eddy__buf_prepend(&b, "", 0), 0);
  ck_assert_ptr_null(eddy__buf_head(&b));
  /* Emptied by consume: the region goes back, the ends are NULL again. */
  ck_assert_int_eq(eddy__buf_append(&b, "ab", 2), 0);
  ck_assert_ptr_nonnull(eddy__buf_head(&b));
  eddy__buf_consume(&b, 2);
  ck_assert_ptr_null(eddy__buf_head(&b));
  ck_assert_uint_eq(eddy__buf_len(&b), 0);
}
END_TEST

/* Every byte is examined once: after each miss the resume point is
 * exactly len - dlen + 1, so 4 MiB arriving in 64 KiB pieces costs one pass
 * (Tornado's test 12 guards the same thing end to end). */
START_TEST(test_buf_find_incremental)
{
  struct eddy__buf b = EDDY__BUF_INIT;
  char *chunk = malloc(65536);
  memset(chunk, 'x', 65536);
  size_t from = 0;
  for (int i = 0; i < 64; i++) {
    eddy__buf_append(&b, chunk, 65536);
    ck_assert_uint_eq(eddy__buf_find(&b, "\r\n", 2, &from), 0);
    ck_assert_uint_eq(from, eddy__buf_len(&b) - 1);
  }
  eddy__buf_append(&b, "\r\n", 2);
  ck_assert_uint_eq(eddy__buf_find(&b, "\r\n", 2, &from), 4 * 1024 * 1024 + 2);
  free(chunk);
  eddy__buf_release(&b);
}
END_TEST

START_TEST(test_buf_compact_and_take)
{
  struct eddy__buf b = EDDY__BUF_INIT;
  ck_assert_int_eq(eddy__buf_reserve(&b, 1000), 0);
  size_t cap = b.h->cap;
  memset(eddy__buf_tail(&b), 'a', 1000);
  eddy__buf_commit(&b, 1000);
  memcpy(eddy__buf_data(&b) + 990, "0123456789", 10);
  eddy__buf_consume(&b, 990);
  /* Room for cap - 10 only after moving the 10 bytes to the front. */
  ck_assert_int_eq(eddy__buf_reserve(&b, cap - 10), 0);
  ck_assert_uint_eq(b.h->start, 0);
  ck_assert_uint_eq(b.h->cap, cap);
  ck_assert(memcmp(eddy__buf_head(&b), "0123456789", 10) == 0);

  /* A small take copies and leaves the rest. */
  char *t = eddy__buf_take(&b, 4);
  ck_assert_str_eq(t, "0123");
  free(t);
  ck_assert_uint_eq(eddy__buf_len(&b), 6);

  /* Putting bytes back in front. */
  ck_assert_int_eq(eddy__buf_prepend(&b, "AB", 2), 0);
  ck_assert(memcmp(eddy__buf_head(&b), "AB456789", 8) == 0);
  eddy__buf_release(&b);

  /* Taking everything from a full region hands the region over. */
  struct eddy__buf c = EDDY__BUF_INIT;
  eddy__buf_reserve(&c, 4096);
  memset(eddy__buf_tail(&c), 'z', c.h->cap);
  size_t n = c.h->cap;
  eddy__buf_commit(&c, n);
  char *region = eddy__buf_data(&c);
  char *all = eddy__buf_take(&c, n);
  ck_assert_ptr_eq(all, region);
  ck_assert_int_eq(all[n], '\0');
  ck_assert_ptr_null(c.h);
  free(all);
}
END_TEST

START_TEST(test_buf_region_cache)
{
  struct eddy__buf b = EDDY__BUF_INIT;
  eddy__buf_reserve(&b, 65536);
  char *first = eddy__buf_data(&b);
  eddy__buf_append(&b, "x", 1);
  eddy__buf_consume(&b, 1); /* emptied: released into the cache */
  ck_assert_ptr_null(b.h);
  eddy__buf_reserve(&b, 65536);
  ck_assert_ptr_eq(eddy__buf_data(&b), first);
  eddy__buf_release(&b);
}
END_TEST

/* A thread that fills its cache, empties it, fills it again and exits: the
 * thread-exit destructor (registered once per thread) must free what is
 * cached then (a leak here shows under the sanitizer build and valgrind). */
static void *cache_thread(void *arg)
{
  (void)arg;
  for (int round = 0; round < 2; round++) {
    struct eddy__buf b[3] = {EDDY__BUF_INIT, EDDY__BUF_INIT, EDDY__BUF_INIT};
    for (int i = 0; i < 3; i++)
      ck_assert_int_eq(eddy__buf_reserve(&b[i], 8192 << i), 0);
    for (int i = 0; i < 3; i++)
      eddy__buf_release(&b[i]); /* into the cache */
    if (round == 0)
      eddy__buf_cache_flush(); /* empty -> one again on the next round */
  }
  return NULL;
}

START_TEST(test_buf_region_cache_thread_exit)
{
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, cache_thread, NULL), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The write queue                                                           */
/* ------------------------------------------------------------------------ */

static int frees;
static void count_free(void *p)
{
  frees++;
  free(p);
}

START_TEST(test_wq_coalesce_and_gather)
{
  struct eddy__writeq q;
  struct iovec iov[8];
  eddy__wq_init(&q);
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(eddy__wq_push_copy(&q, "0123456789", 10), 0);
  ck_assert_uint_eq(eddy__wq_size(&q), 1000);
  ck_assert_int_eq(eddy__wq_gather(&q, iov, 8, SIZE_MAX), 1);
  ck_assert_uint_eq(iov[0].iov_len, 1000);

  frees = 0;
  char *big = malloc(10000);
  memset(big, 'B', 10000);
  eddy__wq_push_mem(&q, big, 10000, big, count_free, NULL);
  eddy__wq_push_file(&q, 0, 0, 50);
  eddy__wq_push_copy(&q, "after", 5);
  ck_assert_int_eq(eddy__wq_gather(&q, iov, 8, SIZE_MAX), 2); /* stops at the file */
  ck_assert_int_eq(eddy__wq_gather(&q, iov, 8, 500), 1);      /* byte cap */
  ck_assert_uint_eq(iov[0].iov_len, 500);

  eddy__wq_advance(&q, 1500);
  ck_assert_int_eq(frees, 0);
  ck_assert_int_eq(eddy__wq_gather(&q, iov, 8, SIZE_MAX), 1);
  ck_assert_uint_eq(iov[0].iov_len, 9500);
  eddy__wq_advance(&q, 9500 + 20);
  ck_assert_int_eq(frees, 1);
  ck_assert_uint_eq(q.head->kind, EDDY__PIECE_FILE);
  ck_assert_uint_eq(q.head->len, 30);
  ck_assert_int_eq((int)q.head->file_off, 20);
  eddy__wq_clear(&q);
  ck_assert(eddy__wq_empty(&q));
  ck_assert_uint_eq(eddy__wq_size(&q), 0);
}
END_TEST

START_TEST(test_wq_waiters_and_unborrow)
{
  struct eddy__writeq q;
  eddy__wq_init(&q);
  char mine[4] = "abcd";
  eddy_future_t *a = eddy_future_new(loop), *b = eddy_future_new(loop);
  eddy__wq_push_mem(&q, mine, 4, NULL, NULL, a);
  eddy__wq_wait(&q, eddy_future_ref(a), q.queued);
  eddy__wq_push_copy(&q, "ef", 2);
  eddy__wq_wait(&q, eddy_future_ref(b), q.queued);

  /* The borrowed bytes become the queue's own; the caller's are free. */
  ck_assert_int_eq(eddy__wq_unborrow(&q, a), 0);
  memset(mine, 'X', 4);
  struct iovec iov[4];
  ck_assert_int_eq(eddy__wq_gather(&q, iov, 4, SIZE_MAX), 2);
  ck_assert(memcmp(iov[0].iov_base, "abcd", 4) == 0);

  ck_assert_ptr_null(eddy__wq_pop_done(&q, q.sent));
  eddy__wq_advance(&q, 4);
  eddy_future_t *f = eddy__wq_pop_done(&q, q.sent);
  ck_assert_ptr_eq(f, a);
  eddy_future_unref(f);
  ck_assert_ptr_null(eddy__wq_pop_done(&q, q.sent));
  f = eddy__wq_pop_done(&q, UINT64_MAX);
  ck_assert_ptr_eq(f, b);
  eddy_future_unref(f);
  eddy__wq_clear(&q);
  eddy_future_unref(a);
  eddy_future_unref(b);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Filter layering: a test-only XOR "cipher"                                 */
/* ------------------------------------------------------------------------ */

#define XOR_KEY 0x5a

struct xor_ctx {
  int handshake;  /* encode refuses until the first decode (a handshake) */
  int encode_calls;
  int destroyed;
};

static int xor_decode(struct eddy__filter *f, const char *raw, size_t len, size_t *used)
{
  struct xor_ctx *x = f->ctx;
  struct eddy__buf *plain = eddy__filter_plain(f);
  if (x->handshake) {
    x->handshake = 0; /* any input finishes the "handshake" */
    eddy__filter_want_read(f, 0);
  }
  if (eddy__buf_reserve(plain, len) < 0)
    return eddy__filter_fail(f, -ENOMEM, "xor: out of memory");
  char *out = eddy__buf_tail(plain);
  for (size_t i = 0; i < len; i++)
    out[i] = (char)(raw[i] ^ XOR_KEY);
  eddy__buf_commit(plain, len);
  *used = len;
  return 0;
}

static int xor_encode(struct eddy__filter *f, const char *p, size_t len, size_t *used)
{
  struct xor_ctx *x = f->ctx;
  x->encode_calls++;
  if (x->handshake) {
    *used = 0;
    return 0;
  }
  struct eddy__buf *out = eddy__filter_raw_out(f);
  if (eddy__buf_reserve(out, len) < 0)
    return eddy__filter_fail(f, -ENOMEM, "xor: out of memory");
  char *o = eddy__buf_tail(out);
  for (size_t i = 0; i < len; i++)
    o[i] = (char)(p[i] ^ XOR_KEY);
  eddy__buf_commit(out, len);
  *used = len;
  return 0;
}

static int xor_start(struct eddy__filter *f)
{
  struct xor_ctx *x = f->ctx;
  if (x->handshake)
    eddy__filter_want_read(f, 1);
  return 0;
}

static void xor_destroy(void *ctx)
{
  ((struct xor_ctx *)ctx)->destroyed++;
}

static const struct eddy__filter_ops xor_ops = {
    .name = "xor",
    .start = xor_start,
    .decode = xor_decode,
    .encode = xor_encode,
    .destroy = xor_destroy,
};

static char *pattern(size_t n)
{
  char *p = malloc(n);
  for (size_t i = 0; i < n; i++)
    p[i] = (char)(i * 131 + (i >> 11));
  return p;
}

START_TEST(test_filter_roundtrip_large)
{
  int fds[2];
  unix_pair(fds);
  struct xor_ctx xa = {0, 0, 0}, xb = {0, 0, 0};
  eddy_stream_t *a = eddy_stream_new_socket(loop, fds[0], NULL);
  eddy_stream_t *b = eddy_stream_new_socket(loop, fds[1], NULL);
  ck_assert_int_eq(eddy__stream_start_filter(a, &xor_ops, &xa, 0), 0);
  ck_assert_int_eq(eddy__stream_start_filter(b, &xor_ops, &xb, 0), 0);
  ck_assert_int_eq(eddy__stream_start_filter(b, &xor_ops, &xb, 0), EDDY_EUSAGE);

  size_t n = 4 * 1024 * 1024;
  char *data = pattern(n);
  eddy_future_t *w = eddy_stream_write(a, data, n);
  eddy_future_t *w2 = eddy_stream_write(a, "tail\n", 5);
  eddy_future_t *r = eddy_stream_read_bytes(b, n, 0);
  wait_for(r);
  ck_assert_uint_eq(eddy_future_size(r), n);
  ck_assert(memcmp(eddy_future_value(r), data, n) == 0);
  eddy_future_unref(r);
  r = eddy_stream_read_until(b, "\n", 1, 0);
  wait_for(r);
  ck_assert_str_eq(eddy_future_value(r), "tail\n");
  eddy_future_unref(r);
  expect_ok(w);
  expect_ok(w2);
  ck_assert_uint_eq(eddy_stream_write_buffer_size(a), 0);

  /* And back the other way, through read_into (which copies out of the
   * plaintext buffer under a filter). */
  char back[6] = {0};
  w = eddy_stream_write(b, "pong!", 5);
  r = eddy_stream_read_into(a, back, 5, 0);
  wait_for(r);
  ck_assert_uint_eq(eddy_future_size(r), 5);
  ck_assert_str_eq(back, "pong!");
  eddy_future_unref(r);
  expect_ok(w);
  free(data);
  eddy_stream_unref(a);
  eddy_stream_unref(b);
  spin(0.01);
  ck_assert_int_eq(xa.destroyed, 1);
  ck_assert_int_eq(xb.destroyed, 1);
}
END_TEST

/* The bytes on the wire are the filter's output, and a filter that is not
 * ready to encode (a handshake) keeps writes queued without spinning. */
START_TEST(test_filter_wire_and_handshake)
{
  int fds[2];
  unix_pair(fds);
  struct xor_ctx x = {1, 0, 0};
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  ck_assert_int_eq(eddy__stream_start_filter(s, &xor_ops, &x, 0), 0);
  eddy_future_t *w = eddy_stream_write(s, "hello", 5);
  spin(0.05);
  ck_assert(!eddy_future_done(w));
  ck_assert_int_le(x.encode_calls, 2); /* no busy loop (Tornado #2373) */
  ck_assert_uint_eq(eddy_stream_write_buffer_size(s), 5);

  char hs = 'H' ^ XOR_KEY; /* the peer's "handshake" */
  ck_assert_int_eq(write(fds[1], &hs, 1), 1);
  expect_ok(w);
  char wire[5];
  ck_assert_int_eq(read(fds[1], wire, 5), 5);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(wire[i] ^ XOR_KEY, "hello"[i]);
  /* The handshake byte became plaintext input. */
  eddy_future_t *r = eddy_stream_read_bytes(s, 1, 0);
  wait_for(r);
  ck_assert_str_eq(eddy_future_value(r), "H");
  eddy_future_unref(r);
  eddy_stream_unref(s);
  close(fds[1]);
  spin(0.01);
}
END_TEST

START_TEST(test_filter_start_refused_when_busy)
{
  int fds[2];
  unix_pair(fds);
  struct xor_ctx x = {0, 0, 0};
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  eddy_future_t *r = eddy_stream_read_bytes(s, 3, 0);
  ck_assert_int_eq(eddy__stream_start_filter(s, &xor_ops, &x, 0), EDDY_ENOTIDLE);
  ck_assert_int_eq(write(fds[1], "abcdef", 6), 6);
  expect_ok(r);
  spin(0.02); /* the idle read buffers "def" */
  ck_assert_uint_eq(eddy_stream_read_buffer_size(s), 3);
  ck_assert_int_eq(eddy__stream_start_filter(s, &xor_ops, &x, 0), EDDY_ENOTIDLE);
  /* Adopting: the buffered bytes are the filter's first input. */
  ck_assert_int_eq(eddy__stream_start_filter(s, &xor_ops, &x, EDDY__FILTER_ADOPT_BUFFERED), 0);
  r = eddy_stream_read_bytes(s, 3, 0);
  wait_for(r);
  const char *v = eddy_future_value(r);
  ck_assert_int_eq(v[0], 'd' ^ XOR_KEY);
  eddy_future_unref(r);
  eddy_stream_close(s, 0);
  ck_assert_int_eq(eddy__stream_start_filter(s, &xor_ops, &x, 0), EDDY_ECLOSED);
  eddy_stream_unref(s);
  close(fds[1]);
  spin(0.01);
  ck_assert_int_eq(x.destroyed, 1);
}
END_TEST

/*
 * A filter with an end and last words, on top of XOR:
 *   - a raw '!' makes decode fail after appending "ALERT" to raw_out (a
 *     fatal alert);
 *   - a decoded 'Z' is the peer's end (a close_notify): what came before
 *     it is plaintext, what follows is swallowed;
 *   - shutdown appends "BYE" (its close_notify); closed records the call.
 */
struct ends_ctx {
  struct xor_ctx x; /* first: the xor hooks see this */
  int shutdowns;
  int closed_calls;
  int closed_error;
};

static int ends_decode(struct eddy__filter *f, const char *raw, size_t len, size_t *used)
{
  for (size_t i = 0; i < len; i++) {
    if (raw[i] == '!') {
      eddy__buf_append(eddy__filter_raw_out(f), "ALERT", 5);
      return eddy__filter_fail(f, EDDY_ETLS, "ends: fatal alert");
    }
    if ((raw[i] ^ XOR_KEY) == 'Z') {
      size_t u = 0;
      int rc = i > 0 ? xor_decode(f, raw, i, &u) : 0;
      eddy__filter_eof_seen(f);
      *used = len;
      return rc;
    }
  }
  return xor_decode(f, raw, len, used);
}

static int ends_shutdown(struct eddy__filter *f)
{
  struct ends_ctx *e = f->ctx;
  e->shutdowns++;
  return eddy__buf_append(eddy__filter_raw_out(f), "BYE", 3) < 0 ? -ENOMEM : 0;
}

static void ends_closed(struct eddy__filter *f, int error)
{
  struct ends_ctx *e = f->ctx;
  e->closed_calls++;
  e->closed_error = error;
}

static const struct eddy__filter_ops ends_ops = {
    .name = "ends",
    .start = xor_start,
    .decode = ends_decode,
    .encode = xor_encode,
    .shutdown = ends_shutdown,
    .destroy = xor_destroy,
    .closed = ends_closed,
};

/* Blocking: everything the peer sends on @fd until its EOF (fails the
 * test if that takes more than 5 s). @return the byte count. */
static size_t read_to_eof(int fd, char *buf, size_t cap)
{
  size_t got = 0;
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    ck_assert_msg(poll(&pfd, 1, 5000) == 1, "no EOF from the stream");
    ck_assert_uint_lt(got, cap);
    ssize_t n = read(fd, buf + got, cap - got);
    ck_assert_int_ge(n, 0);
    if (n == 0)
      return got;
    got += (size_t)n;
  }
}

static eddy_stream_t *ends_stream(int fds[2], struct ends_ctx *e)
{
  unix_pair(fds);
  memset(e, 0, sizeof(*e));
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(eddy__stream_start_filter(s, &ends_ops, e, 0), 0);
  return s;
}

static void xor_bytes(char *out, const char *in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = (char)(in[i] ^ XOR_KEY);
}

/* A failing hook's output (the fatal alert) reaches the peer before the
 * close: the stream sends raw_out once, without blocking, then closes. */
START_TEST(test_filter_failure_sends_alert)
{
  int fds[2];
  struct ends_ctx e;
  char buf[64];
  eddy_stream_t *s = ends_stream(fds, &e);
  eddy_future_t *r = eddy_stream_read_bytes(s, 10, 0);
  ck_assert_int_eq(write(fds[1], "!", 1), 1);
  expect_error(r, EDDY_ECLOSED, EDDY_ETLS);
  ck_assert_int_eq(eddy_stream_error(s), EDDY_ETLS);
  ck_assert_str_eq(eddy_stream_error_message(s), "ends: fatal alert");
  size_t n = read_to_eof(fds[1], buf, sizeof buf);
  ck_assert_uint_eq(n, 5);
  ck_assert(memcmp(buf, "ALERT", 5) == 0);
  ck_assert_int_eq(e.shutdowns, 0); /* a failure says no goodbye */
  ck_assert_int_eq(e.closed_calls, 1);
  ck_assert_int_eq(e.closed_error, EDDY_ETLS);
  eddy_stream_unref(s);
  close(fds[1]);
  spin(0.01);
  ck_assert_int_eq(e.closed_calls, 1);
}
END_TEST

/* decode's eddy__filter_eof_seen() is an EOF while the transport stays
 * open: a pending read_until_close ends with what came before, reads then
 * fail as closed, and the stream answers with its own closing record. */
START_TEST(test_filter_eof_seen)
{
  int fds[2];
  struct ends_ctx e;
  char wire[16], buf[64];
  eddy_stream_t *s = ends_stream(fds, &e);
  eddy_future_t *r = eddy_stream_read_until_close(s);
  spin(0.02);
  ck_assert(!eddy_future_done(r));
  xor_bytes(wire, "abcZmore", 8);
  ck_assert_int_eq(write(fds[1], wire, 8), 8); /* fds[1] stays open */
  wait_for(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(r), 3);
  ck_assert_str_eq(eddy_future_value(r), "abc");
  eddy_future_unref(r);
  ck_assert(eddy_stream_closed(s));
  ck_assert_int_eq(eddy_stream_error(s), 0);
  r = eddy_stream_read_bytes(s, 1, 0);
  ck_assert(eddy_future_done(r));
  expect_error(r, EDDY_ECLOSED, 0);
  size_t n = read_to_eof(fds[1], buf, sizeof buf);
  ck_assert_uint_eq(n, 3);
  ck_assert(memcmp(buf, "BYE", 3) == 0);
  ck_assert_int_eq(e.shutdowns, 1);
  ck_assert_int_eq(e.closed_calls, 1);
  ck_assert_int_eq(e.closed_error, 0);
  eddy_stream_unref(s);
  close(fds[1]);
  spin(0.01);
}
END_TEST

/* A local close without error says goodbye (shutdown, one send) unless
 * queued plaintext is being dropped; a close with an error does not;
 * close_when_drained sends the record after the queue; so does the last
 * unref. The closed hook runs once each time. */
START_TEST(test_filter_goodbye_on_close)
{
  int fds[2];
  struct ends_ctx e;
  char buf[64], wire[16];
  size_t n;

  eddy_stream_t *s = ends_stream(fds, &e);
  eddy_stream_close(s, 0);
  ck_assert_int_eq(e.shutdowns, 1);
  ck_assert_int_eq(e.closed_calls, 1);
  ck_assert_int_eq(e.closed_error, 0);
  n = read_to_eof(fds[1], buf, sizeof buf);
  ck_assert(n == 3 && memcmp(buf, "BYE", 3) == 0);
  eddy_stream_close(s, 0); /* idempotent: no second goodbye */
  ck_assert_int_eq(e.shutdowns, 1);
  ck_assert_int_eq(e.closed_calls, 1);
  eddy_stream_unref(s);
  close(fds[1]);

  s = ends_stream(fds, &e);
  eddy_stream_close(s, -EPROTO);
  ck_assert_int_eq(read_to_eof(fds[1], buf, sizeof buf), 0);
  ck_assert_int_eq(e.shutdowns, 0);
  ck_assert_int_eq(e.closed_error, -EPROTO);
  eddy_stream_unref(s);
  close(fds[1]);

  /* Plaintext the filter has not taken yet (its "handshake" is pending):
   * a closing record would tell the peer it got everything. */
  s = ends_stream(fds, &e);
  e.x.handshake = 1;
  eddy_future_t *w = eddy_stream_write(s, "lost", 4);
  ck_assert(!eddy_future_done(w));
  eddy_stream_close(s, 0);
  expect_error(w, EDDY_ECLOSED, 0);
  ck_assert_int_eq(read_to_eof(fds[1], buf, sizeof buf), 0);
  ck_assert_int_eq(e.shutdowns, 0);
  ck_assert_int_eq(e.closed_calls, 1);
  eddy_stream_unref(s);
  close(fds[1]);

  s = ends_stream(fds, &e);
  w = eddy_stream_write(s, "data", 4);
  eddy_stream_close_when_drained(s);
  expect_ok(w);
  n = read_to_eof(fds[1], buf, sizeof buf);
  xor_bytes(wire, "data", 4);
  memcpy(wire + 4, "BYE", 3);
  ck_assert_uint_eq(n, 7);
  ck_assert(memcmp(buf, wire, 7) == 0);
  ck_assert_int_eq(e.shutdowns, 1);
  eddy_stream_unref(s);
  close(fds[1]);

  s = ends_stream(fds, &e);
  eddy_stream_unref(s); /* the last reference: a local close */
  n = read_to_eof(fds[1], buf, sizeof buf);
  ck_assert(n == 3 && memcmp(buf, "BYE", 3) == 0);
  close(fds[1]);
  spin(0.01);
  ck_assert_int_eq(e.closed_calls, 1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* SIGPIPE, connect failures, cancellation, bad input, fd leaks              */
/* ------------------------------------------------------------------------ */

static int closed_calls, closed_error;
static void on_closed(eddy_stream_t *s, int error, void *arg)
{
  (void)s;
  (void)arg;
  closed_calls++;
  closed_error = error;
}

/* An idle write-only pipe with a close callback notices its reader going
 * away (an error event), without any write. */
START_TEST(test_pipe_reader_gone_noticed)
{
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  eddy_stream_t *s = eddy_stream_new_pipe(loop, p[1], NULL);
  closed_calls = 0;
  eddy_stream_set_close_callback(s, on_closed, NULL);
  spin(0.01);
  ck_assert_int_eq(closed_calls, 0);
  close(p[0]);
  eddy_future_t *c = eddy_stream_wait_closed(s);
  wait_for(c);
  eddy_future_unref(c);
  ck_assert_int_eq(closed_calls, 1);
  ck_assert_int_eq(closed_error, -EPIPE);
  eddy_stream_unref(s);
}
END_TEST

START_TEST(test_sigpipe_pipe)
{
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  close(p[0]); /* the reader is gone */
  eddy_stream_t *s = eddy_stream_new_pipe(loop, p[1], NULL);
  eddy_future_t *w = eddy_stream_write(s, "x", 1);
  /* SIGPIPE is at its default (terminate): reaching this line is the test. */
  expect_error(w, EDDY_ECLOSED, -EPIPE);
  ck_assert_int_eq(eddy_stream_error(s), -EPIPE);
  sigset_t pend;
  sigpending(&pend);
  ck_assert(!sigismember(&pend, SIGPIPE));
  eddy_stream_unref(s);
  spin(0.01);
}
END_TEST

START_TEST(test_sigpipe_pipe_queued_and_file)
{
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  eddy_stream_t *s = eddy_stream_new_pipe(loop, p[1], NULL);
  /* Fill the pipe so the write is queued, then drop the reader: the flush
   * from the loop hits EPIPE. */
  size_t n = 1024 * 1024;
  char *big = pattern(n);
  eddy_future_t *w = eddy_stream_write(s, big, n);
  ck_assert(!eddy_future_done(w));
  close(p[0]);
  expect_error(w, EDDY_ECLOSED, -EPIPE);
  eddy_stream_unref(s);

  /* write_file to a socket whose peer is gone: sendfile has no
   * MSG_NOSIGNAL either. */
  int fds[2];
  unix_pair(fds);
  FILE *tmp = tmpfile();
  fwrite(big, 1, 65536, tmp);
  fflush(tmp);
  close(fds[1]);
  s = eddy_stream_new_socket(loop, fds[0], NULL);
  w = eddy_stream_write_file(s, fileno(tmp), 0, 65536);
  expect_error(w, EDDY_ECLOSED, -EPIPE);
  eddy_stream_unref(s);
  fclose(tmp);
  free(big);
  spin(0.01);
}
END_TEST


START_TEST(test_connect_refused)
{
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  close(l); /* nobody listens on that port now */

  eddy_stream_t *s = eddy_stream_new_socket(loop, -1, NULL);
  closed_calls = 0;
  eddy_stream_set_close_callback(s, on_closed, NULL);
  eddy_future_t *w = eddy_stream_write(s, "queued", 6);
  eddy_future_t *c = eddy_stream_connect(s, (struct sockaddr *)&a, sizeof(a));
  expect_error(c, EDDY_ECLOSED, -ECONNREFUSED);
  expect_error(w, EDDY_ECLOSED, -ECONNREFUSED);
  spin(0.01);
  ck_assert_int_eq(closed_calls, 1);
  ck_assert_int_eq(closed_error, -ECONNREFUSED);
  ck_assert_int_eq(eddy_stream_error(s), -ECONNREFUSED);
  ck_assert_ptr_nonnull(eddy_stream_error_message(s));
  eddy_stream_unref(s);
}
END_TEST

START_TEST(test_connect_unix_missing)
{
  struct sockaddr_un u;
  memset(&u, 0, sizeof(u));
  u.sun_family = AF_UNIX;
  snprintf(u.sun_path, sizeof(u.sun_path), "/tmp/eddy-unit-missing-%d", (int)getpid());
  eddy_stream_t *s = eddy_stream_new_socket(loop, -1, NULL);
  eddy_future_t *c = eddy_stream_connect(s, (struct sockaddr *)&u, sizeof(u));
  expect_error(c, EDDY_ECLOSED, -ENOENT);
  eddy_stream_unref(s);
  spin(0.01);
}
END_TEST

/* A listener whose accept queue is full drops SYNs, so a connect to it
 * hangs on loopback: connect_timeout must close the stream. */
START_TEST(test_connect_timeout)
{
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(listen(l, 0), 0);
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  int fillers[4];
  for (int i = 0; i < 4; i++) {
    fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
  }
  spin(0.05);

  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.connect_timeout = 0.2;
  eddy_stream_t *s = eddy_stream_new_socket(loop, -1, &o);
  eddy_future_t *c = eddy_stream_connect(s, (struct sockaddr *)&a, sizeof(a));
  expect_error(c, EDDY_ECLOSED, EDDY_ETIMEOUT);
  ck_assert_int_eq(eddy_stream_error(s), EDDY_ETIMEOUT);
  ck_assert_str_eq(eddy_stream_error_message(s), "connect timed out");
  eddy_stream_unref(s);
  for (int i = 0; i < 4; i++)
    close(fillers[i]);
  close(l);
  spin(0.01);
}
END_TEST

/* IPv6 (skipped where ::1 cannot be bound), peer address, TCP_NODELAY. */
START_TEST(test_connect_ipv6_nodelay)
{
  int l = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof(a));
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  socklen_t alen = sizeof(a);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0) {
    if (l >= 0)
      close(l);
    return; /* no IPv6 loopback here */
  }
  ck_assert_int_eq(listen(l, 4), 0);
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  eddy_stream_t *s = eddy_stream_new_socket(loop, -1, NULL);
  eddy_future_t *c = eddy_stream_connect(s, (struct sockaddr *)&a, sizeof(a));
  wait_for(c);
  ck_assert_int_eq(eddy_future_state(c), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(c);
  struct sockaddr_storage peer;
  socklen_t plen = 0;
  ck_assert_int_eq(eddy_stream_peer_address(s, &peer, &plen), 0);
  ck_assert_int_eq(peer.ss_family, AF_INET6);
  ck_assert_int_eq(eddy_stream_set_nodelay(s, 1), 0);
  int on = 0;
  socklen_t olen = sizeof(on);
  getsockopt(eddy_stream_fd(s), IPPROTO_TCP, TCP_NODELAY, &on, &olen);
  ck_assert_int_ne(on, 0);
  eddy_stream_unref(s);
  close(l);
  spin(0.01);
}
END_TEST

static int order_seq, connect_seq, write_seq;
static void mark_connect(eddy_future_t *f, void *arg)
{
  (void)f;
  (void)arg;
  connect_seq = ++order_seq;
}
static void mark_write(eddy_future_t *f, void *arg)
{
  (void)f;
  (void)arg;
  write_seq = ++order_seq;
}

START_TEST(test_connect_then_queued_write)
{
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(listen(l, 4), 0);
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);

  eddy_stream_t *s = eddy_stream_new_socket(loop, -1, NULL);
  eddy_future_t *c = eddy_stream_connect(s, (struct sockaddr *)&a, sizeof(a));
  eddy_future_t *w = eddy_stream_write(s, "early", 5);
  order_seq = connect_seq = write_seq = 0;
  eddy_future_add_done(c, mark_connect, NULL);
  eddy_future_add_done(w, mark_write, NULL);
  wait_for(w);
  wait_for(c);
  ck_assert_ptr_eq(eddy_future_value(c), s);
  ck_assert_int_lt(connect_seq, write_seq);
  int peer = accept(l, NULL, NULL);
  char got[5];
  ck_assert_int_eq(read(peer, got, 5), 5);
  ck_assert(memcmp(got, "early", 5) == 0);
  eddy_future_unref(c);
  eddy_future_unref(w);
  eddy_stream_unref(s);
  close(peer);
  close(l);
  spin(0.01);
}
END_TEST

START_TEST(test_cancel_read_keeps_bytes)
{
  int fds[2];
  unix_pair(fds);
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  /* read_until: cancelled with a partial line buffered. */
  eddy_future_t *r = eddy_stream_read_until(s, "\n", 1, 0);
  ck_assert_int_eq(write(fds[1], "par", 3), 3);
  spin(0.02);
  ck_assert(!eddy_future_done(r));
  ck_assert_int_eq(eddy_future_cancel(r), 0);
  ck_assert(!eddy_stream_reading(s));
  eddy_future_unref(r);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(s), 3);

  /* read_into: the bytes already placed in the caller's buffer go back. */
  char buf[16];
  r = eddy_stream_read_into(s, buf, sizeof(buf), 0);
  ck_assert_int_eq(write(fds[1], "tial", 4), 4);
  spin(0.02);
  ck_assert(!eddy_future_done(r));
  eddy_future_cancel(r);
  eddy_future_unref(r);
  ck_assert_uint_eq(eddy_stream_read_buffer_size(s), 7);
  r = eddy_stream_read_bytes(s, 7, 0);
  wait_for(r);
  ck_assert_str_eq(eddy_future_value(r), "partial");
  eddy_future_unref(r);

  /* A borrowed write cancelled while queued: the caller may reuse its
   * memory at once and the right bytes still go out. */
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  int sz = 4096;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
  size_t n = 256 * 1024;
  char *mine = pattern(n), *copy = pattern(n);
  eddy_future_t *w = eddy_stream_write_borrowed(s, mine, n);
  ck_assert(!eddy_future_done(w));
  eddy_future_cancel(w);
  eddy_future_unref(w);
  memset(mine, 0, n);
  eddy_future_t *w2 = eddy_stream_write(s, "", 0);
  char *got = malloc(n);
  size_t have = 0;
  while (have < n) {
    spin(0.001);
    ssize_t k = read(fds[1], got + have, n - have);
    if (k > 0)
      have += (size_t)k;
  }
  ck_assert(memcmp(got, copy, n) == 0);
  expect_ok(w2);
  free(mine);
  free(copy);
  free(got);
  eddy_stream_unref(s);
  close(fds[1]);
  spin(0.01);
}
END_TEST

START_TEST(test_bad_input)
{
  int fds[2];
  unix_pair(fds);
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  ck_assert_ptr_null(eddy_stream_read_bytes(NULL, 1, 0));
  ck_assert_ptr_null(eddy_stream_write(NULL, "x", 1));
  ck_assert_ptr_null(eddy_stream_new_socket(NULL, -1, NULL));
  ck_assert_ptr_null(eddy_stream_new_pipe(loop, -1, NULL));
  expect_error(eddy_stream_write(s, NULL, 5), EDDY_EUSAGE, 0);
  expect_error(eddy_stream_read_until(s, NULL, 1, 0), EDDY_EUSAGE, 0);
  expect_error(eddy_stream_read_until(s, "", 0, 0), EDDY_EUSAGE, 0);
  expect_error(eddy_stream_read_until_regex(s, "(unclosed", 0), EDDY_EREGEX, 0);
  expect_error(eddy_stream_read_into(s, NULL, 5, 0), EDDY_EUSAGE, 0);
  expect_error(eddy_stream_read_bytes_chunked(s, 5, NULL, NULL), EDDY_EUSAGE, 0);
  expect_error(eddy_stream_write_file(s, -1, 0, 5), EDDY_EUSAGE, 0);
  expect_error(eddy_stream_connect(s, NULL, 0), EDDY_EUSAGE, 0);
  eddy_future_t *pending = eddy_future_new(loop);
  expect_error(eddy_stream_write_bytes_of(s, pending), EDDY_EPENDING, 0);
  eddy_future_unref(pending);
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.max_write_buffer_size = 1024;
  eddy_stream_t *t = eddy_stream_new_socket(loop, fds[1], &o);
  expect_error(eddy_stream_write(t, "x", 4096), EDDY_EBUFFERFULL, 0);
  expect_error(eddy_stream_write(t, "x", (size_t)-1), EDDY_EUSAGE, 0);
  expect_error(eddy_stream_read_bytes(t, (size_t)-1, 0), EDDY_EUSAGE, 0);
  char one;
  expect_error(eddy_stream_read_into(t, &one, (size_t)-1, 0), EDDY_EUSAGE, 0);
  ck_assert(!eddy_stream_closed(t));
  eddy_future_t *r = eddy_stream_read_bytes(s, 1, 0);
  expect_error(eddy_stream_read_bytes(s, 1, 0), EDDY_EALREADYREADING, 0);
  ck_assert_int_eq((int)eddy_stream_consume(s, 1), EDDY_EALREADYREADING);
  eddy_future_cancel(r);
  eddy_future_unref(r);
  eddy_stream_unref(s);
  eddy_stream_unref(t);
  spin(0.01);
}
END_TEST

/* read_until_regex matches in binary data (REG_STARTEND). */
START_TEST(test_regex_binary)
{
  int fds[2];
  unix_pair(fds);
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  ck_assert_int_eq(write(fds[1], "a\0\0xbbc\0zz", 10), 10);
  eddy_future_t *r = eddy_stream_read_until_regex(s, "b+c", 0);
  wait_for(r);
  ck_assert_uint_eq(eddy_future_size(r), 7);
  ck_assert(memcmp(eddy_future_value(r), "a\0\0xbbc", 7) == 0);
  eddy_future_unref(r);
  /* Bracket expressions match NUL ('.' does not in glibc). */
  r = eddy_stream_read_until_regex(s, "[^q]z", 0);
  wait_for(r);
  ck_assert_uint_eq(eddy_future_size(r), 2);
  eddy_future_unref(r);
  eddy_stream_unref(s);
  close(fds[1]);
  spin(0.01);
}
END_TEST

START_TEST(test_fd_leaks)
{
  int before = fd_count();
  for (int i = 0; i < 5; i++) {
    int fds[2];
    unix_pair(fds);
    eddy_stream_t *a = eddy_stream_new_socket(loop, fds[0], NULL);
    eddy_stream_t *b = eddy_stream_new_socket(loop, fds[1], NULL);
    eddy_future_t *w = eddy_stream_write(a, "ping\n", 5);
    eddy_future_t *r = eddy_stream_read_until(b, "\n", 1, 0);
    wait_for(r);
    eddy_future_unref(r);
    eddy_future_unref(w);
    r = eddy_stream_read_bytes(b, 10, 0); /* pending when the peer goes */
    eddy_stream_unref(a);
    expect_error(r, EDDY_ECLOSED, 0);
    eddy_stream_unref(b);

    struct sockaddr_un u;
    memset(&u, 0, sizeof(u));
    u.sun_family = AF_UNIX;
    strcpy(u.sun_path, "/nonexistent/eddy");
    eddy_stream_t *c = eddy_stream_new_socket(loop, -1, NULL);
    expect_error(eddy_stream_connect(c, (struct sockaddr *)&u, sizeof(u)), EDDY_ECLOSED, 0);
    eddy_stream_unref(c);

    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    eddy_stream_t *pr = eddy_stream_new_pipe(loop, p[0], NULL);
    eddy_stream_t *pw = eddy_stream_new_pipe(loop, p[1], NULL);
    expect_ok(eddy_stream_write(pw, "abc", 3));
    eddy_stream_unref(pw);
    r = eddy_stream_read_until_close(pr);
    wait_for(r);
    ck_assert_str_eq(eddy_future_value(r), "abc");
    eddy_future_unref(r);
    eddy_stream_unref(pr);
  }
  spin(0.01);
  ck_assert_int_eq(fd_count(), before);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Corked inline sends (MSG_MORE on TCP_NODELAY sockets, write.c)            */
/* ------------------------------------------------------------------------ */

/* A connected TCP pair over 127.0.0.1, both as streams on the test loop:
 * *srv is the accepted side with set_nodelay(1), *cli the connecting side
 * (also Nagle off, so the client never delays the requests). */
static void nodelay_pair(eddy_stream_t **srv, eddy_stream_t **cli)
{
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  ck_assert_int_ge(l, 0);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(listen(l, 1), 0);
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
  int sfd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge(sfd, 0);
  close(l);
  *srv = eddy_stream_new_socket(loop, sfd, NULL);
  *cli = eddy_stream_new_socket(loop, c, NULL);
  ck_assert_ptr_nonnull(*srv);
  ck_assert_ptr_nonnull(*cli);
  ck_assert_int_eq(eddy_stream_set_nodelay(*srv, 1), 0);
  ck_assert_int_eq(eddy_stream_set_nodelay(*cli, 1), 0);
}

/* The echo chain: read_until "\n", then write what was read, forever. */
static eddy_future_t *echo_write(eddy_future_t *line, void *stream)
{
  return eddy_stream_write_bytes_of(stream, line);
}

static eddy_future_t *echo_step(void *stream)
{
  return eddy_then_ok(eddy_stream_read_until(stream, "\n", 1, 0), echo_write,
                      stream);
}

/* Sends @p len bytes from the client in one write and expects @p want
 * (@p wlen bytes) back, in order. */
static void echo_expect(eddy_stream_t *cli, const char *data, size_t len,
                        const char *want, size_t wlen)
{
  eddy_future_t *w = eddy_stream_write(cli, data, len);
  eddy_future_t *r = eddy_stream_read_bytes(cli, wlen, 0);
  wait_for(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(r), wlen);
  ck_assert(memcmp(eddy_future_value(r), want, wlen) == 0);
  eddy_future_unref(r);
  wait_for(w);
  ck_assert_int_eq(eddy_future_state(w), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(w);
}

static void echo_roundtrip(eddy_stream_t *cli, const char *data, size_t len)
{
  echo_expect(cli, data, len, data, len);
}

static void echo_finish(eddy_stream_t *srv, eddy_stream_t *cli, eddy_future_t *echo)
{
  eddy_stream_unref(cli); /* closes: the echo's next read fails */
  wait_for(echo);
  ck_assert_int_eq(eddy_future_state(echo), EDDY_FUTURE_REJECTED);
  eddy_future_unref(echo);
  eddy_stream_unref(srv);
  spin(0.01);
}

/* Many lines in one packet, echoed by a chain that waits for each write:
 * with more input buffered, a short echo is held for the end of the pass
 * and a 16 KiB one goes corked (MSG_MORE); every byte must still come
 * back, in order. */
START_TEST(test_gather_echo_many_lines)
{
  eddy_stream_t *srv, *cli;
  nodelay_pair(&srv, &cli);
  eddy_future_t *echo = eddy_repeat(echo_step, srv);
  ck_assert_ptr_nonnull(echo);

  /* 4 lines of 16 KiB in one send. */
  size_t big = 4 * 16 * 1024;
  char *data = malloc(big);
  for (size_t i = 0; i < big; i++)
    data[i] = (char)('a' + (i * 7 + i / 16384) % 26);
  for (int k = 1; k <= 4; k++)
    data[k * 16384 - 1] = '\n';
  echo_roundtrip(cli, data, big);
  free(data);

  /* 1000 short lines in one send. */
  char *lines = malloc(1000 * 16);
  size_t n = 0;
  for (int k = 0; k < 1000; k++)
    n += (size_t)sprintf(lines + n, "line %d\n", k);
  echo_roundtrip(cli, lines, n);
  /* And the same again, so the gathering starts over on a used stream. */
  echo_roundtrip(cli, lines, n);
  free(lines);

  ck_assert(!srv->pass_queued); /* each pass's end let go of the stream */
  echo_finish(srv, cli, echo);
}
END_TEST

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Two lines and the start of a third in one packet: the echoes are held
 * (the partial line is still buffered) and no later write comes, so only
 * the end of the pass sends them. Both echoes must arrive, and promptly:
 * one fast try of five is enough (sub-millisecond on loopback; the bound
 * is far above any scheduling noise, far below a lost flush, which would
 * never arrive). */
START_TEST(test_gather_sent_at_end_of_pass)
{
  eddy_stream_t *srv, *cli;
  nodelay_pair(&srv, &cli);
  eddy_future_t *echo = eddy_repeat(echo_step, srv);
  ck_assert_ptr_nonnull(echo);

  char prev[32] = "", msg[96], want[128];
  double best = 1e9;
  for (int k = 0; k < 5; k++) {
    int mlen = snprintf(msg, sizeof(msg), "%d-first\n%d-second\n%d-part", k, k, k);
    int wlen = snprintf(want, sizeof(want), "%s%d-first\n%d-second\n", prev, k, k);
    snprintf(prev, sizeof(prev), "%d-part", k);
    double t0 = now_s();
    eddy_future_t *w = eddy_stream_write(cli, msg, (size_t)mlen);
    eddy_future_t *r = eddy_stream_read_bytes(cli, (size_t)wlen, 0);
    ck_assert_int_eq(eddy_loop_run_until(loop, r, 5.0), 0);
    double dt = now_s() - t0;
    if (dt < best)
      best = dt;
    ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
    ck_assert_uint_eq(eddy_future_size(r), (size_t)wlen);
    ck_assert(memcmp(eddy_future_value(r), want, (size_t)wlen) == 0);
    eddy_future_unref(r);
    wait_for(w);
    eddy_future_unref(w);
  }
  ck_assert_msg(best < 0.150,
                "held echo never sent promptly: best of 5 tries %.3f s", best);
  /* The last partial line completes: a plain send, echoed at once. */
  int wlen = snprintf(want, sizeof(want), "%s\n", prev);
  echo_expect(cli, "\n", 1, want, (size_t)wlen);
  echo_finish(srv, cli, echo);
}
END_TEST

static Suite *unit_suite(void)
{
  Suite *s = suite_create("stream_unit");
  TCase *buf = tcase_create("buffer");
  tcase_add_test(buf, test_buf_find_across_boundaries);
  tcase_add_test(buf, test_buf_find_incremental);
  tcase_add_test(buf, test_buf_empty_has_no_region);
  tcase_add_test(buf, test_buf_compact_and_take);
  tcase_add_test(buf, test_buf_region_cache);
  tcase_add_test(buf, test_buf_region_cache_thread_exit);
  suite_add_tcase(s, buf);

  TCase *wq = tcase_create("writeq");
  tcase_add_checked_fixture(wq, setup, teardown);
  tcase_add_test(wq, test_wq_coalesce_and_gather);
  tcase_add_test(wq, test_wq_waiters_and_unborrow);
  suite_add_tcase(s, wq);

  TCase *flt = tcase_create("filter");
  tcase_add_checked_fixture(flt, setup, teardown);
  tcase_set_timeout(flt, 30);
  tcase_add_test(flt, test_filter_roundtrip_large);
  tcase_add_test(flt, test_filter_wire_and_handshake);
  tcase_add_test(flt, test_filter_start_refused_when_busy);
  tcase_add_test(flt, test_filter_failure_sends_alert);
  tcase_add_test(flt, test_filter_eof_seen);
  tcase_add_test(flt, test_filter_goodbye_on_close);
  suite_add_tcase(s, flt);

  TCase *io = tcase_create("io");
  tcase_add_checked_fixture(io, setup, teardown);
  tcase_set_timeout(io, 30);
  tcase_add_test(io, test_sigpipe_pipe);
  tcase_add_test(io, test_pipe_reader_gone_noticed);
  tcase_add_test(io, test_sigpipe_pipe_queued_and_file);
  tcase_add_test(io, test_connect_refused);
  tcase_add_test(io, test_connect_unix_missing);
  tcase_add_test(io, test_connect_then_queued_write);
  tcase_add_test(io, test_connect_timeout);
  tcase_add_test(io, test_connect_ipv6_nodelay);
  tcase_add_test(io, test_cancel_read_keeps_bytes);
  tcase_add_test(io, test_bad_input);
  tcase_add_test(io, test_regex_binary);
  tcase_add_test(io, test_fd_leaks);
  tcase_add_test(io, test_gather_echo_many_lines);
  tcase_add_test(io, test_gather_sent_at_end_of_pass);
  suite_add_tcase(s, io);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(unit_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
