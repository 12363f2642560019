#!/usr/bin/env bash
# Fetches WikiText-2 (raw, v1) for the 'wikitext' dataset plugin.
#
#   scripts/fetch_wikitext2.sh [URL|ZIPFILE|DIR] [--sha256 HEX] [--dest DIR]
#
# SOURCE is a URL (downloaded with curl or wget), a local copy of
# wikitext-2-raw-v1.zip, or a folder holding one.  Default: the official URL.
# The zip's SHA-256 is checked BEFORE anything is extracted (default: the
# official archive's); the files are extracted into a temporary folder next
# to the destination and renamed into place, so an interrupted run never
# leaves half-written files.  DEST defaults to data/wikitext-2-raw/ in the
# repository; pass it to the dataset as path=DEST.
#
# Needs: curl or wget (URLs only), sha256sum or shasum or python3, and unzip
# or python3.  Nothing is installed.
set -euo pipefail

DEFAULT_URL="https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip"
DEFAULT_SHA256="ef7edb566e3e2b2d31b29c1fdb0c89a4cc683597484c3dc2517919c615435a11"
ZIP_NAME="wikitext-2-raw-v1.zip"
MEMBER_DIR="wikitext-2-raw"
EXPECTED_FILES="wiki.train.raw wiki.valid.raw wiki.test.raw"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source_arg=""
want_sha256="$DEFAULT_SHA256"
dest="$repo_root/data/wikitext-2-raw"

die() {
    echo "fetch_wikitext2: error: $*" >&2
    exit 1
}

usage() {
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
    --sha256)
        [ $# -ge 2 ] || die "--sha256 needs a value (64 hexadecimal digits)"
        want_sha256="$2"
        shift 2
        ;;
    --sha256=*) want_sha256="${1#--sha256=}"; shift ;;
    --dest)
        [ $# -ge 2 ] || die "--dest needs a folder"
        dest="$2"
        shift 2
        ;;
    --dest=*) dest="${1#--dest=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *)
        [ -z "$source_arg" ] || die "more than one source given: '$source_arg' and '$1'"
        source_arg="$1"
        shift
        ;;
    esac
done
[ -n "$source_arg" ] || source_arg="$DEFAULT_URL"
want_sha256="$(printf '%s' "$want_sha256" | tr 'A-F' 'a-f')"
[[ "$want_sha256" =~ ^[0-9a-f]{64}$ ]] || die "--sha256 must be 64 hexadecimal digits, got '$want_sha256'"
[ -n "$dest" ] || die "--dest is empty"
dest="${dest%/}"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
    else
        die "cannot compute a SHA-256: none of sha256sum (coreutils), shasum (perl) or python3 is installed"
    fi
}

extract_zip() { # zip folder
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$1" -d "$2"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
    else
        die "cannot extract '$1': neither unzip nor python3 is installed (on Debian: apt-get install unzip)"
    fi
}

# The work folder sits next to the destination so that the final renames stay
# on one file system (and are therefore atomic).
dest_parent="$(dirname "$dest")"
created_parent=""
work=""
cleanup() {
    [ -z "$work" ] || rm -rf "$work"
    # A failed run leaves no trace: not even the folder it created.
    [ -z "$created_parent" ] || [ -e "$dest" ] || rmdir "$dest_parent" 2>/dev/null || true
}
trap cleanup EXIT
if [ ! -d "$dest_parent" ]; then
    mkdir -p "$dest_parent" || die "cannot create '$dest_parent'"
    created_parent=1
fi
work="$(mktemp -d "$dest_parent/.fetch_wikitext2.XXXXXX")" || die "cannot create a temporary folder in '$dest_parent'"

# 1. Get the zip.
if [[ "$source_arg" =~ ^[a-zA-Z][a-zA-Z0-9+.-]*:// ]]; then
    zip="$work/$ZIP_NAME"
    echo "fetch_wikitext2: downloading $source_arg"
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 3 --connect-timeout 30 -o "$zip" "$source_arg" ||
            die "download of '$source_arg' failed (no network? download $ZIP_NAME elsewhere and pass its path)"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$zip" "$source_arg" ||
            die "download of '$source_arg' failed (no network? download $ZIP_NAME elsewhere and pass its path)"
    else
        die "cannot download '$source_arg': neither curl nor wget is installed (on Debian: apt-get install curl), or download $ZIP_NAME elsewhere and pass its path"
    fi
elif [ -d "$source_arg" ]; then
    zip="$source_arg/$ZIP_NAME"
    [ -f "$zip" ] || die "folder '$source_arg' holds no $ZIP_NAME"
elif [ -f "$source_arg" ]; then
    zip="$source_arg"
else
    die "'$source_arg' is neither a URL, nor a file, nor a folder"
fi

# 2. Check it before extracting anything.
got_sha256="$(sha256_of "$zip")"
if [ "$got_sha256" != "$want_sha256" ]; then
    die "checksum mismatch for '$zip':
  expected sha256 $want_sha256
  got      sha256 $got_sha256
The file is corrupt, incomplete or not the WikiText-2 raw v1 archive; nothing was extracted."
fi
echo "fetch_wikitext2: sha256 OK ($got_sha256)"

# 3. Extract into the work folder and check the layout.
extract_zip "$zip" "$work/extracted" || die "cannot extract '$zip'"
src="$work/extracted/$MEMBER_DIR"
[ -d "$src" ] || die "'$zip' has no $MEMBER_DIR/ folder: not the WikiText-2 raw archive"
found=""
for f in $EXPECTED_FILES; do
    if [ -f "$src/$f" ]; then
        found="$found $f"
    else
        echo "fetch_wikitext2: warning: the archive has no $MEMBER_DIR/$f" >&2
    fi
done
[ -n "$found" ] || die "'$zip' holds none of: $EXPECTED_FILES"

# 4. Move into place: one rename of the whole folder when the destination is
# new, else one rename per file (each replaced atomically).
if [ ! -e "$dest" ]; then
    mv "$src" "$dest" || die "cannot move the files to '$dest'"
else
    [ -d "$dest" ] || die "'$dest' exists and is not a folder"
    for f in $found; do
        mv -f "$src/$f" "$dest/$f" || die "cannot move $f to '$dest'"
    done
fi
echo "fetch_wikitext2: installed${found} in $dest"
echo "fetch_wikitext2: use it with the 'wikitext' dataset: path=$dest"
