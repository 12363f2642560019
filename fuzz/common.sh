# Sourced by run_smoke.sh and run_long.sh: configures and builds the fuzzers
# with clang, and runs one target with the project's libFuzzer settings.
#
# Environment:
#   LMCORE_FUZZ_BUILD_DIR   build directory (default <repo>/build-fuzz)
#   LMCORE_FUZZ_SOURCE_DIR  source tree to configure (default <repo>)
#   LMCORE_FUZZ_JOBS        parallel compile jobs (default 2)
#   LMCORE_FUZZ_FINDINGS    where crashing inputs go (default <repo>/fuzz/findings)
fuzz_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_build=${LMCORE_FUZZ_BUILD_DIR:-$fuzz_repo/build-fuzz}
fuzz_source=${LMCORE_FUZZ_SOURCE_DIR:-$fuzz_repo}
fuzz_findings=${LMCORE_FUZZ_FINDINGS:-$fuzz_repo/fuzz/findings}
mapfile -t fuzz_targets < <(grep -v '^#' "$fuzz_repo/fuzz/targets.txt" | grep .)

fuzz_build_all() {
  if ! command -v clang >/dev/null; then
    echo "fuzz: clang is missing (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    return 1
  fi
  CC=clang cmake -S "$fuzz_source" -B "$fuzz_build" -DLMCORE_FUZZ=ON -DLMCORE_CUDA=OFF \
    -DLMCORE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >"$fuzz_build.configure.log" 2>&1 ||
    { cat "$fuzz_build.configure.log" >&2; return 1; }
  rm -f "$fuzz_build.configure.log"
  cmake --build "$fuzz_build" --target lmcore_fuzz -j"${LMCORE_FUZZ_JOBS:-2}"
  for t in "${fuzz_targets[@]}"; do
    if [ ! -x "$fuzz_build/bin/$t" ]; then
      echo "fuzz: $t was not built (is its plugin missing? see the CMake warnings)" >&2
      return 1
    fi
  done
}

# fuzz_run TARGET CORPUS_DIR LOG [libFuzzer flags...]: runs one target with
# its seeds, its dictionary and the project's limits; new inputs go to
# CORPUS_DIR, crashing ones to $fuzz_findings/TARGET-*.  Returns libFuzzer's
# status (0: nothing found).
fuzz_run() {
  local target=$1 corpus=$2 log=$3
  shift 3
  mkdir -p "$corpus" "$fuzz_findings"
  local dict=()
  [ -f "$fuzz_repo/fuzz/dict/$target.dict" ] && dict=(-dict="$fuzz_repo/fuzz/dict/$target.dict")
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    "$fuzz_build/bin/$target" "${dict[@]}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$fuzz_findings/$target-" "$@" \
    "$corpus" "$fuzz_repo/fuzz/corpus/$target" >"$log" 2>&1
}

# Executions reported by a finished run's log: the final stats, else (fork
# mode, or a run stopped by a crash) the last "#N" progress line.
fuzz_execs() {
  awk '/stat::number_of_executed_units/ {s = $2}
       /^#[0-9]+/ {p = substr($1, 2); sub(/:$/, "", p)}
       END {print (s != "" ? s : p + 0)}' "$1"
}
