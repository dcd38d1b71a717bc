"""Figures draw the 95 % intervals their rows carry."""

import pytest

from toxlab.book import plots


def _bars(fig):
    """The vertical extents of the error bars drawn on a figure's first axes."""
    from matplotlib.collections import LineCollection
    return sorted(tuple(round(v, 6) for v in (seg[0][1], seg[1][1]))
                  for c in fig.axes[0].collections if isinstance(c, LineCollection) for seg in c.get_segments())


def test_the_frontier_draws_the_interval_its_rows_carry_averaged_over_seeds():
    rows = [{"toxic_fraction": 0.1, "seed": s, "strength": name, "alpha": alpha + s, "ce_increase": cost,
             "toxicity": tox, "toxicity_low": tox - 0.1 - s * 0.1, "toxicity_high": tox + 0.1}
            for s in (0, 1) for name, alpha, cost, tox in (("base", 0.0, 0.0, 0.5), ("strong", 4.0, 0.3, 0.3))]
    assert _bars(plots.toxicity_frontier(rows)) == [(0.15, 0.4), (0.35, 0.6)]
    without = [{k: v for k, v in r.items() if not k.endswith(("_low", "_high"))} for r in rows]
    assert _bars(plots.toxicity_frontier(without)) == []


def test_the_codesign_plane_draws_intervals_on_lines_and_on_baselines():
    line = [{"toxic_fraction": 0.0, "method": "ITI", "order": o, "ce_clean": 4.0 + o, "toxicity": 20.0 - o,
             "toxicity_low": 18.0 - o, "toxicity_high": 22.0 - o} for o in (0, 1)]
    point = [{"toxic_fraction": 0.0, "method": "sft", "ce_clean": 4.5, "toxicity": 15.0, "toxicity_low": 14.0,
              "toxicity_high": 17.0}]
    assert _bars(plots.codesign_frontier(line, point)) == [(14.0, 17.0), (17.0, 21.0), (18.0, 22.0)]


def test_lines_with_intervals_are_set_apart_so_their_bars_do_not_hide_each_other():
    rows = [{"toxic_fraction": f, "base": 10.0, "base_low": 8.0, "base_high": 12.0,
             "weak": 9.0, "weak_low": 7.0, "weak_high": 11.0} for f in (0.0, 0.1)]
    fig = plots.metric_vs_fraction(rows, {"base": "base", "weak": "weak"}, "toxicity (x 100)")
    xs = [tuple(line.get_xdata()) for line in fig.axes[0].get_lines() if line.get_marker() == "o"]
    assert len(set(xs)) == 2 and all(abs(a - b) < 1 for a, b in zip(*xs))  # apart, by less than a point
    assert sorted(_bars(fig)) == [(7.0, 11.0), (7.0, 11.0), (8.0, 12.0), (8.0, 12.0)]


def test_the_sweep_panels_draw_intervals_where_the_measure_has_them():
    rows = [{"direction": "random", "k": k, "toxicity": 0.1 * k, "toxicity_low": 0.1 * k - 0.05,
             "toxicity_high": 0.1 * k + 0.05, "ce_increase": 0.2} for k in (1, 2)]
    fig = plots.sweep_lines(rows, "k", {"toxicity": "toxicity", "ce_increase": "CE rise"}, "direction", "K")
    assert _bars(fig) == [(0.05, 0.15), (0.15, 0.25)]
    from matplotlib.collections import LineCollection
    assert not [c for c in fig.axes[1].collections if isinstance(c, LineCollection)]  # CE carries no interval


def test_a_series_keeps_its_colour_when_a_figure_leaves_others_out():
    rows = [{"toxic_fraction": f, "base": 10.0, "weak": 9.0, "strong": 5.0} for f in (0.0, 0.1)]
    settings = ["base", "weak", "strong"]

    def colours(fig):
        handles, labels = fig.axes[0].get_legend_handles_labels()
        return {label: handle.lines[0].get_color() for handle, label in zip(handles, labels)}

    every = colours(plots.metric_vs_fraction(rows, {k: k for k in settings}, "x"))
    some = colours(plots.metric_vs_fraction(rows, {"weak": "weak", "strong": "strong"}, "x", series=settings))
    assert some == {k: every[k] for k in ("weak", "strong")} and len(set(every.values())) == 3
    with pytest.raises(ValueError, match="not among the series"):
        plots.metric_vs_fraction(rows, {"weak": "weak"}, "x", series=["base"])


def test_the_codesign_plane_averages_a_calibrated_strength_over_seeds_whose_alphas_differ():
    rows = [{"toxic_fraction": 0.0, "method": "ITI", "name": name, "seed": s, "order": alpha + s,
             "ce_clean": 4.0 + cost, "toxicity": tox}
            for s in (0, 1) for name, alpha, cost, tox in (("base", 0.0, 0.0, 20.0), ("weak", 3.0, 0.1, 15.0),
                                                           ("strong", 9.0, 0.3, 10.0))]
    (line,) = [ln for ln in plots.codesign_frontier(rows, []).axes[0].get_lines() if ln.get_marker() == "o"]
    assert list(line.get_xdata()) == [4.0, 4.1, 4.3]  # one point per strength, in order of cost
    assert list(line.get_ydata()) == [20.0, 15.0, 10.0]


def test_a_log_axis_is_ticked_at_the_measured_values_as_plain_numbers():
    rows = [{"size": "s", "lr": lr, "tokens": n, "bpb": 2.0} for lr, n in ((2e-3, 800_000), (4e-3, 1_600_000))]
    by_lr = plots.sweep_lines(rows, "lr", {"bpb": "bits per byte"}, "size", "learning rate", log_x=True)
    assert [t.get_text() for t in by_lr.axes[0].get_xticklabels()] == ["0.002", "0.004"]
    by_tokens = plots.sweep_lines(rows, "tokens", {"bpb": "bits per byte"}, "size", "tokens", log_x=True)
    assert [t.get_text() for t in by_tokens.axes[0].get_xticklabels()] == ["800k", "1.6M"]


def test_the_frontier_marks_each_strength_alike_on_every_line_and_labels_none_of_its_points():
    """Alpha labels crowded the points: a strength is now a marker, the same on each fraction's line, named in a
    legend of its own; lines follow mean alpha."""
    rows = [{"toxic_fraction": f, "seed": 0, "strength": name, "alpha": alpha * (1 + f), "ce_increase": alpha / 10,
             "toxicity": 0.5 - alpha / 100} for f in (0.0, 0.1)
            for name, alpha in (("strong", 9.0), ("base", 0.0), ("weak", 2.0))]
    ax = plots.toxicity_frontier(rows).axes[0]
    points = [(line.get_marker(), line.get_color()) for line in ax.get_lines() if line.get_linestyle() == "None"]
    by_strength = {}
    for marker, color in points:
        by_strength.setdefault(marker, set()).add(color)
    assert len(points) == 6 and len(by_strength) == 3 and all(len(c) == 2 for c in by_strength.values())
    assert not ax.texts
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["base", "weak", "strong"]
    assert [tuple(line.get_xdata()) for line in ax.get_lines() if line.get_linestyle() == "-"] == [(0.0, 0.2, 0.9)] * 2
