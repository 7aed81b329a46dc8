/* SPDX-License-Identifier: MIT */
/*
 * The TLS engine: one TLS connection as a pure byte transform (not
 * installed).
 *
 * An OpenSSL SSL object sits between two memory BIOs and never touches a
 * socket (h2o's design; docs/tls.md explains why):
 *
 *   ciphertext from the peer --feed()--> [ SSL ] --read()-->  plaintext
 *   plaintext to send       --write()--> [ SSL ] --take_output()--> ciphertext
 *
 * Consequences the callers rely on:
 *   - OpenSSL never wants to write during a read (a memory sink always
 *     accepts), so "want read" only ever means "feed me more ciphertext"
 *     and there are no cross-blocking states to track;
 *   - read() returning 0 means every complete record has been decrypted:
 *     nothing is stranded inside OpenSSL (no SSL_pending trap) unless the
 *     caller stopped reading first, for lack of room; peek() then says
 *     whether plaintext is waiting, and nothing but a later read() (no fd
 *     event) will bring it out;
 *   - any call can produce ciphertext (handshake messages, alerts, TLS 1.3
 *     session tickets and KeyUpdate replies, close_notify): after EVERY
 *     call, send what eddy__tls_output_size() reports. After a failure the
 *     output may hold an alert for the peer; send it before closing.
 *
 * The engine is single-threaded, owned by one caller, and keeps its last
 * error message inside itself (no globals). Errors are sticky: once a call
 * fails, every later call returns the same code.
 */
#ifndef EDDY_TLS_ENGINE_H
#define EDDY_TLS_ENGINE_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

typedef struct eddy__tls eddy__tls_t;

/* How the peer ended the stream (eddy__tls_peer_closed()). */
enum {
  EDDY__TLS_OPEN = 0,
  EDDY__TLS_CLOSE_NOTIFY = 1, /* an orderly TLS close */
  EDDY__TLS_CLOSE_NO_NOTIFY = 2 /* transport EOF on a record boundary */
};

/*
 * A new engine for one connection. @ctx is borrowed (the connection takes
 * its own reference). For a client, @server_hostname (or the context's
 * default, see eddy/tls.h) is sent as SNI unless it is an IP address, and
 * is what the certificate must match when the context verifies the peer.
 *
 * @return the engine (free with eddy__tls_free()), or NULL with *err set:
 *         -ENOMEM; EDDY_EUSAGE (NULL ctx, or a verifying client without a
 *         server name); EDDY_ETLS. A message goes to @errbuf.
 */
eddy__tls_t *eddy__tls_new(SSL_CTX *ctx, int server_side,
                           const char *server_hostname, int *err, char *errbuf,
                           size_t errlen);

/* Frees the engine and its SSL object. NULL is allowed. */
void eddy__tls_free(eddy__tls_t *t);

/*
 * Hands the engine @len bytes of ciphertext received from the peer
 * (copied). Nothing is decrypted until handshake() or read().
 * @return 0; -ENOMEM; EDDY_EUSAGE after feed_eof().
 */
int eddy__tls_feed(eddy__tls_t *t, const void *data, size_t len);

/* The transport has no more bytes (the peer closed or shut down its
 * side). read() then tells a clean close from a truncated record. */
void eddy__tls_feed_eof(eddy__tls_t *t);

/*
 * Drives the handshake with what has been fed.
 * @return 1 when complete (also on later calls), 0 if it needs more
 *         ciphertext, or a negative error (EDDY_ETLS with the reason in
 *         eddy__tls_error_message(), e.g. "TLS handshake failed:
 *         certificate verify failed: self-signed certificate").
 */
int eddy__tls_handshake(eddy__tls_t *t);

/*
 * Decrypts into @buf (@cap > 0 bytes), finishing the handshake first.
 * Call it until it returns 0 or less.
 *
 * @return bytes of plaintext (> 0); 0 if it needs more ciphertext (every
 *         complete record has then been consumed); EDDY_ECLOSED once the
 *         peer has closed (eddy__tls_peer_closed() says how): after a
 *         close_notify, or after feed_eof() on a record boundary, which is
 *         reported as a close too (as Tornado and most servers do; the
 *         missing close_notify is visible for protocols that care);
 *         EDDY_ETLS for a bad record, an alert from the peer, or a
 *         transport EOF in the middle of a record ("truncated record"),
 *         which is an error because bytes the peer sent were lost.
 */
ssize_t eddy__tls_read(eddy__tls_t *t, void *buf, size_t cap);

/*
 * As eddy__tls_read(), but the plaintext stays inside the engine for the
 * next read: > 0 if a read would return data now, with the same 0,
 * EDDY_ECLOSED and error results otherwise (a close or failure seen by the
 * peek is final, as for a read).
 */
ssize_t eddy__tls_peek(eddy__tls_t *t, void *buf, size_t cap);

/*
 * Encrypts @len bytes of plaintext, finishing the handshake first. All of
 * them are consumed at once when the handshake is complete.
 *
 * @return @len; 0 if the handshake still needs ciphertext (nothing was
 *         consumed; call again later); a negative error (EDDY_ECLOSED after
 *         shutdown()).
 */
ssize_t eddy__tls_write(eddy__tls_t *t, const void *data, size_t len);

/*
 * Queues a close_notify alert in the output, once. Does nothing before the
 * handshake has completed or after a failure (there is no session to close
 * cleanly).
 */
void eddy__tls_shutdown(eddy__tls_t *t);

/* Ciphertext waiting to go to the peer, in bytes. */
size_t eddy__tls_output_size(const eddy__tls_t *t);

/* Moves up to @cap bytes of that ciphertext into @buf; returns how many. */
size_t eddy__tls_take_output(eddy__tls_t *t, void *buf, size_t cap);

/* Fed ciphertext not yet consumed by OpenSSL, in bytes. */
size_t eddy__tls_input_size(const eddy__tls_t *t);

/* State. */
int eddy__tls_handshake_done(const eddy__tls_t *t);
int eddy__tls_is_server(const eddy__tls_t *t);
int eddy__tls_peer_closed(const eddy__tls_t *t);  /* EDDY__TLS_OPEN / ... */
int eddy__tls_failed(const eddy__tls_t *t);       /* the sticky error, or 0 */
const char *eddy__tls_error_message(const eddy__tls_t *t); /* NULL if none */

/*
 * After the handshake (NULL / 0 before). Strings are borrowed from the
 * engine and live as long as it does.
 */
const char *eddy__tls_version(const eddy__tls_t *t);   /* "TLSv1.3" */
const char *eddy__tls_cipher(const eddy__tls_t *t);    /* OpenSSL's name */
const char *eddy__tls_alpn(const eddy__tls_t *t);      /* NULL: none */
const char *eddy__tls_server_name(const eddy__tls_t *t); /* SNI asked for */
X509 *eddy__tls_peer_certificate(const eddy__tls_t *t);  /* borrowed */
const char *eddy__tls_peer_subject(eddy__tls_t *t);    /* RFC 2253 text */
long eddy__tls_verify_result(const eddy__tls_t *t);    /* X509_V_OK = 0 */

/* The SSL object, for tests and for callers that need OpenSSL directly.
 * Borrowed; do not change its BIOs. */
SSL *eddy__tls_ssl(const eddy__tls_t *t);

#endif
