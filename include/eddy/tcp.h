/* SPDX-License-Identifier: MIT */
/*
 * eddy/tcp.h - TCP servers and clients, listening sockets, name resolution.
 *
 * Tornado's TCPServer, TCPClient and netutil. A server hands out one stream
 * per accepted connection, either through a future per accept
 * (eddy_tcp_server_accept()) or by calling a handler, or both (the accept
 * futures are served first). All functions run on the loop's thread.
 *
 * Running out of file descriptors. When accept fails with EMFILE or ENFILE
 * the server does not spin on the listening socket (it stays readable) and
 * does not leave clients hanging in the backlog: it keeps one descriptor
 * in reserve (/dev/null, opened at listen time), gives it up, accepts the
 * waiting connections and closes them at once, so those clients see their
 * connection closed, then takes the reserve back. At most once a second it
 * logs a warning such as
 *
 *   accept failed: Too many open files; closed 3 pending connection(s)
 *   unserved (0 similar warnings suppressed)
 *
 * If the reserve cannot be had back either, accepting pauses for 0.1 s,
 * doubling up to 1 s while the error lasts ("accept failed: ...; pausing
 * accepts for 0.1 s"). Other accept errors back off the same way;
 * ECONNABORTED, EPROTO, EPERM and EINTR are skipped. Connections already
 * served are not affected. Raise the limit (ulimit -n, or setrlimit) or cap
 * the server with max_connections to stay clear of it.
 */
#ifndef EDDY_TCP_H
#define EDDY_TCP_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "error.h"
#include "loop.h"
#include "future.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Listening sockets (netutil)                                               */
/* ------------------------------------------------------------------------ */

/** Flags for eddy_bind_sockets(). */
#define EDDY_BIND_REUSEPORT 0x1u /**< set SO_REUSEPORT (-ENOTSUP without it) */

/** The default listen backlog, as Tornado's. */
#define EDDY_DEFAULT_BACKLOG 128

/**
 * Makes non-blocking, close-on-exec listening sockets for @p port on every
 * address @p address resolves to (NULL or "" means every interface), one
 * per distinct address, so one per address family for every interface:
 * IPv6 sockets get IPV6_V6ONLY, all get SO_REUSEADDR.
 * With port 0 the first socket gets an ephemeral port and the others reuse
 * it, so every family listens on the same port. All or nothing: if one
 * bind fails, the sockets already made are closed.
 *
 * @param family   AF_UNSPEC, AF_INET or AF_INET6.
 * @param backlog  <= 0 for EDDY_DEFAULT_BACKLOG.
 * @param fds      receives the sockets, owned by the caller.
 * @return the number of sockets (>= 1), or a negative error: -EADDRINUSE,
 *         -EACCES, EDDY_ENONAME / EDDY_ERESOLVE for an address that does not
 *         resolve, -ENOSPC if @p max_fds is too small, -EINVAL.
 */
EDDY_API int eddy_bind_sockets(int port, const char *address, int family,
                               int backlog, unsigned flags, int *fds,
                               size_t max_fds);

/**
 * Makes a listening UNIX socket at @p path with permissions @p mode. A stale
 * socket file at @p path (nobody listens on it) is replaced; a socket file
 * someone still listens on gives -EADDRINUSE; any other kind of file is
 * left alone and the call fails with -EEXIST. A path starting with '@'
 * names a Linux abstract socket (no file, no chmod).
 *
 * @return the fd (owned by the caller), or a negative errno (-EINVAL for an
 *         empty path, -ENAMETOOLONG).
 */
EDDY_API int eddy_bind_unix_socket(const char *path, mode_t mode, int backlog);

/**
 * Non-zero if @p s is a numeric IPv4 or IPv6 address ("127.0.0.1", "::1"),
 * zero for anything else (names, surrounding spaces, trailing junk, empty,
 * NULL).
 */
EDDY_API int eddy_is_valid_ip(const char *s);

/* ------------------------------------------------------------------------ */
/* Servers                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct eddy_tcp_server eddy_tcp_server_t;

/* OpenSSL's SSL_CTX, opaque here (eddy/tls.h builds one). */
struct ssl_ctx_st;

/** The default eddy_tcp_server_options_t::tls_handshake_timeout, seconds. */
#define EDDY_DEFAULT_TLS_HANDSHAKE_TIMEOUT 30.0

/** Server settings; initialise with eddy_tcp_server_options_init(). */
typedef struct eddy_tcp_server_options {
  /** Options for every stream the server makes (limits, deadlines). */
  eddy_stream_options_t stream;
  /** Connections accepted while no accept future is waiting and there is no
   *  handler wait in a queue of this length (default 128); past it, the
   *  listeners pause until the queue has room. */
  size_t accept_queue;
  /** Most open connections handed out at once (0: no limit); at the limit
   *  the listeners pause and resume when a connection closes. Connections
   *  still in their TLS handshake under tls_handshake_first count too. */
  size_t max_connections;
  /** Serve TLS (NULL, the default: plain TCP). Every accepted connection
   *  becomes a server-side TLS stream (eddy_stream_new_tls()) whose
   *  handshake starts at once. The context is borrowed by
   *  eddy_tcp_server_new(), which takes a reference of its own
   *  (SSL_CTX_up_ref) and drops it when the server is freed: the caller may
   *  free its reference right after. Build it with
   *  eddy_tls_server_context() (eddy/tls.h) or bring any server SSL_CTX. */
  struct ssl_ctx_st *tls_ctx;
  /** With tls_ctx: zero (the default, as Tornado) hands each stream out at
   *  once, its handshake still running (reads wait for it, writes are
   *  queued until it ends; eddy_stream_wait_for_handshake() waits for it
   *  explicitly). Non-zero hands a stream out only once its handshake has
   *  succeeded; a connection whose handshake fails, times out or is
   *  dropped by the client is closed without reaching the handler or an
   *  accept future, and logged at info level. */
  int tls_handshake_first;
  /** With tls_ctx: seconds from the accept a connection may take to
   *  finish its handshake (0 or NaN: EDDY_DEFAULT_TLS_HANDSHAKE_TIMEOUT;
   *  negative: no limit). A connection still handshaking then is closed
   *  with error EDDY_ETIMEOUT (Tornado #2785: stalled handshakes pinned
   *  connections), whether or not it was handed out. It does not apply
   *  after the handshake: use the stream options' deadlines for that. */
  double tls_handshake_timeout;
  /** Room for the fields later 0.x releases add, so the struct keeps its
   *  size and the layout old binaries were built with (docs/design.md,
   *  "Binary compatibility"). Must be zero, as eddy_tcp_server_options_init() leaves it. */
  size_t reserved_[4];
} eddy_tcp_server_options_t;

/** Fills @p options with the defaults. */
EDDY_API void eddy_tcp_server_options_init(eddy_tcp_server_options_t *options);

/**
 * The connection handler (Tornado's handle_stream). @p s is borrowed: the
 * server holds a reference until the returned future settles (or, if the
 * handler returns EDDY_NO_VALUE, until the handler returns):
 * eddy_stream_ref() it to keep it longer. On a TLS server @p s is a TLS
 * stream, its handshake running or, with tls_handshake_first, done. A
 * returned future that fails is logged (EDDY_ECLOSED at debug level,
 * anything else as a warning) and never stops the server. Returning NULL
 * means the handler ran out of memory building its chain (future.h): the
 * server logs a warning ("dropping a connection: ...") and closes the
 * stream with -ENOMEM, so the peer sees the connection end rather than
 * wait on a chain that was never built.
 */
typedef eddy_future_t *(*eddy_stream_handler_fn)(eddy_stream_t *s,
                                                 const struct sockaddr *peer,
                                                 void *arg);

/**
 * A new server on @p loop. It listens on nothing until listen, bind+start or
 * add_sockets.
 *
 * @param options copied; NULL for defaults. options->tls_ctx is borrowed:
 *                the server takes its own reference.
 * @return the server (free it with eddy_tcp_server_free()), or NULL with
 *         errno set (EINVAL for a NULL loop or a reserved_ byte set in
 *         the options or their stream options, ENOMEM).
 */
EDDY_API eddy_tcp_server_t *eddy_tcp_server_new(eddy_loop_t *loop,
                                                const eddy_tcp_server_options_t *options);

/** Sets the handler (NULL removes it: connections then wait for accept). */
EDDY_API void eddy_tcp_server_set_handler(eddy_tcp_server_t *srv,
                                          eddy_stream_handler_fn fn, void *arg);

/**
 * A future resolved with the next accepted stream (the future's value holds
 * a reference to it; take it with eddy_future_take() to own the stream, and
 * read the peer with eddy_stream_peer_address()). Connections that arrive
 * while no accept is pending wait in the accept queue. On a TLS server the
 * stream is a TLS stream, as for the handler. Rejected with EDDY_ECLOSED
 * once the server is stopped.
 */
EDDY_API eddy_future_t *eddy_tcp_server_accept(eddy_tcp_server_t *srv);

/**
 * Binds and starts listening at once (Tornado's listen): bind_sockets then
 * add_sockets. May be called several times.
 *
 * @param address NULL or "" for every interface.
 * @return 0 or a negative error (see eddy_bind_sockets()); EDDY_EUSAGE once
 *         the server is stopped.
 */
EDDY_API int eddy_tcp_server_listen(eddy_tcp_server_t *srv, int port,
                                    const char *address);

/**
 * Binds sockets to listen on once eddy_tcp_server_start() runs (or at once
 * if it already has). eddy_tcp_server_sockets() lists them from now on.
 *
 * @return 0 or a negative error (see eddy_bind_sockets()); EDDY_EUSAGE once
 *         the server is stopped.
 */
EDDY_API int eddy_tcp_server_bind(eddy_tcp_server_t *srv, int port,
                                  const char *address, int family, int backlog,
                                  unsigned flags);

/**
 * Starts serving the bound sockets. With @p num_processes == 1 it serves in
 * this process. Otherwise it first forks (num_processes <= 0: one per CPU)
 * through eddy_fork_processes(): the parent supervises and never returns
 * from this call (it exits when the children are done), each child returns
 * its task id and serves. Call it before the loop runs.
 *
 * @return the task id in a child (0 when not forking), or a negative error
 *         (EDDY_EUSAGE if called twice).
 */
EDDY_API int eddy_tcp_server_start(eddy_tcp_server_t *srv, int num_processes,
                                   int max_restarts);

/**
 * Starts accepting on listening sockets made elsewhere (e.g. by
 * eddy_bind_sockets() before forking), making them non-blocking and
 * close-on-exec. The server takes ownership of the fds, even when the call
 * fails (they are closed then), and closes them on stop.
 *
 * @return 0 or a negative error: -EBADF (not an open fd), -EINVAL (not a
 *         listening socket), -ENOMEM, EDDY_EUSAGE once the server is stopped.
 */
EDDY_API int eddy_tcp_server_add_sockets(eddy_tcp_server_t *srv,
                                         const int *fds, size_t n);

/** One socket: eddy_tcp_server_add_sockets(srv, &fd, 1). */
EDDY_API int eddy_tcp_server_add_socket(eddy_tcp_server_t *srv, int fd);

/**
 * The listening sockets, for printing or passing on: up to @p max fds
 * (still owned by the server) are stored in @p fds.
 *
 * @return how many sockets the server listens on (may exceed max).
 */
EDDY_API size_t eddy_tcp_server_sockets(const eddy_tcp_server_t *srv, int *fds,
                                        size_t max);

/**
 * Stops accepting at once and closes the listening sockets; queued but
 * unclaimed connections, and those still in their TLS handshake under
 * tls_handshake_first, are closed; pending accept futures are rejected
 * with EDDY_ECLOSED. Streams already handed out go on. Idempotent, and safe
 * from inside a handler.
 */
EDDY_API void eddy_tcp_server_stop(eddy_tcp_server_t *srv);

/**
 * Graceful shutdown: stops accepting, then waits up to @p grace seconds for
 * the handed-out streams to close, then closes the rest (@p grace <= 0:
 * at once). Calling it again returns the same future.
 *
 * @return a new reference to a future resolved once every handed-out
 *         stream has closed and every handler's future has settled (a
 *         handler whose future ignores its stream closing keeps it pending:
 *         bound the wait with eddy_with_timeout()); NULL on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_tcp_server_shutdown(eddy_tcp_server_t *srv,
                                                 double grace);

/** Streams handed out and still open. */
EDDY_API size_t eddy_tcp_server_connection_count(const eddy_tcp_server_t *srv);

/**
 * Stops the server and frees it. Streams handed out live on. The server's
 * TLS context reference goes once nothing refers to the server any more
 * (streams keep their own). NULL is allowed.
 */
EDDY_API void eddy_tcp_server_free(eddy_tcp_server_t *srv);

/* ------------------------------------------------------------------------ */
/* Processes                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * Forks @p num_processes workers (<= 0: one per CPU). Each child returns its
 * task id, 0 .. n-1. The parent never returns: it supervises, restarting a
 * child that dies of a signal or exits non-zero with the same task id (up
 * to @p max_restarts restarts in all; < 0 means 100), forwards SIGTERM and
 * SIGINT to the children and stops restarting them, and exits 0 once every
 * child has exited cleanly or died of the signal passed on (1 if it gave
 * up restarting, stopping the other children first). Children get SIGTERM
 * if the parent dies, and start with the caller's signal mask and
 * dispositions. Fork before making a loop (or call eddy_loop_after_fork()
 * in the child); bind sockets before forking.
 *
 * @return the task id in a child; in the parent, a negative errno if a fork
 *         failed (the children already started are stopped and reaped
 *         first), -ENOMEM, or EDDY_EUSAGE if called twice in one process.
 */
EDDY_API int eddy_fork_processes(int num_processes, int max_restarts);

/** This process's task id from eddy_fork_processes(), or -1 outside it. */
EDDY_API int eddy_task_id(void);

/** The number of online CPUs (at least 1). */
EDDY_API int eddy_cpu_count(void);

/* ------------------------------------------------------------------------ */
/* Name resolution                                                           */
/* ------------------------------------------------------------------------ */

/** One resolved address. */
typedef struct eddy_address {
  int family;                   /**< AF_INET or AF_INET6 */
  socklen_t len;                /**< bytes used in addr */
  struct sockaddr_storage addr; /**< with the port set */
} eddy_address_t;

typedef struct eddy_resolver eddy_resolver_t;

/**
 * A resolver function: returns a new reference to a future resolved with an
 * array of eddy_address_t (value: the array, malloc'ed, freed with free();
 * size: the number of entries, >= 1), or rejected with EDDY_ENONAME /
 * EDDY_ERESOLVE / EDDY_ETIMEOUT.
 */
typedef eddy_future_t *(*eddy_resolve_fn)(void *arg, eddy_loop_t *loop,
                                          const char *host, int port,
                                          int family);

/**
 * The default resolver: getaddrinfo() on the loop's thread pool (SOCK_STREAM,
 * no AI_ADDRCONFIG), results in the order getaddrinfo gives them. A name
 * with no address (EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY) rejects with
 * EDDY_ENONAME, any other failure with EDDY_ERESOLVE and gai_strerror()'s
 * text.
 *
 * @return a resolver owned by the caller (eddy_resolver_free()), or NULL.
 */
EDDY_API eddy_resolver_t *eddy_resolver_new(eddy_loop_t *loop);

/**
 * A resolver that calls @p fn (for tests, caches, c-ares...).
 *
 * @return a resolver owned by the caller, or NULL (errno ENOMEM, or EINVAL
 *         for a NULL loop or fn).
 */
EDDY_API eddy_resolver_t *eddy_resolver_new_custom(eddy_loop_t *loop,
                                                   eddy_resolve_fn fn,
                                                   void *arg);

/**
 * Maps (@p host, @p port, @p family) to (@p to_host, @p to_port) before
 * resolving (Tornado's OverrideResolver); it applies to default and custom
 * resolvers alike. Lookups try (host, port, family), then (host, port)
 * (@p family AF_UNSPEC), then (host, family) (@p port -1), then host alone
 * (@p port -1, AF_UNSPEC). Host names match case-insensitively; the same
 * key again replaces the mapping. @p to_port -1 keeps the port asked for.
 * Strings are copied.
 *
 * @return 0, -EINVAL (NULL strings, ports out of range) or -ENOMEM.
 */
EDDY_API int eddy_resolver_add_override(eddy_resolver_t *r, const char *host,
                                        int port, int family,
                                        const char *to_host, int to_port);

/**
 * Resolves @p host and @p port for @p family (AF_UNSPEC for both). IP
 * literals are answered at once, without a thread. Cancelling the future
 * drops the answer (a lookup already running on the pool finishes there).
 *
 * @return a new reference to a future as described for eddy_resolve_fn;
 *         rejected with EDDY_EUSAGE for a NULL or empty host, a port
 *         outside 0-65535 or an unknown family. NULL if @p r is NULL.
 */
EDDY_API eddy_future_t *eddy_resolver_resolve(eddy_resolver_t *r,
                                              const char *host, int port,
                                              int family);

/** Frees a resolver; lookups in flight still settle. NULL is allowed. */
EDDY_API void eddy_resolver_free(eddy_resolver_t *r);

/* ------------------------------------------------------------------------ */
/* Clients                                                                   */
/* ------------------------------------------------------------------------ */

/** Client settings; initialise with eddy_tcp_connect_options_init(). */
typedef struct eddy_tcp_connect_options {
  int family;                   /**< AF_UNSPEC (default), AF_INET, AF_INET6 */
  eddy_stream_options_t stream; /**< for the resulting stream */
  /** Bind to this IP literal first (NULL: no). It also limits the lookup
   *  to its family. */
  const char *source_ip;
  /** Bind to this port first (0: no); alone, with the wildcard address of
   *  each attempt's family (not loopback, unlike Tornado). */
  int source_port;
  /** Seconds for everything: resolving, connecting and, with tls_ctx, the
   *  TLS handshake (0: none). When it passes, every socket the connect
   *  made is closed (Tornado #3614 leaked the TLS one). */
  double timeout;
  double fallback_delay;        /**< Happy Eyeballs delay (0.3 s; 0 too) */
  /** Seconds before the next address of the same family is tried while
   *  the earlier ones are still pending (RFC 8305's Connection Attempt
   *  Delay: 0.25 s; 0 too), so one address that never answers does not
   *  hold up the others. Negative: only once the previous attempt failed,
   *  as Tornado does. */
  double attempt_delay;
  eddy_resolver_t *resolver;    /**< borrowed; NULL: a default resolver */
  /** Speak TLS (NULL, the default: plain TCP): once connected, the stream
   *  becomes a client-side TLS stream and the connect future resolves
   *  only after the handshake. Verification is the context's: one from
   *  eddy_tls_client_context() verifies the server's chain and name by
   *  default. Borrowed for the call: the stream takes its own reference
   *  (and the connect one until it ends), so the caller may free the
   *  context as soon as eddy_tcp_connect() returns. */
  struct ssl_ctx_st *tls_ctx;
  /** With tls_ctx: the name sent as SNI and checked against the server's
   *  certificate (NULL: the host argument; an IP literal is checked
   *  against the certificate's IP addresses and sent as no SNI). Copied. */
  const char *server_hostname;
  /** Room for the fields later 0.x releases add, so the struct keeps its
   *  size and the layout old binaries were built with (docs/design.md,
   *  "Binary compatibility"). Must be zero, as eddy_tcp_connect_options_init() leaves it. */
  size_t reserved_[4];
} eddy_tcp_connect_options_t;

/** Fills @p options with the defaults. */
EDDY_API void eddy_tcp_connect_options_init(eddy_tcp_connect_options_t *options);

/**
 * Connects to @p host (a name or an IP literal) and @p port. The name is
 * resolved off the loop thread; the addresses are tried with Happy Eyeballs
 * (the other family starts after fallback_delay or as soon as an attempt
 * fails; the next address of a family after attempt_delay or as soon as
 * the previous one fails; the first to connect wins and the others are
 * closed). With options->tls_ctx the winner then does its TLS handshake, as
 * server_hostname (default @p host). One timeout covers resolving,
 * connecting and the handshake. Cancelling the future, or its timeout,
 * closes every attempt, the stream in its handshake included, and drops a
 * late lookup answer. A source bind that fails fails that attempt only:
 * the next address is tried (Tornado gave up at once).
 *
 * @param options copied (server_hostname too); NULL for defaults.
 * @return a new reference to a future resolved with the connected stream
 *         (a reference held as the value, as for eddy_stream_connect();
 *         with TLS, handshake done), or rejected with EDDY_ECLOSED and
 *         the last attempt's cause (-ECONNREFUSED...), EDDY_ETIMEOUT,
 *         EDDY_ENONAME, a source bind error (-EADDRNOTAVAIL, -EACCES),
 *         EDDY_ETLS for a failed handshake with OpenSSL's reason ("TLS
 *         handshake failed: certificate verify failed: self-signed
 *         certificate"), or EDDY_EUSAGE for bad arguments (NULL or empty
 *         host, port outside 1-65535, unknown family, negative timeout, a
 *         source_ip that is not an IP literal of the family asked for, a
 *         reserved_ byte set).
 *         NULL with errno EINVAL if @p loop is NULL (there is no loop to
 *         own a future).
 */
EDDY_API eddy_future_t *eddy_tcp_connect(eddy_loop_t *loop, const char *host,
                                         int port,
                                         const eddy_tcp_connect_options_t *options);

#ifdef __cplusplus
}
#endif
#endif /* EDDY_TCP_H */
