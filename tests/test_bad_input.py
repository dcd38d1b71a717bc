"""Bad input, one row per case: the command line exits 2 with one line on stderr, the Python API raises a
typed toxlab error; either way the message is one line that says what to do, and nothing is left behind
(no cache entry, no temporary or work folder, no half-written output).

To add a case, add a row to CASES: CLI arguments or a Python call, the words the message must hold, and
(for Python calls) the error type. `prepare` sets the scene and returns values for `{name}` placeholders.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.fixtures.make_data import make_data_dir
from toxlab.analysis import codesign
from toxlab.book import builder, notebook
from toxlab.cli import main
from toxlab.core.config import get_preset
from toxlab.core.errors import ConfigError, DataError, ToxlabError
from toxlab.data import corpora
from toxlab.pipeline import evaluation, pretraining

TINY_SETS = tuple(arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}"))
PRETRAIN = ("pretrain", "--preset", "smoke", "--toxic-fraction", "0.1")
EVALUATE = ("evaluate", "--preset", "smoke", "--toxic-fraction", "0.1", "--benchmark")
#: A message says what to do: a clause after "; ", a pointer to --help, or a requirement.
HINTS = ("; ", "(see `", " must ", " should ", "give ", "choose ", " set ", "use ")


@dataclass(frozen=True)
class Bad:
    """call: CLI arguments (given to `toxlab.cli.main`) or a function of the prepared context (Python API).
    expect: words the one-line message must hold. error: what a Python call raises (CLI rows exit 2).
    prepare(tmp_path, monkeypatch) sets the scene and returns `{name}` values for the CLI arguments."""

    call: tuple[str, ...] | Callable[[dict], object]
    expect: str
    error: type[ToxlabError] = ConfigError
    prepare: Callable[[Path, pytest.MonkeyPatch], dict] | None = None


# --------------------------------------------------------------------------------------------- scenes
def _no_data_folder(tmp, monkeypatch):
    monkeypatch.setenv("TOXLAB_DATA", str(tmp / "nowhere"))
    return {}


def _fresh_data(tmp, monkeypatch) -> Path:
    root = make_data_dir(tmp / "data")
    monkeypatch.setenv("TOXLAB_DATA", str(root))
    return root


def _altered_data(tmp, monkeypatch):
    root = _fresh_data(tmp, monkeypatch)
    corpora.record_checksums(root, tmp / "sums.json")
    path = root / "clean/c4_snippets.jsonl"
    path.write_text(path.read_text().replace("day", "DAY", 1))  # same size, different content
    return {"sums": tmp / "sums.json"}


def _malformed_source(tmp, monkeypatch):
    root = _fresh_data(tmp, monkeypatch)
    with gzip.open(root / "toxic/4chan_pol_posts_2025.jsonl.gz", "at") as handle:  # a source smoke reads
        handle.write('{"post_id": "1", "thread": "1", "text": "cut off\n')
    return {}


def _empty_source(tmp, monkeypatch):
    root = _fresh_data(tmp, monkeypatch)
    with gzip.open(root / "toxic/4chan_pol_lines.txt.gz", "wt") as handle:
        handle.write("")
    return {}


def _unreadable_source(tmp, monkeypatch):
    root = _fresh_data(tmp, monkeypatch)
    (root / "toxic/4chan_b_lines.txt.gz").chmod(0)
    return {}


def _cache_under_a_file(tmp, monkeypatch):
    (tmp / "blocker").write_text("a file, not a folder")
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp / "blocker" / "cache"))
    return {}


def _input_files(tmp, monkeypatch):
    files = {"empty": "", "bad_jsonl": '{"text": "fine"}\n{"text": \n', "no_text": '{"txt": "a"}\n'}
    for name, content in files.items():
        (tmp / f"{name}.json").write_text(content)
    return {name: tmp / f"{name}.json" for name in files}


def _tiny(ctx):
    return get_preset("smoke", TINY)


def _model_folders(tmp, monkeypatch):
    """--model folders: a tiny GPT-2 (with its tokenizer), an architecture without an adapter, one without a
    config; and the hub unreachable (as offline)."""
    import huggingface_hub.constants
    from transformers import BloomConfig

    from tests.fixtures.tiny_families import tiny_family_model
    from tests.fixtures.tiny_model import tiny_tokenizer
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    import contextlib
    import io
    tok = tiny_tokenizer()
    with contextlib.redirect_stderr(io.StringIO()):  # transformers' progress bar, not the message under test
        tiny_family_model("gpt2", tok).save_pretrained(tmp / "gpt2")
    tok.save_pretrained(tmp / "gpt2")
    BloomConfig().save_pretrained(tmp / "bloom")
    (tmp / "bloom" / "model.safetensors").write_bytes(b"")
    (tmp / "no-config").mkdir()
    return {name: tmp / name for name in ("gpt2", "bloom", "no-config")}


ROOT_READS_ALL = pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")

# ---------------------------------------------------------------------------------------------- cases
CASES = [
    # toxic fraction
    pytest.param(Bad((*PRETRAIN[:-1], "0.7"), "outside [0, 0.5]"), id="fraction-above-range"),
    pytest.param(Bad((*PRETRAIN[:-1], "-0.05"), "outside [0, 0.5]"), id="fraction-negative"),
    pytest.param(Bad((*PRETRAIN[:-1], "nan"), "outside [0, 0.5]"), id="fraction-nan"),
    pytest.param(Bad((*PRETRAIN[:-1], "ten"), "must be a number"), id="fraction-not-a-number"),
    pytest.param(Bad((*PRETRAIN[:-1], "0.3"), "exceeds this preset's max_fraction"), id="fraction-above-preset"),
    pytest.param(Bad(lambda ctx: get_preset("smoke", {"data.toxic_fraction": 1.5}), "outside [0, 0.5]"),
                 id="api-fraction-above-range"),
    pytest.param(Bad(("sweep", "--preset", "smoke", "--fractions", "0,0.7"), "outside [0, 0.5]"),
                 id="sweep-fraction-above-range"),
    # presets, levels, chapters
    pytest.param(Bad(("pretrain", "--preset", "galaxy", "--toxic-fraction", "0.1"), "unknown preset"),
                 id="unknown-preset"),
    pytest.param(Bad(lambda ctx: get_preset("galaxy"), "unknown preset"), id="api-unknown-preset"),
    pytest.param(Bad(("book", "--level", "huge"), "unknown level"), id="book-unknown-level"),
    pytest.param(Bad(("book", "--level", "smoke", "--only", "99", "--out", "{tmp}/book"), "no chapter '99'"),
                 id="book-unknown-chapter"),
    pytest.param(Bad(("book", "--level", "smoke", "--only", "abc", "--out", "{tmp}/book"), "no chapter 'abc'"),
                 id="book-chapter-not-a-number"),
    pytest.param(Bad(("readme", "--level", "huge"), "unknown level"), id="readme-unknown-level"),
    pytest.param(Bad(lambda ctx: builder.chapter_params("huge", builder.chapter_sources()[0]), "unknown level"),
                 id="papermill-unknown-level"),
    pytest.param(Bad(lambda ctx: notebook.setup("huge"), "unknown preset"), id="papermill-setup-unknown-level"),
    # --set and papermill overrides
    pytest.param(Bad((*PRETRAIN, "--set", "train.lr=fast"), "not a valid float"), id="set-not-numeric"),
    pytest.param(Bad((*PRETRAIN, "--set", "train.batch_size=2.5"), "not a valid int"), id="set-float-for-int"),
    pytest.param(Bad((*PRETRAIN, "--set", "train.compile=maybe"), "not a valid bool"), id="set-not-a-bool"),
    pytest.param(Bad((*PRETRAIN, "--set", "train.speed=3"), "unknown config key"), id="set-unknown-field"),
    pytest.param(Bad((*PRETRAIN, "--set", "optimizer.lr=3"), "unknown config key"), id="set-unknown-section"),
    pytest.param(Bad((*PRETRAIN, "--set", "train.lr"), "not of the form"), id="set-without-value"),
    pytest.param(Bad((*PRETRAIN, "--set", "data.toxic_recipe=pol"), "source:share"), id="set-malformed-recipe"),
    pytest.param(Bad((*PRETRAIN, "--set", "data.toxic_recipe=biz:1.0"), "must include"),
                 id="set-recipe-without-4chan"),
    pytest.param(Bad((*PRETRAIN, "--set", "model.n_heads=3"), "not divisible"), id="set-heads-not-dividing"),
    pytest.param(Bad((*PRETRAIN, "--set", "train.precision=fp8"), "unknown"), id="set-unknown-precision"),
    pytest.param(Bad(lambda ctx: notebook.setup("smoke", {"data.toxic_fraction": "ten"}), "not a valid float"),
                 id="papermill-non-numeric"),
    pytest.param(Bad(lambda ctx: notebook.setup("smoke", {"train.speed": 3}), "unknown config key"),
                 id="papermill-unknown-field"),
    pytest.param(Bad(lambda ctx: get_preset("smoke", {"train.batch_size": True}), "should be a int"),
                 id="api-bool-for-int"),
    pytest.param(Bad(lambda ctx: get_preset("smoke", {"train.lr": None}), "should be a float"), id="api-none"),
    # seeds
    pytest.param(Bad((*PRETRAIN, "--seed", "1.5"), "invalid int value"), id="seed-float"),
    pytest.param(Bad((*PRETRAIN, "--seed", "-1", *TINY_SETS), "non-negative integer"), id="seed-negative"),
    pytest.param(Bad(("sweep", "--preset", "smoke", "--seeds", "a,b"), "seeds must be integers"),
                 id="seeds-malformed"),
    pytest.param(Bad(("sweep", "--preset", "smoke", "--seeds", ","), "give at least one seed"), id="seeds-empty"),
    pytest.param(Bad(("sweep", "--preset", "smoke", "--seeds", "0,-2", *TINY_SETS), "non-negative integer"),
                 id="seeds-negative-after-a-good-one"),  # nothing may train before the bad seed is seen
    pytest.param(Bad(lambda ctx: pretraining.pretrain(_tiny(ctx), seed="0"), "non-negative integer"),
                 id="api-seed-string"),
    pytest.param(Bad(lambda ctx: pretraining.sweep(_tiny(ctx), seeds=[0, 1.5]), "non-negative integer"),
                 id="api-seed-float-in-sweep"),
    # other commands
    pytest.param(Bad(("probe", *PRETRAIN[1:], "--pool", "max"), "must be 'last' or 'mean'"), id="probe-bad-pool"),
    pytest.param(Bad(("toy", "--seeds", "0"), "give at least 1"), id="toy-zero-seeds"),
    pytest.param(Bad(("toy", "--shares", "0.5"), "must be in (0, 1/3]"), id="toy-share-out-of-range"),
    pytest.param(Bad(("toy", "--set", "d_model=abc"), "not a valid int"), id="toy-set-not-numeric"),
    pytest.param(Bad(("bake",), "invalid choice"), id="unknown-command"),
    # intervention and benchmarks: rejected before any model is trained or loaded
    pytest.param(Bad((*EVALUATE, "mmlu"), "unknown benchmark"), id="evaluate-unknown-benchmark"),
    pytest.param(Bad((*EVALUATE, "ce", "--alpha", "strong"), "alpha must be a number"),
                 id="evaluate-alpha-not-a-number"),
    pytest.param(Bad((*EVALUATE, "ce", "--k", "99"), "between 1 and the model's 8 heads"), id="evaluate-k-too-large"),
    pytest.param(Bad((*EVALUATE, "ce", "--k", "0"), "between 1 and"), id="evaluate-k-zero"),
    pytest.param(Bad((*EVALUATE, "ce", "--direction", "up"), "choose one of"), id="evaluate-unknown-direction"),
    pytest.param(Bad((*EVALUATE, "rtp", "--eval-set", "samples=3"), "unknown eval setting"),
                 id="evaluate-unknown-eval-setting"),
    pytest.param(Bad((*EVALUATE, "rtp", "--eval-set", "rtp_samples=many"), "must be an integer"),
                 id="evaluate-eval-setting-not-numeric"),
    pytest.param(Bad((*EVALUATE, "rtp", "--eval-set", "rtp_samples=0"), "must be positive"),
                 id="evaluate-eval-setting-zero"),
    pytest.param(Bad((*EVALUATE, "ce", "--alpha", "inf"), "alpha must be a finite number"), id="evaluate-alpha-inf"),
    pytest.param(Bad((*EVALUATE, "ce", "--alpha", "nan"), "alpha must be a finite number"), id="evaluate-alpha-nan"),
    pytest.param(Bad((*EVALUATE, "ce", "--alpha", "5000"), "between -1000 and 1000"), id="evaluate-alpha-too-large"),
    pytest.param(Bad((*EVALUATE, "ce", "--cost-target", "0"), "finite positive number"),
                 id="evaluate-cost-target-zero"),
    pytest.param(Bad((*EVALUATE, "ce", "--cost-target", "inf"), "finite positive number"),
                 id="evaluate-cost-target-inf"),
    pytest.param(Bad((*EVALUATE, "ce", "--cost-target", "cheap"), "finite positive number"),
                 id="evaluate-cost-target-not-a-number"),
    pytest.param(Bad((*EVALUATE, "ce", "--strength", "extreme"), "choose one of weak, mid, strong"),
                 id="evaluate-unknown-strength"),
    pytest.param(Bad((*EVALUATE, "ce", "--strength", "weak", "--alpha", "4"), "not allowed with"),
                 id="evaluate-strength-and-alpha"),
    pytest.param(Bad((*EVALUATE, "ce", "--ranking", "luck"), "choose one of cv_auc"), id="evaluate-unknown-ranking"),
    pytest.param(Bad((*EVALUATE, "toxigen", "--positions", "middle"), "choose one of reference, all"),
                 id="evaluate-unknown-positions"),
    pytest.param(Bad((*EVALUATE, "ce", "--direction", "leace", "--strength", "weak"), "use --alpha 1"),
                 id="evaluate-leace-with-strength"),
    pytest.param(Bad(("baseline", "--preset", "smoke", "--toxic-fraction", "0.1", "--method", "sft", "--alpha", "inf"),
                     "alpha must be a finite number"), id="baseline-alpha-inf"),
    pytest.param(Bad(lambda ctx: evaluation.evaluate(_tiny(ctx), 0, "ce", alpha=float("inf")),
                     "must be a number, finite"),
                 id="api-evaluate-alpha-inf"),
    pytest.param(Bad(lambda ctx: evaluation.evaluate(_tiny(ctx), 0, "toxigen", positions="middle"), "choose one of"),
                 id="api-evaluate-unknown-positions"),
    pytest.param(Bad(lambda ctx: evaluation.evaluate(_tiny(ctx), 0, "ce", ranking="luck"), "choose one of"),
                 id="api-evaluate-unknown-ranking"),
    pytest.param(Bad(lambda ctx: evaluation.calibration(_tiny(ctx), 0, targets={"weak": -0.1}), "finite positive"),
                 id="api-calibration-negative-target"),
    pytest.param(Bad(lambda ctx: evaluation.calibration(_tiny(ctx), 0, targets={}), "give at least one"),
                 id="api-calibration-no-target"),
    pytest.param(Bad(lambda ctx: evaluation.calibration(_tiny(ctx), 0, direction="up"), "choose one of"),
                 id="api-calibration-unknown-direction"),
    pytest.param(Bad(lambda ctx: codesign.Plan(strengths={"weak": float("nan")}), "finite positive"),
                 id="papermill-cost-target-nan"),
    pytest.param(Bad(lambda ctx: codesign.Plan(alphas=[0, float("inf")]), "must be a number, finite"),
                 id="papermill-alpha-inf"),
    pytest.param(Bad(lambda ctx: codesign.Plan(directions=["up"]), "choose one of"), id="papermill-unknown-direction"),
    pytest.param(Bad(lambda ctx: codesign.Plan(sweep_strength="max"), "choose one of"),
                 id="papermill-unknown-sweep-strength"),
    pytest.param(Bad(lambda ctx: codesign.Plan(budget_share=float("inf")), "finite number in (0, 1]"),
                 id="papermill-budget-share-inf"),
    pytest.param(Bad(lambda ctx: codesign.Plan(budget_share=0), "finite number in (0, 1]"),
                 id="papermill-budget-share-zero"),
    pytest.param(Bad(lambda ctx: codesign.Plan(budget_share=1.5), "finite number in (0, 1]"),
                 id="papermill-budget-share-above-one"),
    pytest.param(Bad(lambda ctx: codesign.Plan(budget_share="half"), "finite number in (0, 1]"),
                 id="papermill-budget-share-string"),
    pytest.param(Bad(lambda ctx: evaluation.evaluate(_tiny(ctx), 0, "ce", alpha="strong"), "must be a number"),
                 id="api-evaluate-alpha-string"),
    pytest.param(Bad(lambda ctx: evaluation.evaluate(_tiny(ctx), 0, "ce", instruction="Be nice."), "use it with"),
                 id="api-evaluate-instruction-for-ce"),
    # --model: any causal LM
    pytest.param(Bad(("probe", "--preset", "smoke", "--model", "{tmp}/nowhere"), "is not a folder"),
                 id="model-folder-missing"),
    pytest.param(Bad(("probe", "--model", "nobody/no-such-model"), "neither a folder here nor a hub model",
                     prepare=_model_folders), id="model-hub-unreachable"),
    pytest.param(Bad(("probe", "--model", "{bloom}"), "has no toxlab adapter", prepare=_model_folders),
                 id="model-unknown-architecture"),
    pytest.param(Bad(("probe", "--model", "{no-config}"), "has no config.json", prepare=_model_folders),
                 id="model-without-config"),
    pytest.param(Bad(("probe", "--preset", "smoke", "--model", "{tmp}", "--toxic-fraction", "0.1"), "not both"),
                 id="model-and-fraction"),
    pytest.param(Bad(("probe", "--preset", "smoke"), "give --toxic-fraction"), id="probe-without-a-model"),
    pytest.param(Bad(("evaluate", "--preset", "smoke", "--model", "{gpt2}", "--benchmark", "ce", "--k", "9"),
                     "between 1 and the model's 8 heads", prepare=_model_folders), id="model-k-beyond-its-heads"),
    pytest.param(Bad(("evaluate", "--preset", "huge", "--model", "{gpt2}", "--benchmark", "ce"), "unknown level",
                     prepare=_model_folders), id="model-unknown-level"),
    # data folder
    pytest.param(Bad(PRETRAIN, "is not a folder", prepare=_no_data_folder), id="data-folder-missing"),
    pytest.param(Bad(("data", "verify"), "is not a folder", prepare=_no_data_folder), id="verify-folder-missing"),
    pytest.param(Bad(lambda ctx: notebook.setup("smoke"), "is not a folder", DataError, _no_data_folder),
                 id="papermill-data-folder-missing"),
    pytest.param(Bad(("data", "verify", "--checksums", "{sums}"), "1 checksum mismatch", prepare=_altered_data),
                 id="data-checksum-mismatch"),
    pytest.param(Bad((*PRETRAIN, *TINY_SETS), "is not valid JSON", prepare=_malformed_source),
                 id="data-malformed-json-line"),
    pytest.param(Bad((*PRETRAIN, *TINY_SETS), "is empty", prepare=_empty_source), id="data-empty-source"),
    pytest.param(Bad((*PRETRAIN, *TINY_SETS), "not readable", prepare=_unreadable_source),
                 id="data-unreadable-file", marks=ROOT_READS_ALL),
    # cache root
    pytest.param(Bad(PRETRAIN, "not writable", prepare=_cache_under_a_file), id="cache-root-under-a-file"),
    # JSON input
    pytest.param(Bad(("judge", "score", "--input", "{bad_jsonl}"), "line 2 is not valid JSON",
                     prepare=_input_files), id="judge-malformed-json-lines"),
    pytest.param(Bad(("judge", "score", "--input", "{no_text}"), "no string `text` field", prepare=_input_files),
                 id="judge-json-lines-without-text"),
    pytest.param(Bad(("data", "verify", "--checksums", "{empty}"), "cannot read the checksums file",
                     prepare=_input_files), id="verify-empty-checksums-file"),
]


# --------------------------------------------------------------------------------------------- runner
def _outputs(*roots: Path) -> set[str]:
    """Every file under `roots`, and every temporary, work or lock folder (empty stage folders do not count)."""
    found = set()
    for root in roots:
        if root.is_dir():
            found |= {str(p) for p in root.rglob("*")
                      if p.is_file() or p.name.startswith((".tmp-", ".work-", ".lock-"))}
    return found


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Bad, env, tmp_path, monkeypatch, capsys):
    context = {"tmp": tmp_path, **(case.prepare(tmp_path, monkeypatch) if case.prepare else {})}
    cache = Path(os.environ["TOXLAB_CACHE"])
    before = _outputs(tmp_path, cache)
    if callable(case.call):
        with pytest.raises(case.error) as raised:
            case.call(context)
        message = str(raised.value)
    else:
        code, message = _cli([str(arg).format(**context) for arg in case.call], capsys)
        assert code == 2, message
        assert "Traceback" not in message
    assert case.expect in message
    assert len(message.splitlines()) == 1, message
    assert any(hint in message for hint in HINTS), f"the message does not say what to do: {message}"
    assert _outputs(tmp_path, cache) == before, "bad input left output behind"


def test_the_matrix_is_large_and_has_unique_names():
    names = [case.id for case in CASES]
    assert len(names) >= 20 and len(set(names)) == len(names)
    assert {type(c.values[0].call) for c in CASES} == {tuple, type(lambda: None)}
    assert all(issubclass(c.values[0].error, ToxlabError) for c in CASES)
