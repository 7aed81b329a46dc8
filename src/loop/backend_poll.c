/* SPDX-License-Identifier: MIT */
/*
 * The portable poll(2) backend. It keeps a dense pollfd array; each slot of
 * the fd table remembers its index (bidx), so changes are O(1) and removal
 * swaps the last entry into the hole.
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
  return 0;
}

static void pl_fini(eddy_loop_t *loop)
{
  free(loop->pfds);
  loop->pfds = NULL;
  loop->npfds = loop->cappfds = 0;
}

static int pl_reinit(eddy_loop_t *loop)
{
  int i;

  /* Nothing lives in the kernel; forget the array so that re-adding works. */
  for (i = 0; i < loop->npfds; i++)
    loop->slots[loop->pfds[i].fd].bidx = -1;
  loop->npfds = 0;
  return 0;
}

static int pl_add(eddy_loop_t *loop, int fd, unsigned mask)
{
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
  loop->slots[fd].bidx = loop->npfds++;
  return 0;
}

static int pl_ctl(eddy_loop_t *loop, int fd, enum eddy__ctl_op op, unsigned mask)
{
  struct eddy__slot *s = &loop->slots[fd];
  int i = s->bidx;

  if (i < 0)
    return op == EDDY__CTL_DEL ? 0 : pl_add(loop, fd, mask);
  if (op != EDDY__CTL_DEL) {
    loop->pfds[i].events = pl_mask(mask);
    return 0;
  }
  s->bidx = -1;
  if (i != --loop->npfds) {
    loop->pfds[i] = loop->pfds[loop->npfds];
    loop->slots[loop->pfds[i].fd].bidx = i;
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
  "poll", pl_init, pl_fini, pl_reinit, pl_ctl, pl_wait,
};
