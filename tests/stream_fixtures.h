/* SPDX-License-Identifier: MIT */
/*
 * tests/stream_fixtures.h - fixtures shared by the stream test suites.
 *
 * Tornado's iostream_test fixtures in C (tornado.md §2.1): a loop per test
 * with a log capture, connected stream pairs (TCP over 127.0.0.1 port 0,
 * UNIX socketpair, pipe), a refusing port, helpers that run the loop until
 * a future settles and assert its outcome, and an fd leak check.
 *
 * Every helper asserts with Check (ck_assert*), so a failure stops the test
 * (each test runs in its own process).
 */
#ifndef EDDY_TESTS_STREAM_FIXTURES_H
#define EDDY_TESTS_STREAM_FIXTURES_H

#include <stddef.h>
#include <sys/socket.h>

#include <check.h>

#include "eddy/error.h"
#include "eddy/future.h"
#include "eddy/loop.h"
#include "eddy/stream.h"

/** How long any wait may take before the test fails (never a margin). */
#define SFX_WAIT 10.0

/* ------------------------------------------------------------------------ */
/* Per-test context: loop, log capture, fd baseline                          */
/* ------------------------------------------------------------------------ */

#define SFX_LOG_MAX 64

typedef struct sfx_log {
  int count;
  eddy_log_level_t level[SFX_LOG_MAX];
  char *message[SFX_LOG_MAX];
} sfx_log_t;

/** The current test's loop (made by sfx_setup, freed by sfx_teardown). */
extern eddy_loop_t *sfx_loop;
/** Messages the loop logged during the current test. */
extern sfx_log_t sfx_logs;

/**
 * Checked fixture (runs in the forked child): records the open fd count,
 * makes a loop and routes its log to sfx_logs. SIGPIPE is left at its
 * default action, so a library that raises it kills the test.
 */
void sfx_setup(void);

/**
 * Checked fixture: releases the streams registered with sfx_track() that
 * the test still holds, lets the loop settle, frees the loop, and asserts
 * that the process has exactly the fds it had before the test.
 */
void sfx_teardown(void);

/** Adds the fixtures above to @p tc with a generous timeout. */
void sfx_tcase_setup(TCase *tc, double timeout);

/** Number of entries in /proc/self/fd. */
int sfx_fd_count(void);

/** Non-zero when running under valgrind or EDDY_TEST_SLOW=1: shrink sizes. */
int sfx_slow(void);

/** Non-zero if a captured message contains @p needle (any level, any case). */
int sfx_log_contains(const char *needle);
/** Number of captured messages at @p level or above. */
int sfx_log_count_at_least(eddy_log_level_t level);

/* ------------------------------------------------------------------------ */
/* Raw descriptors                                                           */
/* ------------------------------------------------------------------------ */

/**
 * A connected TCP pair over 127.0.0.1, port 0: fds[0] is the accepted
 * (server) side, fds[1] the client side. Both blocking, close-on-exec.
 * If @p client_port is not NULL it receives the client's port.
 */
void sfx_tcp_fds(int fds[2]);

/** A listening TCP socket on 127.0.0.1 port 0; its address in @p addr. */
int sfx_tcp_listener(struct sockaddr_storage *addr, socklen_t *len);

/** socketpair(AF_UNIX, SOCK_STREAM). */
void sfx_unix_fds(int fds[2]);

/** pipe2(O_CLOEXEC): fds[0] read end, fds[1] write end. */
void sfx_pipe_fds(int fds[2]);

/**
 * Tornado's refusing_port(): a 127.0.0.1 port nothing listens on, kept
 * reserved by the client socket returned in *keep_fd (close it at the end).
 */
int sfx_refusing_port(int *keep_fd);

/** Shrinks the kernel buffers of a socket (SO_SNDBUF/SO_RCVBUF) or a pipe
 *  (F_SETPIPE_SZ) so that writes back up quickly. For TCP, do it before
 *  connecting (sfx_pair does): on a connected socket it makes loopback
 *  transfers crawl (the window drops below one MSS). */
void sfx_shrink_kernel_buffers(int fd);

/** Makes the next close() of a TCP socket send a RST (SO_LINGER {1, 0}). */
void sfx_set_linger0(int fd);

/** Writes all of @p data to a raw fd, retrying EINTR and EAGAIN (a
 * non-blocking socket under make check-faults gets made-up ones). */
void sfx_raw_write_all(int fd, const void *data, size_t len);

/** Blocking: reads exactly @p len bytes from a raw fd. */
void sfx_raw_read_exact(int fd, void *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Stream pairs                                                              */
/* ------------------------------------------------------------------------ */

typedef enum sfx_kind {
  SFX_TCP = 0,  /* rs = accepted side, ws = client side, both sockets */
  SFX_PIPE = 1, /* rs = read end, ws = write end */
  SFX_UNIX = 2, /* socketpair(AF_UNIX) */
  SFX_NKINDS
} sfx_kind_t;

/** "tcp", "pipe" or "unix". */
const char *sfx_kind_name(sfx_kind_t kind);

typedef struct sfx_pair {
  sfx_kind_t kind;
  eddy_stream_t *rs; /* the reading side in the mixin tests */
  eddy_stream_t *ws; /* the writing side */
} sfx_pair_t;

/**
 * Makes a connected pair of @p kind on sfx_loop, with options for each side
 * (NULL: defaults). With @p shrink, the kernel buffers are made small first.
 * Both streams are tracked: sfx_teardown drops what is left of them.
 */
sfx_pair_t sfx_pair(sfx_kind_t kind, const eddy_stream_options_t *ropts,
                    const eddy_stream_options_t *wopts, int shrink);

/**
 * One stream of @p kind plus the raw fd of its peer (blocking), for tests
 * that need the peer to misbehave (reset, vanish). Sockets: the stream is
 * on the accepted side (TCP) or fds[0] (UNIX). Pipes: the stream is the
 * read end if @p stream_reads, else the write end. The stream is tracked;
 * the raw fd is the test's to close.
 */
eddy_stream_t *sfx_raw_peer(sfx_kind_t kind, int stream_reads,
                            const eddy_stream_options_t *opts, int shrink,
                            int *peer_fd);

/**
 * Drops the test's reference to a tracked stream now (and forgets it);
 * *sp is set to NULL. Use it instead of eddy_stream_unref for tracked
 * streams.
 */
void sfx_release(eddy_stream_t **sp);

/** Registers a stream the test made itself, for teardown. */
eddy_stream_t *sfx_track(eddy_stream_t *s);

/* ------------------------------------------------------------------------ */
/* Running and asserting                                                     */
/* ------------------------------------------------------------------------ */

/** Runs the loop until @p f settles (fails the test after SFX_WAIT s). */
void sfx_wait(eddy_future_t *f);

/** Runs the loop for @p seconds ("nothing happens" checks; >= 0.05). */
void sfx_run_for(double seconds);

/** Runs the loop until @p s buffers at least @p n bytes for reading. */
void sfx_run_until_buffered(eddy_stream_t *s, size_t n);

/** Runs the loop until *flag becomes non-zero. */
void sfx_run_until_flag(const volatile int *flag);

/** Runs the loop until @p s is closed. */
void sfx_run_until_closed(eddy_stream_t *s);

/**
 * Waits for @p f, asserts it resolved with exactly @p len bytes equal to
 * @p data followed by a NUL, then unrefs it.
 */
#define sfx_expect_bytes(f, data, len) \
  sfx_expect_bytes_at((f), (data), (len), __FILE__, __LINE__)
void sfx_expect_bytes_at(eddy_future_t *f, const void *data, size_t len,
                         const char *file, int line);
/** The same with a C string. */
#define sfx_expect_str(f, str) sfx_expect_bytes((f), (str), strlen(str))

/** Waits for @p f, asserts it resolved (any value) and unrefs it. */
#define sfx_expect_ok(f) sfx_expect_ok_at((f), __FILE__, __LINE__)
void sfx_expect_ok_at(eddy_future_t *f, const char *file, int line);

/**
 * Waits for @p f, asserts it was rejected with @p code and, unless
 * @p cause is SFX_ANY, with that cause; then unrefs it.
 */
#define SFX_ANY 1
#define sfx_expect_error(f, code, cause) \
  sfx_expect_error_at((f), (code), (cause), __FILE__, __LINE__)
void sfx_expect_error_at(eddy_future_t *f, int code, int cause,
                         const char *file, int line);

/** Asserts @p f has already settled, without running the loop. */
#define sfx_assert_done(f)                                                  \
  ck_assert_msg((f) != NULL && eddy_future_done(f),                         \
                "future should have settled on return")

/** Waits for a read_bytes(n) and returns a malloc'ed copy (NUL-terminated). */
char *sfx_read_bytes(eddy_stream_t *s, size_t n);

/** Issues a copying write and waits for it to resolve. */
void sfx_write_ok(eddy_stream_t *s, const void *data, size_t len);
#define sfx_write_str(s, str) sfx_write_ok((s), (str), strlen(str))

/** Issues a copying write and drops the future (it completes on its own). */
void sfx_write_nowait(eddy_stream_t *s, const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Data patterns                                                             */
/* ------------------------------------------------------------------------ */

/** The byte at stream offset @p off of the standard test pattern. */
static inline unsigned char sfx_pattern_byte(size_t off) {
  return (unsigned char)(off % 251u);
}

/** Fills @p buf with the pattern starting at stream offset @p off. */
void sfx_pattern_fill(void *buf, size_t len, size_t off);

/** Whether @p buf holds the pattern starting at stream offset @p off. */
int sfx_pattern_check(const void *buf, size_t len, size_t off);

/** Deterministic PRNG (xorshift). */
unsigned sfx_rand(unsigned *state);

#endif /* EDDY_TESTS_STREAM_FIXTURES_H */
