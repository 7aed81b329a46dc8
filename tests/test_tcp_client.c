/* SPDX-License-Identifier: MIT */
/*
 * eddy_tcp_connect() and the resolver against real loopback listeners
 * (tornado.md §2.4 tests 60-71, §2.5 tests 90-92, plus Happy Eyeballs,
 * timeouts, cancellation and bad input). Names never reach DNS: "localhost"
 * goes through overrides or a custom resolver, the default resolver only
 * sees IP literals (and "localhost" in test 90, which /etc/hosts answers).
 * Nothing connects anywhere but 127.0.0.1 and ::1. Every test checks that
 * the process has exactly the fds it started with.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eddy.h"
#include "tests/test_backend.h"

static eddy_loop_t *loop;
static int baseline_fds;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static int fd_count(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the DIR's own fd */
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void spin(void)
{
  for (int i = 0; i < 3; i++) {
    eddy_future_t *f = eddy_sleep(loop, 0);
    ck_assert_int_eq(eddy_loop_run_until(loop, f, 5.0), 0);
    eddy_future_unref(f);
  }
}

static void set_loopback(struct sockaddr_storage *ss, socklen_t *len,
                         int family, int port)
{
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof(*sin);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    sin6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*sin6);
  }
}

static int sock_port(int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);

  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return -1;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A socket bound to the family's loopback at *port (0: any); with
 * backlog >= 0 it also listens. -1 if the bind fails. */
static int loopback_socket(int family, int *port, int backlog)
{
  struct sockaddr_storage ss;
  socklen_t len;
  int on = 1, fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

  ck_assert_int_ge(fd, 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
  set_loopback(&ss, &len, family, *port);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
      (backlog >= 0 && listen(fd, backlog) < 0)) {
    close(fd);
    return -1;
  }
  *port = sock_port(fd);
  return fd;
}

static int listener(int family, int *port)
{
  int fd;

  *port = 0;
  fd = loopback_socket(family, port, 16);
  ck_assert_int_ge(fd, 0);
  return fd;
}

static int have_ipv6(void)
{
  int port = 0, fd = loopback_socket(AF_INET6, &port, -1);

  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

#define SKIP_WITHOUT_IPV6()                                   \
  do {                                                        \
    if (!have_ipv6()) {                                       \
      fprintf(stderr, "%s: skipped, no ::1\n", __func__);     \
      return;                                                 \
    }                                                         \
  } while (0)

/* 127.0.0.1 and ::1 listening on one port, like an AF_UNSPEC server. */
static void dual_listener(int fds[2], int *port)
{
  for (int tries = 0; tries < 20; tries++) {
    fds[0] = listener(AF_INET, port);
    fds[1] = loopback_socket(AF_INET6, port, 16);
    if (fds[1] >= 0)
      return;
    close(fds[0]);
  }
  ck_abort_msg("no port free on both 127.0.0.1 and ::1");
}

/* A port on which nothing listens: bound, so nobody else takes it. */
static int refusing_socket(int family, int *port)
{
  int fd;

  *port = 0;
  fd = loopback_socket(family, port, -1);
  ck_assert_int_ge(fd, 0);
  return fd;
}

/* A listener whose accept queue is full, so SYNs to it are dropped and a
 * connect to it never completes. *fill receives the queued clients.
 * Returns -1 if this system does not stall that way. */
static int stalled_listener(int *port, int fill[2])
{
  struct sockaddr_storage ss;
  socklen_t len;
  struct pollfd p;
  int fd, probe;

  *port = 0;
  fd = loopback_socket(AF_INET, port, 0);
  ck_assert_int_ge(fd, 0);
  set_loopback(&ss, &len, AF_INET, *port);
  for (int i = 0; i < 2; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    connect(fill[i], (struct sockaddr *)&ss, len);
  }
  p.fd = fill[0];
  p.events = POLLOUT;
  poll(&p, 1, 1000);
  /* Check that a further connect really hangs. */
  probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  connect(probe, (struct sockaddr *)&ss, len);
  p.fd = probe;
  if (poll(&p, 1, 100) != 0) {
    close(probe);
    close(fill[0]);
    close(fill[1]);
    close(fd);
    return -1;
  }
  close(probe);
  return fd;
}

static void close_stalled(int fd, int fill[2])
{
  close(fill[0]);
  close(fill[1]);
  close(fd);
}

/* Runs the loop until f settles (at most 10 s). */
static void wait_for(eddy_future_t *f)
{
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10.0), 0);
}

/* Connects and returns the stream (the caller's reference). */
static eddy_stream_t *connect_ok(const char *host, int port,
                                 const eddy_tcp_connect_options_t *opts)
{
  eddy_future_t *f = eddy_tcp_connect(loop, host, port, opts);
  eddy_stream_t *s;

  wait_for(f);
  ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED,
                "connect %s:%d: %s", host, port,
                eddy_future_message(f) ? eddy_future_message(f) : "?");
  s = eddy_stream_ref(eddy_future_value(f));
  ck_assert_ptr_nonnull(s);
  eddy_future_unref(f);
  return s;
}

/* Connects, expecting a failure; returns the future (settled). */
static eddy_future_t *connect_fails(const char *host, int port,
                                    const eddy_tcp_connect_options_t *opts)
{
  eddy_future_t *f = eddy_tcp_connect(loop, host, port, opts);

  wait_for(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_REJECTED);
  return f;
}

/* The client writes "hello"; one of the listeners accepts it and reads it
 * (Tornado's TCPClientTest.do_test_connect). Returns the accepting fd's
 * family. */
static int check_hello(eddy_stream_t *s, const int *lfds, int nl)
{
  struct pollfd p[2];
  eddy_future_t *w;
  char buf[16];
  int c = -1, family = AF_UNSPEC;
  ssize_t n;

  w = eddy_stream_write(s, "hello", 5);
  wait_for(w);
  ck_assert_int_eq(eddy_future_state(w), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(w);
  for (int i = 0; i < nl; i++) {
    p[i].fd = lfds[i];
    p[i].events = POLLIN;
  }
  ck_assert_int_gt(poll(p, (nfds_t)nl, 5000), 0);
  for (int i = 0; i < nl && c < 0; i++) {
    if (p[i].revents & POLLIN) {
      struct sockaddr_storage ss;
      socklen_t len = sizeof(ss);
      c = accept(lfds[i], (struct sockaddr *)&ss, &len);
      family = ss.ss_family;
    }
  }
  ck_assert_int_ge(c, 0);
  p[0].fd = c;
  p[0].events = POLLIN;
  ck_assert_int_gt(poll(p, 1, 5000), 0);
  n = recv(c, buf, sizeof(buf), 0);
  ck_assert_int_eq(n, 5);
  ck_assert(memcmp(buf, "hello", 5) == 0);
  close(c);
  return family;
}

static void opts_init(eddy_tcp_connect_options_t *o, int family,
                      eddy_resolver_t *r)
{
  eddy_tcp_connect_options_init(o);
  o->family = family;
  o->resolver = r;
}

/* A default resolver that maps "localhost" to the loopback literals, per
 * family, so no lookup ever leaves the process. */
static eddy_resolver_t *localhost_overrides(void)
{
  eddy_resolver_t *r = eddy_resolver_new(loop);

  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(eddy_resolver_add_override(r, "localhost", -1, AF_INET,
                                              "127.0.0.1", -1), 0);
  ck_assert_int_eq(eddy_resolver_add_override(r, "localhost", -1, AF_INET6,
                                              "::1", -1), 0);
  ck_assert_int_eq(eddy_resolver_add_override(r, "localhost", -1, AF_UNSPEC,
                                              "127.0.0.1", -1), 0);
  return r;
}

/* A custom resolver answering with a fixed list (ports included), with no
 * answer at all (never), or with a rejection. */
struct fixed {
  eddy_address_t addrs[4];
  size_t n;
  int never;           /* keep the future pending (kept in held) */
  int error;           /* reject with this */
  eddy_future_t *held; /* a pending answer, ours */
  int calls;
};

static void fixed_add(struct fixed *fx, int family, int port)
{
  eddy_address_t *a = &fx->addrs[fx->n++];

  memset(a, 0, sizeof(*a));
  a->family = family;
  set_loopback(&a->addr, &a->len, family, port);
}

static eddy_future_t *fixed_answer(struct fixed *fx)
{
  eddy_address_t *copy = malloc((fx->n ? fx->n : 1) * sizeof(*copy));
  eddy_future_t *f = eddy_future_new(loop);

  ck_assert_ptr_nonnull(copy);
  memcpy(copy, fx->addrs, fx->n * sizeof(*copy));
  eddy_future_resolve_bytes(f, copy, fx->n, free);
  return f;
}

static eddy_future_t *fixed_resolve(void *arg, eddy_loop_t *l,
                                    const char *host, int port, int family)
{
  struct fixed *fx = arg;

  (void)host;
  (void)port;
  (void)family;
  fx->calls++;
  if (fx->never) {
    fx->held = eddy_future_new(l);
    return eddy_future_ref(fx->held);
  }
  if (fx->error)
    return eddy_future_rejected(l, fx->error, "no such host: %s", host);
  return fixed_answer(fx);
}

static void fixed_release(struct fixed *fx)
{
  eddy_future_unref(fx->held);
  fx->held = NULL;
}

static void setup(void)
{
  loop = eddy_loop_new();
  ck_assert_ptr_nonnull(loop);
  baseline_fds = fd_count();
}

static void teardown(void)
{
  spin();
  ck_assert_int_eq(fd_count(), baseline_fds);
  eddy_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* TCPClientTest (60-71)                                                     */
/* ------------------------------------------------------------------------ */

/* Connects to host through a listener of listen_family (AF_UNSPEC: both
 * families on one port) and checks that "hello" arrives. */
static void do_test_connect(int listen_family, const char *host,
                            int client_family, int expect_family)
{
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r = localhost_overrides();
  eddy_stream_t *s;
  int fds[2], nl = 1, port;

  if (listen_family == AF_UNSPEC) {
    dual_listener(fds, &port);
    nl = 2;
  } else {
    fds[0] = listener(listen_family, &port);
  }
  opts_init(&o, client_family, r);
  s = connect_ok(host, port, &o);
  ck_assert_int_eq(check_hello(s, fds, nl), expect_family);
  eddy_stream_unref(s);
  eddy_resolver_free(r);
  for (int i = 0; i < nl; i++)
    close(fds[i]);
}

START_TEST(test_connect_ipv4_ipv4) /* 60 */
{
  do_test_connect(AF_INET, "127.0.0.1", AF_UNSPEC, AF_INET);
}
END_TEST

START_TEST(test_connect_ipv4_dual) /* 61 */
{
  do_test_connect(AF_INET, "localhost", AF_INET, AF_INET);
}
END_TEST

START_TEST(test_connect_ipv6_ipv6) /* 62 */
{
  SKIP_WITHOUT_IPV6();
  do_test_connect(AF_INET6, "::1", AF_UNSPEC, AF_INET6);
}
END_TEST

START_TEST(test_connect_ipv6_dual) /* 63 */
{
  SKIP_WITHOUT_IPV6();
  do_test_connect(AF_INET6, "localhost", AF_INET6, AF_INET6);
}
END_TEST

START_TEST(test_connect_unspec_ipv4) /* 64 */
{
  SKIP_WITHOUT_IPV6();
  do_test_connect(AF_UNSPEC, "127.0.0.1", AF_UNSPEC, AF_INET);
}
END_TEST

START_TEST(test_connect_unspec_ipv6) /* 65 */
{
  SKIP_WITHOUT_IPV6();
  do_test_connect(AF_UNSPEC, "::1", AF_UNSPEC, AF_INET6);
}
END_TEST

/* 66: "localhost" with both families, through a custom resolver that
 * answers ::1 first: the primary family wins. */
START_TEST(test_connect_unspec_dual)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_stream_t *s;
  int fds[2], port;

  SKIP_WITHOUT_IPV6();
  dual_listener(fds, &port);
  fixed_add(&fx, AF_INET6, port);
  fixed_add(&fx, AF_INET, port);
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  s = connect_ok("localhost", port, &o);
  ck_assert_int_eq(check_hello(s, fds, 2), AF_INET6);
  eddy_stream_unref(s);
  eddy_resolver_free(r);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(test_refused_ipv4) /* 67 */
{
  int port, fd = refusing_socket(AF_INET, &port);
  eddy_future_t *f = connect_fails("127.0.0.1", port, NULL);

  ck_assert_int_eq(eddy_future_error(f), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(f), -ECONNREFUSED);
  eddy_future_unref(f);
  close(fd);
}
END_TEST

static int read_sysctl(const char *path)
{
  FILE *fp = fopen(path, "r");
  int v = -1;

  if (fp != NULL) {
    if (fscanf(fp, "%d", &v) != 1)
      v = -1;
    fclose(fp);
  }
  return v;
}

/* 68: 192.0.2.1 (TEST-NET-1) is not on this machine, so the bind fails
 * locally; nothing is ever sent anywhere. */
START_TEST(test_source_ip_fail)
{
  eddy_tcp_connect_options_t o;
  eddy_future_t *f;
  int port, fd;

  if (read_sysctl("/proc/sys/net/ipv4/ip_nonlocal_bind") == 1) {
    fprintf(stderr, "%s: skipped, ip_nonlocal_bind is on\n", __func__);
    return;
  }
  fd = listener(AF_INET, &port);
  eddy_tcp_connect_options_init(&o);
  o.source_ip = "192.0.2.1";
  f = connect_fails("127.0.0.1", port, &o);
  ck_assert_int_eq(eddy_future_error(f), -EADDRNOTAVAIL);
  eddy_future_unref(f);
  close(fd);
}
END_TEST

START_TEST(test_source_ip_success) /* 69 */
{
  eddy_tcp_connect_options_t o;
  struct sockaddr_in sin;
  socklen_t len = sizeof(sin);
  eddy_stream_t *s;
  int port, fd = listener(AF_INET, &port);

  eddy_tcp_connect_options_init(&o);
  o.source_ip = "127.0.0.1";
  s = connect_ok("127.0.0.1", port, &o);
  ck_assert_int_eq(getsockname(eddy_stream_fd(s), (struct sockaddr *)&sin,
                               &len), 0);
  ck_assert_uint_eq(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
  check_hello(s, &fd, 1);
  eddy_stream_unref(s);
  close(fd);
}
END_TEST

START_TEST(test_source_port_fail) /* 70 */
{
  eddy_tcp_connect_options_t o;
  eddy_future_t *f;
  int port, fd;

  if (geteuid() == 0 ||
      read_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start") <= 1) {
    fprintf(stderr, "%s: skipped, port 1 can be bound here\n", __func__);
    return;
  }
  fd = listener(AF_INET, &port);
  eddy_tcp_connect_options_init(&o);
  o.source_port = 1;
  f = connect_fails("127.0.0.1", port, &o);
  ck_assert_int_eq(eddy_future_error(f), -EACCES);
  eddy_future_unref(f);
  close(fd);
}
END_TEST

/* source_port alone binds the wildcard address with that port (quirk Q7
 * fixed), in both families. */
static void do_test_source_port(int family, const char *host)
{
  eddy_tcp_connect_options_t o;
  eddy_stream_t *s;
  int port, src = 0, fd = listener(family, &port);
  int probe = loopback_socket(family, &src, -1); /* find a free port */

  ck_assert_int_ge(probe, 0);
  close(probe);
  eddy_tcp_connect_options_init(&o);
  o.source_port = src;
  s = connect_ok(host, port, &o);
  ck_assert_int_eq(sock_port(eddy_stream_fd(s)), src);
  check_hello(s, &fd, 1);
  eddy_stream_unref(s);
  close(fd);
}

START_TEST(test_source_port_ipv4)
{
  do_test_source_port(AF_INET, "127.0.0.1");
}
END_TEST

START_TEST(test_source_port_ipv6)
{
  SKIP_WITHOUT_IPV6();
  do_test_source_port(AF_INET6, "::1");
}
END_TEST

/* 71: a resolver that never answers, and a 50 ms timeout. */
START_TEST(test_connect_timeout)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_future_t *f;
  double t0 = now();

  fx.never = 1;
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  o.timeout = 0.05;
  f = connect_fails("example.invalid", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ETIMEOUT);
  ck_assert(now() - t0 < 2.0);
  /* The lookup was cancelled, so its late answer is dropped. */
  ck_assert_int_eq(eddy_future_state(fx.held), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(f);
  fixed_release(&fx);
  eddy_resolver_free(r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Happy Eyeballs, timeouts and cancellation against real sockets            */
/* ------------------------------------------------------------------------ */

/* Two addresses for one name: first an IPv4 one that never answers (a
 * listener with a full accept queue), then a listener of @family. */
struct stalled_pair {
  struct fixed fx;
  eddy_resolver_t *r;
  int stalled, fill[2], fd;
};

/* @return 0, or -1 (the test is skipped) where SYNs to a full queue are
 * not dropped, so nothing stalls. */
static int stalled_pair_open(struct stalled_pair *p, int family, const char *test)
{
  int stall_port, port;

  memset(p, 0, sizeof(*p));
  p->stalled = stalled_listener(&stall_port, p->fill);
  if (p->stalled < 0) {
    fprintf(stderr, "%s: skipped, SYNs to a full queue are not dropped\n", test);
    return -1;
  }
  p->fd = listener(family, &port);
  fixed_add(&p->fx, AF_INET, stall_port);
  fixed_add(&p->fx, family, port);
  p->r = eddy_resolver_new_custom(loop, fixed_resolve, &p->fx);
  ck_assert_ptr_nonnull(p->r);
  return 0;
}

/* Connects past the stalled address: after at least @min_s seconds (the
 * delay that starts the other attempt), to the listener of @family. */
static void connect_past_stall(struct stalled_pair *p, const eddy_tcp_connect_options_t *o,
                               double min_s, int family)
{
  double t0 = now(), dt;
  eddy_stream_t *s = connect_ok("stall.test", 80, o);

  dt = now() - t0;
  ck_assert_msg(dt >= min_s && dt < 3.0, "connected after %.3f s", dt);
  ck_assert_int_eq(check_hello(s, &p->fd, 1), family);
  eddy_stream_unref(s);
}

static void stalled_pair_close(struct stalled_pair *p)
{
  eddy_resolver_free(p->r);
  close(p->fd);
  close_stalled(p->stalled, p->fill);
}

/* The first address (IPv4) never answers; after the fallback delay the
 * IPv6 address is tried and wins; the stalled attempt is closed. */
START_TEST(test_fallback_to_second_family)
{
  struct stalled_pair p;
  eddy_tcp_connect_options_t o;

  SKIP_WITHOUT_IPV6();
  if (stalled_pair_open(&p, AF_INET6, __func__) < 0)
    return;
  opts_init(&o, AF_UNSPEC, p.r);
  connect_past_stall(&p, &o, 0.25, AF_INET6);
  stalled_pair_close(&p);
}
END_TEST

/* An early failure starts the other family at once, without waiting for
 * the fallback delay. */
START_TEST(test_early_failure_skips_fallback)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_stream_t *s;
  int port, refused_port, fd, refused;
  double t0;

  SKIP_WITHOUT_IPV6();
  refused = refusing_socket(AF_INET, &refused_port);
  fd = listener(AF_INET6, &port);
  fixed_add(&fx, AF_INET, refused_port);
  fixed_add(&fx, AF_INET6, port);
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  o.fallback_delay = 5;
  t0 = now();
  s = connect_ok("dual.test", 80, &o);
  ck_assert(now() - t0 < 2.0);
  ck_assert_int_eq(check_hello(s, &fd, 1), AF_INET6);
  eddy_stream_unref(s);
  eddy_resolver_free(r);
  close(fd);
  close(refused);
}
END_TEST

/* Within one family the next address is tried once the first fails. */
START_TEST(test_same_family_next_address)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_stream_t *s;
  int port, refused_port, fd, refused;

  refused = refusing_socket(AF_INET, &refused_port);
  fd = listener(AF_INET, &port);
  fixed_add(&fx, AF_INET, refused_port);
  fixed_add(&fx, AF_INET, port);
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  s = connect_ok("two.test", 80, &o);
  check_hello(s, &fd, 1);
  eddy_stream_unref(s);
  eddy_resolver_free(r);
  close(fd);
  close(refused);
}
END_TEST

/* RFC 8305's attempt delay: the first IPv4 address never answers, so the
 * second one is tried after attempt_delay (0.25 s) instead of waiting for
 * the first to fail, and wins. With a negative delay (Tornado's rule) the
 * connect waits on the first address until its timeout. */
START_TEST(test_attempt_delay_same_family)
{
  struct stalled_pair p;
  eddy_tcp_connect_options_t o;
  eddy_future_t *f;

  if (stalled_pair_open(&p, AF_INET, __func__) < 0)
    return;
  opts_init(&o, AF_UNSPEC, p.r);
  connect_past_stall(&p, &o, 0.2, AF_INET);

  o.attempt_delay = -1;
  o.timeout = 0.5;
  f = connect_fails("stall.test", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ETIMEOUT);
  eddy_future_unref(f);

  o.attempt_delay = NAN;
  f = connect_fails("stall.test", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  stalled_pair_close(&p);
}
END_TEST

/* Every address refused: the last attempt's error. */
START_TEST(test_all_refused)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_future_t *f;
  int p1, p2, f1, f2;

  f1 = refusing_socket(AF_INET, &p1);
  f2 = refusing_socket(AF_INET, &p2);
  fixed_add(&fx, AF_INET, p1);
  fixed_add(&fx, AF_INET, p2);
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  f = connect_fails("two.test", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(f), -ECONNREFUSED);
  eddy_future_unref(f);
  eddy_resolver_free(r);
  close(f1);
  close(f2);
}
END_TEST

/* A connect that never completes, and a timeout: every attempt closed. */
START_TEST(test_stalled_connect_timeout)
{
  eddy_tcp_connect_options_t o;
  eddy_future_t *f;
  int fill[2], port, stalled;
  double t0 = now();

  stalled = stalled_listener(&port, fill);
  if (stalled < 0) {
    fprintf(stderr, "%s: skipped, SYNs to a full queue are not dropped\n",
            __func__);
    return;
  }
  eddy_tcp_connect_options_init(&o);
  o.timeout = 0.2;
  f = connect_fails("127.0.0.1", port, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ETIMEOUT);
  ck_assert(now() - t0 >= 0.15 && now() - t0 < 3.0);
  eddy_future_unref(f);
  close_stalled(stalled, fill); /* teardown checks the attempt's fd went */
}
END_TEST

/* Cancelling while connecting closes the attempts in flight. */
START_TEST(test_cancel_while_connecting)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_future_t *f, *pause;
  int fill[2], port, port6 = 0, stalled, fd6 = -1;

  stalled = stalled_listener(&port, fill);
  if (stalled < 0) {
    fprintf(stderr, "%s: skipped, SYNs to a full queue are not dropped\n",
            __func__);
    return;
  }
  fixed_add(&fx, AF_INET, port);
  if (have_ipv6()) { /* a second family, stalled by a short fallback */
    fd6 = loopback_socket(AF_INET6, &port6, -1); /* refuses, but later */
    fixed_add(&fx, AF_INET6, port6);
  }
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  o.fallback_delay = 5;
  f = eddy_tcp_connect(loop, "stall.test", 80, &o);
  ck_assert_ptr_nonnull(f);
  pause = eddy_sleep(loop, 0.05);
  wait_for(pause);
  eddy_future_unref(pause);
  ck_assert_int_eq(fd_count(), baseline_fds + 4 + (fd6 >= 0)); /* + attempt */
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  spin();
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(fd_count(), baseline_fds + 3 + (fd6 >= 0));
  eddy_future_unref(f);
  eddy_resolver_free(r);
  if (fd6 >= 0)
    close(fd6);
  close_stalled(stalled, fill);
}
END_TEST

/* Cancelling while resolving cancels the lookup, and an answer that comes
 * anyway starts nothing. */
START_TEST(test_cancel_while_resolving)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_future_t *f;
  struct pollfd p;
  int port, fd = listener(AF_INET, &port);

  fx.never = 1;
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  f = eddy_tcp_connect(loop, "slow.test", port, &o);
  spin();
  ck_assert_int_eq(fx.calls, 1);
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  spin();
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  ck_assert_int_eq(eddy_future_state(fx.held), EDDY_FUTURE_CANCELLED);
  spin();
  p.fd = fd;
  p.events = POLLIN;
  ck_assert_int_eq(poll(&p, 1, 100), 0); /* nobody connected */
  eddy_future_unref(f);
  fixed_release(&fx);
  eddy_resolver_free(r);
  close(fd);
}
END_TEST

/* A custom resolver that says the name does not exist. */
START_TEST(test_name_does_not_resolve)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_future_t *f;

  fx.error = EDDY_ENONAME;
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  f = connect_fails("nowhere.invalid", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ENONAME);
  eddy_future_unref(f);
  eddy_resolver_free(r);
}
END_TEST

/* An answer with nothing usable in it (empty, or only the wrong family)
 * fails cleanly with EDDY_ENONAME. */
START_TEST(test_empty_answer)
{
  struct fixed fx = {0};
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *r;
  eddy_future_t *f;

  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  opts_init(&o, AF_UNSPEC, r);
  f = connect_fails("empty.test", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ENONAME);
  eddy_future_unref(f);
  fixed_add(&fx, AF_INET6, 80);
  o.family = AF_INET;
  f = connect_fails("v6only.test", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ENONAME);
  eddy_future_unref(f);
  eddy_resolver_free(r);
}
END_TEST

START_TEST(test_bad_arguments)
{
  eddy_tcp_connect_options_t o;
  eddy_future_t *f;
  static const int ports[] = {0, -1, 65536, 100000};

  errno = 0;
  ck_assert_ptr_null(eddy_tcp_connect(NULL, "127.0.0.1", 80, NULL));
  ck_assert_int_eq(errno, EINVAL);

  f = connect_fails(NULL, 80, NULL);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  f = connect_fails("", 80, NULL);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
    f = connect_fails("127.0.0.1", ports[i], NULL);
    ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
    eddy_future_unref(f);
  }
  eddy_tcp_connect_options_init(&o);
  o.family = 12345;
  f = connect_fails("127.0.0.1", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  eddy_tcp_connect_options_init(&o);
  o.timeout = -1;
  f = connect_fails("127.0.0.1", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  eddy_tcp_connect_options_init(&o);
  o.source_ip = "not an address";
  f = connect_fails("127.0.0.1", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  eddy_tcp_connect_options_init(&o);
  o.source_ip = "127.0.0.1";
  o.family = AF_INET6; /* an IPv4 source cannot reach IPv6 */
  f = connect_fails("::1", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  eddy_tcp_connect_options_init(&o);
  o.source_port = 70000;
  f = connect_fails("127.0.0.1", 80, &o);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Resolver (90-92)                                                          */
/* ------------------------------------------------------------------------ */

static eddy_future_t *resolve(eddy_resolver_t *r, const char *host, int port,
                              int family)
{
  eddy_future_t *f = eddy_resolver_resolve(r, host, port, family);
  wait_for(f);
  return f;
}

/* Whether the answer holds the literal @p ip with @p port. */
static int has_address(eddy_future_t *f, int family, const char *ip, int port)
{
  const eddy_address_t *a = eddy_future_value(f);
  char text[INET6_ADDRSTRLEN];

  for (size_t i = 0; a != NULL && i < eddy_future_size(f); i++) {
    const void *raw;
    int p;
    if (a[i].family != family)
      continue;
    if (family == AF_INET) {
      const struct sockaddr_in *sin = (const struct sockaddr_in *)&a[i].addr;
      raw = &sin->sin_addr;
      p = ntohs(sin->sin_port);
    } else {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a[i].addr;
      raw = &sin6->sin6_addr;
      p = ntohs(sin6->sin6_port);
    }
    inet_ntop(family, raw, text, sizeof(text));
    if (strcmp(text, ip) == 0 && p == port)
      return 1;
  }
  return 0;
}

START_TEST(test_resolve_literals)
{
  eddy_resolver_t *r = eddy_resolver_new(loop);
  eddy_future_t *f;

  /* IP literals are answered without a thread: already settled. */
  f = eddy_resolver_resolve(r, "127.0.0.1", 80, AF_UNSPEC);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), 1);
  ck_assert(has_address(f, AF_INET, "127.0.0.1", 80));
  eddy_future_unref(f);

  f = resolve(r, "::1", 443, AF_INET6);
  ck_assert(has_address(f, AF_INET6, "::1", 443));
  eddy_future_unref(f);

  /* An IPv4 literal has no IPv6 address. */
  f = resolve(r, "127.0.0.1", 80, AF_INET6);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ENONAME);
  ck_assert_ptr_nonnull(eddy_future_message(f));
  eddy_future_unref(f);

  f = resolve(r, NULL, 80, AF_UNSPEC);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  f = resolve(r, "127.0.0.1", 65536, AF_UNSPEC);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  f = resolve(r, "127.0.0.1", 80, 99);
  ck_assert_int_eq(eddy_future_error(f), EDDY_EUSAGE);
  eddy_future_unref(f);
  ck_assert_ptr_null(eddy_resolver_resolve(NULL, "127.0.0.1", 80, AF_UNSPEC));
  ck_assert_ptr_null(eddy_resolver_new(NULL));
  ck_assert_ptr_null(eddy_resolver_new_custom(loop, NULL, NULL));
  eddy_resolver_free(r);
  eddy_resolver_free(NULL);
}
END_TEST

/* 90: "localhost" through getaddrinfo on the thread pool (/etc/hosts). */
START_TEST(test_resolve_localhost)
{
  eddy_resolver_t *r = eddy_resolver_new(loop);
  eddy_future_t *f = resolve(r, "localhost", 80, AF_UNSPEC);

  ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED, "%s",
                eddy_future_message(f));
  ck_assert(has_address(f, AF_INET, "127.0.0.1", 80) ||
            has_address(f, AF_INET6, "::1", 80));
  eddy_future_unref(f);
  eddy_resolver_free(r);
}
END_TEST

/* Freeing the resolver does not stop a lookup in flight. */
START_TEST(test_resolver_free_while_resolving)
{
  eddy_resolver_t *r = eddy_resolver_new(loop);
  eddy_future_t *f = eddy_resolver_resolve(r, "localhost", 80, AF_INET);

  eddy_resolver_free(r);
  wait_for(f);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  eddy_future_unref(f);
}
END_TEST

/* Cancelling a lookup on the pool drops its answer. */
START_TEST(test_resolve_cancel)
{
  eddy_resolver_t *r = eddy_resolver_new(loop);
  eddy_future_t *f = eddy_resolver_resolve(r, "localhost", 80, AF_INET);

  ck_assert_int_eq(eddy_future_cancel(f), 0);
  spin();
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(f);
  eddy_resolver_free(r);
  /* Let the pool's work finish before the loop goes. */
  f = eddy_sleep(loop, 0.2);
  wait_for(f);
  eddy_future_unref(f);
}
END_TEST

/* 91: a lookup that fails is an error, here through a custom resolver. */
START_TEST(test_resolve_bad_host)
{
  struct fixed fx = {0};
  eddy_resolver_t *r;
  eddy_future_t *f;

  fx.error = EDDY_ERESOLVE;
  r = eddy_resolver_new_custom(loop, fixed_resolve, &fx);
  f = resolve(r, "an invalid domain", 80, AF_UNSPEC);
  ck_assert_int_eq(eddy_future_error(f), EDDY_ERESOLVE);
  eddy_future_unref(f);
  eddy_resolver_free(r);
}
END_TEST

/* 92: overrides keyed by (host, port), (host, port, family) and host. */
START_TEST(test_resolve_override)
{
  eddy_resolver_t *r = eddy_resolver_new(loop);
  eddy_future_t *f;

  ck_assert_int_eq(eddy_resolver_add_override(r, "google.com", 80, AF_UNSPEC,
                                              "1.2.3.4", 80), 0);
  ck_assert_int_eq(eddy_resolver_add_override(r, "google.com", 80, AF_INET,
                                              "1.2.3.4", 80), 0);
  ck_assert_int_eq(eddy_resolver_add_override(
                       r, "google.com", 80, AF_INET6,
                       "2a02:6b8:7c:40c:c51e:495f:e23a:3", 80), 0);
  ck_assert_int_eq(eddy_resolver_add_override(r, "example.com", -1,
                                              AF_UNSPEC, "127.0.0.1", -1), 0);
  ck_assert_int_eq(eddy_resolver_add_override(r, "moved.example", 80,
                                              AF_UNSPEC, "127.0.0.2", 8080), 0);

  f = resolve(r, "google.com", 80, AF_INET);
  ck_assert(has_address(f, AF_INET, "1.2.3.4", 80));
  eddy_future_unref(f);
  f = resolve(r, "google.com", 80, AF_INET6);
  ck_assert(has_address(f, AF_INET6, "2a02:6b8:7c:40c:c51e:495f:e23a:3", 80));
  eddy_future_unref(f);
  f = resolve(r, "google.com", 80, AF_UNSPEC);
  ck_assert(has_address(f, AF_INET, "1.2.3.4", 80));
  eddy_future_unref(f);
  /* Host alone: any port, the port kept. Names match case-insensitively. */
  f = resolve(r, "EXAMPLE.com", 8443, AF_UNSPEC);
  ck_assert(has_address(f, AF_INET, "127.0.0.1", 8443));
  eddy_future_unref(f);
  /* A port can be rewritten too. */
  f = resolve(r, "moved.example", 80, AF_UNSPEC);
  ck_assert(has_address(f, AF_INET, "127.0.0.2", 8080));
  eddy_future_unref(f);
  /* A later mapping for the same key replaces the earlier one. */
  ck_assert_int_eq(eddy_resolver_add_override(r, "example.com", -1,
                                              AF_UNSPEC, "127.0.0.3", -1), 0);
  f = resolve(r, "example.com", 1, AF_UNSPEC);
  ck_assert(has_address(f, AF_INET, "127.0.0.3", 1));
  eddy_future_unref(f);
  ck_assert_int_eq(eddy_resolver_add_override(r, NULL, 80, 0, "x", 1),
                   -EINVAL);
  eddy_resolver_free(r);
}
END_TEST

static Suite *tcp_client_suite(void)
{
  Suite *s = suite_create("tcp_client");
  TCase *tc = tcase_create("client");
  TCase *tr = tcase_create("resolver");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_connect_ipv4_ipv4);
  tcase_add_test(tc, test_connect_ipv4_dual);
  tcase_add_test(tc, test_connect_ipv6_ipv6);
  tcase_add_test(tc, test_connect_ipv6_dual);
  tcase_add_test(tc, test_connect_unspec_ipv4);
  tcase_add_test(tc, test_connect_unspec_ipv6);
  tcase_add_test(tc, test_connect_unspec_dual);
  tcase_add_test(tc, test_refused_ipv4);
  tcase_add_test(tc, test_source_ip_fail);
  tcase_add_test(tc, test_source_ip_success);
  tcase_add_test(tc, test_source_port_fail);
  tcase_add_test(tc, test_source_port_ipv4);
  tcase_add_test(tc, test_source_port_ipv6);
  tcase_add_test(tc, test_connect_timeout);
  tcase_add_test(tc, test_fallback_to_second_family);
  tcase_add_test(tc, test_early_failure_skips_fallback);
  tcase_add_test(tc, test_same_family_next_address);
  tcase_add_test(tc, test_attempt_delay_same_family);
  tcase_add_test(tc, test_all_refused);
  tcase_add_test(tc, test_stalled_connect_timeout);
  tcase_add_test(tc, test_cancel_while_connecting);
  tcase_add_test(tc, test_cancel_while_resolving);
  tcase_add_test(tc, test_name_does_not_resolve);
  tcase_add_test(tc, test_empty_answer);
  tcase_add_test(tc, test_bad_arguments);
  suite_add_tcase(s, tc);

  tcase_add_checked_fixture(tr, setup, teardown);
  tcase_set_timeout(tr, 20);
  tcase_add_test(tr, test_resolve_literals);
  tcase_add_test(tr, test_resolve_localhost);
  tcase_add_test(tr, test_resolver_free_while_resolving);
  tcase_add_test(tr, test_resolve_cancel);
  tcase_add_test(tr, test_resolve_bad_host);
  tcase_add_test(tr, test_resolve_override);
  suite_add_tcase(s, tr);
  return s;
}

int main(void)
{
  return test_run_suite(tcp_client_suite()); /* on the backend built for */
}
