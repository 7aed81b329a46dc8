/* SPDX-License-Identifier: MIT */
/*
 * Shared by the files of the loop suite (tests/test_loop*.c): helpers and
 * the functions that add each file's tests.
 */
#ifndef EDDY_TEST_LOOP_H
#define EDDY_TEST_LOOP_H

#include <check.h>

#include "eddy.h"

/* Callbacks record their argument (an int) here, in order. */
struct order {
  int seen[64];
  int n;
};
extern struct order g_order;
void record_cb(void *arg);

/* Counts its calls in g_later_ran. */
extern int g_later_ran;
void later_cb(void *arg);

eddy_loop_t *new_loop(void);
void stop_cb(void *arg); /* arg: the loop */
eddy_future_t *never_then(eddy_future_t *settled, void *arg);

void loop_add_timer_tests(TCase *tc);
void loop_add_io_tests(TCase *tc);
void loop_add_thread_tests(TCase *tc);
void loop_add_embed_tests(TCase *tc);

#endif
