/* SPDX-License-Identifier: MIT */
/*
 * eddy/stream.h - buffered non-blocking streams, every operation a future.
 *
 * Tornado's BaseIOStream / IOStream / PipeIOStream in C. A stream wraps one
 * file descriptor (a socket or a pipe) and owns it: the fd is closed exactly
 * once, when the stream closes.
 *
 * Reads. One read at a time: a second read while one is pending fails at
 * once with EDDY_EALREADYREADING. Every read first looks at what is already
 * buffered; if that satisfies it, the returned future is already resolved
 * (its callbacks still run from the loop). Data that arrived before the
 * peer closed is still delivered to reads it satisfies; only then do reads
 * fail. The peer ending its side never drops queued writes: the stream
 * closes once they are sent (or, with allow_half_open, stays open for
 * writing). A read future resolves with a malloc'ed buffer owned by the future:
 * eddy_future_value() / eddy_future_size() borrow it, eddy_future_take()
 * hands it over (free it with free()). The buffer is always followed by a
 * NUL byte that eddy_future_size() does not count, so text can be used as a
 * C string directly.
 *
 * Writes. Writes may be issued while others are pending; they go out in
 * order (gathered with sendmsg, writev for pipes). A write's future
 * resolves once its bytes, and every earlier write's, have been handed to
 * the kernel. A write that the kernel takes at once returns an already
 * resolved future.
 *
 * Errors. Operations never raise: every failure is a rejected future (often
 * already rejected on return). A stream that closes while operations are
 * pending rejects them with EDDY_ECLOSED, carrying the real cause
 * (eddy_future_cause(): -ECONNRESET, -EPIPE, EDDY_ETIMEOUT,
 * EDDY_EUNSATISFIABLE, ...). No operation can raise SIGPIPE. The only NULL
 * returns are ENOMEM and a NULL stream (no loop to put a future on; errno
 * is then EINVAL). A write that fails for lack of memory (NULL, or a
 * future rejected with -ENOMEM) closes the stream with -ENOMEM, whatever of
 * it was sent: the peer sees the connection end after a prefix, and no
 * later write can follow a gap, even if the application ignores the
 * failure.
 *
 * References. Streams are refcounted like futures: constructors return a
 * reference the caller owns. A stream stays alive while it has pending
 * operations even if its owner drops every reference; when the last
 * reference goes and nothing is pending, the stream closes (if still open)
 * and is freed.
 *
 * Differences from Tornado are deliberate and listed in docs/streams.md.
 */
#ifndef EDDY_STREAM_H
#define EDDY_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "error.h"
#include "loop.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_stream eddy_stream_t;

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Stream limits and deadlines. Initialise with eddy_stream_options_init()
 * and change what you need; a zero field means "the default". Passing NULL
 * where options are taken means all defaults.
 */
typedef struct eddy_stream_options {
  /** Most bytes buffered for reading (default 100 MiB). A stream whose
   *  read buffer would grow past it closes with EDDY_EBUFFERFULL. */
  size_t max_buffer_size;
  /** Bytes asked of the kernel per read (default 64 KiB; clamped to
   *  max_buffer_size / 2 as Tornado does). */
  size_t read_chunk_size;
  /** Most unsent bytes queued (default: unlimited). A write that would
   *  pass it fails with EDDY_EBUFFERFULL; nothing is queued or lost. */
  size_t max_write_buffer_size;
  /** Backpressure: once more than write_high_watermark bytes are queued,
   *  eddy_stream_write_blocked() is true until the queue falls to
   *  write_low_watermark; eddy_stream_drain() waits for that. Defaults:
   *  high 1 MiB, low 0 (a drain waits for an empty queue). */
  size_t write_high_watermark;
  size_t write_low_watermark;
  /** Deadlines in seconds (0: none). When one passes, the stream closes
   *  with cause EDDY_ETIMEOUT. connect: for eddy_stream_connect().
   *  read: how long one pending read may wait. write: how long the write
   *  queue may stay non-empty without progress. idle: how long the stream
   *  may see no I/O at all. For a per-call deadline that leaves the stream
   *  open, wrap one operation in eddy_with_timeout(). */
  double connect_timeout;
  double read_timeout;
  double write_timeout;
  double idle_timeout;
  /** What the peer ending its side (EOF; over TLS, its close_notify) does
   *  to ours. Either way reads end: read_until_close resolves, a read the
   *  buffer cannot satisfy fails with EDDY_ECLOSED (cause 0), and
   *  eddy_stream_read_ended() turns true. Then:
   *  0 (the default, as Tornado and Node): the stream closes once every
   *  write queued so far has been sent, at once if none is; writes still
   *  reach a peer that reads (a FIN is not a reason to drop them).
   *  non-zero (Node's allowHalfOpen): the stream stays open for writing
   *  until the application closes it or shuts its own side down with
   *  eddy_stream_shutdown_write(), whose FIN then closes it; the close
   *  callback and wait_closed run then. */
  int allow_half_open;
  /** Room for the fields later 0.x releases add, so the struct keeps its
   *  size and the layout old binaries were built with (docs/design.md,
   *  "Binary compatibility"). Must be zero, as eddy_stream_options_init() leaves it. */
  size_t reserved_[3];
} eddy_stream_options_t;

/** Fills @p options with the defaults (all zero). */
EDDY_API void eddy_stream_options_init(eddy_stream_options_t *options);

/* ------------------------------------------------------------------------ */
/* Making streams                                                            */
/* ------------------------------------------------------------------------ */

/**
 * A stream over a socket. @p fd may be connected (e.g. just accepted) or
 * not yet connected (then call eddy_stream_connect()); pass -1 to let
 * eddy_stream_connect() create a socket of the right family. The stream
 * takes ownership of @p fd (even on failure, when it is closed) and makes it
 * non-blocking and close-on-exec.
 *
 * @param options copied; NULL for defaults.
 * @return a new reference, or NULL with errno set (ENOMEM; EINVAL, also
 *         for a reserved_ byte set in @p options).
 */
EDDY_API eddy_stream_t *eddy_stream_new_socket(eddy_loop_t *loop, int fd,
                                               const eddy_stream_options_t *options);

/**
 * A stream over a pipe, FIFO or terminal fd (stdin, stdout, one end of
 * pipe()). Reads and writes both work; a read of 0 bytes is the peer's
 * close. The stream takes ownership of @p fd as above.
 *
 * @return a new reference, or NULL with errno set.
 */
EDDY_API eddy_stream_t *eddy_stream_new_pipe(eddy_loop_t *loop, int fd,
                                             const eddy_stream_options_t *options);

/** Adds a reference. @return @p s. */
EDDY_API eddy_stream_t *eddy_stream_ref(eddy_stream_t *s);

/**
 * Drops a reference. When the last one goes and no operation is pending,
 * the stream is closed (if it is open) and freed. NULL is allowed.
 */
EDDY_API void eddy_stream_unref(eddy_stream_t *s);

/**
 * Connects a socket stream to @p addr (IPv4, IPv6 or UNIX). Writes issued
 * while connecting are queued and go out once connected; the connect future
 * settles before any of their futures.
 *
 * @param addr copied.
 * @return a new reference to a future resolved with the stream itself (the
 *         future holds a reference to it as its value; eddy_future_value()
 *         borrows it), or rejected with EDDY_ECLOSED whose cause is the
 *         connect error (-ECONNREFUSED, -ENOENT for a missing UNIX path,
 *         EDDY_ETIMEOUT, ...). NULL only on ENOMEM.
 */
EDDY_API eddy_future_t *eddy_stream_connect(eddy_stream_t *s,
                                            const struct sockaddr *addr,
                                            socklen_t addrlen);

/* ------------------------------------------------------------------------ */
/* Reading (one at a time; see the top of this file)                         */
/* ------------------------------------------------------------------------ */

/**
 * Reads exactly @p n bytes; with @p partial, resolves as soon as at least
 * one byte is there, with at most n bytes. n == 0 resolves at once with an
 * empty buffer, even on a closed stream.
 */
EDDY_API eddy_future_t *eddy_stream_read_bytes(eddy_stream_t *s, size_t n,
                                               int partial);

/**
 * Reads up to and including the first occurrence of @p delimiter
 * (@p delimiter_len bytes, any bytes, binary-safe). With @p max_bytes > 0,
 * if that many bytes arrive without the delimiter ending within them, the
 * read fails with EDDY_ECLOSED (cause EDDY_EUNSATISFIABLE) and the stream
 * closes: Tornado's UnsatisfiableReadError. max_bytes == 0: no limit (the
 * stream's max_buffer_size still applies). An empty delimiter, or one of
 * 4 GiB or more, fails at once with EDDY_EUSAGE. Bytes already searched
 * are never scanned again.
 */
EDDY_API eddy_future_t *eddy_stream_read_until(eddy_stream_t *s,
                                               const void *delimiter,
                                               size_t delimiter_len,
                                               size_t max_bytes);

/**
 * Reads up to and including the end of the first match of the POSIX
 * extended regular expression @p pattern (see docs/streams.md for its
 * flavour). max_bytes as for eddy_stream_read_until(). An invalid pattern
 * fails at once with EDDY_EREGEX.
 */
EDDY_API eddy_future_t *eddy_stream_read_until_regex(eddy_stream_t *s,
                                                     const char *pattern,
                                                     size_t max_bytes);

/**
 * Reads everything until the peer closes. Resolves with all of it on an
 * orderly close or a reset (eddy_stream_error() tells which); fails only if
 * the data would pass max_buffer_size (EDDY_ECLOSED, cause
 * EDDY_EBUFFERFULL). On an already closed stream, resolves at once with
 * whatever is buffered.
 */
EDDY_API eddy_future_t *eddy_stream_read_until_close(eddy_stream_t *s);

/**
 * Called from the loop with each chunk of a streaming read; @p data is
 * borrowed for the call. The stream may be used from inside it, except to
 * start another read.
 */
typedef void (*eddy_chunk_fn)(eddy_stream_t *s, const void *data, size_t len,
                              void *arg);

/**
 * read_bytes(n) that hands the bytes to @p fn as they arrive (Tornado's
 * streaming_callback); the future resolves with no data once n bytes have
 * been handed over.
 */
EDDY_API eddy_future_t *eddy_stream_read_bytes_chunked(eddy_stream_t *s,
                                                       size_t n,
                                                       eddy_chunk_fn fn,
                                                       void *arg);

/**
 * read_until_close() that hands the bytes to @p fn as they arrive, with no
 * limit on the total; the future resolves with no data when the peer
 * closes.
 */
EDDY_API eddy_future_t *eddy_stream_read_until_close_chunked(eddy_stream_t *s,
                                                             eddy_chunk_fn fn,
                                                             void *arg);

/**
 * Reads into the caller's @p buf of @p len bytes: buffered bytes are copied
 * first, the rest is read from the kernel straight into @p buf. Resolves
 * with no data and size = bytes placed (len, or with @p partial at least
 * 1). @p buf is borrowed: keep it alive and untouched until the future
 * settles (or is cancelled). len == 0 resolves at once with size 0.
 */
EDDY_API eddy_future_t *eddy_stream_read_into(eddy_stream_t *s, void *buf,
                                              size_t len, int partial);

/**
 * The read buffer, for parsers that look before they take: a pointer to
 * the first buffered bytes and, in *len, how many are contiguous there.
 * Borrowed: valid until the next call on the stream. NULL with *len = 0 if
 * nothing is buffered.
 */
EDDY_API const void *eddy_stream_peek(eddy_stream_t *s, size_t *len);

/**
 * Drops up to @p n bytes from the front of the read buffer.
 *
 * @return bytes dropped; EDDY_EALREADYREADING while a read is pending.
 */
EDDY_API ssize_t eddy_stream_consume(eddy_stream_t *s, size_t n);

/** Bytes currently buffered for reading. */
EDDY_API size_t eddy_stream_read_buffer_size(const eddy_stream_t *s);

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Queues a copy of @p data. Rejected at once (nothing queued) with
 * EDDY_ECLOSED on a closed stream and EDDY_EBUFFERFULL past
 * max_write_buffer_size. len == 0 resolves once every earlier write has.
 */
EDDY_API eddy_future_t *eddy_stream_write(eddy_stream_t *s, const void *data,
                                          size_t len);

/**
 * Queues @p data without a copy, taking ownership: @p data_free(data) is
 * called once the bytes are sent or dropped (even if this call fails).
 *
 * Zero-copy, and its sibling calls below, hold for what a write leaves
 * queued of 512 bytes or more. Less than that is copied into the queue
 * (a copy that short costs less than holding the caller's block), and
 * then @p data_free is called at once; the write's future still resolves
 * only once the bytes are in the kernel.
 */
EDDY_API eddy_future_t *eddy_stream_write_take(eddy_stream_t *s, void *data,
                                               size_t len,
                                               eddy_free_fn data_free);

/**
 * Queues @p data without a copy, borrowed: the caller keeps it alive and
 * unchanged until the returned future settles (under 512 bytes queued, a
 * copy is taken at once: see eddy_stream_write_take()).
 */
EDDY_API eddy_future_t *eddy_stream_write_borrowed(eddy_stream_t *s,
                                                   const void *data,
                                                   size_t len);

/**
 * Queues the bytes a resolved future carries (e.g. a read's result), without
 * a copy: the stream keeps its own reference to @p f until they are sent
 * (under 512 bytes queued, a copy instead: see eddy_stream_write_take()).
 * @p f is borrowed (rule 3 of future.h). A future that is not resolved
 * gives a future rejected with its error (or EDDY_EPENDING).
 */
EDDY_API eddy_future_t *eddy_stream_write_bytes_of(eddy_stream_t *s,
                                                   eddy_future_t *f);

/**
 * Queues @p len bytes of the file @p fd from @p offset, sent with
 * sendfile(2) on plain sockets (read and write elsewhere). @p fd is
 * borrowed: keep it open until the future settles.
 */
EDDY_API eddy_future_t *eddy_stream_write_file(eddy_stream_t *s, int fd,
                                               off_t offset, size_t len);

/** Bytes queued and not yet handed to the kernel. */
EDDY_API size_t eddy_stream_write_buffer_size(const eddy_stream_t *s);

/**
 * Whether the queue passed the high watermark and has not yet fallen to
 * the low one: a producer should wait for eddy_stream_drain().
 */
EDDY_API int eddy_stream_write_blocked(const eddy_stream_t *s);

/**
 * A future resolved when at most write_low_watermark bytes are queued (at
 * once if that is already so); rejected with EDDY_ECLOSED (cause: why it
 * closed) if the stream closes first, and at once on a stream that is
 * already closed.
 */
EDDY_API eddy_future_t *eddy_stream_drain(eddy_stream_t *s);

/**
 * Half-closes: once every queued write is sent, shuts down the write side
 * (a FIN for TCP). Reads go on. Later writes fail with EDDY_ECLOSED.
 *
 * @return a future resolved once the shutdown is done.
 */
EDDY_API eddy_future_t *eddy_stream_shutdown_write(eddy_stream_t *s);

/* ------------------------------------------------------------------------ */
/* Closing and state                                                         */
/* ------------------------------------------------------------------------ */

/**
 * Closes the stream now: unsent data is dropped, the pending read is
 * completed if the buffer satisfies it and otherwise rejected, pending
 * writes are rejected, all with EDDY_ECLOSED and cause @p error (0 for a
 * plain close). Then the close callback and the wait_closed futures run,
 * after those futures' callbacks. Idempotent. Buffered input stays
 * readable. A TLS stream closed with error 0 (or by its last unref)
 * sends a close_notify, unless queued plaintext is being dropped: at once
 * if the kernel takes it, else the loop keeps the fd for up to a second
 * to send it (the stream is closed meanwhile); to wait until it is out,
 * use eddy_stream_close_when_drained() or eddy_stream_shutdown_write().
 */
EDDY_API void eddy_stream_close(eddy_stream_t *s, int error);

/**
 * Closes once every queued write has been sent (or failed). A TLS stream
 * sends its close_notify after the queue, through it (so a full kernel
 * buffer delays rather than loses it), and closes once that is sent.
 */
EDDY_API void eddy_stream_close_when_drained(eddy_stream_t *s);

/**
 * Called once, from the loop, after the stream closes, with the cause
 * (0 for an orderly close or a local close without error).
 */
typedef void (*eddy_close_fn)(eddy_stream_t *s, int error, void *arg);

/**
 * Sets the close callback (one slot; NULL clears it). Setting it also
 * watches an idle stream so a peer's close or reset is noticed promptly.
 * If the stream has already closed, the callback is queued at once.
 */
EDDY_API void eddy_stream_set_close_callback(eddy_stream_t *s,
                                             eddy_close_fn fn, void *arg);

/**
 * A future resolved (no value) once the stream has closed, however it
 * closed, from the loop after the close callback; read the reason with
 * eddy_stream_error(). Each call returns a new future of its own (already
 * resolved once the close has run), so cancelling one, or putting
 * eddy_with_timeout() around it, does not affect other callers'. Asking
 * for one also watches an idle stream, as set_close_callback does, so a
 * peer's close or reset is noticed promptly. A pending one does not keep
 * the stream alive: dropping the last reference closes the stream, which
 * resolves it.
 *
 * @return a new reference; NULL on ENOMEM (or a NULL stream, errno EINVAL).
 */
EDDY_API eddy_future_t *eddy_stream_wait_closed(eddy_stream_t *s);

/** Non-zero once the stream is closed. */
EDDY_API int eddy_stream_closed(const eddy_stream_t *s);

/**
 * Non-zero once no more bytes will arrive: the peer ended its side (EOF,
 * or a TLS close_notify) or the stream closed. What is buffered can still
 * be read. The stream may still be open for writing (see allow_half_open).
 */
EDDY_API int eddy_stream_read_ended(const eddy_stream_t *s);

/** Non-zero while a read is pending. */
EDDY_API int eddy_stream_reading(const eddy_stream_t *s);

/** Non-zero while written bytes are queued. */
EDDY_API int eddy_stream_writing(const eddy_stream_t *s);

/**
 * Why the stream closed: 0 (orderly close, local close), a negated errno
 * value, or an EDDY_E* code (EDDY_EUNSATISFIABLE, EDDY_EBUFFERFULL,
 * EDDY_ETIMEOUT, EDDY_ETLS...). 0 while open.
 */
EDDY_API int eddy_stream_error(const eddy_stream_t *s);

/**
 * The close reason as text, with detail where there is some (for TLS, the
 * OpenSSL error). NULL while open or after a clean close. Borrowed.
 */
EDDY_API const char *eddy_stream_error_message(const eddy_stream_t *s);

/**
 * Sets TCP_NODELAY on TCP sockets; does nothing (and returns 0) for UNIX
 * sockets, pipes and closed streams.
 *
 * @return 0, or a negative errno from setsockopt.
 */
EDDY_API int eddy_stream_set_nodelay(eddy_stream_t *s, int on);

/** The stream's fd (still owned by the stream), or -1 once closed. */
EDDY_API int eddy_stream_fd(const eddy_stream_t *s);

/** The loop the stream runs on. */
EDDY_API eddy_loop_t *eddy_stream_loop(const eddy_stream_t *s);

/**
 * The connected peer's address, from getpeername().
 *
 * @return 0, or a negative errno (-ENOTCONN, also once the stream is closed
 *         or while it is not connected; -ENOTSOCK for a pipe).
 */
EDDY_API int eddy_stream_peer_address(const eddy_stream_t *s,
                                      struct sockaddr_storage *addr,
                                      socklen_t *addrlen);

/** A buffer size that holds every text eddy_format_address() writes. */
#define EDDY_ADDRSTRLEN 128

/**
 * Writes the socket address @p sa, of @p len bytes (what accept(),
 * getpeername() or getsockname() reported, or the size of the structure),
 * as text into @p buf (@p size bytes, NUL-terminated), for log lines and
 * "listening on" messages: "127.0.0.1:8888", "[::1]:8888" (with the zone
 * of a scoped address: "[fe80::1%eth0]:8888"), "unix:/run/x.sock",
 * "unix:@name" (abstract; bytes of the name that are not printable show as
 * '?') or "unix:(unnamed)" (a socketpair() end or an unbound client: the
 * kernel reports only the family). Only the @p len bytes are read. Nothing
 * is resolved.
 *
 * @return the length of the text, or -EINVAL (NULL @p sa or @p buf, @p len
 *         too short for the family, a family other than AF_INET, AF_INET6
 *         and AF_UNIX; @p buf is then "?" if it has room), -ENOSPC (@p size
 *         too small: @p buf holds the truncated text). EDDY_ADDRSTRLEN bytes
 *         are always enough.
 */
EDDY_API int eddy_format_address(const struct sockaddr *sa, socklen_t len, char *buf,
                                 size_t size);

#ifdef __cplusplus
}
#endif
#endif /* EDDY_STREAM_H */
