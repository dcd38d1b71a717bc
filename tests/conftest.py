"""Shared fixtures: a hand-written data folder, an isolated cache, and a tiny preset."""

from __future__ import annotations

import pytest

from tests.fixtures.make_data import make_data_dir
from tests.fixtures.tiny_model import tiny_tokenizer
from toxlab.core.config import get_preset


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tok():
    """The tiny tokenizer of tests.fixtures.tiny_model (hooks, ITI and dose tests)."""
    return tiny_tokenizer()


@pytest.fixture
def env(data_dir, tmp_path, monkeypatch):
    """TOXLAB_DATA -> the fixture folder, TOXLAB_CACHE -> a fresh folder for this test."""
    monkeypatch.setenv("TOXLAB_DATA", str(data_dir))
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


TINY = {
    "data.clean_tokens": 3000, "data.val_tokens": 256, "data.seq_len": 32,
    "tokenizer.vocab_size": 512, "tokenizer.train_chars": 60_000,
    "model.n_layers": 1, "model.d_model": 32, "model.n_heads": 2, "model.d_mlp": 64,
    "train.batch_size": 4, "train.epochs": 6.0, "train.lr": 1e-2, "train.eval_every": 10,
    "train.eval_batches": 2, "train.checkpoint_every": 10,
}


@pytest.fixture
def tiny():
    """A preset small enough that tokenizer + mixture + training take about a second."""
    return get_preset("smoke", TINY)
