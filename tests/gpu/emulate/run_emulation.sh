#!/usr/bin/env bash
# The fused attention's CUDA kernels emulated on the CPU against the CPU twin
# (emulate_fused_attention.cpp says what this checks and what it cannot).
#
#   tests/gpu/emulate/run_emulation.sh [BUILD_DIR]
#
# BUILD_DIR: a CPU build of this tree (default ../build-<branch> beside the
# repository is not guessed: pass it), for liblmkernels.a.  Needs g++ and
# OpenBLAS's pkg-config file; no GPU, no CUDA toolkit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
BUILD=${1:?usage: $0 BUILD_DIR (a CPU build of this tree)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/cuda_common.cuh" "$REPO/kernels/cuda/attention_fused.cuh" "$WORK/"
# The kernels without their host side (CUDA launch syntax, runtime calls),
# and `extern __shared__` turned into the emulator's per-block buffer.
for part in forward backward; do
    sed -e '/---- host side/,$d' -e 's/extern __shared__ float smem\[\];/float *smem = emu_dynamic_smem;/' \
        "$REPO/kernels/cuda/attention_fused_$part.cu" > "$WORK/attention_fused_$part.inc"
done
g++ -std=c++17 -O2 -Wall -Wextra -Wno-unused-parameter -Wno-unused-function -Wno-unknown-pragmas -pthread \
    -include "$HERE/emu_cuda.h" -I"$WORK" -I"$REPO/kernels" -I"$REPO/include" \
    "$HERE/emulate_fused_attention.cpp" -o "$WORK/emulate_fused_attention" \
    "$BUILD/lib/liblmkernels.a" $(pkg-config --libs openblas) -fopenmp -lm
"$WORK/emulate_fused_attention"
