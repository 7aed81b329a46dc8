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
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <eddy.h>

#include "serve.h"

#define MAX_HEADER_BYTES (64 * 1024)

#define HELLO_HEADERS "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
                      "Content-Length: 13\r\n"
#define HELLO_BODY "Hello, world!"

enum reply { KEEP_ALIVE, KEEP_ALIVE_10, CLOSE };

static const struct {
  const char *text;
  size_t len;
} replies[] = {
  [KEEP_ALIVE] = {HELLO_HEADERS "\r\n" HELLO_BODY,
                  sizeof(HELLO_HEADERS "\r\n" HELLO_BODY) - 1},
  [KEEP_ALIVE_10] = {HELLO_HEADERS "Connection: keep-alive\r\n\r\n" HELLO_BODY,
                     sizeof(HELLO_HEADERS "Connection: keep-alive\r\n\r\n"
                            HELLO_BODY) - 1},
  [CLOSE] = {HELLO_HEADERS "Connection: close\r\n\r\n" HELLO_BODY,
             sizeof(HELLO_HEADERS "Connection: close\r\n\r\n" HELLO_BODY) - 1},
};

/* Whether the comma-separated header value [v, end) holds @token. */
static int has_token(const char *v, const char *end, const char *token)
{
  size_t n = strlen(token);
  while (v < end) {
    while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
      v++;
    const char *t = v;
    while (v < end && *v != ',')
      v++;
    const char *te = v;
    while (te > t && (te[-1] == ' ' || te[-1] == '\t' || te[-1] == '\r'))
      te--;
    if ((size_t)(te - t) == n && strncasecmp(t, token, n) == 0)
      return 1;
  }
  return 0;
}

/* If the header line [line, eol) is named @name (lower case), its value;
 * else NULL. */
static const char *header_value(const char *line, const char *eol,
                                const char *name, size_t len)
{
  if ((size_t)(eol - line) > len && line[len] == ':' &&
      strncasecmp(line, name, len) == 0)
    return line + len + 1;
  return NULL;
}

/* Reads the request head [req, req + len), which ends in CRLF CRLF, and
 * decides how to answer. One pass: each header line costs a memchr and a
 * look at its first letter; only the three that matter are compared. */
static enum reply classify(const char *req, size_t len)
{
  const char *end = req + len;
  const char *eol = memchr(req, '\n', len);
  if (eol == NULL || eol - req < 9 || memcmp(eol - 9, "HTTP/1.", 7) != 0 ||
      (eol[-2] != '0' && eol[-2] != '1') || eol[-1] != '\r')
    return CLOSE;
  int http11 = eol[-2] == '1';
  int keep = http11, close = 0;
  for (const char *line = eol + 1; line < end && *line != '\r'; line = eol + 1) {
    eol = memchr(line, '\n', (size_t)(end - line));
    if (eol == NULL)
      return CLOSE;
    const char *v;
    switch (*line | 0x20) { /* lower case: most headers stop here */
    case 'c':
      if ((v = header_value(line, eol, "connection", 10)) != NULL) {
        close |= has_token(v, eol, "close");
        keep |= has_token(v, eol, "keep-alive");
      } else if ((v = header_value(line, eol, "content-length", 14)) != NULL) {
        close |= !has_token(v, eol, "0"); /* a body we do not read */
      }
      break;
    case 't':
      if (header_value(line, eol, "transfer-encoding", 17) != NULL)
        close = 1; /* a body we do not read */
      break;
    }
  }
  if (close || !keep)
    return CLOSE;
  return http11 ? KEEP_ALIVE : KEEP_ALIVE_10;
}

static eddy_future_t *respond(eddy_future_t *request, void *stream)
{
  enum reply r = classify(eddy_future_value(request), eddy_future_size(request));
  eddy_future_t *sent =
      eddy_stream_write_borrowed(stream, replies[r].text, replies[r].len);
  if (r != CLOSE)
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
