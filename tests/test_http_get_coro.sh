#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/http-get-coro, the coroutine twin of http-get, through every
# check of tests/test_http_get.sh: same command line, output and exit
# statuses. Run from the build directory (make check).
HTTP_GET=./examples/http-get-coro exec "${SHELL:-/bin/sh}" "${srcdir:-.}/tests/test_http_get.sh"
