/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/epoll_echo.c - the ceiling: a bare epoll line-echo server.
 *
 * Level-triggered epoll, one thread. Reads up to 64 KiB into one shared
 * buffer, writes back every complete line ("\n"-terminated) straight from
 * it, keeps an incomplete tail per connection for the next read, and
 * handles partial writes by keeping the unsent bytes and waiting for
 * EPOLLOUT (reading pauses meanwhile, which is the backpressure).
 *
 * --per-line: one send per line instead of one per read (memchr finds each
 * line; every send but a read's last carries MSG_MORE), which is the
 * syscall pattern of an application that writes each line read_until
 * returns. The throughput row runs it beside the plain ceiling, so the
 * table shows what the per-line sends cost apart from the library's own
 * work.
 *
 * usage: epoll_echo [--address 127.0.0.1] [--port 0] [--per-line]
 */
#define PEER_EPOLL
#include "common.h"

#define RCHUNK (64 * 1024)

typedef struct conn {
  int fd;
  char *tail; /* an incomplete line carried over to the next read */
  size_t tail_len, tail_cap;
  peer_out_t out;
} conn_t;

static int epfd;
static int per_line;
/* One read buffer for all connections (after the tail, if any). */
static char *rbuf;
static size_t rbuf_cap;

static void *conn_new(int fd) {
  conn_t *c = calloc(1, sizeof *c);
  if (c) c->fd = fd;
  return c;
}

static void conn_close(conn_t *c) {
  close(c->fd);
  free(c->tail);
  free(c->out.buf);
  free(c);
}

static void set_events(conn_t *c, unsigned ev) {
  struct epoll_event e = {.events = ev, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static int grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : RCHUNK;
  while (n < need) n *= 2;
  char *p = realloc(*buf, n);
  if (!p) return -1;
  *buf = p;
  *cap = n;
  return 0;
}

static void on_readable(conn_t *c) {
  /* The shared buffer holds the connection's tail, then the new bytes. */
  if (grow(&rbuf, &rbuf_cap, c->tail_len + RCHUNK) < 0) { conn_close(c); return; }
  memcpy(rbuf, c->tail, c->tail_len);
  ssize_t r = recv(c->fd, rbuf + c->tail_len, RCHUNK, 0);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { conn_close(c); return; }
  if (r < 0) return;
  size_t len = c->tail_len + (size_t)r;
  /* Only the new bytes can hold a newline not seen yet. */
  char *nl = memrchr(rbuf + c->tail_len, '\n', (size_t)r);
  size_t complete = nl ? (size_t)(nl - rbuf) + 1 : 0, sent = 0;
  while (sent < complete) {
    size_t n = complete - sent;
    int flags = MSG_NOSIGNAL;
    if (per_line) {
      n = (size_t)((char *)memchr(rbuf + sent, '\n', n) - (rbuf + sent)) + 1;
      if (sent + n < complete) flags |= MSG_MORE;
    }
    ssize_t w = send(c->fd, rbuf + sent, n, flags);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      conn_close(c);
      return;
    }
    sent += (size_t)w;
    if ((size_t)w < n) break; /* the kernel is full */
  }
  if (sent < complete) { /* keep the rest; stop reading until it is sent */
    if (peer_out_reserve(&c->out, complete - sent) < 0) { conn_close(c); return; }
    memcpy(c->out.buf + c->out.len, rbuf + sent, complete - sent);
    c->out.len += complete - sent;
    set_events(c, EPOLLOUT);
  }
  if (grow(&c->tail, &c->tail_cap, len - complete) < 0) { conn_close(c); return; }
  memcpy(c->tail, rbuf + complete, len - complete);
  c->tail_len = len - complete;
}

static void ready(void *arg, uint32_t ev) {
  conn_t *c = arg;
  if (c->out.len) {
    int r = peer_out_flush(c->fd, &c->out);
    if (r < 0) conn_close(c);
    else if (r == 0) set_events(c, EPOLLIN);
    return;
  }
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[argc - 1], "--per-line")) {
    per_line = 1;
    argc--;
  }
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  int lfd = peer_listen();
  epfd = epoll_create1(EPOLL_CLOEXEC);
  return peer_epoll_serve(epfd, lfd, conn_new, ready);
}
