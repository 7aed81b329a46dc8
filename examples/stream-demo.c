/* SPDX-License-Identifier: MIT */
/*
 * examples/stream-demo.c - a chained exchange over a stream pair.
 *
 * The server reads a header line ("LEN 5\r\n"), then exactly that many
 * bytes, then answers "OK 5\r\n" followed by the body it got. Every step
 * is a future; eddy_then_ok() chains them, so an error anywhere (a bad
 * header, the peer leaving) skips the rest and comes out at the end.
 * docs/streams.md walks through it. Runs in one process over a
 * socketpair and exits 0 on success.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <eddy.h>

struct conn {
  eddy_stream_t *s;
  size_t len;
};

/* Step 3: answer with a status line, then the body itself (no copy: the
 * stream sends the read's own buffer). */
static eddy_future_t *got_body(eddy_future_t *body, void *arg)
{
  struct conn *c = arg;
  char status[64];
  int n = snprintf(status, sizeof status, "OK %zu\r\n", eddy_future_size(body));
  eddy_future_unref(eddy_stream_write(c->s, status, (size_t)n));
  /* Returning the last write's future makes the chain wait for it. */
  return eddy_stream_write_bytes_of(c->s, body);
}

/* Step 2: parse the header line (read results are NUL-terminated). */
static eddy_future_t *got_header(eddy_future_t *line, void *arg)
{
  struct conn *c = arg;
  const char *text = eddy_future_value(line);
  if (sscanf(text, "LEN %zu", &c->len) != 1 || c->len > 1 << 20)
    return eddy_future_rejected(eddy_stream_loop(c->s), EDDY_EUSAGE,
                                "bad header: %s", text);
  return eddy_stream_read_bytes(c->s, c->len, 0);
}

/* Step 1: a header line of at most 1 KiB (a longer one closes the stream
 * with EDDY_EUNSATISFIABLE). */
static eddy_future_t *serve(struct conn *c)
{
  eddy_future_t *f = eddy_stream_read_until(c->s, "\r\n", 2, 1024);
  f = eddy_then_ok(f, got_header, c);
  return eddy_then_ok(f, got_body, c);
}

/* The client's side: print the status line, then read the echoed body. */
static eddy_future_t *got_status(eddy_future_t *line, void *stream)
{
  printf("client got: %s", (const char *)eddy_future_value(line));
  return eddy_stream_read_bytes(stream, 5, 0);
}

int main(void)
{
  eddy_loop_t *loop = eddy_loop_new();
  int fds[2];
  if (!loop || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
    perror("setup");
    return 1;
  }
  struct conn server = {eddy_stream_new_socket(loop, fds[0], NULL), 0};
  eddy_stream_t *client = eddy_stream_new_socket(loop, fds[1], NULL);

  eddy_future_t *done = serve(&server);
  eddy_future_unref(eddy_stream_write(client, "LEN 5\r\nhello", 12));
  eddy_future_t *reply = eddy_then_ok(eddy_stream_read_until(client, "\r\n", 2, 0),
                                      got_status, client);

  int rc = eddy_loop_run_until(loop, reply, 5.0);
  int ok = rc == 0 && eddy_future_state(reply) == EDDY_FUTURE_RESOLVED &&
           eddy_future_size(reply) == 5 && memcmp(eddy_future_value(reply), "hello", 5) == 0;
  if (ok) {
    printf("client got body: %s\n", (const char *)eddy_future_value(reply));
    eddy_loop_run_until(loop, done, 5.0);
    ok = eddy_future_state(done) == EDDY_FUTURE_RESOLVED;
  } else {
    printf("failed: %s\n", eddy_future_message(reply) ? eddy_future_message(reply) : "timeout");
  }
  eddy_future_unref(reply);
  eddy_future_unref(done);
  eddy_stream_unref(server.s);
  eddy_stream_unref(client);
  /* Let the streams' close tasks run before the loop goes. */
  eddy_future_t *tick = eddy_sleep(loop, 0);
  eddy_loop_run_until(loop, tick, 1.0);
  eddy_future_unref(tick);
  eddy_loop_free(loop);
  return ok ? 0 : 1;
}
