/* SPDX-License-Identifier: MIT */
/*
 * examples/http-get.c - fetch a URL over HTTP/1.0 and write the body to
 * stdout, byte for byte.
 *
 *   http-get [--cafile FILE] [--insecure] [--timeout SECONDS] URL
 *
 * One chain of futures: connect (resolving the name, Happy Eyeballs,
 * and for https:// the TLS handshake), send the request, read the head
 * (bounded), then stream the body to stdout: Content-Length bytes, or
 * everything until the server closes. --timeout covers the whole exchange.
 *
 * https:// verifies the server's certificate against the system's CAs (or
 * only those in --cafile) and checks it is for the URL's host, which is
 * also sent as SNI. --insecure turns both checks off.
 *
 * Exit status: 0 for a 2xx response; 1 with a one-line reason on stderr
 * for anything else ("HTTP 404 Not Found", "connection refused", "timed
 * out", "name does not resolve", "TLS handshake failed: certificate verify
 * failed: ...", ...); 2 for bad usage or a bad URL.
 */
#include <eddy.h>

#include "fetch.h"

/* Connected: send the request. */
static eddy_future_t *send_request(eddy_future_t *connected, void *arg)
{
  struct fetch *req = arg;
  char text[3000];

  req->stream = eddy_stream_ref(eddy_future_value(connected));
  return eddy_stream_write(req->stream, text,
                           fetch_request_text(req, text, sizeof(text)));
}

/* Sent: read the status line and headers. */
static eddy_future_t *read_head(eddy_future_t *sent, void *arg)
{
  struct fetch *req = arg;

  (void)sent;
  return eddy_stream_read_until(req->stream, "\r\n\r\n", 4,
                                FETCH_MAX_HEAD_BYTES);
}

/* Head read: check the status, then stream the body to stdout. */
static eddy_future_t *read_body(eddy_future_t *head_read, void *arg)
{
  return fetch_body(arg, eddy_future_value(head_read));
}

/* The exchange, one chain: connect (for https the connect resolves after
 * the handshake; the URL's host is the name checked and sent as SNI), send,
 * read the head, stream the body. */
static eddy_future_t *exchange(struct fetch *req)
{
  eddy_future_t *f = eddy_tcp_connect(req->loop, req->url.host, req->url.port,
                                      req->connect);
  f = eddy_then_ok(f, send_request, req);
  f = eddy_then_ok(f, read_head, req);
  return eddy_then_ok(f, read_body, req);
}

int main(int argc, char **argv)
{
  return fetch_main(argc, argv, "http-get", exchange);
}
