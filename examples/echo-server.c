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

/* Writes the line back: the stream sends the read's own buffer, no copy. */
static eddy_future_t *echo_line(eddy_future_t *line, void *stream)
{
  return eddy_stream_write_bytes_of(stream, line);
}

/* One round: read a line, then echo it. */
static eddy_future_t *echo_once(void *stream)
{
  return eddy_then_ok(eddy_stream_read_until(stream, "\n", 1, 0), echo_line,
                      stream);
}

/* Rounds until the client's side ends (the read then fails and ends the
 * repeat); the stream closes once the last echo has been sent. */
static eddy_future_t *handle(eddy_stream_t *s, const struct sockaddr *peer,
                             void *arg)
{
  eddy_stream_set_nodelay(s, 1);
  return eddy_repeat(echo_once, s);
}

static const char usage[] =
    "usage: echo-server [--address ADDR] [--port PORT] [--processes N]\n"
    "                   [--certfile FILE --keyfile FILE]\n"
    "Echoes every line back. The default port is 8888; 0 picks a free one.\n";

int main(int argc, char **argv)
{
  /* allow_half_open: answer whatever the client sent before its FIN. */
  return serve_main(argc, argv, "echo-server", usage, 1, handle, NULL);
}
