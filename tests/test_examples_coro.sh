#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/echo-server-coro, the coroutine twin of echo-server, through
# every check of tests/test_examples.sh (one process, pre-forked workers,
# half-closed clients under load, TLS). Run from the build directory
# (make check).
ECHO=./examples/echo-server-coro exec "${SHELL:-/bin/sh}" "${srcdir:-.}/tests/test_examples.sh"
