"""A pretraining process killed hard (SIGKILL) mid-run resumes from its last checkpoint and ends with the
same weights as a run that was never interrupted."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import TINY
from toxlab.model.train import CHECKPOINT

LONG = {**TINY, "train.epochs": 40.0, "train.checkpoint_every": 20}
ARGS = [arg for key, value in LONG.items() for arg in ("--set", f"{key}={value}")]
COMMAND = [sys.executable, "-m", "toxlab.cli", "pretrain", "--preset", "smoke", "--toxic-fraction", "0.1",
           "--seed", "4", "--quiet", *ARGS]


def _run(cache, data_dir, **kwargs):
    env = {**os.environ, "TOXLAB_CACHE": str(cache), "TOXLAB_DATA": str(data_dir)}
    return subprocess.Popen(COMMAND, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, data_dir):
    straight = _run(tmp_path / "a", data_dir)
    out, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err[-1000:]
    expected = (tmp_path / "a" / out.strip().splitlines()[-1] / "model.safetensors").read_bytes()

    killed = _run(tmp_path / "b", data_dir)
    deadline = time.time() + 300
    checkpoints = []
    while time.time() < deadline and killed.poll() is None and not checkpoints:
        checkpoints = list((tmp_path / "b").glob(f"pretrain/.work-*/{CHECKPOINT}"))
        time.sleep(0.05)
    assert checkpoints, "no checkpoint appeared before the run ended; lengthen the run"
    time.sleep(0.5)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not list((tmp_path / "b").glob("pretrain/*/manifest.json")), "a killed run left a cache entry"

    resumed = _run(tmp_path / "b", data_dir)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-1000:]
    folder = out.strip().splitlines()[-1]
    assert (tmp_path / "b" / folder / "model.safetensors").read_bytes() == expected
    assert not list((tmp_path / "b").glob("pretrain/.work-*")), "the work folder outlived the finished run"
