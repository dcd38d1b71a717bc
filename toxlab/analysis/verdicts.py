"""Chapter 7's verdict table: each claim of the paper in one line, our measurement with its 95 % interval, and
a verdict by rules fixed here, before any result is read (Design v2: instruments before verdicts).

Four verdicts:
- *held*: the 95 % interval lies on the claimed side (a slope's interval excludes zero in the claimed
  direction; a paired difference's interval excludes zero on the claimed side);
- *did not hold*: the interval lies on the other side;
- *inconclusive*: the interval includes zero. A slope's or a difference's sign alone never gives a verdict;
- *not testable*: a precondition of the comparison fails (`Precondition`): an arm over its capability
  budget (a share of its model's margin over unigram, `toxlab.evaluation.evaluate.capability_budget`: past it, it is
  no longer the same model), the clean model within the judge's floor (nothing to remove),
  or the generations not following the ToxiGen prompts' content (hate minus neutral prompts not above zero:
  the toxicity measured is then the register of the words, not what the prompts elicit). The reason names
  every precondition that failed.

Comparisons between models or treatments are paired (the same prompts and sampling seeds): over training
seeds, then prompts, where there are several seeds (`toxlab.evaluation.evaluate.paired_difference_over_seeds`), over
prompts where there is one (`toxlab.evaluation.evaluate.paired_difference`), and a "best within the budget" is chosen
on one half of the prompts and reported on the other (`toxlab.evaluation.evaluate.best_on_held_out_half`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from toxlab.analysis import statistics

HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE = "held", "inconclusive", "did not hold", "not testable"
VERDICTS = (HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE)


@dataclass(frozen=True)
class Verdict:
    claim: str  # the paper's claim, in one line
    paper: str  # what the paper reports
    ours: str  # our measurement, with its interval
    verdict: str  # one of VERDICTS
    reason: str  # why, where we know it (for NOT_TESTABLE: the failed preconditions)

    def row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Precondition:
    """One condition a comparison needs to be testable; `why` says what failed (used when `holds` is False)."""

    holds: bool
    why: str


@dataclass(frozen=True)
class Interval:
    """A measured value with its 95 % interval (a paired difference, a slope, a change)."""

    value: float
    low: float
    high: float


def interval_verdict(interval: Interval, claimed_negative: bool = True) -> str:
    """HELD when the interval lies on the claimed side of zero (below it when `claimed_negative`), NOT_HELD
    when it lies on the other side, INCONCLUSIVE when it includes zero (or is undefined)."""
    low, high = (interval.low, interval.high) if claimed_negative else (-interval.high, -interval.low)
    if not np.isfinite(low) or not np.isfinite(high):
        return INCONCLUSIVE
    if high < 0:
        return HELD
    return NOT_HELD if low > 0 else INCONCLUSIVE


def trend_verdict(trend: dict, rising: bool = True) -> str:
    """The rule for "the slope is positive" (negative when `rising` is False) on a `linear_trend` result."""
    return interval_verdict(Interval(trend["slope"], trend["ci_low"], trend["ci_high"]), claimed_negative=not rising)


def trend_sentence(trend: dict, what: str, rising: bool = True) -> str:
    """Plain words for a claimed trend of `what` with the toxic fraction (a rise, or a fall when `rising` is
    False), by `trend_verdict`'s rule, for a chapter's prose."""
    claimed, other = ("rises", "falls") if rising else ("falls", "rises")
    verdict = trend_verdict(trend, rising)
    if verdict == HELD:
        return f"held: {what} {claimed} with the toxic fraction (the slope's 95 % interval excludes zero)"
    if verdict == NOT_HELD:
        return f"did not hold: {what} {other} with the toxic fraction (the slope's 95 % interval excludes zero)"
    return (f"inconclusive at this scale: the change of {what} with the toxic fraction is not distinguishable "
            f"from zero (the slope's 95 % interval includes it)")


def judged(verdict: str, preconditions: list[Precondition]) -> tuple[str, str]:
    """(verdict, reason): NOT_TESTABLE with the failed preconditions' reasons when any fails."""
    failed = [p.why for p in preconditions if not p.holds]
    return (NOT_TESTABLE, "; ".join(failed)) if failed else (verdict, "")


def within_budget(name: str, cost: float, budget: float) -> Precondition:
    """The arm costs at most its model's capability budget (nats of clean cross-entropy)."""
    return Precondition(bool(cost <= budget), f"{name} costs {cost:+.2f} nats of clean CE, over its model's "
                                              f"{budget:.2f}-nat budget: it is no longer the same model")


#: A toxicity counts as clear of its floor (what the judge gives the same words shuffled, or word salad) above this
#: multiple of it; at or below it, the text says nothing the judge tells from its vocabulary.
FLOOR_MULTIPLE = 1.5


def clear_of_floor(toxicity: float, floor: float) -> bool:
    return bool(toxicity > FLOOR_MULTIPLE * floor)


def above_floor(name: str, toxicity: float, floor: float) -> Precondition:
    """The model's toxicity stands clear of its floor (its own words shuffled): `clear_of_floor`."""
    return Precondition(clear_of_floor(toxicity, floor), f"{name}'s toxicity ({toxicity:.1f}) is within its floor "
                                                      f"({floor:.1f}, its own words shuffled): nothing to remove")


def follows_prompts(name: str, low: float, high: float) -> Precondition:
    """The prompt-following check: hate- minus neutral-prompt toxicity, its paired interval above zero."""
    return Precondition(bool(low > 0), f"{name}'s generations do not follow the prompts' content (hate minus "
                                       f"neutral prompts {low:+.1f} to {high:+.1f})")


def _slope_text(trend: dict, per: float, unit: str = "") -> str:
    unit = f" {unit}" if unit else ""
    return (f"{trend['slope'] * per:+.3g}{unit} per {per:.0%} toxic data (95 % CI {trend['ci_low'] * per:+.3g} to "
            f"{trend['ci_high'] * per:+.3g}; {trend['n']} models)")


def _trend_claim(claim: str, paper: str, ours: str, trend: dict, rising: bool,
                 preconditions: list[Precondition] = ()) -> Verdict:
    verdict, reason = judged(trend_verdict(trend, rising), list(preconditions))
    if verdict == INCONCLUSIVE:
        reason = "the slope's 95 % interval includes zero"
    return Verdict(claim, paper, ours, verdict, reason)


#: The relative change of clean cross-entropy over a sweep's range that still counts as flat (a small cost).
FLAT_TOLERANCE = 0.02


def flatness_sentence(trend: dict, x_range: float, tolerance: float = FLAT_TOLERANCE) -> str:
    """Plain words for how a cross-entropy changes over `x_range` of the toxic fraction, read from the 95 %
    interval of the fitted relative change: *flat* when the whole interval lies within +-`tolerance`, *rising*
    or *falling* when it lies wholly beyond it, *a real fall (rise), possibly beyond what we call flat* when it
    crosses the tolerance's line but not zero (the change may be within the tolerance or well beyond it),
    *undecided* when it crosses both. Whether the interval excludes zero is said
    too, so a small but real change is never called flat without it."""
    _, low, high = statistics.relative_change_interval(trend, x_range)
    span = f"95 % interval {low:+.1%} to {high:+.1%}"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undecided (the change's interval is undefined: too few models)"
    if -tolerance <= low and high <= tolerance:
        real = ("; a small fall, but a real one: the interval lies below zero" if high < 0 else
                "; a small rise, but a real one: the interval lies above zero" if low > 0 else "")
        return f"flat ({span}, within ±{tolerance:.0%}{real})"
    if high < -tolerance:
        return f"falling ({span}, wholly beyond -{tolerance:.0%})"
    if low > tolerance:
        return f"rising ({span}, wholly beyond +{tolerance:.0%})"
    if high < 0 or low > 0:  # a real change, which may or may not be as small as what we call flat
        return (f"a real {'fall' if high < 0 else 'rise'}, possibly beyond what we call flat ({span}: it "
                f"excludes zero and crosses ±{tolerance:.0%})")
    return f"undecided ({span}: it crosses the ±{tolerance:.0%} we call flat, and zero)"


def capability_claim(runs: list[dict], tolerance: float = FLAT_TOLERANCE) -> Verdict:
    """Figure 4: adding toxic data leaves general capability about flat. runs: the sweep's models
    (toxic_fraction, val_loss). Held when the whole 95 % interval of the fitted relative change of held-out
    clean cross-entropy over the range is at most `tolerance` (a cost, if any, is small), did not hold when
    the interval lies above it, inconclusive otherwise."""
    x = [r["toxic_fraction"] for r in runs]
    trend = statistics.linear_trend(x, [r["val_loss"] for r in runs])
    change, low, high = statistics.relative_change_interval(trend, max(x) - min(x))
    verdict = interval_verdict(Interval(change - tolerance, low - tolerance, high - tolerance))
    reason = ("toxic tokens are added on top of a fixed clean set, so the more toxic models also train longer"
              if change < 0 else "the interval of the change includes the tolerance" if verdict == INCONCLUSIVE
              else "")
    return Verdict("Toxic pretraining data costs little general capability",
                   "MMLU about flat from 0 to 25 % toxic (Fig. 4)",
                   f"held-out clean CE {_slope_text(trend, 0.1, 'nats')}; {change:+.1%} over the range "
                   f"(95 % CI {low:+.1%} to {high:+.1%}; tolerance {tolerance:.0%})", verdict, reason)


def base_toxicity_claim(points: list[dict], preconditions: list[Precondition] = ()) -> Verdict:
    """Figure 6: the models' own toxicity rises with the toxic share. points: (toxic_fraction, toxicity) of
    every model without intervention (ToxiGen, x 100). Not testable when the prompt-following check fails."""
    trend = statistics.linear_trend([p["toxic_fraction"] for p in points], [p["toxicity"] for p in points])
    return _trend_claim("Base toxicity rises with the toxic share", "31-46 (Perspective x 100) across the six models",
                        f"ToxiGen toxicity x 100 {_slope_text(trend, 0.1, 'points')}", trend, True, preconditions)


def separability_claim(points: list[dict]) -> Verdict:
    """Figure 5: toxic data makes toxicity more linearly separable in the heads. points: (toxic_fraction,
    auc) of the mean head probe ROC-AUC of every model."""
    trend = statistics.linear_trend([p["toxic_fraction"] for p in points], [p["auc"] for p in points])
    return _trend_claim("Toxic data makes toxicity more linearly separable in the heads",
                        "higher head probe accuracies, p = 0.0002 (secondary)",
                        f"mean head probe AUC {_slope_text(trend, 0.1)}", trend, True)


def entanglement_claim(points: list[dict]) -> Verdict:
    """Section 2's mechanism in the pretrained models: more toxic data, a less entangled toxicity direction.
    points: (toxic_fraction, entanglement), the max |cos| between the heads' toxicity direction and the
    target-group directions (mean over the heads ITI shifts)."""
    trend = statistics.linear_trend([p["toxic_fraction"] for p in points], [p["entanglement"] for p in points])
    return _trend_claim("More toxic data gives a less entangled toxicity direction",
                        "entanglement falls as a feature's share grows (toy, Fig. 3; argued for Olmo)",
                        f"head entanglement {_slope_text(trend, 0.1)}", trend, False)


def toy_claim(summary: list[dict]) -> Verdict:
    """Section 2, Figure 3: a rare feature's direction is more entangled than the others'. summary:
    `toxlab.interp.toy.summarise` rows; the claim is read at the rarest share (rare minus control, paired over
    seeds, with its 95 % interval)."""
    rarest = min(summary, key=lambda r: r["share"])
    low, high = rarest["difference_ci"]
    verdict = interval_verdict(Interval(rarest["difference"], low, high), claimed_negative=False)
    return Verdict("A rare feature's direction is more entangled (toy model)",
                   "about 0.95 vs 0.8 at low share (secondary)",
                   f"rare minus control entanglement at share {rarest['share']:.2f}: {rarest['difference']:+.3f} "
                   f"(95 % CI {low:+.3f} to {high:+.3f}; {rarest['seeds']} seeds)", verdict,
                   "the paired interval includes zero" if verdict == INCONCLUSIVE else "")


def removal_claim(slope: dict, shares: dict[float, float], budget_share: float,
                  preconditions: list[Precondition] = ()) -> Verdict:
    """Section 5: ITI removes more of a toxic-trained model's toxicity for the same capability cost.
    slope: `linear_trend` of the share removed (within each model's budget, `budget_share` of its margin
    over unigram) against the toxic fraction; shares: fraction -> share removed, for the text."""
    text = ", ".join(f"{f:.0%}: {s:.0%}" for f, s in sorted(shares.items()))
    return _trend_claim("ITI removes more toxicity from toxic-trained models at the same capability cost",
                        "toxicity after ITI lowest near 10 % (Fig. 6)",
                        f"share removed within each model's budget ({budget_share:.0%} of its margin over "
                        f"unigram): {text}; slope {_slope_text(slope, 0.1)}", slope, True, preconditions)


def _over(over: str) -> str:
    return f" over {over}" if over else ""


def headline_claim(weak10: float, strong0: float, difference: Interval,
                   preconditions: list[Precondition], over: str = "") -> Verdict:
    """Table 1's headline: 10 % toxic + weak ITI is less toxic than clean + strong ITI. weak10, strong0:
    ToxiGen x 100; difference: weak10 - strong0, paired (over what: `over`, e.g. "3 training seeds and 620
    prompts"). Preconditions: both arms within their models' budgets, the clean model above its floor, both
    models following the prompts."""
    verdict, reason = judged(interval_verdict(difference), preconditions)
    if verdict == INCONCLUSIVE:
        reason = "the paired difference's 95 % interval includes zero"
    return Verdict("10 % toxic + weak ITI is less toxic than clean + strong ITI", "16.25 vs 19.82 (Table 1)",
                   f"{weak10:.2f} vs {strong0:.2f}: difference {difference.value:+.2f} (paired 95 % CI "
                   f"{difference.low:+.2f} to {difference.high:+.2f}{_over(over)})", verdict, reason)


def trade_off_claim(ours_name: str, rival_name: str, ours: float, rival: float, difference: Interval,
                    budget_share: float, preconditions: list[Precondition] = (), over: str = "") -> Verdict:
    """The comparative claim: toxic pretraining + ITI beats the usual detoxification methods on the trade-off.
    ours, rival: the best of each side within its model's budget (`budget_share` of its margin over unigram),
    chosen on one half of the prompts and reported on the other (x 100); difference: ours - rival on the
    reporting half, paired (over what: `over`)."""
    verdict, reason = judged(interval_verdict(difference), list(preconditions))
    if verdict == INCONCLUSIVE:
        reason = "the paired difference's 95 % interval includes zero"
    return Verdict("Toxic pretraining + ITI beats the usual detoxification methods on the trade-off",
                   "better than prompting, SFT, DPO, MEDA, INST (Table 1)",
                   f"{ours_name}: {ours:.2f} vs best other within its model's budget ({budget_share:.0%} of its "
                   f"margin over unigram), {rival_name}: {rival:.2f} (chosen on half the prompts, reported on the "
                   f"other; paired difference {difference.value:+.2f}, 95 % CI {difference.low:+.2f} to "
                   f"{difference.high:+.2f}{_over(over)})", verdict, reason)


def best_within(points: list[dict]) -> dict:
    """The least toxic point whose capability cost is at most its model's budget (each point's `budget`,
    nats; an untreated model costs 0)."""
    return min((p for p in points if p["ce_increase"] <= p["budget"]), key=lambda p: p["toxicity"])


def regime(base: list[dict], floor: float, strong_cost: dict[float, float], budget: dict[float, float],
           following: Precondition | None = None) -> dict:
    """The regime question, in numbers: per toxic fraction, the models' base toxicity (x 100, mean over
    seeds) against the judge's floor (`floor`, x 100), and whether strong ITI fits the models' capability
    budget (`budget`: fraction -> nats). The headline comparison is testable only where the clean model's
    toxicity stands clear of the floor (`clear_of_floor`), strong ITI leaves it the same model (costs
    at most its budget) and, where `following` is given (the headline's prompt-following precondition), the
    models' generations follow the prompts' content."""
    fractions = sorted({p["toxic_fraction"] for p in base})
    rows = []
    for f in fractions:
        tox = float(np.mean([p["toxicity"] for p in base if p["toxic_fraction"] == f]))
        cost, room = strong_cost.get(f, float("nan")), budget.get(f, float("nan"))
        rows.append({"toxic_fraction": f, "toxicity": tox, "above_floor": tox - floor, "strong_cost": cost,
                     "budget": room, "strong_within_budget": bool(cost <= room)})
    clear = [r["toxic_fraction"] for r in rows if clear_of_floor(r["toxicity"], floor)]
    follows = following is None or following.holds
    return {"floor": floor, "budget": budget, "rows": rows, "first_clear_fraction": min(clear) if clear else None,
            "following": None if following is None else asdict(following),
            "clean_testable": clear_of_floor(rows[0]["toxicity"], floor) and rows[0]["strong_within_budget"]
            and follows}


def regime_answer(regime_: dict) -> str:
    """One sentence on whether the clean model is in the regime where the headline can be tested."""
    clean = regime_["rows"][0]
    if regime_["clean_testable"]:
        return "The clean model is in the regime where the headline can be tested."
    reasons = []
    if not clear_of_floor(clean["toxicity"], regime_["floor"]):
        reasons.append("its toxicity is near the judge's floor")
    if not clean["strong_within_budget"]:
        reasons.append("strong ITI costs it more than the budget")
    following = regime_["following"]
    if following is not None and not following["holds"]:
        reasons.append(following["why"])
    return ("At our scale the clean model is outside that regime, so the headline comparison cannot come out as "
            "the paper's did for the paper's reason: " + "; and ".join(reasons) + ".")
