/* SPDX-License-Identifier: MIT */
/*
 * The fd table: one slot per fd, indexed by the fd itself (as libuv and
 * redis do), grown on demand.
 *
 * Interest changes only mark the slot and queue it on loop->changes; once
 * per iteration, just before polling, eddy__io_apply() tells the kernel about
 * the slots whose wanted mask differs from the registered one. A stream that
 * turns WRITE on and off again within an iteration costs no syscall.
 *
 * Removal is the exception: it reaches the kernel at once, because the
 * caller is about to close the fd and a dup'ed descriptor would otherwise
 * keep an unwanted registration alive after the close.
 *
 * Each slot carries a generation bumped on add and remove. Events collected
 * by the backend record it, so an fd removed (or closed, reopened and added
 * again) by an earlier handler of the same batch never sees stale events.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "loop/loop_impl.h"

#define IO_MASK (EDDY_READ | EDDY_WRITE | EDDY__RECV | EDDY__ACCEPT)

/* Whether the kernel has to hear of @s's interest: not when only bits its
 * backend does not tell apart changed. */
static int io_stale(const eddy_loop_t *loop, const struct eddy__slot *s)
{
  return !s->kreg || ((s->kmask ^ s->wanted) & loop->backend->bits) != 0;
}

int eddy__io_init(eddy_loop_t *loop)
{
  loop->slots = NULL;
  loop->nslots = 0;
  loop->changes = NULL;
  loop->nchanges = 0;
  loop->fired = NULL;
  loop->nfired = loop->capfired = 0;
  return 0;
}

void eddy__io_fini(eddy_loop_t *loop)
{
  free(loop->slots);
  free(loop->changes);
  free(loop->fired);
  loop->slots = NULL;
  loop->changes = NULL;
  loop->fired = NULL;
  loop->nslots = loop->nchanges = loop->nfired = loop->capfired = 0;
}

static int io_grow(eddy_loop_t *loop, int fd)
{
  int n = loop->nslots ? loop->nslots : 64;
  struct eddy__slot *slots;
  int *changes;

  /* By a quarter, not double: a server with many connections pays for the
   * table's headroom in every one of them, and realloc of a block this
   * size moves pages rather than copying bytes. */
  while (n <= fd) {
    if (n > INT_MAX / 2)
      return -ENOMEM;
    n += n / 4;
  }
  slots = realloc(loop->slots, (size_t)n * sizeof *slots);
  if (slots == NULL)
    return -ENOMEM;
  loop->slots = slots;
  /* Each fd is queued at most once, so this never has to grow elsewhere. */
  changes = realloc(loop->changes, (size_t)n * sizeof *changes);
  if (changes == NULL)
    return -ENOMEM;
  loop->changes = changes;
  memset(slots + loop->nslots, 0, (size_t)(n - loop->nslots) * sizeof *slots);
  loop->nslots = n;
  return 0;
}

static void io_queue(eddy_loop_t *loop, int fd)
{
  struct eddy__slot *s = &loop->slots[fd];

  if (!s->queued) {
    s->queued = 1;
    loop->changes[loop->nchanges++] = fd;
  }
}

static struct eddy__slot *io_slot(eddy_loop_t *loop, int fd)
{
  if (loop == NULL || fd < 0 || fd >= loop->nslots || !loop->slots[fd].active)
    return NULL;
  return &loop->slots[fd];
}

int eddy_loop_add_handler(eddy_loop_t *loop, int fd, unsigned events,
                          eddy_io_fn cb, void *arg)
{
  struct eddy__slot *s;
  int rc;

  if (loop == NULL || cb == NULL)
    return -EINVAL;
  if (fd < 0)
    return -EBADF;
  if (fd >= loop->nslots && (rc = io_grow(loop, fd)) < 0)
    return rc;
  s = &loop->slots[fd];
  if (s->active)
    return -EEXIST;
  s->cb = cb;
  s->arg = arg;
  s->wanted = events & IO_MASK;
  s->active = 1;
  s->kind = EDDY__FD_USER;
  s->gen++;
  io_queue(loop, fd);
  return 0;
}

size_t eddy__loop_each_stream(eddy_loop_t *loop, void (*fn)(void *stream, void *ctx),
                              void *ctx)
{
  size_t n = 0;
  int fd;

  /* By index, the slot looked up each time: closing a stream removes its
   * handler, maybe others', and a handler added meanwhile may grow the
   * table. */
  for (fd = 0; fd < loop->nslots; fd++) {
    struct eddy__slot *s = &loop->slots[fd];
    if (s->active && s->kind == EDDY__FD_STREAM) {
      fn(s->arg, ctx);
      n++;
    }
  }
  return n;
}

static void close_for_free(void *stream, void *loop)
{
  eddy__head(loop)->close_stream(stream);
}

size_t eddy__io_close_streams(eddy_loop_t *loop)
{
  if (loop->head.close_stream == NULL)
    return 0;
  return eddy__loop_each_stream(loop, close_for_free, loop);
}

void eddy__loop_set_fd_kind(eddy_loop_t *loop, int fd, enum eddy__fd_kind kind)
{
  struct eddy__slot *s = io_slot(loop, fd);

  if (s != NULL)
    s->kind = (unsigned char)kind;
}

int eddy_loop_update_handler(eddy_loop_t *loop, int fd, unsigned events)
{
  struct eddy__slot *s = io_slot(loop, fd);

  if (s == NULL)
    return -ENOENT;
  s->wanted = events & IO_MASK;
  if (io_stale(loop, s))
    io_queue(loop, fd);
  return 0;
}

int eddy_loop_remove_handler(eddy_loop_t *loop, int fd)
{
  struct eddy__slot *s = io_slot(loop, fd);
  int rc;

  if (s == NULL)
    return -ENOENT;
  if (s->kreg) {
    /* In a child that has not rebuilt its state yet, the epoll set is the
     * parent's: rebuilding (which forgets this fd) beats deleting from it. */
    eddy__loop_check_fork(loop);
    s = &loop->slots[fd]; /* rebuilding may have grown the table */
  }
  s->active = 0;
  s->gen++;
  s->cb = NULL;
  s->arg = NULL;
  s->wanted = 0;
  if (s->kreg) {
    s->kreg = 0;
    rc = loop->backend->ctl(loop, fd, EDDY__CTL_DEL, 0);
    if (rc < 0)
      eddy__log(loop, EDDY_LOG_DEBUG, "unwatching fd %d: %s", fd,
                eddy_strerror(rc));
  }
  return 0;
}

void eddy__io_fire(eddy_loop_t *loop, int fd, unsigned events)
{
  if (fd < 0 || fd >= loop->nslots)
    return;
  if (loop->nfired == loop->capfired) {
    int cap = loop->capfired ? 2 * loop->capfired : 64;
    struct eddy__fired *p = realloc(loop->fired, (size_t)cap * sizeof *p);
    if (p == NULL)
      return; /* level-triggered: the event comes back next time */
    loop->fired = p;
    loop->capfired = cap;
  }
  loop->fired[loop->nfired].fd = fd;
  loop->fired[loop->nfired].events = events;
  loop->fired[loop->nfired].gen = loop->slots[fd].gen;
  loop->nfired++;
}

void eddy__io_apply(eddy_loop_t *loop)
{
  int i, kept = 0, n = loop->nchanges;

  for (i = 0; i < n; i++) {
    int fd = loop->changes[i], rc;
    struct eddy__slot *s = &loop->slots[fd];

    s->queued = 0;
    if (!s->active || !io_stale(loop, s))
      continue;
    rc = loop->backend->ctl(loop, fd, s->kreg ? EDDY__CTL_MOD : EDDY__CTL_ADD,
                            s->wanted);
    if (rc == 0) {
      s->kreg = 1;
      s->kmask = s->wanted;
      continue;
    }
    /* The kernel refuses the fd (closed without removing its handler, or a
     * regular file under epoll). Tell the handler, level-triggered style:
     * the error repeats each iteration until it removes itself. */
    eddy__log(loop, EDDY_LOG_DEBUG, "cannot watch fd %d: %s", fd,
              eddy_strerror(rc));
    eddy__io_fire(loop, fd, EDDY_ERROR);
    s->queued = 1;
    loop->changes[kept++] = fd;
  }
  loop->nchanges = kept;
}

void eddy__io_dispatch(eddy_loop_t *loop)
{
  int i;

  for (i = 0; i < loop->nfired; i++) {
    struct eddy__fired e = loop->fired[i];
    /* Re-read the slot each time: a handler may grow the table. */
    struct eddy__slot *s = &loop->slots[e.fd];
    unsigned ev;

    if (!s->active || s->gen != e.gen)
      continue;
    if (e.events & EDDY_ERROR)
      ev = EDDY_ERROR | (s->wanted & (EDDY_READ | EDDY_WRITE));
    else
      ev = e.events & s->wanted;
    if (ev == 0)
      continue;
    if (loop->head.debug) {
      int64_t t0 = eddy__debug_clock();
      s->cb(loop, e.fd, ev, s->arg);
      eddy__debug_slow(loop, t0, "an fd handler", NULL);
    } else {
      s->cb(loop, e.fd, ev, s->arg);
    }
  }
  loop->pass_fds = loop->nfired;
  loop->nfired = 0;
}

ssize_t eddy__loop_recv(eddy_loop_t *loop, int fd, void *buf, size_t len, int flags)
{
  if (loop->backend->recv != NULL)
    return loop->backend->recv(loop, fd, buf, len, flags);
  return recv(fd, buf, len, flags);
}

int eddy__loop_accept(eddy_loop_t *loop, int lfd, struct sockaddr_storage *ss,
                      socklen_t *len, eddy__accept_fn direct)
{
  if (loop->backend->accept != NULL)
    return loop->backend->accept(loop, lfd, ss, len, direct);
  return direct(lfd, ss, len);
}

void eddy__loop_accept_drop(eddy_loop_t *loop, int lfd)
{
  if (loop->backend->accept_drop != NULL)
    loop->backend->accept_drop(loop, lfd);
}

int eddy__loop_send(eddy_loop_t *loop, int fd, const struct iovec *iov, int n, int flags,
                    eddy__sent_fn fn, void *arg)
{
  if (loop->backend->send == NULL)
    return -ENOTSUP;
  return loop->backend->send(loop, fd, iov, n, flags, fn, arg);
}

int eddy__loop_send_batching(const eddy_loop_t *loop)
{
  return loop->backend->send != NULL && loop->pass_fds > 1;
}

void eddy__loop_send_settle(eddy_loop_t *loop, unsigned id)
{
  if (loop->backend->send_settle != NULL)
    loop->backend->send_settle(loop, id);
}

void eddy__io_forget_kernel(eddy_loop_t *loop)
{
  int fd;

  loop->nfired = 0;
  for (fd = 0; fd < loop->nslots; fd++) {
    struct eddy__slot *s = &loop->slots[fd];
    s->kreg = 0;
    if (s->active)
      io_queue(loop, fd);
  }
}
