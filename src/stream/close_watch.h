/* SPDX-License-Identifier: MIT */
/*
 * Close watches: how eddy's own modules (the TCP server) learn that a
 * stream has closed without holding a reference to it and without the
 * two allocations of a wait_closed future. Not installed.
 *
 * A watch is embedded in the watcher's own record. While the stream is
 * open, watch->stream points at it (a weak pointer: valid because an open
 * stream is alive). When the stream's close task runs -- after its close
 * callback and its wait_closed futures -- the stream sets watch->stream to
 * NULL and defers watch->task to the loop, in the order the watches were
 * added. A watch cannot be withdrawn: the record that holds it must live
 * until its task has run.
 */
#ifndef EDDY_STREAM_CLOSE_WATCH_H
#define EDDY_STREAM_CLOSE_WATCH_H

#include "common/list.h"
#include "eddy/stream.h"
#include "loop/loop_internal.h"

struct eddy__close_watch {
  struct eddy__task task;          /* run is the watcher's; set it first */
  struct eddy__close_watch *next;  /* in the stream's list */
  eddy_stream_t *stream;           /* while open; NULL once closed */
};

/*
 * Starts watching @s with @w (w->task.run must be set). An idle stream
 * then keeps watching its socket for the peer's close, as with
 * eddy_stream_wait_closed(). If @s has closed already, the task is
 * deferred now. Returns 0, or -ENOMEM (the watch list lives in the
 * stream's cold part, stream_internal.h), watching nothing.
 */
int eddy__stream_watch_close(eddy_stream_t *s, struct eddy__close_watch *w);

/*
 * The owner link: one per stream, embedded in it, for the module that
 * handed the stream out and counts it until it closes (the TCP server).
 * A watch costs its own record; this costs nothing beyond the stream, which
 * matters for servers holding many idle connections.
 *
 * The owner is told synchronously, from the stream's close task after its
 * close callback and wait_closed futures (whose callbacks are only queued):
 * the stream is alive then, and the owner must not call back into it. The
 * rest of the link is the owner's: a future it waits on for the stream
 * through the embedded task. There is no list node: linking makes an open
 * stream watch its socket (as eddy_stream_wait_closed() does), so until it
 * closes the loop's fd table holds it, and an owner that must reach its
 * open streams walks that (eddy__loop_each_stream) and compares the
 * owner; the closed ones it only counts. The link lives as long as the
 * stream.
 */
struct eddy__stream_owner {
  void (*closed)(struct eddy__stream_owner *owner, eddy_stream_t *s);
};

struct eddy__stream_link {
  struct eddy__stream_owner *owner; /* NULL: none */
  eddy_future_t *waited;
  struct eddy__task task;
};

/*
 * Links @s to @owner (@s must have none). Returns 0, or 1 if @s has closed
 * already: then the owner is never told, and knows now.
 */
int eddy__stream_set_owner(eddy_stream_t *s, struct eddy__stream_owner *owner);
struct eddy__stream_link *eddy__stream_link(eddy_stream_t *s);
eddy_stream_t *eddy__stream_of_link(struct eddy__stream_link *link);
/* Whether the owner has been told of the close (or learnt it at linking). */
int eddy__stream_owner_told(const eddy_stream_t *s);

#endif
