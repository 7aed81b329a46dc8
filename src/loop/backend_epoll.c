/* SPDX-License-Identifier: MIT */
/*
 * The epoll backend: level-triggered, one epoll_wait per iteration.
 *
 * The fd table (io.c) decides what to register; this file only speaks to the
 * kernel. ctl copes with a kernel that disagrees with our bookkeeping, which
 * happens when an fd was closed and reopened between iterations: closing
 * drops the registration behind our back (ADD then sees no EEXIST, MOD sees
 * ENOENT), and a dup'ed descriptor keeps one alive (ADD sees EEXIST).
 */
#ifdef EDDY_HAVE_EPOLL
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop/loop_impl.h"

/* Events taken per epoll_wait: more wait for the next iteration, which is
 * fair to every fd because epoll rotates its ready list. */
#define EP_MAX_EVENTS 1024

static uint32_t ep_mask(unsigned mask)
{
  return ((mask & EDDY_READ) ? EPOLLIN : 0) | ((mask & EDDY_WRITE) ? EPOLLOUT : 0);
}

static int ep_open(eddy_loop_t *loop)
{
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  return loop->epfd < 0 ? -errno : 0;
}

static int ep_init(eddy_loop_t *loop)
{
  loop->evcap = 64;
  loop->evbuf = malloc((size_t)loop->evcap * sizeof(struct epoll_event));
  if (loop->evbuf == NULL)
    return -ENOMEM;
  return ep_open(loop);
}

static void ep_fini(eddy_loop_t *loop)
{
  if (loop->epfd >= 0)
    close(loop->epfd);
  loop->epfd = -1;
  free(loop->evbuf);
  loop->evbuf = NULL;
}

static int ep_reinit(eddy_loop_t *loop)
{
  /* The child shares the parent's epoll set: touching it would change the
   * parent's registrations, so the child gets a set of its own. */
  if (loop->epfd >= 0)
    close(loop->epfd);
  return ep_open(loop);
}

static int ep_ctl(eddy_loop_t *loop, int fd, enum eddy__ctl_op op, unsigned mask)
{
  struct epoll_event ev = { .events = ep_mask(mask), .data.fd = fd };
  int kop = op == EDDY__CTL_ADD ? EPOLL_CTL_ADD
          : op == EDDY__CTL_MOD ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;

  if (epoll_ctl(loop->epfd, kop, fd, &ev) == 0)
    return 0;
  if (op == EDDY__CTL_ADD && errno == EEXIST)
    kop = EPOLL_CTL_MOD;
  else if (op == EDDY__CTL_MOD && errno == ENOENT)
    kop = EPOLL_CTL_ADD;
  else if (op == EDDY__CTL_DEL && (errno == ENOENT || errno == EBADF))
    return 0; /* already gone with the close */
  else
    return -errno;
  return epoll_ctl(loop->epfd, kop, fd, &ev) == 0 ? 0 : -errno;
}

static int ep_wait(eddy_loop_t *loop, int timeout_ms)
{
  struct epoll_event *ev = loop->evbuf;
  int n, i;

  n = epoll_wait(loop->epfd, ev, loop->evcap, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  for (i = 0; i < n; i++) {
    unsigned e = 0;
    if (ev[i].events & EPOLLIN)
      e |= EDDY_READ;
    if (ev[i].events & EPOLLOUT)
      e |= EDDY_WRITE;
    if (ev[i].events & (EPOLLERR | EPOLLHUP))
      e |= EDDY_ERROR;
    eddy__io_fire(loop, ev[i].data.fd, e);
  }
  /* A full buffer suggests a busy loop: take more next time. */
  if (n == loop->evcap && loop->evcap < EP_MAX_EVENTS) {
    void *p = realloc(loop->evbuf, 2 * (size_t)loop->evcap * sizeof *ev);
    if (p != NULL) {
      loop->evbuf = p;
      loop->evcap *= 2;
    }
  }
  return 0;
}

const struct eddy__backend eddy__backend_epoll = {
  "epoll", ep_init, ep_fini, ep_reinit, ep_ctl, ep_wait, NULL, NULL, NULL,
  EDDY_READ | EDDY_WRITE, NULL, NULL, NULL,
};
#endif /* EDDY_HAVE_EPOLL */
