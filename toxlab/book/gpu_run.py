"""Bring a gpu-level run home: the chapters bench/gpu_book.sh executed on a GPU, and a page of its results.

A run on a lent GPU machine returns one archive per call (gpu_book.tar.gz: executed chapters, every result
JSON of its cache, timings, the machine). `toxlab gpu import RUN [RUN ...]`, each RUN the folders its archives
were unpacked into, comma-separated in call order (later calls continue from the earlier ones' cache on the
same machine), runs oldest first (each a fresh machine, so each has its own models), writes:

- book/chapters/gpu/NN_name.ipynb: each chapter that finished, as executed there, its figure labels prefixed
  with `gpu-` (they share the book with the cpu level's) and its title marked with the level;
- book/gpu_level.json: the numbers (per model: held-out loss, throughput; per probe: head and residual AUC;
  the trends across fractions with 95 % intervals; chapter wall times; the machine);
- book/gpu_level.md: the page that shows them, a section per run, with what did not run and why.
A chapter that finished in several runs is shown as the latest run executed it.
Every number on the page is computed here from the returned JSONs; none is typed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from toxlab.analysis import statistics
from toxlab.analysis.benchmarks import frontier_row
from toxlab.core.config import DataConfig
from toxlab.core.errors import ToxlabError

CHAPTER_TITLES = {"01": "background", "02": "toy", "03": "contamination", "04": "separability",
                  "05": "intervention", "06": "benchmarks", "07": "co-design", "08": "judge"}


def _jsons(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(pattern))]


#: One report of a pretraining progress bar: "pretrain:  25%|...| 120/488 [00:24<00:53, ...".
_BAR = re.compile(r"pretrain:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<")


def progress_bars(notebook: Path) -> list[dict]:
    """The pretraining progress bars printed in an executed chapter, one dict per model trained there:
    `steps`, `first_report` (the first step count reported after 0) and `first_report_s` (when: it holds
    the compilation), `end_s` (tqdm's elapsed seconds, 1 s resolution)."""
    import nbformat
    text = "".join(output.get("text", "") for cell in nbformat.read(notebook, as_version=4).cells
                   for output in cell.get("outputs", []) if output.get("output_type") == "stream")
    bars: list[dict] = []
    for step, total, hours, minutes, seconds in _BAR.findall(text):
        step, total = int(step), int(total)
        elapsed = 3600 * int(hours or 0) + 60 * int(minutes) + int(seconds)
        if step == 0:
            bars.append({"steps": total, "first_report": None, "first_report_s": None, "end_s": None})
        elif bars and bars[-1]["steps"] == total:
            bar = bars[-1]
            if bar["first_report"] is None:
                bar["first_report"], bar["first_report_s"] = step, elapsed
            if step == total:
                bar["end_s"] = elapsed
    return [b for b in bars if b["end_s"] is not None and b["end_s"] > b["first_report_s"]]


def summarise(run_dirs: list[Path]) -> dict:
    """The numbers of a gpu-level run (one unpacked archive per call, in call order)."""
    run_dirs = [Path(d) for d in run_dirs]
    for d in run_dirs:
        if not (d / "machine.txt").is_file():
            raise ToxlabError(f"{d} holds no machine.txt: give the folder an archive of bench/gpu_book.sh was "
                              f"unpacked into")
    last = run_dirs[-1] / "cache"
    machine = (run_dirs[-1] / "machine.txt").read_text().strip().splitlines()
    calls = [[json.loads(line) for line in (d / "timings.jsonl").read_text().splitlines() if line.strip()]
             for d in run_dirs]
    models = []
    for path in sorted(last.glob("pretrain/*/metrics.json")):
        m = json.loads(path.read_text())
        if m.get("preset") == "gpu":  # written_s: when the model was saved (the archive keeps file times)
            models.append({k: m[k] for k in ("toxic_fraction", "seed", "val_loss", "c4_loss", "unigram_val_loss",
                                             "tokens_per_s", "train_time_s", "steps", "train_tokens_seen", "device",
                                             "precision")}
                          | {"params": m["params"]["total"], "first_step_s": m.get("first_step_s"),
                             "written_s": int(path.stat().st_mtime)})
    models.sort(key=lambda r: (r["toxic_fraction"], r["seed"]))
    configs = [json.loads(path.read_text()) for path in last.glob("pretrain/*/config.json")]
    designs = {_design(c["data"]) for c in configs if c.get("preset") == "gpu"}
    probes = sorted(({"toxic_fraction": p["toxic_fraction"], "seed": p["seed"], "pool": p["pool"],
                      "heads": int(np.size(p["head_val_auc"])),
                      "head_auc": float(np.mean(p["head_val_auc"])), "head_auc_max": float(np.max(p["head_val_auc"])),
                      "resid_auc": float(np.mean(p["resid_val_auc"]))}
                     for p in _jsons(last, "probe/*/summary.json")),
                    key=lambda r: (r["pool"], r["toxic_fraction"], r["seed"]))
    trends = {}
    if len(models) >= 3:
        trends["held-out clean loss"] = statistics.linear_trend([m["toxic_fraction"] for m in models],
                                                              [m["val_loss"] for m in models])
    for pool in sorted({p["pool"] for p in probes}):
        rows = [p for p in probes if p["pool"] == pool]
        if len({r["toxic_fraction"] for r in rows}) >= 3:
            trends[f"mean head probe AUC ({pool} token{'s' if pool == 'mean' else ''})"] = statistics.linear_trend(
                [r["toxic_fraction"] for r in rows], [r["head_auc"] for r in rows])
    iti = _iti_rows(last)
    gpu_name = machine[1].split(",")[0] if len(machine) > 1 else ""
    bench = {}  # a later call's copy of a figure replaces an earlier one's (calls on one machine share the file)
    for d in run_dirs:
        if (d / "cache" / "bench_results.json").is_file():
            for b in json.loads((d / "cache" / "bench_results.json").read_text()):
                if b.get("device") == gpu_name:
                    bench[(b["bench"], b.get("preset"), b.get("batch"))] = b
    bench = list(bench.values())
    notebooks = {n.name: n for d in run_dirs for n in sorted((d / "book" / "chapters").glob("*.ipynb"))}
    bars = [bar for name in sorted(notebooks) for bar in progress_bars(notebooks[name])]  # a later call's copy wins
    return {"machine": machine, "calls": calls, "models": models, "probes": probes, "trends": trends,
            "bench": bench, "progress": bars, "iti": iti, "design": " and ".join(sorted(designs)) or None}


#: What each data design is (toxlab.core.config: the first design, then the web-text design of issue 25).
DESIGNS = {"first": "the first design: Wikinews only, unfiltered, beside the first toxic recipe (mostly /biz/)",
           "web-text": "the web-text design: news, blogs and Reddit filtered with C4's word list, beside /pol/"}
#: Runs imported before a run recorded its design (both on 2026-11-26) trained the gpu preset of then, which was
#: the first design until 2026-12-03.
UNRECORDED_DESIGN = "first"


def _design(data: dict) -> str:
    """The design of a model's data config (its cache entry's `config.json` "data", which leaves out the fields
    at the first design's values: `DataConfig.keyed`)."""
    recipe = data.get("clean_recipe")
    config = DataConfig(clean_recipe=tuple(map(tuple, recipe)) if recipe else DataConfig.clean_recipe,
                        clean_filter=data.get("clean_filter", DataConfig.clean_filter))
    return "first" if config.is_first_design() else "web-text"


def design_note(summary: dict) -> str:
    """Which design a run's models were trained on, and what that means beside the cpu book."""
    design = summary.get("design") or UNRECORDED_DESIGN
    note = f"Data: **{DESIGNS.get(design, design)}**."
    if design != "web-text":
        note += (" The gpu preset and the cpu book now use the web-text design (issue 25), so this run's numbers "
                 "are the first design's: compare their directions with the cpu chapters', not their levels, until a "
                 "GPU run of the web-text design replaces them.")
    return note


def _iti_rows(cache: Path) -> list[dict]:
    """Chapter 5's points that finished: each (model, intervention) with both its ToxiGen toxicity and its
    capability cost (`toxlab.analysis.benchmarks.frontier_row`), even when the chapter itself was cut."""
    runs: dict[tuple, dict] = {}
    for path in sorted(cache.glob("evaluate/*/result.json")):
        r = json.loads(path.read_text())
        if r.get("benchmark") in ("toxigen", "ce") and not r.get("instruction") and not r.get("baseline"):
            point = (r["toxic_fraction"], r["seed"], r["alpha"], r["k"], r["direction"])
            runs.setdefault(point, {})[r["benchmark"]] = r
    rows = [frontier_row(pair["toxigen"], pair["ce"]) for pair in runs.values() if len(pair) == 2]
    return sorted(rows, key=lambda r: (r["direction"], r["k"], r["toxic_fraction"], r["seed"], r["alpha"]))


def import_chapters(run_dir: Path, chapters: Path) -> list[Path]:
    """Copy the executed chapters of `run_dir` into `chapters` with `gpu-` labels and the level in the title."""
    import nbformat
    chapters.mkdir(parents=True, exist_ok=True)
    out = []
    for source in sorted((Path(run_dir) / "book" / "chapters").glob("*.ipynb")):
        notebook = nbformat.read(source, as_version=4)
        if notebook.metadata.get("toxlab", {}).get("level") != "gpu":
            raise ToxlabError(f"{source} was not executed at the gpu level")
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = cell.source.replace(":name: fig-", ":name: gpu-fig-").replace("`fig-", "`gpu-fig-")
        first = next(c for c in notebook.cells if c.cell_type == "markdown")
        title, _, rest = first.source.partition("\n")
        if title.startswith("# ") and "(gpu level)" not in title:
            first.source = f"{title} (gpu level)\n{rest}"
        target = chapters / source.name
        nbformat.write(notebook, target)
        out.append(target)
    return out


def _trend_line(name: str, t: dict, unit: str) -> str:
    return (f"| {name} | {t['slope'] / 10:+.4f} {unit} | {t['ci_low'] / 10:+.4f} to {t['ci_high'] / 10:+.4f} | "
            f"{t['p_value']:.3g} | {t['n']} |")


def _reading(name: str, t: dict) -> str:
    if t["ci_low"] > 0:
        return f"{name} rises with the toxic fraction"
    if t["ci_high"] < 0:
        return f"{name} falls with the toxic fraction"
    return f"{name} shows no trend the interval resolves"


def page(summary: dict, command: str) -> str:
    """The markdown page of a gpu-level run."""
    machine = summary["machine"]
    gpu = machine[1].split(",")[0] if len(machine) > 1 else "unknown"
    lines = ["# The gpu level: one run on one GPU", "",
             f"Machine: **{gpu}**; software: {machine[-1] if machine else 'unknown'}. Command, from a copy of "
             f"the repository with the packed data and the carried wheels beside it (README: GPU):", "",
             f"```\n{command}\n```", "", design_note(summary), "",
             "Every number below is computed by `toxlab gpu import` from the result files the run returned; the "
             "chapters that finished follow this page as they were executed there.", "",
             "## What ran, and for how long", "",
             "| call | chapter | status | wall time (s) |", "| --- | --- | --- | --- |"]
    for call, rows in enumerate(summary["calls"], 1):
        for r in rows:
            status = {0: "finished", 124: "cut at the time budget"}.get(r["rc"], f"failed ({r['rc']})")
            name = CHAPTER_TITLES.get(r["chapter"], "")
            lines.append(f"| {call} | {r['chapter']} {name} | {status} | {r['wall_s']} |")
    total = sum(r["wall_s"] for rows in summary["calls"] for r in rows)
    ran = {r["chapter"] for rows in summary["calls"] for r in rows if r["rc"] == 0}
    missing = [f"{nn} {name}" for nn, name in CHAPTER_TITLES.items() if nn not in ran and nn != "02"]
    lines += ["", f"Chapters took {total} s in all over {len(summary['calls'])} call(s). "
              + (f"Not finished at this level: {', '.join(missing)}." if missing else "Every chapter finished."), ""]
    models = summary["models"]
    if models:
        fractions = sorted({m["toxic_fraction"] for m in models})
        seeds = len({m["seed"] for m in models})
        unigram = np.mean([m["unigram_val_loss"] for m in models])
        lines += ["## The models", "",
                  f"{len(models)} models ({len(fractions)} toxic fractions x {seeds} seeds), "
                  f"{models[0]['params'] / 1e6:.1f}M parameters, {models[0]['precision']}. Held-out clean "
                  f"cross-entropy (nats/token; the unigram model scores {unigram:.2f}):", "",
                  "| toxic fraction | held-out loss (mean over seeds) | seeds | steps | tokens/s (mean) |",
                  "| --- | --- | --- | --- | --- |"]
        for f in fractions:
            rows = [m for m in models if m["toxic_fraction"] == f]
            loss, speed = np.mean([m["val_loss"] for m in rows]), np.mean([m["tokens_per_s"] for m in rows])
            lines.append(f"| {f:.0%} | {loss:.3f} | {len(rows)} | {rows[0]['steps']} | {speed:,.0f} |")
        lines += _training_order(models)
    probes = summary["probes"]
    if probes:
        lines += ["", "## Probes (chapter 4's first step)", "",
                  f"Mean over the {probes[0]['heads']} heads of the held-out ROC-AUC of a linear probe for "
                  "toxicity (ToxiGen statements), per toxic fraction, mean over the seeds that finished:", "",
                  "| pool | " + " | ".join(f"{f:.0%}" for f in sorted({p['toxic_fraction'] for p in probes})) + " |",
                  "| --- |" + " --- |" * len({p['toxic_fraction'] for p in probes})]
        for pool in sorted({p["pool"] for p in probes}):
            cells = []
            for f in sorted({p["toxic_fraction"] for p in probes}):
                rows = [p for p in probes if p["pool"] == pool and p["toxic_fraction"] == f]
                cells.append(f"{np.mean([r['head_auc'] for r in rows]):.3f} (n={len(rows)})" if rows else "-")
            lines.append(f"| {pool} | " + " | ".join(cells) + " |")
    if summary["trends"]:
        lines += ["", "## Trends across fractions", "",
                  "Least-squares slope per 10 % toxic data over every model (each model one point), with its 95 % "
                  "interval and the p-value of a zero slope:", "",
                  "| quantity | slope per 10 % | 95 % interval | p | models |", "| --- | --- | --- | --- | --- |"]
        for name, t in summary["trends"].items():
            lines.append(_trend_line(name, t, "nats" if "loss" in name else "AUC"))
    reading = [_reading(name, t) for name, t in summary["trends"].items()]
    if reading:
        lines += ["", "Read at 95 %: " + "; ".join(reading) + ". The clean tokens are fixed and toxic ones are "
                  "added, so a more toxic mixture also trains on more tokens in all (the steps column)."]
    lines += _iti_section(summary.get("iti", []))
    for b in summary["bench"]:
        if b.get("bench") == "train":
            batch = f" at batch {b['batch']} instead of the preset's" if b.get("batch") else ""
            lines += ["", f"Training throughput measured in the same run (bench/train_bench.py, gpu preset{batch}, "
                      f"{b['steps']} steps, torch.compile {'on' if b.get('compile') else 'off'}): "
                      f"{b['tokens_per_s']:,.0f} tokens/s, {b['mfu']:.1%} of the {b['peak_gflops'] / 1e3:,.0f} TFLOP/s "
                      f"bf16 matmul peak measured there (MFU)."]
            if not b.get("batch"):
                lines += _progress_reading(summary.get("progress", []), models, b)
        if b.get("bench") in ("optimizer", "cudagraphs"):
            (a, z), (ta, tz), (ma, mz) = b["variants"], b["tokens_per_s"], b["mfu"]
            what = {"optimizer": "AdamW", "cudagraphs": "the compiled step with CUDA graphs"}[b["bench"]]
            lines += ["", f"{what[0].upper() + what[1:]}, {a} against {z}, side by side in the same run: "
                      f"{ta:,.0f} against {tz:,.0f} tokens/s ({ma:.1%} against {mz:.1%} MFU), {b['speedup']:.2f}x."]
        if b.get("bench") == "iti":
            lines += ["", f"ITI's cost to generation in the same run (bench/iti_bench.py, {b['k']} heads, batch "
                      f"{b['batch']} x {b['new_tokens']} new tokens): {b['tokens_per_s_iti']:,.0f} against "
                      f"{b['tokens_per_s']:,.0f} tokens/s without, {b['overhead_pct']:+.1f} %."]
        if b.get("bench") == "loop":
            lines += ["", f"The book's training loop (`toxlab.model.train.train`) timed beside the bare steps in the "
                      "same "
                      f"run: {b['tokens_per_s_loop']:,.0f} against {b['tokens_per_s_bare']:,.0f} tokens/s, "
                      f"{b['overhead_pct']:+.1f} %."]
        if b.get("bench") == "compile":
            pays = (f"pays after {b['break_even_steps']:,} steps" if b["break_even_steps"] is not None
                    else "never pays")
            lines += ["", f"torch.compile in the same run: {b['tokens_per_s_compiled']:,.0f} tokens/s compiled against "
                      f"{b['tokens_per_s_eager']:,.0f} eager, for {b['compile_s']:.1f} s of compiling: it {pays}, "
                      f"against {b['run_steps']:,} steps in the 0 % model's run."]
    return "\n".join(lines) + "\n"


def _iti_section(rows: list[dict]) -> list[str]:
    """Chapter 5's alpha sweep at the most common K (mass-mean direction): toxicity and cost per fraction, and
    how what ITI removes, what it costs and what it leaves change with the toxic fraction."""
    sweep = [r for r in rows if r["direction"] == "mass_mean"]
    if not sweep:
        return []
    ks = [r["k"] for r in sweep]
    k = max(set(ks), key=ks.count)
    sweep = [r for r in sweep if r["k"] == k]
    alphas = sorted({r["alpha"] for r in sweep})
    fractions = sorted({r["toxic_fraction"] for r in sweep})

    def mean(key: str, f: float, a: float) -> float | None:
        values = [r[key] for r in sweep if r["toxic_fraction"] == f and r["alpha"] == a]
        return float(np.mean(values)) if values else None

    lines = ["", "## ITI (chapter 5's sweep)", "",
             f"ToxiGen toxicity (mean MiniLM-judge score of the continuations, x 100) and, in brackets, its capability "
             f"cost (rise in held-out clean cross-entropy, nats/token) under ITI on the top {k} heads along the "
             f"mass-mean direction, per toxic fraction and strength alpha (0 = no intervention), from the evaluations "
             f"that finished (seeds: {', '.join(str(s) for s in sorted({r['seed'] for r in sweep}))}):", "",
             "| toxic fraction | " + " | ".join(f"alpha {a:g}" for a in alphas) + " |",
             "| --- |" + " --- |" * len(alphas)]
    for f in fractions:
        cells = [f"{100 * mean('toxicity', f, a):.1f} ({mean('ce_increase', f, a):+.2f})"
                 if mean("toxicity", f, a) is not None else "-" for a in alphas]
        lines.append(f"| {f:.0%} | " + " | ".join(cells) + " |")
    top = max(alphas)
    done = [f for f in fractions if mean("toxicity", f, 0.0) is not None and mean("toxicity", f, top) is not None]
    if top > 0 and len(done) >= 3:
        before = {f: 100 * mean("toxicity", f, 0.0) for f in done}
        after = {f: 100 * mean("toxicity", f, top) for f in done}
        removed = statistics.linear_trend(done, [before[f] - after[f] for f in done])
        cost = statistics.linear_trend(done, [mean("ce_increase", f, top) for f in done])
        lines += ["", f"The toxicity ITI removes at alpha {top:g} (alpha 0 minus alpha {top:g}, x 100) changes by "
                  f"{_per_10(removed, '.2f')} per 10 % toxic data: "
                  + ("it removes more from models trained on more toxic data" if removed["ci_low"] > 0 else
                     "it removes less from models trained on more toxic data" if removed["ci_high"] < 0 else
                     "no trend with the toxic fraction at 95 %")
                  + f". Its capability cost changes by {_per_10(cost, '.3f')} nats per 10 %. The toxicity it leaves "
                  f"ranges {min(after.values()):.1f}-{max(after.values()):.1f} across fractions, from "
                  f"{min(before.values()):.1f}-{max(before.values()):.1f} without it: part of what ITI removes from "
                  "the more toxic models is the extra toxicity they start with."]
    others = [r for r in rows if (r["direction"], r["k"]) != ("mass_mean", k)]
    if others:
        lines += ["", "Other finished evaluations (toxicity x 100, cost): " + "; ".join(
            f"{r['direction']} K={r['k']} alpha {r['alpha']:g} at {r['toxic_fraction']:.0%}: "
            f"{100 * r['toxicity']:.1f} ({r['ce_increase']:+.2f})" for r in others) + "."]
    return lines


def _per_10(t: dict, fmt: str) -> str:
    """A trend's slope per 10 % toxic data with its 95 % interval and p-value, in words."""
    return (f"{t['slope'] / 10:+{fmt}} (95 % interval {t['ci_low'] / 10:+{fmt}} to {t['ci_high'] / 10:+{fmt}}, "
            f"p = {t['p_value']:.2g}, {t['n']} fractions)")


def _training_order(models: list[dict]) -> list[str]:
    """Each model's pace in the order the models were saved: does a long process slow down?"""
    order = sorted(models, key=lambda m: m["written_s"])
    launch_only = any(m.get("first_step_s") is None for m in models)
    lines = ["", "In the order the models were trained (by the time each was saved; a gap of more than a minute "
             "between two marks a new process or call):", "",
             "| # | saved at (s) | toxic fraction | seed | steps | train time (s) | ms a step |", "| --- " * 7 + "|"]
    for i, m in enumerate(order, 1):
        lines.append(f"| {i} | {m['written_s'] - order[0]['written_s']} | {m['toxic_fraction']:.0%} | {m['seed']} | "
                     f"{m['steps']} | {m['train_time_s']:.1f} | {1e3 * m['train_time_s'] / m['steps']:.1f} |")
    if launch_only:
        lines += ["", "Train time here counts only the time to launch each step, compilation included (these "
                  "models were trained before toxlab timed the device's work too)."]
    return lines


def _progress_reading(bars: list[dict], models: list[dict], bench: dict) -> list[str]:
    """Where the book's pretraining time went, read from its progress bars, against the benchmark's pace."""
    if not bars or not models:
        return []
    tokens_per_step = np.mean([m["train_tokens_seen"] / m["steps"] for m in models])
    first = [b["first_report_s"] for b in bars]
    rates = [(b["steps"] - b["first_report"]) / (b["end_s"] - b["first_report_s"]) for b in bars]
    totals = [b["end_s"] for b in bars]
    bench_rate = bench["tokens_per_s"] / tokens_per_step
    compiling = ": torch.compile compiling the model (most for a fresh machine's first)" if bench.get("compile") else ""
    rate = np.median(rates)
    return ["", f"The book's own pretraining, read from the {len(bars)} progress bars printed in the executed "
            f"chapters (tqdm's elapsed time, whole seconds): a model took {np.median(totals):.0f} s (median; "
            f"{min(totals)}-{max(totals)} s). Its first reported step came after {np.median(first):.0f} s "
            f"(median; up to {max(first)} s){compiling}. From there to the end the loop ran {rate:.0f} steps a "
            f"second (median; {min(rates):.0f}-{max(rates):.0f}, held-out evaluations included), "
            f"{rate * tokens_per_step:,.0f} tokens/s, against {bench_rate:.0f} steps a second in the benchmark."
            + (" The models' own tokens/s column above counts only the time to launch each step (an upper bound): "
               "these models were trained before toxlab timed the device's work too."
               if any(m.get("first_step_s") is None for m in models) else "")]


def import_run(runs: list[list[Path]], book_dir: Path, commands: list[str]) -> list[dict]:
    """Write book_dir/chapters/gpu/*.ipynb, book_dir/gpu_level.json and book_dir/gpu_level.md from `runs`
    (each the unpacked archives of its calls, in call order; runs oldest first) and the command each ran."""
    if len(commands) != len(runs):
        raise ToxlabError(f"{len(runs)} run(s) but {len(commands)} command(s): give one --command per run")
    summaries = [summarise(calls) | {"command": command} for calls, command in zip(runs, commands)]
    chapters = book_dir / "chapters" / "gpu"
    for old in chapters.glob("*.ipynb"):
        old.unlink()
    for calls in runs:  # a later call's or run's copy of a chapter replaces an earlier one's
        for run_dir in calls:
            import_chapters(run_dir, chapters)
    (book_dir / "gpu_level.json").write_text(json.dumps(summaries, indent=1, sort_keys=True, default=float))
    (book_dir / "gpu_level.md").write_text(pages(summaries))
    return summaries


def pages(summaries: list[dict]) -> str:
    """One run's page as it is; several runs: a section per run, oldest first, its headings one level down."""
    if len(summaries) == 1:
        return page(summaries[0], summaries[0]["command"])
    lines = ["# The gpu level: runs on one GPU", "",
             f"{len(summaries)} runs, each on a fresh machine (so each trained its own models), oldest first. A "
             "chapter that finished in several runs follows this page as the latest run executed it. Data design "
             "by run: " + "; ".join(f"run {i}: the {s.get('design') or UNRECORDED_DESIGN} design"
                                     for i, s in enumerate(summaries, 1)) + ".", ""]
    for i, summary in enumerate(summaries, 1):
        body = page(summary, summary["command"]).split("\n", 1)[1]  # without the page's title
        lines += [f"## Run {i}", body.replace("\n## ", "\n### ")]
    return "\n".join(lines)
