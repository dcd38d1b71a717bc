"""The typed rows the chapters and the README read (`toxlab.analysis.benchmarks.BenchmarkRow`, `sources.SourceRow`,
`toxlab.analysis.probes.ProbeHeadline`): built from hand-written stage results, scaled as the paper reports them,
a value a result lacks kept as nan (shown as a dash), every field under a header with its unit, and the README's
record read back into the same row."""

import dataclasses
import math

import pytest

from toxlab.analysis import benchmarks, probes
from toxlab.analysis.benchmarks import BenchmarkRow
from toxlab.analysis.probes import ProbeHeadline
from toxlab.book import report
from toxlab.book.notebook import jsonable
from toxlab.book.report import LABELS


def toxigen_result(fraction=0.1, seed=0, toxicity=0.2, measured_later=True):
    result = {"toxic_fraction": fraction, "seed": seed, "alpha": 3.0, "shift_ratio": 0.5,
              "all": {"mean_toxicity": toxicity, "mean_toxicity_ci": [toxicity - 0.01, toxicity + 0.02]}}
    if measured_later:  # the floor, prompt following and degenerate counts came with a later version
        result.update({"floor": {"mean_toxicity": 0.05}, "prompt_following": {"mean": 0.03, "low": 0.01, "high": 0.05},
                       "degenerate": {"empty": 2, "one_token": 1, "texts": 40}})
    return result


def rtp_result(measured_later=True):
    result = {"by_kind": {"challenging": {"expected_max_toxicity": 0.4, "toxicity_probability": 0.25},
                          "nontoxic": {"expected_max_toxicity": 0.1, "toxicity_probability": 0.05}}}
    if measured_later:
        result.update({"floor": {"expected_max_toxicity": 0.15}, "degenerate": {"empty": 0, "one_token": 4}})
    return result


def ce_result(webtext=True):
    result = {"clean": {"ce": 5.3, "ce_base": 5.2, "kl": 0.07}, "c4": {"ce": 6.1, "ce_base": 6.0}}
    if webtext:
        result["webtext"] = {"ce": 6.45, "ce_base": 6.3}
    return result


def test_a_table_row_reports_toxicity_times_100_beside_its_floor_and_the_capability_cost_in_nats():
    row = benchmarks.table_row("weak", toxigen_result(), rtp_result(), ce_result())
    assert (row.toxic_fraction, row.seed, row.setting, row.alpha, row.shift_ratio) == (0.1, 0, "weak", 3.0, 0.5)
    assert row.toxigen_toxicity == pytest.approx(20.0)
    assert row.toxigen_ci == pytest.approx((19.0, 22.0))
    assert row.toxigen_floor == pytest.approx(5.0)
    assert (row.following, *row.following_ci) == pytest.approx((3.0, 1.0, 5.0))
    assert (row.rtp_challenging_max, row.rtp_challenging_prob) == pytest.approx((40.0, 25.0))
    assert (row.rtp_nontoxic_max, row.rtp_nontoxic_prob, row.rtp_floor_max) == pytest.approx((10.0, 5.0, 15.0))
    assert row.degenerate == 2 + 1 + 0 + 4  # ToxiGen's and RTP's empty or one-token generations together
    assert (row.ce_clean, row.ce_increase, row.webtext_increase, row.kl) == pytest.approx((5.3, 0.1, 0.15, 0.07))


def test_a_value_the_result_lacks_is_nan_and_the_readme_shows_it_as_a_dash():
    row = benchmarks.table_row("base", toxigen_result(measured_later=False), rtp_result(measured_later=False),
                               ce_result(webtext=False))
    for field in ("toxigen_floor", "following", "rtp_floor_max", "webtext_increase"):
        assert math.isnan(getattr(row, field)), field
    assert all(math.isnan(v) for v in row.following_ci) and row.degenerate == 0
    table = report.benchmark_table([row])
    assert "| 20.00 | 19.0-22.0 | — | — | 40.00 | 25.00 | +0.10 |" in table


def test_the_readme_record_reads_back_into_the_same_rows():
    """Chapter 6 records its rows as JSON (`record`: tuples become lists, nan becomes null); the README's table
    reads them back as `BenchmarkRow`s and writes what the live rows write."""
    rows = [benchmarks.table_row("base", toxigen_result(), rtp_result(), ce_result()),
            benchmarks.table_row("strong", toxigen_result(toxicity=0.1, measured_later=False), rtp_result(),
                                 ce_result(webtext=False))]
    recorded = jsonable(rows)
    assert recorded[1]["toxigen_floor"] is None
    assert report.benchmark_table([BenchmarkRow(**r) for r in recorded]) == report.benchmark_table(rows)


def test_setting_rows_put_one_model_on_a_line_with_a_column_per_setting():
    rows = [benchmarks.table_row(setting, toxigen_result(fraction, seed, toxicity), rtp_result(), ce_result())
            for fraction in (0.0, 0.1) for seed in (0, 1)
            for setting, toxicity in (("base", 0.3), ("strong", 0.1))]
    lines = benchmarks.setting_rows(rows, "toxigen_toxicity")
    assert len(lines) == 4
    assert lines[0] == {"toxic_fraction": 0.0, "base": pytest.approx(30.0), "strong": pytest.approx(10.0)}
    with pytest.raises(AttributeError):
        benchmarks.setting_rows(rows, "ToxiGen toxicity")  # a display label is not a field


def probe_summary(pool="last"):
    return {"toxic_fraction": 0.2, "seed": 1, "pool": pool, "majority_baseline": 0.6,
            "heads": {"val_accuracy": {"mean": 0.62, "max": 0.7}, "val_balanced_accuracy": {"max": 0.66},
                      "val_auc": {"mean": 0.64, "max": 0.75, "top_k_mean": 0.71, "q95": 0.73}},
            "resid_val_auc": [0.6, 0.68, 0.65],
            "entanglement": {"mean": 0.3, "top_k_mean": 0.35, "random_reference": 0.2}}


def test_a_probe_headline_reads_its_summary():
    head = probes.headline(probe_summary("mean"))
    assert head == ProbeHeadline(0.2, 1, "mean", 0.6, 0.62, 0.7, 0.66, 0.64, 0.71, 0.73, 0.75, 0.68, 0.3, 0.35, 0.2)
    assert ProbeHeadline(**jsonable(head)) == head  # the README's record of chapter 4


@pytest.mark.parametrize("row_type", [BenchmarkRow, ProbeHeadline])
def test_every_field_of_a_typed_row_has_a_header_with_its_unit(row_type):
    """A chapter shows these rows through `readable`, which refuses a field it has no header for."""
    missing = [f.name for f in dataclasses.fields(row_type) if f.name not in LABELS]
    assert not missing, f"{row_type.__name__} fields without a LABELS entry: {missing}"


def test_a_record_from_before_the_rows_were_typed_still_makes_the_readme_table():
    """Chapter 6 executed before issue 24 recorded its rows keyed by display labels, without the later fields."""
    old = {"toxic fraction": 0.1, "seed": 0, "setting": "weak", "alpha": 3.0, "shift / head norm": 0.5,
           "ToxiGen toxicity": 20.0, "ToxiGen 95% CI": [19.0, 22.0], "RTP challenging exp. max": 40.0,
           "RTP challenging prob.": 25.0, "RTP non-toxic exp. max": 10.0, "RTP non-toxic prob.": 5.0,
           "empty or one-token": 0, "clean CE": 5.3, "CE increase": 0.1, "KL": 0.07}
    row = report.recorded_row(BenchmarkRow, old, report.LABELLED_TABLE1)
    assert row.toxigen_floor is None and row.webtext_increase is None
    shown = report.benchmark_table([row])
    assert "| 0.10 | 0 | weak | 3 | 20.00 | 19.0-22.0 | — | — | 40.00 | 25.00 | +0.10 |" in shown
    with pytest.raises(TypeError):
        report.recorded_row(BenchmarkRow, {**old, "mystery": 1.0}, report.LABELLED_TABLE1)


def test_the_data_card_gives_each_present_source_its_licence_and_origin():
    from toxlab.analysis import sources
    from toxlab.data.corpora import LICENSES
    info = {"sources": [{"source": "wikinews", "role": "clean", "present": True, "documents": 3, "chars": 120,
                         "tokens": 30.0, "tokens_exact": True},
                        {"source": "pol", "role": "toxic", "present": False}]}
    (row,) = sources.source_rows(info)
    assert (row.source, row.role, row.documents, row.characters, row.tokens, row.tokens_exact) == \
        ("wikinews", "clean", 3, 120, 30.0, True)
    assert (row.licence, row.origin) == LICENSES["wikinews"]
    assert all(f.name in LABELS for f in dataclasses.fields(sources.SourceRow))


def _frontier(base_of, fractions=(0.0, 0.05, 0.1, 0.15, 0.2, 0.25)):
    """Frontier rows as chapter 5 builds them: per fraction a base row and a strong row that halves toxicity."""
    rows = []
    for f in fractions:
        common = {"toxic_fraction": f, "floor": 0.02, "budget": 0.3, "following_low": 0.01}
        rows.append({**common, "strength": "base", "toxicity": base_of(f), "ce_increase": 0.0})
        rows.append({**common, "strength": "strong", "toxicity": base_of(f) / 2, "ce_increase": 0.1})
    return rows


def test_chapter_5_reads_a_trend_by_the_verdict_tables_rule():
    """A planted rise reads 'rises'; values with no slope read as no trend, whatever a rank correlation says."""
    rising = benchmarks.intervention_verdict(_frontier(lambda f: 0.1 + f + 0.01 * math.sin(40 * f)))
    assert rising.splitlines()[0].startswith("- Base toxicity (no intervention) rises with the toxic fraction")
    wobbling = benchmarks.intervention_verdict(_frontier(lambda f: 0.2 + 0.05 * math.sin(40 * f)))
    assert "no trend with the toxic fraction distinguishable from zero" in wobbling.splitlines()[0]


def test_chapter_5_names_the_models_within_their_floor():
    text = benchmarks.intervention_verdict(_frontier(lambda f: 0.02 if f == 0 else 0.2))
    within = next(line for line in text.splitlines() if line.startswith("- Within its floor"))
    assert within.endswith(": 0%.")
