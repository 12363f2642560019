#!/usr/bin/env bash
# Checks scripts/fetch_wikitext2.sh offline: a zip built here from the local
# validation and test files (same layout as the official archive) is
# installed when its checksum is given, refused otherwise, and every source
# form (file, folder, file:// URL) and extraction tool (unzip, python3) works.
#
#   test_fetch_wikitext2.sh <fetch_wikitext2.sh> <folder with wiki.valid.raw and wiki.test.raw>
# Exit 77 (skipped) when the data or a zip tool is not available.
set -uo pipefail

script="$1"
data="$2"
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

for f in wiki.valid.raw wiki.test.raw; do
    [ -f "$data/$f" ] || { echo "SKIP: $data/$f not found"; exit 77; }
done

tmp="$(mktemp -d /tmp/lm_test_fetch_XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# Build wikitext-2-raw-v1.zip with members wikitext-2-raw/wiki.{valid,test}.raw.
mkdir -p "$tmp/src/wikitext-2-raw" "$tmp/zipdir"
cp "$data/wiki.valid.raw" "$data/wiki.test.raw" "$tmp/src/wikitext-2-raw/"
zip="$tmp/zipdir/wikitext-2-raw-v1.zip"
if command -v zip >/dev/null 2>&1; then
    (cd "$tmp/src" && zip -q -r "$zip" wikitext-2-raw)
elif command -v python3 >/dev/null 2>&1; then
    (cd "$tmp/src" && python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for f in ("wiki.valid.raw", "wiki.test.raw"):
        z.write("wikitext-2-raw/" + f)' "$zip")
else
    echo "SKIP: neither zip nor python3 available to build the test archive"
    exit 77
fi
sha="$(sha256sum "$zip" | cut -d' ' -f1)"

installed_ok() { # dest
    for f in wiki.valid.raw wiki.test.raw; do
        cmp -s "$data/$f" "$1/$f" || { fail "$1/$f differs from $data/$f"; return; }
    done
    [ ! -e "$1/wiki.train.raw" ] || fail "$1/wiki.train.raw appeared from nowhere"
    local leftovers=("$(dirname "$1")"/.fetch_wikitext2.*)
    [ ! -e "${leftovers[0]}" ] || fail "temporary folder left: ${leftovers[0]}"
}

# 1. A local zip with its checksum: installed, byte for byte.
out="$tmp/out1/wikitext-2-raw"
if bash "$script" "$zip" --sha256 "$sha" --dest "$out" >"$tmp/log1" 2>&1; then
    installed_ok "$out"
else
    fail "install from a zip file failed: $(cat "$tmp/log1")"
fi

# 2. Again, from the folder holding the zip, over the existing destination
#    (upper-case checksum accepted).
echo "stale" >"$out/wiki.valid.raw"
if bash "$script" "$tmp/zipdir" --sha256 "$(echo "$sha" | tr a-f A-F)" --dest "$out" >"$tmp/log2" 2>&1; then
    installed_ok "$out"
else
    fail "install from a folder failed: $(cat "$tmp/log2")"
fi

# 3. A file:// URL goes through the download path (curl or wget).
if command -v curl >/dev/null 2>&1; then
    out="$tmp/out3/wikitext-2-raw"
    if bash "$script" "file://$zip" --sha256 "$sha" --dest "$out" >"$tmp/log3" 2>&1; then
        installed_ok "$out"
    else
        fail "install from a file:// URL failed: $(cat "$tmp/log3")"
    fi
fi

# 4. A wrong checksum (and the default one, for this unofficial zip): non-zero
#    exit, a clear message, and nothing created.
for wrong in "--sha256 $(printf '0%.0s' {1..64})" ""; do
    out="$tmp/out4/wikitext-2-raw"
    # shellcheck disable=SC2086
    if bash "$script" "$zip" $wrong --dest "$out" >"$tmp/log4" 2>&1; then
        fail "a wrong checksum was accepted ($wrong)"
    fi
    grep -q "checksum mismatch" "$tmp/log4" || fail "no 'checksum mismatch' message: $(cat "$tmp/log4")"
    grep -q "$sha" "$tmp/log4" || fail "the message does not show the actual checksum"
    [ ! -e "$out" ] || fail "destination $out exists after a checksum failure"
    [ ! -e "$tmp/out4" ] || fail "$tmp/out4 was left behind after a checksum failure"
done

# 5. Bad arguments.
bash "$script" "$zip" --sha256 xyz --dest "$tmp/out5" >"$tmp/log5" 2>&1 && fail "a malformed --sha256 was accepted"
grep -q "64 hexadecimal" "$tmp/log5" || fail "no message for a malformed --sha256: $(cat "$tmp/log5")"
bash "$script" "$tmp/nothing-here.zip" --sha256 "$sha" --dest "$tmp/out5" >"$tmp/log5" 2>&1 &&
    fail "a missing source was accepted"
[ ! -e "$tmp/out5" ] || fail "$tmp/out5 created for a missing source"

# 6. Extraction tools: python3 when unzip is absent, and a clear message when
#    neither is there.  PATH is narrowed to a folder of links to the basics.
mkbin() { # folder tool...
    local bin="$1"
    shift
    mkdir -p "$bin"
    for t in bash sha256sum mktemp dirname mkdir rm rmdir mv cut tr sed cat "$@"; do
        local p
        p="$(command -v "$t")" || continue
        # pyenv and similar put shell shims on PATH: link the interpreter itself.
        [ "$t" != python3 ] || p="$(python3 -c 'import sys; print(sys.executable)')"
        ln -sf "$p" "$bin/$t"
    done
}
if command -v python3 >/dev/null 2>&1; then
    mkbin "$tmp/bin-python" python3
    out="$tmp/out6/wikitext-2-raw"
    if PATH="$tmp/bin-python" "$tmp/bin-python/bash" "$script" "$zip" --sha256 "$sha" --dest "$out" >"$tmp/log6" 2>&1; then
        installed_ok "$out"
    else
        fail "extraction with python3 (no unzip) failed: $(cat "$tmp/log6")"
    fi
fi
mkbin "$tmp/bin-bare"
out="$tmp/out7/wikitext-2-raw"
PATH="$tmp/bin-bare" "$tmp/bin-bare/bash" "$script" "$zip" --sha256 "$sha" --dest "$out" >"$tmp/log7" 2>&1 &&
    fail "succeeded without any extraction tool"
grep -q "neither unzip nor python3" "$tmp/log7" || fail "missing-tool message not shown: $(cat "$tmp/log7")"
[ ! -e "$out" ] || fail "destination created without an extraction tool"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "fetch_wikitext2.sh: all checks passed"
