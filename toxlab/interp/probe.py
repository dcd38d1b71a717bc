"""Linear probes for toxicity, one per attention head (or per layer), fitted all at once (paper Section 4).

`fit_probes` fits L2-regularised logistic regression for every site in one batched Newton solve: the same
objective as scikit-learn's `LogisticRegression(C=1/l2)` (unpenalised intercept), so the same accuracy,
but all heads share each iteration's matrix products. It returns a frozen `Probes` object holding, per
site, the probe weights and bias, train and validation accuracy, balanced accuracy and ROC-AUC, the
mass-mean direction (mean of toxic minus mean of benign training activations, ITI's default direction)
and the standard deviation of the training activations along it (ITI's sigma), and the cross-validated
ROC-AUC of the projection on that direction (`cv_auc`, how ITI ranks heads: accuracy sits at the majority
rate for every head at this scale, AUC separates them). `mass_mean_direction` and `spread` are the one
definition of ITI's direction and sigma (toxlab.interp.intervene uses them too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch

TENSORS = ("weight", "bias", "train_accuracy", "val_accuracy", "val_balanced_accuracy", "val_auc",
           "mass_mean", "sigma", "cv_auc")
#: How heads can be ranked: `cv_auc` (the default: cross-validated ROC-AUC of the projection on the mass-mean
#: direction, on the training statements) or the paper's `val_accuracy` (kept as a sensitivity check).
RANKINGS = ("cv_auc", "val_accuracy", "val_auc", "val_balanced_accuracy")
CV_FOLDS = 5


@dataclass(frozen=True)
class Probes:
    """Per-site probes. `G` is the site shape: (L, H) for heads, (L,) for residual-stream layers.

    weight, mass_mean: [*G, D]; bias, *accuracy, val_auc, sigma, cv_auc: [*G]; majority_baseline: the
    validation accuracy of always predicting the training majority class.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    train_accuracy: torch.Tensor
    val_accuracy: torch.Tensor
    val_balanced_accuracy: torch.Tensor
    val_auc: torch.Tensor
    mass_mean: torch.Tensor
    sigma: torch.Tensor
    cv_auc: torch.Tensor
    majority_baseline: float
    l2: float

    @property
    def site_shape(self) -> tuple[int, ...]:
        return tuple(self.bias.shape)

    def to(self, device) -> Probes:
        return Probes(**{f.name: (getattr(self, f.name).to(device) if f.name in TENSORS else getattr(self, f.name))
                         for f in fields(self)})

    def top_sites(self, k: int, metric: str = "cv_auc") -> list[tuple[int, ...]]:
        """The k sites with the highest `metric` (one of RANKINGS), best first, as index tuples; ties keep
        the site order (lower layer, then lower head, first), so the choice never depends on the sort."""
        if metric not in RANKINGS:
            raise ValueError(f"metric={metric!r}; choose one of {', '.join(RANKINGS)}")
        values = getattr(self, metric).flatten()
        if not 1 <= k <= values.numel():
            raise ValueError(f"k={k} must be between 1 and the number of sites ({values.numel()})")
        order = torch.sort(values, descending=True, stable=True).indices[:k]
        return [tuple(int(i) for i in torch.unravel_index(o, self.site_shape)) for o in order]

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file
        folder.mkdir(parents=True, exist_ok=True)
        save_file({name: getattr(self, name).contiguous().cpu() for name in TENSORS}, folder / "probes.safetensors")
        (folder / "probes.json").write_text(json.dumps({"majority_baseline": self.majority_baseline,
                                                        "l2": self.l2}))

    @classmethod
    def load(cls, folder: Path) -> Probes:
        from safetensors.torch import load_file
        tensors = load_file(folder / "probes.safetensors")
        return cls(**tensors, **json.loads((folder / "probes.json").read_text()))


def with_intercept(x: torch.Tensor) -> torch.Tensor:
    """[N, G, D] -> [G, N, D+1], contiguous, with a trailing column of ones, in one copy."""
    n, g, d = x.shape
    xa = torch.empty(g, n, d + 1, dtype=x.dtype, device=x.device)
    xa[..., :d] = x.transpose(0, 1)
    xa[..., d] = 1.0
    return xa


def logistic_newton(xa: torch.Tensor, y: torch.Tensor, l2: float = 1.0, max_iter: int = 50,
                    gtol: float = 1e-4, weights: torch.Tensor | None = None,
                    init: torch.Tensor | None = None, stats: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched L2-regularised logistic regression by Newton's method with step halving.

    xa: [G, N, D+1] (G independent problems, last column ones: see `with_intercept`), y: [N] in {0, 1}.
    Minimises, per problem, sum_n s_n log-loss_n + l2/2 |w|^2 (intercept unpenalised), where the sample
    weights s: [N] >= 0 default to ones (an integer weight counts a row that many times: the toxicity
    judge weighs its sources equally this way). init: [G, D+1] starting weights (a warm start, e.g. from
    the fit at a neighbouring l2); zeros by default. `stats`, when given, receives the number of Newton
    iterations taken (`stats["iterations"]`). The passes over the data run in xa's dtype; the
    Newton system is solved in float64. Stops when every problem's gradient, divided by sum_n s_n (N
    with unit weights), is below `gtol` in max norm: scikit-learn's default stopping rule for lbfgs on the
    same (mean) objective. An iteration reads the data three times: the gradient (a cheap row-vector
    product), the Hessian, and the trial step's logits, which are the next iteration's. Once the gradient
    has shrunk twentyfold in one step, the iterate is deep in Newton's quadratic region and the Hessian
    barely moves, so the last one is reused (a chord step) until the gradient stops falling that fast.
    Returns the weights [G, D+1] (intercept last) in float64 and the training logits [G, N] at those
    weights.
    """
    g, n, d1 = xa.shape
    yd = y.to(xa.dtype)
    s = None if weights is None else _sample_weights(weights, n, xa)  # [N] in xa's dtype
    total = n if s is None else float(s.to(torch.float64).sum())
    reg = torch.full((d1,), l2, dtype=torch.float64, device=xa.device)
    reg[-1] = 0.0
    w = torch.zeros(g, d1, dtype=torch.float64, device=xa.device)
    if init is not None:
        if tuple(init.shape) != (g, d1):
            raise ValueError(f"init has shape {tuple(init.shape)}; it must be [G, D+1] = {[g, d1]}")
        w = init.to(device=xa.device, dtype=torch.float64).clone()
    weighted = torch.empty_like(xa)  # S X, reused: fresh large buffers cost page faults on the CPU

    def logits(weights):  # [G, N]
        return torch.bmm(xa, weights.to(xa.dtype).unsqueeze(-1)).squeeze(-1)

    def objective(z, weights):  # [G], float64
        losses = torch.nn.functional.softplus(z) - z * yd  # [G, N]
        data = (losses if s is None else losses * s).to(torch.float64).sum(1)
        return data + 0.5 * (reg * weights ** 2).sum(1)

    z = torch.zeros(g, n, dtype=xa.dtype, device=xa.device) if init is None else logits(w)
    loss = objective(z, w)
    iterations, factor, last_gradient = 0, None, float("inf")
    while iterations < max_iter:
        p = torch.sigmoid(z)  # [G, N]
        residual = p - yd if s is None else (p - yd) * s  # [G, N]
        grad = torch.bmm(residual.unsqueeze(1), xa).squeeze(1).to(torch.float64) + reg * w  # [G, D+1]
        gradient = float(grad.abs().max())
        if gradient <= gtol * total:
            break
        iterations += 1
        if factor is None or gradient > 0.05 * last_gradient:  # else keep the last Hessian (chord step)
            curvature = p * (1 - p) if s is None else p * (1 - p) * s  # [G, N]
            torch.mul(xa, curvature.unsqueeze(-1), out=weighted)
            hess = torch.bmm(xa.transpose(1, 2), weighted).to(torch.float64) + torch.diag(reg + 1e-9)
            factor, info = torch.linalg.cholesky_ex(hess)  # [G, D+1, D+1]
            if bool((info > 0).any()):  # rounding in a low-precision X^T S X (large, nearly collinear inputs)
                factor = _refactor(xa, curvature, reg, hess, factor, info)
        last_gradient = gradient
        step = torch.cholesky_solve(grad.unsqueeze(-1), factor).squeeze(-1)
        scale = torch.ones(g, 1, dtype=torch.float64, device=xa.device)
        trial_z = logits(w - step)
        trial = objective(trial_z, w - step)
        for _ in range(20):  # halve the step where the objective rose (beyond float32 rounding)
            worse = trial > loss + 1e-7 * loss.abs()
            if not bool(worse.any()):
                break
            scale[worse] *= 0.5
            trial_z = logits(w - scale * step)
            trial = objective(trial_z, w - scale * step)
        w, z, loss = w - scale * step, trial_z, trial
    if stats is not None:  # how hard the fit was (bench/probe_bench.py reports it)
        stats["iterations"] = iterations
    return w, z


def _sample_weights(weights: torch.Tensor, n: int, xa: torch.Tensor) -> torch.Tensor:
    """Sample weights [N] checked (finite, non-negative, not all zero) and cast to xa's dtype and device."""
    weights = torch.as_tensor(weights)
    if tuple(weights.shape) != (n,) or not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) \
            or not bool((weights > 0).any()):
        raise ValueError(f"weights must be [N] = [{n}] finite non-negative numbers, not all zero")
    return weights.to(device=xa.device, dtype=xa.dtype)


def _refactor(xa: torch.Tensor, curvature: torch.Tensor, reg: torch.Tensor, hess: torch.Tensor,
              factor: torch.Tensor, info: torch.Tensor) -> torch.Tensor:
    """Cholesky factors for the problems whose Hessian lost positive definiteness to rounding: the Hessian
    recomputed in float64, with a growing ridge on the intercept if it still fails. The other problems keep
    their factors, so well-conditioned probes are unchanged bit for bit. curvature: [G, N], the Hessian's
    row weights s p (1 - p)."""
    bad = (info > 0).nonzero().flatten()
    x64 = xa[bad].to(torch.float64)  # [B, N, D+1]
    exact = torch.bmm(x64.transpose(1, 2), x64 * curvature[bad].to(torch.float64).unsqueeze(-1))
    eye = torch.eye(hess.shape[-1], dtype=torch.float64, device=hess.device)
    for jitter in (1e-9, 1e-6, 1e-3, 1.0):
        fixed, still = torch.linalg.cholesky_ex(exact + torch.diag(reg) + jitter * eye)
        if not bool((still > 0).any()):
            break
    factor = factor.clone()
    factor[bad] = fixed
    return factor


def roc_auc(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ROC-AUC of each row of `scores` [G, N] against labels y [N] (Mann-Whitney; ties broken by order)."""
    ranks = scores.argsort(dim=1).argsort(dim=1).to(torch.float64) + 1  # [G, N]
    pos = y.bool()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return (ranks[:, pos].sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def fit_probes(train: torch.Tensor, y_train: torch.Tensor, val: torch.Tensor, y_val: torch.Tensor,
               l2: float = 1.0, dtype: torch.dtype = torch.float32) -> Probes:
    """One probe per site. train: [N, *G, D], val: [M, *G, D]; labels [N], [M] in {0, 1} (1 = toxic)."""
    site_shape, d = tuple(train.shape[1:-1]), train.shape[-1]
    xa = with_intercept(train.reshape(len(train), -1, d).to(dtype))  # [G, N, D+1]
    xva = with_intercept(val.reshape(len(val), -1, d).to(dtype))  # [G, M, D+1]
    y, yv = y_train.to(xa.device), y_val.to(xa.device)
    w, train_logits = logistic_newton(xa, y, l2)
    w = w.to(dtype)
    val_logits = torch.bmm(xva, w.unsqueeze(-1)).squeeze(-1)  # [G, M]

    def accuracy(logits, labels):
        predicted = logits > 0
        return (predicted == labels.bool()).to(dtype).mean(1), predicted

    train_acc, _ = accuracy(train_logits, y)
    val_acc, predicted = accuracy(val_logits, yv)
    pos = yv.bool()
    balanced = 0.5 * (predicted[:, pos].to(dtype).mean(1) + (~predicted[:, ~pos]).to(dtype).mean(1))
    auc = roc_auc(val_logits, yv)
    xs = xa[..., :d].transpose(0, 1)  # [N, G, D], a view
    mass_mean, sigma = mass_mean_direction(xs, y)
    cv_auc = cv_direction_auc(xs, y)
    majority = float(yv.float().mean()) if int(y.sum()) * 2 > len(y) else float(1 - yv.float().mean())

    def shaped(t, *extra):
        return t.reshape(*site_shape, *extra).float().cpu()

    return Probes(weight=shaped(w[:, :d], d), bias=shaped(w[:, d]), train_accuracy=shaped(train_acc),
                  val_accuracy=shaped(val_acc), val_balanced_accuracy=shaped(balanced), val_auc=shaped(auc),
                  mass_mean=shaped(mass_mean, d), sigma=shaped(sigma), cv_auc=shaped(cv_auc),
                  majority_baseline=majority, l2=l2)


def spread(x: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """ITI's sigma: the standard deviation (ddof 1) of x [N, G, D] along the unit vectors units [G, D] -> [G]."""
    return torch.einsum("ngd,gd->ng", x, units.to(x.dtype)).std(0)


def mass_mean_direction(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ITI's direction and sigma, the one definition. x: [N, G, D], y: [N] (1 = toxic) -> the mass mean
    [G, D] (mean of the toxic rows minus mean of the benign ones; not normalised) and sigma [G], the spread
    of x along its unit vector."""
    yf = y.to(x.device, x.dtype)
    contrast = yf / yf.sum() - (1 - yf) / (1 - yf).sum()  # [N]
    raw = torch.einsum("n,ngd->gd", contrast, x)
    return raw, spread(x, unit_rows(raw))


def unit_rows(v: torch.Tensor) -> torch.Tensor:
    """Each row of v [..., D] divided by its norm (a zero row stays zero)."""
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def fold_ids(y: torch.Tensor, folds: int = CV_FOLDS) -> torch.Tensor:
    """Stratified fold of each example [N]: within each class, the i-th example (in the given order, which
    the seeded split has already shuffled) goes to fold i mod `folds`."""
    y = y.cpu()
    out = torch.empty(len(y), dtype=torch.long)
    for label in (0, 1):
        idx = (y == label).nonzero().flatten()
        out[idx] = torch.arange(len(idx)) % folds
    return out


def cv_direction_auc(x: torch.Tensor, y: torch.Tensor, folds: int = CV_FOLDS) -> torch.Tensor:
    """How well the projection on the mass-mean direction separates the classes, out of sample: per
    stratified fold, the direction is fitted on the other folds and the fold's rows are projected on it;
    the mean over folds of the projections' ROC-AUC. x: [N, G, D], y: [N] -> [G]."""
    fold = fold_ids(y, folds).to(x.device)
    aucs = []
    for f in range(folds):
        held = fold == f
        if int(y[held.cpu()].sum()) in (0, int(held.sum())):
            continue  # a fold with one class only has no AUC (tiny data)
        raw, _ = mass_mean_direction(x[~held], y[~held])
        scores = torch.einsum("ngd,gd->gn", x[held], unit_rows(raw))  # [G, n_f]
        aucs.append(roc_auc(scores, y[held.cpu()].to(x.device)))
    if not aucs:
        raise ValueError(f"cross-validated AUC needs both classes in some of the {folds} folds")
    return torch.stack(aucs).mean(0)
