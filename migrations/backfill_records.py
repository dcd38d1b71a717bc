"""One-off migration (issue 21): give the cpu chapters executed before `toxlab.notebook.record` existed the
records `toxlab readme` reads, and the commit each was executed at, without re-executing them (their cache is
gone; re-executing the level takes about five hours).

- commit: the newest commit whose chapter source, toxlab code and the chapter's recorded parameters give the
  fingerprint the executed chapter recorded (so: the code it was executed with).
- records: parsed from the tables the chapters display (pandas Styler HTML) and from their glued values. Each
  record output carries `toxlab.backfilled` metadata saying so. Chapter 6's toxicity columns are displayed
  with two decimals, so its record holds them at that precision.

Run once from the repository root: python migrations/backfill_records.py
"""

import hashlib
import html
import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from toxlab import book, separability
from toxlab.notebook import RECORD_MIME, RECORD_PREFIX, jsonable

CHAPTERS = book.CHAPTERS


def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def fingerprint_at(commit, stem, params):
    files = sorted(p for p in git("ls-tree", "--name-only", commit, "toxlab/").split() if p.endswith(".py")
                   and p.count("/") == 1)
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).name.encode() + subprocess.run(["git", "show", f"{commit}:{path}"],
                                                                capture_output=True, check=True).stdout)
    source = git("show", f"{commit}:notebooks/{stem}.py")
    payload = source + json.dumps(params, sort_keys=True) + digest.hexdigest()
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def executed_commit(stem, meta):
    for commit in git("rev-list", "HEAD", "--", "toxlab", "notebooks").split()[:80]:
        if fingerprint_at(commit, stem, meta["params"]) == meta["fingerprint"]:
            return git("rev-parse", "--short", commit).strip()
    raise SystemExit(f"{stem}: no commit gives its fingerprint")


class Table(HTMLParser):
    def __init__(self):
        super().__init__()
        self.header, self.rows, self.cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr" and self.header:
            self.rows.append([])
        if tag in ("th", "td"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self.cell is not None:
            text = html.unescape("".join(self.cell)).strip()
            (self.header if tag == "th" else self.rows[-1]).append(text)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table(notebook, source_line):
    """The displayed table of the cell whose source holds `source_line`: list of {header: text}."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and source_line in c.source)
    output = next(o for o in cell.outputs if "text/html" in o.get("data", {})
                  and not o.get("metadata", {}).get("scrapbook"))
    parser = Table()
    parser.feed(output["data"]["text/html"])
    return [dict(zip(parser.header, row)) for row in parser.rows if row]


def glued(notebook, name):
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return output["data"]["application/papermill.record/text/plain"]
    raise KeyError(name)


def number(text):
    text = text.replace(",", "")
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def sweep(notebook, meta):
    rows = table(notebook, 'sweep = stages.sweep(config, seeds).json("summary.json")')
    runs = [{"toxic_fraction": number(r["toxic_fraction"]), "seed": int(r["seed"]),
             "realised_fraction": number(r["realised_fraction"]),
             "train_tokens_seen": int(number(r["train_tokens_seen"])),
             "val_loss": number(r["val_loss"]), "c4_loss": number(r["c4_loss"]),
             "unigram_val_loss": number(r["unigram_val_loss"]), "tokens_per_s": number(r["tokens_per_s"]),
             "train_time_s": number(r["train_time_s"])} for r in rows]
    return {"preset": meta["level"], "seeds": meta["params"]["seeds"], "runs": runs}


def probes(notebook, meta):
    random = float(glued(notebook, "ent_random"))
    return [separability.ProbeHeadline(number(r["toxic fraction"]), int(r["seed"]), number(r["majority"]),
                                       number(r["accuracy mean"]), number(r["accuracy max"]), number(r["AUC mean"]),
                                       number(r["AUC max"]), number(r["resid AUC best layer"]),
                                       number(r["entanglement (all heads)"]), random)
            for r in table(notebook, "separability.summary_rows(summaries)") if r["pool"] == "last"]


def table1(notebook, meta):
    settings = ("base", "weak", "mid", "strong")
    out = []
    for r in table(notebook, "rows = [evaluate.table_row("):
        if r["setting"] not in settings:
            continue
        low, high = r["ToxiGen 95% CI"].split("-")
        out.append({"toxic fraction": number(r["toxic fraction"]), "seed": int(r["seed"]), "setting": r["setting"],
                    "alpha": number(r["alpha"]),
                    "ToxiGen toxicity": number(r["ToxiGen toxicity"]), "ToxiGen 95% CI": [float(low), float(high)],
                    "RTP challenging exp. max": number(r["RTP challenging exp. max"]),
                    "RTP challenging prob.": number(r["RTP challenging prob."]),
                    "CE increase": number(r["CE increase"])})
    return out


def verdicts(notebook, meta):
    return table(notebook, "table = codesign.verdict_table(evidence, plan)")


RECORDS = {"03_contamination": ("sweep", sweep, "the sweep table (same precision as the README)"),
           "04_separability": ("probes", probes, "the probe table (six decimals) and the glued ent_random"),
           "06_benchmarks": ("table1", table1, "the Table 1 display (two decimals)"),
           "07_codesign": ("verdicts", verdicts, "the verdict table (text)")}


def main():
    for path in sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        meta = notebook.metadata["toxlab"]
        meta["commit"] = executed_commit(path.stem, meta)
        if path.stem in RECORDS:
            name, read, where = RECORDS[path.stem]
            metadata = {"scrapbook": {"name": name, "mime_prefix": RECORD_PREFIX},
                        "toxlab": {"backfilled": f"from {where} of this executed chapter, by "
                                                 "migrations/backfill_records.py (issue 21)"}}
            output = nbformat.v4.new_output("display_data", data={RECORD_MIME: jsonable(read(notebook, meta))},
                                            metadata=metadata)
            notebook.cells[-1].outputs.append(output) if notebook.cells[-1].cell_type == "code" else \
                next(c for c in reversed(notebook.cells) if c.cell_type == "code").outputs.append(output)
        nbformat.write(notebook, path)
        print(path.stem, meta["commit"])


if __name__ == "__main__":
    main()
