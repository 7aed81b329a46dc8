/* SPDX-License-Identifier: MIT */
/*
 * TLS through the TCP layer's public API: eddy_tcp_server_t with a
 * tls_ctx (handshake in progress or handshake first, handshake timeout,
 * clients that send plain text, leave mid-handshake or say nothing, stop
 * while handshaking), real peers against it (Python's ssl module and
 * `openssl s_client`, run as child processes while the loop serves), and
 * eddy_tcp_connect() with a tls_ctx (verified by name, default name, wrong
 * name, self-signed, a handshake that never gets an answer: timeout and
 * cancellation close everything, no fd left behind: Tornado #3614).
 *
 * Everything listens on 127.0.0.1 port 0. Certificates: tests/gen-certs.sh,
 * in EDDY_TEST_CERTS. Every test checks that the process ends with the fds
 * it started with (tcp_fixtures.c).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eddy.h"
#include "tests/tcp_fixtures.h"

#ifndef EDDY_TEST_CERTS
#error "EDDY_TEST_CERTS must name the directory gen-certs.sh filled"
#endif
#define CERT(name) EDDY_TEST_CERTS "/" name

extern char **environ;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* How much longer things take here: 10 under valgrind (check-valgrind sets
 * CK_TIMEOUT_MULTIPLIER) or with EDDY_TEST_SLOW set, else 1. Scales the
 * deadlines that a handshake has to beat. */
static double slow(void)
{
  const char *m = getenv("CK_TIMEOUT_MULTIPLIER"), *e = getenv("EDDY_TEST_SLOW");
  if ((e != NULL && *e != '\0' && strcmp(e, "0") != 0) || (m != NULL && atoi(m) > 1))
    return 10;
  return 1;
}

/* A server context presenting certs/@name.pem and .key. */
static struct ssl_ctx_st *server_ctx(const char *name)
{
  eddy_tls_options_t o;
  struct ssl_ctx_st *ctx = NULL;
  char cert[512], key[512], err[512];

  eddy_tls_options_init(&o);
  snprintf(cert, sizeof cert, "%s/%s.pem", EDDY_TEST_CERTS, name);
  snprintf(key, sizeof key, "%s/%s.key", EDDY_TEST_CERTS, name);
  o.certfile = cert;
  o.keyfile = key;
  ck_assert_msg(eddy_tls_server_context(&o, &ctx, err, sizeof err) == 0,
                "server context: %s", err);
  return ctx;
}

/* A verifying client context trusting the test CA. */
static struct ssl_ctx_st *client_ctx(void)
{
  eddy_tls_options_t o;
  struct ssl_ctx_st *ctx = NULL;
  char err[512];

  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  ck_assert_msg(eddy_tls_client_context(&o, &ctx, err, sizeof err) == 0,
                "client context: %s", err);
  return ctx;
}

/* What the handlers saw. */
static struct {
  int calls;
  int handshake_done_at_call; /* of the last call */
  eddy_stream_t *last;        /* a reference, for tests that look at it */
} seen;

static eddy_future_t *shut_down(eddy_future_t *written, void *s)
{
  (void)written;
  return eddy_stream_shutdown_write(s);
}

static eddy_future_t *echo_line(eddy_future_t *line, void *s)
{
  return eddy_then_ok(eddy_stream_write_bytes_of(s, line), shut_down, s);
}

/* Echoes one line, then sends close_notify and FIN. */
static eddy_future_t *echo_once(eddy_stream_t *s, const struct sockaddr *peer,
                                void *arg)
{
  (void)peer;
  (void)arg;
  seen.calls++;
  seen.handshake_done_at_call = eddy_stream_tls_handshake_done(s);
  return eddy_then_ok(eddy_stream_read_until(s, "\n", 1, 0), echo_line, s);
}

/* Keeps the stream (seen.last) and returns at once. */
static eddy_future_t *keep(eddy_stream_t *s, const struct sockaddr *peer,
                           void *arg)
{
  (void)peer;
  (void)arg;
  seen.calls++;
  seen.handshake_done_at_call = eddy_stream_tls_handshake_done(s);
  eddy_stream_unref(seen.last);
  seen.last = eddy_stream_ref(s);
  return EDDY_NO_VALUE;
}

static void forget_last(void)
{
  eddy_stream_unref(seen.last);
  memset(&seen, 0, sizeof seen);
}

/* A TLS server on 127.0.0.1 port 0 presenting @cert. It keeps its own
 * context reference: ours is dropped at once. */
static eddy_tcp_server_t *tls_server(const char *cert, int handshake_first,
                                     double handshake_timeout,
                                     eddy_stream_handler_fn fn)
{
  eddy_tcp_server_options_t o;
  eddy_tcp_server_options_init(&o);
  o.tls_ctx = server_ctx(cert);
  o.tls_handshake_first = handshake_first;
  o.tls_handshake_timeout = handshake_timeout;
  eddy_tcp_server_t *srv = eddy_tcp_server_new(tfx_loop, &o);
  eddy_tls_context_free(o.tls_ctx);
  ck_assert_ptr_nonnull(srv);
  if (fn != NULL)
    eddy_tcp_server_set_handler(srv, fn, NULL);
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
  return srv;
}

/* eddy_tcp_connect() to 127.0.0.1:@port over TLS, trusting the test CA.
 * The context is freed at once: the connect keeps its own. */
static eddy_future_t *tls_connect(int port, const char *server_hostname,
                                  double timeout)
{
  eddy_tcp_connect_options_t o;
  eddy_tcp_connect_options_init(&o);
  o.tls_ctx = client_ctx();
  o.server_hostname = server_hostname;
  o.timeout = timeout;
  eddy_future_t *f = eddy_tcp_connect(tfx_loop, "127.0.0.1", port, &o);
  eddy_tls_context_free(o.tls_ctx);
  ck_assert_ptr_nonnull(f);
  return f;
}

/* Connects as foo.example.com, sends a line, expects it back. */
static void tls_roundtrip(int port, const char *line)
{
  eddy_future_t *f = tls_connect(port, "foo.example.com", 10);
  eddy_stream_t *c = tfx_take_stream(f);
  ck_assert(eddy_stream_tls_handshake_done(c));
  ck_assert_str_eq(eddy_stream_tls_peer_subject(c), "CN=foo.example.com");
  eddy_future_unref(eddy_stream_write(c, line, strlen(line)));
  eddy_future_t *r = eddy_stream_read_until(c, "\n", 1, 0);
  tfx_wait(r);
  ck_assert_msg(eddy_future_error(r) == 0, "read: %s", eddy_future_message(r));
  ck_assert_str_eq(eddy_future_value(r), line);
  eddy_future_unref(r);
  eddy_stream_unref(c);
}

/* Runs the loop until the peer of the raw socket @fd closes it. */
static void run_until_peer_closed(int fd)
{
  char buf[4096];
  for (int i = 0; i < TFX_WAIT * 100; i++) {
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
      ; /* an alert, say */
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      return;
    tfx_run_for(0.01);
  }
  ck_abort_msg("the server did not close the connection");
}

/* Whether @tool can be run (python3, openssl). */
static int have(const char *tool)
{
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
  return system(cmd) == 0;
}

/*
 * Runs @argv (bounded by timeout(1)) with @input on its stdin while the loop
 * serves, and returns what it printed (malloc'ed) once it has exited with
 * status 0.
 */
static char *run_peer(char *const argv[], const char *input)
{
  int in[2], out[2];
  pid_t pid;
  posix_spawn_file_actions_t fa;

  ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
  ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (getenv("EDDY_TEST_VERBOSE") == NULL)
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  ck_assert_int_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  size_t len = strlen(input);
  ck_assert_int_eq(write(in[1], input, len), (ssize_t)len); /* fits the pipe */
  close(in[1]);

  eddy_stream_t *o = eddy_stream_new_pipe(tfx_loop, out[0], NULL);
  ck_assert_ptr_nonnull(o);
  eddy_future_t *output = eddy_stream_read_until_close(o);
  tfx_wait(output);
  size_t n;
  char *text = eddy_future_take(output, &n);
  eddy_future_unref(output);
  eddy_stream_unref(o);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s exited with status %d; printed '%s'", argv[2], status,
                text ? text : "");
  return text;
}

/* ------------------------------------------------------------------------ */
/* The server                                                                */
/* ------------------------------------------------------------------------ */

/* As Tornado (_i == 0): the handler gets the stream at once, handshake
 * running; reads wait for it. With tls_handshake_first (_i == 1): once
 * the handshake is done. */
START_TEST(test_server_handler)
{
  eddy_tcp_server_t *srv = tls_server("server", _i, 0, echo_once);
  tls_roundtrip(tfx_server_port(srv), "hello\n");
  ck_assert_int_eq(seen.calls, 1);
  ck_assert_int_eq(seen.handshake_done_at_call, _i);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Accept futures get TLS streams too; with handshake_first, done ones. */
START_TEST(test_server_accept_future)
{
  int first = _i;
  eddy_tcp_server_t *srv = tls_server("server", first, 0, NULL);
  eddy_future_t *a = eddy_tcp_server_accept(srv);
  eddy_future_t *c = tls_connect(tfx_server_port(srv), "foo.example.com", 10);
  eddy_stream_t *s = tfx_take_stream(a);
  ck_assert(eddy_stream_is_tls(s));
  if (first)
    ck_assert(eddy_stream_tls_handshake_done(s));
  eddy_stream_t *cs = tfx_take_stream(c);
  eddy_future_t *hs = eddy_stream_wait_for_handshake(s);
  tfx_wait(hs);
  ck_assert_ptr_eq(eddy_future_value(hs), s);
  eddy_future_unref(hs);
  ck_assert_str_eq(eddy_stream_tls_server_name(s), "foo.example.com");
  ck_assert_str_eq(eddy_stream_tls_cipher(s), eddy_stream_tls_cipher(cs));
  eddy_stream_unref(cs);
  eddy_stream_unref(s);
  eddy_tcp_server_free(srv);
}
END_TEST

/* After a client whose handshake failed, on a server made with
 * failing_client_server(): under handshake_first the handler never saw it;
 * otherwise it did, and the stream is closed (with @error if non-zero).
 * Then a good client is served. */
static eddy_tcp_server_t *failing_client_server(int first)
{
  return tls_server("server", first, 0, first ? echo_once : keep);
}

static void expect_failed_then_serve(eddy_tcp_server_t *srv, int first,
                                     int error)
{
  if (first) {
    ck_assert_int_eq(seen.calls, 0);
  } else {
    ck_assert_int_eq(seen.calls, 1);
    ck_assert(eddy_stream_closed(seen.last));
    if (error != 0)
      ck_assert_int_eq(eddy_stream_error(seen.last), error);
    forget_last();
    eddy_tcp_server_set_handler(srv, echo_once, NULL);
  }
  ck_assert_int_eq(eddy_tcp_server_connection_count(srv), 0);
  tls_roundtrip(tfx_server_port(srv), "still serving\n");
  eddy_tcp_server_free(srv);
}

/* Plain text to the TLS port: that connection fails and the server goes
 * on; under handshake_first the failure is logged at info level. */
START_TEST(test_server_plain_text_client)
{
  eddy_tcp_server_t *srv = failing_client_server(_i);
  int fd = tfx_connect(tfx_server_port(srv));
  tfx_send(fd, "GET / HTTP/1.0\r\n\r\n");
  run_until_peer_closed(fd);
  close(fd);
  tfx_run_for(0.05);
  if (_i)
    ck_assert(tfx_log_contains(EDDY_LOG_INFO, "TLS handshake with 127.0.0.1:"));
  expect_failed_then_serve(srv, _i, EDDY_ETLS);
}
END_TEST

/* A client that leaves in the middle of its hello: closed without a
 * warning. */
START_TEST(test_server_client_drops_mid_handshake)
{
  eddy_tcp_server_t *srv = failing_client_server(_i);
  int fd = tfx_connect(tfx_server_port(srv));
  /* A handshake record header announcing 512 bytes, and one byte of it. */
  tfx_send(fd, "\x16\x03\x01\x02\x00\x01");
  tfx_run_for(0.05);
  close(fd);
  tfx_run_for(0.1);
  ck_assert_int_eq(tfx_log_count(EDDY_LOG_WARNING), 0);
  expect_failed_then_serve(srv, _i, 0);
}
END_TEST

/* A client that says nothing is closed once tls_handshake_timeout passes
 * (Tornado #2785), handed out or not. */
START_TEST(test_server_handshake_timeout)
{
  int first = _i;
  eddy_tcp_server_t *srv = tls_server("server", first, 0.2 * slow(), first ? NULL : keep);
  int fd = tfx_connect(tfx_server_port(srv));
  double t0 = now();
  run_until_peer_closed(fd);
  double took = now() - t0;
  close(fd);
  ck_assert_msg(took > 0.15 * slow() && took < 3 * slow(), "closed after %.3f s", took);
  if (first) {
    ck_assert(tfx_log_contains(EDDY_LOG_INFO, "timed out"));
  } else {
    ck_assert_int_eq(seen.calls, 1);
    ck_assert(eddy_stream_closed(seen.last));
    ck_assert_int_eq(eddy_stream_error(seen.last), EDDY_ETIMEOUT);
    forget_last();
  }
  ck_assert_int_eq(eddy_tcp_server_connection_count(srv), 0);
  eddy_tcp_server_free(srv);
}
END_TEST

/* The handshake timeout ends with the handshake: an idle TLS connection
 * lives on past it. */
START_TEST(test_server_handshake_timeout_spares_done_handshakes)
{
  eddy_tcp_server_t *srv = tls_server("server", _i, 0.2 * slow(), keep);
  eddy_stream_t *c = tfx_take_stream(tls_connect(tfx_server_port(srv),
                                                 "foo.example.com", 10));
  tfx_run_for(0.4 * slow());
  ck_assert_ptr_nonnull(seen.last);
  ck_assert(!eddy_stream_closed(seen.last));
  eddy_future_unref(eddy_stream_write(c, "late\n", 5));
  eddy_future_t *r = eddy_stream_read_until(seen.last, "\n", 1, 0);
  tfx_wait(r);
  ck_assert_str_eq(eddy_future_value(r), "late\n");
  eddy_future_unref(r);
  eddy_stream_unref(c);
  forget_last();
  eddy_tcp_server_free(srv);
}
END_TEST

/* Stopping (and shutting down) closes connections still handshaking. */
START_TEST(test_server_stop_while_handshaking)
{
  eddy_tcp_server_t *srv = tls_server("server", 1, -1, echo_once);
  int fd = tfx_connect(tfx_server_port(srv));
  tfx_run_for(0.05);
  eddy_future_t *done = eddy_tcp_server_shutdown(srv, 5.0);
  tfx_wait(done);
  ck_assert_int_eq(eddy_future_error(done), 0);
  eddy_future_unref(done);
  run_until_peer_closed(fd);
  close(fd);
  ck_assert_int_eq(seen.calls, 0);
  eddy_tcp_server_free(srv);
}
END_TEST

/* max_connections counts connections in their handshake: a silent client
 * at the limit keeps the next one waiting in the backlog. */
START_TEST(test_server_max_connections_counts_handshakes)
{
  eddy_tcp_server_options_t o;
  eddy_tcp_server_options_init(&o);
  o.tls_ctx = server_ctx("server");
  o.tls_handshake_first = 1;
  o.tls_handshake_timeout = 0.3 * slow();
  o.max_connections = 1;
  eddy_tcp_server_t *srv = eddy_tcp_server_new(tfx_loop, &o);
  eddy_tls_context_free(o.tls_ctx);
  eddy_tcp_server_set_handler(srv, echo_once, NULL);
  ck_assert_int_eq(eddy_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
  int port = tfx_server_port(srv);
  int silent = tfx_connect(port);
  tfx_run_for(0.05);
  double t0 = now();
  tls_roundtrip(port, "waited\n"); /* after the silent one timed out */
  ck_assert_msg(now() - t0 > 0.15 * slow(), "served at once, past max_connections");
  close(silent);
  eddy_tcp_server_free(srv);
}
END_TEST

/* Real peers: Python's ssl module and openssl s_client, verifying the
 * chain and the name, in both handshake modes. */
START_TEST(test_server_real_peers)
{
  int python = _i / 2, first = _i % 2;
  if (!have(python ? "python3" : "openssl")) {
    fprintf(stderr, "skip: no %s\n", python ? "python3" : "openssl");
    return;
  }
  signal(SIGPIPE, SIG_IGN);
  eddy_tcp_server_t *srv = tls_server("server", first, 0, echo_once);
  char port[16];
  snprintf(port, sizeof port, "%d", tfx_server_port(srv));
  char *text;
  if (python) {
    static const char script[] =
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
        "raw = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n"
        "s = ctx.wrap_socket(raw, server_hostname='foo.example.com')\n"
        "s.sendall(sys.stdin.buffer.read())\n"
        "data = b''\n"
        "while True:\n"
        "    chunk = s.recv(4096)\n"
        "    if not chunk:\n"
        "        break\n"
        "    data += chunk\n"
        "sys.stdout.write(data.decode() + s.version())\n";
    char *argv[] = {"timeout", "20", "python3", "-c", (char *)script, port,
                    CERT("ca.pem"), NULL};
    text = run_peer(argv, "hello from python\n");
    ck_assert_msg(strcmp(text, "hello from python\nTLSv1.3") == 0, "got '%s'", text);
  } else {
    char connect[64];
    snprintf(connect, sizeof connect, "127.0.0.1:%s", port);
    char *argv[] = {"timeout", "20", "openssl", "s_client", "-connect", connect,
                    "-servername", "foo.example.com", "-verify_hostname",
                    "foo.example.com", "-CAfile", CERT("ca.pem"),
                    "-verify_return_error", "-quiet", NULL};
    text = run_peer(argv, "hello from s_client\n");
    ck_assert_msg(strcmp(text, "hello from s_client\n") == 0, "got '%s'", text);
  }
  free(text);
  ck_assert_int_eq(seen.calls, 1);
  ck_assert_int_eq(seen.handshake_done_at_call, first);
  eddy_tcp_server_free(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The client                                                                */
/* ------------------------------------------------------------------------ */

/* The connect future resolves after the handshake, verified by name. */
START_TEST(test_client_verified)
{
  eddy_tcp_server_t *srv = tls_server("server", 0, 0, echo_once);
  tls_roundtrip(tfx_server_port(srv), "verified\n");
  eddy_tcp_server_free(srv);
}
END_TEST

/* No server_hostname: the host argument is the name checked. 127.0.0.1 is
 * in localhost.pem's IP SANs, not in server.pem's. */
/* A server presenting certs/@cert refuses a client verifying it as
 * @name (NULL: the host, 127.0.0.1) with EDDY_ETLS and @why. */
static void expect_refused(const char *cert, const char *name, const char *why)
{
  eddy_tcp_server_t *srv = tls_server(cert, 0, 0, keep);
  eddy_future_t *f = tls_connect(tfx_server_port(srv), name, 10);
  tfx_wait(f);
  ck_assert_msg(eddy_future_error(f) == EDDY_ETLS, "got %s: %s",
                eddy_err_name(eddy_future_error(f)), eddy_future_message(f));
  ck_assert_msg(strstr(eddy_future_message(f), why) != NULL,
                "message '%s' lacks '%s'", eddy_future_message(f), why);
  eddy_future_unref(f);
  forget_last();
  eddy_tcp_server_free(srv);
}

/* No server_hostname: the host argument is the name checked. 127.0.0.1 is
 * in localhost.pem's IP SANs, not in server.pem's. */
START_TEST(test_client_default_name_is_host)
{
  eddy_tcp_server_t *srv = tls_server("localhost", 0, 0, echo_once);
  eddy_stream_t *c = tfx_take_stream(tls_connect(tfx_server_port(srv), NULL, 10));
  ck_assert(eddy_stream_tls_handshake_done(c));
  ck_assert_int_eq(eddy_stream_tls_verify_result(c), 0);
  eddy_stream_unref(c);
  eddy_tcp_server_free(srv);
  expect_refused("server", NULL, "certificate verify failed: IP address mismatch");
}
END_TEST

START_TEST(test_client_wrong_name)
{
  expect_refused("server", "bar.example.com",
                 "certificate verify failed: hostname mismatch");
}
END_TEST

/* A self-signed certificate nobody vouches for. */
START_TEST(test_client_self_signed)
{
  expect_refused("self", "foo.example.com",
                 "certificate verify failed: self-signed certificate");
}
END_TEST

/* A listener that never answers the ClientHello (non-blocking). */
static int silent_listener(int *port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(fd, 8), 0);
  *port = tfx_local_port(fd);
  return fd;
}

/* Expects the socket our client left in @listener's backlog to be closed:
 * accepts it and reads its ClientHello, then EOF. */
static void expect_client_gone(int listener)
{
  int fd;
  /* Queued already; make check-faults injects EINTR, EAGAIN and
   * ECONNABORTED into this process's accepts, so a few tries. */
  for (int tries = 0; (fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0 && tries < 100;
       tries++) {
    ck_assert(errno == EINTR || errno == EAGAIN || errno == ECONNABORTED);
    usleep(1000);
  }
  ck_assert_int_ge(fd, 0);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  long n = tfx_recv_all(fd, buf, sizeof buf);
  ck_assert_msg(n > 0 && buf[0] == 0x16, "no ClientHello (%ld)", n);
  close(fd);
}

/* Tornado #3614: the timeout covers the handshake and closes the TLS
 * stream (_i == 0); so does cancelling (_i == 1). Nothing is left open,
 * and the silent server sees the client's hello, then its close. */
START_TEST(test_client_abandoned_in_handshake)
{
  int cancel = _i;
  int port, listener = silent_listener(&port);
  int fds = tfx_fd_count();
  double t0 = now();
  eddy_future_t *f = tls_connect(port, "foo.example.com", cancel ? 0 : 0.3);
  if (cancel) {
    tfx_run_for(0.1);
    ck_assert(!eddy_future_done(f));
    ck_assert_int_eq(eddy_future_cancel(f), 0);
  } else {
    tfx_wait(f);
    double took = now() - t0;
    ck_assert_int_eq(eddy_future_error(f), EDDY_ETIMEOUT);
    ck_assert_msg(strstr(eddy_future_message(f), "TLS handshake") != NULL,
                  "message: %s", eddy_future_message(f));
    ck_assert_msg(took > 0.25 && took < 3, "took %.3f s", took);
  }
  eddy_future_unref(f);
  tfx_run_for(0.01);
  ck_assert_int_eq(tfx_fd_count(), fds);
  expect_client_gone(listener);
  close(listener);
}
END_TEST

/* A plain TCP server that closes at once: a clear failure, no leak. */
START_TEST(test_client_peer_closes_in_handshake)
{
  int port, listener = silent_listener(&port);
  int fds = tfx_fd_count();
  eddy_future_t *f = tls_connect(port, "foo.example.com", 10);
  int fd;
  while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0)
    tfx_run_for(0.005);
  close(fd);
  tfx_wait(f);
  ck_assert_int_ne(eddy_future_error(f), 0);
  ck_assert_ptr_nonnull(eddy_future_message(f));
  eddy_future_unref(f);
  tfx_run_for(0.01);
  ck_assert_int_eq(tfx_fd_count(), fds);
  close(listener);
}
END_TEST

/* ------------------------------------------------------------------------ */

int main(void)
{
  Suite *s = suite_create("tls_server");
  TCase *tc = tfx_tcase("server");
  tcase_add_loop_test(tc, test_server_handler, 0, 2);
  tcase_add_loop_test(tc, test_server_accept_future, 0, 2);
  tcase_add_loop_test(tc, test_server_plain_text_client, 0, 2);
  tcase_add_loop_test(tc, test_server_client_drops_mid_handshake, 0, 2);
  tcase_add_loop_test(tc, test_server_handshake_timeout, 0, 2);
  tcase_add_loop_test(tc, test_server_handshake_timeout_spares_done_handshakes, 0, 2);
  tcase_add_test(tc, test_server_stop_while_handshaking);
  tcase_add_test(tc, test_server_max_connections_counts_handshakes);
  tcase_add_loop_test(tc, test_server_real_peers, 0, 4);
  suite_add_tcase(s, tc);
  TCase *tcl = tfx_tcase("client");
  tcase_add_test(tcl, test_client_verified);
  tcase_add_test(tcl, test_client_default_name_is_host);
  tcase_add_test(tcl, test_client_wrong_name);
  tcase_add_test(tcl, test_client_self_signed);
  tcase_add_loop_test(tcl, test_client_abandoned_in_handshake, 0, 2);
  tcase_add_test(tcl, test_client_peer_closes_in_handshake);
  suite_add_tcase(s, tcl);
  return tfx_run(s);
}
