/* SPDX-License-Identifier: MIT */
/*
 * tests/tcp_fixtures.c - fixtures for the TCP suites (see tcp_fixtures.h).
 */
#include "tcp_fixtures.h"
#include "test_backend.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

eddy_loop_t *tfx_loop;

#define LOG_MAX 256
static struct {
  int count;
  eddy_log_level_t level[LOG_MAX];
  char *message[LOG_MAX];
} logs;
static int fd_baseline;

int tfx_fd_count(void)
{
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

static void capture(eddy_log_level_t level, const char *message, void *arg)
{
  if (getenv("EDDY_TEST_VERBOSE") != NULL)
    fprintf(stderr, "log %d: %s\n", (int)level, message);
  if (logs.count < LOG_MAX) {
    logs.level[logs.count] = level;
    logs.message[logs.count] = strdup(message);
    logs.count++;
  }
}

void tfx_setup(void)
{
  fd_baseline = tfx_fd_count();
  tfx_loop = eddy_loop_new();
  ck_assert_ptr_nonnull(tfx_loop);
  eddy_loop_set_logger(tfx_loop, capture, NULL);
}

void tfx_teardown(void)
{
  tfx_run_for(0.01); /* let queued callbacks release what they hold */
  eddy_loop_free(tfx_loop);
  tfx_loop = NULL;
  for (int i = 0; i < logs.count; i++)
    free(logs.message[i]);
  logs.count = 0;
  ck_assert_int_eq(tfx_fd_count(), fd_baseline);
}

TCase *tfx_tcase(const char *name)
{
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, tfx_setup, tfx_teardown);
  tcase_set_timeout(tc, 60);
  return tc;
}

int tfx_run(Suite *s)
{
  return test_run_suite(s); /* on the backend the program was built for */
}

int tfx_log_count(eddy_log_level_t level)
{
  int n = 0;
  for (int i = 0; i < logs.count; i++)
    n += logs.level[i] >= level;
  return n;
}

int tfx_log_contains(eddy_log_level_t level, const char *needle)
{
  for (int i = 0; i < logs.count; i++)
    if (logs.level[i] >= level && strstr(logs.message[i], needle) != NULL)
      return 1;
  return 0;
}

void tfx_wait(eddy_future_t *f)
{
  ck_assert_ptr_nonnull(f);
  int rc = eddy_loop_run_until(tfx_loop, f, TFX_WAIT);
  ck_assert_msg(rc == 0, "future did not settle: %s", eddy_strerror(rc));
}

void tfx_run_for(double seconds)
{
  eddy_future_t *f = eddy_sleep(tfx_loop, seconds);
  tfx_wait(f);
  eddy_future_unref(f);
}

void tfx_run_until(const int *flag, int value)
{
  for (int i = 0; *flag < value; i++) {
    ck_assert_msg(i < TFX_WAIT * 200, "condition not met in time");
    tfx_run_for(0.005);
  }
}

eddy_stream_t *tfx_take_stream(eddy_future_t *f)
{
  tfx_wait(f);
  ck_assert_msg(eddy_future_error(f) == 0, "accept failed: %s",
                eddy_future_message(f));
  eddy_stream_t *s = eddy_future_take(f, NULL);
  ck_assert_ptr_nonnull(s);
  eddy_future_unref(f);
  return s;
}

int tfx_local_port(int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int tfx_server_port(eddy_tcp_server_t *srv)
{
  int fd;
  ck_assert_uint_ge(eddy_tcp_server_sockets(srv, &fd, 1), 1);
  return tfx_local_port(fd);
}

int tfx_socket(int family)
{
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

int tfx_connect_fd(int fd, int family, const char *host, int port)
{
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    ck_assert_int_eq(inet_pton(AF_INET6, host, &a->sin6_addr), 1);
    len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    ck_assert_int_eq(inet_pton(AF_INET, host, &a->sin_addr), 1);
    len = sizeof *a;
  }
  return connect(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : -errno;
}

int tfx_connect_to(int family, const char *host, int port)
{
  int fd = tfx_socket(family);
  int rc = tfx_connect_fd(fd, family, host, port);
  ck_assert_msg(rc == 0, "connect to %s:%d: %s", host, port, strerror(-rc));
  return fd;
}

int tfx_connect(int port)
{
  return tfx_connect_to(AF_INET, "127.0.0.1", port);
}

void tfx_send(int fd, const char *s)
{
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
    ck_assert_msg(n > 0, "send: %s", strerror(errno));
    s += n;
    len -= (size_t)n;
  }
}

long tfx_recv_all(int fd, char *buf, size_t size)
{
  size_t got = 0;
  while (got + 1 < size) {
    ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && got == 0) {
      buf[0] = '\0';
      return -errno;
    }
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  return (long)got;
}

void tfx_recv_exact(int fd, char *buf, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, n - got, 0);
    ck_assert_msg(r > 0, "recv: %s", r == 0 ? "EOF" : strerror(errno));
    got += (size_t)r;
  }
}

int tfx_have_ipv6(void)
{
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}
