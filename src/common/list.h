/* SPDX-License-Identifier: MIT */
/*
 * Intrusive doubly-linked circular lists and container_of (not installed).
 * The node lives inside the element, so linking never allocates.
 */
#ifndef EDDY_LIST_H
#define EDDY_LIST_H

#include <stddef.h>

#define eddy_container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

struct eddy_list {
  struct eddy_list *next, *prev;
};

static inline void eddy_list_init(struct eddy_list *h) { h->next = h->prev = h; }
static inline int eddy_list_empty(const struct eddy_list *h) { return h->next == h; }

static inline void eddy_list_insert_tail(struct eddy_list *h, struct eddy_list *n)
{
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}

static inline void eddy_list_insert_head(struct eddy_list *h, struct eddy_list *n)
{
  n->next = h->next;
  n->prev = h;
  h->next->prev = n;
  h->next = n;
}

/* Unlinks n and leaves it self-linked, so removing twice is harmless. */
static inline void eddy_list_remove(struct eddy_list *n)
{
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}

#define eddy_list_foreach_safe(pos, tmp, head) \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
       (pos) = (tmp), (tmp) = (pos)->next)

#endif
