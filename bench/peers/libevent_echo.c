/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/libevent_echo.c - line echo on libevent's bufferevents (the
 * line logic is in libevent_lines.h, shared with libevent_tls_echo.c).
 *
 * usage: libevent_echo [--address 127.0.0.1] [--port 0]
 */
#include "common.h"
#include "libevent_lines.h"

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      UNUSED struct sockaddr *sa, UNUSED int socklen,
                      UNUSED void *arg) {
  struct event_base *base = evconnlistener_get_base(l);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct bufferevent *bev =
      bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  lines_setup(bev);
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return lines_serve("libevent_echo", on_accept, NULL);
}
