/*
 * bench/peers/libevent_echo.c - line echo on libevent's bufferevents (the
 * line logic is in libevent_lines.h, shared with libevent_tls_echo.c).
 *
 * usage: libevent_echo [--address 127.0.0.1] [--port 0]
 */
#include "common.h"
#include <event2/event.h>
#include <event2/listener.h>

#include "libevent_lines.h"

static void on_accept(UNUSED struct evconnlistener *l, evutil_socket_t fd,
                      UNUSED struct sockaddr *sa, UNUSED int socklen,
                      void *arg) {
  struct event_base *base = arg;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct bufferevent *bev =
      bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  lines_setup(bev);
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
