/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_tls.c - eddy's TLS streams against a peer that speaks
 * fuzzer bytes, through a socketpair.
 *
 * Input: one mode byte, then chunks, each a length byte and that many
 * bytes (the last may be short). Modes (mode byte & 3):
 *   0  the chunks are a client's records to an eddy TLS server stream;
 *   1  they are a server's answers to an eddy TLS client (what it sends,
 *      its ClientHello first, is read and dropped);
 *   2  an OpenSSL client completes a real handshake with the eddy server,
 *      then each chunk is either application data it encrypts and sends
 *      (a chunk whose first byte is even) or raw bytes it injects between
 *      records (odd): a corrupted or forged record;
 *   3  the same with an OpenSSL server and an eddy client.
 * The eddy side keeps a partial read pending throughout. The oracle:
 * memory safety (ASan/UBSan), every future settles, the stream closes
 * exactly once after the peer leaves, and in modes 2 and 3 the plaintext
 * eddy delivers is exactly what the peer encrypted, in order, up to the
 * first injected byte (after which the stream may only fail, with
 * EDDY_ETLS or a close, never deliver forged bytes).
 *
 * The certificates are the TLS suites' (tests/gen-certs.sh makes them in
 * the build tree: EDDY_TEST_CERTS); no key is committed.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <eddy.h>

#include "fuzz.h"

static struct ssl_ctx_st *server_ctx, *client_ctx; /* eddy's */
static SSL_CTX *peer_client_ctx, *peer_server_ctx;  /* the OpenSSL peer's */

static void quiet(eddy_log_level_t level, const char *message, void *arg)
{
  (void)level;
  (void)message;
  (void)arg;
}

static void init(void)
{
  eddy_tls_options_t opt;
  char err[512];

  signal(SIGPIPE, SIG_IGN);
  eddy_tls_options_init(&opt);
  opt.certfile = EDDY_TEST_CERTS "/server.pem";
  opt.keyfile = EDDY_TEST_CERTS "/server.key";
  if (eddy_tls_server_context(&opt, &server_ctx, err, sizeof(err)) != 0) {
    fprintf(stderr, "fuzz_tls: %s (make check makes the certificates)\n", err);
    abort();
  }
  eddy_tls_options_init(&opt);
  opt.verify = EDDY_TLS_VERIFY_NONE; /* reach past the certificate */
  CHECK(eddy_tls_client_context(&opt, &client_ctx, err, sizeof(err)) == 0);

  peer_client_ctx = SSL_CTX_new(TLS_client_method());
  CHECK(peer_client_ctx != NULL);
  SSL_CTX_set_verify(peer_client_ctx, SSL_VERIFY_NONE, NULL);
  peer_server_ctx = SSL_CTX_new(TLS_server_method());
  CHECK(peer_server_ctx != NULL);
  CHECK(SSL_CTX_use_certificate_chain_file(peer_server_ctx,
                                           EDDY_TEST_CERTS "/server.pem") == 1);
  CHECK(SSL_CTX_use_PrivateKey_file(peer_server_ctx, EDDY_TEST_CERTS "/server.key",
                                    SSL_FILETYPE_PEM) == 1);
}

struct run {
  eddy_loop_t *loop;
  eddy_stream_t *s;
  int peer;
  SSL *ssl;         /* modes 2, 3: the real peer */
  int injected;     /* raw bytes went in between records */
  int closes;
  eddy_future_t *rf, *hs;
  uint8_t *expect;  /* what the peer encrypted */
  size_t expect_len, got;
};

static void on_close(eddy_stream_t *s, int error, void *arg)
{
  struct run *r = arg;
  (void)error;
  CHECK(s == r->s);
  CHECK(++r->closes == 1);
}

/* The pending read's bytes: what the real peer encrypted, in order. A
 * forged record can only end the stream, so this holds after one too. */
static void poll_read(struct run *r)
{
  if (r->rf == NULL || !eddy_future_done(r->rf))
    return;
  if (eddy_future_state(r->rf) == EDDY_FUTURE_RESOLVED) {
    size_t n = eddy_future_size(r->rf);
    if (r->ssl != NULL) {
      CHECK(r->got + n <= r->expect_len);
      CHECK(memcmp(r->expect + r->got, eddy_future_value(r->rf), n) == 0);
    }
    r->got += n;
  } else {
    int code = eddy_future_error(r->rf);
    CHECK(code == EDDY_ECLOSED || code == EDDY_ETLS);
  }
  eddy_future_unref(r->rf);
  r->rf = NULL;
  if (!eddy_stream_closed(r->s)) {
    r->rf = eddy_stream_read_bytes(r->s, 4096, 1);
    CHECK(r->rf != NULL);
  }
}

/* Reads and drops what eddy sends; a real peer feeds it to OpenSSL. */
static void peer_step(struct run *r)
{
  char buf[4096];
  if (r->ssl != NULL) {
    if (!SSL_is_init_finished(r->ssl))
      SSL_do_handshake(r->ssl);
    else
      while (SSL_read(r->ssl, buf, sizeof(buf)) > 0)
        ;
    ERR_clear_error();
    return;
  }
  while (read(r->peer, buf, sizeof(buf)) > 0)
    ;
}

struct spin {
  struct run *r;
  eddy_future_t *f;
  int left;
};

static void tick(void *arg)
{
  struct spin *sp = arg;
  peer_step(sp->r);
  if (--sp->left <= 0)
    eddy_future_resolve(sp->f, NULL, NULL);
  else
    CHECK(eddy_loop_call_soon(sp->r->loop, tick, sp) == 0);
}

/* Turns the loop @turns times without waiting (see fuzz_stream.c). */
static void spin(struct run *r, int turns)
{
  struct spin sp = {r, eddy_future_new(r->loop), turns};
  CHECK(sp.f != NULL);
  CHECK(eddy_loop_call_soon(r->loop, tick, &sp) == 0);
  CHECK(eddy_loop_run_until(r->loop, sp.f, 10.0) == 0);
  eddy_future_unref(sp.f);
  poll_read(r);
}

static void send_raw(struct run *r, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(r->peer, p, n);
    if (w <= 0) {
      CHECK(w < 0 && (errno == EAGAIN || errno == EPIPE || errno == ECONNRESET));
      if (errno != EAGAIN)
        return;
      spin(r, 1);
      continue;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void send_record(struct run *r, const uint8_t *p, size_t n)
{
  if (n == 0)
    return;
  for (int tries = 0; tries < 100; tries++) {
    int w = SSL_write(r->ssl, p, (int)n);
    if (w > 0) {
      uint8_t *grown = realloc(r->expect, r->expect_len + n);
      CHECK(grown != NULL);
      r->expect = grown;
      memcpy(r->expect + r->expect_len, p, n);
      r->expect_len += n;
      return;
    }
    int e = SSL_get_error(r->ssl, w);
    ERR_clear_error();
    if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
      return; /* the peer is gone */
    spin(r, 1);
  }
}

static void run(const uint8_t *data, size_t size)
{
  struct run r;
  int fds[2];

  if (size < 1)
    return;
  memset(&r, 0, sizeof(r));
  int mode = data[0] & 3, server = !(mode & 1);
  data++, size--;

  r.loop = eddy_loop_new();
  CHECK(r.loop != NULL);
  eddy_loop_set_logger(r.loop, quiet, NULL);
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  r.peer = fds[1];
  r.s = eddy_stream_new_tls(r.loop, fds[0], server ? server_ctx : client_ctx, server,
                            server ? NULL : "foo.example.com", NULL);
  CHECK(r.s != NULL);
  eddy_stream_set_close_callback(r.s, on_close, &r);
  r.hs = eddy_stream_wait_for_handshake(r.s);
  r.rf = eddy_stream_read_bytes(r.s, 4096, 1);
  CHECK(r.hs != NULL && r.rf != NULL);

  if (mode >= 2) {
    r.ssl = SSL_new(server ? peer_client_ctx : peer_server_ctx);
    CHECK(r.ssl != NULL);
    CHECK(SSL_set_fd(r.ssl, r.peer) == 1);
    if (server)
      SSL_set_connect_state(r.ssl);
    else
      SSL_set_accept_state(r.ssl);
    for (int i = 0; i < 200 && !(SSL_is_init_finished(r.ssl) && eddy_future_done(r.hs)); i++)
      spin(&r, 1);
    CHECK(SSL_is_init_finished(r.ssl));
    CHECK(eddy_future_state(r.hs) == EDDY_FUTURE_RESOLVED);
  }

  while (size > 0) {
    size_t n = data[0];
    data++, size--;
    if (n > size)
      n = size;
    if (r.ssl != NULL && n > 0 && !(data[0] & 1)) {
      send_record(&r, data, n);
    } else {
      r.injected |= n > 0;
      send_raw(&r, data, n);
    }
    data += n, size -= n;
    spin(&r, 2);
  }

  /* The peer leaves; everything settles, the stream closes once. */
  if (r.ssl != NULL && !r.injected) {
    SSL_shutdown(r.ssl);
    spin(&r, 4);
    /* Nothing forged went in: every byte sent came out. */
    for (int i = 0; i < 100 && r.got < r.expect_len && r.rf != NULL; i++)
      spin(&r, 1);
    CHECK(r.got == r.expect_len);
  }
  shutdown(r.peer, SHUT_WR);
  for (int i = 0; i < 100 && !eddy_stream_closed(r.s); i++)
    spin(&r, 1);
  CHECK(eddy_stream_closed(r.s) || eddy_stream_read_ended(r.s));
  eddy_stream_close(r.s, 0);
  spin(&r, 2);
  CHECK(eddy_future_done(r.hs));
  CHECK(r.rf == NULL || eddy_future_done(r.rf));
  CHECK(r.closes == 1);
  eddy_future_unref(r.hs);
  eddy_future_unref(r.rf);
  eddy_stream_unref(r.s);
  eddy_loop_free(r.loop);
  SSL_free(r.ssl);
  close(r.peer);
  free(r.expect);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int once;
  if (!once) {
    init();
    once = 1;
  }
  run(data, size);
  return 0;
}
