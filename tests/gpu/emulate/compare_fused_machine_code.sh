#!/usr/bin/env bash
# Whether the float instantiation of the fused classifier kernel
# (kernels/cuda/crossentropy_forward_backward.cu, a template on the stored
# type since issue #16 item 4) compiles to the machine code of the fp32
# kernel it replaced (frozen_crossentropy_fused_fp32.cu, the frozen copy the
# emulator also checks): the same bytes of .text for each architecture, so
# that the fp32 results on a GPU are the former kernel's bits, FMAs and
# library exps included, which the emulation alone cannot show.
#
#   tests/gpu/emulate/compare_fused_machine_code.sh [ARCH...]   (default: 80 90)
#
# Needs nvcc (no GPU) and readelf; prints one line per architecture; exit
# status 1 when any differs.  A different nvcc may compile both to other
# bytes: only their equality matters.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$root/tests/gpu/emulate/machine_code_lib.sh"
status=0
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(80 90)
for arch in "${archs[@]}"; do
    for a in $arch; do
        "$nvcc" "${cuda_flags[@]}" -arch=sm_$a -cubin -o "$work/frozen.cubin" "$root/tests/gpu/emulate/frozen_crossentropy_fused_fp32.cu"
        "$nvcc" "${cuda_flags[@]}" -arch=sm_$a -cubin -o "$work/template.cubin" "$root/kernels/cuda/crossentropy_forward_backward.cu"
        kernel_text "$work/frozen.cubin" '[A-Za-z0-9_]*lm_frozen_crossentropy_forward_backward_kernel[A-Za-z0-9_]*' "$work/frozen.text"
        kernel_text "$work/template.cubin" '[A-Za-z0-9_]*lm_crossentropy_forward_backward_kernelIfE[A-Za-z0-9_]*' "$work/float.text"
        if cmp -s "$work/frozen.text" "$work/float.text"; then
            echo "sm_$a: the float instantiation's machine code is the frozen fp32 kernel's ($(stat -c %s "$work/float.text") bytes of .text and its relocations)"
        else
            echo "sm_$a: the float instantiation's machine code DIFFERS from the frozen fp32 kernel's"
            status=1
        fi
    done
done
exit $status
