/*
 * bench/peers/libevent_echo.c - line echo on libevent's bufferevents.
 *
 * The read callback takes every complete line out of the input evbuffer
 * (evbuffer_search for "\n", then one evbuffer_remove_buffer of everything
 * up to the last newline found, which moves chains without copying) and
 * appends it to the output. A 1 MiB high-water mark on output pauses
 * reading (backpressure).
 *
 * usage: libevent_echo [--address 127.0.0.1] [--port 0]
 */
#include "common.h"
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

static void on_accept(UNUSED struct evconnlistener *l, evutil_socket_t fd,
                      UNUSED struct sockaddr *sa, UNUSED int socklen,
                      void *arg) {
  struct event_base *base = arg;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct bufferevent *bev =
      bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(bev, on_read, on_write, on_event, NULL);
  bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
  /* 64 KiB per read and write, as the other peers (default: 16 KiB) */
  bufferevent_set_max_single_read(bev, 64 * 1024);
  bufferevent_set_max_single_write(bev, 64 * 1024);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  struct event_base *base = event_base_new();
  int fd = peer_listen();
  struct evconnlistener *l = evconnlistener_new(
      base, on_accept, base, LEV_OPT_CLOSE_ON_FREE, -1, fd);
  if (!l) {
    fprintf(stderr, "libevent_echo: cannot listen\n");
    return 1;
  }
  peer_announce(fd);
  event_base_dispatch(base);
  return 0;
}
