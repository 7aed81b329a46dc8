/* SPDX-License-Identifier: MIT */
/*
 * tests/test_stream_send.c - the write contract where a send may be in
 * flight on the loop's io_uring ring.
 *
 * On io_uring a plain socket's queued bytes leave in an IORING_OP_SENDMSG
 * (src/stream/write_ring.c): the kernel owns the pieces until the
 * completion, one send is in flight per stream, and a close settles it
 * first. These cases pin what must hold for it, through the public API:
 * order and futures that resolve only once their bytes went, a peer that
 * does not read, a close (graceful or not) and a reset with a send in
 * flight, shutdown_write behind it, max_write_buffer_size counting it, and
 * a borrowed write given back while the kernel may read it. The program
 * is linked with -Wl,--wrap=send,--wrap=sendmsg (as test_write_gather) to
 * show that on io_uring the queued bytes make no system call. Built once
 * per backend; every case holds on each.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "eddy.h"
#include "stream_fixtures.h"
#include "test_backend.h"

#define TIMEOUT 60
#define CHUNK (64u * 1024u)

/* ---- counting the stream's sends ------------------------------------------ */

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);

static int counted_fd = -1;
static int n_calls; /* send + sendmsg on counted_fd */

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
  if (fd == counted_fd)
    n_calls++;
  return __real_send(fd, buf, len, flags);
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
  if (fd == counted_fd)
    n_calls++;
  return __real_sendmsg(fd, msg, flags);
}

static int on_ring(void)
{
  return strcmp(eddy_loop_backend_name(sfx_loop), "io_uring") == 0;
}

/* A TCP stream with small kernel buffers and its raw peer, which reads
 * nothing until told; counting starts. */
static eddy_stream_t *writer(const eddy_stream_options_t *opts, int *peer)
{
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 0, opts, 1, peer);
  ck_assert_ptr_nonnull(s);
  counted_fd = eddy_stream_fd(s);
  n_calls = 0;
  return s;
}

/* ---- running code inside the loop ------------------------------------------ */

/* Sends go on the ring only from a running loop (outside one, nothing
 * would submit them soon), so the writes are made from a callback. */
struct in_loop {
  void (*fn)(void *arg);
  void *arg;
  int ran;
};

static void in_loop_cb(void *p)
{
  struct in_loop *l = p;
  l->fn(l->arg);
  l->ran = 1;
}

static void run_in_loop(void (*fn)(void *), void *arg)
{
  struct in_loop l = {fn, arg, 0};
  ck_assert_int_eq(eddy_loop_call_soon(sfx_loop, in_loop_cb, &l), 0);
  sfx_run_until_flag(&l.ran);
}

/* n writes of CHUNK bytes of the pattern, their futures kept. */
struct writes {
  eddy_stream_t *s;
  int n;
  eddy_future_t **f;
  int borrowed;
  char *buf; /* borrowed: the caller's memory, n * CHUNK */
};

static void do_writes(void *arg)
{
  struct writes *w = arg;
  char *chunk = malloc(CHUNK);
  ck_assert_ptr_nonnull(chunk);
  for (int i = 0; i < w->n; i++) {
    if (w->borrowed) {
      w->f[i] = eddy_stream_write_borrowed(w->s, w->buf + (size_t)i * CHUNK, CHUNK);
    } else {
      sfx_pattern_fill(chunk, CHUNK, (size_t)i * CHUNK);
      w->f[i] = eddy_stream_write(w->s, chunk, CHUNK);
    }
    ck_assert_ptr_nonnull(w->f[i]);
  }
  free(chunk);
}

static struct writes start_writes(eddy_stream_t *s, int n, int borrowed)
{
  struct writes w = {s, n, calloc((size_t)n, sizeof(eddy_future_t *)), borrowed, NULL};
  ck_assert_ptr_nonnull(w.f);
  if (borrowed) {
    w.buf = malloc((size_t)n * CHUNK);
    ck_assert_ptr_nonnull(w.buf);
    sfx_pattern_fill(w.buf, (size_t)n * CHUNK, 0);
  }
  run_in_loop(do_writes, &w);
  return w;
}

static void writes_free(struct writes *w)
{
  for (int i = 0; i < w->n; i++)
    eddy_future_unref(w->f[i]);
  free(w->f);
  free(w->buf);
}

/* A writer whose @n writes backed up: after a pass of the loop the last
 * is still pending (its bytes wait for the peer, on io_uring in a send in
 * flight). */
static struct writes backed_up(const eddy_stream_options_t *opts, int n, int borrowed,
                               int *peer)
{
  struct writes w = start_writes(writer(opts, peer), n, borrowed);
  sfx_run_for(0.1);
  ck_assert(!eddy_future_done(w.f[w.n - 1]));
  return w;
}

/* The last write was rejected as a close with @cause rejects it. */
static void expect_rejected(const struct writes *w, int cause)
{
  ck_assert_int_eq(eddy_future_error(w->f[w->n - 1]), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(w->f[w->n - 1]), cause);
}

/* Write futures settle in order: none resolved after one still pending. */
static void check_order(const struct writes *w)
{
  for (int i = 1; i < w->n; i++)
    ck_assert_msg(!eddy_future_done(w->f[i]) || eddy_future_done(w->f[i - 1]),
                  "write %d settled before write %d", i, i - 1);
}

/* Reads @len bytes from the raw peer while the loop runs, checking the
 * pattern from offset 0 and the futures' order as it goes. */
static void peer_drain(int peer, size_t len, const struct writes *w)
{
  char *buf = malloc(len);
  ck_assert_ptr_nonnull(buf);
  size_t got = 0;
  double end = eddy_loop_time(sfx_loop) + SFX_WAIT;
  while (got < len) {
    ssize_t r = recv(peer, buf + got, len - got, MSG_DONTWAIT);
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    ck_assert_msg(r < 0 && (errno == EAGAIN || errno == EINTR), "peer: EOF or error after %zu bytes",
                  got);
    eddy_loop_run_once(sfx_loop, 0.01);
    if (w)
      check_order(w);
    eddy_loop_update_time(sfx_loop);
    ck_assert_msg(eddy_loop_time(sfx_loop) < end, "only %zu of %zu bytes came", got, len);
  }
  ck_assert_msg(sfx_pattern_check(buf, len, 0), "the bytes are not the ones written, in order");
  free(buf);
}

/* Reads until EOF (or an error), bounded. @return the bytes read. */
static size_t peer_until_eof(int peer)
{
  char buf[65536];
  size_t total = 0;
  for (;;) {
    struct pollfd p = {peer, POLLIN, 0};
    int rc = poll(&p, 1, (int)(SFX_WAIT * 1000));
    ck_assert_msg(rc == 1, "the peer saw no end of the stream");
    ssize_t r = recv(peer, buf, sizeof buf, 0);
    if (r <= 0)
      return total;
    total += (size_t)r;
  }
}

/* ---- the cases ---------------------------------------------------------------- */

/* A peer that reads nothing: the kernel fills, the rest waits in flight
 * (on io_uring, with no system call), the futures stay pending; once the
 * peer drains, every byte arrives in order and the futures resolve in
 * order, only after their bytes went. */
START_TEST(test_full_kernel_resolves_on_drain)
{
  int peer;
  eddy_stream_t *s = writer(NULL, &peer);
  struct writes w = start_writes(s, 32, 0);
  int calls = n_calls;
  sfx_run_for(0.1);
  ck_assert(!eddy_future_done(w.f[w.n - 1]));
  check_order(&w);
  if (on_ring())
    ck_assert_int_eq(n_calls, calls); /* waiting in the kernel, not polled for */
  peer_drain(peer, (size_t)w.n * CHUNK, &w);
  sfx_wait(w.f[w.n - 1]);
  for (int i = 0; i < w.n; i++)
    sfx_expect_ok(eddy_future_ref(w.f[i]));
  if (on_ring())
    ck_assert_msg(n_calls <= 1, "%d send system calls on io_uring", n_calls); /* the inline one */
  ck_assert_int_eq(eddy_stream_write_buffer_size(s), 0);
  writes_free(&w);
  close(peer);
}
END_TEST

/* Pipelined requests: answers gathered in the pass go on the ring once
 * they pass 4 KiB, and a close in the same callback still delivers all
 * of them before the FIN. */
struct echo {
  eddy_stream_t *s;
  int lines, want, done;
};

static eddy_future_t *echo_line(eddy_future_t *line, void *arg)
{
  struct echo *e = arg;
  char answer[1024];
  memset(answer, 'a' + e->lines % 26, sizeof answer);
  eddy_future_unref(eddy_stream_write(e->s, answer, sizeof answer));
  (void)line;
  if (++e->lines == e->want) {
    e->done = 1;
    eddy_stream_close(e->s, 0);
    return eddy_future_stop(eddy_stream_loop(e->s));
  }
  return EDDY_NO_VALUE;
}

static eddy_future_t *echo_step(void *arg)
{
  struct echo *e = arg;
  return eddy_then_ok(eddy_stream_read_until(e->s, "\n", 1, 0), echo_line, e);
}

START_TEST(test_close_after_gathered_writes_delivers_all)
{
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  struct echo e = {s, 0, 12, 0};
  eddy_future_t *loop = eddy_repeat(echo_step, &e);
  ck_assert_ptr_nonnull(loop);
  const char *req = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";
  sfx_raw_write_all(peer, req, strlen(req));
  sfx_wait(loop);
  eddy_future_unref(loop);
  ck_assert(e.done);
  ck_assert(eddy_stream_closed(s));
  char *got = malloc(12 * 1024);
  sfx_raw_read_exact(peer, got, 12 * 1024);
  for (int i = 0; i < 12; i++)
    for (int k = 0; k < 1024; k++)
      ck_assert_int_eq(got[i * 1024 + k], 'a' + i % 26);
  free(got);
  ck_assert_int_eq(peer_until_eof(peer), 0); /* then the FIN */
  close(peer);
}
END_TEST

/* A close with an error while a send waits in the kernel: the send is
 * cancelled (the close is not held up by it: the peer sees the end after
 * what had been sent), the futures are rejected, nothing leaks. */
START_TEST(test_error_close_with_send_in_flight)
{
  int peer;
  struct writes w = backed_up(NULL, 64, 0, &peer);
  eddy_stream_t *s = w.s;
  eddy_stream_close(s, EDDY_ECANCELLED);
  ck_assert(eddy_stream_closed(s));
  sfx_wait(w.f[w.n - 1]);
  expect_rejected(&w, EDDY_ECANCELLED);
  check_order(&w);
  size_t n = peer_until_eof(peer);
  ck_assert_msg(n < (size_t)w.n * CHUNK, "all %zu bytes came after the close", n);
  writes_free(&w);
  close(peer);
}
END_TEST

/* The last reference dropped with a send in flight: the stream holds
 * itself for its writes, which all go, in order; then it closes (a FIN)
 * and is freed. */
START_TEST(test_unref_with_send_in_flight)
{
  int peer;
  struct writes w = backed_up(NULL, 32, 0, &peer);
  eddy_stream_t *s = w.s;
  sfx_release(&s);
  peer_drain(peer, (size_t)w.n * CHUNK, &w);
  sfx_wait(w.f[w.n - 1]);
  for (int i = 0; i < w.n; i++)
    sfx_expect_ok(eddy_future_ref(w.f[i]));
  ck_assert_int_eq(peer_until_eof(peer), 0);
  writes_free(&w);
  close(peer);
}
END_TEST

/* The peer resets while a send waits: the futures are rejected with the
 * reset as their cause, and the stream closes with it. */
START_TEST(test_reset_with_send_in_flight)
{
  int peer;
  struct writes w = backed_up(NULL, 32, 0, &peer);
  eddy_stream_t *s = w.s;
  sfx_set_linger0(peer);
  close(peer);
  sfx_run_until_closed(s);
  int e = eddy_stream_error(s);
  ck_assert_msg(e == -ECONNRESET || e == -EPIPE, "closed with %s", eddy_err_name(e));
  expect_rejected(&w, e);
  check_order(&w);
  writes_free(&w);
}
END_TEST

/* A close from inside the stream (here the write deadline) with a send
 * waiting in the kernel: settled the same way, nothing leaks. */
START_TEST(test_write_timeout_with_send_in_flight)
{
  int peer;
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.write_timeout = 0.2;
  eddy_stream_t *s = writer(&o, &peer);
  struct writes w = start_writes(s, 32, 0);
  sfx_run_until_closed(s);
  ck_assert_int_eq(eddy_stream_error(s), EDDY_ETIMEOUT);
  expect_rejected(&w, EDDY_ETIMEOUT);
  check_order(&w);
  ck_assert(peer_until_eof(peer) < (size_t)w.n * CHUNK);
  writes_free(&w);
  close(peer);
}
END_TEST

/* The loop freed with a send waiting in the kernel and nobody holding the
 * stream but its writes: the free closes it (the send cancelled first, so
 * the peer sees the end at once), nothing leaks, no fd is left. */
START_TEST(test_loop_freed_with_send_in_flight)
{
  int peer;
  struct writes w = backed_up(NULL, 32, 0, &peer);
  eddy_stream_t *s = w.s;
  sfx_release(&s);
  writes_free(&w); /* futures go before their loop */
  eddy_loop_free(sfx_loop);
  sfx_loop = eddy_loop_new();
  ck_assert_ptr_nonnull(sfx_loop);
  ck_assert(peer_until_eof(peer) < 32 * CHUNK);
  close(peer);
}
END_TEST

/* A write after the close is rejected at once. */
START_TEST(test_write_after_close)
{
  int peer;
  eddy_stream_t *s = writer(NULL, &peer);
  struct writes w = start_writes(s, 16, 0);
  eddy_stream_close(s, 0);
  eddy_future_t *f = eddy_stream_write(s, "x", 1);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECLOSED);
  eddy_future_unref(f);
  sfx_run_for(0.05);
  writes_free(&w);
  close(peer);
}
END_TEST

/* The bytes a send in flight holds count against max_write_buffer_size
 * until its completion. */
START_TEST(test_max_write_buffer_counts_send_in_flight)
{
  int peer;
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.max_write_buffer_size = 16 * CHUNK;
  eddy_stream_t *s = writer(&o, &peer);
  struct writes w = start_writes(s, 16, 0);
  sfx_run_for(0.1);
  size_t held = eddy_stream_write_buffer_size(s);
  ck_assert(held > 0 && held <= 16 * CHUNK);
  char *more = calloc(1, 16 * CHUNK - held + 1);
  eddy_future_t *f = eddy_stream_write(s, more, 16 * CHUNK - held + 1);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EBUFFERFULL);
  eddy_future_unref(f);
  ck_assert(!eddy_stream_closed(s));
  peer_drain(peer, 16 * CHUNK, &w);
  sfx_wait(w.f[w.n - 1]);
  sfx_expect_ok(eddy_future_ref(w.f[w.n - 1]));
  free(more);
  writes_free(&w);
  close(peer);
}
END_TEST

/* shutdown_write waits for the send in flight: every byte, then the FIN. */
START_TEST(test_shutdown_waits_for_send_in_flight)
{
  int peer;
  eddy_stream_t *s = writer(NULL, &peer);
  struct writes w = start_writes(s, 16, 0);
  eddy_future_t *shut = eddy_stream_shutdown_write(s);
  sfx_run_for(0.1);
  ck_assert(!eddy_future_done(shut));
  peer_drain(peer, 16 * CHUNK, &w);
  sfx_expect_ok(shut);
  ck_assert_int_eq(peer_until_eof(peer), 0);
  ck_assert(eddy_future_done(w.f[w.n - 1]));
  writes_free(&w);
  close(peer);
}
END_TEST

/* A borrowed write whose future is cancelled while the kernel may be
 * reading it: the caller may scribble over its memory at once, and the
 * peer still gets the bytes as they were. */
START_TEST(test_borrowed_cancelled_in_flight)
{
  int peer;
  struct writes w = backed_up(NULL, 16, 1, &peer);
  eddy_stream_t *s = w.s;
  for (int i = 0; i < w.n; i++)
    if (!eddy_future_done(w.f[i]))
      ck_assert_int_eq(eddy_future_cancel(w.f[i]), 0);
  memset(w.buf, 0xff, (size_t)w.n * CHUNK);
  peer_drain(peer, (size_t)w.n * CHUNK, NULL);
  ck_assert(!eddy_stream_closed(s));
  writes_free(&w);
  close(peer);
}
END_TEST

/* A fork with a send in flight: the child's loop (a ring of its own)
 * never completes the parent's send, so the child's copy of the stream
 * closes (EDDY_ECANCELLED) at its first pass instead of waiting forever;
 * the parent's send goes on untouched and every byte arrives once. */
START_TEST(test_fork_with_send_in_flight)
{
  int peer;
  struct writes w = backed_up(NULL, 16, 0, &peer);
  eddy_stream_t *s = w.s;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* On epoll the child's copy of the queue would be sent too, as it
     * always was: only the ring's case is looked at. */
    if (!on_ring())
      _exit(0);
    int ok = eddy_loop_after_fork(sfx_loop) == 0;
    eddy_loop_run_once(sfx_loop, 0.05);
    eddy_loop_run_once(sfx_loop, 0.05);
    ok = ok && eddy_stream_closed(s) && eddy_stream_error(s) == EDDY_ECANCELLED;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw its stream wrong");
  peer_drain(peer, (size_t)w.n * CHUNK, &w);
  sfx_wait(w.f[w.n - 1]);
  sfx_expect_ok(eddy_future_ref(w.f[w.n - 1]));
  char extra;
  ck_assert_int_eq(recv(peer, &extra, 1, MSG_DONTWAIT), -1); /* nothing twice */
  writes_free(&w);
  close(peer);
}
END_TEST

/* A pass that answers several connections: on io_uring their answers
 * leave together on the ring rather than a send() each (write.c,
 * send_inline). Every answer arrives, and each write's future resolves. */
#define NCONN 8

struct answer {
  eddy_stream_t *s;
  eddy_future_t *w; /* the answer's write */
};

static eddy_future_t *answer_line(eddy_future_t *line, void *arg)
{
  struct answer *a = arg;
  char buf[64];
  int n = snprintf(buf, sizeof buf, "re:%.*s", (int)eddy_future_size(line),
                   (const char *)eddy_future_value(line));
  a->w = eddy_stream_write(a->s, buf, (size_t)n);
  return EDDY_NO_VALUE;
}

START_TEST(test_busy_pass_answers)
{
  int peer[NCONN];
  struct answer a[NCONN];
  eddy_future_t *chain[NCONN];
  for (int i = 0; i < NCONN; i++) {
    a[i].s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer[i]);
    a[i].w = NULL;
    chain[i] = eddy_then_ok(eddy_stream_read_until(a[i].s, "\n", 1, 0), answer_line, &a[i]);
  }
  sfx_run_for(0.05); /* the reads wait (on io_uring, their receives armed) */
  for (int i = 0; i < NCONN; i++) {
    char line[16];
    int n = snprintf(line, sizeof line, "q%d\n", i);
    sfx_raw_write_all(peer[i], line, (size_t)n);
  }
  for (int i = 0; i < NCONN; i++) {
    sfx_wait(chain[i]);
    eddy_future_unref(chain[i]);
    ck_assert_ptr_nonnull(a[i].w);
    sfx_expect_ok(a[i].w);
  }
  for (int i = 0; i < NCONN; i++) {
    char want[16], got[16];
    int n = snprintf(want, sizeof want, "re:q%d\n", i);
    sfx_raw_read_exact(peer[i], got, (size_t)n);
    ck_assert_int_eq(memcmp(got, want, (size_t)n), 0);
    close(peer[i]);
  }
}
END_TEST

static Suite *send_suite(void)
{
  Suite *s = suite_create("stream_send");
  TCase *tc = tcase_create("send");
  sfx_tcase_setup(tc, TIMEOUT);
  tcase_add_test(tc, test_full_kernel_resolves_on_drain);
  tcase_add_test(tc, test_close_after_gathered_writes_delivers_all);
  tcase_add_test(tc, test_error_close_with_send_in_flight);
  tcase_add_test(tc, test_unref_with_send_in_flight);
  tcase_add_test(tc, test_reset_with_send_in_flight);
  tcase_add_test(tc, test_write_timeout_with_send_in_flight);
  tcase_add_test(tc, test_loop_freed_with_send_in_flight);
  tcase_add_test(tc, test_write_after_close);
  tcase_add_test(tc, test_max_write_buffer_counts_send_in_flight);
  tcase_add_test(tc, test_shutdown_waits_for_send_in_flight);
  tcase_add_test(tc, test_borrowed_cancelled_in_flight);
  tcase_add_test(tc, test_fork_with_send_in_flight);
  tcase_add_test(tc, test_busy_pass_answers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return test_run_suite(send_suite());
}
