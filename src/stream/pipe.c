/* SPDX-License-Identifier: MIT */
/*
 * Pipe streams, and syscalls that must not raise SIGPIPE on fds that have
 * no MSG_NOSIGNAL (pipes, FIFOs, terminals; sendfile on anything).
 *
 * A library must not install a SIGPIPE handler or ignore the signal for
 * the whole process. Instead, around the one write that may raise it, the
 * signal is blocked in the calling thread; if the write fails with EPIPE
 * and SIGPIPE was not already pending before, the signal it raised is
 * pending now and is consumed with a zero-timeout sigtimedwait, then the
 * old mask is restored. The process never sees a SIGPIPE eddy caused, and
 * one that was pending for other reasons is left alone (curl's sigpipe.h
 * and git do the same).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_SENDFILE_H
#include <sys/sendfile.h>
#endif

#include "stream/stream_internal.h"

eddy_stream_t *eddy_stream_new_pipe(eddy_loop_t *loop, int fd,
                                    const eddy_stream_options_t *options)
{
  int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
  eddy_stream_t *s = eddy__stream_alloc(loop, fd, 1, options);
  if (!s)
    return NULL;
  if (fl >= 0) {
    /* Which way the fd goes decides what an error event means (a write
     * end's error is its reader going away) and that reads never run on a
     * write-only end. */
    int acc = fl & O_ACCMODE;
    s->can_read = acc != O_WRONLY;
    s->can_write = acc != O_RDONLY;
  }
  return s;
}

struct sigpipe_guard {
  sigset_t old;
  int was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &g->old);
  sigpending(&pending);
  g->was_pending = sigismember(&pending, SIGPIPE);
}

static void sigpipe_unblock(struct sigpipe_guard *g, int raised_epipe)
{
  int e = errno;
  if (raised_epipe && !g->was_pending) {
    sigset_t set;
    struct timespec zero = {0, 0};
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
  errno = e;
}

ssize_t eddy__pipe_writev(int fd, const struct iovec *iov, int n)
{
  struct sigpipe_guard g;
  ssize_t r;
  sigpipe_block(&g);
  do {
    r = n == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, n);
  } while (r < 0 && errno == EINTR);
  sigpipe_unblock(&g, r < 0 && errno == EPIPE);
  return r;
}

ssize_t eddy__nosigpipe_sendfile(int out_fd, int in_fd, off_t *off, size_t len)
{
#ifdef HAVE_SYS_SENDFILE_H
  struct sigpipe_guard g;
  ssize_t r;
  sigpipe_block(&g);
  do {
    r = sendfile(out_fd, in_fd, off, len);
  } while (r < 0 && errno == EINTR);
  sigpipe_unblock(&g, r < 0 && errno == EPIPE);
  return r;
#else
  (void)out_fd;
  (void)in_fd;
  (void)off;
  (void)len;
  errno = ENOSYS;
  return -1;
#endif
}
