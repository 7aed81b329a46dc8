/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/coro (eddy/coro.h), through the public API only.
 *
 * Check forks each test and every test frees its loop, so under ASan or
 * valgrind a leaked future, stream or record fails the test. Values carry
 * counting destructors, so "consumed", "returned to the caller" and
 * "freed exactly once" are checked, not assumed.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <eddy.h>
#include "test_backend.h"
#include "future_fixtures.h"

static int freed;

static void count_free(void *p)
{
  (void)p;
  freed++;
}

static int marker;

/* ------------------------------------------------------------------------ */
/* Awaiting futures in every state                                           */
/* ------------------------------------------------------------------------ */

static int in_coro_seen = -1;

/* Awaits an already resolved future: no switch, the same reference back,
 * which the body hands on as its result (rule 4: a new reference). */
static eddy_future_t *await_resolved(void *arg)
{
  eddy_future_t *f = eddy_future_resolved(L, &marker, count_free);
  eddy_future_t *r = eddy_await(f);

  (void)arg;
  in_coro_seen = eddy_in_coro();
  ck_assert_ptr_eq(r, f);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_eq(eddy_future_value(r), &marker);
  return r;
}

START_TEST(test_await_resolved)
{
  eddy_future_t *f = eddy_coro_spawn(L, await_resolved, NULL, NULL);

  ck_assert_ptr_nonnull(f);
  ck_assert(!eddy_future_done(f)); /* it starts from the loop, not inline */
  ck_assert_int_eq(eddy_in_coro(), 0);
  run(f);
  ck_assert_int_eq(in_coro_seen, 1);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_eq(eddy_future_value(f), &marker); /* shared, not copied */
  ck_assert_int_eq(freed, 0);
  eddy_future_unref(f);
  ck_assert_int_eq(freed, 1);
}
END_TEST

static eddy_future_t *await_rejected(void *arg)
{
  eddy_future_t *r;

  (void)arg;
  r = eddy_await(eddy_future_rejected(L, EDDY_ETIMEOUT, "late: %d", 7));
  ck_assert_int_eq(eddy_future_error(r), EDDY_ETIMEOUT);
  ck_assert_str_eq(eddy_future_message(r), "late: 7");
  return r;
}

START_TEST(test_await_rejected)
{
  eddy_future_t *f = eddy_coro_spawn(L, await_rejected, NULL, NULL);

  run(f);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ETIMEOUT);
  ck_assert_str_eq(eddy_future_message(f), "late: 7");
  eddy_future_unref(f);
}
END_TEST

static eddy_future_t *await_cancelled(void *arg)
{
  eddy_future_t *p = eddy_future_new(L), *r;

  (void)arg;
  eddy_future_cancel(p);
  r = eddy_await(p);
  ck_assert_int_eq(eddy_future_error(r), EDDY_ECANCELLED);
  eddy_future_unref(r);
  return EDDY_NO_VALUE;
}

START_TEST(test_await_cancelled)
{
  eddy_future_t *f = eddy_coro_spawn(L, await_cancelled, NULL, NULL);

  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_null(eddy_future_value(f));
  eddy_future_unref(f);
}
END_TEST

static int ticks;

static void tick(void *arg)
{
  (void)arg;
  ticks++;
}

/* Awaits pending futures: a sleep, then a promise another callback
 * resolves. The loop runs other work meanwhile. */
static eddy_future_t *promise;

static void resolve_promise(void *arg)
{
  (void)arg;
  eddy_future_resolve(promise, &marker, count_free);
  eddy_future_unref(promise); /* the producer's reference */
}

static eddy_future_t *await_pending(void *arg)
{
  eddy_future_t *r, *p;

  (void)arg;
  ck_assert_int_eq(eddy_loop_call_soon(L, tick, NULL), 0);
  r = eddy_await(eddy_sleep(L, 0.01));
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(r);
  ck_assert_int_eq(ticks, 1); /* the loop ran while we slept */

  p = eddy_future_new(L);
  promise = eddy_future_ref(p);
  ck_assert_int_eq(eddy_loop_call_soon(L, resolve_promise, NULL), 0);
  r = eddy_await(p);
  ck_assert_ptr_eq(r, p);
  ck_assert_ptr_eq(eddy_future_value(r), &marker);
  ck_assert_int_eq(freed, 0);
  eddy_future_unref(r); /* the last reference */
  ck_assert_int_eq(freed, 1);
  return EDDY_NO_VALUE;
}

START_TEST(test_await_pending)
{
  eddy_future_t *f = eddy_coro_spawn(L, await_pending, NULL, NULL);

  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(freed, 1);
  eddy_future_unref(f);
}
END_TEST

/* Values kept across later awaits stay valid: await returns an owned
 * reference, not one borrowed until the next await. */
static eddy_future_t *keep_across(void *arg)
{
  eddy_future_t *a = eddy_await(eddy_future_resolved(L, &marker, count_free));
  eddy_future_t *b = eddy_await(eddy_sleep(L, 0.001));
  eddy_future_t *c = eddy_await(eddy_sleep(L, 0.001));

  (void)arg;
  ck_assert_ptr_eq(eddy_future_value(a), &marker);
  ck_assert_int_eq(freed, 0);
  eddy_future_unref(b);
  eddy_future_unref(c);
  eddy_future_unref(a);
  ck_assert_int_eq(freed, 1);
  return EDDY_NO_VALUE;
}

START_TEST(test_await_keeps_reference)
{
  eddy_future_t *f = eddy_coro_spawn(L, keep_across, NULL, NULL);

  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(f);
}
END_TEST

/* NULL (out of memory) passes through await and becomes -ENOMEM. */
static eddy_future_t *returns_null(void *arg)
{
  (void)arg;
  return eddy_await(NULL);
}

/* A pending future returned is adopted. */
static eddy_future_t *returns_pending(void *arg)
{
  (void)arg;
  promise = eddy_future_new(L);
  ck_assert_int_eq(eddy_loop_call_later(L, 0.01, resolve_promise, NULL), 0);
  return eddy_future_ref(promise);
}

START_TEST(test_results)
{
  eddy_future_t *f = eddy_coro_spawn(L, returns_null, NULL, NULL);

  run(f);
  ck_assert_int_eq(eddy_future_error(f), -ENOMEM);
  eddy_future_unref(f);

  f = eddy_coro_spawn(L, returns_pending, NULL, NULL);
  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_eq(eddy_future_value(f), &marker);
  eddy_future_unref(f);
  ck_assert_int_eq(freed, 1);
}
END_TEST

/* Many coroutines interleave, each resumed in the order its future
 * settled. */
static int order[3], norder;

static eddy_future_t *sleeper(void *arg)
{
  int id = (int)(intptr_t)arg;

  eddy_future_unref(eddy_await(eddy_sleep(L, 0.01 * (3 - id))));
  order[norder++] = id;
  return EDDY_NO_VALUE;
}

START_TEST(test_interleaving)
{
  eddy_future_t *f[3];

  for (int i = 0; i < 3; i++)
    f[i] = eddy_coro_spawn(L, sleeper, (void *)(intptr_t)i, NULL);
  run(f[0]);
  ck_assert_int_eq(norder, 3);
  ck_assert_int_eq(order[0], 2);
  ck_assert_int_eq(order[1], 1);
  ck_assert_int_eq(order[2], 0);
  for (int i = 0; i < 3; i++)
    eddy_future_unref(f[i]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Misuse fails cleanly                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(test_await_outside)
{
  eddy_future_t *f = eddy_future_resolved(L, &marker, count_free);
  eddy_future_t *r = eddy_await(f); /* consumes f */

  ck_assert_int_eq(freed, 1);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(eddy_future_error(r), EDDY_EUSAGE);
  eddy_future_unref(r);

  /* A pending one is not waited for either (that would block forever). */
  promise = eddy_future_new(L);
  r = eddy_await(eddy_future_ref(promise));
  ck_assert_int_eq(eddy_future_error(r), EDDY_EUSAGE);
  eddy_future_unref(r);
  ck_assert(!eddy_future_done(promise));
  eddy_future_cancel(promise);
  eddy_future_unref(promise);

  ck_assert_ptr_null(eddy_await(NULL));
  ck_assert_ptr_eq(eddy_await(EDDY_NO_VALUE), EDDY_NO_VALUE);
}
END_TEST

static eddy_loop_t *other;
static eddy_future_t *echo(eddy_stream_t *s, void *arg);

static eddy_future_t *await_other_loop(void *arg)
{
  (void)arg;
  return eddy_await(eddy_future_resolved(other, NULL, NULL));
}

START_TEST(test_await_other_loop)
{
  eddy_future_t *f;

  other = eddy_loop_new();
  ck_assert_ptr_nonnull(other);
  f = eddy_coro_spawn(L, await_other_loop, NULL, NULL);
  run(f);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  eddy_loop_free(other);
}
END_TEST

START_TEST(test_spawn_arguments)
{
  eddy_coro_options_t o;
  eddy_future_t *f;

  errno = 0;
  ck_assert_ptr_null(eddy_coro_spawn(NULL, await_cancelled, NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(eddy_coro_spawn(L, NULL, NULL, NULL));

  eddy_coro_options_init(&o);
  o.reserved_[3] = 1;
  f = eddy_coro_spawn(L, await_cancelled, NULL, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  ck_assert_ptr_null(eddy_coro_handler_new(NULL, NULL, NULL));
  ck_assert_ptr_null(eddy_coro_handler_new(echo, NULL, &o));

  eddy_coro_options_init(&o);
  o.stack_size = (size_t)EDDY_CORO_MAX_STACK_SIZE + 1;
  f = eddy_coro_spawn(L, await_cancelled, NULL, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);

  o.stack_size = 1; /* raised to the minimum */
  f = eddy_coro_spawn(L, await_cancelled, NULL, &o);
  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Cancellation                                                              */
/* ------------------------------------------------------------------------ */

static int seen_error, cleaned_up, body_ran;

/* Waits long; when cancelled, sees EDDY_ECANCELLED and can still await
 * (clean-up), and what it returns then is released. */
static eddy_future_t *long_sleep(void *arg)
{
  eddy_future_t *r;

  (void)arg;
  body_ran = 1;
  r = eddy_await(eddy_sleep(L, 60));
  seen_error = eddy_future_error(r);
  eddy_future_unref(r);
  r = eddy_await(eddy_sleep(L, 0.001));
  cleaned_up = eddy_future_state(r) == EDDY_FUTURE_RESOLVED;
  eddy_future_unref(r);
  return eddy_future_resolved(L, &marker, count_free);
}

static void cancel_it(void *f)
{
  eddy_future_cancel(f);
}

START_TEST(test_cancel_while_awaiting)
{
  eddy_future_t *f = eddy_coro_spawn(L, long_sleep, NULL, NULL);

  /* Once it awaits: a timer set now could fire before it starts on a slow
   * machine (valgrind), which would test cancel_before_start instead. */
  while (!body_ran)
    run_for(0.001);
  ck_assert_int_eq(eddy_loop_call_soon(L, cancel_it, f), 0);
  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  /* The coroutine goes on: let it finish its clean-up. */
  while (!cleaned_up)
    run_for(0.001);
  ck_assert_int_eq(seen_error, EDDY_ECANCELLED);
  run_for(0.01);
  ck_assert_int_eq(freed, 1); /* its late result was released */
  eddy_future_unref(f);
}
END_TEST

START_TEST(test_cancel_before_start)
{
  eddy_future_t *f = eddy_coro_spawn(L, long_sleep, NULL, NULL);

  ck_assert_int_eq(eddy_future_cancel(f), 0);
  run_for(0.01);
  ck_assert_int_eq(body_ran, 0);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECANCELLED);
  eddy_future_unref(f);
}
END_TEST

/* Cancelling the coroutine cancels a pending future it returned. */
static eddy_future_t *returns_long_sleep(void *arg)
{
  (void)arg;
  return eddy_sleep(L, 60);
}

START_TEST(test_cancel_adopted_result)
{
  eddy_future_t *f = eddy_coro_spawn(L, returns_long_sleep, NULL, NULL);

  run_for(0.01);
  ck_assert(!eddy_future_done(f));
  eddy_future_cancel(f);
  run_for(0.01); /* the sleep's timer must be gone */
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECANCELLED);
  eddy_future_unref(f);
}
END_TEST

/* Cancelling while awaiting a read stops the read and leaves the stream
 * usable: the next read gets the bytes. */
static eddy_stream_t *rs;

static eddy_future_t *read_line(void *arg)
{
  eddy_future_t *line = eddy_await(eddy_stream_read_until(rs, "\n", 1, 0));

  (void)arg;
  seen_error = eddy_future_error(line);
  return line;
}

START_TEST(test_cancel_while_reading)
{
  int sv[2];
  eddy_future_t *f;

  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  rs = eddy_stream_new_socket(L, sv[0], NULL);
  ck_assert_ptr_nonnull(rs);
  f = eddy_coro_spawn(L, read_line, NULL, NULL);
  run_for(0.01);
  ck_assert(eddy_stream_reading(rs));
  eddy_future_cancel(f);
  run(f);
  run_for(0.01);
  ck_assert_int_eq(seen_error, EDDY_ECANCELLED);
  ck_assert(!eddy_stream_reading(rs));
  eddy_future_unref(f);

  ck_assert_int_eq(write(sv[1], "hello\n", 6), 6);
  f = eddy_coro_spawn(L, read_line, NULL, NULL);
  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), 6);
  ck_assert_mem_eq(eddy_future_value(f), "hello\n", 6);
  eddy_future_unref(f);
  eddy_stream_close(rs, 0);
  eddy_stream_unref(rs);
  close(sv[1]);
}
END_TEST

/* A coroutine suspended when the process forks resumes in both: the child
 * has a copy of its stack, and the loop rebuilds its kernel state there
 * by itself (as a pre-forked server's workers do). */
static eddy_future_t *short_sleep(void *arg)
{
  eddy_future_t *r;

  (void)arg;
  body_ran = 1;
  r = eddy_await(eddy_sleep(L, 0.05));
  seen_error = eddy_future_error(r);
  eddy_future_unref(r);
  return eddy_future_resolved(L, (void *)(intptr_t)getpid(), NULL);
}

START_TEST(test_await_across_fork)
{
  eddy_future_t *f = eddy_coro_spawn(L, short_sleep, NULL, NULL);
  int status;
  pid_t pid;

  while (!body_ran)
    run_for(0.001);
  ck_assert(!eddy_future_done(f));
  pid = fork();
  ck_assert_int_ne(pid, -1);
  if (pid == 0) {
    int ok = eddy_loop_run_until(L, f, run_bound()) == 0 && seen_error == 0 &&
             eddy_future_value(f) == (void *)(intptr_t)getpid();
    _exit(ok ? 0 : 1);
  }
  run(f);
  ck_assert_int_eq(seen_error, 0);
  ck_assert_ptr_eq(eddy_future_value(f), (void *)(intptr_t)getpid());
  eddy_future_unref(f);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Stacks                                                                    */
/* ------------------------------------------------------------------------ */

static uintptr_t where;

static eddy_future_t *note_stack(void *arg)
{
  volatile char here = 0;

  (void)arg;
  where = (uintptr_t)&here;
  return EDDY_NO_VALUE;
}

/* A finished coroutine's stack serves the next one of the same size. */
START_TEST(test_stack_reuse)
{
  eddy_future_t *f = eddy_coro_spawn(L, note_stack, NULL, NULL);
  uintptr_t first;

  run(f);
  eddy_future_unref(f);
  first = where;
  ck_assert(first != 0);
  for (int i = 0; i < 100; i++) {
    f = eddy_coro_spawn(L, note_stack, NULL, NULL);
    run(f);
    eddy_future_unref(f);
    ck_assert(where == first);
  }
}
END_TEST

/* The stack size option is honoured: a coroutine can use most of a large
 * stack. */
static eddy_future_t *use_stack(void *arg)
{
  size_t n = (size_t)(uintptr_t)arg;
  volatile char *big = __builtin_alloca(n);

  big[0] = 1;
  big[n - 1] = 1;
  return EDDY_NO_VALUE;
}

START_TEST(test_stack_size)
{
  eddy_coro_options_t o;
  eddy_future_t *f;

  eddy_coro_options_init(&o);
  o.stack_size = 4 << 20;
  f = eddy_coro_spawn(L, use_stack, (void *)(uintptr_t)(3 << 20), &o);
  run(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(f);
}
END_TEST

/* Overflow: the guard page faults. The child's handler runs on an
 * alternate stack, checks that the fault is just below the coroutine's
 * stack, and exits 42; anything else (no fault, a fault elsewhere) fails. */
#define SMALL_STACK (64 * 1024)
static uintptr_t stack_top;
static char altstack[64 * 1024];

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
  uintptr_t a = (uintptr_t)si->si_addr;

  (void)sig, (void)ctx;
  if (a < stack_top - SMALL_STACK - 8192 || a > stack_top - SMALL_STACK + 16384)
    _exit(3);
  _exit(42);
}

static unsigned recurse(unsigned depth)
{
  volatile char frame[512];

  frame[0] = (char)depth;
  return depth == 0 ? 0 : recurse(depth - 1) + (unsigned)frame[0];
}

static eddy_future_t *overflow(void *arg)
{
  volatile char here = 0;

  (void)arg;
  stack_top = (uintptr_t)&here;
  recurse(1u << 20); /* 512 MiB of frames */
  return EDDY_NO_VALUE;
}

START_TEST(test_stack_overflow)
{
  eddy_coro_options_t o;
  struct sigaction sa;
  stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };

  ck_assert_int_eq(sigaltstack(&ss, NULL), 0);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
  eddy_coro_options_init(&o);
  o.stack_size = SMALL_STACK;
  eddy_future_unref(eddy_coro_spawn(L, overflow, NULL, &o));
  run_for(1);
  _exit(1); /* no fault: the test fails */
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A coroutine per connection                                                */
/* ------------------------------------------------------------------------ */

/* The echo handler of the README. */
static eddy_future_t *echo(eddy_stream_t *s, void *arg)
{
  (void)arg;
  for (;;) {
    eddy_future_t *line = eddy_await(eddy_stream_read_until(s, "\n", 1, 0));
    if (line == NULL || eddy_future_error(line) != 0)
      return line;
    eddy_future_unref(eddy_await(eddy_stream_write_bytes_of(s, line)));
    eddy_future_unref(line);
  }
}

static int port, answered;

/* A client coroutine: connect, send a line, await its echo, close. */
static eddy_future_t *client(void *arg)
{
  char text[32];
  int n = snprintf(text, sizeof text, "client %d\n", (int)(intptr_t)arg);
  eddy_future_t *c = eddy_await(eddy_tcp_connect(L, "127.0.0.1", port, NULL));
  eddy_stream_t *s;
  eddy_future_t *line;

  if (c == NULL || eddy_future_error(c) != 0)
    return c;
  s = eddy_future_value(c); /* c's reference keeps it */
  eddy_future_unref(eddy_await(eddy_stream_write(s, text, (size_t)n)));
  line = eddy_await(eddy_stream_read_until(s, "\n", 1, 0));
  if (line != NULL && eddy_future_size(line) == (size_t)n &&
      memcmp(eddy_future_value(line), text, (size_t)n) == 0)
    answered++;
  eddy_stream_close(s, 0);
  eddy_future_unref(c);
  return line;
}

static void connections(int n)
{
  eddy_tcp_server_t *srv = eddy_tcp_server_new(L, NULL);
  eddy_coro_handler_t *h = eddy_coro_handler_new(echo, NULL, NULL);
  eddy_future_t **f = calloc((size_t)n, sizeof *f), *all, *done;
  struct rlimit rl;
  int fd;

  ck_assert_ptr_nonnull(srv);
  ck_assert_ptr_nonnull(h);
  ck_assert_ptr_nonnull(f);
  /* Two fds per connection in this one process. */
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < (rlim_t)(2 * n + 64)) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(2 * n + 64))
      n = (int)(rl.rlim_cur - 64) / 2;
  }
  eddy_tcp_server_set_handler(srv, eddy_coro_stream_handler, h);
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
  ck_assert_uint_eq(eddy_tcp_server_sockets(srv, &fd, 1), 1);
  {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  for (int i = 0; i < n; i++) {
    f[i] = eddy_coro_spawn(L, client, (void *)(intptr_t)i, NULL);
    ck_assert_ptr_nonnull(f[i]);
  }
  all = eddy_all_settled(L, f, (size_t)n);
  run(all);
  ck_assert_int_eq(answered, n);
  eddy_future_unref(all);
  done = eddy_tcp_server_shutdown(srv, 5);
  run(done);
  eddy_future_unref(done);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 0);
  eddy_tcp_server_free(srv);
  eddy_coro_handler_free(h);
  free(f);
}

START_TEST(test_connection_per_coroutine)
{
  connections(1000);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *coro_suite(void)
{
  Suite *s = suite_create("coro");
  TCase *tc;

  tc = new_case(s, "await", 10);
  tcase_add_test(tc, test_await_resolved);
  tcase_add_test(tc, test_await_rejected);
  tcase_add_test(tc, test_await_cancelled);
  tcase_add_test(tc, test_await_pending);
  tcase_add_test(tc, test_await_keeps_reference);
  tcase_add_test(tc, test_results);
  tcase_add_test(tc, test_interleaving);

  tc = new_case(s, "misuse", 10);
  tcase_add_test(tc, test_await_outside);
  tcase_add_test(tc, test_await_other_loop);
  tcase_add_test(tc, test_spawn_arguments);

  tc = new_case(s, "cancel", 10);
  tcase_add_test(tc, test_cancel_while_awaiting);
  tcase_add_test(tc, test_cancel_before_start);
  tcase_add_test(tc, test_cancel_adopted_result);
  tcase_add_test(tc, test_cancel_while_reading);

  tc = new_case(s, "fork", 10);
  tcase_add_test(tc, test_await_across_fork);

  tc = new_case(s, "stacks", 10);
  tcase_add_test(tc, test_stack_reuse);
  tcase_add_test(tc, test_stack_size);
  tcase_add_exit_test(tc, test_stack_overflow, 42);

  tc = new_case(s, "server", 120);
  tcase_add_test(tc, test_connection_per_coroutine);
  return s;
}

int main(void)
{
  return test_run_suite(coro_suite());
}
