/* SPDX-License-Identifier: MIT */
/*
 * tests/test_process.c - eddy_fork_processes and the server's start
 * patterns across processes (Tornado's tcpserver_test 56-59, plus
 * restarts, max_restarts, signal forwarding and parent death).
 *
 * Each case runs a small "program" in a child process whose stdout is a
 * pipe, as Tornado runs a child interpreter: the workers print their task
 * ids, and the test checks the sorted output and the supervisor's exit
 * status. Programs report failure through exit codes, never Check.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_fixtures.h"

typedef void (*program_fn)(int out, void *arg);

struct program {
  pid_t pid;
  int out; /* read end of the program's output */
  char buf[512];
  size_t len;
};

static void start_program(struct program *p, program_fn body, void *arg)
{
  int fds[2];
  ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
  fflush(NULL);
  p->pid = fork();
  ck_assert_int_ge(p->pid, 0);
  if (p->pid == 0) {
    /* A program starts with default dispositions, not Check's handlers. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    close(fds[0]);
    body(fds[1], arg);
    _exit(0);
  }
  close(fds[1]);
  p->out = fds[0];
  p->len = 0;
}

/* Reads more output; 0 at EOF. Fails the test after TFX_WAIT seconds. */
static int read_more(struct program *p)
{
  struct pollfd pfd = {p->out, POLLIN, 0};
  ck_assert_msg(poll(&pfd, 1, (int)(TFX_WAIT * 1000)) == 1,
                "program output timed out after '%.*s'", (int)p->len, p->buf);
  ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
  ck_assert_int_ge(n, 0);
  p->len += (size_t)n;
  p->buf[p->len] = '\0';
  return n > 0;
}

/* Reads until the output has @p lines newlines. */
static void read_lines(struct program *p, int lines)
{
  for (;;) {
    int seen = 0;
    for (size_t i = 0; i < p->len; i++)
      seen += p->buf[i] == '\n';
    if (seen >= lines)
      return;
    ck_assert_msg(read_more(p), "program ended early: '%s'", p->buf);
  }
}

/* Reads to EOF and reaps the program; returns its wait status. */
static int finish_program(struct program *p)
{
  while (read_more(p))
    ;
  close(p->out);
  int status;
  ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
  return status;
}

static int cmp_char(const void *a, const void *b)
{
  return *(const char *)a - *(const char *)b;
}

/* The program's digits, sorted ("201" -> "012"). */
static const char *sorted_digits(struct program *p)
{
  static char out[64];
  size_t n = 0;
  for (size_t i = 0; i < p->len && n + 1 < sizeof out; i++)
    if (p->buf[i] >= '0' && p->buf[i] <= '9')
      out[n++] = p->buf[i];
  out[n] = '\0';
  qsort(out, n, 1, cmp_char);
  return out;
}

static void expect_clean_exit(int status)
{
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "program status %#x", status);
}

/* A worker's last words: its task id; then it frees what it made. */
static void report_and_exit(int out, int id, eddy_tcp_server_t *srv,
                            eddy_loop_t *loop)
{
  dprintf(out, "%d", id);
  eddy_tcp_server_free(srv);
  eddy_loop_free(loop);
  _exit(0);
}

/* ------------------------------------------------------------------------ */
/* Programs                                                                  */
/* ------------------------------------------------------------------------ */

/* 56: one process, listen, print 012 itself. */
static void prog_listen_single(int out, void *arg)
{
  eddy_loop_t *loop = eddy_loop_new();
  eddy_tcp_server_t *srv = eddy_tcp_server_new(loop, NULL);
  if (eddy_tcp_server_listen(srv, 0, "127.0.0.1") < 0)
    _exit(10);
  if (eddy_task_id() != -1)
    _exit(11);
  dprintf(out, "012");
  eddy_tcp_server_free(srv);
  eddy_loop_free(loop);
}

/* 57: bind + start(3): each worker prints its id. */
static void prog_bind_start(int out, void *arg)
{
  eddy_loop_t *loop = eddy_loop_new();
  eddy_tcp_server_t *srv = eddy_tcp_server_new(loop, NULL);
  if (eddy_tcp_server_bind(srv, 0, "127.0.0.1", AF_UNSPEC, 0, 0) < 0)
    _exit(10);
  int id = eddy_tcp_server_start(srv, 3, 0);
  if (id < 0 || id != eddy_task_id())
    _exit(11);
  if (eddy_tcp_server_start(srv, 1, 0) != EDDY_EUSAGE)
    _exit(12);
  if (eddy_fork_processes(2, 0) != EDDY_EUSAGE)
    _exit(13);
  report_and_exit(out, id, srv, loop);
}

/* 58: bind_sockets, fork_processes(3), then a server per worker. */
static void prog_add_sockets(int out, void *arg)
{
  int fds[4];
  int n = eddy_bind_sockets(0, "127.0.0.1", AF_UNSPEC, 0, 0, fds, 4);
  if (n < 1)
    _exit(10);
  int id = eddy_fork_processes(3, 0);
  if (id < 0)
    _exit(11);
  eddy_loop_t *loop = eddy_loop_new();
  eddy_tcp_server_t *srv = eddy_tcp_server_new(loop, NULL);
  if (eddy_tcp_server_add_sockets(srv, fds, (size_t)n) < 0)
    _exit(12);
  report_and_exit(out, id, srv, loop);
}

/* 59: reserve a port with reuse_port, fork 3, each worker binds it again. */
static void prog_reuse_port(int out, void *arg)
{
  int holder;
  if (eddy_bind_sockets(0, "127.0.0.1", AF_INET, 0, EDDY_BIND_REUSEPORT,
                        &holder, 1) != 1)
    _exit(10);
  int port = tfx_local_port(holder);
  int id = eddy_fork_processes(3, 0);
  if (id < 0)
    _exit(11);
  eddy_loop_t *loop = eddy_loop_new();
  eddy_tcp_server_t *srv = eddy_tcp_server_new(loop, NULL);
  if (eddy_tcp_server_bind(srv, port, "127.0.0.1", AF_UNSPEC, 0,
                           EDDY_BIND_REUSEPORT) < 0 ||
      eddy_tcp_server_start(srv, 1, 0) != 0)
    _exit(12);
  report_and_exit(out, id, srv, loop);
}

/* Worker 1 fails once; the supervisor restarts it with the same id. */
static void prog_restart(int out, void *arg)
{
  const char *marker = arg;
  int id = eddy_fork_processes(2, 5);
  if (id < 0)
    _exit(11);
  dprintf(out, "%d", id);
  if (id == 1 && access(marker, F_OK) != 0) {
    close(open(marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    _exit(3);
  }
  _exit(0);
}

/* Worker 1 always fails, and restarts are not allowed. */
static void prog_give_up(int out, void *arg)
{
  int id = eddy_fork_processes(2, 0);
  if (id < 0)
    _exit(11);
  if (id == 1)
    _exit(3);
  pause(); /* worker 0 lives until the supervisor gives up */
  _exit(0);
}

/* Workers announce themselves, then wait to be told to stop. */
static void prog_wait(int out, void *arg)
{
  int id = eddy_fork_processes(2, 0);
  if (id < 0)
    _exit(11);
  dprintf(out, "%d %d\n", id, (int)getpid());
  for (;;)
    pause();
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void expect_012(program_fn body)
{
  struct program p;
  start_program(&p, body, NULL);
  int status = finish_program(&p);
  ck_assert_str_eq(sorted_digits(&p), "012");
  expect_clean_exit(status);
}

START_TEST(test_listen_single) { expect_012(prog_listen_single); }
END_TEST

START_TEST(test_bind_start) { expect_012(prog_bind_start); }
END_TEST

START_TEST(test_add_sockets) { expect_012(prog_add_sockets); }
END_TEST

START_TEST(test_listen_multi_reuse_port) { expect_012(prog_reuse_port); }
END_TEST

START_TEST(test_task_id_outside)
{
  ck_assert_int_eq(eddy_task_id(), -1);
  ck_assert_int_ge(eddy_cpu_count(), 1);
}
END_TEST

START_TEST(test_restart_same_id)
{
  char marker[64];
  snprintf(marker, sizeof marker, "/tmp/eddy-test-restart-%d", (int)getpid());
  unlink(marker);
  struct program p;
  start_program(&p, prog_restart, marker);
  int status = finish_program(&p);
  unlink(marker);
  ck_assert_str_eq(sorted_digits(&p), "011");
  expect_clean_exit(status);
}
END_TEST

START_TEST(test_max_restarts)
{
  struct program p;
  start_program(&p, prog_give_up, NULL);
  int status = finish_program(&p);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
                "status %#x", status);
}
END_TEST

/* Reads "id pid" lines from prog_wait's workers. */
static void worker_pids(struct program *p, pid_t pids[2])
{
  read_lines(p, 2);
  char *line = p->buf;
  for (int i = 0; i < 2; i++) {
    int id, pid;
    ck_assert_int_eq(sscanf(line, "%d %d", &id, &pid), 2);
    ck_assert(id == 0 || id == 1);
    pids[id] = pid;
    line = strchr(line, '\n') + 1;
  }
}

/* Gone, or a zombie waiting for a reaper that is not us. */
static int process_gone(pid_t pid)
{
  char path[64], stat[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 1;
  int zombie = fgets(stat, sizeof stat, f) != NULL && strstr(stat, ") Z ") != NULL;
  fclose(f);
  return zombie;
}

static void expect_gone(pid_t pid)
{
  for (int i = 0; !process_gone(pid); i++) {
    ck_assert_msg(i < 1000, "worker %d is still running", (int)pid);
    usleep(10000);
  }
}

START_TEST(test_sigterm_forwarded)
{
  struct program p;
  start_program(&p, prog_wait, NULL);
  pid_t pids[2];
  worker_pids(&p, pids);
  ck_assert_int_eq(kill(p.pid, SIGTERM), 0);
  expect_clean_exit(finish_program(&p)); /* workers stopped as asked */
  expect_gone(pids[0]);
  expect_gone(pids[1]);
}
END_TEST

START_TEST(test_workers_die_with_supervisor)
{
  struct program p;
  start_program(&p, prog_wait, NULL);
  pid_t pids[2];
  worker_pids(&p, pids);
  ck_assert_int_eq(kill(p.pid, SIGKILL), 0);
  int status = finish_program(&p);
  ck_assert(WIFSIGNALED(status));
  expect_gone(pids[0]);
  expect_gone(pids[1]);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("process");
  TCase *tc = tfx_tcase("start patterns");
  tcase_add_test(tc, test_listen_single);
  tcase_add_test(tc, test_bind_start);
  tcase_add_test(tc, test_add_sockets);
  tcase_add_test(tc, test_listen_multi_reuse_port);
  suite_add_tcase(s, tc);
  tc = tfx_tcase("supervision");
  tcase_add_test(tc, test_task_id_outside);
  tcase_add_test(tc, test_restart_same_id);
  tcase_add_test(tc, test_max_restarts);
  tcase_add_test(tc, test_sigterm_forwarded);
  tcase_add_test(tc, test_workers_die_with_supervisor);
  suite_add_tcase(s, tc);
  return tfx_run(s);
}
