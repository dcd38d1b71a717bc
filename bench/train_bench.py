"""Training throughput and model FLOP utilisation (MFU) of a preset on this machine.

Prints one JSON line per figure and merges it into bench/results.json:
- `matmul_peak`: the best achieved FLOP/s of large square matmuls in the training dtype (the denominator);
- `train`: tokens/s of full training steps (forward, backward, AdamW, clipping) on random tokens of the
  preset's shape, achieved FLOP/s, and `mfu` = achieved / peak;
- `compile` (with --compile-cost): eager and compiled tokens/s side by side, the time torch.compile adds
  to the first step, and `break_even_steps`: the run length from which compiling pays (a pretraining run of
  the preset's 0 % model has `run_steps` steps; every model compiles again; compile_s is with whatever
  compile cache the machine holds: the first model of a fresh machine pays more);
- `loop` (with --loop): the book's training loop (`toxlab.model.train.train`: batches drawn and copied each step,
  schedule, loss bookkeeping) against the bare steps above, same preset, side by side: `overhead_pct`;
- `optimizer` and `cudagraphs` (with --variants): the book's AdamW (fused on a GPU) against the multi-tensor
  ("foreach") one, and, on a GPU, the compiled step without and with CUDA graphs (torch.compile's
  "reduce-overhead" mode, which replays each compiled graph's kernels with one launch), side by side.
`--batch N` times the same model at another batch size (MFU grows with the work per step).

FLOPs per token count every matmul, including the tied output projection, plus attention
(`toxlab.model.decoder.train_flops_per_token`); `mfu_6n` uses the narrower 6 x non-embedding-params + attention
convention for comparison with other reports.

    python bench/train_bench.py --preset cpu [--steps 30] [--compile-cost] [--loop] [--variants] [--batch N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from toxlab.core.config import get_preset, parse_assignments
from toxlab.model.decoder import build_model, pick_device, train_flops_per_token
from toxlab.model.train import make_accelerator, make_optimizer, total_steps, train, uses_cuda_graphs

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


class Stepper:
    """The preset's model and optimiser on one fixed batch of random tokens, ready to time training steps.
    Building it runs the first step (timed: `first_step_s`, which holds any compilation)."""

    def __init__(self, preset: str, compile: bool | None = None, fused: bool | None = None,
                 cudagraphs: bool | None = None, batch: int | None = None, overrides: dict | None = None):
        sizes = {**(overrides or {}), **({"train.batch_size": batch} if batch else {})}
        self.config = config = get_preset(preset, sizes)
        self.compile = config.train.compile if compile is None else compile
        self.device = pick_device()
        book = uses_cuda_graphs(dataclasses.replace(config.train, compile=self.compile), self.device)
        self.cudagraphs = book if cudagraphs is None else cudagraphs  # None: the book's choice
        self.accelerator = make_accelerator(config.train)
        vocab, seq_len, batch = config.tokenizer.vocab_size, config.data.seq_len, config.train.batch_size
        self.tokens_per_step = batch * seq_len
        model = build_model(config.model, vocab, seq_len, eos_id=0, pad_id=1, seed=0)
        optimizer = make_optimizer(model, config.train, self.device, fused)  # None: the book's (fused on a GPU)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        if self.compile:
            self.model = torch.compile(self.model, mode="reduce-overhead" if self.cudagraphs else None)
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, vocab, (batch, seq_len), generator=generator).to(self.device)  # [B, T]
        self.first_step_s = self.run(1)

    def run(self, steps: int) -> float:
        """Seconds for `steps` full training steps (forward, backward, clipping, AdamW), device work included."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            if self.cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs may be overwritten
            with self.accelerator.autocast():
                loss = self.model(input_ids=self.x, labels=self.x).loss
            self.accelerator.backward(loss)
            self.accelerator.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        sync(self.device)
        return time.perf_counter() - start


def train_throughput(preset: str, steps: int, warmup: int, batch: int | None = None,
                     overrides: dict | None = None) -> dict:
    stepper = Stepper(preset, batch=batch, overrides=overrides)
    stepper.run(warmup)
    elapsed = stepper.run(steps)
    config = stepper.config
    vocab, seq_len, m = config.tokenizer.vocab_size, config.data.seq_len, config.model
    flops_6n = 6 * m.n_layers * (4 * m.d_model ** 2 + 3 * m.d_model * m.d_mlp) + 12 * m.n_layers * seq_len * m.d_model
    return {"config": config, "device": stepper.device, "precision": stepper.accelerator.mixed_precision,
            "compile": stepper.compile, "tokens_per_s": steps * stepper.tokens_per_step / elapsed,
            "flops_per_token": train_flops_per_token(m, vocab, seq_len), "flops_per_token_6n": flops_6n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile-cost", action="store_true",
                        help="also time the preset eagerly and compiled, and when compiling pays")
    parser.add_argument("--loop", action="store_true", help="also time the book's training loop")
    parser.add_argument("--variants", action="store_true",
                        help="also time the book's AdamW against the foreach one and, on a GPU, CUDA graphs")
    parser.add_argument("--batch", type=int, default=None, help="time the train figure at this batch size instead")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="time the train figure of another shape, e.g. --set model.d_model=128 (repeatable; "
                             "the scaling sweep's sizes are timed this way, on a quiet machine)")
    args = parser.parse_args(argv)
    overrides = parse_assignments(args.overrides)

    run = train_throughput(args.preset, args.steps, args.warmup, args.batch, overrides)
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
            "compile": run["compile"], "steps": args.steps, "torch": torch.__version__}
           | ({"batch": args.batch} if args.batch else {}) | ({"overrides": overrides} if overrides else {}))
    if args.variants:
        for line in variants(args.preset, args.steps, args.warmup, name, peak):
            record(line)
    if args.compile_cost:
        record(compile_cost(args.preset, args.steps, args.warmup, name))
    if args.loop:
        loop = loop_throughput(args.preset, args.steps, args.warmup, args.batch)
        record({"bench": "loop", "preset": args.preset, "device": name,
                "tokens_per_s_bare": round(run["tokens_per_s"], 1), "tokens_per_s_loop": round(loop, 1),
                "overhead_pct": round(100 * (run["tokens_per_s"] / loop - 1), 2), "steps": args.steps,
                "torch": torch.__version__} | ({"batch": args.batch} if args.batch else {}))
    return 0


def loop_throughput(preset: str, steps: int, warmup: int, batch: int | None = None) -> float:
    """Tokens/s of `toxlab.model.train.train` itself on random blocks of the preset's shape, over warmup + steps
    steps but its first (which holds any compilation; the bare figure also leaves out the warm-up steps);
    its `train_time_s` counts the device's work, not evaluations."""
    config = get_preset(preset, {"train.batch_size": batch} if batch else None)
    vocab, seq_len, batch = config.tokenizer.vocab_size, config.data.seq_len, config.train.batch_size
    total = warmup + steps
    blocks = np.random.default_rng(0).integers(0, vocab, (total * batch, seq_len)).astype(np.uint16)
    model = build_model(config.model, vocab, seq_len, eos_id=0, pad_id=1, seed=0)
    settings = dataclasses.replace(config.train, max_steps=total, eval_every=0, eval_batches=1, checkpoint_every=0)
    _, state = train(model, blocks, blocks[:batch], settings, seed=0, progress=False)
    return (total - 1) * batch * seq_len / (state.train_time_s - state.first_step_s)


def side_by_side(first: Stepper, second: Stepper, steps: int, warmup: int, rounds: int = 3) -> tuple[float, float]:
    """Seconds per step of two steppers timed alternately: the best of `rounds` timings of steps / rounds
    steps each, after `warmup` steps each (alternating spreads any drift of the machine over both)."""
    for stepper in (first, second):
        stepper.run(warmup)
    per_round = max(1, steps // rounds)
    best = {first: float("inf"), second: float("inf")}
    for _ in range(rounds):
        for stepper in (first, second):
            best[stepper] = min(best[stepper], stepper.run(per_round))
    return best[first] / per_round, best[second] / per_round


def compile_cost(preset: str, steps: int, warmup: int, device: str) -> dict:
    """Eager against compiled, side by side: what compiling costs once (the first step's extra time) and
    saves per step."""
    eager, compiled = Stepper(preset, compile=False), Stepper(preset, compile=True)
    compile_s = compiled.first_step_s - eager.first_step_s
    eager_step, compiled_step = side_by_side(eager, compiled, steps, warmup)
    saved_per_step = eager_step - compiled_step
    config = get_preset(preset)
    run_steps = total_steps(config.data.clean_tokens // config.data.seq_len, config.train)
    return {"bench": "compile", "preset": preset, "device": device,
            "tokens_per_s_eager": round(eager.tokens_per_step / eager_step, 1),
            "tokens_per_s_compiled": round(compiled.tokens_per_step / compiled_step, 1),
            "speedup": round(eager_step / compiled_step, 3), "compile_s": round(compile_s, 2),
            "break_even_steps": round(compile_s / saved_per_step) if saved_per_step > 0 else None,
            "run_steps": run_steps, "steps": steps, "torch": torch.__version__}


def variants(preset: str, steps: int, warmup: int, device: str, peak: float) -> list[dict]:
    """The book's AdamW against the multi-tensor one and, on a GPU with a compiled preset, the compiled step
    without and with CUDA graphs; each pair side by side, with the preset's MFU for each."""
    config = get_preset(preset)
    flops = train_flops_per_token(config.model, config.tokenizer.vocab_size, config.data.seq_len)
    book_optimizer = "fused" if torch.cuda.is_available() else "single-tensor"  # torch's default on a CPU
    pairs = [("optimizer", "foreach", dict(fused=False), book_optimizer, dict())]
    if torch.cuda.is_available() and config.train.compile:
        pairs.append(("cudagraphs", "without", dict(cudagraphs=False), "with", dict(cudagraphs=True)))
    out = []
    for bench, name_a, kwargs_a, name_b, kwargs_b in pairs:
        a, b = Stepper(preset, **kwargs_a), Stepper(preset, **kwargs_b)
        step_a, step_b = side_by_side(a, b, steps, warmup)
        rates = {name_a: a.tokens_per_step / step_a, name_b: b.tokens_per_step / step_b}
        out.append({"bench": bench, "preset": preset, "device": device, "variants": [name_a, name_b],
                    "tokens_per_s": [round(r, 1) for r in rates.values()],
                    "mfu": [round(r * flops / peak, 4) for r in rates.values()],
                    "speedup": round(step_a / step_b, 3), "steps": steps, "torch": torch.__version__})
        del a, b
    return out


if __name__ == "__main__":
    sys.exit(main())
