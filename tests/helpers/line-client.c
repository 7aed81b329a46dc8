/* SPDX-License-Identifier: MIT */
/*
 * tests/helpers/line-client.c - a raw C client for the echo server test:
 *
 *   line-client PORT LINES LENGTH
 *
 * Connects to 127.0.0.1:PORT, sends LINES lines of LENGTH bytes (plus the
 * newline) all at once from a writer thread, reads the echo and checks
 * every byte. Exits 0 on success, 1 with a message otherwise.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int fd;
static char *data;
static size_t total;

static void *writer(void *arg)
{
  for (size_t off = 0; off < total;) {
    ssize_t n = send(fd, data + off, total - off, MSG_NOSIGNAL);
    if (n <= 0) {
      perror("line-client: send");
      exit(1);
    }
    off += (size_t)n;
  }
  return NULL;
}

int main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: line-client PORT LINES LENGTH\n");
    return 2;
  }
  int port = atoi(argv[1]);
  size_t lines = strtoul(argv[2], NULL, 10), len = strtoul(argv[3], NULL, 10);
  total = lines * (len + 1);
  data = malloc(total);
  char *got = malloc(total);
  if (data == NULL || got == NULL)
    return 1;
  for (size_t i = 0; i < total; i++)
    data[i] = (i + 1) % (len + 1) == 0 ? '\n' : (char)('a' + (i / (len + 1)) % 26);

  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("line-client: connect");
    return 1;
  }
  pthread_t t;
  pthread_create(&t, NULL, writer, NULL);
  for (size_t off = 0; off < total;) {
    ssize_t n = recv(fd, got + off, total - off, 0);
    if (n <= 0) {
      fprintf(stderr, "line-client: echo ended after %zu of %zu bytes\n", off,
              total);
      return 1;
    }
    off += (size_t)n;
  }
  pthread_join(t, NULL);
  if (memcmp(got, data, total) != 0) {
    fprintf(stderr, "line-client: the echo differs\n");
    return 1;
  }
  close(fd);
  free(data);
  free(got);
  return 0;
}
