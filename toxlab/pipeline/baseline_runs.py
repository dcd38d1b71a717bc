"""The baseline stages (paper Section 5, Table 1): SFT and DPO models, and one benchmark of any baseline
(prompting, SFT, DPO, MEDA, INST), alone or followed by ITI (`toxlab.baselines` holds their pieces)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from transformers import AutoModelForCausalLM

from toxlab import baselines
from toxlab.core import artifacts
from toxlab.core.artifacts import Entry
from toxlab.core.config import RunConfig
from toxlab.core.errors import ConfigError, DataError
from toxlab.data import corpora
from toxlab.evaluation import evaluate as ev
from toxlab.interp.intervene import check_strength
from toxlab.model import train as training
from toxlab.model.decoder import pick_device
from toxlab.pipeline.common import check_seed, data_fingerprint
from toxlab.pipeline.evaluation import (
    benchmark_inputs,
    evaluate,
    heldout_blocks,
    load_model,
    model_fields,
    write_benchmark,
)
from toxlab.pipeline.judging import judge_identity, judge_or_default
from toxlab.pipeline.mixtures import load_tokenizer, mixture
from toxlab.pipeline.pretraining import pretrain
from toxlab.pipeline.probing import fitted_iti, probe
from toxlab.pipeline.versions import BASELINE_VERSION, DPO_VERSION, SFT_VERSION


def sft(config: RunConfig, seed: int, baseline_config=None, progress: bool = True) -> Entry:
    """The SFT baseline: the pretrained model of (config, seed) fine-tuned on the wholly clean training blocks
    of its own mixture (toxlab.baselines). The entry holds `model/`, `metrics.json` (loss on the SFT set
    and on held-out clean text, before and after) and `history.json`."""
    bc = baseline_config or baselines.baseline_preset(config.preset)
    base = pretrain(config, seed, progress=progress)
    mix_entry = mixture(config)
    train_config = baselines.sft_train_config(config.train, bc)
    stage_config = {"sft": bc.part("sft"), "train": dataclasses.asdict(train_config)}

    def build(out: Path, work: Path) -> dict:

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
    bc = baseline_config or baselines.baseline_preset(config.preset)
    judge = judge_or_default(config, judge)
    eval_config = eval_config or ev.eval_preset(config.preset)
    sizes = sorted({ev.eval_preset(config.preset).rtp_prompts, eval_config.rtp_prompts})
    sampling = ev.EvalConfig(max_new_tokens=bc.dpo_new_tokens, batch_size=eval_config.batch_size)
    base = pretrain(config, seed, progress=progress)
    root = corpora.data_root()
    stage_config = {"dpo": bc.part("dpo"), "judge": judge_identity(judge), "benchmark_rtp_prompts": sizes,
                    "sampling": dataclasses.asdict(sampling), "grad_clip": config.train.grad_clip,
                    "files": data_fingerprint(root, ("rtp_toxic",))}

    def build(out: Path, work: Path) -> dict:


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
    judge = judge_or_default(config, judge) if method in ("dpo", "meda", "inst") or benchmark != "ce" else None
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
                    **benchmark_inputs(benchmark, eval_config, judge if benchmark != "ce" else None, root)}
    iti = fitted_iti(config, seed, None, alpha, progress=progress) if alpha else None
    if iti is not None:  # plain baselines keep their keys
        stage_config.update({"alpha": iti.alpha, "k": iti.k, "direction": iti.direction})
    mix_entry = mixture(config) if benchmark == "ce" else None

    def build(out: Path, work: Path) -> None:

        # 'ce' measures the baseline's model against the plain model it came from
        plain = load_model(reference) if benchmark == "ce" else None
        write_benchmark(out, load_model(model_entry), load_tokenizer(config), benchmark, eval_config, seed, iti, judge,
                        root, {**model_fields(config), "method": method, "alpha": alpha, "k": iti.k if iti else 0,
                               "direction": iti.direction if iti else "none", "instruction": instruction,
                               "baseline": recipe, "model": {"stage": model_entry.stage, "key": model_entry.key}},
                        heldout=heldout_blocks(mix_entry, eval_config, config) if mix_entry is not None else None,
                        instruction=instruction, reference=plain)

    upstream = {"model": model_entry.key, "reference": reference.key}
    if iti is not None:
        upstream["probe"] = probe(config, seed, progress=progress).key
    if mix_entry is not None:
        upstream["mixture"] = mix_entry.key
    return artifacts.cached("baseline", BASELINE_VERSION, stage_config, build, upstream=upstream, seed=int(seed))
