#!/usr/bin/env bash
# The GPU check, run on a lent GPU machine from a copy of the repository (see README: GPU).
# Needs the pretraining sources in $TOXLAB_DATA (default .gpudata/, a git-ignored copy of clean/ and toxic/).
# Writes bench/results.json lines (train MFU for the gpu and cpu presets, ITI overhead, batched probes), the
# CPU/GPU parity check on a tiny model, and a short gpu-preset pretraining run.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
export TOXLAB_DATA="${TOXLAB_DATA:-$PWD/.gpudata}" TOXLAB_CACHE="${TOXLAB_CACHE:-/tmp/toxlab-cache}"
OUT="${OUT:-/tmp/toxlab-out}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/gpu.txt"
python3 bench/train_bench.py --preset gpu --steps 40 --loop --compile-cost --variants 2>&1 | grep -v Warning | tee "$OUT/bench.log"
python3 bench/train_bench.py --preset cpu --steps 40 2>&1 | grep -v Warning | tee -a "$OUT/bench.log"
python3 bench/iti_bench.py --preset gpu 2>&1 | grep -v Warning | tee -a "$OUT/bench.log"
python3 bench/probe_bench.py --preset gpu 2>&1 | grep -v Warning | tee -a "$OUT/bench.log"
# the CPU and the GPU path on a tiny model: logits, greedy generations, probe accuracies (exit 1 if apart)
python3 bench/device_parity.py 2>&1 | grep -v Warning | tee "$OUT/parity.json"
cp bench/results.json "$OUT/results.json"
# A short real run of the gpu preset: tokenizer, mixture at f = 0.25, 300 bf16 steps, save_pretrained.
timeout 330 python3 -m toxlab.cli pretrain --preset gpu --toxic-fraction 0.25 --seed 0 \
    --set train.max_steps=300 --set train.eval_every=100 --quiet 2>&1 | tail -5 | tee "$OUT/pretrain.log"
folder=$(tail -1 "$OUT/pretrain.log")
if [ -d "$folder" ]; then
    cp "$folder/../metrics.json" "$OUT/pretrain_metrics.json"
    cp "$folder/../history.json" "$OUT/pretrain_history.json"
fi
