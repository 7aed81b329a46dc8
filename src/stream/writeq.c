/* SPDX-License-Identifier: MIT */
/*
 * The write queue: pieces, gathering, positions and waiters (writeq.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "future/future_internal.h"
#include "stream/writeq.h"

/* Copies shorter than this are coalesced into blocks of COPY_BLOCK bytes. */
#define COPY_SMALL 2048u
#define COPY_BLOCK 4096u

void eddy__wq_init(struct eddy__writeq *q)
{
  q->head = NULL;
  q->tailp = &q->head;
  q->queued = q->sent = 0;
  q->wlast = NULL;
}

static struct eddy__piece *piece_new(size_t extra)
{
  struct eddy__piece *p = malloc(sizeof(*p) + extra);
  if (!p)
    return NULL;
  memset(p, 0, sizeof(*p));
  p->file_fd = -1;
  return p;
}

static void piece_link(struct eddy__writeq *q, struct eddy__piece *p)
{
  *q->tailp = p;
  q->tailp = &p->next;
  q->queued += p->len;
}

static struct eddy__piece *tail_piece(struct eddy__writeq *q)
{
  if (!q->head)
    return NULL;
  return (struct eddy__piece *)((char *)q->tailp - offsetof(struct eddy__piece, next));
}

int eddy__wq_push_copy(struct eddy__writeq *q, const void *data, size_t len)
{
  if (len == 0)
    return 0;
  struct eddy__piece *t = tail_piece(q);
  if (t && t->copy_cap) {
    /* Bytes already queued in the block end at ptr + len. */
    size_t used = (size_t)(t->ptr + t->len - t->inline_data);
    if (t->copy_cap - used >= len) {
      memcpy(t->inline_data + used, data, len);
      t->len += len;
      q->queued += len;
      return 0;
    }
  }
  size_t cap = len < COPY_SMALL ? COPY_BLOCK : len;
  struct eddy__piece *p = piece_new(cap);
  if (!p)
    return -ENOMEM;
  memcpy(p->inline_data, data, len);
  p->ptr = p->inline_data;
  p->len = len;
  p->copy_cap = len < COPY_SMALL ? cap : 0;
  piece_link(q, p);
  return 0;
}

int eddy__wq_push_mem(struct eddy__writeq *q, const void *data, size_t len,
                      void *base, eddy_free_fn free_fn, eddy_future_t *borrower)
{
  struct eddy__piece *p = piece_new(0);
  if (!p)
    return -ENOMEM;
  p->ptr = data;
  p->len = len;
  p->base = base;
  p->free_fn = free_fn;
  p->borrower = borrower;
  piece_link(q, p);
  return 0;
}

int eddy__wq_push_future(struct eddy__writeq *q, eddy_future_t *f,
                         const void *data, size_t len)
{
  struct eddy__piece *p = piece_new(0);
  if (!p)
    return -ENOMEM;
  p->kind = EDDY__PIECE_FUTURE;
  p->ptr = data;
  p->len = len;
  p->future = eddy_future_ref(f);
  piece_link(q, p);
  return 0;
}

int eddy__wq_push_file(struct eddy__writeq *q, int fd, off_t off, size_t len)
{
  struct eddy__piece *p = piece_new(0);
  if (!p)
    return -ENOMEM;
  p->kind = EDDY__PIECE_FILE;
  p->len = len;
  p->file_fd = fd;
  p->file_off = off;
  piece_link(q, p);
  return 0;
}

int eddy__wq_gather(const struct eddy__writeq *q, struct iovec *iov, int max,
                    size_t max_bytes)
{
  int n = 0;
  size_t total = 0;
  for (const struct eddy__piece *p = q->head; p && n < max && total < max_bytes;
       p = p->next) {
    if (p->kind == EDDY__PIECE_FILE)
      break;
    if (p->len == 0)
      continue;
    size_t take = p->len;
    if (take > max_bytes - total)
      take = max_bytes - total;
    iov[n].iov_base = (void *)p->ptr;
    iov[n].iov_len = take;
    total += take;
    n++;
  }
  return n;
}

static void piece_free(struct eddy__piece *p)
{
  if (p->free_fn)
    p->free_fn(p->base);
  if (p->future)
    eddy_future_unref(p->future);
  free(p);
}

void eddy__wq_advance(struct eddy__writeq *q, size_t n)
{
  q->sent += n;
  while (q->head) {
    struct eddy__piece *p = q->head;
    if (n < p->len) {
      if (p->kind == EDDY__PIECE_FILE)
        p->file_off += (off_t)n;
      else
        p->ptr += n;
      p->len -= n;
      return;
    }
    n -= p->len;
    q->head = p->next;
    if (!q->head)
      q->tailp = &q->head;
    piece_free(p);
  }
}

void eddy__wq_clear(struct eddy__writeq *q)
{
  while (q->head) {
    struct eddy__piece *p = q->head;
    q->head = p->next;
    piece_free(p);
  }
  q->tailp = &q->head;
  q->sent = q->queued;
}

int eddy__wq_unborrow(struct eddy__writeq *q, eddy_future_t *f)
{
  for (struct eddy__piece *p = q->head; p; p = p->next) {
    if (p->borrower != f)
      continue;
    char *copy = malloc(p->len ? p->len : 1);
    if (!copy)
      return -ENOMEM;
    memcpy(copy, p->ptr, p->len);
    p->ptr = copy;
    p->base = copy;
    p->free_fn = free;
    p->borrower = NULL;
  }
  return 0;
}

/* Waiters come and go by the hundred in a pass of pipelined answers: their
 * loop keeps some (loop/spares.h), found through the future they hold. */
#define SPARE_WAITERS 256u

static struct eddy__spares *spare_waiters(eddy_future_t *f)
{
  return &eddy__head(eddy__future_loop(f))->spare_waiters;
}

int eddy__wq_wait(struct eddy__writeq *q, eddy_future_t *f, uint64_t pos)
{
  struct eddy__wwait *w = eddy__spares_take(spare_waiters(f));
  if (!w && !(w = malloc(sizeof(*w))))
    return -ENOMEM;
  w->future = f;
  w->pos = pos;
  if (q->wlast) {
    w->next = q->wlast->next;
    q->wlast->next = w;
  } else {
    w->next = w;
  }
  q->wlast = w;
  return 0;
}

eddy_future_t *eddy__wq_pop_done(struct eddy__writeq *q, uint64_t upto)
{
  struct eddy__wwait *w = q->wlast ? q->wlast->next : NULL;
  if (!w || w->pos > upto)
    return NULL;
  if (w == q->wlast)
    q->wlast = NULL;
  else
    q->wlast->next = w->next;
  eddy_future_t *f = w->future;
  eddy__spares_give(spare_waiters(f), w, SPARE_WAITERS);
  return f;
}
