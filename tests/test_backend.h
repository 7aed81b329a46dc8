/* SPDX-License-Identifier: MIT */
/*
 * tests/test_backend.h - which loop backend a suite runs on.
 *
 * The suites that run once per backend are built with EDDY_TEST_BACKEND
 * ("poll", "io_uring"), which sets EDDY_BACKEND before any loop is made.
 * io_uring is asked of the kernel first: where it is refused (no liburing
 * at build time, an old kernel, a seccomp policy) the suite is skipped,
 * rather than quietly run on epoll under io_uring's name. It is skipped
 * under valgrind too, which does not follow the ring: it holds its lock
 * across the blocking io_uring_enter, so the other threads of a test (the
 * wakeup and thread-pool tests) never run. `make check-valgrind` covers
 * the loop on epoll and poll.
 */
#ifndef EDDY_TESTS_TEST_BACKEND_H
#define EDDY_TESTS_TEST_BACKEND_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "eddy/loop.h"

/* Whether valgrind runs this process (its preload is mapped). */
static inline int test_under_valgrind(void)
{
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  if (maps == NULL)
    return 0;
  while (!found && fgets(line, sizeof line, maps) != NULL)
    found = strstr(line, "vgpreload") != NULL;
  fclose(maps);
  return found;
}

/** @return 0 to run the suite, or 77 (automake's skip) to skip it. */
static inline int test_select_backend(void)
{
#ifdef EDDY_TEST_BACKEND
  setenv("EDDY_BACKEND", EDDY_TEST_BACKEND, 1);
  if (strcmp(EDDY_TEST_BACKEND, "io_uring") == 0) {
    if (test_under_valgrind()) {
      printf("skip: io_uring under valgrind (it does not follow the ring)\n");
      return 77;
    }
    eddy_loop_t *loop = eddy_loop_new_with_backend(EDDY_BACKEND_IO_URING);
    if (loop == NULL) {
      printf("skip: io_uring is not available here: %s\n", strerror(errno));
      return 77;
    }
    eddy_loop_free(loop);
  }
#endif
  return 0;
}

/** The main() of a suite that runs once per backend: picks the backend
 *  (or skips), runs @s (CK_VERBOSITY applies) and frees it.
 *  @return the process's exit status. */
static inline int test_run_suite(Suite *s)
{
  SRunner *sr = srunner_create(s);
  if (test_select_backend() != 0) {
    srunner_free(sr); /* and the suite with it: valgrind counts it */
    return 77;
  }
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
