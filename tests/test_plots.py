"""The book's figures share one colour per toxic fraction."""

from toxlab.book import plots
from toxlab.core.config import PAPER_FRACTIONS


def test_a_fraction_keeps_its_colour_whichever_fractions_a_figure_shows():
    every = plots.fraction_colors(PAPER_FRACTIONS)
    assert len(set(every.values())) == len(PAPER_FRACTIONS)  # the paper's six are told apart
    assert plots.fraction_colors([0.0, 0.1]) == {0.0: every[0.0], 0.1: every[0.1]}
    assert plots.fraction_colors([0.1])[0.1] == every[0.1]
    between = plots.fraction_colors([0.075])[0.075]
    assert between not in every.values()

