/* SPDX-License-Identifier: MIT */
/*
 * bench/micro_timers.c - what eddy's timers cost, through the public API.
 *
 *   micro_timers [N]        (default N = 1000000; QUICK=1: 100000)
 *
 * With N timers alive at once (delays spread over 0..1 ms):
 *   add      eddy_timer_new + eddy_timer_start (heap insert)
 *   fire     the loop collecting and running all N (heap pop + callback)
 *   restart  eddy_timer_start on an active timer, as an idle timeout is
 *            pushed back on every I/O (heap sift)
 *   free     eddy_timer_free of an active timer (heap delete)
 *   call_later add / fire  the fire-and-forget variant
 * Prints a human line per figure and one "MICRO name value unit" line
 * each, which bench/run reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <eddy.h>

static eddy_loop_t *loop;
static long fired, target;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_fire(void *arg) {
  (void)arg;
  if (++fired == target) eddy_loop_stop(loop);
}

static void report(const char *name, double secs, long n) {
  printf("%-22s %8.1f ns  %7.2f M/s\n", name, secs / (double)n * 1e9,
         (double)n / secs / 1e6);
  printf("MICRO timers_%s_per_s %.0f /s\n", name, (double)n / secs);
}

static void fire_all(long n, const char *name) {
  fired = 0;
  target = n;
  double t0 = now();
  if (eddy_loop_run(loop) != 0) {
    fprintf(stderr, "micro_timers: loop failed\n");
    exit(1);
  }
  double t = now() - t0;
  if (fired != n) {
    fprintf(stderr, "micro_timers: %ld of %ld fired\n", fired, n);
    exit(1);
  }
  report(name, t, n);
}

int main(int argc, char **argv) {
  const char *q = getenv("QUICK");
  long n = argc > 1 ? atol(argv[1]) : (q && *q == '1' ? 100000 : 1000000);
  loop = eddy_loop_new();
  eddy_timer_t **t = malloc((size_t)n * sizeof *t);
  if (!loop || !t || n <= 0) return 1;
  srand(1);
  printf("eddy timers, %ld alive at once, backend %s\n", n,
         eddy_loop_backend_name(loop));

  double t0 = now();
  for (long i = 0; i < n; i++) {
    t[i] = eddy_timer_new(loop, on_fire, NULL);
    eddy_timer_start(t[i], (rand() % 1000) / 1e6, 0);
  }
  report("add", now() - t0, n);
  fire_all(n, "fire");

  /* Restart and free, on a full heap of active timers. */
  for (long i = 0; i < n; i++) eddy_timer_start(t[i], 10 + (rand() % 1000) / 1e3, 0);
  t0 = now();
  for (long i = 0; i < n; i++) eddy_timer_start(t[i], 10 + (rand() % 1000) / 1e3, 0);
  report("restart", now() - t0, n);
  t0 = now();
  for (long i = 0; i < n; i++) eddy_timer_free(t[i]);
  report("free", now() - t0, n);

  t0 = now();
  for (long i = 0; i < n; i++)
    eddy_loop_call_later(loop, (rand() % 1000) / 1e6, on_fire, NULL);
  report("call_later_add", now() - t0, n);
  fire_all(n, "call_later_fire");

  free(t);
  eddy_loop_free(loop);
  return 0;
}
