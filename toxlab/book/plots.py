"""Figures for the book, in one style. Each function returns a matplotlib Figure (not drawn through pyplot,
so notebooks show a figure only where a chapter glues it, with its caption)."""

from __future__ import annotations

import matplotlib
import matplotlib.lines
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from toxlab.core.config import PAPER_FRACTIONS

PALETTE = "viridis"
FIGSIZE = (7.0, 3.6)


def style() -> None:
    """The book's style: seaborn 'whitegrid', readable fonts, vector-friendly PNG resolution."""
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)
    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "savefig.bbox": "tight",
                                "axes.titleweight": "bold"})
    try:  # in a notebook, let Figure objects (made without pyplot) display and glue as PNG
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        if get_ipython() is not None:
            set_matplotlib_formats("png")
    except ImportError:
        pass


def fraction_colors(fractions) -> dict[float, tuple]:
    """One colour per toxic fraction in every figure of the book, whichever fractions a figure shows: the
    palette read at the fraction's value (0 % darkest, 25 % and above the palette's 90 %, short of its
    hardly visible yellow end)."""
    cmap = matplotlib.colormaps[PALETTE]
    return {f: tuple(float(c) for c in cmap(0.9 * min(max(f / PAPER_FRACTIONS[-1], 0.0), 1.0))[:3])
            for f in sorted(fractions)}


def _figure(ncols: int = 1, size=FIGSIZE) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def training_curves(histories: dict[tuple[float, int], list[dict]]) -> Figure:
    """Training loss (thin) and held-out loss (markers) against tokens seen, one colour per toxic fraction.

    histories: {(fraction, seed): [{"tokens", "loss", "val_loss"?}, ...]}
    """
    fig, (ax_train, ax_val) = _figure(2, (9.0, 3.6))
    colors = fraction_colors({f for f, _ in histories})
    labelled = set()
    for (fraction, _seed), history in sorted(histories.items()):
        tokens = np.array([h["tokens"] for h in history]) / 1e6
        loss = np.array([h["loss"] for h in history])
        window = max(1, len(loss) // 40)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        label = f"{fraction:.0%}" if fraction not in labelled else None
        labelled.add(fraction)
        ax_train.plot(tokens[window - 1:], smooth, color=colors[fraction], lw=1.2, label=label)
        evals = [(h["tokens"] / 1e6, h["val_loss"]) for h in history if "val_loss" in h]
        if evals:
            x, y = zip(*evals)
            ax_val.plot(x, y, marker="o", ms=3, color=colors[fraction], lw=1)
    ax_train.set(xlabel="tokens seen (millions)", ylabel="train loss (nats/token)", title="Training loss")
    ax_val.set(xlabel="tokens seen (millions)", ylabel="held-out clean CE", title="Held-out clean text")
    ax_train.legend(title="toxic", fontsize=8, ncols=2)
    return fig


def capability_vs_fraction(rows: list[dict], baseline: dict[str, float] | None = None,
                           group: str | None = None) -> Figure:
    """Held-out cross-entropy (the clean text's held-out split and C4) against toxic fraction
    (`seeds_vs_fraction`). rows: [{"toxic_fraction", "seed", "val_loss", "c4_loss"}, ...]; baseline:
    {"val_loss": unigram CE, ...}."""
    panels = {"val_loss": ("Held-out clean text", "cross-entropy (nats/token)"),
              "c4_loss": ("C4 snippets", "cross-entropy (nats/token)")}
    return seeds_vs_fraction(rows, panels, group, baseline, {"val_loss": "unigram baseline"})


def seeds_vs_fraction(rows: list[dict], panels: dict[str, tuple[str, str]], group: str | None = None,
                      references: dict[str, float] | None = None, reference_labels: dict[str, str] | None = None,
                      size: tuple[float, float] = (9.0, 3.4)) -> Figure:
    """One panel per measure (`panels`: {key: (title, y label)}) against toxic fraction: the mean over seeds
    with a 95 % t interval when there are several seeds, every seed as a dot in its fraction's colour; with
    `group`, one line per value of that field (e.g. the design), its dots in the line's colour. `references`:
    {key: value} drawn as a dashed line in that panel, labelled by `reference_labels`."""
    from scipy import stats

    fig, axes = _figure(len(panels), size)
    groups = sorted({r[group] for r in rows}, key=str) if group else [None]
    palette = ["0.25"] if group is None else sns.color_palette("deep", len(groups))
    dots = fraction_colors({r["toxic_fraction"] for r in rows})
    for ax, (key, (title, ylabel)) in zip(axes, panels.items()):
        for color, g in zip(palette, groups):
            sel = [r for r in rows if group is None or r[group] == g]
            fractions = sorted({r["toxic_fraction"] for r in sel})
            means, errs = [], []
            for f in fractions:
                values = np.array([r[key] for r in sel if r["toxic_fraction"] == f])
                ax.scatter(np.full(len(values), 100 * f), values, s=14, color=dots[f] if group is None else color,
                           alpha=0.9 if group is None else 0.4, zorder=3)
                means.append(values.mean())
                errs.append(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                            if len(values) > 1 else 0.0)
            label = (("mean (95 % CI)" if any(errs) else "one seed") if group is None else str(g))
            ax.errorbar(100 * np.array(fractions), means, yerr=errs, marker="o", capsize=4, lw=1.5, color=color,
                        label=label)
        if references and key in references:
            ax.axhline(references[key], ls="--", color="0.4", lw=1, label=(reference_labels or {}).get(key))
        ax.set(xlabel="toxic fraction (%)", ylabel=ylabel, title=title)
        ax.legend(fontsize=8)
    return fig


def separability_illustration(seed: int = 0) -> Figure:
    """Synthetic activations, two concepts in 2-D: when the toxic direction is entangled with another
    concept (left), a shift against it also moves the other concept; when it has its own direction
    (right), the same shift changes toxicity alone."""
    rng = np.random.default_rng(seed)
    colors = sns.color_palette("rocket", 2)
    fig, axes = _figure(2, (8.0, 3.6))
    for ax, angle, title in zip(axes, (20, 90), ("entangled: directions 20° apart", "disentangled: 90° apart")):
        toxic_dir = np.array([1.0, 0.0])
        other_dir = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
        for tox in (0, 1):
            for other in (0, 1):
                centre = 2.0 * tox * toxic_dir + 2.0 * other * other_dir
                points = centre + 0.3 * rng.standard_normal((50, 2))
                ax.scatter(points[:, 0], points[:, 1], s=9, alpha=0.6, color=colors[tox],
                           marker="o" if other == 0 else "^",
                           label=f"{'toxic' if tox else 'non-toxic'}, group {'B' if other else 'A'}")
        for direction, style, name in ((toxic_dir, "-", "toxicity"), (other_dir, "--", "group")):
            ax.annotate("", xy=2.0 * direction, xytext=(0, 0),
                        arrowprops={"arrowstyle": "-|>", "lw": 2, "ls": style, "color": "0.15"})
            ax.text(*(2.15 * direction), name, fontsize=9, ha="left", va="center")
        ax.set(title=title, xticks=[], yticks=[], xlim=(-1, 3.6), ylim=(-1, 3.0))
    axes[1].legend(fontsize=7, loc="upper right", markerscale=1.5)
    return fig


def head_metric_distributions(per_model: dict[float, list[float]], metric: str,
                              baseline: float | None = None) -> Figure:
    """Every head's probe `metric` per toxic fraction (all seeds pooled): a box per fraction and the heads as
    dots; `baseline` (majority-class accuracy, or 0.5 for AUC) as a dashed line."""
    fig, (ax,) = _figure(1, (7.5, 3.6))
    fractions = sorted(per_model)
    colors = fraction_colors(fractions)
    positions = np.arange(len(fractions))
    ax.boxplot([per_model[f] for f in fractions], positions=positions, widths=0.5, showfliers=False,
               medianprops={"color": "0.2"})
    rng = np.random.default_rng(0)
    for i, f in enumerate(fractions):
        values = np.asarray(per_model[f])
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(values)), values, s=9, alpha=0.7, color=colors[f], zorder=3)
    if baseline is not None:
        ax.axhline(baseline, ls="--", lw=1, color="0.4", label="chance" if metric == "ROC-AUC" else "majority class")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xticks(positions, [f"{f:.0%}" for f in fractions])
    ax.set(xlabel="toxic fraction in pretraining", ylabel=f"head probe {metric}",
           title=f"Per-head probe {metric} on held-out ToxiGen statements")
    return fig


def _head_grid_axes(ax, fraction: float, n_layers: int, n_heads: int) -> None:
    """A layer x head grid's axes: every layer and head numbered, and no style grid through the cells."""
    ax.set(title=f"{fraction:.0%} toxic", xlabel="head", xticks=range(n_heads), yticks=range(n_layers))
    ax.tick_params(labelsize=7)
    ax.grid(False)


def head_heatmaps(grids: dict[float, np.ndarray], metric: str) -> Figure:
    """One layer x head heatmap of probe `metric` per toxic fraction, on a shared colour scale."""
    fractions = sorted(grids)
    fig = Figure(figsize=(2.1 * len(fractions) + 0.8, 2.6), layout="constrained")
    axes = fig.subplots(1, len(fractions), squeeze=False)[0]
    low = min(float(g.min()) for g in grids.values())
    high = max(float(g.max()) for g in grids.values())
    for ax, f in zip(axes, fractions):
        image = ax.imshow(grids[f], vmin=low, vmax=high, cmap="magma", aspect="auto")
        _head_grid_axes(ax, f, *grids[f].shape)
    axes[0].set_ylabel("layer")
    fig.colorbar(image, ax=list(axes), shrink=0.9, label=metric)
    return fig


def layer_curves(per_model: dict[float, list[list[float]]], metric: str, reference: float | None = None,
                 reference_label: str = "") -> Figure:
    """A per-layer value (residual-stream probe metric, or entanglement) against layer, one line per
    toxic fraction (mean over seeds)."""
    fig, (ax,) = _figure(1, (6.5, 3.4))
    colors = fraction_colors(per_model)
    for f in sorted(per_model):
        values = np.mean(np.asarray(per_model[f]), axis=0)
        ax.plot(np.arange(len(values)), values, marker="o", ms=4, color=colors[f], label=f"{f:.0%}")
    if reference is not None:
        ax.axhline(reference, ls="--", lw=1, color="0.4", label=reference_label)
    ax.set(xlabel="layer", ylabel=metric, xticks=range(len(values)))
    ax.legend(title="toxic", fontsize=8, ncols=2)
    return fig


def metric_vs_fraction(rows: list[dict], keys: dict[str, str], ylabel: str, reference: float | None = None,
                       reference_label: str = "", series: list[str] | None = None) -> Figure:
    """Model-level measures against toxic fraction: one line per key (mean over seeds), bootstrap intervals
    as error bars where rows carry `<key>_low` / `<key>_high` (the lines then set slightly apart along the
    axis, so that their bars do not hide each other). `series`: every key the chapter's figures of this kind
    use, in order, so that a key keeps its colour in a figure that leaves others out (default: `keys`)."""
    fig, (ax,) = _figure(1, (6.5, 3.4))
    series = list(series or keys)
    missing = [key for key in keys if key not in series]
    if missing:
        raise ValueError(f"metric_vs_fraction: keys {missing} are not among the series {series}")
    palette = [sns.color_palette("deep", len(series))[series.index(key)] for key in keys]
    fractions = sorted({r["toxic_fraction"] for r in rows})
    bars = any(f"{key}_low" in r for r in rows for key in keys)
    for i, (color, (key, label)) in enumerate(zip(palette, keys.items())):
        dodge = 0.4 * (i - (len(keys) - 1) / 2) if bars else 0.0  # percentage points
        means, lows, highs = [], [], []
        for f in fractions:
            sel = [r for r in rows if r["toxic_fraction"] == f]
            means.append(np.mean([r[key] for r in sel]))
            lows.append(np.mean([r.get(f"{key}_low", r[key]) for r in sel]))
            highs.append(np.mean([r.get(f"{key}_high", r[key]) for r in sel]))
        means, lows, highs = map(np.asarray, (means, lows, highs))
        ax.errorbar(100 * np.asarray(fractions) + dodge, means, yerr=[means - lows, highs - means], marker="o",
                    capsize=3, color=color, label=label)
    if reference is not None:
        ax.axhline(reference, ls="--", lw=1, color="0.4", label=reference_label)
    ax.set(xlabel="toxic fraction (%)", ylabel=ylabel)
    ax.legend(fontsize=8)
    return fig


def toy_entanglement(summary: list[dict], welch: float, random_reference: float) -> Figure:
    """Rare-chain and control features' entanglement against the rare chain's share (mean over seeds with a
    95 % t band), with the Welch bound and the random-direction reference."""
    fig, (ax,) = _figure(1, (6.8, 3.6))
    shares = np.array([r["share"] for r in summary])
    for key, label, color in (("rare", "rare chain's features", sns.color_palette("rocket", 3)[1]),
                              ("control", "control features", sns.color_palette("mako", 3)[1])):
        mean = np.array([r[key] for r in summary])
        low = np.array([r[f"{key}_ci"][0] for r in summary])
        high = np.array([r[f"{key}_ci"][1] for r in summary])
        ax.plot(shares, mean, marker="o", color=color, label=label)
        ax.fill_between(shares, low, high, color=color, alpha=0.2)
    ax.axhline(welch, ls=":", color="0.3", label="Welch bound (12 in 4-D)" if welch > 0.4 else "Welch bound")
    ax.axhline(random_reference, ls="--", color="0.5", label="random directions")
    ax.set_xscale("log")
    ax.set_xticks(shares, [f"{s:.2g}" for s in shares], minor=False)
    ax.minorticks_off()
    ax.set(xlabel="share of the rare chain in training", ylabel="entanglement (max |cos|)", ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    return fig


def toy_sensitivity(summaries: dict[str, list[dict]]) -> Figure:
    """Rare minus control entanglement (mean over seeds, 95 % t interval) against the rare share, one line
    per experimental condition."""
    fig, (ax,) = _figure(1, (7.2, 3.8))
    palette = sns.color_palette("deep", len(summaries))
    for offset, (color, (name, rows)) in enumerate(zip(palette, summaries.items())):
        shares = np.array([r["share"] for r in rows]) * (1 + 0.04 * (offset - len(summaries) / 2))
        diff = np.array([r["difference"] for r in rows])
        err = np.array([[r["difference"] - r["difference_ci"][0], r["difference_ci"][1] - r["difference"]]
                        for r in rows]).T
        ax.errorbar(shares, diff, yerr=err, marker="o", capsize=3, color=color, label=name, lw=1.2)
    ax.axhline(0, color="0.3", lw=1)
    ax.set_xscale("log")
    ticks = sorted({r["share"] for rows in summaries.values() for r in rows})
    ax.set_xticks(ticks, [f"{s:.2g}" for s in ticks], minor=False)
    ax.minorticks_off()
    ax.set(xlabel="share of the rare chain in training", ylabel="rare − control entanglement")
    ax.legend(fontsize=7, ncols=2)
    return fig


def chosen_heads(heads: dict[float, list[list[int]]], n_layers: int, n_heads: int) -> Figure:
    """Which heads ITI shifts, per toxic fraction: a layer x head grid per model, the chosen heads marked
    with their rank (1 = best probe)."""
    fractions = sorted(heads)
    fig = Figure(figsize=(1.6 * len(fractions) + 0.6, 2.4), layout="constrained")
    axes = fig.subplots(1, len(fractions), squeeze=False)[0]
    for ax, f in zip(axes, fractions):
        grid = np.zeros((n_layers, n_heads))
        for rank, (layer, head) in enumerate(heads[f], 1):
            grid[layer, head] = 1
            ax.text(head, layer, str(rank), ha="center", va="center", fontsize=7, color="white")
        ax.imshow(grid, cmap="Greys", vmin=0, vmax=1.4, aspect="auto")
        _head_grid_axes(ax, f, n_layers, n_heads)
    axes[0].set_ylabel("layer")
    return fig


#: Markers for a frontier's strengths, in order of mean alpha (the base model first).
STRENGTH_MARKERS = ("o", "v", "s", "D", "^", "P", "X", "*", "h", "<")


def toxicity_frontier(rows: list[dict], x: str = "ce_increase", y: str = "toxicity",
                      xlabel: str = "increase in clean cross-entropy (nats/token)",
                      ylabel: str = "ToxiGen toxicity (mean judge score)") -> Figure:
    """Toxicity against capability cost, one line per toxic fraction through its intervention strengths (mean
    over seeds); lower-left is better. Rows with a `strength` are grouped by it (a calibrated strength's alpha
    differs between seeds and models), others by alpha; each strength has its marker, the same on every line, and
    a legend of its own (so the points need no labels to crowd each other). Where rows carry `<y>_low` /
    `<y>_high` (a 95 % interval), each point gets an error bar: the mean of its seeds' bounds."""
    fig, (ax,) = _figure(1, (6.8, 4.0))
    fractions = sorted({r["toxic_fraction"] for r in rows})
    colors = fraction_colors(fractions)
    key = "strength" if rows and "strength" in rows[0] else "alpha"
    names = sorted({r[key] for r in rows}, key=lambda n: np.mean([r["alpha"] for r in rows if r[key] == n]))
    if len(names) > len(STRENGTH_MARKERS):
        raise ValueError(f"{len(names)} strengths, but markers for {len(STRENGTH_MARKERS)}: plot fewer at once")
    markers = dict(zip(names, STRENGTH_MARKERS))
    for f in fractions:
        groups = {}
        for r in rows:
            if r["toxic_fraction"] == f:
                groups.setdefault(r[key], []).append(r)
        points = sorted(({"name": name, **{v: float(np.mean([r[v] for r in g])) for v in ("alpha", x, y)}}
                         for name, g in groups.items()), key=lambda p: p["alpha"])
        ax.plot([p[x] for p in points], [p[y] for p in points], color=colors[f], lw=1.2)
        for p in points:
            ax.plot(p[x], p[y], marker=markers[p["name"]], ms=5, color=colors[f], linestyle="")
        _interval_bars(ax, list(groups.values()), x, y, colors[f])
    ax.set(xlabel=xlabel, ylabel=ylabel)
    by_fraction = [matplotlib.lines.Line2D([], [], color=colors[f], lw=2, label=f"{f:.0%}") for f in fractions]
    by_strength = [matplotlib.lines.Line2D([], [], color="grey", marker=markers[n], linestyle="", ms=5,
                                           label=n if key == "strength" else f"alpha {n:g}") for n in names]
    ax.add_artist(ax.legend(handles=by_fraction, title="toxic", fontsize=8, ncols=2, loc="upper right"))
    ax.legend(handles=by_strength, title="strength", fontsize=8, loc="upper center")
    return fig


def _interval_bars(ax, groups: list[list[dict]], x: str, y: str, color) -> None:
    """Vertical 95 % interval bars at each group's mean (x, y) where its rows carry `<y>_low` / `<y>_high`
    (the mean of the rows' bounds: the seeds' intervals averaged)."""
    bars = []
    for g in groups:
        low = np.mean([r.get(f"{y}_low", np.nan) for r in g])
        high = np.mean([r.get(f"{y}_high", np.nan) for r in g])
        if np.isfinite(low) and np.isfinite(high):
            bars.append((np.mean([r[x] for r in g]), np.mean([r[y] for r in g]), low, high))
    if bars:
        xs, ys, lows, highs = map(np.asarray, zip(*bars))
        ax.errorbar(xs, ys, yerr=[ys - lows, highs - ys], fmt="none", ecolor=color, elinewidth=0.8, capsize=2,
                    alpha=0.45)


def codesign_frontier(lines: list[dict], points: list[dict], x: str = "ce_clean", y: str = "toxicity",
                      xlabel: str = "held-out clean cross-entropy (nats/token)",
                      ylabel: str = "ToxiGen toxicity (x 100)") -> Figure:
    """The whole pipeline on one plane: pretraining data (colour) x post-training method. `lines`: points of
    intervention sweeps with toxic_fraction, method ('ITI', 'LEACE', ...) and an `order` to join them by;
    `points`: single points (baselines) with toxic_fraction and method. Each treatment (rows of one `name`,
    or of one `order` where rows have no name) is its mean over seeds, joined in the order of its mean `order`
    (a calibrated strength's alpha differs from seed to seed); lower-left is better. Where rows carry
    `<y>_low` / `<y>_high`, each point has its 95 % interval as a bar."""
    fig, (ax,) = _figure(1, (7.4, 4.6))
    fractions = sorted({r["toxic_fraction"] for r in lines + points})
    colors = fraction_colors(fractions)
    styles = {"ITI": "-", "LEACE": ":"}
    for (f, method) in sorted({(r["toxic_fraction"], r["method"]) for r in lines}):
        treatments: dict = {}
        for r in lines:
            if r["toxic_fraction"] == f and r["method"] == method:
                treatments.setdefault(r.get("name", r["order"]), []).append(r)
        sel = sorted(treatments.values(), key=lambda g: np.mean([r["order"] for r in g]))
        ax.plot([np.mean([r[x] for r in g]) for g in sel], [np.mean([r[y] for r in g]) for g in sel],
                linestyle=styles.get(method, "--"), marker="o" if method == "ITI" else "s", ms=3, color=colors[f],
                alpha=0.9)
        _interval_bars(ax, sel, x, y, colors[f])
    markers = dict(zip(sorted({r["method"] for r in points}), "^vDPX*hd<>"))
    for (f, method) in sorted({(r["toxic_fraction"], r["method"]) for r in points}):
        sel = [r for r in points if r["toxic_fraction"] == f and r["method"] == method]
        ax.scatter(np.mean([r[x] for r in sel]), np.mean([r[y] for r in sel]), marker=markers[method], s=42,
                   color=colors[f], edgecolor="black", linewidth=0.5, zorder=3)
        _interval_bars(ax, [sel], x, y, colors[f])
    handles = [matplotlib.lines.Line2D([], [], color=colors[f], lw=2, label=f"{f:.0%} toxic") for f in fractions]
    handles += [matplotlib.lines.Line2D([], [], color="grey", linestyle=ls, marker="o" if m == "ITI" else "s", ms=3,
                                        label=f"{m} sweep") for m, ls in styles.items()
                if any(r["method"] == m for r in lines)]
    handles += [matplotlib.lines.Line2D([], [], color="grey", marker=mk, linestyle="", markeredgecolor="black",
                                        label=m) for m, mk in markers.items()]
    ax.legend(handles=handles, fontsize=7, ncols=2, loc="upper right")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    return fig


def snapshot_curves(rows: list[dict], key: str, ylabel: str) -> Figure:
    """A probe measure against tokens seen during training, one line per toxic fraction (mean over seeds,
    each seed's value as a dot)."""
    fig, (ax,) = _figure(1, (6.4, 3.6))
    if not rows:
        ax.text(0.5, 0.5, "no model at this level kept training snapshots", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    fractions = sorted({r["toxic_fraction"] for r in rows})
    colors = fraction_colors(fractions)
    for f in fractions:
        sel = [r for r in rows if r["toxic_fraction"] == f]
        ax.scatter([r["share"] for r in sel], [r[key] for r in sel], s=8, color=colors[f], alpha=0.5)
        shares = sorted({r["share"] for r in sel})
        ax.plot(shares, [np.mean([r[key] for r in sel if r["share"] == s]) for s in shares], marker="o", ms=4,
                color=colors[f], label=f"{f:.0%}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="share of the training run done", ylabel=ylabel)
    ax.legend(title="toxic", fontsize=8)
    return fig


def sweep_lines(rows: list[dict], x: str, ys: dict[str, str], group: str, xlabel: str, log_x: bool = False) -> Figure:
    """One panel per measure in `ys` ({key: label}) against `x`, one line per value of `group`; a measure
    whose rows carry `<key>_low` / `<key>_high` gets its 95 % intervals as bars."""
    fig, axes = _figure(len(ys), (3.4 * len(ys), 3.2))
    groups = sorted({r[group] for r in rows}, key=str)
    palette = sns.color_palette("deep", len(groups))
    for ax, (key, label) in zip(axes, ys.items()):
        for color, g in zip(palette, groups):
            sel = sorted((r for r in rows if r[group] == g), key=lambda r: r[x])
            ax.plot([r[x] for r in sel], [r[key] for r in sel], marker="o", ms=4, color=color, label=str(g))
            _interval_bars(ax, [[r] for r in sel], x, key, color)
        ax.set(xlabel=xlabel, ylabel=label)
        if log_x:
            ax.set_xscale("log", base=2)
            _ticks_at(ax, sorted({r[x] for r in rows}))
    axes[0].legend(fontsize=8)
    return fig


def _ticks_at(ax, values: list[float]) -> None:
    """Ticks at the measured values of a log axis, labelled as numbers (2e-3, 800k, 16), not as powers of 2."""
    def label(v: float) -> str:
        if v >= 1e6:
            return f"{v / 1e6:g}M"
        if v >= 1e4:
            return f"{v / 1e3:g}k"
        return f"{v:g}"
    ax.set_xticks(values, [label(v) for v in values])
    ax.minorticks_off()


def judge_colors(names) -> dict[str, tuple]:
    """One colour per judge name, the same in every figure (assigned in sorted order)."""
    names = sorted(set(names))
    return dict(zip(names, sns.color_palette("deep", len(names))))


def reliability_diagram(curves: dict[str, dict[str, list[dict]]], sets: list[str] | None = None) -> Figure:
    """Reliability diagram, one panel per evaluation set (in the order of `sets`, default: as found) and
    one line per judge: the share of toxic texts against the mean score in each score bin (marker area grows
    with the bin's count); the diagonal is perfect calibration.

    curves: {judge: {set name: [{"mean_score", "toxic_share", "count"}, ...]}} (toxlab.judges.judge_card).
    """
    sets = sets or list(dict.fromkeys(s for per_judge in curves.values() for s in per_judge))
    fig, axes = _figure(len(sets), (4.2 * len(sets) + 0.6, 3.8))
    palette = judge_colors(curves)
    for ax, set_name in zip(axes, sets):
        ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.5", label="perfect calibration")
        for judge, per_set in curves.items():
            rows = per_set.get(set_name, [])
            if not rows:
                continue
            counts = np.array([r["count"] for r in rows], dtype=float)
            x = [r["mean_score"] for r in rows]
            y = [r["toxic_share"] for r in rows]
            ax.plot(x, y, lw=1.2, color=palette[judge], label=judge)
            ax.scatter(x, y, s=12 + 120 * counts / counts.max(), color=palette[judge], alpha=0.8, zorder=3)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean judge score in bin", ylabel="share toxic in bin",
               title=set_name)
    axes[0].legend(fontsize=8, loc="upper left")
    return fig


def failure_mode_bars(rows: list[dict], value: str = "flagged") -> Figure:
    """Share of texts flagged toxic (score >= 0.5) per failure-mode probe, one bar per judge.

    rows: [{"probe", "judge", "flagged", "mean_score"}, ...] (toxlab.judges.judge_card); missing values are skipped.
    """
    probes = list(dict.fromkeys(r["probe"] for r in rows))
    judges = list(dict.fromkeys(r["judge"] for r in rows))
    fig, (ax,) = _figure(1, (7.5, 0.55 * len(probes) + 1.0))
    colors = judge_colors(judges)
    height = 0.8 / max(len(judges), 1)
    for j, judge in enumerate(judges):
        color = colors[judge]
        values = {r["probe"]: r[value] for r in rows if r["judge"] == judge and r[value] is not None}
        positions = [i + (j - (len(judges) - 1) / 2) * height for i, p in enumerate(probes) if p in values]
        ax.barh(positions, [values[p] for p in probes if p in values], height=height * 0.95, color=color,
                label=judge)
    ax.set_yticks(range(len(probes)), probes)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share scored ≥ 0.5" if value == "flagged" else "mean score")
    ax.legend(fontsize=8, loc="lower right")
    return fig
