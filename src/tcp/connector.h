/* SPDX-License-Identifier: MIT */
/*
 * The Happy Eyeballs connector (not installed): Tornado's _Connector.
 *
 * It knows nothing about sockets. It is given a list of addresses and a
 * function that starts one connection attempt and returns its future, and
 * it decides which attempts to start and when:
 *
 *   - primary = the addresses of the first entry's family, in order;
 *     secondary = all the others, in order;
 *   - within a queue, the next address is tried once the previous attempt
 *     failed, or, with an attempt delay (RFC 8305's Connection Attempt
 *     Delay), also once that delay has passed since the queue's last
 *     start, so that an address that never answers does not hold up the
 *     rest of its family (without one, Tornado's rule: at most one attempt
 *     in flight per queue);
 *   - the secondary queue starts when the fallback timer fires, or at once
 *     when any attempt fails first;
 *   - the first attempt to succeed wins: the result settles as that
 *     attempt's future (sharing its value), and every attempt still in
 *     flight is cancelled ("closed"); a success arriving after the result
 *     is decided is dropped, which frees its value;
 *   - when the deadline passes, the result (if undecided) is rejected with
 *     EDDY_ETIMEOUT and every attempt in flight is cancelled; a success
 *     that came before it is kept;
 *   - once every address has failed, the result settles as the last
 *     attempt to fail (its code, cause and message).
 *
 * Closing an attempt means cancelling its future, so an attempt function
 * must make cancellation close whatever it opened, and must give a
 * resolved future a value whose free function closes it (a stream
 * reference does both). Cancelling the result cancels every attempt.
 *
 * The timers are ordinary loop timers; tests set them far in the future
 * and fire them by hand with eddy__connector_fire_fallback(),
 * eddy__connector_fire_stagger() and eddy__connector_fire_deadline().
 */
#ifndef EDDY_TCP_CONNECTOR_H
#define EDDY_TCP_CONNECTOR_H

#include <stddef.h>

#include "eddy/tcp.h"

typedef struct eddy__connector eddy__connector_t;

/**
 * Starts one attempt to @p addr. Returns a new reference to a future that
 * resolves once connected or rejects with the reason; NULL counts as a
 * failure with -ENOMEM. Only called while the result is undecided.
 */
typedef eddy_future_t *(*eddy__attempt_fn)(void *arg,
                                           const eddy_address_t *addr);

typedef struct eddy__connector_config {
  eddy__attempt_fn attempt;
  void *arg;             /**< for attempt; used until the result settles */
  double fallback_delay; /**< seconds before the secondary queue starts */
  double deadline;       /**< absolute loop time (eddy_loop_time()); 0: none */
  /** Seconds after which a queue tries its next address while the earlier
   *  ones are still pending; <= 0: only after a failure (Tornado). */
  double attempt_delay;
} eddy__connector_config_t;

/**
 * A connector over a copy of @p addrs (n may be 0: the result then rejects
 * with EDDY_ENONAME once started). Nothing starts before
 * eddy__connector_start().
 *
 * @return the connector (release with eddy__connector_unref()), or NULL on
 *         ENOMEM.
 */
eddy__connector_t *eddy__connector_new(eddy_loop_t *loop,
                                       const eddy_address_t *addrs, size_t n,
                                       const eddy__connector_config_t *config);

/** Starts the first attempt and arms the timers. Call once. */
void eddy__connector_start(eddy__connector_t *c);

/**
 * The result, borrowed (eddy_future_ref() it to keep it): resolved as the
 * winning attempt's future, rejected with the last failure, EDDY_ETIMEOUT
 * or EDDY_ENONAME (no addresses), or cancelled by its owner.
 */
eddy_future_t *eddy__connector_result(const eddy__connector_t *c);

/** The winning address, or NULL while undecided or if none won. */
const eddy_address_t *eddy__connector_winner(const eddy__connector_t *c);

/** The primary / secondary queues, for tests: their sizes and entries. */
size_t eddy__connector_queue(const eddy__connector_t *c, int secondary,
                             const eddy_address_t **entries, size_t max);

/** Attempts started so far, and how many of them are still in flight. */
size_t eddy__connector_started(const eddy__connector_t *c);
size_t eddy__connector_in_flight(const eddy__connector_t *c);

/** What the fallback timer does when it fires (harmless at any time). */
void eddy__connector_fire_fallback(eddy__connector_t *c);

/** What a queue's attempt-delay timer does when it fires (harmless at any
 *  time): the next address of that queue, if any, starts now. */
void eddy__connector_fire_stagger(eddy__connector_t *c, int secondary);

/** What the deadline timer does when it fires (harmless at any time). */
void eddy__connector_fire_deadline(eddy__connector_t *c);

/**
 * Drops the caller's reference. The connector lives on while attempts are
 * in flight or the result is pending, so dropping it right after
 * eddy__connector_start() is the normal use.
 */
void eddy__connector_unref(eddy__connector_t *c);

#endif
