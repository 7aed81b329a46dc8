/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/epoll_http.c - bare epoll HTTP/1.1 hello (the ceiling).
 *
 * Level-triggered epoll, 64 KiB reads. Every complete request head (ending
 * in "\r\n\r\n"; requests have no body, as wrk's GETs) gets one 200 OK
 * "Hello, world!" with Content-Length, keep-alive. All answers to one read
 * go out in one write; partial writes are kept and finished on EPOLLOUT.
 *
 * usage: epoll_http [--address 127.0.0.1] [--port 0]
 */
#define PEER_EPOLL
#include "common.h"

static const char RESP[] = HELLO_RESPONSE;
#define RESP_LEN (sizeof RESP - 1)

typedef struct conn {
  int fd;
  char in[64 * 1024];
  size_t in_len;
  peer_out_t out;
} conn_t;

static int epfd;

static void *conn_new(int fd) {
  conn_t *c = calloc(1, sizeof *c);
  if (c) c->fd = fd;
  return c;
}

static void conn_close(conn_t *c) {
  close(c->fd);
  free(c->out.buf);
  free(c);
}

static void set_events(conn_t *c, unsigned ev) {
  struct epoll_event e = {.events = ev, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static void on_readable(conn_t *c) {
  if (c->in_len == sizeof c->in) { conn_close(c); return; } /* head too big */
  ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { conn_close(c); return; }
  if (r < 0) return;
  c->in_len += (size_t)r;
  size_t pos = 0, n = 0;
  for (;;) {
    char *end = memmem(c->in + pos, c->in_len - pos, "\r\n\r\n", 4);
    if (!end) break;
    pos = (size_t)(end - c->in) + 4;
    n++;
  }
  memmove(c->in, c->in + pos, c->in_len - pos);
  c->in_len -= pos;
  if (!n) return;
  if (peer_out_reserve(&c->out, n * RESP_LEN) < 0) { conn_close(c); return; }
  for (size_t i = 0; i < n; i++) {
    memcpy(c->out.buf + c->out.len, RESP, RESP_LEN);
    c->out.len += RESP_LEN;
  }
  int f = peer_out_flush(c->fd, &c->out);
  if (f < 0) conn_close(c);
  else if (f > 0) set_events(c, EPOLLOUT);
}

static void ready(void *arg, uint32_t ev) {
  conn_t *c = arg;
  if (c->out.len) {
    int f = peer_out_flush(c->fd, &c->out);
    if (f < 0) conn_close(c);
    else if (f == 0) set_events(c, EPOLLIN);
    return;
  }
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  int lfd = peer_listen();
  epfd = epoll_create1(EPOLL_CLOEXEC);
  return peer_epoll_serve(epfd, lfd, conn_new, ready);
}
