/* SPDX-License-Identifier: MIT */
/*
 * Byte filters under a stream (not installed): the layering TLS uses.
 *
 * The stream always does the socket syscalls itself: 64 KiB recv, gathered
 * sendmsg(MSG_NOSIGNAL), sendfile fallback, SIGPIPE safety, EAGAIN and
 * interest handling, deadlines. A filter only transforms bytes between two
 * of the stream's own buffers, h2o style:
 *
 *   input:   recv -> raw_in -> ops->decode() -> read buffer (plaintext)
 *                                           \-> raw_out (e.g. handshake
 *                                               records, alerts, tickets)
 *   output:  write queue (plaintext) -> ops->encode() -> raw_out -> sendmsg
 *
 * So a filter never sees a socket, never blocks and never gets EAGAIN: a
 * memory sink always accepts, and "need more input" simply means decode
 * consumed what it could and produced nothing yet. The plain path pays one
 * NULL check (eddy__filter_of(): the cold part's pointer) per read
 * and per flush.
 *
 * Reads. Every read kind works unchanged: they are satisfied from the read
 * buffer, which decode appends to (read_into copies out of it instead of
 * reading straight into the caller's memory, since what comes off the
 * socket is not what the caller wants). R6 read targets apply to raw input.
 *
 * max_buffer_size applies to the plaintext, and it is a bound, not a
 * reason to close: decode appends at most eddy__filter_plain_room() bytes
 * and keeps the rest (a TLS record decrypts to up to 16 KiB at once),
 * saying so with eddy__filter_holding(). While it holds input the stream
 * reads nothing more from the fd (so the kernel pushes back, as for a
 * plain stream with a full buffer) and, once reads have made room, calls
 * decode again with no new input: from the read that needs it, or from a
 * task, since the fd may never become readable again for bytes that are
 * already out of the kernel. A read that needs more than the buffer can
 * hold fails as on a plain socket: the stream closes with
 * EDDY_EBUFFERFULL when the buffer is full, the filter still holds input
 * and the read is not satisfied.
 *
 * Writes. Plaintext pieces are handed to encode in order (encode may take
 * part of a piece). New plaintext is encoded only once raw_out has been
 * sent completely, and a write future resolves once its plaintext has been
 * consumed by encode AND all the output produced so far reached the
 * kernel. encode may consume nothing (e.g. TLS before its handshake
 * finished): the bytes stay queued and the stream retries after the next
 * decode, without arming write interest (no busy loop: Tornado #2373).
 *
 * Errors. A hook returns 0 or a negative code (EDDY_ETLS...) after setting
 * a message with eddy__filter_fail(); the stream then makes one
 * non-blocking attempt to send raw_out (so the fatal alert the hook
 * appended reaches the peer) and closes with that code as its error and
 * that message as eddy_stream_error_message(). A filter never does a
 * syscall itself, not even for its last words.
 *
 * The end. decode says "the peer ended the protocol's stream" (TLS
 * close_notify, whether or not TCP stays open) with eddy__filter_eof_seen():
 * the stream treats that as an orderly EOF once decode returns, exactly as
 * a recv of 0 (pending reads complete or fail as on any close). A local
 * close without error (eddy_stream_close(s, 0), the last unref,
 * close_when_drained) calls shutdown first when no queued plaintext is
 * being dropped, and tries once, without blocking, to send what it
 * produced; close_when_drained sends it through the queue like any output
 * and closes once it is out. The closed hook then learns that the stream
 * closed, with its error, once.
 *
 * Sketch: TLS with OpenSSL memory BIOs (the next issue).
 *
 *   start:   SSL_new; SSL_set_bio(ssl, rbio = BIO_new(BIO_s_mem()),
 *            wbio = BIO_new(BIO_s_mem())); set connect/accept state, SNI;
 *            eddy__filter_want_read(f, 1) (handshake needs input even with
 *            no read pending); client: SSL_do_handshake, then move wbio's
 *            bytes (BIO_read) into eddy__filter_raw_out(f): the ClientHello.
 *   decode:  BIO_write(rbio, raw, len); *consumed = len; while the handshake
 *            is not done: SSL_do_handshake (on completion: want_read 0,
 *            resolve the handshake future, verify the peer); then loop
 *            SSL_read into eddy__filter_plain(f) (reserve + commit, at
 *            most eddy__filter_plain_room()) until WANT_READ or no room;
 *            with no room, SSL_peek says whether plaintext is held
 *            (eddy__filter_holding); then flush wbio into raw_out (SSL_read
 *            can emit alerts, tickets, KeyUpdate replies). Fatal errors:
 *            eddy__filter_fail(f, EDDY_ETLS, "%s", ERR_reason_error_string).
 *   encode:  not yet handshaken: *consumed = 0, return 0. Otherwise
 *            SSL_write (SSL_MODE_ENABLE_PARTIAL_WRITE) a bounded slice,
 *            *consumed = what it took, flush wbio into raw_out.
 *   eof:     close_notify seen: 0; else EDDY_ETLS ("unexpected EOF") unless
 *            dirty shutdowns are allowed.
 *   shutdown: SSL_shutdown once, flush wbio into raw_out (close_notify goes
 *            out before the FIN, or before the close).
 *   closed:  settle whatever waits on the session (a handshake waiter).
 *   destroy: SSL_free.
 *
 * STARTTLS: eddy__stream_start_filter() on an idle stream installs the
 * filter in place; the stream object, its refs, callbacks and limits stay.
 * An idle plain socket never takes bytes out of the kernel (it peeks, see
 * io.c), so the peer's first records are still there when the filter goes
 * in, however long the switch took.
 */
#ifndef EDDY_STREAM_TRANSPORT_H
#define EDDY_STREAM_TRANSPORT_H

#include <stddef.h>

#include "eddy/stream.h"
#include "loop/loop_internal.h"
#include "stream/buffer.h"

struct eddy__filter;

struct eddy__filter_ops {
  const char *name;
  /* Once, when the filter is installed (after connect, if connecting).
   * May append to raw_out (a ClientHello). Optional. */
  int (*start)(struct eddy__filter *f);
  /* @len raw input bytes at @raw: take some (*consumed; what is left is
   * offered again with more input), append plaintext to eddy__filter_plain()
   * and output to eddy__filter_raw_out(). @len is 0 when the stream resumes
   * a filter that was holding input. */
  int (*decode)(struct eddy__filter *f, const char *raw, size_t len,
                size_t *consumed);
  /* @len plaintext bytes to send: take some (*consumed, may be 0) and append
   * the resulting output to eddy__filter_raw_out(). */
  int (*encode)(struct eddy__filter *f, const char *plain, size_t len,
                size_t *consumed);
  /* The transport reached EOF: 0 if that is a clean close, or a negative
   * code (and eddy__filter_fail()) for a truncated stream. Optional. */
  int (*eof)(struct eddy__filter *f);
  /* The write side is about to be shut down (shutdown_write), or the
   * stream is about to close locally without error: append a closing
   * record to raw_out if the protocol has one. Called at most once.
   * Optional. */
  int (*shutdown)(struct eddy__filter *f);
  /* Frees ctx. Called once, when the stream is freed. Optional. */
  void (*destroy)(void *ctx);
  /* The stream closed (@error: its cause, 0 for an orderly close). Called
   * once, from inside the close, after the stream's own pending futures
   * were failed and before the close callback; the fd is already gone.
   * The filter may settle futures and drop stream references here (the
   * close holds one). Optional. */
  void (*closed)(struct eddy__filter *f, int error);
};

struct eddy__filter {
  const struct eddy__filter_ops *ops;
  void *ctx;
  eddy_stream_t *stream;
  int want_read;  /* wants raw input even with no read pending */
  int holding;    /* decode kept input back for lack of room */
  int resume_queued; /* resume_task is queued */
  int eof_seen;   /* set by eddy__filter_eof_seen() */
  int fail_code;  /* set by eddy__filter_fail() */
  int last_words_left; /* eddy__filter_last_send() could not send it all */
  char *message;  /* set by eddy__filter_fail() */
  struct eddy__buf raw_in;  /* bytes read from the fd, not yet decoded */
  struct eddy__buf raw_out; /* encoded bytes, not yet sent */
  struct eddy__task resume_task; /* decodes what is held once there is room */
};

/* The filter installed under @s, or NULL (a plain stream). */
struct eddy__filter *eddy__stream_filter(const eddy_stream_t *s);

/* The stream's read buffer: decode appends plaintext here (reserve, write
 * at eddy__buf_tail(), commit; or eddy__buf_append()). */
struct eddy__buf *eddy__filter_plain(struct eddy__filter *f);

/* How many plaintext bytes decode may append to eddy__filter_plain() now:
 * max_buffer_size less what the read buffer holds (0 when it is full). */
size_t eddy__filter_plain_room(struct eddy__filter *f);

/* From decode: whether it kept input back (plaintext, or records not yet
 * decoded) because eddy__filter_plain_room() ran out. While on, the stream
 * reads nothing more from the fd and calls decode again, with len 0, once
 * the buffer has room. Decode sets it on every call. */
void eddy__filter_holding(struct eddy__filter *f, int on);

/* Bytes to send; the stream sends them after the hook returns. */
struct eddy__buf *eddy__filter_raw_out(struct eddy__filter *f);

/* Asks for raw input even with no read pending (a handshake in progress). */
void eddy__filter_want_read(struct eddy__filter *f, int on);

/* From decode: the peer ended the protocol's stream (TLS close_notify).
 * The stream stops decoding, sends what raw_out holds (once, without
 * blocking; the filter's own closing record if it queued one) and closes
 * as on an orderly EOF, even though the transport may still be open. */
void eddy__filter_eof_seen(struct eddy__filter *f);

/* Records why the filter failed; returns @code for `return eddy__filter_fail(...)`. */
int eddy__filter_fail(struct eddy__filter *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* start_filter flag: bytes already in the read buffer are raw input for the
 * filter (a peer that sent its first records right behind the plaintext
 * that asked for the switch) instead of a reason to refuse. */
#define EDDY__FILTER_ADOPT_BUFFERED 0x1u

/*
 * Installs a filter. Once installed, the stream owns ctx and calls
 * ops->destroy(ctx) when it is freed; that includes a return of the start
 * hook's failure (the stream is then closed with it). Refused, leaving ctx
 * with the caller, with
 * EDDY_ENOTIDLE while a read or write is pending or (without
 * EDDY__FILTER_ADOPT_BUFFERED) input is buffered, EDDY_ECLOSED on a closed
 * stream, EDDY_EUSAGE if a filter is already installed.
 */
int eddy__stream_start_filter(eddy_stream_t *s, const struct eddy__filter_ops *ops,
                              void *ctx, unsigned flags);

#endif
