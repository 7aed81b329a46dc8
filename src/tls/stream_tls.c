/* SPDX-License-Identifier: MIT */
/*
 * TLS streams: eddy_stream_new_tls(), eddy_stream_start_tls(),
 * eddy_stream_wait_for_handshake() and the accessors (eddy/tls.h).
 * The work is in filter.c; this file checks arguments and maps errors.
 */
#include <errno.h>
#include <unistd.h>

#include "eddy/tls.h"
#include "tls/engine.h"
#include "tls/filter.h"

eddy_stream_t *eddy_stream_new_tls(eddy_loop_t *loop, int fd, SSL_CTX *ctx,
                                   int server_side, const char *server_hostname,
                                   const eddy_stream_options_t *options)
{
  eddy_stream_t *s;
  struct eddy__tls_filter *tf;
  int err = 0, rc;

  if (ctx == NULL || loop == NULL) {
    if (fd >= 0)
      close(fd);
    errno = EINVAL;
    return NULL;
  }
  s = eddy_stream_new_socket(loop, fd, options);
  if (s == NULL)
    return NULL;
  tf = eddy__tls_filter_new(s, ctx, server_side, server_hostname, &err, NULL, 0);
  rc = tf != NULL ? eddy__tls_filter_install(s, tf) : err;
  if (rc < 0) {
    eddy_stream_unref(s); /* closes fd */
    errno = rc == -ENOMEM ? ENOMEM : EINVAL;
    return NULL;
  }
  return s;
}

eddy_future_t *eddy_stream_start_tls(eddy_stream_t *s, int server_side,
                                     SSL_CTX *ctx, const char *server_hostname)
{
  char msg[256];
  struct eddy__tls_filter *tf;
  int err = 0, rc;

  if (s == NULL)
    return NULL;
  if (eddy__tls_filter_of(s) != NULL)
    return eddy_future_rejected(eddy_stream_loop(s), EDDY_EUSAGE,
                                "the stream already speaks TLS");
  tf = eddy__tls_filter_new(s, ctx, server_side, server_hostname, &err, msg, sizeof msg);
  if (tf == NULL)
    return eddy_future_rejected(eddy_stream_loop(s), err, "%s", msg);
  rc = eddy__tls_filter_install(s, tf);
  if (rc == EDDY_ENOTIDLE)
    return eddy_future_rejected(eddy_stream_loop(s), rc,
                                "stream is not idle; cannot start TLS (a read or "
                                "write is pending or input is buffered)");
  if (rc == EDDY_ECLOSED) {
    /* As any operation on a closed stream: the close's error is the cause. */
    eddy_future_t *f = eddy_future_new(eddy_stream_loop(s));
    int cause = eddy_stream_error(s);
    const char *why = eddy_stream_error_message(s);
    if (why == NULL)
      why = cause ? eddy_strerror(cause) : "";
    if (f != NULL)
      eddy_future_reject_cause(f, rc, cause, "cannot start TLS: stream closed%s%s",
                               *why ? ": " : "", why);
    return f;
  }
  if (rc < 0)
    return eddy_future_rejected(eddy_stream_loop(s), rc, "cannot start TLS: %s",
                                eddy_strerror(rc));
  return eddy__tls_filter_wait(tf);
}

eddy_future_t *eddy_stream_wait_for_handshake(eddy_stream_t *s)
{
  struct eddy__tls_filter *tf = eddy__tls_filter_of(s);

  if (s == NULL)
    return NULL;
  if (tf == NULL)
    return eddy_future_rejected(eddy_stream_loop(s), EDDY_EUSAGE,
                                "not a TLS stream");
  return eddy__tls_filter_wait(tf);
}

/* The engine of a TLS stream, or NULL. */
static eddy__tls_t *engine_of(const eddy_stream_t *s)
{
  struct eddy__tls_filter *tf = eddy__tls_filter_of(s);
  return tf != NULL ? eddy__tls_filter_engine(tf) : NULL;
}

int eddy_stream_is_tls(const eddy_stream_t *s)
{
  return engine_of(s) != NULL;
}

int eddy_stream_tls_handshake_done(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL && eddy__tls_handshake_done(t);
}

const char *eddy_stream_tls_version(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL ? eddy__tls_version(t) : NULL;
}

const char *eddy_stream_tls_cipher(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL ? eddy__tls_cipher(t) : NULL;
}

const char *eddy_stream_tls_alpn(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL ? eddy__tls_alpn(t) : NULL;
}

const char *eddy_stream_tls_server_name(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL ? eddy__tls_server_name(t) : NULL;
}

X509 *eddy_stream_tls_peer_certificate(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL ? eddy__tls_peer_certificate(t) : NULL;
}

const char *eddy_stream_tls_peer_subject(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL ? eddy__tls_peer_subject(t) : NULL;
}

long eddy_stream_tls_verify_result(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL ? eddy__tls_verify_result(t) : 0;
}

int eddy_stream_tls_close_notify(const eddy_stream_t *s)
{
  eddy__tls_t *t = engine_of(s);
  return t != NULL && eddy__tls_peer_closed(t) == EDDY__TLS_CLOSE_NOTIFY;
}
