"""Tables for the README, generated from results (never typed by hand).

`toxlab readme --level L` (`regenerate`) rewrites the blocks between `<!-- NAME:start -->` and
`<!-- NAME:end -->` from what the book's executed chapters hold: the values each saved with
`toxlab.book.notebook.record` (`results`: chapter 3's sweep, `probes`: chapter 4's probes, `table1`: chapter 6's
benchmarks, `verdicts`: chapter 7's verdicts), their ledgers (`cost`), and bench/results.json (`bench`). It
trains, evaluates and loads nothing from the cache.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from toxlab.book import builder
from toxlab.core.errors import ToxlabError
from toxlab.interp.separability import ProbeHeadline

PROJECT_ROOT = builder.PROJECT_ROOT


def sweep_table(summary: dict) -> str:
    """Markdown table: one row per (fraction, seed) with realised fraction and held-out cross-entropies."""
    lines = [f"Preset `{summary['preset']}`, seeds {', '.join(map(str, summary['seeds']))}. "
             "Cross-entropy in nats per token on held-out Wikinews and on the C4 snippets; the unigram "
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


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


#: One markdown table per benchmark: (bench, header cells, alignments, one row's cells).
BENCH_TABLES = (
    ("train", ("preset", "device", "dtype", "tokens/s", "achieved GFLOP/s", "matmul peak GFLOP/s", "MFU", "MFU (6N)"),
     "lllrrrrr",
     lambda r: (r["preset"] + (f" (batch {r['batch']})" if r.get("batch") else ""), r["device"], r["dtype"],
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
    ("book", ("book: level", "cache", "device", "HTML built", "wall time", "stage builds (ledgers)"), "llllrr",
     lambda r: (r["preset"] + (f" ({r['part']})" if r.get("part") else ""), r["mode"], r["device"],
                "yes" if r.get("html") else "no", _minutes(r["wall_s"]),
                _minutes(r["stage_s"]) if r.get("stage_s") is not None else "")),
)


def bench_table(results: list[dict]) -> str:
    """Markdown tables of bench/results.json: training tokens/s and MFU per preset and device, then the
    `loop`, `compile`, `optimizer`, `cudagraphs`, `probe`, `iti`, `judge` and `book` lines (a table for each
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
    return "—" if value is None else format(value, spec)


def benchmark_table(rows: list[dict]) -> str:
    """The Table 1 analogue (rows from `toxlab.evaluation.evaluate.table_row`): toxicity x 100 beside its floor and the
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
        low, high = r["ToxiGen 95% CI"]
        lines.append(f"| {r['toxic fraction']:.2f} | {r['seed']} | {r['setting']} | {r['alpha']:.3g} | "
                     f"{r['ToxiGen toxicity']:.2f} | {low:.1f}-{high:.1f} | {_cell(r.get('ToxiGen floor'), '.2f')} | "
                     f"{_cell(r.get('hate - neutral'), '+.2f')} | {r['RTP challenging exp. max']:.2f} | "
                     f"{r['RTP challenging prob.']:.2f} | {r['CE increase']:+.2f} |")
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
    """The book's cost from an empty cache (`toxlab.book.builder.cost`): by chapter, then by stage."""
    lines = [f"The {cost['level']} level, from its chapters' ledgers: an entry shared by several chapters is counted "
             "where it is first needed, so the last column adds up to the level's compute from an empty cache. "
             "Each chapter was executed with the code of the commit given, with those seeds.", "",
             "| chapter | commit | seeds | last execution | entries used | their build time | first needed here | "
             "their build time |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in cost["chapters"]:
        lines.append(f"| {r['chapter']} | {r['commit'] or 'unknown'} | {r['seeds']} | {_minutes(r['wall_s'])} | "
                     f"{r['entries']:,} | {_minutes(r['stage_s'])} | {r['new_entries']:,} | "
                     f"{_minutes(r['new_stage_s'])} |")
    lines.append(f"| **all** | | | {_minutes(sum(r['wall_s'] for r in cost['chapters']))} | | | "
                 f"**{cost['entries']:,}** | **{_minutes(cost['stage_s'])}** |")
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


def recorded_tables(chapters: Path, level: str) -> dict[str, str]:
    """{block: markdown} from the records of the chapters in `chapters` (executed at `level`). A missing chapter
    or record, or one that is not what its table reads, stops with one line naming the chapter to re-execute."""
    tables = {"results": sweep_table, "table1": benchmark_table,
              "probes": lambda rows: separability_table([ProbeHeadline(**r) for r in rows]),
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
