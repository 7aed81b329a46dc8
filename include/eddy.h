/* SPDX-License-Identifier: MIT */
/*
 * eddy.h - the one header an application includes.
 *
 * eddy is Tornado's IOStream and TCPServer in C: a single-threaded event
 * loop, refcounted futures, buffered streams whose every operation returns a
 * future, TLS on OpenSSL, and TCP servers and clients. Start with
 * README.md and docs/design.md; the ownership rules are in eddy/future.h
 * and docs/ownership.md, streams in docs/streams.md, TLS in docs/tls.md.
 */
#ifndef EDDY_H
#define EDDY_H

#include "eddy/version.h"
#include "eddy/error.h"
#include "eddy/loop.h"
#include "eddy/future.h"
#include "eddy/stream.h"
#include "eddy/tcp.h"
#include "eddy/tls.h"
#include "eddy/coro.h"

#endif /* EDDY_H */
