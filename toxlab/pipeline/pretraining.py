"""The pretraining stages (paper Section 3): one model per preset, toxic fraction and seed, and the sweep over
fractions and seeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from toxlab.core import artifacts, distributed
from toxlab.core.artifacts import Entry
from toxlab.core.config import PAPER_FRACTIONS, RunConfig, override
from toxlab.core.errors import ConfigError
from toxlab.data.tokenizer import load_tokenizer as load
from toxlab.model import train as training
from toxlab.model.decoder import build_model, count_params, train_flops_per_token
from toxlab.pipeline.common import check_seed, log_line
from toxlab.pipeline.mixtures import mixture, tokenizer
from toxlab.pipeline.versions import PRETRAIN_VERSION, SWEEP_VERSION

#: The shares of a run at which it keeps its weights besides the last (chapter 7 probes them).
SNAPSHOT_SHARES = tuple(1 / d for d in training.SNAPSHOT_DIVISORS)


def unigram_cross_entropy(train: np.ndarray, heldout: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats/token) of `heldout` under the add-one unigram distribution of `train`: the
    baseline a model must beat to have learned anything beyond token frequencies."""
    counts = np.bincount(train.ravel(), minlength=vocab_size).astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[heldout[:, 1:].ravel()].mean())


def pretrain(config: RunConfig, seed: int, progress: bool = True, tagging: str = "none", judge=None) -> Entry:
    """Train (or reuse) one model for this preset, fraction and seed; the entry holds `model/` (a
    save_pretrained folder with the tokenizer), `metrics.json` and `history.json`. `tagging` 'meda' or
    'inst' trains on the tagged mixture instead (see `mixture`), with the same budget and seed. Models built
    since snapshots were added also hold `snapshots/step_NNNNNN/`: the weights at 1/16, 1/8, 1/4 and 1/2 of
    the run (`toxlab.model.train.snapshot_steps`)."""
    check_seed(seed)
    mix_entry = mixture(config, tagging, judge)
    tok_entry = tokenizer(config)

    def build(out: Path, work: Path) -> dict:
        tok = load(tok_entry.file("tokenizer"))
        blocks = np.load(mix_entry.file("train.npy"))  # [n_blocks, seq_len]
        val = np.load(mix_entry.file("val.npy"))
        c4 = np.load(mix_entry.file("c4.npy"))
        model = build_model(config.model, len(tok), config.data.seq_len, tok.eos_token_id,
                            tok.pad_token_id, seed)
        accelerator = training.make_accelerator(config.train)
        snapshots = work / "snapshots"  # in the work folder, so a resumed run keeps the earlier ones
        model, state = training.train(model, blocks, val, config.train, seed, work_dir=work,
                                      progress=progress, accelerator=accelerator, snapshot_dir=snapshots)
        batch = config.train.batch_size
        metrics = {
            "preset": config.preset, "seed": seed, "toxic_fraction": config.data.toxic_fraction,
            "realised_fraction": mix_entry.manifest["realised_fraction"],
            "steps": state.step, "train_tokens_seen": state.tokens,
            "final_train_loss": float(np.mean([h["loss"] for h in state.history[-20:]])),
            "val_loss": training.evaluate(model, val, batch, accelerator.device),
            "c4_loss": training.evaluate(model, c4, batch, accelerator.device),
            "unigram_val_loss": unigram_cross_entropy(blocks, val, len(tok)),
            "unigram_c4_loss": unigram_cross_entropy(blocks, c4, len(tok)),
            "train_time_s": state.train_time_s, "first_step_s": state.first_step_s,
            "graphs_compiled": state.graphs_compiled,
            "tokens_per_s": state.tokens / max(state.train_time_s, 1e-9),
            "params": count_params(model),
            "flops_per_token": train_flops_per_token(config.model, len(tok), config.data.seq_len),
            "device": str(accelerator.device), "precision": accelerator.mixed_precision,
            "processes": accelerator.num_processes,
        }
        if tagging != "none":
            metrics["tagging"] = tagging
        if accelerator.is_main_process:
            model.save_pretrained(str(out / "model"), safe_serialization=True)
            tok.save_pretrained(str(out / "model"))
            artifacts.write_json(out / "metrics.json", metrics)
            artifacts.write_json(out / "history.json", state.history)
            if snapshots.exists():
                shutil.move(str(snapshots), str(out / "snapshots"))
        return {"val_loss": metrics["val_loss"]}

    stage_config = json.loads(json.dumps(config.keyed()))
    if tagging != "none":  # the default adds nothing to the key
        stage_config["tagging"] = tagging
    processes = distributed.world_size()
    if processes > 1:  # data-parallel runs see the batches in another order: a different model
        stage_config["processes"] = processes
    return artifacts.cached("pretrain", PRETRAIN_VERSION, stage_config, build,
                            upstream={"mixture": mix_entry.key, "tokenizer": tok_entry.key}, seed=int(seed))


def design(config: RunConfig, fraction: float, token_matched: bool = False) -> RunConfig:
    """`config` at `fraction` in the paper's design (the clean tokens fixed, toxic text added) or, token-matched,
    with the total fixed (toxic text replaces clean text). At f = 0 the two are one model (one cache key)."""
    return override(config, {"data.toxic_fraction": fraction, "data.token_matched": token_matched})


def fractions_for(config: RunConfig) -> tuple[float, ...]:
    return tuple(f for f in PAPER_FRACTIONS if f <= config.data.max_fraction + 1e-9)


def sweep(config: RunConfig, seeds: list[int], fractions: tuple[float, ...] | None = None,
          progress: bool = True, log=log_line) -> Entry:
    """One model per toxic fraction and seed; the entry's `summary.json` has one row per model.
    Progress (which model, and a bar per model) goes to stderr unless `progress` is False."""
    fractions = fractions or fractions_for(config)
    if not seeds:
        raise ConfigError("give at least one seed, e.g. --seeds 0")
    for seed in seeds:  # every seed before the first model trains
        check_seed(seed)
    rows, keys = [], {}
    for fraction in fractions:
        for seed in seeds:
            log(f"pretrain: preset={config.preset} toxic_fraction={fraction:.2f} seed={seed}")
            entry = pretrain(config.with_fraction(fraction), seed, progress=progress)
            metrics = entry.json("metrics.json")
            rows.append({**{k: metrics[k] for k in ("toxic_fraction", "realised_fraction", "seed",
                                                     "val_loss", "c4_loss", "unigram_val_loss",
                                                     "train_tokens_seen", "tokens_per_s", "train_time_s")},
                         "model": str(entry.file("model"))})
            keys[f"{fraction}-{seed}"] = entry.key

    def build(out: Path, work: Path) -> None:
        artifacts.write_json(out / "summary.json", {"preset": config.preset, "seeds": list(seeds),
                                                     "fractions": list(fractions), "runs": rows})

    stage_config = {"config": json.loads(json.dumps(config.keyed())), "seeds": list(seeds),
                    "fractions": list(fractions)}
    return artifacts.cached("sweep", SWEEP_VERSION, stage_config, build, upstream=keys)


def run_histories(summary: dict) -> dict[tuple[float, int], list[dict]]:
    """{(fraction, seed): training history} for every run of a sweep summary."""
    return {(r["toxic_fraction"], r["seed"]): json.loads((Path(r["model"]).parent / "history.json").read_text())
            for r in summary["runs"]}


def snapshots(config: RunConfig, seed: int, progress: bool = True) -> list[int]:
    """The training steps at which the model of (config, seed) kept its weights (empty for models trained
    before snapshots were added)."""
    folder = pretrain(config, seed, progress=progress).path / "snapshots"
    return sorted(int(p.name.removeprefix("step_")) for p in folder.glob("step_*")) if folder.exists() else []


def snapshot_dir(model_entry: Entry, step) -> Path:
    folder = model_entry.path / "snapshots" / f"step_{step:06d}" if type(step) is int else None
    if folder is None or not folder.exists():
        have = sorted(p.name.removeprefix("step_").lstrip("0") for p in (model_entry.path / "snapshots").glob("step_*"))
        raise ConfigError(f"snapshot={step!r}: this model kept weights at steps {', '.join(have) or 'none'} "
                          f"(models trained before snapshots were added keep none: delete {model_entry.path} "
                          "to retrain it with them)")
    return folder
