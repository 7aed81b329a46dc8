/* SPDX-License-Identifier: MIT */
/*
 * eddy_format_address(): socket addresses as text for log lines. It lives
 * with the streams, the layer that owns sockets, so that TLS (which logs
 * its peer) and TCP use it from below (docs/design.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "eddy/stream.h"

/* "unix:/path", "unix:@name" or "unix:(unnamed)", from the @len bytes of
 * the address the kernel filled in: sun_path beyond them is garbage (an
 * unnamed peer gets just the family). An abstract name is @len bytes, NULs
 * and all, so bytes that are not printable show as '?' (one each, so
 * EDDY_ADDRSTRLEN still holds the longest name). */
static int format_unix(const struct sockaddr_un *a, socklen_t len, char *buf, size_t size)
{
  size_t off = offsetof(struct sockaddr_un, sun_path), n;
  char name[sizeof a->sun_path + 1];

  if (len > sizeof *a)
    len = sizeof *a;
  n = (size_t)len > off ? (size_t)len - off : 0;
  if (n == 0 || (a->sun_path[0] == '\0' && n == 1))
    return snprintf(buf, size, "unix:(unnamed)");
  if (a->sun_path[0] != '\0')
    return snprintf(buf, size, "unix:%.*s", (int)strnlen(a->sun_path, n), a->sun_path);
  for (size_t i = 1; i < n; i++)
    name[i - 1] = a->sun_path[i] >= 0x20 && a->sun_path[i] < 0x7f ? a->sun_path[i] : '?';
  name[n - 1] = '\0';
  return snprintf(buf, size, "unix:@%s", name);
}

int eddy_format_address(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
  int n = -EINVAL;

  if (buf == NULL)
    return -EINVAL;
  if (sa == NULL || len < (socklen_t)sizeof sa->sa_family) {
    n = -EINVAL;
  } else if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    n = snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(a->sin_port));
  } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    char zone[IF_NAMESIZE];
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    if (a->sin6_scope_id != 0) {
      if (if_indextoname(a->sin6_scope_id, zone) == NULL)
        snprintf(zone, sizeof zone, "%u", (unsigned)a->sin6_scope_id);
      strcat(host, "%");
      strcat(host, zone);
    }
    n = snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
  } else if (sa->sa_family == AF_UNIX) {
    n = format_unix((const struct sockaddr_un *)sa, len, buf, size);
  }
  if (n == -EINVAL) {
    if (size > 0)
      snprintf(buf, size, "?");
    return n;
  }
  return (size_t)n < size ? n : -ENOSPC;
}
