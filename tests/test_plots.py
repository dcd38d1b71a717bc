"""The book's figures share one colour per toxic fraction; grouped capability lines."""

import pytest

from toxlab.book import plots
from toxlab.core.config import PAPER_FRACTIONS


def test_a_fraction_keeps_its_colour_whichever_fractions_a_figure_shows():
    every = plots.fraction_colors(PAPER_FRACTIONS)
    assert len(set(every.values())) == len(PAPER_FRACTIONS)  # the paper's six are told apart
    assert plots.fraction_colors([0.0, 0.1]) == {0.0: every[0.0], 0.1: every[0.1]}
    assert plots.fraction_colors([0.1])[0.1] == every[0.1]
    between = plots.fraction_colors([0.075])[0.075]
    assert between not in every.values()



def test_capability_lines_follow_the_group_and_its_means():
    rows = [{"design": design, "toxic_fraction": f, "seed": seed, "val_loss": base + f + seed / 10,
             "c4_loss": base + 2 * f} for design, base in (("paper", 5.0), ("control", 6.0))
            for f in (0.0, 0.25) for seed in (0, 1)]
    fig = plots.capability_vs_fraction(rows, group="design")
    val_axis = fig.axes[0]
    lines = {bars.get_label(): bars.lines[0] for bars in val_axis.containers}  # one errorbar line per group
    assert set(lines) == {"paper", "control"}
    assert list(lines["control"].get_ydata()) == pytest.approx([6.05, 6.3])  # the mean over seeds at each fraction
    single = plots.capability_vs_fraction([r for r in rows if r["design"] == "paper"])
    assert [bars.get_label() for bars in single.axes[0].containers] == ["mean (95 % CI)"]
