#!/usr/bin/env bash
# Extracts every fenced code block of the given Markdown files and runs it, so
# that the documentation cannot rot (docs/writing-plugins.md, "Documentation
# examples").  The blocks of one document run in order in one workspace, so a
# tutorial's steps build on each other.
#
# usage: tests/docs/run_doc_examples.sh --prefix PREFIX [--work DIR] DOC.md...
#   PREFIX  an installed lmcore (cmake --install build --prefix PREFIX): its
#           bin/ goes first on PATH, and pkg-config / find_package see it.
#   DIR     where the workspaces go (default: a fresh temporary folder).
#
# What each block's info string means:
#   sh, bash   run with bash -euo pipefail in the workspace; on failure the
#              last commands of its trace (set -x, kept in a side file) are shown
#   lua        saved as doc_example_<line>.lua and run with `lmcore run`
#   c          compiled against the installed headers with -Wall -Werror:
#              with LM_PLUGIN_DEFINE it is built as a plugin and must load
#              (`lmcore --plugin-path it.so plugins` lists it, refuses nothing);
#              with main() it is linked and run; otherwise compiled only
#              (<lmcore/lmcore.h> is included first, so fragments compile)
#   json       must parse (lmcore's own JSON parser, through lm.json_decode)
#   text, console, output
#              not code (layouts, printed output): not run
#   anything else, or no info string: an error (say what the block is)
#
# An HTML comment on the line(s) just before a block adjusts it:
#   <!-- doctest: file=PATH -->    write the block to PATH in the workspace
#                                   instead of running it (a later block uses it)
#   <!-- doctest: expect-fail -->  the block must exit non-zero (error examples)
#   <!-- doctest: needs=WHAT -->   run only where WHAT exists, else report SKIP
#                                   with the reason: gpu (nvidia-smi works),
#                                   wikitext-train (the full WikiText-2 in
#                                   data/wikitext-2-raw), transformers (python3
#                                   with transformers), clang, network,
#                                   slow (minutes of training: only with
#                                   LMCORE_DOC_SLOW=1), manual (never: a
#                                   command that builds or runs the tests)
#   <!-- doctest: args=k=v ... -->  key=value arguments for a lua block
#
# The workspace ("repo") holds symlinks to the source tree's top-level entries
# (scripts/, tests/, docs/, examples/ ...; not build folders or runs/), and
# ../shared points to the source tree's ../shared, so examples are written as
# if run from a checkout: `lmcore run scripts/gpt2_clm.lua
# data=../shared/data/wikitext-2-raw ...`.  Outputs stay in the workspace.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
prefix=""
work=""
docs=()
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_doc_examples: unknown option $1" >&2; exit 2 ;;
    *) docs+=("$1"); shift ;;
  esac
done
if [ -z "$prefix" ] || [ ! -x "$prefix/bin/lmcore" ]; then
  echo "run_doc_examples: --prefix must name an installed lmcore (no $prefix/bin/lmcore)" >&2
  exit 2
fi
[ ${#docs[@]} -gt 0 ] || { echo "run_doc_examples: no documents given" >&2; exit 2; }
# A document that runs the test suite would run this script again, forever.
if [ -n "${LMCORE_IN_DOC_EXAMPLES:-}" ]; then
  echo "run_doc_examples: called from a documentation example (a block runs the tests?): refusing to recurse" >&2
  exit 2
fi
export LMCORE_IN_DOC_EXAMPLES=1
prefix=$(cd "$prefix" && pwd)
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/lmcore-docs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

pc=$(find "$prefix" -name lmcore.pc -path '*pkgconfig*' | head -1)
if [ -z "$pc" ]; then
  echo "run_doc_examples: $prefix has no pkgconfig/lmcore.pc (is it an lmcore install?)" >&2
  exit 2
fi
export PATH="$prefix/bin:$PATH"
export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CMAKE_PREFIX_PATH="$prefix${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
unset LMCORE_PLUGIN_PATH
cc=${CC:-cc}
# Under sanitizers liblmcore needs the same runtime in whatever links it:
# the runner's own c blocks get these flags, and sh blocks see them as
# CFLAGS/LDFLAGS (which CMake and the docs' cc commands use).
read -r -a extra_cflags <<<"${LMCORE_DOC_CFLAGS:-}"
if [ -n "${LMCORE_DOC_CFLAGS:-}" ]; then
  export CFLAGS="${CFLAGS:+$CFLAGS }$LMCORE_DOC_CFLAGS" LDFLAGS="${LDFLAGS:+$LDFLAGS }$LMCORE_DOC_CFLAGS"
fi

have() {
  case $1 in
    gpu) command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 ;;
    wikitext-train) [ -f "$source_dir/data/wikitext-2-raw/wiki.train.raw" ] ;;
    transformers) python3 -c 'import transformers' >/dev/null 2>&1 ;;
    clang) command -v clang >/dev/null ;;
    network) [ "${LMCORE_DOC_NETWORK:-0}" = 1 ] ;;
    slow) [ "${LMCORE_DOC_SLOW:-0}" = 1 ] ;;
    manual) return 1 ;;
    *) return 2 ;;
  esac
}

# Splits DOC into block files under DIR and prints one manifest line per
# block: index <TAB> line <TAB> info <TAB> directives.
extract() {
  awk -v dir="$2" '
    function flush_directive(line,   d) {
      d = line
      sub(/^[ \t]*<!--[ \t]*doctest:[ \t]*/, "", d)
      sub(/[ \t]*-->[ \t]*$/, "", d)
      pending = pending (pending == "" ? "" : " ") d
    }
    !in_block && /^[ \t]*<!--[ \t]*doctest:/ { flush_directive($0); next }
    !in_block && /^```/ {
      info = substr($0, 4); gsub(/^[ \t]+|[ \t]+$/, "", info)
      n++; in_block = 1; start = NR
      file = sprintf("%s/block_%03d", dir, n)
      printf "" > file
      printf "%d\t%d\t%s\t%s\n", n, NR, info, pending
      pending = ""
      next
    }
    in_block && /^```[ \t]*$/ { in_block = 0; close(file); next }
    in_block { print > file; next }
    /^[ \t]*$/ { next }
    { pending = "" }
    END { if (in_block) printf "%d\t%d\tUNTERMINATED\t\n", n, start }
  ' "$1"
}

directive() { # directive NAME DIRECTIVES -> value of NAME=..., or "set" for a bare flag
  local name=$1 d
  # args= takes the rest of the line (several key=value pairs)
  if [ "$name" = args ]; then
    [[ $2 == *args=* ]] && echo "${2#*args=}"
    return
  fi
  for d in $2; do
    case $d in
      "$name") echo set; return ;;
      "$name"=*) echo "${d#*=}"; return ;;
    esac
  done
}

pass=0 fail=0 skip=0
for doc in "${docs[@]}"; do
  [ -f "$doc" ] || { echo "FAIL $doc: no such document"; fail=$((fail + 1)); continue; }
  name=$(basename "$doc" .md)
  ws="$work/$name"
  rm -rf "$ws"
  mkdir -p "$ws/blocks" "$ws/repo"
  ln -s "$(cd "$source_dir/.." && pwd)/shared" "$ws/shared" 2>/dev/null || true
  for entry in "$source_dir"/*; do
    base=$(basename "$entry")
    case $base in build*|runs|data) continue ;; esac
    ln -s "$entry" "$ws/repo/$base"
  done
  [ -d "$source_dir/data" ] && ln -s "$source_dir/data" "$ws/repo/data"
  manifest=$(extract "$doc" "$ws/blocks")
  while IFS=$'\t' read -r index line info directives; do
    [ -n "$index" ] || continue
    where="$doc:$line"
    block="$ws/blocks/$(printf 'block_%03d' "$index")"
    lang=${info%% *}
    needs=$(directive needs "$directives")
    if [ -n "$needs" ]; then
      have "$needs"
      case $? in
        0) ;;
        2) echo "FAIL $where: unknown needs=$needs"; fail=$((fail + 1)); continue ;;
        *) echo "SKIP $where $lang (needs $needs, not here)"; skip=$((skip + 1)); continue ;;
      esac
    fi
    target=$(directive file "$directives")
    if [ -n "$target" ]; then
      mkdir -p "$ws/repo/$(dirname "$target")"
      cp "$block" "$ws/repo/$target"
      echo "FILE $where -> $target"
      pass=$((pass + 1))
      continue
    fi
    expect_fail=$(directive expect-fail "$directives")
    log="$block.log"
    start=$(date +%s)
    case $lang in
      text|console|output) continue ;;
      sh|bash)
        # The trace (set -x) goes to a file of its own, not to the block's
        # stderr, so a failing `test` that prints nothing still shows where
        # the block stopped.
        # Under ASan, Open MPI's own allocations are reported as leaks when
        # its processes exit (not lmcore's): as in tests/distributed, leak
        # detection is off for a block that launches mpirun.
        asan_options=${ASAN_OPTIONS:-}
        if grep -q mpirun "$block"; then asan_options="${asan_options:+$asan_options:}detect_leaks=0"; fi
        (cd "$ws/repo" && ASAN_OPTIONS="$asan_options" timeout 600 bash -euo pipefail -c \
          'exec 9>"$1"; BASH_XTRACEFD=9; doc_block=$2; set --; set -x; . "$doc_block"' \
          doc-example "$block.trace" "$block") >"$log" 2>&1 ;;
      lua)
        cp "$block" "$ws/repo/doc_example_$line.lua"
        # shellcheck disable=SC2046
        (cd "$ws/repo" && timeout 600 lmcore run "doc_example_$line.lua" $(directive args "$directives")) >"$log" 2>&1 ;;
      json)
        # lmcore's own parser; the file's path reaches the script as an argument
        echo 'local f = assert(io.open(args.file)); lm.json_decode(f:read("a")); f:close()' >"$ws/blocks/check_json.lua"
        lmcore run "$ws/blocks/check_json.lua" file="$block" >"$log" 2>&1 ;;
      c)
        { echo '#include <lmcore/lmcore.h>'; echo "#line 1 \"$where\""; cat "$block"; } >"$block.c"
        # shellcheck disable=SC2046
        flags=(-std=c11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unused-function "${extra_cflags[@]}"
               $(pkg-config --cflags lmcore))
        # shellcheck disable=SC2046
        libs=($(pkg-config --libs lmcore))
        if grep -q 'LM_PLUGIN_DEFINE' "$block"; then
          $cc "${flags[@]}" -fPIC -shared "$block.c" -o "$block.so" "${libs[@]}" >"$log" 2>&1 &&
            lmcore --plugin-path "$block.so" plugins >>"$log" 2>&1 &&
            grep -q "($block.so)" "$log" && ! grep -q '^refused:' "$log"
        elif grep -Eq '(^|[^a-z_])main[ \t]*\(' "$block"; then
          $cc "${flags[@]}" "$block.c" -o "$block.exe" "${libs[@]}" -Wl,-rpath,"$(pkg-config --variable=libdir lmcore)" \
            >"$log" 2>&1 &&
            (cd "$ws/repo" && timeout 600 "$block.exe") >>"$log" 2>&1
        else
          $cc "${flags[@]}" -c "$block.c" -o "$block.o" >"$log" 2>&1
        fi ;;
      UNTERMINATED)
        echo "FAIL $where: a code block is not closed"; fail=$((fail + 1)); continue ;;
      "")
        echo "FAIL $where: a code block without an info string (use sh, lua, c, json, or text for non-code)"
        fail=$((fail + 1)); continue ;;
      *)
        echo "FAIL $where: unknown block kind '$lang' (sh, bash, lua, c, json, text, console, output)"
        fail=$((fail + 1)); continue ;;
    esac
    rc=$?
    seconds=$(($(date +%s) - start))
    if { [ -z "$expect_fail" ] && [ $rc -eq 0 ]; } || { [ -n "$expect_fail" ] && [ $rc -ne 0 ] && [ $rc -lt 124 ]; }; then
      echo "PASS $where $lang (${seconds} s)"
      pass=$((pass + 1))
    else
      if [ -n "$expect_fail" ]; then
        echo "FAIL $where $lang: expected a failure, got exit status $rc"
      else
        echo "FAIL $where $lang: exit status $rc"
      fi
      sed 's/^/    | /' "$log" | tail -n 40
      if [ -s "$block.trace" ]; then
        echo "    last commands run:"
        sed 's/^/    | /' "$block.trace" | tail -n 8
      fi
      fail=$((fail + 1))
    fi
  done <<<"$manifest"
done
echo "doc examples: $pass passed, $fail failed, $skip skipped (prerequisite missing here)"
[ $fail -eq 0 ]
