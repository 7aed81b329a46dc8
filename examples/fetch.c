/* SPDX-License-Identifier: MIT */
/*
 * examples/fetch.c - the parts of the HTTP client examples that are not
 * the exchange itself (fetch.h).
 */
#include "fetch.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* The request, and the response's head                                      */
/* ------------------------------------------------------------------------ */

/* (The parsing itself is in http_parse.c, shared with the fuzz target.) */

size_t fetch_request_text(const struct fetch *req, char *buf, size_t size)
{
  const struct http_url *u = &req->url;
  char host[300];
  int len;

  snprintf(host, sizeof(host), strchr(u->host, ':') ? "[%s]" : "%s", u->host);
  if (u->port != (u->https ? 443 : 80))
    snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%d", u->port);
  len = snprintf(buf, size,
                 "GET %s HTTP/1.0\r\n"
                 "Host: %s\r\n"
                 "User-Agent: eddy-http-get\r\n"
                 "Connection: close\r\n"
                 "\r\n",
                 u->path, host);
  return len < 0 ? 0 : (size_t)len < size ? (size_t)len : size - 1;
}

/* The body's length from a 2xx head, -1 if it has no Content-Length, or
 * -2 with req->failure set. */
static long long check_head(struct fetch *req, const char *head)
{
  unsigned long long body_length;
  size_t reason_at;
  int status;

  if (http_parse_status(head, &status, &reason_at) < 0) {
    snprintf(req->failure, sizeof(req->failure), "bad response");
    return -2;
  }
  if (status < 200 || status > 299) {
    snprintf(req->failure, sizeof(req->failure), "HTTP %d %.*s", status,
             (int)strcspn(head + reason_at, "\r\n"), head + reason_at);
    return -2;
  }
  switch (http_body_length(head, &body_length)) {
  case 0:
    return -1;
  case 1:
    if (body_length <= (unsigned long long)LLONG_MAX)
      return (long long)body_length;
    break; /* too long to be true */
  default:
    break;
  }
  snprintf(req->failure, sizeof(req->failure), "bad Content-Length");
  return -2;
}

static void write_chunk(eddy_stream_t *s, const void *data, size_t len,
                        void *arg)
{
  (void)s;
  (void)arg;
  fwrite(data, 1, len, stdout);
}

eddy_future_t *fetch_body(struct fetch *req, const char *head)
{
  long long length = check_head(req, head);

  if (length == -2)
    return EDDY_NO_VALUE;
  if (length == -1)
    return eddy_stream_read_until_close_chunked(req->stream, write_chunk, req);
  return eddy_stream_read_bytes_chunked(req->stream, (size_t)length,
                                        write_chunk, req);
}

/* ------------------------------------------------------------------------ */
/* The program around the exchange                                           */
/* ------------------------------------------------------------------------ */

/* Any failure on the way: one line saying what went wrong. */
static eddy_future_t *explain_failure(eddy_future_t *failed, void *arg)
{
  struct fetch *req = arg;
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
  if (level >= EDDY_LOG_ERROR)
    fprintf(stderr, "%s: %s\n", (const char *)arg, message);
}

static int usage(const char *name)
{
  fprintf(stderr, "usage: %s [--cafile FILE] [--insecure] "
                  "[--timeout SECONDS] URL\n", name);
  return 2;
}

/* The https:// context: verify the server's chain and name, unless
 * --insecure. Returns 0, or -1 with a message on stderr. */
static int make_tls_context(const char *name, const char *cafile,
                            int insecure, struct ssl_ctx_st **ctx)
{
  eddy_tls_options_t tls;
  char err[512];

  eddy_tls_options_init(&tls);
  tls.cafile = cafile; /* NULL: the system's CAs */
  if (insecure)
    tls.verify = EDDY_TLS_VERIFY_NONE;
  if (eddy_tls_client_context(&tls, ctx, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s: %s\n", name, err);
    return -1;
  }
  return 0;
}

int fetch_main(int argc, char **argv, const char *name, fetch_fn exchange)
{
  struct fetch req;
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
        return usage(name);
    } else if (argv[i][0] == '-' || url != NULL) {
      return usage(name);
    } else {
      url = argv[i];
    }
  }
  if (url == NULL)
    return usage(name);
  if (http_parse_url(url, &req.url) < 0) {
    fprintf(stderr, "%s: bad URL\n", name);
    return 2;
  }
  eddy_tcp_connect_options_init(&options);
  if (req.url.https && make_tls_context(name, cafile, insecure, &options.tls_ctx) < 0)
    return 1;

  loop = eddy_loop_new();
  if (loop == NULL) {
    fprintf(stderr, "%s: eddy_loop_new: %s\n", name, strerror(errno));
    eddy_tls_context_free(options.tls_ctx);
    return 1;
  }
  eddy_loop_set_logger(loop, log_errors_only, (void *)name);
  req.loop = loop;
  req.connect = &options;
  f = exchange(&req);
  if (timeout > 0)
    f = eddy_with_timeout(f, timeout);
  f = eddy_catch(f, explain_failure, &req);
  if (f == NULL) {
    fprintf(stderr, "%s: out of memory\n", name);
    eddy_loop_free(loop);
    eddy_tls_context_free(options.tls_ctx);
    return 1;
  }
  eddy_loop_run_until(loop, f, 0);
  eddy_future_unref(f);
  eddy_stream_unref(req.stream);
  eddy_loop_free(loop);
  /* Not sooner: a coroutine may connect well after the exchange began (a
   * connect takes a reference of its own for its duration). */
  eddy_tls_context_free(options.tls_ctx);

  status = 0;
  if (fflush(stdout) != 0 || ferror(stdout)) {
    snprintf(req.failure, sizeof(req.failure), "cannot write the body: %s",
             strerror(errno));
  }
  if (req.failure[0] != '\0') {
    fprintf(stderr, "%s: %s\n", name, req.failure);
    status = 1;
  }
  return status;
}
