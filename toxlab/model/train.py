"""The pretraining loop (paper Section 3): AdamW, linear warm-up and cosine decay, gradient clipping,
mixed precision on GPU, periodic held-out loss, and checkpoints that resume exactly.

Device placement, mixed precision and multi-GPU data parallelism come from `accelerate`; run the same
command under `accelerate launch` to use several GPUs. The data order is a pure function of (seed, epoch),
and the model has no dropout, so a run that resumes from a checkpoint ends with the same weights as one
that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from tqdm import tqdm

from toxlab.core.config import TrainConfig
from toxlab.core.distributed import world_size
from toxlab.model.decoder import to_device

CHECKPOINT = "checkpoint.safetensors"  # resumable state; never a pickle


@dataclass
class TrainState:
    """What a checkpoint holds besides the model and optimiser: the step and the loss history."""

    step: int = 0
    tokens: int = 0
    train_time_s: float = 0.0
    first_step_s: float | None = None  # the first step's wall time, compilation included (torch.compile)
    graphs_compiled: int = 0  # dynamo graphs compiled during the run (torch.compile; 1 when one graph serves it)
    history: list[dict] = field(default_factory=list)


def make_accelerator(config: TrainConfig) -> Accelerator:
    """bf16 autocast on a GPU that supports it ("auto"), plain fp32 on the CPU."""
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return Accelerator(mixed_precision={"fp32": "no"}.get(precision, precision),
                       cpu=not torch.cuda.is_available())


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device,
                   fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only. `fused=None` is the book's choice: on a GPU the fused
    kernel (one pass over the parameters and their moments instead of one per arithmetic step; the same update
    up to rounding), elsewhere torch's default. `fused=False` asks for the multi-tensor ("foreach") one."""
    if fused is None:
        implementation = {"fused": True} if device.type == "cuda" else {}
    else:
        implementation = {"fused": True} if fused else {"foreach": True}
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=config.lr, betas=(config.beta1, config.beta2), **implementation)


def uses_cuda_graphs(config: TrainConfig, device: torch.device) -> bool:
    """A compiled run on a GPU replays each step's kernels as CUDA graphs (torch.compile's "reduce-overhead"):
    one launch instead of hundreds, so a small model's step no longer waits for Python to launch its kernels
    (the same kernels, so the same numbers). On a CPU there is nothing to replay; with several processes the
    gradients' all-reduce runs between the backward's pieces, so those runs keep plain compiled steps."""
    return config.compile and device.type == "cuda" and world_size() == 1


def lr_lambda(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Multiplier of the peak learning rate: linear warm-up, then cosine decay to `min_ratio`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def total_steps(n_blocks: int, config: TrainConfig, world_size: int = 1) -> int:
    per_epoch = n_blocks // (config.batch_size * world_size)
    if per_epoch == 0:
        raise ValueError(f"{n_blocks} training blocks are fewer than one batch of {config.batch_size}")
    return config.max_steps or max(1, math.ceil(config.epochs * per_epoch))


#: A run keeps its weights besides the last at 1/d of its steps for each d here.
SNAPSHOT_DIVISORS = (16, 8, 4, 2)


def snapshot_steps(total: int) -> tuple[int, ...]:
    """The steps whose weights a run keeps besides the last: 1/16, 1/8, 1/4 and 1/2 of the run."""
    return tuple(sorted({max(1, total // d) for d in SNAPSHOT_DIVISORS} - {total}))


def batch_indices(step: int, n_blocks: int, batch_size: int, seed: int, rank: int = 0,
                  world_size: int = 1) -> np.ndarray:
    """Block indices of one step's batch for one process: epoch-wise permutations seeded by (seed, epoch)."""
    per_step = batch_size * world_size
    per_epoch = n_blocks // per_step
    epoch, within = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_blocks)
    start = within * per_step + rank * batch_size
    return order[start:start + batch_size]


@torch.no_grad()
def evaluate(model, blocks: np.ndarray, batch_size: int, device) -> float:
    """Mean next-token cross-entropy (nats per token) over `blocks` [n, seq_len]."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        x = to_device(blocks[start:start + batch_size], device)  # [B, T]
        logits = model(input_ids=x).logits.float()  # [B, T, V]
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(),
                                                 reduction="sum")
        total += loss.item()
        count += x[:, 1:].numel()
    model.train()
    return total / max(count, 1)


def _save_checkpoint(path: Path, model, optimizer, scheduler, state: TrainState) -> None:
    """One safetensors file (never a pickle): model and optimiser tensors, and the rest (step, history,
    scheduler, optimiser settings, RNG state) as JSON in its metadata."""
    from safetensors.torch import save_file

    def host(t: torch.Tensor) -> torch.Tensor:  # a copy: tied weights share storage, which safetensors refuses
        return t.detach().to("cpu", copy=True).contiguous()

    tensors = {f"model.{k}": host(v) for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for pid, slots in optim["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = host(value)
            else:
                scalars.setdefault(str(pid), {})[name] = value
    numpy_name, numpy_keys, *numpy_rest = np.random.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.numpy"] = torch.from_numpy(numpy_keys.astype(np.int64))
    meta = {"state": state.__dict__, "scheduler": scheduler.state_dict(), "optim_groups": optim["param_groups"],
            "optim_scalars": scalars, "numpy_rng": [numpy_name, *numpy_rest]}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"toxlab": json.dumps(meta)})
    os.replace(tmp, path)  # a kill mid-save leaves the previous checkpoint intact


def _load_checkpoint(path: Path, model, optimizer, scheduler) -> TrainState:
    """Restore what `_save_checkpoint` wrote (tensors are read on the CPU, then copied into place)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        meta = json.loads(handle.metadata()["toxlab"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    slots: dict[int, dict] = {int(pid): dict(values) for pid, values in meta["optim_scalars"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            slots.setdefault(int(pid), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["optim_groups"]]
    optimizer.load_state_dict({"state": slots, "param_groups": groups})
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    name, *rest = meta["numpy_rng"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), *rest))
    return TrainState(**meta["state"])


#: Steps between reading the losses back from the device (see `train`); results do not depend on it.
SYNC_EVERY = 50


def train(model, train_blocks: np.ndarray, val_blocks: np.ndarray, config: TrainConfig, seed: int,
          work_dir: Path | None = None, progress: bool = True, stop_after: int | None = None,
          accelerator: Accelerator | None = None, snapshot_dir: Path | None = None):
    """Train `model` in place on `train_blocks` [n_blocks, seq_len] and return (model, TrainState).

    Resumes from `work_dir/checkpoint.safetensors` when it exists. `stop_after` ends the run early after that many
    optimiser steps (used to test resumption); the schedule is still the full run's. With `snapshot_dir`, the
    weights at `snapshot_steps(total)` are saved there as `step_NNNNNN/` save_pretrained folders (to probe
    when a direction appears); they do not change the run.
    """
    accelerator = accelerator or make_accelerator(config)
    device = accelerator.device
    optimizer = make_optimizer(model, config, device)
    steps = total_steps(len(train_blocks), config, accelerator.num_processes)
    warmup = int(config.warmup_frac * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_lambda(s, steps, warmup, config.min_lr_ratio))
    state = TrainState()
    checkpoint = work_dir / CHECKPOINT if work_dir else None
    if checkpoint and checkpoint.exists():
        state = _load_checkpoint(checkpoint, model, optimizer, scheduler)
    model, optimizer = accelerator.prepare(model, optimizer)
    graphs_before = _graphs_compiled()
    cuda_graphs = uses_cuda_graphs(config, device)
    if config.compile:
        model = torch.compile(model, mode="reduce-overhead" if cuda_graphs else None)
    model.train()

    end = steps if stop_after is None else min(steps, state.step + stop_after)
    bar = tqdm(total=steps, initial=state.step, disable=not progress or not accelerator.is_main_process,
               desc="pretrain", unit="step", mininterval=2.0, dynamic_ncols=True)
    # Losses stay on the device until a sync point (every SYNC_EVERY steps, an evaluation, a snapshot, a
    # checkpoint, the end): reading one back each step would make a GPU wait for the CPU's next launch.
    pending: list[tuple[dict, torch.Tensor]] = []
    segment_start, segment_tokens = time.perf_counter(), 0

    def sync() -> None:
        nonlocal segment_start, segment_tokens
        if pending:
            for (record, _), value in zip(pending, torch.stack([v for _, v in pending]).tolist()):
                record["loss"] = value
            bar.set_postfix(loss=f"{pending[-1][0]['loss']:.3f}",
                            tok_s=f"{segment_tokens / max(time.perf_counter() - segment_start, 1e-9):,.0f}",
                            refresh=False)
            pending.clear()
        state.train_time_s += time.perf_counter() - segment_start
        segment_start, segment_tokens = time.perf_counter(), 0

    while state.step < end:
        if cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # this step may overwrite the last one's graph outputs
        idx = batch_indices(state.step, len(train_blocks), config.batch_size, seed,
                            accelerator.process_index, accelerator.num_processes)
        x = to_device(train_blocks[idx], device)  # [B, T]
        with accelerator.autocast():
            loss = model(input_ids=x, labels=x).loss
        accelerator.backward(loss)
        if config.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.tokens += x.numel() * accelerator.num_processes
        segment_tokens += x.numel()
        record = {"step": state.step, "tokens": state.tokens, "loss": None, "lr": scheduler.get_last_lr()[0]}
        pending.append((record, loss.detach().to(torch.float32, copy=True)))  # a copy outlives a graph replay
        if state.first_step_s is None:
            loss.item()  # waits for the device, once, to time the first step
            state.first_step_s = time.perf_counter() - segment_start
        state.history.append(record)
        bar.update(1)
        evaluating = config.eval_every and (state.step % config.eval_every == 0) or state.step == steps
        snapshot = snapshot_dir and state.step in snapshot_steps(steps) and accelerator.is_main_process
        checkpointing = checkpoint and config.checkpoint_every and state.step % config.checkpoint_every == 0 \
            and state.step < steps and accelerator.is_main_process
        if evaluating or snapshot or checkpointing or state.step % SYNC_EVERY == 0 or state.step == end:
            sync()  # training time is counted up to here; evaluation and saving are not training
        if evaluating:  # eager: a compiled model would compile again for eval mode (once per model)
            record["val_loss"] = evaluate(_plain(model, accelerator),
                                          val_blocks[: config.eval_batches * config.batch_size],
                                          config.batch_size, device)
        if snapshot:
            _plain(model, accelerator).save_pretrained(str(snapshot_dir / f"step_{state.step:06d}"),
                                                       safe_serialization=True)
        if checkpointing:
            _save_checkpoint(checkpoint, _plain(model, accelerator), optimizer, scheduler, state)
        if evaluating or snapshot or checkpointing:
            segment_start = time.perf_counter()
    bar.close()
    state.graphs_compiled += _graphs_compiled() - graphs_before
    if stop_after is not None and checkpoint and state.step < steps and accelerator.is_main_process:
        _save_checkpoint(checkpoint, _plain(model, accelerator), optimizer, scheduler, state)
    return _plain(model, accelerator), state


def _graphs_compiled() -> int:
    """Dynamo graphs this process has compiled so far: more than one per compiled run means recompiling."""
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]


def _plain(model, accelerator: Accelerator):
    """The model without its wrappers (data parallel, torch.compile): the same parameters, run eagerly."""
    model = accelerator.unwrap_model(model)
    return getattr(model, "_orig_mod", model)
