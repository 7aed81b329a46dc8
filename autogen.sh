#!/bin/sh
# SPDX-License-Identifier: MIT
# Generates ./configure from configure.ac. Needs autoconf, automake, libtool
# and pkg-config (Debian: apt-get install autoconf automake libtool pkg-config).
set -e
cd "$(dirname "$0")"
autoreconf --force --install --verbose
