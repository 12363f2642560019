#!/usr/bin/env bash
# The one prepared script for a lent GPU machine.
#
#   tests/gpu/run.sh OUTDIR [KIT]
#
# KIT: the folder or .tar.gz made here by tests/gpu/bundle_libs.sh (default
# <repo>/.gpu-kit, else <repo>/.gpu-kit.tar.gz).  The GPU machine has the
# NVIDIA driver and the CUDA 13 runtime/cuBLAS, not this machine's
# OpenBLAS/Check .so files: the kit carries those, and this script links
# only the ones missing there into a private library folder.
#
# The gpu tests (ctest -L gpu) are: test_cuda_kernels (CUDA ops against
# their CPU twins, the step kernels, staged uploads, a captured step),
# test_cuda_decode_ops, test_cuda_fusions (issue #16 item 6), test_cuda_classifier (the fused classifier against
# its CPU twin and the two-op path), test_cuda_fused_attention
# (attn_implementation=sdpa's kernels vs their CPU twin and the eager
# attention, a T=1024 profile line), test_optimizers_cuda (adamw, sgd, lion on the GPU),
# test_{gpt2,bert}_parity_cuda[_bf16], test_generate_cuda,
# test_{bf16_ops,bf16_logits,bf16_ffn_ops,bf16_ffn,bf16_attn_ops,bf16_ln_ops,vocab_padding}_cuda (bf16
# storage and the padded vocabulary: kernels/cuda/NOTES_bf16_storage.md),
# test_sysmetrics_gpu, test_gpu_step_reads: the host reads and waits of
# a training step counted through the trainer (zero without logging, fp32
# and bf16, with accumulation, as CUDA graphs and eagerly, GPT-2 and BERT;
# one per log()), and test_gpu_graph_parity: cuda_graph=auto trains GPT-2
# and BERT to the bits of cuda_graph=off, both replaying more parts than
# they capture (BERT's masked batches too: the summary lists the counts).
# graph-speed.txt: steps/s with and without graphs.
#
# Writes into OUTDIR: run.log (everything printed), nccl.txt (the nccl
# communicator at world size 1 against none), ctest.log (the test
# output), nvidia-smi.txt, summary.txt, and with .gpu-data/ (wiki.test.raw,
# wiki.valid.raw) carried: bench-results.txt (reference shape vs the HF
# Trainer), throughput-results.txt (block 1024 vs torch.compile, MFU, peak
# memory), curves.txt, hf-curves.txt (validation loss vs the HF Trainer),
# profile-MODEL-PRECISION[-fp32-storage].txt (each op's device time at the
# reference shape; -fp32-storage: bf16 GEMMs with fp32 logits and activations).
# Exit status: 0 when every gpu test passed.  Device call (lead), after
# bundle_libs.sh (each section can be turned off: LMCORE_PROFILE=0, LMCORE_BENCH=0,
# LMCORE_THROUGHPUT=0, LMCORE_CURVES=0, LMCORE_HF_CURVES=0):
#   run(command="tests/gpu/run.sh $OUT", carry=[".gpu-kit.tar.gz", ".gpu-data"], timeout_s=580)
# LMCORE_GPU_BUDGET (default 540) is the script's time in seconds: keep it
# under the call's timeout_s.  Sections run in order of what they decide:
# tests, op profiles, the reference shape against the Trainer, the throughput
# shape, then the curves.
# Add LMCORE_GPU_SANITIZE=memcheck (or racecheck) in front to rerun the
# kernel suite under compute-sanitizer after a failure.
set -uo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [KIT_DIR_OR_TARBALL]" >&2
    exit 2
fi
OUT=$1
KIT_ARG=${2:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The device call's limit is one number for the whole script: every section
# after the tests gets at most what is left of LMCORE_GPU_BUDGET seconds
# (default 540, for a 590 s call), and a section that would not fit is
# skipped with a line saying so, so the summary is always written.
RUN_START=$SECONDS
BUDGET=${LMCORE_GPU_BUDGET:-540}
time_left() { echo $((BUDGET - (SECONDS - RUN_START))); }
# fits NAME SECONDS: false (and says so) when fewer seconds than that are left.
fits() {
    local left
    left=$(time_left)
    if [ "$left" -lt "$2" ]; then
        echo "skipped: $1 needs about $2 s, $left s are left of the $BUDGET s budget"
        return 1
    fi
}
# cap SECONDS: that, or the time left if less.
cap() {
    local left
    left=$(time_left)
    if [ "$1" -lt "$left" ]; then echo "$1"; else echo "$((left > 1 ? left : 1))"; fi
}

section() { printf '\n===== %s [%d s] =====\n' "$*" $((SECONDS - RUN_START)); }

# Finds the kit (unpacking a tarball into /tmp) and prints its folder.
locate_kit() {
    local candidate=$KIT_ARG
    if [ -z "$candidate" ]; then
        if [ -d "$REPO/.gpu-kit/bin" ]; then candidate=$REPO/.gpu-kit; else candidate=$REPO/.gpu-kit.tar.gz; fi
    fi
    if [ -d "$candidate" ]; then
        (cd "$candidate" && pwd)
    elif [ -f "$candidate" ]; then
        rm -rf /tmp/lmcore-gpu-kit && mkdir -p /tmp/lmcore-gpu-kit &&
            tar -C /tmp/lmcore-gpu-kit -xzf "$candidate" &&
            (cd "/tmp/lmcore-gpu-kit/$(ls -A /tmp/lmcore-gpu-kit | head -1)" && pwd)
    else
        return 1
    fi
}

# Links into $1 every library the kit's programs cannot find: from the kit's
# sys-libs/ first, else from the usual CUDA places of this machine, else
# from the NVIDIA wheels of its Python (PyTorch's: libnccl.so.2, which the
# kit leaves out for its size).
resolve_libraries() {
    local libdir=$1 pass name found elf wheels
    mkdir -p "$libdir"
    wheels=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
    for pass in 1 2 3 4; do
        local missing
        missing=$(find "$KIT/bin" "$KIT/lib" -type f 2>/dev/null | while read -r elf; do
            LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$elf" 2>/dev/null |
                awk '/=> not found/ {print $1}'
        done | sort -u)
        [ -z "$missing" ] && return 0
        local linked=0
        for name in $missing; do
            found=""
            if [ -e "$KIT/sys-libs/$name" ]; then
                found=$KIT/sys-libs/$name
            else
                found=$(find /usr/local/cuda*/lib64 /usr/local/cuda*/lib /usr/local/cuda*/targets/*/lib \
                    /usr/lib/x86_64-linux-gnu /usr/local/lib /opt -name "$name" 2>/dev/null | head -1)
                if [ -z "$found" ] && [ -n "$wheels" ]; then
                    # shellcheck disable=SC2086 # a list of folders
                    found=$(find $wheels -path '*/nvidia/*' -name "$name" 2>/dev/null | head -1)
                fi
            fi
            if [ -n "$found" ] && [ ! -e "$libdir/$name" ]; then
                ln -s "$found" "$libdir/$name"
                echo "  linked $name -> $found"
                linked=1
            fi
        done
        if [ $linked -eq 0 ]; then
            echo "  STILL MISSING: $missing"
            return 1
        fi
    done
}

main() {
    section "machine"
    date -u
    uname -srm
    echo "cpus: $(nproc)"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi -q > "$OUT/nvidia-smi.txt" 2>&1
    else
        echo "nvidia-smi not found: is this the GPU machine?"
    fi
    command -v nvcc >/dev/null && nvcc --version | tail -2
    command -v ctest >/dev/null && ctest --version | head -1

    section "kit"
    if ! KIT=$(locate_kit); then
        echo "FATAL: no kit (run tests/gpu/bundle_libs.sh BUILD_DIR here, carry .gpu-kit.tar.gz)" |
            tee "$OUT/summary.txt"
        return 3
    fi
    echo "kit: $KIT"
    cat "$KIT/KIT_INFO"
    ls "$KIT/bin"
    local build_dir source_dir
    build_dir=$(sed -n 's/^BUILD_DIR=//p' "$KIT/KIT_INFO")
    source_dir=$(sed -n 's/^SOURCE_DIR=//p' "$KIT/KIT_INFO")

    section "libraries"
    local libdir=/tmp/lmcore-gpu-libs
    rm -rf "$libdir"
    resolve_libraries "$libdir" || echo "WARNING: some libraries are missing (see above): tests needing them fail"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    local t
    for t in "$KIT"/bin/*; do
        echo "--- ldd $(basename "$t")"
        ldd "$t" | grep -v -E 'linux-vdso|ld-linux' | sed 's/ (0x[0-9a-f]*)//'
    done

    section "paths baked into the binaries"
    # Test binaries carry the source/build paths of the machine that built
    # them (fixtures, plugin folder): make those paths lead here, as root.
    local pair from to
    for pair in "$build_dir=$KIT" "$source_dir=$REPO"; do
        from=${pair%%=*}
        to=${pair#*=}
        if [ -z "$from" ] || [ "$from" = "$to" ]; then continue; fi
        if [ -e "$from" ]; then
            echo "  $from exists here; left alone"
        elif mkdir -p "$(dirname "$from")" 2>/dev/null && ln -s "$to" "$from" 2>/dev/null; then
            echo "  $from -> $to"
        else
            echo "  could not link $from -> $to (tests reading fixtures by absolute path may fail)"
        fi
    done

    section "gpu tests (ctest -L gpu)"
    export LMCORE_REQUIRE_GPU=1 # no GPU here is a failure, not a skip
    local rc=0 ctest_dir=/tmp/lmcore-gpu-ctest
    rm -rf "$ctest_dir"
    cp -r "$KIT/ctest" "$ctest_dir"
    find "$ctest_dir" -name CTestTestfile.cmake -exec sed -i -e "s#$build_dir#$KIT#g" -e "s#$source_dir#$REPO#g" {} +
    if command -v ctest >/dev/null; then
        (cd "$ctest_dir" && timeout "$(cap 300)" ctest -L gpu --output-on-failure -V --timeout 300) 2>&1 |
            tee "$OUT/ctest.log"
        rc=${PIPESTATUS[0]}
    else
        echo "ctest not found: running the gpu test executables directly"
        for t in "$KIT"/bin/test_*; do
            echo "--- $(basename "$t")"
            (cd "$KIT" && "$t") 2>&1 | tee -a "$OUT/ctest.log"
            [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
        done
    fi
    echo "gpu tests exit status: $rc"

    # Opt-in: LMCORE_GPU_SANITIZE=memcheck|racecheck|synccheck|initcheck reruns
    # the kernel suite under compute-sanitizer (slower; for a failing run).
    if [ -n "${LMCORE_GPU_SANITIZE:-}" ] && fits sanitizer 120; then
        section "compute-sanitizer --tool $LMCORE_GPU_SANITIZE"
        local sanitizer
        sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
        if [ -n "$sanitizer" ]; then
            (cd "$KIT" && timeout "$(cap 200)" "$sanitizer" --tool "$LMCORE_GPU_SANITIZE" --error-exitcode 99 \
                "$KIT/bin/test_cuda_kernels") > "$OUT/sanitizer.log" 2>&1
            echo "compute-sanitizer exit status: $? (log: sanitizer.log)"
            grep -E '=========' "$OUT/sanitizer.log" | head -60
        else
            echo "compute-sanitizer not found"
        fi
    fi

    # The parity suites of GPT-2 and BERT on the CUDA backend run above as
    # gpu-labelled tests (test_*_parity_cuda), fp32 with the CPU tolerances.

    section "CUDA graphs against eager steps (GPT-2 4 x 128, batch 8 x 64; LMCORE_GRAPH_SPEED=0 skips)"
    # The same training replayed as captured graphs (cuda_graph=auto) and
    # eagerly (off): the same weights (the script checks), and steps/s.
    if [ "${LMCORE_GRAPH_SPEED:-1}" != 1 ]; then
        echo "skipped (LMCORE_GRAPH_SPEED=0)"
    elif fits graph_speed 30; then
        (cd "$REPO" && timeout "$(cap 60)" "$KIT/bin/lmcore" run bench/gpu/graph_speed.lua out=/tmp/lmcore-graph-speed \
            steps=300) > "$OUT/graph-speed.log" 2>&1
        echo "graph speed exit status: $?"
        grep -a -E '^RESULT|error|warning|cuda_graph' "$OUT/graph-speed.log" | tee "$OUT/graph-speed.txt"
    fi

    section "nccl communicator at world size 1 against no communicator"
    # The same training with communicator=nccl (one rank: MPI starts as a
    # singleton) must give the bits of the single-process path (an average
    # over one rank is the value), and cost under 3 % (docs/distributed.md).
    if [ ! -f "$REPO/.gpu-data/wiki.valid.raw" ] || [ "${LMCORE_NCCL:-1}" != 1 ]; then
        echo "skipped (no .gpu-data/wiki.valid.raw, or LMCORE_NCCL=0)"
    elif ! "$KIT/bin/lmcore" plugins --kind communicator 2>&1 | grep -q '^communicator  *nccl '; then
        echo "skipped: the kit has no nccl communicator (build with CUDA, MPI and NCCL found; see CMake's lines)"
    elif fits nccl 60; then
        local nccl_dir=/tmp/lmcore-nccl c
        rm -rf "$nccl_dir"
        for c in auto nccl; do
            (cd "$REPO" && timeout "$(cap 120)" "$KIT/bin/lmcore" run tests/distributed/dp_train.lua data=.gpu-data \
                out="$nccl_dir/$c" device=cuda communicator=$c) > "$nccl_dir-$c.log" 2>&1
            echo "communicator $c exit status: $?"
            tail -n 3 "$nccl_dir-$c.log"
        done
        if cmp "$nccl_dir/auto/hashes-rank0.txt" "$nccl_dir/nccl/hashes-rank0.txt"; then
            echo "nccl world size 1: PASS (the same weights after every step)" | tee -a "$OUT/nccl.txt"
        else
            echo "nccl world size 1: FAIL (weights differ from the single-process run)" | tee -a "$OUT/nccl.txt"
        fi
        for c in auto nccl auto nccl; do
            (cd "$REPO" && timeout "$(cap 60)" "$KIT/bin/lmcore" run bench/distributed/bench_distributed.lua \
                data=.gpu-data out="$nccl_dir/bench" device=cuda communicator=$c steps=200 2>/dev/null) |
                sed "s/^/communicator $c: /" | tee -a "$OUT/nccl.txt"
        done
    fi

    section "op profiles at the reference shape (where a step's time goes on this GPU)"
    # Each op timed with CUDA events (profile_ops=true): busy against elapsed
    # says whether the step waits on the host (launches, syncs) or on the
    # kernels, and the rows say which.  Profiled steps/s are a little lower.
    if [ -f "$REPO/.gpu-data/wiki.test.raw" ] && [ "${LMCORE_PROFILE:-1}" = 1 ]; then
        # MODEL:PRECISION[:STORAGE]; STORAGE fp32 keeps the logits and the
        # activations in fp32 (the bf16 GEMMs on fp32 storage, the path before
        # bf16 storage): gpt2:bf16 against gpt2:bf16:fp32 is what bf16 storage
        # buys, op by op (kernels/cuda/NOTES_bf16_storage.md).
        local spec model precision storage name
        for spec in ${LMCORE_PROFILE_RUNS:-gpt2:fp32 gpt2:bf16 gpt2:bf16:fp32 bert:bf16}; do
            IFS=: read -r model precision storage <<< "$spec"
            storage=${storage:-auto}
            name="$model-$precision"
            [ "$storage" = auto ] || name="$model-$precision-$storage-storage"
            fits "profile $spec" 40 || continue
            (cd "$REPO" && timeout "$(cap 90)" "$KIT/bin/lmcore" run bench/gpu/train_speed.lua model="$model" data=.gpu-data \
                precision="$precision" storage="$storage" steps=60 warmup=10 profile_ops=true) 2>&1 | grep -v '^\[' \
                > "$OUT/profile-$name.txt"
            echo "$spec exit status: ${PIPESTATUS[0]}"
            grep -E '^RESULT|op profile of' "$OUT/profile-$name.txt"
            grep -A 12 'op profile of' "$OUT/profile-$name.txt" | tail -n +2
        done
    else
        echo "skipped (no .gpu-data/wiki.test.raw, or LMCORE_PROFILE=0)"
    fi

    section "benchmarks: lmcore vs the Hugging Face Trainer on this GPU"
    # .gpu-data/ (ignored by git, carried by the lead) holds wiki.test.raw.
    if [ ! -f "$REPO/.gpu-data/wiki.test.raw" ] || [ "${LMCORE_BENCH:-1}" != 1 ]; then
        echo "skipped (no .gpu-data/wiki.test.raw, or LMCORE_BENCH=0)"
    elif fits benchmarks 90; then
        (cd "$REPO" && timeout "$(cap "${LMCORE_BENCH_TIMEOUT:-360}")" bench/gpu/bench_gpu.sh "$KIT/bin/lmcore" \
            .gpu-data "$OUT/bench.log" "${LMCORE_BENCH_MODELS:-gpt2}" "${LMCORE_BENCH_PRECISIONS:-fp32 bf16}") \
            > "$OUT/bench-results.txt" 2>&1
        echo "benchmark exit status: $?"
        cat "$OUT/bench-results.txt"
    fi

    section "throughput shape: GPT-2 124M, blocks of 1024, bf16, largest batch <= 64, against torch.compile"
    if [ ! -f "$REPO/.gpu-data/wiki.test.raw" ] || [ "${LMCORE_THROUGHPUT:-1}" != 1 ]; then
        echo "skipped (no .gpu-data/wiki.test.raw, or LMCORE_THROUGHPUT=0)"
    elif fits throughput 90; then
        (cd "$REPO" && timeout "$(cap "${LMCORE_THROUGHPUT_TIMEOUT:-180}")" bench/gpu/throughput.sh "$KIT/bin/lmcore" \
            .gpu-data "$OUT/throughput.log" "${LMCORE_PEAK_TFLOPS:-989.4}") > "$OUT/throughput-results.txt" 2>&1
        echo "throughput exit status: $?"
        cat "$OUT/throughput-results.txt"
    fi

    section "training curves on the GPU (compare with the CPU run of the same command)"
    if [ -f "$REPO/.gpu-data/wiki.test.raw" ] && [ "${LMCORE_CURVES:-1}" = 1 ] && fits curves 60; then
        for script in gpt2_clm bert_mlm; do
            fits "curve $script" 30 >> "$OUT/curves.txt" || continue
            (cd "$REPO" && timeout "$(cap 240)" "$KIT/bin/lmcore" --log-level warn run scripts/$script.lua preset=small \
                data=.gpu-data train_split=test max_steps="${LMCORE_CURVE_STEPS:-150}" eval_max_batches=50 \
                device=cuda output_dir=/tmp/lmcore-curves/$script cache_dir=/tmp/lmcore-curves/cache) \
                > /dev/null 2>> "$OUT/curves.txt"
            echo "$script exit status: $?" >> "$OUT/curves.txt"
            grep -o '"eval_loss": [0-9.]*\|"perplexity": [0-9.]*\|"device": "[^"]*"' \
                /tmp/lmcore-curves/$script/results.json 2>/dev/null | sed "s/^/$script /" >> "$OUT/curves.txt"
        done
        # Generation with the KV cache on the GPU, from the GPT-2 just saved.
        (cd "$REPO" && timeout "$(cap 60)" "$KIT/bin/lmcore" run scripts/generate.lua model=/tmp/lmcore-curves/gpt2_clm \
            prompt="The game began development in" max_new_tokens=200 temperature=0 stop_at_eos=false device=cuda) \
            >> "$OUT/curves.txt" 2>&1
        echo "generate exit status: $?" >> "$OUT/curves.txt"
        cat "$OUT/curves.txt"
    fi

    section "training curves against the Hugging Face Trainer (same tokenizer, blocks and recipe)"
    if [ ! -f "$REPO/.gpu-data/wiki.valid.raw" ] || [ "${LMCORE_HF_CURVES:-1}" != 1 ]; then
        echo "skipped (no .gpu-data/wiki.valid.raw, or LMCORE_HF_CURVES=0)"
    elif fits "HF curves" 60; then
        local model
        for model in gpt2 bert; do
            fits "HF curve $model" 50 >> "$OUT/hf-curves.txt" || continue
            (cd "$REPO" && timeout "$(cap 100)" bench/curves/compare_hf_trainer.sh "$KIT/bin/lmcore" .gpu-data "$model" \
                "${LMCORE_CURVE_STEPS:-150}" cuda) >> "$OUT/hf-curves.txt" 2>&1
            echo "$model exit status: $?" >> "$OUT/hf-curves.txt"
        done
        cat "$OUT/hf-curves.txt"
    fi

    section "summary"
    {
        echo "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
        echo "kit: $(sed -n 's/^CREATED=//p' "$KIT/KIT_INFO"), source $(sed -n 's/^SOURCE_COMMIT=//p' "$KIT/KIT_INFO")"
        grep -E '^[0-9]+% tests passed|tests failed|\(Failed\)|\(SEGFAULT\)|\(Timeout\)|Not Run' "$OUT/ctest.log" 2>/dev/null
        grep -E ' FAIL$|Assertion|FAILED|SKIPPED' "$OUT/ctest.log" 2>/dev/null | head -40
        grep -a -h -E 'op profile of' "$OUT"/profile-*.txt 2>/dev/null
        grep -a -h -E '^PROFILE attention' "$OUT/ctest.log" 2>/dev/null # test_cuda_fused_attention: eager vs fused
        # test_gpu_graph_parity and test_gpu_step_reads: graphs captured and replayed, GPT-2 and BERT
        grep -a -h -E 'on cuda: .* captured, .* replayed|graph launches' "$OUT/ctest.log" 2>/dev/null
        grep -a -h -E '^skipped: .*budget' "$OUT/run.log" "$OUT/curves.txt" "$OUT/hf-curves.txt" 2>/dev/null
        grep -a -E '^(RESULT|RATIO)' "$OUT/bench-results.txt" 2>/dev/null
        grep -a -E '^RESULT' "$OUT/graph-speed.txt" 2>/dev/null
        grep -a -E '_(clm|mlm) |tokens/s|exit status' "$OUT/curves.txt" 2>/dev/null
        if [ $rc -eq 0 ]; then echo "GPU TESTS: PASS"; else echo "GPU TESTS: FAIL (status $rc)"; fi
    } | tee "$OUT/summary.txt"
    return $rc
}

main 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
