/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/common.h - shared by the C peer servers: argument parsing
 * (--address A --port P, defaults 127.0.0.1 and 0; --certfile F --keyfile F
 * for the TLS peer), a listening socket, and the "listening on ADDR:PORT"
 * line the harness reads.
 */
#ifndef BENCH_PEERS_COMMON_H
#define BENCH_PEERS_COMMON_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *peer_address = "127.0.0.1";
static int peer_port = 0;
static const char *peer_certfile, *peer_keyfile;

__attribute__((unused)) static void peer_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc)
      peer_port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--address") && i + 1 < argc)
      peer_address = argv[++i];
    else if (!strcmp(argv[i], "--certfile") && i + 1 < argc)
      peer_certfile = argv[++i];
    else if (!strcmp(argv[i], "--keyfile") && i + 1 < argc)
      peer_keyfile = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--address 127.0.0.1] [--port 0]"
              " [--certfile F --keyfile F]\n", argv[0]);
      exit(2);
    }
  }
}

/* A non-blocking listening socket on peer_address:peer_port (IPv4). */
__attribute__((unused)) static int peer_listen(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { perror("socket"); exit(1); }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)peer_port);
  if (inet_pton(AF_INET, peer_address, &a.sin_addr) != 1) {
    fprintf(stderr, "bad address %s\n", peer_address);
    exit(2);
  }
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); exit(1); }
  if (listen(fd, SOMAXCONN) < 0) { perror("listen"); exit(1); }
  return fd;
}

/* Prints the line the harness waits for. */
__attribute__((unused)) static void peer_announce(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  char host[64];
  inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
  printf("listening on %s:%d\n", host, ntohs(a.sin_port));
  fflush(stdout);
}

#ifdef PEER_EPOLL
#include <stdint.h>
#include <sys/epoll.h>

/* Output not yet taken by the kernel, finished on EPOLLOUT. */
typedef struct peer_out {
  char *buf;
  size_t off, len, cap;
} peer_out_t;

/* Makes room for @p more bytes after what is queued; -1 on ENOMEM. */
__attribute__((unused)) static int peer_out_reserve(peer_out_t *o, size_t more) {
  size_t need = o->len + more;
  if (need <= o->cap) return 0;
  size_t n = o->cap ? o->cap : 4096;
  while (n < need) n *= 2;
  char *p = realloc(o->buf, n);
  if (!p) return -1;
  o->buf = p;
  o->cap = n;
  return 0;
}

/* Sends what is queued: 0 when all went, 1 if the socket is full, -1 on
 * error. */
__attribute__((unused)) static int peer_out_flush(int fd, peer_out_t *o) {
  while (o->off < o->len) {
    ssize_t w = send(fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL);
    if (w < 0) return (errno == EAGAIN || errno == EINTR) ? 1 : -1;
    o->off += (size_t)w;
  }
  o->off = o->len = 0;
  return 0;
}

/*
 * The epoll servers' main loop: level-triggered, accepts every pending
 * connection (TCP_NODELAY, registered for EPOLLIN with the pointer that
 * new_conn(fd) returns), and hands each ready connection to ready().
 */
__attribute__((unused)) static int peer_epoll_serve(int epfd, int lfd,
                                                    void *(*new_conn)(int fd),
                                                    void (*ready)(void *c, uint32_t ev)) {
  struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le);
  peer_announce(lfd);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(epfd, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr) {
        ready(evs[i].data.ptr, evs[i].events);
        continue;
      }
      for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = new_conn(fd)};
        if (!e.data.ptr || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) close(fd);
      }
    }
  }
}
#endif

#ifdef PEER_LIBUV
#include <uv.h>
/* Binds and listens a libuv TCP server and prints the listening line. */
__attribute__((unused)) static int peer_uv_listen(uv_loop_t *loop, uv_tcp_t *server,
                                                  uv_connection_cb on_connection) {
  uv_tcp_init(loop, server);
  struct sockaddr_in addr;
  uv_ip4_addr(peer_address, peer_port, &addr);
  if (uv_tcp_bind(server, (const struct sockaddr *)&addr, 0) ||
      uv_listen((uv_stream_t *)server, SOMAXCONN, on_connection)) {
    fprintf(stderr, "cannot listen on %s:%d\n", peer_address, peer_port);
    return -1;
  }
  uv_os_fd_t fd;
  uv_fileno((uv_handle_t *)server, &fd);
  peer_announce(fd);
  return 0;
}
#endif

/* The HTTP answer every hello server gives. */
#define HELLO_RESPONSE                                                      \
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"   \
  "Connection: keep-alive\r\n\r\nHello, world!"

#endif
