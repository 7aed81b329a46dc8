/* SPDX-License-Identifier: MIT */
/*
 * examples/echo-server.c - a line echo server.
 *
 *   echo-server [--address ADDR] [--port PORT] [--processes N]
 *               [--certfile F --keyfile F]
 *
 * Every line a client sends comes back, until the client closes. A client
 * that shuts down only its write side (`nc -N`, shutdown(SHUT_WR), a TLS
 * close_notify) still gets every line back: the streams allow half-open
 * connections. Try it with `nc localhost 8888`, or with --certfile/--keyfile
 * (TLS) with `openssl s_client -connect localhost:8888`. SIGINT or SIGTERM
 * stops it.
 */
#include <stdio.h>

#include <eddy.h>

#include "serve.h"

/* The protocol itself is serve_echo_handler() in serve.c (glib-echo shares
 * it): each connection runs eddy_repeat() over one round, "read a line,
 * then write it back" (eddy_stream_read_until, then_ok, and
 * eddy_stream_write_bytes_of, which sends the read's own buffer, no copy),
 * until the client's side ends (the read then fails and ends the repeat);
 * the stream closes once the last echo has been sent. */

static const char usage[] =
    "usage: echo-server [--address ADDR] [--port PORT] [--processes N]\n"
    "                   [--certfile FILE --keyfile FILE]\n"
    "Echoes every line back. The default port is 8888; 0 picks a free one.\n";

int main(int argc, char **argv)
{
  /* allow_half_open: answer whatever the client sent before its FIN. */
  return serve_main(argc, argv, "echo-server", usage, 1, serve_echo_handler, NULL);
}
