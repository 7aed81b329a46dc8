/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/libevent_tls_echo.c - the libevent line echo over TLS, with
 * bufferevent_openssl (OpenSSL reading and writing the socket itself, the
 * design eddy's memory-BIO filter is compared with).
 *
 * usage: libevent_tls_echo [--address 127.0.0.1] [--port 0]
 *                          --certfile F --keyfile F
 */
#include "common.h"
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "libevent_lines.h"

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      UNUSED struct sockaddr *sa, UNUSED int socklen,
                      void *arg) {
  SSL_CTX *ctx = arg;
  struct event_base *base = evconnlistener_get_base(l);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL *ssl = SSL_new(ctx);
  struct bufferevent *bev = ssl ? bufferevent_openssl_socket_new(
      base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
      BEV_OPT_CLOSE_ON_FREE) : NULL;
  if (!bev) { /* it freed the SSL if it failed after taking it */
    close(fd);
    return;
  }
  /* Clients of the benchmark close without close_notify. */
  bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  lines_setup(bev);
}

int main(int argc, char **argv) {
  peer_args(argc, argv);
  if (!peer_certfile || !peer_keyfile) {
    fprintf(stderr, "libevent_tls_echo: --certfile and --keyfile are required\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, peer_certfile) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, peer_keyfile, SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  return lines_serve("libevent_tls_echo", on_accept, ctx);
}
