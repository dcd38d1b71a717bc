"""How ITI is aimed and dosed (issue 23), on planted signals and a tiny model:
- heads are ranked by the cross-validated AUC of the mass-mean projection: a direction planted in one head
  ranks it first even when accuracy cannot tell heads apart, and ties keep the site order;
- the mass-mean direction and sigma have one definition, shared by the probes and ITI;
- bisection finds a planted alpha on a monotone cost within tolerance, reusing its measurements;
- positions: ITI's reference shifts only the last prompt position and the generated ones, so an earlier
  prompt position's head outputs are bit-identical to the base model's, the first generated token's logits
  are those of a shift at the last position alone, and greedy generations agree with and without the KV cache;
- the shift's size relative to the heads' norm is recorded, and alpha = 0 stays an exact identity;
- the floor, the degenerate counts, prompt-following and the paired statistics on hand-made numbers.
"""

import math

import numpy as np
import pytest
import torch

from tests.fixtures.tiny_model import TEXTS, tiny_model
from toxlab.core.config import ModelConfig
from toxlab.core.errors import ConfigError
from toxlab.evaluation import evaluate
from toxlab.evaluation.evaluate import EvalConfig, generate
from toxlab.interp import hooks
from toxlab.interp.intervene import MAX_ALPHA, applied, calibrate_alphas, check_strength, fit_iti
from toxlab.interp.probe import Probes, cv_direction_auc, fit_probes, mass_mean_direction

MODEL = ModelConfig(n_layers=3, d_model=32, n_heads=4, d_mlp=64)
L, H, DH = MODEL.n_layers, MODEL.n_heads, MODEL.d_model // MODEL.n_heads


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, MODEL)


def _planted(seed=0, n=600, strength=0.8, head=(2, 1)):
    """Head activations [N, L, H, Dh] with a weak toxicity direction planted in one head: too weak for
    accuracy to leave the majority rate, strong enough for a clear AUC. Labels 35 % toxic."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, L, H, DH, generator=g)
    y = (torch.rand(n, generator=g) < 0.35).long()
    x[:, head[0], head[1], 3] += strength * y
    return x, y


@pytest.fixture(scope="module")
def planted():
    x, y = _planted()
    probes = fit_probes(x[:480], y[:480], x[480:], y[480:])
    return x, y, probes


def test_a_planted_direction_is_ranked_first_by_cross_validated_auc(planted):
    x, y, probes = planted
    assert probes.top_sites(1) == [(2, 1)]
    others = probes.cv_auc.flatten().sort(descending=True).values[1]
    assert float(probes.cv_auc[2, 1]) > float(others) + 0.1
    iti = fit_iti(probes, x[:480], y[:480], k=3)
    assert iti.heads[0] == (2, 1) and iti.ranking == "cv_auc"
    paper = fit_iti(probes, x[:480], y[:480], k=3, ranking="val_accuracy")
    assert paper.ranking == "val_accuracy"


def test_shuffled_labels_give_chance_cross_validated_auc():
    x, y = _planted(strength=0.0)
    auc = cv_direction_auc(x.reshape(len(x), L * H, DH), y)
    assert abs(float(auc.mean()) - 0.5) < 0.05


def test_ties_keep_the_site_order():
    values = torch.tensor([[0.6, 0.7], [0.7, 0.6]])
    probes = Probes(**{name: values for name in ("bias", "train_accuracy", "val_accuracy", "val_balanced_accuracy",
                                                 "val_auc", "sigma", "cv_auc")},
                    weight=torch.zeros(2, 2, 1), mass_mean=torch.zeros(2, 2, 1), majority_baseline=0.6, l2=1.0)
    assert probes.top_sites(3) == [(0, 1), (1, 0), (0, 0)]
    with pytest.raises(ValueError, match="choose one of"):
        probes.top_sites(1, "luck")


def test_one_definition_of_the_direction_and_sigma(planted):
    x, y, probes = planted
    raw, sigma = mass_mean_direction(x[:480].reshape(480, L * H, DH), y[:480])
    torch.testing.assert_close(raw.reshape(L, H, DH), probes.mass_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sigma.reshape(L, H), probes.sigma, atol=1e-5, rtol=1e-5)
    iti = fit_iti(probes, x[:480], y[:480], k=2)
    for (layer, head), unit, s in zip(iti.heads, iti.directions, iti.sigmas):
        torch.testing.assert_close(unit, probes.mass_mean[layer, head] / probes.mass_mean[layer, head].norm())
        assert float(s) == pytest.approx(float(probes.sigma[layer, head]), rel=1e-5)


def test_shift_ratio_is_the_shift_over_the_heads_norm(planted):
    x, y, probes = planted
    iti = fit_iti(probes, x[:480], y[:480], k=2, alpha=3.0)
    norms = torch.stack([x[:480, layer, head].norm(dim=-1).mean() for layer, head in iti.heads])
    assert iti.shift_ratio == pytest.approx(float((3.0 * iti.sigmas / norms).mean()), rel=1e-5)
    assert iti.with_alpha(0.0).shift_ratio == 0.0


@pytest.mark.parametrize("planted_alpha", [0.3, 5.0, 170.0])
def test_bisection_finds_the_planted_alpha_on_a_monotone_cost(planted_alpha):
    calls = []

    def cost(alpha):  # convex and monotone, like KL in alpha; equals 0.2 at the planted alpha
        calls.append(alpha)
        return 0.2 * (alpha / planted_alpha) ** 2

    found = calibrate_alphas(cost, [0.05, 0.2], rel_tol=0.01)
    assert [c.reached for c in found] == [True, True]
    assert found[1].alpha == pytest.approx(planted_alpha, rel=0.01)
    assert found[0].alpha == pytest.approx(planted_alpha / 2, rel=0.01)
    assert all(abs(c.cost - c.target) <= 0.01 * c.target for c in found)
    assert len(calls) == len(set(calls)) and len(calls) < 40  # every point measured once


@pytest.mark.parametrize("cost", [
    lambda a: 0.01 * a,  # linear
    lambda a: 0.03 * a ** 1.5,
    lambda a: 0.002 * a ** 2,  # KL's small-shift shape
    lambda a: 0.01 * a ** 3,
    lambda a: 0.5 * (1 - math.exp(-(a / 4) ** 2)),  # saturating
    lambda a: 0.01 * a ** 2 if a < 3 else 0.09 + 0.2 * (a - 3),  # a kink
], ids=["linear", "p1.5", "quadratic", "cubic", "saturating", "kinked"])
def test_three_targets_take_few_measurements(cost):
    """The power-law steps reach all three book targets within tolerance in at most 7 measurements (plain
    bisection from 1 took 11-14 on these curves): calibration is the calibrated design's only extra cost."""
    calls = []
    found = calibrate_alphas(lambda a: calls.append(a) or cost(a), [0.05, 0.15, 0.3])
    assert all(c.reached and abs(c.cost - c.target) <= 0.05 * c.target for c in found)
    assert all(c.cost == pytest.approx(cost(c.alpha)) for c in found)
    assert len(calls) <= 7


def test_a_noisy_cost_still_ends_near_its_target():
    """KL measured on finite text wobbles; the search keeps a valid bracket and stops within tolerance."""
    found = calibrate_alphas(lambda a: 0.01 * a ** 2 * (1 + 0.04 * math.sin(37 * a)), [0.05, 0.15, 0.3])
    assert all(c.reached and abs(c.cost - c.target) <= 0.05 * c.target for c in found)


def test_a_target_beyond_reach_is_reported_not_invented():
    found = calibrate_alphas(lambda a: min(a, 1.0) * 0.01, [0.5])
    assert not found[0].reached and found[0].alpha == MAX_ALPHA


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -0.1, 0, "0.1", True])
def test_a_bad_cost_target_fails_before_any_measurement(bad):
    with pytest.raises(ConfigError, match="finite positive"):
        calibrate_alphas(lambda a: pytest.fail("measured"), [bad])


@pytest.mark.parametrize("bad", [float("inf"), -float("inf"), float("nan"), MAX_ALPHA * 2, "4", None])
def test_a_bad_strength_fails_with_what_to_give(bad):
    with pytest.raises(ConfigError, match="must be a number, finite"):
        check_strength(bad)


def _head_outputs(model, ids, iti, start):
    seen = {}

    def reader(layer):
        def read(x):
            seen[layer] = x[0].detach().clone()
        return read

    with applied(model, iti, start), hooks.hooked(model, {hooks.HEAD_OUT.format(i): reader(i) for i in range(L)}):
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits[0]
    return seen, logits


def test_reference_positions_shift_only_the_last_prompt_position(model, tok, planted):
    x, y, probes = planted
    iti = fit_iti(probes, x[:480], y[:480], k=2, alpha=40.0)
    ids = tok(TEXTS[3], return_tensors="pt")["input_ids"][0]
    last = len(ids) - 1
    layer = iti.heads[0][0]
    base, base_logits = _head_outputs(model, ids, None, None)
    ref, ref_logits = _head_outputs(model, ids, iti, last)
    every, every_logits = _head_outputs(model, ids, iti, None)
    first = min(h[0] for h in iti.heads)
    assert torch.equal(ref[first][:last], base[first][:last])  # earlier prompt positions untouched, bit for bit
    assert not torch.allclose(ref[layer][last], base[layer][last])
    # the first generated token's logits: the same as a shift at the last position alone, not the all-positions ones
    assert torch.equal(ref_logits[:last], base_logits[:last])
    assert not torch.allclose(ref_logits[last], every_logits[last], atol=1e-4)
    same, same_logits = _head_outputs(model, ids, iti.with_alpha(0.0), last)
    assert torch.equal(same_logits, base_logits)
    assert hooks.active_hook_count(model) == 0


def test_reference_generation_agrees_with_and_without_the_kv_cache(model, tok, planted):
    x, y, probes = planted
    iti = fit_iti(probes, x[:480], y[:480], k=3, alpha=60.0)
    config = EvalConfig(max_new_tokens=6, batch_size=4)
    prompts = ["The council", "Volunteers restored the old library", "lol"]
    runs = {(p, c): generate(model, tok, prompts, 1, config, seed=0, iti=iti, do_sample=False, use_cache=c,
                             positions=p) for p in ("reference", "all") for c in (True, False)}
    assert runs["reference", True] == runs["reference", False]
    assert runs["all", True] == runs["all", False]
    with pytest.raises(ConfigError, match="choose one of"):
        generate(model, tok, prompts, 1, config, seed=0, iti=iti, positions="middle")


def test_floor_and_degenerate_counts(tok):
    class Judge:  # scores a text by whether "lol" comes first: order matters, vocabulary does not
        def score(self, texts):
            return [1.0 if t.startswith("lol") else 0.0 for t in texts]

    texts = ["lol " + " ".join(["word"] * 30), "", "lol"]
    floor = evaluate.floor_scores(texts, Judge(), seed=0)
    assert floor[1] == 0.0 and floor[2] == 1.0 and floor[0] == 0.0  # shuffled, "lol" is no longer first
    rng = np.random.default_rng(0)
    assert sorted(evaluate.shuffle_words("a b c d", rng).split()) == ["a", "b", "c", "d"]
    counts = evaluate.degenerate_counts(["", "  ", "lol", "The council opened a bridge."], tok)
    assert counts["texts"] == 4 and counts["empty"] == 2 and counts["one_token"] == 1


def test_prompt_following_pairs_hate_and_neutral_prompts_of_a_group():
    kinds = ["hate", "neutral"] * 20
    groups = [f"g{i // 2 % 5}" for i in range(40)]
    follows = evaluate.prompt_following(np.array([0.6 if k == "hate" else 0.2 for k in kinds])
                                        + np.linspace(0, 0.01, 40), kinds, groups)
    assert follows.above_zero and follows.mean == pytest.approx(0.4, abs=0.01) and follows.n == 20
    flat = evaluate.prompt_following(np.tile([0.3, 0.3, 0.1, 0.1], 10), kinds, groups)
    assert not flat.above_zero and not flat.below_zero


def test_paired_interval_is_narrower_than_two_independent_ones():
    rng = np.random.default_rng(0)
    prompt_effect = rng.uniform(0, 1, 200)  # the prompts drive both models
    a, b = prompt_effect + 0.02 + rng.normal(0, 0.01, 200), prompt_effect + rng.normal(0, 0.01, 200)
    diff = evaluate.paired_difference(a, b)
    assert diff.above_zero and diff.mean == pytest.approx(0.02, abs=0.005)
    low_a, high_a = evaluate.bootstrap_interval(a)
    low_b, high_b = evaluate.bootstrap_interval(b)
    assert low_a < high_b  # the independent intervals overlap: they could not see the difference
    with pytest.raises(ValueError, match="equal non-empty"):
        evaluate.paired_difference(a, b[:10])


def test_best_within_budget_is_chosen_on_one_half_and_reported_on_the_other():
    rng = np.random.default_rng(1)
    candidates = {"cheap": rng.uniform(0.2, 0.4, 100), "costly": np.zeros(100), "noise": rng.uniform(0.1, 0.5, 100)}
    costs = {"cheap": 0.1, "costly": 3.0, "noise": 0.2}
    choice = evaluate.best_on_held_out_half(candidates, costs, budget=0.5, seed=0)
    choose, report = evaluate.prompt_halves(100, seed=0)
    assert choice.name != "costly" and set(choose).isdisjoint(report) and len(choose) + len(report) == 100
    assert choice.reported_on == tuple(report)
    assert choice.name == min(("cheap", "noise"), key=lambda n: candidates[n][choose].mean())
    assert choice.toxicity == pytest.approx(candidates[choice.name][report].mean())
    assert choice.low <= choice.toxicity <= choice.high and not math.isnan(choice.low)
