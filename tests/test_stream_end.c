/* SPDX-License-Identifier: MIT */
/*
 * tests/test_stream_end.c - what the peer ending its side does to a stream.
 *
 * A FIN (or the end of a pipe) ends reading. By default the stream closes
 * then, but never before the writes already queued have been sent: those
 * are answers the peer may still be reading. With allow_half_open the
 * write side stays open until the application closes it or shuts it down
 * (Node's allowHalfOpen). Sockets over TCP and UNIX, with a raw peer or
 * eddy at both ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "stream_fixtures.h"
#include "test_backend.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* _i of a loop test: 0 is TCP, 1 is a UNIX socketpair. */
#define SOCKET_KIND (_i == 0 ? SFX_TCP : SFX_UNIX)

static eddy_stream_options_t half_open_options(void)
{
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.allow_half_open = 1;
  return o;
}

static int closes, close_error;

static void on_close(eddy_stream_t *s, int error, void *arg)
{
  closes++;
  close_error = error;
}

/* Reads @len bytes of the test pattern from the raw peer @fd while the loop
 * runs (the stream is sending them), and checks every byte. */
static void peer_read_pattern(int fd, size_t len)
{
  char *buf = malloc(64 * KiB);
  size_t got = 0;
  int fl = fcntl(fd, F_GETFL);
  ck_assert(buf != NULL && fl >= 0);
  ck_assert(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
  for (int idle = 0; got < len;) {
    ssize_t n = recv(fd, buf, 64 * KiB, 0);
    if (n > 0) {
      ck_assert_msg(sfx_pattern_check(buf, (size_t)n, got), "bytes differ at %zu", got);
      got += (size_t)n;
      idle = 0;
      continue;
    }
    ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                  "the peer saw the end after %zu of %zu bytes", got, len);
    ck_assert_msg(++idle < 2000, "no progress after %zu of %zu bytes", got, len);
    sfx_run_for(0.005);
  }
  ck_assert(fcntl(fd, F_SETFL, fl) == 0);
  free(buf);
}

static eddy_future_t *write_pattern(eddy_stream_t *s, size_t len)
{
  char *data = malloc(len);
  ck_assert(data != NULL);
  sfx_pattern_fill(data, len, 0);
  eddy_future_t *w = eddy_stream_write_take(s, data, len, free);
  ck_assert(w != NULL);
  return w;
}

/* The heart of it: a FIN that arrives while a write is queued does not
 * drop the write. The idle stream sees the FIN (close callback set), its
 * read side ends, and it closes only after the peer has every byte. */
START_TEST(test_fin_keeps_queued_writes)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, NULL, 1, &peer);
  closes = 0;
  eddy_stream_set_close_callback(s, on_close, NULL);
  size_t len = 2 * MiB;
  eddy_future_t *w = write_pattern(s, len);
  ck_assert(!eddy_future_done(w)); /* more than the kernel buffers hold */
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_run_for(0.1);
  ck_assert(eddy_stream_read_ended(s));
  ck_assert(!eddy_stream_closed(s));
  ck_assert_int_eq(closes, 0);
  /* Reads end at once, with no cause: the peer ended cleanly. */
  eddy_future_t *r = eddy_stream_read_bytes(s, 1, 0);
  sfx_assert_done(r);
  sfx_expect_error(r, EDDY_ECLOSED, 0);
  sfx_expect_str(eddy_stream_read_until_close(s), "");

  peer_read_pattern(peer, len);
  sfx_expect_ok(w);
  sfx_run_until_closed(s);
  sfx_run_for(0.02);
  ck_assert_int_eq(closes, 1);
  ck_assert_int_eq(close_error, 0);
  char c;
  ck_assert_int_eq(read(peer, &c, 1), 0); /* then our FIN */
  close(peer);
}
END_TEST

/* The same with a read pending when the FIN comes: the read fails (what
 * the peer sent cannot satisfy it), the queued write still goes out. */
START_TEST(test_fin_during_read_keeps_writes)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, NULL, 1, &peer);
  eddy_future_t *r = eddy_stream_read_until(s, "\n", 1, 0);
  size_t len = 2 * MiB;
  eddy_future_t *w = write_pattern(s, len);
  sfx_raw_write_all(peer, "no newline", 10);
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_expect_error(r, EDDY_ECLOSED, 0);
  ck_assert(!eddy_stream_closed(s));
  /* The unsatisfied bytes stay readable. */
  sfx_expect_str(eddy_stream_read_until_close(s), "no newline");
  peer_read_pattern(peer, len);
  sfx_expect_ok(w);
  sfx_run_until_closed(s);
  ck_assert_int_eq(eddy_stream_error(s), 0);
  close(peer);
}
END_TEST

/* Tornado's behaviour stays where nothing is queued: EOF closes at once. */
START_TEST(test_fin_closes_idle_stream)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer((sfx_kind_t)_i, 1, NULL, 0, &peer);
  closes = 0;
  eddy_stream_set_close_callback(s, on_close, NULL);
  if (_i == SFX_PIPE)
    close(peer);
  else
    ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_run_until_closed(s);
  sfx_run_for(0.02);
  ck_assert_int_eq(closes, 1);
  ck_assert_int_eq(close_error, 0);
  ck_assert(eddy_stream_read_ended(s));
  if (_i != SFX_PIPE)
    close(peer);
}
END_TEST

/* Default: an answer written after the peer's FIN, with nothing queued at
 * the FIN, finds the stream closed (as in Tornado). allow_half_open is
 * what such a protocol needs: the next test. */
START_TEST(test_default_closes_before_late_answer)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, NULL, 0, &peer);
  sfx_raw_write_all(peer, "request", 7);
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_expect_str(eddy_stream_read_until_close(s), "request");
  ck_assert(eddy_stream_closed(s));
  eddy_future_t *w = eddy_stream_write(s, "reply", 5);
  sfx_assert_done(w);
  sfx_expect_error(w, EDDY_ECLOSED, 0);
  close(peer);
}
END_TEST

/* allow_half_open: a request ended by the client's FIN, then the answer,
 * then our FIN, and only then the close (callback and wait_closed). */
START_TEST(test_half_open_request_reply)
{
  int peer;
  eddy_stream_options_t o = half_open_options();
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, &o, 0, &peer);
  closes = 0;
  eddy_stream_set_close_callback(s, on_close, NULL);
  eddy_future_t *closed = eddy_stream_wait_closed(s);
  sfx_raw_write_all(peer, "request", 7);
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_expect_str(eddy_stream_read_until_close(s), "request");
  sfx_run_for(0.05);
  ck_assert(eddy_stream_read_ended(s));
  ck_assert(!eddy_stream_closed(s));
  ck_assert(!eddy_future_done(closed));
  sfx_expect_error(eddy_stream_read_bytes(s, 1, 0), EDDY_ECLOSED, 0);

  sfx_write_str(s, "reply");
  char buf[8];
  sfx_raw_read_exact(peer, buf, 5);
  ck_assert(memcmp(buf, "reply", 5) == 0);
  ck_assert_int_eq(closes, 0);
  sfx_expect_ok(eddy_stream_shutdown_write(s));
  sfx_expect_ok(closed);
  ck_assert(eddy_stream_closed(s));
  ck_assert_int_eq(closes, 1);
  ck_assert_int_eq(close_error, 0);
  ck_assert_int_eq(read(peer, buf, 1), 0);
  close(peer);
}
END_TEST

/* allow_half_open with a large answer and close_when_drained. */
START_TEST(test_half_open_close_when_drained)
{
  int peer;
  eddy_stream_options_t o = half_open_options();
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, &o, 1, &peer);
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_expect_str(eddy_stream_read_until_close(s), "");
  ck_assert(!eddy_stream_closed(s));
  size_t len = MiB;
  eddy_future_t *w = write_pattern(s, len);
  eddy_stream_close_when_drained(s);
  peer_read_pattern(peer, len);
  sfx_expect_ok(w);
  sfx_run_until_closed(s);
  ck_assert_int_eq(eddy_stream_error(s), 0);
  close(peer);
}
END_TEST

/* A half-open stream with nothing pending still learns that the peer went
 * away entirely (a reset over TCP, a hang-up over UNIX): it closes with an
 * error rather than waiting for a write to fail. */
START_TEST(test_half_open_peer_vanishes)
{
  int peer;
  eddy_stream_options_t o = half_open_options();
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, &o, 0, &peer);
  closes = 0;
  eddy_stream_set_close_callback(s, on_close, NULL);
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_expect_str(eddy_stream_read_until_close(s), "");
  ck_assert(!eddy_stream_closed(s));
  if (SOCKET_KIND == SFX_TCP)
    sfx_set_linger0(peer);
  close(peer);
  sfx_run_until_closed(s);
  sfx_run_for(0.02);
  ck_assert_int_eq(closes, 1);
  ck_assert_int_lt(close_error, 0);
}
END_TEST

/* After our own shutdown_write, the peer's FIN ends the stream, half-open
 * or not: both sides are done. */
START_TEST(test_half_open_shut_first)
{
  int peer;
  eddy_stream_options_t o = half_open_options();
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, &o, 0, &peer);
  sfx_expect_ok(eddy_stream_shutdown_write(s));
  char c;
  ck_assert_int_eq(read(peer, &c, 1), 0);
  sfx_raw_write_all(peer, "last", 4);
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_expect_str(eddy_stream_read_until_close(s), "last");
  sfx_run_until_closed(s);
  ck_assert_int_eq(eddy_stream_error(s), 0);
  close(peer);
}
END_TEST

/* eddy at both ends: the client says its piece and shuts down its side;
 * the half-open server reads to the end, answers, and shuts down its own. */
START_TEST(test_half_open_both_ends)
{
  eddy_stream_options_t o = half_open_options();
  sfx_pair_t p = sfx_pair(SOCKET_KIND, &o, &o, 1);
  size_t len = 512 * KiB;
  eddy_future_t *w = write_pattern(p.ws, len);
  eddy_future_t *sd = eddy_stream_shutdown_write(p.ws);
  eddy_future_t *q = eddy_stream_read_until_close(p.rs);
  sfx_wait(q);
  ck_assert_uint_eq(eddy_future_size(q), len);
  ck_assert(sfx_pattern_check(eddy_future_value(q), len, 0));
  sfx_expect_ok(w);
  sfx_expect_ok(sd);
  ck_assert(!eddy_stream_closed(p.rs));
  ck_assert(!eddy_stream_closed(p.ws)); /* its read side is open */
  /* The answer is the question, sent back without a copy. */
  eddy_future_t *a = eddy_stream_write_bytes_of(p.rs, q);
  eddy_future_unref(q);
  eddy_future_t *rsd = eddy_stream_shutdown_write(p.rs);
  eddy_future_t *back = eddy_stream_read_until_close(p.ws);
  sfx_wait(back);
  ck_assert_uint_eq(eddy_future_size(back), len);
  ck_assert(sfx_pattern_check(eddy_future_value(back), len, 0));
  eddy_future_unref(back);
  sfx_expect_ok(a);
  sfx_expect_ok(rsd);
  sfx_run_until_closed(p.rs);
  sfx_run_until_closed(p.ws);
  ck_assert_int_eq(eddy_stream_error(p.rs), 0);
  ck_assert_int_eq(eddy_stream_error(p.ws), 0);
}
END_TEST

/* A chunked read pending at the FIN of a half-open stream gets the bytes
 * that came with it, then resolves, from the loop. */
static size_t chunk_bytes;

static void count_chunk(eddy_stream_t *s, const void *data, size_t len, void *arg)
{
  chunk_bytes += len;
}

START_TEST(test_half_open_chunked_read)
{
  int peer;
  eddy_stream_options_t o = half_open_options();
  eddy_stream_t *s = sfx_raw_peer(SOCKET_KIND, 1, &o, 0, &peer);
  chunk_bytes = 0;
  sfx_raw_write_all(peer, "0123456789", 10);
  ck_assert(shutdown(peer, SHUT_WR) == 0);
  sfx_expect_ok(eddy_stream_read_until_close_chunked(s, count_chunk, NULL));
  ck_assert_uint_eq(chunk_bytes, 10);
  ck_assert(!eddy_stream_closed(s));
  eddy_stream_close(s, 0);
  close(peer);
}
END_TEST

static Suite *end_suite(void)
{
  Suite *s = suite_create("stream_end");
  TCase *tc = tcase_create("fin");
  sfx_tcase_setup(tc, 30);
  tcase_add_loop_test(tc, test_fin_keeps_queued_writes, 0, 2);
  tcase_add_loop_test(tc, test_fin_during_read_keeps_writes, 0, 2);
  tcase_add_loop_test(tc, test_fin_closes_idle_stream, 0, SFX_NKINDS);
  tcase_add_loop_test(tc, test_default_closes_before_late_answer, 0, 2);
  suite_add_tcase(s, tc);

  tc = tcase_create("half_open");
  sfx_tcase_setup(tc, 30);
  tcase_add_loop_test(tc, test_half_open_request_reply, 0, 2);
  tcase_add_loop_test(tc, test_half_open_close_when_drained, 0, 2);
  tcase_add_loop_test(tc, test_half_open_peer_vanishes, 0, 2);
  tcase_add_loop_test(tc, test_half_open_shut_first, 0, 2);
  tcase_add_loop_test(tc, test_half_open_both_ends, 0, 2);
  tcase_add_loop_test(tc, test_half_open_chunked_read, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  if (test_select_backend() != 0)
    return 77;
  SRunner *sr = srunner_create(end_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
