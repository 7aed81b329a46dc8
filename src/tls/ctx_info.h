/* SPDX-License-Identifier: MIT */
/*
 * What eddy attaches to an SSL_CTX (not installed).
 *
 * Users hand eddy plain SSL_CTX pointers, so the few settings OpenSSL has no
 * slot for (the default server name, whether to check host names, the
 * server's ALPN list, the SNI callback) ride on the context itself as
 * ex_data, freed by OpenSSL together with the context. A context eddy never
 * touched simply has none, and the engine falls back to the rules in
 * eddy/tls.h.
 */
#ifndef EDDY_TLS_CTX_INFO_H
#define EDDY_TLS_CTX_INFO_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "eddy/tls.h"

struct eddy__tls_ctx_info {
  char *server_hostname;      /* client default for SNI and the name check */
  int check_hostname;         /* 1 / 0; -1: check iff the context verifies */
  unsigned char *alpn;        /* server's ALPN preference, wire format */
  size_t alpn_len;
  eddy_tls_sni_fn sni_fn;
  void *sni_arg;
};

/*
 * @ctx's info; with @create, made (all defaults) if missing.
 * @return borrowed (owned by @ctx), or NULL: none yet, or ENOMEM.
 */
struct eddy__tls_ctx_info *eddy__tls_ctx_info(SSL_CTX *ctx, int create);

/*
 * Makes @ctx pick the server's ALPN protocol from @wire (@len bytes of
 * length-prefixed names, copied).
 * @return 0 or -ENOMEM.
 */
int eddy__tls_ctx_set_alpn_select(SSL_CTX *ctx, const unsigned char *wire,
                                  size_t len);

#endif
