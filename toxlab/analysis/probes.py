"""What chapter 4 and the README read from a probe entry (`toxlab.pipeline.probing.probe`): its headline
measures in one typed row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeHeadline:
    """One probed model in a line (chapter 4's table, the README's probe table): accuracies and ROC-AUCs over its
    heads against the majority-class rate, the best residual layer's AUC, and the toxicity direction's entanglement
    with the target-group directions, over all heads and the top-K, beside random directions'."""

    toxic_fraction: float
    seed: int
    pool: str
    majority_rate: float
    head_accuracy_mean: float
    head_accuracy_max: float
    head_balanced_accuracy_max: float
    head_auc_mean: float
    head_auc_top_k: float
    head_auc_q95: float
    head_auc_max: float
    resid_auc_max: float
    entanglement_mean: float
    entanglement_top_k: float
    entanglement_random: float


def headline(summary: dict) -> ProbeHeadline:
    """The headline of one probe entry's `summary.json`."""
    heads, ent = summary["heads"], summary["entanglement"]
    return ProbeHeadline(summary["toxic_fraction"], summary["seed"], summary["pool"], summary["majority_baseline"],
                         heads["val_accuracy"]["mean"], heads["val_accuracy"]["max"],
                         heads["val_balanced_accuracy"]["max"], heads["val_auc"]["mean"],
                         heads["val_auc"]["top_k_mean"], heads["val_auc"]["q95"], heads["val_auc"]["max"],
                         max(summary["resid_val_auc"]), ent["mean"], ent["top_k_mean"], ent["random_reference"])
