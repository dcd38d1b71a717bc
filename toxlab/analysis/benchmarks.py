"""What chapters 5 to 7 read from the evaluation stages' results (`toxlab.evaluation.evaluate`): the frontier
of toxicity against capability cost per (model, intervention) (`frontier_row`, `frontier_points`,
`toxicity_at_budget`), the Table 1 analogue as typed rows (`BenchmarkRow`, `table_row`, `setting_rows`), the
sentences that state chapter 5's and chapter 6's findings from them (`intervention_verdict`,
`headline_difference`), and masked example generations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toxlab.analysis import statistics
from toxlab.analysis.verdicts import FLOOR_MULTIPLE, HELD, INCONCLUSIVE, clear_of_floor, trend_verdict
from toxlab.core.safety import mask_all
from toxlab.evaluation.evaluate import BUDGET_SHARE, paired_difference_over_seeds


def prompt_scores(samples: Path) -> np.ndarray:
    """Per-prompt mean judge score [P] from a benchmark's `samples.jsonl` (in prompt order)."""
    with open(samples, encoding="utf-8") as handle:
        return np.asarray([float(np.mean(json.loads(line)["scores"])) for line in handle])


def _strength_name(result: dict) -> str:
    return "base" if not result.get("alpha") else f"alpha {result['alpha']:g}"


def frontier_row(toxicity: dict, ce: dict, strength: str | None = None) -> dict:
    """One (model, intervention) point: ToxiGen toxicity against capability cost, from the `result.json`
    of a 'toxigen' and a 'ce' evaluation of the same model and intervention. strength: its name ('base',
    a calibrated 'weak' / 'mid' / 'strong', or by default 'alpha A' for a fixed alpha). Beside toxicity:
    its floor (the same generations with their words shuffled), the prompt-following difference (hate minus
    neutral prompts), the share of empty or one-token generations, and the shift's relative norm."""
    tox = toxicity["all"]
    nan = float("nan")
    following = toxicity.get("prompt_following") or {}
    degenerate = toxicity.get("degenerate") or {}
    return {"toxic_fraction": toxicity["toxic_fraction"], "seed": toxicity["seed"],
            "strength": strength or _strength_name(toxicity), "alpha": toxicity["alpha"],
            "k": toxicity["k"], "direction": toxicity["direction"], "shift_ratio": toxicity.get("shift_ratio") or 0.0,
            "toxicity": tox["mean_toxicity"], "toxicity_low": tox["mean_toxicity_ci"][0],
            "toxicity_high": tox["mean_toxicity_ci"][1], "toxic_share": tox["toxicity_probability"],
            "floor": toxicity.get("floor", {}).get("mean_toxicity", nan),
            "hate_toxicity": toxicity["by_kind"].get("hate", {}).get("mean_toxicity", nan),
            "neutral_toxicity": toxicity["by_kind"].get("neutral", {}).get("mean_toxicity", nan),
            "following": following.get("mean", nan), "following_low": following.get("low", nan),
            "following_high": following.get("high", nan),
            "degenerate_share": (degenerate["empty"] + degenerate["one_token"]) / max(degenerate["texts"], 1)
            if degenerate else nan,
            "ce_clean": ce["clean"]["ce"], "ce_increase": ce["clean"]["ce"] - ce["clean"]["ce_base"],
            "c4_increase": ce["c4"]["ce"] - ce["c4"]["ce_base"], "webtext_increase": _increase(ce, "webtext"),
            "kl": ce["clean"]["kl"]}


def _increase(ce: dict, name: str) -> float:
    # A capability set's cross-entropy rise; nan for results from before the set was measured.
    return ce[name]["ce"] - ce[name]["ce_base"] if name in ce else float("nan")


@dataclass(frozen=True)
class BenchmarkRow:
    """One row of the Table 1 analogue: a model (toxic fraction, seed) in one setting ('base', an ITI strength
    or a baseline), toxicity x 100 as the paper reports it, capability in nats per token. Beside each toxicity
    its floor (the model's own generations with their words shuffled), the prompt-following difference (hate
    minus neutral ToxiGen prompts, paired interval), the empty or one-token generations, and the dose: alpha, KL
    and the shift's norm relative to the heads' mean output norm. A value the result lacks (measured by a later
    version) is nan."""

    toxic_fraction: float
    seed: int
    setting: str
    alpha: float
    shift_ratio: float
    toxigen_toxicity: float
    toxigen_ci: tuple[float, float]
    toxigen_floor: float
    following: float
    following_ci: tuple[float, float]
    rtp_challenging_max: float
    rtp_challenging_prob: float
    rtp_nontoxic_max: float
    rtp_nontoxic_prob: float
    rtp_floor_max: float
    degenerate: int
    ce_clean: float
    ce_increase: float
    webtext_increase: float
    kl: float


def table_row(setting: str, toxigen: dict, rtp: dict, ce: dict) -> BenchmarkRow:
    """The Table 1 row of one model in one `setting`, from the `result.json` of its 'toxigen', 'rtp' and 'ce'
    evaluations."""
    nan = float("nan")
    tox, following = toxigen["all"], toxigen.get("prompt_following")
    challenging, nontoxic = rtp["by_kind"]["challenging"], rtp["by_kind"]["nontoxic"]
    counts = [r["degenerate"] for r in (toxigen, rtp) if "degenerate" in r]
    return BenchmarkRow(
        toxic_fraction=toxigen["toxic_fraction"], seed=toxigen["seed"], setting=setting, alpha=toxigen["alpha"],
        shift_ratio=toxigen.get("shift_ratio") or 0.0,
        toxigen_toxicity=100 * tox["mean_toxicity"], toxigen_ci=tuple(100 * v for v in tox["mean_toxicity_ci"]),
        toxigen_floor=100 * toxigen["floor"]["mean_toxicity"] if "floor" in toxigen else nan,
        following=100 * following["mean"] if following else nan,
        following_ci=(100 * following["low"], 100 * following["high"]) if following else (nan, nan),
        rtp_challenging_max=100 * challenging["expected_max_toxicity"],
        rtp_challenging_prob=100 * challenging["toxicity_probability"],
        rtp_nontoxic_max=100 * nontoxic["expected_max_toxicity"],
        rtp_nontoxic_prob=100 * nontoxic["toxicity_probability"],
        rtp_floor_max=100 * rtp["floor"]["expected_max_toxicity"] if "floor" in rtp else nan,
        degenerate=sum(c["empty"] + c["one_token"] for c in counts),
        ce_clean=ce["clean"]["ce"], ce_increase=ce["clean"]["ce"] - ce["clean"]["ce_base"],
        webtext_increase=_increase(ce, "webtext"), kl=ce["clean"]["kl"])


def example_generations(base_samples: Path, iti_samples: Path, n: int, kind: str = "hate",
                        show: bool | None = None) -> list[dict]:
    """The first `n` prompts of `kind` with their continuation before and after the intervention and the
    judge's scores, masked by toxlab.core.safety unless `show` (or TOXLAB_SHOW_TOXIC=1). Prompts are not shown."""

    def read(path):
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    pairs = [(b, a) for b, a in zip(read(base_samples), read(iti_samples)) if b["kind"] == kind][:n]
    before = mask_all([b["continuations"][0] for b, _ in pairs], show=show)
    after = mask_all([a["continuations"][0] for _, a in pairs], show=show)
    return [{"target group": b["group"], "before": text_b, "score before": b["scores"][0],
             "after ITI": text_a, "score after": a["scores"][0]}
            for (b, a), text_b, text_a in zip(pairs, before, after)]


def _by_fraction(rows: list[dict], strength: str, key: str) -> dict[float, float]:
    fractions = sorted({r["toxic_fraction"] for r in rows if r["strength"] == strength})
    return {f: float(np.mean([r[key] for r in rows if r["toxic_fraction"] == f and r["strength"] == strength]))
            for f in fractions}


def toxicity_at_budget(rows: list[dict]) -> dict[float, tuple[float, float]]:
    """Per toxic fraction: the lowest toxicity among its strengths whose clean cross-entropy rises by at
    most the model's budget (each row's `budget`, nats: `capability_budget`; the base always qualifies), and
    the relative reduction from the base it gives. Means over seeds. A frontier read at one capability cost,
    so that models are compared fairly."""
    out = {}
    for f in sorted({r["toxic_fraction"] for r in rows}):
        own = [r for r in rows if r["toxic_fraction"] == f]
        tox = _by_fraction(own, "base", "toxicity")[f]
        budget = _by_fraction(own, "base", "budget")[f]
        best = tox
        for strength in sorted({r["strength"] for r in own}):
            if _by_fraction(own, strength, "ce_increase")[f] <= budget:
                best = min(best, _by_fraction(own, strength, "toxicity")[f])
        out[f] = (best, 1 - best / tox if tox > 0 else float("nan"))
    return out


def intervention_verdict(rows: list[dict], strongest: str = "strong", share: float = BUDGET_SHARE) -> str:
    """Chapter 5's closing paragraph, computed from its frontier rows (with a 'base' strength and each
    model's `budget`, nats, `share` of its margin over unigram): does base toxicity rise with the toxic
    fraction, how much does the `strongest` strength remove and what does it cost, how much toxicity does
    each model shed within its budget, and is each base toxicity above its floor and do the generations
    follow the prompts?"""
    base = _by_fraction(rows, "base", "toxicity")
    floor = _by_fraction(rows, "base", "floor")
    after = _by_fraction(rows, strongest, "toxicity")
    cost = _by_fraction(rows, strongest, "ce_increase")
    fractions = sorted(after)

    def trend(values: dict[float, float]) -> str:  # the verdict table's rule, on the fractions' means
        if len(values) < 3:
            return "too few fractions for a trend"
        fit = statistics.linear_trend(list(values), list(values.values()))
        verdict = trend_verdict(fit)
        if verdict == INCONCLUSIVE:
            return (f"shows no trend with the toxic fraction distinguishable from zero (the slope's 95 % interval "
                    f"over the {len(values)} fractions' means includes it)")
        return (f"{'rises' if verdict == HELD else 'falls'} with the toxic fraction (the slope's 95 % interval over "
                f"the {len(values)} fractions' means excludes zero)")

    lines = [f"- Base toxicity (no intervention) {trend(base)}: "
             + ", ".join(f"{f:.0%}: {base[f]:.3f} (floor {floor[f]:.3f})" for f in fractions) + "."]
    within = [f for f in fractions if not clear_of_floor(base[f], floor[f])]
    if within:
        lines.append(f"- Within its floor (at most {FLOOR_MULTIPLE:g} times the score of its own words shuffled), "
                     "so saying nothing beyond its vocabulary: " + ", ".join(f"{f:.0%}" for f in within) + ".")
    following = [r for r in rows if r["strength"] == "base"]
    not_following = sorted({r["toxic_fraction"] for r in following if not r["following_low"] > 0})
    if not_following:
        lines.append("- The generations do not follow the prompts' content (hate minus neutral prompts not above "
                     "zero) for: " + ", ".join(f"{f:.0%}" for f in not_following) + "; their toxicity measures the "
                     "register of the words, and the comparisons that rest on it are not testable.")
    removed = {f: 1 - after[f] / base[f] if base[f] > 0 else float("nan") for f in fractions}
    lines.append(f"- The share of it removed by the {strongest} strength: "
                 + ", ".join(f"{f:.0%}: {removed[f]:.0%}" for f in fractions) + f"; this share {trend(removed)}.")
    lines.append(f"- The capability cost of the {strongest} strength (rise in clean cross-entropy, nats/token) "
                 f"{trend(cost)}: " + ", ".join(f"{f:.0%}: {cost[f]:+.3f}" for f in fractions) + ".")
    at_budget = toxicity_at_budget(rows)
    budget = _by_fraction(rows, "base", "budget")
    lines.append(f"- Within each model's capability budget ({share:.0%} of its margin over unigram: "
                 + ", ".join(f"{f:.0%}: {budget[f]:.2f}" for f in fractions) + " nats/token of extra clean "
                 "cross-entropy), the share of toxicity removed (best strength within the budget): "
                 + ", ".join(f"{f:.0%}: {at_budget[f][1]:.0%}" for f in fractions)
                 + f"; it {trend({f: v[1] for f, v in at_budget.items()})}.")
    return "\n".join(lines)


#: Table 1 values known for the paper (Perspective API x 100; secondary sources, see shared/PAPER.md). Our
#: judge is not Perspective, so only orderings, not levels, are comparable.
PAPER_TABLE1 = {(0.0, "strong"): {"ToxiGen": 19.82, "RTP": 13.33}, (0.1, "weak"): {"ToxiGen": 16.25},
                (0.1, "strong"): {"ToxiGen": 2.63}}


def setting_rows(rows: list[BenchmarkRow], measure: str) -> list[dict]:
    """Table rows -> one row per (toxic fraction, seed) with one column per setting's `measure` (a field of
    `BenchmarkRow`), for `plots.metric_vs_fraction`."""
    out: dict[tuple, dict] = {}
    for r in rows:
        out.setdefault((r.toxic_fraction, r.seed), {"toxic_fraction": r.toxic_fraction})[r.setting] = \
            getattr(r, measure)
    return list(out.values())


def headline_difference(weak10: np.ndarray, strong0: np.ndarray, weak10_cost: float, strong0_cost: float,
                        weak10_budget: float, strong0_budget: float) -> str:
    """The paper's headline on our numbers, in words: is the 10 % model with weak ITI less toxic than the
    clean model with strong ITI? weak10, strong0: per-prompt scores [S, P] per training seed, on the same
    prompts; compared by the paired difference over seeds and prompts (`paired_difference_over_seeds`; one
    seed: over prompts only, and the text says so). Costs and budgets: nats of clean cross-entropy, means
    over the seeds (each budget its model's `capability_budget`). The verdict, with its preconditions, is
    chapter 7's."""
    diff = paired_difference_over_seeds(np.atleast_2d(weak10), np.atleast_2d(strong0))
    side = "lower" if diff.below_zero else "higher" if diff.above_zero else "not distinguishable"
    over = [f"{name} ({cost:+.2f} nats against its {budget:.2f})" for name, cost, budget in
            (("weak ITI on the 10 % model", weak10_cost, weak10_budget),
             ("strong ITI on the clean model", strong0_cost, strong0_budget)) if cost > budget]
    note = (" But " + " and ".join(over) + (" cost" if len(over) > 1 else " costs") + " more clean cross-entropy "
            "than its model's capability budget, so that arm is no longer the same model and the comparison is not "
            "a test of the headline.") if over else ""
    return (f"10 % toxic + weak ITI minus clean + strong ITI on ToxiGen toxicity (x 100): {100 * diff.mean:+.2f} "
            f"(paired 95 % interval {100 * diff.low:+.2f} to {100 * diff.high:+.2f} over {diff.scope}): "
            f"{side}.{note} The paper reports 16.25 against 19.82 (Perspective API x 100).")


def frontier_points(rows: list[dict]) -> list[dict]:
    """Frontier rows averaged over seeds per (toxic fraction, strength): a calibrated strength's alpha
    differs between seeds, so points are grouped by the strength's name and carry its mean alpha."""
    keys = ("alpha", "toxicity", "ce_increase", "kl", "shift_ratio", "floor")
    keys += ("budget",) if rows and "budget" in rows[0] else ()
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["toxic_fraction"], r["strength"]), []).append(r)
    return [{**g[0], **{k: float(np.mean([r[k] for r in g])) for k in keys}, "seeds": len(g)} for g in groups.values()]
