/* SPDX-License-Identifier: MIT */
/*
 * Stream life cycle: construction, references, closing, state queries and
 * deadlines. See stream_internal.h for how the files divide the work.
 *
 * References. The user's references and the stream's own are one count:
 * every pending operation (a read, queued writes, a connect, a queued task,
 * a running I/O handler) holds one, so the stream outlives its owner's last
 * eddy_stream_unref() exactly as long as something is pending. When the
 * count reaches zero on an open stream, the stream closes, which queues the
 * close task (holding a reference again); the task's release frees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/list.h"
#include "common/options.h"
#include "stream/stream_internal.h"

/* Tornado's defaults, and what options_effective(NULL) gives, so the
 * streams that use them all share this one copy. */
static const eddy_stream_options_t default_options = {
    .max_buffer_size = 100u * 1024u * 1024u,
    .read_chunk_size = 64u * 1024u,
    .max_write_buffer_size = (size_t)-1,
    .write_high_watermark = 1024u * 1024u,
};

void eddy_stream_options_init(eddy_stream_options_t *options)
{
  if (options)
    memset(options, 0, sizeof(*options));
}

static double sane_timeout(double t)
{
  return (isfinite(t) && t > 0) ? t : 0;
}

/* Fills in the defaults, with the chunk clamped to half the buffer so one
 * read can never by itself overflow it. */
static void options_effective(eddy_stream_options_t *o, const eddy_stream_options_t *in)
{
  if (in)
    *o = *in;
  else
    memset(o, 0, sizeof(*o));
  if (!o->max_buffer_size)
    o->max_buffer_size = default_options.max_buffer_size;
  if (!o->read_chunk_size)
    o->read_chunk_size = default_options.read_chunk_size;
  if (o->read_chunk_size > o->max_buffer_size / 2)
    o->read_chunk_size = o->max_buffer_size / 2;
  if (!o->read_chunk_size)
    o->read_chunk_size = 1;
  if (!o->max_write_buffer_size)
    o->max_write_buffer_size = default_options.max_write_buffer_size;
  if (!o->write_high_watermark)
    o->write_high_watermark = default_options.write_high_watermark;
  if (o->write_low_watermark > o->write_high_watermark)
    o->write_low_watermark = o->write_high_watermark;
  o->connect_timeout = sane_timeout(o->connect_timeout);
  o->read_timeout = sane_timeout(o->read_timeout);
  o->write_timeout = sane_timeout(o->write_timeout);
  o->idle_timeout = sane_timeout(o->idle_timeout);
}

/* The stream's options: the shared defaults when they are what @in comes
 * to, else a copy of its own. NULL on ENOMEM. */
static const eddy_stream_options_t *options_for_stream(const eddy_stream_options_t *in)
{
  eddy_stream_options_t eff, *own;

  options_effective(&eff, in);
  eff.allow_half_open = 0; /* a bit of the stream's own (s->half_open) */
  if (memcmp(&eff, &default_options, sizeof(eff)) == 0)
    return &default_options;
  own = malloc(sizeof(*own));
  if (own)
    *own = eff;
  return own;
}

static void close_task_run(struct eddy__task *task);
static void late_task_run(struct eddy__task *task);

struct eddy__stream_cold *eddy__stream_cold(eddy_stream_t *s)
{
  if (!s->cold && (s->cold = calloc(1, sizeof(*s->cold))) != NULL)
    s->cold->stream = s;
  return s->cold;
}

static int wants_deadlines(const eddy_stream_options_t *o)
{
  return o->connect_timeout > 0 || o->read_timeout > 0 ||
         o->write_timeout > 0 || o->idle_timeout > 0;
}

/* eddy_loop_free() with the stream still watched: an operation is pending
 * (the stream holds itself for it) or it waits for the peer's close. Closing
 * settles the operations, so their chains run and release it. */
static void close_for_loop_free(void *stream)
{
  eddy__stream_close(stream, EDDY_ECANCELLED, "its loop is being freed");
}

eddy_stream_t *eddy__stream_alloc(eddy_loop_t *loop, int fd, int is_pipe,
                                  const eddy_stream_options_t *options)
{
  eddy_stream_t *s;
  int err = EINVAL;

  if (!loop || fd < -1 || (is_pipe && fd < 0) ||
      (options && !EDDY__OPTIONS_KNOWN(options)))
    goto fail;
  if (fd >= 0) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
      err = errno;
      goto fail;
    }
  }
  s = calloc(1, sizeof(*s));
  if (s)
    s->opt = options_for_stream(options);
  if (s && s->opt && wants_deadlines(s->opt) && !eddy__stream_cold(s)) {
    if (s->opt != &default_options)
      free((void *)s->opt);
    s->opt = NULL;
  }
  if (!s || !s->opt) {
    free(s);
    err = ENOMEM;
    goto fail;
  }
  s->loop_id = eddy__head(loop)->id;
  s->fd = fd;
  s->refs = 1;
  eddy__head(loop)->nstreams++;
  eddy__head(loop)->close_stream = close_for_loop_free;
  s->state = fd < 0 ? EDDY__ST_UNCONNECTED : EDDY__ST_OPEN;
  s->is_pipe = is_pipe ? 1 : 0;
  s->can_read = s->can_write = 1;
  s->half_open = options && options->allow_half_open;
  eddy__wq_init(&s->wq);
  s->close_task.run = close_task_run;
  if (s->cold)
    s->cold->last_io = eddy_loop_time(loop);
  if (s->opt->idle_timeout > 0)
    eddy__stream_arm_deadlines(s);
  return s;

fail:
  if (fd >= 0)
    close(fd);
  errno = err;
  return NULL;
}

eddy_stream_t *eddy_stream_new_socket(eddy_loop_t *loop, int fd,
                                      const eddy_stream_options_t *options)
{
  return eddy__stream_alloc(loop, fd, 0, options);
}

eddy_stream_t *eddy_stream_ref(eddy_stream_t *s)
{
  if (s)
    s->refs++;
  return s;
}

/* Settles the wait_closed futures, in the order they were asked for,
 * then fires the close watches. */
static void closers_resolve(eddy_stream_t *s)
{
  while (s->cold && s->cold->closers) {
    struct eddy__waiter *w = s->cold->closers;
    s->cold->closers = w->next;
    eddy_future_on_cancel(w->future, NULL, NULL);
    eddy_future_resolve(w->future, NULL, NULL);
    eddy_future_unref(w->future);
    free(w);
  }
  while (s->cold && s->cold->watches) {
    struct eddy__close_watch *w = s->cold->watches;
    s->cold->watches = w->next;
    w->stream = NULL;
    eddy__loop_defer(eddy__stream_loop(s), &w->task);
  }
  if (s->link.owner && !s->owner_told) {
    s->owner_told = 1;
    s->link.owner->closed(s->link.owner, s);
  }
}

static void stream_free(eddy_stream_t *s)
{
  closers_resolve(s); /* none left: the close task settled them */
  eddy__read_clear(s);
  eddy__wq_clear(&s->wq);
  eddy__buf_release(&s->rbuf);
  eddy__filter_free(s);
  if (s->cold) {
    eddy_timer_free(s->cold->timer);
    free(s->cold->error_msg);
    free(s->cold);
  }
  if (s->opt != &default_options)
    free((void *)s->opt);
  eddy__head(eddy__stream_loop(s))->nstreams--;
  free(s);
}

void eddy_stream_unref(eddy_stream_t *s)
{
  if (!s)
    return;
  if (s->refs > 1) {
    s->refs--;
    return;
  }
  if (s->state != EDDY__ST_CLOSED) {
    /* The close queues the close task, which holds its own reference and
     * frees the stream when it has run. */
    eddy__stream_close_local(s);
    s->refs--;
    return;
  }
  stream_free(s);
}

void eddy__stream_hold(eddy_stream_t *s)
{
  s->refs++;
}

void eddy__stream_release(eddy_stream_t *s)
{
  eddy_stream_unref(s);
}

/* A rejection for an operation on a closed stream, carrying why it closed. */
static void reject_closed(eddy_stream_t *s, eddy_future_t *f)
{
  if (s->error)
    eddy_future_reject_cause(f, EDDY_ECLOSED, s->error, "stream closed: %s",
                             eddy__stream_error_msg(s) ? eddy__stream_error_msg(s)
                                                       : eddy_strerror(s->error));
  else
    eddy_future_reject_cause(f, EDDY_ECLOSED, 0, "%s", eddy_strerror(EDDY_ECLOSED));
}

eddy_future_t *eddy__stream_rejected(eddy_stream_t *s, int code)
{
  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (!f)
    return NULL;
  if (code == EDDY_ECLOSED)
    reject_closed(s, f);
  else
    eddy_future_reject(f, code, NULL);
  return f;
}

/* Rejects and drops the stream's reference to a pending future. */
void eddy__stream_fail_future(eddy_stream_t *s, eddy_future_t **fp)
{
  eddy_future_t *f = *fp;
  if (!f)
    return;
  *fp = NULL;
  reject_closed(s, f);
  eddy_future_unref(f);
}

/* A closing record the kernel did not take at once gets this long, and
 * is sent only if it is this small: a close_notify or an alert is a few
 * dozen bytes (with session tickets, a few hundred); a peer that leaves
 * more than this unread is not reading at all. */
#define LAST_WORDS_SECONDS 1.0
#define LAST_WORDS_MAX 16384

void eddy__stream_close(eddy_stream_t *s, int error, const char *message)
{
  if (s->state == EDDY__ST_CLOSED)
    return;
  int was_open = s->state == EDDY__ST_OPEN;
  eddy__stream_hold(s);
  if (error && !s->error) {
    s->error = error;
    /* Without the cold part the message is the code's text anyway. */
    if (message && eddy__stream_cold(s))
      s->cold->error_msg = strdup(message);
  }
  s->state = EDDY__ST_CLOSED;
  /* A send on the ring is submitted if it was not, and cancelled if the
   * socket has no room: the fd is not closed under an unsubmitted request,
   * and a send waiting in the kernel would keep the socket open (its FIN
   * or RST unsent) until the peer read. */
  eddy__write_ring_settle(s);
  /* The handler goes before the fd: the loop must never watch a closed
   * (and possibly already reused) descriptor. */
  if (s->registered)
    eddy_loop_remove_handler(eddy__stream_loop(s), s->fd);
  s->registered = 0;
  s->interest = 0;
  if (was_open)
    eddy__io_drain_before_close(s); /* a FIN, not a RST */
  if (s->fd >= 0 && eddy__filter_of(s) && eddy__filter_of(s)->last_words_left && !s->is_pipe &&
      eddy__buf_len(&eddy__filter_of(s)->raw_out) <= LAST_WORDS_MAX &&
      eddy__loop_linger(eddy__stream_loop(s), s->fd, eddy__buf_head(&eddy__filter_of(s)->raw_out),
                        eddy__buf_len(&eddy__filter_of(s)->raw_out), LAST_WORDS_SECONDS) == 0)
    s->fd = -1; /* the loop sends the rest of the last words, then closes it */
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  if (s->cold && s->cold->timer)
    eddy_timer_stop(s->cold->timer);
  if (s->cold)
    s->cold->timer_at = 0;

  /* Futures fail (or complete, R9) first; the close callback is queued
   * after them, so it runs after their callbacks (Tornado's ordering). */
  if (s->cold && s->cold->connect_future) {
    /* connect.c holds a reference while its future is pending. */
    eddy__stream_fail_future(s, &s->cold->connect_future);
    eddy__stream_release(s);
  }
  eddy__read_on_close(s);
  eddy__write_fail_all(s);
  if (eddy__filter_of(s) && eddy__filter_of(s)->ops->closed)
    eddy__filter_of(s)->ops->closed(eddy__filter_of(s), s->error);
  if (s->close_phase == 0) {
    s->close_phase = 1;
    if (s->rd.kind == EDDY__RK_BYTES_CHUNKED || s->rd.kind == EDDY__RK_CLOSE_CHUNKED)
      s->close_phase = 3; /* chunks still to hand over, from the task */
    eddy__stream_hold(s);
    eddy__loop_defer(eddy__stream_loop(s), &s->close_task);
  }
  eddy__stream_release(s);
}

static void close_task_run(struct eddy__task *task)
{
  eddy_stream_t *s = eddy_container_of(task, eddy_stream_t, close_task);

  if (s->close_phase == 3) {
    /* A chunked read was pending with bytes buffered: hand them over from
     * the loop (chunk callbacks never run inside eddy_stream_close), settle
     * its future, then come back for the close callback so it still runs
     * after that future's callbacks. */
    eddy__read_deliver_chunks(s);
    eddy__read_on_close(s);
    s->close_phase = 1;
    eddy__loop_defer(eddy__stream_loop(s), &s->close_task);
    return;
  }
  eddy_close_fn fn = s->close_fn;
  s->close_fn = NULL;
  if (fn)
    fn(s, s->error, s->close_arg);
  closers_resolve(s); /* including any the callback asked for */
  s->close_phase = 2;
  eddy__stream_release(s);
}

static void late_task_run(struct eddy__task *task)
{
  eddy_stream_t *s = eddy_container_of(task, eddy_stream_t, close_task);
  eddy_close_fn fn = s->close_fn;
  s->late_queued = 0;
  s->close_fn = NULL;
  if (fn)
    fn(s, s->error, s->close_arg);
  eddy__stream_release(s);
}

/* A local close without error: a filter's closing record (TLS
 * close_notify) gets one non-blocking try first. The plain path costs one
 * NULL check. */
void eddy__stream_close_local(eddy_stream_t *s)
{
  if (s->state == EDDY__ST_CLOSED)
    return;
  eddy__write_flush_held(s);
  if (eddy__filter_of(s)) {
    eddy__filter_say_goodbye(s);
    eddy__filter_last_send(s);
  }
  eddy__stream_close(s, 0, NULL);
}

/*
 * The peer ended its side: a read of 0, or a filter's end (TLS
 * close_notify). Whether the stream closes now is the caller's to do when
 * this returns 0. It returns 1 when the write side goes on instead:
 *   - with allow_half_open, until the application closes the stream or
 *     shuts its own side down (then it closes, maybe_shutdown in write.c);
 *   - without it, while writes are queued: they still reach a peer that
 *     reads (Tornado never closes on EOF while a write is pending), and the
 *     stream closes once they are sent, as close_when_drained.
 * Either way the pending read settles now as at a close (R9), later reads
 * fail at once unless the buffer satisfies them, and read interest goes.
 */
int eddy__stream_read_end(eddy_stream_t *s)
{
  if (s->state != EDDY__ST_OPEN)
    return 0;
  int keep = s->half_open ? !s->write_shut : eddy_stream_write_buffer_size(s) > 0;
  if (!keep)
    return 0;
  s->read_ended = 1;
  s->kernel_unread = 0;
  if (!s->half_open)
    s->close_drained = 1;
  eddy__stream_hold(s);
  eddy__read_on_close(s);
  if (s->state == EDDY__ST_OPEN)
    eddy__io_update(s);
  eddy__stream_release(s);
  return 1;
}

void eddy_stream_close(eddy_stream_t *s, int error)
{
  if (!s)
    return;
  if (error == 0) {
    eddy__stream_close_local(s);
  } else {
    eddy__write_flush_held(s);
    eddy__stream_close(s, error > 0 ? -error : error, NULL);
  }
}

/* An idle stream starts watching its socket for the peer's close. */
static void watch_idle(eddy_stream_t *s)
{
  if (s->state != EDDY__ST_CLOSED && !s->watch_idle) {
    s->watch_idle = 1;
    eddy__io_update(s);
  }
}

void eddy_stream_set_close_callback(eddy_stream_t *s, eddy_close_fn fn, void *arg)
{
  if (!s)
    return;
  s->close_fn = fn;
  s->close_arg = arg;
  if (s->state == EDDY__ST_CLOSED) {
    if (fn && s->close_phase == 2 && !s->late_queued) {
      s->late_queued = 1;
      eddy__stream_hold(s);
      /* The close task has run for good: its task is free to reuse. */
      s->close_task.run = late_task_run;
      eddy__loop_defer(eddy__stream_loop(s), &s->close_task);
    }
    return;
  }
  if (fn)
    watch_idle(s);
}

int eddy__stream_watch_close(eddy_stream_t *s, struct eddy__close_watch *w)
{
  if (s->close_phase == 2) {
    w->stream = NULL;
    eddy__loop_defer(eddy__stream_loop(s), &w->task);
    return 0;
  }
  if (!eddy__stream_cold(s))
    return -ENOMEM;
  struct eddy__close_watch **tail = &s->cold->watches;
  while (*tail)
    tail = &(*tail)->next;
  w->next = NULL;
  w->stream = s;
  *tail = w;
  watch_idle(s);
  return 0;
}

int eddy__stream_set_owner(eddy_stream_t *s, struct eddy__stream_owner *owner)
{
  s->link.owner = owner;
  if (s->close_phase == 2) {
    s->owner_told = 1;
    return 1;
  }
  /* Watching puts an open stream in the loop's fd table (or closes it, if
   * the loop cannot take it), where the owner finds it: close_watch.h. */
  watch_idle(s);
  return 0;
}

struct eddy__stream_link *eddy__stream_link(eddy_stream_t *s)
{
  return &s->link;
}

eddy_stream_t *eddy__stream_of_link(struct eddy__stream_link *link)
{
  return eddy_container_of(link, eddy_stream_t, link);
}

int eddy__stream_owner_told(const eddy_stream_t *s)
{
  return s->owner_told;
}

/* Cancelling one wait_closed future forgets that waiter only. */
static void closer_cancelled(eddy_future_t *f, void *arg)
{
  eddy_stream_t *s = arg;
  for (struct eddy__waiter **pp = &s->cold->closers; *pp; pp = &(*pp)->next) {
    if ((*pp)->future == f) {
      struct eddy__waiter *w = *pp;
      *pp = w->next;
      eddy_future_unref(w->future);
      free(w);
      return;
    }
  }
}

/*
 * Every call gets a future of its own, so one caller cancelling (or
 * eddy_with_timeout() on it) leaves the others waiting. Pending waiters do
 * not keep the stream alive: they are settled by the close task, which
 * runs before the stream can be freed, so the cancel hook's stream
 * pointer is valid while a waiter is listed.
 */
eddy_future_t *eddy_stream_wait_closed(eddy_stream_t *s)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (!f)
    return NULL;
  if (s->close_phase == 2) {
    eddy_future_resolve(f, NULL, NULL);
    return f;
  }
  struct eddy__waiter *w = eddy__stream_cold(s) ? malloc(sizeof(*w)) : NULL, **tail;
  if (!w) {
    eddy_future_unref(f);
    return NULL;
  }
  tail = &s->cold->closers;
  while (*tail)
    tail = &(*tail)->next;
  w->next = NULL;
  w->future = eddy_future_ref(f);
  *tail = w;
  eddy_future_on_cancel(f, closer_cancelled, s);
  watch_idle(s); /* as set_close_callback */
  return f;
}

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

int eddy_stream_closed(const eddy_stream_t *s)
{
  return !s || s->state == EDDY__ST_CLOSED;
}

int eddy_stream_read_ended(const eddy_stream_t *s)
{
  return !s || s->state == EDDY__ST_CLOSED || s->read_ended;
}

int eddy_stream_reading(const eddy_stream_t *s)
{
  return s && s->rd.kind != EDDY__RK_NONE;
}

int eddy_stream_error(const eddy_stream_t *s)
{
  return (s && s->state == EDDY__ST_CLOSED) ? s->error : 0;
}

const char *eddy_stream_error_message(const eddy_stream_t *s)
{
  if (!s || s->state != EDDY__ST_CLOSED || !s->error)
    return NULL;
  return eddy__stream_error_msg(s) ? eddy__stream_error_msg(s) : eddy_strerror(s->error);
}

int eddy_stream_fd(const eddy_stream_t *s)
{
  return s ? s->fd : -1;
}

eddy_loop_t *eddy_stream_loop(const eddy_stream_t *s)
{
  return s ? eddy__stream_loop(s) : NULL;
}

size_t eddy_stream_read_buffer_size(const eddy_stream_t *s)
{
  return s ? eddy__buf_len(&s->rbuf) : 0;
}

int eddy_stream_set_nodelay(eddy_stream_t *s, int on)
{
  if (!s || s->is_pipe || s->state == EDDY__ST_CLOSED || s->fd < 0)
    return 0;
  if (!s->nodelay_known) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(s->fd, (struct sockaddr *)&ss, &len) < 0)
      return -errno;
    s->is_tcp = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
    s->nodelay_known = 1;
  }
  if (!s->is_tcp)
    return 0;
  int v = on ? 1 : 0;
  s->nodelay_on = 0;
  if (setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) < 0) {
    /* The socket may be racing with a reset; that is not the caller's
     * problem (Tornado ignores these too). */
    if (errno == EINVAL || errno == ECONNRESET)
      return 0;
    return -errno;
  }
  s->nodelay_on = on != 0;
  return 0;
}

int eddy_stream_peer_address(const eddy_stream_t *s, struct sockaddr_storage *addr,
                             socklen_t *addrlen)
{
  if (!s || !addr || !addrlen)
    return -EINVAL;
  if (s->is_pipe)
    return -ENOTSOCK;
  if (s->fd < 0)
    return -ENOTCONN;
  socklen_t len = sizeof(*addr);
  if (getpeername(s->fd, (struct sockaddr *)addr, &len) < 0)
    return -errno;
  *addrlen = len;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Deadlines: one lazily made timer, armed for the nearest deadline         */
/* ------------------------------------------------------------------------ */

/*
 * Deadlines move all the time (every read and write pushes the idle and
 * write deadlines back), and restarting a timer on each would cost a heap
 * operation per I/O. So the timer is only ever moved earlier; when it fires
 * early it recomputes and sleeps again.
 */
static double nearest_deadline(const eddy_stream_t *s)
{
  double d = 0;
#define CONSIDER(x)            \
  do {                         \
    double x_ = (x);           \
    if (x_ > 0 && (d == 0 || x_ < d)) \
      d = x_;                  \
  } while (0)
  const struct eddy__stream_cold *c = s->cold;
  if (!c)
    return 0; /* no timeout option: no deadline */
  if (s->state == EDDY__ST_CONNECTING)
    CONSIDER(c->connect_deadline);
  if (s->rd.kind != EDDY__RK_NONE)
    CONSIDER(c->read_deadline);
  if (!eddy__wq_empty(&s->wq) || eddy__raw_out_len(s))
    CONSIDER(c->write_deadline);
  if (s->opt->idle_timeout > 0)
    CONSIDER(c->last_io + s->opt->idle_timeout);
#undef CONSIDER
  return d;
}

static void deadline_fired(void *arg)
{
  eddy_stream_t *s = arg;
  struct eddy__stream_cold *c = s->cold; /* the timer is in it */
  double now = eddy_loop_time(eddy__stream_loop(s)) + 1e-6;
  const char *what = NULL;

  c->timer_at = 0;
  if (s->state == EDDY__ST_CLOSED)
    return;
  if (s->state == EDDY__ST_CONNECTING && c->connect_deadline > 0 && now >= c->connect_deadline)
    what = "connect timed out";
  else if (s->rd.kind != EDDY__RK_NONE && c->read_deadline > 0 && now >= c->read_deadline)
    what = "read timed out";
  else if ((!eddy__wq_empty(&s->wq) || eddy__raw_out_len(s)) && c->write_deadline > 0 &&
           now >= c->write_deadline)
    what = "write timed out";
  else if (s->opt->idle_timeout > 0 && now >= c->last_io + s->opt->idle_timeout)
    what = "idle timeout";
  if (what) {
    eddy__stream_close(s, EDDY_ETIMEOUT, what);
    return;
  }
  eddy__stream_arm_deadlines(s);
}

void eddy__stream_arm_deadlines(eddy_stream_t *s)
{
  if (s->state == EDDY__ST_CLOSED)
    return;
  double d = nearest_deadline(s);
  struct eddy__stream_cold *c = s->cold; /* d > 0: it exists */
  if (d == 0 || (c->timer_at > 0 && c->timer_at <= d))
    return;
  if (!c->timer) {
    c->timer = eddy_timer_new(eddy__stream_loop(s), deadline_fired, s);
    if (!c->timer)
      return; /* ENOMEM: the deadline is lost, the stream works on */
  }
  if (eddy_timer_start_at(c->timer, d) == 0)
    c->timer_at = d;
}

void eddy__stream_note_io(eddy_stream_t *s)
{
  if (s->opt->idle_timeout > 0)
    s->cold->last_io = eddy_loop_time(eddy__stream_loop(s)); /* made with the stream */
}
