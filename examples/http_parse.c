/* SPDX-License-Identifier: MIT */
/*
 * examples/http_parse.c - see http_parse.h. No I/O and no eddy: plain
 * functions over bytes, so the fuzz target can call them directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

/* ------------------------------------------------------------------------ */
/* http-hello: the request head                                              */
/* ------------------------------------------------------------------------ */

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

/* One pass: each header line costs a memchr and a look at its first
 * letter; only the three that matter are compared. */
enum http_reply http_classify_request(const char *req, size_t len)
{
  const char *end = req + len;
  const char *eol = memchr(req, '\n', len);
  if (eol == NULL || eol - req < 9 || memcmp(eol - 9, "HTTP/1.", 7) != 0 ||
      (eol[-2] != '0' && eol[-2] != '1') || eol[-1] != '\r')
    return HTTP_CLOSE;
  int http11 = eol[-2] == '1';
  int keep = http11, close = 0;
  for (const char *line = eol + 1; line < end && *line != '\r'; line = eol + 1) {
    eol = memchr(line, '\n', (size_t)(end - line));
    if (eol == NULL)
      return HTTP_CLOSE;
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
    return HTTP_CLOSE;
  return http11 ? HTTP_KEEP_ALIVE : HTTP_KEEP_ALIVE_10;
}

/* ------------------------------------------------------------------------ */
/* http-get: the URL and the response head                                   */
/* ------------------------------------------------------------------------ */

int http_parse_url(const char *s, struct http_url *u)
{
  const char *host, *end;
  size_t len;

  if (strncasecmp(s, "http://", 7) == 0)
    host = s + 7;
  else if (strncasecmp(s, "https://", 8) == 0)
    host = s + 8, u->https = 1;
  else
    return -1;
  for (const char *c = s; *c != '\0'; c++)
    if ((unsigned char)*c <= ' ' || *c == 0x7f)
      return -1;
  if (*host == '[') {
    host++;
    end = strchr(host, ']');
    if (end == NULL)
      return -1;
    len = (size_t)(end - host);
    end++;
  } else {
    len = strcspn(host, ":/?#");
    end = host + len;
  }
  if (len == 0 || len >= sizeof(u->host) || memchr(host, '@', len) != NULL)
    return -1;
  memcpy(u->host, host, len);
  u->host[len] = '\0';

  u->port = u->https ? 443 : 80;
  if (*end == ':') {
    char *after;
    long port = strtol(end + 1, &after, 10);
    if (after == end + 1 || port < 1 || port > 65535)
      return -1;
    u->port = (int)port;
    end = after;
  }
  if (*end != '\0' && *end != '/' && *end != '?' && *end != '#')
    return -1;
  len = strcspn(end, "#");
  if (len + 2 > sizeof(u->path))
    return -1;
  snprintf(u->path, sizeof(u->path), "%s%.*s", *end == '/' ? "" : "/",
           (int)len, end);
  return 0;
}

int http_parse_status(const char *head, int *status, size_t *reason_at)
{
  int at = 0;

  if (sscanf(head, "HTTP/1.%*1[01] %3d %n", status, &at) < 1 || at == 0)
    return -1;
  *reason_at = (size_t)at;
  return 0;
}

/* The value of header @name in the head @head, or NULL. */
static const char *find_header(const char *head, const char *name)
{
  size_t n = strlen(name);

  for (const char *line = strstr(head, "\r\n"); line != NULL;
       line = strstr(line, "\r\n")) {
    line += 2;
    if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
      const char *v = line + n + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      return v;
    }
  }
  return NULL;
}

int http_body_length(const char *head, unsigned long long *length)
{
  const char *v = find_header(head, "Content-Length");
  char *end;

  if (v == NULL)
    return 0;
  errno = 0;
  *length = strtoull(v, &end, 10);
  if (errno != 0 || end == v || *v == '-' || (*end != '\r' && *end != ' '))
    return -1;
  return 1;
}
