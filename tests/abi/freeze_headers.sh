#!/usr/bin/env bash
# Freezes the public headers of the plugin ABI the sources speak now as
# tests/abi/include-MAJOR.MINOR/lmcore/, for the compatibility tests: a
# plugin built against them must keep loading with every later core of the
# same major (tests/abi/test_abi_compat.c).
#
#   tests/abi/freeze_headers.sh [--check | --refresh] MAJOR.MINOR
#
#   (no option)  writes include-MAJOR.MINOR; refuses when it exists (a frozen
#                copy is never edited once the version is released)
#   --refresh    rewrites it: only while MAJOR.MINOR is still the version
#                under development, i.e. not yet released
#   --check      compares it with include/lmcore and lists the differences
#                (exit 1 if any)
#
# MAJOR.MINOR must be the version include/lmcore/plugin.h declares
# (LM_ABI_MAJOR, LM_ABI_MINOR): headers of one version cannot be frozen
# under the name of another.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=write
case ${1:-} in
  --check) mode=check; shift ;;
  --refresh) mode=refresh; shift ;;
esac
[ $# -eq 1 ] && [[ $1 =~ ^[0-9]+\.[0-9]+$ ]] || {
  echo "usage: tests/abi/freeze_headers.sh [--check | --refresh] MAJOR.MINOR" >&2
  exit 2
}
version=$1
src="$root/include/lmcore"
major=$(sed -n 's/^#define LM_ABI_MAJOR \([0-9]*\).*/\1/p' "$src/plugin.h")
minor=$(sed -n 's/^#define LM_ABI_MINOR \([0-9]*\).*/\1/p' "$src/plugin.h")
dest="$here/include-$version"
if [ "$mode" = check ]; then
  [ -d "$dest/lmcore" ] || { echo "freeze_headers: no $dest/lmcore" >&2; exit 1; }
  diff -r "$dest/lmcore" "$src" && echo "include-$version matches include/lmcore"
  exit
fi
if [ "$major.$minor" != "$version" ]; then
  echo "freeze_headers: include/lmcore/plugin.h declares ABI $major.$minor, not $version:" \
       "freeze the headers of a version while the sources speak it" >&2
  exit 1
fi
if [ -e "$dest/lmcore" ] && [ "$mode" != refresh ]; then
  echo "freeze_headers: $dest exists; a released version's headers never change" \
       "(use --refresh while $version is still being developed)" >&2
  exit 1
fi
rm -rf "$dest/lmcore"
mkdir -p "$dest/lmcore"
cp "$src"/*.h "$dest/lmcore/"
echo "froze $(ls "$dest/lmcore" | wc -l) headers of ABI $version in ${dest#"$root"/}/lmcore"
