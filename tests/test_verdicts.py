"""The verdict rules on planted evidence: a clear rise is 'held', a rise inside the noise 'partly held', a
fall 'did not hold'; comparisons need disjoint intervals to be 'held'; the regime numbers follow the floor
and the budget; and codesign's averaging over seeds keeps each treatment separate."""

import numpy as np
import pytest

from toxlab import codesign, verdicts
from toxlab.verdicts import HELD, NOT_HELD, PARTLY

FRACTIONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]


def _points(slope, noise, key, level=1.0):
    """Three seeds per fraction with residuals +noise, -noise, 0: the fitted slope is exactly `slope`."""
    return [{"toxic_fraction": f, "seed": s, key: level + slope * f + noise * r}
            for f in FRACTIONS for s, r in enumerate((1, -1, 0))]


@pytest.mark.parametrize("slope,noise,expected", [(40.0, 0.5, HELD), (2.0, 3.0, PARTLY), (-40.0, 0.5, NOT_HELD)])
def test_trend_claims_follow_the_slope_interval(slope, noise, expected):
    row = verdicts.base_toxicity_claim(_points(slope, noise, "toxicity", level=15.0))
    assert row.verdict == expected
    auc = verdicts.separability_claim(_points(slope / 100, noise / 100, "auc", level=0.6))
    assert auc.verdict == expected


def test_capability_flat_or_better_is_held_and_a_clear_cost_is_not():
    flat = [{"toxic_fraction": f, "val_loss": 6.0 - 0.2 * f} for f in FRACTIONS]
    assert verdicts.capability_claim(flat).verdict == HELD
    assert "train longer" in verdicts.capability_claim(flat).reason
    costly = [{"toxic_fraction": f, "val_loss": 6.0 + 4.0 * f + 0.01 * i} for i, f in enumerate(FRACTIONS)]
    assert verdicts.capability_claim(costly).verdict == NOT_HELD


def test_comparisons_need_disjoint_intervals():
    assert verdicts.comparison_verdict((10, 8, 12), (20, 18, 22)) == HELD
    assert verdicts.comparison_verdict((10, 8, 19), (20, 18, 22)) == PARTLY
    assert verdicts.comparison_verdict((25, 23, 27), (20, 18, 22)) == NOT_HELD
    row = verdicts.headline_claim((15.2, 13.0, 17.5), (5.8, 4.9, 6.8), 2.36, 0.5)
    assert row.verdict == NOT_HELD and "+2.36 nats" in row.reason


def test_trade_off_compares_only_points_within_the_budget():
    ours = {"name": "10 % + ITI 2", "toxicity": 10.0, "toxicity_low": 9.0, "toxicity_high": 11.0, "ce_increase": 0.1}
    rivals = [{"name": "broken", "toxicity": 1.0, "toxicity_low": 0.5, "toxicity_high": 1.5, "ce_increase": 3.0},
              {"name": "dpo", "toxicity": 14.0, "toxicity_low": 13.0, "toxicity_high": 15.0, "ce_increase": 0.2}]
    row = verdicts.trade_off_claim(ours, rivals, budget=0.5)
    assert row.verdict == HELD and "dpo" in row.ours and "broken" not in row.ours


def test_regime_marks_the_clean_model_untestable_at_the_floor():
    base = [{"toxic_fraction": f, "toxicity": t} for f, t in zip(FRACTIONS, [13, 14, 18, 20, 25, 26])]
    out = verdicts.regime(base, floor=13.0, strong_cost={0.0: 2.4, 0.1: 0.6}, budget=0.5)
    assert not out["clean_testable"] and out["first_clear_fraction"] == 0.15  # 20 > 1.5 x 13
    assert out["rows"][0]["strong_within_budget"] is False


def testmean_points_average_seeds_of_one_treatment_only():
    a = {"name": "x", "method": "ITI", "toxic_fraction": 0.1, "order": 4, "toxicity": 10.0, "toxicity_low": 9.0,
         "toxicity_high": 11.0, "toxic_share": 0.1, "ce_clean": 6.0, "ce_increase": 0.1, "kl": 0.01}
    b = {**a, "toxicity": 14.0, "seed": 1}
    c = {**a, "name": "y", "toxicity": 100.0}
    out = {p["name"]: p for p in codesign.mean_points([a, b, c])}
    assert out["x"]["toxicity"] == 12.0 and out["x"]["seeds"] == 2 and out["y"]["toxicity"] == 100.0


def test_readme_block_lists_every_verdict():
    from toxlab import report
    rows = [verdicts.headline_claim((15.2, 13.0, 17.5), (5.8, 4.9, 6.8), 2.36, 0.5).row()]
    text = report.replace_block("intro\n<!-- verdicts:start -->\nSTALE\n<!-- verdicts:end -->\n", "verdicts",
                                report.verdict_table(rows, "cpu"))
    assert "STALE" not in text and "| 10 % toxic + weak ITI is less toxic than clean + strong ITI |" in text
    assert "did not hold" in text and "cpu level" in text


def test_bench_table_shows_book_wall_times():
    from toxlab import report
    rows = [{"bench": "book", "preset": "smoke", "device": "cpu (x86_64, 2 threads)", "mode": "cold", "html": True,
             "wall_s": 240.0}]
    assert "| smoke | cold | cpu (x86_64, 2 threads) | yes | 4.0 min |  |" in report.bench_table(rows)
    rows.append({**rows[0], "preset": "cpu", "part": "chapters 01,02; seeds=[0]", "wall_s": 3000.0, "stage_s": 2880.0})
    assert "| cpu (chapters 01,02; seeds=[0]) | cold | cpu (x86_64, 2 threads) | yes | 50.0 min | 48.0 min |" in \
        report.bench_table(rows)


def test_bench_table_shows_the_loop_and_when_compiling_pays():
    from toxlab import report
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
    from toxlab import report
    rows = [{"bench": "optimizer", "preset": "gpu", "device": "G", "variants": ["foreach", "fused"],
             "tokens_per_s": [600_000.0, 660_000.0], "mfu": [0.23, 0.253], "speedup": 1.1},
            {"bench": "train", "preset": "gpu", "device": "G", "dtype": "bfloat16", "tokens_per_s": 1e6,
             "achieved_gflops": 1.0, "peak_gflops": 2.0, "mfu": 0.5, "mfu_6n": 0.4, "batch": 64}]
    table = report.bench_table(rows)
    assert "| gpu | G | foreach vs fused | 600,000 vs 660,000 | 23.0% vs 25.3% | 1.10x |" in table
    assert "| gpu (batch 64) | G | bfloat16 |" in table


def _pt(name, method, f, tox, cost, order=0, seed=0):
    return {"name": name, "method": method, "toxic_fraction": f, "seed": seed, "order": order, "toxicity": tox,
            "toxicity_low": tox - 1, "toxicity_high": tox + 1, "toxic_share": 0.1, "ce_clean": 6 + cost,
            "ce_increase": cost, "kl": cost / 2, "judge": "j"}


ITI_LINE = [_pt("base", "ITI", 0.1, 20.0, 0.0, 0), _pt("a2", "ITI", 0.1, 16.0, 0.4, 2),
            _pt("a4", "ITI", 0.1, 10.0, 1.2, 4)]


def test_best_affordable_respects_the_budget():
    rows = codesign.best_affordable(ITI_LINE + [_pt("dpo", "dpo", 0.1, 15.0, 0.3)], budget=0.5)
    assert [r["name"] for r in rows] == ["dpo"]


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
    evidence = {"iti": [_pt("s", "ITI", 0.0, 6.0, 2.4, order=12)],
                "base": [{"toxic_fraction": 0.0, "seed": 0, "toxicity": 13.2}]}
    out = codesign.regime(evidence, card, codesign.Plan())
    assert out["floor"] == pytest.approx(13.0) and not out["clean_testable"]
    assert "near the judge's floor and strong ITI costs it more" in verdicts.regime_answer(out)


def test_variant_summary_recovers_planted_slopes():
    from toxlab import codesign
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
