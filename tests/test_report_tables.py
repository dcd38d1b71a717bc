"""The tables a reader sees (`toxlab.book.report.readable`): every column under a header with its unit, intervals
merged into one column, and no field name reaching a page raw."""

import re
from pathlib import Path

import pandas as pd
import pytest

from toxlab.book.report import LABELS, readable
from toxlab.core.errors import ToxlabError

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[1-9]_*.py"))


def test_interval_pair_is_merged_into_one_column_beside_its_estimate():
    frame = pd.DataFrame([{"toxic_fraction": 0.1, "toxicity": 12.345, "toxicity_low": 10.0, "toxicity_high": 14.5,
                           "ce_increase": 0.25}])
    shown = readable(frame, scores="x 100").data
    assert list(shown.columns) == ["toxic data", "toxicity (x 100)", "95 % CI", "CE rise (nats/token)"]
    row = shown.iloc[0]
    assert row["toxic data"] == "10%"
    assert row["toxicity (x 100)"] == "12.35"
    assert row["95 % CI"] == "[10.00, 14.50]"
    assert row["CE rise (nats/token)"] == "+0.250"


def test_several_intervals_are_named_by_their_estimate_and_missing_bounds_show_a_dash():
    frame = pd.DataFrame([{"toxicity": 0.2, "toxicity_low": 0.1, "toxicity_high": 0.3,
                           "following": 0.01, "following_low": float("nan"), "following_high": float("nan")}])
    shown = readable(frame).data
    assert list(shown.columns) == ["toxicity (0-1)", "toxicity 95 % CI", "hate − neutral (0-1)",
                                   "hate − neutral 95 % CI"]
    assert shown.iloc[0]["toxicity 95 % CI"] == "[0.100, 0.300]"
    assert shown.iloc[0]["hate − neutral 95 % CI"] == "–"


def test_ci_low_high_and_tuple_columns_read_as_intervals():
    trend = readable(pd.DataFrame([{"set": "C4", "slope": 0.5, "ci_low": 0.25, "ci_high": 0.75, "p_value": 0.01}]))
    assert list(trend.data.columns) == ["held-out set", "slope (nats/token per 100 % toxic)", "95 % CI", "p"]
    assert trend.data.iloc[0]["95 % CI"] == "[0.2500, 0.7500]"
    table1 = readable(pd.DataFrame([{"toxigen_toxicity": 20.0, "toxigen_ci": (18.04, 22.0)}]))
    assert table1.data.iloc[0]["ToxiGen 95 % CI"] == "[18.0, 22.0]"


def test_an_unlabelled_field_is_refused_with_a_clear_error():
    with pytest.raises(ToxlabError, match="'mystery_metric' has no reader's header.*LABELS"):
        readable(pd.DataFrame({"mystery_metric": [1.0]}))
    with pytest.raises(ToxlabError, match="scores"):
        readable(pd.DataFrame({"toxicity": [1.0]}), scores="percent")


def test_every_label_states_a_header_and_no_header_is_a_field_name():
    for field, (header, spec) in LABELS.items():
        assert header and not re.fullmatch(r"[a-z]+_[a-z0-9_]+", header), field
        assert spec is None or "{" in spec, field


def test_pivots_keep_their_categories_and_label_their_axes():
    long = pd.DataFrame([{"set": "test: all", "judge": "minilm", "auc": 0.9},
                         {"set": "test: all", "judge": "alt-profanity-check", "auc": 0.7}])
    shown = readable(long.pivot(index="set", columns="judge", values="auc"), index=True).data
    assert list(shown.columns) == ["alt-profanity-check", "minilm"]
    assert shown.index.names == ["held-out set"]


def test_every_table_in_the_chapters_goes_through_readable():
    """A chapter styles no table itself (`.style`): its tables go through `readable`."""
    assert CHAPTERS
    for path in CHAPTERS:
        source = path.read_text()
        assert ".style" not in source, f"{path.name} styles a table itself; use toxlab.book.report.readable"


def test_the_readme_tables_are_untouched_by_the_book_tables():
    """`readable` lives beside the README's generators and must not change what they write."""
    from toxlab.analysis.benchmarks import BenchmarkRow
    from toxlab.book import report
    nan = float("nan")
    row = BenchmarkRow(toxic_fraction=0.0, seed=0, setting="base", alpha=0.0, shift_ratio=0.0, toxigen_toxicity=13.22,
                       toxigen_ci=(11.1, 15.7), toxigen_floor=nan, following=nan, following_ci=(nan, nan),
                       rtp_challenging_max=47.97, rtp_challenging_prob=38.33, rtp_nontoxic_max=nan,
                       rtp_nontoxic_prob=nan, rtp_floor_max=nan, degenerate=0, ce_clean=5.0, ce_increase=0.0,
                       webtext_increase=nan, kl=0.0)
    assert "| 13.22 | 11.1-15.7 | — | — | 47.97 |" in report.benchmark_table([row])
