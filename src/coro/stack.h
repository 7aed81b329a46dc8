/* SPDX-License-Identifier: MIT */
/*
 * Coroutine stacks (not installed): mmap'd, a PROT_NONE guard page below
 * each, recycled through a per-thread cache.
 */
#ifndef EDDY_CORO_STACK_H
#define EDDY_CORO_STACK_H

#include <stddef.h>

/* Stacks kept for reuse per thread; past this, freed stacks are unmapped. */
#define EDDY__STACK_CACHE_MAX 64

struct eddy__stack {
  void *lo;      /* lowest usable byte, just above the guard page */
  size_t size;   /* usable bytes, a multiple of the page size */
  unsigned vgid; /* valgrind's id for the registered stack (0: none) */
};

/* A stack of @size usable bytes (already rounded to pages): one from this
 * thread's cache if it has one that size, else a new mapping. Returns 0 or
 * -ENOMEM. */
int eddy__stack_get(struct eddy__stack *st, size_t size);

/* Gives a stack back: cached for reuse, or unmapped when the cache is full.
 * Nothing may run on it any more. */
void eddy__stack_put(const struct eddy__stack *st);

/* Stacks in this thread's cache (for tests of reuse). */
size_t eddy__stack_cached(void);

#endif
