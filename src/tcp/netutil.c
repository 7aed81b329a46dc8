/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets and address checks (Tornado's netutil): bind_sockets,
 * bind_unix_socket, is_valid_ip.
 *
 * Differences from Tornado, all deliberate: bind_sockets is all or nothing
 * (Q11: a failed bind closes the sockets already made), a port-0 bind that
 * finds its ephemeral port taken on the second family starts over with a
 * new port, and bind_unix_socket only replaces a socket file nobody is
 * listening on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "eddy/tcp.h"

/* How often a port-0 bind starts over when its port is taken elsewhere. */
#define PORT0_ATTEMPTS 8

static int map_gai_error(int rc)
{
  switch (rc) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY:
#endif
  case EAI_FAMILY:
    return EDDY_ENONAME;
  case EAI_MEMORY:
    return -ENOMEM;
  case EAI_SYSTEM:
    return errno > 0 ? -errno : EDDY_ERESOLVE;
  default:
    return EDDY_ERESOLVE;
  }
}

/* Sorts by family (AF_INET first, as Tornado) keeping getaddrinfo's order
 * within a family, and drops duplicates. Returns the count kept. */
static size_t sort_and_dedupe(struct addrinfo **v, size_t n)
{
  for (size_t i = 1; i < n; i++) { /* insertion sort: stable, n is tiny */
    struct addrinfo *x = v[i];
    size_t j = i;
    for (; j > 0 && v[j - 1]->ai_family > x->ai_family; j--)
      v[j] = v[j - 1];
    v[j] = x;
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    int dup = 0;
    for (size_t j = 0; j < kept && !dup; j++)
      dup = v[j]->ai_family == v[i]->ai_family &&
            v[j]->ai_addrlen == v[i]->ai_addrlen &&
            memcmp(v[j]->ai_addr, v[i]->ai_addr, v[i]->ai_addrlen) == 0;
    if (!dup)
      v[kept++] = v[i];
  }
  return kept;
}

static int is_ipv6_loopback(const struct sockaddr *sa)
{
  return sa->sa_family == AF_INET6 &&
         IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static int sockaddr_port(const struct sockaddr *sa)
{
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static void set_sockaddr_port(struct sockaddr *sa, int port)
{
  if (sa->sa_family == AF_INET)
    ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

static int set_int_option(int fd, int level, int name, int value)
{
  if (setsockopt(fd, level, name, &value, sizeof value) < 0)
    return -errno;
  return 0;
}

/*
 * One listening socket for @ai. Returns the fd, 1 to skip this address (an
 * absent family, or ::1 that docker without IPv6 cannot bind), or a
 * negative errno.
 */
static int make_listener(const struct addrinfo *ai, int port, int backlog,
                         unsigned flags, int localhost)
{
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  ai->ai_protocol);
  if (fd < 0)
    return errno == EAFNOSUPPORT ? 1 : -errno;

  struct sockaddr_storage ss;
  memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
  set_sockaddr_port((struct sockaddr *)&ss, port);

  int rc = set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (rc == -ENOPROTOOPT)
    rc = 0;
#ifdef SO_REUSEPORT
  if (rc == 0 && (flags & EDDY_BIND_REUSEPORT))
    rc = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1);
#endif
  if (rc == 0 && ai->ai_family == AF_INET6)
    rc = set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  if (rc == 0 && bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0) {
    rc = -errno;
    if (rc == -EADDRNOTAVAIL && localhost && is_ipv6_loopback(ai->ai_addr))
      rc = 1;
  }
  if (rc == 0 && listen(fd, backlog) < 0)
    rc = -errno;
  if (rc != 0) {
    close(fd);
    return rc;
  }
  return fd;
}

/* One pass over the addresses; all or nothing. */
static int bind_all(struct addrinfo **v, size_t n, int port, int backlog,
                    unsigned flags, int localhost, int *fds, size_t max_fds)
{
  size_t made = 0;
  int skipped = 0, rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (made == max_fds) {
      rc = -ENOSPC;
      break;
    }
    int fd = make_listener(v[i], port, backlog, flags, localhost);
    if (fd == 1) {
      skipped = 1;
      continue;
    }
    if (fd < 0) {
      rc = fd;
      break;
    }
    fds[made++] = fd;
    if (port == 0) { /* the other families reuse the first's port */
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        rc = -errno;
        break;
      }
      port = sockaddr_port((struct sockaddr *)&ss);
    }
  }
  if (rc == 0 && made == 0)
    rc = skipped ? -EADDRNOTAVAIL : EDDY_ENONAME;
  if (rc != 0) {
    while (made > 0)
      close(fds[--made]);
    return rc;
  }
  return (int)made;
}

int eddy_bind_sockets(int port, const char *address, int family, int backlog,
                      unsigned flags, int *fds, size_t max_fds)
{
  if (port < 0 || port > 65535 || fds == NULL || max_fds == 0 ||
      (flags & ~EDDY_BIND_REUSEPORT) != 0 ||
      (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
    return -EINVAL;
#ifndef SO_REUSEPORT
  if (flags & EDDY_BIND_REUSEPORT)
    return -ENOTSUP;
#endif
  if (address != NULL && address[0] == '\0')
    address = NULL;
  if (backlog <= 0)
    backlog = EDDY_DEFAULT_BACKLOG;

  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char service[8];
  snprintf(service, sizeof service, "%d", port);
  int rc = getaddrinfo(address, service, &hints, &res);
  if (rc != 0)
    return map_gai_error(rc);

  size_t n = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
      n++;
  struct addrinfo **v = calloc(n ? n : 1, sizeof *v);
  if (v == NULL) {
    freeaddrinfo(res);
    return -ENOMEM;
  }
  n = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
      v[n++] = ai;
  n = sort_and_dedupe(v, n);

  int localhost = address != NULL && strcmp(address, "localhost") == 0;
  int attempts = port == 0 && n > 1 ? PORT0_ATTEMPTS : 1;
  do
    rc = bind_all(v, n, port, backlog, flags, localhost, fds, max_fds);
  while (rc == -EADDRINUSE && --attempts > 0);

  free(v);
  freeaddrinfo(res);
  return rc;
}

/* 1 if someone listens on the UNIX socket at @sun (so it is not stale). */
static int unix_socket_live(const struct sockaddr_un *sun, socklen_t len)
{
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  int live = connect(fd, (const struct sockaddr *)sun, len) == 0 ||
             errno == EAGAIN;
  close(fd);
  return live;
}

int eddy_bind_unix_socket(const char *path, mode_t mode, int backlog)
{
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (path == NULL || path[0] == '\0' || (path[0] == '@' && path[1] == '\0'))
    return -EINVAL;
  size_t len = strlen(path);
  if (len >= sizeof sun.sun_path)
    return -ENAMETOOLONG;
  int abstract = path[0] == '@';
  memcpy(sun.sun_path, path, len);
  if (abstract)
    sun.sun_path[0] = '\0';
  socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                  len + (abstract ? 0 : 1));
  if (backlog <= 0)
    backlog = EDDY_DEFAULT_BACKLOG;

  if (!abstract) {
    struct stat st;
    if (lstat(path, &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
      if (unix_socket_live(&sun, addrlen))
        return -EADDRINUSE;
      if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    } else if (errno != ENOENT) {
      return -errno;
    }
  }

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int rc = 0;
  if (bind(fd, (struct sockaddr *)&sun, addrlen) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  if (!abstract && chmod(path, mode) < 0)
    rc = -errno;
  if (rc == 0 && listen(fd, backlog) < 0)
    rc = -errno;
  if (rc != 0) {
    close(fd);
    if (!abstract)
      unlink(path);
    return rc;
  }
  return fd;
}

int eddy_is_valid_ip(const char *s)
{
  unsigned char buf[sizeof(struct in6_addr)];
  if (s == NULL || s[0] == '\0' || strlen(s) >= INET6_ADDRSTRLEN + IF_NAMESIZE)
    return 0;
  if (inet_pton(AF_INET, s, buf) == 1)
    return 1;
  /* IPv6, optionally with a zone ("fe80::1%eth0"), as getaddrinfo takes. */
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE];
  strcpy(host, s);
  char *zone = strchr(host, '%');
  if (zone != NULL) {
    *zone++ = '\0';
    if (*zone == '\0')
      return 0;
    for (const char *c = zone; *c != '\0'; c++)
      if (*c <= ' ' || *c >= 0x7f || *c == '%')
        return 0;
  }
  return inet_pton(AF_INET6, host, buf) == 1;
}
