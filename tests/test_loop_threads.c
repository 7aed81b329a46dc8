/* SPDX-License-Identifier: MIT */
/*
 * The loop suite: threads, signals, the pool and fork (see test_loop.c).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_loop.h"

/* ---- call_soon_threadsafe ----------------------------------------------- */

#define TS_THREADS 4
#define TS_CALLS 10000

struct ts {
  eddy_loop_t *loop;
  pthread_t loop_thread;
  long count;
  int wrong_thread;
};

static void ts_cb(void *arg)
{
  struct ts *ts = arg;
  if (!pthread_equal(pthread_self(), ts->loop_thread))
    ts->wrong_thread++;
  if (++ts->count == TS_THREADS * TS_CALLS)
    eddy_loop_stop(ts->loop);
}

static void *ts_thread(void *arg)
{
  struct ts *ts = arg;
  int i;
  for (i = 0; i < TS_CALLS; i++)
    ck_assert_int_eq(eddy_loop_call_soon_threadsafe(ts->loop, ts_cb, ts), 0);
  return NULL;
}

START_TEST(test_threadsafe_threads)
{
  eddy_loop_t *loop = new_loop();
  struct ts ts = { .loop = loop, .loop_thread = pthread_self() };
  pthread_t th[TS_THREADS];
  int i;

  for (i = 0; i < TS_THREADS; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, ts_thread, &ts), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  for (i = 0; i < TS_THREADS; i++)
    pthread_join(th[i], NULL);
  ck_assert_int_eq(ts.count, TS_THREADS * TS_CALLS);
  ck_assert_int_eq(ts.wrong_thread, 0);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_threadsafe_before_run)
{
  eddy_loop_t *loop = new_loop();

  memset(&g_order, 0, sizeof g_order);
  ck_assert_int_eq(eddy_loop_call_soon_threadsafe(loop, record_cb, (void *)7), 0);
  ck_assert_int_eq(eddy_loop_call_soon_threadsafe(loop, stop_cb, loop), 0);
  ck_assert_int_eq(g_order.n, 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_order.n, 1);
  ck_assert_int_eq(g_order.seen[0], 7);
  eddy_loop_free(loop);
}
END_TEST

/* ---- signals ------------------------------------------------------------ */

struct sig {
  eddy_loop_t *loop;
  int got[4];
  int n;
};

static void sig_cb(eddy_loop_t *loop, int signo, void *arg)
{
  struct sig *s = arg;
  s->got[s->n++ & 3] = signo;
  eddy_loop_stop(loop);
}

static void sig_cb2(eddy_loop_t *loop, int signo, void *arg)
{
  struct sig *s = arg;
  s->got[s->n++ & 3] = -signo;
  eddy_loop_stop(loop);
}

static void raise_cb(void *arg)
{
  raise((int)(intptr_t)arg);
}

static void kill_cb(void *arg)
{
  kill(getpid(), (int)(intptr_t)arg);
}

static int sig_blocked(int signo)
{
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  return sigismember(&cur, signo);
}

/* Whether the loop has taken @signo: blocked for its signalfd, or given
 * the self-pipe's handler (tests/test_loop_portable, EDDY_NO_SIGNALFD),
 * told by comparing with the disposition sig_baseline() saw (Check's
 * runner has handlers of its own on some signals). */
#ifdef EDDY_NO_SIGNALFD
static struct sigaction g_baseline[NSIG];
#endif

static void sig_baseline(void)
{
#ifdef EDDY_NO_SIGNALFD
  for (int i = 1; i < NSIG; i++)
    sigaction(i, NULL, &g_baseline[i]);
#endif
}

static int sig_claimed(int signo)
{
#ifdef EDDY_NO_SIGNALFD
  struct sigaction sa;
  sigaction(signo, NULL, &sa);
  return sa.sa_handler != g_baseline[signo].sa_handler;
#else
  return sig_blocked(signo);
#endif
}

START_TEST(test_signal_callback)
{
  eddy_loop_t *loop = new_loop();
  struct sig s = { .loop = loop };
  sigset_t hup;

  sig_baseline();
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGKILL, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGSTOP, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, 0, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, 100000, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(NULL, SIGUSR1, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGUSR1), -ENOENT);

  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGUSR1, sig_cb, &s), 0);
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGUSR2, sig_cb, &s), 0);
  eddy_loop_call_soon(loop, raise_cb, (void *)(intptr_t)SIGUSR1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.got[0], SIGUSR1);

  eddy_loop_call_soon(loop, kill_cb, (void *)(intptr_t)SIGUSR2);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.n, 2);
  ck_assert_int_eq(s.got[1], SIGUSR2);

  /* A second add replaces the handler. */
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGUSR1, sig_cb2, &s), 0);
  eddy_loop_call_soon(loop, raise_cb, (void *)(intptr_t)SIGUSR1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.got[2], -SIGUSR1);

  /* Removing restores the mask (or the disposition): unclaimed before,
   * unclaimed after; a signal the caller had blocked stays blocked. */
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGUSR1), 0);
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGUSR1), -ENOENT);
  ck_assert_int_eq(sig_claimed(SIGUSR1), 0);
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, NULL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGHUP, sig_cb, &s), 0);
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGHUP), 0);
  ck_assert_int_eq(sig_blocked(SIGHUP), 1);
  pthread_sigmask(SIG_UNBLOCK, &hup, NULL);
  /* SIGUSR2 is still watched when the loop goes: free restores it too. */
  eddy_loop_free(loop);
  ck_assert_int_eq(sig_claimed(SIGUSR2), 0);
}
END_TEST

START_TEST(test_wait_signal)
{
  eddy_loop_t *loop = new_loop();
  eddy_future_t *f, *g, *bad;

  sig_baseline();
  ck_assert_ptr_null(eddy_loop_wait_signal(NULL, SIGUSR1));
  bad = eddy_loop_wait_signal(loop, SIGKILL);
  ck_assert_ptr_nonnull(bad);
  ck_assert_int_eq(eddy_future_error(bad), -EINVAL);
  eddy_future_unref(bad);

  f = eddy_loop_wait_signal(loop, SIGUSR1);
  g = eddy_loop_wait_signal(loop, SIGTERM);
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_nonnull(g);
  ck_assert_int_eq(sig_claimed(SIGUSR1), 1);
  eddy_loop_call_soon(loop, kill_cb, (void *)(intptr_t)SIGUSR1);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), SIGUSR1);
  ck_assert_int_eq(sig_claimed(SIGUSR1), 0); /* nobody waits: restored */
  eddy_future_unref(f);

  /* Cancelling stops waiting and restores the mask. */
  ck_assert_int_eq(eddy_future_cancel(g), 0);
  ck_assert_int_eq(sig_claimed(SIGTERM), 0);
  eddy_future_unref(g);

  /* A waiter left pending when the loop goes is released by the free,
   * chain included. */
  f = eddy_then(eddy_loop_wait_signal(loop, SIGUSR2), never_then, NULL);
  eddy_future_unref(f);
  eddy_loop_free(loop);
  ck_assert_int_eq(sig_claimed(SIGUSR2), 0);
}
END_TEST

/* ---- run_in_thread ------------------------------------------------------ */

static pthread_t g_main_thread;

static int work_square(void *arg, void **value, size_t *size)
{
  long *v;
  if (pthread_equal(pthread_self(), g_main_thread))
    return -EDEADLK; /* ran on the loop thread: the test fails below */
  if ((intptr_t)arg < 0)
    return (int)(intptr_t)arg;
  v = malloc(sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  *v = (long)(intptr_t)arg * (long)(intptr_t)arg;
  *value = v;
  *size = sizeof *v;
  return 0;
}

START_TEST(test_run_in_thread)
{
  eddy_loop_t *loop = new_loop();
  enum { JOBS = 200 };
  eddy_future_t *f[JOBS];
  int i;

  g_main_thread = pthread_self();
  for (i = 0; i < JOBS; i++) {
    intptr_t arg = i % 10 == 9 ? -EIO : i;
    f[i] = eddy_loop_run_in_thread(loop, work_square, (void *)arg, free);
    ck_assert_ptr_nonnull(f[i]);
  }
  for (i = 0; i < JOBS; i++) {
    ck_assert_int_eq(eddy_loop_run_until(loop, f[i], 30), 0);
    if (i % 10 == 9) {
      ck_assert_int_eq(eddy_future_state(f[i]), EDDY_FUTURE_REJECTED);
      ck_assert_int_eq(eddy_future_error(f[i]), -EIO);
    } else {
      ck_assert_int_eq(eddy_future_state(f[i]), EDDY_FUTURE_RESOLVED);
      ck_assert_uint_eq(eddy_future_size(f[i]), sizeof(long));
      ck_assert_int_eq(*(long *)eddy_future_value(f[i]), (long)i * i);
    }
    eddy_future_unref(f[i]);
  }
  f[0] = eddy_loop_run_in_thread(loop, NULL, NULL, NULL);
  ck_assert_int_eq(eddy_future_error(f[0]), EDDY_EUSAGE);
  eddy_future_unref(f[0]);
  ck_assert_ptr_null(eddy_loop_run_in_thread(NULL, work_square, NULL, NULL));
  eddy_loop_free(loop);
}
END_TEST

struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started, open, skipped_ran;
};

static struct gate g_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
static int g_freed;

static void count_free(void *p)
{
  g_freed++;
  free(p);
}

static int work_gated(void *arg, void **value, size_t *size)
{
  (void)arg;
  pthread_mutex_lock(&g_gate.mu);
  g_gate.started = 1;
  pthread_cond_broadcast(&g_gate.cv);
  while (!g_gate.open)
    pthread_cond_wait(&g_gate.cv, &g_gate.mu);
  pthread_mutex_unlock(&g_gate.mu);
  *value = malloc(8);
  *size = 8;
  return 0;
}

static int work_skipped(void *arg, void **value, size_t *size)
{
  (void)arg;
  (void)value;
  (void)size;
  g_gate.skipped_ran = 1;
  return 0;
}

START_TEST(test_run_in_thread_cancel)
{
  eddy_loop_t *loop;
  eddy_future_t *running, *queued, *last;

  setenv("EDDY_THREADS", "1", 1); /* this test runs in its own process */
  loop = new_loop();
  running = eddy_loop_run_in_thread(loop, work_gated, NULL, count_free);
  queued = eddy_loop_run_in_thread(loop, work_skipped, NULL, count_free);
  pthread_mutex_lock(&g_gate.mu);
  while (!g_gate.started)
    pthread_cond_wait(&g_gate.cv, &g_gate.mu);
  pthread_mutex_unlock(&g_gate.mu);
  /* One thread, busy: the second job is still queued and is skipped. */
  ck_assert_int_eq(eddy_future_cancel(queued), 0);
  ck_assert_int_eq(eddy_future_cancel(running), 0);
  pthread_mutex_lock(&g_gate.mu);
  g_gate.open = 1;
  pthread_cond_broadcast(&g_gate.cv);
  pthread_mutex_unlock(&g_gate.mu);
  /* A job queued after them runs once the first is done. */
  last = eddy_loop_run_in_thread(loop, work_square, (void *)(intptr_t)3, free);
  g_main_thread = pthread_self();
  ck_assert_int_eq(eddy_loop_run_until(loop, last, 30), 0);
  ck_assert_int_eq(*(long *)eddy_future_value(last), 9);
  ck_assert_int_eq(g_gate.skipped_ran, 0);
  ck_assert_int_eq(g_freed, 1); /* the cancelled job's value was freed */
  ck_assert_int_eq(eddy_future_state(running), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(running);
  eddy_future_unref(queued);
  eddy_future_unref(last);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_free_with_jobs_in_flight)
{
  eddy_loop_t *loop = new_loop();
  int i;

  g_main_thread = pthread_self();
  /* Chained and released: only the loop's queues still reference them. */
  for (i = 0; i < 50; i++)
    eddy_future_unref(eddy_then(eddy_loop_run_in_thread(loop, work_square,
                                                        (void *)(intptr_t)i, free),
                                never_then, NULL));
  eddy_loop_free(loop); /* joins; results and queued jobs are dropped */
}
END_TEST

/* ---- fork --------------------------------------------------------------- */

/* Pool threads alive in the parent when it forks are part of what the test
 * covers, except under AddressSanitizer: GCC 12's ASan allocator takes no
 * locks around fork(), so a pool thread still starting up (ASan allocates
 * in its thread set-up) can leave the child's allocator locked forever.
 * glibc's malloc is fork-safe, so plain and valgrind builds keep it. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_BEFORE_FORK 0
#else
#define POOL_BEFORE_FORK 1
#endif

struct forky {
  eddy_loop_t *loop;
  int fds[2];
  int io, timer;
};

static void fork_io(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct forky *f = arg;
  char c;
  (void)ev;
  if (read(fd, &c, 1) == 1)
    f->io++;
  if (f->io && f->timer)
    eddy_loop_stop(loop);
}

static void fork_timer(void *arg)
{
  struct forky *f = arg;
  f->timer++;
  if (f->io && f->timer)
    eddy_loop_stop(f->loop);
}

static int fork_round(struct forky *f, char c)
{
  eddy_timer_t *watchdog = eddy_timer_new(f->loop, stop_cb, f->loop);
  int ok;

  f->io = f->timer = 0;
  eddy_timer_start(watchdog, 10, 0);
  if (write(f->fds[1], &c, 1) != 1)
    return 0;
  eddy_loop_call_soon_threadsafe(f->loop, later_cb, NULL);
  if (eddy_loop_run(f->loop) != 0)
    return 0;
  ok = f->io == 1 && f->timer == 1 && eddy_timer_active(watchdog);
  eddy_timer_free(watchdog);
  return ok;
}

/* The pool and signals survive fork: a job runs (the child's pool restarts)
 * and a signal is delivered (the child's own signalfd). */
static int fork_extras(eddy_loop_t *loop, int use_pool)
{
  struct sig s = { .loop = loop };
  eddy_future_t *job;
  int ok = 1;

  g_main_thread = pthread_self();
  if (use_pool) {
    job = eddy_loop_run_in_thread(loop, work_square, (void *)(intptr_t)5, free);
    ok = eddy_loop_run_until(loop, job, 10) == 0 &&
         eddy_future_state(job) == EDDY_FUTURE_RESOLVED &&
         *(long *)eddy_future_value(job) == 25;
    eddy_future_unref(job);
  }
  ok = ok && eddy_loop_add_signal(loop, SIGUSR2, sig_cb, &s) == 0;
  eddy_loop_call_soon(loop, kill_cb, (void *)(intptr_t)SIGUSR2);
  ok = ok && eddy_loop_run(loop) == 0 && s.n == 1 && s.got[0] == SIGUSR2;
  /* Leave it watched: the child inherits a loop that has a signalfd. */
  return ok;
}

START_TEST(test_fork)
{
  eddy_loop_t *loop = new_loop();
  struct forky f = { .loop = loop };
  eddy_timer_t *t;
  pid_t pid;
  int status;

  ck_assert_int_eq(pipe(f.fds), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, f.fds[0], EDDY_READ, fork_io, &f), 0);
  t = eddy_timer_new(loop, fork_timer, &f);
  eddy_timer_start(t, 0.02, 0);
  /* One round before forking, so the kernel has the registrations, the
   * pool has threads and a signal is watched. */
  ck_assert(fork_round(&f, 'a'));
  ck_assert(fork_extras(loop, POOL_BEFORE_FORK));
  eddy_timer_start(t, 0.02, 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int ok = fork_round(&f, 'c');
    eddy_timer_start(t, 0.02, 0);
    ok = ok && fork_round(&f, 'd');
    ok = ok && fork_extras(loop, 1);
    eddy_timer_free(t);
    eddy_loop_remove_handler(loop, f.fds[0]);
    eddy_loop_free(loop);
    _exit(ok ? 0 : 1);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  /* The parent's registrations are untouched by the child. */
  ck_assert(fork_round(&f, 'p'));
  /* A child that only removes a handler and frees its copy of the loop
   * (as after fork_processes) must not touch the parent's kernel state. */
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    eddy_loop_remove_handler(loop, f.fds[0]);
    eddy_loop_free(loop);
    _exit(0);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  eddy_timer_start(t, 0.02, 0);
  ck_assert(fork_round(&f, 'q'));
  ck_assert(fork_extras(loop, 1));
  eddy_timer_free(t);
  eddy_loop_remove_handler(loop, f.fds[0]);
  close(f.fds[0]);
  close(f.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

void loop_add_thread_tests(TCase *tc)
{
  tcase_add_test(tc, test_threadsafe_threads);
  tcase_add_test(tc, test_threadsafe_before_run);
  tcase_add_test(tc, test_signal_callback);
  tcase_add_test(tc, test_wait_signal);
  tcase_add_test(tc, test_run_in_thread);
  tcase_add_test(tc, test_run_in_thread_cancel);
  tcase_add_test(tc, test_free_with_jobs_in_flight);
  tcase_add_test(tc, test_fork);
}
