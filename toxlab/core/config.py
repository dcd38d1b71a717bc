"""Typed, frozen, validated configuration and the named presets `smoke`, `cpu` and `gpu`.

A run is described by one `RunConfig` (data + tokenizer + model + train). Presets are data: named
`RunConfig`s that CLI flags (`--set train.lr=1e-3`) and papermill parameters override by dotted key.
Every stage saves the config it ran with next to its output (see `toxlab.core.artifacts`).

The mixture follows the paper's Section 3: the clean tokens are fixed and toxic tokens are added so that
toxic / (clean + toxic) = f.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field

from toxlab.core.errors import ConfigError

#: The paper's toxic fractions (Section 3): 0, 5, 10, 15, 20 and 25 % of the training tokens.
PAPER_FRACTIONS: tuple[float, ...] = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25)
MAX_FRACTION = 0.5
TOXIC_SOURCES = ("pol", "pol_2025", "b", "biz", "civil", "stormfront")
#: Every toxic recipe holds genuine 4chan /pol/ (the paper's toxic data), of 2018 or of 2025-26.
POL_SOURCES = ("pol", "pol_2025")
#: Clean sources a clean recipe may name: news, and web text of two registers (blogs, Reddit).
CLEAN_SOURCES = ("wikinews", "blogs", "reddit")
#: "none", or "c4": every clean document holding a word of C4's list is dropped, as C4 dropped pages.
CLEAN_FILTERS = ("none", "c4")


@dataclass(frozen=True)
class DataConfig:
    """What the model is trained on.

    clean_tokens: the clean training tokens, the same for every fraction (the paper's design: toxic text is
        added); with `token_matched`, the total training tokens, the same for every fraction (toxic text
        replaces clean text), so that trends over f are not trends over tokens seen.
    toxic_fraction: f = toxic / (clean + toxic) in the training stream, 0 <= f <= 0.5.
    toxic_recipe: (source, share of the toxic tokens) pairs; the same for every f of a preset.
    clean_recipe: (source, share of the clean tokens) pairs over CLEAN_SOURCES; the held-out clean set
        follows the same shares.
    clean_filter: "c4" drops every clean document (training and held-out) holding a word or phrase of C4's
        list, as C4 dropped pages; "none" keeps them.
    val_tokens: held-out clean tokens used for the periodic and final validation loss.
    max_fraction: the largest f the preset supports; toxic pools are sized for it.

    `clean_recipe`, `clean_filter` and `token_matched` came after the first caches: at their defaults (the
    first design: Wikinews, unfiltered, toxic text added) they are left out of cache keys (`keyed`), so
    results of that design keep their keys.
    """

    clean_tokens: int = 1_000_000
    toxic_fraction: float = 0.0
    toxic_recipe: tuple[tuple[str, float], ...] = (
        ("pol", 0.30), ("b", 0.06), ("biz", 0.40), ("civil", 0.14), ("stormfront", 0.10))
    val_tokens: int = 100_000
    max_fraction: float = 0.25
    seq_len: int = 256
    lines_per_doc: int = 16  # /pol/, /b/ and Stormfront are lines/sentences: grouped into documents
    min_clean_chars: int = 200  # drops Wikinews stubs and the template-only Main Page
    clean_recipe: tuple[tuple[str, float], ...] = (("wikinews", 1.0),)
    clean_filter: str = "none"
    token_matched: bool = False

    def keyed(self) -> dict:
        """The fields a cache key holds: all but the later ones at their first design's values, and
        `token_matched` at f = 0 (where both designs are the same mixture)."""
        out = dataclasses.asdict(self)
        for name, first in FIRST_DESIGN.items():
            if getattr(self, name) == first or (name == "token_matched" and self.toxic_fraction == 0):
                out.pop(name)
        return out

    def tokenizer_keyed(self) -> dict:
        """The fields the shared tokenizer's key holds: `keyed` without the fraction (every fraction shares
        it), and for the web-text design also without what its corpus does not read (token budgets,
        sequence length, the token-matched flag), so every budget of a scaling sweep shares one tokenizer.
        The first design kept those, and keeps its keys."""
        out = self.keyed()
        out.pop("toxic_fraction")
        out.pop("token_matched", None)
        if self.is_first_design():
            return out
        return {k: v for k, v in out.items() if k not in ("clean_tokens", "val_tokens", "seq_len")}

    def is_first_design(self) -> bool:
        return self.clean_recipe == FIRST_DESIGN["clean_recipe"] and self.clean_filter == FIRST_DESIGN["clean_filter"]

    def validate(self) -> None:
        _positive(self, "clean_tokens", "val_tokens", "seq_len", "lines_per_doc")
        if not 0.0 <= self.toxic_fraction <= MAX_FRACTION:
            raise ConfigError(f"toxic_fraction={self.toxic_fraction} is outside [0, {MAX_FRACTION}]; "
                              f"use a value such as 0.1 for 10 %")
        if not 0.0 <= self.max_fraction <= MAX_FRACTION:
            raise ConfigError(f"max_fraction={self.max_fraction} is outside [0, {MAX_FRACTION}]")
        if self.toxic_fraction > self.max_fraction + 1e-9:
            raise ConfigError(f"toxic_fraction={self.toxic_fraction} exceeds this preset's max_fraction="
                              f"{self.max_fraction}; raise data.max_fraction too")
        _check_recipe("toxic_recipe", self.toxic_recipe, TOXIC_SOURCES)
        if not any(name in POL_SOURCES for name, _ in self.toxic_recipe):
            raise ConfigError(f"toxic_recipe must include genuine 4chan /pol/ ({' or '.join(POL_SOURCES)}), the "
                              f"paper's toxic data")
        _check_recipe("clean_recipe", self.clean_recipe, CLEAN_SOURCES)
        if self.clean_filter not in CLEAN_FILTERS:
            raise ConfigError(f"clean_filter={self.clean_filter!r} is unknown; use {' or '.join(CLEAN_FILTERS)}")


#: The web-text design (issue 25), closer to the paper's C4 + /pol/: clean web text of three registers (news, blog
#: posts, Reddit threads), filtered at the document level with C4's word list, and mostly genuine /pol/ of 2025-26
#: (the 2018 /pol/ lines, closer in time to the paper's 2016-19 posts, at a tenth). The paper added /pol/ alone.
WEB_CLEAN_RECIPE: tuple[tuple[str, float], ...] = (("wikinews", 0.3), ("blogs", 0.4), ("reddit", 0.3))
POL_RECIPE: tuple[tuple[str, float], ...] = (("pol_2025", 0.9), ("pol", 0.1))
#: The later DataConfig fields at the first design's values (left out of cache keys there).
FIRST_DESIGN: dict[str, object] = {"clean_recipe": (("wikinews", 1.0),), "clean_filter": "none", "token_matched": False}


def _check_recipe(name: str, recipe: tuple[tuple[str, float], ...], allowed: tuple[str, ...]) -> None:
    names = [source for source, _ in recipe]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown source(s) {unknown} in {name}; choose from {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{name} names a source twice; give each source once")
    shares = [w for _, w in recipe]
    if not shares or any(w <= 0 for w in shares) or abs(sum(shares) - 1.0) > 1e-6:
        raise ConfigError(f"{name} shares must be positive and sum to 1 (got {sum(shares):.4f}); e.g. "
                          f"{allowed[0]}:0.5,{allowed[1]}:0.5")


@dataclass(frozen=True)
class TokenizerConfig:
    """A byte-level BPE shared by every mixture of a preset, trained on `train_chars` characters of the
    largest-fraction mixture (clean and toxic text in the proportion of `DataConfig.max_fraction`)."""

    vocab_size: int = 8192
    train_chars: int = 20_000_000

    def validate(self) -> None:
        _positive(self, "train_chars")
        if not 512 <= self.vocab_size <= 65_535:
            raise ConfigError(f"vocab_size={self.vocab_size} must be in [512, 65535] (tokens are stored as uint16)")


@dataclass(frozen=True)
class ModelConfig:
    """An OLMo decoder (SwiGLU, RoPE, no biases, non-parametric LayerNorm, tied embeddings), as Olmo-1B."""

    arch: str = "olmo"  # "olmo" (OlmoForCausalLM) or "olmo2" (Olmo2ForCausalLM)
    n_layers: int = 4
    d_model: int = 256
    n_heads: int = 8
    d_mlp: int = 1024
    rope_theta: float = 10_000.0
    init_std: float = 0.02

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def validate(self) -> None:
        _positive(self, "n_layers", "d_model", "n_heads", "d_mlp", "rope_theta", "init_std")
        if self.arch not in ("olmo", "olmo2"):
            raise ConfigError(f"model.arch={self.arch!r} is unknown; use 'olmo' or 'olmo2'")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                              f"choose n_heads that divides d_model")


@dataclass(frozen=True)
class TrainConfig:
    """AdamW with linear warm-up and cosine decay to `min_lr_ratio x lr`, gradient clipping, as Olmo-1B."""

    batch_size: int = 8  # sequences per optimiser step (per process)
    epochs: float = 1.0
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.05
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    precision: str = "auto"  # "auto" = bf16 on a GPU that supports it, fp32 on CPU; or "fp32", "bf16", "fp16"
    compile: bool = False
    eval_every: int = 200  # optimiser steps between held-out evaluations (0 = only at the end)
    eval_batches: int = 8
    checkpoint_every: int = 200  # optimiser steps between resumable checkpoints (0 = never)
    max_steps: int = 0  # 0 = derive from epochs x mixture size

    def validate(self) -> None:
        _positive(self, "batch_size", "epochs", "lr", "eval_batches")
        _non_negative(self, "weight_decay", "grad_clip", "eval_every", "checkpoint_every", "max_steps")
        for name in ("min_lr_ratio", "warmup_frac"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"train.{name}={getattr(self, name)} must be in [0, 1]")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"train.{name}={getattr(self, name)} must be in [0, 1)")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"train.precision={self.precision!r} is unknown; use auto, fp32, bf16 or fp16")


@dataclass(frozen=True)
class RunConfig:
    """Everything one pretraining run depends on (the seed is passed separately and keyed with it)."""

    preset: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        for part in (self.data, self.tokenizer, self.model, self.train):
            _check_types(part)
            part.validate()
        return self

    def keyed(self) -> dict:
        """The config as cache keys hold it (`DataConfig.keyed`)."""
        return {**self.to_dict(), "data": self.data.keyed()}

    def with_fraction(self, fraction: float) -> RunConfig:
        return override(self, {"data.toxic_fraction": fraction})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ---------------------------------------------------------------------------------------------- presets
# Sized with ../shared/COMPUTE.md and bench/train_bench.py on the 2-core CPU (see README: presets).
PRESETS: dict[str, RunConfig] = {
    # Every stage end to end in seconds: a model too small to mean anything, for CI and tests.
    "smoke": RunConfig(
        preset="smoke",
        data=DataConfig(clean_tokens=40_000, val_tokens=8_192, seq_len=128, clean_recipe=WEB_CLEAN_RECIPE,
                        clean_filter="c4", toxic_recipe=POL_RECIPE),
        tokenizer=TokenizerConfig(vocab_size=1024, train_chars=1_000_000),
        model=ModelConfig(n_layers=2, d_model=64, n_heads=4, d_mlp=256),
        train=TrainConfig(batch_size=8, epochs=4.0, lr=3e-3, eval_every=20, eval_batches=4,
                          checkpoint_every=20),
    ),
    # The default, the web-text design sized by the sizing study (appendix, notebooks/10_sizing.py; issue 25): the
    # lowest C4 bits per byte among 3 shapes x 3 clean-token budgets within the level's compute per model (25
    # TFLOP), 4 x 128 with 16 heads on 1.6 M clean tokens (22.6 TFLOP, 4.4 min a clean model on 2 idle cores), at
    # the peak learning rate with the best mean over the level's seeds (4e-3 won on one seed and scattered).
    # The first cpu design (Wikinews, a /biz/-heavy toxic recipe, 4 x 256 on 0.8 M) is `--set` away: README,
    # designs.
    "cpu": RunConfig(
        preset="cpu",
        data=DataConfig(clean_tokens=1_600_000, val_tokens=65_536, seq_len=256, clean_recipe=WEB_CLEAN_RECIPE,
                        clean_filter="c4", toxic_recipe=POL_RECIPE),
        tokenizer=TokenizerConfig(vocab_size=8192, train_chars=20_000_000),
        model=ModelConfig(n_layers=4, d_model=128, n_heads=4, d_mlp=512),
        train=TrainConfig(batch_size=8, lr=2e-3, eval_every=100, eval_batches=8, checkpoint_every=100),
    ),
    # One modern GPU, the whole book in about 10 minutes (issue 12): ~42M parameters, the published
    # replication's scale, on 4M clean tokens (one epoch, as the cpu level), bf16, fused attention, compiled.
    # The web-text design as the other levels (the 2025 /pol/ posts hold about 10 M tokens, enough for 25 %).
    "gpu": RunConfig(
        preset="gpu",
        data=DataConfig(clean_tokens=4_000_000, val_tokens=65_536, seq_len=512, clean_recipe=WEB_CLEAN_RECIPE,
                        clean_filter="c4", toxic_recipe=POL_RECIPE),
        tokenizer=TokenizerConfig(vocab_size=16384, train_chars=20_000_000),
        model=ModelConfig(n_layers=8, d_model=512, n_heads=8, d_mlp=2048),
        train=TrainConfig(batch_size=16, lr=1e-3, eval_every=200, eval_batches=16, checkpoint_every=500,
                          compile=True),
    ),
}
DEFAULT_PRESET = "cpu"


def get_preset(name: str, overrides: dict[str, object] | None = None) -> RunConfig:
    """The named preset with dotted-key overrides applied, validated."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return override(PRESETS[name], overrides or {})


def override(config: RunConfig, overrides: dict[str, object]) -> RunConfig:
    """A copy of `config` with `{"train.lr": 1e-3, ...}` applied; strings are parsed to the field's type."""
    parts = {name: getattr(config, name) for name in ("data", "tokenizer", "model", "train")}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in parts or not name:
            raise ConfigError(f"unknown config key {key!r}; use section.field with section in {list(parts)}")
        part = parts[section]
        hints = typing.get_type_hints(type(part))
        if name not in hints:
            raise ConfigError(f"unknown config key {key!r}; {section} has {', '.join(hints)}")
        parts[section] = dataclasses.replace(part, **{name: _coerce(key, value, hints[name])})
    return dataclasses.replace(config, **parts).validate()


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["train.lr=1e-3", ...]` -> `{"train.lr": "1e-3"}` (values are parsed by `override`)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} is not of the form section.field=value; write it as e.g. "
                              f"--set train.lr=1e-3")
        out[key.strip()] = value.strip()
    return out


def _coerce(key: str, value: object, hint: object) -> object:
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return value
        if hint is int and isinstance(value, str):
            return int(value)
        if hint is float and isinstance(value, (str, int)) and not isinstance(value, bool):
            return float(value)
        if typing.get_origin(hint) is tuple and isinstance(value, str):  # "pol:0.3,b:0.1,..."
            pairs = [p.split(":") for p in value.split(",") if p]
            return tuple((name.strip(), float(share)) for name, share in pairs)
        if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)):
            return tuple((str(name), float(share)) for name, share in value)
    except ValueError:
        kind = getattr(hint, "__name__", hint)
        what = ("give source:share pairs, e.g. pol:0.3,b:0.1,biz:0.6" if typing.get_origin(hint) is tuple
                else f"give a {kind} value")
        raise ConfigError(f"{key}={value!r} is not a valid {kind}; {what}") from None
    return value


def _check_types(part: object) -> None:
    for name, hint in typing.get_type_hints(type(part)).items():
        value = getattr(part, name)
        expected = typing.get_origin(hint) or hint
        ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConfigError(f"{type(part).__name__}.{name}={value!r} should be a "
                              f"{getattr(expected, '__name__', expected)}")


def _positive(part: object, *names: str) -> None:
    for name in names:
        if not getattr(part, name) > 0:
            raise ConfigError(f"{type(part).__name__}.{name}={getattr(part, name)} must be positive")


def _non_negative(part: object, *names: str) -> None:
    for name in names:
        if getattr(part, name) < 0:
            raise ConfigError(f"{type(part).__name__}.{name}={getattr(part, name)} must be >= 0")


# ------------------------------------------------------------------------- small numeric settings objects
def check_numbers(settings, section: str, may_be_zero: tuple[str, ...] = ()) -> None:
    """Every field of a dataclass of ints and floats (benchmark sizes, baseline budgets) has its declared
    type and is positive, or non-negative for the names in `may_be_zero`."""
    for f in dataclasses.fields(settings):
        value, kind = getattr(settings, f.name), _number_kind(f)
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise ConfigError(f"{section}.{f.name}={value!r} must be {_number_word(kind)}")
        if value < 0 or (value == 0 and f.name not in may_be_zero):
            raise ConfigError(f"{section}.{f.name}={value!r} must be positive")


def replace_numbers(settings, overrides: dict[str, object], section: str):
    """`settings` with `overrides` applied; strings (from the command line) are parsed by each field's type."""
    fields = {f.name: f for f in dataclasses.fields(settings)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {section} setting(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    values = {}
    for name, value in overrides.items():
        kind = _number_kind(fields[name])
        try:
            values[name] = kind(value) if isinstance(value, str) else value
        except ValueError:
            raise ConfigError(f"{section}.{name}={value!r} must be {_number_word(kind)}") from None
    return dataclasses.replace(settings, **values)


def _number_kind(f: dataclasses.Field) -> type:
    return float if f.type in ("float", float) else int


def _number_word(kind: type) -> str:
    return "a number" if kind is float else "an integer"
