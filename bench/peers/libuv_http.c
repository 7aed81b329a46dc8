/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/libuv_http.c - HTTP/1.1 hello on libuv.
 *
 * Counts complete request heads ("\r\n\r\n") in what uv_read gives (a head
 * split across reads is carried over) and answers each with 200 OK
 * "Hello, world!", Content-Length, keep-alive: one uv_write per read from a
 * static buffer of repeated answers when it fits.
 *
 * usage: libuv_http [--address 127.0.0.1] [--port 0]
 */
#define PEER_LIBUV
#include "common.h"

static const char RESP[] = HELLO_RESPONSE;
#define RESP_LEN (sizeof RESP - 1)
#define MAXBATCH 64
static char many[RESP_LEN * MAXBATCH];

typedef struct conn {
  uv_tcp_t tcp;
  char in[64 * 1024]; /* unparsed bytes, then room for the next read */
  size_t in_len;
} conn_t;

static uv_loop_t *loop;

static void on_close(uv_handle_t *h) { free(h); }

static void on_alloc(uv_handle_t *h, __attribute__((unused)) size_t sz,
                     uv_buf_t *buf) {
  conn_t *c = (conn_t *)h;
  buf->base = c->in + c->in_len;
  buf->len = sizeof c->in - c->in_len;
}

static void on_write(uv_write_t *req, __attribute__((unused)) int status) {
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t n, __attribute__((unused)) const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s;
  if (n < 0 || (n == 0 && c->in_len == sizeof c->in)) {
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
    return;
  }
  c->in_len += (size_t)n;
  size_t pos = 0, count = 0;
  for (;;) {
    char *end = memmem(c->in + pos, c->in_len - pos, "\r\n\r\n", 4);
    if (!end) break;
    pos = (size_t)(end - c->in) + 4;
    count++;
  }
  memmove(c->in, c->in + pos, c->in_len - pos);
  c->in_len -= pos;
  while (count) {
    size_t k = count > MAXBATCH ? MAXBATCH : count;
    uv_buf_t b = uv_buf_init(many, (unsigned)(k * RESP_LEN));
    /* uv_try_write first: most answers go out at once, no request needed */
    int w = uv_try_write(s, &b, 1);
    if (w == (int)b.len) { count -= k; continue; }
    if (w < 0 && w != UV_EAGAIN) {
      if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
      return;
    }
    if (w > 0) { b.base += w; b.len -= (unsigned)w; }
    uv_write_t *req = malloc(sizeof *req);
    uv_write(req, s, &b, 1, on_write);
    count -= k;
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
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < MAXBATCH; i++) memcpy(many + i * RESP_LEN, RESP, RESP_LEN);
  loop = uv_default_loop();
  uv_tcp_t server;
  if (peer_uv_listen(loop, &server, on_connection) < 0) return 1;
  return uv_run(loop, UV_RUN_DEFAULT);
}
