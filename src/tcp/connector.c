/* SPDX-License-Identifier: MIT */
/*
 * Happy Eyeballs, Tornado style (RFC 6555): two queues, the second after a
 * fallback delay or the first failure, first success wins; within a queue
 * the next address after a failure or, with an attempt delay, after that
 * delay too (RFC 8305). See connector.h for the rules; the comments below
 * name the Tornado step each function reproduces.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp/connector.h"

struct attempt {
  eddy__connector_t *c;
  eddy_future_t *f; /* our reference while in flight; NULL once settled */
  size_t addr;      /* index into c->addrs */
  int queue;        /* 0: primary, 1: secondary */
};

struct eddy__connector {
  eddy_loop_t *loop;
  unsigned refs;
  eddy__connector_config_t cfg;

  eddy_address_t *addrs;
  size_t n;
  /* order[] holds the primary indices, then the secondary ones:
   * queue q runs from next[q] up to end[q]. */
  size_t *order;
  size_t next[2], end[2];

  struct attempt *attempts; /* one per address at most */
  size_t started, in_flight;
  size_t remaining; /* addresses whose attempt has not settled yet */

  eddy_future_t *result;
  eddy_future_t *last_error; /* the last attempt to fail */
  const eddy_address_t *winner;
  eddy_timer_t *fallback_timer, *deadline_timer;
  eddy_timer_t *stagger_timer[2]; /* per queue: the attempt delay */
  int fallback_armed;    /* the fallback has neither fired nor been skipped */
  int secondary_started;
  int decided;
};

static void try_next(eddy__connector_t *c, int queue);

/* ------------------------------------------------------------------------ */
/* Deciding                                                                  */
/* ------------------------------------------------------------------------ */

static void stop_timers(eddy__connector_t *c)
{
  c->fallback_armed = 0;
  eddy_timer_stop(c->fallback_timer);
  eddy_timer_stop(c->deadline_timer);
  eddy_timer_stop(c->stagger_timer[0]);
  eddy_timer_stop(c->stagger_timer[1]);
}

/* The result is about to settle: no more attempts, no more timers. */
static void decide(eddy__connector_t *c)
{
  c->decided = 1;
  stop_timers(c);
  eddy_future_on_cancel(c->result, NULL, NULL);
}

/* Tornado's close_streams(): every attempt still in flight is cancelled,
 * which closes its socket; its rejection is then ignored. */
static void close_in_flight(eddy__connector_t *c)
{
  for (size_t i = 0; i < c->started; i++)
    if (c->attempts[i].f != NULL)
      eddy_future_cancel(c->attempts[i].f);
}

static void fail(eddy__connector_t *c, int code, const char *msg)
{
  decide(c);
  eddy_future_reject(c->result, code, "%s", msg);
  close_in_flight(c);
}

/* Both queues ran dry: settle as the last failure (or a generic one). */
static void fail_with_last_error(eddy__connector_t *c)
{
  decide(c);
  if (c->last_error != NULL)
    eddy_future_settle_as(c->result, c->last_error);
  else
    eddy_future_reject(c->result, EDDY_ECONNECTFAILED, NULL);
}

static void on_result_cancel(eddy_future_t *result, void *arg)
{
  eddy__connector_t *c = arg;

  (void)result;
  c->decided = 1;
  stop_timers(c);
  close_in_flight(c);
}

/* ------------------------------------------------------------------------ */
/* Attempts                                                                  */
/* ------------------------------------------------------------------------ */

/* Tornado's on_connect_done(). */
static void on_attempt_done(eddy_future_t *f, void *arg)
{
  struct attempt *a = arg;
  eddy__connector_t *c = a->c;

  eddy_future_unref(a->f);
  a->f = NULL;
  c->in_flight--;
  c->remaining--;

  if (eddy_future_state(f) == EDDY_FUTURE_RESOLVED) {
    /* A late success is dropped: releasing the last references to its
     * future frees its value, which closes it. */
    if (!c->decided) {
      c->winner = &c->addrs[a->addr];
      decide(c);
      eddy_future_settle_as(c->result, f);
      close_in_flight(c);
    }
  } else if (!c->decided) {
    eddy_future_unref(c->last_error);
    c->last_error = eddy_future_ref(f);
    try_next(c, a->queue);
    /* An early failure does not wait for the fallback timer. */
    if (c->fallback_armed)
      eddy__connector_fire_fallback(c);
  }
  eddy__connector_unref(c);
}

static void start_attempt(eddy__connector_t *c, size_t addr, int queue)
{
  struct attempt *a = &c->attempts[c->started];
  eddy_future_t *f = c->cfg.attempt(c->cfg.arg, &c->addrs[addr]);

  if (f == NULL)
    f = eddy_future_rejected(c->loop, -ENOMEM, NULL);
  if (f == NULL) {
    fail(c, -ENOMEM, "out of memory starting a connection attempt");
    return;
  }
  a->c = c;
  a->f = f;
  a->addr = addr;
  a->queue = queue;
  c->started++;
  c->in_flight++;
  c->refs++;
  if (eddy_future_add_done(f, on_attempt_done, a) < 0) {
    /* Nothing will report on it: close it and give up. */
    eddy_future_cancel(f);
    eddy_future_unref(f);
    a->f = NULL;
    c->in_flight--;
    c->refs--;
    fail(c, -ENOMEM, "out of memory starting a connection attempt");
  }
}

/* Tornado's try_connect(): the next address of one queue, if any; with an
 * attempt delay, the one after it starts when that delay passes, unless a
 * failure starts it first (which restarts the delay). */
static void try_next(eddy__connector_t *c, int queue)
{
  if (c->next[queue] == c->end[queue]) {
    /* This queue is done; the other one may still be working. */
    if (c->remaining == 0 && !c->decided)
      fail_with_last_error(c);
    return;
  }
  start_attempt(c, c->order[c->next[queue]++], queue);
  if (!c->decided && c->cfg.attempt_delay > 0 && c->next[queue] < c->end[queue])
    eddy_timer_start(c->stagger_timer[queue], c->cfg.attempt_delay, 0);
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */
/* ------------------------------------------------------------------------ */

void eddy__connector_fire_fallback(eddy__connector_t *c)
{
  c->fallback_armed = 0;
  eddy_timer_stop(c->fallback_timer);
  if (c->decided || c->secondary_started)
    return;
  c->secondary_started = 1;
  try_next(c, 1);
}

void eddy__connector_fire_stagger(eddy__connector_t *c, int secondary)
{
  int queue = secondary ? 1 : 0;

  eddy_timer_stop(c->stagger_timer[queue]);
  /* The secondary queue staggers only once the fallback started it. */
  if (c->decided || (queue == 1 && !c->secondary_started) || c->next[queue] == c->end[queue])
    return;
  try_next(c, queue);
}

void eddy__connector_fire_deadline(eddy__connector_t *c)
{
  if (!c->decided)
    fail(c, EDDY_ETIMEOUT, "connect timed out");
  else
    close_in_flight(c);
}

static void fallback_cb(void *arg) { eddy__connector_fire_fallback(arg); }
static void deadline_cb(void *arg) { eddy__connector_fire_deadline(arg); }
static void stagger0_cb(void *arg) { eddy__connector_fire_stagger(arg, 0); }
static void stagger1_cb(void *arg) { eddy__connector_fire_stagger(arg, 1); }

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */
/* ------------------------------------------------------------------------ */

/* Tornado's split(): primary = the first entry's family, in order. */
static void split(eddy__connector_t *c)
{
  size_t k = 0;

  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < c->n; i++)
      if ((c->addrs[i].family == c->addrs[0].family) == (pass == 0))
        c->order[k++] = i;
    c->end[pass] = k;
  }
  c->next[0] = 0;
  c->next[1] = c->end[0];
}

eddy__connector_t *eddy__connector_new(eddy_loop_t *loop,
                                       const eddy_address_t *addrs, size_t n,
                                       const eddy__connector_config_t *config)
{
  eddy__connector_t *c = calloc(1, sizeof(*c));

  if (c == NULL)
    return NULL;
  c->loop = loop;
  c->refs = 1;
  c->cfg = *config;
  c->n = n;
  c->remaining = n;
  c->addrs = calloc(n ? n : 1, sizeof(*c->addrs));
  c->order = calloc(n ? n : 1, sizeof(*c->order));
  c->attempts = calloc(n ? n : 1, sizeof(*c->attempts));
  c->result = eddy_future_new(loop);
  c->fallback_timer = eddy_timer_new(loop, fallback_cb, c);
  c->deadline_timer = eddy_timer_new(loop, deadline_cb, c);
  c->stagger_timer[0] = eddy_timer_new(loop, stagger0_cb, c);
  c->stagger_timer[1] = eddy_timer_new(loop, stagger1_cb, c);
  if (c->addrs == NULL || c->order == NULL || c->attempts == NULL ||
      c->result == NULL || c->fallback_timer == NULL ||
      c->deadline_timer == NULL || c->stagger_timer[0] == NULL ||
      c->stagger_timer[1] == NULL) {
    eddy__connector_unref(c);
    return NULL;
  }
  if (n > 0)
    memcpy(c->addrs, addrs, n * sizeof(*addrs));
  split(c);
  eddy_future_on_cancel(c->result, on_result_cancel, c);
  return c;
}

void eddy__connector_start(eddy__connector_t *c)
{
  if (c->n == 0) {
    fail(c, EDDY_ENONAME, "no addresses to connect to");
    return;
  }
  c->fallback_armed = 1;
  try_next(c, 0);
  if (c->decided)
    return;
  eddy_timer_start(c->fallback_timer, c->cfg.fallback_delay, 0);
  if (c->cfg.deadline > 0)
    eddy_timer_start_at(c->deadline_timer, c->cfg.deadline);
}

void eddy__connector_unref(eddy__connector_t *c)
{
  if (c == NULL || --c->refs > 0)
    return;
  if (c->result != NULL) {
    eddy_future_on_cancel(c->result, NULL, NULL);
    eddy_future_cancel(c->result); /* only if never started */
    eddy_future_unref(c->result);
  }
  eddy_future_unref(c->last_error);
  eddy_timer_free(c->fallback_timer);
  eddy_timer_free(c->deadline_timer);
  eddy_timer_free(c->stagger_timer[0]);
  eddy_timer_free(c->stagger_timer[1]);
  free(c->attempts);
  free(c->order);
  free(c->addrs);
  free(c);
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */
/* ------------------------------------------------------------------------ */

eddy_future_t *eddy__connector_result(const eddy__connector_t *c)
{
  return c->result;
}

const eddy_address_t *eddy__connector_winner(const eddy__connector_t *c)
{
  return c->winner;
}

size_t eddy__connector_queue(const eddy__connector_t *c, int secondary,
                             const eddy_address_t **entries, size_t max)
{
  size_t first = secondary ? c->end[0] : 0;
  size_t count = c->end[secondary ? 1 : 0] - first;

  for (size_t i = 0; i < count && i < max; i++)
    entries[i] = &c->addrs[c->order[first + i]];
  return count;
}

size_t eddy__connector_started(const eddy__connector_t *c)
{
  return c->started;
}

size_t eddy__connector_in_flight(const eddy__connector_t *c)
{
  return c->in_flight;
}
