/* SPDX-License-Identifier: MIT */
/*
 * The portable poll(2) backend. It keeps a dense pollfd array and its own
 * map from fd to index in it (pidx: kept here rather than in the fd table,
 * which every backend pays for), so changes are O(1) and removal swaps the
 * last entry into the hole.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "loop/loop_impl.h"

static short pl_mask(unsigned mask)
{
  return (short)(((mask & EDDY_READ) ? POLLIN : 0) | ((mask & EDDY_WRITE) ? POLLOUT : 0));
}

static int pl_init(eddy_loop_t *loop)
{
  loop->pfds = NULL;
  loop->npfds = loop->cappfds = 0;
  loop->pidx = NULL;
  loop->npidx = 0;
  return 0;
}

static void pl_fini(eddy_loop_t *loop)
{
  free(loop->pfds);
  free(loop->pidx);
  loop->pfds = NULL;
  loop->npfds = loop->cappfds = 0;
  loop->pidx = NULL;
  loop->npidx = 0;
}

static int pl_index(const eddy_loop_t *loop, int fd)
{
  return fd < loop->npidx ? loop->pidx[fd] : -1;
}

static int pl_reinit(eddy_loop_t *loop)
{
  int i;

  /* Nothing lives in the kernel; forget the array so that re-adding works. */
  for (i = 0; i < loop->npfds; i++)
    loop->pidx[loop->pfds[i].fd] = -1;
  loop->npfds = 0;
  return 0;
}

static int pl_add(eddy_loop_t *loop, int fd, unsigned mask)
{
  if (fd >= loop->npidx) {
    int n = loop->npidx ? loop->npidx : 64, i;
    int *p;
    while (n <= fd)
      n += n / 2;
    if ((p = realloc(loop->pidx, (size_t)n * sizeof *p)) == NULL)
      return -ENOMEM;
    for (i = loop->npidx; i < n; i++)
      p[i] = -1;
    loop->pidx = p;
    loop->npidx = n;
  }
  if (loop->npfds == loop->cappfds) {
    int cap = loop->cappfds ? 2 * loop->cappfds : 16;
    struct pollfd *p = realloc(loop->pfds, (size_t)cap * sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    loop->pfds = p;
    loop->cappfds = cap;
  }
  loop->pfds[loop->npfds].fd = fd;
  loop->pfds[loop->npfds].events = pl_mask(mask);
  loop->pfds[loop->npfds].revents = 0;
  loop->pidx[fd] = loop->npfds++;
  return 0;
}

static int pl_ctl(eddy_loop_t *loop, int fd, enum eddy__ctl_op op, unsigned mask)
{
  int i = pl_index(loop, fd);

  if (i < 0)
    return op == EDDY__CTL_DEL ? 0 : pl_add(loop, fd, mask);
  if (op != EDDY__CTL_DEL) {
    loop->pfds[i].events = pl_mask(mask);
    return 0;
  }
  loop->pidx[fd] = -1;
  if (i != --loop->npfds) {
    loop->pfds[i] = loop->pfds[loop->npfds];
    loop->pidx[loop->pfds[i].fd] = i;
  }
  return 0;
}

static int pl_wait(eddy_loop_t *loop, int timeout_ms)
{
  int n, i;

  n = poll(loop->pfds, (nfds_t)loop->npfds, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  for (i = 0; i < loop->npfds && n > 0; i++) {
    short r = loop->pfds[i].revents;
    unsigned e = 0;
    if (r == 0)
      continue;
    n--;
    if (r & POLLIN)
      e |= EDDY_READ;
    if (r & POLLOUT)
      e |= EDDY_WRITE;
    if (r & (POLLERR | POLLHUP | POLLNVAL))
      e |= EDDY_ERROR;
    eddy__io_fire(loop, loop->pfds[i].fd, e);
  }
  return 0;
}

const struct eddy__backend eddy__backend_poll = {
  "poll", pl_init, pl_fini, pl_reinit, pl_ctl, pl_wait, NULL, NULL, NULL,
  EDDY_READ | EDDY_WRITE, NULL, NULL, NULL,
};
