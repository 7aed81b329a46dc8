/* SPDX-License-Identifier: MIT */
/*
 * Pre-fork worker processes (Tornado's fork_processes), with the fixes of
 * tornado.md §4.15: SIGTERM and SIGINT reach the workers, workers die with
 * the supervisor (PR_SET_PDEATHSIG), and a supervisor that gives up stops
 * its workers before it exits.
 *
 * State. The task id and the table of workers are process-wide by nature
 * (a process forks once, and a signal handler must find the workers), so
 * they are statics here rather than fields of an object.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "eddy/tcp.h"

#define DEFAULT_MAX_RESTARTS 100
#define RESTART_FAILURE_DELAY 1 /* seconds to wait when a re-fork fails */

static int task_id = -1;

/* The supervisor's view of its workers: pid by task id (0: not running). */
static volatile pid_t *workers;
static int nworkers;
/* The signal the supervisor was asked to stop with, or 0. */
static volatile sig_atomic_t stopping;

int eddy_task_id(void)
{
  return task_id;
}

int eddy_cpu_count(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 ? (int)n : 1;
}

/* Async-signal-safe. */
static void kill_workers(int signo)
{
  for (int i = 0; i < nworkers; i++)
    if (workers[i] > 0)
      kill(workers[i], signo);
}

/* The supervisor's SIGTERM/SIGINT handler: passes the signal on. */
static void forward_signal(int signo)
{
  stopping = signo;
  kill_workers(signo);
}

static void stop_signals(sigset_t *set)
{
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
}

/* In a new worker: back to the caller's signal setup, tied to the parent. */
static void become_worker(int id, pid_t parent, const sigset_t *mask,
                          const struct sigaction old[2])
{
  task_id = id;
  sigaction(SIGTERM, &old[0], NULL);
  sigaction(SIGINT, &old[1], NULL);
  sigprocmask(SIG_SETMASK, mask, NULL);
  free((void *)workers);
  workers = NULL;
  nworkers = 0;
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  if (getppid() != parent) /* the parent died before prctl */
    _exit(1);
}

static const char *describe(int status, char *buf, size_t len)
{
  if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
  else
    snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
  return buf;
}

/* The supervisor's loop: never returns in the parent; returns the task id
 * in a restarted worker. */
static int supervise(int max_restarts, pid_t self, const sigset_t *mask,
                     const struct sigaction old[2])
{
  int restarts = 0, running = nworkers, failed = 0;
  while (running > 0) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR)
        continue;
      break; /* ECHILD: nobody left to wait for */
    }
    int id = -1;
    for (int i = 0; i < nworkers; i++)
      if (workers[i] == pid)
        id = i;
    if (id < 0)
      continue; /* not one of ours */
    workers[id] = 0;
    running--;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (stopping) {
      /* Asked to stop: a worker ended by the signal we passed on is fine. */
      if (!clean && !(WIFSIGNALED(status) && WTERMSIG(status) == stopping))
        failed = 1;
      continue;
    }
    if (clean)
      continue;
    char why[48];
    if (restarts >= max_restarts) {
      fprintf(stderr, "eddy: worker %d (pid %d) %s; too many restarts (%d), "
              "giving up\n", id, (int)pid, describe(status, why, sizeof why),
              restarts);
      failed = 1;
      kill_workers(SIGTERM);
      stopping = SIGTERM;
      continue;
    }
    fprintf(stderr, "eddy: worker %d (pid %d) %s; restarting it\n", id,
            (int)pid, describe(status, why, sizeof why));
    restarts++;
    /* Blocked across fork, so the new worker never runs forward_signal. */
    sigset_t stops;
    stop_signals(&stops);
    pid_t child;
    for (;;) {
      sigprocmask(SIG_BLOCK, &stops, NULL);
      child = fork();
      if (child == 0) {
        become_worker(id, self, mask, old);
        return id;
      }
      sigprocmask(SIG_UNBLOCK, &stops, NULL);
      if (child > 0 || stopping)
        break;
      fprintf(stderr, "eddy: cannot restart worker %d: %s\n", id,
              strerror(errno));
      sleep(RESTART_FAILURE_DELAY);
    }
    if (child > 0) {
      workers[id] = child;
      running++;
      if (stopping) /* the signal came while forking */
        kill(child, stopping);
    }
  }
  exit(failed ? 1 : 0);
}

int eddy_fork_processes(int num_processes, int max_restarts)
{
  if (task_id >= 0 || workers != NULL)
    return EDDY_EUSAGE;
  if (num_processes <= 0)
    num_processes = eddy_cpu_count();
  if (max_restarts < 0)
    max_restarts = DEFAULT_MAX_RESTARTS;
  workers = calloc((size_t)num_processes, sizeof *workers);
  if (workers == NULL)
    return -ENOMEM;
  nworkers = num_processes;

  /* Install the forwarding handlers first, so no signal slips between two
   * forks; the workers put back what the caller had. */
  sigset_t mask, stops;
  stop_signals(&stops);
  sigprocmask(SIG_BLOCK, &stops, &mask);
  struct sigaction sa, old[2];
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &old[0]);
  sigaction(SIGINT, &sa, &old[1]);
  fflush(NULL); /* or every worker would print the caller's buffered output */

  pid_t self = getpid();
  for (int i = 0; i < num_processes; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      become_worker(i, self, &mask, old);
      return i;
    }
    if (pid < 0) {
      int err = errno;
      kill_workers(SIGTERM);
      for (int j = 0; j < i; j++)
        while (waitpid(workers[j], NULL, 0) < 0 && errno == EINTR)
          ;
      sigaction(SIGTERM, &old[0], NULL);
      sigaction(SIGINT, &old[1], NULL);
      sigprocmask(SIG_SETMASK, &mask, NULL);
      free((void *)workers);
      workers = NULL;
      nworkers = 0;
      return -err;
    }
    workers[i] = pid;
  }
  /* The supervisor takes the stop signals even if the caller blocked them. */
  sigprocmask(SIG_UNBLOCK, &stops, NULL);
  return supervise(max_restarts, self, &mask, old);
}
