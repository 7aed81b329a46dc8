/* SPDX-License-Identifier: MIT */
/*
 * The write kinds, flushing the queue to the kernel, write futures, drain,
 * shutdown_write and close_when_drained.
 *
 * A write first tries the kernel directly when nothing is queued ahead of
 * it (libuv, h2o): most writes never touch the queue or epoll. What the
 * kernel does not take is queued (copied only for eddy_stream_write) and
 * sent later, gathered with sendmsg/writev up to IOV_BATCH pieces, with
 * write interest armed only after EAGAIN. Futures resolve in FIFO order by
 * byte position (writeq.h). On io_uring the gathered send of a plain
 * socket goes on the ring instead (write_ring.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream/stream_internal.h"

#if defined(IOV_MAX) && IOV_MAX < 64
#define IOV_BATCH IOV_MAX
#else
#define IOV_BATCH 64
#endif

/* pread+write fallback chunk for file pieces. */
#define FILE_CHUNK (64u * 1024u)

void eddy__write_failed(eddy_stream_t *s, int e)
{
  /* The peer ended the session (TLS close_notify) and may close its
   * socket at once, without waiting for our answer (RFC 8446, 6.1). With
   * no plaintext of ours unsent, what it refused was only the protocol's
   * own records (our close_notify, late session tickets): the end is
   * still orderly. */
  if (eddy__filter_of(s) && eddy__filter_of(s)->eof_seen && eddy__wq_empty(&s->wq) && eddy__is_reset(e)) {
    eddy__stream_close(s, 0, NULL);
    return;
  }
  if (!eddy__is_reset(e))
    eddy__log(eddy__stream_loop(s), EDDY_LOG_WARNING, "Write error on fd %d: %s", s->fd, strerror(e));
  eddy__stream_close(s, -e, NULL);
}

ssize_t eddy__write_raw(eddy_stream_t *s, const struct iovec *iov, int n)
{
  ssize_t r;
  if (s->is_pipe)
    return eddy__pipe_writev(s->fd, iov, n);
  do {
    if (n == 1) {
      r = send(s->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    } else {
      struct msghdr m;
      memset(&m, 0, sizeof(m));
      m.msg_iov = (struct iovec *)iov;
      m.msg_iovlen = (size_t)n;
      r = sendmsg(s->fd, &m, MSG_NOSIGNAL);
    }
  } while (r < 0 && errno == EINTR);
  if (r > 0)
    s->corked = 0; /* a send without MSG_MORE pushes what is queued before it */
  return r;
}

/* What a send of @len bytes that returned @r means for the stream: EAGAIN
 * and a short send wait for room, other errors close. @return as below. */
static ssize_t write_outcome(eddy_stream_t *s, ssize_t r, size_t len)
{
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->write_waiting = 1;
      return 0;
    }
    eddy__write_failed(s, errno);
    return -1;
  }
  eddy__stream_note_io(s);
  if ((size_t)r < len)
    s->write_waiting = 1; /* the kernel is full: wait for room */
  return r;
}

ssize_t eddy__write_some(eddy_stream_t *s, const void *data, size_t len)
{
  struct iovec iov = {(void *)data, len};
  return write_outcome(s, eddy__write_raw(s, &iov, 1), len);
}

/* One step of a file piece: sendfile where it works, else pread + write. */
static ssize_t send_file_piece(eddy_stream_t *s, struct eddy__piece *p, size_t want)
{
  if (!s->is_pipe && !s->no_sendfile) {
    off_t off = p->file_off;
    ssize_t r = eddy__nosigpipe_sendfile(s->fd, p->file_fd, &off, want);
    if (r >= 0 || (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP))
      return r;
    s->no_sendfile = 1; /* e.g. a file type sendfile cannot read */
  }
  char *buf = malloc(FILE_CHUNK);
  if (!buf) {
    errno = ENOMEM;
    return -1;
  }
  ssize_t got = pread(p->file_fd, buf, want < FILE_CHUNK ? want : FILE_CHUNK, p->file_off);
  ssize_t r = got;
  if (got > 0) {
    struct iovec iov = {buf, (size_t)got};
    r = eddy__write_raw(s, &iov, 1);
  }
  int e = errno;
  free(buf);
  errno = e;
  return r;
}

/* Sends queued pieces until the queue is empty, the kernel is full, or the
 * per-event budget is used (then write interest brings us back at once). */
static int plain_flush(eddy_stream_t *s)
{
  size_t total = 0;

  if (s->ring_send)
    return 0; /* the bytes keep their order: its completion goes on */
  for (int rounds = 0; !eddy__wq_empty(&s->wq); rounds++) {
    struct iovec iov[IOV_BATCH];
    size_t want = 0;
    ssize_t r;

    if (rounds >= EDDY__IO_ROUNDS || total >= EDDY__IO_BUDGET) {
      s->write_waiting = 1;
      break;
    }
    if (s->wq.head->kind == EDDY__PIECE_FILE) {
      want = s->wq.head->len < EDDY__IO_BUDGET ? s->wq.head->len : EDDY__IO_BUDGET;
      r = send_file_piece(s, s->wq.head, want);
      if (r == 0) {
        eddy__stream_close(s, -EIO, "write_file: the file ended before len bytes");
        return -1;
      }
    } else {
      int n = eddy__wq_gather(&s->wq, iov, IOV_BATCH, EDDY__IO_BUDGET - total);
      for (int i = 0; i < n; i++)
        want += iov[i].iov_len;
      r = eddy__write_raw(s, iov, n);
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->write_waiting = 1;
        break;
      }
      eddy__write_failed(s, errno);
      return -1;
    }
    eddy__wq_advance(&s->wq, (size_t)r);
    total += (size_t)r;
    if ((size_t)r < want) {
      s->write_waiting = 1; /* the kernel is full: wait for room */
      break;
    }
  }
  if (total)
    eddy__stream_note_io(s);
  s->acked = s->wq.sent;
  return 0;
}

/* Holds a reference on the stream exactly while writes are pending. */
static void write_hold_update(eddy_stream_t *s)
{
  int need = !eddy__wq_empty(&s->wq) || eddy__wq_waiting(&s->wq) || eddy__raw_out_len(s) ||
             (s->cold && (s->cold->shutdown_future || s->cold->drains));
  if (need && !s->write_held) {
    s->write_held = 1;
    eddy__stream_hold(s);
  } else if (!need && s->write_held) {
    s->write_held = 0;
    eddy__stream_release(s);
  }
}

static void settle_shutdown(eddy_stream_t *s, int rc)
{
  if (!s->cold)
    return;
  eddy_future_t *f = s->cold->shutdown_future;
  s->cold->shutdown_future = NULL;
  if (!f)
    return;
  if (rc < 0)
    eddy_future_reject(f, rc, NULL);
  else
    eddy_future_resolve(f, NULL, NULL);
  eddy_future_unref(f);
}

/* shutdown_write once the queue is empty (after the filter's closing
 * record, e.g. TLS close_notify, has gone out). */
static void maybe_shutdown(eddy_stream_t *s)
{
  if (!s->shut_requested || s->write_shut || s->state != EDDY__ST_OPEN || !eddy__wq_empty(&s->wq))
    return;
  if (eddy__filter_of(s) && s->filter_started && !s->filter_closing) {
    s->filter_closing = 1;
    if (eddy__filter_of(s)->ops->shutdown) {
      int rc = eddy__filter_of(s)->ops->shutdown(eddy__filter_of(s));
      if (rc < 0) {
        eddy__filter_failed(s, rc);
        return;
      }
    }
    if (eddy__raw_out_len(s)) {
      eddy__write_flush(s);
      /* The kernel may have taken only part of the closing record: the
       * rest waits for write interest, which nothing else asks for when
       * shutdown_write is called from outside the loop's handler. */
      eddy__io_update(s);
      return; /* the flush's settle comes back here */
    }
  }
  if (eddy__raw_out_len(s))
    return;
  s->write_shut = 1;
  int rc = 0;
  if (shutdown(s->fd, SHUT_WR) < 0) {
    if (errno == ENOTSOCK && !s->can_read) {
      /* A write-only pipe: closing it is the only way to say EOF. */
      settle_shutdown(s, 0);
      eddy__stream_close(s, 0, NULL);
      return;
    }
    if (errno != ENOTCONN && errno != ENOTSOCK)
      rc = -errno;
  }
  settle_shutdown(s, rc);
  if (s->read_ended)
    eddy__stream_close(s, 0, NULL); /* both sides have ended */
}

/* close_when_drained, with nothing queued: a filter's closing record (TLS
 * close_notify) goes out through the queue first -- the flush's settle
 * comes back here -- and the close follows once it is in the kernel. */
static void close_drained(eddy_stream_t *s)
{
  if (eddy__filter_of(s) && eddy__filter_say_goodbye(s)) {
    eddy__stream_hold(s);
    eddy__write_flush(s);
    eddy__io_update(s); /* write interest if the kernel was full */
    eddy__stream_release(s);
    return;
  }
  eddy__stream_close(s, 0, NULL);
}

static void resolve_waiters(eddy_stream_t *s, struct eddy__waiter **list)
{
  while (*list) {
    struct eddy__waiter *w = *list;
    *list = w->next;
    eddy_future_resolve(w->future, NULL, NULL);
    eddy_future_unref(w->future);
    free(w);
  }
}

/* Resolves the write futures whose bytes are all in the kernel. */
static void resolve_acked(eddy_stream_t *s)
{
  eddy_future_t *f;
  while ((f = eddy__wq_pop_done(&s->wq, s->acked))) {
    eddy_future_resolve(f, NULL, NULL);
    eddy_future_unref(f);
  }
}

/* After progress: resolve write futures and drains, watermarks, deadline,
 * shutdown / close_when_drained once empty, the write reference. */
void eddy__write_settle(eddy_stream_t *s)
{
  resolve_acked(s);
  size_t size = eddy_stream_write_buffer_size(s);
  if (size <= s->opt->write_low_watermark) {
    s->write_blocked = 0;
    if (s->cold)
      resolve_waiters(s, &s->cold->drains);
  }
  int pending = size > 0;
  if (s->opt->write_timeout > 0) {
    struct eddy__stream_cold *c = s->cold; /* made with the stream */
    if (!pending) {
      c->write_deadline = 0;
    } else if (c->write_deadline == 0 || c->wd_mark != s->wq.sent) {
      c->wd_mark = s->wq.sent;
      c->write_deadline = eddy_loop_time(eddy__stream_loop(s)) + s->opt->write_timeout;
      eddy__stream_arm_deadlines(s);
    }
  }
  if (!pending && s->state == EDDY__ST_OPEN) {
    maybe_shutdown(s);
    if (s->close_drained && s->state == EDDY__ST_OPEN && eddy__wq_empty(&s->wq))
      close_drained(s);
  }
  write_hold_update(s);
}

/* With @sync, by system calls even where the loop sends on its ring: a
 * close that follows at once cannot wait for a completion. */
static void write_flush_with(eddy_stream_t *s, int sync)
{
  if (s->in_flush || s->state != EDDY__ST_OPEN)
    return;
  s->in_flush = 1;
  eddy__stream_hold(s);
  int rc = eddy__filter_of(s)                          ? eddy__filter_output(s)
           : !sync && eddy__write_ring_flush(s) == 0 ? 0
                                                      : plain_flush(s);
  s->in_flush = 0;
  if (rc >= 0 && s->state == EDDY__ST_OPEN)
    eddy__write_settle(s);
  eddy__stream_release(s);
}

void eddy__write_flush(eddy_stream_t *s)
{
  write_flush_with(s, 0);
}

void eddy__write_fail_all(eddy_stream_t *s)
{
  eddy_future_t *f;
  resolve_acked(s); /* a ring send settled by the close may have sent their bytes */
  while ((f = eddy__wq_pop_done(&s->wq, UINT64_MAX)))
    eddy__stream_fail_future(s, &f);
  while (s->cold && s->cold->drains) {
    struct eddy__waiter *w = s->cold->drains;
    s->cold->drains = w->next;
    eddy__stream_fail_future(s, &w->future);
    free(w);
  }
  if (s->cold)
    eddy__stream_fail_future(s, &s->cold->shutdown_future);
  /* A send the kernel still holds reads its pieces: its completion
   * clears them (write_ring.c). */
  if (!s->ring_send)
    eddy__wq_clear(&s->wq);
  if (eddy__filter_of(s))
    eddy__buf_release(&eddy__filter_of(s)->raw_out);
  s->write_waiting = 0;
  write_hold_update(s);
}

/* ------------------------------------------------------------------------ */
/* The write calls                                                           */
/* ------------------------------------------------------------------------ */

static int write_check(eddy_stream_t *s, size_t len)
{
  if (s->state == EDDY__ST_CLOSED || s->shut_requested)
    return EDDY_ECLOSED;
  size_t size = eddy_stream_write_buffer_size(s);
  size_t max = s->opt->max_write_buffer_size;
  if (len > max || size > max - len)
    return EDDY_EBUFFERFULL; /* Tornado's rule (Q15): nothing is queued */
  return 0;
}

/*
 * Answers to pipelined requests. A pipelining peer (several requests in
 * one read) gets one answer per request; sent one by one, each answer
 * costs a system call, and on a TCP_NODELAY socket over loopback the send
 * also runs the peer's receive path. So while more input is buffered --
 * more answers are likely to follow in this pass -- a write does not go
 * to the kernel on its own:
 *
 *   - a small one (the stream holding less than GATHER_MAX bytes with it)
 *     is queued, as when the kernel is full (by reference where the write
 *     kind allows), and what the pass queued leaves in one sendmsg once
 *     the pass's deferred tasks have run (pass_end);
 *   - a large one is sent at once with MSG_MORE (corked): its bytes are in
 *     the kernel, the partial segment waits for the next send or for
 *     pass_end, which pushes it (setsockopt TCP_NODELAY) where Nagle is off.
 *
 * Large answers are not held because holding them keeps every answer of a
 * pass alive until its end: with 16 KiB lines on 10 connections that is
 * 640 KiB freed together each pass, and glibc then trims its heap top and
 * faults it back in on the next pass (bench/RESULTS.md has the numbers).
 * Either way a write's future resolves once its bytes are in the kernel.
 * A lone answer (no input left over) still goes at once: request/response
 * gains no latency. Never outside a running loop (no pass would end), on
 * pipes or under a filter (TLS gathers its records in raw_out already).
 */
#define GATHER_MAX (4u * 1024u)

static void push_now(eddy_stream_t *s)
{
  int one = 1;
  s->corked = 0;
  if (s->fd >= 0 && s->state == EDDY__ST_OPEN)
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void pass_end(struct eddy__pass_node *node)
{
  eddy_stream_t *s = (eddy_stream_t *)((char *)node - offsetof(eddy_stream_t, pass_link));
  s->pass_queued = 0;
  if (s->state == EDDY__ST_OPEN && !s->write_waiting) {
    eddy__write_flush(s); /* a send without MSG_MORE pushes the corked bytes too */
    if (s->corked && !s->ring_send) /* a ring send just queued pushes them */
      push_now(s);
    eddy__io_update(s); /* write interest if the kernel was full */
  }
  s->corked = 0;
  eddy__stream_release(s);
}

/* Links @s on the loop's end-of-pass list, once per pass. */
static void pass_link(eddy_stream_t *s)
{
  if (s->pass_queued)
    return;
  s->pass_queued = 1;
  eddy__stream_hold(s);
  eddy__loop_at_pass_end(eddy__stream_loop(s), &s->pass_link, pass_end);
}

/* Whether more answers are likely to follow in this pass (see above). */
static int answers_follow(const eddy_stream_t *s)
{
  return !eddy__filter_of(s) && !s->is_pipe && s->state == EDDY__ST_OPEN &&
         eddy__buf_len(&s->rbuf) > 0 && eddy__loop_running(eddy__stream_loop(s));
}

/* An inline send of everything with MSG_MORE. @return as eddy__write_some. */
static ssize_t send_corked(eddy_stream_t *s, const void *data, size_t len)
{
  ssize_t r;
  do {
    r = send(s->fd, data, len, MSG_NOSIGNAL | MSG_MORE);
  } while (r < 0 && errno == EINTR);
  if (write_outcome(s, r, len) < 0)
    return -1;
  if (r < 0)
    return 0; /* EAGAIN: write_outcome set write_waiting */
  s->corked = 1;
  pass_link(s);
  if ((size_t)r < len)
    push_now(s); /* the kernel is full: what it has goes now, the rest waits */
  return r;
}

/* Before a close: what the pass held goes to the kernel now, as it would
 * have without gathering, and the futures of what went resolve (best
 * effort: what the kernel refuses is lost with the close, as ever). A
 * send on the ring is settled first, and what queued behind it follows
 * as it would have behind a synchronous send. */
void eddy__write_flush_held(eddy_stream_t *s)
{
  if (s->state != EDDY__ST_OPEN || eddy__filter_of(s))
    return;
  int behind = s->ring_send != 0;
  eddy__write_ring_settle(s);
  if ((s->pass_queued || behind) && s->state == EDDY__ST_OPEN && !s->write_waiting)
    write_flush_with(s, 1);
}

/*
 * With nothing queued ahead, offers @len bytes to the kernel at once.
 * @return bytes taken (counted as queued and sent), or -1 if the stream
 * closed on an error.
 */
static ssize_t send_inline(eddy_stream_t *s, const void *data, size_t len)
{
  if (len == 0 || s->state != EDDY__ST_OPEN || s->write_waiting || eddy__filter_of(s) ||
      !eddy__wq_empty(&s->wq) || s->ring_send)
    return 0;
  ssize_t r;
  int follow = answers_follow(s);
  /* On io_uring, a lone answer in a pass that answers several connections
   * is queued (by the caller) and its flush joins the others on the ring:
   * their one io_uring_enter replaces a send() each. One of a pipelining
   * peer's answers is not: it would leave alone and the rest of the pass's
   * would wait behind it for its completion, where pass_end sends them
   * all in one. A lone answer in a quiet pass keeps its send(): on the
   * ring its completion would cost the next wait a second io_uring_enter
   * per request (write_ring.c). */
  if (!follow && !s->is_pipe && eddy__loop_send_batching(eddy__stream_loop(s)) &&
      eddy__loop_running(eddy__stream_loop(s)))
    return 0;
  if (!follow) {
    r = eddy__write_some(s, data, len);
  } else if (len < GATHER_MAX) {
    pass_link(s); /* held: queued by the caller, sent by pass_end */
    return 0;
  } else if (s->nodelay_on) {
    r = send_corked(s, data, len);
  } else {
    r = eddy__write_some(s, data, len);
  }
  if (r > 0) {
    s->wq.queued += (size_t)r;
    s->wq.sent += (size_t)r;
    s->acked = s->wq.sent;
  }
  return r;
}

/*
 * A write that cannot get the memory it needs closes the stream with
 * -ENOMEM, whatever of it went out: an application that carried on past
 * the failure could otherwise send the next message after a gap. The
 * peer sees the connection end after a prefix instead. @return NULL, for
 * the write's caller to return.
 */
static eddy_future_t *write_out_of_memory(eddy_stream_t *s, const char *what)
{
  eddy__stream_close(s, -ENOMEM, what);
  errno = ENOMEM;
  return NULL;
}

/* The bytes up to @pos are queued (or sent): flush, then settle @f now or
 * make it wait for @pos. Takes the reference to @f and returns it. */
static eddy_future_t *write_done(eddy_stream_t *s, eddy_future_t *f, uint64_t pos)
{
  eddy__stream_hold(s);
  /* Queued bytes go now, unless they are a pass's small answers (held for
   * pass_end, see above) */
  if (s->state == EDDY__ST_OPEN && !s->write_waiting &&
      (!s->pass_queued || eddy__wq_size(&s->wq) >= GATHER_MAX))
    eddy__write_flush(s);
  if (eddy_stream_write_buffer_size(s) > s->opt->write_high_watermark)
    s->write_blocked = 1;
  if (s->acked >= pos && s->state != EDDY__ST_CLOSED) {
    eddy_future_resolve(f, NULL, NULL);
  } else if (s->state == EDDY__ST_CLOSED) {
    eddy_future_t *mine = eddy_future_ref(f);
    eddy__stream_fail_future(s, &mine);
  } else if (eddy__wq_wait(&s->wq, eddy_future_ref(f), pos) < 0) {
    /* The bytes are queued, perhaps partly sent, and nothing would say
     * when the rest is out. Left open, the stream would hold them without
     * write interest, neither flushing nor closing. */
    eddy_future_unref(f); /* the reference wq_wait did not take */
    (void)write_out_of_memory(s, "out of memory queueing a write");
    eddy_future_reject(f, -ENOMEM, NULL);
  } else {
    write_hold_update(s);
    eddy__io_update(s);
    eddy__write_settle(s);
  }
  eddy__stream_release(s);
  return f;
}

/*
 * What a write leaves queued is copied, whatever its kind (take, borrowed,
 * a future's bytes), when it is shorter than this: a piece of its own
 * costs an allocation, a reference held and an iovec in the send, where a
 * copy of a few hundred bytes joins the queue's last block (pipelined
 * answers of 64 bytes: 16 of them one iovec, not 16).
 */
#define COPY_BELOW 512u

/* Cancelling a borrowed write's future releases the caller's memory: what
 * is still queued of it is copied first (the bytes still go out). */
static void write_unborrow(eddy_future_t *f, void *arg);

/* Common path of the memory writes: @base/@free_fn own the bytes (take),
 * @borrowed says they are the caller's, @copy that a copy is wanted. */
static eddy_future_t *write_mem(eddy_stream_t *s, const void *data, size_t len, void *base,
                                eddy_free_fn free_fn, int borrowed, eddy_future_t *src)
{
  int code = ((!data && len) || len > SSIZE_MAX) ? EDDY_EUSAGE : write_check(s, len);
  if (code) {
    if (free_fn)
      free_fn(base);
    return eddy__stream_rejected(s, code);
  }
  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (!f) {
    if (free_fn)
      free_fn(base);
    return write_out_of_memory(s, "out of memory for a write");
  }
  eddy__stream_hold(s);
  ssize_t off = send_inline(s, data, len);
  int rc = 0;
  if (off < 0) {
    if (free_fn)
      free_fn(base);
  } else if ((size_t)off == len && len > 0) {
    /* The hot path: the kernel took it all and nothing was queued before
     * (send_inline requires that), so no waiter, drain or shutdown can
     * depend on this write. */
    if (free_fn)
      free_fn(base);
    eddy_future_resolve(f, NULL, NULL);
    rc = 1;
  } else if ((size_t)off == len) {
    /* An empty write: waits for whatever is queued ahead, and queues
     * nothing of its own, so what it was given is done with now. */
    if (free_fn)
      free_fn(base);
  } else {
    const char *rest = (const char *)data + off;
    size_t left = len - (size_t)off;
    if (left < COPY_BELOW) {
      /* Cheaper copied than held (see COPY_BELOW): what was taken is done
       * with, and nothing borrowed stays behind to unborrow. */
      rc = eddy__wq_push_copy(&s->wq, rest, left);
      if (free_fn)
        free_fn(base);
      free_fn = NULL;
      borrowed = 0;
    } else if (src)
      rc = eddy__wq_push_future(&s->wq, src, rest, left);
    else if (free_fn || borrowed)
      rc = eddy__wq_push_mem(&s->wq, rest, left, base, free_fn, borrowed ? f : NULL);
    else
      rc = eddy__wq_push_copy(&s->wq, rest, left);
    if (rc < 0) {
      if (free_fn)
        free_fn(base);
      (void)write_out_of_memory(s, "out of memory queueing a write");
      eddy_future_reject(f, -ENOMEM, NULL);
    } else if (borrowed) {
      eddy_future_on_cancel(f, write_unborrow, s);
    }
  }
  if (rc == 0)
    f = write_done(s, f, s->wq.queued);
  eddy__stream_release(s);
  return f;
}

static void write_unborrow(eddy_future_t *f, void *arg)
{
  eddy_stream_t *s = arg;
  /* A ring send may be reading the caller's memory: it ends first, and
   * what it did not send goes again from the copies. */
  int resend = s->ring_send != 0;
  eddy__stream_hold(s);
  eddy__write_ring_settle(s);
  if (s->state == EDDY__ST_CLOSED) {
    eddy__stream_release(s);
    return;
  }
  if (eddy__wq_unborrow(&s->wq, f) < 0)
    eddy__stream_close(s, -ENOMEM, "out of memory copying a cancelled borrowed write");
  else if (resend) {
    eddy__write_flush(s);
    eddy__io_update(s); /* write interest, if that took a system call and EAGAIN */
  }
  eddy__stream_release(s);
}

eddy_future_t *eddy_stream_write(eddy_stream_t *s, const void *data, size_t len)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  return write_mem(s, data, len, NULL, NULL, 0, NULL);
}

eddy_future_t *eddy_stream_write_take(eddy_stream_t *s, void *data, size_t len,
                                      eddy_free_fn data_free)
{
  if (!s) {
    if (data_free)
      data_free(data);
    errno = EINVAL;
    return NULL;
  }
  if (!data_free) /* nothing to free: the same as borrowed until sent */
    return write_mem(s, data, len, NULL, NULL, 1, NULL);
  return write_mem(s, data, len, data, data_free, 0, NULL);
}

eddy_future_t *eddy_stream_write_borrowed(eddy_stream_t *s, const void *data, size_t len)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  return write_mem(s, data, len, NULL, NULL, 1, NULL);
}

eddy_future_t *eddy_stream_write_bytes_of(eddy_stream_t *s, eddy_future_t *src)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  if (!src)
    return eddy__stream_rejected(s, EDDY_EUSAGE);
  eddy_future_state_t st = eddy_future_state(src);
  if (st != EDDY_FUTURE_RESOLVED) {
    eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
    if (!f)
      return NULL;
    if (st == EDDY_FUTURE_PENDING)
      eddy_future_reject(f, EDDY_EPENDING, NULL);
    else
      eddy_future_reject_cause(f, eddy_future_error(src), eddy_future_cause(src), "%s",
                               eddy_future_message(src) ? eddy_future_message(src) : "");
    return f;
  }
  const void *data = eddy_future_value(src);
  size_t len = eddy_future_size(src);
  if (!data && len) /* a count (read_into) or a taken value: no bytes */
    return eddy__stream_rejected(s, EDDY_EUSAGE);
  return write_mem(s, data, len, NULL, NULL, 0, src);
}

eddy_future_t *eddy_stream_write_file(eddy_stream_t *s, int fd, off_t offset, size_t len)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  if (fd < 0 || offset < 0 || len > SSIZE_MAX)
    return eddy__stream_rejected(s, EDDY_EUSAGE);
  int code = write_check(s, len);
  if (code)
    return eddy__stream_rejected(s, code);
  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (!f)
    return write_out_of_memory(s, "out of memory for a write");
  if (len && eddy__wq_push_file(&s->wq, fd, offset, len) < 0) {
    (void)write_out_of_memory(s, "out of memory queueing a write");
    eddy_future_reject(f, -ENOMEM, NULL);
    return f;
  }
  return write_done(s, f, s->wq.queued);
}

/* ------------------------------------------------------------------------ */
/* Backpressure, shutdown                                                    */
/* ------------------------------------------------------------------------ */

size_t eddy_stream_write_buffer_size(const eddy_stream_t *s)
{
  return s ? eddy__wq_size(&s->wq) + eddy__raw_out_len(s) : 0;
}

int eddy_stream_write_blocked(const eddy_stream_t *s)
{
  return s && s->write_blocked;
}

int eddy_stream_writing(const eddy_stream_t *s)
{
  return eddy_stream_write_buffer_size(s) > 0;
}

eddy_future_t *eddy_stream_drain(eddy_stream_t *s)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  if (s->state == EDDY__ST_CLOSED)
    return eddy__stream_rejected(s, EDDY_ECLOSED);
  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (!f)
    return NULL;
  if (eddy_stream_write_buffer_size(s) <= s->opt->write_low_watermark) {
    eddy_future_resolve(f, NULL, NULL);
    return f;
  }
  struct eddy__waiter *w = eddy__stream_cold(s) ? malloc(sizeof(*w)) : NULL, **tail;
  if (!w) {
    eddy_future_reject(f, -ENOMEM, NULL);
    return f;
  }
  tail = &s->cold->drains;
  while (*tail)
    tail = &(*tail)->next;
  w->next = NULL;
  w->future = eddy_future_ref(f);
  *tail = w;
  write_hold_update(s);
  return f;
}

eddy_future_t *eddy_stream_shutdown_write(eddy_stream_t *s)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  if (s->state == EDDY__ST_CLOSED)
    return eddy__stream_rejected(s, EDDY_ECLOSED);
  eddy_future_t *f;
  if (s->cold && s->cold->shutdown_future)
    return eddy_future_ref(s->cold->shutdown_future);
  if (s->write_shut || s->shut_requested) {
    f = eddy_future_new(eddy__stream_loop(s));
    if (f)
      eddy_future_resolve(f, NULL, NULL);
    return f;
  }
  if (!eddy__stream_cold(s))
    return eddy__stream_rejected(s, -ENOMEM);
  f = eddy_future_new(eddy__stream_loop(s));
  if (!f)
    return NULL;
  s->shut_requested = 1;
  s->cold->shutdown_future = eddy_future_ref(f);
  write_hold_update(s);
  if (s->state == EDDY__ST_OPEN && eddy_stream_write_buffer_size(s) == 0)
    eddy__write_settle(s);
  return f;
}

void eddy_stream_close_when_drained(eddy_stream_t *s)
{
  if (!s || s->state == EDDY__ST_CLOSED)
    return;
  s->close_drained = 1;
  if (s->state == EDDY__ST_OPEN && eddy_stream_write_buffer_size(s) == 0)
    close_drained(s);
}
