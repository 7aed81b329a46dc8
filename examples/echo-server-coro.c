/* SPDX-License-Identifier: MIT */
/*
 * examples/echo-server-coro.c - echo-server, with a coroutine per
 * connection instead of a chain of callbacks.
 *
 *   echo-server-coro [--address ADDR] [--port PORT] [--processes N]
 *                    [--certfile F --keyfile F]
 *
 * The same command line and behaviour as examples/echo-server.c: every
 * line a client sends comes back, until the client closes; half-closed
 * clients still get every line back; TLS with --certfile/--keyfile;
 * SIGINT or SIGTERM stops it.
 */
#include <eddy.h>

#include "serve.h"

/* One coroutine per connection: read a line, send it back, again. */
static eddy_future_t *echo(eddy_stream_t *s, void *arg)
{
  eddy_stream_set_nodelay(s, 1);
  for (;;) {
    eddy_future_t *line = eddy_await(eddy_stream_read_until(s, "\n", 1, 0));
    if (line == NULL || eddy_future_error(line) != 0)
      return line; /* the client's side ended (or no memory): so do we */
    /* Not awaited (see serve.c's echo_line): the answers to pipelined
     * lines leave together; past the high watermark, wait for room. */
    eddy_future_t *w = eddy_stream_write_bytes_of(s, line);
    eddy_future_unref(line);
    if (w == NULL || (eddy_future_done(w) && eddy_future_error(w) != 0))
      return w; /* not sent (no memory, or the stream closed): never skip a line */
    if (!eddy_future_done(w) && eddy_stream_write_blocked(s)) {
      eddy_future_unref(w);
      w = eddy_await(eddy_stream_drain(s));
    }
    eddy_future_unref(w);
  }
}

static const char usage[] =
    "usage: echo-server-coro [--address ADDR] [--port PORT] [--processes N]\n"
    "                        [--certfile FILE --keyfile FILE]\n"
    "Echoes every line back. The default port is 8888; 0 picks a free one.\n";

int main(int argc, char **argv)
{
  eddy_coro_handler_t *h = eddy_coro_handler_new(echo, NULL, NULL);
  int status;

  if (h == NULL)
    return 1;
  /* allow_half_open: answer whatever the client sent before its FIN. */
  status = serve_main(argc, argv, "echo-server-coro", usage, 1,
                      eddy_coro_stream_handler, h);
  eddy_coro_handler_free(h);
  return status;
}
