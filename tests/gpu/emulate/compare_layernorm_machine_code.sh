#!/usr/bin/env bash
# Whether the fp32 LayerNorm kernels still compile to the machine code they
# had at a git revision: since layernorm_row.cuh stores a row through an
# output type (lm_ln_out, for the bf16-output ops of
# NOTES_bf16_storage.md, point 10), the fp32 kernels call it with
# lm_ln_out<float>, which must give the bytes the plain `float *` gave, so
# that the fp32 ops keep their bits on a GPU, FMAs included (what the
# emulator cannot show).
#
#   tests/gpu/emulate/compare_layernorm_machine_code.sh REV [ARCH...]   (default: 80 90)
#
# REV: the revision before the change (e.g. the merge base).  Compiles
# layernorm.cu and residual_layernorm.cu (with their layernorm_row.cuh) of
# REV and of the working tree with nvcc (no GPU), and compares, per kernel
# of the fp32 ops, the .text section's bytes and its relocations (offsets
# and types), and the kernel's PTX (its .entry to the closing brace).  Then,
# in the working tree, that each bf16-output instantiation (bf16 only; fp32
# and bf16) does the fp32 kernel's float arithmetic: the same sequence of
# .f32 arithmetic instructions in its PTX (add, sub, mul, fma, div, rcp,
# sqrt with their rounding modes), so that the value it rounds is the one
# the fp32 kernel stores.  Prints one line per check and architecture; exit
# status 1 when any differs.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 REV [ARCH...]" >&2
    exit 2
fi
rev=$1
shift
root=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/old" "$work/new"
for f in layernorm.cu layernorm_row.cuh residual_layernorm.cu; do
    git -C "$root" show "$rev:kernels/cuda/$f" > "$work/old/$f"
    cp "$root/kernels/cuda/$f" "$work/new/$f"
done
# A .cu's own folder comes first for its quoted includes: old/ and new/
# each see their own layernorm_row.cuh, the rest from kernels/cuda.
. "$root/tests/gpu/emulate/machine_code_lib.sh"
flags=("${cuda_flags[@]}" -std=c++17)
kernels=(
    "layernorm _Z27lm_layernorm_forward_kernel"
    "layernorm _Z34lm_layernorm_backward_input_kernel"
    "layernorm _Z34lm_layernorm_backward_fused_kernel"
    "residual_layernorm _Z36lm_residual_layernorm_forward_kernel"
)
# The kernel's PTX: from its .entry line to the first line that is "}".
kernel_ptx() {
    awk -v p="$2" '$0 ~ ("\\.entry " p) { on = 1 } on { print } on && /^}/ { exit }' "$1" > "$3"
    [ -s "$3" ] || { echo "no .entry $2 in $1" >&2; exit 1; }
}
# The kernel's fp32 arithmetic instructions, in order.
kernel_arithmetic() {
    grep -oE '\b(add|sub|mul|fma|div|rcp|sqrt)(\.[a-z]+)*\.f32' "$1" > "$2"
}
# "file fp32-kernel bf16-instantiation..." (mangled name prefixes).
instantiations=(
    "layernorm _Z27lm_layernorm_forward_kernel _Z32lm_layernorm_forward_bf16_kernelI9lm_ln_outItEE _Z32lm_layernorm_forward_bf16_kernelI19lm_ln_out_fp32_bf16E"
    "residual_layernorm _Z36lm_residual_layernorm_forward_kernel _Z41lm_residual_layernorm_forward_bf16_kernelI9lm_ln_outItEE _Z41lm_residual_layernorm_forward_bf16_kernelI19lm_ln_out_fp32_bf16E"
)
status=0
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(80 90)
for arch in "${archs[@]}"; do
    for side in old new; do
        for src in layernorm residual_layernorm; do
            "$nvcc" "${flags[@]}" -arch=sm_$arch -cubin -o "$work/$side/$src.cubin" "$work/$side/$src.cu"
            "$nvcc" "${flags[@]}" -arch=sm_$arch -ptx -o "$work/$side/$src.ptx" "$work/$side/$src.cu"
        done
    done
    for entry in "${kernels[@]}"; do
        read -r src name <<< "$entry"
        for side in old new; do
            kernel_text "$work/$side/$src.cubin" "$name[A-Za-z0-9_]*" "$work/$side/$name.text"
            kernel_ptx "$work/$side/$src.ptx" "$name" "$work/$side/$name.ptx"
        done
        if cmp -s "$work/old/$name.text" "$work/new/$name.text" && cmp -s "$work/old/$name.ptx" "$work/new/$name.ptx"; then
            echo "sm_$arch $name: the same machine code as at $rev ($(stat -c %s "$work/new/$name.text") bytes of .text and relocations; $(wc -l < "$work/new/$name.ptx") lines of PTX)"
        else
            echo "sm_$arch $name: DIFFERS from $rev (.text $(cmp -s "$work/old/$name.text" "$work/new/$name.text" && echo same || echo differs), PTX $(cmp -s "$work/old/$name.ptx" "$work/new/$name.ptx" && echo same || echo differs))"
            status=1
        fi
    done
    for entry in "${instantiations[@]}"; do
        read -r src fp32 rest <<< "$entry"
        kernel_arithmetic "$work/new/$fp32.ptx" "$work/fp32.arith"
        for bf16 in $rest; do
            kernel_ptx "$work/new/$src.ptx" "$bf16" "$work/bf16.ptx"
            kernel_arithmetic "$work/bf16.ptx" "$work/bf16.arith"
            if cmp -s "$work/fp32.arith" "$work/bf16.arith"; then
                echo "sm_$arch $bf16: the fp32 kernel's arithmetic ($(wc -l < "$work/fp32.arith") .f32 instructions in the same order)"
            else
                echo "sm_$arch $bf16: its .f32 arithmetic DIFFERS from $fp32's"
                status=1
            fi
        done
    done
done
exit $status
