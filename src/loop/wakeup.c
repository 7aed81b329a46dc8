/* SPDX-License-Identifier: MIT */
/*
 * The cross-thread queue behind eddy_loop_call_soon_threadsafe() and the
 * thread pool's results: a mutex-protected FIFO plus one eventfd (a pipe
 * where there is none) in the loop's fd set.
 *
 * Wakeups coalesce: only the post that finds the queue idle (tspending 0)
 * writes to the fd, and the loop clears the flag when it takes the queue.
 * The loop drains the fd before taking the queue, so a post racing with the
 * drain always leaves either its node in the taken batch or a fresh write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

#include "loop/loop_impl.h"

int eddy__pipe(int fds[2])
{
#ifdef HAVE_PIPE2
  return pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0 ? 0 : -errno;
#else
  int i;

  if (pipe(fds) < 0)
    return -errno;
  for (i = 0; i < 2; i++) {
    if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) < 0) {
      int err = -errno;
      close(fds[0]);
      close(fds[1]);
      return err;
    }
  }
  return 0;
#endif
}

struct soon_ts {
  struct eddy__tsnode node;
  eddy_callback_fn cb;
  void *arg;
};

static void soon_ts_run(eddy_loop_t *loop, struct eddy__tsnode *node, int drop)
{
  struct soon_ts *s = (struct soon_ts *)node;
  eddy_callback_fn cb = s->cb;
  void *arg = s->arg;

  (void)loop;
  free(s);
  if (!drop)
    cb(arg);
}

static void wake_write(eddy_loop_t *loop)
{
  uint64_t one = 1;
  ssize_t n;

  /* EAGAIN means the fd is already readable, which is all we want. */
  do
    n = write(loop->wake_wfd, &one, loop->wake_wfd == loop->wake_rfd ? sizeof one : 1);
  while (n < 0 && errno == EINTR);
}

static void wake_drain(eddy_loop_t *loop)
{
  char buf[64];
  ssize_t n;

  do
    n = read(loop->wake_rfd, buf, sizeof buf);
  while (n > 0 || (n < 0 && errno == EINTR));
}

static void wake_on_read(eddy_loop_t *loop, int fd, unsigned events, void *arg)
{
  struct eddy__tsnode *n, *next;

  (void)fd;
  (void)events;
  (void)arg;
  wake_drain(loop);
  pthread_mutex_lock(&loop->tslock);
  n = loop->tshead;
  loop->tshead = NULL;
  loop->tstail = &loop->tshead;
  loop->tspending = 0;
  pthread_mutex_unlock(&loop->tslock);
  for (; n != NULL; n = next) {
    next = n->next;
    n->run(loop, n, 0);
  }
}

static int wake_open(eddy_loop_t *loop)
{
  int fds[2], rc;

#if defined(HAVE_SYS_EVENTFD_H) && defined(HAVE_EVENTFD)
  fds[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fds[0] >= 0)
    fds[1] = fds[0];
  else if ((rc = eddy__pipe(fds)) < 0)
    return rc;
#else
  if ((rc = eddy__pipe(fds)) < 0)
    return rc;
#endif
  loop->wake_rfd = fds[0];
  loop->wake_wfd = fds[1];
  rc = eddy_loop_add_handler(loop, fds[0], EDDY_READ, wake_on_read, NULL);
  eddy__loop_set_fd_kind(loop, fds[0], EDDY__FD_INTERNAL);
  if (rc < 0) {
    close(fds[0]);
    if (fds[1] != fds[0])
      close(fds[1]);
    loop->wake_rfd = loop->wake_wfd = -1;
  }
  return rc;
}

static void wake_close(eddy_loop_t *loop)
{
  if (loop->wake_rfd < 0)
    return;
  eddy_loop_remove_handler(loop, loop->wake_rfd);
  close(loop->wake_rfd);
  if (loop->wake_wfd != loop->wake_rfd)
    close(loop->wake_wfd);
  loop->wake_rfd = loop->wake_wfd = -1;
}

int eddy__wakeup_init(eddy_loop_t *loop)
{
  int rc;

  loop->tshead = NULL;
  loop->tstail = &loop->tshead;
  loop->tspending = 0;
  loop->wake_rfd = loop->wake_wfd = -1;
  rc = pthread_mutex_init(&loop->tslock, NULL);
  if (rc != 0)
    return -rc;
  rc = wake_open(loop);
  if (rc < 0)
    pthread_mutex_destroy(&loop->tslock);
  return rc;
}

void eddy__wakeup_drop(eddy_loop_t *loop)
{
  struct eddy__tsnode *n = loop->tshead, *next;

  loop->tshead = NULL;
  loop->tstail = &loop->tshead;
  for (; n != NULL; n = next) {
    next = n->next;
    n->run(loop, n, 1);
  }
}

void eddy__wakeup_fini(eddy_loop_t *loop)
{
  wake_close(loop);
  eddy__wakeup_drop(loop);
  pthread_mutex_destroy(&loop->tslock);
}

int eddy__wakeup_after_fork(eddy_loop_t *loop)
{
  int rc;

  /* Another thread may have held the lock at fork time; in the child that
   * thread is gone and nobody would ever release it. */
  pthread_mutex_init(&loop->tslock, NULL);
  wake_close(loop);
  rc = wake_open(loop);
  if (rc == 0 && loop->tshead != NULL) {
    loop->tspending = 1;
    wake_write(loop);
  }
  return rc;
}

void eddy__loop_post(eddy_loop_t *loop, struct eddy__tsnode *node)
{
  int wake;

  node->next = NULL;
  pthread_mutex_lock(&loop->tslock);
  *loop->tstail = node;
  loop->tstail = &node->next;
  wake = !loop->tspending;
  loop->tspending = 1;
  pthread_mutex_unlock(&loop->tslock);
  if (wake)
    wake_write(loop);
}

int eddy_loop_call_soon_threadsafe(eddy_loop_t *loop, eddy_callback_fn cb,
                                   void *arg)
{
  struct soon_ts *s;

  if (loop == NULL || cb == NULL)
    return -EINVAL;
  s = malloc(sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->node.run = soon_ts_run;
  s->cb = cb;
  s->arg = arg;
  eddy__loop_post(loop, &s->node);
  return 0;
}
