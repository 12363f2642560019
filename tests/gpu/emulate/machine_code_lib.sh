# Sourced by the compare_*_machine_code.sh scripts: what they share to
# compare a kernel's machine code between two compilations (nvcc, no GPU).
#
#   nvcc, cuda_flags   the compiler and the kernels' flags (include folders
#                      of the tree at $root, which the script sets first)
#   kernel_text CUBIN NAME_ERE OUT
#                      writes to OUT the bytes of the .text section of the
#                      kernel whose whole mangled name matches NAME_ERE (an
#                      extended regular expression), then its relocations'
#                      offsets and types (not the symbols' names, which may
#                      differ between the two compilations); exits 1 when
#                      no kernel matches.
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
cuda_flags=(-O3 -I"$root/kernels/cuda" -I"$root/kernels" -I"$root/include" --expt-relaxed-constexpr)

kernel_text() {
    local cubin=$1 name=$2 out=$3 line off size
    line=$(readelf -W -S "$cubin" 2>/dev/null | grep -E " \.text\.($name) " | grep PROGBITS | head -1)
    [ -n "$line" ] || { echo "no kernel matching $name in $cubin" >&2; exit 1; }
    read -r off size < <(echo "$line" | awk '{for (i = 1; i <= NF; i++) if ($i == "PROGBITS") print $(i + 2), $(i + 3)}')
    dd if="$cubin" of="$out" bs=1 skip=$((16#$off)) count=$((16#$size)) status=none
    readelf -W -r "$cubin" 2>/dev/null | awk -v p="$name" '
        /^Relocation section/ { on = ($0 ~ ("rela?\\.text\\.(" p ")'"'"'")) ; next }
        on && NF >= 3 && $1 ~ /^[0-9a-f]+$/ { print $1, $3 }' >> "$out"
}
