/* SPDX-License-Identifier: MIT */
/*
 * Signals, delivered on the loop's thread as ordinary fd events.
 *
 * Linux: the signal is blocked in the calling thread and read from a
 * signalfd, so no code ever runs in signal context. Elsewhere (or built
 * with -DEDDY_NO_SIGNALFD) a handler writes the signal number into a
 * self-pipe; the last loop to claim a signal gets it.
 *
 * A signal is enabled while it has a user handler or a pending
 * eddy_loop_wait_signal() future, and disabled (previous mask or
 * disposition restored) as soon as it has neither.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eddy/future.h"
#include "loop/loop_impl.h"

#if defined(HAVE_SYS_SIGNALFD_H) && defined(HAVE_SIGNALFD) && !defined(EDDY_NO_SIGNALFD)
#define USE_SIGNALFD 1
#include <sys/signalfd.h>
#endif

#ifndef NSIG
#define NSIG 65
#endif

struct sig_entry {
  eddy_signal_fn cb;
  void *arg;
  unsigned char user;        /* a handler from eddy_loop_add_signal() */
  unsigned char enabled;
  unsigned char was_blocked; /* the mask to restore */
  struct eddy_list waiters;  /* struct waiter, from wait_signal() */
#ifndef USE_SIGNALFD
  struct sigaction old;      /* the disposition to restore */
#endif
};

struct eddy__sigs {
  int rfd, wfd; /* the signalfd (rfd == wfd), or the self-pipe */
  sigset_t mask;
  struct sig_entry e[NSIG];
};

struct waiter {
  struct eddy_list link;
  eddy_loop_t *loop;
  eddy_future_t *f;
  int signo;
};

static int sig_valid(int signo)
{
  if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
    return 0;
#ifdef SIGRTMIN
  /* glibc keeps the first real-time signals for itself. */
  if (signo > SIGSYS && signo < SIGRTMIN)
    return 0;
#endif
  return 1;
}

static void sig_on_read(eddy_loop_t *loop, int fd, unsigned events, void *arg);

/* ---- the kernel side: signalfd or self-pipe ------------------------------ */

#ifdef USE_SIGNALFD

static int sig_open(eddy_loop_t *loop, struct eddy__sigs *s)
{
  (void)loop;
  s->rfd = s->wfd = -1;
  return 0;
}

static void sig_close(eddy_loop_t *loop, struct eddy__sigs *s)
{
  if (s->rfd < 0)
    return;
  eddy_loop_remove_handler(loop, s->rfd);
  close(s->rfd);
  s->rfd = s->wfd = -1;
}

/* Points the signalfd at the current mask, creating it on first use. */
static int sig_sync(eddy_loop_t *loop, struct eddy__sigs *s)
{
  int fd, rc;

  if (sigisemptyset(&s->mask)) {
    sig_close(loop, s);
    return 0;
  }
  fd = signalfd(s->rfd, &s->mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (s->rfd >= 0)
    return 0;
  rc = eddy_loop_add_handler(loop, fd, EDDY_READ, sig_on_read, s);
  eddy__loop_set_fd_kind(loop, fd, EDDY__FD_INTERNAL);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  s->rfd = s->wfd = fd;
  return 0;
}

static int sig_kernel_on(eddy_loop_t *loop, struct eddy__sigs *s, int signo)
{
  struct sig_entry *e = &s->e[signo];
  sigset_t one, old;
  int rc;

  sigemptyset(&one);
  sigaddset(&one, signo);
  rc = pthread_sigmask(SIG_BLOCK, &one, &old);
  if (rc != 0)
    return -rc;
  e->was_blocked = (unsigned char)sigismember(&old, signo);
  sigaddset(&s->mask, signo);
  rc = sig_sync(loop, s);
  if (rc < 0) {
    sigdelset(&s->mask, signo);
    if (!e->was_blocked)
      pthread_sigmask(SIG_UNBLOCK, &one, NULL);
  }
  return rc;
}

static void sig_kernel_off(eddy_loop_t *loop, struct eddy__sigs *s, int signo)
{
  static const struct timespec zero = { 0, 0 };
  sigset_t one;

  sigdelset(&s->mask, signo);
  sig_sync(loop, s);
  sigemptyset(&one);
  sigaddset(&one, signo);
  /* An instance still pending would hit the default action (often death)
   * the moment it is unblocked: consume it while it is still blocked. */
  while (sigtimedwait(&one, NULL, &zero) == signo)
    ;
  if (!s->e[signo].was_blocked)
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

static int sig_read(struct eddy__sigs *s, int *signos, int max)
{
  struct signalfd_siginfo si[8];
  ssize_t n;
  int i, k = 0;

  n = read(s->rfd, si, sizeof si);
  for (i = 0; n > 0 && i < (int)(n / (ssize_t)sizeof si[0]) && k < max; i++)
    signos[k++] = (int)si[i].ssi_signo;
  return k;
}

static int sig_reopen(eddy_loop_t *loop, struct eddy__sigs *s)
{
  /* A signalfd keeps waking the process that created it: the child needs
   * one of its own (its signal mask was inherited as it is). */
  sig_close(loop, s);
  return sig_sync(loop, s);
}

#else /* the self-pipe */

/* The write end for each signal, plus one (0: none). Written by the loop
 * thread before the handler is installed, read by the handler. */
static volatile sig_atomic_t sig_pipe[NSIG];

static void sig_handler(int signo)
{
  int saved = errno, fd = (int)sig_pipe[signo] - 1;
  unsigned char b = (unsigned char)signo;

  if (fd >= 0 && write(fd, &b, 1) < 0) {
    /* Full pipe: a wakeup is pending anyway and deliveries coalesce. */
  }
  errno = saved;
}

static int sig_open(eddy_loop_t *loop, struct eddy__sigs *s)
{
  int fds[2], rc;

  rc = eddy__pipe(fds);
  if (rc < 0)
    return rc;
  rc = eddy_loop_add_handler(loop, fds[0], EDDY_READ, sig_on_read, s);
  eddy__loop_set_fd_kind(loop, fds[0], EDDY__FD_INTERNAL);
  if (rc < 0) {
    close(fds[0]);
    close(fds[1]);
    return rc;
  }
  s->rfd = fds[0];
  s->wfd = fds[1];
  return 0;
}

static void sig_close(eddy_loop_t *loop, struct eddy__sigs *s)
{
  if (s->rfd < 0)
    return;
  eddy_loop_remove_handler(loop, s->rfd);
  close(s->rfd);
  close(s->wfd);
  s->rfd = s->wfd = -1;
}

static int sig_kernel_on(eddy_loop_t *loop, struct eddy__sigs *s, int signo)
{
  struct sig_entry *e = &s->e[signo];
  struct sigaction sa;

  (void)loop;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sig_handler;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  sig_pipe[signo] = s->wfd + 1;
  if (sigaction(signo, &sa, &e->old) < 0) {
    sig_pipe[signo] = 0;
    return -errno;
  }
  e->was_blocked = 0;
  sigaddset(&s->mask, signo);
  return 0;
}

static void sig_kernel_off(eddy_loop_t *loop, struct eddy__sigs *s, int signo)
{
  (void)loop;
  sigaction(signo, &s->e[signo].old, NULL);
  sig_pipe[signo] = 0;
  sigdelset(&s->mask, signo);
}

static int sig_read(struct eddy__sigs *s, int *signos, int max)
{
  unsigned char b[64];
  ssize_t n = read(s->rfd, b, sizeof b);
  int i, k = 0;

  for (i = 0; i < n && k < max; i++)
    signos[k++] = b[i];
  return k;
}

static int sig_reopen(eddy_loop_t *loop, struct eddy__sigs *s)
{
  int signo, rc;

  /* The pipe is shared with the parent: the child's signals would wake
   * the parent's loop. */
  sig_close(loop, s);
  rc = sig_open(loop, s);
  for (signo = 1; rc == 0 && signo < NSIG; signo++)
    if (s->e[signo].enabled)
      sig_pipe[signo] = s->wfd + 1;
  return rc;
}

#endif

/* ---- per-loop bookkeeping ------------------------------------------------ */

static struct eddy__sigs *sigs_get(eddy_loop_t *loop)
{
  struct eddy__sigs *s = loop->sigs;
  int i;

  if (s != NULL)
    return s;
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  sigemptyset(&s->mask);
  for (i = 0; i < NSIG; i++)
    eddy_list_init(&s->e[i].waiters);
  if (sig_open(loop, s) < 0) {
    free(s);
    return NULL;
  }
  loop->sigs = s;
  return s;
}

static int sig_enable(eddy_loop_t *loop, struct eddy__sigs *s, int signo)
{
  int rc;

  if (s->e[signo].enabled)
    return 0;
  rc = sig_kernel_on(loop, s, signo);
  if (rc == 0)
    s->e[signo].enabled = 1;
  return rc;
}

static void sig_maybe_disable(eddy_loop_t *loop, struct eddy__sigs *s, int signo)
{
  struct sig_entry *e = &s->e[signo];

  if (e->enabled && !e->user && eddy_list_empty(&e->waiters)) {
    e->enabled = 0;
    sig_kernel_off(loop, s, signo);
  }
}

/* Cancels the future if still pending (the loop is going), so that what
 * waits on it releases its references. */
static void waiter_free(struct waiter *w)
{
  eddy_list_remove(&w->link);
  eddy_future_on_cancel(w->f, NULL, NULL);
  eddy_future_cancel(w->f);
  eddy_future_unref(w->f);
  free(w);
}

static void sig_dispatch(eddy_loop_t *loop, struct eddy__sigs *s, int signo)
{
  struct sig_entry *e;
  struct eddy_list batch;

  if (signo <= 0 || signo >= NSIG || !s->e[signo].enabled)
    return;
  e = &s->e[signo];
  /* Waiters added by the handler wait for the next delivery. */
  eddy_list_init(&batch);
  if (!eddy_list_empty(&e->waiters)) {
    batch = e->waiters;
    batch.next->prev = batch.prev->next = &batch;
    eddy_list_init(&e->waiters);
  }
  if (e->user)
    e->cb(loop, signo, e->arg);
  while (!eddy_list_empty(&batch)) {
    struct waiter *w = eddy_container_of(batch.next, struct waiter, link);
    eddy_future_resolve_bytes(w->f, NULL, (size_t)signo, NULL);
    waiter_free(w);
  }
  sig_maybe_disable(loop, s, signo);
}

static void sig_on_read(eddy_loop_t *loop, int fd, unsigned events, void *arg)
{
  struct eddy__sigs *s = arg;
  int signos[64], n, i;

  (void)fd;
  (void)events;
  /* Read first, dispatch after: a handler may close the fd. */
  n = sig_read(s, signos, 64);
  for (i = 0; i < n; i++)
    sig_dispatch(loop, s, signos[i]);
}

int eddy_loop_add_signal(eddy_loop_t *loop, int signo, eddy_signal_fn cb,
                         void *arg)
{
  struct eddy__sigs *s;
  int rc;

  if (loop == NULL || cb == NULL || !sig_valid(signo))
    return -EINVAL;
  if ((rc = eddy__loop_check_fork(loop)) < 0)
    return rc;
  s = sigs_get(loop);
  if (s == NULL)
    return -ENOMEM;
  rc = sig_enable(loop, s, signo);
  if (rc < 0)
    return rc;
  s->e[signo].cb = cb;
  s->e[signo].arg = arg;
  s->e[signo].user = 1;
  return 0;
}

int eddy_loop_remove_signal(eddy_loop_t *loop, int signo)
{
  struct eddy__sigs *s = loop != NULL ? loop->sigs : NULL;

  if (s == NULL || !sig_valid(signo) || !s->e[signo].user)
    return -ENOENT;
  eddy__loop_check_fork(loop);
  s->e[signo].user = 0;
  s->e[signo].cb = NULL;
  s->e[signo].arg = NULL;
  sig_maybe_disable(loop, s, signo);
  return 0;
}

static void waiter_cancel(eddy_future_t *f, void *arg)
{
  struct waiter *w = arg;
  eddy_loop_t *loop = w->loop;
  int signo = w->signo;

  (void)f;
  waiter_free(w); /* the canceller holds its own reference */
  sig_maybe_disable(loop, loop->sigs, signo);
}

eddy_future_t *eddy_loop_wait_signal(eddy_loop_t *loop, int signo)
{
  struct eddy__sigs *s;
  struct waiter *w;
  int rc;

  if (loop == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (!sig_valid(signo))
    return eddy_future_rejected(loop, -EINVAL, "signal %d cannot be caught", signo);
  eddy__loop_check_fork(loop);
  s = sigs_get(loop);
  w = malloc(sizeof *w);
  if (s == NULL || w == NULL || (w->f = eddy_future_new(loop)) == NULL) {
    free(w);
    errno = ENOMEM;
    return NULL;
  }
  rc = sig_enable(loop, s, signo);
  if (rc < 0) {
    eddy_future_t *f = w->f;
    free(w);
    eddy_future_reject(f, rc, "cannot catch signal %d", signo);
    return f;
  }
  w->loop = loop;
  w->signo = signo;
  eddy_list_insert_tail(&s->e[signo].waiters, &w->link);
  eddy_future_on_cancel(w->f, waiter_cancel, w);
  return eddy_future_ref(w->f);
}

void eddy__signals_fini(eddy_loop_t *loop)
{
  struct eddy__sigs *s = loop->sigs;
  int signo;

  if (s == NULL)
    return;
  for (signo = 1; signo < NSIG; signo++) {
    struct sig_entry *e = &s->e[signo];
    while (!eddy_list_empty(&e->waiters))
      waiter_free(eddy_container_of(e->waiters.next, struct waiter, link));
    e->user = 0;
    sig_maybe_disable(loop, s, signo);
  }
  sig_close(loop, s);
  free(s);
  loop->sigs = NULL;
}

int eddy__signals_after_fork(eddy_loop_t *loop)
{
  return loop->sigs != NULL ? sig_reopen(loop, loop->sigs) : 0;
}
