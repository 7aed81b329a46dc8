/* SPDX-License-Identifier: MIT */
/*
 * eddy_tls_server_context() and eddy_tls_client_context(): SSL_CTXs with
 * safe defaults built from an eddy_tls_options_t (eddy/tls.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/options.h"
#include "eddy/error.h"
#include "eddy/tls.h"
#include "tls/ctx_info.h"
#include "tls/tls_error.h"

_Static_assert(EDDY_TLS_VERSION_1_2 == TLS1_2_VERSION, "TLS 1.2 number");
_Static_assert(EDDY_TLS_VERSION_1_3 == TLS1_3_VERSION, "TLS 1.3 number");

void eddy_tls_options_init(eddy_tls_options_t *options)
{
  memset(options, 0, sizeof *options);
}

/* A missing or unreadable file is the common mistake; say so plainly
 * (with the errno) instead of OpenSSL's "system lib" chain. */
static int check_readable(const char *what, const char *path, char *errbuf,
                          size_t errlen)
{
  if (path != NULL && access(path, R_OK) != 0) {
    int err = -errno;
    return eddy__tls_errf(err, errbuf, errlen, "%s '%s': %s", what, path,
                          eddy_strerror(err));
  }
  return 0;
}

/* {"h2", "http/1.1", NULL} -> "\x02h2\x08http/1.1" (RFC 7301 wire format),
 * into a malloc'ed buffer. */
static int alpn_wire(const char *const *names, unsigned char **wire, size_t *len,
                     char *errbuf, size_t errlen)
{
  size_t total = 0, off = 0;
  unsigned char *buf;

  for (size_t i = 0; names[i] != NULL; i++) {
    size_t n = strlen(names[i]);
    if (n == 0 || n > 255)
      return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen,
                            "ALPN protocol name %zu is %s", i,
                            n == 0 ? "empty" : "longer than 255 bytes");
    total += 1 + n;
  }
  if (total == 0 || total > 65535)
    return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen, "ALPN list is %s",
                          total == 0 ? "empty" : "too long");
  buf = malloc(total);
  if (buf == NULL)
    return eddy__tls_errf(-ENOMEM, errbuf, errlen, "out of memory");
  for (size_t i = 0; names[i] != NULL; i++) {
    size_t n = strlen(names[i]);
    buf[off++] = (unsigned char)n;
    memcpy(buf + off, names[i], n);
    off += n;
  }
  *wire = buf;
  *len = total;
  return 0;
}

/* Settings shared by both roles. */
static int setup_common(SSL_CTX *ctx, const eddy_tls_options_t *o, int server,
                        char *errbuf, size_t errlen)
{
  int min = o->min_version != 0 ? o->min_version : EDDY_TLS_VERSION_1_2;
  int rc;

  if ((min != EDDY_TLS_VERSION_1_2 && min != EDDY_TLS_VERSION_1_3) ||
      (o->max_version != 0 && o->max_version != EDDY_TLS_VERSION_1_2 &&
       o->max_version != EDDY_TLS_VERSION_1_3) ||
      (o->max_version != 0 && o->max_version < min))
    return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen,
                          "bad TLS version range (min 0x%04x, max 0x%04x)", min,
                          o->max_version);
  if (!SSL_CTX_set_min_proto_version(ctx, min) ||
      !SSL_CTX_set_max_proto_version(ctx, o->max_version))
    return eddy__tls_error(errbuf, errlen, "cannot set the TLS versions", 0, NULL);
  /* Compression (CRIME) and renegotiation (its own CVEs, and it would let
   * a read need a write) are off; OpenSSL 3 defaults agree, but say it. */
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);

  if ((rc = check_readable("certfile", o->certfile, errbuf, errlen)) < 0 ||
      (rc = check_readable("keyfile", o->keyfile, errbuf, errlen)) < 0 ||
      (rc = check_readable("cafile", o->cafile, errbuf, errlen)) < 0)
    return rc;
  if (o->keyfile != NULL && o->certfile == NULL)
    return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen, "keyfile given without certfile");
  if (o->certfile != NULL) {
    const char *key = o->keyfile != NULL ? o->keyfile : o->certfile;
    char what[512];
    snprintf(what, sizeof what, "cannot load the certificate chain from '%s'", o->certfile);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1)
      return eddy__tls_error(errbuf, errlen, what, 0, NULL);
    snprintf(what, sizeof what, "cannot load the private key from '%s'", key);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
      return eddy__tls_error(errbuf, errlen, what, 0, NULL);
    if (SSL_CTX_check_private_key(ctx) != 1)
      return eddy__tls_error(errbuf, errlen, "the private key does not match the certificate", 0, NULL);
  }

  /* Trust anchors, needed whenever we verify the peer. */
  if (o->cafile != NULL) {
    char what[512];
    snprintf(what, sizeof what, "cannot load the CA file '%s'", o->cafile);
    if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1)
      return eddy__tls_error(errbuf, errlen, what, 0, NULL);
  } else if (!server || o->verify == EDDY_TLS_VERIFY_PEER ||
             o->verify == EDDY_TLS_VERIFY_REQUIRE) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
      return eddy__tls_error(errbuf, errlen, "cannot load the system CA store", 0, NULL);
  }

  if (o->alpn != NULL) {
    unsigned char *wire = NULL;
    size_t len = 0;
    if ((rc = alpn_wire(o->alpn, &wire, &len, errbuf, errlen)) < 0)
      return rc;
    if (server)
      rc = eddy__tls_ctx_set_alpn_select(ctx, wire, len);
    else if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)len) != 0) /* 0 is success */
      rc = -ENOMEM;
    free(wire);
    if (rc < 0)
      return eddy__tls_errf(rc, errbuf, errlen, "cannot set ALPN: out of memory");
  }
  return 0;
}

static int build(const eddy_tls_options_t *options, int server, SSL_CTX **out,
                 char *errbuf, size_t errlen)
{
  eddy_tls_options_t defaults;
  SSL_CTX *ctx;
  int rc;

  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (out == NULL)
    return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen, "no place for the context");
  *out = NULL;
  if (options == NULL) {
    eddy_tls_options_init(&defaults);
    options = &defaults;
  }
  if (!EDDY__OPTIONS_KNOWN(options))
    return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen,
                          "options set a field this library does not have "
                          "(reserved_ not zero)");
  if (server && options->certfile == NULL)
    return eddy__tls_errf(EDDY_EUSAGE, errbuf, errlen,
                          "a server context needs a certfile");
  ERR_clear_error();
  ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == NULL)
    return eddy__tls_error(errbuf, errlen, "cannot make an SSL_CTX", 0, "out of memory");
  rc = setup_common(ctx, options, server, errbuf, errlen);
  if (rc == 0 && server) {
    int mode = SSL_VERIFY_NONE;
    if (options->verify == EDDY_TLS_VERIFY_PEER)
      mode = SSL_VERIFY_PEER;
    else if (options->verify == EDDY_TLS_VERIFY_REQUIRE)
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    if (mode != SSL_VERIFY_NONE && options->cafile != NULL) {
      /* Tell clients which issuers we accept (CertificateRequest). */
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(options->cafile);
      if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
      ERR_clear_error();
    }
    /* Sessions are resumable only within this id context; without one,
     * OpenSSL refuses resumption whenever client certificates are asked. */
    static const unsigned char sid_ctx[] = "eddy";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
  } else if (rc == 0) {
    struct eddy__tls_ctx_info *info = eddy__tls_ctx_info(ctx, 1);
    int verify = options->verify != EDDY_TLS_VERIFY_NONE;
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (info == NULL) {
      rc = eddy__tls_errf(-ENOMEM, errbuf, errlen, "out of memory");
    } else {
      info->check_hostname = verify && !options->no_check_hostname;
      if (options->server_hostname != NULL &&
          (info->server_hostname = strdup(options->server_hostname)) == NULL)
        rc = eddy__tls_errf(-ENOMEM, errbuf, errlen, "out of memory");
    }
  }
  if (rc < 0) {
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
  }
  *out = ctx;
  return 0;
}

int eddy_tls_server_context(const eddy_tls_options_t *options, SSL_CTX **ctx,
                            char *errbuf, size_t errlen)
{
  return build(options, 1, ctx, errbuf, errlen);
}

int eddy_tls_client_context(const eddy_tls_options_t *options, SSL_CTX **ctx,
                            char *errbuf, size_t errlen)
{
  return build(options, 0, ctx, errbuf, errlen);
}
