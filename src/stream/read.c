/* SPDX-License-Identifier: MIT */
/*
 * The read kinds: starting a read, satisfying it from the buffer, finishing
 * it, cancelling it, and what closing does to it (R9).
 *
 * A read is always set up as the stream's one pending operation with a
 * pending future, then tried against the buffer (R2), then against the
 * kernel (R4, io.c), and only then left waiting for readiness. So a read
 * the buffer satisfies returns a future already resolved, and a read that
 * fails on the spot (closed, unsatisfiable) returns one already rejected,
 * through the same code path as the event-driven case.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "stream/stream_internal.h"

/* ------------------------------------------------------------------------ */
/* Finishing                                                                 */
/* ------------------------------------------------------------------------ */

/* Frees the op's resources and forgets it. Does not touch the future. */
static void op_reset(eddy_stream_t *s)
{
  struct eddy__read_op *rd = &s->rd;
  if (rd->kind == EDDY__RK_REGEX && rd->re) {
    regfree(rd->re);
    free(rd->re);
  } else if (rd->kind == EDDY__RK_UNTIL && rd->dlen > sizeof(rd->dsmall)) {
    free(rd->dheap);
  }
  memset(rd, 0, sizeof(*rd));
}

void eddy__read_clear(eddy_stream_t *s)
{
  if (s->rd.future) {
    eddy_future_on_cancel(s->rd.future, NULL, NULL);
    eddy_future_unref(s->rd.future);
  }
  op_reset(s);
}

/*
 * The op has been settled: forget it and drop the reference it held on the
 * stream. Callers hold a reference of their own (the user's, the handler's
 * or the close's), so the stream survives this.
 */
static void op_finish(eddy_stream_t *s)
{
  eddy__read_clear(s);
  eddy__stream_release(s);
}

static void op_resolve_take(eddy_stream_t *s, size_t n)
{
  char *data = eddy__buf_take(&s->rbuf, n);
  if (!data) {
    eddy_future_reject(s->rd.future, -ENOMEM, NULL);
  } else {
    eddy_future_resolve_bytes(s->rd.future, data, n, free);
  }
  op_finish(s);
}

static void op_resolve_count(eddy_stream_t *s, size_t n)
{
  eddy_future_resolve_bytes(s->rd.future, NULL, n, NULL);
  op_finish(s);
}

static void op_reject_closed(eddy_stream_t *s)
{
  eddy_future_t *f = eddy_future_ref(s->rd.future);
  eddy__stream_fail_future(s, &f);
  op_finish(s);
}

/* read_into: the bytes placed in the caller's buffer go back to the stream
 * buffer, in front, so a read that does not complete consumes nothing. */
static void into_put_back(eddy_stream_t *s)
{
  if (s->rd.done > 0 && eddy__buf_prepend(&s->rbuf, s->rd.into, s->rd.done) == 0)
    s->rd.done = 0;
}

/* ------------------------------------------------------------------------ */
/* Satisfying from the buffer                                                */
/* ------------------------------------------------------------------------ */

static void unsatisfiable(eddy_stream_t *s)
{
  if (s->state == EDDY__ST_CLOSED || s->read_ended)
    return; /* R9 at the end: the caller fails the read */
  eddy__log(eddy__stream_loop(s), EDDY_LOG_INFO,
            "Unsatisfiable read, closing connection: %s not found within %zu bytes",
            s->rd.kind == EDDY__RK_REGEX ? "regex" : "delimiter", s->rd.max_bytes);
  eddy__stream_close(s, EDDY_EUNSATISFIABLE, NULL);
}

/* The end of the first regex match, or (size_t)-1. Searches the whole
 * buffer each time: POSIX regexec cannot resume, and a match may start
 * anywhere before the new bytes. */
static size_t regex_find(eddy_stream_t *s)
{
  regmatch_t m;
  size_t len = eddy__buf_len(&s->rbuf);
  m.rm_so = 0;
  m.rm_eo = (regoff_t)len;
  s->rd.searched = len;
  /* An empty buffer's head is NULL; regexec wants a string even for an
   * empty range (a pattern can match the empty string). Otherwise the bytes
   * get a NUL after them (every region has the byte past cap for it):
   * REG_STARTEND bounds the search, but the sanitizers' regexec
   * interceptor (LLVM before 17, gcc's libsanitizer) checks the string up
   * to its NUL and would read past the region. */
  const char *head = "";
  if (len) {
    head = eddy__buf_head(&s->rbuf);
    *eddy__buf_tail(&s->rbuf) = '\0';
  }
  if (regexec(s->rd.re, head, 1, &m, REG_STARTEND) != 0)
    return (size_t)-1;
  return (size_t)m.rm_eo;
}

/*
 * Hands buffered bytes to a chunked read's callback, from the loop. The
 * callback may close the stream, drop references or cancel the read; it may
 * not start a read or consume (in_chunk_cb refuses those), so the bytes it
 * is shown stay put until it returns. @return 1 if the read completed.
 */
int eddy__read_deliver_chunks(eddy_stream_t *s)
{
  int kind = s->rd.kind;
  size_t c = eddy__buf_len(&s->rbuf);
  int done = 0;

  if ((kind != EDDY__RK_BYTES_CHUNKED && kind != EDDY__RK_CLOSE_CHUNKED) || s->in_chunk_cb)
    return 0;
  if (kind == EDDY__RK_BYTES_CHUNKED && c > s->rd.n)
    c = s->rd.n;
  eddy__stream_hold(s);
  if (c > 0) {
    s->in_chunk_cb = 1;
    s->rd.fn(s, eddy__buf_head(&s->rbuf), c, s->rd.arg);
    s->in_chunk_cb = 0;
    eddy__buf_consume(&s->rbuf, c);
  }
  /* The callback may have cancelled the read (rd cleared); if it closed
   * the stream, the read is still here and the close task finishes it. */
  if (s->rd.kind == EDDY__RK_BYTES_CHUNKED) {
    s->rd.n -= c;
    if (s->rd.n == 0) {
      op_resolve_count(s, 0);
      done = 1;
    }
  }
  eddy__stream_release(s);
  return done;
}

static void chunk_task_run(struct eddy__task *task)
{
  eddy_stream_t *s = eddy_container_of(task, struct eddy__stream_cold, chunk_task)->stream;
  s->chunk_queued = 0;
  eddy__read_deliver_chunks(s);
  if (s->state == EDDY__ST_CLOSED || s->read_ended)
    eddy__read_on_close(s);
  if (s->state != EDDY__ST_CLOSED)
    eddy__io_update(s);
  eddy__stream_release(s);
}

/*
 * Tries to complete the pending read from the buffer. @from_loop says
 * whether chunk callbacks may run now (else a task is queued for them);
 * @force makes a regex search even if the buffer has not doubled since the
 * last one (R7). @return 1 if the read completed, -1 if it failed and
 * closed the stream, 0 if it still waits.
 */
int eddy__read_try(eddy_stream_t *s, int from_loop, int force)
{
  struct eddy__read_op *rd = &s->rd;
  size_t len = eddy__buf_len(&s->rbuf);
  size_t end;

  switch (rd->kind) {
  case EDDY__RK_BYTES:
    if (len >= rd->n || (rd->partial && len > 0)) {
      op_resolve_take(s, len < rd->n ? len : rd->n);
      return 1;
    }
    return 0;

  case EDDY__RK_INTO: {
    size_t c = rd->n - rd->done;
    if (c > len)
      c = len;
    if (c) {
      memcpy(rd->into + rd->done, eddy__buf_head(&s->rbuf), c);
      eddy__buf_consume(&s->rbuf, c);
      rd->done += c;
    }
    if (rd->done == rd->n || (rd->partial && rd->done > 0)) {
      op_resolve_count(s, rd->done);
      return 1;
    }
    return 0;
  }

  case EDDY__RK_UNTIL:
    end = eddy__buf_find(&s->rbuf, eddy__rd_delim(rd), rd->dlen, &rd->scan_from);
    goto found;

  case EDDY__RK_REGEX:
    end = 0;
    /* R7: search after new bytes, but mid-burst only once the buffer has
     * doubled; always when forced (end of a burst, close) or when the
     * limit is at stake. */
    if (len > 0 && len != rd->searched &&
        (force || len >= 2 * rd->searched || (rd->max_bytes && len > rd->max_bytes))) {
      size_t m = regex_find(s);
      end = m == (size_t)-1 ? 0 : m == 0 ? (size_t)-2 : m;
    }
  found:
    if (end == (size_t)-2) {
      op_resolve_take(s, 0);
      return 1;
    }
    if (end) {
      if (rd->max_bytes && end > rd->max_bytes) {
        unsatisfiable(s);
        return -1;
      }
      op_resolve_take(s, end);
      return 1;
    }
    if (rd->max_bytes && len > rd->max_bytes) {
      unsatisfiable(s);
      return -1;
    }
    return 0;

  case EDDY__RK_BYTES_CHUNKED:
  case EDDY__RK_CLOSE_CHUNKED:
    if (len == 0)
      return 0;
    if (from_loop)
      return eddy__read_deliver_chunks(s);
    if (!s->chunk_queued) {
      s->chunk_queued = 1;
      s->cold->chunk_task.run = chunk_task_run; /* made by read_chunked */
      eddy__stream_hold(s);
      eddy__loop_defer(eddy__stream_loop(s), &s->cold->chunk_task);
    }
    return 0;

  default: /* RK_CLOSE completes at the close; RK_NONE has nothing to do */
    return 0;
  }
}

/* R6: how many bytes the kernel may be asked for before the read stops
 * (the read's target); (size_t)-1 for no target. */
size_t eddy__read_target(const eddy_stream_t *s)
{
  switch (s->rd.kind) {
  case EDDY__RK_BYTES:
    return s->rd.n;
  case EDDY__RK_INTO:
    return s->rd.n - s->rd.done;
  case EDDY__RK_UNTIL:
  case EDDY__RK_REGEX:
    return s->rd.max_bytes ? s->rd.max_bytes + 1 : (size_t)-1;
  case EDDY__RK_CLOSE:
    return (size_t)-1;
  default: /* idle or chunked: one chunk at a time */
    return s->opt->read_chunk_size;
  }
}

/*
 * R9: the stream closed, or the peer ended its side (read_ended). Completes
 * the pending read if the buffer satisfies it and fails it otherwise;
 * read_until_close gets everything buffered. Chunked reads with bytes
 * still buffered are left to a task that hands them over from the loop and
 * calls this again: the close task, or on an open stream the chunk task.
 */
void eddy__read_on_close(eddy_stream_t *s)
{
  struct eddy__read_op *rd = &s->rd;

  switch (rd->kind) {
  case EDDY__RK_NONE:
    return;
  case EDDY__RK_CLOSE:
    if (s->error == EDDY_EBUFFERFULL)
      op_reject_closed(s);
    else
      op_resolve_take(s, eddy__buf_len(&s->rbuf));
    return;
  case EDDY__RK_BYTES_CHUNKED:
  case EDDY__RK_CLOSE_CHUNKED:
    if (eddy__buf_len(&s->rbuf) > 0 || s->in_chunk_cb) {
      if (s->state != EDDY__ST_CLOSED)
        eddy__read_try(s, 0, 0); /* queues the chunk task */
      return; /* which hands the rest over first */
    }
    if (rd->kind == EDDY__RK_CLOSE_CHUNKED && s->error != EDDY_EBUFFERFULL)
      op_resolve_count(s, 0);
    else
      op_reject_closed(s);
    return;
  case EDDY__RK_INTO:
    if (eddy__read_try(s, 0, 1) == 0) {
      into_put_back(s);
      op_reject_closed(s);
    }
    return;
  default:
    if (eddy__read_try(s, 0, 1) != 1)
      op_reject_closed(s);
    return;
  }
}

/* ------------------------------------------------------------------------ */
/* Starting and cancelling                                                   */
/* ------------------------------------------------------------------------ */

/* Cancelling returns the stream to idle and consumes nothing (fixes
 * Tornado's Q4): buffered bytes stay for the next read, and what a
 * read_into already placed in the caller's buffer is put back. */
static void read_cancelled(eddy_future_t *f, void *arg)
{
  eddy_stream_t *s = arg;
  if (s->rd.future != f)
    return;
  if (s->rd.kind == EDDY__RK_INTO)
    into_put_back(s);
  eddy__stream_hold(s);
  op_finish(s);
  eddy__io_update(s);
  eddy__stream_release(s);
}

/*
 * The checks every read starts with: a NULL stream (NULL, errno EINVAL: no
 * loop for a future), bad arguments (EDDY_EUSAGE), a read already pending
 * or a chunk callback running (EDDY_EALREADYREADING). @return 1 if the read
 * may start, else 0 with *out set to what the call returns.
 */
static int read_admit(eddy_stream_t *s, int bad_args, eddy_future_t **out)
{
  *out = NULL;
  if (!s) {
    errno = EINVAL;
    return 0;
  }
  int code = bad_args ? EDDY_EUSAGE : 0;
  if (!code && (s->rd.kind != EDDY__RK_NONE || s->in_chunk_cb))
    code = EDDY_EALREADYREADING;
  if (!code)
    return 1;
  *out = eddy__stream_rejected(s, code);
  return 0;
}

/* A read of nothing: resolved at once, even on a closed stream, with an
 * empty NUL-terminated buffer (@bytes) or just a count of 0. */
static eddy_future_t *read_nothing(eddy_stream_t *s, int bytes)
{
  char *empty = bytes ? calloc(1, 1) : NULL;
  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (f)
    eddy_future_resolve_bytes(f, empty, 0, empty ? free : NULL);
  else
    free(empty);
  return f;
}

/* Runs the op set up in s->rd (kind and parameters): see the top. */
static eddy_future_t *read_go(eddy_stream_t *s)
{
  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (!f) {
    op_reset(s);
    return NULL;
  }
  s->rd.future = f;
  eddy_future_t *user = eddy_future_ref(f);
  eddy_future_on_cancel(f, read_cancelled, s);
  eddy__stream_hold(s); /* for the op */
  eddy__stream_hold(s); /* for this call */

  int r = eddy__read_try(s, 0, 1);
  if (r == 0 && s->rd.kind != EDDY__RK_NONE) {
    int chunked = s->rd.kind == EDDY__RK_BYTES_CHUNKED || s->rd.kind == EDDY__RK_CLOSE_CHUNKED;
    if (s->state == EDDY__ST_CLOSED || s->read_ended) {
      if (!s->chunk_queued)
        eddy__read_on_close(s);
    } else if (s->state == EDDY__ST_OPEN && !chunked && !s->pass_queued &&
               (!s->read_drained || (eddy__filter_of(s) && eddy__filter_of(s)->holding))) {
      /* R4: one inline attempt before involving the loop. Skipped when the
       * last read already found the kernel empty (the loop will say when
       * that changes, and the echo hot path saves a recv per message),
       * unless a filter holds input that no fd event will announce; and
       * while answers are held for the end of the pass (write.c): a peer
       * waiting for them has sent nothing new, the recv would find EAGAIN. */
      if (eddy__io_fill(s, 1) >= 0 && s->rd.kind != EDDY__RK_NONE)
        eddy__read_try(s, 0, 1);
    }
    if (s->rd.kind != EDDY__RK_NONE && s->state != EDDY__ST_CLOSED) {
      if (s->opt->read_timeout > 0) {
        s->cold->read_deadline = eddy_loop_time(eddy__stream_loop(s)) + s->opt->read_timeout;
        eddy__stream_arm_deadlines(s);
      }
    }
  }
  eddy__io_update(s);
  eddy__stream_release(s);
  return user;
}

eddy_future_t *eddy_stream_read_bytes(eddy_stream_t *s, size_t n, int partial)
{
  eddy_future_t *f;
  if (s && n == 0)
    return read_nothing(s, 1);
  if (!read_admit(s, n > SSIZE_MAX, &f))
    return f;
  s->rd.kind = EDDY__RK_BYTES;
  s->rd.n = n;
  s->rd.partial = partial != 0;
  return read_go(s);
}

eddy_future_t *eddy_stream_read_until(eddy_stream_t *s, const void *delimiter,
                                      size_t delimiter_len, size_t max_bytes)
{
  eddy_future_t *f;
  /* A delimiter past 4 GiB could never fit the buffer anyway: its length
   * is kept in 32 bits (stream_internal.h). */
  if (!read_admit(s, !delimiter || delimiter_len == 0 || delimiter_len > UINT32_MAX, &f))
    return f;
  char *d = s->rd.dsmall;
  if (delimiter_len > sizeof(s->rd.dsmall) && !(d = malloc(delimiter_len)))
    return eddy__stream_rejected(s, -ENOMEM);
  memcpy(d, delimiter, delimiter_len);
  s->rd.kind = EDDY__RK_UNTIL;
  if (d != s->rd.dsmall)
    s->rd.dheap = d;
  s->rd.dlen = (uint32_t)delimiter_len;
  s->rd.max_bytes = max_bytes;
  return read_go(s);
}

eddy_future_t *eddy_stream_read_until_regex(eddy_stream_t *s, const char *pattern,
                                            size_t max_bytes)
{
  eddy_future_t *f;
  if (!read_admit(s, !pattern, &f))
    return f;
  regex_t *re = malloc(sizeof(*re));
  if (!re)
    return eddy__stream_rejected(s, -ENOMEM);
  int rc = regcomp(re, pattern, REG_EXTENDED);
  if (rc != 0) {
    char msg[128];
    regerror(rc, re, msg, sizeof(msg));
    free(re);
    f = eddy_future_new(eddy__stream_loop(s));
    if (f)
      eddy_future_reject(f, EDDY_EREGEX, "invalid regular expression: %s", msg);
    return f;
  }
  s->rd.kind = EDDY__RK_REGEX;
  s->rd.re = re;
  s->rd.max_bytes = max_bytes;
  return read_go(s);
}

eddy_future_t *eddy_stream_read_until_close(eddy_stream_t *s)
{
  eddy_future_t *f;
  if (!read_admit(s, 0, &f))
    return f;
  s->rd.kind = EDDY__RK_CLOSE;
  return read_go(s);
}

/* Both chunked kinds: @n bytes, or (n == SIZE_MAX, kind CLOSE_CHUNKED) all. */
static eddy_future_t *read_chunked(eddy_stream_t *s, int kind, size_t n, eddy_chunk_fn fn,
                                   void *arg)
{
  eddy_future_t *f;
  if (!read_admit(s, !fn, &f))
    return f;
  if (n == 0)
    return read_nothing(s, 0);
  if (!eddy__stream_cold(s)) /* its chunk_task may be needed */
    return eddy__stream_rejected(s, -ENOMEM);
  s->rd.kind = (unsigned char)kind;
  s->rd.n = n;
  s->rd.fn = fn;
  s->rd.arg = arg;
  return read_go(s);
}

eddy_future_t *eddy_stream_read_bytes_chunked(eddy_stream_t *s, size_t n,
                                              eddy_chunk_fn fn, void *arg)
{
  return read_chunked(s, EDDY__RK_BYTES_CHUNKED, n, fn, arg);
}

eddy_future_t *eddy_stream_read_until_close_chunked(eddy_stream_t *s, eddy_chunk_fn fn,
                                                    void *arg)
{
  return read_chunked(s, EDDY__RK_CLOSE_CHUNKED, (size_t)-1, fn, arg);
}

eddy_future_t *eddy_stream_read_into(eddy_stream_t *s, void *buf, size_t len, int partial)
{
  eddy_future_t *f;
  if (s && len == 0)
    return read_nothing(s, 0);
  if (!read_admit(s, !buf || len > SSIZE_MAX, &f))
    return f;
  s->rd.kind = EDDY__RK_INTO;
  s->rd.into = buf;
  s->rd.n = len;
  s->rd.partial = partial != 0;
  return read_go(s);
}

/* ------------------------------------------------------------------------ */
/* Looking at the buffer                                                     */
/* ------------------------------------------------------------------------ */

const void *eddy_stream_peek(eddy_stream_t *s, size_t *len)
{
  size_t n = s ? eddy__buf_len(&s->rbuf) : 0;
  if (len)
    *len = n;
  return n ? eddy__buf_head(&s->rbuf) : NULL;
}

ssize_t eddy_stream_consume(eddy_stream_t *s, size_t n)
{
  if (!s)
    return -EINVAL;
  if (s->rd.kind != EDDY__RK_NONE || s->in_chunk_cb)
    return EDDY_EALREADYREADING;
  size_t len = eddy__buf_len(&s->rbuf);
  if (n > len)
    n = len;
  eddy__buf_consume(&s->rbuf, n);
  if (n > 0 && eddy__buf_len(&s->rbuf) == 0)
    eddy__io_update(s); /* empty again: watch for more (R6) */
  return (ssize_t)n;
}
