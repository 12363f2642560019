#!/usr/bin/env bash
# Packs what the GPU machine needs from a CUDA build folder into a small kit
# that travels with the device run (tests/gpu/run.sh unpacks and runs it).
#
#   tests/gpu/bundle_libs.sh BUILD_DIR [KIT_DIR]
#
# BUILD_DIR: a build configured with -DLMCORE_CUDA=ON and built (at least
# the gpu-labelled tests; the lmcore CLI and plugins are taken if present).
# KIT_DIR (default <repo>/.gpu-kit) receives:
#   bin/      the gpu-labelled test executables and the lmcore CLI
#   lib/      the build's lib/ tree without static archives: liblmcore.so*
#             (found through $ORIGIN/../lib) and lib/lmcore/plugins/*.so
#   sys-libs/ shared libraries of this machine that the GPU machine lacks
#             (OpenBLAS, gfortran, quadmath, gomp, subunit ...): everything
#             ldd resolves except glibc, libstdc++/libgcc_s and CUDA/driver
#             libraries, which the GPU machine has
#   ctest/    the build's CTestTestfile.cmake tree (paths rewritten at run time)
#   KIT_INFO  the original build and source paths, the source commit
# The build folder is brought up to date first.
# and KIT_DIR.tar.gz next to it (OpenBLAS compresses ~3.5x): carry that.
#
# The GPU machine has the NVIDIA driver and the CUDA 13 runtime/cuBLAS but not
# this machine's OpenBLAS/Check/Lua .so files; cudart is linked statically.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [KIT_DIR]" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
KIT=${2:-$REPO/.gpu-kit}
LIMIT_MB=60

[ -f "$BUILD/CMakeCache.txt" ] || { echo "error: $BUILD is not a CMake build folder" >&2; exit 1; }
SOURCE=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")

# Brought up to date first (nothing to do when it is): a kit older than the
# sources would test old code on the GPU and could report a pass.
if ! build_log=$(cmake --build "$BUILD" -j"$(nproc)" 2>&1); then
    echo "$build_log" | tail -n 40 >&2
    echo "error: building $BUILD failed (above); no kit made" >&2
    exit 1
fi
COMMIT=$(git -C "$SOURCE" describe --always --dirty 2>/dev/null || echo unknown)

# The gpu-labelled tests, from CTest itself.
mapfile -t GPU_TESTS < <(cd "$BUILD" && ctest -N -L gpu 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: *//p')
if [ ${#GPU_TESTS[@]} -eq 0 ]; then
    echo "error: no gpu-labelled test in $BUILD (configured with -DLMCORE_CUDA=ON?)" >&2
    exit 1
fi

rm -rf "$KIT"
mkdir -p "$KIT/bin" "$KIT/lib" "$KIT/sys-libs" "$KIT/ctest"
missing=0
for t in "${GPU_TESTS[@]}"; do
    if [ -x "$BUILD/bin/$t" ]; then
        cp "$BUILD/bin/$t" "$KIT/bin/"
    elif grep -qF "add_test([=[$t]=] \"$BUILD/bin/lmcore\"" "$BUILD"/tests/gpu/CTestTestfile.cmake 2>/dev/null; then
        : # a Lua check run by the lmcore CLI (copied below), not an executable of its own
    else
        echo "warning: gpu test '$t' is not built ($BUILD/bin/$t missing): build it first" >&2
        missing=1
    fi
done
[ -x "$BUILD/bin/lmcore" ] && cp "$BUILD/bin/lmcore" "$KIT/bin/"
# lib/: shared objects and their symlinks, same layout (plugins included).
(cd "$BUILD/lib" && find . \( -type f -o -type l \) \( -name '*.so' -o -name '*.so.*' \) -print0 |
    while IFS= read -r -d '' f; do
        mkdir -p "$KIT/lib/$(dirname "$f")"
        cp -P "$f" "$KIT/lib/$f"
    done)

# CTest files, same relative layout.
(cd "$BUILD" && find . -name CTestTestfile.cmake -print0 | while IFS= read -r -d '' f; do
    mkdir -p "$KIT/ctest/$(dirname "$f")"
    cp "$f" "$KIT/ctest/$f"
done)
printf 'BUILD_DIR=%s\nSOURCE_DIR=%s\nSOURCE_COMMIT=%s\nCREATED=%s on %s\n' "$BUILD" "$SOURCE" "$COMMIT" \
    "$(date -u +%FT%TZ)" "$(hostname)" > "$KIT/KIT_INFO"

# Shared libraries to carry: whatever ldd resolves, minus the base system
# (glibc, libstdc++, libgcc_s), the CUDA/driver libraries, NCCL and the kit's own.
is_system_lib() {
    case "$1" in
        linux-vdso.so*|ld-linux*|libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libresolv.so*|libutil.so*) return 0 ;;
        libstdc++.so*|libgcc_s.so*) return 0 ;;
        libcuda.so*|libcudart.so*|libcublas.so*|libcublasLt.so*|libnvidia*|libnvrtc*|libnvJitLink*) return 0 ;;
        # NCCL is 208 MiB, over a device run's budget by itself: run.sh links
        # the GPU machine's own (its PyTorch wheels ship libnccl.so.2).
        libnccl.so*) return 0 ;;
        liblmcore.so*) return 0 ;;
    esac
    return 1
}
declare -A seen=()
while IFS= read -r -d '' elf; do
    while read -r name arrow path _; do
        [ "$arrow" = "=>" ] || continue
        is_system_lib "$name" && continue
        [ -n "${seen[$name]:-}" ] && continue
        if [ "$path" = "not" ]; then
            echo "warning: $elf needs $name, which this machine does not have either" >&2
            continue
        fi
        seen[$name]=1
        cp -L "$path" "$KIT/sys-libs/$name"
    done < <(ldd "$elf" 2>/dev/null)
done < <(find "$KIT/bin" "$KIT/lib" -type f -print0)

TAR="$KIT.tar.gz"
tar -C "$(dirname "$KIT")" -czf "$TAR" "$(basename "$KIT")"
echo "kit: $KIT"
echo "  tests: ${GPU_TESTS[*]}"
echo "  carried libraries: $(cd "$KIT/sys-libs" && ls | tr '\n' ' ')"
echo "  size: $(du -sh "$KIT" | cut -f1) unpacked, $(du -sh "$TAR" | cut -f1) as $TAR"
size_mb=$(( $(stat -c %s "$TAR") / 1048576 ))
if [ "$size_mb" -gt "$LIMIT_MB" ]; then
    echo "error: $TAR is ${size_mb} MiB, over the ${LIMIT_MB} MiB budget of a device run" >&2
    exit 1
fi

# The kit must travel although git ignores it: exclude it locally and name it
# in the device call's carry list.
EXCLUDE="$REPO/.git/info/exclude"
if [ -d "$REPO/.git" ]; then
    mkdir -p "$REPO/.git/info"
    for pattern in "/$(basename "$KIT")/" "/$(basename "$TAR")"; do
        grep -qxF "$pattern" "$EXCLUDE" 2>/dev/null || { echo "$pattern" >> "$EXCLUDE"; echo "  added $pattern to $EXCLUDE"; }
    done
fi
echo "device run: carry [\"$(basename "$TAR")\"], command: tests/gpu/run.sh \$OUT"
exit $missing
