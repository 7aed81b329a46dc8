/* SPDX-License-Identifier: MIT */
/* eddy_version() and eddy_version_string(): the library's own numbers,
 * fixed when it was compiled, whatever headers the caller was built with. */
#include "eddy/version.h"

unsigned int eddy_version(void)
{
  return EDDY_VERSION_NUMBER;
}

const char *eddy_version_string(void)
{
  return EDDY_VERSION_STRING;
}
