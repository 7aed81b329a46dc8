/* SPDX-License-Identifier: MIT */
/*
 * TLS streams against real peers: openssl s_server / s_client and Python's
 * ssl module (tests/tls_peer.py), in both directions, TLS 1.2 and 1.3.
 *
 * Runs only when EDDY_TLS_PEERS is set (tests/test_tls_peers.sh does, after
 * checking the tools exist). Every peer runs under `timeout`, on 127.0.0.1
 * with a port the kernel picked (read back from the peer's output, or ours
 * from getsockname), and is stopped by its PID.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/stream_fixtures.h"
#include "tests/tls_fixtures.h"

#define PEER_TIMEOUT "30"

typedef struct peer {
  pid_t pid;
  int out;          /* its stdout, or -1 if that went to a file */
  char buf[8192];   /* stdout read so far, for peer_line() */
  size_t len;
} peer_t;

/* Starts `timeout PEER_TIMEOUT argv...` with stdin from @in_path (NULL:
 * /dev/null) and stdout to a pipe or, with @out_path, to that file. */
static peer_t peer_spawn(const char *const *argv, const char *in_path, const char *out_path)
{
  peer_t p = {.pid = -1, .out = -1};
  int pipefd[2] = {-1, -1};
  const char *args[40];
  size_t n = 0;

  args[n++] = "timeout";
  args[n++] = PEER_TIMEOUT;
  for (size_t i = 0; argv[i] != NULL && n < 39; i++)
    args[n++] = argv[i];
  args[n] = NULL;
  if (out_path == NULL)
    ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
  p.pid = fork();
  ck_assert_int_ge(p.pid, 0);
  if (p.pid == 0) {
    int in = open(in_path != NULL ? in_path : "/dev/null", O_RDONLY);
    int out = out_path != NULL ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : pipefd[1];
    int null = open("/dev/null", O_WRONLY);
    if (in < 0 || out < 0 || null < 0)
      _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    if (getenv("EDDY_TLS_PEER_STDERR") == NULL)
      dup2(null, 2); /* s_client's verify chatter */
    execvp(args[0], (char *const *)args);
    _exit(127);
  }
  if (out_path == NULL) {
    close(pipefd[1]);
    p.out = pipefd[0];
  }
  return p;
}

/* Reads the peer's output until a line starting with @prefix; copies the
 * rest of that line into @rest. Fails the test on EOF or after SFX_WAIT. */
static void peer_line(peer_t *p, const char *prefix, char *rest, size_t restlen)
{
  for (;;) {
    char *line = p->buf, *nl;
    while ((nl = memchr(line, '\n', p->len - (size_t)(line - p->buf))) != NULL) {
      *nl = '\0';
      if (strncmp(line, prefix, strlen(prefix)) == 0) {
        snprintf(rest, restlen, "%s", line + strlen(prefix));
        size_t used = (size_t)(nl + 1 - p->buf);
        memmove(p->buf, nl + 1, p->len - used);
        p->len -= used;
        return;
      }
      line = nl + 1;
    }
    /* Keep only the unfinished last line. */
    size_t keep = p->len - (size_t)(line - p->buf);
    memmove(p->buf, line, keep);
    p->len = keep;
    struct pollfd pfd = {.fd = p->out, .events = POLLIN};
    ck_assert_msg(poll(&pfd, 1, (int)(SFX_WAIT * 1000)) == 1, "peer said nothing ('%s')", prefix);
    ck_assert_msg(p->len < sizeof p->buf - 1, "peer line too long");
    ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
    ck_assert_msg(n > 0, "peer ended before '%s'", prefix);
    p->len += (size_t)n;
  }
}

/* Waits for the peer to exit (it is under `timeout`); returns its status. */
static int peer_wait(peer_t *p)
{
  int status = 0;
  ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
  p->pid = -1;
  if (p->out >= 0)
    close(p->out);
  p->out = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void peer_stop(peer_t *p)
{
  if (p->pid > 0) {
    kill(p->pid, SIGTERM);
    (void)peer_wait(p);
  }
}

static const char *peer_py(void)
{
  const char *py = getenv("EDDY_TLS_PEER_PY");
  ck_assert_msg(py != NULL, "EDDY_TLS_PEER_PY is not set");
  return py;
}

/* A TLS client stream connected to 127.0.0.1:@port. */
static eddy_stream_t *connect_tls(int port, SSL_CTX *ctx, const char *host)
{
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  eddy_stream_t *c = sfx_track(eddy_stream_new_tls(sfx_loop, -1, ctx, 0, host, NULL));
  ck_assert_ptr_nonnull(c);
  eddy_tls_context_free(ctx);
  sfx_expect_ok(eddy_stream_connect(c, (struct sockaddr *)&sin, sizeof sin));
  return c;
}

/* A listener on 127.0.0.1 port 0; its port in *port. */
static int listener(int *port)
{
  struct sockaddr_storage addr;
  socklen_t len;
  int l = sfx_tcp_listener(&addr, &len);
  *port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
  return l;
}

/* Accepts one connection on @l as a TLS server stream. */
static eddy_stream_t *accept_tls(int l, SSL_CTX *ctx)
{
  int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  close(l);
  eddy_stream_t *s = sfx_track(eddy_stream_new_tls(sfx_loop, fd, ctx, 1, NULL, NULL));
  ck_assert_ptr_nonnull(s);
  eddy_tls_context_free(ctx);
  return s;
}

/* Reads @n pattern bytes from @s, checks them and echoes them back. */
static void echo_pattern(eddy_stream_t *s, size_t n)
{
  eddy_future_t *r = eddy_stream_read_bytes(s, n, 0);
  sfx_wait(r);
  ck_assert_msg(eddy_future_state(r) == EDDY_FUTURE_RESOLVED, "read: %s", eddy_future_message(r));
  ck_assert(sfx_pattern_check(eddy_future_value(r), n, 0));
  sfx_expect_ok(eddy_stream_write_bytes_of(s, r));
  eddy_future_unref(r);
}

/* ------------------------------------------------------------------------ */
/* eddy client -> openssl s_server                                           */
/* ------------------------------------------------------------------------ */

static const char *const alpn_both[] = {"h2", "http/1.1", NULL};

/* Starts s_server -rev (lines come back reversed) with @extra options and
 * returns its port. */
static int s_server(peer_t *p, const char *cert, const char *const *extra)
{
  const char *argv[30] = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                          "-rev", "-cert", NULL, "-key", NULL};
  char certpath[512], keypath[512], rest[64];
  size_t n = 11;

  snprintf(certpath, sizeof certpath, "%s/%s.pem", EDDY_TEST_CERTS, cert);
  snprintf(keypath, sizeof keypath, "%s/%s.key", EDDY_TEST_CERTS, cert);
  argv[8] = certpath;
  argv[10] = keypath;
  for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  *p = peer_spawn(argv, NULL, NULL);
  peer_line(p, "ACCEPT 127.0.0.1:", rest, sizeof rest);
  return atoi(rest);
}

static void openssl_server_case(const char *version_flag, const char *want_version)
{
  peer_t p;
  eddy_tls_options_t o;
  const char *const extra[] = {version_flag, "-alpn", "http/1.1", NULL};
  int port = s_server(&p, "server", extra);

  eddy_tls_options_init(&o);
  o.alpn = alpn_both;
  eddy_stream_t *c = connect_tls(port, tfx_client_ctx(&o), "foo.example.com");
  sfx_write_str(c, "hello world\n");
  sfx_expect_str(eddy_stream_read_until(c, "\n", 1, 0), "dlrow olleh\n");
  ck_assert_str_eq(eddy_stream_tls_version(c), want_version);
  ck_assert_str_eq(eddy_stream_tls_alpn(c), "http/1.1");
  ck_assert_str_eq(eddy_stream_tls_peer_subject(c), "CN=foo.example.com");
  sfx_expect_ok(eddy_stream_shutdown_write(c));
  peer_stop(&p);
}

START_TEST(test_openssl_server)
{
  openssl_server_case("-tls1_3", "TLSv1.3");
  openssl_server_case("-tls1_2", "TLSv1.2");
}
END_TEST

START_TEST(test_openssl_server_sni_and_client_cert)
{
  peer_t p;
  eddy_tls_options_t o;
  const char *const extra[] = {"-Verify", "1", "-CAfile", TFX_CERT("ca.pem"), "-servername",
                               "bar.example.com", "-cert2", TFX_CERT("bar.pem"), "-key2",
                               TFX_CERT("bar.key"), NULL};
  int port = s_server(&p, "server", extra);

  eddy_tls_options_init(&o);
  o.certfile = TFX_CERT("client.pem");
  o.keyfile = TFX_CERT("client.key");
  eddy_stream_t *c = connect_tls(port, tfx_client_ctx(&o), "bar.example.com");
  sfx_write_str(c, "sni\n");
  sfx_expect_str(eddy_stream_read_until(c, "\n", 1, 0), "ins\n");
  ck_assert_str_eq(eddy_stream_tls_peer_subject(c), "CN=bar.example.com");
  peer_stop(&p);

  /* Without a client certificate the server refuses; in TLS 1.3 the client
   * learns it from the alert after its side of the handshake. */
  port = s_server(&p, "server", extra);
  c = connect_tls(port, tfx_client_ctx(NULL), "foo.example.com");
  eddy_future_t *r = eddy_stream_read_until(c, "\n", 1, 0);
  sfx_write_nowait(c, "x\n", 2);
  sfx_expect_error(r, EDDY_ECLOSED, EDDY_ETLS);
  ck_assert_ptr_nonnull(strstr(eddy_stream_error_message(c), "certificate required"));
  peer_stop(&p);
}
END_TEST

START_TEST(test_openssl_server_untrusted)
{
  peer_t p;
  int port = s_server(&p, "self", NULL);
  eddy_stream_t *c = connect_tls(port, tfx_client_ctx(NULL), "foo.example.com");
  tfx_handshake_fails(c, "certificate verify failed: self-signed certificate");
  peer_stop(&p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* openssl s_client -> eddy server                                           */
/* ------------------------------------------------------------------------ */

/* A temp file holding @n pattern bytes (or empty); path into @path. */
static void pattern_file(char *path, size_t pathlen, size_t n)
{
  snprintf(path, pathlen, "/tmp/eddy-tls-XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  char *data = malloc(n ? n : 1);
  sfx_pattern_fill(data, n, 0);
  sfx_raw_write_all(fd, data, n);
  free(data);
  close(fd);
}

/* Runs s_client with @extra against an eddy echo server of @n bytes from
 * @sctx; checks s_client got every byte back. Returns the server stream. */
static eddy_stream_t *openssl_client_case(SSL_CTX *sctx, const char *const *extra, size_t n)
{
  char in[64], out[64], portarg[32];
  int port, l = listener(&port);
  const char *argv[30] = {"openssl", "s_client", "-connect", portarg, "-servername",
                          "foo.example.com", "-CAfile", TFX_CERT("ca.pem"),
                          "-verify_return_error", "-quiet"};
  size_t k = 10;

  snprintf(portarg, sizeof portarg, "127.0.0.1:%d", port);
  for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
    argv[k++] = extra[i];
  argv[k] = NULL;
  pattern_file(in, sizeof in, n);
  pattern_file(out, sizeof out, 0);
  peer_t p = peer_spawn(argv, in, out);
  eddy_stream_t *s = accept_tls(l, sctx);
  echo_pattern(s, n);
  sfx_expect_ok(eddy_stream_shutdown_write(s)); /* close_notify, then FIN */
  ck_assert_int_eq(peer_wait(&p), 0);
  /* s_client wrote what it read to its stdout: the echo. */
  FILE *f = fopen(out, "rb");
  char *got = malloc(n + 1);
  ck_assert_uint_eq(fread(got, 1, n + 1, f), n);
  ck_assert(sfx_pattern_check(got, n, 0));
  free(got);
  fclose(f);
  unlink(in);
  unlink(out);
  return s;
}

START_TEST(test_openssl_client)
{
  size_t n = sfx_slow() ? 100000 : (1u << 20);
  eddy_tls_options_t so;
  const char *const tls12[] = {"-tls1_2", NULL};
  const char *const alpn_cert[] = {"-alpn", "h2", "-cert", TFX_CERT("client.pem"), "-key",
                                   TFX_CERT("client.key"), NULL};

  eddy_stream_t *s = openssl_client_case(tfx_server_ctx("server", NULL), NULL, n);
  ck_assert_str_eq(eddy_stream_tls_version(s), "TLSv1.3");
  s = openssl_client_case(tfx_server_ctx("server", NULL), tls12, n);
  ck_assert_str_eq(eddy_stream_tls_version(s), "TLSv1.2");

  eddy_tls_options_init(&so);
  so.alpn = alpn_both;
  so.cafile = TFX_CERT("ca.pem");
  so.verify = EDDY_TLS_VERIFY_REQUIRE;
  s = openssl_client_case(tfx_server_ctx("server", &so), alpn_cert, 1000);
  ck_assert_str_eq(eddy_stream_tls_alpn(s), "h2");
  ck_assert_str_eq(eddy_stream_tls_peer_subject(s), "CN=eddy test client");
}
END_TEST

START_TEST(test_openssl_client_wrong_host)
{
  char portarg[32];
  int port, l = listener(&port);
  snprintf(portarg, sizeof portarg, "127.0.0.1:%d", port);
  const char *const argv[] = {"openssl", "s_client", "-connect", portarg, "-CAfile",
                              TFX_CERT("ca.pem"), "-verify_hostname", "bar.example.com",
                              "-verify_return_error", "-quiet", NULL};
  peer_t p = peer_spawn(argv, NULL, NULL);
  eddy_stream_t *s = accept_tls(l, tfx_server_ctx("server", NULL));
  /* The client refuses our certificate and tells us with an alert. */
  tfx_handshake_fails(s, "alert");
  ck_assert_int_ne(peer_wait(&p), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Python's ssl module, both directions                                      */
/* ------------------------------------------------------------------------ */

static void python_server_case(const char *max_tls, const char *want_version)
{
  char rest[256];
  size_t n = sfx_slow() ? 100000 : (2u << 20);
  const char *argv[20] = {"python3", peer_py(), "server", "--cert", TFX_CERT("server.pem"),
                          "--key", TFX_CERT("server.key"), "--alpn", "h2", NULL};
  if (max_tls != NULL) {
    argv[9] = "--max-tls";
    argv[10] = max_tls;
    argv[11] = NULL;
  }
  peer_t p = peer_spawn(argv, NULL, NULL);
  peer_line(&p, "PORT ", rest, sizeof rest);
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.alpn = alpn_both;
  eddy_stream_t *c = connect_tls(atoi(rest), tfx_client_ctx(&o), "foo.example.com");
  char *data = malloc(n);
  sfx_pattern_fill(data, n, 0);
  eddy_future_t *w = eddy_stream_write_take(c, data, n, free);
  eddy_future_t *r = eddy_stream_read_bytes(c, n, 0);
  sfx_wait(r);
  ck_assert_msg(eddy_future_state(r) == EDDY_FUTURE_RESOLVED, "%s", eddy_future_message(r));
  ck_assert(sfx_pattern_check(eddy_future_value(r), n, 0));
  eddy_future_unref(r);
  sfx_expect_ok(w);
  peer_line(&p, "HANDSHAKE ", rest, sizeof rest);
  ck_assert_msg(strncmp(rest, want_version, strlen(want_version)) == 0, "python: %s", rest);
  ck_assert_str_eq(eddy_stream_tls_version(c), want_version);
  ck_assert_str_eq(eddy_stream_tls_alpn(c), "h2");
  /* Our close_notify; Python answers with its own (unwrap). */
  sfx_expect_ok(eddy_stream_shutdown_write(c));
  sfx_expect_str(eddy_stream_read_until_close(c), "");
  ck_assert_int_eq(eddy_stream_tls_close_notify(c), 1);
  ck_assert_int_eq(peer_wait(&p), 0);
}

START_TEST(test_python_server)
{
  python_server_case(NULL, "TLSv1.3");
  python_server_case("1.2", "TLSv1.2");
}
END_TEST

/* Runs tls_peer.py client against an eddy echo server from @sctx. */
static eddy_stream_t *python_client_case(SSL_CTX *sctx, const char *host, size_t n,
                                         const char *const *extra, char *result,
                                         size_t resultlen)
{
  char portarg[16], size[32];
  int port, l = listener(&port);
  const char *argv[30] = {"python3", peer_py(), "client", "--port", portarg, "--host", host,
                          "--cafile", TFX_CERT("ca.pem"), "--size", size};
  size_t k = 11;
  snprintf(portarg, sizeof portarg, "%d", port);
  snprintf(size, sizeof size, "%zu", n);
  for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
    argv[k++] = extra[i];
  argv[k] = NULL;
  peer_t p = peer_spawn(argv, NULL, NULL);
  eddy_stream_t *s = accept_tls(l, sctx);
  eddy_future_t *hs = eddy_stream_wait_for_handshake(s);
  sfx_wait(hs);
  if (eddy_future_state(hs) == EDDY_FUTURE_RESOLVED)
    echo_pattern(s, n);
  eddy_future_unref(hs);
  peer_line(&p, "", result, resultlen); /* HANDSHAKE ... or ERR ... */
  if (strncmp(result, "HANDSHAKE", 9) == 0)
    peer_line(&p, "", result, resultlen); /* OK or ERR */
  (void)peer_wait(&p);
  return s;
}

START_TEST(test_python_client)
{
  char result[512];
  size_t n = sfx_slow() ? 100000 : (2u << 20);
  const char *const tls12[] = {"--max-tls", "1.2", NULL};
  const char *const cert_alpn[] = {"--cert", TFX_CERT("client.pem"), "--key",
                                   TFX_CERT("client.key"), "--alpn", "http/1.1", NULL};
  eddy_tls_options_t so;

  eddy_stream_t *s = python_client_case(tfx_server_ctx("server", NULL), "foo.example.com", n,
                                        NULL, result, sizeof result);
  ck_assert_msg(strcmp(result, "OK") == 0, "python: %s", result);
  ck_assert_str_eq(eddy_stream_tls_version(s), "TLSv1.3");

  s = python_client_case(tfx_server_ctx("server", NULL), "foo.example.com", n, tls12, result,
                         sizeof result);
  ck_assert_msg(strcmp(result, "OK") == 0, "python: %s", result);
  ck_assert_str_eq(eddy_stream_tls_version(s), "TLSv1.2");

  eddy_tls_options_init(&so);
  so.alpn = alpn_both;
  so.cafile = TFX_CERT("ca.pem");
  so.verify = EDDY_TLS_VERIFY_REQUIRE;
  s = python_client_case(tfx_server_ctx("server", &so), "foo.example.com", 1000, cert_alpn,
                         result, sizeof result);
  ck_assert_msg(strcmp(result, "OK") == 0, "python: %s", result);
  ck_assert_str_eq(eddy_stream_tls_alpn(s), "http/1.1");
  ck_assert_str_eq(eddy_stream_tls_peer_subject(s), "CN=eddy test client");
}
END_TEST

START_TEST(test_python_client_rejects)
{
  char result[512];

  eddy_stream_t *s = python_client_case(tfx_server_ctx("server", NULL), "bar.example.com", 10,
                                        NULL, result, sizeof result);
  ck_assert_msg(strstr(result, "Hostname mismatch") != NULL, "python: %s", result);
  sfx_run_until_closed(s);
  ck_assert_int_eq(eddy_stream_error(s), EDDY_ETLS);

  python_client_case(tfx_server_ctx("expired", NULL), "foo.example.com", 10, NULL, result,
                     sizeof result);
  ck_assert_msg(strstr(result, "certificate has expired") != NULL, "python: %s", result);

  python_client_case(tfx_server_ctx("self", NULL), "foo.example.com", 10, NULL, result,
                     sizeof result);
  ck_assert_msg(strstr(result, "self-signed certificate") != NULL, "python: %s", result);
}
END_TEST

/* Python's unwrap(): close_notify with TCP left open, then it waits for
 * ours. Our pending read_until_close ends, the stream answers and closes,
 * and Python sees our close_notify and then the FIN. */
START_TEST(test_python_unwrap)
{
  char result[512], portarg[16];
  int port, l = listener(&port);
  snprintf(portarg, sizeof portarg, "%d", port);
  const char *const argv[] = {"python3", peer_py(), "client", "--port", portarg, "--host",
                              "foo.example.com", "--cafile", TFX_CERT("ca.pem"), "--size",
                              "1000", "--unwrap", NULL};
  peer_t p = peer_spawn(argv, NULL, NULL);
  eddy_stream_t *s = accept_tls(l, tfx_server_ctx("server", NULL));
  echo_pattern(s, 1000);
  eddy_future_t *r = eddy_stream_read_until_close(s);
  sfx_wait(r);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(r), 0);
  eddy_future_unref(r);
  ck_assert(eddy_stream_closed(s));
  ck_assert_int_eq(eddy_stream_error(s), 0);
  ck_assert_int_eq(eddy_stream_tls_close_notify(s), 1);
  peer_line(&p, "HANDSHAKE", result, sizeof result);
  peer_line(&p, "", result, sizeof result);
  ck_assert_msg(strcmp(result, "OK") == 0, "python: %s", result);
  ck_assert_int_eq(peer_wait(&p), 0);
}
END_TEST

Suite *tfx_peers_suite(void)
{
  Suite *s = suite_create("tls_peers");
  if (getenv("EDDY_TLS_PEERS") == NULL)
    return s; /* only under tests/test_tls_peers.sh */
  TCase *tc = tcase_create("peers");
  sfx_tcase_setup(tc, 90);
  tcase_add_test(tc, test_openssl_server);
  tcase_add_test(tc, test_openssl_server_sni_and_client_cert);
  tcase_add_test(tc, test_openssl_server_untrusted);
  tcase_add_test(tc, test_openssl_client);
  tcase_add_test(tc, test_openssl_client_wrong_host);
  tcase_add_test(tc, test_python_server);
  tcase_add_test(tc, test_python_client);
  tcase_add_test(tc, test_python_client_rejects);
  tcase_add_test(tc, test_python_unwrap);
  suite_add_tcase(s, tc);
  return s;
}
