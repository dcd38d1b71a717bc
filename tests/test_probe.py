"""Probes: a planted direction is found in the right head, shuffled labels give chance, accuracy equals
scikit-learn's on the same split, and the object saves, loads and ranks heads."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from toxlab.interp.probe import Probes, fit_probes, logistic_newton, roc_auc, with_intercept

N, L, H, D = 1200, 3, 4, 16


def _data(seed=0, strength=3.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, L, H, D, generator=g)
    y = (torch.rand(N, generator=g) < 0.35).long()
    direction = torch.randn(D, generator=g)
    direction /= direction.norm()
    x[:, 1, 2] += strength * y[:, None] * direction  # planted in layer 1, head 2
    return x, y, direction


def _split(x, y):
    return x[:900], y[:900], x[900:], y[900:]


def test_planted_direction_is_ranked_first_and_recovered():
    x, y, direction = _data()
    probes = fit_probes(*_split(x, y))
    assert probes.top_sites(1) == [(1, 2)]
    for found in (probes.weight[1, 2], probes.mass_mean[1, 2]):
        assert torch.nn.functional.cosine_similarity(found, direction, dim=0) > 0.9
    assert probes.val_auc[1, 2] > 0.9 and probes.val_accuracy[1, 2] > probes.majority_baseline + 0.1


def test_shuffled_labels_give_chance():
    x, y, _ = _data()
    shuffled = y[torch.randperm(N, generator=torch.Generator().manual_seed(1))]
    probes = fit_probes(*_split(x, shuffled))
    assert abs(float(probes.val_auc.mean()) - 0.5) < 0.05
    assert float(probes.val_balanced_accuracy.max()) < 0.62


def test_accuracy_equals_scikit_learn_per_head():
    x, y, _ = _data(seed=3, strength=0.3)
    xt, yt, xv, yv = _split(x, y)
    probes = fit_probes(xt, yt, xv, yv, l2=1.0)
    for layer in range(L):
        for head in range(H):
            reference = LogisticRegression(C=1.0, max_iter=2000, tol=1e-8).fit(xt[:, layer, head].numpy(), yt.numpy())
            assert abs(reference.score(xv[:, layer, head].numpy(), yv.numpy())
                       - float(probes.val_accuracy[layer, head])) <= 0.01
            np.testing.assert_allclose(reference.coef_[0], probes.weight[layer, head].numpy(), atol=2e-3)


def test_sigma_is_the_spread_along_the_unit_mass_mean_direction():
    x, y, _ = _data()
    probes = fit_probes(*_split(x, y))
    unit = probes.mass_mean[1, 2] / probes.mass_mean[1, 2].norm()
    assert float(probes.sigma[1, 2]) == pytest.approx(float((x[:900, 1, 2] @ unit).std()), rel=1e-4)


def test_roc_auc_matches_definition():
    scores = torch.tensor([[0.1, 0.4, 0.35, 0.8]])
    labels = torch.tensor([0, 0, 1, 1])
    assert float(roc_auc(scores, labels)[0]) == pytest.approx(0.75)


def test_save_load_and_device_move(tmp_path):
    x, y, _ = _data()
    probes = fit_probes(*_split(x, y))
    probes.save(tmp_path)
    again = Probes.load(tmp_path).to("cpu")
    assert torch.equal(again.val_accuracy, probes.val_accuracy) and again.majority_baseline == probes.majority_baseline
    with pytest.raises(ValueError):
        probes.top_sites(L * H + 1)


def test_residual_layer_probes_have_layer_shape():
    x, y, _ = _data()
    resid = x.reshape(N, L, H * D)  # [N, L, d_model]
    probes = fit_probes(*_split(resid, y))
    assert probes.site_shape == (L,) and probes.top_sites(1) == [(1,)]


@pytest.mark.parametrize("strength, l2", [(0.3, 1.0), (3.0, 1.0), (8.0, 1e-3)])
def test_newton_stops_at_a_stationary_point(strength, l2):
    """Weak, strong and nearly separable signals: the returned weights satisfy the stopping rule (gradient
    of the mean objective below gtol) and the returned logits are the logits of those weights."""
    x, y, _ = _data(seed=5, strength=strength)
    xa = with_intercept(x.reshape(N, -1, D))
    w, logits = logistic_newton(xa, y, l2=l2, gtol=1e-4)
    xd, wd = xa.double(), w
    z = torch.bmm(xd, wd.unsqueeze(-1)).squeeze(-1)
    penalty = torch.full((D + 1,), l2, dtype=torch.float64)
    penalty[-1] = 0.0
    grad = torch.bmm((torch.sigmoid(z) - y.double()).unsqueeze(1), xd).squeeze(1) + penalty * wd
    assert float(grad.abs().max()) / N <= 1.5e-4  # float32 passes inside the solver
    torch.testing.assert_close(logits.double(), z, atol=1e-3, rtol=1e-4)


def test_ill_conditioned_inputs_do_not_break_the_solver():
    """Huge, nearly collinear activations (an early training snapshot's residual stream) can make the float32
    Hessian lose positive definiteness; the solver refactors those problems in float64, and a well-conditioned
    problem in the same batch gets the probe it gets alone (to the stopping tolerance: a batch iterates
    until all of its problems have converged)."""
    from toxlab.interp.probe import fit_probes
    g = torch.Generator().manual_seed(0)
    n, d = 400, 64
    x = torch.randn(n, 1, generator=g) * 1e5 + 1e-2 * torch.randn(n, d, generator=g)  # one huge shared signal
    y = (torch.rand(n, generator=g) < 0.5).long()
    x[:, 0] += 5.0 * y
    good = torch.randn(n, d, generator=g)
    good[:, 0] += 2.0 * y
    both = fit_probes(torch.stack([x, good], 1)[:300], y[:300], torch.stack([x, good], 1)[300:], y[300:])
    alone = fit_probes(good[:300, None], y[:300], good[300:, None], y[300:])
    assert torch.isfinite(both.weight).all()
    assert torch.allclose(both.weight[1], alone.weight[0], atol=1e-2)  # same optimum, to the stopping tolerance


def _one_problem(seed=3, n=300, d=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(n, generator=g, dtype=torch.float64) > 0).long()
    return x, y


def test_integer_sample_weights_equal_duplicated_rows():
    """A weight of k counts a row k times: the weighted fit is the fit on the data with rows duplicated."""
    x, y = _one_problem()
    k = torch.ones(len(y), dtype=torch.float64)
    k[:60], k[60:90] = 3.0, 2.0
    repeat = k.long()
    weighted, _ = logistic_newton(with_intercept(x.unsqueeze(1)), y, 0.5, weights=k, gtol=1e-10)
    duplicated, _ = logistic_newton(with_intercept(x.repeat_interleave(repeat, 0).unsqueeze(1)),
                                    y.repeat_interleave(repeat), 0.5, gtol=1e-10)
    torch.testing.assert_close(weighted, duplicated, atol=1e-8, rtol=1e-8)


def test_unit_weights_change_nothing_and_weights_are_checked():
    x, y = _one_problem()
    xa = with_intercept(x.unsqueeze(1))
    plain, plain_logits = logistic_newton(xa, y, 1.0)
    unit, unit_logits = logistic_newton(xa, y, 1.0, weights=torch.ones(len(y)))
    torch.testing.assert_close(unit, plain, atol=0, rtol=0)
    torch.testing.assert_close(unit_logits, plain_logits, atol=0, rtol=0)
    for bad in (torch.ones(5), -torch.ones(len(y)), torch.zeros(len(y)), torch.full((len(y),), float("nan"))):
        with pytest.raises(ValueError, match="weights"):
            logistic_newton(xa, y, 1.0, weights=bad)
    with pytest.raises(ValueError, match="init"):
        logistic_newton(xa, y, 1.0, init=torch.zeros(2, 8))


def test_warm_start_reaches_the_same_optimum_in_fewer_steps():
    """Started from the optimum at a neighbouring l2, Newton converges to the optimum it reaches from zero."""
    x, y = _one_problem()
    xa = with_intercept(x.unsqueeze(1))
    weights = torch.linspace(0.5, 2.0, len(y), dtype=torch.float64)
    near, _ = logistic_newton(xa, y, 3.0, weights=weights, gtol=1e-10)
    cold_stats, warm_stats, same_stats = {}, {}, {}
    cold, cold_logits = logistic_newton(xa, y, 1.0, weights=weights, gtol=1e-10, stats=cold_stats)
    warm, warm_logits = logistic_newton(xa, y, 1.0, weights=weights, gtol=1e-10, init=near, stats=warm_stats)
    torch.testing.assert_close(warm, cold, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(warm_logits, cold_logits, atol=1e-8, rtol=1e-8)
    assert 1 <= warm_stats["iterations"] <= cold_stats["iterations"]
    same, _ = logistic_newton(xa, y, 1.0, weights=weights, gtol=1e-10, init=cold, stats=same_stats)
    assert same_stats["iterations"] == 0 and torch.equal(same, cold)  # already optimal: no step

