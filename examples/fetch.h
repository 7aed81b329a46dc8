/* SPDX-License-Identifier: MIT */
/*
 * examples/fetch.h - what the two HTTP clients (http-get, chained
 * callbacks; http-get-coro, a coroutine) share, so that each example file
 * is only its exchange: the command line, the URL, the request text, the
 * response head's checks, the body's output, and the program around it.
 */
#ifndef EDDY_EXAMPLES_FETCH_H
#define EDDY_EXAMPLES_FETCH_H

#include <eddy.h>

#include "http_parse.h"

/** The most bytes of response head read before giving up. */
#define FETCH_MAX_HEAD_BYTES (64 * 1024)

/** One fetch, as fetch_main() hands it to the exchange. */
struct fetch {
  struct http_url url;
  eddy_loop_t *loop;
  const eddy_tcp_connect_options_t *connect; /* for eddy_tcp_connect() */
  eddy_stream_t *stream; /* a reference, once connected (fetch_main drops it) */
  char failure[300];     /* why it failed, once it has */
};

/**
 * The exchange: returns a new reference to a future that settles once the
 * body has been written to stdout, is rejected if something failed on the
 * way (fetch_main explains it), or resolves early with req->failure set.
 */
typedef eddy_future_t *(*fetch_fn)(struct fetch *req);

/**
 * A whole HTTP client's main(): parses
 * `[--cafile FILE] [--insecure] [--timeout SECONDS] URL`, makes the https
 * context, runs @p exchange on a new loop (bounded by --timeout), and
 * reports the outcome: 0 for a 2xx response, 1 with a one-line reason on
 * stderr, 2 for bad usage or a bad URL. Error messages start with @p name.
 */
int fetch_main(int argc, char **argv, const char *name, fetch_fn exchange);

/** Writes the GET request for req->url into @p buf; returns its length. */
size_t fetch_request_text(const struct fetch *req, char *buf, size_t size);

/**
 * Checks a response head (NUL-terminated): the status must be 2xx. Then
 * starts streaming the body to stdout: Content-Length bytes, or all until
 * the server closes.
 *
 * @return a new reference to the body's read, or EDDY_NO_VALUE with
 *         req->failure set ("HTTP 404 Not Found", "bad response", ...).
 */
eddy_future_t *fetch_body(struct fetch *req, const char *head);

#endif
