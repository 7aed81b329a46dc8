/* SPDX-License-Identifier: MIT */
/*
 * eddy_tcp_connect(): resolve, then Happy Eyeballs over real socket
 * streams (connector.c), with an optional source address, one timeout over
 * both phases, and cancellation that reaches every attempt.
 *
 * Source binding. source_ip must be an IP literal; it also narrows the
 * lookup to its family (an IPv4 source cannot reach an IPv6 address).
 * source_port alone binds the wildcard address of each attempt's family
 * (Tornado bound loopback: quirk Q7, fixed), and IPv6 attempts then get
 * IPV6_V6ONLY so both families can hold the same port at once. A failed
 * bind fails that attempt only, with the bind's errno as the code, and the
 * next address is tried (Tornado aborted the whole connect: quirk Q8); the
 * connect fails with it once every address has failed.
 *
 * TLS. With a tls_ctx the winning stream is switched to TLS in place
 * (eddy_stream_start_tls(): a freshly connected stream is idle) and the
 * result waits for the handshake, bounded by what is left of the timeout.
 * The op holds the stream until then and closes it on any failure, timeout
 * or cancellation: the TLS stream never outlives an abandoned connect
 * (Tornado #3614).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "common/options.h"
#include "eddy/tcp.h"
#include "eddy/tls.h"
#include "tcp/connector.h"

#define DEFAULT_FALLBACK_DELAY 0.3
#define DEFAULT_ATTEMPT_DELAY 0.25 /* RFC 8305's recommended value */

struct connect_op {
  eddy_loop_t *loop;
  eddy_future_t *result;     /* what the caller got */
  eddy_future_t *resolving;  /* the lookup, while it runs */
  eddy_future_t *connecting; /* the connector's result, while it runs */
  eddy_future_t *handshaking; /* the TLS handshake, while it runs */
  eddy_stream_t *tls_stream;  /* the stream in its handshake (our ref) */
  SSL_CTX *tls_ctx;           /* our reference; NULL: plain TCP */
  char *server_hostname;      /* with tls_ctx: SNI and name check */
  int family;
  eddy_stream_options_t stream;
  double fallback_delay;
  double attempt_delay; /* <= 0: Tornado's rule */
  double deadline; /* absolute loop time; 0: none */
  /* Source binding: source_len > 0 for source_ip (port included), else
   * with bind_source the family's wildcard address and source_port. */
  int bind_source;
  int source_port;
  struct sockaddr_storage source;
  socklen_t source_len;
  char source_text[INET6_ADDRSTRLEN];
};

/* ------------------------------------------------------------------------ */
/* One attempt: a socket stream, bound if asked, connecting                  */
/* ------------------------------------------------------------------------ */

/* The attempt's future. Cancelling it closes the stream; once connected it
 * holds a stream reference as its value, so dropping it closes the stream
 * too: the two ways the connector "closes" an attempt. */
struct attempt {
  eddy_future_t *out;
  eddy_stream_t *s;
};

static void stream_unref(void *s) { eddy_stream_unref(s); }

static void attempt_cancel(eddy_future_t *out, void *arg)
{
  struct attempt *a = arg;

  (void)out;
  eddy_stream_close(a->s, 0);
}

static void attempt_done(eddy_future_t *connected, void *arg)
{
  struct attempt *a = arg;

  eddy_future_on_cancel(a->out, NULL, NULL);
  if (eddy_future_state(connected) != EDDY_FUTURE_RESOLVED)
    eddy_future_settle_as(a->out, connected);
  else if (eddy_future_resolve(a->out, a->s, stream_unref) == 0)
    a->s = NULL; /* the future owns our reference now */
  eddy_stream_unref(a->s);
  eddy_future_unref(a->out);
  free(a);
}

static int bind_source(const struct connect_op *op, int fd, int family)
{
  struct sockaddr_storage ss;
  socklen_t len;
  int on = 1;

  if (op->source_len > 0) {
    ss = op->source;
    len = op->source_len;
  } else {
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
      struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
      sin->sin_family = AF_INET;
      sin->sin_addr.s_addr = htonl(INADDR_ANY);
      sin->sin_port = htons((uint16_t)op->source_port);
      len = sizeof(*sin);
    } else {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
      sin6->sin6_family = AF_INET6;
      sin6->sin6_addr = in6addr_any;
      sin6->sin6_port = htons((uint16_t)op->source_port);
      len = sizeof(*sin6);
      (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
  }
  return bind(fd, (struct sockaddr *)&ss, len) < 0 ? -errno : 0;
}

static eddy_future_t *start_attempt(void *arg, const eddy_address_t *addr)
{
  struct connect_op *op = arg;
  struct attempt *a;
  eddy_future_t *connected;
  int fd, err;

  fd = socket(addr->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return eddy_future_rejected(op->loop, -errno, "socket: %s",
                                strerror(errno));
  if (op->bind_source && (err = bind_source(op, fd, addr->family)) < 0) {
    close(fd);
    return eddy_future_rejected(op->loop, err,
                                "cannot bind to source address %s port %d: %s",
                                op->source_len ? op->source_text : "*",
                                op->source_port, eddy_strerror(err));
  }
  a = calloc(1, sizeof(*a));
  if (a == NULL || (a->out = eddy_future_new(op->loop)) == NULL) {
    free(a);
    close(fd);
    return NULL;
  }
  a->s = eddy_stream_new_socket(op->loop, fd, &op->stream); /* owns fd */
  if (a->s == NULL) {
    eddy_future_t *out = a->out; /* our reference becomes the caller's */
    err = -errno;
    free(a);
    eddy_future_reject(out, err, NULL);
    return out;
  }
  connected = eddy_stream_connect(a->s, (const struct sockaddr *)&addr->addr,
                                  addr->len);
  if (connected == NULL ||
      eddy_future_add_done(connected, attempt_done, a) < 0) {
    eddy_future_t *out = a->out;
    eddy_future_unref(connected);
    eddy_stream_close(a->s, 0);
    eddy_stream_unref(a->s);
    free(a);
    eddy_future_reject(out, -ENOMEM, NULL);
    return out;
  }
  eddy_future_unref(connected);
  eddy_future_on_cancel(a->out, attempt_cancel, a);
  return eddy_future_ref(a->out);
}

/* ------------------------------------------------------------------------ */
/* The whole connect                                                         */
/* ------------------------------------------------------------------------ */

static void op_free(struct connect_op *op)
{
  eddy_future_unref(op->resolving);
  eddy_future_unref(op->connecting);
  eddy_future_unref(op->handshaking);
  eddy_stream_unref(op->tls_stream);
  SSL_CTX_free(op->tls_ctx);
  free(op->server_hostname);
  eddy_future_unref(op->result);
  free(op);
}

static void on_handshake(eddy_future_t *hs, void *arg)
{
  struct connect_op *op = arg;

  eddy_future_on_cancel(op->result, NULL, NULL);
  if (eddy_future_state(hs) == EDDY_FUTURE_RESOLVED) {
    eddy_future_settle_as(op->result, hs); /* shares the stream reference */
  } else {
    int code = eddy_future_error(hs);
    eddy_stream_close(op->tls_stream, code == EDDY_ECANCELLED ? 0 : code);
    if (code == EDDY_ETIMEOUT)
      eddy_future_reject(op->result, EDDY_ETIMEOUT,
                         "timed out during the TLS handshake with %s",
                         op->server_hostname);
    else
      eddy_future_settle_as(op->result, hs); /* unless cancelled */
  }
  op_free(op);
}

/* Connected: switch @s to TLS and wait for the handshake, within what is
 * left of the deadline. On failure the result is settled and op freed. */
static void start_handshake(struct connect_op *op, eddy_stream_t *s)
{
  eddy_future_t *hs;

  op->tls_stream = eddy_stream_ref(s);
  hs = eddy_stream_start_tls(s, 0, op->tls_ctx, op->server_hostname);
  if (hs != NULL && op->deadline > 0)
    hs = eddy_with_timeout(hs, op->deadline - eddy_loop_time(op->loop));
  op->handshaking = hs;
  if (hs == NULL || eddy_future_add_done(hs, on_handshake, op) < 0) {
    if (hs != NULL)
      eddy_future_cancel(hs);
    eddy_stream_close(s, -ENOMEM);
    eddy_future_on_cancel(op->result, NULL, NULL);
    eddy_future_reject(op->result, -ENOMEM, NULL);
    op_free(op);
  }
}

static void on_connected(eddy_future_t *connecting, void *arg)
{
  struct connect_op *op = arg;

  if (op->tls_ctx != NULL && !eddy_future_done(op->result) &&
      eddy_future_state(connecting) == EDDY_FUTURE_RESOLVED) {
    start_handshake(op, eddy_future_value(connecting));
    return;
  }
  eddy_future_on_cancel(op->result, NULL, NULL);
  eddy_future_settle_as(op->result, connecting); /* unless cancelled */
  op_free(op);
}

/* Copies the usable entries of a resolver's answer (a custom resolver may
 * hand back anything): IPv4/IPv6 of the family asked for. The answer itself
 * is left alone: a caching resolver may share it. */
static size_t usable_addresses(const struct connect_op *op,
                               const eddy_address_t *addrs, size_t n,
                               eddy_address_t *out)
{
  size_t k = 0;

  for (size_t i = 0; addrs != NULL && i < n; i++) {
    int fam = addrs[i].family;
    if ((fam != AF_INET && fam != AF_INET6) ||
        (op->family != AF_UNSPEC && fam != op->family) ||
        addrs[i].len == 0 || addrs[i].len > sizeof(addrs[i].addr))
      continue;
    out[k++] = addrs[i];
  }
  return k;
}

/* A connector over the usable addresses of a lookup's answer. */
static eddy__connector_t *make_connector(struct connect_op *op,
                                         eddy_future_t *resolved)
{
  size_t n = eddy_future_size(resolved);
  eddy_address_t *usable = calloc(n ? n : 1, sizeof(*usable));
  eddy__connector_config_t cfg;
  eddy__connector_t *c;

  if (usable == NULL)
    return NULL;
  n = usable_addresses(op, eddy_future_value(resolved), n, usable);
  cfg.attempt = start_attempt;
  cfg.arg = op; /* lives until the connector's result settles */
  cfg.fallback_delay = op->fallback_delay;
  cfg.attempt_delay = op->attempt_delay;
  cfg.deadline = op->deadline;
  c = eddy__connector_new(op->loop, usable, n, &cfg);
  free(usable);
  return c;
}

static void on_resolved(eddy_future_t *resolved, void *arg)
{
  struct connect_op *op = arg;
  eddy__connector_t *c;

  eddy_future_unref(op->resolving);
  op->resolving = NULL;
  if (eddy_future_done(op->result)) { /* cancelled: drop the answer */
    op_free(op);
    return;
  }
  if (eddy_future_state(resolved) != EDDY_FUTURE_RESOLVED) {
    eddy_future_on_cancel(op->result, NULL, NULL);
    eddy_future_settle_as(op->result, resolved);
    op_free(op);
    return;
  }
  c = make_connector(op, resolved);
  if (c != NULL) {
    op->connecting = eddy_future_ref(eddy__connector_result(c));
    if (eddy_future_add_done(op->connecting, on_connected, op) == 0) {
      eddy__connector_start(c);
      eddy__connector_unref(c);
      return;
    }
    eddy__connector_unref(c); /* never started: cancels its result */
  }
  eddy_future_on_cancel(op->result, NULL, NULL);
  eddy_future_reject(op->result, -ENOMEM, NULL);
  op_free(op);
}

static void on_cancel(eddy_future_t *result, void *arg)
{
  struct connect_op *op = arg;

  (void)result;
  if (op->resolving != NULL)
    eddy_future_cancel(op->resolving); /* on_resolved drops the answer */
  if (op->connecting != NULL)
    eddy_future_cancel(op->connecting); /* closes every attempt */
  if (op->handshaking != NULL) {
    eddy_stream_close(op->tls_stream, 0);
    eddy_future_cancel(op->handshaking); /* on_handshake frees op */
  }
}

/* Parses source_ip (an IP literal) and narrows *family to its family. */
static int parse_source(struct connect_op *op,
                        const eddy_tcp_connect_options_t *o, int *family)
{
  struct addrinfo hints, *res = NULL;
  char port[12];

  if (o->source_port < 0 || o->source_port > 65535)
    return -1;
  op->bind_source = o->source_ip != NULL || o->source_port != 0;
  op->source_port = o->source_port;
  if (o->source_ip == NULL)
    return 0;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = *family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  snprintf(port, sizeof(port), "%d", o->source_port);
  if (getaddrinfo(o->source_ip, port, &hints, &res) != 0)
    return -1;
  if (res->ai_addrlen > sizeof(op->source)) {
    freeaddrinfo(res);
    return -1;
  }
  memcpy(&op->source, res->ai_addr, res->ai_addrlen);
  op->source_len = res->ai_addrlen;
  *family = res->ai_family;
  freeaddrinfo(res);
  snprintf(op->source_text, sizeof(op->source_text), "%s", o->source_ip);
  return 0;
}

void eddy_tcp_connect_options_init(eddy_tcp_connect_options_t *options)
{
  memset(options, 0, sizeof(*options));
  options->family = AF_UNSPEC;
  eddy_stream_options_init(&options->stream);
  options->fallback_delay = DEFAULT_FALLBACK_DELAY;
  options->attempt_delay = DEFAULT_ATTEMPT_DELAY;
}

static const char *check_args(const char *host, int port,
                              const eddy_tcp_connect_options_t *o)
{
  if (host == NULL || *host == '\0')
    return "no host to connect to";
  if (port <= 0 || port > 65535)
    return "port out of range (1-65535)";
  if (o->family != AF_UNSPEC && o->family != AF_INET && o->family != AF_INET6)
    return "unsupported address family";
  if (!(o->timeout >= 0) || !(o->fallback_delay >= 0))
    return "timeout and fallback_delay must be >= 0";
  if (isnan(o->attempt_delay))
    return "attempt_delay is not a number";
  if (!EDDY__OPTIONS_KNOWN(o) || !EDDY__OPTIONS_KNOWN(&o->stream))
    return "options set a field this library does not have (reserved_ not zero)";
  return NULL;
}

eddy_future_t *eddy_tcp_connect(eddy_loop_t *loop, const char *host, int port,
                                const eddy_tcp_connect_options_t *options)
{
  eddy_tcp_connect_options_t o;
  eddy_resolver_t *own_resolver = NULL, *resolver;
  struct connect_op *op;
  const char *bad;
  eddy_future_t *lookup;

  if (loop == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (options != NULL)
    o = *options;
  else
    eddy_tcp_connect_options_init(&o);
  bad = check_args(host, port, &o);
  if (bad != NULL)
    return eddy_future_rejected(loop, EDDY_EUSAGE, "eddy_tcp_connect: %s", bad);

  op = calloc(1, sizeof(*op));
  if (op == NULL)
    return eddy_future_rejected(loop, -ENOMEM, NULL);
  op->loop = loop;
  op->family = o.family;
  op->stream = o.stream;
  op->fallback_delay = o.fallback_delay > 0 ? o.fallback_delay
                                            : DEFAULT_FALLBACK_DELAY;
  op->attempt_delay = o.attempt_delay == 0 ? DEFAULT_ATTEMPT_DELAY : o.attempt_delay;
  if (parse_source(op, &o, &op->family) < 0) {
    free(op);
    return eddy_future_rejected(loop, EDDY_EUSAGE,
                                "eddy_tcp_connect: source %s port %d is not "
                                "an IP address of the requested family",
                                o.source_ip ? o.source_ip : "*", o.source_port);
  }
  if (o.tls_ctx != NULL) {
    op->server_hostname = strdup(o.server_hostname != NULL ? o.server_hostname : host);
    if (op->server_hostname == NULL || SSL_CTX_up_ref(o.tls_ctx) != 1) {
      op_free(op);
      return eddy_future_rejected(loop, -ENOMEM, NULL);
    }
    op->tls_ctx = o.tls_ctx;
  }
  op->result = eddy_future_new(loop);
  resolver = o.resolver;
  if (resolver == NULL)
    resolver = own_resolver = eddy_resolver_new(loop);
  if (op->result == NULL || resolver == NULL) {
    eddy_resolver_free(own_resolver);
    op_free(op);
    return eddy_future_rejected(loop, -ENOMEM, NULL);
  }

  /* One timeout for everything: the lookup gets all of it, the connector
   * whatever is left of it. */
  lookup = eddy_resolver_resolve(resolver, host, port, op->family);
  eddy_resolver_free(own_resolver); /* the lookup goes on without it */
  if (o.timeout > 0) {
    op->deadline = eddy_loop_time(loop) + o.timeout;
    lookup = eddy_with_timeout(lookup, o.timeout);
  }
  op->resolving = lookup;
  if (lookup == NULL || eddy_future_add_done(lookup, on_resolved, op) < 0) {
    eddy_future_t *result = eddy_future_ref(op->result);
    if (lookup != NULL)
      eddy_future_cancel(lookup);
    op_free(op);
    eddy_future_reject(result, -ENOMEM, NULL);
    return result;
  }
  eddy_future_on_cancel(op->result, on_cancel, op);
  return eddy_future_ref(op->result);
}
