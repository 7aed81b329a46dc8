/* SPDX-License-Identifier: MIT */
/*
 * Introspection and debug mode.
 *
 * Normal mode pays nothing per object beyond two counters in the loop (live
 * futures, live streams): futures and streams are the objects whose size
 * matters, so neither carries a link to be found by. What the loop can
 * list anyway comes from tables it has for other reasons: the fd table
 * knows every watched stream (the slot's kind byte, in what was padding),
 * the timer list every timer; servers, few and large, embed a node.
 *
 * Debug mode adds a side table keyed by future address, one record per
 * live future: where it was made (the *_at entry points the header macros
 * call) and whether anyone observed its outcome. Records exist only while
 * debug mode is on, so turning it on later sees only futures made since.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "future/future_internal.h"
#include "loop/loop_impl.h"

struct rec {
  struct rec *next;
  const eddy_future_t *f;
  const char *file, *func;
  int line;
  unsigned char observed;
};

struct eddy__debug {
  struct rec **b;
  unsigned bits; /* 1 << bits buckets */
  size_t n;
};

/* ---- objects ------------------------------------------------------------- */

void eddy__loop_obj_add(eddy_loop_t *loop, struct eddy__loop_obj *o, int kind,
                        void *object)
{
  o->kind = kind;
  o->object = object;
  eddy_list_insert_tail(&eddy__head(loop)->objs, &o->link);
}

void eddy__loop_obj_remove(struct eddy__loop_obj *o)
{
  eddy_list_remove(&o->link);
}

/* ---- the side table -------------------------------------------------------- */

/* Fibonacci hashing: allocator addresses differ mostly in their middle
 * bits, which the multiplication spreads into the top ones kept. */
static size_t hash_bits(const void *p, unsigned bits)
{
  return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

static size_t slot_of(const struct eddy__debug *d, const void *p)
{
  return hash_bits(p, d->bits);
}

static struct rec **find(struct eddy__debug *d, const void *p)
{
  struct rec **r = &d->b[slot_of(d, p)];

  while (*r != NULL && (*r)->f != p)
    r = &(*r)->next;
  return r;
}

static void grow(struct eddy__debug *d)
{
  unsigned bits = d->bits + 1;
  struct rec **b = calloc((size_t)1 << bits, sizeof *b);
  size_t i, old = (size_t)1 << d->bits;

  if (b == NULL)
    return; /* longer chains, still correct */
  for (i = 0; i < old; i++) {
    struct rec *r = d->b[i], *next;
    for (; r != NULL; r = next) {
      size_t j = hash_bits(r->f, bits);
      next = r->next;
      r->next = b[j];
      b[j] = r;
    }
  }
  free(d->b);
  d->b = b;
  d->bits = bits;
}

static struct eddy__debug *debug_new(void)
{
  struct eddy__debug *d = calloc(1, sizeof *d);

  if (d == NULL)
    return NULL;
  d->bits = 8;
  d->b = calloc((size_t)1 << d->bits, sizeof *d->b);
  if (d->b == NULL) {
    free(d);
    return NULL;
  }
  return d;
}

static void debug_free(struct eddy__debug *d)
{
  size_t i;

  if (d == NULL)
    return;
  for (i = 0; i < (size_t)1 << d->bits; i++) {
    struct rec *r = d->b[i], *next;
    for (; r != NULL; r = next) {
      next = r->next;
      free(r);
    }
  }
  free(d->b);
  free(d);
}

void eddy__debug_future_new(eddy_future_t *f)
{
  struct eddy__debug *d = eddy__future_loop(f)->dbg;
  struct rec *r;

  if (d == NULL || (r = calloc(1, sizeof *r)) == NULL)
    return; /* out of memory: this one goes unrecorded */
  r->f = f;
  r->next = d->b[slot_of(d, f)];
  d->b[slot_of(d, f)] = r;
  if (++d->n > ((size_t)2 << d->bits))
    grow(d);
}

void eddy__debug_future_site(eddy_future_t *f, const char *file, int line,
                             const char *func)
{
  struct eddy__debug *d;
  struct rec *r;

  if (f == NULL || f == EDDY_NO_VALUE || (d = eddy__future_loop(f)->dbg) == NULL ||
      (r = *find(d, f)) == NULL)
    return;
  r->file = file;
  r->line = line;
  r->func = func;
}

void eddy__debug_future_observed(const eddy_future_t *f)
{
  struct rec *r;

  if (eddy__future_loop(f)->dbg != NULL && (r = *find(eddy__future_loop(f)->dbg, f)) != NULL)
    r->observed = 1;
}

/* Formats "file:line in func", or says there is no record of it. */
static const char *site_text(const struct rec *r, char *buf, size_t n)
{
  if (r == NULL || r->file == NULL)
    snprintf(buf, n, "an unrecorded place (made inside eddy)");
  else
    snprintf(buf, n, "%s:%d in %s", r->file, r->line, r->func);
  return buf;
}

void eddy__debug_future_free(eddy_future_t *f)
{
  struct eddy__debug *d = eddy__future_loop(f)->dbg;
  struct rec **p, *r;
  char site[512], cause[96] = "";

  if (d == NULL || (r = *(p = find(d, f))) == NULL)
    return;
  *p = r->next;
  d->n--;
  /* asyncio's "exception was never retrieved": nobody chained on it, waited
   * for it, or read its error. A cancellation is not an error to report. */
  if (f->state == EDDY_FUTURE_REJECTED && !r->observed) {
    const eddy_future_t *o = eddy__outcome(f);
    if (o->cause != 0)
      snprintf(cause, sizeof cause, " (cause %s)", eddy_err_name(o->cause));
    eddy__log(eddy__future_loop(f), EDDY_LOG_WARNING,
              "rejection never observed: %s %s%s (created at %s)",
              eddy_err_name(o->error), eddy_future_message(f), cause,
              site_text(r, site, sizeof site));
  }
  free(r);
}

/* ---- slow callbacks -------------------------------------------------------- */

int64_t eddy__debug_clock(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * EDDY__NSEC + ts.tv_nsec;
}

void eddy__debug_slow(eddy_loop_t *loop, int64_t t0, const char *what,
                      const void *key)
{
  struct eddy__debug *d = loop->dbg;
  int64_t dt;
  char site[512];

  if (d == NULL || (dt = eddy__debug_clock() - t0) <= loop->slow_ns)
    return;
  if (key == NULL) {
    eddy__log(loop, EDDY_LOG_WARNING, "slow callback: %s took %.1f ms", what,
              (double)dt / 1e6);
    return;
  }
  /* A future's task is its first member: the key finds its record, whose
   * site is where the chaining call (eddy_then & co.) was made. */
  eddy__log(loop, EDDY_LOG_WARNING, "slow callback: %s took %.1f ms (registered at %s)",
            what, (double)dt / 1e6, site_text(*find(d, key), site, sizeof site));
}

int eddy_loop_set_slow_callback(eddy_loop_t *loop, double seconds)
{
  if (loop == NULL || !(seconds >= 0))
    return -EINVAL;
  loop->slow_ns = eddy__seconds_to_ns(seconds);
  return 0;
}

/* ---- debug mode --------------------------------------------------------------- */

int eddy_loop_set_debug(eddy_loop_t *loop, int on)
{
  if (loop == NULL)
    return -EINVAL;
  if (on && loop->dbg == NULL && (loop->dbg = debug_new()) == NULL)
    return -ENOMEM;
  if (!on) {
    debug_free(loop->dbg);
    loop->dbg = NULL;
  }
  loop->head.debug = on ? 1 : 0;
  return 0;
}

int eddy_loop_debug(const eddy_loop_t *loop)
{
  return loop != NULL && loop->head.debug;
}

void eddy__debug_init(eddy_loop_t *loop)
{
  eddy_list_init(&loop->head.objs);
  loop->slow_ns = EDDY__SLOW_DEFAULT_NS;
}

void eddy__debug_from_env(eddy_loop_t *loop)
{
  const char *env = getenv("EDDY_DEBUG");

  /* Out of memory here only costs debug mode: the loop itself is fine. */
  if (env != NULL && *env != '\0' && strcmp(env, "0") != 0)
    eddy_loop_set_debug(loop, 1);
}

static int report_live(const eddy_loop_object_t *o, void *arg)
{
  eddy_loop_t *loop = arg;

  if (o->kind == EDDY_OBJECT_FUTURE) {
    struct rec r = { .file = o->file, .line = o->line, .func = o->func };
    char site[512];
    eddy__log(loop, EDDY_LOG_WARNING, "  future %p %s, %u reference%s (created at %s)",
              o->object, o->state, o->refs, o->refs == 1 ? "" : "s",
              site_text(&r, site, sizeof site));
  } else if (o->kind == EDDY_OBJECT_STREAM)
    eddy__log(loop, EDDY_LOG_WARNING, "  stream %p fd %d %s", o->object, o->fd, o->state);
  return 0;
}

void eddy__debug_fini(eddy_loop_t *loop)
{
  if (loop->dbg == NULL)
    return;
  if (loop->head.nfutures > 0 || loop->head.nstreams > 0) {
    eddy__log(loop, EDDY_LOG_WARNING,
              "loop freed with %zu future%s and %zu stream%s alive; a future or a "
              "stream must not outlive its loop:",
              loop->head.nfutures, loop->head.nfutures == 1 ? "" : "s",
              loop->head.nstreams, loop->head.nstreams == 1 ? "" : "s");
    eddy_loop_walk(loop, report_live, loop);
  }
  debug_free(loop->dbg);
  loop->dbg = NULL;
  loop->head.debug = 0;
}

/* ---- walk, dump, close ---------------------------------------------------------- */

static const char *state_name(int state)
{
  switch (state) {
  case EDDY_FUTURE_PENDING: return "pending";
  case EDDY_FUTURE_RESOLVED: return "resolved";
  case EDDY_FUTURE_REJECTED: return "rejected";
  default: return "cancelled";
  }
}

int eddy_loop_walk(eddy_loop_t *loop, eddy_walk_fn fn, void *arg)
{
  struct eddy_list *l;
  int n = 0, fd;

  if (loop == NULL || fn == NULL)
    return -EINVAL;
  for (l = loop->head.objs.next; l != &loop->head.objs; l = l->next) {
    struct eddy__loop_obj *o = eddy_container_of(l, struct eddy__loop_obj, link);
    eddy_loop_object_t obj = { .kind = (eddy_loop_object_kind_t)o->kind,
                               .object = o->object, .fd = -1, .state = "alive" };
    n++;
    if (fn(&obj, arg))
      return n;
  }
  for (fd = 0; fd < loop->nslots; fd++) {
    const struct eddy__slot *s = &loop->slots[fd];
    eddy_loop_object_t obj = { .object = s->arg, .fd = fd, .state = "watched" };

    if (!s->active || (s->kind != EDDY__FD_STREAM && s->kind != EDDY__FD_USER))
      continue;
    obj.kind = s->kind == EDDY__FD_STREAM ? EDDY_OBJECT_STREAM : EDDY_OBJECT_HANDLER;
    n++;
    if (fn(&obj, arg))
      return n;
  }
  for (l = loop->timers.next; l != &loop->timers; l = l->next) {
    eddy_timer_t *t = eddy_container_of(l, eddy_timer_t, link);
    eddy_loop_object_t obj = { .kind = EDDY_OBJECT_TIMER, .object = t, .fd = -1,
                               .state = "started" };
    if (t->state == EDDY__TIMER_IDLE)
      continue;
    n++;
    if (fn(&obj, arg))
      return n;
  }
  if (loop->dbg != NULL) {
    size_t i;
    for (i = 0; i < (size_t)1 << loop->dbg->bits; i++) {
      const struct rec *r;
      for (r = loop->dbg->b[i]; r != NULL; r = r->next) {
        eddy_loop_object_t obj = { .kind = EDDY_OBJECT_FUTURE, .object = (void *)r->f,
                                   .fd = -1, .state = state_name(r->f->state),
                                   .file = r->file, .line = r->line, .func = r->func,
                                   .refs = r->f->refs };
        n++;
        if (fn(&obj, arg))
          return n;
      }
    }
  }
  return n;
}

static const char *kind_name(eddy_loop_object_kind_t k)
{
  switch (k) {
  case EDDY_OBJECT_STREAM: return "stream";
  case EDDY_OBJECT_SERVER: return "server";
  case EDDY_OBJECT_FUTURE: return "future";
  case EDDY_OBJECT_TIMER: return "timer";
  default: return "handler";
  }
}

static int dump_one(const eddy_loop_object_t *o, void *arg)
{
  FILE *out = arg;

  fprintf(out, "%s %p", kind_name(o->kind), o->object);
  if (o->fd >= 0)
    fprintf(out, " fd %d", o->fd);
  fprintf(out, " %s", o->state);
  if (o->kind == EDDY_OBJECT_FUTURE) {
    fprintf(out, " refs %u", o->refs);
    if (o->file != NULL)
      fprintf(out, " (created at %s:%d in %s)", o->file, o->line, o->func);
  }
  fputc('\n', out);
  return 0;
}

int eddy_loop_dump(eddy_loop_t *loop, FILE *out)
{
  int n;
  size_t nservers = 0;
  struct eddy_list *l;

  if (loop == NULL || out == NULL)
    return -EINVAL;
  n = eddy_loop_walk(loop, dump_one, out);
  for (l = loop->head.objs.next; l != &loop->head.objs; l = l->next)
    nservers++;
  fprintf(out, "eddy loop: %zu future%s, %zu stream%s, %zu server%s alive%s\n",
          loop->head.nfutures, loop->head.nfutures == 1 ? "" : "s",
          loop->head.nstreams, loop->head.nstreams == 1 ? "" : "s", nservers,
          nservers == 1 ? "" : "s",
          loop->dbg == NULL && loop->head.nfutures > 0
              ? " (futures are listed in debug mode only)" : "");
  return n;
}

static int user_handlers(const eddy_loop_t *loop)
{
  int fd;

  for (fd = 0; fd < loop->nslots; fd++)
    if (loop->slots[fd].active && loop->slots[fd].kind == EDDY__FD_USER)
      return 1;
  return 0;
}

int eddy_loop_close(eddy_loop_t *loop)
{
  if (loop == NULL)
    return -EINVAL;
  if (loop->running)
    return EDDY_EUSAGE;
  if (loop->head.nfutures > 0 || loop->head.nstreams > 0 ||
      !eddy_list_empty(&loop->head.objs) || loop->heap.n > 0 ||
      !eddy_list_empty(&loop->due) || loop->shead != NULL || loop->dhead != 0 ||
      user_handlers(loop))
    return -EBUSY;
  eddy_loop_free(loop);
  return 0;
}
