"""The book's instruments on any Hugging Face causal LM (`--model DIR`): per-head probes (paper Section 4), ITI
and LEACE fitted on them, and the toxicity and capability benchmarks (Section 5), for a model toxlab did not
train.

A model is named by a `save_pretrained` folder (weights, config and its own tokenizer) or, for users with
internet, a hub name such as `EleutherAI/pythia-160m` (fetched once into the Hugging Face cache;
`resolve_model`). Its architecture must have a row in `toxlab.model.adapters`. Every result is cached like the
book's stages, keyed by the content of the model's files, never by its path or name: `ExternalModel.identity`
holds the SHA-256 of each weight file and of each config and tokenizer file, so the same weights under
another name reuse the results, and changed weights in the same folder recompute them.

The stages mirror the book's (`toxlab.pipeline.probing`, `.evaluation`) with the model in place of (preset, toxic
fraction, seed), and call the same computations (`hooks.capture`, `separability.analyse`, `intervene.fit_iti`,
`erasure.fit_leace`, `evaluate.capability`, the benchmarks of `evaluation.evaluate`). The level (`smoke`, `cpu`,
`gpu`) sets the sample sizes, the judge, and the held-out text the capability cost is measured on: the level's
held-out Wikinews and C4 text tokenized with the model's own tokenizer, in `seq_len`-token blocks (`heldout_sets`,
which gives the book's own held-out blocks for a model the book trained). Text is fed without special tokens, as
for the book's models.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toxlab.core import artifacts
from toxlab.core.artifacts import Entry
from toxlab.core.errors import ConfigError
from toxlab.data import corpora
from toxlab.pipeline import common, evaluation, probing
from toxlab.pipeline.versions import (
    MODEL_ACTIVATIONS_VERSION,
    MODEL_CALIBRATION_VERSION,
    MODEL_EVALUATE_VERSION,
    MODEL_PROBE_VERSION,
)

#: Files of a model folder that hold weights; every other file of these suffixes (config, generation config,
#: tokenizer) is keyed too, since it changes what the model computes or how text is tokenized.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
KEYED_SUFFIXES = WEIGHT_SUFFIXES + (".json", ".txt", ".model", ".tiktoken")
#: What a hub download fetches: weights (safetensors, else PyTorch's), config and tokenizer files.
HUB_PATTERNS = ("*.json", "*.txt", "*.model", "*.tiktoken")


@dataclass(frozen=True)
class ExternalModel:
    """A causal LM given by the user. name: as given (a folder or a hub name); folder: where its files are;
    weights, files: {file name: SHA-256} of the weight files and of the config and tokenizer files."""

    name: str
    folder: Path
    weights: dict[str, str]
    files: dict[str, str]

    @property
    def identity(self) -> dict:
        """What results are keyed by: the content of its files, not its name or folder."""
        return {"weights_sha256": self.weights, "files_sha256": self.files}

    @property
    def heads(self) -> tuple[int, int]:
        """(layers, attention heads per layer), from its config."""
        from toxlab.model import adapters
        config = self.config()
        return int(config.num_hidden_layers), int(getattr(config, adapters.adapter_for(config).heads))

    @property
    def model_type(self) -> str:
        return self.config().model_type

    @property
    def family(self) -> str:
        """The architecture family of its adapter row (`toxlab.model.adapters`)."""
        from toxlab.model import adapters
        return adapters.adapter_for(self.config()).family

    def config(self):
        from transformers import AutoConfig
        return AutoConfig.from_pretrained(str(self.folder))

    def load(self):
        """The model on toxlab's device (the GPU when present), in eval mode."""
        from transformers import AutoModelForCausalLM

        from toxlab.model.decoder import pick_device
        return AutoModelForCausalLM.from_pretrained(str(self.folder)).to(pick_device()).eval()

    def tokenizer(self):
        """Its own tokenizer; one without a padding token pads with its end-of-text token (GPT-2, Pythia)."""
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(self.folder))
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise ConfigError(f"the tokenizer of {self.name} has neither a padding nor an end-of-text token; "
                                  "set one (tokenizer.pad_token = ...) and save it with the model")
            tok.pad_token = tok.eos_token
        return tok


def _sha256s(folder: Path, suffixes: tuple[str, ...], exclude: tuple[str, ...] = ()) -> dict[str, str]:
    return {p.name: artifacts.file_sha256(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in suffixes and p.suffix not in exclude}


@functools.lru_cache(maxsize=8)
def _fingerprint(folder: Path, mtimes: tuple) -> tuple[dict[str, str], dict[str, str]]:
    """(weights, other files) SHA-256s, hashed once per process while the files are unchanged (`mtimes`)."""
    return _sha256s(folder, WEIGHT_SUFFIXES), _sha256s(folder, KEYED_SUFFIXES, exclude=WEIGHT_SUFFIXES)


def resolve_model(name: str | Path) -> ExternalModel:
    """The model named by a `save_pretrained` folder or a hub name (fetched into the Hugging Face cache, which
    needs internet the first time), with its files' SHA-256; its architecture checked against
    `toxlab.model.adapters` before any weight is read."""
    from toxlab.model import adapters
    text = str(name)
    folder = Path(text).expanduser()
    if not folder.is_dir():
        if folder.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1:  # else a hub name
            raise ConfigError(f"--model {text!r} is not a folder; give a folder written by save_pretrained (with "
                              "config.json and the weights) or a hub name such as EleutherAI/pythia-160m")
        folder = _from_hub(text)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"--model {text!r} has no config.json; give a folder written by save_pretrained")
    mtimes = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.iterdir()) if p.is_file())
    weights, files = _fingerprint(folder.resolve(), mtimes)
    if not weights:
        raise ConfigError(f"--model {text!r} holds no weights ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}); "
                          "give a folder written by save_pretrained")
    model = ExternalModel(text, folder.resolve(), weights, files)
    adapters.adapter_for(model.config())  # an unknown architecture fails here, in one line
    return model


def _from_hub(repo_id: str) -> Path:
    """A local snapshot of a hub model (safetensors weights, else PyTorch's), fetched once."""
    try:
        from huggingface_hub import snapshot_download
        folder = Path(snapshot_download(repo_id, allow_patterns=[*HUB_PATTERNS, "*.safetensors"]))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(repo_id, allow_patterns=[*HUB_PATTERNS, "*.bin"]))
    except Exception as err:  # no internet, no such repository, a gated one: all say the same to the user
        raise ConfigError(f"--model {repo_id!r} is neither a folder here nor a hub model that could be fetched "
                          f"({type(err).__name__}); give a save_pretrained folder, or connect to the internet "
                          "(and log in for a gated model)") from None
    return folder


def check_level(level: str) -> str:
    from toxlab.evaluation.evaluate import EVAL_PRESETS
    if level not in EVAL_PRESETS:
        raise ConfigError(f"unknown level {level!r}; choose one of {', '.join(EVAL_PRESETS)}")
    return level


# ------------------------------------------------------------------------------------------------ probes
def activations(model: ExternalModel, pool: str = "last", keep_ambiguous: bool = False,
                progress: bool = True) -> Entry:
    """Per-head outputs before the attention output projection [N, L, H, Dh] and the residual stream
    [N, L, d_model] of `model` on the ToxiGen probe statements, pooled at the last token (the paper) or over
    tokens (`probing.activations` for any model)."""
    from toxlab.interp.hooks import POOLS
    if pool not in POOLS:
        raise ConfigError(f"pool={pool!r} must be 'last' or 'mean'")
    root = corpora.data_root()
    stage_config = {"model": model.identity, "pool": pool, "keep_ambiguous": keep_ambiguous,
                    "files": common.data_fingerprint(root, ("toxigen_annotated",))}

    def build(out: Path, work: Path) -> dict:
        import torch
        from tqdm import tqdm

        from toxlab.interp import hooks
        probe_set = corpora.toxigen_probe_set(keep_ambiguous=keep_ambiguous, root=root)
        loaded = model.load()
        bar = (lambda it: tqdm(it, desc="capture", unit="batch", mininterval=2.0)) if progress else None
        acts = hooks.capture(loaded, model.tokenizer(), probe_set.texts, ("head_out", "resid_post"), pool,
                             progress=bar)
        probing._save_activations(out, {**acts, "labels": torch.from_numpy(probe_set.labels),
                                       "groups": probe_set.groups})
        return {"model": model.name, "shape": list(acts["head_out"].shape)}

    return artifacts.cached("model_activations", MODEL_ACTIVATIONS_VERSION, stage_config, build)


def probe(model: ExternalModel, pool: str = "last", l2: float = 1.0, split_seed: int = 0,
          keep_ambiguous: bool = False, top_k: int = 30, progress: bool = True) -> Entry:
    """Head and residual-stream probes of `model` (`probing.probe` for any model): `summary.json` holds the
    separability measures, `head_probes/` and `resid_probes/` the probes."""
    from toxlab.interp import separability
    act_entry = activations(model, pool, keep_ambiguous, progress)
    stage_config = {"l2": l2, "top_k": top_k, **probing._probe_data_config(keep_ambiguous, split_seed)}

    def build(out: Path, work: Path) -> None:
        from safetensors.torch import load_file
        tensors = load_file(act_entry.file("activations.safetensors"))
        summary = separability.analyse(tensors["head_out"].float(), tensors["resid_post"].float(),
                                       tensors["labels"], act_entry.json("groups.json"), split_seed, l2, top_k, out)
        summary.update({"model": model.name, "model_type": model.model_type, "pool": pool, **model.identity})
        artifacts.write_json(out / "summary.json", summary)

    return artifacts.cached("model_probe", MODEL_PROBE_VERSION, stage_config, build,
                            upstream={"activations": act_entry.key})


def probe_training_set(model: ExternalModel, pool: str = "last", split_seed: int = 0):
    """The head activations [N_train, L, H, Dh] and labels [N_train] the probes of `model` were trained on."""
    from safetensors.torch import load_file

    from toxlab.interp import separability
    act_entry = activations(model, pool, progress=False)
    tensors = load_file(act_entry.file("activations.safetensors"))
    labels = tensors["labels"]
    train_idx, _ = separability.probe_split(labels, act_entry.json("groups.json"), split_seed)  # the probes' split
    return tensors["head_out"][train_idx].float(), labels[train_idx]


def _head_probes(model: ExternalModel, pool: str, progress: bool):
    from toxlab.interp.probe import Probes
    return Probes.load(probe(model, pool, progress=progress).file("head_probes"))


def head_sites(model: ExternalModel) -> int:
    """How many heads `model` has in all (layers x heads per layer)."""
    n_layers, n_heads = model.heads
    return n_layers * n_heads


def heads_to_shift(probes, k: int | None = None) -> int:
    """k (checked against the model's heads), or by default the paper's 30 of 256 heads scaled to this model
    (`separability.scaled_top_k`)."""
    from toxlab.interp.intervene import check_k
    from toxlab.interp.separability import scaled_top_k
    n_sites = int(np.prod(probes.site_shape))
    return scaled_top_k(n_sites) if k is None else check_k(k, n_sites)


# ------------------------------------------------------------------------------------------------ fitters
def fitted_iti(model: ExternalModel, k: int | None = None, alpha: float = 0.0, direction: str = "mass_mean",
               pool: str = "last", progress: bool = True, ranking: str = "cv_auc", seed: int = 0):
    """The ITI of `model` (`probing.fitted_iti`): its top-k heads by `ranking`, k defaulting to the paper's
    share of heads; `seed` draws the random direction of the control."""
    from toxlab.interp.intervene import fit_iti
    probes = _head_probes(model, pool, progress)
    train_heads, train_labels = probe_training_set(model, pool)
    return fit_iti(probes, train_heads, train_labels, heads_to_shift(probes, k), alpha, direction, seed, ranking)


def fitted_erasure(model: ExternalModel, k: int | None = None, alpha: float = 1.0, pool: str = "last",
                   progress: bool = True):
    """LEACE erasers (toxlab.interp.erasure) for the heads `fitted_iti` would shift (`probing.fitted_erasure`)."""
    from toxlab.interp.erasure import fit_leace
    probes = _head_probes(model, pool, progress)
    train_heads, train_labels = probe_training_set(model, pool)
    return fit_leace(probes, train_heads, train_labels, heads_to_shift(probes, k), alpha)


# ------------------------------------------------------------------------------------------- held-out text
def sequence_length(model: ExternalModel, data_config) -> int:
    """The level's block length (`data_config.seq_len`), or the model's context if that is shorter."""
    limit = getattr(model.config(), "max_position_embeddings", None) or 10 ** 9
    return min(data_config.seq_len, int(limit))


def heldout_sets(tokenizer, data_config, seq_len: int, root: Path | None = None) -> dict[str, np.ndarray]:
    """The level's held-out clean sets tokenized with `tokenizer`, as token blocks [n, seq_len] (int64): the
    held-out clean text ('clean') and C4 ('c4'), taken exactly as `corpora.build_mixture` takes them (so a model
    the book trained gets the book's own blocks)."""
    root = corpora.check_layout(corpora.heldout_files(data_config), root)
    clean, c4 = corpora.heldout_streams(data_config, tokenizer, root)
    return {"clean": corpora.to_blocks(clean, seq_len), "c4": corpora.to_blocks(c4, seq_len)}


def capability_sets(tokenizer, data_config, seq_len: int, root: Path | None = None) -> dict[str, np.ndarray]:
    """`heldout_sets` and the WebText excerpts ('webtext'), as the book's capability evaluations take them."""
    webtext = corpora.reference_stream(data_config, tokenizer, root)
    return {**heldout_sets(tokenizer, data_config, seq_len, root), "webtext": corpora.to_blocks(webtext, seq_len)}


def _heldout_inputs(model: ExternalModel, data_config, root: Path) -> dict:
    """What the held-out blocks depend on besides the model's tokenizer (keyed with the model; the clean recipe
    and filter only where they are not the first design's, so its keys stay)."""
    inputs = {"seq_len": sequence_length(model, data_config), "val_tokens": data_config.val_tokens,
              "min_clean_chars": data_config.min_clean_chars,
              "files": common.data_fingerprint(root, corpora.heldout_files(data_config))}
    if not data_config.is_first_design():
        inputs.update(clean_recipe=data_config.clean_recipe, clean_filter=data_config.clean_filter,
                      lines_per_doc=data_config.lines_per_doc)
    return inputs


def _heldout_config(level: str, data_config):
    from toxlab.core.config import get_preset
    return data_config if data_config is not None else get_preset(level).data


# -------------------------------------------------------------------------------------------- calibration
def calibration(model: ExternalModel, level: str = "cpu", k: int | None = None, direction: str = "mass_mean",
                ranking: str = "cv_auc", targets: dict[str, float] | None = None, progress: bool = True,
                data_config=None) -> Entry:
    """The strengths of `model` (`evaluation.calibration`): per named target (default `evaluate.COST_TARGETS`,
    nats of KL(base || ITI) per token), the alpha at which its ITI reaches it on held-out clean blocks that
    the capability cost does not use (the level's, or those of `data_config`, a `config.DataConfig`).
    `calibration.json` as the stage's."""
    from toxlab.evaluation import evaluate as ev
    check_level(level)
    targets = evaluation.calibration_targets(targets, direction, ranking)
    eval_config = ev.eval_preset(level)
    data_config = _heldout_config(level, data_config)
    n_blocks = evaluation.CALIBRATION_BLOCKS.get(level, evaluation.CALIBRATION_BLOCKS["cpu"])
    iti = fitted_iti(model, k, 0.0, direction, progress=progress, ranking=ranking)
    root = corpora.data_root()
    stage_config = {"model": model.identity, "k": iti.k, "direction": direction, "ranking": ranking,
                    "targets": targets, "measure": "kl", "blocks": n_blocks, "skip": eval_config.ce_blocks,
                    **_heldout_inputs(model, data_config, root)}

    def build(out: Path, work: Path) -> None:
        val = heldout_sets(model.tokenizer(), data_config, stage_config["seq_len"], root)["clean"]
        blocks = val[eval_config.ce_blocks:eval_config.ce_blocks + n_blocks]
        if len(blocks) == 0:  # a tiny held-out set: calibrate on its last blocks
            blocks = val[-n_blocks:]
        artifacts.write_json(out / "calibration.json", ev.calibrate(model.load(), blocks, iti, targets,
                                                                  max(1, eval_config.batch_size // 4)))

    return artifacts.cached("model_calibration", MODEL_CALIBRATION_VERSION, stage_config, build,
                            upstream={"probe": probe(model, progress=progress).key})


def calibrated_alphas(model: ExternalModel, level: str = "cpu", k: int | None = None, direction: str = "mass_mean",
                      ranking: str = "cv_auc", targets: dict[str, float] | None = None,
                      progress: bool = True, data_config=None) -> dict[str, float]:
    """{strength name: alpha} of `calibration` (weak, mid and strong for this model by default)."""
    rows = calibration(model, level, k, direction, ranking, targets, progress,
                       data_config).json("calibration.json")["strengths"]
    return {name: row["alpha"] for name, row in rows.items()}


# ------------------------------------------------------------------------------------------------ benchmarks
def evaluate(model: ExternalModel, benchmark: str, alpha: float = 0.0, k: int | None = None,
             direction: str = "mass_mean", level: str = "cpu", eval_config=None, judge=None, seed: int = 0,
             progress: bool = True, ranking: str = "cv_auc", positions: str = "reference",
             data_config=None) -> Entry:
    """One benchmark of `model` under ITI(alpha, k, direction), or LEACE (direction 'leace'), with the level's
    sample sizes (or `eval_config`), judge and held-out text (or that of `data_config`, a `config.DataConfig`)
    (`evaluation.evaluate` for any model; `seed` seeds the sampling).
    `result.json` holds the metrics and what produced them, `samples.jsonl` the scored generations, `iti/`
    the fitted intervention (`ITI.load` or `Erasure.load`, then `intervene.applied` on the model)."""
    from toxlab.evaluation import evaluate as ev
    from toxlab.interp.intervene import check_direction, check_positions, check_ranking, check_strength
    from toxlab.pipeline.judging import default_judge
    check_level(level)
    ev.check_benchmark(benchmark)
    common.check_seed(seed)
    check_ranking(ranking)
    check_positions(positions)
    alpha = check_strength(alpha)
    if direction != "leace":
        check_direction(direction)
    eval_config = eval_config or ev.eval_preset(level)
    iti = fitted_erasure(model, k, alpha, progress=progress) if direction == "leace" else \
        fitted_iti(model, k, alpha, direction, progress=progress, ranking=ranking)
    judge = judge if judge is not None or benchmark == "ce" else default_judge(level)
    root = corpora.data_root()
    stage_config = {"model": model.identity, "benchmark": benchmark, "alpha": iti.alpha, "k": iti.k,
                    "direction": direction, "ranking": ranking, "positions": positions if benchmark != "ce" else "all",
                    **evaluation.benchmark_inputs(benchmark, eval_config, judge, root)}
    if benchmark == "ce":
        data_config = _heldout_config(level, data_config)
        stage_config["heldout"] = _heldout_inputs(model, data_config, root)

    def build(out: Path, work: Path) -> None:
        tok = model.tokenizer()
        sets = capability_sets(tok, data_config, stage_config["heldout"]["seq_len"], root) if benchmark == "ce" else {}
        evaluation.write_benchmark(out, model.load(), tok, benchmark, eval_config, seed, iti, judge, root,
                                   {"model": model.name, "model_type": model.model_type, **model.identity,
                                    "level": level, "alpha": iti.alpha, "k": iti.k, "direction": direction,
                                    "ranking": ranking, "positions": stage_config["positions"],
                                    "shift_ratio": getattr(iti, "shift_ratio", None)},
                                   heldout={name: blocks[:eval_config.ce_blocks] for name, blocks in sets.items()},
                                   positions=positions)
        iti.save(out / "iti")

    return artifacts.cached("model_evaluate", MODEL_EVALUATE_VERSION, stage_config, build,
                            upstream={"probe": probe(model, progress=progress).key}, seed=int(seed))
