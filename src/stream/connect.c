/* SPDX-License-Identifier: MIT */
/*
 * Non-blocking connect (IPv4, IPv6, UNIX).
 *
 * connect() returns EINPROGRESS, the stream waits for writability and
 * reads SO_ERROR (libuv, h2o, Tornado). While connecting no syscall touches
 * the socket for reads or writes: reads stay pending and writes stay
 * queued. On success the connect future resolves first, then the queued
 * writes go out, so the connect future's callbacks run before theirs
 * (Tornado's ordering, test 4). A failure closes the stream with the error,
 * which rejects the connect future (and everything else pending) with
 * EDDY_ECLOSED carrying it.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stream/stream_internal.h"

static void stream_value_free(void *p)
{
  eddy_stream_unref(p);
}

/* The socket is connected: settle the connect future, then start what
 * waited for it. */
static void connected(eddy_stream_t *s)
{
  eddy_future_t *f = s->cold->connect_future; /* made by eddy_stream_connect */
  s->cold->connect_future = NULL;
  s->state = EDDY__ST_OPEN;
  eddy_future_resolve(f, eddy_stream_ref(s), stream_value_free);
  eddy_future_unref(f);
  if (eddy__filter_of(s) && eddy__filter_begin(s) < 0)
    goto out;
  s->write_waiting = 0;
  eddy__write_flush(s);
  if (s->state == EDDY__ST_OPEN && s->rd.kind != EDDY__RK_NONE) {
    /* A read issued while connecting may already be satisfiable from the
     * kernel; the loop will report it, no inline attempt needed. */
    s->read_drained = 0;
  }
  eddy__io_update(s);
out:
  eddy__stream_release(s); /* the reference held while connecting */
}

void eddy__connect_complete(eddy_stream_t *s)
{
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    err = errno;
  if (err) {
    eddy__stream_close(s, -err, NULL);
    return;
  }
  eddy__stream_hold(s);
  connected(s);
  eddy__stream_release(s);
}

eddy_future_t *eddy_stream_connect(eddy_stream_t *s, const struct sockaddr *addr,
                                   socklen_t addrlen)
{
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  if (!addr || addrlen < sizeof(sa_family_t) || addrlen > sizeof(struct sockaddr_storage) ||
      s->is_pipe)
    return eddy__stream_rejected(s, EDDY_EUSAGE);
  if (s->state == EDDY__ST_CLOSED)
    return eddy__stream_rejected(s, EDDY_ECLOSED);
  if (s->state == EDDY__ST_CONNECTING || (s->cold && s->cold->connect_future))
    return eddy__stream_rejected(s, EDDY_EUSAGE);
  if (!eddy__stream_cold(s))
    return eddy__stream_rejected(s, -ENOMEM);

  eddy_future_t *f = eddy_future_new(eddy__stream_loop(s));
  if (!f)
    return NULL;
  s->cold->connect_future = eddy_future_ref(f);
  eddy__stream_hold(s); /* while connecting; released by connected() or close */

  if (s->fd < 0) {
    s->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
      eddy__stream_close(s, -errno, NULL);
      return f;
    }
  }
  s->state = EDDY__ST_CONNECTING;
  if (connect(s->fd, addr, addrlen) == 0) {
    connected(s);
    return f;
  }
  if (errno != EINPROGRESS && errno != EINTR) {
    /* Refused at once (UNIX sockets: -ECONNREFUSED, -ENOENT, -EAGAIN for a
     * full backlog; bad addresses: -EAFNOSUPPORT, -EINVAL...). */
    eddy__stream_close(s, -errno, NULL);
    return f;
  }
  /* EINTR on a non-blocking connect: it goes on in the background. */
  if (s->opt->connect_timeout > 0) {
    s->cold->connect_deadline = eddy_loop_time(eddy__stream_loop(s)) + s->opt->connect_timeout;
    eddy__stream_arm_deadlines(s);
  }
  eddy__io_update(s);
  return f;
}
