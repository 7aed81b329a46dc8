/* SPDX-License-Identifier: MIT */
/*
 * bench/loadgen.c - eddy's line-echo load generator.
 *
 * One thread, epoll (level-triggered), non-blocking sockets. Opens C
 * connections to 127.0.0.1:PORT and keeps P messages in flight on each: a
 * message is S bytes, the last one "\n". Every echoed byte is compared with
 * what was sent (memcmp against the message templates), so a server that
 * drops, reorders or corrupts bytes fails the run. Each message is timed
 * from the moment its first byte is handed to the kernel to the moment its
 * last echoed byte arrives (pipelined messages included), and the latencies
 * go into a log-linear histogram (about 1% resolution) for p50/p99.
 *
 * A warm-up (not counted) comes first, then D seconds are measured. Over
 * the measured window the load generator reports its own CPU time
 * (getrusage) and, given --server-pid, the server's utime+stime read from
 * /proc/PID/stat, so the harness can compare the two and count messages per
 * second of server CPU time.
 *
 * --rate R caps the offered load at R messages per second in all (a token
 * bucket refilled continuously; a connection with a free slot waits
 * for a token, checked every 20 µs). A closed loop alone measures each
 * server's latency at its own throughput, which puts a faster server's
 * tail partly in the load generator's queues; at one fixed rate that every
 * server sustains, p50 and p99 compare like with like.
 *
 * --tls speaks TLS (OpenSSL, no certificate verification: loopback only).
 * --idle N opens N connections, does one round trip on each (so the server
 * has accepted and set each up), prints "IDLE-READY N", then holds them
 * without traffic until stdin reaches EOF or --duration passes.
 *
 * Output: one line "RESULT key=value ..." on stdout (see bench/README.md),
 * errors on stderr; exit status 0 only if every byte verified.
 *
 * Only 127.0.0.0/8 addresses are accepted as targets.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef LOADGEN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define NTEMPLATES 16
#define RBUF_SIZE (64 * 1024)

/* ---- options --------------------------------------------------------- */
static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static int opt_conns = 1;
static size_t opt_size = 64;
static int opt_pipeline = 1;
static double opt_duration = 5.0;
static double opt_warmup = 1.0;
static int opt_tls = 0;
static int opt_idle = 0;
static int opt_server_pid = 0;
static double opt_connect_timeout = 10.0;
static double opt_rate = 0; /* messages per second, all connections; 0: no cap */

/* ---- clock ----------------------------------------------------------- */
static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_self_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of another process, in seconds; -1 if unreadable. */
static double cpu_of_pid(int pid) {
  if (pid <= 0) return -1;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* comm may contain spaces */
  if (!p) return -1;
  p += 2;                        /* now at field 3 (state) */
  unsigned long ut = 0, st = 0;
  /* fields 3..13 then utime (14) stime (15) */
  if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
             &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- latency histogram: log-linear, 128 sub-buckets per power of two -- */
#define HSUB 128
#define HBUCKETS (64 * HSUB)
static uint64_t hist[HBUCKETS];

static inline int hist_index(uint64_t v) {
  if (v < HSUB) return (int)v;
  int msb = 63 - __builtin_clzll(v);   /* >= 7 */
  int shift = msb - 7;
  int sub = (int)((v >> shift) & (HSUB - 1));
  return (shift + 1) * HSUB + sub;
}
static inline uint64_t hist_value(int idx) {
  if (idx < HSUB) return (uint64_t)idx;
  int shift = idx / HSUB - 1;
  uint64_t sub = (uint64_t)(idx % HSUB) | HSUB;
  return (sub << shift) + ((1ull << shift) >> 1); /* middle of the bucket */
}
static double hist_pct(uint64_t total, double pct) {
  if (!total) return 0;
  uint64_t want = (uint64_t)ceil(total * pct / 100.0);
  if (want == 0) want = 1;
  uint64_t seen = 0;
  for (int i = 0; i < HBUCKETS; i++) {
    seen += hist[i];
    if (seen >= want) return (double)hist_value(i);
  }
  return 0;
}

/* ---- connections ----------------------------------------------------- */
typedef struct conn {
  int fd;
  int id;
  int connected;
#ifdef LOADGEN_TLS
  SSL *ssl;
  int handshaken;
  int want_write; /* SSL needs POLLOUT to progress */
#endif
  uint64_t sent_msgs;   /* messages whose sending has started */
  size_t send_off;      /* bytes of the current message already sent */
  int sending;          /* a message is partially sent */
  uint64_t recv_msgs;   /* messages fully echoed */
  size_t recv_off;      /* bytes of the current echoed message received */
  uint64_t *stamps;     /* ring of send timestamps, opt_pipeline deep */
  int out_events;       /* events currently registered */
  int done;             /* no more messages to send */
  struct conn *next_parked; /* waiting for a --rate token */
  int parked;
} conn_t;

static conn_t *conns;
static int epfd;
static char *templates[NTEMPLATES];
static unsigned char *rbuf;

static uint64_t m_msgs, m_bytes, m_hist_total;
static int measuring;
static int stopping;
static long errors;
static uint64_t idle_ok;

/* --rate: tokens handed out since rate_t0, and the connections waiting
 * for one, first come first served. */
static uint64_t rate_t0, rate_used;
static conn_t *parked_head, **parked_tail = &parked_head;

static int rate_take(conn_t *c, uint64_t now) {
  if (opt_rate <= 0) return 1;
  if ((double)(now - rate_t0) * opt_rate / 1e9 >= (double)rate_used + 1) {
    rate_used++;
    return 1;
  }
  if (!c->parked) {
    c->parked = 1;
    c->next_parked = NULL;
    *parked_tail = c;
    parked_tail = &c->next_parked;
  }
  return 0;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void fail(conn_t *c, const char *what) {
  fprintf(stderr, "loadgen: conn %d: %s\n", c->id, what);
  errors++;
  exit(3);
}

static inline const char *tmpl_for(conn_t *c, uint64_t msg) {
  return templates[(msg + (uint64_t)c->id) % NTEMPLATES];
}

static void set_events(conn_t *c, int ev) {
  if (ev == c->out_events) return;
  struct epoll_event e = {.events = (uint32_t)ev, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) < 0) die("epoll_ctl mod");
  c->out_events = ev;
}

/* Low-level I/O; return >0 bytes, 0 would block, -1 error/EOF */
static ssize_t io_write(conn_t *c, const void *p, size_t n) {
#ifdef LOADGEN_TLS
  if (c->ssl) {
    ERR_clear_error();
    int r = SSL_write(c->ssl, p, (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE) return 0;
    if (e == SSL_ERROR_WANT_READ) return 0;
    return -1;
  }
#endif
  ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
  if (r >= 0) return r;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  return -1;
}

static ssize_t io_read(conn_t *c, void *p, size_t n) {
#ifdef LOADGEN_TLS
  if (c->ssl) {
    ERR_clear_error();
    int r = SSL_read(c->ssl, p, (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
      c->want_write = 1;
      return 0;
    }
    return -1;
  }
#endif
  ssize_t r = recv(c->fd, p, n, 0);
  if (r > 0) return r;
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return 0;
  return -1;
}

/* Sends as much as possible, keeping opt_pipeline messages in flight; the
 * messages that may go are gathered into one sendmsg() (plain TCP), so the
 * load generator makes fewer syscalls than an echo server must.
 * Returns 1 if the socket would block with data still to send. */
static int pump_send(conn_t *c) {
  for (;;) {
    if (!c->sending) {
      if (c->done || stopping) return 0;
      if (c->sent_msgs - c->recv_msgs >= (uint64_t)opt_pipeline) return 0;
      uint64_t now = now_ns();
      if (!rate_take(c, now)) return 0;
      c->sending = 1;
      c->send_off = 0;
      c->stamps[c->sent_msgs % (uint64_t)opt_pipeline] = now;
    }
    const char *t = tmpl_for(c, c->sent_msgs);
    ssize_t w;
#ifdef LOADGEN_TLS
    if (c->ssl) goto single;
#endif
    {
      /* Gather the current message's rest and the next ones allowed. */
      struct iovec iov[64];
      int niov = 0;
      uint64_t m = c->sent_msgs;
      uint64_t limit = c->recv_msgs + (uint64_t)opt_pipeline;
      if (c->done || opt_idle || opt_rate > 0) limit = c->sent_msgs + 1;
      iov[niov].iov_base = (void *)(t + c->send_off);
      iov[niov++].iov_len = opt_size - c->send_off;
      uint64_t stamp = c->stamps[m % (uint64_t)opt_pipeline];
      for (m = c->sent_msgs + 1; m < limit && niov < 64; m++) {
        iov[niov].iov_base = (void *)tmpl_for(c, m);
        iov[niov++].iov_len = opt_size;
      }
      if (niov == 1) goto single;
      struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
      w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 1;
      if (w < 0) fail(c, "write failed (server closed?)");
      /* Account for what went: whole messages, then a partial one. */
      size_t left = (size_t)w;
      size_t first = opt_size - c->send_off;
      if (left < first) {
        c->send_off += left;
        return 1;
      }
      left -= first;
      c->sending = 0;
      c->sent_msgs++;
      while (left > 0) {
        c->stamps[c->sent_msgs % (uint64_t)opt_pipeline] = stamp;
        if (left >= opt_size) {
          left -= opt_size;
          c->sent_msgs++;
        } else {
          c->sending = 1;
          c->send_off = left;
          left = 0;
          return 1;
        }
      }
      continue;
    }
  single:
    w = io_write(c, t + c->send_off, opt_size - c->send_off);
    if (w < 0) fail(c, "write failed (server closed?)");
    if (w == 0) return 1;
    c->send_off += (size_t)w;
    if (c->send_off == opt_size) {
      c->sending = 0;
      c->sent_msgs++;
      if (opt_idle) c->done = 1;
    }
  }
}

static void on_echo_done(conn_t *c, uint64_t t) {
  uint64_t st = c->stamps[c->recv_msgs % (uint64_t)opt_pipeline];
  c->recv_msgs++;
  if (opt_idle) {
    idle_ok++;
    return;
  }
  if (measuring) {
    uint64_t lat = t > st ? t - st : 0;
    hist[hist_index(lat)]++;
    m_hist_total++;
    m_msgs++;
  }
}

/* Reads and verifies everything available. */
static void pump_recv(conn_t *c) {
  for (;;) {
    ssize_t r = io_read(c, rbuf, RBUF_SIZE);
    if (r == 0) return;
    if (r < 0) fail(c, "read failed or the server closed the connection");
    if (measuring) m_bytes += (uint64_t)r;
    size_t off = 0, n = (size_t)r;
    uint64_t t = 0;
    while (off < n) {
      if (c->recv_msgs > c->sent_msgs ||
          (c->recv_msgs == c->sent_msgs && !c->sending))
        fail(c, "received more bytes than were sent");
      size_t want = opt_size - c->recv_off;
      size_t take = n - off < want ? n - off : want;
      const char *t0 = tmpl_for(c, c->recv_msgs);
      if (memcmp(rbuf + off, t0 + c->recv_off, take) != 0)
        fail(c, "echoed bytes differ from the bytes sent");
      off += take;
      c->recv_off += take;
      if (c->recv_off == opt_size) {
        c->recv_off = 0;
        if (!t) t = now_ns();
        on_echo_done(c, t);
      }
    }
    /* Plain sockets: level-triggered epoll tells us if more is there.
     * TLS: OpenSSL may hold decrypted bytes, so read until it blocks. */
#ifdef LOADGEN_TLS
    if (c->ssl) continue;
#endif
    if ((size_t)r < RBUF_SIZE) return;
  }
}

/* ---- connection set-up ------------------------------------------------ */
#ifdef LOADGEN_TLS
static SSL_CTX *ssl_ctx;
#endif
static struct sockaddr_in target;
static int n_opened, n_ready; /* connections opened / ready for traffic */
static int traffic;           /* traffic phase started */

static void open_conn(int i) {
  conn_t *c = &conns[i];
  c->id = i;
  c->stamps = calloc((size_t)opt_pipeline, sizeof(uint64_t));
  if (!c->stamps) die("calloc");
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket (raise ulimit -n?)");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&target, sizeof target) < 0 &&
      errno != EINPROGRESS)
    die("connect");
  struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
  c->out_events = EPOLLOUT;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl add");
  n_opened++;
}

/* Hands out the tokens that accrued, in parking order. */
static void release_parked(void) {
  while (parked_head) {
    conn_t *c = parked_head;
    parked_head = c->next_parked;
    if (!parked_head) parked_tail = &parked_head;
    c->parked = 0;
    int blocked = pump_send(c);
    if (c->parked) return; /* no token yet: it went back to the end */
    set_events(c, EPOLLIN | (blocked ? EPOLLOUT : 0));
  }
}

static void conn_ready(conn_t *c) {
  n_ready++;
  set_events(c, EPOLLIN);
  if (traffic || opt_idle) {
    if (pump_send(c)) set_events(c, EPOLLIN | EPOLLOUT);
  }
}

#ifdef LOADGEN_TLS
static void tls_step(conn_t *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->handshaken = 1;
    conn_ready(c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ)
    set_events(c, EPOLLIN);
  else if (e == SSL_ERROR_WANT_WRITE)
    set_events(c, EPOLLIN | EPOLLOUT);
  else {
    ERR_print_errors_fp(stderr);
    fail(c, "TLS handshake failed");
  }
}
#endif

static void on_event(conn_t *c, uint32_t ev) {
  if (!c->connected) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      errno = err;
      fprintf(stderr, "loadgen: connect to port %d: %s\n", opt_port,
              strerror(err));
      exit(2);
    }
    if (!(ev & EPOLLOUT)) return;
    c->connected = 1;
#ifdef LOADGEN_TLS
    if (opt_tls) {
      c->ssl = SSL_new(ssl_ctx);
      if (!c->ssl) die("SSL_new");
      SSL_set_fd(c->ssl, c->fd);
      SSL_set_connect_state(c->ssl);
      tls_step(c);
      return;
    }
#endif
    conn_ready(c);
    return;
  }
#ifdef LOADGEN_TLS
  if (c->ssl && !c->handshaken) {
    tls_step(c);
    return;
  }
#endif
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) pump_recv(c);
  int blocked = pump_send(c);
#ifdef LOADGEN_TLS
  if (c->want_write) {
    c->want_write = 0;
    blocked = 1;
  }
#endif
  set_events(c, EPOLLIN | (blocked ? EPOLLOUT : 0));
}

/* ---- main ------------------------------------------------------------- */
static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--host 127.0.0.1] [-c CONNS] [-s SIZE]\n"
          "               [-p PIPELINE] [-d SECONDS] [-w WARMUP]\n"
          "               [--server-pid PID] [--tls] [--idle N] [--rate MSGS_PER_S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  static struct option lo[] = {
      {"host", required_argument, 0, 'H'},
      {"port", required_argument, 0, 'P'},
      {"conns", required_argument, 0, 'c'},
      {"size", required_argument, 0, 's'},
      {"pipeline", required_argument, 0, 'p'},
      {"duration", required_argument, 0, 'd'},
      {"warmup", required_argument, 0, 'w'},
      {"server-pid", required_argument, 0, 'S'},
      {"tls", no_argument, 0, 'T'},
      {"idle", required_argument, 0, 'I'},
      {"connect-timeout", required_argument, 0, 'C'},
      {"rate", required_argument, 0, 'R'},
      {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "c:s:p:d:w:", lo, NULL)) != -1) {
    switch (o) {
    case 'H': opt_host = optarg; break;
    case 'P': opt_port = atoi(optarg); break;
    case 'c': opt_conns = atoi(optarg); break;
    case 's': opt_size = (size_t)atol(optarg); break;
    case 'p': opt_pipeline = atoi(optarg); break;
    case 'd': opt_duration = atof(optarg); break;
    case 'w': opt_warmup = atof(optarg); break;
    case 'S': opt_server_pid = atoi(optarg); break;
    case 'T': opt_tls = 1; break;
    case 'I': opt_idle = atoi(optarg); break;
    case 'C': opt_connect_timeout = atof(optarg); break;
    case 'R': opt_rate = atof(optarg); break;
    default: usage();
    }
  }
  if (opt_port <= 0 || opt_port > 65535) usage();
  if (opt_idle > 0) {
    opt_conns = opt_idle;
    opt_pipeline = 1;
  }
  if (opt_conns < 1 || opt_size < 2 || opt_pipeline < 1 || !(opt_rate >= 0)) usage();
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)opt_port);
  if (inet_pton(AF_INET, opt_host, &target.sin_addr) != 1) usage();
  if ((ntohl(target.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "loadgen: only loopback (127.0.0.0/8) targets allowed\n");
    return 2;
  }
#ifdef LOADGEN_TLS
  if (opt_tls) {
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ssl_ctx) die("SSL_CTX_new");
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  }
#else
  if (opt_tls) {
    fprintf(stderr, "loadgen: built without OpenSSL; --tls unavailable\n");
    return 2;
  }
#endif
  signal(SIGPIPE, SIG_IGN);

  /* Message templates: printable bytes (never '\n') then '\n'. */
  for (int t = 0; t < NTEMPLATES; t++) {
    templates[t] = malloc(opt_size);
    if (!templates[t]) die("malloc");
    for (size_t i = 0; i + 1 < opt_size; i++)
      templates[t][i] = (char)('!' + (int)((i * 7 + (size_t)t * 13) % 90));
    templates[t][opt_size - 1] = '\n';
  }
  rbuf = malloc(RBUF_SIZE);
  conns = calloc((size_t)opt_conns, sizeof(conn_t));
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!rbuf || !conns || epfd < 0) die("setup");

  struct epoll_event evs[512];
  /* Connections are opened with at most MAX_INFLIGHT not yet ready, so a
   * server with a small listen backlog is not flooded with SYNs. In idle
   * mode "ready" includes the first round trip. */
  const int MAX_INFLIGHT = 128;
  uint64_t t_start = now_ns();
  uint64_t connect_deadline = t_start + (uint64_t)(opt_connect_timeout * 1e9);
  if (opt_idle) connect_deadline += (uint64_t)(opt_idle / 1000.0 * 1e9);
  for (;;) {
    int pending = opt_idle ? n_opened - (int)idle_ok : n_opened - n_ready;
    while (n_opened < opt_conns && pending < MAX_INFLIGHT) {
      open_conn(n_opened);
      pending++;
    }
    if ((opt_idle ? (int)idle_ok : n_ready) == opt_conns) break;
    if (now_ns() > connect_deadline) {
      fprintf(stderr, "loadgen: only %d of %d connections ready in time\n",
              opt_idle ? (int)idle_ok : n_ready, opt_conns);
      return 2;
    }
    int n = epoll_wait(epfd, evs, 512, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
  }
  double connect_s = (now_ns() - t_start) / 1e9;

  if (opt_idle) {
    printf("IDLE-READY %d connect_s=%.3f\n", opt_conns, connect_s);
    fflush(stdout);
    /* Hold until stdin closes or the duration passes. */
    struct pollfd pf = {.fd = 0, .events = POLLIN};
    uint64_t end = now_ns() + (uint64_t)(opt_duration * 1e9);
    char tmp[256];
    for (;;) {
      uint64_t t = now_ns();
      if (t >= end) break;
      int r = poll(&pf, 1, (int)((end - t) / 1000000) + 1);
      if (r > 0) {
        ssize_t k = read(0, tmp, sizeof tmp);
        if (k <= 0) break;
      }
    }
    printf("RESULT mode=idle conns=%d connect_s=%.3f errors=0\n", opt_conns,
           connect_s);
    return 0;
  }

  /* Traffic: warm-up, then the measured window. */
  traffic = 1;
  rate_t0 = now_ns();
  for (int i = 0; i < opt_conns; i++) on_event(&conns[i], 0);
  uint64_t t_warm_end = now_ns() + (uint64_t)(opt_warmup * 1e9);
  uint64_t t_end = t_warm_end + (uint64_t)(opt_duration * 1e9);
  uint64_t t0 = 0, t1 = 0;
  double cpu0 = 0, cpu1 = 0, srv0 = -1, srv1 = -1;
  if (opt_warmup <= 0) {
    measuring = 1;
    t0 = now_ns();
    cpu0 = cpu_self_s();
    srv0 = cpu_of_pid(opt_server_pid);
  }
  for (;;) {
    uint64_t t = now_ns();
    if (!measuring && t >= t_warm_end) {
      measuring = 1;
      t0 = t;
      cpu0 = cpu_self_s();
      srv0 = cpu_of_pid(opt_server_pid);
    }
    if (t >= t_end) {
      t1 = t;
      cpu1 = cpu_self_s();
      srv1 = cpu_of_pid(opt_server_pid);
      break;
    }
    uint64_t next = measuring ? t_end : t_warm_end;
    uint64_t wait_ns = next - t + 1000000;
    if (parked_head && wait_ns > 20000) wait_ns = 20000; /* tokens due by then */
    struct timespec ts = {(time_t)(wait_ns / 1000000000u), (long)(wait_ns % 1000000000u)};
    int n = epoll_pwait2(epfd, evs, 512, &ts, NULL);
    if (n < 0 && errno != EINTR) die("epoll_pwait2");
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
    release_parked();
  }
  stopping = 1;
  double secs = (t1 - t0) / 1e9;
  double srv_cpu = (srv0 >= 0 && srv1 >= 0) ? srv1 - srv0 : -1;
  printf("RESULT mode=%s conns=%d size=%zu pipeline=%d rate=%.0f seconds=%.3f "
         "msgs=%llu msgs_per_s=%.1f mb_per_s=%.2f p50_us=%.1f p99_us=%.1f "
         "p999_us=%.1f loadgen_cpu_pct=%.1f server_cpu_s=%.3f "
         "server_cpu_pct=%.1f msgs_per_server_cpu_s=%.1f connect_s=%.3f "
         "errors=%ld\n",
         opt_tls ? "tls-echo" : "echo", opt_conns, opt_size, opt_pipeline,
         opt_rate, secs, (unsigned long long)m_msgs, m_msgs / secs,
         m_bytes / secs / 1e6, hist_pct(m_hist_total, 50) / 1e3,
         hist_pct(m_hist_total, 99) / 1e3, hist_pct(m_hist_total, 99.9) / 1e3,
         100.0 * (cpu1 - cpu0) / secs, srv_cpu,
         srv_cpu >= 0 ? 100.0 * srv_cpu / secs : -1,
         srv_cpu > 0 ? m_msgs / srv_cpu : -1, connect_s, errors);
  fflush(stdout);
  return m_msgs > 0 ? 0 : 4;
}
