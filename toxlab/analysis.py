"""Small statistics the chapters report: linear trends with confidence intervals, and how to phrase them."""

from __future__ import annotations

import numpy as np


def linear_trend(x, y, confidence: float = 0.95) -> dict:
    """Least-squares slope of y on x with a t confidence interval and the two-sided p-value of slope = 0.

    Needs at least three points; with fewer, the interval is undefined (NaN)."""
    from scipy import stats
    x, y = np.asarray(x, float), np.asarray(y, float)
    fit = stats.linregress(x, y)
    dof = len(x) - 2
    half = stats.t.ppf(0.5 + confidence / 2, dof) * fit.stderr if dof > 0 else float("nan")
    return {"slope": float(fit.slope), "intercept": float(fit.intercept), "ci_low": float(fit.slope - half),
            "ci_high": float(fit.slope + half), "p_value": float(fit.pvalue), "n": int(len(x))}


def relative_change(trend: dict, x_range: float) -> float:
    """The fitted change over `x_range` as a fraction of the intercept (e.g. 0.01 = 1 % higher)."""
    return trend["slope"] * x_range / trend["intercept"]


def flatness_verdict(trend: dict, x_range: float, tolerance: float = 0.02) -> str:
    """'flat' when the fitted change over the range is within `tolerance` of the intercept, else the
    direction; 'not significant' is added when the slope's interval includes zero."""
    change = relative_change(trend, x_range)
    if abs(change) <= tolerance:
        word = "flat"
    else:
        word = "rising" if change > 0 else "falling"
    if not trend["ci_low"] <= 0 <= trend["ci_high"]:
        return f"{word} (slope significantly different from zero)"
    return f"{word} (slope not significantly different from zero)"
