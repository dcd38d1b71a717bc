"""The scaling sweep that sizes a level: models of several sizes trained on several clean-token budgets at f = 0
with one seed, each by `pretraining.pretrain` (so cached and resumable), compared on what a model learned.

The level's budget binds on compute (its ledgers), and at these scales data binds before parameters (issue 25:
the first cpu preset saw 0.2 tokens per parameter). Every model is read on the same yardsticks:
- bits per byte of the C4 snippets (`toxlab.data.tokenizer.bits_per_byte`): models with other tokenizers or
  other clean corpora compare on it, where cross-entropy per token does not;
- its margin over the unigram model on its own held-out clean text (nats per token);
- the mean validation ROC-AUC of its attention heads' toxicity probes on ToxiGen (chapter 4's measure), the
  signal ITI needs;
- its training compute (FLOPs per token, `toxlab.model.decoder.train_flops_per_token`, times the tokens trained
  on) and its training time on this machine (the ledger's wall clock, which other work on the cores inflates).
`choose` keeps the lowest bits per byte among the models whose training compute fits a per-model budget: compute,
not the wall clock, so that the choice does not depend on what else the machine was doing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from toxlab.core.config import FIRST_DESIGN, DataConfig, RunConfig, override
from toxlab.core.errors import ConfigError
from toxlab.data.tokenizer import bits_per_byte, token_bytes
from toxlab.model.decoder import train_flops_per_token
from toxlab.pipeline import pretraining, probing
from toxlab.pipeline.common import log_line
from toxlab.pipeline.mixtures import load_tokenizer, mixture


@dataclass(frozen=True)
class ModelSize:
    """A decoder shape of the sweep."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int

    def overrides(self) -> dict[str, int]:
        return {"model.n_layers": self.n_layers, "model.d_model": self.d_model, "model.n_heads": self.n_heads,
                "model.d_mlp": self.d_mlp}


#: The cpu level's candidates: from the first cpu preset's shape down to a model four times smaller.
CPU_SIZES = (ModelSize("2 x 128", 2, 128, 4, 512), ModelSize("4 x 128", 4, 128, 4, 512),
             ModelSize("4 x 256", 4, 256, 8, 1024))
#: Clean training tokens of the cpu level's candidates (the first cpu preset trained on 0.8 M).
CPU_BUDGETS = (800_000, 1_600_000, 3_200_000)
#: The first design's data, the yardstick the sweep's targets are set against: `FIRST_DESIGN` (Wikinews only,
#: unfiltered) with the first toxic recipe (mostly /biz/; it shapes the tokenizer). The first cpu model: 4 x 256 on
#: 0.8 M clean tokens.
FIRST_DESIGN_DATA = {**{f"data.{name}": value for name, value in FIRST_DESIGN.items()},
                     "data.toxic_recipe": DataConfig().toxic_recipe}


def parse_sizes(text: str) -> tuple[ModelSize, ...]:
    """'2x128,4x256' -> shapes with 4 heads below width 256 (else 8) and d_mlp = 4 x width."""
    sizes = []
    for item in text.split(","):
        layers, sep, width = item.strip().lower().partition("x")
        if not (sep and layers.isdigit() and width.isdigit() and int(layers) > 0 and int(width) > 0):
            raise ConfigError(f"model size {item!r} is not LAYERSxWIDTH; write e.g. --sizes 2x128,4x256")
        n_layers, d_model = int(layers), int(width)
        n_heads = 4 if d_model < 256 else 8
        if d_model % n_heads:
            raise ConfigError(f"width {d_model} is not divisible by {n_heads} heads; choose a multiple of {n_heads}")
        sizes.append(ModelSize(f"{n_layers} x {d_model}", n_layers, d_model, n_heads, 4 * d_model))
    return tuple(sizes)


def parse_budgets(text: str) -> tuple[int, ...]:
    """'800000,1600000' -> clean-token budgets."""
    try:
        budgets = tuple(int(item) for item in text.split(","))
    except ValueError:
        raise ConfigError(f"--budgets {text!r} must be comma-separated token counts, e.g. 800000,1600000") from None
    if any(b <= 0 for b in budgets):
        raise ConfigError(f"--budgets {text!r}: every budget must be positive")
    return budgets


def parse_lrs(text: str) -> tuple[float, ...]:
    """'2e-3,4e-3' -> peak learning rates."""
    try:
        lrs = tuple(float(item) for item in text.split(","))
    except ValueError:
        raise ConfigError(f"--lrs {text!r} must be comma-separated learning rates, e.g. 2e-3,4e-3") from None
    if any(not lr > 0 for lr in lrs):
        raise ConfigError(f"--lrs {text!r}: every learning rate must be positive")
    return lrs


@dataclass(frozen=True)
class ScalingRow:
    """One model of the sweep. heads: attention heads in all (the heads ITI chooses among); lr: peak learning
    rate; params: non-embedding parameters; tokens_per_param: training tokens per
    non-embedding parameter; ce_margin: unigram minus the model's held-out clean cross-entropy (nats/token);
    head_auc: mean validation ROC-AUC of the head probes (nan when not probed); train_tflop: training compute
    (10^12 FLOPs); train_minutes: the ledger's training time."""

    size: str
    n_layers: int
    d_model: int
    heads: int
    lr: float
    params: int
    clean_tokens: int
    tokens_per_param: float
    val_ce: float
    unigram_ce: float
    ce_margin: float
    c4_ce: float
    c4_bits_per_byte: float
    head_auc: float
    train_tflop: float
    train_minutes: float

    def as_dict(self) -> dict:
        return asdict(self)

    def bpb_gain(self, reference: ScalingRow) -> float:
        """How much lower this model's C4 bits per byte are than `reference`'s, as a share of them."""
        return 1 - self.c4_bits_per_byte / reference.c4_bits_per_byte

    def meets_targets(self, reference: ScalingRow) -> tuple[bool, bool]:
        """(bits per byte, head AUC): whether this model meets each of the level's targets against the first
        design's model `reference` (`BPB_GAIN_TARGET`, `HEAD_AUC_TARGET`)."""
        return self.bpb_gain(reference) >= BPB_GAIN_TARGET, self.head_auc >= HEAD_AUC_TARGET


#: The first cpu preset's peak learning rate: the first cpu model (the targets' reference) and the sweep's grid
#: train at it.
FIRST_CPU_LR = 2e-3

#: The cpu level's targets against its first design, read on the same yardsticks (issue 25): C4 bits per byte at
#: least this share below the first design's model, and a mean head probe AUC at f = 0 of at least this.
BPB_GAIN_TARGET = 0.10
HEAD_AUC_TARGET = 0.65


def size_config(base: RunConfig, size: ModelSize, clean_tokens: int, lr: float | None = None) -> RunConfig:
    """`base` at f = 0 with this shape and clean-token budget (and peak learning rate `lr`, else `base`'s)."""
    lr_override = {} if lr is None else {"train.lr": lr}
    return override(base, {**size.overrides(), "data.clean_tokens": clean_tokens, "data.toxic_fraction": 0.0,
                           **lr_override})


def c4_bits_per_byte(config: RunConfig, seed: int) -> float:
    """Bits per byte of the C4 snippets for the model of (config, seed), from its cached metrics and mixture."""
    metrics = pretraining.pretrain(config, seed, progress=False).json("metrics.json")
    c4 = np.load(mixture(config).file("c4.npy"))
    return bits_per_byte(metrics["c4_loss"], c4, token_bytes(load_tokenizer(config)))


def measure(config: RunConfig, size: ModelSize, seed: int, probe: bool = True, progress: bool = True) -> ScalingRow:
    """Train (or reuse) one model of the sweep and read it on every yardstick."""
    metrics = pretraining.pretrain(config, seed, progress=progress).json("metrics.json")
    head_auc = float("nan")
    if probe:
        summary = probing.probe(config, seed, progress=progress).json("summary.json")
        head_auc = float(np.mean(summary["head_val_auc"]))
    params = int(metrics["params"]["non_embedding"])
    return ScalingRow(size.name, size.n_layers, size.d_model, size.n_layers * size.n_heads, config.train.lr, params,
                      config.data.clean_tokens,
                      metrics["train_tokens_seen"] / params, metrics["val_loss"], metrics["unigram_val_loss"],
                      metrics["unigram_val_loss"] - metrics["val_loss"], metrics["c4_loss"],
                      c4_bits_per_byte(config, seed), head_auc,
                      metrics["flops_per_token"] * metrics["train_tokens_seen"] / 1e12, metrics["train_time_s"] / 60)


def first_design_row(base: RunConfig, size: ModelSize, clean_tokens: int, seed: int = 0, probe: bool = True,
                     progress: bool = True, lr: float | None = None) -> ScalingRow:
    """A model of the first design's data (`FIRST_DESIGN_DATA`) at f = 0 read on the sweep's yardsticks (bits per
    byte compare across tokenizers and clean corpora); `base` gives everything else (sequence length, optimiser,
    held-out sizes), `lr` the peak learning rate if not `base`'s. The cpu level's reference is the first cpu model,
    4 x 256 on 800,000 clean tokens at `FIRST_CPU_LR`."""
    config = size_config(override(base, FIRST_DESIGN_DATA), size, clean_tokens, lr)
    return measure(config, size, seed, probe, progress)


def sweep(base: RunConfig, sizes=CPU_SIZES, budgets=CPU_BUDGETS, seed: int = 0, probe: bool = True,
          progress: bool = True, log=log_line, lrs=(None,)) -> list[ScalingRow]:
    """Every size on every budget at every peak learning rate of `lrs` (None: `base`'s), one row each: budgets
    ascending, then `sizes` in order, then `lrs` in order."""
    if not sizes or not budgets or not lrs:
        raise ConfigError("the scaling sweep needs at least one model size, one token budget and one learning rate")
    return cells(base, [(size, clean_tokens, lr) for clean_tokens in sorted(budgets) for size in sizes for lr in lrs],
                 seed, probe, progress, log)


def cells(base: RunConfig, grid: list[tuple[ModelSize, int, float | None]], seed: int = 0, probe: bool = True,
          progress: bool = True, log=log_line) -> list[ScalingRow]:
    """One row per (shape, clean-token budget, peak learning rate or None for `base`'s) of `grid`, in its order.
    The models train cheapest first (by training compute), so a run cut short has the cheap ones and resumes on the
    rest."""
    rows = {}
    for cell in sorted(grid, key=lambda cell: training_compute(size_config(base, *cell))):
        size, clean_tokens, _ = cell
        config = size_config(base, *cell)
        log(f"scaling: {size.name} on {clean_tokens:,} clean tokens, lr {config.train.lr:g} (seed {seed})")
        rows[cell] = measure(config, size, seed, probe, progress)
    return [rows[cell] for cell in grid]


def training_compute(config: RunConfig) -> float:
    """FLOPs of one pass over the clean tokens of `config` (f = 0), as `train_flops_per_token` counts them."""
    per_token = train_flops_per_token(config.model, config.tokenizer.vocab_size, config.data.seq_len)
    return per_token * config.data.clean_tokens * config.train.epochs


def choose(rows: list[ScalingRow], max_tflop: float, min_heads: int = 1) -> ScalingRow:
    """The row with the lowest C4 bits per byte among those whose training took at most `max_tflop` 10^12 FLOPs
    and that have at least `min_heads` attention heads in all (the heads ITI and LEACE choose among)."""
    within = [r for r in rows if r.train_tflop <= max_tflop and r.heads >= min_heads]
    if not within:
        raise ConfigError(f"no model of the sweep trained within {max_tflop:g} TFLOP with at least {min_heads} "
                          f"heads; raise the budget or add smaller sizes")
    return min(within, key=lambda r: r.c4_bits_per_byte)


@dataclass(frozen=True)
class LearningRateReading:
    """One peak learning rate read on several seeds of the same shape and budget: the mean C4 bits per byte and
    their standard deviation over the seeds (0 for one seed), and the mean head AUC."""

    lr: float
    seeds: int
    c4_bits_per_byte: float
    c4_bits_per_byte_sd: float
    head_auc: float


def by_learning_rate(rows: list[ScalingRow]) -> list[LearningRateReading]:
    """`rows` (one model per seed, all of one shape and budget) grouped by peak learning rate, lowest mean C4 bits
    per byte first: a learning rate at the edge of stable training can win on one seed and lose on the others, so
    the level takes it from the mean over seeds."""
    if len({(r.size, r.clean_tokens) for r in rows}) > 1:
        raise ConfigError("by_learning_rate compares one shape on one clean-token budget; got several")
    readings = []
    for lr in sorted({r.lr for r in rows}):
        bpb = np.array([r.c4_bits_per_byte for r in rows if r.lr == lr])
        readings.append(LearningRateReading(lr, len(bpb), float(bpb.mean()), float(bpb.std(ddof=1)) if len(bpb) > 1
                                            else 0.0, float(np.mean([r.head_auc for r in rows if r.lr == lr]))))
    return sorted(readings, key=lambda reading: reading.c4_bits_per_byte)

