/* SPDX-License-Identifier: MIT */
/*
 * A 4-ary min-heap of nodes embedded in their owners (not installed).
 *
 * The heap array holds the keys and pointers to the nodes, and each node
 * remembers its slot, so removing an arbitrary node is O(log n) without a
 * search. Keys tie on a sequence number, which makes equal keys come out
 * first in, first out.
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

/* Children per node. Four halves the depth of a binary heap, and so the
 * node moves (each a likely cache miss, to update the node's slot), while
 * a node's children still share one or two cache lines. */
#define EDDY__HEAP_D 4

/* Embedded in the owner. key and seq are copied into the array on insert
 * and read back by the owner; the heap itself compares the copies. */
struct eddy__hnode {
  int64_t key;
  uint64_t seq;
  size_t idx; /* slot in the array, or EDDY__HEAP_NONE */
};

/* Keys live in the array next to the node pointers: sifting compares
 * without touching the nodes, which with a million timers is the
 * difference between a cache miss per comparison and one per move. */
struct eddy__hentry {
  int64_t key;
  uint64_t seq;
  struct eddy__hnode *node;
};

struct eddy__heap {
  struct eddy__hentry *a;
  size_t n, cap;
};

static inline int eddy__hentry_less(const struct eddy__hentry *x,
                                    const struct eddy__hentry *y)
{
  return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static inline int eddy__hnode_linked(const struct eddy__hnode *x)
{
  return x->idx != EDDY__HEAP_NONE;
}

static inline struct eddy__hnode *eddy__heap_min(const struct eddy__heap *h)
{
  return h->n ? h->a[0].node : NULL;
}

/* Makes room for @want nodes. @return 0 or -ENOMEM. */
static inline int eddy__heap_reserve(struct eddy__heap *h, size_t want)
{
  size_t cap;
  struct eddy__hentry *a;

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
                                     struct eddy__hentry e)
{
  h->a[i] = e;
  e.node->idx = i;
}

static inline void eddy__heap_up_(struct eddy__heap *h, size_t i,
                                  struct eddy__hentry e)
{
  while (i > 0) {
    size_t parent = (i - 1) / EDDY__HEAP_D;
    if (!eddy__hentry_less(&e, &h->a[parent]))
      break;
    eddy__heap_place_(h, i, h->a[parent]);
    i = parent;
  }
  eddy__heap_place_(h, i, e);
}

static inline void eddy__heap_down_(struct eddy__heap *h, size_t i,
                                    struct eddy__hentry e)
{
  for (;;) {
    size_t first = EDDY__HEAP_D * i + 1, c = first, k, end;
    if (first >= h->n)
      break;
    end = first + EDDY__HEAP_D < h->n ? first + EDDY__HEAP_D : h->n;
    for (k = first + 1; k < end; k++)
      if (eddy__hentry_less(&h->a[k], &h->a[c]))
        c = k;
    if (!eddy__hentry_less(&h->a[c], &e))
      break;
    eddy__heap_place_(h, i, h->a[c]);
    i = c;
  }
  eddy__heap_place_(h, i, e);
}

/* The caller has reserved room (h->n < h->cap) and set x->key and x->seq. */
static inline void eddy__heap_insert(struct eddy__heap *h, struct eddy__hnode *x)
{
  struct eddy__hentry e = { x->key, x->seq, x };
  eddy__heap_up_(h, h->n++, e);
}

static inline void eddy__heap_remove(struct eddy__heap *h, struct eddy__hnode *x)
{
  size_t i = x->idx;
  struct eddy__hentry last;

  if (i == EDDY__HEAP_NONE)
    return;
  x->idx = EDDY__HEAP_NONE;
  last = h->a[--h->n];
  if (last.node == x)
    return;
  /* The last entry fills the hole and moves whichever way restores order. */
  if (i > 0 && eddy__hentry_less(&last, &h->a[(i - 1) / EDDY__HEAP_D]))
    eddy__heap_up_(h, i, last);
  else
    eddy__heap_down_(h, i, last);
}

#endif
