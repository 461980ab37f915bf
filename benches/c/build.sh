#!/usr/bin/env sh
# Builds the C yardsticks with the system C compiler into target/c/ (or
# $CARGO_TARGET_DIR/c/). Nothing in the Rust build or `cargo test` needs them.
#
#   benches/c/build.sh && target/c/epoll_echo 127.0.0.1 0
set -eu
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
OUT=${CARGO_TARGET_DIR:-target}/c
command -v "$CC" >/dev/null 2>&1 || { echo "build.sh: no C compiler ($CC) found" >&2; exit 1; }
mkdir -p "$OUT"
"$CC" -O2 -Wall -Wextra -o "$OUT/epoll_echo" benches/c/epoll_echo.c
echo "$OUT/epoll_echo"
