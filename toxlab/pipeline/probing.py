"""The probing stages (paper Sections 2, 4 and 5): activations at the named sites, the probes and their
separability, the toy experiment, and the fitted interventions (ITI, LEACE) that evaluation applies."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import AutoModelForCausalLM

from toxlab.core import artifacts
from toxlab.core.artifacts import Entry
from toxlab.core.config import RunConfig
from toxlab.core.errors import ConfigError
from toxlab.data import corpora
from toxlab.interp import hooks, separability
from toxlab.interp import toy as toy_module
from toxlab.interp.erasure import fit_leace
from toxlab.interp.hooks import POOLS
from toxlab.interp.intervene import fit_iti
from toxlab.interp.probe import Probes
from toxlab.interp.separability import scaled_top_k
from toxlab.model.decoder import pick_device
from toxlab.pipeline.common import data_fingerprint, log_line
from toxlab.pipeline.mixtures import load_tokenizer
from toxlab.pipeline.pretraining import pretrain, snapshot_dir
from toxlab.pipeline.versions import ACTIVATIONS_VERSION, PROBE_VERSION, TOY_VERSION


def _probe_data_config(keep_ambiguous: bool, split_seed: int) -> dict:
    return {"threshold": 3.0, "keep_ambiguous": keep_ambiguous, "split_seed": split_seed, "val_fraction": 0.2}


def activations(config: RunConfig, seed: int, pool: str = "last", keep_ambiguous: bool = False,
                progress: bool = True, snapshot: int | None = None) -> Entry:
    """Per-head outputs before o_proj [N, L, H, Dh] and residual stream [N, L, d_model] of one pretrained
    model on the ToxiGen probe statements, pooled at the last token (the paper) or over tokens. `snapshot`
    takes the model's weights at that training step instead of the final ones (`snapshots`).

    For a final model both poolings come from one forward pass: building either entry also stores the
    other (chapter 4 reads both), under the key it would have on its own."""
    if pool not in POOLS:
        raise ConfigError(f"pool={pool!r} must be 'last' or 'mean'")
    model_entry = pretrain(config, seed, progress=progress)
    model_dir = model_entry.file("model") if snapshot is None else snapshot_dir(model_entry, snapshot)
    root = corpora.data_root()

    def stage_config(pool: str) -> dict:
        found = {"pool": pool, "keep_ambiguous": keep_ambiguous,
                 "files": data_fingerprint(root, ("toxigen_annotated",))}
        if snapshot is not None:  # the final model keeps its key
            found["snapshot"] = int(snapshot)
        return found

    def cached(pool: str, build) -> Entry:
        return artifacts.cached("activations", ACTIVATIONS_VERSION, stage_config(pool), build,
                                upstream={"pretrain": model_entry.key})

    captured: dict[str, dict] = {}

    def build(out: Path, work: Path) -> None:

        probe_set = corpora.toxigen_probe_set(keep_ambiguous=keep_ambiguous, root=root)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir)).to(pick_device())
        tok = load_tokenizer(config)
        bar = (lambda it: tqdm(it, desc="capture", unit="batch", mininterval=2.0)) if progress else None
        pools = (pool,) if snapshot is not None else POOLS
        acts = hooks.capture_pools(model, tok, probe_set.texts, ("head_out", "resid_post"), pools, progress=bar)
        captured.update({p: {**acts[p], "labels": torch.from_numpy(probe_set.labels), "groups": probe_set.groups}
                         for p in pools})
        _save_activations(out, captured[pool])

    def sibling(acts: dict):
        def build(out: Path, work: Path) -> dict:
            _save_activations(out, acts)
            return {"captured_with": entry.key}  # its forward pass's time is in that entry's wall_s
        return build

    entry = cached(pool, build)
    for other, acts in captured.items():  # empty when `pool` came from the cache
        if other != pool:
            cached(other, sibling(acts))
    return entry


def _save_activations(out: Path, acts: dict) -> None:
    save_file({"head_out": acts["head_out"].to(torch.float16), "resid_post": acts["resid_post"].to(torch.float16),
               "labels": acts["labels"]}, out / "activations.safetensors")
    artifacts.write_json(out / "groups.json", acts["groups"])


def probe(config: RunConfig, seed: int, pool: str = "last", l2: float = 1.0, split_seed: int = 0,
          keep_ambiguous: bool = False, top_k: int = 30, progress: bool = True, snapshot: int | None = None) -> Entry:
    """Head and residual-stream probes for one model (at a training `snapshot` step when given);
    `summary.json` holds the separability measures."""
    act_entry = activations(config, seed, pool, keep_ambiguous, progress, snapshot)
    stage_config = {"l2": l2, "top_k": top_k, **_probe_data_config(keep_ambiguous, split_seed)}

    def build(out: Path, work: Path) -> None:
        tensors = load_file(act_entry.file("activations.safetensors"))
        groups = act_entry.json("groups.json")
        summary = separability.analyse(tensors["head_out"].float(), tensors["resid_post"].float(),
                                       tensors["labels"], groups, split_seed, l2, top_k, out)
        summary.update({"preset": config.preset, "toxic_fraction": config.data.toxic_fraction, "seed": seed,
                        "pool": pool})
        if snapshot is not None:
            summary["snapshot"] = int(snapshot)
        artifacts.write_json(out / "summary.json", summary)

    return artifacts.cached("probe", PROBE_VERSION, stage_config, build, upstream={"activations": act_entry.key})


def toy_condition(steps: int, changes: dict | None = None):
    """A condition of the toy experiment (`toxlab.interp.toy.ToyConfig`): the baseline trained for `steps`, with
    `changes` (field -> value, each parsed to its field's type; an unknown field fails with the fields listed)."""
    baseline = toy_module.ToyConfig(steps=steps)
    return toy_module.parse_overrides(baseline, [f"{k}={v}" for k, v in (changes or {}).items()]).validate()


def toy(condition, shares: list[float], seeds: list[int]) -> Entry:
    """The toy experiment for one condition (a `toxlab.interp.toy.ToyConfig`): `rows.json` (one row per model) and
    `summary.json` (per share, for each direction estimator: rare vs control entanglement with intervals and
    a paired test)."""
    condition = condition.validate()
    for share in shares:
        toy_module.chain_probabilities(share)  # validate before any training
    if not seeds:
        raise ConfigError("give at least one toy seed")
    stage_config = {"condition": dataclasses.asdict(condition), "shares": [float(s) for s in shares],
                    "seeds": [int(s) for s in seeds]}

    def build(out: Path, work: Path) -> None:
        log_line(f"toy: training {len(shares) * len(seeds)} models ({condition.steps} steps) in one ensemble")
        rows = toy_module.run_condition(condition, list(shares), list(seeds))
        artifacts.write_json(out / "rows.json", rows)
        artifacts.write_json(out / "summary.json", {
            "condition": dataclasses.asdict(condition),
            "summary": toy_module.summarise(rows),
            "by_estimator": {name: toy_module.summarise(rows, name) for name in toy_module.ESTIMATORS},
            "welch_bound": toy_module.welch_bound(12, condition.d_model),
            "random_reference": toy_module.random_entanglement(12, condition.d_model)})

    return artifacts.cached("toy", TOY_VERSION, stage_config, build)


def probe_training_set(config: RunConfig, seed: int, pool: str = "last", split_seed: int = 0):
    """The head activations [N_train, L, H, Dh] and labels the probes of this model were trained on."""
    act_entry = activations(config, seed, pool, progress=False)
    tensors = load_file(act_entry.file("activations.safetensors"))
    labels = tensors["labels"]
    train_idx, _ = separability.probe_split(labels, act_entry.json("groups.json"), split_seed)
    return tensors["head_out"][train_idx].float(), labels[train_idx]


def paper_k(config: RunConfig) -> int:
    """The number of heads ITI shifts by default: the paper's 30 of Olmo-1B's 256 heads, scaled to this model's
    heads (`toxlab.interp.separability.scaled_top_k`)."""
    return scaled_top_k(config.model.n_layers * config.model.n_heads)


def fitted_iti(config: RunConfig, seed: int, k: int | None = None, alpha: float = 0.0,
               direction: str = "mass_mean", pool: str = "last", progress: bool = True, ranking: str = "cv_auc"):
    """The ITI of one pretrained model: its top-k heads by `ranking` (default the cross-validated AUC of
    the mass-mean projection; `val_accuracy` is the paper's), k defaulting to `paper_k`."""
    probe_entry = probe(config, seed, pool, progress=progress)
    probes = Probes.load(probe_entry.file("head_probes"))
    k = paper_k(config) if k is None else k
    train_heads, train_labels = probe_training_set(config, seed, pool)
    return fit_iti(probes, train_heads, train_labels, k, alpha, direction, seed, ranking)


def fitted_erasure(config: RunConfig, seed: int, k: int | None = None, alpha: float = 1.0, pool: str = "last",
                   progress: bool = True):
    """LEACE erasers (toxlab.interp.erasure) for the heads `fitted_iti` would shift, fitted on the same activations."""
    probes = Probes.load(probe(config, seed, pool, progress=progress).file("head_probes"))
    k = paper_k(config) if k is None else k
    train_heads, train_labels = probe_training_set(config, seed, pool)
    return fit_leace(probes, train_heads, train_labels, k, alpha)
