/* SPDX-License-Identifier: MIT */
/*
 * Spares: freed blocks of one size a loop keeps for reuse (not installed).
 *
 * A pass that settles hundreds of futures, or queues hundreds of
 * call_soon callbacks, would otherwise take each block from malloc and
 * give it back, past the few glibc's per-thread cache keeps: a LIFO of a
 * bounded number of blocks, linked through their first bytes, keeps the
 * hot ones hot. Only the loop's thread touches it, as with everything a
 * loop owns.
 *
 * Off under AddressSanitizer and valgrind: a block reused instead of freed
 * would hide a use after free from them, and finding those is what they
 * are run for.
 */
#ifndef EDDY_LOOP_SPARES_H
#define EDDY_LOOP_SPARES_H

#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define EDDY__SPARES_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDDY__SPARES_ASAN 1
#endif
#endif
#if !defined(EDDY__SPARES_ASAN) && defined(HAVE_VALGRIND_VALGRIND_H)
#include <valgrind/valgrind.h>
#endif

struct eddy__spares {
  void *head;
  unsigned n;
  unsigned char on; /* eddy__spares_init() decided */
};

static inline void eddy__spares_init(struct eddy__spares *s)
{
  s->head = NULL;
  s->n = 0;
#if defined(EDDY__SPARES_ASAN)
  s->on = 0;
#elif defined(HAVE_VALGRIND_VALGRIND_H)
  s->on = !RUNNING_ON_VALGRIND;
#else
  s->on = 1;
#endif
}

/* A kept block, or NULL: the caller then mallocs one. */
static inline void *eddy__spares_take(struct eddy__spares *s)
{
  void *p = s->head;
  if (p != NULL) {
    s->head = *(void **)p;
    s->n--;
  }
  return p;
}

/* Keeps @p (at least a pointer in size) if fewer than @max are kept, else
 * frees it. */
static inline void eddy__spares_give(struct eddy__spares *s, void *p, unsigned max)
{
  if (s->on && s->n < max) {
    *(void **)p = s->head;
    s->head = p;
    s->n++;
  } else {
    free(p);
  }
}

/* Frees every kept block (the loop's end). */
static inline void eddy__spares_fini(struct eddy__spares *s)
{
  void *p;
  while ((p = eddy__spares_take(s)) != NULL)
    free(p);
}

#endif
