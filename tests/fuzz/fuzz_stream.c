/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_stream.c - the stream contract under fuzzer-chosen
 * schedules.
 *
 * Input: one flags byte (transport, limits, deadlines), one byte giving the length
 * of the op script, the op script, then the payload. The payload is sent
 * into an eddy stream over a socketpair or a pipe, in chunks the script
 * chooses, while the script drives every read kind, peek/consume, writes
 * (socketpair only), cancels, per-read deadlines and closes.
 *
 * The oracle (abort() on any broken promise):
 * - every byte a read, chunk callback or consume hands over is the next
 *   payload byte: none lost, duplicated or reordered, whatever was
 *   cancelled or timed out on the way; what is still buffered at the end
 *   is the rest, and after a clean EOF nothing is missing at all;
 * - each read kind returns what stream.h / docs/streams.md say: exactly
 *   n, 1..n when partial, up to the first delimiter or regex match, and
 *   max_bytes fails exactly when "end > max_bytes or more than max_bytes
 *   buffered with no match", closing the stream with EDDY_EUNSATISFIABLE;
 * - the bytes the peer receives are the accepted writes in order, and
 *   every write that resolved got there;
 * - every future settles, the close callback runs once, the fd is closed
 *   by then and never again.
 *
 * Runs are bounded: the loop is turned a fixed number of times between
 * steps (never waiting), and the only timers are microsecond deadlines.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <eddy.h>

#include "fuzz.h"


enum kind {
  K_NONE,
  K_UNTIL,
  K_REGEX,
  K_BYTES,
  K_INTO,
  K_CHUNKED,
  K_CLOSE,
  K_CLOSE_CHUNKED
};

static const struct {
  const char *d;
  size_t len;
} delims[] = {{"\n", 1}, {"\r\n", 2}, {"\r\n\r\n", 4}, {"ab", 2},
              {"xyz", 3}, {"\0", 1},  {"aab", 3},      {"--BOUNDARY--", 12}};
static const char *const patterns[] = {"\n", "[0-9]+;", "a(b|c)*d", "\r?\n\r?\n",
                                       "x+", "[^a-z]{3}"};
static const size_t limits[] = {0, 1, 2, 3, 5, 16, 100, 4096};

#define MAX_WRITES 64
#define MAX_OTHERS 16

struct fz {
  eddy_loop_t *loop;
  eddy_stream_t *s;
  int peer;    /* our end: we write the payload here, read eddy's writes */
  int is_pipe; /* then peer is the write end and eddy cannot write */
  int fd;      /* the stream's fd number */
  int peer_done; /* EOF sent */
  int local_close;
  int write_shut; /* shutdown_write or close_when_drained asked for */
  int closes;  /* close callback runs */

  const uint8_t *in; /* the payload */
  size_t in_len, sent, consumed;

  /* the pending read */
  enum kind kind;
  eddy_future_t *rf;
  const char *delim;
  size_t dlen, max, n, chunked;
  int partial, have_re;
  int closed_before; /* the stream was closed when the read started */
  regex_t re;
  uint8_t *into;

  /* what eddy wrote: the accepted writes, and what the peer got */
  uint8_t *wexp;
  size_t wexp_len, wgot;
  eddy_future_t *writes[MAX_WRITES];
  size_t write_end[MAX_WRITES];
  int nwrites;
  eddy_future_t *others[MAX_OTHERS]; /* drains, shutdowns, wait_closed */
  int nothers;
  uint8_t scratch[256];
};

/* ------------------------------------------------------------------------ */
/* The peer                                                                  */
/* ------------------------------------------------------------------------ */

static void send_payload(struct fz *z, size_t n)
{
  if (z->peer_done)
    return;
  if (n > z->in_len - z->sent)
    n = z->in_len - z->sent;
  while (n > 0) {
    ssize_t w = write(z->peer, z->in + z->sent, n);
    if (w <= 0) {
      CHECK(w < 0 && (errno == EAGAIN || errno == EPIPE || errno == ECONNRESET));
      return;
    }
    z->sent += (size_t)w;
    n -= (size_t)w;
  }
}

static void send_eof(struct fz *z)
{
  if (z->peer_done)
    return;
  z->peer_done = 1;
  if (z->is_pipe) {
    close(z->peer);
    z->peer = -1;
  } else {
    shutdown(z->peer, SHUT_WR);
  }
}

/* What eddy wrote must be a prefix of the accepted writes, in order. */
static void receive_writes(struct fz *z)
{
  uint8_t buf[4096];
  if (z->is_pipe || z->peer < 0)
    return;
  for (;;) {
    ssize_t r = read(z->peer, buf, sizeof(buf));
    if (r <= 0)
      return;
    CHECK(z->wgot + (size_t)r <= z->wexp_len);
    CHECK(memcmp(z->wexp + z->wgot, buf, (size_t)r) == 0);
    z->wgot += (size_t)r;
  }
}

/* ------------------------------------------------------------------------ */
/* Turning the loop                                                          */
/* ------------------------------------------------------------------------ */

struct spin {
  struct fz *z;
  eddy_future_t *f;
  int left;
  int flush; /* keep sending the payload, then EOF */
};

static void tick(void *arg)
{
  struct spin *sp = arg;
  receive_writes(sp->z);
  if (sp->flush) {
    send_payload(sp->z, 65536);
    if (sp->z->sent == sp->z->in_len)
      send_eof(sp->z);
  }
  if (--sp->left <= 0 || (sp->flush && sp->z->rf == NULL))
    eddy_future_resolve(sp->f, NULL, NULL);
  else
    CHECK(eddy_loop_call_soon(eddy_future_loop(sp->f), tick, sp) == 0);
}

/* Turns the loop @turns times: each call_soon hop is one iteration with a
 * non-blocking poll, so I/O and deferred callbacks both run. */
static void spin(struct fz *z, int turns, int flush)
{
  struct spin sp = {z, eddy_future_new(z->loop), turns, flush};
  CHECK(sp.f != NULL);
  CHECK(eddy_loop_call_soon(z->loop, tick, &sp) == 0);
  CHECK(eddy_loop_run_until(z->loop, sp.f, 10.0) == 0);
  eddy_future_unref(sp.f);
}

/* ------------------------------------------------------------------------ */
/* Reads and their oracle                                                    */
/* ------------------------------------------------------------------------ */

/* Bytes handed over must be the next payload bytes. */
static void take(struct fz *z, const void *p, size_t len)
{
  CHECK(z->consumed + len <= z->sent);
  CHECK(len == 0 || memcmp(z->in + z->consumed, p, len) == 0);
  z->consumed += len;
}

static void on_chunk(eddy_stream_t *s, const void *data, size_t len, void *arg)
{
  struct fz *z = arg;
  CHECK(s == z->s && len > 0);
  take(z, data, len);
  z->chunked += len;
  if (z->kind == K_CHUNKED)
    CHECK(z->chunked <= z->n);
}

/* The end of the first delimiter or match in [p, p + len), or 0. */
static size_t first_end(struct fz *z, const uint8_t *p, size_t len)
{
  if (z->kind == K_UNTIL) {
    for (size_t i = 0; i + z->dlen <= len; i++)
      if (memcmp(p + i, z->delim, z->dlen) == 0)
        return i + z->dlen;
    return 0;
  }
  /* A NUL-terminated copy: peeked bytes have none after them, and the
   * sanitizers' regexec reads up to one whatever REG_STARTEND says. */
  char *copy = malloc(len + 1);
  CHECK(copy != NULL);
  if (len)
    memcpy(copy, p, len);
  copy[len] = '\0';
  regmatch_t m = {0, (regoff_t)len};
  size_t end = 0;
  if (regexec(&z->re, copy, 1, &m, REG_STARTEND) == 0)
    end = (size_t)m.rm_eo;
  free(copy);
  return end;
}

static void read_finished(struct fz *z)
{
  eddy_future_t *f = z->rf;
  const uint8_t *v = eddy_future_value(f);
  size_t len = eddy_future_size(f);

  if (eddy_future_state(f) == EDDY_FUTURE_RESOLVED) {
    switch (z->kind) {
    case K_UNTIL:
    case K_REGEX:
      take(z, v, len);
      CHECK(len > 0 || z->kind == K_REGEX);
      CHECK(first_end(z, v, len) == len);
      CHECK(z->max == 0 || len <= z->max);
      break;
    case K_BYTES:
      take(z, v, len);
      CHECK(z->partial ? (len >= 1 || z->n == 0) && len <= z->n : len == z->n);
      break;
    case K_INTO:
      CHECK(v == NULL);
      take(z, z->into, len);
      CHECK(z->partial ? (len >= 1 || z->n == 0) && len <= z->n : len == z->n);
      break;
    case K_CHUNKED:
      CHECK(z->chunked == z->n);
      break;
    case K_CLOSE:
      take(z, v, len);
      CHECK(eddy_stream_closed(z->s) || eddy_stream_read_ended(z->s));
      break;
    case K_CLOSE_CHUNKED:
      CHECK(eddy_stream_closed(z->s) || eddy_stream_read_ended(z->s));
      break;
    case K_NONE:
      CHECK(0);
    }
  } else {
    int code = eddy_future_error(f), cause = eddy_future_cause(f);
    CHECK(code == EDDY_ECLOSED || code == EDDY_ECANCELLED || code == EDDY_ETIMEOUT);
    if (code == EDDY_ECLOSED && cause == EDDY_EUNSATISFIABLE && !z->closed_before) {
      /* Only a limited delimiter read may fail so, only when the limit
       * really was passed, and the stream is closed by it. (On a stream
       * already closed so, any read fails with that cause.) */
      CHECK((z->kind == K_UNTIL || z->kind == K_REGEX) && z->max > 0);
      CHECK(eddy_stream_closed(z->s));
      CHECK(eddy_stream_error(z->s) == EDDY_EUNSATISFIABLE);
      size_t blen;
      const uint8_t *b = eddy_stream_peek(z->s, &blen);
      CHECK(blen == eddy_stream_read_buffer_size(z->s));
      size_t end = first_end(z, b, blen);
      CHECK(end > z->max || (end == 0 && blen > z->max));
    } else if (code == EDDY_ECLOSED) {
      CHECK(eddy_stream_closed(z->s) || eddy_stream_read_ended(z->s));
      CHECK(cause != EDDY_EUNSATISFIABLE || z->closed_before);
    }
    /* A cancelled read_into puts back what it placed: nothing to take. */
  }
  eddy_future_unref(f);
  z->rf = NULL;
  z->kind = K_NONE;
  free(z->into);
  z->into = NULL;
  if (z->have_re) {
    regfree(&z->re);
    z->have_re = 0;
  }
}

static void poll_read(struct fz *z)
{
  if (z->rf != NULL && eddy_future_done(z->rf))
    read_finished(z);
}

static void start_read(struct fz *z, uint8_t op, uint8_t a, uint8_t b, int deadline)
{
  eddy_future_t *f = NULL;

  if (z->rf != NULL) {
    /* One read at a time: a second fails at once, and so does consume. */
    f = eddy_stream_read_bytes(z->s, 1, 0);
    CHECK(f != NULL && eddy_future_state(f) == EDDY_FUTURE_REJECTED &&
          eddy_future_error(f) == EDDY_EALREADYREADING);
    eddy_future_unref(f);
    CHECK(eddy_stream_consume(z->s, 1) == EDDY_EALREADYREADING);
    return;
  }
  z->chunked = 0;
  z->closed_before = eddy_stream_closed(z->s);
  z->n = (size_t)a | ((size_t)(b & 0x0f) << 8); /* up to 4 KiB */
  z->partial = b >> 7;
  z->max = limits[b & 7];
  switch (op % 7) {
  case 0:
    z->kind = K_UNTIL;
    z->delim = delims[a % (sizeof(delims) / sizeof(delims[0]))].d;
    z->dlen = delims[a % (sizeof(delims) / sizeof(delims[0]))].len;
    f = eddy_stream_read_until(z->s, z->delim, z->dlen, z->max);
    break;
  case 1: {
    const char *pat = patterns[a % (sizeof(patterns) / sizeof(patterns[0]))];
    z->kind = K_REGEX;
    CHECK(regcomp(&z->re, pat, REG_EXTENDED) == 0);
    z->have_re = 1;
    f = eddy_stream_read_until_regex(z->s, pat, z->max);
    break;
  }
  case 2:
    z->kind = K_BYTES;
    f = eddy_stream_read_bytes(z->s, z->n, z->partial);
    break;
  case 3:
    z->kind = K_INTO;
    z->into = malloc(z->n ? z->n : 1);
    CHECK(z->into != NULL);
    f = eddy_stream_read_into(z->s, z->into, z->n, z->partial);
    break;
  case 4:
    z->kind = K_CHUNKED;
    f = eddy_stream_read_bytes_chunked(z->s, z->n, on_chunk, z);
    break;
  case 5:
    z->kind = K_CLOSE;
    f = eddy_stream_read_until_close(z->s);
    break;
  default:
    z->kind = K_CLOSE_CHUNKED;
    f = eddy_stream_read_until_close_chunked(z->s, on_chunk, z);
    break;
  }
  CHECK(f != NULL);
  if (deadline) {
    f = eddy_with_timeout(f, 1e-6);
    CHECK(f != NULL);
  }
  z->rf = f;
}

/* Looks, then takes: peek shows the next payload bytes. */
static void peek_consume(struct fz *z, size_t n)
{
  size_t len;
  const uint8_t *p = eddy_stream_peek(z->s, &len);
  CHECK(len == eddy_stream_read_buffer_size(z->s));
  CHECK((p == NULL) == (len == 0));
  CHECK(z->consumed + len <= z->sent);
  CHECK(len == 0 || memcmp(z->in + z->consumed, p, len) == 0);
  if (z->rf != NULL)
    return;
  ssize_t c = eddy_stream_consume(z->s, n);
  CHECK(c == (ssize_t)(n < len ? n : len));
  z->consumed += (size_t)c;
}

/* ------------------------------------------------------------------------ */
/* Writes and closes                                                         */
/* ------------------------------------------------------------------------ */

static void remember(struct fz *z, eddy_future_t *f)
{
  CHECK(f != NULL);
  if (z->nothers == MAX_OTHERS) {
    eddy_future_unref(f);
    return;
  }
  z->others[z->nothers++] = f;
}

static void do_write(struct fz *z, uint8_t how, uint8_t len)
{
  if (z->is_pipe || z->nwrites == MAX_WRITES)
    return;
  /* Content: a counter pattern offset by the write's number, so a
   * reordered or repeated piece shows. */
  if (how % 3 == 2 && len > z->in_len)
    len = (uint8_t)z->in_len;
  uint8_t *p = malloc(len ? len : 1);
  CHECK(p != NULL);
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(z->wexp_len + i + (size_t)z->nwrites * 7);
  int was_closed = eddy_stream_closed(z->s);
  eddy_future_t *f;
  switch (how % 3) {
  case 0:
    f = eddy_stream_write(z->s, p, len);
    break;
  case 1:
    /* Handed over: p is the stream's, so expect a copy of it. */
    memcpy(z->scratch, p, len);
    f = eddy_stream_write_take(z->s, p, len, free);
    p = NULL;
    break;
  default:
    /* Borrowed from the payload, which outlives every future of the run. */
    memcpy(p, z->in, len);
    f = eddy_stream_write_borrowed(z->s, z->in, len);
    break;
  }
  CHECK(f != NULL);
  if (eddy_future_state(f) == EDDY_FUTURE_REJECTED) {
    int code = eddy_future_error(f);
    CHECK(code == EDDY_ECLOSED);
    /* shutdown_write and close_when_drained end writing too. */
    CHECK(was_closed || eddy_stream_closed(z->s) || z->write_shut);
    eddy_future_unref(f);
    free(p);
    return;
  }
  uint8_t *grown = realloc(z->wexp, z->wexp_len + len + 1);
  CHECK(grown != NULL);
  z->wexp = grown;
  memcpy(z->wexp + z->wexp_len, p != NULL ? p : z->scratch, len);
  z->wexp_len += len;
  free(p);
  z->write_end[z->nwrites] = z->wexp_len;
  z->writes[z->nwrites++] = f;
}

static void on_close(eddy_stream_t *s, int error, void *arg)
{
  struct fz *z = arg;
  CHECK(s == z->s);
  CHECK(++z->closes == 1);
  CHECK(eddy_stream_closed(s) && eddy_stream_fd(s) == -1);
  CHECK(error == eddy_stream_error(s));
  /* Closed already, and the number is taken again at once: a second
   * close by the stream would close this one, which the end checks. */
  CHECK(fcntl(z->fd, F_GETFD) == -1 && errno == EBADF);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK(null >= 0);
  if (null != z->fd) {
    CHECK(dup2(null, z->fd) == z->fd);
    close(null);
  }
}

/* The library's info logs ("Unsatisfiable read", "Reached maximum read
 * buffer size") are expected here, thousands of times a second. */
static void quiet(eddy_log_level_t level, const char *message, void *arg)
{
  (void)level;
  (void)message;
  (void)arg;
}

/* ------------------------------------------------------------------------ */

struct script {
  const uint8_t *p;
  size_t len, at;
};

static uint8_t next(struct script *sc)
{
  return sc->at < sc->len ? sc->p[sc->at++] : 0;
}

static void run(const uint8_t *data, size_t size)
{
  struct fz z;
  int fds[2];
  eddy_stream_options_t opt;
  static const size_t buffer_sizes[] = {0, 64, 1000, 0};

  if (size < 2)
    return;
  memset(&z, 0, sizeof(z));
  uint8_t flags = data[0];
  struct script sc = {data + 2, data[1], 0};
  if (sc.len > size - 2)
    sc.len = size - 2;
  z.in = data + 2 + sc.len;
  z.in_len = size - 2 - sc.len;
  z.is_pipe = flags & 1;

  eddy_stream_options_init(&opt);
  opt.max_buffer_size = buffer_sizes[(flags >> 1) & 3];
  if (flags & 8)
    opt.read_chunk_size = 7; /* many small reads */
  opt.allow_half_open = (flags >> 4) & 1;
  /* The stream's own deadlines, short enough to pass mid-script: the
   * stream closes with EDDY_ETIMEOUT, whatever is pending. */
  if ((flags & 0x60) == 0x60)
    opt.read_timeout = 1e-4;
  else if ((flags & 0x60) == 0x40)
    opt.idle_timeout = 1e-4;

  z.loop = eddy_loop_new();
  CHECK(z.loop != NULL);
  eddy_loop_set_logger(z.loop, quiet, NULL);
  if (z.is_pipe) {
    CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    z.peer = fds[1];
    z.fd = fds[0];
    z.s = eddy_stream_new_pipe(z.loop, fds[0], &opt);
  } else {
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    z.peer = fds[1];
    z.fd = fds[0];
    z.s = eddy_stream_new_socket(z.loop, fds[0], &opt);
  }
  CHECK(z.s != NULL);
  eddy_stream_set_close_callback(z.s, on_close, &z);

  while (sc.at < sc.len) {
    uint8_t op = next(&sc);
    switch (op >> 4) {
    case 0: case 1: case 2: /* deliver a chunk */
      send_payload(&z, (size_t)next(&sc) + 1);
      break;
    case 3: case 4: case 5: case 6: { /* a read */
      uint8_t a = next(&sc), b = next(&sc);
      start_read(&z, op, a, b, 0);
      break;
    }
    case 7: { /* a read with a deadline that passes almost at once */
      uint8_t a = next(&sc), b = next(&sc);
      start_read(&z, op, a, b, 1);
      break;
    }
    case 8:
      peek_consume(&z, next(&sc));
      break;
    case 9: { /* a write */
      uint8_t len = next(&sc);
      do_write(&z, op, len);
      break;
    }
    case 10: /* cancel the read */
      if (z.rf != NULL)
        eddy_future_cancel(z.rf);
      break;
    case 11:
      send_eof(&z);
      break;
    case 12: /* our side ends, one of three ways */
      if (op & 1) {
        z.local_close = 1;
        eddy_stream_close(z.s, 0);
      } else if (op & 2) {
        z.local_close = z.write_shut = 1;
        eddy_stream_close_when_drained(z.s);
      } else if (!z.is_pipe) {
        z.write_shut = 1;
        remember(&z, eddy_stream_shutdown_write(z.s));
      }
      break;
    case 13:
      if (!z.is_pipe)
        remember(&z, eddy_stream_drain(z.s));
      else
        remember(&z, eddy_stream_wait_closed(z.s));
      break;
    default:
      spin(&z, (op & 15) + 1, 0);
      break;
    }
    spin(&z, 2, 0);
    poll_read(&z);
  }

  /* The rest of the payload, then EOF, into one last read that takes
   * everything: after a clean end nothing may be missing. */
  if (z.rf != NULL) {
    eddy_future_cancel(z.rf);
    spin(&z, 1, 0);
    poll_read(&z);
  }
  CHECK(z.rf == NULL);
  start_read(&z, 6, 0, 0, 0);
  for (int i = 0; i < 1000 && z.rf != NULL; i++) {
    spin(&z, 4, 1);
    poll_read(&z);
  }
  CHECK(z.rf == NULL);
  if (!z.local_close && eddy_stream_error(z.s) == 0 && z.peer_done)
    CHECK(z.consumed == z.sent);
  peek_consume(&z, 0); /* whatever is left is the rest, in order */

  /* Close, and every future settles; the peer got every resolved write. */
  eddy_stream_close(z.s, 0);
  spin(&z, 4, 0);
  receive_writes(&z);
  for (int i = 0; i < z.nwrites; i++) {
    CHECK(eddy_future_done(z.writes[i]));
    if (eddy_future_state(z.writes[i]) == EDDY_FUTURE_RESOLVED)
      CHECK(z.wgot >= z.write_end[i]);
    eddy_future_unref(z.writes[i]);
  }
  for (int i = 0; i < z.nothers; i++) {
    CHECK(eddy_future_done(z.others[i]));
    eddy_future_unref(z.others[i]);
  }
  CHECK(z.closes == 1);
  eddy_stream_unref(z.s);
  spin(&z, 2, 0);
  eddy_loop_free(z.loop);
  /* Still our /dev/null: the stream closed its fd once, not twice. */
  CHECK(fcntl(z.fd, F_GETFD) != -1);
  close(z.fd);
  if (z.peer >= 0)
    close(z.peer);
  free(z.wexp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int once;
  if (!once) {
    /* Pipes raise SIGPIPE at our peer end, never at eddy's. */
    signal(SIGPIPE, SIG_IGN);
    once = 1;
  }
  run(data, size);
  return 0;
}
