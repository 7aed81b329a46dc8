/* SPDX-License-Identifier: MIT */
/*
 * The stream's write queue (not installed): a FIFO of pieces that can be
 * gathered into one iovec array, plus the FIFO of futures waiting for the
 * queue to get past a byte position.
 *
 * Pieces. Each write becomes one piece (or is appended to the last one):
 *   copy      small copies are coalesced into 4 KiB blocks, so a thousand
 *             10-byte writes are one writev of a few iovecs, not a thousand;
 *   take      the caller's block, freed with its free function when sent;
 *   borrowed  the caller's block, untouched; copied if its write future is
 *             cancelled while bytes are still queued (see eddy__wq_unborrow);
 *   future    the bytes a resolved future carries; the piece holds a
 *             reference to the future until they are sent;
 *   file      a range of a file, sent with sendfile or pread+write; gathering
 *             stops at a file piece.
 *
 * Positions. The queue counts bytes ever queued (queued) and ever taken off
 * the front (sent). A write future waits for sent >= the position its last
 * byte got, which makes completion order FIFO by construction and lets an
 * empty write wait for everything before it with no piece at all.
 */
#ifndef EDDY_STREAM_WRITEQ_H
#define EDDY_STREAM_WRITEQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "eddy/future.h"

enum eddy__piece_kind { EDDY__PIECE_MEM = 0, EDDY__PIECE_FUTURE, EDDY__PIECE_FILE };

struct eddy__piece {
  struct eddy__piece *next;
  unsigned kind;
  const char *ptr; /* next unsent byte (memory pieces) */
  size_t len;      /* unsent bytes left */
  void *base;      /* what free_fn frees (take), or NULL */
  eddy_free_fn free_fn;
  size_t copy_cap; /* > 0: an inline copy block with room up to copy_cap */
  eddy_future_t *future;   /* future pieces: the reference held */
  eddy_future_t *borrower; /* borrowed pieces: the write's future */
  int file_fd;
  off_t file_off;
  char inline_data[]; /* copy blocks */
};

struct eddy__wwait {
  struct eddy__wwait *next;
  eddy_future_t *future; /* reference held */
  uint64_t pos;
};

struct eddy__writeq {
  struct eddy__piece *head, **tailp;
  uint64_t queued; /* bytes ever queued */
  uint64_t sent;   /* bytes ever taken off the front */
  /* The waiters: a circular FIFO reached through its last (whose next is
   * the first), one pointer for both ends: every stream carries this. */
  struct eddy__wwait *wlast;
};

void eddy__wq_init(struct eddy__writeq *q);

/* Bytes queued and not yet taken off. */
static inline size_t eddy__wq_size(const struct eddy__writeq *q)
{
  return (size_t)(q->queued - q->sent);
}

static inline int eddy__wq_empty(const struct eddy__writeq *q)
{
  return q->head == NULL;
}

/* Whether write futures wait for the queue. */
static inline int eddy__wq_waiting(const struct eddy__writeq *q)
{
  return q->wlast != NULL;
}

/* Queue bytes. Each returns 0 or -ENOMEM, and on failure queues nothing
 * (and, for push_mem with a free_fn, does not free: the caller does). */
int eddy__wq_push_copy(struct eddy__writeq *q, const void *data, size_t len);
int eddy__wq_push_mem(struct eddy__writeq *q, const void *data, size_t len,
                      void *base, eddy_free_fn free_fn, eddy_future_t *borrower);
int eddy__wq_push_future(struct eddy__writeq *q, eddy_future_t *f,
                         const void *data, size_t len);
int eddy__wq_push_file(struct eddy__writeq *q, int fd, off_t off, size_t len);

/*
 * Fills up to @max iovecs (at most @max_bytes in all) from the front of the
 * queue, stopping before a file piece. @return the number filled.
 */
int eddy__wq_gather(const struct eddy__writeq *q, struct iovec *iov, int max,
                    size_t max_bytes);

/* Takes @n bytes off the front, releasing the pieces they finish. */
void eddy__wq_advance(struct eddy__writeq *q, size_t n);

/* Releases every piece (the write side is gone); sent catches up. */
void eddy__wq_clear(struct eddy__writeq *q);

/* Copies whatever is still queued of the pieces borrowed by @f into blocks
 * of their own, so the caller may reuse its memory. @return 0 or -ENOMEM. */
int eddy__wq_unborrow(struct eddy__writeq *q, eddy_future_t *f);

/* Waiters: @f (a reference the queue takes) waits for sent >= @pos. */
int eddy__wq_wait(struct eddy__writeq *q, eddy_future_t *f, uint64_t pos);

/* The next waiter whose position is <= @upto (UINT64_MAX: any waiter);
 * its reference passes to the caller. NULL when there is none. */
eddy_future_t *eddy__wq_pop_done(struct eddy__writeq *q, uint64_t upto);

#endif
