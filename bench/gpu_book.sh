#!/usr/bin/env bash
# The gpu level in one run (issue 12): the GPU benchmarks (a minute or two), then every chapter but the
# toy's, executed by papermill on one GPU. Run it on a lent GPU machine from a copy of the repository that
# holds, git-ignored beside the code (README: GPU):
#   .gpudata/  `toxlab data pack .gpudata`: the data (gzip, /biz/ cut) and the judge's compact encoder
#   .whl/      wheels of what the machine lacks (papermill, ipykernel, jupytext, myst-nb, concept-erasure,
#              alt-profanity-check and their needs; the machine has PyTorch, transformers, scikit-learn)
# The chapters that never ran on a GPU come first (the ITI, benchmark and co-design chapters train the seed-0
# models they need themselves, through the cache), then pretraining's other seeds (chapter 3) and the probes
# (chapter 4): one call rarely holds them all, and the cache on a machine that stays warm serves the next call.
# Usage: bench/gpu_book.sh [LEVEL]   (LEVEL defaults to gpu; smoke runs the same path on a CPU in minutes)
# Writes $OUT/gpu_book.tar.gz (executed chapters, every result JSON of the cache, timings, logs; rewritten
# after each chapter, so a run cut short still returns what finished) and $OUT/log.txt. The chapters stop
# being started once BUDGET_S seconds (default 540, benchmarks included) have passed; the toy model
# (chapter 2) is a CPU experiment whose results do not depend on the level, so the book shows it at the cpu
# level.
set -uo pipefail
start=$(date +%s)
cd "$(dirname "$0")/.."
LEVEL="${1:-gpu}"
BUDGET_S="${BUDGET_S:-540}"
OUT="${OUT:-/tmp/toxlab-out}"
RUN="${RUN_DIR:-/tmp/toxlab-run}"
mkdir -p "$OUT" "$RUN"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg IPYTHONDIR="$RUN/ipython"
export PYTHONPATH="$PWD:$RUN/site${PYTHONPATH:+:$PYTHONPATH}"
export TOXLAB_DATA="${TOXLAB_DATA:-$PWD/.gpudata/data}" TOXLAB_ENCODER="${TOXLAB_ENCODER:-$PWD/.gpudata/encoder}"
export TOXLAB_CACHE="${TOXLAB_CACHE:-$RUN/cache}"
LOG="$OUT/log.txt"
say() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$LOG"; }

say "gpu_book: level $LEVEL, budget ${BUDGET_S}s, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! "$PY" -c "import papermill, ipykernel, jupytext, myst_nb, concept_erasure, profanity_check" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$RUN/site" \
        .whl/*.whl >>"$LOG" 2>&1 || { say "cannot install the carried wheels (.whl/)"; exit 1; }
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import sys, torch, transformers, sklearn; print('python', sys.version.split()[0], 'torch', torch.__version__,
'transformers', transformers.__version__, 'scikit-learn', sklearn.__version__, 'cuda', torch.cuda.is_available())"
} >"$RUN/machine.txt" 2>&1
cat "$RUN/machine.txt" >>"$LOG"

pack() {  # everything small the run made, in one archive: chapters, result JSONs, timings, logs
    (cd "$RUN" && find cache -name '*.json' -size -4M >files.txt
     echo machine.txt >>files.txt; echo timings.jsonl >>files.txt; [ -d book/chapters ] && echo book/chapters >>files.txt
     cp "$LOG" log.txt; echo log.txt >>files.txt
     tar czf "$OUT/gpu_book.tar.gz.tmp" -T files.txt 2>/dev/null && mv "$OUT/gpu_book.tar.gz.tmp" "$OUT/gpu_book.tar.gz")
}
: >"$RUN/timings.jsonl"
# The GPU figures first (issue 9), within BENCH_BUDGET_S (default 170): train MFU at the preset with the book's
# loop beside the bare steps, what compiling costs, the optimiser and CUDA-graph variants, the ITI overhead,
# CPU/GPU parity, batched probes against scikit-learn, and MFU at twice the batch. They take two or three
# minutes, and the chapters rarely leave time after them. BENCHES=0 skips them (a test of the path on a CPU).
BENCH_PRESET="${BENCH_PRESET:-gpu}"
bench_end=$(( $(date +%s) + ${BENCH_BUDGET_S:-170} ))
if [ "${BENCHES:-1}" = 1 ]; then
    for bench in "train_bench.py --preset $BENCH_PRESET --steps 30 --loop --compile-cost --variants" \
                 "iti_bench.py --preset $BENCH_PRESET" "device_parity.py" "probe_bench.py --preset $BENCH_PRESET" \
                 "train_bench.py --preset $BENCH_PRESET --steps 30 --batch ${BENCH_BATCH:-32}"; do
        left=$(( bench_end - $(date +%s) ))
        if [ "$left" -lt 15 ]; then say "bench $bench: not started"; continue; fi
        timeout "$left" "$PY" bench/$bench >>"$LOG" 2>&1; say "bench $bench: rc $?"
    done
    mkdir -p "$RUN/cache"; cp bench/results.json "$RUN/cache/bench_results.json" 2>/dev/null
    pack
fi

for nn in ${CHAPTERS:-01 05 06 07 08 03 04}; do
    left=$(( BUDGET_S - ($(date +%s) - start) ))
    if [ "$left" -lt 20 ]; then say "chapter $nn: not started, ${left}s of the budget left"; continue; fi
    t0=$(date +%s)
    timeout "$left" "$PY" -m toxlab.cli book --level "$LEVEL" --only "$nn" --execute --no-html --out "$RUN/book" \
        >>"$RUN/chapter_$nn.log" 2>&1
    rc=$?
    echo "{\"chapter\": \"$nn\", \"rc\": $rc, \"wall_s\": $(( $(date +%s) - t0 ))}" >>"$RUN/timings.jsonl"
    say "chapter $nn: rc $rc in $(( $(date +%s) - t0 ))s"
    [ "$rc" -ne 0 ] && tail -5 "$RUN/chapter_$nn.log" | tee -a "$LOG"
    pack
done
pack
say "gpu_book: done in $(( $(date +%s) - start ))s"
