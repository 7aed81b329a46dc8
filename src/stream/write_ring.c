/* SPDX-License-Identifier: MIT */
/*
 * The flush as a send on the io_uring ring (eddy__loop_send): where the
 * loop has one, a plain socket's queued pieces leave gathered in one
 * IORING_OP_SENDMSG submitted with the pass's io_uring_enter, instead of a
 * sendmsg() system call each. Filtered streams (TLS) and pipes keep the
 * system calls, and so do file pieces (sendfile) and the inline send that
 * answers a lone request (write.c, send_inline: its future resolves on
 * return). That one was measured both ways (bench/RESULTS.md, "Sends on
 * the ring"): on the ring, ping-pong lost 9-21% per CPU second, since the
 * send's completion, posted at once, ends the next wait early and every
 * request costs two io_uring_enter instead of one plus a send(); with many
 * connections answered per pass the ring won, so an answer made in a pass
 * that handles several fds joins the ring (eddy__loop_send_batching).
 *
 * The contract is the synchronous send's, moved to the completion:
 *   - one send in flight per stream, so the bytes keep their order; new
 *     writes queue behind it, and the inline send waits for it too;
 *   - the pieces in flight stay as they are, neither freed nor moved:
 *     the queue advances by what the completion says was sent, which is
 *     where write futures resolve (their bytes are in the kernel), and a
 *     short send submits the rest at once;
 *   - an error is a failed send's (eddy__write_failed);
 *   - the stream is held until the completion, and watched by the loop
 *     meanwhile (io.c), so freeing the loop closes it first;
 *   - anything that must not wait for the completion (a close, a borrowed
 *     write given back) settles the send first: what the socket takes at
 *     once goes, the rest is cancelled, before the fd is closed or the
 *     memory changes hands.
 * The ring never reports EAGAIN: a send that finds the socket full waits
 * in the kernel, so write interest is never needed for it.
 */
#include <errno.h>
#include <sys/socket.h>

#include "stream/stream_internal.h"

#if defined(IOV_MAX) && IOV_MAX < 64
#define RING_IOV IOV_MAX
#else
#define RING_IOV 64
#endif

/* Advances the queue by what the kernel took, as a synchronous send does. */
static void account(eddy_stream_t *s, int res)
{
  if (res <= 0)
    return;
  eddy__wq_advance(&s->wq, (size_t)res);
  s->acked = s->wq.sent;
  s->corked = 0; /* a send without MSG_MORE pushes what was corked before it */
  if (s->state == EDDY__ST_OPEN)
    eddy__stream_note_io(s);
}

/* The send's completion (eddy__sent_fn), from the loop's wait or from a
 * settle: what a synchronous send returning @res would have done, a pass
 * later; on a closed stream, the pieces its close had to leave for it. */
static void ring_sent(void *arg, int res)
{
  eddy_stream_t *s = arg;
  s->ring_send = 0;
  if (res == EDDY__SEND_ORPHANED) {
    /* A fork's child (the parent's kernel owns the send), or a loop being
     * freed: the write side cannot go on. */
    if (s->state == EDDY__ST_CLOSED)
      eddy__wq_clear(&s->wq);
    else
      eddy__stream_close(s, EDDY_ECANCELLED, "the send in flight was abandoned");
    eddy__stream_release(s);
    return;
  }
  account(s, res);
  if (s->state == EDDY__ST_CLOSED) {
    /* Closed meanwhile: the pieces close left for us (write.c). */
    eddy__wq_clear(&s->wq);
  } else if (res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
    eddy__write_failed(s, -res);
  } else if (!s->ring_settling) {
    /* The rest (a short send, or what queued behind) goes now; futures,
     * drains, shutdown and close_when_drained settle. Cancelled (a
     * borrowed write given back): the same, the queue is as it was. */
    eddy__write_flush(s);
    eddy__io_update(s);
  }
  eddy__stream_release(s);
}

/* @return 0 if the queue is on the ring (or waits behind the send in
 * flight), 1 if the system call is to flush it: no ring, no slot, no
 * memory, a file piece first, or no running loop. */
int eddy__write_ring_flush(eddy_stream_t *s)
{
  if (s->ring_send)
    return 0; /* its completion sends what queued behind it */
  if (eddy__wq_empty(&s->wq))
    return 0;
  /* Outside a running loop nothing would submit it soon: a system call. */
  if (s->wq.head->kind == EDDY__PIECE_FILE || s->is_pipe || eddy__filter_of(s) || s->fd < 0 ||
      !eddy__loop_running(eddy__stream_loop(s)))
    return 1;
  struct iovec iov[RING_IOV];
  int n = eddy__wq_gather(&s->wq, iov, RING_IOV, EDDY__IO_BUDGET);
  if (n == 0)
    return 1;
  int id = eddy__loop_send(eddy__stream_loop(s), s->fd, iov, n, MSG_NOSIGNAL, ring_sent, s);
  if (id < 0)
    return 1;
  s->ring_send = (uint32_t)id;
  eddy__stream_hold(s);
  return 0;
}

/* Settling sends nothing new: the completion (ring_sent, settling) only
 * accounts for what went, so the caller decides what follows (a close, a
 * resend from copies). */
void eddy__write_ring_settle(eddy_stream_t *s)
{
  if (!s->ring_send || s->ring_settling)
    return;
  eddy__stream_hold(s);
  s->ring_settling = 1;
  eddy__loop_send_settle(eddy__stream_loop(s), s->ring_send);
  s->ring_settling = 0;
  eddy__stream_release(s);
}
