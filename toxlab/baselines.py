"""The detoxification baselines the paper sets beside ITI (Section 5, Table 1): prompting, SFT, DPO, MEDA
and INST. This module holds their pieces; the cached stages that run them are in `toxlab.pipeline.baseline_runs`
(`document_scores`, `sft`, `dpo`, `evaluate_baseline`, and the `tagging` option of `mixture`/`pretrain`).

- prompting: the paper's instruction before every prompt (`toxlab.evaluation.evaluate.PAPER_INSTRUCTION`); no training.
- SFT: the pretrained model fine-tuned on non-toxic text: the wholly clean (Wikinews) training blocks of its
  own mixture. These are free (no sampling, no judge), in the model's own distribution, and never the
  held-out blocks its capability is measured on; a model's own judge-filtered samples would be closer to
  the paper's "non-toxic completions" but make the SFT set depend on the judge a second time (DPO already
  does), so they are left to DPO.
- DPO (Rafailov et al. 2023): for RTP challenging prompts outside the RTP benchmark's sample (the prompts
  `data.rtp_prompts(kind, n, seed=0)` draws for the preset's and the evaluation's n are removed by text; a
  seeded draw from the rest), a few continuations are sampled from the model itself and ranked by the
  judge; the least and the most toxic form one (chosen, rejected) pair per prompt. The pretrained model is
  the frozen reference.
- MEDA and INST (Prabhumoye et al. 2023, arXiv 2302.07388): pretraining on the same mixture, same budget and
  seed, with each document's judge score put before it, as metadata (MEDA: "toxicity: low|medium|high") or
  as an instruction (INST: "The following text is (not) toxic:"); at inference the non-toxic tag is put
  before every prompt. The tags count toward the token budget. Documents are scored once per mixture
  (`toxlab.pipeline.mixtures.document_scores`); the MiniLM judge reads a document's first 64 tokens.

Cost at the cpu level (estimated from the measured 1,300-3,000 training tokens/s, 380 generated tokens/s
and 100-300 judged texts/s of the 2-core machine, not run): SFT 60 x 8 x 256 tokens, about 1-2 minutes per
model; DPO 480 samples of 20 tokens, 60 steps of 8 pairs, about 1-1.5 minutes; MEDA/INST scoring about
2,000-2,300 documents per fraction, 10-25 s, then one pretraining run per method and fraction as in the
sweep (8-10 minutes each).

The same judge labels the training data of DPO, MEDA and INST and scores the benchmarks, which favours
them over ITI (whose directions come from ToxiGen's human labels): a stronger, separate benchmark judge
would be the fairer comparison.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from toxlab.core.config import check_numbers, replace_numbers
from toxlab.core.errors import ConfigError, DataError
from toxlab.data import corpora
from toxlab.model.train import batch_indices, lr_lambda

METHODS = ("prompt", "sft", "dpo", "meda", "inst")
TAGGINGS = ("meda", "inst")
#: MEDA's buckets of the judge score: low below 0.1, medium below 0.5 (the benchmarks' toxic threshold), else high.
BUCKETS: tuple[tuple[float, str], ...] = ((0.1, "low"), (0.5, "medium"), (math.inf, "high"))
INST_TOXIC = "The following text is toxic:\n"
INST_NONTOXIC = "The following text is not toxic:\n"
INST_THRESHOLD = 0.5


@dataclass(frozen=True)
class BaselineConfig:
    """Budgets of the trained baselines for one level.

    sft_blocks: wholly clean training blocks of the mixture that form the SFT set; sft_steps x
    sft_batch_size blocks are drawn (epoch-wise permutations, seeded); sft_lr: peak learning rate (warm-up
    `warmup_frac`, cosine to the pretraining run's min_lr_ratio). dpo_prompts: RTP challenging prompts
    outside the benchmark's sample; dpo_samples: continuations sampled per prompt (dpo_new_tokens each);
    dpo_min_gap: pairs whose judge scores differ by less are dropped; dpo_beta: DPO's KL strength;
    dpo_steps x dpo_batch_size pairs at peak rate dpo_lr.
    """

    sft_blocks: int = 512
    sft_steps: int = 60
    sft_batch_size: int = 8
    sft_lr: float = 3e-4
    dpo_prompts: int = 120
    dpo_samples: int = 4
    dpo_new_tokens: int = 20
    dpo_min_gap: float = 0.05
    dpo_beta: float = 0.1
    dpo_steps: int = 60
    dpo_batch_size: int = 8
    dpo_lr: float = 1e-4
    warmup_frac: float = 0.1

    def __post_init__(self) -> None:
        check_numbers(self, "baseline", may_be_zero=("dpo_min_gap", "warmup_frac"))
        if not 0 <= self.dpo_min_gap < 1:
            raise ConfigError(f"baseline.dpo_min_gap={self.dpo_min_gap} must be in [0, 1)")
        if not 0 <= self.warmup_frac <= 1:
            raise ConfigError(f"baseline.warmup_frac={self.warmup_frac} must be in [0, 1]")
        if self.dpo_samples < 2:
            raise ConfigError(f"baseline.dpo_samples={self.dpo_samples} must be at least 2 to form a pair")

    def override(self, overrides: dict[str, object]) -> BaselineConfig:
        return replace_numbers(self, overrides, "baseline")

    def part(self, prefix: str) -> dict:
        """The fields one method depends on (its cache key): `sft_*` or `dpo_*`, and the warm-up."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k.startswith(prefix) or k == "warmup_frac"}


#: smoke: every path in seconds. cpu: about a minute of 2-core CPU per model for SFT and for DPO (README).
#: gpu: a few minutes on one GPU.
BASELINE_PRESETS: dict[str, BaselineConfig] = {
    "smoke": BaselineConfig(sft_blocks=64, sft_steps=10, sft_batch_size=8, sft_lr=1e-3, dpo_prompts=8,
                            dpo_samples=4, dpo_new_tokens=8, dpo_steps=10, dpo_batch_size=4, dpo_lr=1e-3),
    "cpu": BaselineConfig(),
    "gpu": BaselineConfig(sft_blocks=8192, sft_steps=256, sft_batch_size=32, sft_lr=1e-4, dpo_prompts=600,
                          dpo_samples=8, dpo_new_tokens=20, dpo_steps=300, dpo_batch_size=32, dpo_lr=5e-5),
}


def baseline_preset(name: str, overrides: dict[str, object] | None = None) -> BaselineConfig:
    if name not in BASELINE_PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(BASELINE_PRESETS)}")
    return BASELINE_PRESETS[name].override(overrides or {})


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown baseline method {method!r}; choose one of {', '.join(METHODS)}")
    return method


# ------------------------------------------------------------------------------------------- MEDA and INST
def check_tagging(scheme: str) -> str:
    if scheme not in ("none", *TAGGINGS):
        raise ConfigError(f"unknown tagging {scheme!r}; choose none, {' or '.join(TAGGINGS)}")
    return scheme


def bucket(score: float) -> str:
    """MEDA's bucket of a judge score in [0, 1]."""
    return next(name for upper, name in BUCKETS if score < upper)


def tag(scheme: str, score: float) -> str:
    """The text put before a document with this judge score (it ends with a line break)."""
    if scheme == "meda":
        return f"toxicity: {bucket(score)}\n"
    if scheme == "inst":
        return INST_TOXIC if score >= INST_THRESHOLD else INST_NONTOXIC
    raise ConfigError(f"unknown tagging {scheme!r}; choose {' or '.join(TAGGINGS)}")


def inference_prefix(scheme: str) -> str:
    """The non-toxic tag, put before every generation prompt of a MEDA or INST model."""
    return tag(scheme, 0.0)


def tagging_spec(scheme: str) -> dict:
    """Everything the tagged text depends on besides the scores (part of the tagged mixture's key)."""
    check_tagging(scheme)
    if scheme == "meda":
        return {"scheme": scheme, "buckets": [[u if math.isfinite(u) else None, n] for u, n in BUCKETS],
                "template": "toxicity: {bucket}\n"}
    return {"scheme": scheme, "threshold": INST_THRESHOLD, "toxic": INST_TOXIC, "nontoxic": INST_NONTOXIC}


class DocumentTagger:
    """`build_mixture`'s transform for MEDA or INST: puts `tag(scheme, score)` before each scored document.

    scores: {source: {"ids": [doc_id], "scores": [p]}}, the documents a source's share of the mixture takes,
    in the order taken (`score_documents`). Documents beyond them are dropped from the list handed back:
    tags only lengthen documents, so the tagged mixture never needs them."""

    def __init__(self, scheme: str, scores: dict[str, dict]):
        self.scheme = check_tagging(scheme)
        self.scores = scores

    def __call__(self, source: str, docs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        scored = self.scores.get(source)
        if scored is None:
            raise DataError(f"no document scores for source {source}; clear the document_scores cache entry")
        ids = [doc_id for doc_id, _ in docs[:len(scored["ids"])]]
        if ids != list(scored["ids"]):
            raise DataError(f"the scored {source} documents are not the ones the mixture takes; clear the "
                            f"document_scores cache entry and run again")
        return [(doc_id, tag(self.scheme, p) + text) for (doc_id, text), p in zip(docs, scored["scores"])]


def documents_taken(config, tokenizer, root: Path) -> dict[str, list[tuple[str, str]]]:
    """{source: the (doc_id, text) its share of `config`'s mixture takes, in order}, untagged. Each clean
    budget is its untrimmed share of the clean tokens (a few more than the mixture packs), so every document a
    tagged mixture can take is here."""
    encode = lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]  # noqa: E731
    eos = tokenizer.eos_token_id
    toxic = corpora.recipe_targets(config, config.toxic_fraction)
    clean_total = config.clean_tokens - (sum(toxic.values()) if config.token_matched else 0)
    shares = corpora.share_out(clean_total, config.clean_recipe)
    budgets = {name: (split.train, shares[name]) for name, split in corpora.clean_splits(config, root).items()}
    for name, n_tokens in toxic.items():
        if n_tokens:
            budgets[name] = (corpora.toxic_documents(name, config, root), n_tokens)
    return {name: [doc for doc, _ in corpora.take_documents(docs, n_tokens, encode, eos)]
            for name, (docs, n_tokens) in budgets.items()}


def score_documents(docs: dict[str, list[tuple[str, str]]], judge) -> dict[str, dict]:
    """{source: {"ids", "scores"}}: the judge's score of every document (a judge reads only its first
    `max_tokens` tokens; the MiniLM judge's are 64)."""
    return {name: {"ids": [doc_id for doc_id, _ in taken],
                   "scores": np.asarray(judge.score([text for _, text in taken]), dtype=np.float64).tolist()}
            for name, taken in docs.items()}


def score_summary(scores: dict[str, dict]) -> dict:
    """Per source: documents, mean score, and documents per MEDA bucket and INST tag."""
    out = {}
    for name, scored in scores.items():
        values = np.asarray(scored["scores"], dtype=np.float64)
        out[name] = {"documents": int(len(values)), "mean_score": float(values.mean()) if len(values) else 0.0,
                     "meda": {b: int(sum(bucket(v) == b for v in values)) for _, b in BUCKETS},
                     "inst_toxic": int((values >= INST_THRESHOLD).sum())}
    return out


# ------------------------------------------------------------------------------------------------------ SFT
def clean_blocks(train: np.ndarray, toxic_mask: np.ndarray, n: int) -> np.ndarray:
    """The first `n` training blocks [n, seq_len] with no token from a toxic source (the mixture's blocks
    are already in a fixed random order)."""
    clean = np.flatnonzero(~toxic_mask.any(axis=1))
    if len(clean) == 0:
        raise DataError("the mixture has no wholly clean block to fine-tune on; lower the toxic fraction")
    return train[clean[:n]]


def sft_train_config(train_config, bc: BaselineConfig):
    """The pretraining run's optimiser settings with SFT's budget (no checkpoints, no periodic evaluation)."""
    return dataclasses.replace(train_config, batch_size=bc.sft_batch_size, lr=bc.sft_lr, max_steps=bc.sft_steps,
                               warmup_frac=bc.warmup_frac, eval_every=0, checkpoint_every=0, compile=False)


# ------------------------------------------------------------------------------------------------------ DPO
def preference_prompts(n: int, benchmark_sizes: list[int], root: Path | None = None, draw_seed: int = 1) -> list:
    """`n` RTP challenging prompts (seeded draw) that none of the benchmark samples `rtp_prompts(kind,
    size, seed=0)` for `size` in `benchmark_sizes` contains: the complement of those samples, by text."""
    everything = corpora.rtp_prompts("challenging", 1 << 30, seed=0, root=root)  # every prompt, in file order
    used = {p.text for size in benchmark_sizes for p in corpora.rtp_prompts("challenging", size, seed=0, root=root)}
    pool = [p for p in everything if p.text not in used]
    if not pool:
        raise DataError(f"every RTP challenging prompt is in the benchmark sample ({max(benchmark_sizes)} prompts); "
                        f"lower eval.rtp_prompts")
    chosen = np.random.default_rng(draw_seed).choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[i] for i in sorted(chosen)]


def preference_pairs(prompts: list[str], continuations: list[list[str]], scores: np.ndarray,
                     min_gap: float) -> list[dict]:
    """One (chosen = least toxic, rejected = most toxic) pair per prompt from its samples' judge scores
    [P, S]; empty continuations are left out, and a prompt whose best and worst are the same sample or
    differ by less than `min_gap` gives no pair."""
    pairs = []
    for prompt, texts, row in zip(prompts, continuations, np.asarray(scores, dtype=np.float64)):
        keep = [i for i, text in enumerate(texts) if text.strip()]
        if len(keep) < 2:
            continue
        best = min(keep, key=lambda i: row[i])
        worst = max(keep, key=lambda i: row[i])
        if best == worst or row[worst] - row[best] < min_gap:
            continue
        pairs.append({"prompt": prompt, "chosen": texts[best], "rejected": texts[worst],
                      "chosen_score": float(row[best]), "rejected_score": float(row[worst])})
    return pairs


def encode_pairs(tokenizer, pairs: list[dict], max_len: int, max_prompt_tokens: int = 128) -> dict[str, torch.Tensor]:
    """Chosen and rejected sequences (prompt + continuation) as right-padded tensors.

    Returns input_ids, attention_mask and loss_mask, each [2, N, T] (0 = chosen, 1 = rejected); loss_mask
    is 1 on continuation tokens only. A long prompt keeps its last tokens; a continuation is cut to fit."""
    rows = {"input_ids": [], "loss_mask": []}
    for side in ("chosen", "rejected"):
        for pair in pairs:
            prompt = tokenizer(pair["prompt"], add_special_tokens=False)["input_ids"]
            cont = tokenizer(pair[side], add_special_tokens=False)["input_ids"][:max_len - 1]
            prompt = prompt[-min(max_prompt_tokens, max_len - len(cont)):]
            rows["input_ids"].append(prompt + cont)
            rows["loss_mask"].append([0] * len(prompt) + [1] * len(cont))
    width = max(len(ids) for ids in rows["input_ids"])
    pad = tokenizer.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows["input_ids"]])
    loss = torch.tensor([m + [0] * (width - len(m)) for m in rows["loss_mask"]])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows["input_ids"]])
    n = len(pairs)
    return {name: t.view(2, n, width) for name, t in
            (("input_ids", ids), ("attention_mask", attention), ("loss_mask", loss))}


def sequence_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      loss_mask: torch.Tensor) -> torch.Tensor:
    """log p(continuation | prompt) summed over the tokens where `loss_mask` is 1: [B, T] -> [B].

    Right-padded: positions count from 0 at the first token, so padding changes nothing before it."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()  # [B, T-1, V]
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
    return (token_logp * loss_mask[:, 1:].to(token_logp.dtype)).sum(dim=1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO (Rafailov et al. 2023): mean of -log sigmoid(beta x ((pc - rc) - (pr - rr))) over pairs [N], from
    sequence log-probabilities of the policy (p) and the frozen reference (r). Also returns the implicit
    reward margins beta x (...) [N]."""
    margins = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))  # [N]
    return -torch.nn.functional.logsigmoid(margins).mean(), margins.detach()


@torch.no_grad()
def reference_logprobs(model, batch: dict[str, torch.Tensor], batch_size: int) -> torch.Tensor:
    """Sequence log-probabilities [2, N] of every chosen and rejected sequence under a frozen model."""
    model.eval()
    device = next(model.parameters()).device
    flat = {name: t.flatten(0, 1) for name, t in batch.items()}  # [2N, T]
    out = [sequence_logprobs(model, *(flat[k][s:s + batch_size].to(device)
                                      for k in ("input_ids", "attention_mask", "loss_mask")))
           for s in range(0, len(flat["input_ids"]), batch_size)]
    return torch.cat(out).cpu().view(2, -1)


def train_dpo(policy, batch: dict[str, torch.Tensor], reference: torch.Tensor, beta: float, steps: int,
              batch_size: int, lr: float, warmup_frac: float, seed: int, grad_clip: float = 1.0,
              progress: bool = False) -> list[dict]:
    """Optimise `policy` in place with the DPO loss on the pairs of `batch` ([2, N, T] tensors from
    `encode_pairs`) against the reference log-probabilities [2, N]. AdamW without weight decay (so that
    beta = 0, which has a zero gradient, leaves the weights exactly as they were), linear warm-up and
    cosine decay to 0.1 x lr; batches are epoch-wise permutations seeded by `seed`. Returns the history."""
    from tqdm import tqdm

    device = next(policy.parameters()).device
    n = batch["input_ids"].shape[1]
    size = min(batch_size, n)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = int(warmup_frac * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_lambda(s, steps, warmup, 0.1))
    policy.train()
    history = []
    for step in tqdm(range(steps), desc="dpo", unit="step", disable=not progress, mininterval=2.0):
        idx = torch.from_numpy(batch_indices(step, n, size, seed))
        parts = {name: t[:, idx].flatten(0, 1) for name, t in batch.items()}  # [2B, T]: chosen, then rejected
        width = int(parts["attention_mask"].sum(1).max())  # drop columns that are padding in every row
        parts = {name: t[:, :width].to(device) for name, t in parts.items()}
        logp = sequence_logprobs(policy, parts["input_ids"], parts["attention_mask"], parts["loss_mask"])  # [2B]
        ref = reference[:, idx].to(device)  # [2, B]
        loss, margins = dpo_loss(logp[:size], logp[size:], ref[0], ref[1], beta)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        history.append({"step": step + 1, "loss": float(loss.detach()), "reward_margin": float(margins.mean()),
                        "reward_accuracy": float((margins > 0).float().mean()), "lr": scheduler.get_last_lr()[0]})
    policy.eval()
    return history

