#!/usr/bin/env bash
# The SDK as a plugin author meets it (issue: plugin SDK and install layout).
#   sdk_check.sh STAGE BUILD_DIR SOURCE_DIR
# STAGE:
#   install      cmake --install into <build>/sdk-test/staging, then move the
#                prefix elsewhere (it must be relocatable) and check that the
#                moved lmcore finds its plugins and scripts, and that
#                pkg-config and find_package see it
#   cmake        builds examples/dataset_csv with find_package(lmcore) and
#                runs its tests (loads, reads RFC 4180 quoting, bad files)
#   pkgconfig    builds the same plugin with its Makefile (pkg-config) and
#                trains a small GPT-2 on CSV files through it, by a script
#                and through the shipped gpt2_clm pipeline
#   new-plugin   scaffolds one plugin of every kind, builds each against the
#                install; each loads, and its test names the entries to write
#   docs         runs every code example of docs/*.md and README.md
# Environment: LMCORE_SDK_CFLAGS (extra C flags for what is built against the
# install: the sanitizer flags when the install is sanitized).
set -euo pipefail
stage=$1 build=$(cd "$2" && pwd) src=$(cd "$3" && pwd)
work="$build/sdk-test"
prefix="$work/prefix" # the relocated install every later stage uses
cflags=${LMCORE_SDK_CFLAGS:-}
unset LMCORE_PLUGIN_PATH
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig" CMAKE_PREFIX_PATH="$prefix"
lmcore="$prefix/bin/lmcore"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect PATTERN FILE: FILE must contain the extended regex
  grep -Eq -- "$1" "$2" || { echo "--- $2:" >&2; cat "$2" >&2; fail "expected /$1/ in $2"; }
}

case $stage in
install)
  rm -rf "$work"
  mkdir -p "$work"
  cmake --install "$build" --prefix "$work/staging" >"$work/install.log"
  mv "$work/staging" "$prefix"
  for f in bin/lmcore lib/liblmcore.so include/lmcore/lmcore.h include/lmcore/plugin.h lib/pkgconfig/lmcore.pc \
           lib/cmake/lmcore/lmcoreConfig.cmake lib/cmake/lmcore/lmcoreConfigVersion.cmake \
           lib/lmcore/plugins/lm_arch_gpt2.so share/lmcore/scripts/gpt2_clm.lua share/lmcore/scripts/lib/pipeline.lua; do
    [ -e "$prefix/$f" ] || fail "the install lacks $f"
  done
  # The moved lmcore finds its plugins (18, and the mpi and nccl
  # communicators where MPI and NCCL were found) and nothing of the build tree.
  shipped=$(find "$prefix/lib/lmcore/plugins" -maxdepth 1 -name 'lm_*.so' | wc -l)
  [ "$shipped" -ge 18 ] || fail "the install holds $shipped plugins, expected at least 18"
  (cd / && "$lmcore" plugins) >"$work/plugins.txt" 2>&1
  [ "$(grep -c "($prefix/lib/lmcore/plugins/" "$work/plugins.txt")" -eq "$shipped" ] || { cat "$work/plugins.txt"; fail "expected $shipped plugins from $prefix"; }
  ! grep -q "($build/lib/" "$work/plugins.txt" || fail "the installed lmcore loaded plugins from the build tree"
  ! grep -q "^refused" "$work/plugins.txt" || fail "the installed lmcore refused a plugin"
  # Shipped scripts by name, from anywhere.
  (cd / && "$lmcore" run hello name=installed) >"$work/hello.txt" 2>&1
  expect "hello from lmcore .*, installed" "$work/hello.txt"
  [ "$(pkg-config --modversion lmcore)" = "$("$lmcore" --version | awk '{print $2}')" ] || fail "pkg-config version"
  [ "$(pkg-config --variable=abi lmcore)" = "$("$lmcore" --version | sed 's/.*ABI \([0-9.]*\).*/\1/')" ] || fail "pkg-config abi"
  [ -d "$(pkg-config --variable=plugindir lmcore)" ] || fail "pkg-config plugindir"
  echo "install: relocatable prefix OK ($prefix)"
  ;;
cmake)
  rm -rf "$work/csv-cmake"
  cmake -S "$src/examples/dataset_csv" -B "$work/csv-cmake" -DCMAKE_C_FLAGS="$cflags" >"$work/csv-cmake.log" 2>&1 ||
    { cat "$work/csv-cmake.log"; fail "configuring examples/dataset_csv with find_package(lmcore)"; }
  cmake --build "$work/csv-cmake" >>"$work/csv-cmake.log" 2>&1 || { cat "$work/csv-cmake.log"; fail "building"; }
  ctest --test-dir "$work/csv-cmake" --output-on-failure
  ;;
pkgconfig)
  rm -rf "$work/csv-make" "$work/csv-data"
  cp -r "$src/examples/dataset_csv" "$work/csv-make"
  rm -f "$work/csv-make/lm_dataset_csv.so"
  make -C "$work/csv-make" CFLAGS="-O2 $cflags" >"$work/csv-make.log" 2>&1 || { cat "$work/csv-make.log"; fail "make with pkg-config"; }
  # CSV files made from WikiText-2 (test split to train, validation to evaluate).
  raw="$src/../shared/data/wikitext-2-raw"
  [ -f "$raw/wiki.test.raw" ] || fail "no $raw/wiki.test.raw (the shared WikiText-2 files)"
  mkdir -p "$work/csv-data"
  to_csv() { awk -v limit="$2" 'BEGIN {print "id,text"} NR <= limit && length($0) > 1 {gsub(/"/, "\"\""); printf "%d,\"%s\"\n", NR, $0}' "$1"; }
  to_csv "$raw/wiki.test.raw" 1500 >"$work/csv-data/train.csv"
  to_csv "$raw/wiki.valid.raw" 400 >"$work/csv-data/valid.csv"
  cd "$work/csv-data"
  "$lmcore" --plugin-path "$work/csv-make/lm_dataset_csv.so" run "$work/csv-make/train_on_csv.lua" \
    train=train.csv validation=valid.csv steps=20 >script.log 2>&1 || { cat script.log; fail "train_on_csv.lua"; }
  expect "csv training: validation loss [0-9.]+ -> [0-9.]+" script.log
  "$lmcore" --plugin-path "$work/csv-make" run gpt2_clm preset=tiny max_steps=5 dataset=csv \
    dataset.train=train.csv dataset.validation=valid.csv dataset.column=text output_dir=run cache_dir=cache \
    >pipeline.log 2>&1 || { cat pipeline.log; fail "gpt2_clm with dataset=csv"; }
  expect "data: csv \(training on 'train', evaluating on 'validation'\)" pipeline.log
  [ -s run/model.safetensors ] || fail "gpt2_clm with dataset=csv saved no model"
  # A typo in a plugin setting names the known ones.
  ! "$lmcore" --plugin-path "$work/csv-make" run gpt2_clm preset=tiny dataset=csv dataset.train=train.csv \
    dataset.colum=text output_dir=run2 >typo.log 2>&1 || fail "a typo in dataset.colum was accepted"
  expect "unknown key 'colum' for dataset 'csv' \(known: .*column" typo.log
  echo "pkgconfig: built with pkg-config, trained through the plugin"
  ;;
new-plugin)
  rm -rf "$work/scaffold"
  mkdir -p "$work/scaffold"
  declare -A entries=(
    [tokenizer]="train, info, encode, decode, fingerprint, save"
    [dataset]="split_count, split_name, open_split, row \(after open_split\)"
    [architecture]="info, parameters, init_weights, set_training, forward, backward, logits, hf_config"
    [objective]="bind, make_batch"
    [logger]="log"
    [optimizer]="bind, step, state_count, state_at, settings_json")
  for kind in tokenizer dataset architecture objective logger optimizer; do
    dir="$work/scaffold/my_$kind"
    "$lmcore" new-plugin "$kind" "my_$kind" "$dir" >"$dir.new.log"
    expect "^wrote $dir/" "$dir.new.log"
    cmake -S "$dir" -B "$dir/build" -DCMAKE_C_FLAGS="$cflags" >"$dir.log" 2>&1 || { cat "$dir.log"; fail "configuring the $kind skeleton"; }
    cmake --build "$dir/build" >>"$dir.log" 2>&1 || { cat "$dir.log"; fail "building the $kind skeleton"; }
    ctest --test-dir "$dir/build" -R "my_${kind}_loads" --output-on-failure >>"$dir.log" 2>&1 || { cat "$dir.log"; fail "the $kind skeleton does not load"; }
    # Its Check test fails, naming exactly the entries still to write.
    ! ctest --test-dir "$dir/build" -R "test_my_$kind" --output-on-failure >"$dir.test.log" 2>&1 || fail "the $kind skeleton's test passed with every entry unwritten"
    expect "$kind plugin 'my_$kind': entries that still need code: ${entries[$kind]}\$" "$dir.test.log"
    echo "new-plugin: $kind skeleton builds, loads, and lists: ${entries[$kind]//\\/}"
  done
  # Used from a script, an unwritten entry stops it with its name.
  printf 'local t <close> = lm.tokenizer("my_tokenizer")\nt:encode("hello")\n' >"$work/scaffold/use.lua"
  ! "$lmcore" --plugin-path "$work/scaffold/my_tokenizer/build" run "$work/scaffold/use.lua" >"$work/scaffold/use.log" 2>&1 ||
    fail "an unwritten entry did not stop the script"
  expect "tokenizer plugin 'my_tokenizer': encode\(\) still needs code \(.*my_tokenizer.c\)" "$work/scaffold/use.log"
  ;;
docs)
  LMCORE_DOC_CFLAGS="$cflags" bash "$src/tests/docs/run_doc_examples.sh" --prefix "$prefix" --work "$work/docs" \
    "$src"/docs/*.md "$src"/README.md
  ;;
*)
  fail "unknown stage '$stage' (install, cmake, pkgconfig, new-plugin, docs)"
  ;;
esac
