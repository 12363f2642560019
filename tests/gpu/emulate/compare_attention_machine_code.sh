#!/usr/bin/env bash
# Whether the float instantiations of the fused attention's kernels
# (kernels/cuda/attention_fused_{forward,backward}.cu and attention_fused.cuh,
# templates on the stored type of q/k/v/out since the bf16 slice of issue
# #16 item 3) compile to the machine code of the fp32 kernels they replaced,
# taken from git revision REV (default 63648e9, the last commit before the
# templates): the same bytes of .text (and relocations) per kernel and head
# instance, for each architecture, so that the fp32 results on a GPU are the
# former kernels' bits, which the emulation alone cannot show.
#
#   tests/gpu/emulate/compare_attention_machine_code.sh [REV [ARCH...]]   (default: 63648e9 80 90)
#
# Needs git, nvcc (no GPU) and readelf; prints one line per kernel and
# architecture; exit status 1 when any differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
rev=${1:-63648e9}
shift || true
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(80 90)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/before"
for f in attention_fused.cuh attention_fused_forward.cu attention_fused_backward.cu; do
    git -C "$root" show "$rev:kernels/cuda/$f" > "$work/before/$f"
done
. "$root/tests/gpu/emulate/machine_code_lib.sh"
# Compares the two kernels' bytes: one line, and status 1 when they differ.
status=0
verdict() {
    local arch=$1 what=$2
    if cmp -s "$work/b.text" "$work/a.text"; then
        echo "sm_$arch: $what is the fp32 kernel's machine code ($(stat -c %s "$work/a.text") bytes)"
    else
        echo "sm_$arch: $what DIFFERS from the fp32 kernel of $rev"
        status=1
    fi
}
for arch in "${archs[@]}"; do
    for unit in forward backward; do
        # the former file is compiled beside its own header (the -I of the
        # current tree comes after the file's own folder)
        "$nvcc" "${cuda_flags[@]}" -arch=sm_$arch -cubin -o "$work/before_$unit.cubin" \
            "$work/before/attention_fused_$unit.cu"
        "$nvcc" "${cuda_flags[@]}" -arch=sm_$arch -cubin -o "$work/after_$unit.cubin" \
            "$root/kernels/cuda/attention_fused_$unit.cu"
    done
    # kernel name, head instance: before (untemplated on the type), after (<DPT, float>)
    for kernel in forward:lm_attention_fused_forward_kernel dkdv:lm_attention_fused_dkdv_kernel \
                  dq:lm_attention_fused_dq_kernel; do
        unit=${kernel%%:*}
        name=${kernel#*:}
        [ "$unit" = forward ] || unit=backward
        for dpt in 2 4 8; do
            kernel_text "$work/before_$unit.cubin" "_Z[0-9]+${name}ILi${dpt}EEv[A-Za-z0-9_]*" "$work/b.text"
            kernel_text "$work/after_$unit.cubin" "_Z[0-9]+${name}ILi${dpt}EfEv[A-Za-z0-9_]*" "$work/a.text"
            verdict "$arch" "$name<$dpt, float>"
        done
    done
    kernel_text "$work/before_backward.cubin" "_Z[0-9]+lm_attention_fused_dot_kernelPfPKfS1_iiiim" "$work/b.text"
    kernel_text "$work/after_backward.cubin" "_Z[0-9]+lm_attention_fused_dot_kernelIfEvPfPKfPKT_iiiim" "$work/a.text"
    verdict "$arch" "lm_attention_fused_dot_kernel<float>"
done
exit $status
