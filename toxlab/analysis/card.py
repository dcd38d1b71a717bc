"""What a judge card says (`toxlab.judges.judge_card.build_card`): the issue's targets on the MiniLM judge, each
met or not (`targets`), how far forum word salad sits above news salad (`salad_gaps`), the card as plain-text
tables (`format_card`, for `toxlab judge --card`) and the numbers and phrases chapter 8 quotes (`headline`)."""

from __future__ import annotations

from dataclasses import dataclass

from toxlab.judges.judge_card import (
    FORUMS,
    NEWS,
    NEWS_SALAD,
    REGISTER_FORUMS,
    SALAD_KINDS,
    TOXIC_FORUMS,
)


@dataclass(frozen=True)
class Target:
    """One of the judge's targets at the cpu level (issue 22): the measured value beside its bound."""

    name: str
    value: float
    bound: float
    at_most: bool  # True: value <= bound passes; False: value >= bound passes

    @property
    def met(self) -> bool:
        return self.value <= self.bound if self.at_most else self.value >= self.bound


MAX_SALAD_GAP = 0.05  # forum salad without C4's words above news salad (mean score)
MAX_FALSE_POSITIVES = 0.10  # on every labelled benign register
MIN_TOXIGEN_AUC = 0.80
MIN_JIGSAW_AUC = 0.90



def salad_gaps(card: dict, judge: str = "minilm", kind: str = SALAD_KINDS[1],
               forums: tuple[str, ...] = FORUMS) -> dict[str, float]:
    """Per forum: mean score of its salads of `kind` (by default: holding no C4-list word) minus that of news
    salads (any words)."""
    means = {(r["source"], r["kind"]): r["mean_score"] for r in card["salad"] if r["judge"] == judge}
    news = means[(NEWS, SALAD_KINDS[0])]
    return {f: means[(f, kind)] - news for f in forums if means.get((f, kind)) is not None}


def targets(card: dict, judge: str = "minilm") -> list[Target]:
    """The issue's targets, measured on `judge`: the salad gap of each register forum, the false-positive
    rate of each labelled benign register, ROC-AUC on the ToxiGen annotations and on held-out Jigsaw
    comments."""
    rows = {(r["set"], r["judge"]): r for r in card["validation"]}
    gaps = salad_gaps(card, judge, forums=REGISTER_FORUMS)
    out = [Target(f"{forum} salad (no C4-list word) minus news salad, mean score", gap, MAX_SALAD_GAP, True)
           for forum, gap in gaps.items()]
    out += [Target(f"false positives: {r['register']}", r["false_positives"], MAX_FALSE_POSITIVES, True)
            for r in card["registers"] if r["judge"] == judge]
    out.append(Target("ROC-AUC, ToxiGen human annotations", rows[("ToxiGen (out of domain)", judge)]["auc"],
                      MIN_TOXIGEN_AUC, False))
    if ("test: jigsaw", judge) in rows:
        out.append(Target("ROC-AUC, held-out Jigsaw talk comments", rows[("test: jigsaw", judge)]["auc"],
                          MIN_JIGSAW_AUC, False))
    return out


def format_card(card: dict) -> str:
    """The card as plain-text tables (numbers only; never any text that was scored)."""
    training = card.get("training", {})
    lines = [f"judge card, level {card.get('level', '?')}: MiniLM judge trained on {training.get('n_train', 0):,} "
             f"texts (l2 {training.get('l2', float('nan')):g}, {training.get('train_time_s', 0):.0f} s); "
             f"{training.get('overlap_dropped', 0)} texts dropped as ToxiGen-annotation overlap"]
    for name, info in card["judges"].items():
        if not info["available"]:
            lines.append(f"{name}: unavailable ({info['why']})")

    def number(value, spec):
        return format(value, spec) if value is not None else "-"

    lines.append(f"\n{'set':28s} {'judge':20s} {'n':>6s} {'toxic':>6s} {'ROC-AUC':>7s} {'ECE':>6s} {'acc':>6s}")
    for row in card["validation"]:
        lines.append(f"{row['set']:28s} {row['judge']:20s} {row['n']:6d} {row['toxic']:6d} "
                     f"{number(row['auc'], '7.3f')} {number(row['ece'], '6.3f')} {number(row['accuracy'], '6.3f')}")
    lines.append(f"\n{'benign register':32s} {'judge':20s} {'n':>6s} {'mean':>6s} {'FP':>6s}")
    for row in card["registers"]:
        lines.append(f"{row['register']:32s} {row['judge']:20s} {row['n']:6d} {row['mean_score']:6.3f} "
                     f"{row['false_positives']:6.3f}")
    lines.append(f"\n{'unlabelled web text':32s} {'judge':20s} {'n':>6s} {'mean':>6s} {'>=0.5':>6s}")
    for row in card["web"]:
        lines.append(f"{row['source']:32s} {row['judge']:20s} {row['n']:6d} {row['mean_score']:6.3f} "
                     f"{row['flagged']:6.3f}")
    lines.append(f"\n{'word salad (vocabulary | kind)':32s} {'judge':20s} {'n':>6s} {'mean':>6s} {'>=0.5':>6s}")
    for row in card["salad"]:
        lines.append(f"{row['source'] + ' | ' + row['kind']:32s} {row['judge']:20s} {row['n']:6d} "
                     f"{number(row['mean_score'], '6.3f')} {number(row['flagged'], '6.3f')}")
    lines.append(f"\n{'failure mode':28s} {'judge':20s} {'n':>6s} {'mean':>6s} {'>=0.5':>6s}")
    for row in card["failure_modes"]:
        lines.append(f"{row['probe']:28s} {row['judge']:20s} {row['n']:6d} {number(row['mean_score'], '6.3f')} "
                     f"{number(row['flagged'], '6.3f')}")
    lines.append(f"\n{'target (MiniLM judge)':58s} {'value':>7s} {'bound':>7s}  met")
    for target in targets(card):
        lines.append(f"{target.name:58s} {target.value:7.3f} {'<=' if target.at_most else '>='}{target.bound:5.2f}  "
                     f"{'yes' if target.met else 'NO'}")
    lines.append(f"\n{'speed':28s} {'judge':20s} {'texts/s':>8s}  device")
    for row in card["speed"]:
        lines.append(f"{'':28s} {row['judge']:20s} {row['texts_per_s']:8.1f}  {row['device']} "
                     f"({row['threads']} threads)")
    return "\n".join(lines)


GIBBERISH = ("random bytes", "repetition", NEWS_SALAD)


def headline(card: dict, judge_training: dict | None = None) -> dict:
    """The numbers and phrases a chapter quotes from a card (for myst-nb glue): floats, ints and Markdown
    strings, the same keys whether or not every lexical judge was available. `judge_training`: the judge entry's
    own training.json, for its training time (the card keeps a copy made when the card was built, and a
    judge rebuilt since, with the same result, took its own time)."""
    from IPython.display import Markdown
    training = card["training"]
    timing = judge_training or training
    rows = {(r["set"], r["judge"]): r for r in card["validation"]}
    modes = {(r["probe"], r["judge"]): r for r in card["failure_modes"]}
    lexical = [name for name in card["judges"] if name != "minilm"]
    available = [name for name in lexical if card["judges"][name]["available"]]
    ood = "ToxiGen (out of domain)"

    def listing(values: dict[str, str]) -> str:
        parts = [f"{name} {text}" for name, text in values.items()]
        return " and ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + " and " + parts[-1]

    missing = [f"{name} could not run here ({card['judges'][name]['why']})" for name in lexical
               if name not in available]
    lexical_ood = listing({n: f"{rows[(ood, n)]['auc']:.3f}" for n in available}) or "no lexical judge"
    best_lexical = max((rows[(ood, n)]["auc"] for n in available), default=float("nan"))
    implicit = "implicit hate (recall)"
    gibberish = {p: modes[(p, "minilm")]["flagged"] for p in GIBBERISH}
    worst = max(gibberish, key=gibberish.get)
    beats = all(rows[(ood, "minilm")]["auc"] > rows[(ood, n)]["auc"] for n in available)
    beats_test = all(rows[("test: all", "minilm")]["auc"] > rows[("test: all", n)]["auc"] for n in available)
    speed = {r["judge"]: r["texts_per_s"] for r in card["speed"]}
    checks = targets(card)
    failed = [t for t in checks if not t.met]
    registers = [r for r in card["registers"] if r["judge"] == "minilm"]
    worst_register = max(registers, key=lambda r: r["false_positives"])
    gaps = salad_gaps(card)
    toxic_gaps = salad_gaps(card, forums=TOXIC_FORUMS)
    worst_forum = max(toxic_gaps, key=toxic_gaps.get)
    lexicon_gaps = salad_gaps(card, kind=SALAD_KINDS[2], forums=TOXIC_FORUMS)
    lexicon_worst = max(lexicon_gaps, key=lexicon_gaps.get) if lexicon_gaps else worst_forum
    profanity = {(r["source"], r["kind"]): r["mean_score"] for r in card["salad"]
                 if r["judge"] == "alt-profanity-check"}
    salad = {(r["source"], r["kind"]): r for r in card["salad"] if r["judge"] == "minilm"}
    web = {r["source"]: r["flagged"] for r in card["web"] if r["judge"] == "minilm"}
    jigsaw = rows.get(("test: jigsaw", "minilm"), {}).get("auc")
    return {
        "n_train": training["n_train"], "n_val": training["n_val"], "n_test": training["n_test"],
        "overlap_dropped": training["overlap_dropped"], "duplicates_dropped": training["duplicates_dropped"],
        "l2": training["l2"], "train_minutes": timing["train_time_s"] / 60,
        "encode_rate": timing["encode_texts_per_s"],
        "auc_test": rows[("test: all", "minilm")]["auc"], "ece_test": rows[("test: all", "minilm")]["ece"],
        "auc_ood": rows[(ood, "minilm")]["auc"], "ece_ood": rows[(ood, "minilm")]["ece"],
        "auc_jigsaw": jigsaw if jigsaw is not None else float("nan"),
        "n_ood": card["sizes"]["ood"], "lexical_ood": Markdown(lexical_ood),
        "lexical_missing": Markdown("; ".join(missing) + "." if missing else "Every lexical judge ran here."),
        "best_lexical_ood": best_lexical,
        "ood_verdict": Markdown("ranks out-of-domain statements better than every lexical judge" if beats
                                else "does not rank out-of-domain statements better than every lexical judge"),
        "identity_flagged": modes[("identity templates (benign)", "minilm")]["flagged"],
        "control_flagged": modes[("neutral templates (control)", "minilm")]["flagged"],
        "identity_mean": modes[("identity templates (benign)", "minilm")]["mean_score"],
        "control_mean": modes[("neutral templates (control)", "minilm")]["mean_score"],
        "implicit_n": card["sizes"].get("implicit_hate", 0),
        "implicit_recall": (modes.get((implicit, "minilm")) or {}).get("flagged") or 0.0,
        "implicit_lexical": Markdown(listing({n: f"{modes[(implicit, n)]['flagged']:.3f}" for n in available
                                              if (implicit, n) in modes}) or "no lexical judge"),
        "worst_gibberish": Markdown(worst), "worst_gibberish_flagged": gibberish[worst],
        "test_verdict": Markdown("ranks held-out test text better than every lexical judge" if beats_test
                                 else "does not rank held-out test text better than every lexical judge"),
        "speed_minilm": speed["minilm"],
        "speed_ratio": max((speed[n] for n in available), default=speed["minilm"]) / speed["minilm"],
        "targets_met": sum(t.met for t in checks), "targets_total": len(checks),
        "targets_verdict": Markdown("Every target is met." if not failed else
                                    "**Not met:** " + "; ".join(f"{t.name} {t.value:.3f} (bound {t.bound:.2f})"
                                                                for t in failed) + "."),
        "worst_register": Markdown(worst_register["register"]),
        "worst_register_fp": worst_register["false_positives"],
        "news_salad": salad[(NEWS, SALAD_KINDS[0])]["mean_score"],
        "biz_salad": salad[("biz", SALAD_KINDS[0])]["mean_score"],
        "biz_clean_salad": salad[("biz", SALAD_KINDS[1])]["mean_score"],
        "biz_listed_share": salad[("biz", SALAD_KINDS[0])]["listed_share"],
        "biz_gap": gaps.get("biz", float("nan")), "reddit_gap": gaps.get("reddit", float("nan")),
        "worst_forum": Markdown(worst_forum), "worst_forum_gap": toxic_gaps[worst_forum],
        "max_salad_gap": MAX_SALAD_GAP, "lexicon_worst_forum": Markdown(lexicon_worst),
        "lexicon_worst_gap": lexicon_gaps.get(lexicon_worst, float("nan")),
        "biz_lexicon_gap": salad_gaps(card, kind=SALAD_KINDS[2]).get("biz", float("nan")),
        "profanity_news_salad": profanity.get((NEWS, SALAD_KINDS[0]), float("nan")),
        "profanity_worst_clean_salad": profanity.get((worst_forum, SALAD_KINDS[1]), float("nan")),
        "profanity_worst_lexicon_salad": profanity.get((worst_forum, SALAD_KINDS[2]), float("nan")),
        "max_false_positives": MAX_FALSE_POSITIVES, "min_toxigen_auc": MIN_TOXIGEN_AUC,
        "min_jigsaw_auc": MIN_JIGSAW_AUC,
        "reddit_flagged": web.get("reddit", float("nan")), "blogs_flagged": web.get("blogs", float("nan")),
        "webtext_flagged": web.get("webtext", float("nan")),
    }
