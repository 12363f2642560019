#!/usr/bin/env bash
# Configures, builds and runs lmcore's CPU test suites (GPU tests carry the
# CTest label `gpu` and run only through tests/gpu/run.sh on a GPU machine).
#   LMCORE_BUILD_DIR   build folder (default: build)
#   LMCORE_CMAKE_ARGS  extra CMake arguments
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LMCORE_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${LMCORE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" -LE gpu --output-on-failure -j"$(nproc)"
