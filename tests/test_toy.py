"""The toy experiment: the chains and shares are as stated, the entanglement measure and Welch bound have
their known values, models in an ensemble are independent, and a trained model learns the common chains."""

import math

import numpy as np
import pytest
import torch

from toxlab.analysis import statistics
from toxlab.core.errors import ConfigError
from toxlab.interp import toy


def test_chains_are_the_stated_cycles():
    seqs = toy.chain_sequences(8)
    assert seqs.shape == (12, 8)
    for chain, step in enumerate(toy.STEPS):
        for start in range(4):
            row = seqs[toy.feature_id(chain, start)].tolist()
            assert row[0] == start and all((b - a) % 4 == step for a, b in zip(row, row[1:]))
    # every state has three different successors, one per chain: two tokens identify the chain
    for state in range(4):
        assert len({(state + step) % 4 for step in toy.STEPS}) == 3
    assert len({tuple(r) for r in seqs.tolist()}) == 12


def test_sampled_shares_match():
    per_model = toy.sample_features(torch.tensor([0.05, 1 / 3]), 30_000, torch.Generator().manual_seed(0))
    assert per_model.shape == (2, 30_000)
    assert float((per_model[1] // 4 == 0).double().mean()) == pytest.approx(1 / 3, abs=0.01)
    features = toy.sample_features(0.05, 60_000, torch.Generator().manual_seed(0))
    chains = (features // 4).bincount(minlength=3).double() / len(features)
    assert chains[0] == pytest.approx(0.05, abs=0.005)
    assert chains[1] == pytest.approx(0.475, abs=0.01) and chains[2] == pytest.approx(0.475, abs=0.01)
    starts = (features % 4).bincount().double() / len(features)
    assert torch.allclose(starts, torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)
    with pytest.raises(ConfigError):
        toy.chain_probabilities(0.5)


def test_entanglement_parallel_orthogonal_and_welch():
    assert toy.entanglement(np.array([[1.0, 0.0], [2.0, 0.0]])).tolist() == [1.0, 1.0]
    assert toy.entanglement(np.eye(3)).tolist() == [0.0, 0.0, 0.0]
    assert toy.welch_bound(12, 4) == pytest.approx(math.sqrt(8 / 44))
    # a regular simplex (d + 1 unit vectors in d dimensions) meets the Welch bound exactly: |cos| = 1/d
    d = 4
    vertices = np.eye(d + 1) - 1 / (d + 1)
    basis = np.linalg.svd(vertices)[2][:d]  # the simplex lives in a d-dimensional subspace
    frame = vertices @ basis.T
    assert toy.entanglement(frame) == pytest.approx(np.full(d + 1, toy.welch_bound(d + 1, d)))
    assert toy.random_entanglement(12, 4, draws=500) > toy.welch_bound(12, 4)


def test_models_in_an_ensemble_are_independent():
    config = toy.ToyConfig(n_layers=2, steps=1)
    ensemble = toy.ToyEnsemble(config, seeds=[0, 1])
    tokens = toy.chain_sequences(16).expand(2, -1, -1)
    first = ensemble(tokens)[0].detach().clone()
    with torch.no_grad():
        for p in ensemble.parameters():
            p[1].add_(torch.randn_like(p[1]))  # change model 1 only
    assert torch.equal(ensemble(tokens)[0], first)
    # the same seed gives the same model whatever its neighbours
    alone = toy.ToyEnsemble(config, seeds=[1])
    pair = toy.ToyEnsemble(config, seeds=[0, 1])
    assert torch.equal(alone(tokens[:1])[0], pair(tokens)[1])


def test_a_trained_model_learns_the_common_chains():
    config = toy.ToyConfig(steps=1500, lr=1e-2)
    ensemble = toy.ToyEnsemble(config, seeds=[0, 1])
    ensemble.fit([0.1, 0.1], torch.Generator().manual_seed(0))
    losses = ensemble.chain_losses()  # [2, 3]
    assert (losses[:, 1:] < 0.1).all(), losses


def test_directions_are_unit_and_estimators_differ():
    config = toy.ToyConfig(steps=50)
    ensemble = toy.ToyEnsemble(config, seeds=[0])
    resid = ensemble.residuals()[0]
    for estimator in ("probe", "mean"):
        directions = toy.feature_directions(resid, estimator, config.seq_len)
        assert directions.shape == (12, 4)
        np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, atol=1e-6)


def test_overrides_and_validation():
    config = toy.parse_overrides(toy.ToyConfig(), ["d_model=8", "estimator=mean", "lr=0.01"])
    assert (config.d_model, config.estimator, config.lr) == (8, "mean", 0.01)
    for bad in (["d_model=5"], ["estimator=svm"], ["colour=red"], ["steps=many"], ["n_heads=3"]):
        with pytest.raises(ConfigError):
            toy.parse_overrides(toy.ToyConfig(), bad)


def test_a_chapter_names_a_toy_condition_by_its_changes():
    from toxlab.pipeline import probing
    assert probing.toy_condition(40) == toy.ToyConfig(steps=40)
    assert probing.toy_condition(40, {"d_model": 8, "estimator": "mean"}) == toy.ToyConfig(steps=40, d_model=8,
                                                                                           estimator="mean")
    with pytest.raises(ConfigError, match="colour"):
        probing.toy_condition(40, {"colour": "red"})


def test_summary_statistics():
    rows = [{"share": 0.1, "seed": s, "rare_entanglement": 0.9 + 0.01 * s, "control_entanglement": 0.8,
             "rare_chain_loss": 0.1, "control_chain_loss": 0.01} for s in range(5)]
    (summary,) = toy.summarise(rows)
    assert summary["difference"] == pytest.approx(0.12)
    assert summary["difference_ci"][0] > 0 and summary["p_value"] < 0.01


def test_run_condition_and_toy_cli(env, capsys):
    rows = toy.run_condition(toy.ToyConfig(steps=30), [0.05, 0.3], [0, 1])
    assert [(r["share"], r["seed"]) for r in rows] == [(0.05, 0), (0.05, 1), (0.3, 0), (0.3, 1)]
    assert all(0 <= r["probe_rare_entanglement"] <= 1 and 0 <= r["mean_control_entanglement"] <= 1 for r in rows)
    from toxlab.cli import main
    assert main(["toy", "--shares", "0.05,0.3", "--seeds", "2", "--set", "steps=30"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("summary.json")
    assert main(["toy", "--shares", "0.5", "--seeds", "2"]) == 2


def test_share_effect_removes_the_structural_gap():
    rows = []
    for seed in range(6):
        # a structural gap of -0.05 at every share, plus a planted +0.1 at the rare share
        rows.append({"share": 0.01, "seed": seed, "rare_entanglement": 0.85 + 0.1 + 0.001 * seed,
                     "control_entanglement": 0.9})
        rows.append({"share": 0.333, "seed": seed, "rare_entanglement": 0.85, "control_entanglement": 0.9})
    effect = statistics.share_effect(rows, 0.01, 0.333)
    assert effect["effect"] == pytest.approx(0.1025) and effect["ci"][0] > 0 and effect["p_value"] < 0.001
