/* SPDX-License-Identifier: MIT */
/*
 * examples/http_parse.h - the HTTP text handling of http-hello and
 * http-get, apart from their I/O so tests/fuzz/fuzz_http.c runs the very
 * same code on fuzzer-made requests, responses and URLs.
 */
#ifndef EXAMPLES_HTTP_PARSE_H
#define EXAMPLES_HTTP_PARSE_H

#include <stddef.h>

/* http-hello: how to answer a request. */
enum http_reply { HTTP_KEEP_ALIVE, HTTP_KEEP_ALIVE_10, HTTP_CLOSE };

/* Reads the request head [req, req + len), which ends in CRLF CRLF, and
 * decides how to answer: HTTP/1.1 keeps the connection unless
 * "Connection: close", HTTP/1.0 only with "Connection: keep-alive"; a
 * request announcing a body (which http-hello does not read) or one that
 * does not parse closes it. */
enum http_reply http_classify_request(const char *req, size_t len);

/* http-get: a URL, http[s]://host[:port][/path], host may be [IPv6]. */
struct http_url {
  int https;
  char host[256];
  int port;
  char path[2048];
};

/* Fills @u (zeroed by the caller) from @s. @return 0 or -1. */
int http_parse_url(const char *s, struct http_url *u);

/* The status line of the NUL-terminated response head @head: the status
 * code and where the reason phrase starts (an offset into @head).
 * @return 0, or -1 if it is not "HTTP/1.0" or "HTTP/1.1" and a code. */
int http_parse_status(const char *head, int *status, size_t *reason_at);

/* The body's framing from the head's Content-Length: @return 1 with
 * *@length set, 0 if there is none (the body runs until the server
 * closes), -1 if it is not a number. */
int http_body_length(const char *head, unsigned long long *length);

#endif
