/* SPDX-License-Identifier: MIT */
/*
 * examples/serve.c - command line parsing and the main loop of the server
 * examples (see serve.h).
 */
#include "serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void usage_exit(const char *usage, int status)
{
  fputs(usage, status == 0 ? stdout : stderr);
  exit(status);
}

static int parse_int(const char *s, long min, long max, int *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
    return -1;
  *out = (int)v;
  return 0;
}

void serve_parse_args(int argc, char **argv, int tls_options,
                      const char *usage, struct serve_args *args)
{
  memset(args, 0, sizeof *args);
  args->port = 8888;
  args->processes = 1;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
      usage_exit(usage, 0);
    if (i + 1 >= argc)
      usage_exit(usage, 2);
    const char *val = argv[++i];
    if (strcmp(opt, "--address") == 0)
      args->address = val;
    else if (strcmp(opt, "--port") == 0 && parse_int(val, 0, 65535, &args->port) == 0)
      ;
    else if (strcmp(opt, "--processes") == 0 &&
             parse_int(val, 0, 4096, &args->processes) == 0)
      ;
    else if (tls_options && strcmp(opt, "--certfile") == 0)
      args->certfile = val;
    else if (tls_options && strcmp(opt, "--keyfile") == 0)
      args->keyfile = val;
    else
      usage_exit(usage, 2);
  }
}

void serve_print_listening(eddy_tcp_server_t *srv)
{
  int fds[16];
  size_t n = eddy_tcp_server_sockets(srv, fds, 16);
  for (size_t i = 0; i < n && i < 16; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char text[EDDY_ADDRSTRLEN];
    if (getsockname(fds[i], (struct sockaddr *)&ss, &len) < 0 ||
        eddy_format_address((struct sockaddr *)&ss, len, text, sizeof text) < 0)
      continue;
    printf("listening on %s\n", text);
  }
  fflush(stdout);
}

static void on_stop_signal(eddy_loop_t *loop, int signo, void *arg)
{
  eddy_loop_stop(loop);
}

int serve(const struct serve_args *args, eddy_stream_handler_fn handler,
          void *arg)
{
  eddy_tcp_server_options_t options;
  eddy_tcp_server_options_init(&options);
  options.tls_ctx = args->tls_ctx; /* NULL: plain TCP */
  options.stream.allow_half_open = args->allow_half_open;
  eddy_loop_t *loop = eddy_loop_new();
  eddy_tcp_server_t *srv = loop ? eddy_tcp_server_new(loop, &options) : NULL;
  if (srv == NULL) {
    perror("eddy");
    return 1;
  }
  eddy_tcp_server_set_handler(srv, handler, arg);
  /* Before the "listening" line, so that whoever reads it may stop us at
   * once. Forked workers inherit them; the supervisor handles its own.
   * Ignored underneath (the loop still gets them, blocked signals are never
   * dropped): a second one, as systemd or timeout(1) send to the whole
   * process group, must not kill us after the loop is gone. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  eddy_loop_add_signal(loop, SIGINT, on_stop_signal, NULL);
  eddy_loop_add_signal(loop, SIGTERM, on_stop_signal, NULL);

  /* One process listens at once; several bind first and fork in start(). */
  int rc = args->processes == 1
               ? eddy_tcp_server_listen(srv, args->port, args->address)
               : eddy_tcp_server_bind(srv, args->port, args->address,
                                      AF_UNSPEC, 0, 0);
  if (rc == 0) {
    serve_print_listening(srv);
    if (args->processes != 1)
      rc = eddy_tcp_server_start(srv, args->processes, -1);
  }
  if (rc < 0) {
    fprintf(stderr, "cannot listen on %s:%d: %s\n",
            args->address ? args->address : "*", args->port, eddy_strerror(rc));
    eddy_tcp_server_free(srv);
    eddy_loop_free(loop);
    return 1;
  }

  /* In each worker: serve until told to stop, then give the open
   * connections a second to finish. */
  eddy_loop_run(loop);
  serve_shutdown(loop, srv);
  return 0;
}

void serve_shutdown(eddy_loop_t *loop, eddy_tcp_server_t *srv)
{
  eddy_future_t *done = eddy_tcp_server_shutdown(srv, 1.0);
  if (done != NULL)
    eddy_loop_run_until(loop, done, 5.0);
  eddy_future_unref(done);
  eddy_tcp_server_free(srv);
  eddy_loop_free(loop);
}

/*
 * Writes the line back (the stream sends the read's own buffer, no copy)
 * without waiting for it, as a Tornado handler calls stream.write() without
 * await: the next line is read at once, so the answers to pipelined lines
 * leave together, in one send at the end of the loop's pass. Only past the
 * high watermark does the echo wait, for the drain: that is the
 * backpressure. A write that failed at once ends the echo with its error;
 * one that fails later closes the stream, and the next read says so.
 */
static eddy_future_t *echo_line(eddy_future_t *line, void *stream)
{
  eddy_future_t *w = eddy_stream_write_bytes_of(stream, line);
  if (w == NULL || eddy_future_done(w))
    return w;
  eddy_future_unref(w); /* the stream holds its own reference */
  if (eddy_stream_write_blocked(stream))
    return eddy_stream_drain(stream);
  return EDDY_NO_VALUE;
}

/* One round: read a line, then echo it. */
static eddy_future_t *echo_once(void *stream)
{
  return eddy_then_ok(eddy_stream_read_until(stream, "\n", 1, 0), echo_line,
                      stream);
}

eddy_future_t *serve_echo_handler(eddy_stream_t *s, const struct sockaddr *peer,
                                  void *arg)
{
  eddy_stream_set_nodelay(s, 1);
  return eddy_repeat(echo_once, s);
}

int serve_main(int argc, char **argv, const char *name, const char *usage,
               int allow_half_open, eddy_stream_handler_fn handler, void *arg)
{
  struct serve_args args;
  eddy_tls_options_t tls;
  char err[512];

  serve_parse_args(argc, argv, 1, usage, &args);
  if (args.keyfile != NULL && args.certfile == NULL) {
    fputs(usage, stderr);
    return 2;
  }
  if (args.certfile != NULL) {
    eddy_tls_options_init(&tls);
    tls.certfile = args.certfile;
    tls.keyfile = args.keyfile; /* NULL: the key is in the certfile */
    if (eddy_tls_server_context(&tls, &args.tls_ctx, err, sizeof err) < 0) {
      fprintf(stderr, "%s: %s\n", name, err);
      return 1;
    }
  }
  args.allow_half_open = allow_half_open;
  int status = serve(&args, handler, arg);
  eddy_tls_context_free(args.tls_ctx); /* the server kept its own reference */
  return status;
}
