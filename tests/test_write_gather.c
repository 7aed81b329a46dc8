/* SPDX-License-Identifier: MIT */
/*
 * tests/test_write_gather.c - writes made in one loop pass leave together.
 *
 * While more input is buffered, a small write is held for the end of the
 * pass and the pass's writes go to the kernel in one sendmsg (src/stream/
 * write.c, "Answers to pipelined requests"); a large one goes at once,
 * corked; a lone answer goes at once. These tests count the
 * server socket's send and sendmsg calls: the program is linked with
 * -Wl,--wrap=send,--wrap=sendmsg against the static library, so the
 * library's calls go through the counters below. Everything else is the
 * public API: order, the write contract (a future resolves once its bytes
 * are in the kernel), close, write_file, the high watermark.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "eddy.h"
#include "stream_fixtures.h"
#include "test_backend.h"

/* ---- counting the server's sends ------------------------------------------ */

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);

static int counted_fd = -1; /* the server stream's socket */
static int n_send, n_sendmsg;

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
  if (fd == counted_fd)
    n_send++;
  return __real_send(fd, buf, len, flags);
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
  if (fd == counted_fd)
    n_sendmsg++;
  return __real_sendmsg(fd, msg, flags);
}

/* A server stream on TCP with its blocking raw peer; counting starts. */
static eddy_stream_t *server(const eddy_stream_options_t *opts, int *peer)
{
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, opts, 0, peer);
  ck_assert_ptr_nonnull(s);
  counted_fd = eddy_stream_fd(s);
  n_send = n_sendmsg = 0;
  return s;
}

static void peer_expect(int peer, const char *want)
{
  size_t len = strlen(want);
  char *got = malloc(len + 1);
  sfx_raw_read_exact(peer, got, len);
  got[len] = '\0';
  ck_assert_str_eq(got, want);
  free(got);
}

/* ---- an echo that does not wait for its writes ---------------------------- */

struct echo {
  eddy_stream_t *s;
  int lines;           /* echoed so far */
  int want;            /* stop after this many */
  int done;            /* set at the last one */
  int first_done_at_once; /* the first write had resolved when it returned */
};

static eddy_future_t *echo_line(eddy_future_t *line, void *arg)
{
  struct echo *e = arg;
  eddy_future_t *w = eddy_stream_write_bytes_of(e->s, line);
  ck_assert_ptr_nonnull(w);
  if (e->lines++ == 0)
    e->first_done_at_once = eddy_future_done(w);
  eddy_future_unref(w);
  if (e->lines == e->want) {
    e->done = 1;
    return eddy_future_stop(eddy_stream_loop(e->s));
  }
  return EDDY_NO_VALUE;
}

static eddy_future_t *echo_step(void *arg)
{
  struct echo *e = arg;
  return eddy_then_ok(eddy_stream_read_until(e->s, "\n", 1, 0), echo_line, e);
}

/* Echoes what the peer sends in one packet, e->want lines. */
static void run_echo(struct echo *e, int peer, const char *data)
{
  eddy_future_t *loop = eddy_repeat(echo_step, e);
  ck_assert_ptr_nonnull(loop);
  sfx_raw_write_all(peer, data, strlen(data));
  sfx_wait(loop);
  eddy_future_unref(loop);
}

/* Whether @s's loop sends its gathered writes on the io_uring ring
 * (src/stream/write_ring.c): then no sendmsg() is made for them. */
static int sends_on_ring(eddy_stream_t *s)
{
  return strcmp(eddy_loop_backend_name(eddy_stream_loop(s)), "io_uring") == 0;
}

/* Four lines in one packet: four writes in one pass, one system call (the
 * short answers are copied into one block of the queue, so one send); on
 * io_uring, one send on the ring and no system call. */
START_TEST(test_pipelined_answers_leave_in_one_send)
{
  int peer;
  struct echo e = {server(NULL, &peer), 0, 4, 0, 0};
  run_echo(&e, peer, "one\ntwo\nthree\nfour\n");
  ck_assert_int_eq(e.lines, 4);
  ck_assert_int_eq(e.first_done_at_once, 0); /* held: more input was buffered */
  ck_assert_int_eq(n_send + n_sendmsg, sends_on_ring(e.s) ? 0 : 1);
  peer_expect(peer, "one\ntwo\nthree\nfour\n");
  close(peer);
}
END_TEST

/* Large answers are not held (the pass would keep them all alive): each
 * goes at once, corked with MSG_MORE where Nagle is off, and the end of
 * the pass pushes the last. Every byte arrives, in order. */
START_TEST(test_large_answers_go_at_once)
{
  int peer;
  struct echo e = {server(NULL, &peer), 0, 3, 0, 0};
  ck_assert_int_eq(eddy_stream_set_nodelay(e.s, 1), 0);
  size_t line = 8192, n = 3 * line;
  char *data = malloc(n + 1);
  for (size_t i = 0; i < n; i++)
    data[i] = (char)('a' + i % 26);
  for (int k = 1; k <= 3; k++)
    data[k * line - 1] = '\n';
  data[n] = '\0';
  run_echo(&e, peer, data);
  ck_assert_int_eq(e.first_done_at_once, 1);
  ck_assert_int_eq(n_send, 3);
  ck_assert_int_eq(n_sendmsg, 0);
  peer_expect(peer, data);
  free(data);
  close(peer);
}
END_TEST

/* One request, one answer: it goes at once, no waiting for the pass. */
START_TEST(test_lone_answer_goes_at_once)
{
  int peer;
  struct echo e = {server(NULL, &peer), 0, 1, 0, 0};
  run_echo(&e, peer, "ping\n");
  ck_assert_int_eq(e.first_done_at_once, 1);
  ck_assert_int_eq(n_send, 1);
  ck_assert_int_eq(n_sendmsg, 0);
  peer_expect(peer, "ping\n");
  close(peer);
}
END_TEST

/* Many pipelined lines, echoed by a chain that waits for each write (the
 * README's echo): still every byte, in order. */
struct waiting {
  eddy_stream_t *s;
  int lines, want;
};

static eddy_future_t *write_line(eddy_future_t *line, void *arg)
{
  struct waiting *w = arg;
  return eddy_stream_write_bytes_of(w->s, line);
}

static eddy_future_t *count_line(eddy_future_t *written, void *arg)
{
  struct waiting *w = arg;
  if (++w->lines == w->want)
    return eddy_future_stop(eddy_stream_loop(w->s));
  return EDDY_NO_VALUE;
}

static eddy_future_t *waiting_step(void *arg)
{
  struct waiting *w = arg;
  return eddy_then_ok(eddy_then_ok(eddy_stream_read_until(w->s, "\n", 1, 0), write_line, w),
                      count_line, w);
}

START_TEST(test_waiting_chain_keeps_order)
{
  int peer;
  struct waiting w = {server(NULL, &peer), 0, 500};
  eddy_future_t *loop = eddy_repeat(waiting_step, &w);
  ck_assert_ptr_nonnull(loop);
  char *lines = malloc(500 * 16);
  size_t n = 0;
  for (int k = 0; k < 500; k++)
    n += (size_t)sprintf(lines + n, "line %d\n", k);
  sfx_raw_write_all(peer, lines, n); /* about 4 KiB: the kernel holds the echo */
  sfx_wait(loop);
  eddy_future_unref(loop);
  ck_assert_int_eq(w.lines, 500);
  peer_expect(peer, lines);
  free(lines);
  close(peer);
}
END_TEST

/* A write held for the pass, then a close in the same callback: the held
 * bytes reach the peer before the FIN, as they did when they went at once,
 * and the write's future resolves (its bytes are in the kernel). */
static eddy_future_t *held_write;

static eddy_future_t *answer_and_close(eddy_future_t *line, void *s)
{
  held_write = eddy_stream_write(s, "bye\n", 4);
  ck_assert_ptr_nonnull(held_write);
  ck_assert(!eddy_future_done(held_write)); /* held: "more\n" is buffered */
  eddy_stream_close(s, 0);
  return EDDY_NO_VALUE;
}

START_TEST(test_close_sends_what_was_held)
{
  int peer;
  eddy_stream_t *s = server(NULL, &peer);
  eddy_future_t *f = eddy_then_ok(eddy_stream_read_until(s, "\n", 1, 0), answer_and_close, s);
  sfx_raw_write_all(peer, "hi\nmore\n", 8);
  sfx_expect_ok(f);
  sfx_expect_ok(held_write);
  peer_expect(peer, "bye\n");
  char c;
  ck_assert_int_eq(recv(peer, &c, 1, 0), 0); /* then the end */
  close(peer);
}
END_TEST

/* A file between held writes keeps its place. */
static int file_fd = -1;

static eddy_future_t *write_around_file(eddy_future_t *line, void *s)
{
  eddy_future_unref(eddy_stream_write(s, "x", 1));
  eddy_future_unref(eddy_stream_write_file(s, file_fd, 0, 4));
  return eddy_stream_write(s, "y\n", 2);
}

START_TEST(test_write_file_keeps_its_place)
{
  char path[] = "/tmp/eddy-gather-XXXXXX";
  file_fd = mkstemp(path);
  ck_assert_int_ge(file_fd, 0);
  unlink(path);
  ck_assert_int_eq(write(file_fd, "FILE", 4), 4);
  int peer;
  eddy_stream_t *s = server(NULL, &peer);
  eddy_future_t *f = eddy_then_ok(eddy_stream_read_until(s, "\n", 1, 0), write_around_file, s);
  sfx_raw_write_all(peer, "go\nrest", 7);
  sfx_expect_ok(f); /* resolves once "y\n" is in the kernel */
  peer_expect(peer, "xFILEy\n");
  close(file_fd);
  close(peer);
}
END_TEST

/* Held bytes count toward the high watermark at once, and the drain
 * resolves once the pass end has sent them. */
static eddy_future_t *drain_future;
static int blocked_after_write;

static eddy_future_t *write_past_mark(eddy_future_t *line, void *s)
{
  eddy_future_unref(eddy_stream_write(s, "0123456789\n", 11));
  blocked_after_write = eddy_stream_write_blocked(s);
  drain_future = eddy_stream_drain(s);
  ck_assert(!eddy_future_done(drain_future));
  return EDDY_NO_VALUE;
}

START_TEST(test_held_bytes_count_for_backpressure)
{
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.write_high_watermark = 4;
  o.write_low_watermark = 1;
  int peer;
  eddy_stream_t *s = server(&o, &peer);
  eddy_future_t *f = eddy_then_ok(eddy_stream_read_until(s, "\n", 1, 0), write_past_mark, s);
  sfx_raw_write_all(peer, "a\nb\n", 4);
  sfx_expect_ok(f);
  ck_assert_int_eq(blocked_after_write, 1);
  sfx_expect_ok(drain_future);
  ck_assert(!eddy_stream_write_blocked(s));
  peer_expect(peer, "0123456789\n");
  close(peer);
}
END_TEST

/* Outside a running loop no pass will end: a write goes at once even with
 * input buffered. */
START_TEST(test_no_holding_outside_the_loop)
{
  int peer;
  eddy_stream_t *s = server(NULL, &peer);
  sfx_raw_write_all(peer, "abc", 3);
  sfx_expect_str(eddy_stream_read_bytes(s, 1, 0), "a"); /* "bc" stays buffered */
  eddy_future_t *w = eddy_stream_write(s, "now\n", 4);
  ck_assert_ptr_nonnull(w);
  ck_assert(eddy_future_done(w));
  eddy_future_unref(w);
  peer_expect(peer, "now\n");
  close(peer);
}
END_TEST

static Suite *gather_suite(void)
{
  Suite *s = suite_create("write_gather");
  TCase *tc = tcase_create("gather");
  sfx_tcase_setup(tc, 30);
  tcase_add_test(tc, test_pipelined_answers_leave_in_one_send);
  tcase_add_test(tc, test_large_answers_go_at_once);
  tcase_add_test(tc, test_lone_answer_goes_at_once);
  tcase_add_test(tc, test_waiting_chain_keeps_order);
  tcase_add_test(tc, test_close_sends_what_was_held);
  tcase_add_test(tc, test_write_file_keeps_its_place);
  tcase_add_test(tc, test_held_bytes_count_for_backpressure);
  tcase_add_test(tc, test_no_holding_outside_the_loop);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  if (test_select_backend() != 0)
    return 77;
  SRunner *sr = srunner_create(gather_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
