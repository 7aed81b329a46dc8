/* SPDX-License-Identifier: MIT */
/*
 * Error messages for TLS failures (not installed).
 *
 * OpenSSL reports why something failed on a per-thread error queue. eddy
 * turns the queue into one line of text in a buffer the caller owns (no
 * hidden state of ours) and always leaves the queue empty, so a stale
 * entry can never be blamed for a later, unrelated failure.
 */
#ifndef EDDY_TLS_ERROR_H
#define EDDY_TLS_ERROR_H

#include <stddef.h>

/*
 * Writes "@what: <reason>" into @buf (@len bytes, NUL-terminated, may be
 * NULL/0), where <reason> is the first (root-cause) entry of OpenSSL's
 * error queue with its detail text, e.g. "no start line" or "certificate
 * verify failed: self-signed certificate" (@verify_result, an X509_V_*
 * value, adds the verification reason; pass 0 when there is none). With
 * an empty queue, <reason> is @fallback. @what may be NULL. Clears the
 * queue.
 *
 * @return EDDY_ETLS, so callers can `return eddy__tls_error(...)`.
 */
int eddy__tls_error(char *buf, size_t len, const char *what, long verify_result,
                    const char *fallback);

/* snprintf into @buf when it is not NULL; returns @code (for chaining). */
int eddy__tls_errf(int code, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
