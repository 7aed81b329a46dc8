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
    while (te > t && (te[-1] == ' ' || te[-1] == '\t'))
      te--;
    if ((size_t)(te - t) == n && strncasecmp(t, token, n) == 0)
      return 1;
  }
  return 0;
}

/* Reads the request head (NUL-terminated, ending in CRLF CRLF) and decides
 * how to answer. */
static enum reply classify(const char *req)
{
  const char *eol = strstr(req, "\r\n");
  if (eol == NULL || eol - req < 8)
    return CLOSE;
  int http11 = strncmp(eol - 8, "HTTP/1.1", 8) == 0;
  if (!http11 && strncmp(eol - 8, "HTTP/1.0", 8) != 0)
    return CLOSE;
  int keep = http11, close = 0;
  for (const char *line = eol + 2; *line != '\r' && *line != '\0';) {
    eol = strstr(line, "\r\n");
    if (eol == NULL)
      return CLOSE;
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon != NULL) {
      size_t name = (size_t)(colon - line);
      if (name == 10 && strncasecmp(line, "Connection", 10) == 0) {
        close |= has_token(colon + 1, eol, "close");
        keep |= has_token(colon + 1, eol, "keep-alive");
      } else if ((name == 14 && strncasecmp(line, "Content-Length", 14) == 0 &&
                  !has_token(colon + 1, eol, "0")) ||
                 (name == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0)) {
        close = 1; /* a body we do not read */
      }
    }
    line = eol + 2;
  }
  if (close || !keep)
    return CLOSE;
  return http11 ? KEEP_ALIVE : KEEP_ALIVE_10;
}

static eddy_future_t *respond(eddy_future_t *request, void *stream)
{
  enum reply r = classify(eddy_future_value(request));
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
