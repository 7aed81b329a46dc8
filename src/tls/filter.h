/* SPDX-License-Identifier: MIT */
/*
 * TLS as a stream filter (not installed): the glue between the TLS engine
 * (engine.h) and the stream's filter layer (stream/transport.h), plus the
 * handshake waiter behind eddy_stream_wait_for_handshake().
 */
#ifndef EDDY_TLS_FILTER_H
#define EDDY_TLS_FILTER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "eddy/stream.h"
#include "tls/engine.h"

struct eddy__tls_filter;

/*
 * Makes a TLS filter for @s (not installed yet: see eddy__tls_filter_install).
 * @return the filter, or NULL with *err and @errbuf set (engine.h's
 *         eddy__tls_new() codes).
 */
struct eddy__tls_filter *eddy__tls_filter_new(eddy_stream_t *s, SSL_CTX *ctx,
                                              int server_side,
                                              const char *server_hostname,
                                              int *err, char *errbuf,
                                              size_t errlen);

/*
 * Installs @tf under @s (eddy__stream_start_filter()). Once installed the
 * stream owns @tf, even if starting it failed (the stream is then closed
 * and eddy__tls_filter_of(s) == tf); a refused @tf is freed.
 * @return 0; EDDY_ENOTIDLE, EDDY_ECLOSED, EDDY_EUSAGE (refused); or the
 *         error the start failed with.
 */
int eddy__tls_filter_install(eddy_stream_t *s, struct eddy__tls_filter *tf);

/* @s's TLS filter, or NULL if @s is not a TLS stream. */
struct eddy__tls_filter *eddy__tls_filter_of(const eddy_stream_t *s);

/* The engine inside (borrowed). */
eddy__tls_t *eddy__tls_filter_engine(const struct eddy__tls_filter *tf);

/*
 * The handshake waiter: a future resolved with the stream (a reference
 * held as its value) once the handshake completes, at once if it already
 * has; rejected with the TLS error if it failed, EDDY_ECLOSED if the stream
 * closed first, EDDY_EHANDSHAKE if another wait is pending.
 * @return a new reference; NULL on ENOMEM.
 */
eddy_future_t *eddy__tls_filter_wait(struct eddy__tls_filter *tf);

#endif
