/* SPDX-License-Identifier: MIT */
/*
 * The loop's life cycle and its iteration.
 *
 * One iteration:
 *   1. timers that are due (collected first, then run), then deferred tasks;
 *   2. the call_soon callbacks queued before this pass, then deferred tasks;
 *   3. interest changes reach the kernel, in one batch;
 *   4. the poll timeout: 0 when work is waiting, else up to the next timer;
 *   5. poll, then sample the clock (so I/O handlers arm timers from now,
 *      not from before a long sleep), then the I/O handlers (the cross-
 *      thread queue and signals are fds too), then deferred tasks.
 * After the deferred tasks of steps 2 and 5, the end of the pass: the
 * writes a stream held back during the pass leave, one gathered send per
 * stream (eddy__loop_at_pass_end()).
 * Deferred tasks draw on a per-iteration quota: a chain longer than that
 * continues after a poll that does not block, so I/O is never starved.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eddy/future.h"
#include "loop/loop_impl.h"

/* Recycled call_soon nodes kept per loop; a burst beyond this is freed. */
#define SOON_FREE_MAX 1024

static int64_t clock_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * EDDY__NSEC + ts.tv_nsec;
}

static const struct eddy__backend *pick_backend(eddy_backend_t which)
{
  switch (which) {
  case EDDY_BACKEND_IO_URING:
#ifdef EDDY_HAVE_LIBURING
    return &eddy__backend_uring;
#else
    errno = ENOSYS;
    return NULL;
#endif
  case EDDY_BACKEND_DEFAULT:
  case EDDY_BACKEND_EPOLL:
#ifdef EDDY_HAVE_EPOLL
    return &eddy__backend_epoll;
#else
    if (which == EDDY_BACKEND_EPOLL) {
      errno = ENOSYS;
      return NULL;
    }
    return &eddy__backend_poll;
#endif
  case EDDY_BACKEND_POLL:
    return &eddy__backend_poll;
  }
  errno = EINVAL;
  return NULL;
}

eddy_loop_t *eddy_loop_new(void)
{
  return eddy_loop_new_with_backend(EDDY_BACKEND_DEFAULT);
}

static eddy_loop_t *loop_new(const struct eddy__backend *be);

eddy_loop_t *eddy_loop_new_with_backend(eddy_backend_t backend)
{
  if (backend == EDDY_BACKEND_DEFAULT) {
    const char *env = getenv("EDDY_BACKEND");
    if (env != NULL && strcmp(env, "poll") == 0)
      backend = EDDY_BACKEND_POLL;
    if (env != NULL && strcmp(env, "io_uring") == 0) {
      /* Asked for by the environment: io_uring where the kernel gives it,
       * else the default, quietly (containers often refuse it). */
      eddy_loop_t *loop = NULL;
      const struct eddy__backend *be = pick_backend(EDDY_BACKEND_IO_URING);
      if (be != NULL)
        loop = loop_new(be);
      if (loop != NULL || errno == ENOMEM)
        return loop;
    }
  }
  const struct eddy__backend *be = pick_backend(backend);
  return be != NULL ? loop_new(be) : NULL;
}

static eddy_loop_t *loop_new(const struct eddy__backend *be)
{
  eddy_loop_t *loop;
  int rc;

  loop = calloc(1, sizeof *loop);
  if (loop == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  loop->backend = be;
  loop->epfd = -1;
  loop->pid = getpid();
  loop->now = clock_ns();
  loop->dtail = &loop->dhead;
  loop->stail = &loop->shead;
  eddy__spares_init(&loop->spare_soon);
  eddy__spares_init(&loop->head.spare_futures);
  eddy__spares_init(&loop->head.spare_waiters);
  loop->log_level = eddy__log_level_from_env();
  eddy__debug_init(loop);
  eddy_list_init(&loop->timers);
  eddy_list_init(&loop->due);
  eddy_list_init(&loop->lingers);
  eddy__io_init(loop);
  rc = be->init(loop);
  if (rc < 0) {
    be->fini(loop);
    free(loop);
    errno = -rc;
    return NULL;
  }
  rc = eddy__wakeup_init(loop);
  if (rc < 0) {
    be->fini(loop);
    eddy__io_fini(loop);
    free(loop);
    errno = -rc;
    return NULL;
  }
  rc = eddy__loop_register(loop);
  if (rc < 0) {
    eddy__wakeup_fini(loop);
    be->fini(loop);
    eddy__io_fini(loop);
    free(loop);
    errno = -rc;
    return NULL;
  }
  eddy__debug_from_env(loop);
  return loop;
}

const char *eddy_loop_backend_name(const eddy_loop_t *loop)
{
  return loop != NULL ? loop->backend->name : "none";
}

static void end_pass(eddy_loop_t *loop);

/* Bounded: a task that keeps queueing tasks must not hang the free. */
#define FREE_DRAIN_MAX (1u << 20)

/* Deferred tasks hold references (a future's pending callbacks): running
 * them is the only way to release those without leaking. */
static void drain_deferred(eddy_loop_t *loop)
{
  unsigned i;

  for (i = 0; (loop->dhead != 0 || loop->phead != NULL) && i < FREE_DRAIN_MAX; i++) {
    loop->budget = 1;
    eddy__loop_run_deferred(loop);
    end_pass(loop);
  }
}

/* Rounds of "close the watched streams, cancel the timers' futures, run
 * what that queued". */
#define FREE_ABANDON_ROUNDS 8

void eddy_loop_free(eddy_loop_t *loop)
{
  struct eddy__soon *s, *next;
  int rounds;

  if (loop == NULL)
    return;
  if (loop->running) {
    eddy__log(loop, EDDY_LOG_ERROR, "eddy_loop_free() on a running loop: ignored");
    return;
  }
  /* A child freeing its copy must not touch the parent's epoll set or
   * signalfd, nor join threads it does not have. */
  eddy__loop_check_fork(loop);
  drain_deferred(loop);
  /* The producers go next; each cancels the futures it still owes, and the
   * cancellations travel down their chains in the second drain. The
   * cross-thread queue goes last, as callbacks may still post to it. */
  eddy__pool_fini(loop);
  eddy__signals_fini(loop);
  eddy__wakeup_drop(loop);
  drain_deferred(loop);
  /* Then the streams still watched (an operation pending: the stream holds
   * itself) and sleeps and timeouts (their timers hold the futures). A
   * chain told of it may start more (a connect its next attempt): a few
   * rounds, bounded. */
  for (rounds = 0; rounds < FREE_ABANDON_ROUNDS; rounds++) {
    size_t n = eddy__io_close_streams(loop);
    n += eddy__timers_abandon(loop);
    if (n == 0)
      break;
    drain_deferred(loop);
  }
  eddy__debug_fini(loop);
  eddy__wakeup_fini(loop);
  eddy__lingers_fini(loop); /* before the timers: each owns one */
  eddy__timers_fini(loop);
  for (s = loop->shead; s != NULL; s = next) {
    next = s->next;
    free(s);
  }
  eddy__spares_fini(&loop->spare_soon);
  eddy__spares_fini(&loop->head.spare_futures);
  eddy__spares_fini(&loop->head.spare_waiters);
  loop->backend->fini(loop);
  eddy__io_fini(loop);
  eddy__loop_unregister(loop);
  free(loop);
}

double eddy_loop_time(const eddy_loop_t *loop)
{
  return loop != NULL ? (double)loop->now / 1e9 : 0.0;
}

void eddy_loop_update_time(eddy_loop_t *loop)
{
  if (loop != NULL)
    loop->now = clock_ns();
}

void eddy_loop_stop(eddy_loop_t *loop)
{
  if (loop != NULL)
    loop->stop = 1;
}

/* ---- deferred tasks and call_soon --------------------------------------- */

void eddy__loop_defer_link(eddy_loop_t *loop, eddy__link_t link)
{
  *eddy__link_next(link) = 0;
  *loop->dtail = link;
  loop->dtail = eddy__link_next(link);
}

void eddy__loop_defer(eddy_loop_t *loop, struct eddy__task *task)
{
  if (loop == NULL || task == NULL)
    return;
  eddy__loop_defer_link(loop, (eddy__link_t)task);
}

static void run_link(eddy__link_t l)
{
  eddy__link_t tag = l & EDDY__LINK_TAG;

  if (tag != 0)
    eddy__future_runners[tag]((eddy_future_t *)(void *)eddy__link_next(l));
  else
    ((struct eddy__task *)l)->run((struct eddy__task *)l);
}

void eddy__loop_run_deferred(eddy_loop_t *loop)
{
  eddy__link_t l;

  while ((l = loop->dhead) != 0 && loop->budget > 0) {
    eddy__link_t *next = eddy__link_next(l);
    loop->budget--;
    loop->dhead = *next;
    if (loop->dhead == 0)
      loop->dtail = &loop->dhead;
    *next = 0;
    if (loop->head.debug) {
      int64_t t0 = eddy__debug_clock();
      run_link(l);
      eddy__debug_slow(loop, t0, "a deferred task (a future's callback)", next);
    } else {
      run_link(l);
    }
  }
}

void eddy__loop_at_pass_end(eddy_loop_t *loop, struct eddy__pass_node *node,
                            void (*fn)(struct eddy__pass_node *node))
{
  node->next = loop->phead;
  loop->phead = node;
  loop->pass_fn = fn;
}

int eddy__loop_running(const eddy_loop_t *loop)
{
  return loop->running;
}

/* The end of the pass: each node's call, then the tasks those queued (a
 * write's future resolving), which may queue nodes again (the next line's
 * answer of a chain that waited for its write). The deferred quota bounds
 * the rounds: once it is spent, what those tasks queue waits for the next
 * pass, after a poll that does not block (poll_timeout sees phead). */
static void end_pass(eddy_loop_t *loop)
{
  while (loop->phead != NULL) {
    struct eddy__pass_node *n = loop->phead;
    loop->phead = NULL;
    while (n != NULL) {
      struct eddy__pass_node *next = n->next;
      n->next = NULL;
      loop->pass_fn(n);
      n = next;
    }
    eddy__loop_run_deferred(loop);
    if (loop->budget == 0)
      break;
  }
}

int eddy_loop_call_soon(eddy_loop_t *loop, eddy_callback_fn cb, void *arg)
{
  struct eddy__soon *s;

  if (loop == NULL || cb == NULL)
    return -EINVAL;
  s = eddy__spares_take(&loop->spare_soon);
  if (s == NULL && (s = malloc(sizeof *s)) == NULL)
    return -ENOMEM;
  s->next = NULL;
  s->cb = cb;
  s->arg = arg;
  *loop->stail = s;
  loop->stail = &s->next;
  return 0;
}

/* Runs the callbacks queued before the pass began; the ones they add wait
 * for the next iteration (Tornado's rule), so a callback that re-adds itself
 * cannot keep the loop from polling. */
static void run_soon(eddy_loop_t *loop)
{
  struct eddy__soon *s = loop->shead, *next;

  loop->shead = NULL;
  loop->stail = &loop->shead;
  for (; s != NULL; s = next) {
    eddy_callback_fn cb = s->cb;
    void *arg = s->arg;

    next = s->next;
    eddy__spares_give(&loop->spare_soon, s, SOON_FREE_MAX);
    if (loop->head.debug) {
      int64_t t0 = eddy__debug_clock();
      cb(arg);
      eddy__debug_slow(loop, t0, "a call_soon callback", NULL);
    } else {
      cb(arg);
    }
  }
}

/* ---- the iteration ------------------------------------------------------ */

static int poll_timeout(eddy_loop_t *loop)
{
  int64_t next, wait;

  if (loop->stop || loop->nonblock || loop->shead != NULL ||
      loop->dhead != 0 || loop->phead != NULL || loop->nfired > 0 ||
      (loop->until != NULL && eddy_future_done(loop->until)))
    return 0;
  next = eddy__timers_next(loop);
  if (next < 0)
    return -1;
  if (next <= loop->now)
    return 0;
  /* Round up: waking a little early would only spin until the deadline. */
  wait = (next - loop->now + 999999) / 1000000;
  return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* @max_ms caps the poll's wait (-1: no cap), for eddy_loop_run_once(). */
static int iterate(eddy_loop_t *loop, int max_ms)
{
  int rc, timeout;

  loop->budget = EDDY__DEFER_QUOTA;
  loop->pass_fds = 0; /* timers and call_soon callbacks answer no fd event */
  eddy__timers_run(loop);
  eddy__loop_run_deferred(loop);
  run_soon(loop);
  eddy__loop_run_deferred(loop);
  end_pass(loop);
  eddy__io_apply(loop);
  timeout = poll_timeout(loop);
  if (max_ms >= 0 && (timeout < 0 || timeout > max_ms))
    timeout = max_ms;
  rc = loop->backend->wait(loop, timeout);
  loop->now = clock_ns();
  if (rc < 0) {
    eddy__log(loop, EDDY_LOG_ERROR, "%s failed: %s", loop->backend->name,
              eddy_strerror(rc));
    return rc;
  }
  eddy__io_dispatch(loop);
  eddy__loop_run_deferred(loop);
  end_pass(loop);
  return 0;
}

int eddy__loop_check_fork(eddy_loop_t *loop)
{
  return getpid() == loop->pid ? 0 : eddy_loop_after_fork(loop);
}

/* The common prologue of run and run_until. */
static int loop_enter(eddy_loop_t *loop)
{
  int rc;

  if (loop->running)
    return EDDY_EUSAGE;
  if ((rc = eddy__loop_check_fork(loop)) < 0)
    return rc;
  loop->running = 1;
  loop->now = clock_ns();
  return 0;
}

static void loop_leave(eddy_loop_t *loop)
{
  /* Sends the last pass queued on a ring leave before the caller gets
   * control back: a write made in the loop is in the kernel when it
   * returns, as with a send() system call. */
  if (loop->backend->send_flush != NULL)
    loop->backend->send_flush(loop);
  loop->stop = 0;
  loop->nonblock = 0;
  loop->until = NULL;
  loop->running = 0;
}

int eddy_loop_run(eddy_loop_t *loop)
{
  int rc;

  if (loop == NULL)
    return EDDY_EUSAGE;
  if ((rc = loop_enter(loop)) < 0)
    return rc;
  do
    rc = iterate(loop, -1);
  while (rc == 0 && !loop->stop);
  loop_leave(loop);
  return rc;
}

struct until_timeout {
  eddy_loop_t *loop;
  int expired;
};

static void until_expired(void *arg)
{
  struct until_timeout *u = arg;
  u->expired = 1;
  u->loop->nonblock = 1;
}

int eddy_loop_run_until(eddy_loop_t *loop, eddy_future_t *future, double timeout)
{
  struct until_timeout u = { loop, 0 };
  eddy_timer_t timer;
  int rc;

  if (loop == NULL || future == NULL)
    return EDDY_EUSAGE;
  if (eddy_future_done(future))
    return loop->running ? EDDY_EUSAGE : 0;
  if ((rc = eddy__timer_init(&timer, loop, until_expired, &u)) < 0)
    return rc;
  if ((rc = loop_enter(loop)) < 0) {
    eddy__timer_deinit(&timer);
    return rc;
  }
  loop->until = future;
  if (timeout > 0)
    eddy_timer_start(&timer, timeout, 0);
  for (;;) {
    rc = iterate(loop, -1);
    if (rc < 0 || eddy_future_done(future))
      break;
    if (u.expired) {
      rc = EDDY_ETIMEOUT;
      /* As run_sync does; its callbacks learn of it before we return. */
      eddy_future_cancel(future);
      loop->budget = EDDY__DEFER_QUOTA;
      eddy__loop_run_deferred(loop);
      end_pass(loop);
      break;
    }
    if (loop->stop) {
      rc = EDDY_ESTOPPED;
      break;
    }
  }
  eddy__timer_deinit(&timer);
  loop_leave(loop);
  return rc;
}

/* ---- embedding ---------------------------------------------------------- */

int eddy_loop_backend_fd(const eddy_loop_t *loop)
{
  if (loop == NULL)
    return -EINVAL;
#ifdef EDDY_HAVE_EPOLL
  if (loop->backend == &eddy__backend_epoll)
    return loop->epfd;
#endif
  /* poll() has no kernel object that stands for the whole fd set; making
   * one (an epoll set mirroring the pollfd array) would be the epoll
   * backend again. Any other backend must say what its descriptor means
   * before it is handed out here. */
  return -ENOTSUP;
}

int eddy_loop_run_once(eddy_loop_t *loop, double timeout)
{
  int rc, max_ms;

  if (loop == NULL || isnan(timeout))
    return EDDY_EUSAGE;
  if (timeout < 0)
    max_ms = -1;
  else if (timeout * 1000.0 >= (double)INT_MAX)
    max_ms = INT_MAX;
  else if ((max_ms = (int)(timeout * 1000.0)) < timeout * 1000.0)
    max_ms++; /* round up: a 0.1 ms cap must not turn into a busy poll */
  if ((rc = loop_enter(loop)) < 0)
    return rc;
  rc = iterate(loop, max_ms);
  /* The handlers that just ran may have asked for new interest (a stream
   * accepted, a write that could not finish): the host loop polls the
   * backend fd next, which only knows what has reached the kernel. */
  if (rc == 0)
    eddy__io_apply(loop);
  loop_leave(loop);
  return rc;
}

double eddy_loop_next_timeout(const eddy_loop_t *loop)
{
  int64_t next, now;

  if (loop == NULL)
    return -1;
  if (loop->nonblock || loop->shead != NULL || loop->dhead != 0 ||
      loop->phead != NULL || loop->nfired > 0 || loop->nchanges > 0 || !eddy_list_empty(&loop->due))
    return 0;
  next = eddy__timers_next(loop);
  if (next < 0)
    return -1;
  now = clock_ns();
  return next <= now ? 0 : (double)(next - now) / 1e9;
}

int eddy_loop_after_fork(eddy_loop_t *loop)
{
  int rc;

  if (loop == NULL)
    return -EINVAL;
  loop->pid = getpid();
  rc = loop->backend->reinit(loop);
  if (rc < 0)
    return rc;
  eddy__io_forget_kernel(loop);
  rc = eddy__wakeup_after_fork(loop);
  if (rc == 0)
    rc = eddy__signals_after_fork(loop);
  if (rc == 0)
    rc = eddy__pool_after_fork(loop);
  return rc;
}
