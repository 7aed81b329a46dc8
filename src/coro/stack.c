/* SPDX-License-Identifier: MIT */
/*
 * Coroutine stacks (stack.h).
 *
 * Why a cache per thread and not per loop: stacks belong to no loop (all of
 * a thread's loops can share them), the loop then needs no hook for a layer
 * above it, and the cache needs no allocation: its list is kept in the
 * cached stacks themselves, at their top. The cache is emptied when the
 * thread exits; what the main thread caches goes with the process (it is
 * mapped memory, which no leak checker counts). Only the pages a
 * coroutine touched take memory, and they stay mapped while cached: that
 * is what makes the next coroutine on the stack cheap.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro/stack.h"
#include "coro/sanitizers.h"

#ifndef MAP_STACK
#define MAP_STACK 0
#endif

struct cached {
  struct cached *next;
  struct eddy__stack st;
};

static _Thread_local struct cached *cache;
static _Thread_local size_t ncached;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int have_cache_key;

static size_t page_size(void)
{
  static size_t page;
  if (page == 0) {
    long p = sysconf(_SC_PAGESIZE);
    page = p > 0 ? (size_t)p : 4096;
  }
  return page;
}

static void unmap(const struct eddy__stack *st)
{
  size_t page = page_size();

  eddy__valgrind_stack_deregister(st->vgid);
  /* ASan may have left the redzones of frames that never returned (the
   * coroutine's first) poisoned: an address range mmap hands out later
   * must not inherit them. */
  eddy__asan_unpoison(st->lo, st->size);
  munmap((char *)st->lo - page, st->size + page);
}

static void empty_cache(void *unused)
{
  (void)unused;
  while (cache != NULL) {
    struct cached *c = cache;
    struct eddy__stack st = c->st; /* c lives in the stack it describes */
    cache = c->next;
    unmap(&st);
  }
  ncached = 0;
}

static void make_key(void)
{
  have_cache_key = pthread_key_create(&cache_key, empty_cache) == 0;
}

size_t eddy__stack_cached(void)
{
  return ncached;
}

int eddy__stack_get(struct eddy__stack *st, size_t size)
{
  size_t page = page_size();
  char *base;

  for (struct cached **p = &cache; *p != NULL; p = &(*p)->next) {
    if ((*p)->st.size == size) {
      struct cached *c = *p;
      *st = c->st;
      *p = c->next;
      ncached--;
      return 0;
    }
  }
  base = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (base == MAP_FAILED)
    return -ENOMEM;
  if (mprotect(base, page, PROT_NONE) < 0) { /* the guard page */
    munmap(base, size + page);
    return -ENOMEM;
  }
  st->lo = base + page;
  st->size = size;
  st->vgid = eddy__valgrind_stack_register(st->lo, size);
  return 0;
}

void eddy__stack_put(const struct eddy__stack *st)
{
  struct cached *c;

  pthread_once(&cache_once, make_key);
  if (ncached >= EDDY__STACK_CACHE_MAX || !have_cache_key) {
    unmap(st);
    return;
  }
  /* The thread-exit destructor only runs for a non-NULL value. */
  if (cache == NULL && pthread_setspecific(cache_key, &cache) != 0) {
    unmap(st);
    return;
  }
  eddy__asan_unpoison(st->lo, st->size);
  c = (struct cached *)((char *)st->lo + st->size) - 1;
  c->st = *st;
  c->next = cache;
  cache = c;
  ncached++;
}
