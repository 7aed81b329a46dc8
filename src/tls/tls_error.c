/* SPDX-License-Identifier: MIT */
/* OpenSSL's error queue as one line of text (see tls_error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "eddy/error.h"
#include "tls/tls_error.h"

int eddy__tls_errf(int code, char *buf, size_t len, const char *fmt, ...)
{
  if (buf != NULL && len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
  }
  return code;
}

int eddy__tls_error(char *buf, size_t len, const char *what, long verify_result,
                    const char *fallback)
{
  const char *data = NULL;
  int flags = 0;
  /* The first entry is the root cause: later ones are the callers that
   * passed it up ("PEM lib" after "no start line"). */
  unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
  char reason[256];
  const char *sep = what != NULL ? ": " : "";

  if (what == NULL)
    what = "";
  if (e == 0) {
    snprintf(reason, sizeof reason, "%s", fallback != NULL ? fallback : "TLS error");
  } else {
    const char *r = ERR_reason_error_string(e);
    if (r == NULL) {
      ERR_error_string_n(e, reason, sizeof reason);
    } else if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0') {
      snprintf(reason, sizeof reason, "%s (%s)", r, data);
    } else {
      snprintf(reason, sizeof reason, "%s", r);
    }
  }
  /* "certificate verify failed" alone does not say what was wrong with
   * the certificate; the verify result does (as Python's ssl reports). */
  if (verify_result != X509_V_OK && (e == 0 || ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED))
    eddy__tls_errf(0, buf, len, "%s%s%s: %s", what, sep, reason,
                   X509_verify_cert_error_string(verify_result));
  else
    eddy__tls_errf(0, buf, len, "%s%s%s", what, sep, reason);
  ERR_clear_error();
  return EDDY_ETLS;
}
