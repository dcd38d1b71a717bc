"""The verdict rules on planted evidence, one case per category: a clear rise is 'held', a rise inside the
noise 'inconclusive' (never a verdict from the slope's sign alone), a clear fall 'did not hold', and a failed
precondition (an arm over its budget, the clean model within its floor, the generations not following the
prompts) 'not testable' whatever the numbers say; comparisons use the paired interval; the toy and the
entanglement claims are judged by the same rules; the regime numbers follow the floor and the budget;
codesign's averaging over seeds keeps each treatment separate and pairs prompts; and chapter 7's point is the
frontier row with toxicity x 100."""

import numpy as np
import pytest

from toxlab.analysis import codesign, statistics, verdicts
from toxlab.analysis.benchmarks import frontier_row
from toxlab.analysis.verdicts import HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE, Interval, Precondition

FRACTIONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
OK = Precondition(True, "")


def _points(slope, noise, key, level=1.0):
    """Three seeds per fraction with residuals +noise, -noise, 0: the fitted slope is exactly `slope`."""
    return [{"toxic_fraction": f, "seed": s, key: level + slope * f + noise * r}
            for f in FRACTIONS for s, r in enumerate((1, -1, 0))]


@pytest.mark.parametrize("slope,noise,expected", [(40.0, 0.5, HELD), (2.0, 3.0, INCONCLUSIVE),
                                                  (-2.0, 3.0, INCONCLUSIVE), (-40.0, 0.5, NOT_HELD)])
def test_trend_claims_follow_the_slope_interval_not_its_sign(slope, noise, expected):
    row = verdicts.base_toxicity_claim(_points(slope, noise, "toxicity", level=15.0), [OK])
    assert row.verdict == expected
    auc = verdicts.separability_claim(_points(slope / 100, noise / 100, "auc", level=0.6))
    assert auc.verdict == expected
    # entanglement is claimed to fall: the same evidence mirrored
    ent = verdicts.entanglement_claim(_points(-slope / 100, noise / 100, "entanglement", level=0.6))
    assert ent.verdict == expected


def test_a_failed_precondition_makes_a_claim_not_testable_whatever_the_numbers():
    failed = verdicts.follows_prompts("the clean model", -2.0, 1.0)
    row = verdicts.base_toxicity_claim(_points(40.0, 0.5, "toxicity", level=15.0), [failed])
    assert row.verdict == NOT_TESTABLE and "do not follow the prompts" in row.reason


def test_capability_flat_is_held_a_clear_cost_is_not_and_noise_is_inconclusive():
    flat = [{"toxic_fraction": f, "val_loss": 6.0 - 0.2 * f + 0.001 * (i % 2)} for i, f in enumerate(FRACTIONS)]
    assert verdicts.capability_claim(flat).verdict == HELD
    assert "train longer" in verdicts.capability_claim(flat).reason
    costly = [{"toxic_fraction": f, "val_loss": 6.0 + 4.0 * f + 0.01 * i} for i, f in enumerate(FRACTIONS)]
    assert verdicts.capability_claim(costly).verdict == NOT_HELD
    noisy = [{"toxic_fraction": f, "val_loss": 6.0 + 0.5 * f + 0.3 * (-1) ** i} for i, f in enumerate(FRACTIONS)]
    assert verdicts.capability_claim(noisy).verdict == INCONCLUSIVE


@pytest.mark.parametrize("diff,expected", [(Interval(-10, -12, -8), HELD), (Interval(-1, -3, 1), INCONCLUSIVE),
                                           (Interval(5, 3, 7), NOT_HELD), (Interval(float("nan"), float("nan"),
                                                                                    float("nan")), INCONCLUSIVE)])
def test_comparisons_read_the_paired_interval(diff, expected):
    row = verdicts.headline_claim(10.0, 20.0, diff, [OK, OK])
    assert row.verdict == expected
    trade = verdicts.trade_off_claim("ours", "dpo", 10.0, 20.0, diff, 0.5, [OK])
    assert trade.verdict == expected


@pytest.mark.parametrize("precondition", [verdicts.within_budget("clean + strong ITI", 2.36, 0.5),
                                          verdicts.above_floor("the clean model", 13.0, 12.0),
                                          verdicts.follows_prompts("the 10 % model", -0.5, 0.8)])
def test_headline_is_not_testable_when_any_precondition_fails(precondition):
    assert not precondition.holds
    row = verdicts.headline_claim(10.0, 20.0, Interval(-10, -12, -8), [OK, precondition])
    assert row.verdict == NOT_TESTABLE and row.reason == precondition.why
    assert "+2.36 nats" in verdicts.within_budget("x", 2.36, 0.5).why


def test_preconditions_hold_on_clear_evidence():
    assert verdicts.within_budget("x", 0.4, 0.5).holds and verdicts.above_floor("x", 30.0, 12.0).holds
    assert verdicts.follows_prompts("x", 0.5, 4.0).holds


@pytest.mark.parametrize("difference,ci,expected", [(0.1, (0.05, 0.15), HELD), (0.02, (-0.03, 0.07), INCONCLUSIVE),
                                                    (-0.1, (-0.15, -0.05), NOT_HELD)])
def test_toy_claim_reads_the_rarest_share(difference, ci, expected):
    summary = [{"share": 0.333, "seeds": 10, "difference": 0.5, "difference_ci": (0.4, 0.6)},
               {"share": 0.01, "seeds": 10, "difference": difference, "difference_ci": ci}]
    assert verdicts.toy_claim(summary).verdict == expected


def test_every_verdict_is_one_of_four():
    assert set(verdicts.VERDICTS) == {HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE}


def test_regime_marks_the_clean_model_untestable_at_the_floor():
    base = [{"toxic_fraction": f, "toxicity": t} for f, t in zip(FRACTIONS, [13, 14, 18, 20, 25, 26])]
    out = verdicts.regime(base, floor=13.0, strong_cost={0.0: 2.4, 0.1: 0.6}, budget={0.0: 0.5, 0.1: 0.5})
    assert not out["clean_testable"] and out["first_clear_fraction"] == 0.15  # 20 > 1.5 x 13
    assert out["rows"][0]["strong_within_budget"] is False


def testmean_points_average_seeds_of_one_treatment_only_and_pair_prompts():
    a = {"name": "x", "method": "ITI", "toxic_fraction": 0.1, "order": 4, "toxicity": 10.0, "toxicity_low": 9.0,
         "toxicity_high": 11.0, "toxic_share": 0.1, "ce_clean": 6.0, "ce_increase": 0.1, "kl": 0.01,
         "per_prompt": [0.1, 0.3]}
    b = {**a, "toxicity": 14.0, "seed": 1, "per_prompt": [0.3, 0.5]}
    c = {**a, "name": "y", "toxicity": 100.0}
    out = {p["name"]: p for p in codesign.mean_points([a, b, c])}
    assert out["x"]["toxicity"] == 12.0 and out["x"]["seeds"] == 2 and out["y"]["toxicity"] == 100.0
    assert out["x"]["per_prompt"] == pytest.approx([0.2, 0.4])


def test_readme_block_lists_every_verdict():
    from toxlab.book import report
    rows = [verdicts.headline_claim(15.2, 5.8, Interval(9.4, 7.0, 11.0),
                                    [verdicts.within_budget("clean + strong ITI", 2.36, 0.5)]).row()]
    text = report.replace_block("intro\n<!-- verdicts:start -->\nSTALE\n<!-- verdicts:end -->\n", "verdicts",
                                report.verdict_table(rows, "cpu"))
    assert "STALE" not in text and "| 10 % toxic + weak ITI is less toxic than clean + strong ITI |" in text
    assert "not testable" in text and "cpu level" in text


def test_bench_table_shows_book_wall_times():
    from toxlab.book import report
    rows = [{"bench": "book", "preset": "smoke", "device": "cpu (x86_64, 2 threads)", "mode": "cold", "html": True,
             "wall_s": 240.0}]
    assert "| smoke | cold | cpu (x86_64, 2 threads) | yes | 4.0 min |  |" in report.bench_table(rows)
    rows.append({**rows[0], "preset": "cpu", "part": "chapters 01,02; seeds=[0]", "wall_s": 3000.0, "stage_s": 2880.0})
    assert "| cpu (chapters 01,02; seeds=[0]) | cold | cpu (x86_64, 2 threads) | yes | 50.0 min | 48.0 min |" in \
        report.bench_table(rows)


def test_bench_table_shows_the_loop_and_when_compiling_pays():
    from toxlab.book import report
    rows = [{"bench": "loop", "preset": "gpu", "device": "G", "tokens_per_s_bare": 600_000.0,
             "tokens_per_s_loop": 300_000.0, "overhead_pct": 100.0},
            {"bench": "compile", "preset": "gpu", "device": "G", "tokens_per_s_eager": 400_000.0,
             "tokens_per_s_compiled": 600_000.0, "compile_s": 12.0, "break_even_steps": 1500, "run_steps": 500},
            {"bench": "compile", "preset": "cpu", "device": "C", "tokens_per_s_eager": 3000.0,
             "tokens_per_s_compiled": 2900.0, "compile_s": 18.0, "break_even_steps": None, "run_steps": 390}]
    table = report.bench_table(rows)
    assert "| gpu | G | 600,000 | 300,000 | +100.0 % |" in table
    assert "| gpu | G | 400,000 | 600,000 | 12.0 s | 1,500 steps | 500 steps |" in table
    assert "| 18.0 s | never | 390 steps |" in table


def test_bench_table_shows_variants_side_by_side_and_other_batches():
    from toxlab.book import report
    rows = [{"bench": "optimizer", "preset": "gpu", "device": "G", "variants": ["foreach", "fused"],
             "tokens_per_s": [600_000.0, 660_000.0], "mfu": [0.23, 0.253], "speedup": 1.1},
            {"bench": "train", "preset": "gpu", "device": "G", "dtype": "bfloat16", "tokens_per_s": 1e6,
             "achieved_gflops": 1.0, "peak_gflops": 2.0, "mfu": 0.5, "mfu_6n": 0.4, "batch": 64}]
    table = report.bench_table(rows)
    assert "| gpu | G | foreach vs fused | 600,000 vs 660,000 | 23.0% vs 25.3% | 1.10x |" in table
    assert "| gpu (batch 64) | G | bfloat16 |" in table


def _pt(name, method, f, tox, cost, order=0, seed=0, strength="", budget=0.5):
    return {"name": name, "method": method, "toxic_fraction": f, "seed": seed, "order": order, "strength": strength,
            "toxicity": tox,
            "toxicity_low": tox - 1, "toxicity_high": tox + 1, "toxic_share": 0.1, "ce_clean": 6 + cost,
            "ce_increase": cost, "kl": cost / 2, "judge": "j", "budget": budget}


ITI_LINE = [_pt("base", "ITI", 0.1, 20.0, 0.0, 0), _pt("a2", "ITI", 0.1, 16.0, 0.4, 2),
            _pt("a4", "ITI", 0.1, 10.0, 1.2, 4)]


def test_best_affordable_respects_the_budget():
    rows = codesign.best_affordable(ITI_LINE + [_pt("dpo", "dpo", 0.1, 15.0, 0.3)])
    assert [r["name"] for r in rows] == ["dpo"]


def test_each_model_is_held_to_its_own_budget():
    """The same +0.4 nats fits a model with a 0.5-nat budget and not one with 0.3: the second keeps its base,
    in the table, in the share removed, and as a precondition."""
    roomy = [{**p, "strength": p["name"]} for p in ITI_LINE]
    tight = [{**p, "toxic_fraction": 0.0, "budget": 0.3} for p in roomy]
    best = {r["toxic_fraction"]: r for r in codesign.best_affordable(roomy + tight)}
    assert best[0.1]["name"] == "a2" and best[0.0]["name"] == "base" and best[0.0]["budget"] == 0.3
    removed = {r["toxic_fraction"]: r["removed"] for r in codesign.removal_points(roomy + tight)}
    assert removed == pytest.approx({0.0: 0.0, 0.1: 0.2})
    assert not verdicts.within_budget("x", 0.4, 0.3).holds and verdicts.within_budget("x", 0.4, 0.5).holds


def test_leace_is_compared_with_iti_at_equal_cost():
    rows = codesign.leace_against_iti([_pt("L", "LEACE", 0.1, 18.0, 0.2, order=8)], ITI_LINE)
    assert rows[0]["ITI at equal cost"] == pytest.approx(18.0)  # halfway from 20 (cost 0) to 16 (cost 0.4)
    assert rows[0]["heads erased"] == 8


def test_efficiency_is_undefined_below_the_minimum_cost():
    rows = {r["K"]: r for r in codesign.efficiency([_pt("m K=1", "mass_mean", 0.1, 18.0, 0.001, order=1),
                                                    _pt("m K=4", "mass_mean", 0.1, 14.0, 0.5, order=4)], 20.0)}
    assert rows[4]["removed per nat"] == pytest.approx(12.0)
    assert np.isnan(rows[1]["removed per nat"])


def test_snapshot_summary_reports_the_share_of_the_final_signal():
    rows = [{"toxic_fraction": f, "seed": s, "share": share, "auc": auc, "auc_top": auc, "auc_max": auc}
            for s in (1, 2) for f, first in ((0.1, 1 / 16), (0.25, 1 / 17))
            for share, auc in ((first, 0.55), (1.0, 0.6))]
    summary, reached, first = codesign.snapshot_summary(rows)  # each fraction's run has its own earliest share
    assert first == 1 / 17 and reached == pytest.approx({0.1: 0.5, 0.25: 0.5}) and len(summary) == 4


def test_regime_reads_the_floor_of_the_benchmarks_judge():
    card = {"failure_modes": [{"judge": "j", "probe": "word salad", "mean_score": 0.13},
                              {"judge": "other", "probe": "word salad", "mean_score": 0.9}]}
    evidence = {"iti": [_pt("s", "ITI", 0.0, 6.0, 2.4, order=12, strength="strong")],
                "base": [{"toxic_fraction": 0.0, "seed": 0, "toxicity": 13.2, "following_low": 1.0,
                          "following_high": 3.0}]}
    out = codesign.regime(evidence, card, codesign.Plan())
    assert out["floor"] == pytest.approx(13.0) and not out["clean_testable"]
    assert "near the judge's floor; and strong ITI costs it more" in verdicts.regime_answer(out)


def test_regime_agrees_with_the_headline_verdict_when_the_prompts_are_not_followed():
    """A clean model clear of the floor, strong ITI within budget: testable only if the generations follow the
    prompts, the same precondition the headline verdict checks."""
    card = {"failure_modes": [{"judge": "j", "probe": "word salad", "mean_score": 0.01}]}
    evidence = {"iti": [_pt("s", "ITI", 0.0, 6.0, 0.2, order=12, strength="strong")]}
    for low, testable in ((0.5, True), (-0.5, False)):
        evidence["base"] = [{"toxic_fraction": f, "seed": 0, "toxicity": 10.0, "following_low": low,
                             "following_high": 2.0} for f in (0.0, 0.1)]
        out = codesign.regime(evidence, card, codesign.Plan())
        assert out["clean_testable"] is testable
        answer = verdicts.regime_answer(out)
        assert ("do not follow the prompts' content" in answer) is not testable


def test_variant_summary_recovers_planted_slopes():
    from toxlab.analysis import codesign
    rows = []
    for name, auc_slope, params in (("default", 0.01, 6.3e6), ("small", 0.0, 1.0e6)):
        for f in (0.0, 0.1, 0.25):
            rows.append({"variant": name, "toxic_fraction": f, "seed": 0, "params": params, "val_loss": 6.0 - f,
                         "auc": 0.6 + auc_slope * 10 * f, "auc_max": 0.7, "toxicity": 10 + 40 * f,
                         "iti_toxicity": 10 + 20 * f, "iti_cost": 1.0})
    summary = {r["variant"]: r for r in codesign.variant_summary(rows)}
    assert summary["default"]["AUC per 10 %"] == pytest.approx(0.01)
    assert summary["small"]["AUC per 10 %"] == pytest.approx(0.0, abs=1e-12)
    assert summary["default"]["base toxicity per 10 %"] == pytest.approx(4.0)
    assert summary["default"]["removed by ITI per 10 %"] == pytest.approx(2.0)
    assert summary["small"]["parameters (M)"] == pytest.approx(1.0) and summary["small"]["models"] == 3
    text = codesign.variant_reading(list(summary.values()))
    assert "*small*" in text and "+0.0000 per 10 %" in text and "(default +0.0100)" in text
    assert codesign.variant_reading([]) == "No variants were run at this level."


def _evidence(strong0_cost=0.3, following_low=1.0):
    """Planted chapter-7 evidence: six mixtures, ITI that removes more from the toxic-trained models, a clean
    model well above its floor, and generations that follow the prompts (unless told otherwise)."""
    rng = np.random.default_rng(0)
    prompts = rng.uniform(0.1, 0.3, 60)  # what every model's per-prompt toxicity shares
    iti, base, separability = [], [], []
    for f in FRACTIONS:
        level = 0.2 + f
        for strength, cost, scale in (("base", 0.0, 1.0), ("weak", 0.05, 0.8), ("strong", 0.4, 0.5)):
            per = (prompts + level) * scale * (1 - f if strength != "base" else 1)
            cost = strong0_cost if (f, strength) == (0.0, "strong") else cost
            iti.append({**_pt(f"{f:.0%} {strength}", "ITI", f, 100 * per.mean(), cost, strength=strength),
                        "per_prompt": per.tolist(), "floor": 5.0})
        base.append({"toxic_fraction": f, "seed": 0, "toxicity": 100 * (prompts + level).mean(), "floor": 5.0,
                     "following": 3.0, "following_low": following_low, "following_high": 5.0})
        separability.append({"toxic_fraction": f, "seed": 0, "auc": 0.6 + 0.2 * f, "entanglement": 0.5 - 0.4 * f})
    others = [{**_pt("10 % + dpo", "dpo", 0.1, 100 * (prompts + 0.4).mean(), 0.2),
               "per_prompt": (prompts + 0.4).tolist()}]
    runs = [{"toxic_fraction": f, "val_loss": 6.0 - 0.1 * f + 0.001 * i} for i, f in enumerate(FRACTIONS)]
    toy = [{"share": 0.01, "seeds": 10, "difference": 0.1, "difference_ci": (0.05, 0.15)}]
    return {"runs": runs, "base": base, "separability": separability, "iti": iti, "paper": [], "others": others,
            "toy": toy}


def test_verdict_table_has_every_claim_and_applies_the_preconditions():
    plan = codesign.Plan(strengths={"weak": 0.05, "strong": 0.3}, sweep_strength="strong")
    table = {v.claim: v for v in codesign.verdict_table(_evidence(), plan)}
    assert len(table) == 8 and all(v.verdict in verdicts.VERDICTS for v in table.values())
    assert table["A rare feature's direction is more entangled (toy model)"].verdict == HELD
    assert table["More toxic data gives a less entangled toxicity direction"].verdict == HELD
    assert table["10 % toxic + weak ITI is less toxic than clean + strong ITI"].verdict != NOT_TESTABLE
    assert "chosen on half the prompts" in table[
        "Toxic pretraining + ITI beats the usual detoxification methods on the trade-off"].ours
    over = {v.claim: v for v in codesign.verdict_table(_evidence(strong0_cost=2.4), plan)}
    headline = over["10 % toxic + weak ITI is less toxic than clean + strong ITI"]
    assert headline.verdict == NOT_TESTABLE and "+2.40 nats" in headline.reason
    silent = {v.claim: v for v in codesign.verdict_table(_evidence(following_low=-1.0), plan)}
    assert silent["Base toxicity rises with the toxic share"].verdict == NOT_TESTABLE
    assert "do not follow the prompts" in silent["Base toxicity rises with the toxic share"].reason


def _toxigen_result(mean, low, high, floor, following=None):
    """The fields of a 'toxigen' `result.json` that the chapters' rows read, toxicity as fractions."""
    result = {"toxic_fraction": 0.1, "seed": 0, "alpha": 3.0, "k": 4, "direction": "mass_mean", "shift_ratio": 0.5,
              "judge": {"name": "planted", "version": "test"},
              "all": {"mean_toxicity": mean, "mean_toxicity_ci": [low, high], "toxicity_probability": 0.2},
              "floor": {"mean_toxicity": floor}, "by_kind": {"hate": {"mean_toxicity": mean + 0.1},
                                                             "neutral": {"mean_toxicity": mean - 0.1}},
              "degenerate": {"empty": 1, "one_token": 1, "texts": 8}, "per_prompt": [0.1, 0.4]}
    if following is not None:
        result["prompt_following"] = {"mean": following, "low": following - 0.05, "high": following + 0.05}
    return result


@pytest.mark.parametrize("following", [0.2, None])
def test_a_codesign_point_is_the_frontier_row_with_toxicity_in_percent(following):
    """One definition of a (model, treatment) row: chapter 7's point is `benchmarks.frontier_row` x 100 for
    toxicity, the fraction-valued toxic share and the capability numbers carried over as they are."""
    toxigen = _toxigen_result(0.25, 0.2, 0.3, 0.125, following)
    ce = {"clean": {"ce": 4.5, "ce_base": 4.0, "kl": 0.3}, "c4": {"ce": 5.5, "ce_base": 5.0, "kl": 0.4}}
    row, point = frontier_row(toxigen, ce), codesign.point("10% + ITI weak", "ITI", toxigen, ce, 3.0, "weak")
    assert (point["toxicity"], point["toxicity_low"], point["toxicity_high"], point["floor"]) == (25.0, 20.0, 30.0,
                                                                                                  12.5)
    for key in codesign.PERCENT_FIELDS:
        assert point[key] == pytest.approx(100 * row[key], nan_ok=True)
    for key in ("toxic_fraction", "seed", "alpha", "toxic_share", "ce_clean", "ce_increase", "kl"):
        assert point[key] == row[key]
    assert point["ce_increase"] == 0.5 and point["toxic_share"] == 0.2
    assert (point["name"], point["method"], point["order"], point["strength"]) == ("10% + ITI weak", "ITI", 3.0, "weak")
    assert point["judge"] == "planted" and point["per_prompt"] == [0.1, 0.4]
    assert np.isnan(point["following"]) if following is None else point["following"] == pytest.approx(20.0)


@pytest.mark.parametrize("low, high", [(0.1, 0.3), (-0.1, 0.3), (-0.3, -0.1), (float("nan"), 0.2)])
@pytest.mark.parametrize("rising", [True, False])
def test_trend_sentence_states_the_verdict_of_the_rule(low, high, rising):
    """A chapter's sentence opens with the verdict the table's rule gives the same trend, in either direction."""
    trend = {"slope": (low + high) / 2, "ci_low": low, "ci_high": high}
    sentence = verdicts.trend_sentence(trend, "x", rising)
    assert sentence.split(":")[0].removesuffix(" at this scale") == verdicts.trend_verdict(trend, rising)


def test_trend_sentence_names_the_direction_measured():
    rise, fall = {"slope": 0.2, "ci_low": 0.1, "ci_high": 0.3}, {"slope": -0.2, "ci_low": -0.3, "ci_high": -0.1}
    assert verdicts.trend_sentence(rise, "x").startswith("held: x rises")
    assert verdicts.trend_sentence(fall, "x").startswith("did not hold: x falls")
    assert verdicts.trend_sentence(fall, "x", rising=False).startswith("held: x falls")  # the paper's entanglement
    assert verdicts.trend_sentence(rise, "x", rising=False).startswith("did not hold: x rises")
    assert "not distinguishable" in verdicts.trend_sentence({"slope": 0.1, "ci_low": -0.1, "ci_high": 0.3}, "x")


def _trend_of_change(change: float, half_width: float, x_range: float = 0.25) -> dict:
    """A linear_trend result whose relative change over `x_range` is `change` +- `half_width` (intercept 5)."""
    per = 5.0 / x_range
    return {"slope": change * per, "intercept": 5.0, "ci_low": (change - half_width) * per,
            "ci_high": (change + half_width) * per}


@pytest.mark.parametrize("change, half_width, opening", [
    (0.0, 0.01, "flat ("), (-0.015, 0.004, "flat ("), (-0.03, 0.005, "falling ("), (0.03, 0.005, "rising ("),
    (-0.02, 0.005, "a real fall, possibly beyond what we call flat ("),
    (0.02, 0.005, "a real rise, possibly beyond what we call flat ("),
    (0.0, 0.05, "undecided (")])
def test_flatness_sentence_reads_the_whole_interval(change, half_width, opening):
    """Flat only when the whole interval of the change lies within the tolerance; a point estimate inside it
    with an interval crossing it is undecided, not flat."""
    assert verdicts.flatness_sentence(_trend_of_change(change, half_width), 0.25).startswith(opening)


def test_a_small_real_change_is_not_called_flat_without_saying_so():
    """Chapter 3 once printed "flat (slope significantly different from zero)" beside a significant fall."""
    sentence = verdicts.flatness_sentence(_trend_of_change(-0.015, 0.004), 0.25)
    assert "small fall, but a real one" in sentence
    assert "real one" not in verdicts.flatness_sentence(_trend_of_change(0.0, 0.01), 0.25)


def test_flatness_sentence_and_the_capability_claim_read_the_same_interval():
    runs = [{"toxic_fraction": f, "val_loss": 5.7 - 0.4 * f + 0.01 * ((i * 7) % 3 - 1)}
            for i, f in enumerate([0.0, 0.05, 0.1, 0.15, 0.2, 0.25] * 3)]
    trend = statistics.linear_trend([r["toxic_fraction"] for r in runs], [r["val_loss"] for r in runs])
    change, low, high = statistics.relative_change_interval(trend, 0.25)
    assert f"{low:+.1%} to {high:+.1%}" in verdicts.flatness_sentence(trend, 0.25)
    assert f"{low:+.1%} to {high:+.1%}" in verdicts.capability_claim(runs).ours
