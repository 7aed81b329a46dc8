/* SPDX-License-Identifier: MIT */
/*
 * TLS under a stream: the filter hooks (stream/transport.h) driving the TLS
 * engine (engine.h), and the handshake waiter.
 *
 * The stream does every syscall; this file only moves bytes between its
 * buffers and the engine:
 *
 *   decode   raw input -> engine -> the stream's plaintext read buffer
 *   encode   queued plaintext -> engine -> raw output
 *   after every engine call, whatever it produced (handshake messages,
 *   alerts, session tickets, KeyUpdate replies) goes to raw output.
 *
 * Handshake interest comes only from what the handshake needs: want_read
 * stays on until it completes, and encode takes nothing before then, so
 * queued plaintext waits without arming write interest (Tornado #2373).
 */
#include <errno.h>
#include <stdlib.h>

#include "eddy/future.h"
#include "eddy/stream.h"
#include "eddy/tls.h"
#include "loop/loop_internal.h"
#include "stream/transport.h"
#include "tls/filter.h"

/* Plaintext handed to the engine per encode call: four full records, so a
 * large write neither sits in one huge ciphertext block nor costs a call
 * per record. */
#define ENCODE_SLICE (64u * 1024u)
/* Room reserved in the read buffer per SSL_read. */
#define DECODE_ROOM (16u * 1024u + 256u)

struct eddy__tls_filter {
  eddy__tls_t *tls;
  eddy_stream_t *s;          /* borrowed: the stream owns the filter */
  struct eddy__filter *f;    /* known from start() on */
  eddy_future_t *waiter;     /* a pending handshake wait (our reference) */
  int eof_seen;              /* the transport reached EOF */
};

static const struct eddy__filter_ops tls_ops;

/* ------------------------------------------------------------------------ */
/* The handshake waiter                                                      */
/* ------------------------------------------------------------------------ */

static void stream_value_free(void *p)
{
  eddy_stream_unref(p);
}

/* Settles the pending waiter, if any, and drops the stream reference it
 * held. Last thing a caller does with @tf: the stream (and @tf) may go. */
static void waiter_settle(struct eddy__tls_filter *tf, int code, int cause,
                          const char *msg)
{
  eddy_future_t *w = tf->waiter;
  eddy_stream_t *s = tf->s;

  if (w == NULL)
    return;
  tf->waiter = NULL;
  if (code == 0) {
    if (eddy_future_resolve(w, eddy_stream_ref(s), stream_value_free) < 0)
      eddy_stream_unref(s); /* cancelled meanwhile: the value stays ours */
  } else {
    eddy_future_reject_cause(w, code, cause, "%s", msg != NULL ? msg : eddy_strerror(code));
  }
  eddy_future_unref(w);
  eddy_stream_unref(s); /* the reference the wait held */
}

eddy_future_t *eddy__tls_filter_wait(struct eddy__tls_filter *tf)
{
  eddy_loop_t *loop = eddy_stream_loop(tf->s);
  int err = eddy__tls_failed(tf->tls);
  eddy_future_t *w;

  if (err != 0)
    return eddy_future_rejected(loop, err, "%s", eddy__tls_error_message(tf->tls));
  if (eddy__tls_handshake_done(tf->tls))
    return eddy_future_resolved(loop, eddy_stream_ref(tf->s), stream_value_free);
  if (tf->waiter != NULL)
    return eddy_future_rejected(loop, EDDY_EHANDSHAKE,
                                "a wait for this stream's handshake is already pending");
  if (eddy_stream_closed(tf->s)) {
    w = eddy_future_new(loop);
    if (w != NULL)
      eddy_future_reject_cause(w, EDDY_ECLOSED, eddy_stream_error(tf->s), "%s",
                               eddy_stream_error_message(tf->s) != NULL
                                   ? eddy_stream_error_message(tf->s)
                                   : eddy_strerror(EDDY_ECLOSED));
    return w;
  }
  w = eddy_future_new(loop);
  if (w == NULL)
    return NULL;
  /* A pending wait keeps the stream alive, as any pending operation does;
   * a close (timeout, reset, a local close) settles it through the closed
   * hook. */
  eddy_stream_ref(tf->s);
  tf->waiter = eddy_future_ref(w);
  return w;
}

/* ------------------------------------------------------------------------ */
/* The filter hooks                                                          */
/* ------------------------------------------------------------------------ */

/* Moves the engine's ciphertext into the stream's raw output. */
static int flush_out(struct eddy__tls_filter *tf)
{
  struct eddy__buf *out = eddy__filter_raw_out(tf->f);
  size_t n;

  while ((n = eddy__tls_output_size(tf->tls)) > 0) {
    if (eddy__buf_reserve(out, n) < 0)
      return eddy__filter_fail(tf->f, -ENOMEM, "out of memory for TLS output");
    eddy__buf_commit(out, eddy__tls_take_output(tf->tls, eddy__buf_tail(out), n));
  }
  return 0;
}

/* The engine failed: tell the waiter, then the stream (which closes). */
static int failed(struct eddy__tls_filter *tf, int code)
{
  const char *msg = eddy__tls_error_message(tf->tls);
  int rc;

  /* The alert, if any: the stream sends raw output once before it
   * closes on our failure. */
  (void)flush_out(tf);
  if (msg == NULL)
    msg = eddy_strerror(code);
  /* A peer that leaves mid-handshake (port scanners, `nc -z`) is not
   * worth a warning; every other TLS failure is (Tornado's "SSL Error"). */
  if (!(tf->eof_seen && !eddy__tls_handshake_done(tf->tls))) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char peer[EDDY_ADDRSTRLEN] = "?";
    if (eddy_stream_peer_address(tf->s, &ss, &len) == 0)
      eddy_format_address((struct sockaddr *)&ss, len, peer, sizeof peer);
    eddy__log(eddy_stream_loop(tf->s), EDDY_LOG_WARNING,
              "TLS error on fd %d (%s): %s", eddy_stream_fd(tf->s), peer, msg);
  }
  rc = eddy__filter_fail(tf->f, code, "%s", msg);
  eddy_stream_ref(tf->s); /* waiter_settle may drop the last other one */
  waiter_settle(tf, code, 0, msg);
  eddy_stream_unref(tf->s);
  return rc;
}

/* Drives the handshake, then decrypts into the read buffer as much as it
 * has room for (max_buffer_size); what does not fit stays inside OpenSSL,
 * decrypted or not, until the stream calls decode again. @return 0, 1 once
 * the peer has closed, or a negative error. */
static int pump(struct eddy__tls_filter *tf)
{
  struct eddy__buf *plain = eddy__filter_plain(tf->f);
  int held = 0;
  ssize_t n;

  if (!eddy__tls_handshake_done(tf->tls)) {
    int r = eddy__tls_handshake(tf->tls);
    if (r < 0)
      return failed(tf, r);
    if (flush_out(tf) < 0)
      return -ENOMEM;
    if (r == 0)
      return 0;
    eddy__filter_want_read(tf->f, 0);
    eddy_stream_ref(tf->s);
    waiter_settle(tf, 0, 0, NULL);
    eddy_stream_unref(tf->s);
  }
  for (;;) {
    size_t room = eddy__filter_plain_room(tf->f);
    if (room == 0) {
      /* Full: is there more to come? A peek also finds a close_notify,
       * which ends the stream now rather than after the next read. */
      char c;
      n = eddy__tls_peek(tf->tls, &c, 1);
      held = n > 0;
      if (held)
        n = 0;
      break;
    }
    if (eddy__buf_reserve(plain, DECODE_ROOM) < 0)
      return eddy__filter_fail(tf->f, -ENOMEM, "out of memory for TLS input");
    if (room > eddy__buf_room(plain))
      room = eddy__buf_room(plain);
    n = eddy__tls_read(tf->tls, eddy__buf_tail(plain), room);
    if (n <= 0)
      break;
    eddy__buf_commit(plain, (size_t)n);
  }
  eddy__filter_holding(tf->f, held);
  if (n < 0 && n != EDDY_ECLOSED)
    return failed(tf, (int)n);
  if (flush_out(tf) < 0)
    return -ENOMEM;
  return n == EDDY_ECLOSED ? 1 : 0;
}

static int tls_start(struct eddy__filter *f)
{
  struct eddy__tls_filter *tf = f->ctx;

  tf->f = f;
  /* The handshake needs input whether or not anyone reads: servers wait
   * for the ClientHello proactively (Tornado #855). */
  eddy__filter_want_read(f, 1);
  if (!eddy__tls_is_server(tf->tls)) {
    int r = eddy__tls_handshake(tf->tls); /* writes the ClientHello */
    if (r < 0)
      return failed(tf, r);
    return flush_out(tf);
  }
  return 0;
}

static int tls_decode(struct eddy__filter *f, const char *raw, size_t len,
                      size_t *consumed)
{
  struct eddy__tls_filter *tf = f->ctx;
  int rc;

  /* After a close_notify nothing more is data; swallow the rest. */
  *consumed = len;
  if (eddy__tls_peer_closed(tf->tls) != EDDY__TLS_OPEN)
    return 0;
  if ((rc = eddy__tls_feed(tf->tls, raw, len)) < 0)
    return eddy__filter_fail(f, rc, "out of memory for TLS input");
  rc = pump(tf);
  if (rc == 1) /* close_notify: the end, whether or not TCP stays open */
    eddy__filter_eof_seen(f);
  return rc < 0 ? rc : 0;
}

static int tls_encode(struct eddy__filter *f, const char *plain, size_t len,
                      size_t *consumed)
{
  struct eddy__tls_filter *tf = f->ctx;
  ssize_t n;

  *consumed = 0;
  if (!eddy__tls_handshake_done(tf->tls))
    return eddy__tls_failed(tf->tls); /* wait for the handshake */
  n = eddy__tls_write(tf->tls, plain, len > ENCODE_SLICE ? ENCODE_SLICE : len);
  if (n < 0)
    return failed(tf, (int)n);
  *consumed = (size_t)n;
  return flush_out(tf);
}

static int tls_eof(struct eddy__filter *f)
{
  struct eddy__tls_filter *tf = f->ctx;
  int rc;

  if (eddy__tls_peer_closed(tf->tls) != EDDY__TLS_OPEN)
    return 0;
  tf->eof_seen = 1;
  eddy__tls_feed_eof(tf->tls);
  /* Clean on a record boundary (with or without close_notify); an error
   * mid-record (truncation) or mid-handshake. */
  rc = pump(tf);
  if (rc == 0 && f->holding)
    /* Plaintext the full buffer had no room for would go with the
     * session: say so, as a plain stream that read it would have. */
    return eddy__filter_fail(f, EDDY_EBUFFERFULL,
                             "the peer closed with more data than max_buffer_size holds");
  return rc < 0 ? rc : 0;
}

static int tls_shutdown(struct eddy__filter *f)
{
  struct eddy__tls_filter *tf = f->ctx;

  eddy__tls_shutdown(tf->tls); /* close_notify, if the session is up */
  return flush_out(tf);
}

/* The stream closed (a deadline, a reset, a local close, the peer's end)
 * while a handshake wait may still be pending: it fails with the cause. */
static void tls_closed(struct eddy__filter *f, int error)
{
  struct eddy__tls_filter *tf = f->ctx;

  waiter_settle(tf, EDDY_ECLOSED, error, eddy_stream_error_message(tf->s));
}

static void tls_destroy(void *ctx)
{
  struct eddy__tls_filter *tf = ctx;

  /* No waiter can be left: the closed hook settled it, and this runs when
   * the stream is freed, after its close. */
  eddy__tls_free(tf->tls);
  free(tf);
}

static const struct eddy__filter_ops tls_ops = {
  .name = "tls",
  .start = tls_start,
  .decode = tls_decode,
  .encode = tls_encode,
  .eof = tls_eof,
  .shutdown = tls_shutdown,
  .destroy = tls_destroy,
  .closed = tls_closed,
};

/* ------------------------------------------------------------------------ */

struct eddy__tls_filter *eddy__tls_filter_new(eddy_stream_t *s, SSL_CTX *ctx,
                                              int server_side,
                                              const char *server_hostname,
                                              int *err, char *errbuf,
                                              size_t errlen)
{
  struct eddy__tls_filter *tf = calloc(1, sizeof *tf);

  if (tf == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  tf->tls = eddy__tls_new(ctx, server_side, server_hostname, err, errbuf, errlen);
  if (tf->tls == NULL) {
    free(tf);
    return NULL;
  }
  tf->s = s;
  return tf;
}

int eddy__tls_filter_install(eddy_stream_t *s, struct eddy__tls_filter *tf)
{
  int rc = eddy__stream_start_filter(s, &tls_ops, tf, 0);
  /* A failure after the filter went in (its start hook failed and closed
   * the stream) leaves it the stream's; only a refusal leaves it ours. */
  if (rc < 0 && eddy__tls_filter_of(s) != tf)
    tls_destroy(tf);
  return rc;
}

struct eddy__tls_filter *eddy__tls_filter_of(const eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__stream_filter(s);

  return f != NULL && f->ops == &tls_ops ? f->ctx : NULL;
}

eddy__tls_t *eddy__tls_filter_engine(const struct eddy__tls_filter *tf)
{
  return tf->tls;
}
