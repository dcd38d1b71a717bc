"""Small statistics the chapters report: linear trends with confidence intervals, and how to phrase them; the
probes' paired statistics; the toy claim as one number per seed (`share_effect`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def linear_trend(x, y, confidence: float = 0.95) -> dict:
    """Least-squares slope of y on x with a t confidence interval and the two-sided p-value of slope = 0.

    Needs at least three points; with fewer, the interval is undefined (NaN)."""
    from scipy import stats
    x, y = np.asarray(x, float), np.asarray(y, float)
    fit = stats.linregress(x, y)
    dof = len(x) - 2
    half = stats.t.ppf(0.5 + confidence / 2, dof) * fit.stderr if dof > 0 else float("nan")
    return {"slope": float(fit.slope), "intercept": float(fit.intercept), "ci_low": float(fit.slope - half),
            "ci_high": float(fit.slope + half), "p_value": float(fit.pvalue), "n": int(len(x))}


def relative_change(trend: dict, x_range: float) -> float:
    """The fitted change over `x_range` as a fraction of the intercept (e.g. 0.01 = 1 % higher)."""
    return trend["slope"] * x_range / trend["intercept"]


def relative_change_interval(trend: dict, x_range: float) -> tuple[float, float, float]:
    """The fitted change over `x_range` as a fraction of the intercept, with its 95 % interval (the slope's,
    scaled): (change, low, high)."""
    scale = x_range / trend["intercept"]
    return relative_change(trend, x_range), trend["ci_low"] * scale, trend["ci_high"] * scale


def head_metric(scores: np.ndarray, labels: np.ndarray, metric: str) -> np.ndarray:
    """Per-head metric from validation scores [S, M] (S heads, M examples) and labels [M] -> [S].

    metric: "accuracy" (score > 0 predicts toxic) or "auc" (ROC-AUC, Mann-Whitney with average ranks)."""
    if metric == "accuracy":
        return ((scores > 0) == labels.astype(bool)).mean(1)
    if metric == "auc":
        from scipy.stats import rankdata
        ranks = rankdata(scores, axis=1)
        pos = labels.astype(bool)
        n_pos, n_neg = pos.sum(), (~pos).sum()
        return (ranks[:, pos].sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    raise ValueError(f"metric={metric!r} must be 'accuracy' or 'auc'")


def summarise_heads(per_head: np.ndarray, summary: str) -> float:
    """The mean or the max of a per-head metric."""
    return float(per_head.mean()) if summary == "mean" else float(per_head.max())


def bootstrap_models(runs: list[tuple[np.ndarray, np.ndarray]], metric: str = "auc", summary: str = "mean",
                     n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of one summary (mean or max over heads) of a per-head metric, for several
    models probed on the same validation examples, resampling the examples jointly (paired).

    runs: [(scores [L, H, M], labels [M])] -> [n_boot, n_models]."""
    labels = runs[0][1]
    if any(not np.array_equal(r[1], labels) for r in runs):
        raise ValueError("paired bootstrap needs the same validation examples for every model")
    rng = np.random.default_rng(seed)
    flat = [r[0].reshape(-1, r[0].shape[-1]) for r in runs]  # [S, M] each
    out = np.empty((n_boot, len(runs)))
    for b in range(n_boot):
        idx = rng.integers(0, len(labels), len(labels))
        for j, scores in enumerate(flat):
            out[b, j] = summarise_heads(head_metric(scores[:, idx], labels[idx], metric), summary)
    return out


def interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples."""
    low, high = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def spearman(x, y) -> dict:
    from scipy import stats
    result = stats.spearmanr(x, y)
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": len(x)}


def one_sided_p(trend: dict) -> float:
    """p-value of "the slope is positive" from a two-sided linear_trend result."""
    return trend["p_value"] / 2 if trend["slope"] > 0 else 1 - trend["p_value"] / 2


def paired_statistics(folders: dict[tuple[float, int], Path], fractions: list[float], seeds: list[int],
                      n_boot: int = 1000) -> tuple[list[dict], list[dict]]:
    """Statistics of "head probe AUC rises with the toxic fraction", for the mean and the max over heads.

    folders: {(fraction, seed): probe entry folder}. Returns (tests, points): tests holds, per seed, the
    paired-bootstrap difference 10 % minus 0 % with a 95 % interval and a one-sided p, and over all models
    the least-squares slope against the fraction (t interval) and Spearman's rho; points holds every
    model's value with its bootstrap interval."""
    tests, points = [], []
    for summary in ("mean", "max"):
        for seed in seeds:
            runs = [(np.load(folders[(f, seed)] / "val_scores.npy"), np.load(folders[(f, seed)] / "val_labels.npy"))
                    for f in fractions]
            boot = bootstrap_models(runs, "auc", summary, n_boot=n_boot, seed=seed)
            values = [summarise_heads(head_metric(s.reshape(-1, s.shape[-1]), y, "auc"), summary)
                      for s, y in runs]
            for j, fraction in enumerate(fractions):
                low, high = interval(boot[:, j])
                points.append({"summary": summary, "seed": seed, "toxic_fraction": fraction, "auc": values[j],
                               "auc_low": low, "auc_high": high})
            if 0.0 in fractions and 0.10 in fractions:
                i0, i10 = fractions.index(0.0), fractions.index(0.10)
                diff = boot[:, i10] - boot[:, i0]
                low, high = interval(diff)
                tests.append({"test": f"{summary} head AUC: 10 % minus 0 %, seed {seed}",
                              "estimate": values[i10] - values[i0], "ci_low": low, "ci_high": high,
                              "p_one_sided": float((diff <= 0).mean())})
        chosen = [p for p in points if p["summary"] == summary]
        fit = linear_trend([p["toxic_fraction"] for p in chosen], [p["auc"] for p in chosen])
        rank = spearman([p["toxic_fraction"] for p in chosen], [p["auc"] for p in chosen])
        tests.append({"test": f"{summary} head AUC: slope per unit of toxic fraction, all models",
                      "estimate": fit["slope"], "ci_low": fit["ci_low"], "ci_high": fit["ci_high"],
                      "p_one_sided": one_sided_p(fit), "spearman_rho": rank["rho"],
                      "spearman_p": rank["p_value"]})
    return tests, points


def share_effect(rows: list[dict], rare_share: float, equal_share: float, estimator: str | None = None) -> dict:
    """The toy claim as one number per seed: how much more entangled the rare chain's features are than the
    controls at `rare_share`, beyond the same gap at `equal_share` (where it reflects the chains' structure
    only: chain B's sequences repeat with period 2). Paired by seed; mean, 95 % t interval, two-sided p."""
    from scipy import stats
    prefix = f"{estimator}_" if estimator else ""

    def gap(share):
        sel = sorted((r for r in rows if r["share"] == share), key=lambda r: r["seed"])
        return {r["seed"]: r[f"{prefix}rare_entanglement"] - r[f"{prefix}control_entanglement"] for r in sel}

    low, high = gap(rare_share), gap(equal_share)
    seeds = sorted(set(low) & set(high))
    effect = np.array([low[s] - high[s] for s in seeds])
    if len(effect) < 2:
        return {"effect": float(effect.mean()) if len(effect) else float("nan"), "ci": (float("nan"),) * 2,
                "p_value": float("nan"), "seeds": len(effect)}
    half = stats.t.ppf(0.975, len(effect) - 1) * effect.std(ddof=1) / math.sqrt(len(effect))
    p_value = float(stats.ttest_1samp(effect, 0.0).pvalue) if effect.std() > 0 else float("nan")
    return {"effect": float(effect.mean()), "ci": (float(effect.mean() - half), float(effect.mean() + half)),
            "p_value": p_value, "seeds": len(effect)}
