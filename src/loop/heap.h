/*
 * A binary min-heap of nodes embedded in their owners (not installed).
 *
 * The heap array holds pointers to the nodes and each node remembers its
 * slot, so removing an arbitrary node is O(log n) without a search. Keys tie
 * on a sequence number, which makes equal keys come out first in, first out.
 *
 * Inserting never allocates: the owner reserves room when it creates a node
 * (eddy__heap_reserve()), so arming a timer cannot fail for lack of memory.
 */
#ifndef EDDY_LOOP_HEAP_H
#define EDDY_LOOP_HEAP_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define EDDY__HEAP_NONE SIZE_MAX

struct eddy__hnode {
  int64_t key;
  uint64_t seq;
  size_t idx; /* slot in the array, or EDDY__HEAP_NONE */
};

struct eddy__heap {
  struct eddy__hnode **a;
  size_t n, cap;
};

static inline int eddy__hnode_less(const struct eddy__hnode *x,
                                   const struct eddy__hnode *y)
{
  return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static inline int eddy__hnode_linked(const struct eddy__hnode *x)
{
  return x->idx != EDDY__HEAP_NONE;
}

static inline struct eddy__hnode *eddy__heap_min(const struct eddy__heap *h)
{
  return h->n ? h->a[0] : NULL;
}

/* Makes room for @want nodes. @return 0 or -ENOMEM. */
static inline int eddy__heap_reserve(struct eddy__heap *h, size_t want)
{
  size_t cap;
  struct eddy__hnode **a;

  if (want <= h->cap)
    return 0;
  cap = h->cap ? h->cap : 16;
  while (cap < want)
    cap *= 2;
  a = realloc(h->a, cap * sizeof *a);
  if (a == NULL)
    return -ENOMEM;
  h->a = a;
  h->cap = cap;
  return 0;
}

static inline void eddy__heap_place_(struct eddy__heap *h, size_t i,
                                     struct eddy__hnode *x)
{
  h->a[i] = x;
  x->idx = i;
}

static inline void eddy__heap_up_(struct eddy__heap *h, size_t i,
                                  struct eddy__hnode *x)
{
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!eddy__hnode_less(x, h->a[parent]))
      break;
    eddy__heap_place_(h, i, h->a[parent]);
    i = parent;
  }
  eddy__heap_place_(h, i, x);
}

static inline void eddy__heap_down_(struct eddy__heap *h, size_t i,
                                    struct eddy__hnode *x)
{
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n)
      break;
    if (c + 1 < h->n && eddy__hnode_less(h->a[c + 1], h->a[c]))
      c++;
    if (!eddy__hnode_less(h->a[c], x))
      break;
    eddy__heap_place_(h, i, h->a[c]);
    i = c;
  }
  eddy__heap_place_(h, i, x);
}

/* The caller has reserved room (h->n < h->cap). */
static inline void eddy__heap_insert(struct eddy__heap *h, struct eddy__hnode *x)
{
  eddy__heap_up_(h, h->n++, x);
}

static inline void eddy__heap_remove(struct eddy__heap *h, struct eddy__hnode *x)
{
  size_t i = x->idx;
  struct eddy__hnode *last;

  if (i == EDDY__HEAP_NONE)
    return;
  x->idx = EDDY__HEAP_NONE;
  last = h->a[--h->n];
  if (last == x)
    return;
  /* The last node fills the hole and moves whichever way restores order. */
  if (i > 0 && eddy__hnode_less(last, h->a[(i - 1) / 2]))
    eddy__heap_up_(h, i, last);
  else
    eddy__heap_down_(h, i, last);
}

#endif
