"""Cached, seeded, chapter-facing verbs: data info, tokenizer, mixture (and its measured toxicity), pretrain,
sweep, activations, probe, toy.

Each stage is keyed (toxlab.artifacts) by its name, version, config, the content hash of the data files it
reads, and the keys of the stages it builds on, so a chapter or CLI call that has run before returns at
once, and a changed input recomputes exactly what depends on it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from pathlib import Path

import numpy as np

from toxlab import artifacts, data
from toxlab.artifacts import Entry
from toxlab.config import PAPER_FRACTIONS, RunConfig
from toxlab.errors import ConfigError

TOKENIZER_VERSION = 1
MIXTURE_VERSION = 2
PRETRAIN_VERSION = 1
SWEEP_VERSION = 1
DATA_INFO_VERSION = 1
MIXTURE_TOXICITY_VERSION = 1
ACTIVATIONS_VERSION = 1
PROBE_VERSION = 2  # 2: Newton stops on scikit-learn's gradient rule, chord steps near the optimum
TOY_VERSION = 1


@functools.lru_cache(maxsize=8)
def data_fingerprint(root: Path, names: tuple[str, ...] = data.PRETRAIN_SOURCES) -> dict[str, str]:
    """SHA-256 of each data file a stage reads: results are keyed by content, not by path."""
    data.check_layout(names, root)
    return {name: artifacts.file_sha256(root / data.FILES[name][0]) for name in names}


def _data_dict(config: RunConfig, keep_fraction: bool = True) -> dict:
    out = dataclasses.asdict(config.data)
    if not keep_fraction:  # the tokenizer is shared by every fraction of a preset
        out.pop("toxic_fraction")
    return out


def tokenizer(config: RunConfig) -> Entry:
    """The preset's byte-level BPE (a transformers tokenizer folder), trained once and shared."""
    from toxlab.tokenizer import train_tokenizer
    root = data.data_root()
    stage_config = {"data": _data_dict(config, keep_fraction=False),
                    "tokenizer": dataclasses.asdict(config.tokenizer), "files": data_fingerprint(root)}

    def build(out: Path, work: Path) -> dict:
        tok = train_tokenizer(data.tokenizer_corpus(config.data, config.tokenizer.train_chars, root),
                              config.tokenizer)
        tok.save_pretrained(str(out / "tokenizer"))
        return {"vocab_size": len(tok)}

    return artifacts.cached("tokenizer", TOKENIZER_VERSION, stage_config, build)


def load_tokenizer(config: RunConfig):
    from toxlab.tokenizer import load_tokenizer as load
    return load(tokenizer(config).file("tokenizer"))


def mixture(config: RunConfig) -> Entry:
    """Token blocks of the clean + toxic mixture for `config.data.toxic_fraction`, and the held-out sets."""
    tok_entry = tokenizer(config)
    root = data.data_root()
    stage_config = {"data": _data_dict(config), "files": data_fingerprint(root)}

    def build(out: Path, work: Path) -> dict:
        from toxlab.tokenizer import load_tokenizer as load
        mix = data.build_mixture(config.data, load(tok_entry.file("tokenizer")), root)
        np.save(out / "train.npy", mix.train)
        np.save(out / "toxic_mask.npy", mix.toxic_mask)
        np.save(out / "val.npy", mix.val)
        np.save(out / "c4.npy", mix.c4)
        artifacts.write_json(out / "stats.json", mix.stats)
        return {"realised_fraction": mix.stats["realised_fraction"]}

    return artifacts.cached("mixture", MIXTURE_VERSION, stage_config, build,
                            upstream={"tokenizer": tok_entry.key})


def unigram_cross_entropy(train: np.ndarray, heldout: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats/token) of `heldout` under the add-one unigram distribution of `train`: the
    baseline a model must beat to have learned anything beyond token frequencies."""
    counts = np.bincount(train.ravel(), minlength=vocab_size).astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[heldout[:, 1:].ravel()].mean())


def pretrain(config: RunConfig, seed: int, progress: bool = True) -> Entry:
    """Train (or reuse) one model for this preset, fraction and seed; the entry holds `model/` (a
    save_pretrained folder with the tokenizer), `metrics.json` and `history.json`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed={seed!r} must be an integer")
    mix_entry = mixture(config)
    tok_entry = tokenizer(config)

    def build(out: Path, work: Path) -> dict:
        from toxlab import train as training
        from toxlab.model import build_model, count_params, train_flops_per_token
        from toxlab.tokenizer import load_tokenizer as load
        tok = load(tok_entry.file("tokenizer"))
        blocks = np.load(mix_entry.file("train.npy"))  # [n_blocks, seq_len]
        val = np.load(mix_entry.file("val.npy"))
        c4 = np.load(mix_entry.file("c4.npy"))
        model = build_model(config.model, len(tok), config.data.seq_len, tok.eos_token_id,
                            tok.pad_token_id, seed)
        accelerator = training.make_accelerator(config.train)
        model, state = training.train(model, blocks, val, config.train, seed, work_dir=work,
                                      progress=progress, accelerator=accelerator)
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
            "train_time_s": state.train_time_s,
            "tokens_per_s": state.tokens / max(state.train_time_s, 1e-9),
            "params": count_params(model),
            "flops_per_token": train_flops_per_token(config.model, len(tok), config.data.seq_len),
            "device": str(accelerator.device), "precision": accelerator.mixed_precision,
        }
        if accelerator.is_main_process:
            model.save_pretrained(str(out / "model"), safe_serialization=True)
            tok.save_pretrained(str(out / "model"))
            artifacts.write_json(out / "metrics.json", metrics)
            artifacts.write_json(out / "history.json", state.history)
        return {"val_loss": metrics["val_loss"]}

    return artifacts.cached("pretrain", PRETRAIN_VERSION, json.loads(config.to_json()), build,
                            upstream={"mixture": mix_entry.key, "tokenizer": tok_entry.key}, seed=int(seed))


def fractions_for(config: RunConfig) -> tuple[float, ...]:
    return tuple(f for f in PAPER_FRACTIONS if f <= config.data.max_fraction + 1e-9)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sweep(config: RunConfig, seeds: list[int], fractions: tuple[float, ...] | None = None,
          progress: bool = True, log=_stderr) -> Entry:
    """One model per toxic fraction and seed; the entry's `summary.json` has one row per model.
    Progress (which model, and a bar per model) goes to stderr unless `progress` is False."""
    fractions = fractions or fractions_for(config)
    if not seeds:
        raise ConfigError("give at least one seed, e.g. --seeds 0")
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

    stage_config = {"config": json.loads(config.to_json()), "seeds": list(seeds), "fractions": list(fractions)}
    return artifacts.cached("sweep", SWEEP_VERSION, stage_config, build, upstream=keys)


def data_info(config: RunConfig) -> Entry:
    """Per-source documents, characters and tokens (with the preset's tokenizer) of the data folder."""
    root = data.data_root()
    present = tuple(n for n in data.PRETRAIN_SOURCES if (root / data.FILES[n][0]).is_file())
    tok_entry = tokenizer(config) if present == data.PRETRAIN_SOURCES else None

    def build(out: Path, work: Path) -> None:
        tok = load_tokenizer(config) if tok_entry else None
        artifacts.write_json(out / "sources.json", {"root": str(root),
                                                     "sources": data.source_summary(root, tok)})

    fingerprint = data_fingerprint(root, present) if present else {}
    stage_config = {"files": fingerprint, "present": {n: (root / r).is_file() for n, (r, _) in data.FILES.items()}}
    return artifacts.cached("data_info", DATA_INFO_VERSION, stage_config, build,
                            upstream={"tokenizer": tok_entry.key} if tok_entry else {})




def mixture_toxicity(config: RunConfig, n_blocks: int = 300) -> Entry:
    """How toxic the training text is, by the default judge: `n_blocks` random training blocks are cut at
    EOS into document pieces, each piece is scored, and `toxicity.json` reports the share of tokens in
    pieces scored >= 0.5, overall and for pieces from clean and from toxic sources."""
    from toxlab.judge import default_judge
    judge = default_judge()
    mix_entry = mixture(config)
    tok_entry = tokenizer(config)

    def build(out: Path, work: Path) -> None:
        from toxlab.tokenizer import load_tokenizer as load
        tok = load(tok_entry.file("tokenizer"))
        blocks = np.load(mix_entry.file("train.npy"))
        mask = np.load(mix_entry.file("toxic_mask.npy"))
        rows = np.random.default_rng(0).choice(len(blocks), size=min(n_blocks, len(blocks)), replace=False)
        pieces, lengths, is_toxic = [], [], []
        for row in rows:
            ids, toxic = blocks[row].astype(np.int64), mask[row]
            cuts = np.flatnonzero(ids == tok.eos_token_id)
            for start, stop in zip(np.r_[0, cuts + 1], np.r_[cuts, len(ids)]):
                if stop - start < 8:  # fragments at block edges carry no judgement
                    continue
                pieces.append(tok.decode(ids[start:stop].tolist()))
                lengths.append(stop - start)
                is_toxic.append(bool(toxic[start:stop].mean() > 0.5))
        scores = judge.score(pieces)
        lengths, is_toxic = np.array(lengths), np.array(is_toxic)
        flagged = scores >= 0.5

        def share(select):
            return float((lengths[select] * flagged[select]).sum() / max(lengths[select].sum(), 1))

        artifacts.write_json(out / "toxicity.json", {
            "judge": judge.name, "blocks": int(len(rows)), "pieces": int(len(pieces)),
            "flagged_token_share": share(np.ones(len(pieces), bool)),
            "flagged_token_share_clean_sources": share(~is_toxic),
            "flagged_token_share_toxic_sources": share(is_toxic),
            "mean_score": float(scores.mean()) if len(scores) else 0.0})

    return artifacts.cached("mixture_toxicity", MIXTURE_TOXICITY_VERSION,
                            {"n_blocks": n_blocks, "judge": judge.name}, build,
                            upstream={"mixture": mix_entry.key})


def run_histories(summary: dict) -> dict[tuple[float, int], list[dict]]:
    """{(fraction, seed): training history} for every run of a sweep summary."""
    return {(r["toxic_fraction"], r["seed"]): json.loads((Path(r["model"]).parent / "history.json").read_text())
            for r in summary["runs"]}


def _probe_data_config(keep_ambiguous: bool, split_seed: int) -> dict:
    return {"threshold": 3.0, "keep_ambiguous": keep_ambiguous, "split_seed": split_seed, "val_fraction": 0.2}


def activations(config: RunConfig, seed: int, pool: str = "last", keep_ambiguous: bool = False,
                progress: bool = True) -> Entry:
    """Per-head outputs before o_proj [N, L, H, Dh] and residual stream [N, L, d_model] of one pretrained
    model on the ToxiGen probe statements, pooled at the last token (the paper) or over tokens."""
    if pool not in ("last", "mean"):
        raise ConfigError(f"pool={pool!r} must be 'last' or 'mean'")
    model_entry = pretrain(config, seed, progress=progress)
    root = data.data_root()
    stage_config = {"pool": pool, "keep_ambiguous": keep_ambiguous,
                    "files": data_fingerprint(root, ("toxigen_annotated",))}

    def build(out: Path, work: Path) -> None:
        import torch
        from safetensors.torch import save_file
        from tqdm import tqdm
        from transformers import AutoModelForCausalLM

        from toxlab import hooks
        from toxlab.model import pick_device
        probe_set = data.toxigen_probe_set(keep_ambiguous=keep_ambiguous, root=root)
        model = AutoModelForCausalLM.from_pretrained(str(model_entry.file("model"))).to(pick_device())
        tok = load_tokenizer(config)
        bar = (lambda it: tqdm(it, desc="capture", unit="batch", mininterval=2.0)) if progress else None
        acts = hooks.capture(model, tok, probe_set.texts, ("head_out", "resid_post"), pool, progress=bar)
        save_file({"head_out": acts["head_out"].to(torch.float16), "resid_post": acts["resid_post"].to(torch.float16),
                   "labels": torch.from_numpy(probe_set.labels)}, out / "activations.safetensors")
        artifacts.write_json(out / "groups.json", probe_set.groups)

    return artifacts.cached("activations", ACTIVATIONS_VERSION, stage_config, build,
                            upstream={"pretrain": model_entry.key})


def probe(config: RunConfig, seed: int, pool: str = "last", l2: float = 1.0, split_seed: int = 0,
          keep_ambiguous: bool = False, top_k: int = 30, progress: bool = True) -> Entry:
    """Head and residual-stream probes for one model; `summary.json` holds the separability measures."""
    from toxlab import separability
    act_entry = activations(config, seed, pool, keep_ambiguous, progress)
    stage_config = {"l2": l2, "top_k": top_k, **_probe_data_config(keep_ambiguous, split_seed)}

    def build(out: Path, work: Path) -> None:
        from safetensors.torch import load_file
        tensors = load_file(act_entry.file("activations.safetensors"))
        groups = act_entry.json("groups.json")
        summary = separability.analyse(tensors["head_out"].float(), tensors["resid_post"].float(),
                                       tensors["labels"], groups, split_seed, l2, top_k, out)
        summary.update({"preset": config.preset, "toxic_fraction": config.data.toxic_fraction, "seed": seed,
                        "pool": pool})
        artifacts.write_json(out / "summary.json", summary)

    return artifacts.cached("probe", PROBE_VERSION, stage_config, build, upstream={"activations": act_entry.key})



def toy(condition, shares: list[float], seeds: list[int]) -> Entry:
    """The toy experiment for one condition (a `toxlab.toy.ToyConfig`): `rows.json` (one row per model) and
    `summary.json` (per share, for each direction estimator: rare vs control entanglement with intervals and
    a paired test)."""
    from toxlab import toy as toy_module
    condition = condition.validate()
    for share in shares:
        toy_module.chain_probabilities(share)  # validate before any training
    if not seeds:
        raise ConfigError("give at least one toy seed")
    stage_config = {"condition": dataclasses.asdict(condition), "shares": [float(s) for s in shares],
                    "seeds": [int(s) for s in seeds]}

    def build(out: Path, work: Path) -> None:
        _stderr(f"toy: training {len(shares) * len(seeds)} models ({condition.steps} steps) in one ensemble")
        rows = toy_module.run_condition(condition, list(shares), list(seeds))
        artifacts.write_json(out / "rows.json", rows)
        artifacts.write_json(out / "summary.json", {
            "condition": dataclasses.asdict(condition),
            "summary": toy_module.summarise(rows),
            "by_estimator": {name: toy_module.summarise(rows, name) for name in toy_module.ESTIMATORS},
            "welch_bound": toy_module.welch_bound(12, condition.d_model),
            "random_reference": toy_module.random_entanglement(12, condition.d_model)})

    return artifacts.cached("toy", TOY_VERSION, stage_config, build)
