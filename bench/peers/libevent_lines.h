/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/libevent_lines.h - the line echo of the libevent peers, plain
 * (libevent_echo.c) and TLS (libevent_tls_echo.c): the read callback takes
 * every complete line out of the input evbuffer (evbuffer_search for "\n",
 * then one evbuffer_remove_buffer of everything up to the last newline
 * found, which moves chains without copying) and appends it to the output.
 * A 1 MiB high-water mark on output pauses reading (backpressure).
 */
#ifndef BENCH_PEERS_LIBEVENT_LINES_H
#define BENCH_PEERS_LIBEVENT_LINES_H
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

static void on_read(struct bufferevent *bev, void *arg);
#define UNUSED __attribute__((unused))

static void on_write(struct bufferevent *bev, void *arg) {
  /* output drained: resume reading if backpressure had paused it */
  if (!(bufferevent_get_enabled(bev) & EV_READ)) {
    bufferevent_enable(bev, EV_READ);
    on_read(bev, arg);
  }
}

static void on_read(struct bufferevent *bev, UNUSED void *arg) {
  struct evbuffer *in = bufferevent_get_input(bev);
  struct evbuffer *out = bufferevent_get_output(bev);
  /* Find the last newline: search forward, line after line. */
  struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
  if (p.pos < 0) return;
  size_t last = (size_t)p.pos;
  for (;;) {
    evbuffer_ptr_set(in, &p, 1, EVBUFFER_PTR_ADD);
    struct evbuffer_ptr q = evbuffer_search(in, "\n", 1, &p);
    if (q.pos < 0) break;
    last = (size_t)q.pos;
    p = q;
  }
  evbuffer_remove_buffer(in, out, last + 1);
  if (evbuffer_get_length(out) > (1 << 20)) bufferevent_disable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, UNUSED void *arg) {
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}

/* Callbacks and sizes shared by both peers: 64 KiB per read and write, as
 * the other peers (libevent's default is 16 KiB). */
static void lines_setup(struct bufferevent *bev) {
  bufferevent_setcb(bev, on_read, on_write, on_event, NULL);
  bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
  bufferevent_set_max_single_read(bev, 64 * 1024);
  bufferevent_set_max_single_write(bev, 64 * 1024);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Listens on the peer's address, announces it and runs the loop, handing
 * each accepted fd to on_accept with @p arg. Returns main's exit status. */
static int lines_serve(const char *name, evconnlistener_cb on_accept, void *arg) {
  struct event_base *base = event_base_new();
  int fd = peer_listen();
  struct evconnlistener *l = evconnlistener_new(
      base, on_accept, arg, LEV_OPT_CLOSE_ON_FREE, -1, fd);
  if (!l) {
    fprintf(stderr, "%s: cannot listen\n", name);
    return 1;
  }
  peer_announce(fd);
  event_base_dispatch(base);
  return 0;
}
#endif
