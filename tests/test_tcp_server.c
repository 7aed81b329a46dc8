/* SPDX-License-Identifier: MIT */
/*
 * tests/test_tcp_server.c - the TCP server through its public API
 * (Tornado's tcpserver_test 52-55, plus eddy's accept futures, queue,
 * limits, stop/shutdown/free and the EMFILE behaviour, tornado.md §2.6).
 * Clients are raw blocking sockets on 127.0.0.1; servers listen on port 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "tcp_fixtures.h"

static eddy_tcp_server_t *listening_server(const eddy_tcp_server_options_t *o)
{
  eddy_tcp_server_t *srv = eddy_tcp_server_new(tfx_loop, o);
  ck_assert_ptr_nonnull(srv);
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
  return srv;
}

/* Reads one byte from the client side and checks it. */
static void expect_byte(int fd, char want)
{
  char c;
  tfx_recv_exact(fd, &c, 1);
  ck_assert_int_eq(c, want);
}

/* Expects the server to have closed the connection (EOF or reset). */
static void expect_closed(int fd)
{
  char buf[16];
  ck_assert_int_le(tfx_recv_all(fd, buf, sizeof buf), 0);
}

/* Connects @p n clients that each send one letter, 'a' + i. */
static void connect_lettered(eddy_tcp_server_t *srv, int *c, int n)
{
  int port = tfx_server_port(srv);
  for (int i = 0; i < n; i++) {
    c[i] = tfx_connect(port);
    char b = (char)('a' + i);
    ck_assert_int_eq(send(c[i], &b, 1, 0), 1);
  }
}

/* Accepts @p n streams and checks they come in connection order. */
static void accept_lettered(eddy_tcp_server_t *srv, int *c, int n)
{
  for (int i = 0; i < n; i++) {
    eddy_stream_t *s = tfx_take_stream(eddy_tcp_server_accept(srv));
    eddy_future_t *r = eddy_stream_read_bytes(s, 1, 0);
    tfx_wait(r);
    ck_assert_int_eq(((char *)eddy_future_value(r))[0], 'a' + i);
    eddy_future_unref(r);
    eddy_stream_unref(s);
    close(c[i]);
  }
}

/* ------------------------------------------------------------------------ */
/* Handlers used by several tests                                            */
/* ------------------------------------------------------------------------ */

static int handled;
static eddy_stream_t *held[8];

/* Keeps each stream (a reference of its own) and resolves at once. */
static eddy_future_t *keep_handler(eddy_stream_t *s, const struct sockaddr *peer,
                                   void *arg)
{
  ck_assert_int_lt(handled, 8);
  ck_assert_int_eq(peer->sa_family, AF_INET);
  held[handled++] = eddy_stream_ref(s);
  return EDDY_NO_VALUE;
}

/* Per test: no handler has run yet (also under CK_FORK=no). */
static void reset_handled(void)
{
  handled = 0;
}

static void release_held(void)
{
  for (int i = 0; i < handled; i++)
    eddy_stream_unref(held[i]);
  handled = 0;
}

/* Test 53: writes "data" and closes without waiting for the write. */
static eddy_future_t *write_close_handler(eddy_stream_t *s,
                                          const struct sockaddr *peer,
                                          void *arg)
{
  handled++;
  eddy_future_unref(eddy_stream_write(s, "data", 4));
  eddy_stream_close_when_drained(s);
  return EDDY_NO_VALUE;
}

/* ------------------------------------------------------------------------ */
/* Accepting                                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(test_accept_future)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_future_t *f = eddy_tcp_server_accept(srv);
  ck_assert(!eddy_future_done(f));
  int c = tfx_connect(tfx_server_port(srv));
  eddy_stream_t *s = tfx_take_stream(f);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 1);

  /* The peer address is the client's. */
  struct sockaddr_storage peer;
  socklen_t len = sizeof peer;
  ck_assert_int_eq(eddy_stream_peer_address(s, &peer, &len), 0);
  struct sockaddr_in *in = (struct sockaddr_in *)&peer;
  ck_assert_int_eq(ntohs(in->sin_port), tfx_local_port(c));

  eddy_future_t *w = eddy_stream_write(s, "hi", 2);
  tfx_wait(w);
  eddy_future_unref(w);
  expect_byte(c, 'h');
  expect_byte(c, 'i');
  eddy_stream_unref(s); /* the last reference closes it */
  expect_closed(c);
  tfx_run_for(0.05);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 0);
  close(c);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Nobody accepts: three connections wait, then come out in order. */
START_TEST(test_queue_in_order)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  int c[3];
  connect_lettered(srv, c, 3);
  tfx_run_for(0.1);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 0); /* queued */
  accept_lettered(srv, c, 3);
  eddy_tcp_server_free(srv);
}
END_TEST

/* A cancelled accept gives its connection to the next one. */
START_TEST(test_accept_cancelled)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_future_t *f1 = eddy_tcp_server_accept(srv);
  eddy_future_t *f2 = eddy_tcp_server_accept(srv);
  ck_assert_int_eq(eddy_future_cancel(f1), 0);
  int c = tfx_connect(tfx_server_port(srv));
  eddy_stream_t *s = tfx_take_stream(f2);
  ck_assert_int_eq(eddy_future_error(f1), EDDY_ECANCELLED);
  eddy_future_unref(f1);
  eddy_stream_unref(s);
  close(c);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Connections that queued before the handler was set go to it. */
START_TEST(test_handler_set_late)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  int c1 = tfx_connect(tfx_server_port(srv));
  int c2 = tfx_connect(tfx_server_port(srv));
  tfx_run_for(0.05);
  eddy_tcp_server_set_handler(srv, keep_handler, NULL);
  tfx_run_until(&handled, 2);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 2);
  release_held();
  close(c1);
  close(c2);
  eddy_tcp_server_free(srv);
}
END_TEST

/* With accept_queue 2, the third and fourth clients stay in the kernel's
 * backlog until there is room; nothing is lost. */
START_TEST(test_queue_full_pauses)
{
  eddy_tcp_server_options_t o;
  eddy_tcp_server_options_init(&o);
  o.accept_queue = 2;
  eddy_tcp_server_t *srv = listening_server(&o);
  int c[4];
  connect_lettered(srv, c, 4);
  tfx_run_for(0.1);
  accept_lettered(srv, c, 4);
  eddy_tcp_server_free(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Handlers                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(test_handler_write_and_close)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, write_close_handler, NULL);
  int c = tfx_connect(tfx_server_port(srv));
  char buf[64];
  tfx_run_until(&handled, 1);
  tfx_run_for(0.05);
  ck_assert_int_eq(tfx_recv_all(c, buf, sizeof buf), 4);
  ck_assert_str_eq(buf, "data");
  close(c);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Test 52: the handler reads 5 bytes, closes, then fails. */
static eddy_future_t *fail_after_read(eddy_future_t *read, void *stream)
{
  eddy_stream_close(stream, 0);
  handled++;
  return eddy_future_rejected(eddy_future_loop(read), -EPROTO, "boom %d", 42);
}

static eddy_future_t *failing_handler(eddy_stream_t *s,
                                      const struct sockaddr *peer, void *arg)
{
  return eddy_then_ok(eddy_stream_read_bytes(s, 5, 0), fail_after_read, s);
}

START_TEST(test_handler_failure_logged)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, failing_handler, NULL);
  int port = tfx_server_port(srv);
  for (int i = 0; i < 2; i++) { /* the server goes on after a failure */
    int c = tfx_connect(port);
    tfx_send(c, "hello");
    tfx_run_until(&handled, i + 1);
    tfx_run_for(0.02);
    expect_closed(c);
    close(c);
  }
  ck_assert(tfx_log_contains(EDDY_LOG_WARNING, "Exception in stream handler"));
  ck_assert(tfx_log_contains(EDDY_LOG_WARNING, "boom 42"));
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 0);
  eddy_tcp_server_free(srv);
}
END_TEST

/* A handler future failing with EDDY_ECLOSED (the client left) is normal:
 * logged at debug level only. */
static eddy_future_t *read_forever(void *stream)
{
  return eddy_stream_read_bytes(stream, 1, 0);
}

static eddy_future_t *reading_handler(eddy_stream_t *s,
                                      const struct sockaddr *peer, void *arg)
{
  handled++;
  return eddy_repeat(read_forever, s);
}

START_TEST(test_handler_closed_is_quiet)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, reading_handler, NULL);
  int c = tfx_connect(tfx_server_port(srv));
  tfx_run_until(&handled, 1);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 1);
  close(c);
  for (int i = 0; eddy_tcp_server_connection_count(srv) > 0; i++) {
    ck_assert_int_lt(i, 2000);
    tfx_run_for(0.005);
  }
  tfx_run_for(0.02);
  ck_assert_int_eq(tfx_log_count(EDDY_LOG_WARNING), 0);
  ck_assert(tfx_log_contains(EDDY_LOG_DEBUG, "stream handler ended"));
  eddy_tcp_server_free(srv);
}
END_TEST

/* A handler that could not build its chain returns NULL (future.h): the
 * connection is closed, with a warning, and the server goes on. */
static eddy_future_t *oom_handler(eddy_stream_t *s, const struct sockaddr *peer,
                                  void *arg)
{
  handled++;
  return NULL;
}

START_TEST(test_handler_null_closes)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, oom_handler, NULL);
  int port = tfx_server_port(srv);
  for (int i = 0; i < 2; i++) {
    int c = tfx_connect(port);
    tfx_run_until(&handled, i + 1);
    tfx_run_for(0.02);
    char buf[16];
    ck_assert_int_eq(tfx_recv_all(c, buf, sizeof buf), 0); /* closed */
    close(c);
  }
  ck_assert(tfx_log_contains(EDDY_LOG_WARNING, "dropping a connection"));
  ck_assert(tfx_log_contains(EDDY_LOG_WARNING, "returned NULL"));
  for (int i = 0; eddy_tcp_server_connection_count(srv) > 0; i++) {
    ck_assert_int_lt(i, 2000);
    tfx_run_for(0.005);
  }
  eddy_tcp_server_free(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Stopping                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(test_stop_twice)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_future_t *pending = eddy_tcp_server_accept(srv);
  eddy_tcp_server_stop(srv);
  eddy_tcp_server_stop(srv);
  ck_assert_int_eq(eddy_future_error(pending), EDDY_ECLOSED);
  eddy_future_unref(pending);
  eddy_future_t *late = eddy_tcp_server_accept(srv);
  ck_assert_int_eq(eddy_future_error(late), EDDY_ECLOSED);
  eddy_future_unref(late);
  int fd;
  ck_assert_uint_eq(eddy_tcp_server_sockets(srv, &fd, 1), 0);
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "127.0.0.1"), EDDY_EUSAGE);
  eddy_tcp_server_free(srv);
  eddy_tcp_server_free(NULL);
}
END_TEST

/* Test 55: stop() inside the handler while 40 clients connect at once. */
static eddy_future_t *stopping_handler(eddy_stream_t *s,
                                       const struct sockaddr *peer, void *arg)
{
  handled++;
  eddy_tcp_server_stop(arg);
  return EDDY_NO_VALUE;
}

START_TEST(test_stop_in_handler)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, stopping_handler, srv);
  int port = tfx_server_port(srv), c[40];
  for (int i = 0; i < 40; i++)
    c[i] = tfx_connect(port); /* all in the backlog before one accept */
  tfx_run_for(0.1);
  ck_assert_int_eq(handled, 1);
  ck_assert_int_eq(tfx_log_count(EDDY_LOG_WARNING), 0);
  for (int i = 0; i < 40; i++)
    close(c[i]);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Freeing the server from its own handler is safe too. */
static eddy_future_t *freeing_handler(eddy_stream_t *s,
                                      const struct sockaddr *peer, void *arg)
{
  handled++;
  eddy_tcp_server_free(*(eddy_tcp_server_t **)arg);
  *(eddy_tcp_server_t **)arg = NULL;
  return EDDY_NO_VALUE;
}

START_TEST(test_free_in_handler)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, freeing_handler, &srv);
  int port = tfx_server_port(srv), c[5];
  for (int i = 0; i < 5; i++)
    c[i] = tfx_connect(port);
  tfx_run_until(&handled, 1);
  tfx_run_for(0.05);
  ck_assert_int_eq(handled, 1);
  ck_assert_ptr_null(srv);
  for (int i = 0; i < 5; i++)
    close(c[i]);
}
END_TEST

/* Streams already handed out outlive stop() and free(). */
START_TEST(test_streams_outlive_server)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  int c = tfx_connect(tfx_server_port(srv));
  eddy_stream_t *s = tfx_take_stream(eddy_tcp_server_accept(srv));
  eddy_tcp_server_stop(srv);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 1);
  eddy_tcp_server_free(srv);
  tfx_send(c, "ping\n");
  eddy_future_t *r = eddy_stream_read_until(s, "\n", 1, 0);
  tfx_wait(r);
  ck_assert_str_eq(eddy_future_value(r), "ping\n");
  eddy_future_unref(r);
  eddy_future_t *w = eddy_stream_write(s, "pong", 4);
  tfx_wait(w);
  eddy_future_unref(w);
  char buf[8];
  tfx_recv_exact(c, buf, 4);
  eddy_stream_unref(s);
  close(c);
}
END_TEST

/* stop() closes connections nobody claimed. */
START_TEST(test_stop_closes_queued)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  int c = tfx_connect(tfx_server_port(srv));
  tfx_run_for(0.05);
  eddy_tcp_server_stop(srv);
  expect_closed(c);
  close(c);
  eddy_tcp_server_free(srv);
}
END_TEST

/* shutdown(grace): resolves as soon as the streams close... */
START_TEST(test_shutdown_waits_for_streams)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, keep_handler, NULL);
  int c1 = tfx_connect(tfx_server_port(srv));
  int c2 = tfx_connect(tfx_server_port(srv));
  tfx_run_until(&handled, 2);
  eddy_future_t *done = eddy_tcp_server_shutdown(srv, 30.0);
  tfx_run_for(0.05);
  ck_assert(!eddy_future_done(done));
  eddy_stream_close(held[0], 0);
  tfx_run_for(0.05);
  ck_assert(!eddy_future_done(done));
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 1);
  eddy_stream_close(held[1], 0);
  tfx_wait(done); /* well before the 30 s grace */
  ck_assert_int_eq(eddy_future_error(done), 0);
  eddy_future_unref(done);
  release_held();
  close(c1);
  close(c2);
  eddy_tcp_server_free(srv);
}
END_TEST

/* ...and closes the rest when the grace period is over. */
START_TEST(test_shutdown_grace_expires)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, keep_handler, NULL);
  int c = tfx_connect(tfx_server_port(srv));
  tfx_run_until(&handled, 1);
  eddy_future_t *done = eddy_tcp_server_shutdown(srv, 0.1);
  tfx_wait(done);
  ck_assert(eddy_stream_closed(held[0]));
  expect_closed(c);
  eddy_future_unref(done);
  /* With nothing open, a shutdown resolves at once. */
  done = eddy_tcp_server_shutdown(srv, 5.0);
  ck_assert(eddy_future_done(done));
  eddy_future_unref(done);
  release_held();
  close(c);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Two servers on one loop: a shutdown closes its own connections only
 * (it finds them in the loop's fd table by their owner link), and those
 * of a handler that never touched its stream too. */
START_TEST(test_shutdown_closes_only_its_own)
{
  eddy_tcp_server_t *a = listening_server(NULL);
  eddy_tcp_server_t *b = listening_server(NULL);
  eddy_tcp_server_set_handler(a, keep_handler, NULL);
  eddy_tcp_server_set_handler(b, keep_handler, NULL);
  int ca = tfx_connect(tfx_server_port(a));
  tfx_run_until(&handled, 1);
  int cb = tfx_connect(tfx_server_port(b));
  tfx_run_until(&handled, 2);
  eddy_future_t *done = eddy_tcp_server_shutdown(a, 0);
  tfx_wait(done);
  ck_assert_int_eq(eddy_future_error(done), 0);
  ck_assert(eddy_stream_closed(held[0]));
  ck_assert(!eddy_stream_closed(held[1]));
  ck_assert_uint_eq(eddy_tcp_server_connection_count(b), 1);
  expect_closed(ca);
  eddy_future_unref(done);
  release_held();
  close(ca);
  close(cb);
  eddy_tcp_server_free(a);
  eddy_tcp_server_free(b);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */
/* ------------------------------------------------------------------------ */

/* A server keeping at most @max connections, and 3 clients connected to it
 * (the loop has not run yet). */
static eddy_tcp_server_t *limited_server(unsigned max, int c[3])
{
  eddy_tcp_server_options_t o;
  eddy_tcp_server_options_init(&o);
  o.max_connections = max;
  eddy_tcp_server_t *srv = listening_server(&o);
  eddy_tcp_server_set_handler(srv, keep_handler, NULL);
  int port = tfx_server_port(srv);
  for (int i = 0; i < 3; i++)
    c[i] = tfx_connect(port);
  return srv;
}

START_TEST(test_max_connections)
{
  int c[3];
  eddy_tcp_server_t *srv = limited_server(2, c);
  tfx_run_until(&handled, 2);
  tfx_run_for(0.1);
  ck_assert_int_eq(handled, 2); /* the third waits in the backlog */
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 2);
  eddy_stream_close(held[0], 0);
  tfx_run_until(&handled, 3);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 2);
  release_held();
  for (int i = 0; i < 3; i++)
    close(c[i]);
  tfx_run_for(0.05);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 0);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Stopped while connections wait past max_connections: on io_uring the
 * loop may have accepted them ahead of the server; either way they are
 * closed with the listener, and no fd is left behind (the fixture counts). */
START_TEST(test_stop_with_connections_waiting)
{
  int c[3];
  eddy_tcp_server_t *srv = limited_server(1, c);
  tfx_run_until(&handled, 1);
  tfx_run_for(0.1);
  ck_assert_int_eq(handled, 1);
  eddy_tcp_server_stop(srv);
  for (int i = 1; i < 3; i++)
    expect_closed(c[i]);
  release_held();
  for (int i = 0; i < 3; i++)
    close(c[i]);
  eddy_tcp_server_free(srv);
}
END_TEST

/* The handler returning NULL without a reference: the stream closes as soon
 * as the handler returns, and stops being counted. */
static eddy_future_t *dropping_handler(eddy_stream_t *s,
                                       const struct sockaddr *peer, void *arg)
{
  handled++;
  return EDDY_NO_VALUE;
}

START_TEST(test_connection_count)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, dropping_handler, NULL);
  int c = tfx_connect(tfx_server_port(srv));
  tfx_run_until(&handled, 1);
  tfx_run_for(0.02);
  expect_closed(c);
  ck_assert_uint_eq(eddy_tcp_server_connection_count(srv), 0);
  close(c);
  eddy_tcp_server_free(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Start patterns in one process, sockets made elsewhere                     */
/* ------------------------------------------------------------------------ */

START_TEST(test_bind_start_single)
{
  eddy_tcp_server_t *srv = eddy_tcp_server_new(tfx_loop, NULL);
  ck_assert_int_eq(eddy_tcp_server_bind(srv, 0, "127.0.0.1", AF_UNSPEC, 0, 0), 0);
  int port = tfx_server_port(srv); /* bound sockets are listed before start */
  ck_assert_int_eq(eddy_tcp_server_start(srv, 1, 0), 0);
  ck_assert_int_eq(eddy_tcp_server_start(srv, 1, 0), EDDY_EUSAGE);
  ck_assert_int_eq(tfx_server_port(srv), port);
  int c = tfx_connect(port);
  eddy_stream_t *s = tfx_take_stream(eddy_tcp_server_accept(srv));
  /* After start, bind adds at once. */
  ck_assert_int_eq(eddy_tcp_server_bind(srv, 0, "127.0.0.1", AF_INET, 0, 0), 0);
  int fds[4];
  ck_assert_uint_eq(eddy_tcp_server_sockets(srv, fds, 4), 2);
  eddy_stream_unref(s);
  close(c);
  eddy_tcp_server_free(srv);
}
END_TEST

START_TEST(test_add_socket_errors)
{
  eddy_tcp_server_t *srv = eddy_tcp_server_new(tfx_loop, NULL);
  ck_assert_int_eq(eddy_tcp_server_add_socket(srv, 1000), -EBADF);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(eddy_tcp_server_add_socket(srv, fd), -EINVAL); /* closed */
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "no-such-host.invalid") < 0, 1);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Dual stack: one port, both families served. */
START_TEST(test_dual_stack)
{
  eddy_tcp_server_t *srv = eddy_tcp_server_new(tfx_loop, NULL);
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "localhost"), 0);
  eddy_tcp_server_set_handler(srv, write_close_handler, NULL);
  int fds[4];
  size_t n = eddy_tcp_server_sockets(srv, fds, 4);
  int port = tfx_local_port(fds[0]);
  for (size_t i = 1; i < n; i++)
    ck_assert_int_eq(tfx_local_port(fds[i]), port);
  int c = tfx_connect(port);
  char buf[16];
  tfx_run_until(&handled, 1);
  ck_assert_int_eq(tfx_recv_all(c, buf, sizeof buf), 4);
  close(c);
  if (n > 1 && tfx_have_ipv6()) {
    c = tfx_connect_to(AF_INET6, "::1", port);
    tfx_run_until(&handled, 2);
    ck_assert_int_eq(tfx_recv_all(c, buf, sizeof buf), 4);
    close(c);
  }
  eddy_tcp_server_free(srv);
}
END_TEST

/* A UNIX socket from eddy_bind_unix_socket, served with add_socket. */
START_TEST(test_unix_server)
{
  char path[64];
  snprintf(path, sizeof path, "/tmp/eddy-srv-%d", (int)getpid());
  unlink(path);
  int lfd = eddy_bind_unix_socket(path, 0600, 0);
  ck_assert_int_ge(lfd, 0);
  eddy_tcp_server_t *srv = eddy_tcp_server_new(tfx_loop, NULL);
  ck_assert_int_eq(eddy_tcp_server_add_socket(srv, lfd), 0);
  eddy_future_t *f = eddy_tcp_server_accept(srv);
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  strcpy(sun.sun_path, path);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
  eddy_stream_t *s = tfx_take_stream(f);
  eddy_future_t *w = eddy_stream_write(s, "u", 1);
  tfx_wait(w);
  eddy_future_unref(w);
  expect_byte(c, 'u');
  eddy_stream_unref(s);
  close(c);
  eddy_tcp_server_free(srv);
  unlink(path);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Out of file descriptors (Q10)                                             */
/* ------------------------------------------------------------------------ */

static double cpu_seconds(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

START_TEST(test_emfile_no_spin)
{
  eddy_tcp_server_t *srv = listening_server(NULL);
  eddy_tcp_server_set_handler(srv, write_close_handler, NULL);
  int port = tfx_server_port(srv);

  /* Clients are made first: at the limit the test cannot make sockets. */
  enum { NCLIENTS = 5 };
  int c[NCLIENTS], late = tfx_socket(AF_INET);
  for (int i = 0; i < NCLIENTS; i++)
    c[i] = tfx_socket(AF_INET);
  struct rlimit old, low;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
  low = old;
  low.rlim_cur = (rlim_t)tfx_fd_count() + 16;
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
  int filler[64], nfill = 0;
  while (nfill < 64 && (filler[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    nfill++;
  ck_assert_int_eq(errno, EMFILE);

  for (int i = 0; i < NCLIENTS; i++)
    ck_assert_int_eq(tfx_connect_fd(c[i], AF_INET, "127.0.0.1", port), 0);
  double cpu = cpu_seconds();
  tfx_run_for(0.5);
  cpu = cpu_seconds() - cpu;
  ck_assert_msg(cpu < 0.25, "the server spun: %.3f s of CPU in 0.5 s", cpu);
  /* Those clients were told at once, rather than left hanging. */
  for (int i = 0; i < NCLIENTS; i++) {
    expect_closed(c[i]);
    close(c[i]);
  }
  ck_assert(tfx_log_contains(EDDY_LOG_WARNING, "Too many open files"));
  ck_assert_int_le(tfx_log_count(EDDY_LOG_WARNING), 2); /* rate-limited */

  /* Once fds are free again, it serves. */
  while (nfill > 0)
    close(filler[--nfill]);
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
  ck_assert_int_eq(tfx_connect_fd(late, AF_INET, "127.0.0.1", port), 0);
  char buf[16];
  tfx_run_until(&handled, 1);
  ck_assert_int_eq(tfx_recv_all(late, buf, sizeof buf), 4);
  ck_assert_str_eq(buf, "data");
  close(late);
  eddy_tcp_server_free(srv);
}
END_TEST

static TCase *tcase(const char *name)
{
  TCase *tc = tfx_tcase(name);
  tcase_add_checked_fixture(tc, reset_handled, NULL);
  return tc;
}

int main(void)
{
  Suite *s = suite_create("tcp_server");
  TCase *tc = tcase("accept");
  tcase_add_test(tc, test_accept_future);
  tcase_add_test(tc, test_queue_in_order);
  tcase_add_test(tc, test_accept_cancelled);
  tcase_add_test(tc, test_handler_set_late);
  tcase_add_test(tc, test_queue_full_pauses);
  suite_add_tcase(s, tc);
  tc = tcase("handler");
  tcase_add_test(tc, test_handler_write_and_close);
  tcase_add_test(tc, test_handler_failure_logged);
  tcase_add_test(tc, test_handler_closed_is_quiet);
  tcase_add_test(tc, test_handler_null_closes);
  suite_add_tcase(s, tc);
  tc = tcase("stop");
  tcase_add_test(tc, test_stop_twice);
  tcase_add_test(tc, test_stop_in_handler);
  tcase_add_test(tc, test_free_in_handler);
  tcase_add_test(tc, test_streams_outlive_server);
  tcase_add_test(tc, test_stop_closes_queued);
  tcase_add_test(tc, test_shutdown_waits_for_streams);
  tcase_add_test(tc, test_shutdown_grace_expires);
  tcase_add_test(tc, test_shutdown_closes_only_its_own);
  suite_add_tcase(s, tc);
  tc = tcase("limits");
  tcase_add_test(tc, test_max_connections);
  tcase_add_test(tc, test_stop_with_connections_waiting);
  tcase_add_test(tc, test_connection_count);
  tcase_add_test(tc, test_emfile_no_spin);
  suite_add_tcase(s, tc);
  tc = tcase("sockets");
  tcase_add_test(tc, test_bind_start_single);
  tcase_add_test(tc, test_add_socket_errors);
  tcase_add_test(tc, test_dual_stack);
  tcase_add_test(tc, test_unix_server);
  suite_add_tcase(s, tc);
  return tfx_run(s);
}
