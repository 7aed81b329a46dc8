/* SPDX-License-Identifier: MIT */
/*
 * examples/serve.h - the command line and main loop the server examples
 * share, so that each example file is only its protocol.
 */
#ifndef EDDY_EXAMPLES_SERVE_H
#define EDDY_EXAMPLES_SERVE_H

#include <eddy.h>

/** What a server example was asked to do. */
struct serve_args {
  const char *address; /* NULL: every interface */
  int port;            /* 0: any free port */
  int processes;       /* 1: this process; <= 0: one per CPU */
  const char *certfile, *keyfile;
  struct ssl_ctx_st *tls_ctx; /* not parsed: set it to serve TLS (borrowed) */
  int allow_half_open; /* not parsed: the streams' allow_half_open option */
};

/**
 * Parses [--address ADDR] [--port PORT] [--processes N], plus
 * [--certfile F --keyfile F] when @p tls_options is non-zero. On a bad
 * argument prints @p usage to stderr and exits 2; --help prints it to
 * stdout and exits 0.
 */
void serve_parse_args(int argc, char **argv, int tls_options,
                      const char *usage, struct serve_args *args);

/** Prints "listening on ADDR:PORT" for every socket of @p srv, flushed. */
void serve_print_listening(eddy_tcp_server_t *srv);

/**
 * Listens as asked (TLS if args->tls_ctx is set), prints
 * "listening on ADDR:PORT" for every socket
 * (flushed), forks the workers if asked, hands every connection to
 * @p handler, and returns once SIGINT or SIGTERM arrives and the open
 * connections have closed (or a second has passed).
 *
 * @return the process exit status: 0, or 1 if it could not listen.
 */
int serve(const struct serve_args *args, eddy_stream_handler_fn handler,
          void *arg);

/**
 * A whole server example's main(): parses the command line with the TLS
 * options, makes a server TLS context from --certfile/--keyfile (TLS 1.2+,
 * no client certificates; --keyfile alone is a usage error), sets the
 * streams' allow_half_open, and serves as serve() does. Error messages
 * start with @p name.
 *
 * @return the process exit status.
 */
int serve_main(int argc, char **argv, const char *name, const char *usage,
               int allow_half_open, eddy_stream_handler_fn handler, void *arg);

/**
 * Stops listening, gives the open connections a second to finish (running
 * @p loop until they have, five at most), then frees @p srv and @p loop.
 */
void serve_shutdown(eddy_loop_t *loop, eddy_tcp_server_t *srv);

/**
 * The echo protocol (examples/echo-server.c explains it): rounds of "read
 * a line, write it back" until the client's side ends. A stream handler.
 */
eddy_future_t *serve_echo_handler(eddy_stream_t *s, const struct sockaddr *peer,
                                  void *arg);

#endif
