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
 * deferred now. Cannot fail.
 */
void eddy__stream_watch_close(eddy_stream_t *s, struct eddy__close_watch *w);

#endif
