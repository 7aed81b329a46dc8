/* SPDX-License-Identifier: MIT */
/*
 * The TCP server (Tornado's TCPServer): turns accepted connections into
 * streams and hands each one out, to the oldest pending accept future, else
 * to the handler, else to a bounded queue; counts the streams it handed out
 * until they close; stops, shuts down gracefully, and frees safely while
 * callbacks that point at it are still queued.
 *
 * Lifetime. The server is refcounted internally: the user's reference
 * (dropped by eddy_tcp_server_free()), one per tracked connection, one per
 * queued drain task, and one across each accept burst. The last one frees
 * the memory; until then a freed server is stopped and inert.
 *
 * Tracking. The server must not keep handed-out streams alive (a stream
 * closes when its last reference goes), so it links itself to each as the
 * stream's owner (stream/close_watch.h): the stream tells it from its close
 * task. The link is embedded in the stream, the task that waits on the
 * handler's future included, so tracking a connection costs no allocation:
 * a separate record would cost each idle connection a malloc chunk of its
 * own. Nor does it cost a list node: a linked stream watches its socket
 * until it closes, so the open ones are in the loop's fd table, where the
 * shutdown finds them (close_open_conns); the server only counts the
 * streams it tracks. A linked stream is tracked until both waits have
 * ended, the close (told) and the handler's future (settled, its task
 * run); while the handler's future is pending the server holds a
 * reference on the stream, so the task is never in freed memory.
 *
 * TLS. With a tls_ctx every accepted socket becomes a server-side TLS
 * stream. A handshake guard (same weak-pointer scheme) closes it with
 * EDDY_ETIMEOUT if its handshake has not ended by tls_handshake_timeout,
 * handed out or not. With tls_handshake_first the server itself waits for
 * the handshake (struct handshaking, in srv->handshaking until it ends) and
 * only then hands the stream out; failures are closed and logged at info.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "common/list.h"
#include "common/options.h"
#include "eddy/tcp.h"
#include "eddy/tls.h"
#include "future/future_internal.h" /* eddy__future_wait */
#include "loop/loop_internal.h"
#include "stream/close_watch.h"
#include "tcp/acceptor.h"

#define DEFAULT_ACCEPT_QUEUE 128
#define MAX_LISTEN_FDS 16

/* Closes a TLS stream whose handshake outlives its deadline; freed when
 * the stream closes. */
struct hs_guard {
  struct eddy__close_watch closed; /* .stream: weak, NULL once closed */
  eddy_timer_t *timer;
};

/* A TLS connection whose handshake the server waits for before handing it
 * out (tls_handshake_first). */
struct handshaking {
  struct eddy_list node; /* in srv->handshaking */
  eddy_tcp_server_t *srv;
  eddy_stream_t *s; /* our reference */
  eddy_future_t *done; /* its wait_for_handshake future */
  struct eddy__task done_task;
  struct sockaddr_storage peer;
  socklen_t peer_len;
};

/* A connection nobody has claimed yet. */
struct queued {
  eddy_stream_t *s;
  struct sockaddr_storage peer;
  socklen_t peer_len;
};

struct eddy_tcp_server {
  eddy_loop_t *loop;
  unsigned refs;
  eddy_tcp_server_options_t opts;
  eddy_stream_handler_fn handler;
  void *handler_arg;
  struct eddy__acceptor acc;
  int *bound; /* bind()'s sockets, waiting for start() */
  size_t nbound;
  int started, stopped, freed;

  eddy_future_t **waiters; /* pending accept futures, oldest first */
  size_t nwaiters, capwaiters;

  struct queued *queue; /* ring */
  size_t qhead, qlen, qcap;

  size_t ntracked;        /* streams linked to `owner`, until both waits end */
  struct eddy__stream_owner owner; /* what they are linked to */
  size_t nopen;           /* handed out and not yet seen closed */

  struct eddy_list handshaking; /* struct handshaking, oldest first */
  size_t nhandshaking;

  eddy_future_t *shutdown; /* pending until ntracked is 0 */
  eddy_timer_t *grace;

  struct eddy__task drain_task; /* hands queued streams to a new handler */
  int drain_queued;

  struct eddy__loop_obj walk_node; /* eddy_loop_walk() finds it */
};

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                  */
/* ------------------------------------------------------------------------ */

static void server_hold(void *arg)
{
  ((eddy_tcp_server_t *)arg)->refs++;
}

static void server_release(void *arg)
{
  eddy_tcp_server_t *srv = arg;
  if (--srv->refs > 0)
    return;
  eddy__loop_obj_remove(&srv->walk_node);
  eddy_timer_free(srv->grace);
  eddy_future_unref(srv->shutdown);
  SSL_CTX_free(srv->opts.tls_ctx);
  free(srv->waiters);
  free(srv->queue);
  free(srv->bound);
  free(srv);
}

static void unref_stream_value(void *s)
{
  eddy_stream_unref(s);
}

/* ------------------------------------------------------------------------ */
/* Pausing and shutting down                                                 */
/* ------------------------------------------------------------------------ */

/* Listens only while the queue has room and max_connections is not met
 * (queued streams count: they will be handed out). */
static void update_pause(eddy_tcp_server_t *srv)
{
  size_t max = srv->opts.max_connections;
  int full = srv->qlen >= srv->opts.accept_queue ||
             (max > 0 && srv->nopen + srv->qlen + srv->nhandshaking >= max);
  eddy__acceptor_pause(&srv->acc, full);
}

static void close_if_ours(void *stream, void *srv)
{
  eddy_stream_t *s = stream;
  if (eddy__stream_link(s)->owner == &((eddy_tcp_server_t *)srv)->owner)
    eddy_stream_close(s, 0); /* the close task tells us later */
}

/* Every open stream we track is in the fd table (close_watch.h); the
 * closed ones only wait for their handler. */
static void close_open_conns(eddy_tcp_server_t *srv)
{
  eddy__loop_each_stream(srv->loop, close_if_ours, srv);
}

static void on_grace_over(void *arg)
{
  close_open_conns(arg);
}

static void maybe_finish_shutdown(eddy_tcp_server_t *srv)
{
  if (srv->shutdown == NULL || srv->ntracked > 0)
    return;
  eddy_timer_stop(srv->grace);
  eddy_future_resolve(srv->shutdown, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* Tracking handed-out streams                                               */
/* ------------------------------------------------------------------------ */

/* Forgets @s once both of its waits have ended: the close (told) and the
 * handler's future (link.waited NULL: none, or seen settled). Called
 * before any release of the stream, which may free it. */
static void conn_maybe_done(eddy_tcp_server_t *srv, eddy_stream_t *s)
{
  struct eddy__stream_link *l = eddy__stream_link(s);
  if (l->waited != NULL || !eddy__stream_owner_told(s))
    return;
  srv->ntracked--;
  maybe_finish_shutdown(srv);
  server_release(srv);
}

static void on_conn_closed(struct eddy__stream_owner *owner, eddy_stream_t *s)
{
  eddy_tcp_server_t *srv = eddy_container_of(owner, eddy_tcp_server_t, owner);
  srv->nopen--;
  if (!srv->stopped)
    update_pause(srv);
  conn_maybe_done(srv, s);
}

/* Starts counting @s; the caller then sets link.waited or calls
 * conn_maybe_done (for a stream that had closed already). */
static void track(eddy_tcp_server_t *srv, eddy_stream_t *s)
{
  struct eddy__stream_link *l = eddy__stream_link(s);
  l->waited = NULL;
  srv->ntracked++;
  server_hold(srv);
  if (eddy__stream_set_owner(s, &srv->owner) == 0)
    srv->nopen++; /* on_conn_closed takes it back */
}

/* ------------------------------------------------------------------------ */
/* Handing streams out                                                       */
/* ------------------------------------------------------------------------ */

static void drop_stream(eddy_tcp_server_t *srv, eddy_stream_t *s,
                        const char *why)
{
  eddy__log(srv->loop, EDDY_LOG_WARNING, "dropping a connection: %s", why);
  eddy_stream_close(s, -ENOMEM);
  eddy_stream_unref(s);
}

static void on_handler_done(struct eddy__task *task)
{
  struct eddy__stream_link *l = eddy_container_of(task, struct eddy__stream_link, task);
  eddy_tcp_server_t *srv = eddy_container_of(l->owner, eddy_tcp_server_t, owner);
  eddy_stream_t *s = eddy__stream_of_link(l);
  eddy_future_t *f = l->waited;
  int err = eddy_future_error(f);
  if (err == EDDY_ECLOSED || err == EDDY_ECANCELLED)
    eddy__log(srv->loop, EDDY_LOG_DEBUG, "stream handler ended: %s",
              eddy_future_message(f));
  else if (err != 0)
    eddy__log(srv->loop, EDDY_LOG_WARNING,
              "Exception in stream handler: %s", eddy_future_message(f));
  eddy_future_unref(f);
  l->waited = NULL;
  conn_maybe_done(srv, s);
  eddy_stream_unref(s); /* ours, held while the handler ran */
}

/* Calls the handler with @s, whose reference it consumes: the server keeps
 * it until the handler's future settles. */
static void call_handler(eddy_tcp_server_t *srv, eddy_stream_t *s,
                         const struct sockaddr *peer)
{
  track(srv, s);
  eddy_future_t *f = srv->handler(s, peer, srv->handler_arg);
  if (f == NULL || f == EDDY_NO_VALUE) {
    conn_maybe_done(srv, s);
    /* NULL is the handler's chain failing to allocate: the connection
     * cannot be served as written, so it is closed, not left half done. */
    if (f == NULL)
      drop_stream(srv, s, "the stream handler returned NULL (out of memory)");
    else
      eddy_stream_unref(s);
    return;
  }
  struct eddy__stream_link *l = eddy__stream_link(s);
  l->waited = f;
  l->task.run = on_handler_done;
  eddy__future_wait(f, &l->task);
}

/* Resolves the oldest pending accept future with @s (consumed).
 * Returns 0 if there was none and @s is still the caller's. */
static int resolve_waiter(eddy_tcp_server_t *srv, eddy_stream_t *s)
{
  while (srv->nwaiters > 0) {
    eddy_future_t *f = srv->waiters[0];
    memmove(srv->waiters, srv->waiters + 1,
            --srv->nwaiters * sizeof *srv->waiters);
    eddy_future_on_cancel(f, NULL, NULL);
    if (eddy_future_done(f)) {
      eddy_future_unref(f);
      continue;
    }
    track(srv, s);
    conn_maybe_done(srv, s);
    eddy_future_resolve(f, s, unref_stream_value);
    eddy_future_unref(f);
    return 1;
  }
  return 0;
}

static int enqueue(eddy_tcp_server_t *srv, eddy_stream_t *s,
                   const struct sockaddr *peer, socklen_t peer_len)
{
  if (srv->qlen == srv->qcap) {
    size_t cap = srv->qcap ? srv->qcap * 2 : 16;
    struct queued *q = malloc(cap * sizeof *q);
    if (q == NULL)
      return -ENOMEM;
    for (size_t i = 0; i < srv->qlen; i++)
      q[i] = srv->queue[(srv->qhead + i) % srv->qcap];
    free(srv->queue);
    srv->queue = q;
    srv->qcap = cap;
    srv->qhead = 0;
  }
  struct queued *e = &srv->queue[(srv->qhead + srv->qlen++) % srv->qcap];
  e->s = s;
  e->peer_len = peer_len <= sizeof e->peer ? peer_len : sizeof e->peer;
  memset(&e->peer, 0, sizeof e->peer);
  memcpy(&e->peer, peer, e->peer_len);
  return 0;
}

static struct queued dequeue(eddy_tcp_server_t *srv)
{
  struct queued e = srv->queue[srv->qhead];
  srv->qhead = (srv->qhead + 1) % srv->qcap;
  srv->qlen--;
  return e;
}

/* Hands @s (consumed) to an accept future, the handler or the queue. */
static void dispatch(eddy_tcp_server_t *srv, eddy_stream_t *s,
                     const struct sockaddr *peer, socklen_t peer_len)
{
  if (resolve_waiter(srv, s))
    ;
  else if (srv->handler != NULL)
    call_handler(srv, s, peer);
  else if (enqueue(srv, s, peer, peer_len) < 0)
    drop_stream(srv, s, "out of memory");
}

/* ------------------------------------------------------------------------ */
/* TLS: handshake deadline, handshake first                                  */
/* ------------------------------------------------------------------------ */

static void on_guard_deadline(void *arg)
{
  struct hs_guard *g = arg;
  eddy_stream_t *s = g->closed.stream;
  if (s != NULL && !eddy_stream_tls_handshake_done(s))
    eddy_stream_close(s, EDDY_ETIMEOUT);
}

static void on_guard_closed(struct eddy__task *task)
{
  struct hs_guard *g = eddy_container_of(task, struct hs_guard, closed.task);
  eddy_timer_free(g->timer);
  free(g);
}

/* Bounds @s's handshake by the server's handshake timeout. */
static int guard_handshake(eddy_tcp_server_t *srv, eddy_stream_t *s)
{
  double timeout = srv->opts.tls_handshake_timeout;
  if (timeout < 0)
    return 0;
  struct hs_guard *g = calloc(1, sizeof *g);
  if (g == NULL)
    return -ENOMEM;
  g->timer = eddy_timer_new(srv->loop, on_guard_deadline, g);
  if (g->timer == NULL) {
    free(g);
    return -ENOMEM;
  }
  g->closed.task.run = on_guard_closed;
  if (eddy__stream_watch_close(s, &g->closed) < 0) {
    eddy_timer_free(g->timer);
    free(g);
    return -ENOMEM;
  }
  eddy_timer_start(g->timer, timeout, 0);
  return 0;
}

static void on_handshake_done(struct eddy__task *task)
{
  struct handshaking *h = eddy_container_of(task, struct handshaking, done_task);
  eddy_tcp_server_t *srv = h->srv;
  eddy_future_t *f = h->done;

  eddy_list_remove(&h->node);
  srv->nhandshaking--;
  if (eddy_future_error(f) != 0 || srv->stopped) {
    if (eddy_future_error(f) != 0) {
      char peer[EDDY_ADDRSTRLEN];
      eddy_format_address((struct sockaddr *)&h->peer, h->peer_len, peer, sizeof peer);
      eddy__log(srv->loop, EDDY_LOG_INFO, "TLS handshake with %s failed: %s",
                peer, eddy_future_cause(f) == EDDY_ETIMEOUT
                          ? "timed out" : eddy_future_message(f));
    }
    eddy_stream_close(h->s, 0);
    eddy_stream_unref(h->s);
  } else {
    dispatch(srv, h->s, (struct sockaddr *)&h->peer, h->peer_len);
  }
  if (!srv->stopped)
    update_pause(srv);
  eddy_future_unref(f);
  free(h);
  server_release(srv);
}

/* Waits for @s's handshake (consumes @s), then dispatches it. */
static void handshake_first(eddy_tcp_server_t *srv, eddy_stream_t *s,
                            const struct sockaddr *peer, socklen_t peer_len)
{
  struct handshaking *h = calloc(1, sizeof *h);
  eddy_future_t *f = h != NULL ? eddy_stream_wait_for_handshake(s) : NULL;
  if (f == NULL) {
    free(h);
    drop_stream(srv, s, "out of memory");
    return;
  }
  h->srv = srv;
  h->s = s;
  h->done = f;
  h->peer_len = peer_len <= sizeof h->peer ? peer_len : sizeof h->peer;
  memcpy(&h->peer, peer, h->peer_len);
  eddy_list_insert_tail(&srv->handshaking, &h->node);
  srv->nhandshaking++;
  server_hold(srv);
  h->done_task.run = on_handshake_done;
  eddy__future_wait(f, &h->done_task);
}

/* ------------------------------------------------------------------------ */

static void on_accepted(void *owner, int fd, const struct sockaddr *peer,
                        socklen_t peer_len)
{
  eddy_tcp_server_t *srv = owner;
  SSL_CTX *ctx = srv->opts.tls_ctx;
  eddy_stream_t *s =
      ctx != NULL ? eddy_stream_new_tls(srv->loop, fd, ctx, 1, NULL, &srv->opts.stream)
                  : eddy_stream_new_socket(srv->loop, fd, &srv->opts.stream);
  if (s == NULL) {
    eddy__log(srv->loop, EDDY_LOG_WARNING,
              "cannot make a stream for an accepted connection: %s",
              strerror(errno));
    return;
  }
  if (ctx != NULL && guard_handshake(srv, s) < 0)
    drop_stream(srv, s, "out of memory");
  else if (ctx != NULL && srv->opts.tls_handshake_first)
    handshake_first(srv, s, peer, peer_len);
  else
    dispatch(srv, s, peer, peer_len);
  if (!srv->stopped)
    update_pause(srv);
}

static const struct eddy__acceptor_ops acceptor_ops = {
  on_accepted, server_hold, server_release
};

/* Hands queued streams to a handler set after they arrived. */
static void run_drain(struct eddy__task *task)
{
  eddy_tcp_server_t *srv = eddy_container_of(task, eddy_tcp_server_t, drain_task);
  srv->drain_queued = 0;
  while (srv->qlen > 0 && srv->handler != NULL && !srv->stopped) {
    struct queued e = dequeue(srv);
    call_handler(srv, e.s, (struct sockaddr *)&e.peer);
  }
  if (!srv->stopped)
    update_pause(srv);
  server_release(srv);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

void eddy_tcp_server_options_init(eddy_tcp_server_options_t *options)
{
  memset(options, 0, sizeof *options);
  eddy_stream_options_init(&options->stream);
  options->accept_queue = DEFAULT_ACCEPT_QUEUE;
}

eddy_tcp_server_t *eddy_tcp_server_new(eddy_loop_t *loop,
                                       const eddy_tcp_server_options_t *options)
{
  /* The stream options are checked here too: a server whose every
   * connection would fail to become a stream is better refused at once. */
  if (loop == NULL || (options != NULL && (!EDDY__OPTIONS_KNOWN(options) ||
                                           !EDDY__OPTIONS_KNOWN(&options->stream)))) {
    errno = EINVAL;
    return NULL;
  }
  eddy_tcp_server_t *srv = calloc(1, sizeof *srv);
  if (srv == NULL)
    return NULL;
  srv->grace = eddy_timer_new(loop, on_grace_over, srv);
  if (srv->grace == NULL) {
    free(srv);
    return NULL;
  }
  srv->loop = loop;
  srv->refs = 1;
  if (options != NULL)
    srv->opts = *options;
  else
    eddy_tcp_server_options_init(&srv->opts);
  if (srv->opts.accept_queue == 0)
    srv->opts.accept_queue = DEFAULT_ACCEPT_QUEUE;
  if (!(srv->opts.tls_handshake_timeout > 0 || srv->opts.tls_handshake_timeout < 0))
    srv->opts.tls_handshake_timeout = EDDY_DEFAULT_TLS_HANDSHAKE_TIMEOUT;
  if (srv->opts.tls_ctx != NULL && SSL_CTX_up_ref(srv->opts.tls_ctx) != 1) {
    eddy_timer_free(srv->grace);
    free(srv);
    errno = ENOMEM;
    return NULL;
  }
  srv->owner.closed = on_conn_closed;
  eddy_list_init(&srv->handshaking);
  eddy__loop_obj_add(loop, &srv->walk_node, EDDY_OBJECT_SERVER, srv);
  srv->drain_task.run = run_drain;
  eddy__acceptor_init(&srv->acc, loop, &acceptor_ops, srv);
  return srv;
}

void eddy_tcp_server_set_handler(eddy_tcp_server_t *srv,
                                 eddy_stream_handler_fn fn, void *arg)
{
  srv->handler = fn;
  srv->handler_arg = arg;
  if (fn != NULL && srv->qlen > 0 && !srv->drain_queued && !srv->stopped) {
    srv->drain_queued = 1;
    server_hold(srv);
    eddy__loop_defer(srv->loop, &srv->drain_task);
  }
}

static void on_accept_cancelled(eddy_future_t *f, void *arg)
{
  eddy_tcp_server_t *srv = arg;
  for (size_t i = 0; i < srv->nwaiters; i++)
    if (srv->waiters[i] == f) {
      memmove(srv->waiters + i, srv->waiters + i + 1,
              (--srv->nwaiters - i) * sizeof *srv->waiters);
      eddy_future_unref(f);
      return;
    }
}

eddy_future_t *eddy_tcp_server_accept(eddy_tcp_server_t *srv)
{
  if (srv->stopped)
    return eddy_future_rejected(srv->loop, EDDY_ECLOSED, "server stopped");
  if (srv->qlen > 0) {
    struct queued e = dequeue(srv);
    update_pause(srv);
    track(srv, e.s);
    conn_maybe_done(srv, e.s);
    return eddy_future_resolved(srv->loop, e.s, unref_stream_value);
  }
  if (srv->nwaiters == srv->capwaiters) {
    size_t cap = srv->capwaiters ? srv->capwaiters * 2 : 4;
    eddy_future_t **v = realloc(srv->waiters, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    srv->waiters = v;
    srv->capwaiters = cap;
  }
  eddy_future_t *f = eddy_future_new(srv->loop);
  if (f == NULL)
    return NULL;
  srv->waiters[srv->nwaiters++] = eddy_future_ref(f);
  eddy_future_on_cancel(f, on_accept_cancelled, srv);
  return f;
}

int eddy_tcp_server_add_sockets(eddy_tcp_server_t *srv, const int *fds,
                                size_t n)
{
  return eddy__acceptor_add(&srv->acc, fds, n);
}

int eddy_tcp_server_add_socket(eddy_tcp_server_t *srv, int fd)
{
  return eddy_tcp_server_add_sockets(srv, &fd, 1);
}

int eddy_tcp_server_listen(eddy_tcp_server_t *srv, int port,
                           const char *address)
{
  if (srv->stopped)
    return EDDY_EUSAGE;
  int fds[MAX_LISTEN_FDS];
  int n = eddy_bind_sockets(port, address, AF_UNSPEC, 0, 0, fds,
                            MAX_LISTEN_FDS);
  if (n < 0)
    return n;
  return eddy_tcp_server_add_sockets(srv, fds, (size_t)n);
}

int eddy_tcp_server_bind(eddy_tcp_server_t *srv, int port, const char *address,
                         int family, int backlog, unsigned flags)
{
  if (srv->stopped)
    return EDDY_EUSAGE;
  int fds[MAX_LISTEN_FDS];
  int n = eddy_bind_sockets(port, address, family, backlog, flags, fds,
                            MAX_LISTEN_FDS);
  if (n < 0)
    return n;
  if (srv->started)
    return eddy_tcp_server_add_sockets(srv, fds, (size_t)n);
  int *v = realloc(srv->bound, (srv->nbound + (size_t)n) * sizeof *v);
  if (v == NULL) {
    for (int i = 0; i < n; i++)
      close(fds[i]);
    return -ENOMEM;
  }
  memcpy(v + srv->nbound, fds, (size_t)n * sizeof *fds);
  srv->bound = v;
  srv->nbound += (size_t)n;
  return 0;
}

int eddy_tcp_server_start(eddy_tcp_server_t *srv, int num_processes,
                          int max_restarts)
{
  if (srv->started || srv->stopped)
    return EDDY_EUSAGE;
  int id = 0;
  if (num_processes != 1) {
    id = eddy_fork_processes(num_processes, max_restarts);
    if (id < 0)
      return id;
    int rc = eddy_loop_after_fork(srv->loop);
    if (rc < 0)
      return rc;
  }
  srv->started = 1;
  int rc = eddy_tcp_server_add_sockets(srv, srv->bound, srv->nbound);
  free(srv->bound);
  srv->bound = NULL;
  srv->nbound = 0;
  return rc < 0 ? rc : id;
}

size_t eddy_tcp_server_sockets(const eddy_tcp_server_t *srv, int *fds,
                               size_t max)
{
  size_t n = 0;
  for (size_t i = 0; i < srv->acc.n; i++, n++)
    if (n < max)
      fds[n] = srv->acc.fds[i];
  for (size_t i = 0; i < srv->nbound; i++, n++)
    if (n < max)
      fds[n] = srv->bound[i];
  return n;
}

void eddy_tcp_server_stop(eddy_tcp_server_t *srv)
{
  if (srv->stopped)
    return;
  srv->stopped = 1;
  eddy__acceptor_close(&srv->acc);
  for (size_t i = 0; i < srv->nbound; i++)
    close(srv->bound[i]);
  srv->nbound = 0;
  for (size_t i = 0; i < srv->nwaiters; i++) { /* oldest first */
    eddy_future_t *f = srv->waiters[i];
    eddy_future_on_cancel(f, NULL, NULL);
    eddy_future_reject(f, EDDY_ECLOSED, "server stopped");
    eddy_future_unref(f);
  }
  srv->nwaiters = 0;
  while (srv->qlen > 0) {
    struct queued e = dequeue(srv);
    eddy_stream_close(e.s, 0);
    eddy_stream_unref(e.s);
  }
  /* Their handshake waits then fail, and on_handshake_done drops them. */
  struct eddy_list *pos, *tmp;
  eddy_list_foreach_safe(pos, tmp, &srv->handshaking)
    eddy_stream_close(eddy_container_of(pos, struct handshaking, node)->s, 0);
}

eddy_future_t *eddy_tcp_server_shutdown(eddy_tcp_server_t *srv, double grace)
{
  eddy_tcp_server_stop(srv);
  if (srv->shutdown == NULL) {
    srv->shutdown = eddy_future_new(srv->loop);
    if (srv->shutdown == NULL)
      return NULL;
  }
  if (grace > 0) {
    double deadline = eddy_loop_time(srv->loop) + grace;
    if (!eddy_timer_active(srv->grace))
      eddy_timer_start_at(srv->grace, deadline);
  } else {
    close_open_conns(srv);
  }
  maybe_finish_shutdown(srv);
  return eddy_future_ref(srv->shutdown);
}

size_t eddy_tcp_server_connection_count(const eddy_tcp_server_t *srv)
{
  return srv->nopen;
}

void eddy_tcp_server_free(eddy_tcp_server_t *srv)
{
  if (srv == NULL || srv->freed)
    return;
  srv->freed = 1;
  eddy_tcp_server_stop(srv);
  srv->handler = NULL;
  server_release(srv);
}
