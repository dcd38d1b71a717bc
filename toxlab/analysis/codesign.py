"""Chapter 7's evidence, gathered in one place so that the chapter and `toxlab readme` read the same numbers:
every model's capability, probe separability and base toxicity; the ITI frontiers; the baselines and
their combinations with ITI; LEACE on the same heads; and probes at training snapshots.

`collect` only calls stages (cached), so inside `artifacts.lookup_only()` it reads what the book has
computed and raises `CacheMiss` for anything it has not. Toxicity is x 100 throughout, as in the paper.

ITI's weak, mid and strong are each model's calibrated strengths (`pipeline.evaluation.calibrated_alphas`: the alphas at
which ITI costs `Plan.strengths` nats of KL on held-out clean text); the paper's fixed alphas are a labelled
secondary sweep (`Plan.alphas`). `verdict_table` applies `toxlab.analysis.verdicts`' rules to every claim of the paper,
the toy and the entanglement claims included, with paired comparisons and the preconditions checked.

The capability budget is per model: `Plan.budget_share` of its margin over unigram on held-out clean text
(`model_budget`, `evaluate.capability_budget`); every point carries its model's `budget` (nats). Over
several frontier seeds, intervals and paired comparisons resample seeds, then prompts
(`evaluate.bootstrap_over_seeds`); over one, prompts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from toxlab.analysis import benchmarks, verdicts
from toxlab.analysis.statistics import linear_trend
from toxlab.analysis.verdicts import Interval, Precondition
from toxlab.baselines import TAGGINGS
from toxlab.core.config import RunConfig, override
from toxlab.core.errors import ConfigError
from toxlab.evaluation import evaluate
from toxlab.interp import toy
from toxlab.interp.intervene import check_cost_target, check_direction, check_strength
from toxlab.pipeline import baseline_runs, evaluation, pretraining, probing


@dataclass(frozen=True)
class Plan:
    """What chapter 7 gathers: one field per papermill parameter of notebooks/07_codesign.py, of the same name.
    The defaults are that cell's values and those chapters 5 and 6 share with it (the cell must hold literals;
    tests/test_codesign_plan.py holds the three to these defaults and every level's values to one another)."""

    seeds: list[int] = field(default_factory=lambda: [0])  # every model: capability, probes, base toxicity
    frontier_seeds: list[int] = field(default_factory=lambda: [0])  # ITI frontier, baselines, LEACE
    sweep_seeds: list[int] = field(default_factory=lambda: [0])  # chapter 5's K and direction sweep
    variant_seeds: list[int] = field(default_factory=lambda: [0])  # the extensions' models
    alphas: list[float] = field(default_factory=lambda: [0, 4, 12])  # the paper's (secondary; sweep seeds)
    strengths: dict[str, float] = field(default_factory=lambda: dict(evaluate.COST_TARGETS))  # calibrated (KL)
    baselines: list[str] = field(default_factory=lambda: ["prompt", "sft", "dpo", "meda", "inst"])
    baseline_fractions: list[float] = field(default_factory=lambda: [0.0, 0.1])
    # MEDA and INST pretrain their own models with the toxic documents tagged: on the mixtures with toxic text to
    # tag (the clean mixture has next to none, so there they would retrain the clean model at full cost).
    tagging_fractions: list[float] = field(default_factory=lambda: [0.1])
    combos: list[str] = field(default_factory=lambda: ["sft", "dpo"])
    combo_setting: str = "weak"
    leace_ks: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    leace_fractions: list[float] = field(default_factory=lambda: [0.0, 0.1])
    snapshot_fractions: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.25])
    snapshot_seeds: list[int] = field(default_factory=lambda: [0])
    budget_share: float = evaluate.BUDGET_SHARE  # of each model's margin over unigram a treatment may cost
    sweep_fraction: float = 0.1  # chapter 5's K and direction sweep
    sweep_strength: str = "mid"  # every (direction, K) calibrated to this cost: controls matched in cost
    k_values: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    directions: list[str] = field(default_factory=lambda: ["mass_mean", "probe", "random"])
    # Extensions: the level's model and data with these overrides (name -> {"model.n_layers": 2, ...}), each
    # pretrained at variant_fractions for the variant seeds, probed, and evaluated base and at sweep_strength.
    variants: dict[str, dict] = field(default_factory=dict)
    variant_fractions: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.25])
    # The toy experiment as chapter 2 runs it (its baseline condition), for the toy claim.
    toy_seeds: int = 10
    toy_shares: list[float] = field(default_factory=lambda: [0.01, 0.03, 0.1, 0.333])
    toy_steps: int = 2000

    def __post_init__(self) -> None:
        """Every strength, cost target and direction is checked before any work (papermill parameters)."""
        for target in self.strengths.values():
            check_cost_target(target)
        for alpha in self.alphas:
            check_strength(alpha)
        for direction in self.directions:
            check_direction(direction)
        if self.sweep_strength not in self.strengths or self.combo_setting not in self.strengths:
            raise ConfigError(f"sweep_strength={self.sweep_strength!r} and combo_setting={self.combo_setting!r}; "
                              f"choose one of {', '.join(self.strengths)}")
        evaluate.check_budget_share(self.budget_share)

    def fractions_for(self, method: str) -> list[float]:
        """The mixtures the baseline `method` is applied to: its own pretraining for the tagging methods (MEDA,
        INST: `tagging_fractions`), the level's models for the others (`baseline_fractions`)."""
        return self.tagging_fractions if method in TAGGINGS else self.baseline_fractions

    def within(self, fractions: list[float]) -> Plan:
        """This plan with its per-fraction lists (baselines, LEACE, snapshots, variants) cut to the level's
        `fractions` (`pretraining.fractions_for`): a level without the 10 % model runs none of them at 10 %."""
        return replace(self, **{name: [f for f in getattr(self, name) if f in fractions]
                                for name in ("baseline_fractions", "tagging_fractions", "leace_fractions",
                                             "snapshot_fractions",
                                             "variant_fractions")})


#: A point's fields, in order; those of `PERCENT_FIELDS` are `benchmarks.frontier_row`'s x 100, as the paper
#: reports toxicity (toxic_share stays a fraction).
POINT_FIELDS = ("toxic_fraction", "seed", "order", "strength", "alpha", "toxicity", "toxicity_low", "toxicity_high",
                "toxic_share", "floor", "following", "following_low", "following_high", "ce_clean", "ce_increase", "kl")
PERCENT_FIELDS = ("toxicity", "toxicity_low", "toxicity_high", "floor", "following", "following_low", "following_high")


def point(name: str, method: str, toxigen: dict, ce: dict, order: float = 0.0, strength: str = "") -> dict:
    """One (model, treatment) on the toxicity-capability plane from its 'toxigen' and 'ce' results (the
    toxigen result with `per_prompt` scores added, `read_result`); strength: the calibrated strength's name.
    `benchmarks.frontier_row`'s numbers with toxicity x 100, named, with the judge and the per-prompt scores the
    paired comparisons resample."""
    row = {**benchmarks.frontier_row(toxigen, ce), "order": order, "strength": strength}
    return {"name": name, "method": method,
            **{key: 100 * row[key] if key in PERCENT_FIELDS else row[key] for key in POINT_FIELDS},
            "judge": toxigen["judge"]["name"], "per_prompt": toxigen.get("per_prompt", [])}


def model_budget(config: RunConfig, seed: int, share: float, progress: bool = True) -> dict:
    """One model's capability budget: `share` of its margin over the unigram model, both cross-entropies on
    its held-out clean text (nats/token, from pretraining's metrics). A row: toxic_fraction, seed,
    unigram_ce, ce, margin, budget."""
    metrics = pretraining.pretrain(config, seed, progress=progress).json("metrics.json")
    unigram, own = metrics["unigram_val_loss"], metrics["val_loss"]
    return {"toxic_fraction": config.data.toxic_fraction, "seed": seed, "unigram_ce": unigram, "ce": own,
            "margin": unigram - own, "budget": evaluate.capability_budget(unigram, own, share)}


def read_result(entry) -> dict:
    """An evaluation entry's `result.json`, with `per_prompt`: its per-prompt mean scores where it has samples."""
    result = entry.json("result.json")
    samples = entry.path / "samples.jsonl"
    if samples.exists():
        result["per_prompt"] = benchmarks.prompt_scores(samples).tolist()
    return result


def collect(config: RunConfig, plan: Plan, eval_config=None, progress: bool = True) -> dict:
    """Everything chapter 7 plots and judges, as lists of plain rows."""
    eval_config = eval_config or evaluate.eval_preset(config.preset)
    fractions = pretraining.fractions_for(config)

    def both(cfg, seed, **kw):
        return [read_result(evaluation.evaluate(cfg, seed, b, eval_config=eval_config, progress=progress, **kw))
                for b in ("toxigen", "ce")]

    def both_baseline(cfg, seed, method, alpha=0.0):
        return [read_result(baseline_runs.evaluate_baseline(cfg, seed, method, b, eval_config=eval_config,
                                                            progress=progress, alpha=alpha))
                for b in ("toxigen", "ce")]

    def strengths(cfg, seed, **kw) -> dict[str, float]:
        return evaluation.calibrated_alphas(cfg, seed, targets=plan.strengths, progress=progress, **kw)

    runs = pretraining.sweep(config, plan.seeds).json("summary.json")["runs"]
    separability, base = [], []
    for f in fractions:
        cfg = config.with_fraction(f)
        for s in plan.seeds:
            summary = probing.probe(cfg, s, progress=progress).json("summary.json")
            auc = np.ravel(summary["head_val_auc"])
            separability.append({"toxic_fraction": f, "seed": s, "auc": float(auc.mean()), "auc_max": float(auc.max()),
                                 "entanglement": summary["entanglement"]["top_k_mean"]})
            tox = evaluation.evaluate(cfg, s, "toxigen", eval_config=eval_config, progress=progress).json("result.json")
            following = tox["prompt_following"]
            base.append({"toxic_fraction": f, "seed": s, "toxicity": 100 * tox["all"]["mean_toxicity"],
                         "toxic_share": tox["all"]["toxicity_probability"],
                         "floor": 100 * tox["floor"]["mean_toxicity"], "following": 100 * following["mean"],
                         "following_low": 100 * following["low"], "following_high": 100 * following["high"]})
    budgets = [model_budget(config.with_fraction(f), s, plan.budget_share, progress)
               for f in fractions for s in sorted({*plan.frontier_seeds, *plan.sweep_seeds})]
    iti, others, calibration = [], [], []
    for f in fractions:
        cfg = config.with_fraction(f)
        for s in plan.frontier_seeds:
            iti.append(point(f"{f:.0%} base", "ITI", *both(cfg, s), order=0.0, strength="base"))
            for name, alpha in strengths(cfg, s).items():
                iti.append(point(f"{f:.0%} + ITI {name}", "ITI", *both(cfg, s, alpha=alpha), order=alpha,
                                 strength=name))
            calibration += [{"toxic_fraction": f, "seed": s, "strength": name, **row} for name, row in
                            evaluation.calibration(cfg, s, targets=plan.strengths, progress=progress)
                            .json("calibration.json")["strengths"].items()]
    paper = [point(f"{f:.0%} + alpha {a:g}", "ITI (paper's alpha)", *both(config.with_fraction(f), s, alpha=a), order=a,
                   strength=f"alpha {a:g}") for f in fractions for s in plan.sweep_seeds for a in plan.alphas if a]
    for m in plan.baselines:
        others += [point(f"{f:.0%} + {m}", m, *both_baseline(config.with_fraction(f), s, m))
                   for f in plan.fractions_for(m) for s in plan.frontier_seeds]
    for f in plan.baseline_fractions:
        cfg = config.with_fraction(f)
        for s in plan.frontier_seeds:
            alpha = strengths(cfg, s)[plan.combo_setting]
            others += [point(f"{f:.0%} + {m} + {plan.combo_setting} ITI", f"{m} + ITI",
                             *both_baseline(cfg, s, m, alpha)) for m in plan.combos]
    leace = []
    for f in plan.leace_fractions:
        cfg = config.with_fraction(f)
        n_heads = cfg.model.n_layers * cfg.model.n_heads
        for s in plan.frontier_seeds:
            leace += [point(f"{f:.0%} + LEACE K={k}", "LEACE", *both(cfg, s, alpha=1.0, k=k, direction="leace"),
                            order=k) for k in plan.leace_ks if k <= n_heads]
    sweep = []
    if plan.sweep_fraction in fractions:
        cfg = config.with_fraction(plan.sweep_fraction)
        n_heads = cfg.model.n_layers * cfg.model.n_heads
        for direction in plan.directions:
            for k in [k for k in plan.k_values if k <= n_heads]:
                for s in plan.sweep_seeds:
                    alpha = strengths(cfg, s, k=k, direction=direction)[plan.sweep_strength]
                    sweep.append(point(f"{direction} K={k}", direction,
                                       *both(cfg, s, alpha=alpha, k=k, direction=direction), order=k))
    snapshots = []
    for f in plan.snapshot_fractions:
        cfg = config.with_fraction(f)
        k = probing.paper_k(cfg)
        for s in plan.snapshot_seeds:
            steps = pretraining.snapshots(cfg, s, progress=progress)
            if not steps:
                continue
            total = pretraining.pretrain(cfg, s, progress=progress).json("metrics.json")["steps"]
            for step in [*steps, None]:
                summary = probing.probe(cfg, s, snapshot=step, progress=progress).json("summary.json")
                auc = np.sort(np.ravel(summary["head_val_auc"]))[::-1]
                snapshots.append({"toxic_fraction": f, "seed": s, "step": step or total,
                                  "share": (step or total) / total, "auc": float(auc.mean()),
                                  "auc_top": float(auc[:k].mean()), "auc_max": float(auc[0])})
    variants = [variant_row("default", config, f, s, plan, both, progress)
                for f in plan.variant_fractions if plan.variants for s in plan.variant_seeds]
    for name, overrides in plan.variants.items():
        variant = override(config, overrides)
        variants += [variant_row(name, variant, f, s, plan, both, progress)
                     for f in plan.variant_fractions for s in plan.variant_seeds]
    toy_summary = toy.summarise(probing.toy(toy.ToyConfig(steps=plan.toy_steps), plan.toy_shares,
                                           list(range(plan.toy_seeds))).json("rows.json"))
    budget_of = {(b["toxic_fraction"], b["seed"]): b["budget"] for b in budgets}
    for p in iti + paper + others + leace + sweep:  # a baseline's budget is its plain model's
        p["budget"] = budget_of[(p["toxic_fraction"], p["seed"])]
    return {"runs": runs, "separability": separability, "base": base, "iti": iti, "paper": paper, "others": others,
            "leace": leace, "sweep": sweep, "snapshots": snapshots, "variants": variants,
            "calibration": calibration, "budgets": budgets, "toy": toy_summary}


def variant_row(name: str, config: RunConfig, fraction: float, seed: int, plan: Plan, both, progress: bool) -> dict:
    """One model of a variant: its size, capability, probe separability, base toxicity and ITI at its own
    calibrated `sweep_strength`."""
    cfg = config.with_fraction(fraction)
    metrics = pretraining.pretrain(cfg, seed, progress=progress).json("metrics.json")
    auc = np.ravel(probing.probe(cfg, seed, progress=progress).json("summary.json")["head_val_auc"])
    base = point("base", "base", *both(cfg, seed))
    alpha = evaluation.calibrated_alphas(cfg, seed, targets=plan.strengths, progress=progress)[plan.sweep_strength]
    iti = point(f"ITI {plan.sweep_strength}", "ITI", *both(cfg, seed, alpha=alpha))
    return {"variant": name, "toxic_fraction": fraction, "seed": seed, "params": metrics["params"]["total"],
            "val_loss": metrics["val_loss"], "auc": float(auc.mean()), "auc_max": float(auc.max()),
            "toxicity": base["toxicity"], "iti_toxicity": iti["toxicity"], "iti_cost": iti["ce_increase"]}


def variant_summary(rows: list[dict]) -> list[dict]:
    """Per variant: the least-squares slope per 10 % toxic data of probe AUC, base toxicity and the toxicity
    ITI removes, over its models (what the extension compares across sizes and toxic sources)."""
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        own = [r for r in rows if r["variant"] == name]
        tenths = [10 * r["toxic_fraction"] for r in own]

        def slope(y, x=tenths):
            return linear_trend(x, y)["slope"] if len(set(x)) >= 2 else float("nan")
        out.append({"variant": name, "parameters (M)": own[0]["params"] / 1e6, "models": len(own),
                    "held-out loss": float(np.mean([r["val_loss"] for r in own])),
                    "AUC per 10 %": slope([r["auc"] for r in own]),
                    "base toxicity per 10 %": slope([r["toxicity"] for r in own]),
                    "removed by ITI per 10 %": slope([r["toxicity"] - r["iti_toxicity"] for r in own]),
                    "ITI cost (nats)": float(np.mean([r["iti_cost"] for r in own]))})
    return out


# ----------------------------------------------------------------------------------- tables for chapter 7
#: The judge card's probe whose mean score is the floor: word salad is the kind of text a small model writes.
FLOOR_PROBE = "word salad"


def regime(evidence: dict, card: dict, plan: Plan) -> dict:
    """`toxlab.analysis.verdicts.regime` from the evidence: the floor is the benchmarks' judge's mean score (x 100) on
    word salad in the judge card (`pipeline.judging.judge_card`), strong ITI is each model's calibrated strong,
    each mixture's budget its models' (means over the frontier seeds), and the clean and 10 % models must follow
    the prompts' content, as the headline verdict requires."""
    judge = evidence["iti"][0]["judge"]
    floor = 100 * next(m["mean_score"] for m in card["failure_modes"]
                       if m["judge"] == judge and m["probe"] == FLOOR_PROBE)
    strong = [p for p in mean_points(evidence["iti"]) if p["strength"] == "strong"]
    return verdicts.regime(evidence["base"], floor, {p["toxic_fraction"]: p["ce_increase"] for p in strong},
                           {p["toxic_fraction"]: p["budget"] for p in strong}, _headline_following(evidence["base"]))


def best_affordable(points: list[dict]) -> list[dict]:
    """Per toxic fraction, the least toxic treatment costing at most its model's budget (each point's
    `budget`, nats; means over seeds), with its interval (over seeds and prompts where there are several
    seeds, `mean_points`)."""
    out = []
    for f in sorted({p["toxic_fraction"] for p in points}):
        ok = [p for p in mean_points([p for p in points if p["toxic_fraction"] == f])
              if p["ce_increase"] <= p["budget"]]
        if ok:
            best = min(ok, key=lambda p: p["toxicity"])
            out.append({k: best[k] for k in ("toxic_fraction", "name", "toxicity", "toxicity_low", "toxicity_high",
                                              "ce_clean", "ce_increase", "budget", "seeds")})
    return out


def leace_against_iti(leace: list[dict], iti: list[dict]) -> list[dict]:
    """Each LEACE point beside ITI's toxicity on the same model at the same capability cost, interpolated
    linearly along that model's ITI frontier (means over seeds)."""
    rows = []
    for p in mean_points(leace):
        line = sorted((q for q in mean_points(iti) if q["toxic_fraction"] == p["toxic_fraction"]),
                      key=lambda q: q["ce_increase"])
        xs, ys = [q["ce_increase"] for q in line], [q["toxicity"] for q in line]
        rows.append({"toxic_fraction": p["toxic_fraction"], "heads erased": int(p["order"]), "toxicity": p["toxicity"],
                     "CE increase": p["ce_increase"], "KL": p["kl"],
                     "ITI at equal cost": float(np.interp(p["ce_increase"], xs, ys)) if xs else float("nan")})
    return rows


def efficiency(sweep: list[dict], base_toxicity: float, min_cost: float = 0.01) -> list[dict]:
    """The K and direction sweep as toxicity removed (x 100) and removed per nat of clean cross-entropy
    (undefined below `min_cost` nats, where the ratio is noise over nothing)."""
    return [{"direction": p["method"], "K": int(p["order"]), "toxicity": p["toxicity"],
             "removed": base_toxicity - p["toxicity"], "CE increase": p["ce_increase"],
             "removed per nat": (base_toxicity - p["toxicity"]) / p["ce_increase"]
             if p["ce_increase"] >= min_cost else float("nan")} for p in mean_points(sweep)]


def snapshot_summary(rows: list[dict]) -> tuple[list[dict], dict[float, float], float | None]:
    """Mean probe AUCs per (fraction, share of training), and per fraction the share of the final
    above-chance mean AUC (AUC - 0.5) already reached at its earliest snapshot (runs of different fractions
    have different lengths, so the earliest share differs slightly between them). Returns (summary, reached,
    the earliest share over all rows)."""
    if not rows:
        return [], {}, None
    keys = ("auc", "auc_top", "auc_max")
    cells = sorted({(r["toxic_fraction"], r["share"]) for r in rows})
    summary = [{"toxic_fraction": f, "share": sh, **{k: float(np.mean([r[k] for r in rows if
                                                                         (r["toxic_fraction"], r["share"]) == (f, sh)]))
                                                     for k in keys}} for f, sh in cells]
    reached = {}
    for f in sorted({r["toxic_fraction"] for r in rows}):
        at = {row["share"]: row["auc"] for row in summary if row["toxic_fraction"] == f}
        if 1.0 in at and at[1.0] != 0.5:
            reached[f] = (at[min(at)] - 0.5) / (at[1.0] - 0.5)
    return summary, reached, min(r["share"] for r in rows)


def verdict_table(evidence: dict, plan: Plan) -> list[verdicts.Verdict]:
    """One Verdict per claim of the paper (the toy and the entanglement claims included), from `collect`'s
    rows, by `toxlab.analysis.verdicts`' rules: comparisons paired over the frontier seeds and prompts (every model
    sees the same prompts and sampling seeds; `paired`), each arm within its own model's budget, the best
    within the budget chosen on one half of the prompts and reported on the other, and each comparison's
    preconditions checked."""
    iti, base = evidence["iti"], evidence["base"]
    following = _following(base)
    table = [verdicts.capability_claim(evidence["runs"]), verdicts.base_toxicity_claim(base, [following]),
             verdicts.separability_claim(evidence["separability"]),
             verdicts.entanglement_claim(evidence["separability"])]
    if evidence.get("toy"):
        table.append(verdicts.toy_claim(evidence["toy"]))
    # The calibrated strengths only: the paper's alphas run on the sweep seeds alone, and every model must
    # choose among the same treatments for the share removed to compare across seeds.
    removed = removal_points(iti)
    if len({r["toxic_fraction"] for r in removed}) >= 2:
        trend = linear_trend([r["toxic_fraction"] for r in removed], [r["removed"] for r in removed])
        shares = {f: float(np.mean([r["removed"] for r in removed if r["toxic_fraction"] == f]))
                  for f in sorted({r["toxic_fraction"] for r in removed})}
        table.append(verdicts.removal_claim(trend, shares, plan.budget_share, [following]))
    pick = _pick_strength(iti)
    weak10, strong0, base0 = pick(0.1, "weak"), pick(0.0, "strong"), pick(0.0, "base")
    if weak10 and strong0 and base0:
        diff = paired(weak10, strong0)
        preconditions = [verdicts.within_budget("10 % + weak ITI", weak10["ce_increase"], weak10["budget"]),
                         verdicts.within_budget("clean + strong ITI", strong0["ce_increase"], strong0["budget"]),
                         verdicts.above_floor("the clean model", base0["toxicity"], base0["floor"]),
                         _headline_following(base)]
        table.append(verdicts.headline_claim(weak10["toxicity"], strong0["toxicity"],
                                             Interval(100 * diff.mean, 100 * diff.low, 100 * diff.high), preconditions,
                                             over=diff.scope))
    # ours: the 10 % model with ITI; rivals: clean data with ITI, and the paper's baselines on either model
    ours = [p for p in mean_points(iti) if abs(p["toxic_fraction"] - 0.1) < 1e-9]
    rivals = [p for p in mean_points(iti) if p["toxic_fraction"] == 0.0] + \
        [p for p in mean_points(evidence["others"]) if p["method"] in plan.baselines]
    if ours and rivals:
        def choose(points):
            return evaluate.best_on_held_out_half({p["name"]: np.asarray(p["per_prompt"]) for p in points},
                                                  {p["name"]: p["ce_increase"] for p in points},
                                                  {p["name"]: p["budget"] for p in points})
        mine, theirs = choose(ours), choose(rivals)
        by_name = {p["name"]: p for p in ours + rivals}
        diff = paired(by_name[mine.name], by_name[theirs.name], list(mine.reported_on))
        table.append(verdicts.trade_off_claim(mine.name, theirs.name, 100 * mine.toxicity, 100 * theirs.toxicity,
                                              Interval(100 * diff.mean, 100 * diff.low, 100 * diff.high),
                                              plan.budget_share, [following], over=diff.scope))
    return table


def paired(a: dict, b: dict, prompts: list[int] | None = None) -> evaluate.Difference:
    """a - b for two `mean_points` rows, paired on the frontier seeds both have and on the same prompts
    (all, or the indices `prompts`): over seeds, then prompts, where there are several seeds
    (`evaluate.paired_difference_over_seeds`), over prompts where there is one."""
    common = [s for s in a["seed_ids"] if s in b["seed_ids"]]
    arms = [np.asarray([p["per_seed_prompt"][p["seed_ids"].index(s)] for s in common]) for p in (a, b)]  # [S, P]
    if prompts is not None:
        arms = [arm[:, prompts] for arm in arms]
    return evaluate.paired_difference_over_seeds(*arms)


def _following(base: list[dict]) -> Precondition:
    """The prompt-following precondition over the untreated models in `base`: every one's hate-minus-neutral
    interval above zero."""
    failing = [b for b in base if not b["following_low"] > 0]
    lows = [b["following_low"] for b in base]
    highs = [b["following_high"] for b in base]
    return Precondition(not failing, f"{len(failing)} of {len(base)} models' generations do not follow the prompts' "
                                     f"content (hate minus neutral prompts, paired 95 % CIs from {min(lows):+.1f} to "
                                     f"{max(highs):+.1f})" if base else "no prompt-following check")


def _headline_following(base: list[dict]) -> Precondition:
    """The headline's prompt-following precondition: the clean and 10 % models' (the verdict and the regime
    question read this one check)."""
    return _following([b for b in base if b["toxic_fraction"] in (0.0, 0.1)])


def removal_points(points: list[dict]) -> list[dict]:
    """Per model (fraction, seed): the share of its base toxicity removed by its least toxic ITI point
    within its budget (each point's `budget`, nats; the base itself when none is)."""
    out = []
    for f, s in sorted({(p["toxic_fraction"], p["seed"]) for p in points}):
        own = [p for p in points if (p["toxic_fraction"], p["seed"]) == (f, s)]
        base = next((p for p in own if p["strength"] == "base"), None)
        if base is None or base["toxicity"] <= 0:
            continue
        best = verdicts.best_within(own)
        out.append({"toxic_fraction": f, "seed": s, "removed": 1 - best["toxicity"] / base["toxicity"]})
    return out


def _pick_strength(points: list[dict]):
    def pick(fraction: float, strength: str) -> dict | None:
        sel = [p for p in points if abs(p["toxic_fraction"] - fraction) < 1e-9 and p["strength"] == strength]
        return mean_points(sel)[0] if sel else None
    return pick


def mean_points(points: list[dict]) -> list[dict]:
    """Average points that differ only by seed. Where they carry per-prompt scores (the seeds share
    prompts), `per_prompt` is their prompt-by-prompt mean, `per_seed_prompt` [S, P] the seeds' own (in
    `seed_ids` order), and the toxicity interval is over seeds, then prompts (`evaluate.bootstrap_over_seeds`;
    over prompts alone for one seed); otherwise the mean of the per-seed bounds."""
    groups: dict[str, list[dict]] = {}
    for p in points:
        groups.setdefault(p["name"], []).append(p)
    keys = ("toxicity", "toxicity_low", "toxicity_high", "toxic_share", "ce_clean", "ce_increase", "kl")
    out = []
    for g in groups.values():
        g = sorted(g, key=lambda p: p.get("seed", 0))
        row = {**g[0], **{k: float(np.mean([p[k] for p in g])) for k in keys}, "seeds": len(g),
               "seed_ids": [p.get("seed", 0) for p in g]}
        if g[0].get("per_prompt"):
            per_seed = np.asarray([p["per_prompt"] for p in g], dtype=np.float64)  # [S, P]
            row["per_seed_prompt"] = per_seed.tolist()
            row["per_prompt"] = per_seed.mean(axis=0).tolist()
            if len(g) > 1:
                low, high = evaluate.bootstrap_over_seeds(per_seed)
                row["toxicity_low"], row["toxicity_high"] = 100 * low, 100 * high
        for k in ("floor", "alpha", "budget"):
            if k in g[0]:
                row[k] = float(np.mean([p[k] for p in g]))
        out.append(row)
    return out


def variant_reading(summary: list[dict]) -> str:
    """One sentence per variant against the default: the signs and sizes of its slopes (for the chapter)."""
    default = next((r for r in summary if r["variant"] == "default"), None)
    if default is None:
        return "No variants were run at this level."
    out = []
    for r in summary:
        if r is default:
            continue
        out.append(f"*{r['variant']}* ({r['parameters (M)']:.1f}M parameters, held-out loss "
                   f"{r['held-out loss']:.2f} against {default['held-out loss']:.2f}): probe AUC "
                   f"{r['AUC per 10 %']:+.4f} per 10 % toxic data (default {default['AUC per 10 %']:+.4f}), base "
                   f"toxicity {r['base toxicity per 10 %']:+.2f} points "
                   f"(default {default['base toxicity per 10 %']:+.2f}), "
                   f"toxicity ITI removes {r['removed by ITI per 10 %']:+.2f} points (default "
                   f"{default['removed by ITI per 10 %']:+.2f}) at a mean cost of {r['ITI cost (nats)']:.2f} nats "
                   f"(default {default['ITI cost (nats)']:.2f})")
    return "; ".join(out) + "."

