"""Issue 23, item 5 on planted evidence: intervals over training seeds and prompts, and a capability budget
that is a share of each model's margin over unigram.

- A difference that holds within every seed but changes sign between seeds is not called by the two-level
  (seeds, then prompts) paired bootstrap, although averaging the seeds prompt by prompt and resampling the
  prompts alone would call it; a difference that holds in every seed is called. With one seed the two-level
  bootstrap is the prompt bootstrap, exactly.
- The verdict table reads the headline and the trade-off over seeds and prompts when it has several frontier
  seeds, and says what its interval covers.
- The budget is share x (unigram CE - the model's CE); a bad share is refused with one line.
"""

import numpy as np
import pytest

from toxlab.analysis import codesign, verdicts
from toxlab.core.errors import ConfigError
from toxlab.evaluation import evaluate

SEEDS = [0, 1, 2]
N_PROMPTS = 200


def _arms(signs, size=0.05, noise=0.01, seed=0):
    """Two arms [S, P] on shared prompts: b is the prompts' own difficulty plus sampling noise, a = b plus
    `size` x the seed's sign (plus noise): within each seed the difference is clear."""
    rng = np.random.default_rng(seed)
    prompts = rng.uniform(0.1, 0.4, N_PROMPTS)
    b = prompts + noise * rng.standard_normal((len(signs), N_PROMPTS))
    a = b + size * np.asarray(signs, dtype=float)[:, None] + noise * rng.standard_normal((len(signs), N_PROMPTS))
    return a, b


def test_a_difference_that_flips_between_seeds_is_not_called():
    a, b = _arms([1, -1, 1])
    for s in range(3):  # it holds within every seed, on one side or the other
        within = evaluate.paired_difference(a[s], b[s])
        assert within.above_zero or within.below_zero
    prompts_only = evaluate.paired_difference(a.mean(axis=0), b.mean(axis=0))
    assert prompts_only.above_zero  # the seeds averaged away: the prompt bootstrap alone calls it
    both = evaluate.paired_difference_over_seeds(a, b)
    assert both.low < 0 < both.high and both.seeds == 3 and both.n == N_PROMPTS
    assert both.mean == pytest.approx(prompts_only.mean)


@pytest.mark.parametrize("size", [0.05, -0.05])
def test_a_difference_that_holds_in_every_seed_is_called(size):
    a, b = _arms([1, 1, 1], size=size, seed=1)
    both = evaluate.paired_difference_over_seeds(a, b)
    assert (both.above_zero if size > 0 else both.below_zero)
    assert both.mean == pytest.approx(size, abs=0.005)


def test_one_seed_is_the_prompt_bootstrap():
    a, b = _arms([1])
    one = evaluate.paired_difference_over_seeds(a, b)
    assert one == evaluate.paired_difference(a[0], b[0]) and one.seeds == 1
    assert evaluate.bootstrap_over_seeds(a) == evaluate.bootstrap_interval(a[0])


def test_the_prompt_draw_is_shared_by_the_seeds():
    """Prompts are crossed with seeds: a prompt effect common to every seed must widen the interval as much
    as it would with one seed (drawing prompts afresh within each seed would shrink it by about sqrt(S))."""
    rng = np.random.default_rng(2)
    prompts = rng.normal(0, 1, N_PROMPTS)
    crossed = np.tile(prompts, (4, 1)) + 1e-3 * rng.standard_normal((4, N_PROMPTS))  # [4, P]: seeds agree
    low, high = evaluate.bootstrap_over_seeds(crossed)
    low1, high1 = evaluate.bootstrap_interval(prompts)
    assert (high - low) == pytest.approx(high1 - low1, rel=0.15)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="seeds, prompts"):
        evaluate.paired_difference_over_seeds(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="seeds, prompts"):
        evaluate.bootstrap_over_seeds(np.zeros(3))


def _point(name, method, f, seed, per_prompt, strength, cost=0.1):
    per_prompt = np.asarray(per_prompt)
    tox = 100 * float(per_prompt.mean())
    return {"name": name, "method": method, "toxic_fraction": f, "seed": seed, "order": 0.0, "strength": strength,
            "alpha": 0.0, "toxicity": tox, "toxicity_low": tox - 1, "toxicity_high": tox + 1, "toxic_share": 0.1,
            "floor": 5.0, "ce_clean": 6.0 + cost, "ce_increase": cost, "kl": cost, "judge": "j",
            "per_prompt": per_prompt.tolist(), "budget": 0.5}


def _evidence(signs):
    """Two mixtures, one frontier seed per sign: 10 % + weak ITI minus clean + strong ITI is 0.05 x the
    seed's sign in each seed; the rival baseline sits far above both."""
    weak10, strong0 = _arms(signs)
    iti, others, base, separability = [], [], [], []
    for i, s in enumerate(SEEDS[:len(signs)]):
        for f, arm in ((0.0, strong0[i]), (0.1, weak10[i])):
            untreated = arm + 0.2
            iti += [_point(f"{f:.0%} base", "ITI", f, s, untreated, "base", cost=0.0),
                    _point(f"{f:.0%} + ITI weak", "ITI", f, s, arm if f else arm + 0.1, "weak"),
                    _point(f"{f:.0%} + ITI strong", "ITI", f, s, arm if not f else arm - 0.01, "strong")]
            base.append({"toxic_fraction": f, "seed": s, "toxicity": 100 * untreated.mean(), "floor": 5.0,
                         "following": 3.0, "following_low": 1.0, "following_high": 5.0})
            separability.append({"toxic_fraction": f, "seed": s, "auc": 0.6 + f, "entanglement": 0.5 - f})
        others.append(_point("10 % + dpo", "dpo", 0.1, s, weak10[i] + 0.3, ""))
    runs = [{"toxic_fraction": f, "val_loss": 6.0 + 0.001 * i} for i, f in enumerate((0.0, 0.1, 0.0, 0.1))]
    return {"runs": runs, "base": base, "separability": separability, "iti": iti, "paper": [], "others": others}


HEADLINE = "10 % toxic + weak ITI is less toxic than clean + strong ITI"
TRADE_OFF = "Toxic pretraining + ITI beats the usual detoxification methods on the trade-off"


def test_the_verdicts_read_seeds_and_prompts():
    plan = codesign.Plan(frontier_seeds=SEEDS, strengths={"weak": 0.05, "strong": 0.3}, sweep_strength="strong")
    flips = {v.claim: v for v in codesign.verdict_table(_evidence([-1, 1, -1]), plan)}
    assert flips[HEADLINE].verdict == verdicts.INCONCLUSIVE
    assert "over 3 training seeds and 200 prompts" in flips[HEADLINE].ours
    holds = {v.claim: v for v in codesign.verdict_table(_evidence([-1, -1, -1]), plan)}
    assert holds[HEADLINE].verdict == verdicts.HELD
    assert holds[TRADE_OFF].verdict == verdicts.HELD and "3 training seeds and 100 prompts" in holds[TRADE_OFF].ours
    one = {v.claim: v for v in codesign.verdict_table(_evidence([-1]), plan)}
    assert one[HEADLINE].verdict == verdicts.HELD and "one training seed (prompts only)" in one[HEADLINE].ours


def test_mean_points_give_intervals_over_seeds_and_prompts():
    a, _ = _arms([1, -1, 1], size=0.2)
    rows = codesign.mean_points([_point("x", "ITI", 0.1, s, a[i], "weak") for i, s in enumerate(SEEDS)])
    (row,) = rows
    assert row["seeds"] == 3 and row["seed_ids"] == SEEDS and np.shape(row["per_seed_prompt"]) == (3, N_PROMPTS)
    low, high = evaluate.bootstrap_over_seeds(a)
    assert (row["toxicity_low"], row["toxicity_high"]) == pytest.approx((100 * low, 100 * high))
    assert high - low > 2 * np.ptp(evaluate.bootstrap_interval(a.mean(axis=0)))  # the seeds disagree: wider


def test_the_budget_is_a_share_of_the_margin_over_unigram():
    assert evaluate.capability_budget(7.2, 6.0, 0.4) == pytest.approx(0.48)
    assert evaluate.capability_budget(7.2, 6.0, 1.0) == pytest.approx(1.2)
    assert evaluate.capability_budget(7.0, 7.3, 0.4) == 0.0  # learned nothing beyond token frequencies
    assert codesign.Plan(budget_share=0.25).budget_share == 0.25


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), float("inf"), "half", True])
def test_a_bad_budget_share_is_refused_in_one_line(bad):
    with pytest.raises(ConfigError, match=r"budget_share=.* must be a finite number in \(0, 1\]") as err:
        codesign.Plan(budget_share=bad)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        evaluate.capability_budget(7.2, 6.0, bad)
