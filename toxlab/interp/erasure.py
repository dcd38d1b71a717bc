"""LEACE (Belrose et al. 2023, LEAst-squares Concept Erasure) on attention heads: an extension that sets the
paper's question against a method built to remove a linear concept outright.

For each chosen head h, the fitter (the `concept-erasure` package) finds the affine map with the smallest
mean squared change that makes the head's output linearly uncorrelated with the toxic label on the probe's
training activations:

    x_h  ->  x_h - alpha * L_h R_h (x_h - b_h),

with L_h [Dh, r], R_h [r, Dh] (r = 1 for a binary label) and b_h the training mean. alpha = 1 is LEACE;
alpha = 0 changes nothing. Like ITI it edits the head outputs before o_proj at every position, on the same
heads (the top K by probe validation accuracy), so both sit on one toxicity vs capability frontier; unlike
ITI it has no direction to push along, only one to remove.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from toxlab.core.errors import ConfigError
from toxlab.interp.intervene import check_k, check_strength
from toxlab.interp.probe import Probes


@dataclass(frozen=True)
class Erasure:
    """LEACE erasers for K heads. heads: ((layer, head), ...) best first; left: [K, Dh, r]; right: [K, r, Dh];
    bias: [K, Dh]; shape: (L, H, Dh) of the model's head outputs. Same interface as `toxlab.interp.intervene.ITI`
    for `applied`, `k`, `alpha`, `to` and `save`."""

    heads: tuple[tuple[int, int], ...]
    left: torch.Tensor
    right: torch.Tensor
    bias: torch.Tensor
    alpha: float
    shape: tuple[int, int, int]
    direction: str = "leace"

    def __post_init__(self) -> None:
        k, head_dim = len(self.heads), self.shape[2]
        if self.left.shape[:2] != (k, head_dim) or self.right.shape[0] != k or self.right.shape[2] != head_dim \
                or tuple(self.bias.shape) != (k, head_dim):
            raise ConfigError(f"an Erasure needs left [K, Dh, r], right [K, r, Dh] and bias [K, Dh] with "
                              f"K = {k}, Dh = {head_dim}")

    @property
    def k(self) -> int:
        return len(self.heads)

    def with_alpha(self, alpha: float) -> Erasure:
        return dataclasses.replace(self, alpha=check_strength(alpha))

    def to(self, device) -> Erasure:
        return dataclasses.replace(self, left=self.left.to(device), right=self.right.to(device),
                                   bias=self.bias.to(device))

    def edits(self) -> dict[int, Callable[[torch.Tensor], torch.Tensor]]:
        """{layer: edit} where edit maps that layer's head outputs [B, T, H, Dh] to the erased ones."""
        by_layer: dict[int, list[int]] = {}
        for i, (layer, _) in enumerate(self.heads):
            by_layer.setdefault(layer, []).append(i)

        def make(rows: list[int]):
            heads = [self.heads[i][1] for i in rows]

            def edit(x):  # [B, T, H, Dh]
                out = x.clone()
                for i, head in zip(rows, heads):
                    h = x[:, :, head].to(self.left.dtype)  # [B, T, Dh]
                    removed = ((h - self.bias[i]) @ self.right[i].T) @ self.left[i].T  # [B, T, Dh]
                    out[:, :, head] = (h - self.alpha * removed).to(x.dtype)
                return out
            return edit

        return {layer: make(rows) for layer, rows in by_layer.items()}

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"left": self.left.contiguous().cpu(), "right": self.right.contiguous().cpu(),
                   "bias": self.bias.contiguous().cpu()}, folder / "erasure.safetensors")
        (folder / "erasure.json").write_text(json.dumps({"heads": self.heads, "alpha": self.alpha,
                                                         "shape": self.shape}))

    @classmethod
    def load(cls, folder: Path) -> Erasure:
        from safetensors.torch import load_file
        meta = json.loads((folder / "erasure.json").read_text())
        return cls(heads=tuple(tuple(h) for h in meta["heads"]), alpha=meta["alpha"], shape=tuple(meta["shape"]),
                   **load_file(folder / "erasure.safetensors"))


def fit_leace(probes: Probes, train_heads: torch.Tensor, train_labels: torch.Tensor, k: int,
              alpha: float = 1.0) -> Erasure:
    """LEACE erasers for the k heads with the highest probe validation accuracy (the heads ITI would shift).

    train_heads: [N, L, H, Dh], the head outputs the probes were trained on; train_labels: [N] (1 = toxic).
    """
    try:
        with warnings.catch_warnings():  # concept-erasure 0.2 uses torch.jit.script, deprecated in torch 2.10
            warnings.simplefilter("ignore", DeprecationWarning)
            from concept_erasure import LeaceFitter
    except ImportError as err:  # pragma: no cover - the book extra installs it
        raise ConfigError("LEACE needs the concept-erasure package: pip install 'toxlab[book]'") from err
    n_layers, n_heads, head_dim = train_heads.shape[1:]
    if probes.site_shape != (n_layers, n_heads):
        raise ConfigError(f"probes are for {probes.site_shape} heads, activations for {(n_layers, n_heads)}")
    check_k(k, n_layers * n_heads)
    if train_labels.unique().numel() != 2:
        raise ConfigError("LEACE needs both toxic and benign training activations")
    heads = probes.top_sites(k)
    z = train_labels.double()[:, None]  # [N, 1]
    erasers = [LeaceFitter.fit(train_heads[:, layer, head].double(), z).eraser for layer, head in heads]
    return Erasure(heads=tuple(heads), left=torch.stack([e.proj_left for e in erasers]).float(),
                   right=torch.stack([e.proj_right for e in erasers]).float(),
                   bias=torch.stack([e.bias for e in erasers]).float(), alpha=check_strength(alpha),
                   shape=(n_layers, n_heads, head_dim))
