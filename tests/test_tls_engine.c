/* SPDX-License-Identifier: MIT */
/*
 * The TLS engine (src/tls/engine.c) and the context builders, with no
 * sockets: a client and a server engine wired back to back in memory.
 * Certificates come from tests/gen-certs.sh (EDDY_TEST_CERTS).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "eddy/error.h"
#include "eddy/tls.h"
#include "tls/engine.h"

#ifndef EDDY_TEST_CERTS
#error "EDDY_TEST_CERTS must name the directory gen-certs.sh filled"
#endif

#define CERT(name) EDDY_TEST_CERTS "/" name

static char errbuf[512];

static SSL_CTX *server_ctx_opts(const eddy_tls_options_t *o)
{
  SSL_CTX *ctx = NULL;
  int rc = eddy_tls_server_context(o, &ctx, errbuf, sizeof errbuf);
  ck_assert_msg(rc == 0, "server context: %s", errbuf);
  return ctx;
}

static SSL_CTX *client_ctx_opts(const eddy_tls_options_t *o)
{
  SSL_CTX *ctx = NULL;
  int rc = eddy_tls_client_context(o, &ctx, errbuf, sizeof errbuf);
  ck_assert_msg(rc == 0, "client context: %s", errbuf);
  return ctx;
}

/* A server with @cert (name in the certs dir, key alongside). */
static SSL_CTX *server_ctx(const char *cert)
{
  eddy_tls_options_t o;
  char c[512], k[512];
  snprintf(c, sizeof c, "%s/%s.pem", EDDY_TEST_CERTS, cert);
  snprintf(k, sizeof k, "%s/%s.key", EDDY_TEST_CERTS, cert);
  eddy_tls_options_init(&o);
  o.certfile = c;
  o.keyfile = k;
  return server_ctx_opts(&o);
}

/* A verifying client that trusts the test CA. */
static SSL_CTX *client_ctx(void)
{
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  return client_ctx_opts(&o);
}

struct pair {
  eddy__tls_t *c, *s;
  SSL_CTX *cctx, *sctx;
  int crc, src; /* last handshake results */
};

static eddy__tls_t *engine(SSL_CTX *ctx, int server, const char *host)
{
  int err = 0;
  eddy__tls_t *t = eddy__tls_new(ctx, server, host, &err, errbuf, sizeof errbuf);
  ck_assert_msg(t != NULL, "engine: %d %s", err, errbuf);
  return t;
}

static void pair_init(struct pair *p, SSL_CTX *cctx, SSL_CTX *sctx, const char *host)
{
  memset(p, 0, sizeof *p);
  p->cctx = cctx;
  p->sctx = sctx;
  p->c = engine(cctx, 0, host);
  p->s = engine(sctx, 1, NULL);
}

static void pair_free(struct pair *p)
{
  eddy__tls_free(p->c);
  eddy__tls_free(p->s);
  SSL_CTX_free(p->cctx);
  SSL_CTX_free(p->sctx);
}

/* Moves all of @from's ciphertext into @to, in odd-sized pieces so
 * records straddle feeds. */
static size_t move(eddy__tls_t *from, eddy__tls_t *to)
{
  char buf[3001];
  size_t n, total = 0;
  while ((n = eddy__tls_take_output(from, buf, sizeof buf)) > 0) {
    ck_assert_int_eq(eddy__tls_feed(to, buf, n), 0);
    total += n;
  }
  return total;
}

/* Runs both handshakes until both finish or one fails. */
static void handshake(struct pair *p)
{
  for (int i = 0; i < 20; i++) {
    p->crc = eddy__tls_handshake(p->c);
    move(p->c, p->s);
    p->src = eddy__tls_handshake(p->s);
    move(p->s, p->c);
    if ((p->crc == 1 && p->src == 1) || p->crc < 0 || p->src < 0)
      break;
  }
  /* Let the side that did not fail read the other's alert. */
  if (p->crc < 0 && p->src == 0)
    p->src = eddy__tls_handshake(p->s);
  if (p->src < 0 && p->crc >= 0) {
    char b[64];
    p->crc = p->crc == 1 ? (int)eddy__tls_read(p->c, b, sizeof b) : eddy__tls_handshake(p->c);
  }
}

static void handshake_ok(struct pair *p)
{
  handshake(p);
  ck_assert_msg(p->crc == 1 && p->src == 1, "handshake: client %d (%s), server %d (%s)",
                p->crc, eddy__tls_error_message(p->c), p->src, eddy__tls_error_message(p->s));
}

static void assert_msg_has(const char *msg, const char *want)
{
  ck_assert_msg(msg != NULL && strstr(msg, want) != NULL, "message '%s' lacks '%s'",
                msg != NULL ? msg : "(null)", want);
}

/* Reads everything @t can decrypt now into @buf; returns bytes. */
static size_t drain(eddy__tls_t *t, unsigned char *buf, size_t cap, ssize_t *last)
{
  size_t got = 0;
  ssize_t n = 0;
  while (got < cap && (n = eddy__tls_read(t, buf + got, cap - got > 777 ? 777 : cap - got)) > 0)
    got += (size_t)n;
  if (last != NULL)
    *last = n;
  return got;
}

/* ------------------------------------------------------------------------ */

START_TEST(test_handshake_tls13)
{
  struct pair p;
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  ck_assert_int_eq(eddy__tls_handshake_done(p.c), 0);
  ck_assert_ptr_null(eddy__tls_cipher(p.c));
  handshake_ok(&p);
  ck_assert_str_eq(eddy__tls_version(p.c), "TLSv1.3");
  ck_assert_str_eq(eddy__tls_version(p.s), "TLSv1.3");
  ck_assert_str_eq(eddy__tls_cipher(p.c), eddy__tls_cipher(p.s));
  ck_assert_int_eq(eddy__tls_verify_result(p.c), X509_V_OK);
  ck_assert_ptr_nonnull(eddy__tls_peer_certificate(p.c));
  ck_assert_str_eq(eddy__tls_peer_subject(p.c), "CN=foo.example.com");
  ck_assert_ptr_null(eddy__tls_peer_certificate(p.s)); /* none asked for */
  ck_assert_ptr_null(eddy__tls_peer_subject(p.s));
  ck_assert_str_eq(eddy__tls_server_name(p.s), "foo.example.com");
  ck_assert_ptr_null(eddy__tls_alpn(p.c));
  ck_assert_int_eq(eddy__tls_is_server(p.s), 1);
  pair_free(&p);
}
END_TEST

START_TEST(test_handshake_tls12)
{
  struct pair p;
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  o.max_version = EDDY_TLS_VERSION_1_2;
  pair_init(&p, client_ctx_opts(&o), server_ctx("server"), "foo.example.com");
  handshake_ok(&p);
  ck_assert_str_eq(eddy__tls_version(p.c), "TLSv1.2");
  ck_assert_str_eq(eddy__tls_version(p.s), "TLSv1.2");
  ck_assert_str_eq(eddy__tls_cipher(p.c), eddy__tls_cipher(p.s));
  pair_free(&p);
}
END_TEST

/* Sends @len patterned bytes from @a to @b in uneven writes and checks
 * every byte, moving ciphertext as it goes. */
static void transfer(eddy__tls_t *a, eddy__tls_t *b, size_t len)
{
  unsigned char *src = malloc(len), *dst = malloc(len);
  size_t sent = 0, got = 0, step = 1;
  ck_assert(src != NULL && dst != NULL);
  for (size_t i = 0; i < len; i++)
    src[i] = (unsigned char)(i * 2654435761u >> 13);
  while (got < len) {
    if (sent < len) {
      size_t n = len - sent < step ? len - sent : step;
      ck_assert_int_eq(eddy__tls_write(a, src + sent, n), (ssize_t)n);
      sent += n;
      step = step * 3 + 7; /* 1, 10, 37, ... up to big writes */
      if (step > 300000)
        step = 5;
    }
    move(a, b);
    ssize_t last;
    got += drain(b, dst + got, len - got, &last);
    ck_assert_int_ge(last, 0);
    move(b, a); /* anything b had to say (tickets, KeyUpdate replies) */
  }
  ck_assert_int_eq(memcmp(src, dst, len), 0);
  free(src);
  free(dst);
}

START_TEST(test_data_both_ways)
{
  struct pair p;
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  handshake_ok(&p);
  transfer(p.c, p.s, 1);
  transfer(p.s, p.c, 1);
  transfer(p.c, p.s, 8u << 20);
  transfer(p.s, p.c, 8u << 20);
  ck_assert_uint_eq(eddy__tls_output_size(p.c), 0);
  ck_assert_uint_eq(eddy__tls_input_size(p.c), 0);
  pair_free(&p);
}
END_TEST

START_TEST(test_data_tls12)
{
  struct pair p;
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.certfile = CERT("server.pem");
  o.keyfile = CERT("server.key");
  o.max_version = EDDY_TLS_VERSION_1_2;
  pair_init(&p, client_ctx(), server_ctx_opts(&o), "foo.example.com");
  handshake_ok(&p);
  ck_assert_str_eq(eddy__tls_version(p.c), "TLSv1.2");
  transfer(p.c, p.s, 3u << 20);
  transfer(p.s, p.c, 3u << 20);
  pair_free(&p);
}
END_TEST

/* Writes issued before the handshake finishes wait (0 consumed), and a
 * client's first read drives the handshake. */
START_TEST(test_write_before_handshake)
{
  struct pair p;
  unsigned char buf[64];
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  ck_assert_int_eq(eddy__tls_write(p.c, "hello", 5), 0);
  ck_assert_uint_gt(move(p.c, p.s), 0); /* the ClientHello went out */
  ck_assert_int_eq(eddy__tls_read(p.s, buf, sizeof buf), 0);
  move(p.s, p.c);
  ck_assert_int_eq(eddy__tls_write(p.c, "hello", 5), 5);
  move(p.c, p.s);
  ck_assert_uint_eq(drain(p.s, buf, sizeof buf, NULL), 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
  ck_assert_int_eq(eddy__tls_handshake_done(p.s), 1);
  pair_free(&p);
}
END_TEST

static const char *const alpn_client[] = {"h2", "http/1.1", NULL};
static const char *const alpn_server[] = {"http/1.1", "h2", NULL};
static const char *const alpn_other[] = {"imap", NULL};

static void alpn_case(const char *const *client, const char *const *server,
                      const char *want)
{
  struct pair p;
  eddy_tls_options_t co, so;
  eddy_tls_options_init(&co);
  co.cafile = CERT("ca.pem");
  co.alpn = client;
  eddy_tls_options_init(&so);
  so.certfile = CERT("server.pem");
  so.keyfile = CERT("server.key");
  so.alpn = server;
  pair_init(&p, client_ctx_opts(&co), server_ctx_opts(&so), "foo.example.com");
  handshake_ok(&p);
  if (want == NULL) {
    ck_assert_ptr_null(eddy__tls_alpn(p.c));
    ck_assert_ptr_null(eddy__tls_alpn(p.s));
  } else {
    ck_assert_str_eq(eddy__tls_alpn(p.c), want);
    ck_assert_str_eq(eddy__tls_alpn(p.s), want);
  }
  pair_free(&p);
}

START_TEST(test_alpn)
{
  alpn_case(alpn_client, alpn_server, "http/1.1"); /* server preference */
  alpn_case(alpn_server, alpn_client, "h2");
  alpn_case(alpn_client, alpn_other, NULL);        /* no overlap: no ALPN */
  alpn_case(NULL, alpn_server, NULL);              /* client offers none */
}
END_TEST

struct sni_state {
  SSL_CTX *bar;
  char seen[64];
  int calls;
};

static int pick_cert(const char *name, SSL_CTX **ctx, void *arg)
{
  struct sni_state *st = arg;
  st->calls++;
  snprintf(st->seen, sizeof st->seen, "%s", name != NULL ? name : "(none)");
  if (name != NULL && strcmp(name, "bar.example.com") == 0)
    *ctx = st->bar;
  else if (name != NULL && strcmp(name, "nobody.example.com") == 0)
    return -1;
  return 0;
}

START_TEST(test_sni_callback)
{
  struct sni_state st = {.bar = server_ctx("bar")};
  struct pair p;

  /* A name the callback maps to another context gets its certificate. */
  pair_init(&p, client_ctx(), server_ctx("server"), "bar.example.com");
  ck_assert_int_eq(eddy_tls_context_set_sni_callback(p.sctx, pick_cert, &st), 0);
  handshake_ok(&p);
  ck_assert_str_eq(st.seen, "bar.example.com");
  ck_assert_str_eq(eddy__tls_peer_subject(p.c), "CN=bar.example.com");
  ck_assert_str_eq(eddy__tls_server_name(p.s), "bar.example.com");
  pair_free(&p);

  /* Other names keep the default context. */
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  ck_assert_int_eq(eddy_tls_context_set_sni_callback(p.sctx, pick_cert, &st), 0);
  handshake_ok(&p);
  ck_assert_str_eq(eddy__tls_peer_subject(p.c), "CN=foo.example.com");
  pair_free(&p);

  /* A refused name ends the handshake with unrecognized_name. */
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  o.no_check_hostname = 1;
  pair_init(&p, client_ctx_opts(&o), server_ctx("server"), "nobody.example.com");
  ck_assert_int_eq(eddy_tls_context_set_sni_callback(p.sctx, pick_cert, &st), 0);
  handshake(&p);
  ck_assert_int_eq(p.src, EDDY_ETLS);
  ck_assert_int_eq(p.crc, EDDY_ETLS);
  assert_msg_has(eddy__tls_error_message(p.c), "unrecognized name");
  pair_free(&p);

  ck_assert_int_eq(st.calls, 3);
  SSL_CTX_free(st.bar);
  ck_assert_int_eq(eddy_tls_context_set_sni_callback(NULL, pick_cert, &st), EDDY_EUSAGE);
}
END_TEST

/* The handshake fails on both sides; the client's message names why. */
static void rejected(SSL_CTX *cctx, const char *server_cert, const char *host,
                     const char *why)
{
  struct pair p;
  pair_init(&p, cctx, server_ctx(server_cert), host);
  handshake(&p);
  ck_assert_int_eq(p.crc, EDDY_ETLS);
  ck_assert_int_eq(eddy__tls_failed(p.c), EDDY_ETLS);
  assert_msg_has(eddy__tls_error_message(p.c), "certificate verify failed");
  assert_msg_has(eddy__tls_error_message(p.c), why);
  ck_assert_int_ne(eddy__tls_verify_result(p.c), X509_V_OK);
  /* The server hears the client's alert. */
  ck_assert_int_eq(p.src, EDDY_ETLS);
  ck_assert_ptr_nonnull(eddy__tls_error_message(p.s));
  /* Errors are sticky. */
  ck_assert_int_eq(eddy__tls_write(p.c, "x", 1), EDDY_ETLS);
  pair_free(&p);
}

START_TEST(test_hostname_mismatch)
{
  rejected(client_ctx(), "server", "bar.example.com", "hostname mismatch");
  rejected(client_ctx(), "server", "127.0.0.1", "IP address mismatch");
}
END_TEST

START_TEST(test_self_signed_rejected)
{
  rejected(client_ctx(), "self", "foo.example.com", "self-signed certificate");
  /* With the system store the test CA is unknown too. */
  rejected(client_ctx_opts(NULL), "server", "foo.example.com", "unable to get local issuer certificate");
}
END_TEST

START_TEST(test_expired_rejected)
{
  rejected(client_ctx(), "expired", "foo.example.com", "certificate has expired");
}
END_TEST

START_TEST(test_verification_off_explicitly)
{
  struct pair p;
  eddy_tls_options_t o;

  /* verify NONE: anything goes, no name needed. */
  eddy_tls_options_init(&o);
  o.verify = EDDY_TLS_VERIFY_NONE;
  pair_init(&p, client_ctx_opts(&o), server_ctx("self"), NULL);
  handshake_ok(&p);
  pair_free(&p);

  /* no_check_hostname: the chain is still verified, the name is not. */
  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  o.no_check_hostname = 1;
  pair_init(&p, client_ctx_opts(&o), server_ctx("server"), "bar.example.com");
  handshake_ok(&p);
  pair_free(&p);
  rejected(client_ctx_opts(&o), "self", "foo.example.com", "self-signed");

  /* The same switch on a context of one's own. */
  SSL_CTX *own = SSL_CTX_new(TLS_client_method());
  ck_assert_int_eq(SSL_CTX_load_verify_locations(own, CERT("ca.pem"), NULL), 1);
  SSL_CTX_set_verify(own, SSL_VERIFY_PEER, NULL);
  ck_assert_int_eq(eddy_tls_context_set_check_hostname(own, 0), 0);
  pair_init(&p, own, server_ctx("server"), "bar.example.com");
  handshake_ok(&p);
  pair_free(&p);
}
END_TEST

START_TEST(test_hostname_required)
{
  SSL_CTX *ctx = client_ctx(), *own = SSL_CTX_new(TLS_client_method());
  int err = 0;

  ck_assert_ptr_null(eddy__tls_new(ctx, 0, NULL, &err, errbuf, sizeof errbuf));
  ck_assert_int_eq(err, EDDY_EUSAGE);
  assert_msg_has(errbuf, "server_hostname is required");
  /* A context of one's own that verifies needs one too. */
  SSL_CTX_set_verify(own, SSL_VERIFY_PEER, NULL);
  ck_assert_ptr_null(eddy__tls_new(own, 0, "", &err, errbuf, sizeof errbuf));
  ck_assert_int_eq(err, EDDY_EUSAGE);
  ck_assert_ptr_null(eddy__tls_new(NULL, 0, "x", &err, errbuf, sizeof errbuf));
  ck_assert_int_eq(err, EDDY_EUSAGE);
  SSL_CTX_free(ctx);
  SSL_CTX_free(own);

  /* The context's default name is used when the stream gives none. */
  eddy_tls_options_t o;
  struct pair p;
  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  o.server_hostname = "foo.example.com";
  pair_init(&p, client_ctx_opts(&o), server_ctx("server"), NULL);
  handshake_ok(&p);
  ck_assert_str_eq(eddy__tls_server_name(p.s), "foo.example.com");
  pair_free(&p);
}
END_TEST

static SSL_CTX *client_with_cert(void)
{
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  o.certfile = CERT("client.pem");
  o.keyfile = CERT("client.key");
  return client_ctx_opts(&o);
}

static SSL_CTX *server_verifying(eddy_tls_verify_t v)
{
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.certfile = CERT("server.pem");
  o.keyfile = CERT("server.key");
  o.cafile = CERT("ca.pem");
  o.verify = v;
  return server_ctx_opts(&o);
}

START_TEST(test_client_certificates)
{
  struct pair p;
  unsigned char buf[16];

  /* Required and provided. */
  pair_init(&p, client_with_cert(), server_verifying(EDDY_TLS_VERIFY_REQUIRE), "foo.example.com");
  handshake_ok(&p);
  ck_assert_str_eq(eddy__tls_peer_subject(p.s), "CN=eddy test client");
  ck_assert_int_eq(eddy__tls_verify_result(p.s), X509_V_OK);
  pair_free(&p);

  /* Requested, not provided: still let in. */
  pair_init(&p, client_ctx(), server_verifying(EDDY_TLS_VERIFY_PEER), "foo.example.com");
  handshake_ok(&p);
  ck_assert_ptr_null(eddy__tls_peer_certificate(p.s));
  pair_free(&p);

  /* Required, not provided: the server refuses. In TLS 1.3 the client
   * finishes first and hears the refusal on its next read. */
  pair_init(&p, client_ctx(), server_verifying(EDDY_TLS_VERIFY_REQUIRE), "foo.example.com");
  handshake(&p);
  ck_assert_int_eq(p.src, EDDY_ETLS);
  assert_msg_has(eddy__tls_error_message(p.s), "did not return a certificate");
  move(p.s, p.c);
  ck_assert_int_eq(eddy__tls_read(p.c, buf, sizeof buf), EDDY_ETLS);
  assert_msg_has(eddy__tls_error_message(p.c), "certificate required");
  pair_free(&p);

  /* A client certificate from an unknown issuer is refused. */
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.cafile = CERT("ca.pem");
  o.certfile = CERT("self.pem");
  o.keyfile = CERT("self.key");
  pair_init(&p, client_ctx_opts(&o), server_verifying(EDDY_TLS_VERIFY_PEER), "foo.example.com");
  handshake(&p);
  ck_assert_int_eq(p.src, EDDY_ETLS);
  assert_msg_has(eddy__tls_error_message(p.s), "certificate verify failed");
  pair_free(&p);
}
END_TEST

START_TEST(test_close_notify)
{
  struct pair p;
  unsigned char buf[64];
  ssize_t last;

  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  handshake_ok(&p);
  ck_assert_int_eq(eddy__tls_write(p.c, "bye", 3), 3);
  eddy__tls_shutdown(p.c);
  eddy__tls_shutdown(p.c); /* once */
  ck_assert_int_eq(eddy__tls_write(p.c, "late", 4), EDDY_ECLOSED);
  move(p.c, p.s);
  /* Data sent before the close_notify is delivered first. */
  ck_assert_uint_eq(drain(p.s, buf, sizeof buf, &last), 3);
  ck_assert_int_eq(last, EDDY_ECLOSED);
  ck_assert_int_eq(eddy__tls_peer_closed(p.s), EDDY__TLS_CLOSE_NOTIFY);
  ck_assert_int_eq(eddy__tls_read(p.s, buf, sizeof buf), EDDY_ECLOSED);
  /* The server can still answer (half-close) and then close too. */
  ck_assert_int_eq(eddy__tls_write(p.s, "ok", 2), 2);
  eddy__tls_shutdown(p.s);
  move(p.s, p.c);
  ck_assert_uint_eq(drain(p.c, buf, sizeof buf, &last), 2);
  ck_assert_int_eq(last, EDDY_ECLOSED);
  ck_assert_int_eq(eddy__tls_peer_closed(p.c), EDDY__TLS_CLOSE_NOTIFY);
  pair_free(&p);
}
END_TEST

START_TEST(test_eof_without_close_notify)
{
  struct pair p;
  unsigned char buf[64];
  ssize_t last;

  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  handshake_ok(&p);
  ck_assert_int_eq(eddy__tls_write(p.c, "data", 4), 4);
  move(p.c, p.s);
  eddy__tls_feed_eof(p.s);
  ck_assert_int_eq(eddy__tls_feed(p.s, "x", 1), EDDY_EUSAGE);
  ck_assert_uint_eq(drain(p.s, buf, sizeof buf, &last), 4);
  ck_assert_int_eq(last, EDDY_ECLOSED);
  ck_assert_int_eq(eddy__tls_peer_closed(p.s), EDDY__TLS_CLOSE_NO_NOTIFY);
  ck_assert_int_eq(eddy__tls_failed(p.s), 0);
  pair_free(&p);
}
END_TEST

START_TEST(test_truncated_record)
{
  struct pair p;
  unsigned char buf[64], rec[256];
  size_t n;
  ssize_t last;

  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  handshake_ok(&p);
  move(p.s, p.c); /* session tickets */
  drain(p.c, buf, sizeof buf, NULL);
  ck_assert_int_eq(eddy__tls_write(p.c, "complete", 8), 8);
  ck_assert_int_eq(eddy__tls_write(p.c, "cut short", 9), 9);
  n = eddy__tls_take_output(p.c, rec, sizeof rec);
  ck_assert_uint_gt(n, 20);
  /* Both records, less the last byte: the first decrypts, the second is
   * lost mid-record. */
  ck_assert_int_eq(eddy__tls_feed(p.s, rec, n - 1), 0);
  eddy__tls_feed_eof(p.s);
  ck_assert_uint_eq(drain(p.s, buf, sizeof buf, &last), 8);
  ck_assert_int_eq(last, EDDY_ETLS);
  assert_msg_has(eddy__tls_error_message(p.s), "truncated");
  ck_assert_int_eq(eddy__tls_peer_closed(p.s), EDDY__TLS_OPEN);
  pair_free(&p);
}
END_TEST

START_TEST(test_eof_during_handshake)
{
  struct pair p;
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  ck_assert_int_eq(eddy__tls_handshake(p.c), 0);
  move(p.c, p.s);
  ck_assert_int_eq(eddy__tls_handshake(p.s), 0);
  /* The client vanishes after its hello. */
  eddy__tls_feed_eof(p.s);
  ck_assert_int_eq(eddy__tls_handshake(p.s), EDDY_ETLS);
  assert_msg_has(eddy__tls_error_message(p.s), "closed the connection during the handshake");
  pair_free(&p);

  /* A port scanner: EOF before any byte. */
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  eddy__tls_feed_eof(p.s);
  ck_assert_int_eq(eddy__tls_handshake(p.s), EDDY_ETLS);
  pair_free(&p);
}
END_TEST

START_TEST(test_garbage_input)
{
  struct pair p;
  static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  ck_assert_int_eq(eddy__tls_feed(p.s, http, sizeof http - 1), 0);
  ck_assert_int_eq(eddy__tls_handshake(p.s), EDDY_ETLS);
  ck_assert_ptr_nonnull(eddy__tls_error_message(p.s));
  pair_free(&p);
}
END_TEST

/* TLS 1.3 post-handshake messages are just records: a KeyUpdate asking
 * for a reply, in the middle of a transfer, is answered by the engine. */
START_TEST(test_key_update)
{
  struct pair p;
  pair_init(&p, client_ctx(), server_ctx("server"), "foo.example.com");
  handshake_ok(&p);
  transfer(p.s, p.c, 100000);
  ck_assert_int_eq(SSL_key_update(eddy__tls_ssl(p.s), SSL_KEY_UPDATE_REQUESTED), 1);
  transfer(p.s, p.c, 100000); /* the client reads the update... */
  transfer(p.c, p.s, 100000); /* ...and its reply reaches the server */
  transfer(p.s, p.c, 100000);
  ck_assert_int_eq(SSL_key_update(eddy__tls_ssl(p.c), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
  transfer(p.c, p.s, 100000);
  pair_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(test_context_errors)
{
  SSL_CTX *ctx = (SSL_CTX *)1;
  eddy_tls_options_t o;
  static const char *const empty_name[] = {"", NULL};

  eddy_tls_options_init(&o);
  ck_assert_int_eq(eddy_tls_server_context(&o, &ctx, errbuf, sizeof errbuf), EDDY_EUSAGE);
  ck_assert_ptr_null(ctx);
  assert_msg_has(errbuf, "needs a certfile");

  o.certfile = CERT("missing.pem");
  ck_assert_int_eq(eddy_tls_server_context(&o, &ctx, errbuf, sizeof errbuf), -ENOENT);
  assert_msg_has(errbuf, "missing.pem");
  assert_msg_has(errbuf, "No such file");

  /* A file that is not a certificate. */
  o.certfile = CERT("server.key");
  ck_assert_int_eq(eddy_tls_server_context(&o, &ctx, errbuf, sizeof errbuf), EDDY_ETLS);
  assert_msg_has(errbuf, "cannot load the certificate chain");
  assert_msg_has(errbuf, "no start line");

  /* The wrong key. */
  o.certfile = CERT("server.pem");
  o.keyfile = CERT("client.key");
  ck_assert_int_eq(eddy_tls_server_context(&o, &ctx, errbuf, sizeof errbuf), EDDY_ETLS);
  assert_msg_has(errbuf, "key values mismatch");

  o.keyfile = CERT("server.key");
  o.alpn = empty_name;
  ck_assert_int_eq(eddy_tls_server_context(&o, &ctx, errbuf, sizeof errbuf), EDDY_EUSAGE);
  assert_msg_has(errbuf, "ALPN");

  o.alpn = NULL;
  o.min_version = EDDY_TLS_VERSION_1_3;
  o.max_version = EDDY_TLS_VERSION_1_2;
  ck_assert_int_eq(eddy_tls_server_context(&o, &ctx, errbuf, sizeof errbuf), EDDY_EUSAGE);
  o.min_version = 0x0301; /* TLS 1.0 cannot be enabled */
  o.max_version = 0;
  ck_assert_int_eq(eddy_tls_server_context(&o, &ctx, errbuf, sizeof errbuf), EDDY_EUSAGE);

  eddy_tls_options_init(&o);
  o.cafile = CERT("missing-ca.pem");
  ck_assert_int_eq(eddy_tls_client_context(&o, &ctx, errbuf, sizeof errbuf), -ENOENT);
  o.cafile = CERT("server.key");
  ck_assert_int_eq(eddy_tls_client_context(&o, &ctx, NULL, 0), EDDY_ETLS); /* no errbuf */
  ck_assert_int_eq(eddy_tls_client_context(NULL, NULL, errbuf, sizeof errbuf), EDDY_EUSAGE);
  /* Nothing left on OpenSSL's queue for the next caller. */
  ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_context_defaults)
{
  SSL_CTX *c = client_ctx_opts(NULL), *s = server_ctx("server");
  ck_assert_int_eq(SSL_CTX_get_verify_mode(c), SSL_VERIFY_PEER);
  ck_assert_int_eq(SSL_CTX_get_verify_mode(s), SSL_VERIFY_NONE);
  ck_assert_int_eq(SSL_CTX_get_min_proto_version(c), TLS1_2_VERSION);
  ck_assert_int_eq(SSL_CTX_get_min_proto_version(s), TLS1_2_VERSION);
  ck_assert(SSL_CTX_get_options(c) & SSL_OP_NO_COMPRESSION);
  ck_assert(SSL_CTX_get_options(s) & SSL_OP_NO_RENEGOTIATION);
  eddy_tls_context_free(c);
  eddy_tls_context_free(s);
  eddy_tls_context_free(NULL);
  s = server_verifying(EDDY_TLS_VERIFY_REQUIRE);
  ck_assert_int_eq(SSL_CTX_get_verify_mode(s), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  eddy_tls_context_free(s);
}
END_TEST

static Suite *tls_engine_suite(void)
{
  Suite *s = suite_create("tls_engine");
  TCase *tc = tcase_create("engine");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_handshake_tls13);
  tcase_add_test(tc, test_handshake_tls12);
  tcase_add_test(tc, test_data_both_ways);
  tcase_add_test(tc, test_data_tls12);
  tcase_add_test(tc, test_write_before_handshake);
  tcase_add_test(tc, test_alpn);
  tcase_add_test(tc, test_sni_callback);
  tcase_add_test(tc, test_hostname_mismatch);
  tcase_add_test(tc, test_self_signed_rejected);
  tcase_add_test(tc, test_expired_rejected);
  tcase_add_test(tc, test_verification_off_explicitly);
  tcase_add_test(tc, test_hostname_required);
  tcase_add_test(tc, test_client_certificates);
  tcase_add_test(tc, test_close_notify);
  tcase_add_test(tc, test_eof_without_close_notify);
  tcase_add_test(tc, test_truncated_record);
  tcase_add_test(tc, test_eof_during_handshake);
  tcase_add_test(tc, test_garbage_input);
  tcase_add_test(tc, test_key_update);
  suite_add_tcase(s, tc);
  tc = tcase_create("context");
  tcase_add_test(tc, test_context_errors);
  tcase_add_test(tc, test_context_defaults);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(tls_engine_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
