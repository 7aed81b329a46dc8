/* SPDX-License-Identifier: MIT */
/*
 * tests/helpers/short-io.c - an LD_PRELOAD shim that makes a fraction of
 * socket reads and writes return short counts, as a busy kernel
 * may at any time, so that tests can look for code that mistakes a short
 * count for "the kernel is empty/full" or loses track of what is left:
 *
 *   EDDY_SHORT_IO=10 LD_PRELOAD=./libshort-io.so CMD...
 *
 * EDDY_SHORT_IO is the percentage of calls (read, write, recv, send,
 * recvfrom, sendto, readv, writev, recvmsg, sendmsg) on sockets asked for
 * more than one byte that get a random length between 1 and the request
 * minus one instead; unset or 0 leaves every call alone. The environment
 * is inherited, so peers started by the program are affected too, unless
 * EDDY_SHORT_IO_COMM names the one program (its /proc/self/comm) that
 * should be. Only the length asked for changes: the kernel still decides
 * what really happens, so every result is one the real call could give.
 * Not built by make: gcc -shared -fPIC -o libshort-io.so short-io.c -ldl
 * (issue 11.8 used it to run tests/test_tls_peers.sh many times).
 * Not thread-aware beyond a per-thread random state.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int percent = -1;
static _Thread_local unsigned rng;

static int active(void)
{
  if (percent < 0) {
    const char *p = getenv("EDDY_SHORT_IO"), *comm = getenv("EDDY_SHORT_IO_COMM");
    int pct = p != NULL ? atoi(p) : 0;
    if (comm != NULL && *comm != '\0') {
      char self[64] = "";
      FILE *f = fopen("/proc/self/comm", "r");
      if (f != NULL) {
        if (fgets(self, sizeof self, f) != NULL)
          self[strcspn(self, "\n")] = '\0';
        fclose(f);
      }
      if (strcmp(self, comm) != 0)
        pct = 0;
    }
    percent = pct < 0 ? 0 : pct > 100 ? 100 : pct;
  }
  return percent > 0;
}

static unsigned next_rand(void)
{
  if (rng == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rng = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec;
    if (rng == 0)
      rng = 1;
  }
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* The length to ask the kernel for instead of @len. Only sockets: a
 * short read() of a file means its end to many programs (bash reading a
 * script), and pipes carry the test harness's own talk with its peers
 * (Python's unbuffered print drops what a short write left). */
static size_t shorten(int fd, size_t len)
{
  struct stat st;
  if (len < 2 || !active() || next_rand() % 100 >= (unsigned)percent)
    return len;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
    return len;
  return 1 + next_rand() % (len - 1);
}

/* Cuts an iovec array down to @want bytes in a copy (at most 64 entries
 * are looked at; the rest is dropped, which is also a short request). */
static int cut_iov(const struct iovec *iov, int n, struct iovec *out, size_t want)
{
  int k = 0;
  for (int i = 0; i < n && k < 64 && want > 0; i++) {
    out[k] = iov[i];
    if (out[k].iov_len > want)
      out[k].iov_len = want;
    want -= out[k].iov_len;
    k++;
  }
  return k;
}

static size_t iov_total(const struct iovec *iov, int n)
{
  size_t t = 0;
  for (int i = 0; i < n; i++)
    t += iov[i].iov_len;
  return t;
}

/* The next definition of @name (libc's): looked up on first use. */
#define REAL(name, ret, params)                                            \
  static ret(*real_##name) params;                                         \
  if (real_##name == NULL)                                                 \
    *(void **)&real_##name = dlsym(RTLD_NEXT, #name)

ssize_t read(int fd, void *buf, size_t len)
{
  REAL(read, ssize_t, (int, void *, size_t));
  return real_read(fd, buf, shorten(fd, len));
}

ssize_t write(int fd, const void *buf, size_t len)
{
  REAL(write, ssize_t, (int, const void *, size_t));
  return real_write(fd, buf, shorten(fd, len));
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
  REAL(recv, ssize_t, (int, void *, size_t, int));
  return real_recv(fd, buf, shorten(fd, len), flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
  REAL(send, ssize_t, (int, const void *, size_t, int));
  return real_send(fd, buf, shorten(fd, len), flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                 socklen_t *alen)
{
  REAL(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *));
  return real_recvfrom(fd, buf, shorten(fd, len), flags, addr, alen);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
               socklen_t alen)
{
  REAL(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t));
  return real_sendto(fd, buf, shorten(fd, len), flags, addr, alen);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
  REAL(readv, ssize_t, (int, const struct iovec *, int));
  struct iovec cut[64];
  size_t total = iov_total(iov, n), want = shorten(fd, total);
  if (want == total)
    return real_readv(fd, iov, n);
  return real_readv(fd, cut, cut_iov(iov, n, cut, want));
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
  REAL(writev, ssize_t, (int, const struct iovec *, int));
  struct iovec cut[64];
  size_t total = iov_total(iov, n), want = shorten(fd, total);
  if (want == total)
    return real_writev(fd, iov, n);
  return real_writev(fd, cut, cut_iov(iov, n, cut, want));
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
  REAL(recvmsg, ssize_t, (int, struct msghdr *, int));
  struct iovec cut[64], *orig = msg->msg_iov;
  size_t olen = msg->msg_iovlen, total = iov_total(orig, (int)olen), want = shorten(fd, total);
  if (want == total)
    return real_recvmsg(fd, msg, flags);
  msg->msg_iov = cut;
  msg->msg_iovlen = (size_t)cut_iov(orig, (int)olen, cut, want);
  ssize_t r = real_recvmsg(fd, msg, flags);
  msg->msg_iov = orig;
  msg->msg_iovlen = olen;
  return r;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
  REAL(sendmsg, ssize_t, (int, const struct msghdr *, int));
  struct iovec cut[64];
  struct msghdr m = *msg;
  size_t total = iov_total(msg->msg_iov, (int)msg->msg_iovlen), want = shorten(fd, total);
  if (want == total)
    return real_sendmsg(fd, msg, flags);
  m.msg_iov = cut;
  m.msg_iovlen = (size_t)cut_iov(msg->msg_iov, (int)msg->msg_iovlen, cut, want);
  return real_sendmsg(fd, &m, flags);
}
