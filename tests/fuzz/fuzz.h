/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz.h - what every fuzz target shares: the entry point both
 * drivers call (libFuzzer's, and tests/fuzz/replay.c), and the oracle's
 * check, which aborts so that libFuzzer saves the input and the replay
 * fails.
 */
#ifndef EDDY_TESTS_FUZZ_H
#define EDDY_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: broken: %s\n", __FILE__, __LINE__, #cond);       \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif
