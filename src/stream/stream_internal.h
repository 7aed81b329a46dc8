/* SPDX-License-Identifier: MIT */
/*
 * The stream object and the internal interface between its files (not
 * installed).
 *
 *   stream.c   life cycle, references, options, close, state, deadlines
 *   read.c     the read kinds: setup, satisfying from the buffer, R9 at close
 *   write.c    the write kinds, flushing (writev, sendfile), drain, shutdown
 *   write_ring.c  the flush as a send on the io_uring ring, and its completion
 *   io.c       the loop handler, interest, reading from the kernel (R6)
 *   connect.c  non-blocking connect
 *   pipe.c     pipe streams and SIGPIPE-safe writes to pipes
 *   filter.c   the byte-filter layer (transport.h)
 */
#ifndef EDDY_STREAM_INTERNAL_H
#define EDDY_STREAM_INTERNAL_H

#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <sys/types.h>

#include "eddy/stream.h"
#include "loop/loop_internal.h"
#include "stream/buffer.h"
#include "stream/close_watch.h"
#include "stream/transport.h"
#include "stream/writeq.h"

enum eddy__read_kind {
  EDDY__RK_NONE = 0,
  EDDY__RK_BYTES,
  EDDY__RK_UNTIL,
  EDDY__RK_REGEX,
  EDDY__RK_CLOSE,
  EDDY__RK_BYTES_CHUNKED,
  EDDY__RK_CLOSE_CHUNKED,
  EDDY__RK_INTO
};

enum eddy__state {
  EDDY__ST_OPEN = 0,
  EDDY__ST_UNCONNECTED, /* made with fd -1: waiting for eddy_stream_connect() */
  EDDY__ST_CONNECTING,
  EDDY__ST_CLOSED
};

/* The one pending read. What only some kinds use shares storage: an idle
 * stream carries this for every connection, so it is kept small (48
 * bytes: the kind, the partial flag and the delimiter's length share the
 * first word). */
struct eddy__read_op {
  unsigned char kind;    /* enum eddy__read_kind */
  unsigned char partial;
  uint32_t dlen;         /* UNTIL: the delimiter's length (read_until caps it) */
  eddy_future_t *future; /* the stream's reference */
  size_t n;              /* bytes wanted (BYTES, INTO), left (BYTES_CHUNKED) */
  size_t max_bytes;      /* UNTIL/REGEX limit, 0 for none */
  union {
    struct {               /* UNTIL */
      size_t scan_from;    /* where the next search starts */
      /* Line and header ends ("\n", "\r\n\r\n") are kept inline; a
       * longer delimiter costs an allocation, once per read. Which one
       * holds it follows from dlen (eddy__rd_delim). */
      union {
        char dsmall[8];
        char *dheap;
      };
    };
    struct {               /* REGEX */
      regex_t *re;         /* compiled, owned */
      size_t searched;     /* buffer length at the last search */
    };
    struct {               /* INTO */
      char *into;          /* the caller's buffer */
      size_t done;         /* bytes placed in it */
    };
    struct {               /* the chunked kinds */
      eddy_chunk_fn fn;
      void *arg;
    };
  };
};

static inline const char *eddy__rd_delim(const struct eddy__read_op *rd)
{
  return rd->dlen <= sizeof(rd->dsmall) ? rd->dsmall : rd->dheap;
}

struct eddy__waiter {
  struct eddy__waiter *next;
  eddy_future_t *future;
};

/* What only some streams use: made on first use (or with the stream, when
 * its options ask for a deadline) and kept until the stream is freed. An
 * idle plain connection never makes it. Every operation that needs it
 * fails with -ENOMEM, before changing anything, when it cannot be made. */
struct eddy__stream_cold {
  eddy_stream_t *stream;        /* the owner, for chunk_task */
  /* With its raw buffers; NULL: plain. Cold because a plain stream never
   * has one, and checking costs it the same one load (of `cold`). */
  struct eddy__filter *filter;
  eddy_future_t *connect_future;
  eddy_future_t *shutdown_future;
  struct eddy__waiter *closers; /* wait_closed futures, one per call */
  struct eddy__close_watch *watches; /* then these, oldest first */
  struct eddy__waiter *drains;
  char *error_msg;
  struct eddy__task chunk_task; /* chunked read started with data buffered */

  /* Deadlines: made with the stream when any timeout option is set (the
   * options never change), so the paths that move them cannot fail. */
  eddy_timer_t *timer;
  double timer_at;        /* when the timer is due, 0 if stopped */
  double connect_deadline;
  double read_deadline;   /* read_timeout, absolute; 0 for none */
  double write_deadline;  /* reset whenever the queue makes progress */
  double last_io;         /* for idle_timeout */
  uint64_t wd_mark;       /* wq.sent when the write deadline was last set */
};

/* The budget of struct eddy_stream on 64-bit (tests/test_sizes.c pins it):
 * every idle connection holds one, and 216 bytes is what fits a 224-byte
 * malloc chunk on 64-bit glibc. */
#define EDDY__STREAM_BUDGET 216

struct eddy_stream {
  int fd;
  unsigned refs;
  unsigned char state;
  unsigned char interest; /* what the loop was last asked for */
  uint16_t loop_id;       /* its loop in eddy__loops: eddy__stream_loop() */

  unsigned is_pipe : 1;
  unsigned can_read : 1;  /* pipes: the fd was opened for reading */
  unsigned can_write : 1; /* pipes: ... for writing */
  unsigned registered : 1;
  unsigned watch_idle : 1;    /* keep read interest while idle and empty */
  unsigned read_drained : 1;  /* the last read found the kernel empty */
  unsigned write_waiting : 1; /* the last write got EAGAIN */
  unsigned shut_requested : 1;
  unsigned write_shut : 1;
  unsigned close_drained : 1; /* close_when_drained */
  unsigned write_blocked : 1; /* past the high watermark */
  unsigned nodelay_known : 1;
  unsigned is_tcp : 1;
  unsigned filter_started : 1;
  unsigned in_chunk_cb : 1;   /* a chunk callback is running */
  unsigned filter_closing : 1; /* the filter's shutdown record is queued */
  unsigned in_flush : 1;       /* eddy__write_flush is running */
  unsigned no_sendfile : 1;    /* sendfile refused this fd pair: pread+write */
  unsigned kernel_unread : 1;  /* an idle peek saw bytes no read asked for */
  unsigned nodelay_on : 1;     /* set_nodelay(1) succeeded: a TCP socket, Nagle off */
  unsigned write_held : 1;     /* a reference is held for pending writes */
  unsigned late_queued : 1;    /* the close task runs a late close callback */
  unsigned owner_told : 1;     /* link.owner knows the stream closed */
  unsigned chunk_queued : 1;   /* chunk_task is queued */
  unsigned pass_queued : 1;    /* on the loop's end-of-pass list (pass_link) */
  unsigned corked : 1;         /* an inline send used MSG_MORE; nothing pushed it yet */
  unsigned read_ended : 1;     /* the peer ended its side; the write side goes on */
  unsigned half_open : 1;      /* options.allow_half_open */
  unsigned ring_settling : 1;  /* eddy__write_ring_settle is running */
  unsigned close_phase : 2; /* 0 not closed, 1 close task queued, 2 ran, 3 chunk phase */

  /* Effective values, no zeros: the shared defaults, or a copy of our own
   * (most streams use the defaults; this saves each one a copy). */
  const eddy_stream_options_t *opt;

  struct eddy__buf rbuf; /* read buffer (plaintext) */
  struct eddy__read_op rd;
  struct eddy__writeq wq;
  uint64_t acked;        /* write position known to be in the kernel */

  struct eddy__stream_link link; /* its owner (the TCP server) */
  /* Hot because setting it returns nothing: it has no way to report
   * ENOMEM. */
  eddy_close_fn close_fn;
  void *close_arg;
  /* Runs the close; once it has (close_phase 2), it runs a close callback
   * set after that. */
  struct eddy__task close_task;
  struct eddy__pass_node pass_link; /* on the loop's end-of-pass list */
  int error;              /* why it closed (0: clean); error_msg says more */
  /* The send in flight on the loop's ring (write_ring.c), 0 none: in the
   * four bytes the alignment of `cold` leaves here anyway. */
  uint32_t ring_send;

  struct eddy__stream_cold *cold; /* NULL until first needed */
};

static inline eddy_loop_t *eddy__stream_loop(const eddy_stream_t *s)
{
  return eddy__loop_by_id(s->loop_id);
}

/* The TLS (or test) filter under @s, or NULL: plain. */
static inline struct eddy__filter *eddy__filter_of(const eddy_stream_t *s)
{
  return s->cold ? s->cold->filter : NULL;
}

/* The cold part, made now if it was not; NULL on ENOMEM. */
struct eddy__stream_cold *eddy__stream_cold(eddy_stream_t *s);

/* The closing message, if one was kept. */
static inline const char *eddy__stream_error_msg(const eddy_stream_t *s)
{
  return s->cold ? s->cold->error_msg : NULL;
}

/* Encoded bytes the filter has produced and the fd has not taken yet. */
static inline size_t eddy__raw_out_len(const eddy_stream_t *s)
{
  return eddy__filter_of(s) ? eddy__buf_len(&s->cold->filter->raw_out) : 0;
}

/* How many bytes of work one readiness event may do per direction. */
#define EDDY__IO_BUDGET (1024u * 1024u)
#define EDDY__IO_ROUNDS 32

/* Errors a peer causes by going away: not worth a log line (Tornado's
 * reset class). */
static inline int eddy__is_reset(int e)
{
  return e == ECONNRESET || e == ECONNABORTED || e == EPIPE || e == ETIMEDOUT;
}

/* stream.c */
eddy_stream_t *eddy__stream_alloc(eddy_loop_t *loop, int fd, int is_pipe,
                                  const eddy_stream_options_t *options);
void eddy__stream_hold(eddy_stream_t *s);
void eddy__stream_release(eddy_stream_t *s);
void eddy__stream_close(eddy_stream_t *s, int error, const char *message);
void eddy__stream_close_local(eddy_stream_t *s);
int eddy__stream_read_end(eddy_stream_t *s);
void eddy__stream_note_io(eddy_stream_t *s);
void eddy__stream_arm_deadlines(eddy_stream_t *s);
eddy_future_t *eddy__stream_rejected(eddy_stream_t *s, int code);
void eddy__stream_fail_future(eddy_stream_t *s, eddy_future_t **fp);

/* read.c */
int eddy__read_try(eddy_stream_t *s, int from_loop, int force);
size_t eddy__read_target(const eddy_stream_t *s);
void eddy__read_on_close(eddy_stream_t *s);
int eddy__read_deliver_chunks(eddy_stream_t *s);
void eddy__read_clear(eddy_stream_t *s);

/* io.c */
void eddy__io_update(eddy_stream_t *s);
int eddy__io_fill(eddy_stream_t *s, int bounded);
void eddy__io_drain_before_close(eddy_stream_t *s);
void eddy__io_handler(eddy_loop_t *loop, int fd, unsigned events, void *arg);

/* write.c */
void eddy__write_flush(eddy_stream_t *s);
void eddy__write_flush_held(eddy_stream_t *s);
void eddy__write_settle(eddy_stream_t *s);
void eddy__write_fail_all(eddy_stream_t *s);
void eddy__write_failed(eddy_stream_t *s, int err);
ssize_t eddy__write_raw(eddy_stream_t *s, const struct iovec *iov, int n);
ssize_t eddy__write_some(eddy_stream_t *s, const void *data, size_t len);

/* write_ring.c: on io_uring, the flush as one send on the ring. flush
 * @return 0 when it is there (or waits behind the one in flight), 1 when
 * the caller is to make the system calls. settle ends the send in flight
 * now (before a close, or before a borrowed buffer goes back): what the
 * socket takes at once goes, the rest stays queued. */
int eddy__write_ring_flush(eddy_stream_t *s);
void eddy__write_ring_settle(eddy_stream_t *s);

/* connect.c */
void eddy__connect_complete(eddy_stream_t *s);

/* pipe.c: SIGPIPE-safe syscalls for fds that have no MSG_NOSIGNAL. */
ssize_t eddy__pipe_writev(int fd, const struct iovec *iov, int n);
ssize_t eddy__nosigpipe_sendfile(int out_fd, int in_fd, off_t *off, size_t len);

/* filter.c */
int eddy__filter_input(eddy_stream_t *s);
int eddy__filter_output(eddy_stream_t *s);
void eddy__filter_eof(eddy_stream_t *s);
void eddy__filter_free(eddy_stream_t *s);
int eddy__filter_begin(eddy_stream_t *s);
void eddy__filter_failed(eddy_stream_t *s, int rc);
int eddy__filter_say_goodbye(eddy_stream_t *s);
void eddy__filter_last_send(eddy_stream_t *s);

#endif
