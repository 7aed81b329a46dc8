/* SPDX-License-Identifier: MIT */
/*
 * eddy/error.h - error codes.
 *
 * Every eddy function that can fail reports failure as a negative int:
 *
 *   - a negated errno value (-ECONNREFUSED, -ENOMEM, ...) when the operating
 *     system said no, so `-err` can be handed to strerror() as usual;
 *   - one of the EDDY_E* codes below for conditions that are eddy's own.
 *
 * The EDDY_E* codes live far below any errno value, so the two never collide.
 * eddy_strerror() names both kinds. Rejected futures carry the same codes
 * (see eddy_future_error()).
 */
#ifndef EDDY_ERROR_H
#define EDDY_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(EDDY_STATIC)
#define EDDY_API __attribute__((visibility("default")))
#else
#define EDDY_API
#endif

/*
 * X(name, value, message). One line per code: the enum, eddy_strerror() and
 * eddy_err_name() are all generated from this list.
 */
#define EDDY_ERRNO_MAP(X)                                                      \
  X(ECLOSED, -30001, "stream closed")                                          \
  X(EUNSATISFIABLE, -30002, "unsatisfiable read: delimiter not found within max_bytes") \
  X(EBUFFERFULL, -30003, "buffer full")                                        \
  X(EALREADYREADING, -30004, "already reading: one read at a time per stream") \
  X(ETIMEOUT, -30005, "timed out")                                             \
  X(ECANCELLED, -30006, "operation cancelled")                                 \
  X(ESETTLED, -30007, "future already settled")                                \
  X(ENOTIDLE, -30008, "stream is not idle")                                    \
  X(ESTOPPED, -30009, "loop stopped before the future settled")                \
  X(ETLS, -30010, "TLS error")                                                 \
  X(ENONAME, -30011, "name does not resolve")                                  \
  X(ERESOLVE, -30012, "name resolution failed")                                \
  X(EREGEX, -30013, "invalid regular expression")                              \
  X(EPENDING, -30014, "future is still pending")                               \
  X(ECONNECTFAILED, -30015, "connection failed")                               \
  X(EHANDSHAKE, -30016, "a handshake wait is already pending")                 \
  X(EUSAGE, -30017, "invalid use of the API")

/** eddy's own error codes. All are negative and below -30000. */
enum eddy_errno {
#define EDDY_ERR_ENUM_(name, value, msg) EDDY_##name = value,
  EDDY_ERRNO_MAP(EDDY_ERR_ENUM_)
#undef EDDY_ERR_ENUM_
  EDDY_ERRNO_MIN_ = -30100
};

/**
 * A human-readable message for an error code.
 *
 * @param err  0, a negated errno value, or an EDDY_E* code.
 * @return     a static string, never NULL and never to be freed: "success"
 *             for 0, the C library's text for -errno values, the table's text
 *             for EDDY_E* codes, and "unknown error" for anything else.
 *             Thread-safe.
 */
EDDY_API const char *eddy_strerror(int err);

/**
 * The symbolic name of an error code: "ECONNREFUSED", "EDDY_ECLOSED", ...
 *
 * @return a static string, never NULL; "UNKNOWN" for codes it does not know.
 */
EDDY_API const char *eddy_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* EDDY_ERROR_H */
