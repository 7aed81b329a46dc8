/* SPDX-License-Identifier: MIT */
/*
 * The byte-filter layer: installing a filter, feeding it raw input, and
 * flushing its output. The interface and the TLS sketch are in
 * transport.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "stream/stream_internal.h"

/* Plaintext handed to encode per call: big enough for several TLS
 * records, small enough to keep raw_out bounded. */
#define ENCODE_SLICE (64u * 1024u)

struct eddy__buf *eddy__filter_plain(struct eddy__filter *f)
{
  return &f->stream->rbuf;
}

struct eddy__buf *eddy__filter_raw_out(struct eddy__filter *f)
{
  return &f->raw_out;
}

void eddy__filter_want_read(struct eddy__filter *f, int on)
{
  f->want_read = on != 0;
}

size_t eddy__filter_plain_room(struct eddy__filter *f)
{
  size_t have = eddy__buf_len(&f->stream->rbuf), max = f->stream->opt->max_buffer_size;
  return have < max ? max - have : 0;
}

void eddy__filter_holding(struct eddy__filter *f, int on)
{
  f->holding = on != 0;
}

int eddy__filter_fail(struct eddy__filter *f, int code, const char *fmt, ...)
{
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  free(f->message);
  f->message = msg;
  f->fail_code = code;
  return code;
}

struct eddy__filter *eddy__stream_filter(const eddy_stream_t *s)
{
  return s ? eddy__filter_of(s) : NULL;
}

void eddy__filter_eof_seen(struct eddy__filter *f)
{
  f->eof_seen = 1;
}

/*
 * The last words of a stream about to close: one non-blocking attempt to
 * hand raw_out (a fatal alert, a close_notify) to the kernel, with
 * MSG_NOSIGNAL (SIGPIPE-safe on pipes too). Nothing waits for the rest:
 * the stream closes next either way. If the kernel took only part or none
 * of it for now (EAGAIN, a short count), the close hands the rest and the
 * fd to the loop to send on (eddy__stream_close, eddy__loop_linger); other
 * errors mean the peer is gone.
 */
void eddy__filter_last_send(eddy_stream_t *s)
{
  struct eddy__buf *out = &eddy__filter_of(s)->raw_out;
  size_t n = eddy__buf_len(out);
  if (n == 0 || s->state != EDDY__ST_OPEN || s->fd < 0)
    return;
  struct iovec iov = {eddy__buf_head(out), n};
  ssize_t r = eddy__write_raw(s, &iov, 1);
  if (r > 0) {
    eddy__buf_consume(out, (size_t)r);
    eddy__stream_note_io(s);
  }
  eddy__filter_of(s)->last_words_left = eddy__buf_len(out) > 0 &&
                               (r > 0 || errno == EAGAIN || errno == EWOULDBLOCK);
}

/* A hook failed: the output it left (the alert telling the peer why) gets
 * its one try, then the stream closes with the hook's error. */
void eddy__filter_failed(eddy_stream_t *s, int rc)
{
  eddy__filter_last_send(s);
  eddy__stream_close(s, rc, eddy__filter_of(s)->message);
}

/*
 * A close without error is coming (local, or the peer's orderly end): the
 * filter appends its closing record (TLS close_notify), once, unless
 * queued plaintext is about to be dropped -- a closing record would tell
 * the peer it got everything. @return 1 if raw_out holds bytes to send.
 */
int eddy__filter_say_goodbye(eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__filter_of(s);
  if (!f || !s->filter_started || s->state != EDDY__ST_OPEN)
    return 0;
  if (!s->filter_closing && eddy__wq_empty(&s->wq)) {
    s->filter_closing = 1;
    if (f->ops->shutdown && f->ops->shutdown(f) < 0)
      return 0; /* no record to send; the close goes on */
  }
  return eddy__buf_len(&f->raw_out) > 0;
}

void eddy__filter_free(eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__filter_of(s);
  if (!f)
    return;
  s->cold->filter = NULL;
  if (f->ops->destroy)
    f->ops->destroy(f->ctx);
  eddy__buf_release(&f->raw_in);
  eddy__buf_release(&f->raw_out);
  free(f->message);
  free(f);
}

/* The transport reached EOF: an orderly close unless the filter calls it
 * a truncation. */
void eddy__filter_eof(eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__filter_of(s);
  int rc = f->ops->eof ? f->ops->eof(f) : 0;
  if (rc < 0)
    eddy__filter_failed(s, rc);
  else if (!eddy__stream_read_end(s))
    eddy__stream_close(s, 0, NULL);
}

/* Offers raw_in to decode until it takes no more (or, for a filter that
 * holds input, once even with none), then sends what that produced (and
 * plaintext the filter may accept now, e.g. once its handshake finished).
 * If decode saw the peer's end (eddy__filter_eof_seen) the stream closes
 * as on EOF, after its own closing record's one try.
 * @return 0, or -1 if the stream closed. */
int eddy__filter_input(eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__filter_of(s);
  int resume = f->holding;
  while ((eddy__buf_len(&f->raw_in) || resume) && !f->eof_seen) {
    resume = 0;
    size_t len = eddy__buf_len(&f->raw_in), used = 0;
    int rc = f->ops->decode(f, eddy__buf_head(&f->raw_in), len, &used);
    if (rc < 0) {
      eddy__filter_failed(s, rc);
      return -1;
    }
    if (used > len)
      used = len;
    eddy__buf_consume(&f->raw_in, used);
    if (used == 0)
      break;
  }
  /* What decode produced goes out first, the end or not: one input can
   * finish the handshake (session tickets to send) and end the session. */
  if ((eddy__buf_len(&f->raw_out) || !eddy__wq_empty(&s->wq)) && !s->write_waiting)
    eddy__write_flush(s);
  if (s->state == EDDY__ST_CLOSED)
    return -1;
  if (f->eof_seen && !s->read_ended) {
    /* Plaintext decoded before the end is in the read buffer: the end
     * completes the pending read with it (R9), as a recv of 0 would. The
     * write side may go on (eddy__stream_read_end, with write interest
     * for what the kernel did not take); if not, the stream closes now,
     * after its own closing record's one try. */
    if (eddy__stream_read_end(s))
      return s->state == EDDY__ST_CLOSED ? -1 : 0;
    eddy__filter_say_goodbye(s);
    eddy__filter_last_send(s);
    eddy__stream_close(s, 0, NULL);
    return -1;
  }
  return 0;
}

/*
 * The filter's half of eddy__write_flush: send raw_out; once it is all in
 * the kernel, everything encode consumed so far is acknowledged, and the
 * next plaintext is encoded. Bounded per call like the plain path.
 */
int eddy__filter_output(eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__filter_of(s);
  size_t total = 0;

  for (int rounds = 0;; rounds++) {
    if (rounds >= EDDY__IO_ROUNDS || total >= EDDY__IO_BUDGET) {
      s->write_waiting = 1;
      break;
    }
    size_t out = eddy__buf_len(&f->raw_out);
    if (out) {
      ssize_t r = eddy__write_some(s, eddy__buf_head(&f->raw_out), out);
      if (r < 0)
        return -1;
      eddy__buf_consume(&f->raw_out, (size_t)r);
      total += (size_t)r;
      if ((size_t)r < out)
        break; /* eddy__write_some armed write interest */
    }
    s->acked = s->wq.sent;
    if (eddy__wq_empty(&s->wq) || !s->filter_started)
      break;

    struct eddy__piece *p = s->wq.head;
    size_t n = p->len < ENCODE_SLICE ? p->len : ENCODE_SLICE;
    const char *bytes = p->ptr;
    char *scratch = NULL;
    if (p->kind == EDDY__PIECE_FILE) {
      scratch = malloc(n ? n : 1);
      ssize_t got = scratch ? pread(p->file_fd, scratch, n, p->file_off) : -1;
      if (got <= 0) {
        int e = got < 0 ? (scratch ? errno : ENOMEM) : EIO;
        free(scratch);
        eddy__stream_close(s, -e, got == 0 ? "write_file: the file ended before len bytes" : NULL);
        return -1;
      }
      bytes = scratch;
      n = (size_t)got;
    }
    size_t used = 0;
    int rc = f->ops->encode(f, bytes, n, &used);
    free(scratch);
    if (rc < 0) {
      eddy__filter_failed(s, rc);
      return -1;
    }
    if (used > n)
      used = n;
    eddy__wq_advance(&s->wq, used);
    if (used == 0 && eddy__buf_len(&f->raw_out) == 0)
      break; /* not accepting yet: retried after the next decode, no busy loop */
  }
  return 0;
}

/* Runs the filter's start hook once the transport is connected. */
int eddy__filter_begin(eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__filter_of(s);
  if (s->filter_started)
    return 0;
  s->filter_started = 1;
  if (f->ops->start) {
    int rc = f->ops->start(f);
    if (rc < 0) {
      eddy__filter_failed(s, rc);
      return rc;
    }
  }
  if (eddy__buf_len(&f->raw_in) && eddy__filter_input(s) < 0)
    return s->error ? s->error : EDDY_ECLOSED;
  if (eddy__buf_len(&f->raw_out))
    eddy__write_flush(s);
  if (s->state == EDDY__ST_CLOSED)
    return s->error ? s->error : EDDY_ECLOSED;
  return 0;
}

int eddy__stream_start_filter(eddy_stream_t *s, const struct eddy__filter_ops *ops, void *ctx,
                              unsigned flags)
{
  if (!s || !ops || !ops->decode || !ops->encode)
    return EDDY_EUSAGE;
  if (s->state == EDDY__ST_CLOSED)
    return EDDY_ECLOSED;
  if (eddy__filter_of(s))
    return EDDY_EUSAGE;
  if (s->rd.kind != EDDY__RK_NONE || s->in_chunk_cb || !eddy__wq_empty(&s->wq) || eddy__wq_waiting(&s->wq) ||
      eddy__raw_out_len(s) || s->shut_requested)
    return EDDY_ENOTIDLE;
  if (eddy__buf_len(&s->rbuf) && !(flags & EDDY__FILTER_ADOPT_BUFFERED))
    return EDDY_ENOTIDLE;
  /* The filter hangs off the cold part: both made before anything changes. */
  struct eddy__filter *f = eddy__stream_cold(s) ? calloc(1, sizeof(*f)) : NULL;
  if (!f)
    return -ENOMEM;
  f->ops = ops;
  f->ctx = ctx;
  f->stream = s;
  s->cold->filter = f;
  s->kernel_unread = 0; /* the filter reads whatever is there */
  if (eddy__buf_len(&s->rbuf)) {
    /* The peer's first records arrived behind the plaintext: they are the
     * filter's input now (h2o does this for STARTTLS). */
    f->raw_in = s->rbuf;
    memset(&s->rbuf, 0, sizeof(s->rbuf));
  }
  int rc = 0;
  if (s->state == EDDY__ST_OPEN) {
    eddy__stream_hold(s);
    rc = eddy__filter_begin(s);
    eddy__io_update(s);
    eddy__stream_release(s);
  }
  return rc < 0 ? rc : 0;
}
