/* SPDX-License-Identifier: MIT */
/*
 * The reserved tails of the public option structs (docs/design.md, "Binary
 * compatibility"). A caller built against these headers leaves them zero;
 * a non-zero byte means a caller built against a later release's headers
 * turned on a field this library does not have, and every entry point that
 * takes options refuses that rather than silently ignoring the setting.
 */
#ifndef EDDY_COMMON_OPTIONS_H
#define EDDY_COMMON_OPTIONS_H

#include <stddef.h>

/* Non-zero if the @n bytes at @p are all zero. */
int eddy__all_zero(const void *p, size_t n);

#ifdef EDDY_ABI_TEST_GROWN
/* Only in the library tests/test_abi.sh builds: its headers take a field,
 * abi_grown_field, out of every reserved tail, as a later release would
 * add one. Zero is that field's default; the old program under test never
 * sets it, so finding it non-zero means its bytes were read wrongly. */
#define EDDY__NEW_FIELDS_AT_DEFAULT(o) ((o)->abi_grown_field == 0)
#else
#define EDDY__NEW_FIELDS_AT_DEFAULT(o) 1
#endif

/* True if the option struct at @o sets nothing this library lacks. */
#define EDDY__OPTIONS_KNOWN(o)                                                  \
  (EDDY__NEW_FIELDS_AT_DEFAULT(o) &&                                           \
   eddy__all_zero((o)->reserved_, sizeof (o)->reserved_))

#endif /* EDDY_COMMON_OPTIONS_H */
