"""Separability measures: entanglement is 1 for parallel and 0 for orthogonal directions, group directions
recover planted group offsets, the analysis ranks a planted head first, the paired bootstrap sees a planted
difference and not a null one, and `toxlab probe` runs end to end on the fixture data."""

import numpy as np
import pytest
import torch

from toxlab.analysis import statistics
from toxlab.interp import separability


def test_entanglement_extremes():
    toxic = torch.tensor([[1.0, 0.0, 0.0]])  # [G=1, D]
    assert float(separability.entanglement(toxic, torch.tensor([[[2.0, 0.0, 0.0]]]))[0]) == pytest.approx(1.0)
    assert float(separability.entanglement(toxic, torch.tensor([[[0.0, 1.0, 0.0]], [[0.0, 0.0, -3.0]]]))[0]) == 0.0
    assert float(separability.entanglement(toxic, torch.tensor([[[-1.0, 1.0, 0.0]]]))[0]) == pytest.approx(2 ** -0.5)


def test_random_reference_shrinks_with_dimension():
    assert separability.random_entanglement(4, 13, draws=4000) > separability.random_entanglement(64, 13, draws=4000)


def test_scaled_top_k():
    assert separability.scaled_top_k(256) == 30 and separability.scaled_top_k(512) == 30
    assert separability.scaled_top_k(32) == 4 and separability.scaled_top_k(4) == 1


def _planted(n=1500, layers=2, heads=3, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=g) < 0.4).long()
    groups = [["a", "b", "c"][i % 3] for i in range(n)]
    x = torch.randn(n, layers, heads, dim, generator=g)
    x[:, 1, 0, 0] += 2.5 * labels  # toxicity along axis 0 of layer 1, head 0
    offsets = torch.tensor([0.0 if grp == "a" else 3.0 for grp in groups])
    x[:, 1, 0, 1] += offsets  # group "a" versus the others along axis 1: orthogonal to toxicity
    return x, labels, groups


def test_group_directions_recover_planted_offsets():
    x, labels, groups = _planted()
    names, directions = separability.group_directions(x, labels, groups)
    assert names == ["a", "b", "c"]
    a = directions[0, 1, 0]
    assert float(a[1]) < -2.0 and abs(float(a[0])) < 0.3


def test_analyse_ranks_the_planted_head_and_measures_low_entanglement(tmp_path):
    x, labels, groups = _planted()
    resid = x.reshape(len(x), 2, -1)
    summary = separability.analyse(x, resid, labels, groups, split_seed=0, l2=1.0, top_k=30, out=tmp_path)
    assert summary["top_heads"][0] == [1, 0]
    assert summary["heads"]["val_auc"]["max"] > 0.9
    planted_ent = summary["entanglement"]["per_head"][1][0]
    assert planted_ent < 0.3  # toxicity (axis 0) is orthogonal to the planted group axis
    assert np.load(tmp_path / "val_scores.npy").shape == (2, 3, summary["n_val"])
    from toxlab.interp.probe import CV_FOLDS
    assert summary["cv_folds"] == CV_FOLDS  # the chapters quote the folds behind the cv AUC from the result


def test_paired_bootstrap_detects_a_planted_difference_only():
    rng = np.random.default_rng(0)
    labels = (rng.random(600) < 0.4).astype(int)
    weak = rng.normal(size=(2, 2, 600)) + 0.2 * labels
    strong = rng.normal(size=(2, 2, 600)) + 1.0 * labels
    boot = statistics.bootstrap_models([(weak, labels), (strong, labels)], "auc", "mean", n_boot=300)
    low, _ = statistics.interval(boot[:, 1] - boot[:, 0])
    assert low > 0.1
    same = statistics.bootstrap_models([(weak, labels), (weak.copy(), labels)], "auc", "mean", n_boot=300)
    assert np.allclose(same[:, 0], same[:, 1])


def test_head_metric_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(1)
    labels = (rng.random(200) < 0.3).astype(int)
    scores = rng.normal(size=(3, 200)) + labels
    expected = [roc_auc_score(labels, s) for s in scores]
    np.testing.assert_allclose(statistics.head_metric(scores, labels, "auc"), expected)


def test_probe_cli_end_to_end(env, capsys):
    from tests.conftest import TINY
    from toxlab.cli import main
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    assert main(["probe", "--preset", "smoke", "--toxic-fraction", "0.1", "--seed", "0", "--quiet", *sets]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].endswith("summary.json")
    assert '"head_auc_mean"' in lines[-2]
