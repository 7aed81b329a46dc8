/* SPDX-License-Identifier: MIT */
/*
 * tests/tls_fixtures.h - helpers shared by the TLS stream suites
 * (test_tls.c, tls_peers.c), on top of stream_fixtures.h.
 */
#ifndef EDDY_TESTS_TLS_FIXTURES_H
#define EDDY_TESTS_TLS_FIXTURES_H

#include <stddef.h>

#include <check.h>
#include <openssl/ssl.h>

#include "eddy.h"

#ifndef EDDY_TEST_CERTS
#error "EDDY_TEST_CERTS must name the directory gen-certs.sh filled"
#endif

/** A file made by tests/gen-certs.sh. */
#define TFX_CERT(name) EDDY_TEST_CERTS "/" name

/**
 * A client context from @p o (NULL: defaults) that trusts the test CA
 * unless @p o names another cafile or turns verification off. Fails the
 * test on error. The caller owns the result.
 */
SSL_CTX *tfx_client_ctx(const eddy_tls_options_t *o);

/** A server context presenting certs/@p name.pem (and .key), from @p o. */
SSL_CTX *tfx_server_ctx(const char *name, const eddy_tls_options_t *o);

/**
 * TLS streams on both ends of a fresh 127.0.0.1 connection, tracked for
 * teardown. Consumes both context references (the streams keep their own).
 */
void tfx_pair(SSL_CTX *cctx, SSL_CTX *sctx, const char *host, eddy_stream_t **c,
              eddy_stream_t **s);

/** tfx_pair() with options for the server stream @p s (NULL: defaults). */
void tfx_pair_opts(SSL_CTX *cctx, SSL_CTX *sctx, const char *host,
                   const eddy_stream_options_t *sopts, eddy_stream_t **c, eddy_stream_t **s);

/** Waits for @p s's handshake and asserts it succeeded. */
void tfx_handshake_ok(eddy_stream_t *s);

/** Waits for @p s's handshake and asserts it failed with EDDY_ETLS and a
 *  message containing @p why; the stream is closed by then. */
void tfx_handshake_fails(eddy_stream_t *s, const char *why);

/** Runs the loop until @p s closes and asserts it closed with an error. */
void tfx_wait_closed_error(eddy_stream_t *s);

/** Sends @p n pattern bytes from @p a and checks @p b reads exactly them. */
void tfx_transfer(eddy_stream_t *a, eddy_stream_t *b, size_t n);

/** The real-peer suite (tls_peers.c); empty unless EDDY_TLS_PEERS is set. */
Suite *tfx_peers_suite(void);

#endif
