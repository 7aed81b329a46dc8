/* SPDX-License-Identifier: MIT */
/*
 * examples/http-hello.c - a minimal HTTP/1.1 server for load tests.
 *
 *   http-hello [--address ADDR] [--port PORT] [--processes N]
 *
 * Answers every request with "200 OK" and "Hello, world!". Connections are
 * kept alive as HTTP says: HTTP/1.1 unless "Connection: close", HTTP/1.0
 * only with "Connection: keep-alive". Request bodies are not read, so a
 * request that announces one is answered and the connection closed.
 * Per request: one read, one write of a static response.
 */
#include <eddy.h>

#include "http_parse.h"
#include "serve.h"

#define MAX_HEADER_BYTES (64 * 1024)

#define HELLO_HEADERS "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
                      "Content-Length: 13\r\n"
#define HELLO_BODY "Hello, world!"

static const struct {
  const char *text;
  size_t len;
} replies[] = {
  [HTTP_KEEP_ALIVE] = {HELLO_HEADERS "\r\n" HELLO_BODY,
                  sizeof(HELLO_HEADERS "\r\n" HELLO_BODY) - 1},
  [HTTP_KEEP_ALIVE_10] = {HELLO_HEADERS "Connection: keep-alive\r\n\r\n" HELLO_BODY,
                     sizeof(HELLO_HEADERS "Connection: keep-alive\r\n\r\n"
                            HELLO_BODY) - 1},
  [HTTP_CLOSE] = {HELLO_HEADERS "Connection: close\r\n\r\n" HELLO_BODY,
             sizeof(HELLO_HEADERS "Connection: close\r\n\r\n" HELLO_BODY) - 1},
};

static eddy_future_t *respond(eddy_future_t *request, void *stream)
{
  enum http_reply r = http_classify_request(eddy_future_value(request),
                                           eddy_future_size(request));
  eddy_future_t *sent =
      eddy_stream_write_borrowed(stream, replies[r].text, replies[r].len);
  if (r != HTTP_CLOSE)
    return sent; /* the next request is read once this is sent */
  eddy_future_unref(sent);
  eddy_stream_close_when_drained(stream);
  return eddy_future_stop(eddy_stream_loop(stream));
}

static eddy_future_t *serve_request(void *stream)
{
  return eddy_then_ok(eddy_stream_read_until(stream, "\r\n\r\n", 4,
                                             MAX_HEADER_BYTES),
                      respond, stream);
}

static eddy_future_t *handle(eddy_stream_t *s, const struct sockaddr *peer,
                             void *arg)
{
  eddy_stream_set_nodelay(s, 1);
  return eddy_repeat(serve_request, s);
}

static const char usage[] =
    "usage: http-hello [--address ADDR] [--port PORT] [--processes N]\n"
    "Answers every HTTP request with \"Hello, world!\". The default port is\n"
    "8888; 0 picks a free one.\n";

int main(int argc, char **argv)
{
  struct serve_args args;
  serve_parse_args(argc, argv, 0, usage, &args);
  return serve(&args, handle, NULL);
}
