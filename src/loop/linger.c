/* SPDX-License-Identifier: MIT */
/*
 * A closed stream's last words. A TLS stream that closes sends its closing
 * record (close_notify, or the alert saying why it gave up) with one
 * non-blocking try. When the kernel takes only part of it or none (its
 * buffer is full for the moment, EAGAIN, a short count), closing the fd at
 * once would leave the peer a truncated record, or an orderly end in place
 * of the alert. The fd comes here instead: the rest is sent when the
 * socket is writable, then the fd is closed, within a bounded time. The
 * stream itself is closed as before; only its fd lives on a little.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/list.h"
#include "loop/loop_impl.h"
#include "loop/loop_internal.h"

struct last_words {
  struct eddy_list link; /* in loop->lingers */
  eddy_loop_t *loop;
  eddy_timer_t *timer;
  int fd;
  size_t len, off;
  char data[];
};

static void finish(struct last_words *l)
{
  eddy_loop_remove_handler(l->loop, l->fd);
  eddy_timer_free(l->timer);
  /* What the peer sent meanwhile is read first: closing with unread input
   * sends a reset, which may make the peer drop the words just sent. */
  char scratch[4096];
  for (int i = 0; i < 16 && recv(l->fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++)
    ;
  close(l->fd);
  eddy_list_remove(&l->link);
  free(l);
}

static void on_writable(eddy_loop_t *loop, int fd, unsigned events, void *arg)
{
  struct last_words *l = arg;
  ssize_t r;
  do
    r = send(fd, l->data + l->off, l->len - l->off, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  if (r > 0)
    l->off += (size_t)r;
  if (l->off == l->len || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
    finish(l);
}

static void on_timeout(void *arg)
{
  finish(arg);
}

int eddy__loop_linger(eddy_loop_t *loop, int fd, const void *data, size_t len, double seconds)
{
  struct last_words *l = malloc(sizeof *l + len);
  if (l == NULL)
    return -ENOMEM;
  l->loop = loop;
  l->fd = fd;
  l->len = len;
  l->off = 0;
  memcpy(l->data, data, len);
  l->timer = eddy_timer_new(loop, on_timeout, l);
  if (l->timer == NULL || eddy_timer_start(l->timer, seconds, 0) < 0 ||
      eddy_loop_add_handler(loop, fd, EDDY_WRITE, on_writable, l) < 0) {
    eddy_timer_free(l->timer);
    free(l);
    return -ENOMEM;
  }
  eddy_list_insert_tail(&loop->lingers, &l->link);
  return 0;
}

void eddy__lingers_fini(eddy_loop_t *loop)
{
  while (!eddy_list_empty(&loop->lingers))
    finish(eddy_container_of(loop->lingers.next, struct last_words, link));
}
