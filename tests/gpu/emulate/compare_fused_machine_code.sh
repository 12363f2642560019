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
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-O3 -I"$root/kernels/cuda" -I"$root/kernels" -I"$root/include" --expt-relaxed-constexpr)
# The .text section of the kernel whose mangled name matches $2, as bytes.
kernel_text() {
    local cubin=$1 pattern=$2 out=$3 line off size
    line=$(readelf -W -S "$cubin" 2>/dev/null | grep -E " \.text\.[A-Za-z0-9_]*$pattern" | grep PROGBITS | head -1)
    [ -n "$line" ] || { echo "no kernel matching $pattern in $cubin" >&2; exit 1; }
    read -r off size < <(echo "$line" | awk '{for (i = 1; i <= NF; i++) if ($i == "PROGBITS") print $(i + 2), $(i + 3)}')
    dd if="$cubin" of="$out" bs=1 skip=$((16#$off)) count=$((16#$size)) status=none
    # and its relocations (sm_90 has some): offsets and types, not the
    # symbols' names (the frozen kernel's are prefixed)
    readelf -W -r "$cubin" 2>/dev/null | awk -v p="$pattern" '
        /^Relocation section/ { on = ($0 ~ ("rela?\\.text\\.[A-Za-z0-9_]*" p)) ; next }
        on && NF >= 3 && $1 ~ /^[0-9a-f]+$/ { print $1, $3 }' >> "$out"
}
status=0
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(80 90)
for arch in "${archs[@]}"; do
    for a in $arch; do
        "$nvcc" "${flags[@]}" -arch=sm_$a -cubin -o "$work/frozen.cubin" "$root/tests/gpu/emulate/frozen_crossentropy_fused_fp32.cu"
        "$nvcc" "${flags[@]}" -arch=sm_$a -cubin -o "$work/template.cubin" "$root/kernels/cuda/crossentropy_forward_backward.cu"
        kernel_text "$work/frozen.cubin" lm_frozen_crossentropy_forward_backward_kernel "$work/frozen.text"
        kernel_text "$work/template.cubin" 'lm_crossentropy_forward_backward_kernelIfE' "$work/float.text"
        if cmp -s "$work/frozen.text" "$work/float.text"; then
            echo "sm_$a: the float instantiation's machine code is the frozen fp32 kernel's ($(stat -c %s "$work/float.text") bytes of .text and its relocations)"
        else
            echo "sm_$a: the float instantiation's machine code DIFFERS from the frozen fp32 kernel's"
            status=1
        fi
    done
done
exit $status
