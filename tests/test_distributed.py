"""The multi-process path on CPU: `torchrun --nproc_per_node 2` pretrains with DDP over gloo, each rank
takes its own shard of every batch, only rank 0 writes the cache entry (complete, and nothing half-written
left beside it), and the two-process model is cached under its own key, apart from the one-process model.
Evaluation shares the generation batches between the processes, and what they gather is what one process
generates and scores."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.conftest import TINY
from toxlab.core.config import get_preset
from toxlab.model.train import total_steps
from toxlab.pipeline import evaluation, mixtures, pretraining

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    """`toxlab ARGS` at the tiny size under torchrun with two CPU processes (gloo)."""
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
               str(_free_port()), "-m", "toxlab.cli", *args, "--preset", "smoke", "--quiet", *sets]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_two_processes_train_with_ddp_and_rank_zero_publishes(env):
    done = _torchrun("pretrain", "--toxic-fraction", "0.1")
    printed = {line for line in done.stdout.splitlines() if line.endswith("/model")}
    assert len(printed) == 1  # both ranks print the one entry rank 0 wrote
    folder = Path(printed.pop()).parent
    metrics = json.loads((folder / "metrics.json").read_text())
    config = get_preset("smoke", TINY).with_fraction(0.1)
    mixture = mixtures.mixture(config)
    n_blocks = len(np.load(mixture.file("train.npy")))
    assert metrics["processes"] == 2 and metrics["steps"] == total_steps(n_blocks, config.train, world_size=2)
    assert metrics["val_loss"] < metrics["unigram_val_loss"]
    AutoModelForCausalLM.from_pretrained(str(folder / "model"))
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith((".tmp-", ".work-", ".rank"))]
    assert leftovers == []
    # one process: same data and seed, but another key (the batches come in another order)
    single = pretraining.pretrain(config, 0, progress=False)
    assert single.path != folder and single.json("metrics.json")["processes"] == 1
    assert single.json("metrics.json")["steps"] == total_steps(n_blocks, config.train)


def test_two_processes_share_an_evaluation_and_gather_what_one_process_makes(env, tmp_path):
    from toxlab.data import corpora
    from toxlab.evaluation.evaluate import eval_preset
    from toxlab.interp.intervene import ITI
    from toxlab.pipeline.judging import default_judge
    eval_config = eval_preset("smoke", {"batch_size": 6})  # 2 prompts x 3 samples a batch: 4 batches, 2 each
    done = _torchrun("evaluate", "--toxic-fraction", "0.1", "--benchmark", "rtp", "--alpha", "4",
                     "--eval-set", "batch_size=6")
    results = {line for line in done.stdout.splitlines() if line.endswith("result.json")}
    assert len(results) == 1  # both ranks print the one entry rank 0 wrote
    entry = Path(results.pop()).parent
    shared = [json.loads(line) for line in (entry / "samples.jsonl").read_text().splitlines()]
    # one process, the same model, ITI, judge and seeds (one thread each, as the two processes had)
    pretrained = env / "pretrain" / json.loads((entry / "manifest.json").read_text())["upstream"]["pretrain"]
    model = AutoModelForCausalLM.from_pretrained(str(pretrained / "model"))
    config = get_preset("smoke", TINY).with_fraction(0.1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        evaluation.generation_benchmark(model, mixtures.load_tokenizer(config), "rtp", eval_config, 0,
                                     ITI.load(entry / "iti"), default_judge("smoke"), "", corpora.data_root(), tmp_path)
    finally:
        torch.set_num_threads(threads)
    alone = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(shared) == len(alone) == 8
    assert [s["continuations"] for s in shared] == [s["continuations"] for s in alone]
    assert np.allclose([s["scores"] for s in shared], [s["scores"] for s in alone], atol=1e-5)
