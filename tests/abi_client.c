/* SPDX-License-Identifier: MIT */
/*
 * tests/abi_client.c - a program built once against this tree's headers
 * and run by tests/test_abi.sh twice: against libeddy.so as built, and
 * against tests/abi/libeddy.so, the same sources compiled with headers
 * whose option structs have gained a field (abi_grown_field, taken out of
 * reserved_ as docs/design.md's rule says). Each struct is checked through
 * a field that the library visibly obeys, the last field before the
 * reserved tail where there is one, since that is where a layout change
 * would land first.
 *
 * Usage: abi_client DIR, where DIR is the directory the loaded libeddy.so
 * must be in (so a run that silently picked up another copy fails).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eddy.h"

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "abi_client:%d: %s\n", __LINE__, #cond);                 \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void check_library_dir(const char *want)
{
  Dl_info info;
  char got[PATH_MAX], wanted[PATH_MAX];
  CHECK(dladdr((void *)eddy_version, &info) != 0 && info.dli_fname != NULL);
  if (failures)
    return;
  CHECK(realpath(info.dli_fname, got) != NULL && realpath(want, wanted) != NULL);
  if (failures)
    return;
  char *slash = strrchr(got, '/');
  *slash = '\0';
  if (strcmp(got, wanted) != 0) {
    fprintf(stderr, "abi_client: running against %s/, not %s/\n", got, wanted);
    failures++;
  }
}

/* Stream options: max_write_buffer_size refuses a write at once;
 * idle_timeout, the field before reserved_, closes an idle stream. */
static void check_stream(eddy_loop_t *loop)
{
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

  eddy_stream_options_t o;
  eddy_stream_options_init(&o);
  o.max_write_buffer_size = 4;
  o.idle_timeout = 0.05;
  eddy_stream_t *s = eddy_stream_new_socket(loop, sv[0], &o);
  CHECK(s != NULL);
  if (s == NULL)
    return;
  eddy_future_t *w = eddy_stream_write(s, "too long", 8);
  CHECK(eddy_future_state(w) == EDDY_FUTURE_REJECTED &&
        eddy_future_error(w) == EDDY_EBUFFERFULL);
  eddy_future_unref(w);
  eddy_future_t *closed = eddy_stream_wait_closed(s);
  CHECK(eddy_loop_run_until(loop, closed, 5.0) == 0);
  CHECK(eddy_stream_error(s) == EDDY_ETIMEOUT);
  eddy_future_unref(closed);
  eddy_stream_unref(s);
  close(sv[1]);

  /* A field this library lacks, as a newer program would set it. */
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  o.reserved_[0] = 1;
  errno = 0;
  CHECK(eddy_stream_new_socket(loop, sv[0], &o) == NULL && errno == EINVAL);
  close(sv[1]);
}

/* Server options: accepted as they are, refused with a reserved byte
 * set, in the struct itself or in its embedded stream options. */
static void check_server(eddy_loop_t *loop)
{
  eddy_tcp_server_options_t o;
  eddy_tcp_server_options_init(&o);
  o.max_connections = 1;
  o.tls_handshake_timeout = 1.0;
  eddy_tcp_server_t *srv = eddy_tcp_server_new(loop, &o);
  CHECK(srv != NULL);
  eddy_tcp_server_free(srv);
  o.reserved_[3] = 1;
  CHECK(eddy_tcp_server_new(loop, &o) == NULL && errno == EINVAL);
  o.reserved_[3] = 0;
  o.stream.reserved_[0] = 1;
  CHECK(eddy_tcp_server_new(loop, &o) == NULL && errno == EINVAL);
}

/* Connect options: server_hostname, the field before reserved_, is
 * copied; a timeout of -1 (the field after stream) is refused. */
static void check_connect(eddy_loop_t *loop)
{
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        listen(lfd, 4) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);

  eddy_tcp_connect_options_t o;
  eddy_tcp_connect_options_init(&o);
  o.timeout = 5.0;
  o.server_hostname = "unused-without-tls.example";
  eddy_future_t *f = eddy_tcp_connect(loop, "127.0.0.1", ntohs(sa.sin_port), &o);
  CHECK(eddy_loop_run_until(loop, f, 5.0) == 0);
  CHECK(eddy_future_state(f) == EDDY_FUTURE_RESOLVED && eddy_future_value(f) != NULL);
  eddy_future_unref(f); /* and with it the stream it held */

  o.timeout = -1;
  f = eddy_tcp_connect(loop, "127.0.0.1", ntohs(sa.sin_port), &o);
  CHECK(eddy_future_error(f) == EDDY_EUSAGE);
  eddy_future_unref(f);
  o.timeout = 5.0;
  o.reserved_[0] = 1;
  f = eddy_tcp_connect(loop, "127.0.0.1", ntohs(sa.sin_port), &o);
  CHECK(eddy_future_error(f) == EDDY_EUSAGE);
  eddy_future_unref(f);
  close(lfd);
}

/* TLS options: min_version above max_version is refused by name. */
static void check_tls(void)
{
  struct ssl_ctx_st *ctx = NULL;
  char err[256];
  eddy_tls_options_t o;
  eddy_tls_options_init(&o);
  o.server_hostname = "example.org";
  CHECK(eddy_tls_client_context(&o, &ctx, err, sizeof err) == 0 && ctx != NULL);
  eddy_tls_context_free(ctx);
  o.min_version = EDDY_TLS_VERSION_1_3;
  o.max_version = EDDY_TLS_VERSION_1_2;
  CHECK(eddy_tls_client_context(&o, &ctx, err, sizeof err) == EDDY_EUSAGE);
  o.min_version = o.max_version = 0;
  o.reserved_[1] = 1;
  CHECK(eddy_tls_client_context(&o, &ctx, err, sizeof err) == EDDY_EUSAGE);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: abi_client LIBDIR\n");
    return 2;
  }
  check_library_dir(argv[1]);
  eddy_loop_t *loop = eddy_loop_new();
  CHECK(loop != NULL);
  if (loop != NULL) {
    check_stream(loop);
    check_server(loop);
    check_connect(loop);
    check_tls();
    eddy_loop_free(loop);
  }
  printf("abi_client: library %s in %s: %s\n", eddy_version_string(), argv[1],
         failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
