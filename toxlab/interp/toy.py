"""The toy experiment (paper Section 2): does a feature that is rare in the training data get a more
entangled direction in a small transformer?

Data: three deterministic cyclic Markov chains over a shared 4-state space. Chain A steps s -> s+1,
chain B s -> s+2 and chain C s -> s+3 (mod 4), so the three successors of every state differ and two
consecutive tokens identify the chain. A chain started from each of the 4 states gives 4 distinct
sequences: 12 "features" in all. Chain A is the rare one: its share of the training sequences is varied
from very rare to equal (1/3); B and C split the rest.

Model: a small pre-LayerNorm transformer (default 4 layers, 4-dimensional residual stream, 2 heads, MLP
width 16, learned positions), written in plain torch so that many seeds train at once: the parameters of
`n_seeds` models carry a leading model axis and every operation is batched over it; Adam is elementwise,
so one Adam over them is exactly one independent Adam per model.

Directions: the residual stream after the last layer, at every position after the first (where the chain
is identifiable), is collected for an equal number of sequences of every feature. Two estimators:
"probe" (the one the paper is reported to use): for each current token t, a one-vs-rest logistic probe per
feature on the positions whose token is t, the normals averaged over t and renormalised; "mean": a
feature's mean activation minus the mean of the other features' activations.

Entanglement of feature i = max_{j != i} |cos(v_i, v_j)|; the Welch bound sqrt((n-d)/(d(n-1))) is the
smallest possible maximum coherence of n unit vectors in d dimensions (0.426 for 12 in 4).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from toxlab.core.errors import ConfigError

N_STATES = 4
STEPS = (1, 2, 3)  # chain A, B, C: s -> s + step (mod 4)
RARE_CHAIN = 0


@dataclass(frozen=True)
class ToyConfig:
    """One condition of the toy experiment (the share of the rare chain is varied separately)."""

    d_model: int = 4
    n_layers: int = 4
    n_heads: int = 2
    d_mlp: int = 16
    positions: str = "learned"  # "learned" or "sinusoidal"
    seq_len: int = 16
    steps: int = 4000
    batch_size: int = 64
    lr: float = 3e-3
    estimator: str = "probe"  # "probe" or "mean"
    eval_sequences: int = 64  # per feature, for the direction estimate

    def validate(self) -> ToyConfig:
        for name in ("d_model", "n_layers", "n_heads", "d_mlp", "seq_len", "steps", "batch_size", "eval_sequences"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(f"toy {name}={getattr(self, name)!r} must be a positive integer")
        if self.d_model % self.n_heads:
            raise ConfigError(f"toy d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.d_model % 2:
            raise ConfigError(f"toy d_model={self.d_model} must be even")
        if self.d_model % 2:
            raise ConfigError(f"toy d_model={self.d_model} must be even")
        if self.positions not in ("learned", "sinusoidal"):
            raise ConfigError(f"toy positions={self.positions!r} must be 'learned' or 'sinusoidal'")
        if self.estimator not in ("probe", "mean"):
            raise ConfigError(f"toy estimator={self.estimator!r} must be 'probe' or 'mean'")
        if not self.lr > 0:
            raise ConfigError(f"toy lr={self.lr} must be positive")
        return self

    def replace(self, **changes) -> ToyConfig:
        return dataclasses.replace(self, **changes).validate()


def parse_overrides(config: ToyConfig, items: list[str]) -> ToyConfig:
    """`["d_model=8", "estimator=mean"]` applied to `config`, with values parsed to the field's type."""
    changes = {}
    types = {f.name: f.type for f in dataclasses.fields(ToyConfig)}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in types:
            raise ConfigError(f"toy setting {item!r} is not FIELD=VALUE with FIELD in {', '.join(types)}")
        try:
            changes[name] = {"int": int, "float": float}.get(types[name], str)(value)
        except ValueError:
            raise ConfigError(f"toy setting {item!r}: {value!r} is not a valid {types[name]}; give a "
                              f"{types[name]} value") from None
    return config.replace(**changes)


def feature_id(chain: int, start: int) -> int:
    return chain * N_STATES + start


def chain_sequences(seq_len: int) -> torch.Tensor:
    """All 12 feature sequences: [12, seq_len], row chain * 4 + start."""
    rows = []
    for step in STEPS:
        for start in range(N_STATES):
            rows.append([(start + step * i) % N_STATES for i in range(seq_len)])
    return torch.tensor(rows)


def chain_probabilities(rare_share: float) -> torch.Tensor:
    """[3]: the rare chain gets `rare_share`, the two others split the rest."""
    if not 0.0 < rare_share <= 1 / 3 + 1e-6:
        raise ConfigError(f"rare_share={rare_share} must be in (0, 1/3]: 1/3 is equal shares")
    return torch.tensor([rare_share, (1 - rare_share) / 2, (1 - rare_share) / 2])


def sample_features(rare_share, n: int, generator: torch.Generator) -> torch.Tensor:
    """Feature ids [..., n]: the rare chain with probability `rare_share` (a float, or a tensor [M] of one
    share per model, giving [M, n]), else one of the two others; then a uniformly random start state."""
    share = torch.as_tensor(rare_share, dtype=torch.float64)
    for value in share.flatten().tolist():
        chain_probabilities(value)  # validates the range
    shape = (*share.shape, n)
    rare = torch.rand(shape, generator=generator, dtype=torch.float64) < share[..., None]
    other = 1 + torch.randint(0, 2, shape, generator=generator)
    chains = torch.where(rare, torch.zeros_like(other), other)
    return chains * N_STATES + torch.randint(0, N_STATES, shape, generator=generator)


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [n, B, T, d] with per-model weight, bias [n, d]."""
    x = torch.nn.functional.layer_norm(x, x.shape[-1:])
    return x * weight[:, None, None] + bias[:, None, None]


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [n, B, T, i], weight [n, i, o], bias [n, o] -> [n, B, T, o]."""
    return torch.einsum("nbti,nio->nbto", x, weight) + bias[:, None, None]


class ToyEnsemble(nn.Module):
    """`n_models` independent pre-LayerNorm decoders in one module: every parameter has a leading model axis
    and every operation is batched over it, so many seeds train in one pass. Adam is elementwise, so one
    Adam over these parameters is exactly one independent Adam per model, and the summed loss has each
    model's own gradient.

    Per model: token embedding + positions, `n_layers` x (attention, ReLU MLP), final LayerNorm, unembedding.
    """

    def __init__(self, config: ToyConfig, seeds: list[int]):
        super().__init__()
        self.config = config.validate()
        self.seeds = list(seeds)
        n, d, L, m = len(seeds), config.d_model, config.n_layers, config.d_mlp
        shapes = {"embed": (N_STATES, d), "pos": (config.seq_len, d), "qkv": (L, d, 3 * d), "qkv_b": (L, 3 * d),
                  "out": (L, d, d), "out_b": (L, d), "up": (L, d, m), "up_b": (L, m), "down": (L, m, d),
                  "down_b": (L, d), "unembed": (d, N_STATES), "unembed_b": (N_STATES,)}
        fan_in = {"qkv": d, "out": d, "up": d, "down": m, "unembed": d}
        tensors = {name: torch.empty(n, *shape) for name, shape in shapes.items()}
        for i, seed in enumerate(seeds):  # each model's initialisation depends on its own seed only
            g = torch.Generator().manual_seed(seed)
            for name, shape in shapes.items():
                if name.endswith("_b"):
                    tensors[name][i] = 0.0
                elif name in ("embed", "pos"):
                    tensors[name][i] = (0.1 if name == "pos" else 1.0) * torch.randn(shape, generator=g)
                else:
                    bound = 1 / math.sqrt(fan_in[name])
                    tensors[name][i] = (torch.rand(shape, generator=g) * 2 - 1) * bound
        if config.positions == "sinusoidal":
            position = torch.arange(config.seq_len)[:, None]
            freq = torch.exp(-math.log(10_000.0) * torch.arange(0, d, 2) / d)
            table = torch.zeros(config.seq_len, d)
            table[:, 0::2], table[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
            self.register_buffer("fixed_pos", table.expand(n, -1, -1).clone())
            del tensors["pos"]
        self.weights = nn.ParameterDict({name: nn.Parameter(t) for name, t in tensors.items()})
        self.ln = nn.ParameterDict({name: nn.Parameter((torch.ones if name.endswith("w") else torch.zeros)(n, L, d))
                                    for name in ("ln1_w", "ln1_b", "ln2_w", "ln2_b")})
        self.ln_f = nn.ParameterDict({"w": nn.Parameter(torch.ones(n, d)), "b": nn.Parameter(torch.zeros(n, d))})
        self.register_buffer("causal", torch.tril(torch.ones(config.seq_len, config.seq_len, dtype=torch.bool)))

    def forward(self, tokens: torch.Tensor, return_resid: bool = False) -> torch.Tensor:
        """tokens [n, B, T] -> logits [n, B, T, vocab], or the final residual stream [n, B, T, d]."""
        w, config = self.weights, self.config
        n, b, t = tokens.shape
        heads = config.n_heads
        embed = w["embed"][torch.arange(n)[:, None, None], tokens]  # [n, B, T, d]
        pos = w["pos"] if "pos" in w else self.fixed_pos
        x = embed + pos[:, None, :t]
        for layer in range(config.n_layers):
            h = _layer_norm(x, self.ln["ln1_w"][:, layer], self.ln["ln1_b"][:, layer])
            q, k, v = _linear(h, w["qkv"][:, layer], w["qkv_b"][:, layer]).chunk(3, dim=-1)  # [n, B, T, d]
            q, k, v = (z.reshape(n, b, t, heads, -1).transpose(2, 3) for z in (q, k, v))  # [n, B, H, T, Dh]
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [n, B, H, T, T]
            scores = scores.masked_fill(~self.causal[:t, :t], float("-inf"))
            attended = (scores.softmax(-1) @ v).transpose(2, 3).reshape(n, b, t, -1)  # [n, B, T, d]
            x = x + _linear(attended, w["out"][:, layer], w["out_b"][:, layer])
            h = _layer_norm(x, self.ln["ln2_w"][:, layer], self.ln["ln2_b"][:, layer])
            x = x + _linear(torch.relu(_linear(h, w["up"][:, layer], w["up_b"][:, layer])),
                            w["down"][:, layer], w["down_b"][:, layer])
        if return_resid:
            return x
        return _linear(_layer_norm(x, self.ln_f["w"], self.ln_f["b"]), w["unembed"], w["unembed_b"])

    def fit(self, shares: list[float], generator: torch.Generator) -> np.ndarray:
        """Adam on next-token cross-entropy, model i seeing the rare chain with share `shares[i]`; returns
        each model's mean loss over the last 100 steps."""
        config = self.config
        sequences = chain_sequences(config.seq_len)
        optimizer = torch.optim.Adam(self.parameters(), lr=config.lr)
        share = torch.tensor(shares, dtype=torch.float64)
        recent = []
        for step in range(config.steps):
            tokens = sequences[sample_features(share, config.batch_size, generator)]  # [n, B, T]
            # Whole sequences go through the model and the last position's prediction is dropped: rows of
            # seq_len = 16 keys keep the CPU softmax vectorised (a 16-wide row is ~10x faster than 15).
            logits = self(tokens)[:, :, :-1]  # [n, B, T-1, vocab]
            per_model = torch.nn.functional.cross_entropy(
                logits.reshape(-1, N_STATES), tokens[:, :, 1:].reshape(-1), reduction="none"
            ).view(len(shares), -1).mean(1)  # [n]
            optimizer.zero_grad(set_to_none=True)
            per_model.sum().backward()  # independent models: each gets the gradient of its own loss
            optimizer.step()
            if step >= config.steps - 100:
                recent.append(per_model.detach())
        return torch.stack(recent).mean(0).numpy()

    @torch.no_grad()
    def chain_losses(self) -> np.ndarray:
        """[n, 3] next-token loss per chain on every sequence, after the first transition (ambiguous by
        design until the chain is known)."""
        sequences = chain_sequences(self.config.seq_len)
        n = len(self.seeds)
        logits = self(sequences.expand(n, -1, -1))[:, :, :-1]  # [n, 12, T-1, vocab]
        targets = sequences[:, 1:].expand(n, -1, -1)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, N_STATES), targets.reshape(-1),
                                                 reduction="none").view(n, 12, -1)[:, :, 1:]
        return loss.mean(2).view(n, 3, N_STATES).mean(2).numpy()

    @torch.no_grad()
    def residuals(self) -> torch.Tensor:
        """[n, 12, T, d]: the final residual stream on every feature's sequence."""
        sequences = chain_sequences(self.config.seq_len)
        return self(sequences.expand(len(self.seeds), -1, -1), return_resid=True)


def feature_directions(resid: torch.Tensor, estimator: str, seq_len: int) -> np.ndarray:
    """Unit direction per feature from one model's residuals [12, T, d] -> [12, d].

    Positions 1.. (where the chain can be known) are used. "mean": feature mean minus the mean of the
    other features. "probe": per current token t, a one-vs-rest logistic probe per feature on positions
    whose token is t; the normals of the tokens where the feature occurs are averaged and renormalised."""
    from sklearn.linear_model import LogisticRegression
    sequences = chain_sequences(seq_len)[:, 1:].numpy()  # [12, T-1]
    x = resid[:, 1:].numpy()  # [12, T-1, d]
    d = x.shape[-1]
    directions = np.zeros((12, d))
    if estimator == "mean":
        means = x.mean(1)  # [12, d]
        for i in range(12):
            directions[i] = means[i] - np.delete(means, i, axis=0).mean(0)
    else:
        for t in range(N_STATES):
            rows, labels = [], []
            for f in range(12):
                mask = sequences[f] == t
                rows.append(x[f][mask])
                labels += [f] * int(mask.sum())
            data, labels = np.concatenate(rows), np.asarray(labels)
            for f in np.unique(labels):
                if len(np.unique(labels)) < 2:
                    continue
                probe = LogisticRegression(C=1.0, max_iter=2000).fit(data, labels == f)
                normal = probe.coef_[0]
                directions[f] += normal / max(np.linalg.norm(normal), 1e-12)
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    return directions / np.maximum(norms, 1e-12)


def entanglement(directions: np.ndarray) -> np.ndarray:
    """[n, d] unit vectors -> [n]: each one's max |cos| with any other."""
    unit = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    cos = np.abs(unit @ unit.T)
    np.fill_diagonal(cos, -np.inf)
    return cos.max(1)


def welch_bound(n: int, d: int) -> float:
    """Lower bound on the maximum |cos| among n unit vectors in d dimensions (n > d)."""
    return math.sqrt((n - d) / (d * (n - 1)))


def random_entanglement(n: int, d: int, draws: int = 5000, seed: int = 0) -> float:
    """Mean entanglement of one of n random unit vectors in d dimensions (the no-structure reference)."""
    rng = np.random.default_rng(seed)
    values = [entanglement(rng.standard_normal((n, d)))[0] for _ in range(draws)]
    return float(np.mean(values))


ESTIMATORS = ("probe", "mean")


def run_condition(config: ToyConfig, shares: list[float], seeds: list[int]) -> list[dict]:
    """Train one model per (share, seed), all in one ensemble, and measure every feature's entanglement with
    both direction estimators; one row per model (the condition's own estimator is `config.estimator`).

    A model's initialisation depends on its seed only; the batches come from one generator seeded by the
    whole set of (share, seed) pairs, so the same call gives the same numbers."""
    pairs = [(share, seed) for share in shares for seed in seeds]
    ensemble = ToyEnsemble(config, [seed for _, seed in pairs])
    data_seed = 1_000_003 * len(pairs) + sum(round(share * 1e6) * 31 + seed for share, seed in pairs)
    final_loss = ensemble.fit([share for share, _ in pairs], torch.Generator().manual_seed(data_seed))
    chain_loss = ensemble.chain_losses()
    resid = ensemble.residuals()
    rows = []
    for i, (share, seed) in enumerate(pairs):
        row = {"share": share, "seed": seed, "final_loss": float(final_loss[i]),
               "rare_chain_loss": float(chain_loss[i, RARE_CHAIN]),
               "control_chain_loss": float(chain_loss[i, 1:].mean())}
        for estimator in ESTIMATORS:
            ent = entanglement(feature_directions(resid[i], estimator, config.seq_len))
            row[f"{estimator}_rare_entanglement"] = float(ent[:N_STATES].mean())
            row[f"{estimator}_control_entanglement"] = float(ent[N_STATES:].mean())
            row[f"{estimator}_per_feature"] = ent.tolist()
        row["rare_entanglement"] = row[f"{config.estimator}_rare_entanglement"]
        row["control_entanglement"] = row[f"{config.estimator}_control_entanglement"]
        rows.append(row)
    return rows


def summarise(rows: list[dict], estimator: str | None = None) -> list[dict]:
    """Per share: rare and control entanglement (mean, 95 % t interval over seeds), the paired difference
    rare minus control with its interval and a two-sided paired t-test p-value, and the chain losses.
    `estimator` picks the direction estimator (default: the condition's own)."""
    from scipy import stats
    prefix = f"{estimator}_" if estimator else ""
    out = []
    for share in sorted({r["share"] for r in rows}):
        sel = [r for r in rows if r["share"] == share]
        rare = np.array([r[f"{prefix}rare_entanglement"] for r in sel])
        control = np.array([r[f"{prefix}control_entanglement"] for r in sel])
        diff = rare - control

        def ci(values):
            if len(values) < 2:
                return float("nan"), float("nan")
            half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
            return float(values.mean() - half), float(values.mean() + half)

        p_value = float(stats.ttest_rel(rare, control).pvalue) if len(sel) > 1 and diff.std() > 0 else float("nan")
        out.append({"share": share, "seeds": len(sel),
                    "rare": float(rare.mean()), "rare_ci": ci(rare),
                    "control": float(control.mean()), "control_ci": ci(control),
                    "difference": float(diff.mean()), "difference_ci": ci(diff), "p_value": p_value,
                    "rare_chain_loss": float(np.mean([r["rare_chain_loss"] for r in sel])),
                    "control_chain_loss": float(np.mean([r["control_chain_loss"] for r in sel]))})
    return out
