/* SPDX-License-Identifier: MIT */
/* Helpers for the TLS stream suites (tls_fixtures.h). */
#include <stdlib.h>
#include <string.h>

#include "tests/stream_fixtures.h"
#include "tests/tls_fixtures.h"

SSL_CTX *tfx_client_ctx(const eddy_tls_options_t *o)
{
  eddy_tls_options_t opts;
  SSL_CTX *ctx = NULL;
  char err[512];

  if (o != NULL)
    opts = *o;
  else
    eddy_tls_options_init(&opts);
  if (opts.cafile == NULL && opts.verify != EDDY_TLS_VERIFY_NONE)
    opts.cafile = TFX_CERT("ca.pem");
  ck_assert_msg(eddy_tls_client_context(&opts, &ctx, err, sizeof err) == 0,
                "client context: %s", err);
  return ctx;
}

SSL_CTX *tfx_server_ctx(const char *name, const eddy_tls_options_t *o)
{
  eddy_tls_options_t opts;
  SSL_CTX *ctx = NULL;
  char cert[512], key[512], err[512];

  if (o != NULL)
    opts = *o;
  else
    eddy_tls_options_init(&opts);
  snprintf(cert, sizeof cert, "%s/%s.pem", EDDY_TEST_CERTS, name);
  snprintf(key, sizeof key, "%s/%s.key", EDDY_TEST_CERTS, name);
  opts.certfile = cert;
  opts.keyfile = key;
  ck_assert_msg(eddy_tls_server_context(&opts, &ctx, err, sizeof err) == 0,
                "server context: %s", err);
  return ctx;
}

void tfx_pair(SSL_CTX *cctx, SSL_CTX *sctx, const char *host, eddy_stream_t **c,
              eddy_stream_t **s)
{
  tfx_pair_opts(cctx, sctx, host, NULL, c, s);
}

void tfx_pair_opts(SSL_CTX *cctx, SSL_CTX *sctx, const char *host,
                   const eddy_stream_options_t *sopts, eddy_stream_t **c, eddy_stream_t **s)
{
  int fds[2];
  sfx_tcp_fds(fds);
  *s = sfx_track(eddy_stream_new_tls(sfx_loop, fds[0], sctx, 1, NULL, sopts));
  *c = sfx_track(eddy_stream_new_tls(sfx_loop, fds[1], cctx, 0, host, NULL));
  ck_assert_ptr_nonnull(*s);
  ck_assert_ptr_nonnull(*c);
  eddy_tls_context_free(cctx);
  eddy_tls_context_free(sctx);
}

void tfx_handshake_ok(eddy_stream_t *s)
{
  eddy_future_t *f = eddy_stream_wait_for_handshake(s);
  sfx_wait(f);
  ck_assert_msg(eddy_future_state(f) == EDDY_FUTURE_RESOLVED, "handshake failed: %s (%s)",
                eddy_future_message(f), eddy_err_name(eddy_future_error(f)));
  ck_assert_ptr_eq(eddy_future_value(f), s);
  eddy_future_unref(f);
  ck_assert(eddy_stream_tls_handshake_done(s));
}

void tfx_handshake_fails(eddy_stream_t *s, const char *why)
{
  eddy_future_t *f = eddy_stream_wait_for_handshake(s);
  sfx_wait(f);
  ck_assert_msg(eddy_future_error(f) == EDDY_ETLS, "expected EDDY_ETLS, got %s: %s",
                eddy_err_name(eddy_future_error(f)),
                eddy_future_message(f) ? eddy_future_message(f) : "(no message)");
  ck_assert_msg(eddy_future_message(f) != NULL && strstr(eddy_future_message(f), why) != NULL,
                "message '%s' lacks '%s'", eddy_future_message(f), why);
  eddy_future_unref(f);
  sfx_run_until_closed(s);
  ck_assert_int_eq(eddy_stream_error(s), EDDY_ETLS);
}

void tfx_wait_closed_error(eddy_stream_t *s)
{
  sfx_run_until_closed(s);
  ck_assert_msg(eddy_stream_error(s) != 0, "closed without an error");
}

void tfx_transfer(eddy_stream_t *a, eddy_stream_t *b, size_t n)
{
  char *data = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(data);
  sfx_pattern_fill(data, n, 0);
  eddy_future_t *w = eddy_stream_write_take(a, data, n, free);
  eddy_future_t *r = eddy_stream_read_bytes(b, n, 0);
  sfx_wait(r);
  ck_assert_msg(eddy_future_state(r) == EDDY_FUTURE_RESOLVED, "read failed: %s",
                eddy_future_message(r));
  ck_assert_uint_eq(eddy_future_size(r), n);
  ck_assert(sfx_pattern_check(eddy_future_value(r), n, 0));
  eddy_future_unref(r);
  sfx_expect_ok(w);
}
