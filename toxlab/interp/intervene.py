"""Inference-Time Intervention (Li et al. 2023; the paper's Section 5): shift the outputs of the K heads
whose probes separate toxic from benign best, away from toxicity.

`fit_iti` is the fitter: it takes the probes (to rank heads) and the training activations the probes were
fitted on, and returns a small frozen `ITI`. Heads are ranked by the cross-validated ROC-AUC of the
projection on the mass-mean direction (`Probes.cv_auc`; the paper's probe accuracy, `rank="val_accuracy"`,
is kept as a sensitivity check), ties in site order. For each chosen head h with unit direction u_h
(pointing towards toxic) and sigma_h, the standard deviation of the training activations along u_h
(`toxlab.interp.probe.mass_mean_direction` and `spread`, the one definition), applying ITI with strength alpha
replaces the head's output x_h (before o_proj) by

    x_h - alpha * sigma_h * u_h,

so alpha > 0 moves away from toxic, alpha < 0 towards it, and alpha = 0 changes nothing. The paper's weak,
mid and strong are alpha = 4, 8, 12 (`PAPER_ALPHAS`, a labelled secondary sweep here); the book's own
strengths are calibrated per model to a capability cost (`calibrate_alphas`, bisection on a monotone cost).
`ITI.shift_ratio` is the size of the shift relative to the heads' mean output norm. Directions: the
mass-mean shift (the paper's default), the probe's weight vector, or a random unit vector (controls, to be
compared at the same cost, not the same alpha: their sigma is far smaller).

Positions (`applied(model, iti, from_position)`): ITI's reference shifts, during generation, the last
prompt position and every generated one (`from_position` = the last prompt position); without it every
position is shifted, which is what the capability cost (cross-entropy on held-out text) uses, and the
all-positions generation variant. Every position: the shift is constant, so it is folded into each layer's
output projection as a bias (`hooks.shifted`), which costs nothing; from a position: `hooks.shifted_from`.
`ITI.edits()` is the same edit as hooks on the head outputs (the definition, for tests).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from toxlab.core.errors import ConfigError
from toxlab.interp import hooks
from toxlab.interp.probe import RANKINGS, Probes, mass_mean_direction, spread, unit_rows

DIRECTIONS = ("mass_mean", "probe", "random")
#: The paper's strengths (Section 5): weak, mid, strong.
PAPER_ALPHAS = {"weak": 4.0, "mid": 8.0, "strong": 12.0}
#: |alpha| beyond this is a typo, not a strength: a random direction's sigma is 10-60 times smaller than the
#: mass mean's, so matching its cost can take alpha in the hundreds, never in the thousands.
MAX_ALPHA = 1000.0
#: Where the shift applies during generation: ITI's reference (the last prompt position and every generated
#: one) or every position (the variant; capability is always measured with every position shifted).
POSITIONS = ("reference", "all")


@dataclass(frozen=True)
class ITI:
    """K chosen heads and their shifts. heads: ((layer, head), ...) best first; directions: [K, Dh] unit
    vectors towards toxic; sigmas: [K]; head_norms: [K], the mean norm of each head's training outputs;
    shape: (L, H, Dh) of the model's head outputs; ranking: the `Probes` measure the heads were chosen by."""

    heads: tuple[tuple[int, int], ...]
    directions: torch.Tensor
    sigmas: torch.Tensor
    head_norms: torch.Tensor
    alpha: float
    direction: str
    shape: tuple[int, int, int]
    ranking: str = "cv_auc"

    def __post_init__(self) -> None:
        k = len(self.heads)
        if tuple(self.directions.shape) != (k, self.shape[2]) or tuple(self.sigmas.shape) != (k,) \
                or tuple(self.head_norms.shape) != (k,):
            raise ConfigError(f"ITI needs directions [K, Dh] = [{k}, {self.shape[2]}], sigmas and head_norms [{k}]")

    @property
    def k(self) -> int:
        return len(self.heads)

    @property
    def shift_ratio(self) -> float:
        """The shift's norm relative to the head's mean output norm, |alpha| sigma_h / norm_h, averaged over
        the K heads (1 = each shifted head moves by its own typical size)."""
        return float((abs(self.alpha) * self.sigmas / self.head_norms.clamp(min=1e-12)).mean())

    def with_alpha(self, alpha: float) -> ITI:
        return dataclasses.replace(self, alpha=check_strength(alpha))

    def to(self, device) -> ITI:
        return dataclasses.replace(self, directions=self.directions.to(device), sigmas=self.sigmas.to(device),
                                   head_norms=self.head_norms.to(device))

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
        save_file({name: getattr(self, name).contiguous().cpu() for name in ("directions", "sigmas", "head_norms")},
                  folder / "iti.safetensors")
        (folder / "iti.json").write_text(json.dumps({"heads": self.heads, "alpha": self.alpha, "ranking": self.ranking,
                                                     "direction": self.direction, "shape": self.shape}))

    @classmethod
    def load(cls, folder: Path) -> ITI:
        from safetensors.torch import load_file
        tensors = load_file(folder / "iti.safetensors")
        meta = json.loads((folder / "iti.json").read_text())
        return cls(heads=tuple(tuple(h) for h in meta["heads"]), alpha=meta["alpha"], ranking=meta["ranking"],
                   direction=meta["direction"], shape=tuple(meta["shape"]), **tensors)


def check_strength(alpha) -> float:
    """alpha as a float; anything but a finite number within +-MAX_ALPHA is a ConfigError saying what to give."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
            or abs(alpha) > MAX_ALPHA:
        raise ConfigError(f"alpha={alpha!r} must be a number, finite and between -{MAX_ALPHA:g} and {MAX_ALPHA:g}, "
                          "e.g. 4 (weak), 8 (mid) or 12 (strong)")
    return float(alpha)


def check_positions(positions: str) -> str:
    if positions not in POSITIONS:
        raise ConfigError(f"positions={positions!r}; choose one of {', '.join(POSITIONS)} (reference: the last "
                          "prompt position and every generated one)")
    return positions


def check_ranking(ranking: str) -> str:
    if ranking not in RANKINGS:
        raise ConfigError(f"ranking={ranking!r}; choose one of {', '.join(RANKINGS)}")
    return ranking


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
            direction: str = "mass_mean", seed: int = 0, ranking: str = "cv_auc") -> ITI:
    """Choose the k heads ranked best by `ranking` (a `Probes` measure) and fit their shifts.

    train_heads: [N, L, H, Dh], the head outputs the probes were trained on; train_labels: [N] (1 = toxic).
    """
    check_direction(direction)
    check_ranking(ranking)
    n_layers, n_heads, head_dim = train_heads.shape[1:]
    if probes.site_shape != (n_layers, n_heads):
        raise ConfigError(f"probes are for {probes.site_shape} heads, activations for {(n_layers, n_heads)}")
    check_k(k, n_layers * n_heads)
    alpha = check_strength(alpha)
    heads = probes.top_sites(k, ranking)
    x = torch.stack([train_heads[:, layer, head].float() for layer, head in heads], dim=1)  # [N, K, Dh]
    if direction == "mass_mean":
        raw, _ = mass_mean_direction(x, train_labels)  # [K, Dh]
    elif direction == "probe":
        raw = torch.stack([probes.weight[layer, head] for layer, head in heads])
    else:
        raw = torch.randn(k, head_dim, generator=torch.Generator().manual_seed(seed))
    units = unit_rows(raw)  # [K, Dh]
    return ITI(heads=tuple(heads), directions=units, sigmas=spread(x, units), head_norms=x.norm(dim=-1).mean(0),
               alpha=alpha, direction=direction, shape=(n_layers, n_heads, head_dim), ranking=ranking)


@dataclass(frozen=True)
class Calibration:
    """The alpha at which a monotone capability cost reaches `target` (same unit as the cost, e.g. nats of
    KL per token), the cost measured there, and whether the target was reached below MAX_ALPHA."""

    target: float
    alpha: float
    cost: float
    reached: bool


def check_cost_target(target) -> float:
    """A cost target as a float; anything but a finite positive number is a ConfigError saying what to give."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target) or target <= 0:
        raise ConfigError(f"cost target {target!r} must be a finite positive number of nats, e.g. 0.05")
    return float(target)


def calibrate_alphas(cost: Callable[[float], float], targets: list[float], rel_tol: float = 0.05,
                     start: float = 1.0, max_steps: int = 30) -> list[Calibration]:
    """For each target, the alpha >= 0 at which `cost(alpha)` (monotone non-decreasing, cost(0) = 0) comes
    within `rel_tol` of it. Each step measures where a power law cost = c * alpha^p through the nearest
    measured points reaches the target (KL grows about as alpha^2 for small shifts): beyond the highest point
    while the target is not bracketed (at most 4 times it), inside the bracket after, falling back to a
    bisection step when the bracket does not at least halve. Every measured point is kept and reused across
    targets; three targets take about 5 measurements where plain bisection took 11-14. A target the cost
    does not reach by MAX_ALPHA gives MAX_ALPHA with `reached` False."""
    targets = [check_cost_target(t) for t in targets]
    seen: dict[float, float] = {0.0: 0.0}  # alpha -> cost

    def measure(alpha: float) -> float:
        if alpha not in seen:
            seen[alpha] = float(cost(alpha))
        return seen[alpha]

    def within(target: float) -> float | None:
        near = [a for a, c in seen.items() if abs(c - target) <= rel_tol * target]
        return min(near, key=lambda a: abs(seen[a] - target)) if near else None

    def power_law_step(target: float, below: float, high: float | None) -> float:
        c_low = seen[below]
        if high is None:  # not bracketed yet: extrapolate from the highest point below the target
            if c_low <= 0:
                return start if below < start else 2 * below
            lower = [a for a, c in seen.items() if 0 < c < c_low and a < below]
            p = math.log(c_low / seen[max(lower)]) / math.log(below / max(lower)) if lower else 2.0
            p = min(max(p, 0.5), 4.0)
            return min(below * (target / c_low) ** (1 / p), 4 * below, MAX_ALPHA)
        c_high = seen[high]
        if c_low <= 0:
            guess = high * (target / c_high) ** 0.5
        else:  # interpolate log cost linearly in log alpha
            t = math.log(target / c_low) / math.log(c_high / c_low)
            guess = below * (high / below) ** t
        margin = 0.1 * (high - below)  # always shrink the bracket by at least a tenth
        return min(max(guess, below + margin), high - margin)

    out = []
    for target in targets:
        width = None
        for _ in range(max_steps):
            if within(target) is not None:
                break
            above = [a for a, c in seen.items() if c >= target]
            high = min(above) if above else None
            below = max(a for a, c in seen.items() if c < target and (high is None or a < high))
            if high is None and below >= MAX_ALPHA:
                break
            narrowing = high is not None and width is not None and high - below > 0.5 * width
            width = None if high is None else high - below
            measure(0.5 * (below + high) if narrowing else power_law_step(target, below, high))
        best = within(target)
        if best is None and all(c < target for c in seen.values()):
            out.append(Calibration(target, MAX_ALPHA, measure(MAX_ALPHA), False))
            continue
        best = min(seen, key=lambda a: abs(seen[a] - target)) if best is None else best
        out.append(Calibration(target, best, seen[best], True))
    return out


@contextmanager
def applied(model, iti: ITI | None, from_position: int | None = None) -> Iterator[None]:
    """Inside the block, every forward pass of `model` (prompt and each generated token, with or without
    the KV cache) has the chosen heads' outputs edited: shifted by an `ITI`, or erased by a
    `toxlab.interp.erasure.Erasure` (anything with `shape`, `to(device)` and `edits()`). `None` applies nothing.

    from_position: None shifts every position; an index (the last prompt position, ITI's reference) shifts
    only that position and the later ones (`hooks.shifted_from`; an erasure always edits every position)."""
    if iti is None:
        yield
        return
    n_layers, n_heads, _ = iti.shape
    if (len(hooks.decoder_layers(model)), hooks.head_count(model)) != (n_layers, n_heads):
        raise ConfigError(f"this {type(iti).__name__} was fitted on a model with {n_layers} layers x {n_heads} heads")
    iti = iti.to(next(model.parameters()).device)
    if isinstance(iti, ITI):  # a constant shift: a bias of o_proj; layers the shift leaves alone keep none
        shifts = {layer: s for layer, s in iti.shifts().items() if torch.count_nonzero(s)}
        with (hooks.shifted(model, shifts) if from_position is None else
              hooks.shifted_from(model, shifts, from_position)):
            yield
        return
    with hooks.hooked(model, {hooks.HEAD_OUT.format(layer): edit for layer, edit in iti.edits().items()}):
        yield
