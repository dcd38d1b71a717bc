"""The command line: each bad input exits 2 with one line that says what to do and leaves no cache entry;
a good call prints its result path last."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY
from toxlab.cli import main

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]


def _entries(cache: Path) -> list[Path]:
    if not cache.exists():
        return []
    return [p for p in cache.rglob("*") if p.name == "manifest.json" or p.name.startswith((".tmp-", ".work-"))]


def _bad(argv, capsys, cache: Path, expect: str) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and expect in err, err
    assert "Traceback" not in err
    assert _entries(cache) == []


@pytest.mark.parametrize("argv, expect", [
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "0.6"], "outside [0, 0.5]"),
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "-0.05"], "outside [0, 0.5]"),
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "ten"], "must be a number"),
    (["pretrain", "--preset", "galaxy", "--toxic-fraction", "0.1"], "unknown preset"),
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1", "--seed", "1.5"], "invalid int value"),
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1", "--seed", "abc"], "invalid int value"),
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1", "--set", "train.lr"], "not of the form"),
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1", "--set", "train.speed=3"], "unknown config key"),
    (["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1", "--set", "train.lr=fast"], "not a valid"),
    (["sweep", "--preset", "smoke", "--seeds", "a,b"], "seeds must be integers"),
    (["sweep", "--preset", "smoke", "--fractions", "0,0.7"], "outside [0, 0.5]"),
    (["pretrain", "--toxic-fraction", "0.1", "--preset"], "expected one argument"),
    (["bake"], "invalid choice"),
])
def test_bad_arguments(argv, expect, env, capsys):
    _bad(argv, capsys, env, expect)


def test_missing_data_folder(env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TOXLAB_DATA", str(tmp_path / "absent"))
    _bad(["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1"], capsys, env, "is not a folder")


def test_no_data_folder_at_all(env, capsys, monkeypatch, tmp_path):
    from toxlab.data import corpora
    monkeypatch.delenv("TOXLAB_DATA")
    monkeypatch.setattr(corpora, "PROJECT_ROOT", tmp_path / "project")
    _bad(["data", "info", "--preset", "smoke"], capsys, env, "no data folder found")


def test_incomplete_data_folder(env, capsys, monkeypatch, tmp_path):
    (tmp_path / "partial/clean").mkdir(parents=True)
    monkeypatch.setenv("TOXLAB_DATA", str(tmp_path / "partial"))
    _bad(["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1"], capsys, env, "is incomplete: missing")


def test_empty_corpus(env, capsys, monkeypatch, tmp_path):
    from tests.fixtures.make_data import make_data_dir
    root = make_data_dir(tmp_path / "data")
    with gzip.open(root / "toxic/4chan_pol_lines.txt.gz", "wt") as handle:
        handle.write("")
    monkeypatch.setenv("TOXLAB_DATA", str(root))
    _bad(["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1", *TINY_SETS], capsys, env, "is empty")


def test_unwritable_cache_root(env, capsys, monkeypatch, tmp_path):
    (tmp_path / "blocker").write_text("a file, not a folder")
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "blocker" / "cache"))
    _bad(["pretrain", "--preset", "smoke", "--toxic-fraction", "0.1"], capsys, tmp_path / "blocker", "not writable")


def test_data_info_lists_every_source(env, capsys):
    assert main(["data", "info", "--preset", "smoke", *TINY_SETS]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("pol ") for line in out)
    assert Path(out[-1]).name == "sources.json" and Path(out[-1]).exists()


def test_pretrain_prints_the_model_folder_last(env, data_dir):
    """The real entry point, in a subprocess: exit 0, and the last line is a loadable folder."""
    environment = {**os.environ, "TOXLAB_DATA": str(data_dir), "TOXLAB_CACHE": str(env)}
    result = subprocess.run([sys.executable, "-m", "toxlab.cli", "pretrain", "--preset", "smoke",
                             "--toxic-fraction", "0.05", "--seed", "1", "--quiet", *TINY_SETS],
                            capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()


def test_bench_dispatches_to_the_scripts_and_rejects_unknown_names(capsys):
    from toxlab.book.builder import PROJECT_ROOT
    from toxlab.cli import BENCHES
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    for name in BENCHES:  # every advertised benchmark has its script
        assert (PROJECT_ROOT / "bench" / f"{name}_bench.py").exists()
    assert main(["bench", "book", "--help"]) == 0


def test_device_parity_script_runs_on_the_cpu_path():
    """bench/device_parity.py compares two devices; here the CPU with itself (the GPU run is the real check)."""
    from toxlab.book.builder import PROJECT_ROOT
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "device_parity.py"), "--devices", "cpu",
                           "cpu"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["ok"] and line["max_logit_diff"] == 0.0 and line["probe_accuracy_max"] > 0.7
