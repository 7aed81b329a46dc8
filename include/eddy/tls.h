/*
 * eddy/tls.h - TLS on OpenSSL 3: contexts, TLS streams, STARTTLS.
 *
 * A TLS connection is configured by an OpenSSL SSL_CTX. Either make your
 * own (any SSL_CTX you built with OpenSSL works; eddy only adds to it what
 * it needs, see below) or build one from an eddy_tls_options_t with
 * eddy_tls_server_context() / eddy_tls_client_context(), which pick safe
 * defaults: TLS 1.2 or newer, no compression or renegotiation, and for
 * clients the system's CA store, certificate verification and a host name
 * check, all on unless the options turn them off by name.
 *
 * This header declares the OpenSSL types it mentions as incomplete structs,
 * so including it does not need OpenSSL's headers; include <openssl/ssl.h>
 * yourself to do more with a context or a certificate than pass it along.
 *
 * Errors. Functions return 0 or a negative code (error.h): EDDY_ETLS for
 * anything OpenSSL refused, with the reason in the caller's @p errbuf (from
 * OpenSSL's error queue, e.g. "cannot load the certificate chain from
 * 'x.pem': no start line"); -ENOENT / -EACCES for unreadable files;
 * EDDY_EUSAGE for options that contradict each other. eddy keeps no error
 * state of its own between calls and leaves OpenSSL's (per-thread) error
 * queue empty.
 *
 * Threads. Contexts may be shared by any number of streams and loops; like
 * OpenSSL, configure a context fully before its first connection.
 *
 * The TLS guide is docs/tls.md.
 */
#ifndef EDDY_TLS_H
#define EDDY_TLS_H

#include <stddef.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OpenSSL's SSL_CTX and X509, opaque here. */
struct ssl_ctx_st;
struct x509_st;

/** Protocol versions, as TLS numbers them (the same values as OpenSSL's
 *  TLS1_2_VERSION and TLS1_3_VERSION). */
#define EDDY_TLS_VERSION_1_2 0x0303
#define EDDY_TLS_VERSION_1_3 0x0304

/** Who verifies whom. */
typedef enum eddy_tls_verify {
  /** Clients: verify the server (EDDY_TLS_VERIFY_PEER). Servers: do not
   *  ask for a client certificate (EDDY_TLS_VERIFY_NONE). */
  EDDY_TLS_VERIFY_DEFAULT = 0,
  /** Verify nothing. On a client this also turns the host name check
   *  off: the connection is encrypted but not authenticated. */
  EDDY_TLS_VERIFY_NONE = 1,
  /** Clients: the server's chain must verify (and its name match).
   *  Servers: ask for a client certificate and verify it if one is sent;
   *  a client without one is still let in. */
  EDDY_TLS_VERIFY_PEER = 2,
  /** Servers: a client certificate is required and must verify.
   *  Clients: the same as EDDY_TLS_VERIFY_PEER. */
  EDDY_TLS_VERIFY_REQUIRE = 3
} eddy_tls_verify_t;

/**
 * What eddy_tls_server_context() and eddy_tls_client_context() build.
 * Initialise with eddy_tls_options_init() (or zero it): every zero field
 * means the safe default. Strings are borrowed for the call only.
 */
typedef struct eddy_tls_options {
  /** PEM certificate chain: the leaf first, then intermediates. Required
   *  for servers; for clients, a client certificate to present. */
  const char *certfile;
  /** PEM private key for certfile; NULL: the key is in certfile. */
  const char *keyfile;
  /** PEM file of trusted CA certificates. NULL: the system's default
   *  store (OpenSSL's default paths; SSL_CERT_FILE / SSL_CERT_DIR). For
   *  a server, the CAs client certificates are verified against; their
   *  names are also sent to clients as acceptable issuers. */
  const char *cafile;
  /** Verification; see eddy_tls_verify_t. */
  eddy_tls_verify_t verify;
  /** Clients: verify the chain but not the host name. Only for peers
   *  whose certificate is pinned by cafile; prefer a correct name. */
  int no_check_hostname;
  /** ALPN protocols in preference order, a NULL-terminated array (e.g.
   *  {"h2", "http/1.1", NULL}); NULL: no ALPN. A client offers them; a
   *  server picks its first that the client offers. If the lists share
   *  nothing the handshake goes on without ALPN (the application sees no
   *  protocol and decides), as Python and OpenSSL's s_server do. Each
   *  name is 1 to 255 bytes. */
  const char *const *alpn;
  /** Lowest version allowed: 0 for EDDY_TLS_VERSION_1_2, or
   *  EDDY_TLS_VERSION_1_3. Older versions cannot be enabled here. */
  int min_version;
  /** Highest version allowed: 0 for the newest OpenSSL supports. */
  int max_version;
  /** Clients: the server name to send (SNI) and to check the certificate
   *  against when a stream is made without one. Copied into the
   *  context. */
  const char *server_hostname;
} eddy_tls_options_t;

/** Fills @p options with the defaults (all zero). */
EDDY_API void eddy_tls_options_init(eddy_tls_options_t *options);

/**
 * Builds a server context: certfile and keyfile loaded and checked against
 * each other, client certificates asked for only if @p options->verify
 * says so, ALPN selection from options->alpn, TLS 1.2+.
 *
 * @param options  borrowed; certfile is required.
 * @param ctx      receives a new SSL_CTX owned by the caller (release it
 *                 with eddy_tls_context_free() or SSL_CTX_free()); left
 *                 NULL on failure.
 * @param errbuf   receives a NUL-terminated message on failure (may be
 *                 NULL; truncated to @p errlen).
 * @return 0; EDDY_EUSAGE (no certfile, bad versions or ALPN names);
 *         -ENOENT / -EACCES (a file cannot be read); EDDY_ETLS (OpenSSL
 *         refused a file: not PEM, key does not match, ...); -ENOMEM.
 */
EDDY_API int eddy_tls_server_context(const eddy_tls_options_t *options,
                                     struct ssl_ctx_st **ctx, char *errbuf,
                                     size_t errlen);

/**
 * Builds a client context: the server verified against cafile or the
 * system store, its name checked (unless verify is EDDY_TLS_VERIFY_NONE or
 * no_check_hostname is set), an optional client certificate, ALPN offered
 * from options->alpn, TLS 1.2+.
 *
 * @param options  borrowed; NULL for all defaults.
 * @return as eddy_tls_server_context(), with certfile optional.
 */
EDDY_API int eddy_tls_client_context(const eddy_tls_options_t *options,
                                     struct ssl_ctx_st **ctx, char *errbuf,
                                     size_t errlen);

/** Drops the caller's reference to @p ctx (SSL_CTX_free()); streams using
 *  it keep their own. NULL is allowed. */
EDDY_API void eddy_tls_context_free(struct ssl_ctx_st *ctx);

/**
 * Server name indication on a server: called during each handshake with
 * the name the client asked for (NULL if it sent none; borrowed for the
 * call).
 *
 * @param ctx  to serve this connection from another context (its
 *             certificate, key, ALPN list and client-verification mode),
 *             store it in *ctx; leave *ctx alone to keep the current one.
 *             The context is borrowed: it must stay alive for the call
 *             (the connection takes its own reference).
 * @return 0 to go on; any negative value refuses the handshake with an
 *         "unrecognized_name" alert.
 */
typedef int (*eddy_tls_sni_fn)(const char *server_name,
                               struct ssl_ctx_st **ctx, void *arg);

/**
 * Installs @p fn as @p ctx's SNI callback (one slot; NULL removes it).
 * Works on any server context, yours or eddy's. @p arg is borrowed for as
 * long as the context may handshake.
 *
 * @return 0, -ENOMEM, or EDDY_EUSAGE if ctx is NULL.
 */
EDDY_API int eddy_tls_context_set_sni_callback(struct ssl_ctx_st *ctx,
                                               eddy_tls_sni_fn fn, void *arg);

/**
 * Whether clients using @p ctx check the server's host name. By default
 * they do whenever the context verifies the peer (SSL_VERIFY_PEER), and
 * then a server_hostname is required; a context of your own can switch
 * the check off here while still verifying the chain.
 *
 * @return 0, -ENOMEM, or EDDY_EUSAGE if ctx is NULL.
 */
EDDY_API int eddy_tls_context_set_check_hostname(struct ssl_ctx_st *ctx,
                                                 int on);

#ifdef __cplusplus
}
#endif
#endif /* EDDY_TLS_H */
