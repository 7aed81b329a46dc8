/* SPDX-License-Identifier: MIT */
/*
 * The loop side of a stream: which events it asks for, the handler that
 * runs when they come, and reading from the kernel (R6).
 *
 * Interest. Computed from the state in one place (eddy__io_update) and
 * handed to the loop only when it changes; the loop batches those changes
 * per iteration. Read interest stays on while a read is pending, so a
 * connection that reads message after message never touches epoll_ctl.
 * Write interest goes on only after a write hit EAGAIN and off once the
 * queue is empty.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/list.h"
#include "stream/stream_internal.h"

static void resume_run(struct eddy__task *task)
{
  struct eddy__filter *f = eddy_container_of(task, struct eddy__filter, resume_task);
  eddy_stream_t *s = f->stream;

  f->resume_queued = 0;
  if (s->state == EDDY__ST_OPEN)
    eddy__io_handler(eddy__stream_loop(s), s->fd, EDDY_READ, s);
  eddy__stream_release(s);
}

/*
 * Input a filter held back for lack of room (transport.h) is out of the
 * kernel: no fd event will come for it. Once a read waits and the buffer
 * has room again, a task goes on decoding as a read event would.
 */
static void resume_if_held(eddy_stream_t *s)
{
  struct eddy__filter *f = eddy__filter_of(s);

  if (!f || !f->holding || f->resume_queued || s->rd.kind == EDDY__RK_NONE ||
      s->in_chunk_cb || eddy__buf_len(&s->rbuf) >= s->opt->max_buffer_size)
    return;
  f->resume_queued = 1;
  f->resume_task.run = resume_run;
  eddy__stream_hold(s);
  eddy__loop_defer(eddy__stream_loop(s), &f->resume_task);
}

void eddy__io_update(eddy_stream_t *s)
{
  unsigned want = 0;

  if (s->state == EDDY__ST_CLOSED || s->state == EDDY__ST_UNCONNECTED || s->fd < 0)
    return;
  resume_if_held(s);
  if (s->state == EDDY__ST_CONNECTING) {
    want = EDDY_WRITE;
  } else {
    if (s->can_read && !s->read_ended) {
      /* A read waits: a socket's bytes may be received ahead of it. */
      unsigned reading = s->is_pipe ? EDDY_READ : EDDY_READ | EDDY__RECV;
      if (s->rd.kind != EDDY__RK_NONE)
        want |= reading;
      else if (eddy__filter_of(s) && eddy__filter_of(s)->want_read)
        want |= reading;
      else if (s->watch_idle && eddy__buf_len(&s->rbuf) == 0 && !s->kernel_unread)
        want |= EDDY_READ; /* so a peer's close or reset is noticed */
      /* else R6: input is buffered (here, or in the kernel as an idle peek
       * found) and nobody reads it: let TCP push back */
    }
    if (s->write_waiting && (!eddy__wq_empty(&s->wq) || eddy__raw_out_len(s)))
      want |= EDDY_WRITE;
  }
  if (!s->registered) {
    /* A write-only pipe asks for nothing, but when someone waits for its
     * close it is still watched: its reader going away shows as an error.
     * A send on the ring is watched too, so freeing the loop finds the
     * stream and closes it before the ring goes. */
    if (!want && !(s->watch_idle && !s->can_read && s->state == EDDY__ST_OPEN) &&
        !s->ring_send)
      return;
    int rc = eddy_loop_add_handler(eddy__stream_loop(s), s->fd, want, eddy__io_handler, s);
    eddy__loop_set_fd_kind(eddy__stream_loop(s), s->fd, EDDY__FD_STREAM);
    if (rc < 0) {
      eddy__stream_close(s, rc, "cannot watch the file descriptor");
      return;
    }
    s->registered = 1;
    s->watch_idle = 1; /* Tornado: once registered, an idle stream watches */
    s->interest = want;
    return;
  }
  if (want != s->interest) {
    eddy_loop_update_handler(eddy__stream_loop(s), s->fd, want);
    s->interest = want;
  }
}

static void read_failed(eddy_stream_t *s, int e)
{
  /* A pipe whose writer went away may read as EBADF on some systems
   * (Tornado's PipeIOStream): a close, not worth a warning. */
  if (!eddy__is_reset(e) && !(s->is_pipe && e == EBADF))
    eddy__log(eddy__stream_loop(s), EDDY_LOG_WARNING, "Read error on fd %d: %s", s->fd, strerror(e));
  eddy__stream_close(s, -e, NULL);
}

static void read_eof(eddy_stream_t *s)
{
  if (eddy__filter_of(s))
    eddy__filter_eof(s);
  else if (!eddy__stream_read_end(s))
    eddy__stream_close(s, 0, NULL);
}

/*
 * An idle plain socket watches for the peer's close or reset without
 * taking bytes out of the kernel: a 1-byte MSG_PEEK. Data found there
 * stays for the read that will ask for it (R6 backpressure, and STARTTLS:
 * the peer's first TLS record is still in the kernel when the filter goes
 * in, however late the switch comes); read interest goes off until then.
 * An EOF or an error is the close it is looking for.
 */
static void idle_peek(eddy_stream_t *s)
{
  char c;
  ssize_t r;
  do {
    r = eddy__loop_recv(eddy__stream_loop(s), s->fd, &c, 1, MSG_PEEK);
  } while (r < 0 && errno == EINTR);
  if (r > 0) {
    s->kernel_unread = 1;
    eddy__stream_note_io(s);
  } else if (r == 0) {
    read_eof(s);
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    s->read_drained = 1;
  } else {
    read_failed(s, errno);
  }
}

/*
 * Just before a socket's fd is closed: bytes left unread in the kernel
 * would make close() send a RST instead of a FIN, and a RST throws away
 * what is still in our send queue (the tail of the last write, a fatal
 * alert, the close_notify). So what the stream knows to be there goes:
 *   - a plain stream whose idle peek saw data: up to one chunk into the
 *     read buffer, as the idle read would have taken it (buffered input
 *     stays readable after the close);
 *   - a filtered stream (TLS session tickets that arrived while the
 *     stream was writing): read and dropped, bounded, since nothing will
 *     decode it.
 * Plain streams without peeked data make no syscall here.
 */
void eddy__io_drain_before_close(eddy_stream_t *s)
{
  ssize_t r;

  if (s->fd < 0 || s->is_pipe || !(s->kernel_unread || eddy__filter_of(s)))
    return;
  if (!eddy__filter_of(s)) {
    size_t have = eddy__buf_len(&s->rbuf), ask = s->opt->read_chunk_size;
    s->kernel_unread = 0;
    if (have >= s->opt->max_buffer_size)
      return;
    if (ask > s->opt->max_buffer_size - have)
      ask = s->opt->max_buffer_size - have;
    if (eddy__buf_reserve(&s->rbuf, ask) < 0)
      return;
    /* A short count does not say the kernel has no more: the rest of the
     * chunk is asked for until it says so. The peek saw data, so an
     * EAGAIN before any byte came is a passing answer: asked again, a few
     * times (a RST would cost the peer our last write). */
    eddy_loop_t *loop = eddy__stream_loop(s);
    int again = 3;
    for (size_t got = 0; got < ask; got += (size_t)r) {
      do {
        r = eddy__loop_recv(loop, s->fd, eddy__buf_tail(&s->rbuf), ask - got, 0);
      } while (r < 0 && (errno == EINTR || (errno == EAGAIN && got == 0 && again-- > 0)));
      if (r <= 0)
        break;
      eddy__buf_commit(&s->rbuf, (size_t)r);
    }
    if (eddy__buf_len(&s->rbuf) == 0)
      eddy__buf_release(&s->rbuf);
    return;
  }
  /* Until the kernel has no more, at most 256 KiB. Straight from the
   * kernel even on io_uring: what its ring received is dropped with the
   * handler. */
  char scratch[16384];
  size_t dropped = 0;
  for (int i = 0; i < 64 && dropped < 16 * sizeof(scratch); i++) {
    do {
      r = recv(s->fd, scratch, sizeof(scratch), 0);
    } while (r < 0 && errno == EINTR);
    if (r <= 0)
      break;
    dropped += (size_t)r;
  }
}

static ssize_t sys_read(eddy_stream_t *s, void *buf, size_t len)
{
  ssize_t r;
  eddy_loop_t *loop = eddy__stream_loop(s);
  do {
    r = s->is_pipe ? read(s->fd, buf, len) : eddy__loop_recv(loop, s->fd, buf, len, 0);
  } while (r < 0 && errno == EINTR);
  return r;
}

/*
 * A filter never lets the read buffer pass max_buffer_size: it keeps what
 * does not fit (transport.h). A read that the full buffer does not satisfy
 * while the filter holds more would wait forever, so it fails as on a
 * plain stream, whose next chunk would overflow. Chunked reads empty the
 * buffer as they go and idle streams just stop reading. @return 1 if the
 * stream closed (EDDY_EBUFFERFULL, or the read turned out unsatisfiable),
 * else 0 (the read may have completed).
 */
static int held_overflow(eddy_stream_t *s)
{
  int kind = s->rd.kind;

  if (!eddy__filter_of(s) || !eddy__filter_of(s)->holding || s->state != EDDY__ST_OPEN ||
      eddy__buf_len(&s->rbuf) < s->opt->max_buffer_size || kind == EDDY__RK_NONE ||
      kind == EDDY__RK_BYTES_CHUNKED || kind == EDDY__RK_CLOSE_CHUNKED)
    return 0;
  int r = eddy__read_try(s, 0, 1);
  if (r > 0)
    return 0;
  if (r == 0) {
    eddy__log(eddy__stream_loop(s), EDDY_LOG_ERROR, "Reached maximum read buffer size");
    eddy__stream_close(s, EDDY_EBUFFERFULL, NULL);
  }
  return 1;
}

/*
 * Reads from the kernel into the read buffer (or, for read_into without a
 * filter, straight into the caller's buffer) until the pending read's
 * target is reached (R6), the kernel is empty, or (with @bounded) the
 * per-event budget is used. Idle reads (filters, pipes, an error event)
 * and chunked reads take one chunk. After each chunk the pending read is
 * tried against the buffer (mid-burst, so regex searches wait for the
 * buffer to double).
 *
 * @return 1 if bytes came, 0 if none, -1 if the stream closed.
 */
int eddy__io_fill(eddy_stream_t *s, int bounded)
{
  size_t total = 0;
  int rounds = 0;

  s->kernel_unread = 0; /* whatever an idle peek saw is being read now */

  while (s->state == EDDY__ST_OPEN && s->can_read && !s->read_ended) {
    struct eddy__read_op *rd = &s->rd;
    size_t have = eddy__buf_len(&s->rbuf);
    ssize_t r;
    size_t ask;
    int err;

    if (rd->kind == EDDY__RK_INTO && !eddy__filter_of(s) && have == 0) {
      /* Zero-copy: the bytes land where the caller wants them. */
      ask = rd->n - rd->done;
      r = sys_read(s, rd->into + rd->done, ask);
      err = errno;
      if (r > 0) {
        rd->done += (size_t)r;
        total += (size_t)r;
        eddy__stream_note_io(s);
        if ((size_t)r < ask)
          s->read_drained = 1;
        if (eddy__read_try(s, 0, 1) != 0 || s->read_drained)
          break;
        goto next;
      }
    } else {
      if (rd->kind != EDDY__RK_NONE && have >= eddy__read_target(s))
        break; /* R6: the read could be satisfied; take no more */
      if (eddy__filter_of(s) && eddy__filter_of(s)->holding &&
          (have < s->opt->max_buffer_size || rd->kind != EDDY__RK_NONE)) {
        /* What the filter kept back comes before the kernel's bytes,
         * which stay there meanwhile (R6). An idle stream with a full
         * buffer goes on to the kernel only on an error event: that read
         * finds the error instead of the event repeating forever. */
        if (have < s->opt->max_buffer_size && eddy__filter_input(s) < 0)
          return -1;
        if (eddy__buf_len(&s->rbuf) == have) {
          held_overflow(s);
          break;
        }
        total += eddy__buf_len(&s->rbuf) - have;
      } else {
        struct eddy__buf *into = eddy__filter_of(s) ? &eddy__filter_of(s)->raw_in : &s->rbuf;
        ask = s->opt->read_chunk_size;
        if (eddy__buf_reserve(into, ask) < 0) {
          eddy__stream_close(s, -ENOMEM, NULL);
          return -1;
        }
        r = sys_read(s, eddy__buf_tail(into), ask);
        err = errno;
        if (r <= 0) {
          if (eddy__buf_len(into) == 0)
            eddy__buf_release(into); /* idle streams hold no buffer */
          goto ended;
        }
        eddy__buf_commit(into, (size_t)r);
        total += (size_t)r;
        eddy__stream_note_io(s);
        if ((size_t)r < ask)
          s->read_drained = 1;
        if (eddy__filter_of(s) && eddy__filter_input(s) < 0)
          return -1;
        if (eddy__buf_len(&s->rbuf) > s->opt->max_buffer_size) {
          eddy__log(eddy__stream_loop(s), EDDY_LOG_ERROR, "Reached maximum read buffer size");
          eddy__stream_close(s, EDDY_EBUFFERFULL, NULL);
          return -1;
        }
      }
      if (held_overflow(s))
        return -1;
      if (rd->kind == EDDY__RK_NONE || rd->kind == EDDY__RK_BYTES_CHUNKED ||
          rd->kind == EDDY__RK_CLOSE_CHUNKED)
        break; /* one chunk: idle (R6), or chunked (delivered by the caller) */
      /* A short read means the kernel is empty, but not input the filter
       * still holds. */
      if (eddy__read_try(s, 0, 0) != 0 ||
          (s->read_drained && !(eddy__filter_of(s) && eddy__filter_of(s)->holding)))
        break;
      goto next;
    }
  ended:
    if (r == 0) {
      read_eof(s);
      return -1;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
      s->read_drained = 1;
      break;
    }
    read_failed(s, err);
    return -1;
  next:
    if (bounded && (++rounds >= EDDY__IO_ROUNDS || total >= EDDY__IO_BUDGET))
      break;
  }
  if (s->state == EDDY__ST_CLOSED)
    return -1;
  return total > 0;
}

/* Read readiness (or an error/hang-up, which a read reports properly). */
static void handle_read(eddy_stream_t *s, unsigned events)
{
  s->read_drained = 0;
  if (!s->can_read || s->read_ended) {
    /* A write-only pipe, or a socket whose peer ended its side: an error
     * or hang-up means the peer went away entirely. With writes queued the
     * flush that follows finds out how; without, SO_ERROR says (a reset),
     * or nobody is left to write to. */
    if (eddy__wq_empty(&s->wq)) {
      int e = 0;
      socklen_t len = sizeof(e);
      if (s->is_pipe || getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e == 0)
        e = EPIPE;
      eddy__stream_close(s, -e, NULL);
    }
    return;
  }
  if (s->rd.kind == EDDY__RK_NONE && !(eddy__filter_of(s) && eddy__filter_of(s)->want_read)) {
    /* Idle: look for EOF/RST promptly -- a plain socket peeks, a pipe or
     * a filter (TLS post-handshake records, close_notify) reads one
     * chunk. With input already buffered (here or in the kernel), only on
     * an error or hang-up, which would otherwise repeat forever
     * (level-triggered): that read finds the RST or the EOF. */
    if ((eddy__buf_len(&s->rbuf) > 0 || s->kernel_unread) && !(events & EDDY_ERROR))
      return;
    if (!eddy__filter_of(s) && !s->is_pipe && !(events & EDDY_ERROR))
      idle_peek(s);
    else
      eddy__io_fill(s, 1);
    return;
  }
  for (int round = 0; round < EDDY__IO_ROUNDS; round++) {
    int kind = s->rd.kind;
    int r = eddy__io_fill(s, 1);
    if (r < 0 || s->rd.kind == EDDY__RK_NONE)
      return;
    /* End of the burst: the final search R7 insists on (#2717). */
    if (eddy__read_try(s, 1, 1) != 0)
      return;
    if (kind != EDDY__RK_BYTES_CHUNKED && kind != EDDY__RK_CLOSE_CHUNKED)
      return;
    if (r == 0 || s->read_drained)
      return;
  }
}

void eddy__io_handler(eddy_loop_t *loop, int fd, unsigned events, void *arg)
{
  eddy_stream_t *s = arg;
  (void)loop;
  (void)fd;

  eddy__stream_hold(s);
  /* Tornado's order within one event: connect, then reads, then writes. */
  if (s->state == EDDY__ST_CONNECTING && (events & (EDDY_WRITE | EDDY_ERROR)))
    eddy__connect_complete(s);
  if (s->state == EDDY__ST_OPEN && (events & (EDDY_READ | EDDY_ERROR)))
    handle_read(s, events);
  if (s->state == EDDY__ST_OPEN && (events & (EDDY_WRITE | EDDY_ERROR)) &&
      (!eddy__wq_empty(&s->wq) || eddy__raw_out_len(s))) {
    s->write_waiting = 0;
    eddy__write_flush(s);
  }
  if (s->state == EDDY__ST_OPEN) {
    eddy__io_update(s);
    eddy__stream_arm_deadlines(s);
  }
  eddy__stream_release(s);
}
