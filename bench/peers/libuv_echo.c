/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/libuv_echo.c - line echo on libuv.
 *
 * uv_read_start into one shared 64 KiB buffer; every complete line read is
 * written back with uv_write (from a copy of the complete part, so the read
 * buffer can be reused); an incomplete tail is kept per connection. Reading
 * stops while more than 1 MiB of echo is queued (backpressure).
 *
 * usage: libuv_echo [--address 127.0.0.1] [--port 0]
 */
#define PEER_LIBUV
#include "common.h"

typedef struct conn {
  uv_tcp_t tcp;
  char *tail;      /* incomplete line carried over */
  size_t tail_len, tail_cap;
  int reading;
} conn_t;

typedef struct wreq {
  uv_write_t req;
  conn_t *c;
  char data[];
} wreq_t;

static uv_loop_t *loop;
/* One read buffer for all connections: on_read consumes it at once. */
static char rbuf[64 * 1024];

static void on_close(uv_handle_t *h) {
  conn_t *c = (conn_t *)h;
  free(c->tail);
  free(c);
}

static void on_alloc(__attribute__((unused)) uv_handle_t *h,
                     __attribute__((unused)) size_t sz, uv_buf_t *buf) {
  buf->base = rbuf;
  buf->len = sizeof rbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = w->c;
  free(w);
  if (status < 0) return;
  if (!c->reading && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < (1 << 20)) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s;
  if (n < 0) {
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (n == 0) return;
  char *nl = memrchr(buf->base, '\n', (size_t)n);
  if (!nl) {
    if (c->tail_len + (size_t)n > c->tail_cap) {
      size_t cap = c->tail_cap ? c->tail_cap : 4096;
      while (cap < c->tail_len + (size_t)n) cap *= 2;
      c->tail = realloc(c->tail, cap);
      c->tail_cap = cap;
    }
    memcpy(c->tail + c->tail_len, buf->base, (size_t)n);
    c->tail_len += (size_t)n;
    return;
  }
  size_t head = (size_t)(nl - buf->base) + 1;
  wreq_t *w = malloc(sizeof *w + c->tail_len + head);
  w->c = c;
  memcpy(w->data, c->tail, c->tail_len);
  memcpy(w->data + c->tail_len, buf->base, head);
  uv_buf_t out = uv_buf_init(w->data, (unsigned)(c->tail_len + head));
  c->tail_len = 0;
  size_t rest = (size_t)n - head;
  if (rest) {
    if (rest > c->tail_cap) {
      c->tail = realloc(c->tail, rest);
      c->tail_cap = rest;
    }
    memcpy(c->tail, buf->base + head, rest);
    c->tail_len = rest;
  }
  if (uv_write(&w->req, s, &out, 1, on_write) < 0) {
    free(w);
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (uv_stream_get_write_queue_size(s) >= (1 << 20)) {
    c->reading = 0;
    uv_read_stop(s);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  uv_tcp_t server;
  if (peer_uv_listen(loop, &server, on_connection) < 0) return 1;
  return uv_run(loop, UV_RUN_DEFAULT);
}
