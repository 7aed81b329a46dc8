/* SPDX-License-Identifier: MIT */
/*
 * eddy's settings on an SSL_CTX (ctx_info.h), and the two server-side
 * callbacks that read them: ALPN selection and SNI.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "eddy/error.h"
#include "eddy/tls.h"
#include "tls/ctx_info.h"

/* One ex_data index for the whole process, made once. OpenSSL hands out
 * indexes per process anyway; this is the only global state of the TLS
 * code and it never changes after it is set. */
static pthread_once_t info_once = PTHREAD_ONCE_INIT;
static int info_index = -1;

static void info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp)
{
  struct eddy__tls_ctx_info *info = ptr;
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  if (info == NULL)
    return;
  free(info->server_hostname);
  free(info->alpn);
  free(info);
}

static void info_index_init(void)
{
  info_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, info_free);
}

struct eddy__tls_ctx_info *eddy__tls_ctx_info(SSL_CTX *ctx, int create)
{
  struct eddy__tls_ctx_info *info;

  pthread_once(&info_once, info_index_init);
  if (info_index < 0 || ctx == NULL)
    return NULL;
  info = SSL_CTX_get_ex_data(ctx, info_index);
  if (info != NULL || !create)
    return info;
  info = calloc(1, sizeof *info);
  if (info == NULL)
    return NULL;
  info->check_hostname = -1;
  if (!SSL_CTX_set_ex_data(ctx, info_index, info)) {
    free(info);
    return NULL;
  }
  return info;
}

/* ------------------------------------------------------------------------ */
/* ALPN                                                                      */
/* ------------------------------------------------------------------------ */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
  SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
  struct eddy__tls_ctx_info *info = eddy__tls_ctx_info(ctx, 0);
  unsigned char *sel = NULL;
  (void)arg;

  /* Read the info from the connection's current context, not from @arg:
   * after an SNI switch it is the new context's list that counts. */
  if (info == NULL || info->alpn == NULL)
    return SSL_TLSEXT_ERR_NOACK;
  /* Server preference: the first of our names the client also offers. */
  if (SSL_select_next_proto(&sel, outlen, info->alpn, (unsigned)info->alpn_len,
                            in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK; /* no overlap: go on without ALPN */
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

int eddy__tls_ctx_set_alpn_select(SSL_CTX *ctx, const unsigned char *wire,
                                  size_t len)
{
  struct eddy__tls_ctx_info *info = eddy__tls_ctx_info(ctx, 1);
  unsigned char *copy = malloc(len);

  if (info == NULL || copy == NULL) {
    free(copy);
    return -ENOMEM;
  }
  memcpy(copy, wire, len);
  free(info->alpn);
  info->alpn = copy;
  info->alpn_len = len;
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* SNI                                                                       */
/* ------------------------------------------------------------------------ */

static int sni_select(SSL *ssl, int *alert, void *arg)
{
  struct eddy__tls_ctx_info *info = arg;
  SSL_CTX *cur = SSL_get_SSL_CTX(ssl);
  SSL_CTX *next = cur;

  if (info == NULL || info->sni_fn == NULL)
    return SSL_TLSEXT_ERR_OK;
  if (info->sni_fn(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), &next,
                   info->sni_arg) < 0) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  if (next != NULL && next != cur) {
    if (SSL_set_SSL_CTX(ssl, next) == NULL) {
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    /* SSL_set_SSL_CTX swaps certificate, key and ALPN, but the verify
     * mode was copied into the connection when it was made: take the new
     * context's so "this name requires client certificates" works. */
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(next),
                   SSL_CTX_get_verify_callback(next));
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(next));
  }
  return SSL_TLSEXT_ERR_OK;
}

/* The info to change for the public setters: EDDY_EUSAGE / -ENOMEM in *rc. */
static struct eddy__tls_ctx_info *info_to_set(SSL_CTX *ctx, int *rc)
{
  struct eddy__tls_ctx_info *info = ctx != NULL ? eddy__tls_ctx_info(ctx, 1) : NULL;
  *rc = ctx == NULL ? EDDY_EUSAGE : info == NULL ? -ENOMEM : 0;
  return info;
}

int eddy_tls_context_set_sni_callback(SSL_CTX *ctx, eddy_tls_sni_fn fn, void *arg)
{
  int rc;
  struct eddy__tls_ctx_info *info = info_to_set(ctx, &rc);

  if (info == NULL)
    return rc;
  info->sni_fn = fn;
  info->sni_arg = arg;
  if (fn != NULL)
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_select);
  else
    SSL_CTX_set_tlsext_servername_callback(ctx, NULL);
  SSL_CTX_set_tlsext_servername_arg(ctx, info);
  return 0;
}

int eddy_tls_context_set_check_hostname(SSL_CTX *ctx, int on)
{
  int rc;
  struct eddy__tls_ctx_info *info = info_to_set(ctx, &rc);

  if (info == NULL)
    return rc;
  info->check_hostname = on ? 1 : 0;
  return 0;
}

void eddy_tls_context_free(SSL_CTX *ctx)
{
  SSL_CTX_free(ctx);
}
