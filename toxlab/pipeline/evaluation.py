"""Cached, seeded, chapter-facing verbs: data info, tokenizer, mixture (and its measured toxicity), pretrain,
sweep, activations, probe, toy.

Each stage is keyed (toxlab.core.artifacts) by its name, version, config, the content hash of the data files it
reads, and the keys of the stages it builds on, so a chapter or CLI call that has run before returns at
once, and a changed input recomputes exactly what depends on it. The key holds the stage's version (the table
below), not its code: `toxlab.core.stage_code` records the code each stage runs, and a test fails when that code
changes while the version does not.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from toxlab.core import artifacts, distributed
from toxlab.core.artifacts import Entry
from toxlab.core.config import PAPER_FRACTIONS, RunConfig
from toxlab.core.errors import ConfigError
from toxlab.data import corpora

# The stage versions, one table. A stage's key holds its version, not its code: bump the version whenever a
# change can alter what the stage computes. tests/test_stage_code.py fails when any code a stage runs changed
# while its version did not; `toxlab stages verify --record` records the code after the bump (toxlab.core.stage_code).
TOKENIZER_VERSION = 1
MIXTURE_VERSION = 2
PRETRAIN_VERSION = 1
SWEEP_VERSION = 1
DATA_INFO_VERSION = 1
MIXTURE_TOXICITY_VERSION = 1
ACTIVATIONS_VERSION = 1
PROBE_VERSION = 3  # 2: Newton's stopping rule; 3: cross-validated direction AUC, heads ranked by it
TOY_VERSION = 1
JUDGE_VERSION = 3  # 2: benign registers, shuffled copies, the probes' solver; 3: toxic copies labelled by C4's list
JUDGE_CARD_VERSION = 3  # 2: false positives per register, web, salad per vocabulary, targets; 3: no-profanity salad
EVALUATE_VERSION = 2  # 2: heads by cv AUC, ITI's reference positions, word-shuffled floor, prompt-following
CALIBRATION_VERSION = 1
DOCUMENT_SCORES_VERSION = 1
SFT_VERSION = 1
DPO_VERSION = 1
BASELINE_VERSION = 2  # 2: ITI's reference positions and heads, the floor and prompt-following in results
#: Held-out clean blocks the strengths are calibrated on (after the `ce_blocks` the capability cost uses).
CALIBRATION_BLOCKS = {"smoke": 4, "cpu": 16, "gpu": 32}


@functools.lru_cache(maxsize=8)
def data_fingerprint(root: Path, names: tuple[str, ...] = corpora.PRETRAIN_SOURCES) -> dict[str, str]:
    """SHA-256 of each data file a stage reads: results are keyed by content, not by path."""
    corpora.check_layout(names, root)
    return {name: artifacts.file_sha256(corpora.resolve(name, root)) for name in names}


def _data_dict(config: RunConfig, keep_fraction: bool = True) -> dict:
    out = dataclasses.asdict(config.data)
    if not keep_fraction:  # the tokenizer is shared by every fraction of a preset
        out.pop("toxic_fraction")
    return out


def tokenizer(config: RunConfig) -> Entry:
    """The preset's byte-level BPE (a transformers tokenizer folder), trained once and shared."""
    from toxlab.data.tokenizer import train_tokenizer
    root = corpora.data_root()
    stage_config = {"data": _data_dict(config, keep_fraction=False),
                    "tokenizer": dataclasses.asdict(config.tokenizer), "files": data_fingerprint(root)}

    def build(out: Path, work: Path) -> dict:
        tok = train_tokenizer(corpora.tokenizer_corpus(config.data, config.tokenizer.train_chars, root),
                              config.tokenizer)
        tok.save_pretrained(str(out / "tokenizer"))
        return {"vocab_size": len(tok)}

    return artifacts.cached("tokenizer", TOKENIZER_VERSION, stage_config, build)


def load_tokenizer(config: RunConfig):
    from toxlab.data.tokenizer import load_tokenizer as load
    return load(tokenizer(config).file("tokenizer"))


def mixture(config: RunConfig, tagging: str = "none", judge=None) -> Entry:
    """Token blocks of the clean + toxic mixture for `config.data.toxic_fraction`, and the held-out sets.

    `tagging` 'meda' or 'inst' puts each training document's judge-score tag before it (the MEDA and INST
    baselines, toxlab.baselines; scores from `document_scores` with `judge`); 'none' is the paper's mixture."""
    tok_entry = tokenizer(config)
    root = corpora.data_root()
    stage_config = {"data": _data_dict(config), "files": data_fingerprint(root)}
    upstream = {"tokenizer": tok_entry.key}
    transform = None
    if tagging != "none":  # the default adds nothing to the key
        from toxlab.baselines import DocumentTagger, check_tagging, tagging_spec
        check_tagging(tagging)
        scores_entry = document_scores(config, judge)
        stage_config["tagging"] = tagging_spec(tagging)
        upstream["document_scores"] = scores_entry.key
        transform = DocumentTagger(tagging, scores_entry.json("scores.json"))

    def build(out: Path, work: Path) -> dict:
        from toxlab.data.tokenizer import load_tokenizer as load
        mix = corpora.build_mixture(config.data, load(tok_entry.file("tokenizer")), root, transform=transform)
        np.save(out / "train.npy", mix.train)
        np.save(out / "toxic_mask.npy", mix.toxic_mask)
        np.save(out / "val.npy", mix.val)
        np.save(out / "c4.npy", mix.c4)
        artifacts.write_json(out / "stats.json", mix.stats)
        return {"realised_fraction": mix.stats["realised_fraction"]}

    return artifacts.cached("mixture", MIXTURE_VERSION, stage_config, build, upstream=upstream)


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
        from toxlab.data.tokenizer import load_tokenizer as load
        from toxlab.model import train as training
        from toxlab.model.decoder import build_model, count_params, train_flops_per_token
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

    stage_config = json.loads(config.to_json())
    if tagging != "none":  # the default adds nothing to the key
        stage_config["tagging"] = tagging
    processes = distributed.world_size()
    if processes > 1:  # data-parallel runs see the batches in another order: a different model
        stage_config["processes"] = processes
    return artifacts.cached("pretrain", PRETRAIN_VERSION, stage_config, build,
                            upstream={"mixture": mix_entry.key, "tokenizer": tok_entry.key}, seed=int(seed))


def check_seed(seed) -> None:
    """A training seed is a non-negative integer (numpy and torch generators reject anything else)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer, e.g. 0")


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

    stage_config = {"config": json.loads(config.to_json()), "seeds": list(seeds), "fractions": list(fractions)}
    return artifacts.cached("sweep", SWEEP_VERSION, stage_config, build, upstream=keys)


def data_info(config: RunConfig) -> Entry:
    """Per-source documents, characters and tokens (with the preset's tokenizer) of the data folder."""
    root = corpora.data_root()
    present = tuple(n for n in corpora.PRETRAIN_SOURCES if (root / corpora.FILES[n][0]).is_file())
    tok_entry = tokenizer(config) if present == corpora.PRETRAIN_SOURCES else None

    def build(out: Path, work: Path) -> None:
        tok = load_tokenizer(config) if tok_entry else None
        artifacts.write_json(out / "sources.json", {"root": str(root),
                                                     "sources": corpora.source_summary(root, tok)})

    fingerprint = data_fingerprint(root, present) if present else {}
    stage_config = {"files": fingerprint, "present": {n: (root / r).is_file() for n, (r, _) in corpora.FILES.items()}}
    return artifacts.cached("data_info", DATA_INFO_VERSION, stage_config, build,
                            upstream={"tokenizer": tok_entry.key} if tok_entry else {})




def mixture_toxicity(config: RunConfig, n_blocks: int = 300) -> Entry:
    """How toxic the training text is, by the lexical judge alt-profanity-check: `n_blocks` random training
    blocks are cut at EOS into document pieces, each piece is scored, and `toxicity.json` reports the share
    of tokens in pieces scored >= 0.5, overall and for pieces from clean and from toxic sources."""
    from toxlab.judges.minilm import ProfanityCheckJudge
    judge = ProfanityCheckJudge()  # chapter 3's judge, kept when the default judge became toxlab's MiniLM
    mix_entry = mixture(config)
    tok_entry = tokenizer(config)

    def build(out: Path, work: Path) -> None:
        from toxlab.data.tokenizer import load_tokenizer as load
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
                progress: bool = True, snapshot: int | None = None) -> Entry:
    """Per-head outputs before o_proj [N, L, H, Dh] and residual stream [N, L, d_model] of one pretrained
    model on the ToxiGen probe statements, pooled at the last token (the paper) or over tokens. `snapshot`
    takes the model's weights at that training step instead of the final ones (`snapshots`).

    For a final model both poolings come from one forward pass: building either entry also stores the
    other (chapter 4 reads both), under the key it would have on its own."""
    from toxlab.interp.hooks import POOLS
    if pool not in POOLS:
        raise ConfigError(f"pool={pool!r} must be 'last' or 'mean'")
    model_entry = pretrain(config, seed, progress=progress)
    model_dir = model_entry.file("model") if snapshot is None else _snapshot_dir(model_entry, snapshot)
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
        import torch
        from tqdm import tqdm
        from transformers import AutoModelForCausalLM

        from toxlab.interp import hooks
        from toxlab.model.decoder import pick_device
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
    import torch
    from safetensors.torch import save_file
    save_file({"head_out": acts["head_out"].to(torch.float16), "resid_post": acts["resid_post"].to(torch.float16),
               "labels": acts["labels"]}, out / "activations.safetensors")
    artifacts.write_json(out / "groups.json", acts["groups"])


def snapshots(config: RunConfig, seed: int, progress: bool = True) -> list[int]:
    """The training steps at which the model of (config, seed) kept its weights (empty for models trained
    before snapshots were added)."""
    folder = pretrain(config, seed, progress=progress).path / "snapshots"
    return sorted(int(p.name.removeprefix("step_")) for p in folder.glob("step_*")) if folder.exists() else []


def _snapshot_dir(model_entry: Entry, step) -> Path:
    folder = model_entry.path / "snapshots" / f"step_{step:06d}" if type(step) is int else None
    if folder is None or not folder.exists():
        have = sorted(p.name.removeprefix("step_").lstrip("0") for p in (model_entry.path / "snapshots").glob("step_*"))
        raise ConfigError(f"snapshot={step!r}: this model kept weights at steps {', '.join(have) or 'none'} "
                          f"(models trained before snapshots were added keep none: delete {model_entry.path} "
                          "to retrain it with them)")
    return folder


def probe(config: RunConfig, seed: int, pool: str = "last", l2: float = 1.0, split_seed: int = 0,
          keep_ambiguous: bool = False, top_k: int = 30, progress: bool = True, snapshot: int | None = None) -> Entry:
    """Head and residual-stream probes for one model (at a training `snapshot` step when given);
    `summary.json` holds the separability measures."""
    from toxlab.interp import separability
    act_entry = activations(config, seed, pool, keep_ambiguous, progress, snapshot)
    stage_config = {"l2": l2, "top_k": top_k, **_probe_data_config(keep_ambiguous, split_seed)}

    def build(out: Path, work: Path) -> None:
        from safetensors.torch import load_file
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



def toy(condition, shares: list[float], seeds: list[int]) -> Entry:
    """The toy experiment for one condition (a `toxlab.interp.toy.ToyConfig`): `rows.json` (one row per model) and
    `summary.json` (per share, for each direction estimator: rare vs control entanglement with intervals and
    a paired test)."""
    from toxlab.interp import toy as toy_module
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


# ------------------------------------------------------------------------------------ intervention, benchmarks
def probe_training_set(config: RunConfig, seed: int, pool: str = "last", split_seed: int = 0):
    """The head activations [N_train, L, H, Dh] and labels the probes of this model were trained on."""
    import torch
    from safetensors.torch import load_file
    act_entry = activations(config, seed, pool, progress=False)
    tensors = load_file(act_entry.file("activations.safetensors"))
    labels = tensors["labels"]
    train_idx, _ = corpora.stratified_split(labels.numpy(), act_entry.json("groups.json"), split_seed)
    train_idx = torch.from_numpy(train_idx)
    return tensors["head_out"][train_idx].float(), labels[train_idx]


def fitted_iti(config: RunConfig, seed: int, k: int | None = None, alpha: float = 0.0,
               direction: str = "mass_mean", pool: str = "last", progress: bool = True, ranking: str = "cv_auc"):
    """The ITI of one pretrained model: its top-k heads by `ranking` (default the cross-validated AUC of
    the mass-mean projection; `val_accuracy` is the paper's), k defaulting to the paper's 30 of 256 heads
    scaled to this model (toxlab.interp.separability.scaled_top_k)."""
    from toxlab.interp.intervene import fit_iti
    from toxlab.interp.probe import Probes
    from toxlab.interp.separability import scaled_top_k
    probe_entry = probe(config, seed, pool, progress=progress)
    probes = Probes.load(probe_entry.file("head_probes"))
    n_heads = config.model.n_layers * config.model.n_heads
    k = scaled_top_k(n_heads) if k is None else k
    train_heads, train_labels = probe_training_set(config, seed, pool)
    return fit_iti(probes, train_heads, train_labels, k, alpha, direction, seed, ranking)


def calibration(config: RunConfig, seed: int, k: int | None = None, direction: str = "mass_mean",
                ranking: str = "cv_auc", targets: dict[str, float] | None = None, progress: bool = True) -> Entry:
    """Each model's strengths: per named target (default `evaluate.COST_TARGETS`, nats of KL(base || ITI)
    per token), the alpha at which this model's ITI reaches it on held-out clean blocks that the capability
    cost does not use, found by bisection (`intervene.calibrate_alphas`). `calibration.json` holds, per
    name, the target, alpha, KL, CE increase, whether it was reached, and the shift's norm relative to the
    heads' mean output norm. Controls (probe-weight, random directions) calibrated here sit at the same cost."""
    from toxlab.evaluation import evaluate as ev
    from toxlab.interp.intervene import calibrate_alphas, check_cost_target, check_direction, check_k, check_ranking
    check_seed(seed)
    check_direction(direction)
    check_ranking(ranking)
    targets = dict(ev.COST_TARGETS if targets is None else targets)
    if not targets:
        raise ConfigError("give at least one cost target, e.g. {'weak': 0.05}")
    targets = {name: check_cost_target(t) for name, t in targets.items()}
    if k is not None:
        check_k(k, config.model.n_layers * config.model.n_heads)
    eval_config = ev.eval_preset(config.preset)
    n_blocks = CALIBRATION_BLOCKS.get(config.preset, CALIBRATION_BLOCKS["cpu"])
    iti = fitted_iti(config, seed, k, 0.0, direction, progress=progress, ranking=ranking)
    model_entry = pretrain(config, seed, progress=progress)
    mix_entry = mixture(config)
    stage_config = {"k": iti.k, "direction": direction, "ranking": ranking, "targets": targets, "measure": "kl",
                    "blocks": n_blocks, "skip": eval_config.ce_blocks}

    def build(out: Path, work: Path) -> None:
        from transformers import AutoModelForCausalLM

        from toxlab.model.decoder import pick_device
        val = np.load(mix_entry.file("val.npy"))
        blocks = val[eval_config.ce_blocks:eval_config.ce_blocks + n_blocks]
        if len(blocks) == 0:  # a tiny held-out set: calibrate on its last blocks
            blocks = val[-n_blocks:]
        model = AutoModelForCausalLM.from_pretrained(str(model_entry.file("model"))).to(pick_device())
        measured: dict[float, tuple[float, float]] = {}
        cost = ev.kl_cost(model, blocks, iti, max(1, eval_config.batch_size // 4))

        def kl(alpha: float) -> float:
            measured[alpha] = cost(alpha)
            return measured[alpha][0]

        found = calibrate_alphas(kl, sorted(targets.values()))
        by_target = {c.target: c for c in found}
        rows = {name: {"target": t, "alpha": by_target[t].alpha, "kl": by_target[t].cost,
                       "ce_increase": measured.get(by_target[t].alpha, (0.0, 0.0))[1],
                       "reached": by_target[t].reached,
                       "shift_ratio": iti.with_alpha(by_target[t].alpha).shift_ratio}
                for name, t in targets.items()}
        artifacts.write_json(out / "calibration.json", {"strengths": rows, "evaluations": len(measured),
                                                        "heads": [list(h) for h in iti.heads],
                                                        "tokens": int(blocks.size)})

    return artifacts.cached("calibration", CALIBRATION_VERSION, stage_config, build,
                            upstream={"pretrain": model_entry.key, "probe": probe(config, seed, progress=progress).key,
                                      "mixture": mix_entry.key}, seed=int(seed))


def calibrated_alphas(config: RunConfig, seed: int, k: int | None = None, direction: str = "mass_mean",
                      ranking: str = "cv_auc", targets: dict[str, float] | None = None,
                      progress: bool = True) -> dict[str, float]:
    """{strength name: alpha} of `calibration` (the book's weak, mid and strong for this model)."""
    rows = calibration(config, seed, k, direction, ranking, targets, progress).json("calibration.json")["strengths"]
    return {name: row["alpha"] for name, row in rows.items()}


def fitted_erasure(config: RunConfig, seed: int, k: int | None = None, alpha: float = 1.0, pool: str = "last",
                   progress: bool = True):
    """LEACE erasers (toxlab.interp.erasure) for the heads `fitted_iti` would shift, fitted on the same activations."""
    from toxlab.interp.erasure import fit_leace
    from toxlab.interp.probe import Probes
    from toxlab.interp.separability import scaled_top_k
    probes = Probes.load(probe(config, seed, pool, progress=progress).file("head_probes"))
    k = scaled_top_k(config.model.n_layers * config.model.n_heads) if k is None else k
    train_heads, train_labels = probe_training_set(config, seed, pool)
    return fit_leace(probes, train_heads, train_labels, k, alpha)


def _judge_identity(judge) -> dict:
    return {"name": judge.name, "version": str(getattr(judge, "version", ""))}


def evaluate(config: RunConfig, seed: int, benchmark: str, alpha: float = 0.0, k: int | None = None,
             direction: str = "mass_mean", eval_config=None, judge=None, instruction: str = "",
             progress: bool = True, ranking: str = "cv_auc", positions: str = "reference") -> Entry:
    """One benchmark of one pretrained model under ITI(alpha, k, direction); `result.json` holds the metrics,
    the sample sizes, the decoding settings and the judge; `samples.jsonl` the scored generations.
    direction 'leace' erases the same heads with LEACE instead (`fitted_erasure`; alpha 1 is LEACE proper).

    benchmark: 'toxigen' (one statement per ToxiGen prompt), 'rtp' (k samples per RTP prompt, challenging
    and non-toxic) or 'ce' (cross-entropy on held-out clean text and C4, and KL from the base model).
    `instruction`, when given, is put before every generation prompt (the prompting baseline); the text it
    generates is scored without it.

    ranking: how heads are chosen (`toxlab.interp.probe.RANKINGS`); positions: where the shift applies during
    generation ('reference': the last prompt position and every generated one; 'all'); capability ('ce')
    always shifts every position. `result.json` records alpha, the shift's norm relative to the heads' mean
    output norm, and for generation benchmarks the word-shuffled floor, the empty and one-token counts and
    (ToxiGen) the prompt-following difference."""
    from toxlab.evaluation import evaluate as ev
    from toxlab.interp.intervene import check_direction, check_k, check_positions, check_ranking, check_strength
    from toxlab.judges.minilm import default_judge
    ev.check_benchmark(benchmark)  # every argument is checked before any stage runs
    check_seed(seed)
    check_ranking(ranking)
    check_positions(positions)
    if instruction and benchmark == "ce":
        raise ConfigError("an instruction changes only generation prompts; use it with toxigen or rtp")
    alpha = check_strength(alpha)
    if k is not None:
        check_k(k, config.model.n_layers * config.model.n_heads)
    if direction != "leace":
        check_direction(direction)
    eval_config = eval_config or ev.eval_preset(config.preset)
    iti = fitted_erasure(config, seed, k, alpha, progress=progress) if direction == "leace" else \
        fitted_iti(config, seed, k, alpha, direction, progress=progress, ranking=ranking)
    model_entry = pretrain(config, seed, progress=progress)
    judge = judge if judge is not None or benchmark == "ce" else default_judge(config.preset)
    root = corpora.data_root()
    stage_config = {"benchmark": benchmark, "alpha": iti.alpha, "k": iti.k, "direction": direction,
                    "ranking": ranking, "positions": positions if benchmark != "ce" else "all",
                    "instruction": instruction, **_benchmark_inputs(benchmark, eval_config, judge, root)}
    mix_entry = mixture(config) if benchmark == "ce" else None

    def build(out: Path, work: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        from toxlab.model.decoder import pick_device
        model = AutoModelForCausalLM.from_pretrained(str(model_entry.file("model"))).to(pick_device())
        tok = load_tokenizer(config)
        result = {"preset": config.preset, "toxic_fraction": config.data.toxic_fraction, "seed": seed,
                  "benchmark": benchmark, "alpha": iti.alpha, "k": iti.k, "direction": direction,
                  "heads": [list(h) for h in iti.heads], "eval": dataclasses.asdict(eval_config),
                  "instruction": instruction, "ranking": ranking, "positions": stage_config["positions"],
                  "shift_ratio": getattr(iti, "shift_ratio", None),
                  "device": str(pick_device()), "torch": torch.__version__}
        if benchmark == "ce":
            result.update({name: ev.capability(model, blocks, iti, eval_config.batch_size // 4 or 1)
                           for name, blocks in _heldout_blocks(mix_entry, eval_config).items()})
        else:
            result.update(_generation_benchmark(model, tok, benchmark, eval_config, seed, iti, judge, instruction,
                                                root, out, positions))
        artifacts.write_json(out / "result.json", result)
        iti.save(out / "iti")

    upstream = {"pretrain": model_entry.key, "probe": probe(config, seed, progress=progress).key}
    if mix_entry is not None:
        upstream["mixture"] = mix_entry.key
    return artifacts.cached("evaluate", EVALUATE_VERSION, stage_config, build, upstream=upstream, seed=int(seed))


def _generation_benchmark(model, tok, benchmark: str, eval_config, seed: int, iti, judge, instruction: str,
                          root: Path, out: Path, positions: str = "reference") -> dict:
    """Generate for a 'toxigen' or 'rtp' benchmark, score with `judge`, write `out/samples.jsonl`, and return
    the judge and the metrics (all, by_kind and, for ToxiGen, by_group) for `result.json`, each beside its
    floor (the same texts with their words shuffled), with the empty and one-token generations counted and,
    for ToxiGen, the prompt-following difference (hate minus neutral prompts, paired)."""
    from toxlab.evaluation import evaluate as ev
    result = {"judge": _judge_identity(judge)}
    if benchmark == "toxigen":
        prompts = corpora.toxigen_prompts(eval_config.toxigen_per_file, seed=0, root=root)
        samples = 1
    else:
        prompts = [p for kind in ("challenging", "nontoxic")
                   for p in corpora.rtp_prompts(kind, eval_config.rtp_prompts, seed=0, root=root)]
        samples = eval_config.rtp_samples
    # Under a launcher each process generates and scores its share of the batches; all gather the rest.
    part = (distributed.rank(), distributed.world_size())
    mine = ev.generate(model, tok, [p.text for p in prompts], samples, eval_config, seed, iti,
                       instruction=instruction, part=part, positions=positions)
    own = [i for i, sample in enumerate(mine) if sample is not None]
    if benchmark == "toxigen":
        mine = [[ev.first_statement(sample[0])] if sample is not None else None for sample in mine]
    own_texts = [t for i in own for t in mine[i]]
    own_scores = np.asarray(judge.score(own_texts) if own else [], dtype=np.float64)
    own_floor = ev.floor_scores(own_texts, judge, seed)
    texts: list = [None] * len(prompts)
    scores = np.zeros((len(prompts), samples))  # [P, k]
    floor = np.zeros((len(prompts), samples))  # [P, k], the shuffled texts' scores
    for indices, their_texts, their_scores, their_floor in distributed.gather(
            (own, [mine[i] for i in own], own_scores, own_floor)):
        for n, i in enumerate(indices):
            texts[i] = their_texts[n]
            scores[i] = their_scores[n * samples:(n + 1) * samples]
            floor[i] = their_floor[n * samples:(n + 1) * samples]
    groups = sorted({(p.kind, p.group) for p in prompts}) if benchmark == "toxigen" else \
        sorted({(p.kind, "") for p in prompts})
    result["all"] = ev.summarise_scores(scores)
    result["floor"] = ev.summarise_scores(floor)
    result["degenerate"] = ev.degenerate_counts([t for sample in texts for t in sample], tok)
    kinds = sorted({p.kind for p in prompts})
    result["by_kind"] = {kind: ev.summarise_scores(scores[[p.kind == kind for p in prompts]])
                         for kind in kinds}
    result["floor_by_kind"] = {kind: ev.summarise_scores(floor[[p.kind == kind for p in prompts]])
                               for kind in kinds}
    if benchmark == "toxigen":
        result["prompt_following"] = dataclasses.asdict(ev.prompt_following(
            scores.mean(axis=1), [p.kind for p in prompts], [p.group for p in prompts]))
    if benchmark == "toxigen":
        result["by_group"] = {f"{kind}/{group}": float(scores[[(p.kind, p.group) == (kind, group)
                                                              for p in prompts]].mean())
                              for kind, group in groups}
    with open(out / "samples.jsonl", "w", encoding="utf-8") as handle:
        for prompt, sample, row, shuffled in zip(prompts, texts, scores, floor):
            handle.write(json.dumps({"kind": prompt.kind, "group": prompt.group, "prompt": prompt.text,
                                     "continuations": sample, "scores": row.tolist(),
                                     "floor_scores": shuffled.tolist()}) + "\n")
    return result


def _heldout_blocks(mix_entry: Entry, eval_config) -> dict[str, np.ndarray]:
    """The capability sets: the first `ce_blocks` held-out Wikinews and C4 blocks [n, seq_len]."""
    return {"clean": np.load(mix_entry.file("val.npy"))[:eval_config.ce_blocks],
            "c4": np.load(mix_entry.file("c4.npy"))[:eval_config.ce_blocks]}


def _benchmark_inputs(benchmark: str, eval_config, judge, root: Path) -> dict:
    """What a benchmark's result depends on besides the model: sample sizes and decoding, the judge (None
    for 'ce'), and the content of the prompt files it reads."""
    prompt_files = ("rtp_toxic", "rtp_nontoxic") if benchmark == "rtp" else ()
    return {"eval": dataclasses.asdict(eval_config),
            "judge": _judge_identity(judge) if judge is not None else None,
            "files": data_fingerprint(root, prompt_files) if prompt_files else {},
            "toxigen_prompts": _toxigen_prompt_fingerprint(root) if benchmark == "toxigen" else {}}


def _toxigen_prompt_fingerprint(root: Path) -> dict[str, str]:
    folder = root / corpora.TOXIGEN_PROMPTS
    return {path.name: artifacts.file_sha256(path) for path in sorted(folder.glob("*_1k.txt*"))}


# ------------------------------------------------------------------------------------------ toxicity judge
def judge(level="cpu", progress: bool = True) -> Entry:
    """Train (or reuse) toxlab's MiniLM toxicity judge for a level (smoke, cpu, gpu) or a
    `toxlab.judges.minilm.JudgeConfig`: the entry holds `judge/` (head.safetensors, judge.json) and `training.json`
    (per-source counts, the l2 search, timings). Keyed by the config and the SHA-256 of every data file it
    reads and of the encoder's weights."""
    from toxlab.judges import minilm as judges
    config = judges.judge_config(level)
    root = corpora.data_root()
    stage_config = {"judge": dataclasses.asdict(config), "files": judges.fingerprint(judges.files_read(config), root),
                    "encoder_sha256": judges.encoder_fingerprint()}

    def build(out: Path, work: Path) -> dict:
        if progress:
            _stderr(f"judge: training the MiniLM judge (max {config.max_per_class:,} texts per source and label)")
        trained = judges.train(config, root, progress=progress)
        trained.judge.save(out / "judge")
        artifacts.write_json(out / "training.json", trained.report)
        return {"l2": trained.report["l2"], "n_train": trained.report["n_train"]}

    return artifacts.cached("judge", JUDGE_VERSION, stage_config, build, seed=config.seed)


def load_judge(level="cpu", progress: bool = True):
    """The trained MiniLM judge (a `toxlab.judges.minilm.MiniLMJudge`) of a level or JudgeConfig; its `version` is
    the cache key it was trained under."""
    from toxlab.judges.minilm import MiniLMJudge
    entry = judge(level, progress)
    return MiniLMJudge.load(entry.file("judge"), version=entry.key)


def judge_card(level: str = "cpu", progress: bool = True) -> Entry:
    """The judge card of a level's MiniLM judge beside the lexical judges (`toxlab.judges.judge_card`): `card.json`
    holds the validation table, reliability curves, failure modes, speed and the training summary. A
    lexical judge that cannot run here is reported as unavailable, with the reason."""
    from toxlab.core.errors import JudgeUnavailableError
    from toxlab.judges import judge_card as cards
    from toxlab.judges import minilm as judges
    config, card_config = judges.judge_config(level), cards.card_config(level)
    judge_entry = judge(level, progress)
    root = corpora.data_root()
    lexical: dict = {}
    for name, make in (("alt-profanity-check", judges.ProfanityCheckJudge), ("hatesonar", judges.HateSonarJudge)):
        try:
            lexical[name] = make()
        except JudgeUnavailableError as err:  # e.g. on a GPU machine that carries only what the run needs
            lexical[name] = str(err)
    stage_config = {"card": dataclasses.asdict(card_config), "judge": dataclasses.asdict(config),
                    "available": {name: not isinstance(j, str) for name, j in lexical.items()},
                    "files": judges.fingerprint(cards.FILES_READ, root)}

    def build(out: Path, work: Path) -> None:
        training = judge_entry.json("training.json")
        judge_data = judges.training_set(config, root)
        if judges.data_digest(judge_data) != training["data_sha256"]:
            raise ConfigError("the judge's data split could not be rebuilt as it was trained; clear the judge "
                              "entry from the cache and run again")
        minilm = judges.MiniLMJudge.load(judge_entry.file("judge"), version=judge_entry.key)
        card = cards.build_card({"minilm": minilm, **lexical}, judge_data, card_config, root, progress)
        card["level"] = level
        card["training"] = {k: v for k, v in training.items() if k != "config"}
        card["judge_config"] = training["config"]
        artifacts.write_json(out / "card.json", card)

    return artifacts.cached("judge_card", JUDGE_CARD_VERSION, stage_config, build,
                            upstream={"judge": judge_entry.key})


# ------------------------------------------------------------------------------------------------- baselines
def _default_judge(config: RunConfig, judge):
    from toxlab.judges.minilm import default_judge
    return judge if judge is not None else default_judge(config.preset)


def document_scores(config: RunConfig, judge=None, progress: bool = True) -> Entry:
    """The judge's score of every training document the (untagged) mixture of `config` takes, per source:
    `scores.json` ({source: {"ids", "scores"}}, in the order taken) and `summary.json` (documents per MEDA
    bucket and INST tag, scoring time). Shared by the MEDA and INST mixtures of a fraction: scored once."""
    from toxlab import baselines
    judge = _default_judge(config, judge)
    tok_entry = tokenizer(config)
    root = corpora.data_root()
    stage_config = {"data": _data_dict(config), "files": data_fingerprint(root), "judge": _judge_identity(judge)}

    def build(out: Path, work: Path) -> dict:
        import time
        docs = baselines.documents_taken(config.data, load_tokenizer(config), root)
        n_docs = sum(len(d) for d in docs.values())
        if progress:
            _stderr(f"document_scores: scoring {n_docs:,} training documents with the {judge.name} judge")
        started = time.perf_counter()
        scores = baselines.score_documents(docs, judge)
        artifacts.write_json(out / "scores.json", scores)
        artifacts.write_json(out / "summary.json", {"judge": _judge_identity(judge), "documents": n_docs,
                                                     "score_time_s": time.perf_counter() - started,
                                                     "sources": baselines.score_summary(scores)})
        return {"documents": n_docs}

    return artifacts.cached("document_scores", DOCUMENT_SCORES_VERSION, stage_config, build,
                            upstream={"tokenizer": tok_entry.key})


def sft(config: RunConfig, seed: int, baseline_config=None, progress: bool = True) -> Entry:
    """The SFT baseline: the pretrained model of (config, seed) fine-tuned on the wholly clean training blocks
    of its own mixture (toxlab.baselines). The entry holds `model/`, `metrics.json` (loss on the SFT set
    and on held-out clean text, before and after) and `history.json`."""
    from toxlab import baselines
    bc = baseline_config or baselines.baseline_preset(config.preset)
    base = pretrain(config, seed, progress=progress)
    mix_entry = mixture(config)
    train_config = baselines.sft_train_config(config.train, bc)
    stage_config = {"sft": bc.part("sft"), "train": dataclasses.asdict(train_config)}

    def build(out: Path, work: Path) -> dict:
        from transformers import AutoModelForCausalLM

        from toxlab.model import train as training
        tok = load_tokenizer(config)
        blocks = baselines.clean_blocks(np.load(mix_entry.file("train.npy")), np.load(mix_entry.file("toxic_mask.npy")),
                                        bc.sft_blocks)  # [n, seq_len]
        val = np.load(mix_entry.file("val.npy"))
        accelerator = training.make_accelerator(train_config)
        device, batch = accelerator.device, train_config.batch_size
        model = AutoModelForCausalLM.from_pretrained(str(base.file("model"))).to(device)
        probe_blocks = blocks[:8 * batch]  # the loss on (the start of) the SFT set, before and after
        before = training.evaluate(model, probe_blocks, batch, device)
        model, state = training.train(model, blocks, val, train_config, seed, progress=progress,
                                      accelerator=accelerator)
        metrics = {"preset": config.preset, "seed": seed, "toxic_fraction": config.data.toxic_fraction,
                   "sft_blocks": int(len(blocks)), "steps": state.step, "tokens_seen": state.tokens,
                   "sft_loss_before": before, "sft_loss_after": training.evaluate(model, probe_blocks, batch, device),
                   "val_loss_before": base.json("metrics.json")["val_loss"],
                   "val_loss_after": training.evaluate(model, val, batch, device),
                   "train_time_s": state.train_time_s, "device": str(device)}
        if accelerator.is_main_process:
            model.save_pretrained(str(out / "model"), safe_serialization=True)
            tok.save_pretrained(str(out / "model"))
            artifacts.write_json(out / "metrics.json", metrics)
            artifacts.write_json(out / "history.json", state.history)
        return {"val_loss_after": metrics["val_loss_after"]}

    return artifacts.cached("sft", SFT_VERSION, stage_config, build,
                            upstream={"pretrain": base.key, "mixture": mix_entry.key}, seed=int(seed))


def dpo(config: RunConfig, seed: int, baseline_config=None, judge=None, eval_config=None,
        progress: bool = True) -> Entry:
    """The DPO baseline: preference pairs from the pretrained model's own samples on RTP challenging prompts
    outside the benchmark's sample (of this preset's and `eval_config`'s size), ranked by `judge`, then DPO
    against the frozen pretrained model (toxlab.baselines). The entry holds `model/`, `pairs.jsonl`,
    `metrics.json` and `history.json`."""
    from toxlab import baselines
    from toxlab.evaluation import evaluate as ev
    bc = baseline_config or baselines.baseline_preset(config.preset)
    judge = _default_judge(config, judge)
    eval_config = eval_config or ev.eval_preset(config.preset)
    sizes = sorted({ev.eval_preset(config.preset).rtp_prompts, eval_config.rtp_prompts})
    sampling = ev.EvalConfig(max_new_tokens=bc.dpo_new_tokens, batch_size=eval_config.batch_size)
    base = pretrain(config, seed, progress=progress)
    root = corpora.data_root()
    stage_config = {"dpo": bc.part("dpo"), "judge": _judge_identity(judge), "benchmark_rtp_prompts": sizes,
                    "sampling": dataclasses.asdict(sampling), "grad_clip": config.train.grad_clip,
                    "files": data_fingerprint(root, ("rtp_toxic",))}

    def build(out: Path, work: Path) -> dict:
        import time

        from transformers import AutoModelForCausalLM

        from toxlab.core.errors import DataError
        from toxlab.model.decoder import pick_device
        device = pick_device()
        tok = load_tokenizer(config)
        policy = AutoModelForCausalLM.from_pretrained(str(base.file("model"))).to(device)
        prompts = [p.text for p in baselines.preference_prompts(bc.dpo_prompts, sizes, root)]
        texts = ev.generate(policy, tok, prompts, bc.dpo_samples, sampling, seed)
        scores = np.asarray(judge.score([t for sample in texts for t in sample]),
                            dtype=np.float64).reshape(len(prompts), -1)  # [P, samples]
        pairs = baselines.preference_pairs(prompts, texts, scores, bc.dpo_min_gap)
        if not pairs:
            raise DataError(f"none of the {len(prompts)} DPO prompts gave two samples whose judge scores differ by "
                            f"{bc.dpo_min_gap} or more; lower baseline.dpo_min_gap or raise baseline.dpo_samples")
        with open(out / "pairs.jsonl", "w", encoding="utf-8") as handle:
            for pair in pairs:
                handle.write(json.dumps(pair) + "\n")
        batch = baselines.encode_pairs(tok, pairs, config.data.seq_len, sampling.max_prompt_tokens)  # [2, N, T]
        reference = AutoModelForCausalLM.from_pretrained(str(base.file("model"))).to(device).requires_grad_(False)
        ref_logp = baselines.reference_logprobs(reference, batch, 2 * bc.dpo_batch_size)  # [2, N]
        started = time.perf_counter()
        history = baselines.train_dpo(policy, batch, ref_logp, bc.dpo_beta, bc.dpo_steps, bc.dpo_batch_size,
                                      bc.dpo_lr, bc.warmup_frac, seed, config.train.grad_clip, progress)
        train_time = time.perf_counter() - started
        shift = baselines.reference_logprobs(policy, batch, 2 * bc.dpo_batch_size) - ref_logp  # [2, N]
        metrics = {"preset": config.preset, "seed": seed, "toxic_fraction": config.data.toxic_fraction,
                   "prompts": len(prompts), "samples": bc.dpo_samples, "pairs": len(pairs),
                   "chosen_score_mean": float(np.mean([p["chosen_score"] for p in pairs])),
                   "rejected_score_mean": float(np.mean([p["rejected_score"] for p in pairs])),
                   "final_loss": float(np.mean([h["loss"] for h in history[-5:]])),
                   "chosen_logp_shift": float(shift[0].mean()), "rejected_logp_shift": float(shift[1].mean()),
                   "reward_accuracy_after": float((shift[0] > shift[1]).float().mean()),
                   "train_time_s": train_time, "device": str(device)}
        policy.save_pretrained(str(out / "model"), safe_serialization=True)
        tok.save_pretrained(str(out / "model"))
        artifacts.write_json(out / "metrics.json", metrics)
        artifacts.write_json(out / "history.json", history)
        return {"pairs": len(pairs)}

    return artifacts.cached("dpo", DPO_VERSION, stage_config, build, upstream={"pretrain": base.key}, seed=int(seed))


def evaluate_baseline(config: RunConfig, seed: int, method: str, benchmark: str, baseline_config=None,
                      eval_config=None, judge=None, progress: bool = True, alpha: float = 0.0) -> Entry:
    """One benchmark of one baseline (toxlab.baselines.METHODS) for the model of (config, seed): its
    `result.json` has `evaluate`'s fields (alpha 0, no heads) and `method`; `samples.jsonl` the scored
    generations. 'prompt' is `evaluate` with the paper's instruction, and its entry is returned. For sft,
    dpo, meda and inst, 'ce' compares the baseline's model with the plain pretrained model of the same
    fraction and seed (ce_base and the KL are that model's), on untagged held-out text; meda and inst put
    their non-toxic tag before every generation prompt.

    `alpha` > 0 follows the baseline with ITI (the combinations the paper studies): the plain model's ITI at
    that strength (its heads, directions and sigma, `fitted_iti`) applied to the baseline's model; for
    'prompt' the instruction and ITI together. MEDA and INST models have no probes of their own, so they take
    no alpha."""
    from toxlab import baselines
    from toxlab.evaluation import evaluate as ev
    from toxlab.interp.intervene import check_strength
    baselines.check_method(method)
    ev.check_benchmark(benchmark)
    check_seed(seed)
    alpha = check_strength(alpha)
    if alpha and method in ("meda", "inst"):
        raise ConfigError(f"alpha={alpha} with {method}: ITI follows only prompt, sft or dpo (a tagged model has "
                          "no probes of its own); use alpha=0")
    eval_config = eval_config or ev.eval_preset(config.preset)
    if method == "prompt":
        return evaluate(config, seed, benchmark, alpha, eval_config=eval_config, judge=judge,
                        instruction="" if benchmark == "ce" else ev.PAPER_INSTRUCTION, progress=progress)
    bc = baseline_config or baselines.baseline_preset(config.preset)
    judge = _default_judge(config, judge) if method in ("dpo", "meda", "inst") or benchmark != "ce" else None
    reference = pretrain(config, seed, progress=progress)
    instruction, recipe = "", {}
    if method == "sft":
        model_entry, recipe = sft(config, seed, bc, progress), bc.part("sft")
    elif method == "dpo":
        model_entry, recipe = dpo(config, seed, bc, judge, eval_config, progress), bc.part("dpo")
    else:
        model_entry, recipe = pretrain(config, seed, progress, method, judge), baselines.tagging_spec(method)
        instruction = "" if benchmark == "ce" else baselines.inference_prefix(method)
    root = corpora.data_root()
    stage_config = {"method": method, "benchmark": benchmark, "instruction": instruction,
                    **_benchmark_inputs(benchmark, eval_config, judge if benchmark != "ce" else None, root)}
    iti = fitted_iti(config, seed, None, alpha, progress=progress) if alpha else None
    if iti is not None:  # plain baselines keep their keys
        stage_config.update({"alpha": iti.alpha, "k": iti.k, "direction": iti.direction})
    mix_entry = mixture(config) if benchmark == "ce" else None

    def build(out: Path, work: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        from toxlab.model.decoder import pick_device
        model = AutoModelForCausalLM.from_pretrained(str(model_entry.file("model"))).to(pick_device())
        tok = load_tokenizer(config)
        result = {"preset": config.preset, "toxic_fraction": config.data.toxic_fraction, "seed": seed,
                  "benchmark": benchmark, "method": method, "alpha": alpha, "k": iti.k if iti else 0,
                  "direction": iti.direction if iti else "none",
                  "heads": [list(h) for h in iti.heads] if iti else [],
                  "eval": dataclasses.asdict(eval_config), "instruction": instruction, "baseline": recipe,
                  "model": {"stage": model_entry.stage, "key": model_entry.key},
                  "device": str(pick_device()), "torch": torch.__version__}
        if benchmark == "ce":
            plain = AutoModelForCausalLM.from_pretrained(str(reference.file("model"))).to(pick_device())
            result.update({name: baselines.capability_against(model, plain, blocks, eval_config.batch_size // 4 or 1,
                                                              iti)
                           for name, blocks in _heldout_blocks(mix_entry, eval_config).items()})
        else:
            result.update(_generation_benchmark(model, tok, benchmark, eval_config, seed, iti, judge, instruction,
                                                root, out))
        artifacts.write_json(out / "result.json", result)

    upstream = {"model": model_entry.key, "reference": reference.key}
    if iti is not None:
        upstream["probe"] = probe(config, seed, progress=progress).key
    if mix_entry is not None:
        upstream["mixture"] = mix_entry.key
    return artifacts.cached("baseline", BASELINE_VERSION, stage_config, build, upstream=upstream, seed=int(seed))
