/* SPDX-License-Identifier: MIT */
/*
 * The accept loop: bounded bursts, retriable errors, and the EMFILE
 * defences described in acceptor.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop_internal.h"
#include "tcp/acceptor.h"

#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 1.0
#define WARN_INTERVAL 1.0
/* Readable, and the loop may accept ahead of us (io_uring). */
#define LISTEN_EVENTS (EDDY_READ | EDDY__ACCEPT)

static int open_spare(void)
{
  return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* The kernel's accept, for eddy__loop_accept() to fall back on (the loop
 * may have accepted ahead of us: on io_uring, on the ring). */
static int accept_fd(int lfd, struct sockaddr_storage *ss, socklen_t *len)
{
#ifdef HAVE_ACCEPT4
  return accept4(lfd, (struct sockaddr *)ss, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  int fd = accept(lfd, (struct sockaddr *)ss, len);
  if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
                  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
#endif
}

static int listening_on(const struct eddy__acceptor *a, int fd)
{
  for (size_t i = 0; i < a->n; i++)
    if (a->fds[i] == fd)
      return 1;
  return 0;
}

static int accepting_allowed(const struct eddy__acceptor *a)
{
  return !a->closed && !a->paused &&
         !(a->backoff != NULL && eddy_timer_active(a->backoff));
}

static void on_readable(eddy_loop_t *loop, int lfd, unsigned events, void *arg);
static void back_off(struct eddy__acceptor *a, int err);

/*
 * Watches the listeners exactly while accepting is allowed. A paused
 * listener has no handler at all: with only its interest cleared, an error
 * or hang-up on it would still wake the loop on every iteration.
 */
static void rearm(struct eddy__acceptor *a)
{
  int want = accepting_allowed(a);
  if (want == a->armed)
    return;
  a->armed = want;
  for (size_t i = 0; i < a->n; i++) {
    if (!want) {
      eddy_loop_remove_handler(a->loop, a->fds[i]);
      continue;
    }
    int rc = eddy_loop_add_handler(a->loop, a->fds[i], LISTEN_EVENTS, on_readable, a);
    if (rc == 0)
      eddy__loop_set_fd_kind(a->loop, a->fds[i], EDDY__FD_LISTEN);
    if (rc < 0 && rc != -EEXIST) { /* -ENOMEM: try again later */
      while (i > 0)
        eddy_loop_remove_handler(a->loop, a->fds[--i]);
      a->armed = 0;
      back_off(a, -rc);
      return;
    }
  }
}

/* One warning a second at most; the rest are counted. */
static void warn(struct eddy__acceptor *a, int err, const char *what)
{
  double now = eddy_loop_time(a->loop);
  if (a->warned_at >= 0 && now - a->warned_at < WARN_INTERVAL) {
    a->suppressed++;
    return;
  }
  eddy__log(a->loop, EDDY_LOG_WARNING,
            "accept failed: %s; %s (%lu similar warnings suppressed)",
            strerror(err), what, a->suppressed);
  a->warned_at = now;
  a->suppressed = 0;
}

static void back_off(struct eddy__acceptor *a, int err)
{
  char what[64];
  snprintf(what, sizeof what, "pausing accepts for %.1f s", a->backoff_delay);
  warn(a, err, what);
  eddy_timer_start(a->backoff, a->backoff_delay, 0);
  a->backoff_delay *= 2;
  if (a->backoff_delay > BACKOFF_MAX)
    a->backoff_delay = BACKOFF_MAX;
  rearm(a);
}

static void on_backoff_done(void *arg)
{
  struct eddy__acceptor *a = arg;
  if (a->spare_fd < 0)
    a->spare_fd = open_spare();
  rearm(a);
}

/*
 * Out of fds: gives up the spare to accept and close what is pending, so
 * those clients see a close now rather than a hang, then takes the spare
 * back. Returns 0 if the spare could not be used (the caller backs off).
 */
static int shed(struct eddy__acceptor *a, int lfd, int err)
{
  if (a->spare_fd < 0)
    return 0;
  close(a->spare_fd);
  a->spare_fd = -1;
  unsigned long count = 0;
  for (int i = 0; i < EDDY__ACCEPT_BURST; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept_fd(lfd, &ss, &len);
    if (fd >= 0) {
      close(fd);
      count++;
    } else if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) {
      break;
    }
  }
  a->shed += count;
  a->spare_fd = open_spare();
  char what[80];
  snprintf(what, sizeof what, "closed %lu pending connection(s) unserved",
           count);
  warn(a, err, what);
  return a->spare_fd >= 0;
}

static void on_readable(eddy_loop_t *loop, int lfd, unsigned events, void *arg)
{
  struct eddy__acceptor *a = arg;
  a->ops->hold(a->owner);
  for (int i = 0; i < EDDY__ACCEPT_BURST; i++) {
    if (a->closed || a->paused || !a->armed || !listening_on(a, lfd))
      break;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = eddy__loop_accept(loop, lfd, &ss, &len, accept_fd);
    if (fd >= 0) {
      a->backoff_delay = BACKOFF_MIN;
      a->ops->accepted(a->owner, fd, (struct sockaddr *)&ss, len);
      continue;
    }
    int err = errno;
    if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM)
      continue;
    if (err == EAGAIN || err == EWOULDBLOCK)
      break;
    a->errors++;
    if ((err == EMFILE || err == ENFILE) && shed(a, lfd, err))
      break;
    back_off(a, err);
    break;
  }
  a->ops->release(a->owner);
}

void eddy__acceptor_init(struct eddy__acceptor *a, eddy_loop_t *loop,
                         const struct eddy__acceptor_ops *ops, void *owner)
{
  memset(a, 0, sizeof *a);
  a->loop = loop;
  a->ops = ops;
  a->owner = owner;
  a->spare_fd = -1;
  a->armed = 1; /* vacuously: there are no fds yet */
  a->backoff_delay = BACKOFF_MIN;
  a->warned_at = -1;
}

/* A listening socket, made non-blocking and close-on-exec. */
static int prepare_fd(int fd)
{
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return -EBADF;
  int listening = 0;
  socklen_t len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
    return -errno;
  if (!listening)
    return -EINVAL;
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

static int add_checked(struct eddy__acceptor *a, const int *fds, size_t n)
{
  if (a->closed)
    return EDDY_EUSAGE;
  for (size_t i = 0; i < n; i++) {
    int rc = prepare_fd(fds[i]);
    if (rc < 0)
      return rc;
  }
  if (a->backoff == NULL) {
    a->backoff = eddy_timer_new(a->loop, on_backoff_done, a);
    if (a->backoff == NULL)
      return -ENOMEM;
    a->spare_fd = open_spare(); /* best effort: without it we back off */
  }
  if (a->n + n > a->cap) {
    size_t cap = a->cap ? a->cap : 4;
    while (cap < a->n + n)
      cap *= 2;
    int *v = realloc(a->fds, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    a->fds = v;
    a->cap = cap;
  }
  for (size_t i = 0; a->armed && i < n; i++) {
    int rc = eddy_loop_add_handler(a->loop, fds[i], LISTEN_EVENTS, on_readable, a);
    eddy__loop_set_fd_kind(a->loop, fds[i], EDDY__FD_LISTEN);
    if (rc < 0) {
      while (i > 0)
        eddy_loop_remove_handler(a->loop, fds[--i]);
      return rc;
    }
  }
  memcpy(a->fds + a->n, fds, n * sizeof *fds);
  a->n += n;
  return 0;
}

int eddy__acceptor_add(struct eddy__acceptor *a, const int *fds, size_t n)
{
  int rc = add_checked(a, fds, n);
  if (rc < 0)
    for (size_t i = 0; i < n; i++)
      if (fds[i] >= 0)
        close(fds[i]);
  return rc;
}

void eddy__acceptor_pause(struct eddy__acceptor *a, int paused)
{
  a->paused = paused != 0;
  rearm(a);
}

void eddy__acceptor_close(struct eddy__acceptor *a)
{
  if (a->closed)
    return;
  a->closed = 1;
  for (size_t i = 0; i < a->n; i++) {
    if (a->armed)
      eddy_loop_remove_handler(a->loop, a->fds[i]);
    eddy__loop_accept_drop(a->loop, a->fds[i]); /* as the backlog goes */
    close(a->fds[i]);
  }
  free(a->fds);
  a->fds = NULL;
  a->n = a->cap = 0;
  eddy_timer_free(a->backoff);
  a->backoff = NULL;
  if (a->spare_fd >= 0)
    close(a->spare_fd);
  a->spare_fd = -1;
}
