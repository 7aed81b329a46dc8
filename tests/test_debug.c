/* SPDX-License-Identifier: MIT */
/*
 * Introspection and debug mode: eddy_loop_close() refusing a busy loop,
 * eddy_loop_walk() and eddy_loop_dump(), and debug mode's warnings
 * (unobserved rejections, slow callbacks, a loop freed with live objects),
 * whose text the tests capture through eddy_loop_set_logger(). Runs on
 * the default backend and, as test_debug_poll, on poll().
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <eddy.h>
#include "test_backend.h"

/* ---- captured log ------------------------------------------------------- */

static char logtext[8192];

static void capture(eddy_log_level_t level, const char *msg, void *arg)
{
  size_t n = strlen(logtext);

  snprintf(logtext + n, sizeof logtext - n, "%s\n", msg);
}

static eddy_loop_t *debug_loop(void)
{
  eddy_loop_t *loop = eddy_loop_new();

  ck_assert_ptr_nonnull(loop);
  ck_assert_int_eq(eddy_loop_set_debug(loop, 1), 0);
  logtext[0] = '\0';
  eddy_loop_set_logger(loop, capture, NULL);
  return loop;
}

/* "created at FILE:LINE in FUNC", as the warnings print it. */
static const char *site(int line, const char *func)
{
  static char buf[256];

  snprintf(buf, sizeof buf, "created at %s:%d in %s", __FILE__, line, func);
  return buf;
}

static void run_a_little(eddy_loop_t *loop)
{
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0);
}

/* ---- eddy_loop_close ------------------------------------------------------ */

static void noop_io(eddy_loop_t *loop, int fd, unsigned events, void *arg) {}
static void noop(void *arg) {}

static void close_running(void *arg)
{
  void **p = arg;
  *(int *)p[1] = eddy_loop_close(p[0]);
}

START_TEST(test_close)
{
  eddy_loop_t *loop;
  eddy_future_t *f;
  eddy_stream_t *s;
  eddy_tcp_server_t *srv;
  int fds[2], rc = 1;
  void *p[2];

  ck_assert_int_eq(eddy_loop_close(NULL), -EINVAL);
  ck_assert_int_eq(eddy_loop_close(eddy_loop_new()), 0); /* a fresh loop */

  /* A future, pending or not, keeps it busy until released. */
  loop = eddy_loop_new();
  f = eddy_future_new(loop);
  ck_assert_int_eq(eddy_loop_close(loop), -EBUSY);
  eddy_future_resolve(f, NULL, NULL);
  ck_assert_int_eq(eddy_loop_close(loop), -EBUSY);
  eddy_future_unref(f);
  ck_assert_int_eq(eddy_loop_close(loop), 0);

  /* A sleep: its timer and future, until cancelled. */
  loop = eddy_loop_new();
  f = eddy_sleep(loop, 100);
  eddy_future_unref(f);
  ck_assert_int_eq(eddy_loop_close(loop), -EBUSY);
  eddy_loop_free(loop); /* frees it anyway, leaking nothing */

  /* An fd handler, a queued callback. */
  loop = eddy_loop_new();
  ck_assert_int_eq(pipe(fds), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, fds[0], EDDY_READ, noop_io, NULL), 0);
  ck_assert_int_eq(eddy_loop_close(loop), -EBUSY);
  eddy_loop_remove_handler(loop, fds[0]);
  ck_assert_int_eq(eddy_loop_call_soon(loop, noop, NULL), 0);
  ck_assert_int_eq(eddy_loop_close(loop), -EBUSY);
  run_a_little(loop);
  ck_assert_int_eq(eddy_loop_close(loop), 0);

  /* A stream, until freed (its close runs from the loop); a server. */
  loop = eddy_loop_new();
  s = eddy_stream_new_pipe(loop, fds[0], NULL);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(eddy_loop_close(loop), -EBUSY);
  eddy_stream_unref(s);
  run_a_little(loop);
  srv = eddy_tcp_server_new(loop, NULL);
  ck_assert_ptr_nonnull(srv);
  ck_assert_int_eq(eddy_loop_close(loop), -EBUSY);
  eddy_tcp_server_free(srv);
  ck_assert_int_eq(eddy_loop_close(loop), 0);
  close(fds[1]);

  /* Not from inside the loop. */
  loop = eddy_loop_new();
  p[0] = loop;
  p[1] = &rc;
  eddy_loop_call_soon(loop, close_running, p);
  run_a_little(loop);
  ck_assert_int_eq(rc, EDDY_EUSAGE);
  ck_assert_int_eq(eddy_loop_close(loop), 0);
}
END_TEST

/* ---- eddy_loop_free with streams at work ------------------------------------ */

static int failed_seen;

static eddy_future_t *see_failure(eddy_future_t *settled, void *arg)
{
  ck_assert_int_ne(eddy_future_error(settled), 0);
  failed_seen++;
  return EDDY_NO_VALUE;
}

static eddy_future_t *see_closed_by_free(eddy_future_t *settled, void *arg)
{
  ck_assert_int_eq(eddy_future_error(settled), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(settled), EDDY_ECANCELLED);
  failed_seen++;
  return EDDY_NO_VALUE;
}

/* A stream with a read pending holds itself; a connect in progress is held
 * by its attempt. Every reference of the caller dropped, eddy_loop_free()
 * closes them, the chains hear of it, nothing leaks (LeakSanitizer and
 * valgrind check that). */
START_TEST(test_free_with_streams_at_work)
{
  eddy_loop_t *loop = eddy_loop_new();
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int fds[2], ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  eddy_stream_t *s;

  ck_assert_int_ge(ls, 0);
  ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(ls, 4), 0);
  ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &len), 0);
  ck_assert_int_eq(pipe(fds), 0);
  failed_seen = 0;

  s = eddy_stream_new_pipe(loop, fds[0], NULL);
  eddy_future_unref(eddy_then(eddy_stream_read_bytes(s, 10, 0), see_closed_by_free, NULL));
  eddy_stream_unref(s);
  ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0); /* the read is watched */
  /* Never polled: it cannot complete before the free. */
  eddy_future_unref(eddy_then(eddy_tcp_connect(loop, "127.0.0.1", ntohs(a.sin_port), NULL),
                              see_failure, NULL));
  eddy_loop_free(loop);
  ck_assert_int_eq(failed_seen, 2);
  close(fds[1]);
  close(ls);
}
END_TEST

/* ---- walk and dump ---------------------------------------------------------- */

struct seen {
  int kinds[8];
  int stream_fd;
  void *stream;
  int future_line;
  const char *future_state;
};

static int count(const eddy_loop_object_t *o, void *arg)
{
  struct seen *s = arg;

  s->kinds[o->kind]++;
  if (o->kind == EDDY_OBJECT_STREAM) {
    s->stream_fd = o->fd;
    s->stream = o->object;
  }
  if (o->kind == EDDY_OBJECT_FUTURE && o->file != NULL &&
      strcmp(o->file, __FILE__) == 0 && strstr(o->func, "test_walk_dump") != NULL) {
    s->future_line = o->line;
    s->future_state = o->state;
  }
  return 0;
}

static int stop_at_first(const eddy_loop_object_t *o, void *arg)
{
  ++*(int *)arg;
  return 1;
}

START_TEST(test_walk_dump)
{
  eddy_loop_t *loop = debug_loop();
  struct seen seen;
  eddy_tcp_server_t *srv = eddy_tcp_server_new(loop, NULL);
  eddy_timer_t *t = eddy_timer_new(loop, noop, NULL);
  eddy_future_t *f, *rd;
  eddy_stream_t *s;
  int fds[2], hfds[2], line, calls = 0;
  char text[4096], want[512];
  FILE *out = tmpfile();
  size_t n;

  memset(&seen, 0, sizeof seen);
  ck_assert_ptr_nonnull(out);
  ck_assert_int_eq(eddy_loop_walk(NULL, count, NULL), -EINVAL);
  ck_assert_int_eq(eddy_loop_walk(loop, NULL, NULL), -EINVAL);
  ck_assert_int_eq(eddy_loop_dump(loop, NULL), -EINVAL);
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
  ck_assert_int_eq(pipe(fds), 0);
  ck_assert_int_eq(pipe(hfds), 0);
  s = eddy_stream_new_pipe(loop, fds[0], NULL);
  rd = eddy_stream_read_bytes(s, 10, 0); /* pending: the loop watches s */
  ck_assert_int_eq(eddy_loop_add_handler(loop, hfds[0], EDDY_READ, noop_io, NULL), 0);
  eddy_timer_start(t, 100, 0);
  line = __LINE__ + 1;
  f = eddy_future_new(loop);

  ck_assert_int_ge(eddy_loop_walk(loop, count, &seen), 6);
  ck_assert_int_eq(seen.kinds[EDDY_OBJECT_SERVER], 1);
  ck_assert_int_eq(seen.kinds[EDDY_OBJECT_STREAM], 1);
  ck_assert_ptr_eq(seen.stream, s);
  ck_assert_int_eq(seen.stream_fd, fds[0]);
  ck_assert_int_eq(seen.kinds[EDDY_OBJECT_HANDLER], 1); /* not the listening socket */
  ck_assert_int_eq(seen.kinds[EDDY_OBJECT_TIMER], 1);
  ck_assert_int_ge(seen.kinds[EDDY_OBJECT_FUTURE], 2); /* ours and the read's */
  ck_assert_int_eq(seen.future_line, line);
  ck_assert_str_eq(seen.future_state, "pending");
  ck_assert_int_eq(eddy_loop_walk(loop, stop_at_first, &calls), 1);
  ck_assert_int_eq(calls, 1);

  ck_assert_int_ge(eddy_loop_dump(loop, out), 6);
  rewind(out);
  n = fread(text, 1, sizeof text - 1, out);
  text[n] = '\0';
  fclose(out);
  snprintf(want, sizeof want, "pending refs 1 (%s)\n", site(line, __func__));
  ck_assert_msg(strstr(text, want) != NULL, "no '%s' in:\n%s", want, text);
  snprintf(want, sizeof want, "fd %d watched\n", fds[0]);
  ck_assert_msg(strstr(text, "\nstream ") != NULL && strstr(text, want) != NULL, "%s", text);
  ck_assert_msg(strstr(text, "server ") == text, "%s", text);
  ck_assert_msg(strstr(text, "eddy loop: ") != NULL &&
                strstr(text, " futures, 1 stream, 1 server alive\n") != NULL, "%s", text);

  eddy_future_unref(f);
  eddy_future_cancel(rd);
  eddy_future_unref(rd);
  eddy_stream_unref(s);
  eddy_loop_remove_handler(loop, hfds[0]);
  eddy_timer_free(t);
  eddy_tcp_server_free(srv);
  run_a_little(loop);
  ck_assert_int_eq(eddy_loop_close(loop), 0);
  ck_assert_str_eq(logtext, ""); /* nothing was lost on the way */
  close(fds[1]);
  close(hfds[0]);
  close(hfds[1]);
}
END_TEST

/* ---- debug mode ----------------------------------------------------------------- */

START_TEST(test_debug_switch)
{
  eddy_loop_t *loop = eddy_loop_new();

  ck_assert_int_eq(eddy_loop_debug(NULL), 0);
  ck_assert_int_eq(eddy_loop_set_debug(NULL, 1), -EINVAL);
  ck_assert_int_eq(eddy_loop_debug(loop), 0);
  ck_assert_int_eq(eddy_loop_set_debug(loop, 1), 0);
  ck_assert_int_eq(eddy_loop_debug(loop), 1);
  ck_assert_int_eq(eddy_loop_set_debug(loop, 0), 0);
  ck_assert_int_eq(eddy_loop_debug(loop), 0);
  ck_assert_int_eq(eddy_loop_set_slow_callback(NULL, 1), -EINVAL);
  ck_assert_int_eq(eddy_loop_set_slow_callback(loop, -1), -EINVAL);
  ck_assert_int_eq(eddy_loop_set_slow_callback(loop, 0.5), 0);
  eddy_loop_free(loop);

  setenv("EDDY_DEBUG", "1", 1);
  loop = eddy_loop_new();
  ck_assert_int_eq(eddy_loop_debug(loop), 1);
  eddy_loop_free(loop);
  setenv("EDDY_DEBUG", "0", 1);
  loop = eddy_loop_new();
  ck_assert_int_eq(eddy_loop_debug(loop), 0);
  eddy_loop_free(loop);
  unsetenv("EDDY_DEBUG");
}
END_TEST

static int count_futures(const eddy_loop_object_t *o, void *arg)
{
  if (o->kind == EDDY_OBJECT_FUTURE)
    ++*(int *)arg;
  return 0;
}

/* Enough futures for the side table to grow several times, each found,
 * then none. */
START_TEST(test_many_futures)
{
  enum { N = 5000 };
  eddy_loop_t *loop = debug_loop();
  static eddy_future_t *f[N];
  int i, n = 0;

  for (i = 0; i < N; i++)
    f[i] = eddy_future_new(loop);
  eddy_loop_walk(loop, count_futures, &n);
  ck_assert_int_eq(n, N);
  for (i = 0; i < N; i += 2)
    eddy_future_unref(f[i]);
  n = 0;
  eddy_loop_walk(loop, count_futures, &n);
  ck_assert_int_eq(n, N / 2);
  for (i = 1; i < N; i += 2)
    eddy_future_unref(f[i]);
  n = 0;
  eddy_loop_walk(loop, count_futures, &n);
  ck_assert_int_eq(n, 0);
  ck_assert_int_eq(eddy_loop_close(loop), 0);
}
END_TEST

static eddy_future_t *ignore(eddy_future_t *settled, void *arg)
{
  return EDDY_NO_VALUE;
}

static eddy_future_t *never_runs(eddy_future_t *settled, void *arg)
{
  ck_abort_msg("then_ok ran on a rejection");
  return NULL;
}

START_TEST(test_unobserved_rejection)
{
  eddy_loop_t *loop = debug_loop();
  eddy_future_t *f, *chain;
  char want[512];
  int line, line2;

  /* Dropped unread: warned, with where it was made. */
  line = __LINE__ + 1;
  f = eddy_future_rejected(loop, EDDY_ETIMEOUT, NULL);
  eddy_future_unref(f);
  snprintf(want, sizeof want, "rejection never observed: EDDY_ETIMEOUT timed out (%s)\n",
           site(line, __func__));
  ck_assert_str_eq(logtext, want);

  /* With a message and a cause. */
  logtext[0] = '\0';
  line = __LINE__ + 1;
  f = eddy_future_new(loop);
  eddy_future_reject_cause(f, EDDY_ECLOSED, -ECONNRESET, "peer left after %d bytes", 7);
  eddy_future_unref(f);
  ck_assert_msg(strstr(logtext, "rejection never observed: EDDY_ECLOSED peer left after "
                                "7 bytes (cause ") == logtext, "%s", logtext);
  ck_assert_msg(strstr(logtext, site(line, __func__)) != NULL, "%s", logtext);

  /* Read, caught, or cancelled: nothing to say. */
  logtext[0] = '\0';
  f = eddy_future_rejected(loop, EDDY_ETIMEOUT, "read");
  ck_assert_int_eq(eddy_future_error(f), EDDY_ETIMEOUT);
  eddy_future_unref(f);
  eddy_future_unref(eddy_catch(eddy_future_rejected(loop, -EIO, NULL), ignore, NULL));
  f = eddy_future_new(loop);
  eddy_future_cancel(f);
  eddy_future_unref(f);
  run_a_little(loop);
  ck_assert_str_eq(logtext, "");

  /* A chain that passes the error on and ends unobserved: the source was
   * seen by the chain, the end of the chain was not; the warning names
   * the eddy_then_ok() call. */
  line = __LINE__ + 1;
  f = eddy_future_rejected(loop, -EIO, NULL);
  line2 = __LINE__ + 1;
  chain = eddy_then_ok(f, never_runs, NULL);
  eddy_future_unref(chain); /* fire and forget: the chain still runs */
  run_a_little(loop);
  ck_assert_msg(strstr(logtext, site(line2, __func__)) != NULL, "%s",
                logtext);
  ck_assert_msg(strstr(logtext, site(line, __func__)) == NULL, "%s",
                logtext);
  ck_assert_msg(strstr(logtext, "rejection never observed: ") == logtext, "%s", logtext);
  eddy_loop_free(loop);

  /* Normal mode says nothing. */
  loop = eddy_loop_new();
  logtext[0] = '\0';
  eddy_loop_set_logger(loop, capture, NULL);
  eddy_future_unref(eddy_future_rejected(loop, EDDY_ETIMEOUT, NULL));
  eddy_loop_free(loop);
  ck_assert_str_eq(logtext, "");
}
END_TEST

static void busy_ms(int ms)
{
  struct timespec ts = { 0, ms * 1000000L };
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static eddy_future_t *slow_then(eddy_future_t *settled, void *arg)
{
  busy_ms(30);
  return EDDY_NO_VALUE;
}

static void slow_soon(void *arg)
{
  busy_ms(30);
}

START_TEST(test_slow_callback)
{
  eddy_loop_t *loop = debug_loop();
  eddy_future_t *f;
  char want[512];
  int line;

  ck_assert_int_eq(eddy_loop_set_slow_callback(loop, 0.01), 0);
  line = __LINE__ + 1;
  f = eddy_then(eddy_future_resolved(loop, NULL, NULL), slow_then, NULL);
  eddy_loop_call_soon(loop, slow_soon, NULL);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10), 0);
  run_a_little(loop);
  eddy_future_unref(f);
  snprintf(want, sizeof want, "(registered at %s:%d in %s)\n", __FILE__, line, __func__);
  ck_assert_msg(strstr(logtext, "slow callback: a deferred task (a future's callback) took ") ==
                    logtext, "%s", logtext);
  ck_assert_msg(strstr(logtext, want) != NULL, "%s", logtext);
  ck_assert_msg(strstr(logtext, "slow callback: a call_soon callback took ") != NULL, "%s",
                logtext);

  /* Under the threshold: quiet. */
  logtext[0] = '\0';
  ck_assert_int_eq(eddy_loop_set_slow_callback(loop, 5), 0);
  eddy_loop_call_soon(loop, slow_soon, NULL);
  run_a_little(loop);
  ck_assert_str_eq(logtext, "");
  eddy_loop_free(loop);
}
END_TEST

/* Kept reachable on purpose: they outlive the loop, which is the bug the
 * listing reports (a leak checker would otherwise report them too). */
static eddy_future_t *volatile kept_future;

START_TEST(test_free_lists_live)
{
  eddy_loop_t *loop = debug_loop();
  int line;

  line = __LINE__ + 1;
  kept_future = eddy_future_new(loop);
  eddy_loop_free(loop);
  ck_assert_msg(strstr(logtext, "loop freed with 1 future and 0 streams alive; a future or a "
                                "stream must not outlive its loop:\n  future ") == logtext,
                "%s", logtext);
  ck_assert_msg(strstr(logtext, " pending, 1 reference (") != NULL, "%s", logtext);
  ck_assert_msg(strstr(logtext, site(line, __func__)) != NULL, "%s", logtext);
}
END_TEST

static Suite *debug_suite(void)
{
  Suite *s = suite_create("debug");
  TCase *tc = tcase_create("introspection");

  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_close);
  tcase_add_test(tc, test_walk_dump);
  tcase_add_test(tc, test_free_with_streams_at_work);
  suite_add_tcase(s, tc);
  tc = tcase_create("debug mode");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_debug_switch);
  tcase_add_test(tc, test_many_futures);
  tcase_add_test(tc, test_unobserved_rejection);
  tcase_add_test(tc, test_slow_callback);
  tcase_add_test(tc, test_free_lists_live);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return test_run_suite(debug_suite());
}
