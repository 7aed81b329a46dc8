/* SPDX-License-Identifier: MIT */
/*
 * Compile-time guards on the binary interface. The option structs are
 * allocated by callers, so their sizes and the offsets of their fields are
 * part of the ABI of libeddy.so.0: a new field must come out of the
 * reserved tail (docs/design.md, "Binary compatibility"), and these
 * assertions fail the build of any change that grows a struct instead.
 */
#include <stdint.h>

#include "eddy.h"
#include "common/options.h"

/* The sizes of 0.1 on LP64 (x86_64, arm64, ...), where the packages are
 * built and tested; other data models keep theirs by the same rule. */
#if SIZE_MAX == UINT64_MAX && UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(eddy_stream_options_t) == 104,
               "eddy_stream_options_t changed size: take new fields from reserved_");
_Static_assert(sizeof(eddy_tcp_server_options_t) == 176,
               "eddy_tcp_server_options_t changed size: take new fields from reserved_");
_Static_assert(sizeof(eddy_tcp_connect_options_t) == 208,
               "eddy_tcp_connect_options_t changed size: take new fields from reserved_");
_Static_assert(sizeof(eddy_tls_options_t) == 88,
               "eddy_tls_options_t changed size: take new fields from reserved_");
_Static_assert(sizeof(eddy_coro_options_t) == 40,
               "eddy_coro_options_t changed size: take new fields from reserved_");
#endif

int eddy__all_zero(const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0)
      return 0;
  return 1;
}
