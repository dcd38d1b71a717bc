"""How separable and how entangled toxicity is inside one model (paper Section 4, measured further).

From the probe activations of one model: a logistic probe per head (the paper's measure) and per residual
layer, the distribution of head accuracies, and an entanglement measure in the spirit of the paper's toy
experiment: per head, the largest |cos| between the toxicity direction (mass-mean, toxic minus benign) and
the direction of each ToxiGen target group (mean of that group's benign statements minus the mean of the
other groups' benign statements). Lower means toxicity has a direction less shared with who the statement
is about. The reference value is the same statistic for random directions in the head's dimension.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from toxlab.data import corpora
from toxlab.interp.probe import CV_FOLDS, Probes, fit_probes

#: The paper intervenes on 30 of Olmo-1B's 16 x 16 = 256 heads; smaller models keep the same share.
PAPER_TOP_K, PAPER_HEADS = 30, 256


def scaled_top_k(n_heads: int, k: int = PAPER_TOP_K) -> int:
    """k heads out of the paper's 256, scaled to a model with `n_heads` heads (at least 1, at most k)."""
    return max(1, min(k, round(n_heads * k / PAPER_HEADS)))


def group_directions(x: torch.Tensor, labels: torch.Tensor, groups: list[str]) -> tuple[list[str], torch.Tensor]:
    """Per target group, mean of its benign examples minus the mean of the other groups' benign examples.

    x: [N, *G, D] -> names, [n_groups, *G, D]."""
    benign = ~labels.bool()
    names = sorted(set(groups))
    group_ids = torch.tensor([names.index(g) for g in groups])
    out = []
    for i in range(len(names)):
        inside = benign & (group_ids == i)
        outside = benign & (group_ids != i)
        out.append(x[inside].mean(0) - x[outside].mean(0))
    return names, torch.stack(out)


def entanglement(toxic_direction: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """max over concepts of |cos(toxic_direction, concept)|: [*G, D], [C, *G, D] -> [*G]."""
    cos = torch.nn.functional.cosine_similarity(toxic_direction.unsqueeze(0), others, dim=-1)  # [C, *G]
    return cos.abs().amax(0)


@functools.cache
def random_entanglement(dim: int, n_concepts: int, draws: int = 20_000, seed: int = 0) -> float:
    """Expected max |cos| between one random direction and `n_concepts` others in `dim` dimensions (a pure
    function of its arguments, kept once computed: seconds at a residual stream's width, and every probe of a
    preset asks for the same value)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.nn.functional.normalize(torch.randn(draws, 1, dim, generator=g), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(draws, n_concepts, dim, generator=g), dim=-1)
    return float((a * b).sum(-1).abs().amax(1).mean())


def _stats(values: torch.Tensor, top_k: int) -> dict:
    flat = values.flatten().double()
    top = flat.sort(descending=True).values[:top_k]
    q = torch.quantile(flat, torch.tensor([0.5, 0.9, 0.95], dtype=torch.float64))
    return {"mean": float(flat.mean()), "max": float(flat.max()), "top_k_mean": float(top.mean()),
            "median": float(q[0]), "q90": float(q[1]), "q95": float(q[2])}


def probe_split(labels: torch.Tensor, groups: list[str], split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The probes' seeded 4:1 train/validation split, stratified by label and group: (train, validation) row
    indices into the probe set. ITI and LEACE are fitted on the same train rows as the probes."""
    train_idx, val_idx = corpora.stratified_split(labels.numpy(), groups, split_seed)
    return torch.from_numpy(train_idx), torch.from_numpy(val_idx)


def analyse(heads: torch.Tensor, resid: torch.Tensor, labels: torch.Tensor, groups: list[str], split_seed: int,
            l2: float, top_k: int, out: Path) -> dict:
    """Fit head and residual probes on a seeded 4:1 split stratified by label and group, write the probes
    and per-example validation results to `out`, and return the summary measures.

    heads: [N, L, H, Dh], resid: [N, L, d_model], labels: [N] (1 = toxic)."""
    train_idx, val_idx = probe_split(labels, groups, split_seed)
    y, yv = labels[train_idx], labels[val_idx]
    head_probes = fit_probes(heads[train_idx], y, heads[val_idx], yv, l2)
    resid_probes = fit_probes(resid[train_idx], y, resid[val_idx], yv, l2)
    head_probes.save(out / "head_probes")
    resid_probes.save(out / "resid_probes")

    # Per-example validation scores: the statistics across models resample these (paired bootstrap).
    scores = torch.einsum("nlhd,lhd->lhn", heads[val_idx].double(), head_probes.weight.double()) \
        + head_probes.bias.double()[..., None]  # [L, H, M]
    np.save(out / "val_scores.npy", scores.float().numpy())
    np.save(out / "val_labels.npy", yv.numpy())

    n_layers, n_heads = head_probes.site_shape
    k = scaled_top_k(n_layers * n_heads, top_k)
    train_groups = [groups[i] for i in train_idx.tolist()]
    names, directions = group_directions(heads[train_idx], y, train_groups)  # [C, L, H, Dh]
    ent = entanglement(head_probes.mass_mean, directions)  # [L, H]
    top = head_probes.top_sites(k)
    _, resid_dirs = group_directions(resid[train_idx], y, train_groups)
    resid_ent = entanglement(resid_probes.mass_mean, resid_dirs)  # [L]
    return {
        "n_train": len(train_idx), "n_val": len(val_idx), "toxic_share_val": float(yv.float().mean()),
        "cv_folds": CV_FOLDS, "majority_baseline": head_probes.majority_baseline, "top_k": k, "groups": names,
        "heads": {metric: _stats(getattr(head_probes, metric), k)
                  for metric in ("val_accuracy", "val_balanced_accuracy", "val_auc", "cv_auc")},
        "head_val_accuracy": head_probes.val_accuracy.tolist(),
        "head_val_auc": head_probes.val_auc.tolist(),
        "head_cv_auc": head_probes.cv_auc.tolist(),
        "top_heads": [list(site) for site in top],  # by cv_auc, as ITI chooses them
        "top_heads_by_accuracy": [list(site) for site in head_probes.top_sites(k, "val_accuracy")],
        "resid_val_accuracy": resid_probes.val_accuracy.tolist(),
        "resid_val_auc": resid_probes.val_auc.tolist(),
        "entanglement": {
            "per_head": ent.tolist(),
            "mean": float(ent.mean()),
            "top_k_mean": float(torch.stack([ent[site] for site in top]).mean()),
            "resid_per_layer": resid_ent.tolist(),
            "random_reference": random_entanglement(heads.shape[-1], len(names)),
            "random_reference_resid": random_entanglement(resid.shape[-1], len(names)),
        },
    }


def load_probes(entry_path: Path) -> tuple[Probes, Probes]:
    return Probes.load(entry_path / "head_probes"), Probes.load(entry_path / "resid_probes")
