/* SPDX-License-Identifier: MIT */
/*
 * The thread pool behind eddy_loop_run_in_thread(): one per loop, started
 * on first use (4 threads, or EDDY_THREADS), joined by eddy_loop_free().
 *
 * A job is one allocation that travels: queued here under the pool's lock,
 * run by a worker, then posted back through the loop's cross-thread queue
 * (its embedded tsnode), where the loop thread settles the future. Workers
 * never touch the future, so futures stay single-threaded.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "eddy/future.h"
#include "loop/loop_impl.h"

#define POOL_DEFAULT 4
#define POOL_MAX 256

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
  struct eddy__tsnode ts; /* first: the posted node is the job */
  struct eddy_list link;  /* pool->queue or pool->running */
  eddy_loop_t *loop;
  eddy_future_t *f;       /* the producer's reference */
  eddy_work_fn fn;
  void *arg;
  eddy_free_fn value_free;
  void *value;
  size_t size;
  int rc;
  int state;              /* guarded by the pool's lock */
  int cancelled;          /* loop thread only */
};

struct eddy__pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct eddy_list queue, running;
  pthread_t *threads;
  int nthreads;
  int shutdown;
};

static void *worker(void *arg)
{
  struct eddy__pool *p = arg;

  for (;;) {
    struct job *j;

    pthread_mutex_lock(&p->mu);
    while (!p->shutdown && eddy_list_empty(&p->queue))
      pthread_cond_wait(&p->cv, &p->mu);
    if (p->shutdown) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    j = eddy_container_of(p->queue.next, struct job, link);
    eddy_list_remove(&j->link);
    eddy_list_insert_tail(&p->running, &j->link);
    j->state = JOB_RUNNING;
    pthread_mutex_unlock(&p->mu);

    j->value = NULL;
    j->size = 0;
    j->rc = j->fn(j->arg, &j->value, &j->size);

    pthread_mutex_lock(&p->mu);
    eddy_list_remove(&j->link);
    j->state = JOB_DONE;
    pthread_mutex_unlock(&p->mu);
    eddy__loop_post(j->loop, &j->ts);
  }
}

static int pool_size(void)
{
  const char *env = getenv("EDDY_THREADS");
  long n;
  char *end;

  if (env == NULL || *env == '\0')
    return POOL_DEFAULT;
  n = strtol(env, &end, 10);
  if (*end != '\0' || n < 1)
    return POOL_DEFAULT;
  return n > POOL_MAX ? POOL_MAX : (int)n;
}

static int pool_start(struct eddy__pool *p)
{
  int n = pool_size(), i, rc = 0;
  sigset_t all, old;

  p->threads = calloc((size_t)n, sizeof *p->threads);
  if (p->threads == NULL)
    return -ENOMEM;
  /* Threads inherit the creator's mask: block everything around the
   * creation so that no signal is ever delivered to a pool thread. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (i = 0; i < n; i++) {
    rc = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
    if (rc != 0)
      break;
    p->nthreads++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p->nthreads == 0) {
    free(p->threads);
    p->threads = NULL;
    return -rc;
  }
  return 0;
}

static struct eddy__pool *pool_get(eddy_loop_t *loop)
{
  struct eddy__pool *p = loop->pool;

  if (p != NULL)
    return p;
  p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p);
    return NULL;
  }
  if (pthread_cond_init(&p->cv, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
  }
  eddy_list_init(&p->queue);
  eddy_list_init(&p->running);
  loop->pool = p;
  return p;
}

/* A future still pending here (loop freed, fork) is cancelled, so that the
 * chains waiting on it run and drop their references instead of leaking. */
static void job_release(struct job *j)
{
  eddy_future_on_cancel(j->f, NULL, NULL);
  eddy_future_cancel(j->f);
  eddy_future_unref(j->f);
  free(j);
}

/* On the loop thread, from the cross-thread queue. */
static void job_done(eddy_loop_t *loop, struct eddy__tsnode *node, int drop)
{
  struct job *j = (struct job *)node;
  int kept = 0;

  (void)loop;
  if (!drop && !j->cancelled) {
    eddy_future_on_cancel(j->f, NULL, NULL);
    if (j->rc == 0)
      kept = eddy_future_resolve_bytes(j->f, j->value, j->size, j->value_free) == 0;
    else if (j->rc < 0)
      eddy_future_reject(j->f, j->rc, NULL);
    else
      eddy_future_reject(j->f, EDDY_EUSAGE,
                         "work function returned %d, not 0 or an error", j->rc);
  }
  if (!kept && j->rc == 0 && j->value != NULL && j->value_free != NULL)
    j->value_free(j->value);
  job_release(j);
}

static void job_cancel(eddy_future_t *f, void *arg)
{
  struct job *j = arg;
  struct eddy__pool *p = j->loop->pool;
  int queued;

  (void)f;
  pthread_mutex_lock(&p->mu);
  queued = j->state == JOB_QUEUED;
  if (queued)
    eddy_list_remove(&j->link);
  pthread_mutex_unlock(&p->mu);
  if (queued)
    job_release(j); /* the canceller holds its own reference */
  else
    j->cancelled = 1; /* its result is freed when it comes back */
}

eddy_future_t *eddy_loop_run_in_thread(eddy_loop_t *loop, eddy_work_fn fn,
                                       void *arg, eddy_free_fn value_free)
{
  struct eddy__pool *p;
  struct job *j;
  int rc;

  if (loop == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (fn == NULL)
    return eddy_future_rejected(loop, EDDY_EUSAGE, "no work function");
  eddy__loop_check_fork(loop); /* the parent's workers are not ours */
  p = pool_get(loop);
  if (p == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (p->nthreads == 0 && (rc = pool_start(p)) < 0)
    return eddy_future_rejected(loop, rc, "cannot start the thread pool");
  j = calloc(1, sizeof *j);
  if (j == NULL || (j->f = eddy_future_new(loop)) == NULL) {
    free(j);
    errno = ENOMEM;
    return NULL;
  }
  j->ts.run = job_done;
  j->loop = loop;
  j->fn = fn;
  j->arg = arg;
  j->value_free = value_free;
  eddy_future_on_cancel(j->f, job_cancel, j);
  pthread_mutex_lock(&p->mu);
  j->state = JOB_QUEUED;
  eddy_list_insert_tail(&p->queue, &j->link);
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return eddy_future_ref(j->f);
}

void eddy__pool_fini(eddy_loop_t *loop)
{
  struct eddy__pool *p = loop->pool;
  int i;

  if (p == NULL)
    return;
  pthread_mutex_lock(&p->mu);
  p->shutdown = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  /* Running jobs finish and post their results, which the loop drops. */
  for (i = 0; i < p->nthreads; i++)
    pthread_join(p->threads[i], NULL);
  while (!eddy_list_empty(&p->queue)) {
    struct job *j = eddy_container_of(p->queue.next, struct job, link);
    eddy_list_remove(&j->link);
    job_release(j);
  }
  free(p->threads);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
  loop->pool = NULL;
}

int eddy__pool_after_fork(eddy_loop_t *loop)
{
  struct eddy__pool *p = loop->pool;

  if (p == NULL)
    return 0;
  /* Only the forking thread exists in the child: the workers, and any lock
   * they held, are gone. */
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  free(p->threads);
  p->threads = NULL;
  p->nthreads = 0;
  p->shutdown = 0;
  while (!eddy_list_empty(&p->running)) {
    struct job *j = eddy_container_of(p->running.next, struct job, link);
    eddy_list_remove(&j->link);
    eddy_future_on_cancel(j->f, NULL, NULL);
    eddy_future_reject(j->f, EDDY_ECANCELLED,
                       "the thread running this work did not survive fork()");
    job_release(j);
  }
  return eddy_list_empty(&p->queue) ? 0 : pool_start(p);
}
