/* SPDX-License-Identifier: MIT */
/*
 * bench/idle_scale.c - the client of the idle scale row (bench/run
 * --only idle100k): opens N connections to an echo server, one round trip
 * each, and holds them all open; then, while they are all open, one round
 * trip on each of a random sample of them, one at a time.
 *
 *   idle_scale --port P [--conns N] [--sources K] [--sample S] [--size B]
 *              [--inflight F] [--timeout SECONDS]
 *
 * One destination and one source address give ~28,000 connections (the
 * ephemeral port range), so connection i comes from 127.0.0.(2 + i % K)
 * (IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect time, per
 * 4-tuple). At most F connections are between connect and their first
 * echo at any time, so a server's listen backlog is never flooded (a
 * dropped SYN costs a second). Prints
 *
 *   SCALE-READY conns=N accept_s=T       every connection has echoed once
 *
 * and waits for a line on stdin (the harness reads the server's RSS
 * meanwhile), then samples and prints
 *
 *   SAMPLE n=S p50_us=.. p99_us=.. max_us=..
 *
 * and holds the connections until stdin closes. Errors go to stderr with
 * exit status 2. Linux only (epoll).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct conn {
  int fd;
  unsigned got;       /* echoed bytes of the first round trip */
  unsigned char sent; /* the first line went out */
};

static struct conn *conns;
static int opt_port, opt_conns = 100000, opt_sources = 5, opt_sample = 1000;
static int opt_inflight = 128;
static unsigned opt_size = 64;
static double opt_timeout = 300;
static char line[4096];

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
  fprintf(stderr, "idle_scale: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void open_conn(int epfd, int i)
{
  struct sockaddr_in src = { .sin_family = AF_INET };
  struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port) };
  int one = 1;
  struct conn *c = &conns[i];

  src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % opt_sources));
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    die("socket");
  setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0)
    die("bind to a 127.0.0.x source");
  if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)
    die("connect");
  struct epoll_event e = { .events = EPOLLOUT, .data.u32 = (uint32_t)i };
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e) < 0)
    die("epoll_ctl");
}

/* One event of connection @i; returns 1 when its round trip is done. */
static int step(int epfd, int i, uint32_t ev)
{
  struct conn *c = &conns[i];
  char buf[4096];

  if (!c->sent) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      errno = err;
      die("connect");
    }
    if (!(ev & EPOLLOUT))
      return 0;
    if (send(c->fd, line, opt_size, MSG_NOSIGNAL) != (ssize_t)opt_size)
      die("send");
    c->sent = 1;
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
      die("epoll_ctl");
    return 0;
  }
  ssize_t r = recv(c->fd, buf, sizeof buf, 0);
  if (r == 0) {
    fprintf(stderr, "idle_scale: connection %d closed by the server\n", i);
    exit(2);
  }
  if (r < 0) {
    if (errno == EAGAIN)
      return 0;
    die("recv");
  }
  c->got += (unsigned)r;
  if (c->got < opt_size)
    return 0;
  /* Idle from now on: not watched, so holding it costs the client nothing. */
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  return 1;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One round trip on connection @i, blocking; its time in seconds. */
static double round_trip(int i)
{
  struct pollfd p = { .fd = conns[i].fd, .events = POLLIN };
  char buf[4096];
  unsigned got = 0;
  double t0 = now_s();

  if (send(p.fd, line, opt_size, MSG_NOSIGNAL) != (ssize_t)opt_size)
    die("send (sample)");
  while (got < opt_size) {
    if (poll(&p, 1, 10000) != 1) {
      errno = ETIMEDOUT;
      die("sample round trip");
    }
    ssize_t r = recv(p.fd, buf, sizeof buf, 0);
    if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
      if (r == 0)
        errno = ECONNRESET;
      die("recv (sample)");
    }
    if (r > 0)
      got += (unsigned)r;
  }
  return now_s() - t0;
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"port", required_argument, 0, 'p'},    {"conns", required_argument, 0, 'n'},
    {"sources", required_argument, 0, 'k'}, {"sample", required_argument, 0, 'S'},
    {"size", required_argument, 0, 's'},    {"inflight", required_argument, 0, 'f'},
    {"timeout", required_argument, 0, 't'}, {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "p:n:k:S:s:f:t:", longopts, NULL)) != -1) {
    switch (ch) {
    case 'p': opt_port = atoi(optarg); break;
    case 'n': opt_conns = atoi(optarg); break;
    case 'k': opt_sources = atoi(optarg); break;
    case 'S': opt_sample = atoi(optarg); break;
    case 's': opt_size = (unsigned)atoi(optarg); break;
    case 'f': opt_inflight = atoi(optarg); break;
    case 't': opt_timeout = atof(optarg); break;
    default:
      fprintf(stderr, "usage: idle_scale --port P [--conns N] [--sources K] [--sample S]"
                      " [--size B] [--inflight F] [--timeout S]\n");
      return 2;
    }
  }
  if (opt_port <= 0 || opt_conns <= 0 || opt_sources <= 0 || opt_sources > 250 ||
      opt_size < 2 || opt_size > sizeof line || opt_inflight <= 0) {
    fprintf(stderr, "idle_scale: bad arguments\n");
    return 2;
  }
  struct rlimit rl = { (rlim_t)opt_conns + 64, (rlim_t)opt_conns + 64 };
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    struct rlimit cur;
    getrlimit(RLIMIT_NOFILE, &cur);
    if (cur.rlim_cur < rl.rlim_cur)
      die("setrlimit(RLIMIT_NOFILE) for the connections");
  }
  memset(line, 'x', opt_size - 1);
  line[opt_size - 1] = '\n';
  conns = calloc((size_t)opt_conns, sizeof *conns);
  if (!conns)
    die("calloc");
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");

  struct epoll_event evs[512];
  int opened = 0, done = 0;
  double t0 = now_s();
  while (done < opt_conns) {
    while (opened < opt_conns && opened - done < opt_inflight)
      open_conn(epfd, opened++);
    int n = epoll_wait(epfd, evs, 512, 1000);
    if (n < 0 && errno != EINTR)
      die("epoll_wait");
    for (int j = 0; j < n; j++)
      done += step(epfd, (int)evs[j].data.u32, evs[j].events);
    if (now_s() - t0 > opt_timeout) {
      fprintf(stderr, "idle_scale: only %d of %d connections after %.0f s\n", done,
              opt_conns, opt_timeout);
      return 2;
    }
  }
  printf("SCALE-READY conns=%d accept_s=%.3f\n", opt_conns, now_s() - t0);
  fflush(stdout);

  char cmd[64];
  if (!fgets(cmd, sizeof cmd, stdin))
    return 0;
  int ns = opt_sample < opt_conns ? opt_sample : opt_conns;
  double *rtt = calloc((size_t)ns, sizeof *rtt);
  if (!rtt)
    die("calloc");
  srand((unsigned)time(NULL));
  for (int j = 0; j < ns; j++)
    rtt[j] = round_trip((int)(((unsigned long)rand() * RAND_MAX + (unsigned long)rand()) %
                              (unsigned long)opt_conns));
  qsort(rtt, (size_t)ns, sizeof *rtt, cmp_double);
  printf("SAMPLE n=%d p50_us=%.1f p99_us=%.1f max_us=%.1f\n", ns, rtt[ns / 2] * 1e6,
         rtt[(int)(ns * 0.99)] * 1e6, rtt[ns - 1] * 1e6);
  fflush(stdout);
  while (fgets(cmd, sizeof cmd, stdin))
    ;
  return 0;
}
