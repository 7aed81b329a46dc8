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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <eddy.h>

#include "http_parse.h"

#define MAX_HEAD_BYTES (64 * 1024)

struct request {
  struct http_url url;
  eddy_stream_t *stream;
  char failure[300]; /* why it failed, once it has */
};

/* ------------------------------------------------------------------------ */
/* The exchange, one step per function                                       */
/* ------------------------------------------------------------------------ */

/* Connected: send the request. */
static eddy_future_t *send_request(eddy_future_t *connected, void *arg)
{
  struct request *req = arg;
  const struct http_url *u = &req->url;
  char host[300], text[3000];
  int len;

  req->stream = eddy_stream_ref(eddy_future_value(connected));
  snprintf(host, sizeof(host), strchr(u->host, ':') ? "[%s]" : "%s", u->host);
  if (u->port != (u->https ? 443 : 80))
    snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%d", u->port);
  len = snprintf(text, sizeof(text),
                 "GET %s HTTP/1.0\r\n"
                 "Host: %s\r\n"
                 "User-Agent: eddy-http-get\r\n"
                 "Connection: close\r\n"
                 "\r\n",
                 u->path, host);
  return eddy_stream_write(req->stream, text, (size_t)len);
}

/* Sent: read the status line and headers. */
static eddy_future_t *read_head(eddy_future_t *sent, void *arg)
{
  struct request *req = arg;

  (void)sent;
  return eddy_stream_read_until(req->stream, "\r\n\r\n", 4, MAX_HEAD_BYTES);
}

static void write_chunk(eddy_stream_t *s, const void *data, size_t len,
                        void *arg)
{
  (void)s;
  (void)arg;
  fwrite(data, 1, len, stdout);
}

/* Head read: check the status, then stream the body to stdout. */
static eddy_future_t *read_body(eddy_future_t *head_read, void *arg)
{
  struct request *req = arg;
  const char *head = eddy_future_value(head_read); /* NUL-terminated */
  unsigned long long body_length;
  size_t reason_at;
  int status;

  if (http_parse_status(head, &status, &reason_at) < 0) {
    snprintf(req->failure, sizeof(req->failure), "bad response");
    return EDDY_NO_VALUE;
  }
  if (status < 200 || status > 299) {
    snprintf(req->failure, sizeof(req->failure), "HTTP %d %.*s", status,
             (int)strcspn(head + reason_at, "\r\n"), head + reason_at);
    return EDDY_NO_VALUE;
  }
  switch (http_body_length(head, &body_length)) {
  case 0:
    return eddy_stream_read_until_close_chunked(req->stream, write_chunk, req);
  case -1:
    snprintf(req->failure, sizeof(req->failure), "bad Content-Length");
    return EDDY_NO_VALUE;
  }
  return eddy_stream_read_bytes_chunked(req->stream, (size_t)body_length,
                                        write_chunk, req);
}

/* Any failure on the way: one line saying what went wrong. */
static eddy_future_t *explain_failure(eddy_future_t *failed, void *arg)
{
  struct request *req = arg;
  int code = eddy_future_error(failed), cause = eddy_future_cause(failed);
  const char *why;

  if (code == EDDY_ETIMEOUT || cause == EDDY_ETIMEOUT)
    why = "timed out";
  else if (cause == -ECONNREFUSED)
    why = "connection refused";
  else if (code == EDDY_ENONAME)
    why = "name does not resolve";
  else if (cause == EDDY_EUNSATISFIABLE)
    why = "response head too long";
  else
    why = eddy_future_message(failed);
  snprintf(req->failure, sizeof(req->failure), "%s", why);
  return EDDY_NO_VALUE; /* handled */
}

/* The library's warnings ("TLS error on fd 5: ...") would repeat the reason
 * explain_failure gives: keep stderr to that one line, errors aside. */
static void log_errors_only(eddy_log_level_t level, const char *message,
                            void *arg)
{
  (void)arg;
  if (level >= EDDY_LOG_ERROR)
    fprintf(stderr, "http-get: %s\n", message);
}

/* ------------------------------------------------------------------------ */

static int usage(void)
{
  fprintf(stderr, "usage: http-get [--cafile FILE] [--insecure] "
                  "[--timeout SECONDS] URL\n");
  return 2;
}

/* The https:// context: verify the server's chain and name, unless
 * --insecure. Returns 0, or -1 with a message on stderr. */
static int make_tls_context(const char *cafile, int insecure,
                            struct ssl_ctx_st **ctx)
{
  eddy_tls_options_t tls;
  char err[512];

  eddy_tls_options_init(&tls);
  tls.cafile = cafile; /* NULL: the system's CAs */
  if (insecure)
    tls.verify = EDDY_TLS_VERIFY_NONE;
  if (eddy_tls_client_context(&tls, ctx, err, sizeof(err)) < 0) {
    fprintf(stderr, "http-get: %s\n", err);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  struct request req;
  eddy_tcp_connect_options_t options;
  eddy_loop_t *loop;
  eddy_future_t *f;
  const char *url = NULL, *cafile = NULL;
  double timeout = 0;
  int status, insecure = 0;

  memset(&req, 0, sizeof(req));
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--cafile") == 0 && i + 1 < argc) {
      cafile = argv[++i];
    } else if (strcmp(argv[i], "--insecure") == 0) {
      insecure = 1;
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      char *end;
      timeout = strtod(argv[++i], &end);
      if (*end != '\0' || !(timeout >= 0))
        return usage();
    } else if (argv[i][0] == '-' || url != NULL) {
      return usage();
    } else {
      url = argv[i];
    }
  }
  if (url == NULL)
    return usage();
  if (http_parse_url(url, &req.url) < 0) {
    fprintf(stderr, "http-get: bad URL\n");
    return 2;
  }
  eddy_tcp_connect_options_init(&options);
  if (req.url.https && make_tls_context(cafile, insecure, &options.tls_ctx) < 0)
    return 1;

  loop = eddy_loop_new();
  if (loop == NULL) {
    perror("http-get: eddy_loop_new");
    eddy_tls_context_free(options.tls_ctx);
    return 1;
  }
  eddy_loop_set_logger(loop, log_errors_only, NULL);
  /* For https the connect resolves after the handshake; the URL's host is
   * the name checked and sent as SNI (options.server_hostname NULL). */
  f = eddy_tcp_connect(loop, req.url.host, req.url.port, &options);
  eddy_tls_context_free(options.tls_ctx); /* the connect holds its own */
  f = eddy_then_ok(f, send_request, &req);
  f = eddy_then_ok(f, read_head, &req);
  f = eddy_then_ok(f, read_body, &req);
  if (timeout > 0)
    f = eddy_with_timeout(f, timeout);
  f = eddy_catch(f, explain_failure, &req);
  if (f == NULL) {
    fprintf(stderr, "http-get: out of memory\n");
    return 1;
  }
  eddy_loop_run_until(loop, f, 0);
  eddy_future_unref(f);
  eddy_stream_unref(req.stream);
  eddy_loop_free(loop);

  status = 0;
  if (fflush(stdout) != 0 || ferror(stdout)) {
    snprintf(req.failure, sizeof(req.failure), "cannot write the body: %s",
             strerror(errno));
  }
  if (req.failure[0] != '\0') {
    fprintf(stderr, "http-get: %s\n", req.failure);
    status = 1;
  }
  return status;
}
