/* SPDX-License-Identifier: MIT */
/*
 * tests/test_netutil.c - eddy_bind_sockets, eddy_bind_unix_socket,
 * eddy_is_valid_ip (Tornado's netutil_test 94-96, plus tornado.md §2.6).
 * eddy_format_address is the stream layer's: tests/test_stream.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tcp_fixtures.h"

static int family_of(int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  return ss.ss_family;
}

static void close_all(const int *fds, int n)
{
  for (int i = 0; i < n; i++)
    close(fds[i]);
}

/* Test 95: port 0 gives every family the same port. */
START_TEST(test_same_port_allocation)
{
  int fds[8];
  int n = eddy_bind_sockets(0, "localhost", AF_UNSPEC, 0, 0, fds, 8);
  ck_assert_int_ge(n, 1);
  int port = tfx_local_port(fds[0]);
  ck_assert_int_gt(port, 0);
  for (int i = 1; i < n; i++)
    ck_assert_int_eq(tfx_local_port(fds[i]), port);
  ck_assert_int_eq(family_of(fds[0]), AF_INET); /* AF_INET sorts first */
  for (int i = 0; i < n; i++) {
    int fl = fcntl(fds[i], F_GETFL), fdfl = fcntl(fds[i], F_GETFD);
    ck_assert(fl & O_NONBLOCK);
    ck_assert(fdfl & FD_CLOEXEC);
  }
  close_all(fds, n);
}
END_TEST

/* Every interface: 0.0.0.0 and, where there is IPv6, a V6ONLY [::]. */
START_TEST(test_dual_stack_wildcard)
{
  int fds[8];
  int n = eddy_bind_sockets(0, NULL, AF_UNSPEC, 0, 0, fds, 8);
  ck_assert_int_ge(n, 1);
  int port = tfx_local_port(fds[0]);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(tfx_local_port(fds[i]), port);
    if (family_of(fds[i]) == AF_INET6) {
      int v6only = 0;
      socklen_t len = sizeof v6only;
      ck_assert_int_eq(getsockopt(fds[i], IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
      ck_assert_int_eq(v6only, 1);
    }
  }
  /* Both families reach the server on that one port. */
  int c = tfx_connect(port);
  close(c);
  if (n > 1 && tfx_have_ipv6()) {
    c = tfx_connect_to(AF_INET6, "::1", port);
    close(c);
  }
  close_all(fds, n);
}
END_TEST

/* Test 96: a port held by a reuse-port socket can be bound again with it. */
START_TEST(test_reuse_port)
{
  int holder[1];
  ck_assert_int_eq(eddy_bind_sockets(0, "127.0.0.1", AF_INET, 0,
                                     EDDY_BIND_REUSEPORT, holder, 1), 1);
  int port = tfx_local_port(holder[0]);
  int fds[4];
  ck_assert_int_eq(eddy_bind_sockets(port, "127.0.0.1", AF_UNSPEC, 0,
                                     EDDY_BIND_REUSEPORT, fds, 4), 1);
  ck_assert_int_eq(tfx_local_port(fds[0]), port);
  /* Without the flag the port is taken, and nothing leaks. */
  ck_assert_int_eq(eddy_bind_sockets(port, "127.0.0.1", AF_UNSPEC, 0, 0, fds + 1, 3),
                   -EADDRINUSE);
  close(fds[0]);
  close(holder[0]);
}
END_TEST

/* Q11 fixed: a failure closes the sockets already made in the call. */
START_TEST(test_all_or_nothing)
{
  if (!tfx_have_ipv6())
    return; /* needs two families */
  int fds[8];
  int before = tfx_fd_count();
  /* Hold the IPv6 port so that the second bind fails. */
  int v6[1];
  ck_assert_int_eq(eddy_bind_sockets(0, "::1", AF_INET6, 0, 0, v6, 1), 1);
  int port = tfx_local_port(v6[0]);
  int n = eddy_bind_sockets(port, "localhost", AF_UNSPEC, 0, 0, fds, 8);
  if (n > 0) { /* "localhost" is IPv4 only here: nothing to show */
    close_all(fds, n);
  } else {
    ck_assert_int_eq(n, -EADDRINUSE);
  }
  close(v6[0]);
  ck_assert_int_eq(tfx_fd_count(), before);
}
END_TEST

START_TEST(test_bind_errors)
{
  int fds[1];
  ck_assert_int_eq(eddy_bind_sockets(-1, NULL, AF_UNSPEC, 0, 0, fds, 1), -EINVAL);
  ck_assert_int_eq(eddy_bind_sockets(65536, NULL, AF_UNSPEC, 0, 0, fds, 1), -EINVAL);
  ck_assert_int_eq(eddy_bind_sockets(0, NULL, AF_UNIX, 0, 0, fds, 1), -EINVAL);
  ck_assert_int_eq(eddy_bind_sockets(0, NULL, AF_UNSPEC, 0, 0x80, fds, 1), -EINVAL);
  ck_assert_int_eq(eddy_bind_sockets(0, NULL, AF_UNSPEC, 0, 0, NULL, 1), -EINVAL);
  ck_assert_int_eq(eddy_bind_sockets(0, NULL, AF_UNSPEC, 0, 0, fds, 0), -EINVAL);
  int rc = eddy_bind_sockets(0, "no-such-host.invalid", AF_UNSPEC, 0, 0, fds, 1);
  ck_assert_msg(rc == EDDY_ENONAME || rc == EDDY_ERESOLVE, "rc %d", rc);
  rc = eddy_bind_sockets(0, "192.0.2.1", AF_UNSPEC, 0, 0, fds, 1);
  ck_assert_int_eq(rc, -EADDRNOTAVAIL); /* not an address of this host */
  if (tfx_have_ipv6()) /* two sockets do not fit in one slot */
    ck_assert_int_eq(eddy_bind_sockets(0, NULL, AF_UNSPEC, 0, 0, fds, 1), -ENOSPC);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* UNIX sockets                                                              */
/* ------------------------------------------------------------------------ */

static char *temp_path(const char *name)
{
  static char path[108];
  snprintf(path, sizeof path, "/tmp/eddy-test-%d-%s", (int)getpid(), name);
  unlink(path);
  return path;
}

static void connect_unix(const char *path)
{
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  socklen_t len;
  if (path[0] == '@') {
    memcpy(sun.sun_path + 1, path + 1, strlen(path) - 1);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
  } else {
    strcpy(sun.sun_path, path);
    len = sizeof sun;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, len), 0);
  close(fd);
}

START_TEST(test_unix_socket_mode_and_stale)
{
  char *path = temp_path("sock");
  int fd = eddy_bind_unix_socket(path, 0600, 0);
  ck_assert_int_ge(fd, 0);
  struct stat st;
  ck_assert_int_eq(lstat(path, &st), 0);
  ck_assert(S_ISSOCK(st.st_mode));
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  connect_unix(path);
  /* Someone listens: the file is not stale and stays. */
  ck_assert_int_eq(eddy_bind_unix_socket(path, 0600, 0), -EADDRINUSE);
  close(fd);
  /* Left behind by a dead server: replaced, with the new mode. */
  fd = eddy_bind_unix_socket(path, 0644, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(lstat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644);
  connect_unix(path);
  close(fd);
  unlink(path);
}
END_TEST

START_TEST(test_unix_socket_refuses_regular_file)
{
  char *path = temp_path("file");
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("keep me", f);
  fclose(f);
  ck_assert_int_eq(eddy_bind_unix_socket(path, 0600, 0), -EEXIST);
  struct stat st;
  ck_assert_int_eq(lstat(path, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
  ck_assert_int_eq(st.st_size, 7);
  unlink(path);
  ck_assert_int_eq(eddy_bind_unix_socket(NULL, 0600, 0), -EINVAL);
  ck_assert_int_eq(eddy_bind_unix_socket("", 0600, 0), -EINVAL);
  char longpath[200];
  memset(longpath, 'x', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = '\0';
  ck_assert_int_eq(eddy_bind_unix_socket(longpath, 0600, 0), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_unix_socket_abstract)
{
  char name[64];
  snprintf(name, sizeof name, "@eddy-test-%d", (int)getpid());
  int fd = eddy_bind_unix_socket(name, 0600, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(access(name, F_OK), -1); /* no file, no '@' file */
  connect_unix(name);
  close(fd);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* is_valid_ip (test 94)                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(test_is_valid_ip)
{
  static const char *valid[] = {"127.0.0.1", "4.4.4.4", "::1",
                                "2620:0:1cfe:face:b00c::3", "fe80::1%lo",
                                "::ffff:1.2.3.4"};
  static const char *invalid[] = {"www.google.com", "localhost", "4.4.4.4<",
                                  " 127.0.0.1", "127.0.0.1 ", "", " ", "\n",
                                  "1.2.3", "::1%", "fe80::1% lo", "1.2.3.4.5",
                                  "256.1.1.1"};
  for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
    ck_assert_msg(eddy_is_valid_ip(valid[i]), "%s should be valid", valid[i]);
  for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
    ck_assert_msg(!eddy_is_valid_ip(invalid[i]), "'%s' should be invalid",
                  invalid[i]);
  ck_assert(!eddy_is_valid_ip(NULL));
  char hundred[101];
  memset(hundred, 'a', 100);
  hundred[100] = '\0';
  ck_assert(!eddy_is_valid_ip(hundred));
  char with_nul[] = "1.2.3.4\0junk"; /* C sees "1.2.3.4": the NUL ends it */
  ck_assert(eddy_is_valid_ip(with_nul));
}
END_TEST

int main(void)
{
  Suite *s = suite_create("netutil");
  TCase *tc = tfx_tcase("bind_sockets");
  tcase_add_test(tc, test_same_port_allocation);
  tcase_add_test(tc, test_dual_stack_wildcard);
  tcase_add_test(tc, test_reuse_port);
  tcase_add_test(tc, test_all_or_nothing);
  tcase_add_test(tc, test_bind_errors);
  suite_add_tcase(s, tc);
  tc = tfx_tcase("bind_unix_socket");
  tcase_add_test(tc, test_unix_socket_mode_and_stale);
  tcase_add_test(tc, test_unix_socket_refuses_regular_file);
  tcase_add_test(tc, test_unix_socket_abstract);
  suite_add_tcase(s, tc);
  tc = tfx_tcase("is_valid_ip");
  tcase_add_test(tc, test_is_valid_ip);
  suite_add_tcase(s, tc);
  return tfx_run(s);
}
