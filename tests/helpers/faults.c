/* SPDX-License-Identifier: MIT */
/*
 * tests/helpers/faults.c - an LD_PRELOAD fault injector for make
 * check-faults (tests/check-faults.sh) and bench/soak:
 *
 *   EDDY_FAULTS_PROGRAMS="echo-server test_stream" EDDY_FAULTS_SEED=7 \
 *   EDDY_FAULTS_IO=0.05 EDDY_FAULTS_ALLOC=0.002 \
 *   LD_PRELOAD=tests/helpers/.libs/libeddy-faults.so CMD...
 *
 * EDDY_FAULTS_IO is the fraction of calls (recv, send, recvfrom, sendto,
 * recvmsg, sendmsg, read, write, readv, writev, accept4, epoll_wait) that
 * fail with EINTR or EAGAIN or get a short count instead of the real call's
 * full effect. Every such outcome is one the kernel may give at any time
 * on a non-blocking socket, and a level-triggered poll reports the fd again,
 * so a correct program retries and loses nothing. The faults hit only
 * sockets in non-blocking mode (O_NONBLOCK or MSG_DONTWAIT): a test
 * harness's own blocking sockets, pipes and files never see an EAGAIN it
 * could not expect. A short count asks the kernel for fewer bytes (or fewer
 * epoll events) than the caller did, so what is transferred is always what
 * the real call did transfer. accept4 gets EINTR, EAGAIN or ECONNABORTED,
 * before the connection is taken (it stays queued). Under EDDY_BACKEND=
 * io_uring what completes on the ring (receives, accepts) is not faulted:
 * only the system calls eddy still makes are.
 *
 * EDDY_FAULTS_ALLOC is the fraction of malloc, calloc and realloc calls
 * that return NULL (ENOMEM; realloc leaves the block alone). They start
 * once the process has accepted its first connection (a server's start-up
 * is not under test; on io_uring, asked its first peer address), or at once with EDDY_FAULTS_ALLOC_ARM=now. OpenSSL's
 * allocations come through here too (its default CRYPTO_malloc is libc's
 * malloc), which is wanted: its failures must reach eddy as errors.
 * EDDY_FAULTS_ALLOC_NTH=N fails exactly one allocation instead: the N-th
 * after arming (a driver sweeps N over a repeatable exchange to fail each
 * allocation of it in turn, as tests/alloc-sweep.sh does).
 *
 * Only processes whose executable's name (without libtool's "lt-" prefix)
 * is a word of EDDY_FAULTS_PROGRAMS are touched, so peers a test starts
 * (python3, openssl, the shell of a libtool wrapper) run normally.
 * EDDY_FAULTS_SEED (default 1) seeds the choices: each thread draws from
 * its own generator, seeded from the seed and the thread's order of
 * arrival, and forked children (Check's tests) repeat their parent's
 * sequence, so a run is repeatable as far as the kernel's timing allows.
 * With EDDY_FAULTS_REPORT=FILE, each process appends a line of counts at
 * exit, so a driver can tell that faults were really injected.
 *
 * Built by make check as a libtool module (check_LTLIBRARIES); not
 * installed. Run it on a build without sanitizers: ASan must be the first
 * library loaded and replaces malloc itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
/* Initial-exec: a preloaded library's TLS is in the static block, and the
 * general model's first access in a thread may call malloc (recursion). */
#define TLS _Thread_local __attribute__((tls_model("initial-exec")))

enum { F_NONE, F_EINTR, F_EAGAIN, F_SHORT, F_CONNABORTED };

static int enabled;                 /* this process is under test */
static uint32_t io_rate, alloc_rate; /* per 2^32 calls */
static uint64_t seed = 1;
static atomic_int alloc_armed;
static atomic_long alloc_count, alloc_nth; /* EDDY_FAULTS_ALLOC_NTH */
static atomic_uint thread_count;
static atomic_ulong n_eintr, n_eagain, n_short, n_aborted, n_enomem;
static char report_path[PATH_MAX];

static unsigned forks; /* children this process has forked */
static unsigned lineage; /* which child of its parent this process is */
static TLS uint64_t rng;
static TLS int busy; /* inside the shim: our own calls pass through */

/* splitmix64: a thread's stream of choices. */
static uint32_t next_rand(void)
{
  if (rng == 0)
    rng = (seed * 0x9e3779b97f4a7c15ull ^ (uint64_t)lineage << 32) +
          atomic_fetch_add(&thread_count, 1) + 1;
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static uint32_t parse_rate(const char *name)
{
  const char *v = getenv(name);
  double r = v != NULL ? strtod(v, NULL) : 0;
  if (!(r > 0))
    return 0;
  return r >= 1 ? UINT32_MAX : (uint32_t)(r * 4294967296.0);
}

/* Whether @prog (argv[0]'s executable) is one of the listed names. */
static int listed(const char *list, const char *prog)
{
  size_t n = strlen(prog);
  for (const char *p = list; *p != '\0';) {
    p += strspn(p, " ,");
    size_t w = strcspn(p, " ,");
    if (w == n && memcmp(p, prog, n) == 0)
      return 1;
    p += w;
  }
  return 0;
}

static void write_report(void)
{
  if (!enabled || report_path[0] == '\0')
    return;
  busy++;
  char line[256];
  /* allocs: the allocations counted since arming (EDDY_FAULTS_ALLOC_NTH
   * only), so a sweep knows how far to go. */
  int n = snprintf(line, sizeof line,
                   "pid %ld: eintr %lu eagain %lu short %lu econnaborted %lu enomem %lu "
                   "allocs %ld\n",
                   (long)getpid(), atomic_load(&n_eintr), atomic_load(&n_eagain),
                   atomic_load(&n_short), atomic_load(&n_aborted), atomic_load(&n_enomem),
                   atomic_load(&alloc_count));
  int fd = open(report_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0 && n > 0) {
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
  }
  if (fd >= 0)
    close(fd);
  busy--;
}

/* A forked child (one Check test) draws its own sequence, chosen by its
 * place among its parent's children: the same on every run, and not the
 * sequence every other test of the suite repeats. */
static void before_fork(void)
{
  forks++;
}

static void in_child(void)
{
  lineage = lineage * 7919 + forks;
  forks = 0;
  rng = 0;
  atomic_store(&thread_count, 0);
}

__attribute__((constructor)) static void faults_init(void)
{
  char exe[PATH_MAX];
  const char *list = getenv("EDDY_FAULTS_PROGRAMS");
  busy++;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (list != NULL && n > 0) {
    exe[n] = '\0';
    const char *base = strrchr(exe, '/');
    base = base != NULL ? base + 1 : exe;
    if (strncmp(base, "lt-", 3) == 0)
      base += 3;
    enabled = listed(list, base);
  }
  if (enabled) {
    const char *s = getenv("EDDY_FAULTS_SEED"), *arm = getenv("EDDY_FAULTS_ALLOC_ARM");
    const char *rep = getenv("EDDY_FAULTS_REPORT");
    if (s != NULL)
      seed = strtoull(s, NULL, 10);
    io_rate = parse_rate("EDDY_FAULTS_IO");
    alloc_rate = parse_rate("EDDY_FAULTS_ALLOC");
    const char *nth = getenv("EDDY_FAULTS_ALLOC_NTH");
    if (nth != NULL)
      atomic_store(&alloc_nth, strtol(nth, NULL, 10));
    if (arm != NULL && strcmp(arm, "now") == 0)
      atomic_store(&alloc_armed, 1);
    if (rep != NULL && strlen(rep) < sizeof report_path)
      strcpy(report_path, rep);
    atexit(write_report);
    pthread_atfork(before_fork, NULL, in_child);
  }
  busy--;
}

/* Whether an I/O fault may hit @fd: a socket in non-blocking mode (or a
 * call that asked for MSG_DONTWAIT). */
static int nonblocking_socket(int fd, int flags)
{
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
    return 0;
  if (flags & MSG_DONTWAIT)
    return 1;
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

/* The fault for this call, if any; @shortable: the call asked for 2+ units. */
static int pick(int fd, int flags, int shortable)
{
  if (!enabled || busy || io_rate == 0 || next_rand() >= io_rate)
    return F_NONE;
  busy++;
  int ok = fd < 0 || nonblocking_socket(fd, flags);
  busy--;
  if (!ok)
    return F_NONE;
  switch (next_rand() % (shortable ? 3 : 2)) {
  case 0:
    return F_EINTR;
  case 1:
    return F_EAGAIN;
  default:
    return F_SHORT;
  }
}

/* Fails the call with the error of @f (not F_SHORT). */
static ssize_t fail(int f)
{
  if (f == F_EINTR) {
    atomic_fetch_add(&n_eintr, 1);
    errno = EINTR;
  } else if (f == F_CONNABORTED) {
    atomic_fetch_add(&n_aborted, 1);
    errno = ECONNABORTED;
  } else {
    atomic_fetch_add(&n_eagain, 1);
    errno = EAGAIN;
  }
  return -1;
}

static size_t shorter(size_t len)
{
  atomic_fetch_add(&n_short, 1);
  return 1 + next_rand() % (len - 1);
}

/* Cuts an iovec array down to @want bytes in @out (at most 64 entries are
 * kept; dropping the rest is a shorter request too). */
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

/* The next definition of @name (libc's), looked up on first use. */
#define REAL(name, ret, params)                                            \
  static ret(*real_##name) params;                                         \
  if (real_##name == NULL)                                                 \
    *(void **)&real_##name = dlsym(RTLD_NEXT, #name)

/* The plain-buffer calls: @call is the real call with @len as its length. */
#define PLAIN_IO(fd, len, flags, call)                                     \
  do {                                                                     \
    int f_ = pick(fd, flags, len >= 2);                                    \
    if (f_ == F_SHORT)                                                     \
      len = shorter(len);                                                  \
    else if (f_ != F_NONE)                                                 \
      return fail(f_);                                                     \
    return call;                                                           \
  } while (0)

EXPORT ssize_t read(int fd, void *buf, size_t len)
{
  REAL(read, ssize_t, (int, void *, size_t));
  PLAIN_IO(fd, len, 0, real_read(fd, buf, len));
}

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
  REAL(write, ssize_t, (int, const void *, size_t));
  PLAIN_IO(fd, len, 0, real_write(fd, buf, len));
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
  REAL(recv, ssize_t, (int, void *, size_t, int));
  PLAIN_IO(fd, len, flags, real_recv(fd, buf, len, flags));
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
  REAL(send, ssize_t, (int, const void *, size_t, int));
  PLAIN_IO(fd, len, flags, real_send(fd, buf, len, flags));
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                        socklen_t *alen)
{
  REAL(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *));
  PLAIN_IO(fd, len, flags, real_recvfrom(fd, buf, len, flags, addr, alen));
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *addr, socklen_t alen)
{
  REAL(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t));
  PLAIN_IO(fd, len, flags, real_sendto(fd, buf, len, flags, addr, alen));
}

/* The scatter-gather calls: a fault for a request of @n buffers @iov;
 * for a short count, the shorter request is in @cut, *@k buffers long. */
static int pick_vec(int fd, int flags, const struct iovec *iov, int n, struct iovec *cut, int *k)
{
  size_t total = iov_total(iov, n);
  int f = pick(fd, flags, total >= 2);
  if (f == F_SHORT)
    *k = cut_iov(iov, n, cut, shorter(total));
  return f;
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
  REAL(readv, ssize_t, (int, const struct iovec *, int));
  struct iovec cut[64];
  int k, f = pick_vec(fd, 0, iov, n, cut, &k);
  if (f == F_SHORT)
    return real_readv(fd, cut, k);
  return f != F_NONE ? fail(f) : real_readv(fd, iov, n);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
  REAL(writev, ssize_t, (int, const struct iovec *, int));
  struct iovec cut[64];
  int k, f = pick_vec(fd, 0, iov, n, cut, &k);
  if (f == F_SHORT)
    return real_writev(fd, cut, k);
  return f != F_NONE ? fail(f) : real_writev(fd, iov, n);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
  REAL(recvmsg, ssize_t, (int, struct msghdr *, int));
  struct iovec cut[64], *orig = msg->msg_iov;
  size_t olen = msg->msg_iovlen;
  int k, f = pick_vec(fd, flags, orig, (int)olen, cut, &k);
  if (f == F_NONE)
    return real_recvmsg(fd, msg, flags);
  if (f != F_SHORT)
    return fail(f);
  msg->msg_iov = cut;
  msg->msg_iovlen = (size_t)k;
  ssize_t r = real_recvmsg(fd, msg, flags);
  int e = errno;
  msg->msg_iov = orig;
  msg->msg_iovlen = olen;
  errno = e;
  return r;
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
  REAL(sendmsg, ssize_t, (int, const struct msghdr *, int));
  struct iovec cut[64];
  int k, f = pick_vec(fd, flags, msg->msg_iov, (int)msg->msg_iovlen, cut, &k);
  if (f == F_NONE)
    return real_sendmsg(fd, msg, flags);
  if (f != F_SHORT)
    return fail(f);
  struct msghdr m = *msg;
  m.msg_iov = cut;
  m.msg_iovlen = (size_t)k;
  return real_sendmsg(fd, &m, flags);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
  REAL(accept4, int, (int, struct sockaddr *, socklen_t *, int));
  int f = pick(fd, 0, 0);
  if (f != F_NONE)
    /* ECONNABORTED in place of EAGAIN half the time: the other error a
     * server must shrug off; the connection is still queued either way. */
    return (int)fail(f == F_EAGAIN && next_rand() % 2 ? F_CONNABORTED : f);
  int r = real_accept4(fd, addr, alen, flags);
  if (r >= 0)
    atomic_store(&alloc_armed, 1);
  return r;
}

/* On io_uring a server's accepts complete on the ring, out of this shim's
 * sight; eddy asks each fd accepted there for its peer's address, so the
 * first answer arms allocation faults as the first accept4 does. Not
 * faulted itself: the ring's completions are not either. */
EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *alen)
{
  REAL(getpeername, int, (int, struct sockaddr *, socklen_t *));
  int r = real_getpeername(fd, addr, alen);
  if (r == 0)
    atomic_store(&alloc_armed, 1);
  return r;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
  REAL(epoll_wait, int, (int, struct epoll_event *, int, int));
  /* -1: the epoll fd is no socket, but no harness blocks on our epoll. */
  int f = pick(-1, 0, max >= 2);
  if (f == F_SHORT)
    max = (int)shorter((size_t)max);
  else if (f == F_EINTR)
    return (int)fail(f);
  /* EAGAIN is no epoll_wait error: the fault is a wake-up with no events. */
  else if (f == F_EAGAIN) {
    atomic_fetch_add(&n_eagain, 1);
    return 0;
  }
  return real_epoll_wait(epfd, ev, max, timeout);
}

/* --- allocations -------------------------------------------------------------
 * The real functions are found with dlsym, which may itself allocate (its
 * error state): while a lookup runs, requests are served from a static
 * arena whose blocks are never freed. */
static _Alignas(max_align_t) char arena[16384];
static size_t arena_used;
static TLS int resolving;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);

static void *arena_alloc(size_t n)
{
  size_t a = _Alignof(max_align_t), off = (arena_used + a - 1) / a * a;
  if (off + n > sizeof arena)
    return NULL;
  arena_used = off + n;
  return arena + off;
}

static int in_arena(const void *p)
{
  return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

static void resolve(void)
{
  resolving = 1;
  *(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc");
  *(void **)&real_calloc = dlsym(RTLD_NEXT, "calloc");
  *(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
  *(void **)&real_free = dlsym(RTLD_NEXT, "free");
  resolving = 0;
}

static int alloc_fails(void)
{
  if (!enabled || busy || !atomic_load(&alloc_armed))
    return 0;
  if (atomic_load(&alloc_nth) > 0) {
    if (atomic_fetch_add(&alloc_count, 1) + 1 != atomic_load(&alloc_nth))
      return 0;
  } else if (alloc_rate == 0 || next_rand() >= alloc_rate) {
    return 0;
  }
  atomic_fetch_add(&n_enomem, 1);
  errno = ENOMEM;
  return 1;
}

EXPORT void *malloc(size_t n)
{
  if (resolving)
    return arena_alloc(n);
  if (real_malloc == NULL)
    resolve();
  return alloc_fails() ? NULL : real_malloc(n);
}

EXPORT void *calloc(size_t k, size_t n)
{
  if (resolving) {
    void *p = n != 0 && k > SIZE_MAX / n ? NULL : arena_alloc(k * n);
    return p != NULL ? memset(p, 0, k * n) : NULL;
  }
  if (real_calloc == NULL)
    resolve();
  return alloc_fails() ? NULL : real_calloc(k, n);
}

EXPORT void *realloc(void *p, size_t n)
{
  if (resolving || in_arena(p)) {
    /* Rare (dlsym's own state): a fresh block with the old bytes, whose
     * size the arena does not know, so as many as fit. */
    void *q = resolving ? arena_alloc(n) : malloc(n);
    if (q != NULL && p != NULL) {
      size_t left = (size_t)(arena + sizeof arena - (char *)p);
      memcpy(q, p, n < left ? n : left);
    }
    return q;
  }
  if (real_realloc == NULL)
    resolve();
  /* realloc(p, 0) frees; failing it would leak p for callers that free
   * only on success, which the standard does not ask them to do. */
  return n != 0 && alloc_fails() ? NULL : real_realloc(p, n);
}

EXPORT void free(void *p)
{
  if (p == NULL || in_arena(p))
    return;
  if (real_free == NULL)
    resolve();
  real_free(p);
}
