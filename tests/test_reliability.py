"""Reliability: a corrupt cache entry is reported and recomputed, never used; two processes asking for the
same result at once get one valid entry; training is bit-identical across fresh caches and processes; the
pipeline never touches the network; nothing is ever loaded from or written as a pickle."""

import ast
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY
from toxlab.core import artifacts
from toxlab.core.config import get_preset
from toxlab.model import train as training
from toxlab.pipeline import mixtures, pretraining, probing

PACKAGE = Path(__file__).resolve().parents[1] / "toxlab"


def _leftovers(root: Path) -> list[str]:
    """Temporary, work and lock files: none may outlive a finished `cached` call."""
    return sorted(p.name for p in root.rglob("*") if p.name.startswith((".tmp-", ".work-", ".lock-")))


# ------------------------------------------------------------------------------------- cache integrity
def _truncate(entry):
    path = entry.file("result.bin")
    path.write_bytes(path.read_bytes()[:100])


def _flip_a_byte(entry):  # same size, different content: only the hash can tell
    path = entry.file("result.bin")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def _delete_file(entry):
    entry.file("result.bin").unlink()


def _delete_manifest(entry):
    entry.file(artifacts.MANIFEST).unlink()


def _garble_manifest(entry):
    entry.file(artifacts.MANIFEST).write_text('{"files": ')


def _forge_manifest_hash(entry):
    manifest = json.loads(entry.file(artifacts.MANIFEST).read_text())
    manifest["files"]["result.bin"]["sha256"] = "0" * 64
    entry.file(artifacts.MANIFEST).write_text(json.dumps(manifest))


PAYLOAD = bytes(range(256)) * 64


@pytest.mark.parametrize("corrupt", [_truncate, _flip_a_byte, _delete_file, _delete_manifest, _garble_manifest,
                                     _forge_manifest_hash])
def test_a_corrupt_entry_is_reported_removed_and_recomputed(tmp_path, corrupt):
    calls = []

    def build(out, work):
        calls.append(1)
        (out / "result.bin").write_bytes(PAYLOAD)

    first = artifacts.cached("demo", 1, {"n": 1}, build, root=tmp_path)
    corrupt(first)
    with pytest.warns(UserWarning, match="is corrupt .*recomputing"):
        again = artifacts.cached("demo", 1, {"n": 1}, build, root=tmp_path)
    assert len(calls) == 2, "the corrupt entry was used instead of being recomputed"
    assert again.key == first.key and again.file("result.bin").read_bytes() == PAYLOAD
    assert artifacts.load("demo", again.key, tmp_path) is not None
    assert _leftovers(tmp_path) == []


def test_a_corrupt_entry_is_never_returned_by_a_lookup(tmp_path):
    def build(out, work):
        (out / "result.bin").write_bytes(PAYLOAD)

    entry = artifacts.cached("demo", 1, {"n": 2}, build, root=tmp_path)
    _flip_a_byte(entry)
    with pytest.warns(UserWarning, match="does not match its recorded hash"):
        with artifacts.lookup_only(), pytest.raises(artifacts.CacheMiss):
            artifacts.cached("demo", 1, {"n": 2}, build, root=tmp_path)


def test_a_truncated_stage_result_is_recomputed_identically(env, tiny):
    """A real stage: the mixture's token blocks, cut short on disk, are rebuilt (same bytes), not loaded."""
    entry = mixtures.mixture(tiny)
    blocks = entry.file("train.npy")
    original = blocks.read_bytes()
    blocks.write_bytes(original[: len(original) // 2])
    with pytest.warns(UserWarning, match="mixture.*is corrupt"):
        rebuilt = mixtures.mixture(tiny)
    assert rebuilt.key == entry.key
    assert rebuilt.file("train.npy").read_bytes() == original
    assert np.load(rebuilt.file("train.npy")).shape[1] == tiny.data.seq_len


# ----------------------------------------------------------------------------------------- concurrency
def _race_worker(root, config, barrier, log, sleep, results):
    """One process asking for a cache entry; its build logs when it runs and checks nobody shares its work
    folder (where a training run keeps its checkpoint)."""
    def build(out, work):
        with open(log, "a") as handle:
            handle.write(f"start {os.getpid()} {time.time()}\n")
        (work / "state").write_text(str(os.getpid()))
        time.sleep(sleep)
        if (work / "state").read_text() != str(os.getpid()):
            raise RuntimeError("another process wrote into this build's work folder")
        (out / "result.bin").write_bytes(PAYLOAD)
        with open(log, "a") as handle:
            handle.write(f"end {os.getpid()} {time.time()}\n")

    barrier.wait(timeout=60)
    entry = artifacts.cached("race", 1, config, build, root=Path(root))
    results.put((entry.key, str(entry.path), entry.file("result.bin").read_bytes() == PAYLOAD))


def _race(tmp_path, configs, sleep=1.0):
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    barrier, results = ctx.Barrier(len(configs)), ctx.Queue()
    log = tmp_path / "builds.log"
    log.touch()
    workers = [ctx.Process(target=_race_worker, args=(str(tmp_path / "cache"), c, barrier, str(log), sleep, results))
               for c in configs]
    for worker in workers:
        worker.start()
    got = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    events = [line.split() for line in log.read_text().splitlines()]
    return got, events


def test_two_processes_building_the_same_entry_get_one_valid_entry(tmp_path):
    got, events = _race(tmp_path, [{"n": 1}, {"n": 1}])
    (key_a, path_a, ok_a), (key_b, path_b, ok_b) = got
    assert key_a == key_b and path_a == path_b and ok_a and ok_b
    assert [e[0] for e in events] == ["start", "end"], "the entry was built twice"
    assert artifacts.load("race", key_a, tmp_path / "cache") is not None
    assert _leftovers(tmp_path / "cache") == []


def test_different_entries_build_in_parallel(tmp_path):
    got, events = _race(tmp_path, [{"n": 1}, {"n": 2}])
    assert got[0][0] != got[1][0] and all(ok for _, _, ok in got)
    starts = [float(e[2]) for e in events if e[0] == "start"]
    ends = [float(e[2]) for e in events if e[0] == "end"]
    assert len(starts) == 2 and max(starts) < min(ends), "builds of different entries waited for each other"


def _hang_worker(root):
    def build(out, work):
        (out / "partial.bin").write_bytes(b"half")
        time.sleep(120)

    artifacts.cached("race", 1, {"n": 3}, build, root=Path(root))


def test_a_killed_builder_blocks_nobody_and_leaves_nothing(tmp_path):
    root = tmp_path / "cache"
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    victim = ctx.Process(target=_hang_worker, args=(str(root),))
    victim.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list(root.glob("race/.tmp-*/partial.bin")):
        time.sleep(0.05)
    assert list(root.glob("race/.lock-*")), "the builder did not take its lock"
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=30)

    def build(out, work):
        (out / "result.bin").write_bytes(PAYLOAD)

    started = time.time()
    entry = artifacts.cached("race", 1, {"n": 3}, build, root=root)
    assert time.time() - started < 10
    assert entry.file("result.bin").read_bytes() == PAYLOAD and not entry.file("partial.bin").exists()
    assert _leftovers(root) == []


# ----------------------------------------------------------------------------------------- determinism
DETERMINISM = {**TINY, "train.max_steps": 60}  # 60 steps, with checkpoints every 10 along the way
PRETRAIN = [sys.executable, "-m", "toxlab.cli", "pretrain", "--preset", "smoke", "--toxic-fraction", "0.1",
            "--seed", "7", "--quiet", *[a for k, v in DETERMINISM.items() for a in ("--set", f"{k}={v}")]]
TIMINGS = ("train_time_s", "tokens_per_s", "first_step_s")


def _entry_of(cache: Path, stage: str) -> Path:
    (manifest,) = cache.glob(f"{stage}/*/manifest.json")
    return manifest.parent


@pytest.mark.slow
def test_pretraining_is_bit_identical_in_fresh_caches_and_processes(tmp_path, data_dir):
    """Two runs from scratch, in two processes with different hash seeds and working folders: the same keys,
    the same tokenizer, mixture, weights, history and metrics (all but the wall-clock timings)."""
    runs = []
    for name, hash_seed in (("a", "1"), ("b", "2")):
        (tmp_path / name).mkdir()
        environment = {**os.environ, "TOXLAB_CACHE": str(tmp_path / name / "cache"), "TOXLAB_DATA": str(data_dir),
                       "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}  # one core each: they run at once
        runs.append(subprocess.Popen(PRETRAIN, cwd=tmp_path / name, env=environment, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    a, b = tmp_path / "a" / "cache", tmp_path / "b" / "cache"
    for stage in ("tokenizer", "mixture", "pretrain"):
        entry_a, entry_b = _entry_of(a, stage), _entry_of(b, stage)
        assert entry_a.name == entry_b.name, f"{stage} keys differ"
        files_a = json.loads((entry_a / artifacts.MANIFEST).read_text())["files"]
        files_b = json.loads((entry_b / artifacts.MANIFEST).read_text())["files"]
        files_a.pop("metrics.json", None), files_b.pop("metrics.json", None)
        assert files_a == files_b, f"{stage} files differ"
    model_a, model_b = _entry_of(a, "pretrain"), _entry_of(b, "pretrain")
    assert (model_a / "model/model.safetensors").read_bytes() == (model_b / "model/model.safetensors").read_bytes()
    metrics_a, metrics_b = (json.loads((m / "metrics.json").read_text()) for m in (model_a, model_b))
    for key in TIMINGS:
        metrics_a.pop(key), metrics_b.pop(key)
    assert metrics_a == metrics_b


# ------------------------------------------------------------------------------------- network safety
@pytest.fixture
def no_network(monkeypatch):
    """Every way to open a network connection raises, and is recorded (in case a caller swallows it)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args)[:200])
        raise OSError("network access is disabled in this test")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    for name in ("create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)  # the code must not need these to stay offline
    return attempts


@pytest.fixture
def few_steps():
    return get_preset("smoke", {**TINY, "train.max_steps": 6})


def test_the_pipeline_runs_without_network(env, few_steps, no_network):
    """Tokenizer, mixture, a few training steps, reloading the model, capturing activations and probing."""
    from transformers import AutoModelForCausalLM

    tiny = few_steps
    entry = pretraining.pretrain(tiny, seed=0, progress=False)
    model = AutoModelForCausalLM.from_pretrained(str(entry.file("model")))
    tok = mixtures.load_tokenizer(tiny)
    assert model(**tok(["a short test"], return_tensors="pt")).logits.shape[-1] >= len(tok)
    summary = probing.probe(tiny, seed=0, progress=False).json("summary.json")
    assert "heads" in summary
    assert no_network == [], f"network access was attempted: {no_network}"


# ---------------------------------------------------------------------------------- no pickles, ever
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            yield (owner.id if isinstance(owner, ast.Name) else None), node.func.attr, node


def _keyword(node: ast.Call, name: str):
    for keyword in node.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else keyword.value
    return None


def test_no_unsafe_load_or_pickle_write_in_the_package():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for owner, attr, node in _calls(ast.parse(path.read_text(), str(path))):
            where = f"{path.name}:{node.lineno}"
            if owner == "torch" and attr == "load" and _keyword(node, "weights_only") is not True:
                problems.append(f"{where} torch.load without weights_only=True")
            if owner == "torch" and attr == "save":
                problems.append(f"{where} torch.save writes a pickle; use safetensors")
            if owner in ("pickle", "joblib", "dill") and attr in ("dump", "dumps"):
                problems.append(f"{where} {owner}.{attr} writes a pickle")
            if attr == "save_pretrained" and _keyword(node, "safe_serialization") not in (None, True):
                problems.append(f"{where} save_pretrained without safetensors")
    assert problems == []


def _is_pickle_or_torch_zip(path: Path) -> bool:
    head = path.read_bytes()[:4]
    return head[:1] == b"\x80" or head == b"PK\x03\x04"


def test_checkpoints_and_models_are_safetensors(env, few_steps, tmp_path):
    """The resumable checkpoint and the saved model are safetensors files (no pickle anywhere)."""
    from safetensors import safe_open

    from toxlab.model.decoder import build_model

    tiny = few_steps
    blocks = np.load(mixtures.mixture(tiny).file("train.npy"))  # [n_blocks, seq_len]
    tok = mixtures.load_tokenizer(tiny)
    model = build_model(tiny.model, len(tok), tiny.data.seq_len, tok.eos_token_id, tok.pad_token_id, seed=0)
    work = tmp_path / "work"
    work.mkdir()
    training.train(model, blocks, blocks[:4], tiny.train, seed=0, work_dir=work, progress=False, stop_after=3)
    checkpoint = work / training.CHECKPOINT
    assert checkpoint.suffix == ".safetensors"
    with safe_open(str(checkpoint), framework="pt") as handle:
        assert any(k.startswith("model.") for k in handle.keys())
        assert json.loads(handle.metadata()["toxlab"])["state"]["step"] == 3
    pretrained = pretraining.pretrain(tiny, seed=0, progress=False)
    files = [p for p in pretrained.path.rglob("*") if p.is_file()] + [checkpoint]
    assert (pretrained.file("model") / "model.safetensors").exists()
    assert not [p.name for p in files if _is_pickle_or_torch_zip(p)]
