/* SPDX-License-Identifier: MIT */
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
 * TLS streams. A TLS stream is an ordinary eddy_stream_t (stream.h) with
 * TLS between the socket and its buffers: every read and write function
 * works unchanged on plaintext, and the stream still does all socket I/O
 * itself (OpenSSL only transforms bytes in memory). Make one over a socket
 * with eddy_stream_new_tls(), or upgrade a plain stream in place with
 * eddy_stream_start_tls() (STARTTLS). The handshake starts at once (the
 * client sends its hello, the server waits for it) and runs whether or not
 * anything is read; writes issued before it completes are queued and sent
 * after it. A failed handshake closes the stream with error EDDY_ETLS and
 * OpenSSL's reason as eddy_stream_error_message() (the fatal alert is sent
 * to the peer first). When the session is up, eddy_stream_shutdown_write()
 * sends a close_notify before the FIN, eddy_stream_close_when_drained()
 * after the queue, and eddy_stream_close(s, 0) (or the last unref) sends
 * it as it closes (given up to a second if the kernel is full) unless
 * queued data is being dropped. A peer's close_notify ends the stream like an EOF even if its
 * TCP connection stays open (the stream answers with its own and
 * closes).
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
#include "loop.h"
#include "future.h"
#include "stream.h"

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
  /** Room for the fields later 0.x releases add, so the struct keeps its
   *  size and the layout old binaries were built with (docs/design.md,
   *  "Binary compatibility"). Must be zero, as eddy_tls_options_init() leaves it. */
  size_t reserved_[4];
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
 * @return 0; EDDY_EUSAGE (no certfile, bad versions or ALPN names, a
 *         reserved_ byte set);
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

/* ------------------------------------------------------------------------ */
/* TLS streams                                                               */
/* ------------------------------------------------------------------------ */

/**
 * A TLS stream over the socket @p fd, which may be connected (e.g. just
 * accepted) or not (then call eddy_stream_connect(); the handshake starts
 * once connected; -1 lets connect make the socket). Takes ownership of
 * @p fd as eddy_stream_new_socket() does, even on failure.
 *
 * @param ctx     borrowed: the stream takes its own reference.
 * @param server_side  non-zero for the server end.
 * @param server_hostname  clients: the name for SNI and for the certificate
 *                check (copied; NULL for the context's default). Required
 *                when the context verifies and checks names.
 * @param options copied; NULL for defaults.
 * @return a new reference, or NULL with errno set: EINVAL (NULL loop or
 *         ctx, a verifying client without a server name, a bad fd),
 *         ENOMEM. For the reason in words, build the stream plain and use
 *         eddy_stream_start_tls(), whose rejection carries a message.
 */
EDDY_API eddy_stream_t *eddy_stream_new_tls(eddy_loop_t *loop, int fd,
                                           struct ssl_ctx_st *ctx,
                                           int server_side,
                                           const char *server_hostname,
                                           const eddy_stream_options_t *options);

/**
 * STARTTLS: switches the plain stream @p s to TLS in place. The stream
 * object stays the same (references, close callback, every limit and
 * deadline carry over; unlike Tornado, no new object and no half-dead old
 * one), so the future's value is @p s itself.
 *
 * The stream must be idle: no pending read or write, no unsent data and
 * no buffered input (read exactly up to the line that asked for the
 * switch, and wait for your last plaintext write's future). Bytes still in
 * the kernel are fine: they are the peer's first TLS records. An idle
 * socket stream never reads ahead (its close watch only peeks), so a
 * ClientHello that arrives before the server switches stays there
 * however late the switch comes; buffered input can only be what a read
 * of yours took along, i.e. bytes the peer sent before your "go ahead",
 * and that is refused (as Tornado does) rather than guessed at.
 *
 * @param ctx  borrowed, as for eddy_stream_new_tls().
 * @return a new reference to a future resolved with @p s (a reference held
 *         as its value) once the handshake completes, or rejected:
 *         EDDY_ENOTIDLE (nothing changed, the stream is still plain and
 *         usable), EDDY_ECLOSED (closed stream, or it closed during the
 *         handshake; cause = the stream's error), EDDY_EUSAGE (NULL ctx, a
 *         verifying client without a name, already TLS), EDDY_ETLS (the
 *         handshake failed; the message says why and the stream is closed).
 *         NULL if @p s is NULL or on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_stream_start_tls(eddy_stream_t *s, int server_side,
                                              struct ssl_ctx_st *ctx,
                                              const char *server_hostname);

/**
 * A future resolved with @p s once its TLS handshake has completed:
 * already resolved if it has. Servers use it to see the client's
 * certificate, SNI or ALPN before answering. A pending wait keeps the
 * stream alive like any pending operation.
 *
 * @return a new reference to a future resolved with @p s (a reference held
 *         as its value), or rejected: EDDY_EHANDSHAKE while another wait is
 *         pending (that one is unaffected; Tornado's RuntimeError),
 *         EDDY_ETLS if the handshake failed (with OpenSSL's reason),
 *         EDDY_ECLOSED if the stream closed first (cause: the stream's
 *         error), EDDY_EUSAGE if @p s is not a TLS stream. NULL if @p s is
 *         NULL or on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_stream_wait_for_handshake(eddy_stream_t *s);

/** Non-zero if @p s is a TLS stream (made TLS or switched by start_tls). */
EDDY_API int eddy_stream_is_tls(const eddy_stream_t *s);

/** Non-zero once @p s's handshake has completed. */
EDDY_API int eddy_stream_tls_handshake_done(const eddy_stream_t *s);

/*
 * After the handshake. Each returns NULL (0 for the verify result) before
 * the handshake has completed or for a stream that is not TLS. Strings and
 * the certificate are borrowed from the stream: valid while it lives.
 */

/** The protocol version: "TLSv1.2" or "TLSv1.3". */
EDDY_API const char *eddy_stream_tls_version(const eddy_stream_t *s);
/** The cipher suite, in OpenSSL's naming ("TLS_AES_256_GCM_SHA384"). */
EDDY_API const char *eddy_stream_tls_cipher(const eddy_stream_t *s);
/** The protocol chosen by ALPN, or NULL if none was. */
EDDY_API const char *eddy_stream_tls_alpn(const eddy_stream_t *s);
/** The server name the client asked for (SNI), or NULL (available on a
 *  server from the SNI callback on, on a client as sent). */
EDDY_API const char *eddy_stream_tls_server_name(const eddy_stream_t *s);
/** The peer's certificate (OpenSSL's X509, borrowed: X509_up_ref() to keep
 *  it), or NULL: a client that sent none, or before the handshake. */
EDDY_API struct x509_st *eddy_stream_tls_peer_certificate(const eddy_stream_t *s);
/** The peer certificate's subject as RFC 2253 text ("CN=foo.example.com"). */
EDDY_API const char *eddy_stream_tls_peer_subject(const eddy_stream_t *s);
/** The peer verification result: X509_V_OK (0), or an X509_V_ERR_* code
 *  (meaningful with verification off, where a failure does not abort). */
EDDY_API long eddy_stream_tls_verify_result(const eddy_stream_t *s);
/** Non-zero if the peer ended with a close_notify; zero if it closed the
 *  connection without one (reported as an orderly close all the same,
 *  like Tornado; protocols without their own length framing may want to
 *  treat that as truncation). */
EDDY_API int eddy_stream_tls_close_notify(const eddy_stream_t *s);

#ifdef __cplusplus
}
#endif
#endif /* EDDY_TLS_H */
