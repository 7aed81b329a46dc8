/* SPDX-License-Identifier: MIT */
/*
 * examples/http-get-coro.c - http-get, written as a coroutine: the same
 * exchange as examples/http-get.c, read top to bottom.
 *
 *   http-get-coro [--cafile FILE] [--insecure] [--timeout SECONDS] URL
 *
 * The same command line, output and exit status as http-get (fetch.h
 * has the parts they share).
 */
#include <eddy.h>

#include "fetch.h"

/* True when @f did not resolve (NULL: out of memory): return it then. */
#define FAILED(f) ((f) == NULL || eddy_future_error(f) != 0)

/* Connect, send the request, read the head, stream the body: each await
 * returns the future it was given, ours to release once. */
static eddy_future_t *get(void *arg)
{
  struct fetch *req = arg;
  char text[3000];
  eddy_future_t *f, *body;

  f = eddy_await(eddy_tcp_connect(req->loop, req->url.host, req->url.port,
                                  req->connect));
  if (FAILED(f))
    return f;
  req->stream = eddy_stream_ref(eddy_future_value(f));
  eddy_future_unref(f);
  f = eddy_await(eddy_stream_write(req->stream, text,
                                   fetch_request_text(req, text, sizeof text)));
  if (FAILED(f))
    return f;
  eddy_future_unref(f);
  f = eddy_await(eddy_stream_read_until(req->stream, "\r\n\r\n", 4,
                                        FETCH_MAX_HEAD_BYTES));
  if (FAILED(f))
    return f;
  body = fetch_body(req, eddy_future_value(f));
  eddy_future_unref(f);
  return body; /* the coroutine's future settles as the body's read */
}

static eddy_future_t *exchange(struct fetch *req)
{
  return eddy_coro_spawn(req->loop, get, req, NULL);
}

int main(int argc, char **argv)
{
  return fetch_main(argc, argv, "http-get-coro", exchange);
}
