/* SPDX-License-Identifier: MIT */
/*
 * bench/micro_read_until.c - read_until through eddy streams over a UNIX
 * socket pair, against a bare read()+memchr() loop on the same kind of
 * socket pair (the ceiling).
 *
 *   micro_read_until [MiB]     (default 64; QUICK=1: 8)
 *
 *   one line "\n"        MiB bytes with a single "\n" at the end, one
 *                        read_until: buffering + scanning (each byte must
 *                        be scanned once, not again on every chunk)
 *   one line "\r\n\r\n"  the same with a 4-byte delimiter
 *   1 KiB lines          MiB bytes of 1 KiB lines, one read_until each
 *                        (per-read overhead: future, callback, buffer)
 *   raw read+memchr      plain write/read() of 64 KiB and memchr in one
 *                        thread, no eddy: the ceiling
 * The writer is an eddy stream on the other end, in the same loop.
 * Prints "MICRO name value unit" lines for bench/run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <eddy.h>

static eddy_loop_t *loop;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_pair(eddy_stream_t **w, eddy_stream_t **r, size_t max_buffer) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
    perror("socketpair");
    exit(1);
  }
  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.max_buffer_size = max_buffer;
  *w = eddy_stream_new_socket(loop, fds[0], &o);
  *r = eddy_stream_new_socket(loop, fds[1], &o);
  if (!*w || !*r) {
    perror("eddy_stream_new_socket");
    exit(1);
  }
}

static void wait_ok(eddy_future_t *f, const char *what) {
  if (!f || eddy_loop_run_until(loop, f, 120) != 0 ||
      eddy_future_state(f) != EDDY_FUTURE_RESOLVED) {
    fprintf(stderr, "micro_read_until: %s failed: %s\n", what,
            f ? eddy_future_message(f) : "NULL future");
    exit(1);
  }
}

static void report(const char *key, const char *label, double secs, size_t bytes) {
  printf("%-22s %7.2f GB/s\n", label, (double)bytes / secs / 1e9);
  printf("MICRO read_until_%s %.3f GB/s\n", key, (double)bytes / secs / 1e9);
}

static void one_line(size_t size, const char *delim, const char *key,
                     const char *label) {
  size_t dl = strlen(delim);
  char *data = malloc(size);
  memset(data, 'x', size);
  memcpy(data + size - dl, delim, dl);
  eddy_stream_t *w, *r;
  make_pair(&w, &r, size * 2 + (1 << 20));
  double t0 = now();
  eddy_future_t *wf = eddy_stream_write_borrowed(w, data, size);
  eddy_future_t *rf = eddy_stream_read_until(r, delim, dl, 0);
  wait_ok(rf, "read_until");
  double t = now() - t0;
  if (eddy_future_size(rf) != size) {
    fprintf(stderr, "micro_read_until: got %zu of %zu bytes\n",
            eddy_future_size(rf), size);
    exit(1);
  }
  wait_ok(wf, "write");
  report(key, label, t, size);
  eddy_future_unref(wf);
  eddy_future_unref(rf);
  eddy_stream_unref(w);
  eddy_stream_unref(r);
  free(data);
}

/* Many lines: a repeat of read_until steps. */
static eddy_stream_t *lines_r;
static long lines_left;
static size_t lines_bytes;

static eddy_future_t *on_line(eddy_future_t *f, void *arg) {
  (void)arg;
  lines_bytes += eddy_future_size(f);
  return --lines_left > 0 ? EDDY_NO_VALUE : eddy_future_stop(loop);
}

static eddy_future_t *line_step(void *arg) {
  (void)arg;
  return eddy_then_ok(eddy_stream_read_until(lines_r, "\n", 1, 0), on_line, NULL);
}

static void many_lines(size_t size, size_t line) {
  long n = (long)(size / line);
  char *data = malloc((size_t)n * line);
  memset(data, 'y', (size_t)n * line);
  for (long i = 0; i < n; i++) data[(size_t)(i + 1) * line - 1] = '\n';
  eddy_stream_t *w;
  make_pair(&w, &lines_r, 0);
  lines_left = n;
  lines_bytes = 0;
  double t0 = now();
  eddy_future_t *wf = eddy_stream_write_borrowed(w, data, (size_t)n * line);
  eddy_future_t *rep = eddy_repeat(line_step, NULL);
  wait_ok(rep, "read_until loop");
  double t = now() - t0;
  if (lines_bytes != (size_t)n * line) {
    fprintf(stderr, "micro_read_until: lines: got %zu bytes\n", lines_bytes);
    exit(1);
  }
  wait_ok(wf, "write");
  report("1k_lines", "1 KiB lines", t, lines_bytes);
  printf("MICRO read_until_1k_lines_per_s %.0f lines/s\n", (double)n / t);
  eddy_future_unref(wf);
  eddy_future_unref(rep);
  eddy_stream_unref(w);
  eddy_stream_unref(lines_r);
  free(data);
}

/* The ceiling, in one thread as eddy is: non-blocking socket pair, write
 * what the kernel takes, read 64 KiB at a time and memchr, repeat. */
static void raw(size_t size) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) < 0) exit(1);
  char *data = malloc(size), *buf = malloc(64 * 1024);
  memset(data, 'z', size);
  data[size - 1] = '\n';
  size_t sent = 0, got = 0;
  int found = 0;
  double t0 = now();
  while (!found) {
    if (sent < size) {
      ssize_t w = write(fds[0], data + sent, size - sent);
      if (w > 0) sent += (size_t)w;
      else if (errno != EAGAIN) break;
    }
    for (;;) {
      ssize_t k = read(fds[1], buf, 64 * 1024);
      if (k <= 0) break;
      found = memchr(buf, '\n', (size_t)k) != NULL;
      got += (size_t)k;
    }
  }
  double t = now() - t0;
  close(fds[0]);
  close(fds[1]);
  if (got != size) fprintf(stderr, "micro_read_until: raw got %zu\n", got);
  report("raw_read_memchr", "raw read+memchr", t, got);
  free(data);
  free(buf);
}

int main(int argc, char **argv) {
  const char *q = getenv("QUICK");
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : (q && *q == '1' ? 8 : 64);
  size_t size = mib << 20;
  loop = eddy_loop_new();
  if (!loop) return 1;
  printf("eddy read_until over a UNIX socket pair, %zu MiB\n", mib);
  one_line(size, "\n", "one_line", "one line \"\\n\"");
  one_line(size, "\r\n\r\n", "one_line_crlf2", "one line \"\\r\\n\\r\\n\"");
  many_lines(size, 1024);
  raw(size);
  eddy_loop_free(loop);
  return 0;
}
