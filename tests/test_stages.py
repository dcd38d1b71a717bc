"""Stages end to end on the fixture data: pretrain is cached, its folder loads with transformers, the
unigram baseline is beaten, and corrupt cache entries are detected and recomputed."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from toxlab.core import artifacts
from toxlab.core.config import get_preset
from toxlab.pipeline import pretraining, probing


@pytest.fixture
def trained(env, tiny):
    return pretraining.pretrain(tiny.with_fraction(0.1), seed=0, progress=False)


def test_pretrain_writes_a_loadable_model_and_metrics(trained, tiny):
    folder = trained.file("model")
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert model.config.num_hidden_layers == tiny.model.n_layers
    assert (folder / "model.safetensors").exists()
    ids = tok("The council opened", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))
    metrics = trained.json("metrics.json")
    assert metrics["val_loss"] < metrics["unigram_val_loss"]
    assert abs(metrics["realised_fraction"] - 0.1) < 0.005
    saved = json.loads(trained.file("config.json").read_text())
    assert saved["data"]["toxic_fraction"] == 0.1 and trained.manifest["seed"] == 0


def test_snapshots_are_kept_and_probed_at_their_step(trained, tiny):
    from toxlab.core.errors import ConfigError
    from toxlab.model.train import snapshot_steps
    config = tiny.with_fraction(0.1)
    steps = pretraining.snapshots(config, 0, progress=False)
    assert steps and steps == list(snapshot_steps(trained.json("metrics.json")["steps"]))
    assert all(f"snapshots/step_{s:06d}/model.safetensors" in trained.manifest["files"] for s in steps)
    early = probing.probe(config, 0, snapshot=steps[0], progress=False)
    final = probing.probe(config, 0, progress=False)
    assert early.key != final.key and early.json("summary.json")["snapshot"] == steps[0]
    assert "snapshot" not in final.json("summary.json")
    with pytest.raises(ConfigError, match="kept weights at steps"):
        probing.probe(config, 0, snapshot=steps[0] + 1, progress=False)


def test_one_forward_pass_stores_both_poolings_as_if_built_alone(trained, tiny, monkeypatch):
    from toxlab.interp import hooks
    config = tiny.with_fraction(0.1)
    last = probing.activations(config, 0, pool="last", progress=False)
    with artifacts.lookup_only():  # the sibling is already stored
        mean = probing.activations(config, 0, pool="mean", progress=False)
    assert mean.manifest["captured_with"] == last.key and "captured_with" not in last.manifest
    stored = mean.file("activations.safetensors").read_bytes()
    artifacts._remove(mean.path)
    rebuilt = probing.activations(config, 0, pool="mean", progress=False)  # on its own: the same bytes
    assert rebuilt.key == mean.key and rebuilt.file("activations.safetensors").read_bytes() == stored
    assert rebuilt.file("activations.safetensors").read_bytes() != last.file("activations.safetensors").read_bytes()
    # a snapshot's capture computes only the pooling asked for
    step = pretraining.snapshots(config, 0, progress=False)[0]
    pools_asked = []
    original = hooks.capture_pools
    monkeypatch.setattr(hooks, "capture_pools", lambda *a, **k: (pools_asked.append(a[4]), original(*a, **k))[1])
    probing.activations(config, 0, pool="last", snapshot=step, progress=False)
    assert pools_asked == [("last",)]
    with artifacts.lookup_only(), pytest.raises(artifacts.CacheMiss):
        probing.activations(config, 0, pool="mean", snapshot=step, progress=False)


def test_second_call_reuses_the_cache(trained, tiny, monkeypatch):
    from toxlab.model import train as training
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("retrained a cached model"))
    again = pretraining.pretrain(tiny.with_fraction(0.1), seed=0, progress=False)
    assert again.path == trained.path


def test_same_seed_gives_identical_weights_in_fresh_caches(env, tiny, tmp_path, monkeypatch):
    first = pretraining.pretrain(tiny, seed=5, progress=False).file("model/model.safetensors").read_bytes()
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "other"))
    second = pretraining.pretrain(tiny, seed=5, progress=False).file("model/model.safetensors").read_bytes()
    assert first == second


def test_corrupt_entry_is_detected_and_recomputed(trained, tiny):
    weights = trained.file("model/model.safetensors")
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated
    with pytest.warns(UserWarning, match="corrupt"):
        again = pretraining.pretrain(tiny.with_fraction(0.1), seed=0, progress=False)
    assert artifacts.load("pretrain", again.key) is not None
    AutoModelForCausalLM.from_pretrained(str(again.file("model")))


def test_unigram_baseline_is_the_frequency_cross_entropy():
    train = np.array([[0, 0, 1, 1]], dtype=np.uint16)
    heldout = np.array([[0, 1, 1]], dtype=np.uint16)  # first token of each block is not predicted
    p1 = 3 / 6  # add-one over a vocabulary of 2: counts 2+1, 2+1
    assert pretraining.unigram_cross_entropy(train, heldout, 2) == pytest.approx(-np.log(p1))


def test_sweep_summarises_every_fraction(env, tiny):
    entry = pretraining.sweep(tiny, seeds=[0], fractions=(0.0, 0.25), progress=False, log=lambda m: None)
    runs = entry.json("summary.json")["runs"]
    assert [r["toxic_fraction"] for r in runs] == [0.0, 0.25]
    assert all(torch.tensor(r["val_loss"]).isfinite() for r in runs)


@pytest.mark.slow
def test_gpu_preset_path_on_cpu_compiled_matches_eager(env):
    """The gpu preset's code path (its recipe, torch.compile) at a tiny size on the CPU: it trains, and the
    compiled run follows the eager run's losses (bf16 autocast is GPU-only: here both are fp32)."""
    from tests.conftest import TINY
    sizes = {k: v for k, v in TINY.items() if not k.startswith("train.")} | {"train.batch_size": 4,
                                                                              "train.epochs": 2.0}
    compiled = pretraining.pretrain(get_preset("gpu", sizes).with_fraction(0.1), 0, progress=False)
    eager = pretraining.pretrain(get_preset("gpu", {**sizes, "train.compile": False}).with_fraction(0.1), 0,
                                 progress=False)
    assert compiled.key != eager.key
    a, b = compiled.json("history.json"), eager.json("history.json")
    assert len(a) == len(b) and np.allclose([h["loss"] for h in a], [h["loss"] for h in b], rtol=1e-4, atol=1e-4)
    assert a[-1]["loss"] < a[0]["loss"] - 0.5  # it learns
