/* SPDX-License-Identifier: MIT */
/* eddy_strerror() and eddy_err_name(), generated from EDDY_ERRNO_MAP. */
#include <string.h>
#include <errno.h>

#include "eddy/error.h"

const char *eddy_strerror(int err)
{
  if (err == 0)
    return "success";
  switch (err) {
#define EDDY_ERR_STR_(name, value, msg) case value: return msg;
    EDDY_ERRNO_MAP(EDDY_ERR_STR_)
#undef EDDY_ERR_STR_
  default:
    break;
  }
  /* strerror() returns a static string for every errno glibc knows; an
   * unknown one gets our own text rather than a racy static buffer. */
  if (err < 0 && err > -4096) {
    const char *s = strerror(-err);
    if (s != NULL && strncmp(s, "Unknown error", 13) != 0)
      return s;
  }
  return "unknown error";
}

const char *eddy_err_name(int err)
{
  switch (err) {
  case 0: return "OK";
#define EDDY_ERR_NAME_(name, value, msg) case value: return "EDDY_" #name;
    EDDY_ERRNO_MAP(EDDY_ERR_NAME_)
#undef EDDY_ERR_NAME_
  default:
    break;
  }
#ifdef HAVE_STRERRORNAME_NP
  if (err < 0 && err > -4096) {
    const char *s = strerrorname_np(-err);
    if (s != NULL)
      return s;
  }
#endif
  return "UNKNOWN";
}
