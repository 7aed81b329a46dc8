/* SPDX-License-Identifier: MIT */
/*
 * The stream's byte buffer (not installed): one flat region with a consumed
 * prefix, h2o style. Flat because read_until / read_until_regex then search
 * one region with memchr + memcmp / regexec and never deal with chunk
 * boundaries, and because a result that takes the whole buffer can be
 * handed over without a copy.
 *
 * One byte past cap is always allocated so a NUL can be written after the
 * buffered bytes (read results are NUL-terminated, see stream.h).
 *
 * The offsets live in the region, at its end (past that byte, aligned),
 * and the stream keeps a pointer to them: an idle stream holds no region,
 * so the buffer costs it one pointer rather than four words. At the end,
 * not at the front, because a result that takes a whole region hands it
 * over as the pointer malloc gave (the caller frees it with free()); the
 * offsets are then just bytes past the result's NUL.
 *
 *     data                start            end              cap  +1  pad  hdr
 *     |--- consumed -------|--- buffered ---|--- free --------|---|----|----|
 *
 * An empty buffer holds no memory: eddy__buf_release() gives the region
 * back to a small per-thread cache, so idle streams cost nothing while a
 * busy one (read a line, answer, read the next) reuses the same 64 KiB
 * without calling malloc.
 */
#ifndef EDDY_STREAM_BUFFER_H
#define EDDY_STREAM_BUFFER_H

#include <stddef.h>
#include <sys/types.h>

struct eddy__bufhdr {
  char *data;   /* the region's first byte (what malloc gave): saves the
                 * hot paths computing it back from cap */
  size_t start; /* first buffered byte */
  size_t end;   /* one past the last buffered byte */
  size_t cap;   /* usable bytes (the region is cap + 1, then this) */
};

struct eddy__buf {
  struct eddy__bufhdr *h; /* at the end of the region; NULL: none */
};

#define EDDY__BUF_INIT {NULL}

/* Where a region of @cap usable bytes keeps its offsets. */
static inline size_t eddy__buf_hdr_at(size_t cap)
{
  const size_t a = _Alignof(struct eddy__bufhdr);
  return (cap + 1 + a - 1) & ~(a - 1);
}

/* The region's first byte (what malloc gave), or NULL for an empty
 * buffer: NULL + 0 is undefined behaviour in C (UBSan's pointer-overflow),
 * so neither end of an empty buffer is computed. */
static inline char *eddy__buf_data(const struct eddy__buf *b)
{
  return b->h ? b->h->data : NULL;
}

static inline size_t eddy__buf_len(const struct eddy__buf *b)
{
  return b->h ? b->h->end - b->h->start : 0;
}

static inline char *eddy__buf_head(const struct eddy__buf *b)
{
  return b->h ? b->h->data + b->h->start : NULL;
}

/* Free space after the buffered bytes. */
static inline size_t eddy__buf_room(const struct eddy__buf *b)
{
  return b->h ? b->h->cap - b->h->end : 0;
}

static inline char *eddy__buf_tail(const struct eddy__buf *b)
{
  return b->h ? b->h->data + b->h->end : NULL;
}

/*
 * Makes at least @want bytes free after the buffered ones, compacting first
 * (when the consumed prefix is large enough for that to help) and growing
 * otherwise. @return 0 or -ENOMEM (the buffer is unchanged then).
 */
int eddy__buf_reserve(struct eddy__buf *b, size_t want);

/* Records @n bytes written at eddy__buf_tail() (after a reserve). */
static inline void eddy__buf_commit(struct eddy__buf *b, size_t n)
{
  if (n > 0)
    b->h->end += n;
}

/* Appends a copy of @len bytes. @return 0 or -ENOMEM. */
int eddy__buf_append(struct eddy__buf *b, const void *p, size_t len);

/* Puts @len bytes back in front of the buffered ones. @return 0 or -ENOMEM. */
int eddy__buf_prepend(struct eddy__buf *b, const void *p, size_t len);

/* Drops @n buffered bytes from the front; an emptied buffer is released. */
void eddy__buf_consume(struct eddy__buf *b, size_t n);

/*
 * Moves the first @n buffered bytes into a new malloc'ed, NUL-terminated
 * block (for free()) and consumes them. When they are all there is and they
 * fill at least half the region, the region itself is handed over (no
 * copy) and the buffer becomes empty. @return NULL on ENOMEM (nothing is
 * consumed then).
 */
char *eddy__buf_take(struct eddy__buf *b, size_t n);

/* Frees the region (into the per-thread cache if it is a common size). */
void eddy__buf_release(struct eddy__buf *b);

/*
 * Finds @delim (@dlen >= 1 bytes) in the buffered bytes, starting at offset
 * *@scan_from from the head. On a hit returns the offset just past the
 * delimiter. On a miss returns 0 and sets *@scan_from to the first offset at
 * which a delimiter could still start (len - dlen + 1), so the next search
 * examines each byte once. Offsets are relative to the head, which does not
 * move while a read is pending.
 */
size_t eddy__buf_find(const struct eddy__buf *b, const void *delim, size_t dlen,
                      size_t *scan_from);

/* Empties the per-thread region cache (tests; thread exit does it too). */
void eddy__buf_cache_flush(void);

#endif
