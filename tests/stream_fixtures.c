/* SPDX-License-Identifier: MIT */
/*
 * tests/stream_fixtures.c - fixtures shared by the stream test suites.
 */
#include "stream_fixtures.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

eddy_loop_t *sfx_loop;
sfx_log_t sfx_logs;

#define SFX_TRACK_MAX 32
static eddy_stream_t *tracked[SFX_TRACK_MAX];
static int fd_baseline = -1;

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

int sfx_fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  ck_assert_msg(d != NULL, "cannot open /proc/self/fd");
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the DIR's own fd */
}

int sfx_slow(void) {
  static int cached = -1;
  if (cached >= 0)
    return cached;
  const char *env = getenv("EDDY_TEST_SLOW");
  cached = env != NULL && env[0] != '\0' && strcmp(env, "0") != 0;
  if (!cached) {
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps != NULL) {
      char line[512];
      while (fgets(line, sizeof line, maps) != NULL)
        if (strstr(line, "vgpreload") != NULL) {
          cached = 1;
          break;
        }
      fclose(maps);
    }
  }
  return cached;
}

static void capture_log(eddy_log_level_t level, const char *message,
                        void *arg) {
  (void)arg;
  if (sfx_logs.count >= SFX_LOG_MAX)
    return;
  sfx_logs.level[sfx_logs.count] = level;
  sfx_logs.message[sfx_logs.count] = strdup(message ? message : "");
  sfx_logs.count++;
}

int sfx_log_contains(const char *needle) {
  for (int i = 0; i < sfx_logs.count; i++)
    if (sfx_logs.message[i] && strcasestr(sfx_logs.message[i], needle))
      return 1;
  return 0;
}

int sfx_log_count_at_least(eddy_log_level_t level) {
  int n = 0;
  for (int i = 0; i < sfx_logs.count; i++)
    if (sfx_logs.level[i] >= level)
      n++;
  return n;
}

void sfx_setup(void) {
  signal(SIGPIPE, SIG_DFL);
  memset(tracked, 0, sizeof tracked);
  memset(&sfx_logs, 0, sizeof sfx_logs);
  fd_baseline = sfx_fd_count();
  sfx_loop = eddy_loop_new();
  ck_assert_msg(sfx_loop != NULL, "eddy_loop_new failed: %s", strerror(errno));
  eddy_loop_set_logger(sfx_loop, capture_log, NULL);
  const char *backend = getenv("EDDY_BACKEND");
  if (backend != NULL && backend[0] != '\0')
    ck_assert_str_eq(eddy_loop_backend_name(sfx_loop), backend);
}

void sfx_teardown(void) {
  int left = 0;
  for (int i = 0; i < SFX_TRACK_MAX; i++)
    if (tracked[i] != NULL) {
      /* The test's close callback may point into its dead stack frame. */
      eddy_stream_set_close_callback(tracked[i], NULL, NULL);
      eddy_stream_close(tracked[i], 0);
      eddy_stream_unref(tracked[i]);
      tracked[i] = NULL;
      left++;
    }
  /* Let queued close callbacks and future callbacks run. */
  for (int round = 0; round < 2; round++) {
    eddy_future_t *f = eddy_sleep(sfx_loop, 0);
    ck_assert(f != NULL);
    ck_assert_int_eq(eddy_loop_run_until(sfx_loop, f, SFX_WAIT), 0);
    eddy_future_unref(f);
  }
  eddy_loop_free(sfx_loop);
  sfx_loop = NULL;
  for (int i = 0; i < sfx_logs.count; i++)
    free(sfx_logs.message[i]);
  memset(&sfx_logs, 0, sizeof sfx_logs);
  int now = sfx_fd_count();
  ck_assert_msg(now == fd_baseline,
                "fd leak: %d fds open before the test, %d after", fd_baseline,
                now);
  (void)left;
}

void sfx_tcase_setup(TCase *tc, double timeout) {
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_set_timeout(tc, timeout);
}

/* ------------------------------------------------------------------------ */
/* Raw descriptors                                                           */
/* ------------------------------------------------------------------------ */

/* Small kernel buffers must be set on TCP sockets before the connection
 * exists (on the listener, inherited by the accepted socket, and on the
 * client before connect): shrunk afterwards, the receive window falls below
 * one loopback MSS and the transfer crawls at one segment per delayed ACK. */
static void set_small_buffers(int fd) {
  int size = 4096;
  ck_assert(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
  ck_assert(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0);
}

static int tcp_listener(struct sockaddr_storage *addr, socklen_t *len,
                        int small) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_msg(l >= 0, "socket: %s", strerror(errno));
  if (small)
    set_small_buffers(l);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;
  ck_assert_msg(bind(l, (struct sockaddr *)&sin, sizeof sin) == 0, "bind: %s",
                strerror(errno));
  ck_assert_msg(listen(l, 16) == 0, "listen: %s", strerror(errno));
  *len = sizeof *addr;
  ck_assert(getsockname(l, (struct sockaddr *)addr, len) == 0);
  return l;
}

int sfx_tcp_listener(struct sockaddr_storage *addr, socklen_t *len) {
  return tcp_listener(addr, len, 0);
}

static void tcp_fds(int fds[2], int small) {
  struct sockaddr_storage addr;
  socklen_t len;
  int l = tcp_listener(&addr, &len, small);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert(c >= 0);
  if (small)
    set_small_buffers(c);
  ck_assert_msg(connect(c, (struct sockaddr *)&addr, len) == 0, "connect: %s",
                strerror(errno));
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_msg(s >= 0, "accept: %s", strerror(errno));
  close(l);
  fds[0] = s;
  fds[1] = c;
}

void sfx_tcp_fds(int fds[2]) { tcp_fds(fds, 0); }

void sfx_unix_fds(int fds[2]) {
  ck_assert_msg(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0,
                "socketpair: %s", strerror(errno));
}

void sfx_pipe_fds(int fds[2]) {
  ck_assert_msg(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
}

int sfx_refusing_port(int *keep_fd) {
  int fds[2];
  sfx_tcp_fds(fds); /* the listener is already closed */
  close(fds[0]);
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  ck_assert(getsockname(fds[1], (struct sockaddr *)&sin, &len) == 0);
  *keep_fd = fds[1];
  return ntohs(sin.sin_port);
}

void sfx_shrink_kernel_buffers(int fd) {
  int size = 4096;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
    set_small_buffers(fd);
  } else {
#ifdef F_SETPIPE_SZ
    (void)fcntl(fd, F_SETPIPE_SZ, size);
#endif
  }
}

void sfx_set_linger0(int fd) {
  struct linger lg = {1, 0};
  ck_assert_msg(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0,
                "SO_LINGER: %s", strerror(errno));
}

void sfx_raw_write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    ck_assert_msg(n > 0, "raw write: %s", strerror(errno));
    p += n;
    len -= (size_t)n;
  }
}

void sfx_raw_read_exact(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    ck_assert_msg(n > 0, "raw read: %s", n == 0 ? "EOF" : strerror(errno));
    p += n;
    len -= (size_t)n;
  }
}

/* ------------------------------------------------------------------------ */
/* Pairs                                                                     */
/* ------------------------------------------------------------------------ */

const char *sfx_kind_name(sfx_kind_t kind) {
  switch (kind) {
  case SFX_TCP: return "tcp";
  case SFX_PIPE: return "pipe";
  case SFX_UNIX: return "unix";
  default: return "?";
  }
}

eddy_stream_t *sfx_track(eddy_stream_t *s) {
  ck_assert(s != NULL);
  for (int i = 0; i < SFX_TRACK_MAX; i++)
    if (tracked[i] == NULL) {
      tracked[i] = s;
      return s;
    }
  ck_abort_msg("too many tracked streams");
  return s;
}

void sfx_release(eddy_stream_t **sp) {
  for (int i = 0; i < SFX_TRACK_MAX; i++)
    if (tracked[i] == *sp)
      tracked[i] = NULL;
  eddy_stream_unref(*sp);
  *sp = NULL;
}

static void kind_fds(sfx_kind_t kind, int shrink, int fds[2]) {
  switch (kind) {
  case SFX_TCP: tcp_fds(fds, shrink); return;
  case SFX_UNIX: sfx_unix_fds(fds); break;
  case SFX_PIPE: sfx_pipe_fds(fds); break;
  default: ck_abort_msg("bad kind");
  }
  if (shrink) {
    sfx_shrink_kernel_buffers(fds[0]);
    sfx_shrink_kernel_buffers(fds[1]);
  }
}

static eddy_stream_t *wrap(sfx_kind_t kind, int fd,
                           const eddy_stream_options_t *opts) {
  eddy_stream_t *s = kind == SFX_PIPE ? eddy_stream_new_pipe(sfx_loop, fd, opts)
                                      : eddy_stream_new_socket(sfx_loop, fd, opts);
  ck_assert_msg(s != NULL, "stream constructor failed: %s", strerror(errno));
  return sfx_track(s);
}

sfx_pair_t sfx_pair(sfx_kind_t kind, const eddy_stream_options_t *ropts,
                    const eddy_stream_options_t *wopts, int shrink) {
  sfx_pair_t p;
  int fds[2];
  p.kind = kind;
  kind_fds(kind, shrink, fds);
  p.rs = wrap(kind, fds[0], ropts);
  p.ws = wrap(kind, fds[1], wopts);
  return p;
}

eddy_stream_t *sfx_raw_peer(sfx_kind_t kind, int stream_reads,
                            const eddy_stream_options_t *opts, int shrink,
                            int *peer_fd) {
  int fds[2];
  kind_fds(kind, shrink, fds);
  int mine = fds[0];
  *peer_fd = fds[1];
  if (kind == SFX_PIPE && !stream_reads) {
    mine = fds[1];
    *peer_fd = fds[0];
  }
  return wrap(kind, mine, opts);
}

/* ------------------------------------------------------------------------ */
/* Running                                                                   */
/* ------------------------------------------------------------------------ */

void sfx_wait(eddy_future_t *f) {
  ck_assert_msg(f != NULL, "NULL future");
  int rc = eddy_loop_run_until(sfx_loop, f, SFX_WAIT);
  ck_assert_msg(rc == 0, "future did not settle within %.0f s (%s)", SFX_WAIT,
                eddy_err_name(rc));
}

void sfx_run_for(double seconds) {
  eddy_future_t *f = eddy_sleep(sfx_loop, seconds);
  ck_assert(f != NULL);
  int rc = eddy_loop_run_until(sfx_loop, f, seconds + SFX_WAIT);
  ck_assert_msg(rc == 0, "sleep did not end (%s)", eddy_err_name(rc));
  eddy_future_unref(f);
}

/* Runs short slices of the loop until cond(arg) holds or SFX_WAIT passes. */
static void run_until_cond(int (*cond)(const void *), const void *arg,
                           const char *what) {
  eddy_loop_update_time(sfx_loop);
  double end = eddy_loop_time(sfx_loop) + SFX_WAIT;
  while (!cond(arg)) {
    ck_assert_msg(eddy_loop_time(sfx_loop) < end, "timed out waiting for %s",
                  what);
    sfx_run_for(0.001);
  }
}

struct buffered_arg {
  eddy_stream_t *s;
  size_t n;
};

static int cond_buffered(const void *arg) {
  const struct buffered_arg *b = arg;
  return eddy_stream_read_buffer_size(b->s) >= b->n;
}

void sfx_run_until_buffered(eddy_stream_t *s, size_t n) {
  struct buffered_arg b = {s, n};
  run_until_cond(cond_buffered, &b, "buffered input");
}

static int cond_flag(const void *arg) {
  return *(const volatile int *)arg != 0;
}

void sfx_run_until_flag(const volatile int *flag) {
  run_until_cond(cond_flag, (const void *)flag, "a flag");
}

void sfx_run_until_closed(eddy_stream_t *s) {
  eddy_future_t *f = eddy_stream_wait_closed(s);
  sfx_wait(f);
  ck_assert(eddy_stream_closed(s));
  eddy_future_unref(f);
}

/* ------------------------------------------------------------------------ */
/* Asserting outcomes                                                        */
/* ------------------------------------------------------------------------ */

static const char *state_name(eddy_future_state_t st) {
  switch (st) {
  case EDDY_FUTURE_PENDING: return "pending";
  case EDDY_FUTURE_RESOLVED: return "resolved";
  case EDDY_FUTURE_REJECTED: return "rejected";
  case EDDY_FUTURE_CANCELLED: return "cancelled";
  }
  return "?";
}

static void expect_resolved(eddy_future_t *f, const char *file, int line) {
  ck_assert_msg(f != NULL, "%s:%d: NULL future", file, line);
  sfx_wait(f);
  ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED,
                "%s:%d: expected resolved, got %s (%s, cause %s: %s)", file,
                line, state_name(eddy_future_state(f)),
                eddy_err_name(eddy_future_error(f)),
                eddy_err_name(eddy_future_cause(f)),
                eddy_future_message(f) ? eddy_future_message(f) : "");
}

void sfx_expect_bytes_at(eddy_future_t *f, const void *data, size_t len,
                         const char *file, int line) {
  expect_resolved(f, file, line);
  size_t got = eddy_future_size(f);
  const char *v = eddy_future_value(f);
  ck_assert_msg(got == len, "%s:%d: expected %zu bytes, got %zu", file, line,
                len, got);
  ck_assert_msg(v != NULL, "%s:%d: resolved with no buffer", file, line);
  ck_assert_msg(memcmp(v, data, len) == 0, "%s:%d: bytes differ: got '%.*s'",
                file, line, (int)(len > 64 ? 64 : len), v);
  ck_assert_msg(v[len] == '\0', "%s:%d: buffer not NUL-terminated", file,
                line);
  eddy_future_unref(f);
}

void sfx_expect_ok_at(eddy_future_t *f, const char *file, int line) {
  expect_resolved(f, file, line);
  eddy_future_unref(f);
}

void sfx_expect_error_at(eddy_future_t *f, int code, int cause,
                         const char *file, int line) {
  ck_assert_msg(f != NULL, "%s:%d: NULL future", file, line);
  sfx_wait(f);
  ck_assert_msg(eddy_future_error(f) == code,
                "%s:%d: expected %s, got %s %s (cause %s)", file, line,
                eddy_err_name(code), state_name(eddy_future_state(f)),
                eddy_err_name(eddy_future_error(f)),
                eddy_err_name(eddy_future_cause(f)));
  if (cause != SFX_ANY)
    ck_assert_msg(eddy_future_cause(f) == cause,
                  "%s:%d: expected cause %s, got %s", file, line,
                  eddy_err_name(cause), eddy_err_name(eddy_future_cause(f)));
  eddy_future_unref(f);
}

char *sfx_read_bytes(eddy_stream_t *s, size_t n) {
  eddy_future_t *f = eddy_stream_read_bytes(s, n, 0);
  expect_resolved(f, __FILE__, __LINE__);
  size_t size = 0;
  char *data = eddy_future_take(f, &size);
  ck_assert_uint_eq(size, n);
  if (n > 0)
    ck_assert(data != NULL);
  eddy_future_unref(f);
  if (data == NULL) {
    data = malloc(1);
    ck_assert(data != NULL);
    data[0] = '\0';
  }
  return data;
}

void sfx_write_ok(eddy_stream_t *s, const void *data, size_t len) {
  sfx_expect_ok(eddy_stream_write(s, data, len));
}

void sfx_write_nowait(eddy_stream_t *s, const void *data, size_t len) {
  eddy_future_t *f = eddy_stream_write(s, data, len);
  ck_assert(f != NULL);
  ck_assert_msg(eddy_future_state(f) != EDDY_FUTURE_REJECTED,
                "write rejected at once: %s", eddy_err_name(eddy_future_error(f)));
  eddy_future_unref(f);
}

/* ------------------------------------------------------------------------ */
/* Patterns                                                                  */
/* ------------------------------------------------------------------------ */

#define PATTERN_TABLE (65536 + 251)
static unsigned char pattern_table[PATTERN_TABLE];
static int pattern_ready;

static void pattern_init(void) {
  if (pattern_ready)
    return;
  for (size_t i = 0; i < PATTERN_TABLE; i++)
    pattern_table[i] = sfx_pattern_byte(i);
  pattern_ready = 1;
}

void sfx_pattern_fill(void *buf, size_t len, size_t off) {
  pattern_init();
  unsigned char *p = buf;
  while (len > 0) {
    size_t n = len < 65536 ? len : 65536;
    memcpy(p, pattern_table + off % 251u, n);
    p += n;
    off += n;
    len -= n;
  }
}

int sfx_pattern_check(const void *buf, size_t len, size_t off) {
  pattern_init();
  const unsigned char *p = buf;
  while (len > 0) {
    size_t n = len < 65536 ? len : 65536;
    if (memcmp(p, pattern_table + off % 251u, n) != 0)
      return 0;
    p += n;
    off += n;
    len -= n;
  }
  return 1;
}

unsigned sfx_rand(unsigned *state) {
  unsigned x = *state ? *state : 2463534242u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}
