/*
 * bench/peers/epoll_echo.c - the ceiling: a bare epoll line-echo server.
 *
 * Level-triggered epoll, one thread. Reads up to 64 KiB, writes back every
 * complete line ("\n"-terminated) it has straight from the read buffer,
 * keeps an incomplete tail for the next read, and handles partial writes by
 * keeping the unsent bytes and waiting for EPOLLOUT (reading pauses
 * meanwhile, which is the backpressure).
 *
 * usage: epoll_echo [--address 127.0.0.1] [--port 0]
 */
#define PEER_EPOLL
#include "common.h"

#define RCHUNK (64 * 1024)

typedef struct conn {
  int fd;
  char *in; /* bytes read and not yet echoed (an incomplete line) */
  size_t in_len, in_cap;
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
  free(c->in);
  free(c->out.buf);
  free(c);
}

static void set_events(conn_t *c, unsigned ev) {
  struct epoll_event e = {.events = ev, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static void on_readable(conn_t *c) {
  if (c->in_len + RCHUNK > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap * 2 : RCHUNK * 2;
    while (cap < c->in_len + RCHUNK) cap *= 2;
    char *p = realloc(c->in, cap);
    if (!p) { conn_close(c); return; }
    c->in = p;
    c->in_cap = cap;
  }
  ssize_t r = recv(c->fd, c->in + c->in_len, RCHUNK, 0);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { conn_close(c); return; }
  if (r < 0) return;
  /* Only the new bytes can hold a newline not seen yet. */
  size_t old = c->in_len;
  c->in_len += (size_t)r;
  char *nl = memrchr(c->in + old, '\n', (size_t)r);
  if (!nl) return;
  size_t complete = (size_t)(nl - c->in) + 1, sent = 0;
  while (sent < complete) {
    ssize_t w = send(c->fd, c->in + sent, complete - sent, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      conn_close(c);
      return;
    }
    sent += (size_t)w;
  }
  if (sent < complete) { /* keep the rest; stop reading until it is sent */
    if (peer_out_reserve(&c->out, complete - sent) < 0) { conn_close(c); return; }
    memcpy(c->out.buf + c->out.len, c->in + sent, complete - sent);
    c->out.len += complete - sent;
    set_events(c, EPOLLOUT);
  }
  memmove(c->in, c->in + complete, c->in_len - complete);
  c->in_len -= complete;
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
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  int lfd = peer_listen();
  epfd = epoll_create1(EPOLL_CLOEXEC);
  return peer_epoll_serve(epfd, lfd, conn_new, ready);
}
