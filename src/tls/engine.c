/* SPDX-License-Identifier: MIT */
/*
 * The TLS engine over memory BIOs (engine.h).
 *
 * Every OpenSSL call is preceded by ERR_clear_error(): SSL_get_error()
 * looks at the thread's error queue, and a stale entry left by unrelated
 * code would turn a harmless "want read" into a failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "eddy/error.h"
#include "tls/ctx_info.h"
#include "tls/engine.h"
#include "tls/tls_error.h"

struct eddy__tls {
  SSL *ssl;
  BIO *in;                /* ciphertext from the peer (owned by ssl) */
  BIO *out;               /* ciphertext for the peer (owned by ssl) */
  unsigned server : 1;
  unsigned handshake_done : 1;
  unsigned eof : 1;       /* feed_eof() was called */
  unsigned shutdown_sent : 1;
  int peer_closed;        /* EDDY__TLS_* */
  int err;                /* sticky error, 0 while healthy */
  char *subject;          /* peer subject, made on first request */
  char alpn[256];         /* NUL-terminated copy of the selected protocol */
  char errmsg[256];
};

static int is_ip_literal(const char *s)
{
  unsigned char addr[16];
  return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

/* Client side: SNI and the name the certificate must match. */
static int setup_client(eddy__tls_t *t, SSL_CTX *ctx, const char *host,
                        char *errbuf, size_t errlen)
{
  struct eddy__tls_ctx_info *info = eddy__tls_ctx_info(ctx, 0);
  int verify = (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) != 0;
  int check = verify;

  if (info != NULL && info->check_hostname >= 0)
    check = verify && info->check_hostname;
  if ((host == NULL || *host == '\0') && info != NULL)
    host = info->server_hostname;
  if (host != NULL && *host == '\0')
    host = NULL;

  /* RFC 6066 forbids IP addresses in SNI. */
  if (host != NULL && !is_ip_literal(host) && !SSL_set_tlsext_host_name(t->ssl, host))
    return eddy__tls_error(errbuf, errlen, "cannot set the server name", 0, NULL);
  if (!check)
    return 0;
  if (host == NULL)
    return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen,
                          "server_hostname is required to verify the server "
                          "(or turn the name check off explicitly)");
  /* An IP literal must match an IP SAN, a name a DNS SAN (or the CN);
   * "*.example.com" may match one label, never a partial one. */
  SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_literal(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1)
      return eddy__tls_error(errbuf, errlen, "cannot set the address to verify", 0, NULL);
  } else if (SSL_set1_host(t->ssl, host) != 1) {
    return eddy__tls_error(errbuf, errlen, "cannot set the host name to verify", 0, NULL);
  }
  return 0;
}

eddy__tls_t *eddy__tls_new(SSL_CTX *ctx, int server_side,
                           const char *server_hostname, int *err, char *errbuf,
                           size_t errlen)
{
  eddy__tls_t *t;
  int rc = 0;

  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (ctx == NULL) {
    *err = eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen, "no TLS context");
    return NULL;
  }
  t = calloc(1, sizeof *t);
  if (t == NULL) {
    *err = eddy__tls_errf(-ENOMEM, errbuf, errlen, "out of memory");
    return NULL;
  }
  ERR_clear_error();
  t->server = server_side != 0;
  t->ssl = SSL_new(ctx);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
    BIO_free(t->in);
    BIO_free(t->out);
    SSL_free(t->ssl);
    free(t);
    /* These constructors fail only for lack of memory: -ENOMEM, so that
     * callers report it as such (not as a bad argument), with OpenSSL's
     * reason in the message. */
    eddy__tls_error(errbuf, errlen, "cannot make a TLS connection", 0, "out of memory");
    *err = -ENOMEM;
    return NULL;
  }
  /* An empty input BIO means "retry" (the default), never EOF: the
   * engine handles the transport's EOF itself, see eddy__tls_read(). */
  BIO_set_mem_eof_return(t->in, -1);
  SSL_set_bio(t->ssl, t->in, t->out);
  /* RELEASE_BUFFERS: an idle connection holds no record buffers. */
  SSL_set_mode(t->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (t->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    rc = setup_client(t, ctx, server_hostname, errbuf, errlen);
    SSL_set_connect_state(t->ssl);
  }
  if (rc < 0) {
    eddy__tls_free(t);
    *err = rc;
    return NULL;
  }
  return t;
}

void eddy__tls_free(eddy__tls_t *t)
{
  if (t == NULL)
    return;
  SSL_free(t->ssl); /* frees both BIOs */
  free(t->subject);
  free(t);
}

/* Records the sticky error with its message; returns it. */
static int fail(eddy__tls_t *t, int code, const char *what, const char *fallback)
{
  if (code == EDDY_ETLS)
    eddy__tls_error(t->errmsg, sizeof t->errmsg, what,
                    SSL_get_verify_result(t->ssl), fallback);
  else
    eddy__tls_errf(0, t->errmsg, sizeof t->errmsg, "%s: %s", what, fallback);
  ERR_clear_error();
  t->err = code;
  return code;
}

int eddy__tls_feed(eddy__tls_t *t, const void *data, size_t len)
{
  size_t done = 0;

  if (t->eof)
    return EDDY_EUSAGE;
  if (len == 0 || t->err)
    return 0; /* a failed engine just drops input */
  ERR_clear_error();
  if (BIO_write_ex(t->in, data, len, &done) != 1 || done != len) {
    ERR_clear_error();
    return -ENOMEM;
  }
  return 0;
}

void eddy__tls_feed_eof(eddy__tls_t *t)
{
  t->eof = 1;
}

static void handshake_finished(eddy__tls_t *t)
{
  const unsigned char *p = NULL;
  unsigned len = 0;

  t->handshake_done = 1;
  SSL_get0_alpn_selected(t->ssl, &p, &len);
  if (p != NULL && len > 0 && len < sizeof t->alpn) {
    memcpy(t->alpn, p, len);
    t->alpn[len] = '\0';
  }
}

int eddy__tls_handshake(eddy__tls_t *t)
{
  int r;

  if (t->err)
    return t->err;
  if (t->handshake_done)
    return 1;
  ERR_clear_error();
  r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    handshake_finished(t);
    return 1;
  }
  if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ) {
    if (!t->eof)
      return 0;
    /* Port scanners and aborted clients: no error in OpenSSL's queue. */
    return fail(t, EDDY_ETLS, "TLS handshake failed",
                "the peer closed the connection during the handshake");
  }
  return fail(t, EDDY_ETLS, "TLS handshake failed", "protocol error");
}

/* eddy__tls_read(), or with @peek eddy__tls_peek(): one code path, so a
 * peek reports the peer's end and failures exactly as the read will. */
static ssize_t read_or_peek(eddy__tls_t *t, void *buf, size_t cap, int peek)
{
  size_t n = 0;
  int r;

  if (t->err)
    return t->err;
  if (t->peer_closed)
    return EDDY_ECLOSED;
  if (cap == 0)
    return EDDY_EUSAGE;
  if ((r = eddy__tls_handshake(t)) <= 0)
    return r;
  ERR_clear_error();
  r = peek ? SSL_peek_ex(t->ssl, buf, cap, &n) : SSL_read_ex(t->ssl, buf, cap, &n);
  if (r == 1)
    return (ssize_t)(n > SSIZE_MAX ? SSIZE_MAX : n);
  switch (SSL_get_error(t->ssl, 0)) {
  case SSL_ERROR_WANT_READ:
    /* Every complete record has been consumed. */
    if (!t->eof)
      return 0;
    /* The transport ended. Bytes of an unfinished record still inside
     * OpenSSL mean the stream was cut mid-record: data was lost, so that
     * is an error. On a record boundary it is a close without
     * close_notify, reported as a close (OpenSSL would call both
     * "unexpected eof while reading"; we tell them apart). */
    if (SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->in) > 0)
      return fail(t, EDDY_ETLS, "truncated TLS record",
                  "the peer closed the connection in the middle of a record");
    t->peer_closed = EDDY__TLS_CLOSE_NO_NOTIFY;
    return EDDY_ECLOSED;
  case SSL_ERROR_ZERO_RETURN:
    t->peer_closed = EDDY__TLS_CLOSE_NOTIFY;
    ERR_clear_error();
    return EDDY_ECLOSED;
  default:
    return fail(t, EDDY_ETLS, "TLS read failed", "protocol error");
  }
}

ssize_t eddy__tls_read(eddy__tls_t *t, void *buf, size_t cap)
{
  return read_or_peek(t, buf, cap, 0);
}

ssize_t eddy__tls_peek(eddy__tls_t *t, void *buf, size_t cap)
{
  return read_or_peek(t, buf, cap, 1);
}

ssize_t eddy__tls_write(eddy__tls_t *t, const void *data, size_t len)
{
  size_t done = 0;
  int r;

  if (t->err)
    return t->err;
  if (t->shutdown_sent)
    return EDDY_ECLOSED;
  if ((r = eddy__tls_handshake(t)) <= 0)
    return r;
  if (len == 0)
    return 0;
  ERR_clear_error();
  /* Without SSL_MODE_ENABLE_PARTIAL_WRITE and with a memory sink that
   * always accepts, one call encrypts everything. */
  if (SSL_write_ex(t->ssl, data, len, &done) != 1 || done != len)
    return fail(t, EDDY_ETLS, "TLS write failed", "protocol error");
  return (ssize_t)len;
}

void eddy__tls_shutdown(eddy__tls_t *t)
{
  if (t->err || !t->handshake_done || t->shutdown_sent)
    return;
  ERR_clear_error();
  /* 0: our close_notify is queued and the peer's not yet seen, which is
   * all we want: nothing waits for the peer's reply (RFC 8446 6.1 lets
   * the closer go without it). */
  (void)SSL_shutdown(t->ssl);
  ERR_clear_error();
  t->shutdown_sent = 1;
}

size_t eddy__tls_output_size(const eddy__tls_t *t)
{
  return BIO_ctrl_pending(t->out);
}

size_t eddy__tls_take_output(eddy__tls_t *t, void *buf, size_t cap)
{
  size_t n = 0;

  if (cap == 0 || BIO_ctrl_pending(t->out) == 0)
    return 0;
  if (BIO_read_ex(t->out, buf, cap, &n) != 1)
    n = 0;
  ERR_clear_error();
  return n;
}

size_t eddy__tls_input_size(const eddy__tls_t *t)
{
  return BIO_ctrl_pending(t->in);
}

int eddy__tls_handshake_done(const eddy__tls_t *t) { return t->handshake_done; }
int eddy__tls_is_server(const eddy__tls_t *t) { return t->server; }
int eddy__tls_peer_closed(const eddy__tls_t *t) { return t->peer_closed; }
int eddy__tls_failed(const eddy__tls_t *t) { return t->err; }
SSL *eddy__tls_ssl(const eddy__tls_t *t) { return t->ssl; }

const char *eddy__tls_error_message(const eddy__tls_t *t)
{
  return t->errmsg[0] != '\0' ? t->errmsg : NULL;
}

const char *eddy__tls_version(const eddy__tls_t *t)
{
  return t->handshake_done ? SSL_get_version(t->ssl) : NULL;
}

const char *eddy__tls_cipher(const eddy__tls_t *t)
{
  const SSL_CIPHER *c = t->handshake_done ? SSL_get_current_cipher(t->ssl) : NULL;
  return c != NULL ? SSL_CIPHER_get_name(c) : NULL;
}

const char *eddy__tls_alpn(const eddy__tls_t *t)
{
  return t->alpn[0] != '\0' ? t->alpn : NULL;
}

const char *eddy__tls_server_name(const eddy__tls_t *t)
{
  return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

X509 *eddy__tls_peer_certificate(const eddy__tls_t *t)
{
  return t->handshake_done ? SSL_get0_peer_certificate(t->ssl) : NULL;
}

const char *eddy__tls_peer_subject(eddy__tls_t *t)
{
  X509 *cert = eddy__tls_peer_certificate(t);
  BIO *mem;
  char *p = NULL;
  long len;

  if (t->subject != NULL || cert == NULL)
    return t->subject;
  mem = BIO_new(BIO_s_mem());
  if (mem == NULL)
    return NULL;
  if (X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0 &&
      (len = BIO_get_mem_data(mem, &p)) >= 0 && (t->subject = malloc((size_t)len + 1)) != NULL) {
    memcpy(t->subject, p, (size_t)len);
    t->subject[len] = '\0';
  }
  BIO_free(mem);
  ERR_clear_error();
  return t->subject;
}

long eddy__tls_verify_result(const eddy__tls_t *t)
{
  return t->handshake_done || t->err ? SSL_get_verify_result(t->ssl) : X509_V_OK;
}
