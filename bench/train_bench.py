"""Training throughput and model FLOP utilisation (MFU) of a preset on this machine.

Prints one JSON line per figure and merges it into bench/results.json:
- `matmul_peak`: the best achieved FLOP/s of large square matmuls in the training dtype (the denominator);
- `train`: tokens/s of full training steps (forward, backward, AdamW, clipping) on random tokens of the
  preset's shape, achieved FLOP/s, and `mfu` = achieved / peak.

FLOPs per token count every matmul, including the tied output projection, plus attention
(`toxlab.model.train_flops_per_token`); `mfu_6n` uses the narrower 6 x non-embedding-params + attention
convention for comparison with other reports.

    python bench/train_bench.py --preset cpu [--steps 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from toxlab.config import get_preset
from toxlab.model import build_model, pick_device, train_flops_per_token
from toxlab.train import make_accelerator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record, sync  # noqa: E402


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int) -> float:
    """Best FLOP/s over `repeats` timed products of two [size, size] matrices."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        sync(device)
        best = max(best, 4 * 2 * size ** 3 / (time.perf_counter() - start))
    return best


def train_throughput(preset: str, steps: int, warmup: int) -> dict:
    config = get_preset(preset)
    device = pick_device()
    accelerator = make_accelerator(config.train)
    vocab, seq_len, batch = config.tokenizer.vocab_size, config.data.seq_len, config.train.batch_size
    model = build_model(config.model, vocab, seq_len, eos_id=0, pad_id=1, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, betas=(0.9, 0.95),
                                  weight_decay=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    if config.train.compile:
        model = torch.compile(model)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (batch, seq_len), generator=generator).to(device)  # [B, T]
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            start = time.perf_counter()
        with accelerator.autocast():
            loss = model(input_ids=x, labels=x).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    elapsed = time.perf_counter() - start
    tokens_per_s = steps * batch * seq_len / elapsed
    m = config.model
    flops_6n = 6 * m.n_layers * (4 * m.d_model ** 2 + 3 * m.d_model * m.d_mlp) + 12 * m.n_layers * seq_len * m.d_model
    return {"config": config, "device": device, "precision": accelerator.mixed_precision,
            "tokens_per_s": tokens_per_s, "flops_per_token": train_flops_per_token(m, vocab, seq_len),
            "flops_per_token_6n": flops_6n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    run = train_throughput(args.preset, args.steps, args.warmup)
    device = run["device"]
    dtype = torch.bfloat16 if run["precision"] == "bf16" else torch.float32
    size = 8192 if device.type == "cuda" else 2048
    peak = matmul_peak(device, dtype, size, repeats=10 if device.type == "cuda" else 5)
    name = device_name(device)
    dtype_name = str(dtype).removeprefix("torch.")
    record({"bench": "matmul_peak", "preset": args.preset, "device": name, "dtype": dtype_name,
            "size": size, "gflops": round(peak / 1e9, 1)})
    achieved = run["tokens_per_s"] * run["flops_per_token"]
    record({"bench": "train", "preset": args.preset, "device": name, "dtype": dtype_name,
            "tokens_per_s": round(run["tokens_per_s"], 1), "achieved_gflops": round(achieved / 1e9, 1),
            "peak_gflops": round(peak / 1e9, 1), "mfu": round(achieved / peak, 4),
            "mfu_6n": round(run["tokens_per_s"] * run["flops_per_token_6n"] / peak, 4),
            "compile": run["config"].train.compile, "steps": args.steps,
            "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
