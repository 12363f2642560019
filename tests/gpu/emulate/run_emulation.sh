#!/usr/bin/env bash
# The hand-written CUDA kernels emulated on the CPU against their CPU twins
# (README.md says what this checks and what it cannot).  The same program
# is the CTest test `emulate_cuda_kernels` (label emulate) of every build
# without CUDA.
#
#   tests/gpu/emulate/run_emulation.sh BUILD_DIR [SUITE...]
#
# BUILD_DIR: a configured CPU build of this tree (-DLMCORE_CUDA=OFF); SUITE:
# emulator, layernorm, residual_layernorm, pointwise, step, optimizers, decode,
# fused_attention, fused_attention_bf16, crossentropy, bf16_loss, gelu_bf16, embedding,
# layernorm_bf16 (all when none is named).  Needs g++ and perl; no GPU, no CUDA toolkit.
set -euo pipefail
BUILD=${1:?usage: $0 BUILD_DIR [SUITE...] (a configured CPU build of this tree)}
shift
cmake --build "$BUILD" --target emulate_cuda_kernels -j2
"$BUILD/bin/emulate_cuda_kernels" "$@"
