"""Chapter 7's verdict table: each main claim of the paper in one line, our measurement with its 95 %
interval, and whether it held, partly held or did not hold at our scale, with the reason where we know it.

Every function takes rows the chapters already compute (sweep runs, probe points, frontier rows, Table 1
rows) and returns one `Verdict`, so the same numbers reach the book and the README. The rules are fixed
here, before any result is read:

- a trend claim *held* when the least-squares slope's 95 % interval lies on the claimed side of zero,
  *partly held* when the slope points the claimed way but its interval includes zero, and *did not hold*
  otherwise;
- a comparison claim *held* when the claimed side is lower and the two 95 % intervals are disjoint,
  *partly held* when it is lower but the intervals overlap, and *did not hold* otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from toxlab import analysis

HELD, PARTLY, NOT_HELD = "held", "partly held", "did not hold"


@dataclass(frozen=True)
class Verdict:
    claim: str  # the paper's claim, in one line
    paper: str  # what the paper reports
    ours: str  # our measurement, with its interval
    verdict: str  # HELD, PARTLY or NOT_HELD
    reason: str  # why, where we know it

    def row(self) -> dict:
        return asdict(self)


def trend_verdict(trend: dict, rising: bool = True) -> str:
    """HELD / PARTLY / NOT_HELD for "the slope is positive" (or negative when `rising` is False)."""
    sign = 1 if rising else -1
    low, high = sorted((sign * trend["ci_low"], sign * trend["ci_high"]))
    if low > 0:
        return HELD
    return PARTLY if sign * trend["slope"] > 0 else NOT_HELD


def comparison_verdict(ours: tuple[float, float, float], theirs: tuple[float, float, float]) -> str:
    """HELD / PARTLY / NOT_HELD for "ours is lower"; each side is (value, ci_low, ci_high)."""
    if ours[0] >= theirs[0]:
        return NOT_HELD
    return HELD if ours[2] < theirs[1] else PARTLY


def _slope_text(trend: dict, per: float, unit: str = "") -> str:
    unit = f" {unit}" if unit else ""
    return (f"{trend['slope'] * per:+.3g}{unit} per {per:.0%} toxic data (95 % CI {trend['ci_low'] * per:+.3g} to "
            f"{trend['ci_high'] * per:+.3g}; {trend['n']} models)")


def capability_claim(runs: list[dict], tolerance: float = 0.02) -> Verdict:
    """Figure 4: adding toxic data leaves general capability about flat. runs: the sweep's models
    (toxic_fraction, val_loss). Held when the fitted change of held-out clean cross-entropy from the clean to
    the most toxic mixture is within `tolerance` of its level, or an improvement."""
    x = [r["toxic_fraction"] for r in runs]
    trend = analysis.linear_trend(x, [r["val_loss"] for r in runs])
    span = max(x) - min(x)
    change = analysis.relative_change(trend, span)
    verdict = HELD if change <= tolerance else PARTLY if trend["ci_low"] <= 0 else NOT_HELD
    reason = ("toxic tokens are added on top of a fixed clean set, so the more toxic models also train longer"
              if change < 0 else "")
    return Verdict("Toxic pretraining data costs little general capability",
                   "MMLU about flat from 0 to 25 % toxic (Fig. 4)",
                   f"held-out clean CE {_slope_text(trend, 0.1, 'nats')}; {change:+.1%} over the range",
                   verdict, reason)


def base_toxicity_claim(points: list[dict]) -> Verdict:
    """Figure 6: the models' own toxicity rises with the toxic share. points: (toxic_fraction, toxicity) of
    every model without intervention (ToxiGen, x 100)."""
    trend = analysis.linear_trend([p["toxic_fraction"] for p in points], [p["toxicity"] for p in points])
    return Verdict("Base toxicity rises with the toxic share", "31-46 (Perspective x 100) across the six models",
                   f"ToxiGen toxicity x 100 {_slope_text(trend, 0.1, 'points')}", trend_verdict(trend), "")


def separability_claim(points: list[dict]) -> Verdict:
    """Figure 5: toxic data makes toxicity more linearly separable in the heads. points: (toxic_fraction,
    auc) of the mean head probe ROC-AUC of every model."""
    trend = analysis.linear_trend([p["toxic_fraction"] for p in points], [p["auc"] for p in points])
    verdict = trend_verdict(trend)
    reason = "" if verdict == HELD else ("the effect is small against the differences between seeds at this scale"
                                         if trend["slope"] > 0 else "")
    return Verdict("Toxic data makes toxicity more linearly separable in the heads",
                   "higher head probe accuracies, p = 0.0002 (secondary)",
                   f"mean head probe AUC {_slope_text(trend, 0.1)}", verdict, reason)


def removal_claim(at_budget: dict[float, tuple[float, float]], budget: float) -> Verdict:
    """Section 5: ITI removes more of a toxic-trained model's toxicity for the same capability cost.
    at_budget: `toxlab.evaluate.toxicity_at_budget` (fraction -> (toxicity, share removed))."""
    fractions = sorted(at_budget)
    trend = analysis.linear_trend(fractions, [at_budget[f][1] for f in fractions])
    shares = ", ".join(f"{f:.0%}: {at_budget[f][1]:.0%}" for f in fractions)
    return Verdict("ITI removes more toxicity from toxic-trained models at the same capability cost",
                   "toxicity after ITI lowest near 10 % (Fig. 6)",
                   f"share removed within {budget:g} nats: {shares}; slope {_slope_text(trend, 0.1)}",
                   trend_verdict(trend), "")


def headline_claim(weak10: tuple[float, float, float], strong0: tuple[float, float, float],
                   strong0_cost: float, budget: float) -> Verdict:
    """Table 1's headline: 10 % toxic + weak ITI is less toxic than clean + strong ITI. Each side is
    (ToxiGen x 100, ci_low, ci_high); strong0_cost: the clean model's CE increase under strong ITI."""
    verdict = comparison_verdict(weak10, strong0)
    reason = (f"strong ITI costs the clean model {strong0_cost:+.2f} nats of clean CE (over the {budget:g}-nat "
              "budget): it is no longer the same model" if strong0_cost > budget else "")
    return Verdict("10 % toxic + weak ITI is less toxic than clean + strong ITI", "16.25 vs 19.82 (Table 1)",
                   f"{weak10[0]:.2f} ({weak10[1]:.1f}-{weak10[2]:.1f}) vs {strong0[0]:.2f} "
                   f"({strong0[1]:.1f}-{strong0[2]:.1f})", verdict, reason)


def trade_off_claim(ours: dict, rivals: list[dict], budget: float, ours_base: float | None = None) -> Verdict:
    """The comparative claim: toxic pretraining + ITI gives a better toxicity/capability trade-off than the
    baselines. ours and rivals: points with name, toxicity, toxicity_low, toxicity_high, ce_increase and
    toxic_fraction; only points within `budget` nats count (the best of each side is compared). ours_base:
    the untreated toxic-trained model's toxicity, to say why when a clean-model point wins."""
    ok = [r for r in rivals if r["ce_increase"] <= budget]
    best = min(ok, key=lambda r: r["toxicity"])
    verdict = comparison_verdict((ours["toxicity"], ours["toxicity_low"], ours["toxicity_high"]),
                                 (best["toxicity"], best["toxicity_low"], best["toxicity_high"]))
    reason = ""
    if verdict != HELD and best.get("toxic_fraction") == 0.0 and ours_base is not None:
        reason = (f"the clean model starts less toxic ({best['toxicity']:.1f} at best) than the toxic-trained "
                  f"one ({ours_base:.1f} untreated), and ITI within the budget does not close the gap")
    return Verdict("Toxic pretraining + ITI beats the usual detoxification methods on the trade-off",
                   "better than prompting, SFT, DPO, MEDA, INST (Table 1)",
                   f"{ours['name']}: {ours['toxicity']:.2f} ({ours['toxicity_low']:.1f}-{ours['toxicity_high']:.1f}) "
                   f"vs best other within {budget:g} nats, {best['name']}: {best['toxicity']:.2f} "
                   f"({best['toxicity_low']:.1f}-{best['toxicity_high']:.1f})", verdict, reason)


def best_within(points: list[dict], budget: float) -> dict:
    """The least toxic point whose capability cost is at most `budget` (an untreated model costs 0)."""
    return min((p for p in points if p["ce_increase"] <= budget), key=lambda p: p["toxicity"])


def regime(base: list[dict], floor: float, strong_cost: dict[float, float], budget: float) -> dict:
    """The regime question, in numbers: per toxic fraction, the models' base toxicity (x 100, mean over
    seeds) against the judge's score for text with no toxic content that a small model writes (`floor`, x 100:
    its mean on word salad), and whether strong ITI fits the capability budget. The headline comparison is
    testable only where the clean model's toxicity stands clear of the floor (at least 1.5 times it) and strong
    ITI leaves it the same model (costs at most `budget`)."""
    fractions = sorted({p["toxic_fraction"] for p in base})
    rows = []
    for f in fractions:
        tox = float(np.mean([p["toxicity"] for p in base if p["toxic_fraction"] == f]))
        cost = strong_cost.get(f, float("nan"))
        rows.append({"toxic_fraction": f, "toxicity": tox, "above_floor": tox - floor, "strong_cost": cost,
                     "strong_within_budget": bool(cost <= budget)})
    clear = [r["toxic_fraction"] for r in rows if r["above_floor"] > 0.5 * floor]
    return {"floor": floor, "budget": budget, "rows": rows, "first_clear_fraction": min(clear) if clear else None,
            "clean_testable": bool(rows[0]["above_floor"] > 0.5 * floor and rows[0]["strong_within_budget"])}


def regime_answer(regime_: dict) -> str:
    """One sentence on whether the clean model is in the regime where the headline can be tested."""
    clean = regime_["rows"][0]
    if regime_["clean_testable"]:
        return "The clean model is in the regime where the headline can be tested."
    reasons = []
    if clean["above_floor"] <= 0.5 * regime_["floor"]:
        reasons.append("its toxicity is near the judge's floor")
    if not clean["strong_within_budget"]:
        reasons.append("strong ITI costs it more than the budget")
    return ("At our scale the clean model is outside that regime, so the headline comparison cannot come out as "
            "the paper's did for the paper's reason: " + " and ".join(reasons) + ".")
