/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_http.c - the examples' HTTP parsing (examples/http_parse.c,
 * the code http-hello and http-get run) on fuzzer-made text.
 *
 * Input: one byte choosing the parser, then the text:
 *   0  a request head for http-hello, exactly as long as given (no NUL
 *      after it, so a read past the end is an ASan report);
 *   1  the same with CRLF CRLF appended, the shape read_until hands over;
 *   2  a response head for http-get (NUL-terminated, as read results are):
 *      the status line, then Content-Length framing;
 *   3  a URL for http-get's command line.
 * Besides memory errors, the oracle checks what each parser promises: a
 * kept-alive request says HTTP/1.1 or HTTP/1.0 on its first line, a parsed
 * status line starts "HTTP/1.", a reason phrase starts inside the head, a
 * parsed URL has a host without '@', a port in range and a path from '/'.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_parse.h"


static void request(const char *req, size_t len)
{
  enum http_reply r = http_classify_request(req, len);
  CHECK(r == HTTP_KEEP_ALIVE || r == HTTP_KEEP_ALIVE_10 || r == HTTP_CLOSE);
  if (r == HTTP_CLOSE)
    return;
  const char *eol = memchr(req, '\n', len);
  CHECK(eol != NULL && eol - req >= 9);
  CHECK(memcmp(eol - 9, r == HTTP_KEEP_ALIVE ? "HTTP/1.1\r" : "HTTP/1.0\r", 9) == 0);
}

static void response(const char *head)
{
  int status;
  size_t reason_at;
  unsigned long long length;

  if (http_parse_status(head, &status, &reason_at) == 0) {
    CHECK(strncmp(head, "HTTP/1.", 7) == 0);
    CHECK(reason_at <= strlen(head));
    CHECK(status > -100 && status < 1000);
  }
  int framing = http_body_length(head, &length);
  CHECK(framing >= -1 && framing <= 1);
  /* A length comes from a header line of that name, never from the
   * status line or a value. */
  if (framing != 0)
    CHECK(strcasestr(head, "\r\nContent-Length:") != NULL);
}

static void url(const char *s)
{
  struct http_url u;

  memset(&u, 0, sizeof(u));
  if (http_parse_url(s, &u) < 0)
    return;
  size_t hlen = strlen(u.host);
  CHECK(hlen > 0 && hlen < sizeof(u.host));
  CHECK(strchr(u.host, '@') == NULL);
  CHECK(u.port >= 1 && u.port <= 65535);
  CHECK(u.path[0] == '/' && strchr(u.path, '#') == NULL);
  CHECK(u.https == (s[4] == 's' || s[4] == 'S'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  uint8_t mode = data[0] & 3;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  /* An allocation of exactly the bytes the parser may look at. */
  char *copy = malloc(len + 5);
  if (copy == NULL)
    return 0;
  if (len)
    memcpy(copy, text, len);
  switch (mode) {
  case 0: {
    char *exact = malloc(len ? len : 1);
    if (exact != NULL) {
      if (len)
        memcpy(exact, text, len);
      request(exact, len);
      free(exact);
    }
    break;
  }
  case 1:
    memcpy(copy + len, "\r\n\r\n", 5);
    request(copy, len + 4);
    break;
  case 2:
    copy[len] = '\0';
    response(copy);
    break;
  default:
    copy[len] = '\0';
    url(copy);
    break;
  }
  free(copy);
  return 0;
}
