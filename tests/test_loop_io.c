/* SPDX-License-Identifier: MIT */
/*
 * The loop suite: fd handlers (see test_loop.c).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_loop.h"

/* ---- fd handlers -------------------------------------------------------- */

struct io {
  eddy_loop_t *loop;
  int fds[2];
  unsigned events[16];
  int fd[16];
  int n;
  int remove_in_handler;
};

static void io_record(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct io *io = arg;
  if (io->n < 16) {
    io->events[io->n] = ev;
    io->fd[io->n] = fd;
  }
  io->n++;
  if (io->remove_in_handler)
    ck_assert_int_eq(eddy_loop_remove_handler(loop, fd), 0);
  eddy_loop_stop(loop);
}

START_TEST(test_io_read_write_update)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop };
  char c;

  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), -EEXIST);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[1], EDDY_WRITE, io_record, &io), 0);
  /* Write readiness first (the pipe is empty, so the read end is quiet). */
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_int_eq(io.fd[0], io.fds[1]);
  ck_assert_uint_eq(io.events[0], EDDY_WRITE);
  /* Stop watching for write: interest 0 watches errors only. */
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[1], 0), 0);
  ck_assert_int_eq(write(io.fds[1], "a", 1), 1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 2);
  ck_assert_int_eq(io.fd[1], io.fds[0]);
  ck_assert_uint_eq(io.events[1], EDDY_READ);
  ck_assert_int_eq(read(io.fds[0], &c, 1), 1);
  /* Flip interest back and forth within one iteration: WRITE wins. */
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[0], 0), 0);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[1], EDDY_READ), 0);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[1], EDDY_WRITE), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 3);
  ck_assert_int_eq(io.fd[2], io.fds[1]);
  ck_assert_uint_eq(io.events[2], EDDY_WRITE);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, io.fds[0]), 0);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, io.fds[0]), -ENOENT);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[0], EDDY_READ), -ENOENT);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, io.fds[1]), 0);
  close(io.fds[0]);
  close(io.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_io_remove_in_handler)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };

  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(write(io.fds[1], "a", 1), 1);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  /* Still readable, but no longer watched. */
  eddy_loop_call_later(loop, 0.02, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  close(io.fds[0]);
  close(io.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_io_hangup)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };

  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), 0);
  close(io.fds[1]);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_uint_eq(io.events[0] & EDDY_ERROR, EDDY_ERROR);
  ck_assert_uint_eq(io.events[0] & EDDY_READ, EDDY_READ); /* asked for */
  ck_assert_uint_eq(io.events[0] & EDDY_WRITE, 0);        /* not asked for */
  close(io.fds[0]);
  eddy_loop_free(loop);
}
END_TEST

/* A handler that closes another watched fd, reopens the number and watches
 * it again: the old fd's event collected in this batch must not reach the
 * new handler. Whichever of the two fires first does the damage. */
struct stale {
  eddy_loop_t *loop;
  int a[2], b[2];
  int calls, new_calls;
};

static void stale_new(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct stale *s = arg;
  (void)loop;
  (void)fd;
  (void)ev;
  s->new_calls++;
}

static void stale_first(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct stale *s = arg;
  int *victim = fd == s->a[0] ? s->b : s->a;
  int n;

  (void)ev;
  s->calls++;
  ck_assert_int_eq(eddy_loop_remove_handler(loop, victim[0]), 0);
  close(victim[0]);
  n = dup(victim[1]); /* reuses the lowest free number: victim[0] */
  ck_assert_int_eq(n, victim[0]);
  ck_assert_int_eq(eddy_loop_add_handler(loop, n, EDDY_READ | EDDY_WRITE, stale_new, s), 0);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, fd), 0);
  eddy_loop_stop(loop);
}

START_TEST(test_io_stale_events)
{
  eddy_loop_t *loop = new_loop();
  struct stale s = { .loop = loop };

  ck_assert_int_eq(pipe(s.a), 0);
  ck_assert_int_eq(pipe(s.b), 0);
  ck_assert_int_eq(write(s.a[1], "a", 1), 1);
  ck_assert_int_eq(write(s.b[1], "b", 1), 1);
  eddy_loop_add_handler(loop, s.a[0], EDDY_READ, stale_first, &s);
  eddy_loop_add_handler(loop, s.b[0], EDDY_READ, stale_first, &s);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.calls, 1);
  ck_assert_int_eq(s.new_calls, 0);
  /* The new registration works from the next iteration on (a pipe's write
   * end is writable). */
  eddy_loop_call_later(loop, 0.02, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_ge(s.new_calls, 1);
  eddy_loop_free(loop);
  close(s.a[0]);
  close(s.a[1]);
  close(s.b[0]);
  close(s.b[1]);
}
END_TEST

/* An fd closed without removing its handler: the backend reports an error
 * (epoll cannot re-add it, poll says POLLNVAL) instead of crashing. */
START_TEST(test_io_closed_fd)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };
  int sv[2];

  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, sv[0], EDDY_READ, io_record, &io), 0);
  close(sv[0]); /* before the first iteration registers it */
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_uint_eq(io.events[0] & EDDY_ERROR, EDDY_ERROR);
  close(sv[1]);
  eddy_loop_free(loop);
}
END_TEST

/* An fd closed and reopened under the same number between iterations,
 * without removing its handler: the kernel forgot the old registration, so
 * the next interest change must add it back rather than fail. */
START_TEST(test_io_reopened_between_iterations)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };
  int old[2];

  ck_assert_int_eq(pipe(old), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, old[0], EDDY_WRITE, io_record, &io), 0);
  eddy_loop_call_soon(loop, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0); /* registered now; pipe read end never writable */
  ck_assert_int_eq(io.n, 0);
  close(old[0]);
  close(old[1]);
  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(io.fds[0], old[0]);
  ck_assert_int_eq(write(io.fds[1], "a", 1), 1);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[0], EDDY_READ), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_uint_eq(io.events[0], EDDY_READ);
  close(io.fds[0]);
  close(io.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

void loop_add_io_tests(TCase *tc)
{
  tcase_add_test(tc, test_io_read_write_update);
  tcase_add_test(tc, test_io_remove_in_handler);
  tcase_add_test(tc, test_io_hangup);
  tcase_add_test(tc, test_io_stale_events);
  tcase_add_test(tc, test_io_closed_fd);
  tcase_add_test(tc, test_io_reopened_between_iterations);
}
