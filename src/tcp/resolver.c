/* SPDX-License-Identifier: MIT */
/*
 * Name resolution: the default resolver (getaddrinfo on the loop's thread
 * pool, IP literals answered at once), custom resolvers, and overrides
 * (Tornado's OverrideResolver) that rewrite a lookup before either runs.
 */
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eddy/tcp.h"

struct override {
  char *host;
  int port;   /* -1: any port */
  int family; /* AF_UNSPEC: any family */
  char *to_host;
  int to_port; /* -1: keep the port asked for */
};

struct eddy_resolver {
  eddy_loop_t *loop;
  eddy_resolve_fn fn; /* NULL: getaddrinfo */
  void *arg;
  struct override *overrides;
  size_t n_overrides, cap_overrides;
};

/* ------------------------------------------------------------------------ */
/* getaddrinfo                                                               */
/* ------------------------------------------------------------------------ */

/* One lookup. The pool thread fills in the results; the loop thread reads
 * them once the thread's future settles, so the struct is never shared
 * while both run. cancelled is the only field both touch at once. */
struct lookup {
  eddy_future_t *result; /* ours, handed to the caller */
  atomic_int cancelled;
  char *host;
  char port[12];
  int family;
  int flags;
  int gai_error; /* 0 or an EAI_* code */
  int sys_errno; /* errno for EAI_SYSTEM */
  eddy_address_t *addrs;
  size_t n;
};

static int gai_to_code(int gai)
{
  switch (gai) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY: /* the name has no address in this family */
#endif
    return EDDY_ENONAME;
  default:
    return EDDY_ERESOLVE;
  }
}

/* Runs getaddrinfo and keeps the IPv4 and IPv6 entries, in its order. */
static void lookup_run(struct lookup *l)
{
  struct addrinfo hints, *res = NULL;
  size_t n = 0;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = l->family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = l->flags | AI_NUMERICSERV;
  l->gai_error = getaddrinfo(l->host, l->port, &hints, &res);
  if (l->gai_error == EAI_SYSTEM)
    l->sys_errno = errno;
  if (l->gai_error != 0)
    return;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
    n++;
  l->addrs = calloc(n ? n : 1, sizeof(*l->addrs));
  if (l->addrs == NULL) {
    l->gai_error = EAI_MEMORY;
    freeaddrinfo(res);
    return;
  }
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(l->addrs[0].addr))
      continue;
    l->addrs[l->n].family = ai->ai_family;
    l->addrs[l->n].len = ai->ai_addrlen;
    memcpy(&l->addrs[l->n].addr, ai->ai_addr, ai->ai_addrlen);
    l->n++;
  }
  freeaddrinfo(res);
  if (l->n == 0)
    l->gai_error = EAI_NONAME;
}

/* Settles l->result with the outcome of lookup_run(). */
static void lookup_settle(struct lookup *l)
{
  if (l->gai_error == 0) {
    if (eddy_future_resolve_bytes(l->result, l->addrs, l->n, free) == 0)
      l->addrs = NULL; /* the future owns them now */
  } else if (l->gai_error == EAI_SYSTEM) {
    eddy_future_reject_cause(l->result, EDDY_ERESOLVE, -l->sys_errno,
                             "cannot resolve %s: %s", l->host,
                             strerror(l->sys_errno));
  } else {
    eddy_future_reject(l->result, gai_to_code(l->gai_error),
                       "cannot resolve %s: %s", l->host,
                       gai_strerror(l->gai_error));
  }
}

static void lookup_free(struct lookup *l)
{
  eddy_future_unref(l->result);
  free(l->addrs);
  free(l->host);
  free(l);
}

/* On a pool thread. A lookup cancelled before it starts is skipped. */
static int lookup_work(void *arg, void **value, size_t *size)
{
  struct lookup *l = arg;

  (void)value;
  (void)size;
  if (!atomic_load(&l->cancelled))
    lookup_run(l);
  return 0;
}

/* Back on the loop: the work has finished (or was skipped). A cancelled
 * result stays cancelled and the late answer is dropped. */
static void lookup_done(eddy_future_t *work, void *arg)
{
  struct lookup *l = arg;

  eddy_future_on_cancel(l->result, NULL, NULL);
  if (!eddy_future_done(l->result)) {
    if (eddy_future_state(work) == EDDY_FUTURE_RESOLVED)
      lookup_settle(l);
    else
      eddy_future_settle_as(l->result, work);
  }
  lookup_free(l);
}

static void lookup_cancel(eddy_future_t *f, void *arg)
{
  struct lookup *l = arg;

  (void)f;
  atomic_store(&l->cancelled, 1);
}

static eddy_future_t *resolve_getaddrinfo(eddy_loop_t *loop, const char *host,
                                          int port, int family)
{
  struct lookup *l = calloc(1, sizeof(*l));
  eddy_future_t *work, *result;

  if (l == NULL)
    return eddy_future_rejected(loop, -ENOMEM, NULL);
  atomic_init(&l->cancelled, 0);
  l->host = strdup(host);
  l->result = eddy_future_new(loop);
  l->family = family;
  snprintf(l->port, sizeof(l->port), "%d", port);
  if (l->host == NULL || l->result == NULL) {
    lookup_free(l);
    return eddy_future_rejected(loop, -ENOMEM, NULL);
  }
  result = eddy_future_ref(l->result);

  /* An IP literal needs no thread: a numeric-only lookup never blocks. */
  l->flags = AI_NUMERICHOST;
  lookup_run(l);
  if (l->gai_error != EAI_NONAME) {
    lookup_settle(l);
    lookup_free(l);
    return result;
  }
  l->flags = 0;
  l->gai_error = 0;

  work = eddy_loop_run_in_thread(loop, lookup_work, l, NULL);
  if (work == NULL || eddy_future_add_done(work, lookup_done, l) < 0) {
    /* The work (if queued) only touches l; let it finish first. */
    if (work != NULL)
      eddy_future_cancel(work);
    eddy_future_unref(work);
    if (work == NULL)
      lookup_free(l);
    eddy_future_reject(result, -ENOMEM, NULL);
    return result;
  }
  eddy_future_unref(work);
  eddy_future_on_cancel(l->result, lookup_cancel, l);
  return result;
}

/* ------------------------------------------------------------------------ */
/* Resolvers and overrides                                                   */
/* ------------------------------------------------------------------------ */

static eddy_resolver_t *resolver_new(eddy_loop_t *loop, eddy_resolve_fn fn,
                                     void *arg)
{
  eddy_resolver_t *r;

  if (loop == NULL) {
    errno = EINVAL;
    return NULL;
  }
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->loop = loop;
  r->fn = fn;
  r->arg = arg;
  return r;
}

eddy_resolver_t *eddy_resolver_new(eddy_loop_t *loop)
{
  return resolver_new(loop, NULL, NULL);
}

eddy_resolver_t *eddy_resolver_new_custom(eddy_loop_t *loop,
                                          eddy_resolve_fn fn, void *arg)
{
  if (fn == NULL) {
    errno = EINVAL;
    return NULL;
  }
  return resolver_new(loop, fn, arg);
}

static struct override *find_override(const eddy_resolver_t *r,
                                      const char *host, int port, int family)
{
  for (size_t i = 0; i < r->n_overrides; i++) {
    struct override *o = &r->overrides[i];
    if (o->port == port && o->family == family &&
        strcasecmp(o->host, host) == 0)
      return o;
  }
  return NULL;
}

int eddy_resolver_add_override(eddy_resolver_t *r, const char *host, int port,
                               int family, const char *to_host, int to_port)
{
  struct override *o;
  char *h, *to;

  if (r == NULL || host == NULL || to_host == NULL || port < -1 ||
      port > 65535 || to_port < -1 || to_port > 65535)
    return -EINVAL;
  h = strdup(host);
  to = strdup(to_host);
  if (h == NULL || to == NULL) {
    free(h);
    free(to);
    return -ENOMEM;
  }
  o = find_override(r, host, port, family);
  if (o != NULL) { /* the same key again replaces the mapping */
    free(o->host);
    free(o->to_host);
  } else {
    if (r->n_overrides == r->cap_overrides) {
      size_t cap = r->cap_overrides ? 2 * r->cap_overrides : 4;
      struct override *grown = realloc(r->overrides, cap * sizeof(*grown));
      if (grown == NULL) {
        free(h);
        free(to);
        return -ENOMEM;
      }
      r->overrides = grown;
      r->cap_overrides = cap;
    }
    o = &r->overrides[r->n_overrides++];
  }
  o->host = h;
  o->port = port;
  o->family = family;
  o->to_host = to;
  o->to_port = to_port;
  return 0;
}

/* The most specific override for a lookup: (host, port, family), then
 * (host, port), then host with the family, then host alone. */
static const struct override *match_override(const eddy_resolver_t *r,
                                             const char *host, int port,
                                             int family)
{
  const struct override *o = NULL;

  if (r->n_overrides == 0)
    return NULL;
  if (family != AF_UNSPEC)
    o = find_override(r, host, port, family);
  if (o == NULL)
    o = find_override(r, host, port, AF_UNSPEC);
  if (o == NULL && family != AF_UNSPEC)
    o = find_override(r, host, -1, family);
  if (o == NULL)
    o = find_override(r, host, -1, AF_UNSPEC);
  return o;
}

eddy_future_t *eddy_resolver_resolve(eddy_resolver_t *r, const char *host,
                                     int port, int family)
{
  const struct override *o;
  eddy_future_t *f;

  if (r == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (host == NULL || *host == '\0')
    return eddy_future_rejected(r->loop, EDDY_EUSAGE, "no host to resolve");
  if (port < 0 || port > 65535)
    return eddy_future_rejected(r->loop, EDDY_EUSAGE,
                                "port %d is out of range", port);
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
    return eddy_future_rejected(r->loop, EDDY_EUSAGE,
                                "unsupported address family %d", family);

  o = match_override(r, host, port, family);
  if (o != NULL) {
    host = o->to_host;
    if (o->to_port >= 0)
      port = o->to_port;
  }
  if (r->fn == NULL)
    return resolve_getaddrinfo(r->loop, host, port, family);
  f = r->fn(r->arg, r->loop, host, port, family);
  return f != NULL ? f : eddy_future_rejected(r->loop, -ENOMEM, NULL);
}

void eddy_resolver_free(eddy_resolver_t *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_overrides; i++) {
    free(r->overrides[i].host);
    free(r->overrides[i].to_host);
  }
  free(r->overrides);
  free(r);
}
