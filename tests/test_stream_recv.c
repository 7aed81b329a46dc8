/* SPDX-License-Identifier: MIT */
/*
 * tests/test_stream_recv.c - the read contract where the loop may receive
 * ahead of the reader.
 *
 * On io_uring a stream socket with a read waiting has a multishot receive
 * armed on the ring (src/loop/uring_recv.c): bytes leave the kernel before
 * the stream asks for them. These cases pin what must not change for it:
 * a cancelled read consumes nothing, the peer's end and reset come after
 * its data, a close with a receive in flight leaks nothing and leaves no
 * trace on the next socket with the same fd number, and many slow readers
 * neither lose bytes nor make the loop hold more than one read chunk each.
 * Built once per backend; every case holds on each.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "stream_fixtures.h"
#include "test_backend.h"

#define TIMEOUT 30

/* A raw peer writing @len bytes of the pattern from @off, blocking. */
static void peer_pattern(int fd, size_t len, size_t off)
{
  char *buf = malloc(len);
  ck_assert_ptr_nonnull(buf);
  sfx_pattern_fill(buf, len, off);
  sfx_raw_write_all(fd, buf, len);
  free(buf);
}

/* Waits for a read_bytes(@len) and checks it holds the pattern from @off. */
static void expect_pattern(eddy_stream_t *s, size_t len, size_t off)
{
  char *got = sfx_read_bytes(s, len);
  ck_assert_msg(sfx_pattern_check(got, len, off), "%zu bytes from %zu: wrong bytes",
                len, off);
  free(got);
}

/* A stream over TCP with a raw peer, and a read of @n bytes waiting long
 * enough for its receive to be armed. */
static eddy_stream_t *reading(size_t n, int *peer, eddy_future_t **f)
{
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, peer);
  *f = eddy_stream_read_bytes(s, n, 0);
  sfx_run_for(0.05);
  return s;
}

/* The peer's bytes arrive while a read waits, and the read is cancelled
 * before the loop runs again: on io_uring the receive may complete after
 * the cancel. Nothing is lost, nothing is consumed. */
START_TEST(test_cancel_with_receive_in_flight) {
  int peer;
  eddy_future_t *f;
  eddy_stream_t *s = reading(100, &peer, &f);
  sfx_raw_write_all(peer, "hello", 5);
  ck_assert_int_eq(eddy_future_cancel(f), 0);
  eddy_future_unref(f);
  sfx_run_for(0.05);
  ck_assert(!eddy_stream_closed(s));
  sfx_raw_write_all(peer, "world", 5);
  sfx_expect_str(eddy_stream_read_bytes(s, 10, 0), "helloworld");
  close(peer);
}
END_TEST

/* More than a receive buffer (16 KiB on io_uring) arrives in several
 * writes while a small read waits: the read takes its bytes, the rest
 * (received ahead, or still in the kernel) follows in order for the next
 * read, however late it comes. */
START_TEST(test_surplus_kept_in_order) {
  int peer;
  eddy_future_t *f;
  eddy_stream_t *s = reading(10, &peer, &f);
  for (size_t i = 0; i < 3; i++)
    peer_pattern(peer, 20000, i * 20000);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_error(f), 0);
  eddy_future_unref(f);
  sfx_run_for(0.05); /* nobody reads: what came stays */
  ck_assert(!eddy_stream_closed(s));
  expect_pattern(s, 60000 - 10, 10);
  close(peer);
}
END_TEST

/* The peer's end comes after its data, even when both arrive together
 * while a read waits. */
START_TEST(test_eof_after_data) {
  int peer;
  eddy_stream_t *s = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peer);
  eddy_future_t *f = eddy_stream_read_until_close(s);
  sfx_run_for(0.05);
  peer_pattern(peer, 40000, 0);
  ck_assert_int_eq(shutdown(peer, SHUT_WR), 0);
  sfx_wait(f);
  ck_assert_int_eq(eddy_future_error(f), 0);
  size_t len = eddy_future_size(f);
  const void *got = eddy_future_value(f);
  ck_assert_uint_eq(len, 40000);
  ck_assert(sfx_pattern_check(got, len, 0));
  eddy_future_unref(f);
  close(peer);
}
END_TEST

/* A reset after data: the data first, then the reset closes the stream. */
START_TEST(test_reset_after_data) {
  int peer;
  eddy_future_t *f;
  eddy_stream_t *s = reading(5, &peer, &f);
  sfx_raw_write_all(peer, "hello", 5);
  sfx_set_linger0(peer);
  close(peer);
  sfx_expect_str(f, "hello");
  sfx_expect_error(eddy_stream_read_bytes(s, 1, 0), EDDY_ECLOSED, SFX_ANY);
  ck_assert_int_eq(eddy_stream_error(s), -ECONNRESET);
}
END_TEST

/* Closed with a receive in flight and bytes on their way: nothing leaks
 * (the teardown counts fds), and the next socket, which likely gets the
 * same fd number, sees only its own bytes. */
START_TEST(test_close_with_receive_in_flight) {
  int peer;
  eddy_future_t *f;
  eddy_stream_t *s = reading(100, &peer, &f);
  peer_pattern(peer, 30000, 0);
  eddy_stream_close(s, 0);
  sfx_run_for(0.05);
  eddy_future_unref(f);
  sfx_release(&s);
  char c;
  ssize_t r = recv(peer, &c, 1, 0); /* our side is gone: EOF or reset */
  ck_assert(r == 0 || (r < 0 && errno == ECONNRESET));
  close(peer);

  reading(6, &peer, &f);
  sfx_raw_write_all(peer, "second", 6);
  sfx_expect_str(f, "second");
  close(peer);
}
END_TEST

/* The loop freed with a receive in flight (teardown frees it). */
START_TEST(test_free_with_receive_in_flight) {
  int peer;
  eddy_future_t *f;
  reading(100, &peer, &f);
  peer_pattern(peer, 30000, 0);
  eddy_future_unref(f);
  close(peer);
}
END_TEST

/* A bulk transfer, then small messages on the same stream: on io_uring
 * the socket leaves the ring while it fills whole buffers and comes back
 * once its reads are small; every byte arrives in order throughout. */
START_TEST(test_bulk_then_small) {
  sfx_pair_t p = sfx_pair(SFX_TCP, NULL, NULL, 0);
  enum { BULK = 1024 * 1024 };
  char *buf = malloc(BULK);
  ck_assert_ptr_nonnull(buf);
  sfx_pattern_fill(buf, BULK, 0);
  sfx_write_nowait(p.ws, buf, BULK);
  free(buf);
  expect_pattern(p.rs, BULK, 0);
  for (int i = 0; i < 20; i++) {
    char line[16];
    snprintf(line, sizeof line, "line %d\n", i);
    sfx_write_nowait(p.ws, line, strlen(line));
    sfx_expect_str(eddy_stream_read_until(p.rs, "\n", 1, 0), line);
  }
}
END_TEST

#define NSLOW 24
#define SLOW_BYTES (256u * 1024u)

/* Many slow readers: each peer sends what its socket takes (up to 256 KiB,
 * more than the io_uring buffer ring holds for all of them), each stream
 * reads 1 byte and then nothing for a while. The loop holds at most a read
 * chunk per stream meanwhile (the rest waits in the kernel, as on epoll),
 * and afterwards every byte comes in order. */
START_TEST(test_slow_readers_bounded) {
  int peers[NSLOW];
  size_t sent[NSLOW];
  eddy_stream_t *ss[NSLOW];
  eddy_future_t *fs[NSLOW];
  char *buf = malloc(SLOW_BYTES);
  ck_assert_ptr_nonnull(buf);
  sfx_pattern_fill(buf, SLOW_BYTES, 0);

  for (int i = 0; i < NSLOW; i++) {
    ss[i] = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peers[i]);
    fs[i] = eddy_stream_read_bytes(ss[i], 1, 0);
  }
  sfx_run_for(0.05);
  size_t before = mallinfo2().uordblks;
  for (int i = 0; i < NSLOW; i++) {
    int fl = fcntl(peers[i], F_GETFL);
    ck_assert_int_ne(fcntl(peers[i], F_SETFL, fl | O_NONBLOCK), -1);
    sent[i] = 0;
    while (sent[i] < SLOW_BYTES) {
      ssize_t n = send(peers[i], buf + sent[i], SLOW_BYTES - sent[i], MSG_NOSIGNAL);
      if (n <= 0)
        break;
      sent[i] += (size_t)n;
    }
    ck_assert_uint_gt(sent[i], 1);
  }
  for (int i = 0; i < NSLOW; i++) {
    sfx_wait(fs[i]);
    ck_assert_int_eq(eddy_future_error(fs[i]), 0);
    eddy_future_unref(fs[i]);
  }
  sfx_run_for(0.1);
  size_t held = 0;
  for (int i = 0; i < NSLOW; i++) {
    size_t n = eddy_stream_read_buffer_size(ss[i]);
    ck_assert_uint_le(n, 64u * 1024u);
    held += n;
  }
  size_t after = mallinfo2().uordblks;
  /* Read buffers (reserved a chunk at a time) and little else. */
  ck_assert_msg(after < before || after - before <= NSLOW * 80u * 1024u + 256u * 1024u,
                "the heap grew by %zu bytes for %zu buffered", after - before, held);
  for (int i = 0; i < NSLOW; i++) {
    expect_pattern(ss[i], sent[i] - 1, 1);
    close(peers[i]);
  }
  free(buf);
}
END_TEST

/* A burst of connections grows the loop's receive buffers (io_uring: the
 * ring hands out more buffers), then the loop sleeps long enough for the
 * quiet ring to give their pages back (after 250 ms without input): what comes
 * next, into buffers whose pages went, arrives intact on every stream. */
#define NBURST 24 /* more than the 16 buffers the ring starts with */
START_TEST(test_bytes_survive_a_quiet_loop) {
  int peers[NBURST];
  eddy_stream_t *ss[NBURST];
  eddy_future_t *fs[NBURST];
  char buf[200];

  for (int i = 0; i < NBURST; i++) {
    ss[i] = sfx_raw_peer(SFX_TCP, 1, NULL, 0, &peers[i]);
    fs[i] = eddy_stream_read_bytes(ss[i], 100, 0);
  }
  sfx_run_for(0.05);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < NBURST; i++) {
      sfx_pattern_fill(buf, 100, (size_t)(round * 1000 + i));
      sfx_raw_write_all(peers[i], buf, 100);
    }
    for (int i = 0; i < NBURST; i++) {
      sfx_wait(fs[i]);
      size_t n = 0;
      char *got = eddy_future_take(fs[i], &n);
      ck_assert_uint_eq(n, 100);
      ck_assert_msg(sfx_pattern_check(got, 100, (size_t)(round * 1000 + i)),
                    "round %d, stream %d: wrong bytes", round, i);
      free(got);
      eddy_future_unref(fs[i]);
      fs[i] = eddy_stream_read_bytes(ss[i], 100, 0);
    }
    sfx_run_for(0.6); /* quiet: time for the trim */
  }
  for (int i = 0; i < NBURST; i++) {
    eddy_future_cancel(fs[i]);
    eddy_future_unref(fs[i]);
    close(peers[i]);
  }
}
END_TEST

static Suite *recv_suite(void)
{
  Suite *s = suite_create("stream_recv");
  TCase *tc = tcase_create("recv");
  sfx_tcase_setup(tc, TIMEOUT);
  tcase_add_test(tc, test_cancel_with_receive_in_flight);
  tcase_add_test(tc, test_surplus_kept_in_order);
  tcase_add_test(tc, test_eof_after_data);
  tcase_add_test(tc, test_reset_after_data);
  tcase_add_test(tc, test_close_with_receive_in_flight);
  tcase_add_test(tc, test_free_with_receive_in_flight);
  tcase_add_test(tc, test_bulk_then_small);
  tcase_add_test(tc, test_slow_readers_bounded);
  tcase_add_test(tc, test_bytes_survive_a_quiet_loop);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return test_run_suite(recv_suite());
}
