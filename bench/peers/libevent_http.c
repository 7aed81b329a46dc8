/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/libevent_http.c - HTTP hello on libevent's evhttp.
 *
 * evhttp parses the requests and handles keep-alive; every request gets
 * 200 OK "Hello, world!" (evhttp adds Content-Length and Date).
 *
 * usage: libevent_http [--address 127.0.0.1] [--port 0]
 */
#include "common.h"
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

static void hello(struct evhttp_request *req, __attribute__((unused)) void *arg) {
  struct evbuffer *body = evhttp_request_get_output_buffer(req);
  evbuffer_add(body, "Hello, world!", 13);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "text/plain");
  evhttp_send_reply(req, 200, "OK", NULL);
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  struct event_base *base = event_base_new();
  struct evhttp *http = evhttp_new(base);
  evhttp_set_gencb(http, hello, NULL);
  int fd = peer_listen();
  if (!evhttp_accept_socket_with_handle(http, fd)) {
    fprintf(stderr, "libevent_http: cannot listen\n");
    return 1;
  }
  peer_announce(fd);
  event_base_dispatch(base);
  return 0;
}
