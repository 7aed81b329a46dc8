/* SPDX-License-Identifier: MIT */
/*
 * The stream's flat byte buffer and its per-thread region cache. See
 * buffer.h for the layout and why it is flat.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stream/buffer.h"

/*
 * Region cache. A stream releases its region whenever it empties, which on
 * a request/response connection is once per message; without a cache that
 * is a malloc and a free of 64 KiB each time. Regions are cached per thread
 * (a loop and its streams live on one thread, so no locking) and only in
 * the sizes streams commonly use, so the cache stays small: at most
 * CACHE_SLOTS * CACHE_MAX_CAP bytes per thread.
 */
#define CACHE_SLOTS 8
#define CACHE_MIN_CAP 4096u
#define CACHE_MAX_CAP (256u * 1024u)

struct region_cache {
  int n;
  struct eddy__bufhdr *slot[CACHE_SLOTS]; /* each at its region's end */
};

/*
 * initial-exec: the cache is only touched inside libeddy, and with the
 * default model every access from the shared library goes through
 * __tls_get_addr. The cost of initial-exec is that a dlopen()ed libeddy
 * takes its TLS from glibc's static TLS surplus; these ~150 bytes fit it
 * (libeddy is normally linked at start-up anyway).
 */
#define EDDY__TLS_IE __attribute__((tls_model("initial-exec")))

static __thread struct region_cache tcache EDDY__TLS_IE;
/* This thread's cache_key value is set (thread exit will flush). */
static __thread int tcache_registered EDDY__TLS_IE;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* Runs at thread exit so a loop thread that ends does not leak its cache. */
static void cache_destroy(void *unused)
{
  (void)unused;
  eddy__buf_cache_flush();
  /* The key's value is NULL now: a region cached by a later destructor
   * must register again (it gets another destructor round). */
  tcache_registered = 0;
}

static void cache_key_init(void)
{
  (void)pthread_key_create(&cache_key, cache_destroy);
}

void eddy__buf_cache_flush(void)
{
  while (tcache.n > 0) {
    tcache.n--;
    free(tcache.slot[tcache.n]->data);
  }
}

/* A region of @cap usable bytes, its offsets zero; NULL on ENOMEM. */
static struct eddy__bufhdr *region_new(size_t cap)
{
  char *p = malloc(eddy__buf_hdr_at(cap) + sizeof(struct eddy__bufhdr));
  if (!p)
    return NULL;
  struct eddy__bufhdr *h = (struct eddy__bufhdr *)(void *)(p + eddy__buf_hdr_at(cap));
  *h = (struct eddy__bufhdr){ .data = p, .cap = cap };
  return h;
}

static struct eddy__bufhdr *region_get(size_t want)
{
  for (int i = tcache.n - 1; i >= 0; i--) {
    struct eddy__bufhdr *h = tcache.slot[i];
    if (h->cap >= want && h->cap <= 4 * want + CACHE_MIN_CAP) {
      tcache.slot[i] = tcache.slot[--tcache.n];
      h->start = h->end = 0;
      return h;
    }
  }
  return region_new(want);
}

static void region_put(struct eddy__bufhdr *h)
{
  if (h->cap >= CACHE_MIN_CAP && h->cap <= CACHE_MAX_CAP && tcache.n < CACHE_SLOTS) {
    if (!tcache_registered) {
      /* First use on this thread: make sure thread exit empties it. The
       * value stays set until then, so this runs once per thread. */
      pthread_once(&cache_once, cache_key_init);
      tcache_registered = pthread_setspecific(cache_key, &tcache) == 0;
    }
    tcache.slot[tcache.n++] = h;
    return;
  }
  free(h->data);
}

void eddy__buf_release(struct eddy__buf *b)
{
  if (b->h)
    region_put(b->h);
  b->h = NULL;
}

int eddy__buf_reserve(struct eddy__buf *b, size_t want)
{
  size_t len = eddy__buf_len(b);
  struct eddy__bufhdr *h = b->h;

  if (eddy__buf_room(b) >= want)
    return 0;
  if (want > (size_t)-1 / 4 - len)
    return -ENOMEM;
  if (!h) {
    h = region_get(want);
    if (!h)
      return -ENOMEM;
    b->h = h;
    return 0;
  }
  char *data = h->data;
  /* Compacting is a memmove of the buffered bytes only; do it whenever the
   * space it frees is enough, so the region does not grow needlessly. */
  if (h->start > 0) {
    memmove(data, data + h->start, len);
    h->start = 0;
    h->end = len;
    if (h->cap - len >= want)
      return 0;
  }
  size_t ncap = h->cap * 2;
  if (ncap < len + want)
    ncap = len + want;
  /* realloc keeps the old offsets where they were (inside the new
   * region): they are read first and written at the new end after. */
  struct eddy__bufhdr keep = *h;
  char *p = realloc(data, eddy__buf_hdr_at(ncap) + sizeof *h);
  if (!p)
    return -ENOMEM;
  h = (struct eddy__bufhdr *)(void *)(p + eddy__buf_hdr_at(ncap));
  *h = keep;
  h->data = p;
  h->cap = ncap;
  b->h = h;
  return 0;
}

int eddy__buf_append(struct eddy__buf *b, const void *p, size_t len)
{
  if (len == 0)
    return 0;
  int rc = eddy__buf_reserve(b, len);
  if (rc < 0)
    return rc;
  memcpy(eddy__buf_tail(b), p, len);
  b->h->end += len;
  return 0;
}

int eddy__buf_prepend(struct eddy__buf *b, const void *p, size_t len)
{
  if (len == 0)
    return 0;
  if (b->h && b->h->start >= len) {
    b->h->start -= len;
    memcpy(eddy__buf_head(b), p, len);
    return 0;
  }
  int rc = eddy__buf_reserve(b, len);
  if (rc < 0)
    return rc;
  char *h = eddy__buf_head(b);
  memmove(h + len, h, eddy__buf_len(b));
  memcpy(h, p, len);
  b->h->end += len;
  return 0;
}

void eddy__buf_consume(struct eddy__buf *b, size_t n)
{
  size_t len = eddy__buf_len(b);
  if (n >= len) {
    eddy__buf_release(b);
    return;
  }
  b->h->start += n;
}

char *eddy__buf_take(struct eddy__buf *b, size_t n)
{
  size_t len = eddy__buf_len(b);
  char *out;

  if (n > len)
    n = len;
  if (n > 0 && n == len && b->h->start == 0 && n >= b->h->cap / 2) {
    /* Zero-copy handoff: the region becomes the result. The NUL goes in
     * the spare byte every region has past cap; the offsets after it are
     * the caller's bytes now. */
    out = eddy__buf_data(b);
    out[n] = '\0';
    b->h = NULL;
    return out;
  }
  out = malloc(n + 1);
  if (!out)
    return NULL;
  if (n)
    memcpy(out, eddy__buf_head(b), n);
  out[n] = '\0';
  eddy__buf_consume(b, n);
  return out;
}

size_t eddy__buf_find(const struct eddy__buf *b, const void *delim, size_t dlen,
                      size_t *scan_from)
{
  size_t len = eddy__buf_len(b);
  size_t from = *scan_from;
  const char *h = eddy__buf_head(b);

  if (dlen == 0 || len < dlen)
    return 0;
  if (from <= len - dlen) {
    /* memchr on the first byte, then compare the rest where it matches.
     * glibc's memmem has a high fixed cost per call, and the common case
     * is a short delimiter ("\r\n", "\r\n\r\n") in a short buffer (a
     * request head). Worst case O(len * dlen): the delimiter is the
     * caller's, so that factor is bounded by it, not by the peer. */
    const unsigned char first = *(const unsigned char *)delim;
    const char *p = h + from;
    const char *last = h + (len - dlen); /* last place a match can start */
    for (;;) {
      p = memchr(p, first, (size_t)(last - p) + 1);
      if (!p)
        break;
      if (dlen == 1 || memcmp(p + 1, (const char *)delim + 1, dlen - 1) == 0)
        return (size_t)(p - h) + dlen;
      if (p == last)
        break;
      p++;
    }
  }
  /* A delimiter not found so far can only start in its last dlen-1 bytes. */
  if (len - dlen + 1 > from)
    *scan_from = len - dlen + 1;
  return 0;
}
