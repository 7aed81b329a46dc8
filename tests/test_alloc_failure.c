/* SPDX-License-Identifier: MIT */
/*
 * tests/test_alloc_failure.c - allocation failures inside chains are
 * errors, never silent success.
 *
 * The allocator fails on chosen calls: this program is linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc against the static
 * library, so every allocation the library makes goes through the
 * wrappers below (allocations inside libc itself, strdup or vasprintf,
 * do not). Each run of the README's echo chain fails the n-th allocation
 * after the start, for n = 1, 2, ... until a run needs fewer than n: every
 * allocation of the chain fails once, in turn. Whatever fails, the client
 * must get back an exact prefix of its lines, and if it gets fewer than
 * all of them the chain must end with -ENOMEM: a line is never skipped
 * while later ones are echoed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "eddy.h"

/* ---- the failing allocator ---------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static long allocations;      /* counted since armed */
static long fail_at;          /* the allocation to fail (1-based); 0: none */
static int armed;

static int should_fail(void)
{
  if (!armed)
    return 0;
  return ++allocations == fail_at;
}

void *__wrap_malloc(size_t size)
{
  if (should_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
  if (should_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
  if (should_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_realloc(p, size);
}

/* ---- the README's echo server, verbatim --------------------------------- */

static eddy_future_t *echo_line(eddy_future_t *line, void *stream)
{
  return eddy_stream_write_bytes_of(stream, line);
}

static eddy_future_t *echo_once(void *stream)
{
  return eddy_then_ok(eddy_stream_read_until(stream, "\n", 1, 0), echo_line, stream);
}

/* ---- running without allocating ------------------------------------------ */

static void stop_loop(eddy_future_t *f, void *loop)
{
  (void)f;
  eddy_loop_stop(loop);
}

static void stop_loop_cb(void *loop)
{
  eddy_loop_stop(loop);
}

/*
 * Runs @loop until @f settles (10 s at most), with the allocator armed to
 * fail its @fail_nth allocation from now. Everything the wait itself needs
 * (a done callback, a timer) is made before arming, so the failures land
 * in the chain only. @return the allocations counted while armed.
 */
static long run_armed(eddy_loop_t *loop, eddy_future_t *f, long fail_nth)
{
  eddy_timer_t *guard = eddy_timer_new(loop, stop_loop_cb, loop);
  ck_assert(guard != NULL);
  ck_assert(eddy_timer_start(guard, 10.0, 0) == 0);
  ck_assert(eddy_future_add_done(f, stop_loop, loop) == 0);
  allocations = 0;
  fail_at = fail_nth;
  armed = 1;
  eddy_loop_run(loop);
  armed = 0;
  eddy_timer_free(guard);
  return allocations;
}

/* ---- one run -------------------------------------------------------------- */

#define LINES 12

struct outcome {
  long allocations; /* how many the run made (while armed) */
  size_t lines_back;
  int error;        /* the chain's error, or 0 */
  int cause;
};

/* The client's bytes: LINES numbered lines, then the end of its side. */
static size_t client_lines(char *buf, size_t size)
{
  size_t n = 0;
  for (int i = 0; i < LINES; i++)
    n += (size_t)snprintf(buf + n, size - n, "line %02d of the test\n", i);
  return n;
}

static void log_nothing(eddy_log_level_t level, const char *msg, void *arg)
{
  (void)level;
  (void)msg;
  (void)arg;
}

static struct outcome echo_run(long fail_nth)
{
  struct outcome out = {0, 0, 0, 0};
  char sent[LINES * 32], got[LINES * 32 + 1];
  size_t len = client_lines(sent, sizeof sent);
  int fds[2];

  ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  ck_assert(write(fds[1], sent, len) == (ssize_t)len);
  ck_assert(shutdown(fds[1], SHUT_WR) == 0);

  eddy_loop_t *loop = eddy_loop_new();
  ck_assert(loop != NULL);
  eddy_loop_set_logger(loop, log_nothing, NULL);
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  ck_assert(s != NULL);

  /* The first step runs inside eddy_repeat(), so the count starts there. */
  allocations = 0;
  fail_at = fail_nth;
  armed = 1;
  eddy_future_t *r = eddy_repeat(echo_once, s);
  armed = 0;
  long before = allocations;
  if (r != NULL) {
    fail_nth = fail_nth > before ? fail_nth - before : 0;
    out.allocations = before + run_armed(loop, r, fail_nth);
  } else {
    out.allocations = before;
  }
  if (r == NULL) {
    out.error = -ENOMEM; /* the first step could not be built */
  } else {
    ck_assert_msg(eddy_future_done(r), "the chain hung (allocation %ld failed)", fail_nth);
    out.error = eddy_future_error(r);
    out.cause = eddy_future_cause(r);
    eddy_future_unref(r);
  }
  eddy_stream_unref(s); /* closes it; its close task runs from the loop */
  eddy_future_t *settle = eddy_sleep(loop, 0.001);
  ck_assert(settle != NULL);
  eddy_loop_run_until(loop, settle, 10.0);
  eddy_future_unref(settle);
  eddy_loop_free(loop);

  size_t n = 0;
  ssize_t k;
  while ((k = read(fds[1], got + n, sizeof got - 1 - n)) > 0)
    n += (size_t)k;
  close(fds[1]);
  got[n] = '\0';
  /* An exact prefix, made of whole lines. */
  ck_assert_msg(n <= len && memcmp(got, sent, n) == 0,
                "allocation %ld failed: the echo is not a prefix of what was sent: %s",
                fail_nth, got);
  for (size_t i = 0; i < n; i++)
    out.lines_back += got[i] == '\n';
  ck_assert_msg(n == 0 || got[n - 1] == '\n', "allocation %ld failed: half a line came back",
                fail_nth);
  return out;
}

START_TEST(test_echo_fails_each_allocation_in_turn)
{
  struct outcome clean = echo_run(0);
  ck_assert_uint_eq(clean.lines_back, LINES);
  ck_assert_int_eq(clean.error, EDDY_ECLOSED); /* the client's end */
  ck_assert_int_eq(clean.cause, 0);
  ck_assert_int_gt(clean.allocations, LINES);

  int short_runs = 0;
  for (long n = 1; n <= clean.allocations + 1; n++) {
    struct outcome o = echo_run(n);
    if (o.lines_back < LINES) {
      short_runs++;
      ck_assert_msg(o.error == -ENOMEM || o.cause == -ENOMEM,
                    "allocation %ld of %ld failed: %zu of %d lines came back and the "
                    "chain ended with %s (cause %s), not ENOMEM",
                    n, clean.allocations, o.lines_back, LINES, eddy_err_name(o.error),
                    eddy_err_name(o.cause));
    }
  }
  /* The failures did bite: most runs lost the rest of their lines. */
  ck_assert_int_gt(short_runs, 0);
}
END_TEST

/* A then-callback's own allocation fails: the chain reports -ENOMEM. */
static eddy_future_t *make_more(eddy_future_t *settled, void *arg)
{
  return eddy_future_resolved(eddy_future_loop(settled), NULL, NULL);
}

START_TEST(test_then_callback_allocation)
{
  eddy_loop_t *loop = eddy_loop_new();
  eddy_future_t *f = eddy_then_ok(eddy_future_resolved(loop, NULL, NULL), make_more, NULL);
  f = eddy_then_ok(f, make_more, NULL);
  run_armed(loop, f, 1); /* the first callback's future */
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_REJECTED);
  ck_assert_int_eq(eddy_future_error(f), -ENOMEM);
  eddy_future_unref(f);
  eddy_loop_free(loop);
}
END_TEST

/* ---- a write the kernel cannot take at once ---------------------------------
 * Found by make check-faults: a TLS echo stalled for good when the record
 * of a write that had to wait for the kernel could not be allocated. The
 * write failed with -ENOMEM, but its bytes stayed queued with no write
 * interest, and the stream, held open by them, never flushed nor closed.
 * Here each allocation of such a write fails in turn (the path is the
 * same for every stream; TLS only adds its own): the bytes must either
 * all arrive (the write resolved) or
 * stop at a prefix followed by the end of the connection (the write
 * failed with -ENOMEM and the stream closed), never just stop. */

#define BIG (2u * 1024u * 1024u)

struct sink {
  int fd;
  size_t got;
  int ended;
};

/* Reads whatever the peer socket has, as the far end of the connection. */
static void sink_read(eddy_loop_t *loop, int fd, unsigned events, void *arg)
{
  struct sink *k = arg;
  char buf[65536];
  ssize_t r;
  (void)events;
  while ((r = read(fd, buf, sizeof buf)) > 0)
    k->got += (size_t)r;
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
    k->ended = 1;
    eddy_loop_remove_handler(loop, fd);
  }
}

static void stop_when_out(void *arg);

struct watch {
  eddy_loop_t *loop;
  struct sink *sink;
  eddy_timer_t *timer;
};

/* Stops the loop once the sink has everything or saw the end. */
static void stop_when_out(void *arg)
{
  struct watch *w = arg;
  if (w->sink->got >= BIG || w->sink->ended)
    eddy_loop_stop(w->loop);
}

/* One write of BIG bytes with allocation @fail_nth of it failing.
 * @return the allocations the write call made. */
static long big_write_run(long fail_nth)
{
  static char data[BIG];
  int fds[2];
  ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  ck_assert(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0);
  eddy_loop_t *loop = eddy_loop_new();
  ck_assert(loop != NULL);
  eddy_loop_set_logger(loop, log_nothing, NULL);
  eddy_stream_t *s = eddy_stream_new_socket(loop, fds[0], NULL);
  ck_assert(s != NULL);

  struct sink sink = {fds[1], 0, 0};
  ck_assert(eddy_loop_add_handler(loop, fds[1], EDDY_READ, sink_read, &sink) == 0);
  allocations = 0;
  fail_at = fail_nth;
  armed = 1;
  eddy_future_t *w = eddy_stream_write(s, data, sizeof data);
  armed = 0;
  long used = allocations;

  struct watch watch = {loop, &sink, eddy_timer_new(loop, stop_when_out, &watch)};
  ck_assert(watch.timer != NULL);
  ck_assert(eddy_timer_start(watch.timer, 0.001, 0.001) == 0);
  eddy_future_t *bound = eddy_sleep(loop, w != NULL ? 10.0 : 0.05);
  ck_assert(bound != NULL);
  eddy_loop_run_until(loop, bound, 10.0);
  if (w == NULL) {
    /* The write's future could not be made: nothing was written, and the
     * stream closed, so no later write can follow the gap. */
    ck_assert_uint_eq(sink.got, 0);
    ck_assert(sink.ended);
    ck_assert(eddy_stream_closed(s));
    ck_assert_int_eq(eddy_stream_error(s), -ENOMEM);
    eddy_future_t *next = eddy_stream_write(s, "x", 1);
    ck_assert(next != NULL && eddy_future_error(next) == EDDY_ECLOSED);
    eddy_future_unref(next);
  } else if (sink.got < BIG) {
    ck_assert_msg(sink.ended,
                  "allocation %ld of a queued write failed: %zu of %u bytes arrived, "
                  "then nothing, and the connection stayed open", fail_nth, sink.got, BIG);
    ck_assert(eddy_future_done(w));
    ck_assert_int_eq(eddy_future_error(w), -ENOMEM);
    ck_assert(eddy_stream_closed(s));
  } else {
    ck_assert(eddy_future_done(w));
  }
  eddy_future_unref(w);
  eddy_future_unref(bound);
  eddy_timer_free(watch.timer);
  if (!sink.ended)
    eddy_loop_remove_handler(loop, fds[1]);
  eddy_stream_unref(s);
  eddy_future_t *settle = eddy_sleep(loop, 0.001);
  eddy_loop_run_until(loop, settle, 10.0);
  eddy_future_unref(settle);
  eddy_loop_free(loop);
  close(fds[1]);
  return used;
}

START_TEST(test_queued_write_allocation)
{
  long n = 0, used;
  do {
    n++;
    used = big_write_run(n);
  } while (n <= used);
  ck_assert_int_gt(n, 2); /* the write did allocate */
}
END_TEST

/* ---- OpenSSL's allocations ------------------------------------------------
 * libcrypto calls malloc itself, past the wrappers; routed through these
 * (CRYPTO_set_mem_functions, before OpenSSL allocates anything), they fail
 * while openssl_fails is set. */
static int openssl_fails;

static void *ossl_malloc(size_t n, const char *file, int line)
{
  return openssl_fails ? NULL : __real_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
  return openssl_fails && n != 0 ? NULL : __real_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
  free(p);
}

/* Found by make check-faults: a TLS stream whose SSL object cannot be
 * made for lack of memory failed with errno EINVAL, which the TCP server
 * logged as "cannot make a stream for an accepted connection: Invalid
 * argument". SSL_new and BIO_new fail only for lack of memory. */
START_TEST(test_tls_stream_openssl_out_of_memory)
{
  eddy_loop_t *loop = eddy_loop_new();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  int fds[2];
  ck_assert_ptr_nonnull(loop);
  ck_assert_ptr_nonnull(ctx);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  openssl_fails = 1;
  errno = 0;
  eddy_stream_t *s = eddy_stream_new_tls(loop, fds[0], ctx, 1, NULL, NULL);
  int err = errno;
  openssl_fails = 0;
  ck_assert_ptr_null(s);
  ck_assert_msg(err == ENOMEM, "errno %d (%s), not ENOMEM", err, strerror(err));
  ck_assert_int_eq(fcntl(fds[0], F_GETFD), -1); /* the fd was closed */
  close(fds[1]);
  SSL_CTX_free(ctx);
  eddy_loop_free(loop);
}
END_TEST

int main(void)
{
  /* First: OpenSSL takes its allocator before its first allocation only. */
  if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
    fprintf(stderr, "CRYPTO_set_mem_functions failed\n");
    return EXIT_FAILURE;
  }
  Suite *s = suite_create("alloc_failure");
  TCase *tc = tcase_create("chains");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_echo_fails_each_allocation_in_turn);
  tcase_add_test(tc, test_then_callback_allocation);
  tcase_add_test(tc, test_tls_stream_openssl_out_of_memory);
  tcase_add_test(tc, test_queued_write_allocation);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
