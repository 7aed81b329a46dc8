/* SPDX-License-Identifier: MIT */
/*
 * future_bench: what a future and a then-hop cost.
 *
 *   bench/future_bench [N]      (default N = 1000000)
 *
 * Reports:
 *   create+resolve+free   eddy_future_new, resolve, unref: no loop involved;
 *   then-hop (build)      eddy_then on a pending future: one allocation;
 *   then-hop (run)        one step run by the loop: dequeue, callback,
 *                         settle, queue the next, release the source;
 *   then-hop (total)      build + run of one chain of N steps, all alive at
 *                         once: for large N, fresh memory (page faults)
 *                         dominates the build;
 *   then-hop (steady)     build + run of chains of 1000 steps, again and
 *                         again, so memory is reused as in a server: the
 *                         figure to compare with the 100 ns target;
 *   repeat iteration      one eddy_repeat step with a resolved future;
 *   memory                heap growth of N naive recursive then-steps
 *                         (each level adopts the next) against N repeat
 *                         iterations (glibc's mallinfo2, 0 when unavailable).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <eddy.h>

static eddy_loop_t *loop;

static double now(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_in_use(void)
{
#ifdef __GLIBC__
  return mallinfo2().uordblks;
#else
  return 0;
#endif
}

static void run(eddy_future_t *f)
{
  if (eddy_loop_run_until(loop, f, 0) != 0 || !eddy_future_done(f)) {
    fprintf(stderr, "future_bench: the loop did not settle the future\n");
    exit(1);
  }
}

static eddy_future_t *pass(eddy_future_t *settled, void *arg)
{
  return eddy_future_ref(settled);
}

static void bench_create(long n)
{
  double t0 = now();
  long i;

  for (i = 0; i < n; i++) {
    eddy_future_t *f = eddy_future_new(loop);

    eddy_future_resolve(f, NULL, NULL);
    eddy_future_unref(f);
  }
  t0 = now() - t0;
  printf("create+resolve+free   %7.1f ns   %6.2f M futures/s\n", t0 / (double)n * 1e9,
         (double)n / t0 / 1e6);
}

static void bench_then(long n)
{
  eddy_future_t *src = eddy_future_new(loop), *f = eddy_future_ref(src);
  double t0, t1, t2;
  long i;

  t0 = now();
  for (i = 0; i < n; i++)
    f = eddy_then(f, pass, NULL);
  t1 = now();
  eddy_future_resolve(src, NULL, NULL);
  run(f);
  t2 = now();
  eddy_future_unref(f);
  eddy_future_unref(src);
  printf("then-hop (build)      %7.1f ns\n", (t1 - t0) / (double)n * 1e9);
  printf("then-hop (run)        %7.1f ns\n", (t2 - t1) / (double)n * 1e9);
  printf("then-hop (total)      %7.1f ns   %6.2f M hops/s\n", (t2 - t0) / (double)n * 1e9,
         (double)n / (t2 - t0) / 1e6);
}

static void bench_then_steady(long n)
{
  long rounds = n / 1000 > 0 ? n / 1000 : 1, i, j;
  double t0 = now();

  for (i = 0; i < rounds; i++) {
    eddy_future_t *src = eddy_future_new(loop), *f = eddy_future_ref(src);

    for (j = 0; j < 1000; j++)
      f = eddy_then(f, pass, NULL);
    eddy_future_resolve(src, NULL, NULL);
    run(f);
    eddy_future_unref(f);
    eddy_future_unref(src);
  }
  t0 = now() - t0;
  printf("then-hop (steady)     %7.1f ns   %6.2f M hops/s\n",
         t0 / (double)(rounds * 1000) * 1e9, (double)(rounds * 1000) / t0 / 1e6);
}

static long left;

static eddy_future_t *repeat_step(void *arg)
{
  return --left > 0 ? eddy_future_resolved(loop, NULL, NULL) : eddy_future_stop(loop);
}

static size_t peak;

/* Samples the heap every 256 steps: mallinfo2() walks malloc's free
 * lists, and growth that is linear in the steps shows at any rate. */
static void sample_heap(void)
{
  if ((left & 255) == 0) {
    size_t h = heap_in_use();

    if (h > peak)
      peak = h;
  }
}

static eddy_future_t *repeat_step_measured(void *arg)
{
  sample_heap();
  return repeat_step(arg);
}

static void bench_repeat(long n)
{
  eddy_future_t *r;
  double t0 = now();

  left = n;
  r = eddy_repeat(repeat_step, NULL);
  run(r);
  t0 = now() - t0;
  eddy_future_unref(r);
  printf("repeat iteration      %7.1f ns\n", t0 / (double)n * 1e9);
}

/* A coroutine awaiting a future that is still pending: each iteration makes
 * a then-step on a resolved future (two futures, one loop task) and awaits
 * it (two stack switches). Less "create+resolve+free" and "then-hop
 * (total)", what remains is the suspend and resume. */
static eddy_future_t *await_loop(void *arg)
{
  long n = *(long *)arg;

  for (long i = 0; i < n; i++) {
    eddy_future_t *f = eddy_await(
        eddy_then(eddy_future_resolved(loop, NULL, NULL), pass, NULL));
    if (f == NULL)
      return NULL;
    eddy_future_unref(f);
  }
  return EDDY_NO_VALUE;
}

static void bench_await(long n)
{
  eddy_future_t *c;
  double t0 = now();

  c = eddy_coro_spawn(loop, await_loop, &n, NULL);
  run(c);
  t0 = now() - t0;
  if (eddy_future_error(c) != 0) {
    fprintf(stderr, "future_bench: %s\n", eddy_future_message(c));
    exit(1);
  }
  eddy_future_unref(c);
  printf("coroutine await       %7.1f ns\n", t0 / (double)n * 1e9);
}

static eddy_future_t *naive_step(eddy_future_t *settled, void *arg)
{
  sample_heap();
  if (--left == 0)
    return EDDY_NO_VALUE;
  return eddy_then(eddy_future_resolved(loop, NULL, NULL), naive_step, NULL);
}

static void bench_memory(long n)
{
  size_t base;
  eddy_future_t *f;

#ifdef __GLIBC__
  /* mallinfo2() walks every chunk in malloc's fast bins, and the timed runs
   * above left a million freed futures there: turn the fast bins off
   * (mallopt first consolidates them) so that sampling stays cheap.
   * Nothing below is timed. */
  mallopt(M_MXFAST, 0);
#endif
  base = heap_in_use();
  peak = base;
  left = n;
  f = eddy_then(eddy_future_resolved(loop, NULL, NULL), naive_step, NULL);
  run(f);
  eddy_future_unref(f);
  printf("naive recursion       %7.1f MB heap growth over %ld steps\n",
         (double)(peak - base) / 1e6, n);

  base = heap_in_use();
  peak = base;
  left = n;
  f = eddy_repeat(repeat_step_measured, NULL);
  run(f);
  eddy_future_unref(f);
  printf("repeat                %7.1f MB heap growth over %ld steps\n",
         (double)(peak - base) / 1e6, n);
}

int main(int argc, char **argv)
{
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000L;

  if (n <= 0) {
    fprintf(stderr, "usage: %s [iterations]\n", argv[0]);
    return 2;
  }
  loop = eddy_loop_new();
  if (loop == NULL) {
    perror("eddy_loop_new");
    return 1;
  }
  printf("eddy futures, %ld iterations, backend %s\n", n, eddy_loop_backend_name(loop));
  bench_create(n);
  bench_then(n);
  bench_then_steady(n);
  bench_repeat(n);
  bench_await(n);
  bench_memory(n);
  eddy_loop_free(loop);
  return 0;
}
