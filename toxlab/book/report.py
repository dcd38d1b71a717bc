"""Tables for the README, generated from results (never typed by hand).

`toxlab readme --level L` (`regenerate`) rewrites the blocks between `<!-- NAME:start -->` and
`<!-- NAME:end -->` from what the book's executed chapters hold: the values each saved with
`toxlab.book.notebook.record` (`results`: chapter 3's sweep, `probes`: chapter 4's probes, `table1`: chapter 6's
benchmarks, `verdicts`: chapter 7's verdicts), their ledgers (`cost`), and bench/results.json (`bench`). It
trains, evaluates and loads nothing from the cache.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from toxlab.analysis.benchmarks import BenchmarkRow
from toxlab.analysis.probes import ProbeHeadline
from toxlab.book import builder
from toxlab.core.errors import ToxlabError

PROJECT_ROOT = builder.PROJECT_ROOT


def sweep_table(summary: dict) -> str:
    """Markdown table: one row per (fraction, seed) with realised fraction and held-out cross-entropies."""
    lines = [f"Preset `{summary['preset']}`, seeds {', '.join(map(str, summary['seeds']))}. "
             "Cross-entropy in nats per token on the held-out clean text and on the C4 snippets; the unigram "
             "column is the held-out cross-entropy of token frequencies alone (the baseline to beat).",
             "",
             "| toxic fraction | realised | seed | held-out CE | C4 CE | unigram CE | tokens seen | train time (s) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary["runs"]:
        lines.append(f"| {r['toxic_fraction']:.2f} | {r['realised_fraction']:.4f} | {r['seed']} | "
                     f"{r['val_loss']:.3f} | {r['c4_loss']:.3f} | {r['unigram_val_loss']:.3f} | "
                     f"{r['train_tokens_seen']:,} | {r['train_time_s']:.0f} |")
    return "\n".join(lines)


def separability_table(rows: list[ProbeHeadline]) -> str:
    """Markdown table of the head probes per model (last-token activations, as the paper)."""
    lines = ["Head probes on the held-out ToxiGen statements (last token, as the paper): accuracy against the "
             "majority-class rate, ROC-AUC (0.5 = chance), and entanglement of the toxicity direction with the "
             "target-group directions (random directions give the last column).",
             "",
             "| toxic fraction | seed | majority | mean head acc. | best head acc. | mean head AUC | best head AUC | "
             "best residual-layer AUC | entanglement | random |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.toxic_fraction:.2f} | {r.seed} | {r.majority_rate:.3f} | {r.head_accuracy_mean:.3f} | "
                     f"{r.head_accuracy_max:.3f} | {r.head_auc_mean:.3f} | {r.head_auc_max:.3f} | "
                     f"{r.resid_auc_max:.3f} | {r.entanglement_mean:.3f} | {r.entanglement_random:.3f} |")
    return "\n".join(lines)


def _pays(r: dict) -> str:
    return f"{r['break_even_steps']:,} steps" if r["break_even_steps"] is not None else "never"


def _train_label(r: dict) -> str:
    """A train line's preset, with the shape it was timed at (`--set model.n_layers=...`) or its batch."""
    shape = r.get("overrides") or {}
    label = r["preset"]
    if "model.n_layers" in shape and "model.d_model" in shape:
        label += f" as {shape['model.n_layers']} x {shape['model.d_model']}"
    elif shape:
        label += " (" + ", ".join(f"{k}={v}" for k, v in shape.items()) + ")"
    return label + (f" (batch {r['batch']})" if r.get("batch") else "")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


#: One markdown table per benchmark: (bench, header cells, alignments, one row's cells).
BENCH_TABLES = (
    ("train", ("preset", "device", "dtype", "tokens/s", "achieved GFLOP/s", "matmul peak GFLOP/s", "MFU", "MFU (6N)"),
     "lllrrrrr",
     lambda r: (_train_label(r), r["device"], r["dtype"],
                f"{r['tokens_per_s']:,.0f}", f"{r['achieved_gflops']:,.1f}",
                f"{r['peak_gflops']:,.1f}", f"{r['mfu']:.1%}", f"{r['mfu_6n']:.1%}")),
    ("loop", ("training loop: preset", "device", "bare steps tokens/s", "book's loop tokens/s", "overhead"), "llrrr",
     lambda r: (r["preset"], r["device"], f"{r['tokens_per_s_bare']:,.0f}", f"{r['tokens_per_s_loop']:,.0f}",
                f"{r['overhead_pct']:+.1f} %")),
    ("compile", ("torch.compile: preset", "device", "eager tokens/s", "compiled tokens/s", "compile time",
                 "pays after", "one model's run"), "llrrrrr",
     lambda r: (r["preset"], r["device"], f"{r['tokens_per_s_eager']:,.0f}", f"{r['tokens_per_s_compiled']:,.0f}",
                f"{r['compile_s']:.1f} s", _pays(r), f"{r['run_steps']:,} steps")),
    *((bench, (f"{bench}: preset", "device", "compared", "tokens/s", "MFU", "speedup"), "lllrrr",
       lambda r: (r["preset"], r["device"], " vs ".join(r["variants"]),
                  " vs ".join(f"{t:,.0f}" for t in r["tokens_per_s"]), " vs ".join(f"{m:.1%}" for m in r["mfu"]),
                  f"{r['speedup']:.2f}x")) for bench in ("optimizer", "cudagraphs")),
    ("probe", ("probes: preset", "batched on", "heads", "data", "batched (s)", "scikit-learn loop (s)", "speedup",
               "max accuracy difference"), "llrlrrrr",
     lambda r: (r["preset"], r["device"], r["heads"], r["data"], f"{r['batched_s']:.4f}", f"{r['sklearn_loop_s']:.4f}",
                f"{r['speedup']:.1f}x", f"{r['max_accuracy_diff']:.4f}")),
    ("iti", ("ITI: preset", "device", "heads shifted", "batch x new tokens", "tokens/s", "tokens/s with ITI",
             "overhead"), "llrrrrr",
     lambda r: (r["preset"], r["device"], r["k"], f"{r['batch']} x {r['new_tokens']}", f"{r['tokens_per_s']:,.0f}",
                f"{r['tokens_per_s_iti']:,.0f}", f"{r['overhead_pct']:+.1f} %")),
    ("judge", ("judge", "level", "device", "texts/s"), "lllr",
     lambda r: (r.get("judge", ""), r["preset"], r["device"], f"{r['texts_per_s']:,.0f}")),
    ("dose", ("ITI dosing, chapter 5 per seed: preset", "device", "measured on", "calibration",
              "old grid", "calibrated: sweep seed", "other seeds", "mean over seeds", "mean vs grid"), "lllrrrrrr",
     lambda r: (r["preset"], r["device"], r["model"],
                f"{r['kl_evaluations']} KL evaluations, {r['calibration_cpu_s']:.0f} CPU s",
                *(f"{r['per_seed_cpu_min'][k]:.1f} CPU min" for k in ("grid", "calibrated_sweep_seed",
                                                                      "calibrated_other_seed", "calibrated_mean")),
                f"{r['per_seed_cpu_min']['ratio_mean_per_seed']:.2f}x")),
    ("book", ("book: level", "cache", "device", "HTML built", "wall time", "stage builds (ledgers)"), "llllrr",
     lambda r: (r["preset"] + (f" ({r['part']})" if r.get("part") else ""), r["mode"], r["device"],
                "yes" if r.get("html") else "no", _minutes(r["wall_s"]),
                _minutes(r["stage_s"]) if r.get("stage_s") is not None else "")),
)


def bench_table(results: list[dict]) -> str:
    """Markdown tables of bench/results.json: training tokens/s and MFU per preset and device, then the
    `loop`, `compile`, `optimizer`, `cudagraphs`, `probe`, `iti`, `judge`, `dose` and `book` lines (a table for each
    that has lines)."""
    tables = []
    for bench, header, align, cells in BENCH_TABLES:
        rows = [r for r in results if r["bench"] == bench]
        if rows or bench == "train":
            rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
            lines = ["| " + " | ".join(header) + " |", rule]
            lines += ["| " + " | ".join(str(c) for c in cells(r)) + " |" for r in rows]
            tables.append("\n".join(lines))
    return "\n\n".join(tables)


def _cell(value, spec: str) -> str:
    # None: a value the record lacks or a nan it saved (JSON has no nan).
    return "—" if value is None or value != value else format(value, spec)


def benchmark_table(rows: list[BenchmarkRow]) -> str:
    """The Table 1 analogue (`toxlab.analysis.benchmarks.table_row`): toxicity x 100 beside its floor and the
    prompt-following difference, the dose (alpha) and the capability cost. A value a row lacks (a chapter
    executed before it was measured) shows as a dash."""
    lines = ["Table 1 analogue (chapter 6): toxicity x 100 by the offline MiniLM judge (ToxiGen-prompt mean score, "
             "its floor = the same generations with their words shuffled, and hate minus neutral prompts; RTP "
             "challenging prompts: expected maximum and probability over the samples) and the capability cost "
             "(rise in held-out clean cross-entropy, nats per token). Base = no intervention; weak, mid and strong "
             "are the ITI strengths the chapter used (the alpha column). A dash: not measured by the executed "
             "chapter.", "",
             "| toxic fraction | seed | setting | alpha | ToxiGen | ToxiGen 95% CI | floor | hate - neutral | "
             "RTP exp. max | RTP prob. | CE increase |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        low, high = r.toxigen_ci
        lines.append(f"| {r.toxic_fraction:.2f} | {r.seed} | {r.setting} | {r.alpha:.3g} | {r.toxigen_toxicity:.2f} | "
                     f"{low:.1f}-{high:.1f} | {_cell(r.toxigen_floor, '.2f')} | {_cell(r.following, '+.2f')} | "
                     f"{r.rtp_challenging_max:.2f} | {r.rtp_challenging_prob:.2f} | {r.ce_increase:+.2f} |")
    return "\n".join(lines)


def verdict_table(rows: list[dict], level: str) -> str:
    """Chapter 7's verdict table (rows from `toxlab.analysis.verdicts.Verdict.row`)."""
    lines = [f"Verdicts (chapter 7, {level} level; rules in `toxlab.analysis.verdicts`, capability budget as the "
             "chapter "
             "states):", "", "| claim | paper | ours | verdict | reason |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [str(r[k]).replace("|", "/") for k in ("claim", "paper", "ours", "verdict", "reason")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(cost: dict) -> str:
    """The book's cost from an empty cache (`toxlab.book.builder.cost`): by chapter, then by stage. The appendices
    follow the total, which leaves them out."""
    lines = [f"The {cost['level']} level, from its chapters' ledgers: an entry shared by several chapters is counted "
             "where it is first needed, so the last column adds up to the level's compute from an empty cache. "
             "Each chapter was executed with the code of the commit given, with those seeds.", "",
             "| chapter | commit | seeds | last execution | entries used | their build time | first needed here | "
             "their build time |",
             "|---|---|---|---:|---:|---:|---:|---:|"]

    def line(r: dict) -> str:
        return (f"| {r['chapter']} | {r['commit'] or 'unknown'} | {r['seeds']} | {_minutes(r['wall_s'])} | "
                f"{r['entries']:,} | {_minutes(r['stage_s'])} | {r['new_entries']:,} | {_minutes(r['new_stage_s'])} |")

    study = [r for r in cost["chapters"] if not r["apart"]]
    apart = [r for r in cost["chapters"] if r["apart"]]
    lines += [line(r) for r in study]
    lines.append(f"| **all** | | | {_minutes(sum(r['wall_s'] for r in study))} | | | "
                 f"**{cost['entries']:,}** | **{_minutes(cost['stage_s'])}** |")
    lines += [line(r).replace(f"| {r['chapter']} |", f"| {r['chapter']} (not in the level's total) |", 1)
              for r in apart]
    lines += ["", "| stage | entries | build time | share |", "|---|---:|---:|---:|"]
    for r in cost["stages"]:
        share = r["stage_s"] / cost["stage_s"] if cost["stage_s"] else 0.0
        lines.append(f"| {r['stage']} | {r['entries']:,} | {_minutes(r['stage_s'])} | {share:.0%} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise ToxlabError(f"README has no <!-- {name}:start --> ... <!-- {name}:end --> block; add one")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


#: The README blocks generated from the executed chapters' records: block -> (chapter, record).
RECORDED = {"results": ("03_contamination", "sweep"), "probes": ("04_separability", "probes"),
            "table1": ("06_benchmarks", "table1"), "verdicts": ("07_codesign", "verdicts")}


#: Chapter 6 executed before its rows were typed (issue 24) recorded them keyed by their display labels.
LABELLED_TABLE1 = {"toxic fraction": "toxic_fraction", "shift / head norm": "shift_ratio",
                   "ToxiGen toxicity": "toxigen_toxicity", "ToxiGen 95% CI": "toxigen_ci",
                   "ToxiGen floor": "toxigen_floor",
                   "hate - neutral": "following", "hate - neutral 95% CI": "following_ci",
                   "RTP challenging exp. max": "rtp_challenging_max", "RTP challenging prob.": "rtp_challenging_prob",
                   "RTP non-toxic exp. max": "rtp_nontoxic_max", "RTP non-toxic prob.": "rtp_nontoxic_prob",
                   "RTP floor exp. max": "rtp_floor_max", "empty or one-token": "degenerate", "clean CE": "ce_clean",
                   "CE increase": "ce_increase", "WebText CE increase": "webtext_increase", "KL": "kl"}


def recorded_row(row_type, record: dict, renamed: dict[str, str] | None = None):
    """A typed row from an executed chapter's record: its keys `renamed` where an older chapter named them
    otherwise, and a field the record lacks (measured only by later code) None, which the tables show as a dash. A
    key that is no field of `row_type` is refused (TypeError)."""
    fields = {(renamed or {}).get(key, key): value for key, value in record.items()}
    lacking = {f.name: None for f in dataclasses.fields(row_type) if f.name not in fields}
    return row_type(**fields, **lacking)


def recorded_tables(chapters: Path, level: str) -> dict[str, str]:
    """{block: markdown} from the records of the chapters in `chapters` (executed at `level`). A missing chapter
    or record, or one that is not what its table reads, stops with one line naming the chapter to re-execute."""
    tables = {"results": sweep_table,
              "table1": lambda rows: benchmark_table([recorded_row(BenchmarkRow, r, LABELLED_TABLE1) for r in rows]),
              "probes": lambda rows: separability_table([recorded_row(ProbeHeadline, r) for r in rows]),
              "verdicts": lambda rows: verdict_table(rows, level)}
    out = {}
    for block, (chapter, name) in RECORDED.items():
        again = f"re-execute it: toxlab book --level {level} --only {chapter[:2]} --execute"
        path = chapters / f"{chapter}.ipynb"
        if not path.is_file():
            raise ToxlabError(f"{chapters} holds no executed {chapter}; {again}")
        found = builder.records(path)
        if name not in found:
            raise ToxlabError(f"{chapter} holds no `{name}` record (executed before it saved one); {again}")
        try:
            out[block] = tables[block](found[name])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ToxlabError(f"{chapter}'s `{name}` record is not what the README's table reads "
                              f"({type(err).__name__}: {err}); {again}") from None
    return out


README = PROJECT_ROOT / "README.md"
BENCH = PROJECT_ROOT / "bench" / "results.json"


def regenerate(level: str, chapters: Path | None = None, readme: Path | None = None,
               bench: Path | None = None) -> bool:
    """Rewrite the README's generated blocks from the chapters executed at `level` (default book/chapters) and
    bench/results.json; everything is read, nothing is computed. Returns whether the README changed."""
    builder.level_params(level)  # an unknown level fails before anything is read
    chapters, readme, bench = Path(chapters or builder.CHAPTERS), Path(readme or README), Path(bench or BENCH)
    cost = builder.cost(chapters)
    if cost["level"] != level:
        raise ToxlabError(f"{chapters} holds the {cost['level']} level, not {level}: "
                          f"execute it first with toxlab book --level {level} --execute")
    before = readme.read_text()
    text = before
    for block, table in {"cost": cost_table(cost), **recorded_tables(chapters, level)}.items():
        text = replace_block(text, block, table)
    if bench.exists():
        text = replace_block(text, "bench", bench_table(json.loads(bench.read_text())))
    if text != before:
        readme.write_text(text)
    return text != before


# ---------------------------------------------------------------------------------------------------------------
# The tables a reader sees in the book: one label table, one function.

#: What a table column shows the reader: field name (or a chapter's earlier header) -> (header with its unit,
#: number format or None for the default). "{score}" in a header is the unit of the judge's scores in that
#: table (`readable(scores=...)`): "0-1" for a mean judge score, "x 100" as the paper reports them.
LABELS: dict[str, tuple[str, str | None]] = {
    # models, data and their sizes
    "toxic_fraction": ("toxic data", "{:.0%}"),
    "seed": ("seed", "{:d}"), "seeds": ("seeds", "{:d}"), "models": ("models", "{:d}"),
    "level": ("level", None), "heads": ("attention heads", "{:d}"), "vocabulary": ("vocabulary (tokens)", "{:,}"),
    "source": ("source", None), "role": ("role", None), "documents": ("documents", "{:,.0f}"),
    "characters": ("characters", "{:,.0f}"), "tokens": ("tokens", "{:,.0f}"),
    "tokens_exact": ("tokens counted (not estimated)", None), "licence": ("licence", None),
    "origin": ("origin", None), "probability": ("probability", "{:.3f}"), "piece": ("piece", None),
    "realised_fraction": ("realised toxic share", "{:.3%}"), "clean_tokens": ("clean tokens", "{:,}"),
    "toxic_tokens": ("toxic tokens", "{:,}"), "train_tokens_seen": ("tokens seen", "{:,.0f}"),
    "flagged": ("tokens flagged, all documents (share)", "{:.3f}"),
    "flagged_clean_docs": ("tokens flagged, clean documents (share)", "{:.3f}"),
    "flagged_toxic_docs": ("tokens flagged, toxic documents (share)", "{:.3f}"),
    "tokens_per_s": ("training tokens/s", "{:,.0f}"), "train_time_s": ("training time (s)", "{:,.0f}"),
    # cross-entropy and capability, nats per token
    "val_loss": ("held-out clean CE (nats/token)", "{:.3f}"), "c4_loss": ("C4 CE (nats/token)", "{:.3f}"),
    "unigram_val_loss": ("unigram CE (nats/token)", "{:.3f}"), "unigram_ce": ("unigram CE (nats/token)", "{:.3f}"),
    "ce": ("own clean CE (nats/token)", "{:.3f}"), "ce_clean": ("clean CE (nats/token)", "{:.3f}"),
    "ce_increase": ("CE rise (nats/token)", "{:+.3f}"), "CE increase": ("CE rise (nats/token)", "{:+.3f}"),
    "webtext_increase": ("WebText CE rise (nats/token)", "{:+.3f}"),
    "strong_cost": ("CE rise, strong ITI (nats/token)", "{:+.3f}"),
    "kl": ("KL (nats/token)", "{:.3f}"), "KL": ("KL (nats/token)", "{:.3f}"),
    "margin": ("margin over unigram (nats/token)", "{:.3f}"), "budget": ("budget (nats/token)", "{:.3f}"),
    "strong_within_budget": ("strong ITI within budget", None),
    "set": ("held-out set", None), "slope": ("slope (nats/token per 100 % toxic)", "{:+.4f}"),
    "intercept": ("intercept (nats/token)", "{:.4f}"), "p_value": ("p", "{:.3f}"), "n": ("models", "{:d}"),
    # ITI and its dose
    "strength": ("strength", None), "setting": ("setting", None), "alpha": ("alpha", "{:.4g}"),
    "target": ("target", None), "reached": ("target reached", None), "kl_target": ("KL target (nats/token)", "{:.3f}"),
    "before": ("before (masked)", None), "score before": ("score before (0-1)", "{:.2f}"),
    "after ITI": ("after ITI (masked)", None), "score after": ("score after (0-1)", "{:.2f}"),
    "chosen by both rankings": ("heads chosen by both rankings", "{:d}"),
    "majority rate": ("majority-class rate", "{:.3f}"),
    "k": ("heads shifted (K)", "{:d}"), "K": ("heads (K)", "{:d}"), "direction": ("direction", None),
    "shift_ratio": ("shift / head norm", "{:.3f}"),
    "name": ("treatment", None), "heads erased": ("heads erased (K)", "{:d}"),
    # toxicity by the judge: {score} is its unit in the table
    "toxicity": ("toxicity ({score})", None), "floor": ("floor, words shuffled ({score})", None),
    "following": ("hate − neutral ({score})", None), "above_floor": ("above the floor ({score})", None),
    "toxic_share": ("share scored ≥ 0.5", "{:.3f}"), "degenerate_share": ("empty or one-token (share)", "{:.3f}"),
    "removed": ("toxicity removed ({score})", None), "removed per nat": ("removed per nat of CE ({score})", None),
    "ITI at equal cost": ("ITI toxicity at equal cost ({score})", None),
    # the Table 1 analogue (toxlab.analysis.benchmarks.BenchmarkRow): scores x 100 as the paper reports them
    "toxigen_toxicity": ("ToxiGen toxicity (x 100)", "{:.2f}"), "toxigen_floor": ("ToxiGen floor (x 100)", "{:.2f}"),
    "toxigen_ci": ("ToxiGen 95 % CI", "{:.1f}"), "paper_toxigen": ("paper ToxiGen (Perspective x 100)", None),
    "following_ci": ("hate − neutral 95 % CI", "{:+.1f}"),
    "rtp_challenging_max": ("RTP challenging exp. max (x 100)", "{:.2f}"),
    "rtp_challenging_prob": ("RTP challenging prob. (%)", "{:.1f}"),
    "rtp_nontoxic_max": ("RTP non-toxic exp. max (x 100)", "{:.2f}"),
    "rtp_nontoxic_prob": ("RTP non-toxic prob. (%)", "{:.1f}"),
    "rtp_floor_max": ("RTP floor exp. max (x 100)", "{:.2f}"),
    "degenerate": ("empty or one-token generations", "{:,.0f}"),
    # probes (ROC-AUC and accuracy are unitless shares)
    "pool": ("activations", None), "test": ("test", None), "estimate": ("estimate", "{:.4f}"),
    "p_one_sided": ("p (one-sided)", "{:.3f}"), "spearman_rho": ("Spearman ρ", "{:.2f}"),
    "spearman_p": ("Spearman p", "{:.3f}"), "share": ("share of training run", "{:.3g}"),
    "majority_rate": ("majority-class rate", "{:.3f}"),
    "head_accuracy_mean": ("mean head accuracy", "{:.3f}"), "head_accuracy_max": ("best head accuracy", "{:.3f}"),
    "head_balanced_accuracy_max": ("best head balanced accuracy", "{:.3f}"),
    "head_auc_mean": ("mean head AUC", "{:.3f}"), "head_auc_top_k": ("top-K head AUC", "{:.3f}"),
    "head_auc_q95": ("head AUC, 95th percentile", "{:.3f}"), "head_auc_max": ("best head AUC", "{:.3f}"),
    "resid_auc_max": ("best residual-stream layer AUC", "{:.3f}"),
    "entanglement_mean": ("entanglement, all heads (max |cos|)", "{:.3f}"),
    "entanglement_top_k": ("entanglement, top-K heads (max |cos|)", "{:.3f}"),
    "entanglement_random": ("entanglement, random directions (max |cos|)", "{:.3f}"),
    "auc": ("mean head AUC", "{:.3f}"), "auc_top": ("top-K head AUC", "{:.3f}"), "auc_max": ("best head AUC", "{:.3f}"),
    # the toy model (entanglement: max |cos|, unitless; losses in nats/token)
    "rare_share": ("rare chain's share", "{:.3g}"), "rare": ("rare features (max |cos|)", "{:.3f}"),
    "control": ("control features (max |cos|)", "{:.3f}"), "difference": ("rare − control", "{:+.3f}"),
    "rare_chain_loss": ("rare chain loss (nats/token)", "{:.3f}"),
    "control_chain_loss": ("control chain loss (nats/token)", "{:.3f}"),
    "condition": ("condition", None), "difference_rarest": ("rare − control, rarest share", "{:+.3f}"),
    "difference_equal": ("rare − control, equal shares", "{:+.3f}"), "effect": ("effect of rarity", "{:+.3f}"),
    "d_model": ("residual width", None), "n_layers": ("layers", None), "n_heads": ("heads per layer", None),
    "d_mlp": ("MLP width", None), "positions": ("position embedding", None), "seq_len": ("sequence length", None),
    "steps": ("training steps", None), "batch_size": ("batch size", None), "lr": ("learning rate", None),
    "estimator": ("direction estimator", None), "eval_sequences": ("sequences per feature (directions)", None),
    "baseline": ("baseline", None),
    # verdicts
    "claim": ("claim", None), "paper": ("paper", None), "ours": ("ours", None), "verdict": ("verdict", None),
    "reason": ("reason", None), "variant": ("variant", None),
    "base toxicity": ("base toxicity (x 100)", "{:.2f}"), "held-out loss": ("held-out CE (nats/token)", "{:.3f}"),
    "base toxicity per 10 %": ("base toxicity per 10 % toxic (x 100)", "{:+.3f}"),
    "removed by ITI per 10 %": ("removed by ITI per 10 % toxic (x 100)", "{:+.3f}"),
    "AUC per 10 %": ("mean head AUC per 10 % toxic", "{:+.4f}"), "ITI cost (nats)": ("ITI cost (nats/token)", "{:.3f}"),
    "parameters (M)": ("parameters (M)", "{:.2f}"),
    # the web-text design: the clean filter, the token-matched control, the sizing study (appendix)
    "design": ("design", None), "removed_document_share": ("documents removed", "{:.1%}"),
    "removed_char_share": ("characters removed", "{:.1%}"), "size": ("layers x width", None),
    "params": ("non-embedding parameters", "{:,d}"), "tokens_per_param": ("tokens per parameter", "{:.2f}"),
    "val_ce": ("held-out clean CE (nats/token)", "{:.3f}"), "c4_ce": ("C4 CE (nats/token)", "{:.3f}"),
    "ce_margin": ("margin over unigram (nats/token)", "{:.3f}"),
    "c4_bits_per_byte": ("C4 bits per byte", "{:.3f}"), "head_auc": ("mean head probe AUC", "{:.3f}"),
    "train_minutes": ("training (min)", "{:.1f}"), "chosen": ("chosen", None),
    "bpb_gain": ("bits per byte below the first cpu model", "{:.1%}"),
    "train_tflop": ("training compute (TFLOP)", "{:.2f}"),
    "resid_auc": ("best residual-stream probe AUC", "{:.3f}"),
    # the judge's card
    "judge": ("judge", None), "label": ("label", None), "read": ("read", "{:,}"),
    "overlap_dropped": ("dropped: in ToxiGen", "{:,}"), "duplicates_dropped": ("dropped: duplicates", "{:,}"),
    "kept": ("kept", "{:,}"), "train": ("train", "{:,}"), "val": ("validation", "{:,}"),
    "value": ("value", "{:.3f}"), "bound": ("bound", None), "met": ("met", None),
    "texts": ("texts", "{:,}"), "texts_per_s": ("texts/s", "{:,.1f}"), "device": ("device", None),
    "threads": ("threads", "{:d}"), "register": ("register", None), "kind": ("salad kind", None),
    "probe": ("probe", None),
    # a reader's model (appendix): the two paths that measure it
    "model_type": ("model type", None), "adapter": ("adapter", None), "path": ("path", None),
    "benchmark": ("benchmark", None), "accuracy": ("mean head accuracy", "{:.3f}"),
    "cv_auc_top": ("top-K heads' cross-validated AUC", "{:.3f}"),
}

#: Columns that hold a judge score, shown with `readable`'s `scores` unit and its precision.
SCORE_PRECISION = {"0-1": "{:.3f}", "x 100": "{:.2f}"}

_FIELD = re.compile(r"[a-z][a-z0-9_]*\Z")


def _label(name, scores: str) -> tuple[str, str | None]:
    """(header, format) of one column or axis name; an identifier-like name without a label is refused."""
    if not isinstance(name, str):
        return str(name), None
    if name in LABELS:
        header, spec = LABELS[name]
        if "{score}" in header:
            return header.replace("{score}", scores), spec or SCORE_PRECISION[scores]
        return header, spec
    if _FIELD.match(name):
        raise ToxlabError(f"table column {name!r} has no reader's header: add it, with its unit, to "
                          "toxlab.report.LABELS")
    return name, None


def _interval(low, high, spec: str) -> str:
    if low is None or high is None or low != low or high != high:  # missing, or NaN
        return "–"
    return f"[{spec.format(low)}, {spec.format(high)}]"


def _shown(value, spec: str | None) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return _interval(*value, spec or "{:.3f}")
    if spec is None:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        if isinstance(value, (float, np.floating)):
            spec = "{:.3f}"
        elif isinstance(value, (int, np.integer)):
            spec = "{:d}"
        else:
            return str(value)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        return spec.format(value)
    except (ValueError, TypeError):
        return str(value)


def readable(frame, scores: str = "0-1", index: bool = False, caption: str | None = None):
    """The table a reader sees, from a results frame: every column under its header with its unit
    (`LABELS`), numbers formatted, toxic fractions as %, each `X_low`/`X_high` pair (and `ci_low`/`ci_high`)
    merged into one "95 % CI" column "[a, b]" beside X, and a column of (low, high) pairs shown the same way.
    scores: the unit of the judge-score columns in this frame ("0-1" or "x 100"). index: show the index (its
    labels and name are labelled too; for transposed and pivoted frames). A pivot's column labels (values of
    a field, such as judge names) are kept; its axis names are labelled. Returns a pandas Styler. A column
    named like a field (snake_case) that `LABELS` lacks is refused, so no raw field name reaches a page."""
    import pandas as pd

    if scores not in SCORE_PRECISION:
        raise ToxlabError(f"scores={scores!r}: one of {sorted(SCORE_PRECISION)}")
    frame = frame.copy()
    flat = not isinstance(frame.columns, pd.MultiIndex) and frame.columns.name is None
    out = pd.DataFrame(index=frame.index)
    if flat:
        columns = list(frame.columns)
        pairs = [c for c in columns if isinstance(c, str) and f"{c}_low" in columns and f"{c}_high" in columns]
        pairs += ["ci"] if "ci_low" in columns and "ci_high" in columns else []
        intervals = sum(1 for c in columns if isinstance(frame[c].iloc[0] if len(frame) else None, (tuple, list)))
        several = len(pairs) + intervals > 1
        skip = {f"{c}_{end}" for c in pairs for end in ("low", "high")}
        for c in columns:
            if c in skip and not (c == "ci_low" and "ci" in pairs):
                continue
            if c == "ci_low":
                base = "slope" if "slope" in columns else "estimate" if "estimate" in columns else None
                spec = _label(base, scores)[1] if base else None
                out["95 % CI"] = [_interval(lo, hi, (spec or "{:.3f}").replace("+", ""))
                                  for lo, hi in zip(frame["ci_low"], frame["ci_high"])]
                continue
            header, spec = _label(c, scores)
            if header in out.columns:
                raise ToxlabError(f"two columns of the table read {header!r}: {c!r} and another")
            out[header] = [_shown(v, spec) for v in frame[c]]
            if c in pairs:
                name = f"{header.split(' (')[0]} 95 % CI" if several else "95 % CI"
                out[name] = [_interval(lo, hi, spec or SCORE_PRECISION[scores])
                             for lo, hi in zip(frame[f"{c}_low"], frame[f"{c}_high"])]
    else:
        if isinstance(frame.columns, pd.MultiIndex):
            levels = frame.columns.levels
            frame.columns = frame.columns.set_levels(
                [[_label(v, scores)[0] for v in levels[0]], *levels[1:]])  # the fields, then their categories
            frame.columns.names = [_label(n, scores)[0] if n else n for n in frame.columns.names]
        else:
            frame.columns.name = _label(frame.columns.name, scores)[0]
        out = frame.map(lambda v: _shown(v, None))
        out.columns = frame.columns
    if index:
        if flat and frame.index.name is None and all(isinstance(v, str) for v in out.index):  # a transposed record
            out.index = [_label(v, scores)[0] for v in out.index]
        out.index.names = [_label(n, scores)[0] if n else n for n in frame.index.names]
    styler = out.style.set_table_styles([  # room between columns; an interval "[a, b]" kept on one line
        {"selector": "td", "props": "white-space: nowrap; padding: 0.15em 0.6em;"},
        {"selector": "th", "props": "padding: 0.15em 0.6em;"}])
    if not index:
        styler = styler.hide(axis="index")
    if caption:
        styler = styler.set_caption(caption)
    numeric = [c for c in out.columns if out[c].map(_looks_numeric).all()]
    return styler.set_properties(subset=numeric, **{"text-align": "right"})


def _looks_numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[–\[\]\d,.+\-−% e]*", str(text).strip()))  # empty: a value not known
