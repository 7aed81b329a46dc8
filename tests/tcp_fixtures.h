/* SPDX-License-Identifier: MIT */
/*
 * tests/tcp_fixtures.h - fixtures for the TCP server, netutil and process
 * suites: a loop per test with a log capture and an fd leak check, raw
 * blocking clients, and loop-running helpers. Every helper asserts with
 * Check, so a failure ends the test (each test runs in its own process).
 */
#ifndef EDDY_TESTS_TCP_FIXTURES_H
#define EDDY_TESTS_TCP_FIXTURES_H

#include <stddef.h>
#include <sys/socket.h>

#include <check.h>

#include "eddy/tcp.h"

/** The longest any wait may take before the test fails. */
#define TFX_WAIT 10.0

/** The current test's loop (made by tfx_setup, freed by tfx_teardown). */
extern eddy_loop_t *tfx_loop;

/** Checked fixture: records the open fds, makes a loop, captures its log. */
void tfx_setup(void);
/** Checked fixture: frees the loop and asserts no fd was leaked. */
void tfx_teardown(void);
/** A test case with the fixtures above and a generous timeout. */
TCase *tfx_tcase(const char *name);

/** Runs every test of @p s; returns the exit status for main(). */
int tfx_run(Suite *s);

/** Number of open fds of this process. */
int tfx_fd_count(void);

/** Captured log messages at @p level or above. */
int tfx_log_count(eddy_log_level_t level);
/** Non-zero if a captured message at @p level or above contains @p needle. */
int tfx_log_contains(eddy_log_level_t level, const char *needle);

/** Runs the loop until @p f settles (fails the test after TFX_WAIT s). */
void tfx_wait(eddy_future_t *f);
/** Runs the loop for @p seconds. */
void tfx_run_for(double seconds);
/** Runs the loop until *flag reaches @p value. */
void tfx_run_until(const int *flag, int value);

/** Waits for an accept future and returns its stream (owned), unrefs f. */
eddy_stream_t *tfx_take_stream(eddy_future_t *f);

/** The port of the listening socket @p fd. */
int tfx_local_port(int fd);
/** The port of the server's first listening socket. */
int tfx_server_port(eddy_tcp_server_t *srv);

/** A blocking client connected to 127.0.0.1:@p port (10 s I/O timeouts). */
int tfx_connect(int port);
/** The same to an address of @p family ("127.0.0.1" or "::1"). */
int tfx_connect_to(int family, const char *host, int port);
/** A blocking client socket, not yet connected (for EMFILE tests). */
int tfx_socket(int family);
/** Connects a socket made by tfx_socket(); returns 0 or -errno. */
int tfx_connect_fd(int fd, int family, const char *host, int port);

/** Writes all of @p s to a raw fd. */
void tfx_send(int fd, const char *s);
/** Reads until EOF (or an error) into @p buf (NUL-terminated); the count,
 *  or -errno if the read failed before any byte came. */
long tfx_recv_all(int fd, char *buf, size_t size);
/** Reads exactly @p n bytes. */
void tfx_recv_exact(int fd, char *buf, size_t n);

/** Whether ::1 can be bound here. */
int tfx_have_ipv6(void);

#endif
