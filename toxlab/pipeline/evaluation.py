"""The evaluation stages (paper Section 5, Figure 6): each model's calibrated ITI strengths, and one benchmark
(ToxiGen, RTP or capability) of one model under ITI or LEACE."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from toxlab.core import artifacts, distributed
from toxlab.core.artifacts import Entry
from toxlab.core.config import RunConfig
from toxlab.core.errors import ConfigError
from toxlab.data import corpora
from toxlab.evaluation import evaluate as ev
from toxlab.evaluation.evaluate import eval_preset  # also the chapters' way to the evaluation settings
from toxlab.interp.intervene import (
    check_cost_target,
    check_direction,
    check_k,
    check_positions,
    check_ranking,
    check_strength,
)
from toxlab.model.decoder import pick_device
from toxlab.pipeline.common import check_seed, data_fingerprint
from toxlab.pipeline.judging import judge_identity, judge_or_default
from toxlab.pipeline.mixtures import load_tokenizer, mixture
from toxlab.pipeline.pretraining import pretrain
from toxlab.pipeline.probing import fitted_erasure, fitted_iti, probe
from toxlab.pipeline.versions import CALIBRATION_VERSION, EVALUATE_VERSION

#: Held-out clean blocks the strengths are calibrated on (after the `ce_blocks` the capability cost uses).
CALIBRATION_BLOCKS = {"smoke": 4, "cpu": 16, "gpu": 32}


def calibration_targets(targets: dict[str, float] | None, direction: str, ranking: str) -> dict[str, float]:
    """A calibration's named cost targets (default `evaluate.COST_TARGETS`), each checked, once its direction
    and ranking are: what `calibration` and `external.calibration` both take."""
    check_direction(direction)
    check_ranking(ranking)
    targets = dict(ev.COST_TARGETS if targets is None else targets)
    if not targets:
        raise ConfigError("give at least one cost target, e.g. {'weak': 0.05}")
    return {name: check_cost_target(t) for name, t in targets.items()}


def calibration(config: RunConfig, seed: int, k: int | None = None, direction: str = "mass_mean",
                ranking: str = "cv_auc", targets: dict[str, float] | None = None, progress: bool = True) -> Entry:
    """Each model's strengths: per named target (default `evaluate.COST_TARGETS`, nats of KL(base || ITI)
    per token), the alpha at which this model's ITI reaches it on held-out clean blocks that the capability
    cost does not use, found by power-law steps (`intervene.calibrate_alphas`). `calibration.json` holds, per
    name, the target, alpha, KL, CE increase, whether it was reached, and the shift's norm relative to the
    heads' mean output norm. Controls (probe-weight, random directions) calibrated here sit at the same cost."""
    check_seed(seed)
    targets = calibration_targets(targets, direction, ranking)
    if k is not None:
        check_k(k, config.model.n_layers * config.model.n_heads)
    eval_config = eval_preset(config.preset)
    n_blocks = CALIBRATION_BLOCKS.get(config.preset, CALIBRATION_BLOCKS["cpu"])
    iti = fitted_iti(config, seed, k, 0.0, direction, progress=progress, ranking=ranking)
    model_entry = pretrain(config, seed, progress=progress)
    mix_entry = mixture(config)
    stage_config = {"k": iti.k, "direction": direction, "ranking": ranking, "targets": targets, "measure": "kl",
                    "blocks": n_blocks, "skip": eval_config.ce_blocks}

    def build(out: Path, work: Path) -> None:

        val = np.load(mix_entry.file("val.npy"))
        blocks = val[eval_config.ce_blocks:eval_config.ce_blocks + n_blocks]
        if len(blocks) == 0:  # a tiny held-out set: calibrate on its last blocks
            blocks = val[-n_blocks:]
        artifacts.write_json(out / "calibration.json", ev.calibrate(load_model(model_entry), blocks, iti, targets,
                                                                  max(1, eval_config.batch_size // 4)))

    return artifacts.cached("calibration", CALIBRATION_VERSION, stage_config, build,
                            upstream={"pretrain": model_entry.key, "probe": probe(config, seed, progress=progress).key,
                                      "mixture": mix_entry.key}, seed=int(seed))


def calibrated_alphas(config: RunConfig, seed: int, k: int | None = None, direction: str = "mass_mean",
                      ranking: str = "cv_auc", targets: dict[str, float] | None = None,
                      progress: bool = True) -> dict[str, float]:
    """{strength name: alpha} of `calibration` (the book's weak, mid and strong for this model)."""
    rows = calibration(config, seed, k, direction, ranking, targets, progress).json("calibration.json")["strengths"]
    return {name: row["alpha"] for name, row in rows.items()}


def evaluate(config: RunConfig, seed: int, benchmark: str, alpha: float = 0.0, k: int | None = None,
             direction: str = "mass_mean", eval_config=None, judge=None, instruction: str = "",
             progress: bool = True, ranking: str = "cv_auc", positions: str = "reference") -> Entry:
    """One benchmark of one pretrained model under ITI(alpha, k, direction); `result.json` holds the metrics,
    the sample sizes, the decoding settings and the judge; `samples.jsonl` the scored generations.
    direction 'leace' erases the same heads with LEACE instead (`fitted_erasure`; alpha 1 is LEACE proper).

    benchmark: 'toxigen' (one statement per ToxiGen prompt), 'rtp' (k samples per RTP prompt, challenging
    and non-toxic) or 'ce' (cross-entropy on held-out clean text, C4 and WebText, and KL from the base model).
    `instruction`, when given, is put before every generation prompt (the prompting baseline); the text it
    generates is scored without it.

    ranking: how heads are chosen (`toxlab.interp.probe.RANKINGS`); positions: where the shift applies during
    generation ('reference': the last prompt position and every generated one; 'all'); capability ('ce')
    always shifts every position. `result.json` records alpha, the shift's norm relative to the heads' mean
    output norm, and for generation benchmarks the word-shuffled floor, the empty and one-token counts and
    (ToxiGen) the prompt-following difference."""
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
    eval_config = eval_config or eval_preset(config.preset)
    iti = fitted_erasure(config, seed, k, alpha, progress=progress) if direction == "leace" else \
        fitted_iti(config, seed, k, alpha, direction, progress=progress, ranking=ranking)
    model_entry = pretrain(config, seed, progress=progress)
    judge = judge if benchmark == "ce" else judge_or_default(config, judge)
    root = corpora.data_root()
    stage_config = {"benchmark": benchmark, "alpha": iti.alpha, "k": iti.k, "direction": direction,
                    "ranking": ranking, "positions": positions if benchmark != "ce" else "all",
                    "instruction": instruction, **benchmark_inputs(benchmark, eval_config, judge, root)}
    mix_entry = mixture(config) if benchmark == "ce" else None

    def build(out: Path, work: Path) -> None:

        write_benchmark(out, load_model(model_entry), load_tokenizer(config), benchmark, eval_config, seed, iti,
                        judge, root, {**model_fields(config), "alpha": iti.alpha, "k": iti.k, "direction": direction,
                                      "instruction": instruction, "ranking": ranking,
                                      "positions": stage_config["positions"],
                                      "shift_ratio": getattr(iti, "shift_ratio", None)},
                        heldout=heldout_blocks(mix_entry, eval_config, config) if mix_entry is not None else None,
                        instruction=instruction, positions=positions)
        iti.save(out / "iti")

    upstream = {"pretrain": model_entry.key, "probe": probe(config, seed, progress=progress).key}
    if mix_entry is not None:
        upstream["mixture"] = mix_entry.key
    return artifacts.cached("evaluate", EVALUATE_VERSION, stage_config, build, upstream=upstream, seed=int(seed))


def load_model(entry: Entry):
    """The model a stage saved in `entry`'s `model/`, on the device."""
    return AutoModelForCausalLM.from_pretrained(str(entry.file("model"))).to(pick_device())


def model_fields(config: RunConfig) -> dict:
    """What `result.json` names a book model by besides its seed: its level's preset and its toxic fraction."""
    return {"preset": config.preset, "toxic_fraction": config.data.toxic_fraction}


def write_benchmark(out: Path, model, tok, benchmark: str, eval_config, seed: int, iti, judge, root: Path,
                    fields: dict, heldout: dict[str, np.ndarray] | None = None, instruction: str = "",
                    positions: str = "reference", reference=None) -> None:
    """Run one benchmark of a loaded `model` under `iti` (None: untreated) and write `out/result.json`: `fields`
    (what names the run: the model, the treatment), the seed, the benchmark, the decoding settings, the heads
    the intervention acts on, the device and torch version, and the metrics. 'ce': `evaluate.capability` on
    each of `heldout` (name -> blocks [n, seq_len]) against `reference` (default: the model itself, untreated);
    'toxigen' and 'rtp': `generation_benchmark` (which also writes `samples.jsonl`). The one body of `evaluate`,
    `baseline_runs.evaluate_baseline` and the --model `external.evaluate`."""
    result = {**fields, "seed": seed, "benchmark": benchmark, "eval": dataclasses.asdict(eval_config),
              "heads": [list(h) for h in iti.heads] if iti is not None else [],
              "device": str(pick_device()), "torch": torch.__version__}
    if benchmark == "ce":
        result.update({name: ev.capability(model, blocks, iti, eval_config.batch_size // 4 or 1, reference=reference)
                       for name, blocks in heldout.items()})
    else:
        result.update(generation_benchmark(model, tok, benchmark, eval_config, seed, iti, judge, instruction, root,
                                           out, positions))
    artifacts.write_json(out / "result.json", result)


def generation_benchmark(model, tok, benchmark: str, eval_config, seed: int, iti, judge, instruction: str,
                          root: Path, out: Path, positions: str = "reference") -> dict:
    """Generate for a 'toxigen' or 'rtp' benchmark, score with `judge`, write `out/samples.jsonl`, and return
    the judge and the metrics (all, by_kind and, for ToxiGen, by_group) for `result.json`, each beside its
    floor (the same texts with their words shuffled), with the empty and one-token generations counted and,
    for ToxiGen, the prompt-following difference (hate minus neutral prompts, paired)."""
    result = {"judge": judge_identity(judge)}
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


def heldout_blocks(mix_entry: Entry, eval_config, config: RunConfig) -> dict[str, np.ndarray]:
    """The capability sets, the first `ce_blocks` blocks [n, seq_len] of each: the mixture's held-out clean text,
    the C4 snippets and the WebText excerpts (`corpora.reference_stream`), the last tokenized here."""
    webtext = corpora.reference_stream(config.data, load_tokenizer(config))
    return {"clean": np.load(mix_entry.file("val.npy"))[:eval_config.ce_blocks],
            "c4": np.load(mix_entry.file("c4.npy"))[:eval_config.ce_blocks],
            "webtext": corpora.to_blocks(webtext, config.data.seq_len)[:eval_config.ce_blocks]}


def benchmark_inputs(benchmark: str, eval_config, judge, root: Path) -> dict:
    """What a benchmark's result depends on besides the model: sample sizes and decoding, the judge (None
    for 'ce'), and the content of the data files it reads besides the mixture (prompts, the WebText excerpts)."""
    prompt_files = {"rtp": ("rtp_toxic", "rtp_nontoxic"), "ce": (corpora.REFERENCE_SET,)}.get(benchmark, ())
    return {"eval": dataclasses.asdict(eval_config),
            "judge": judge_identity(judge) if judge is not None else None,
            "files": data_fingerprint(root, prompt_files) if prompt_files else {},
            "toxigen_prompts": _toxigen_prompt_fingerprint(root) if benchmark == "toxigen" else {}}


def _toxigen_prompt_fingerprint(root: Path) -> dict[str, str]:
    folder = root / corpora.TOXIGEN_PROMPTS
    return {path.name: artifacts.file_sha256(path) for path in sorted(folder.glob("*_1k.txt*"))}
