"""Inference-Time Intervention (Li et al. 2023; the paper's Section 5): shift the outputs of the K heads
whose probes separate toxic from benign best, away from toxicity, at every position.

`fit_iti` is the fitter: it takes the probes (to rank heads by validation accuracy) and the training
activations the probes were fitted on, and returns a small frozen `ITI`. For each chosen head h with unit
direction u_h (pointing towards toxic) and sigma_h, the standard deviation of the training activations
along u_h, applying ITI with strength alpha replaces the head's output x_h (before o_proj) by

    x_h - alpha * sigma_h * u_h,

so alpha > 0 moves away from toxic (the paper's weak, mid and strong are alpha = 4, 8, 12), alpha < 0
towards it, and alpha = 0 changes nothing. Directions: the mass-mean shift (toxic mean minus benign
mean, the paper's default), the probe's weight vector, or a random unit vector (a control).
`applied(model, iti)` installs the edit for the duration of a `with` block only (toxlab.hooks): the shift is
constant, so it is folded into each layer's output projection as a bias (`hooks.shifted`), which costs
generation nothing; `ITI.edits()` is the same edit as hooks on the head outputs (the definition, for tests).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from toxlab import hooks
from toxlab.errors import ConfigError
from toxlab.probe import Probes

DIRECTIONS = ("mass_mean", "probe", "random")
#: The paper's strengths (Section 5): weak, mid, strong.
PAPER_ALPHAS = {"weak": 4.0, "mid": 8.0, "strong": 12.0}


@dataclass(frozen=True)
class ITI:
    """K chosen heads and their shifts. heads: ((layer, head), ...) best first; directions: [K, Dh] unit
    vectors towards toxic; sigmas: [K]; shape: (L, H, Dh) of the model's head outputs."""

    heads: tuple[tuple[int, int], ...]
    directions: torch.Tensor
    sigmas: torch.Tensor
    alpha: float
    direction: str
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        k = len(self.heads)
        if tuple(self.directions.shape) != (k, self.shape[2]) or tuple(self.sigmas.shape) != (k,):
            raise ConfigError(f"ITI needs directions [K, Dh] = [{k}, {self.shape[2]}] and sigmas [{k}]")

    @property
    def k(self) -> int:
        return len(self.heads)

    def with_alpha(self, alpha: float) -> ITI:
        return dataclasses.replace(self, alpha=check_strength(alpha))

    def to(self, device) -> ITI:
        return dataclasses.replace(self, directions=self.directions.to(device), sigmas=self.sigmas.to(device))

    def shifts(self) -> dict[int, torch.Tensor]:
        """{layer: [H, Dh]} the vector added to each head's output of that layer (zero for other heads)."""
        n_layers, n_heads, head_dim = self.shape
        out: dict[int, torch.Tensor] = {}
        for (layer, head), unit, sigma in zip(self.heads, self.directions, self.sigmas):
            shift = out.setdefault(layer, torch.zeros(n_heads, head_dim, dtype=self.directions.dtype,
                                                      device=self.directions.device))
            shift[head] = -self.alpha * sigma * unit
        return out

    def edits(self) -> dict[int, Callable[[torch.Tensor], torch.Tensor]]:
        """{layer: edit} where edit adds that layer's shifts to its head outputs [B, T, H, Dh]."""
        def add(shift):
            def edit(heads):  # [B, T, H, Dh]
                return heads + shift.to(heads.dtype)
            return edit
        return {layer: add(shift) for layer, shift in self.shifts().items()}

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"directions": self.directions.contiguous().cpu(), "sigmas": self.sigmas.contiguous().cpu()},
                  folder / "iti.safetensors")
        (folder / "iti.json").write_text(json.dumps({"heads": self.heads, "alpha": self.alpha,
                                                     "direction": self.direction, "shape": self.shape}))

    @classmethod
    def load(cls, folder: Path) -> ITI:
        from safetensors.torch import load_file
        tensors = load_file(folder / "iti.safetensors")
        meta = json.loads((folder / "iti.json").read_text())
        return cls(heads=tuple(tuple(h) for h in meta["heads"]), alpha=meta["alpha"],
                   direction=meta["direction"], shape=tuple(meta["shape"]), **tensors)


def check_strength(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha != alpha:
        raise ConfigError(f"alpha={alpha!r} must be a number, e.g. 4 (weak), 8 (mid) or 12 (strong)")
    return float(alpha)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction={direction!r}; choose one of {', '.join(DIRECTIONS)} (or leace to evaluate "
                          "LEACE erasure)")
    return direction


def check_k(k, n_heads: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_heads:
        raise ConfigError(f"k={k!r} must be an integer between 1 and the model's {n_heads} heads")
    return k


def fit_iti(probes: Probes, train_heads: torch.Tensor, train_labels: torch.Tensor, k: int, alpha: float = 0.0,
            direction: str = "mass_mean", seed: int = 0) -> ITI:
    """Choose the k heads with the highest probe validation accuracy and fit their shifts.

    train_heads: [N, L, H, Dh], the head outputs the probes were trained on; train_labels: [N] (1 = toxic).
    """
    check_direction(direction)
    n_layers, n_heads, head_dim = train_heads.shape[1:]
    if probes.site_shape != (n_layers, n_heads):
        raise ConfigError(f"probes are for {probes.site_shape} heads, activations for {(n_layers, n_heads)}")
    check_k(k, n_layers * n_heads)
    heads = probes.top_sites(k)
    x = torch.stack([train_heads[:, layer, head].float() for layer, head in heads], dim=1)  # [N, K, Dh]
    toxic = train_labels.bool()
    if direction == "mass_mean":
        raw = x[toxic].mean(0) - x[~toxic].mean(0)  # [K, Dh]
    elif direction == "probe":
        raw = torch.stack([probes.weight[layer, head] for layer, head in heads])
    else:
        raw = torch.randn(k, head_dim, generator=torch.Generator().manual_seed(seed))
    units = raw / raw.norm(dim=1, keepdim=True).clamp(min=1e-12)  # [K, Dh]
    sigmas = torch.einsum("nkd,kd->nk", x, units).std(0)  # [K]
    return ITI(heads=tuple(heads), directions=units, sigmas=sigmas, alpha=check_strength(alpha),
               direction=direction, shape=(n_layers, n_heads, head_dim))


@contextmanager
def applied(model, iti: ITI | None) -> Iterator[None]:
    """Inside the block, every forward pass of `model` (prompt and each generated token, with or without
    the KV cache) has the chosen heads' outputs edited: shifted by an `ITI`, or erased by a
    `toxlab.erasure.Erasure` (anything with `shape`, `to(device)` and `edits()`). `None` applies nothing."""
    if iti is None:
        yield
        return
    n_layers, n_heads, _ = iti.shape
    if (len(hooks.decoder_layers(model)), model.config.num_attention_heads) != (n_layers, n_heads):
        raise ConfigError(f"this {type(iti).__name__} was fitted on a model with {n_layers} layers x {n_heads} heads")
    iti = iti.to(next(model.parameters()).device)
    if isinstance(iti, ITI):  # a constant shift: a bias of o_proj; layers the shift leaves alone keep none
        with hooks.shifted(model, {layer: s for layer, s in iti.shifts().items() if torch.count_nonzero(s)}):
            yield
        return
    with hooks.hooked(model, {hooks.HEAD_OUT.format(layer): edit for layer, edit in iti.edits().items()}):
        yield
