"""Linear probes for toxicity, one per attention head (or per layer), fitted all at once (paper Section 4).

`fit_probes` fits L2-regularised logistic regression for every site in one batched Newton solve: the same
objective as scikit-learn's `LogisticRegression(C=1/l2)` (unpenalised intercept), so the same accuracy,
but all heads share each iteration's matrix products. It returns a frozen `Probes` object holding, per
site, the probe weights and bias, train and validation accuracy, balanced accuracy and ROC-AUC, the
mass-mean direction (mean of toxic minus mean of benign training activations, ITI's default direction)
and the standard deviation of the training activations along it (ITI's sigma).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch

TENSORS = ("weight", "bias", "train_accuracy", "val_accuracy", "val_balanced_accuracy", "val_auc",
           "mass_mean", "sigma")


@dataclass(frozen=True)
class Probes:
    """Per-site probes. `G` is the site shape: (L, H) for heads, (L,) for residual-stream layers.

    weight, mass_mean: [*G, D]; bias, *accuracy, val_auc, sigma: [*G]; majority_baseline: the validation
    accuracy of always predicting the training majority class.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    train_accuracy: torch.Tensor
    val_accuracy: torch.Tensor
    val_balanced_accuracy: torch.Tensor
    val_auc: torch.Tensor
    mass_mean: torch.Tensor
    sigma: torch.Tensor
    majority_baseline: float
    l2: float

    @property
    def site_shape(self) -> tuple[int, ...]:
        return tuple(self.bias.shape)

    def to(self, device) -> Probes:
        return Probes(**{f.name: (getattr(self, f.name).to(device) if f.name in TENSORS else getattr(self, f.name))
                         for f in fields(self)})

    def top_sites(self, k: int, metric: str = "val_accuracy") -> list[tuple[int, ...]]:
        """The k sites with the highest `metric`, best first, as index tuples."""
        values = getattr(self, metric).flatten()
        if not 1 <= k <= values.numel():
            raise ValueError(f"k={k} must be between 1 and the number of sites ({values.numel()})")
        order = values.argsort(descending=True)[:k]
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


def logistic_newton(x: torch.Tensor, y: torch.Tensor, l2: float = 1.0, max_iter: int = 50,
                    rtol: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched L2-regularised logistic regression by Newton's method with step halving.

    x: [G, N, D] (G independent problems), y: [N] in {0, 1}. Minimises, per problem,
    sum_n log-loss + l2/2 |w|^2 (intercept unpenalised). The passes over the data run in x's dtype; the
    Newton system is solved in float64. Stops when no problem's objective falls by more than `rtol`
    (relative). Returns w [G, D], b [G] in float64.
    """
    g, n, d = x.shape
    xa = torch.cat([x, torch.ones(g, n, 1, dtype=x.dtype, device=x.device)], dim=2)  # [G, N, D+1]
    xt = xa.transpose(1, 2)  # [G, D+1, N]
    yd = y.to(x.dtype)
    reg = torch.full((d + 1,), l2, dtype=torch.float64, device=x.device)
    reg[-1] = 0.0
    w = torch.zeros(g, d + 1, dtype=torch.float64, device=x.device)

    def logits(weights):  # [G, N]
        return torch.bmm(xa, weights.to(x.dtype).unsqueeze(-1)).squeeze(-1)

    def objective(weights):  # [G], float64
        z = logits(weights)
        data = (torch.nn.functional.softplus(z) - z * yd).to(torch.float64).sum(1)
        return data + 0.5 * (reg * weights ** 2).sum(1)

    loss = objective(w)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        p = torch.sigmoid(logits(w))  # [G, N]
        grad = torch.bmm(xt, (p - yd).unsqueeze(-1)).squeeze(-1).to(torch.float64) + reg * w  # [G, D+1]
        hess = torch.bmm(xt * (p * (1 - p)).unsqueeze(1), xa).to(torch.float64)  # [G, D+1, D+1]
        hess = hess + torch.diag(reg + 1e-9)
        step = torch.cholesky_solve(grad.unsqueeze(-1), torch.linalg.cholesky(hess)).squeeze(-1)
        scale = torch.ones(g, 1, dtype=torch.float64, device=x.device)
        trial = objective(w - step)
        for _ in range(20):  # halve the step where the objective rose
            worse = trial > loss * (1 + rtol) + 1e-12
            if not worse.any():
                break
            scale[worse] *= 0.5
            trial = objective(w - scale * step)
        w = w - scale * step
        converged = bool(((loss - trial) <= rtol * loss.abs().clamp(min=1.0)).all())
        loss = trial
        if converged:
            break
    logistic_newton.iterations = iterations  # read by the benchmark
    return w[:, :d], w[:, d]


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
    x = train.reshape(len(train), -1, d).transpose(0, 1).to(dtype)  # [G, N, D]
    xv = val.reshape(len(val), -1, d).transpose(0, 1).to(dtype)  # [G, M, D]
    y, yv = y_train.to(x.device), y_val.to(x.device)
    w, b = logistic_newton(x, y, l2)
    w, b = w.to(dtype), b.to(dtype)

    def accuracy(data, labels):
        predicted = (torch.einsum("gnd,gd->gn", data, w) + b[:, None]) > 0
        return (predicted == labels.bool()).to(dtype).mean(1), predicted

    train_acc, _ = accuracy(x, y)
    val_acc, predicted = accuracy(xv, yv)
    pos = yv.bool()
    balanced = 0.5 * (predicted[:, pos].to(dtype).mean(1) + (~predicted[:, ~pos]).to(dtype).mean(1))
    auc = roc_auc(torch.einsum("gnd,gd->gn", xv, w) + b[:, None], yv)
    toxic, benign = x[:, y.bool()], x[:, ~y.bool()]
    mass_mean = toxic.mean(1) - benign.mean(1)  # [G, D]
    unit = mass_mean / mass_mean.norm(dim=1, keepdim=True).clamp(min=1e-12)
    sigma = torch.einsum("gnd,gd->gn", x, unit).std(1)
    majority = float(yv.float().mean()) if int(y.sum()) * 2 > len(y) else float(1 - yv.float().mean())

    def shaped(t, *extra):
        return t.reshape(*site_shape, *extra).float().cpu()

    return Probes(weight=shaped(w, d), bias=shaped(b), train_accuracy=shaped(train_acc),
                  val_accuracy=shaped(val_acc), val_balanced_accuracy=shaped(balanced), val_auc=shaped(auc),
                  mass_mean=shaped(mass_mean, d), sigma=shaped(sigma), majority_baseline=majority, l2=l2)
