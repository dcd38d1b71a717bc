"""Build the book: execute each chapter with papermill at one reproduction level, then render the executed
notebooks with Jupyter Book 1 (`execute_notebooks: off`: papermill is the only executor).

Chapter sources are jupytext percent-format files `notebooks/NN_name.py`; `notebooks/params/<level>.yaml`
holds each level's parameters (`common:` for every chapter, `chapters: {NN_name: {...}}` for one).
An executed chapter records a fingerprint of its source, its parameters and the toxlab code, the commit it
was executed at, how long it ran, every cache entry it used with the time each took to build (`cost`: what
the chapter costs from an empty cache), and the values the README is generated from (`records`).

Rendering never executes: `build` keeps every executed chapter as it is, and a chapter whose fingerprint no
longer matches (stale) is rendered as executed, with a note on its page naming the commit and level it was
executed at. Executing is asked for (`execute=True`: stale and missing chapters; `force=True`: all), and
first says what it will compute and what the ledgers say that costs.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import yaml

from toxlab.book.notebook import RECORD_MIME
from toxlab.core import artifacts
from toxlab.core.errors import ConfigError, ToxlabError
from toxlab.data.corpora import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
BOOK = PROJECT_ROOT / "book"
CHAPTERS = BOOK / "chapters"
FAILED = BOOK / "_build" / "failed"
LEVELS = ("smoke", "cpu", "gpu")
#: Chapters the book lists after the study, in a part of their own: the judge's card, applying the instruments to
#: a reader's model, and the sizing study.
APPENDICES = ("08_judge", "09_your_model", "10_sizing")
#: Chapters that measure how a level was chosen rather than what it finds (the sizing study): the level's cost from
#: an empty cache counts them apart, since reproducing the study needs their answer (the preset), not their models.
COSTED_APART = ("10_sizing",)


def chapter_sources() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def find_chapter(number: str) -> Path:
    try:
        prefix = f"{int(number):02d}_"
    except (TypeError, ValueError):
        prefix = None
    matches = [p for p in chapter_sources() if prefix and p.name.startswith(prefix)]
    if not matches:
        raise ConfigError(f"no chapter {number!r}; give a chapter number, e.g. --only 03, from "
                          f"{', '.join(p.stem for p in chapter_sources())}")
    return matches[0]


def level_params(level: str) -> dict:
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    path = NOTEBOOKS / "params" / f"{level}.yaml"
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {path} ({err}); restore it from git") from None
    return params


def declared_parameters(source: str) -> dict[str, object]:
    """Names and literal values of the cell tagged `parameters` in a percent-format source."""
    cells = source.split("\n# %%")
    for cell in cells:
        header = cell.split("\n", 1)[0]
        if "parameters" in header and "tags" in header:
            body = cell.split("\n", 1)[1] if "\n" in cell else ""
            values = {}
            for node in ast.parse(body).body:
                if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name)):
                    raise ConfigError("a parameters cell may hold only `name = literal` lines")
                values[node.targets[0].id] = ast.literal_eval(node.value)
            return values
    raise ConfigError("chapter has no cell tagged `parameters`")


def chapter_params(level: str, source_path: Path, overrides: dict[str, object] | None = None) -> dict:
    """The level's values for the parameters this chapter declares (others are not passed), with
    `overrides` (`parse_params`) applied to those it declares."""
    params = level_params(level)
    declared = declared_parameters(source_path.read_text())
    merged = {"level": level, **(params.get("common") or {}),
              **((params.get("chapters") or {}).get(source_path.stem) or {}), **(overrides or {})}
    return {k: v for k, v in merged.items() if k in declared}


def parse_params(items: list[str], sources: list[Path]) -> dict[str, object]:
    """`["seeds=[0]", "n_boot=200"]` -> `{"seeds": [0], "n_boot": 200}` (values are YAML), each a parameter
    that at least one of `sources` declares; the level is chosen with --level, not here."""
    declared = {}
    for source in sources:
        declared.update(declared_parameters(source.read_text()))
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--param {item!r} is not of the form name=value; write it as e.g. --param seeds=[0]")
        if name == "level":
            raise ConfigError("--param level=...: choose the level with --level")
        if name not in declared:
            raise ConfigError(f"--param {name}: no chapter run here declares it; they declare "
                              f"{', '.join(sorted(set(declared) - {'level'}))}")
        try:
            out[name] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"--param {item!r}: the value is not valid YAML ({err.__class__.__name__}); "
                              f"write lists as [0, 1] and text in quotes") from None
    return out


def code_fingerprint(package: Path | None = None) -> str:
    """A hash of every module of the package (`package`, default toxlab/), its subpackages included, each
    with its path: a chapter executed before any of them changed is stale."""
    package = package or PROJECT_ROOT / "toxlab"
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def chapter_fingerprint(source_path: Path, params: dict) -> str:
    payload = source_path.read_text() + json.dumps(params, sort_keys=True) + code_fingerprint()
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def current_commit() -> str | None:
    """The checkout's short commit, with "+changes" when toxlab/ or notebooks/ differ from it; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", "toxlab", "notebooks")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if changed else "")


def execute_chapter(source_path: Path, level: str, log=print, chapters: Path | None = None,
                    overrides: dict[str, object] | None = None) -> Path:
    """Execute one chapter at `level` (with parameter `overrides`) into `chapters`/NN_name.ipynb (default
    book/chapters), replacing it only when the execution succeeds."""
    import jupytext
    import nbformat
    import papermill

    params = chapter_params(level, source_path, overrides)
    chapters = chapters or CHAPTERS
    out = chapters / f"{source_path.stem}.ipynb"
    log(f"book: executing {source_path.stem} at level {level} with {params}")
    chapters.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(source_path)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{source_path.stem}.ipynb"
        executed = Path(tmp) / f"{source_path.stem}.executed.ipynb"
        nbformat.write(notebook, src)
        ledger = Path(tmp) / "ledger.jsonl"
        ledger.touch()
        commit = current_commit()
        start = time.perf_counter()
        try:
            with mock.patch.dict(os.environ, {artifacts.LEDGER_ENV: str(ledger)}):  # the kernel inherits it
                papermill.execute_notebook(str(src), str(executed), parameters=params, kernel_name="python3",
                                           cwd=str(chapters), progress_bar=sys.stderr.isatty(), log_output=True)
        except papermill.PapermillExecutionError as err:
            FAILED.mkdir(parents=True, exist_ok=True)
            shutil.copy(executed, FAILED / executed.name)
            raise ToxlabError(f"chapter {source_path.stem} failed in cell {err.exec_count}: {err.ename}: "
                              f"{str(err.evalue).splitlines()[0] if err.evalue else ''}; the executed "
                              f"notebook is in {FAILED / executed.name}") from None
        except Exception as err:  # the kernel died, or could not start: no cell result to point at
            raise ToxlabError(f"chapter {source_path.stem} could not be executed ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''}); run it again") from None
        result = nbformat.read(executed, as_version=4)
        result.metadata["toxlab"] = {"fingerprint": chapter_fingerprint(source_path, params), "level": level,
                                     "params": params, "commit": commit,
                                     "wall_s": round(time.perf_counter() - start, 1),
                                     "stages": artifacts.read_ledger(ledger)}
        tmp_out = out.with_suffix(".tmp")
        nbformat.write(result, tmp_out)
        os.replace(tmp_out, out)  # a chapter is replaced only by a complete, successful execution
    return out


@dataclass(frozen=True)
class Executed:
    """An executed chapter as its notebook describes itself (the `toxlab` metadata `execute_chapter` writes)."""

    path: Path
    level: str | None
    params: dict
    fingerprint: str | None
    commit: str | None
    wall_s: float
    stages: dict[str, float] | None  # its ledger, {"stage/key": seconds the entry took to build}; None if not kept

    @property
    def seeds(self) -> str:
        seeds = self.params.get("seeds")
        return ", ".join(map(str, seeds)) if isinstance(seeds, list) else "?"

    def describe(self) -> str:
        return f"{self.level} level, seeds {self.seeds}, commit {self.commit or 'unknown'}"

    def empty_cache_s(self) -> float | None:
        """What executing it costs from an empty cache, by its ledger (None without one)."""
        return None if self.stages is None else sum(self.stages.values()) + self.wall_s


def read_executed(path: Path) -> Executed | None:
    """The executed chapter at `path`; None if there is none, or it cannot be read (then it must be executed)."""
    import nbformat
    if not path.is_file():
        return None
    try:
        meta = nbformat.read(path, as_version=4).metadata.get("toxlab", {})
    except (ValueError, OSError):
        return None
    return Executed(path, meta.get("level"), meta.get("params") or {}, meta.get("fingerprint"), meta.get("commit"),
                    float(meta.get("wall_s") or 0.0), meta.get("stages"))


def records(path: Path) -> dict[str, object]:
    """The values an executed chapter saved with `toxlab.book.notebook.record`: {name: JSON value}."""
    import nbformat

    found = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and RECORD_MIME in output.get("data", {}):
                found[name] = output["data"][RECORD_MIME]
    return found


FRESH, STALE, MISSING, OTHER_LEVEL = "fresh", "stale", "missing", "other level"


@dataclass(frozen=True)
class Chapter:
    """A chapter source and the state of its executed notebook at a level: fresh (executed with this source,
    these parameters and this code), stale (with earlier ones), missing, or executed at another level."""

    source: Path
    executed: Executed | None
    state: str

    @property
    def name(self) -> str:
        return self.source.stem


def survey(level: str, sources: list[Path], chapters: Path, overrides: dict[str, object] | None = None
           ) -> list[Chapter]:
    """The state of each chapter of `sources` in the folder `chapters` at `level`."""
    states = []
    for source in sources:
        executed = read_executed(chapters / f"{source.stem}.ipynb")
        if executed is None:
            state = MISSING
        elif executed.level != level:
            state = OTHER_LEVEL
        elif executed.fingerprint == chapter_fingerprint(source, chapter_params(level, source, overrides)):
            state = FRESH
        else:
            state = STALE
        states.append(Chapter(source, executed, state))
    return states


def estimates(chapters: list[Chapter]) -> dict[str, float | None]:
    """Seconds each chapter would take to execute now, by its ledger: the build times of the entries it uses
    that the cache lacks (an entry several chapters share counted in the first), plus its last execution's
    wall time. None for a chapter without a ledger."""
    root = artifacts.cache_root()
    counted, out = set(), {}
    for chapter in chapters:
        executed = chapter.executed
        if executed is None or executed.stages is None:
            out[chapter.name] = None
            continue
        lacking = {name: s for name, s in executed.stages.items()
                   if name not in counted and not artifacts.stored(name, root)}
        counted.update(lacking)
        out[chapter.name] = sum(lacking.values()) + executed.wall_s
    return out


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(seconds / 60, 0.1):.1f} min"


def total(times: list[float | None]) -> str:
    """"about 2.1 h" for estimates by ledgers (None: a chapter without one, whose time is not known)."""
    known = [t for t in times if t is not None]
    unknown = len(times) - len(known)
    if not known:
        return "an unknown time (no ledger yet)"
    return f"about {duration(sum(known))}" + (f" plus {unknown} chapter(s) without a ledger" if unknown else "")


def execute_command(level: str, chapters: list[Chapter], out: Path | None = None) -> str:
    only = f" --only {','.join(c.name[:2] for c in chapters)}" if chapters else ""
    return f"toxlab book --level {level}{only} --execute" + (f" --out {out}" if out else "")


def stale_note(chapter: Chapter, level: str) -> str:
    """The note a stale chapter's page carries (MyST)."""
    executed = chapter.executed
    return ("```{admonition} Executed with an earlier version\n:class: warning\n"
            f"This page shows the chapter as it was executed at commit `{executed.commit or 'unknown'}` "
            f"({executed.level} level, seeds {executed.seeds}). The code or the chapter's parameters have "
            "changed since, so re-executing it may give other numbers: "
            f"`{execute_command(level, [chapter])}` ({total([executed.empty_cache_s()])} from an empty "
            "cache, by its ledger).\n```")


def _announce(todo: list[Chapter], level: str, times: dict[str, float | None], log) -> None:
    """What executing `todo` will compute, and what its ledgers say it costs, before any of it starts."""
    log(f"book: executing {len(todo)} chapter(s) at the {level} level: "
        + ", ".join(f"{c.name} ({'forced' if c.state == FRESH else c.state})" for c in todo))
    root = artifacts.cache_root()
    lacking = {name for c in todo if c.executed and c.executed.stages
               for name in c.executed.stages if not artifacts.stored(name, root)}
    log(f"book: by the chapters' ledgers this builds {len(lacking)} cache entries that {root} lacks and takes "
        f"{total([times[c.name] for c in todo])} (as measured where the ledgers were recorded)")


#: Tags that already say how a code cell shows on its page; every other code cell is collapsed there.
SHOWN_AS_TAGGED = {"remove-cell", "remove-input", "hide-input", "hide-cell", "show-input"}

#: The toggle of a page's parameters cell (a collapsed code cell's is _config.yml's `nb_code_prompt_show`).
PARAMETERS_TOGGLE = "Show the parameters this page was executed with"


def parameters_toggle(notebook) -> dict[str, str]:
    """The toggle labels of a page's parameters cell: it names the level and seeds the chapter was executed
    with (its `toxlab` metadata), so that a reader sees them without opening it."""
    params = notebook.metadata.get("toxlab", {}).get("params", {})
    said = [f"{params['level']} level" if "level" in params else None,
            f"seeds {', '.join(map(str, params['seeds']))}" if params.get("seeds") else None]
    said = [s for s in said if s]
    return {"code_prompt_show": PARAMETERS_TOGGLE + (f" ({'; '.join(said)})" if said else ""),
            "code_prompt_hide": "Hide the parameters"}


#: Tags that say nothing about how a cell shows on its page (nbval reads them in notebooks/ only).
CHECK_TAGS = ("nbval",)


def _collapsed(cell) -> bool:
    """Whether `cell` shows on its page as code behind the plain code toggle and nothing else decides how it
    shows: tagged hide-input and otherwise only for nbval, with no toggle label of its own (the parameters')."""
    tags = cell.metadata.get("tags", []) if cell.cell_type == "code" else []
    return ("hide-input" in tags and "mystnb" not in cell.metadata
            and all(t == "hide-input" or t.startswith(CHECK_TAGS) for t in tags))


def _shows_output(cell) -> bool:
    """Whether any output of `cell` shows on its page: hidden glues and records (`scrapbook` metadata with a
    mime prefix) do not, nor does stderr (_config.yml: `nb_output_stderr: remove`)."""
    return any(not output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix")
               and not (output.output_type == "stream" and output.get("name") == "stderr")
               for output in cell.get("outputs", []))


def _one_toggle(run: list):
    """The cells of `run` as one code cell: their sources joined by a blank line, their outputs (glues
    included, so that the prose's `{glue:...}` references resolve) in order, their tags together."""
    first = run[0]
    first.source = "\n\n".join(c.source.strip("\n") for c in run if c.source.strip())
    first.outputs = [output for c in run for output in c.get("outputs", [])]
    first.metadata["tags"] = list(dict.fromkeys(t for c in run for t in c.metadata["tags"]))
    return first


def present(notebook) -> None:
    """How an executed chapter reads on its page (in place; `build_html` applies it to a copy): each code
    cell collapsed behind its toggle (hide-input: the reader sees the outputs, the code one click away)
    unless a tag already decides (`SHOWN_AS_TAGGED`; `show-input` keeps code that is the point in view),
    and the parameters shown once: where papermill injected this page's values, the defaults cell above
    them is removed; the one parameters cell left is collapsed the same way in every chapter, behind a
    toggle that names its level and seeds (`parameters_toggle`).

    A run of collapsed code cells with nothing visible between their toggles is one cell on the page, so
    that the reader sees one toggle, not several in a row: a collapsed cell whose outputs do not show
    (`_shows_output`: it computes, or glues for the prose) is merged with the collapsed cell after it.
    A cell whose output shows ends its run: the next toggle then sits under that output, and opening
    it shows the code of the output below it, not code from above the previous output as well. Markdown,
    and any cell whose tags or toggle say how it shows (`_collapsed`: the parameters cell, remove-cell,
    show-input, ...), are never merged across. Only nbval's tags (`CHECK_TAGS`) join a merged cell."""
    injected = any("injected-parameters" in c.metadata.get("tags", []) for c in notebook.cells)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        shown = "injected-parameters" in tags or ("parameters" in tags and not injected)
        if "parameters" in tags and injected:
            if "remove-cell" not in tags:
                tags.append("remove-cell")
        elif not SHOWN_AS_TAGGED & set(tags):
            tags.append("hide-input")
            if shown:
                cell.metadata["mystnb"] = parameters_toggle(notebook)
    runs = []  # the page's cells, each a run of cells shown as one
    for cell in notebook.cells:
        previous = runs[-1] if runs else None
        if previous and _collapsed(previous[-1]) and _collapsed(cell) and not _shows_output(previous[-1]):
            previous.append(cell)
        else:
            runs.append([cell])
    notebook.cells = [_one_toggle(run) if len(run) > 1 else run[0] for run in runs]


def _staged(book_dir: Path, notes: dict[str, str]) -> Path:
    """A copy of the book's sources as the pages show them: every chapter `present`ed, and each chapter
    named in `notes` with its note under its title."""
    import nbformat
    staging = book_dir / "_build" / "source"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(book_dir, staging, ignore=shutil.ignore_patterns("_build"))
    for path in sorted((staging / "chapters").rglob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        present(notebook)
        note = notes.get(path.stem) if path.parent == staging / "chapters" else None
        if note:
            first = next(c for c in notebook.cells if c.cell_type == "markdown")
            title, _, rest = first.source.partition("\n")
            first.source = f"{title}\n\n{note}\n{rest}"
        nbformat.write(notebook, path)
    return staging


def write_toc(chapters: list[Path], book_dir: Path = BOOK) -> Path:
    """_toc.yml listing the intro and every executed chapter, in order, the appendices (`APPENDICES`) in a part of
    their own; then, if a gpu-level run was imported (`toxlab gpu import`), its page and chapters as another part."""
    main = [{"file": f"chapters/{p.stem}"} for p in sorted(chapters) if p.stem not in APPENDICES]
    appendix = [{"file": f"chapters/{p.stem}"} for p in sorted(chapters) if p.stem in APPENDICES]
    gpu = sorted((book_dir / "chapters" / "gpu").glob("*.ipynb"))
    parts = [{"caption": "The study", "chapters": main}]
    if appendix:
        parts.append({"caption": "Appendices", "chapters": appendix})
    if (book_dir / "gpu_level.md").is_file():
        parts.append({"caption": "The gpu level", "chapters": [{"file": "gpu_level"}]
                      + [{"file": f"chapters/gpu/{p.stem}"} for p in gpu]})
    toc = {"format": "jb-book", "root": "intro"}
    if len(parts) > 1:
        toc["parts"] = parts
    else:
        toc["chapters"] = main
    path = book_dir / "_toc.yml"
    header = "# Generated by `toxlab book` from the executed chapters.\n"
    path.write_text(header + yaml.safe_dump(toc, sort_keys=False))
    return path


def build_html(log=print, book_dir: Path = BOOK, notes: dict[str, str] | None = None) -> Path:
    """Render the book with Jupyter Book 1 into `book_dir`/_build/html; any Sphinx warning fails the build.
    `notes` ({chapter: MyST}) are shown at the top of those chapters' pages (the notebooks are left alone)."""
    source = _staged(book_dir, notes or {})
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source),
               "--config", str(PROJECT_ROOT / "_config.yml"), "--path-output", str(book_dir),
               "-W", "-n", "--keep-going", "--all"]  # --all: pages whose note came or went are rebuilt too
    log("book: rendering HTML with Jupyter Book")
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        print(tail, file=sys.stderr)
        raise ToxlabError("Jupyter Book build failed (warnings count as errors); the output above says where")
    return book_dir / "_build" / "html"


def build(level: str, only: str | None = None, execute: bool = False, force: bool = False, html: bool = True,
          log=print, out: Path | None = None, params: list[str] | None = None) -> Path:
    """Render the HTML book from the chapters executed at `level`; execute none unless asked.

    Every executed chapter is kept as it is. One that is stale (executed with an earlier version of its code or
    parameters) is rendered as executed, with a note on its page, and the command that would re-execute it is
    printed with what its ledger says that costs. `execute` executes the chapters (all, or those `only` lists:
    "03" or "01,02,03") that are stale or missing, `force` all of them; either first prints what it will
    compute and the time it takes by the ledgers, then each chapter's progress with the time left.

    `params` ("name=value", YAML values) overrides the level's parameters in every chapter that declares them:
    a variant of the book, executed and built elsewhere (`out`). `out` builds a separate copy of the book (its
    pages and the executed chapters) in another folder, so that a test build does not replace book/.
    """
    level_params(level)  # bad input fails before anything is written
    sources = [find_chapter(n.strip()) for n in only.split(",")] if only else chapter_sources()
    overrides = parse_params(params or [], sources)
    book_dir = Path(out).resolve() if out else BOOK
    if overrides and book_dir == BOOK:
        raise ConfigError("--param would replace the book's chapters with a variant; build it beside them with "
                          "--out DIR")
    execute = execute or force or bool(overrides)  # a variant exists only once executed
    chapters = book_dir / "chapters"
    states = survey(level, chapter_sources(), chapters, overrides)
    chosen = [c for c in states if c.source in sources]
    todo = [c for c in chosen if force or (execute and c.state != FRESH)]
    absent = [c for c in chosen if c.state in (MISSING, OTHER_LEVEL)]
    if absent and not execute:
        raise ConfigError(f"{chapters} holds no {', '.join(c.name for c in absent)} executed at the {level} level; "
                          f"execute them with: {execute_command(level, absent, out)}")
    if book_dir != BOOK:
        book_dir.mkdir(parents=True, exist_ok=True)
        for page in BOOK.glob("*.md"):
            if page.name != "gpu_level.md":  # a separate build holds its own level's chapters only
                shutil.copy(page, book_dir / page.name)
    times = estimates(todo)
    if todo:
        _announce(todo, level, times, log)
    for i, chapter in enumerate(todo, 1):
        own = times[chapter.name]
        log(f"book: [{i}/{len(todo)}] {chapter.name}: "
            + (f"about {duration(own)} by its ledger" if own is not None else "no ledger to time it by")
            + f"; {total([times[c.name] for c in todo[i - 1:]])} left in all")
        start = time.perf_counter()
        execute_chapter(chapter.source, level, log=log, chapters=chapters, overrides=overrides)
        log(f"book: [{i}/{len(todo)}] {chapter.name} executed in {duration(time.perf_counter() - start)}")
    kept = [c for c in states if c not in todo and c.state in (FRESH, STALE)]
    for chapter in kept:
        log(f"book: kept {chapter.name} as executed ({chapter.executed.describe()})"
            + ("; stale: its code or parameters changed since" if chapter.state == STALE else ""))
    stale = [c for c in kept if c.state == STALE]
    if stale:
        log(f"book: {len(stale)} chapter(s) stale, kept as executed (their pages say so); "
            f"`{execute_command(level, stale if len(stale) < len(states) else [], out)}` re-executes them: "
            f"{total(list(estimates(stale).values()))} by their ledgers with this cache")
    executed = [chapters / f"{p.stem}.ipynb" for p in chapter_sources() if (chapters / f"{p.stem}.ipynb").exists()]
    write_toc(executed, book_dir)
    if not html:
        return chapters
    return build_html(log, book_dir, {c.name: stale_note(c, level) for c in stale}) / "index.html"


def cost(chapters: Path | None = None) -> dict:
    """What the executed chapters in `chapters` cost, from the ledgers they recorded (`execute_chapter`).

    Per chapter, in book order: the commit and seeds it was executed with, the wall time of its last
    execution, the cache entries it used and the time they took to build, and those it needs first (an entry
    shared with an earlier chapter is counted there): their sum over the study's chapters is the compute of the
    whole level from an empty cache. The chapters costed apart (`COSTED_APART`) come last and are left out of that
    sum and of the stages' totals: their rows say what they add. Raises if a chapter has no ledger (executed before
    ledgers were kept) or the levels differ."""
    chapters = Path(chapters or CHAPTERS)
    rows, seen, by_stage, levels = [], set(), {}, set()
    for source in sorted(chapter_sources(), key=lambda p: p.stem in COSTED_APART):
        executed = read_executed(chapters / f"{source.stem}.ipynb")
        if executed is None:
            continue
        if executed.stages is None:
            raise ToxlabError(f"{executed.path} records no cache ledger (executed by an older toxlab); re-execute "
                              f"it: toxlab book --level {executed.level or 'cpu'} --only {source.stem[:2]} --force")
        levels.add(executed.level)
        apart = source.stem in COSTED_APART
        new = {name: s for name, s in executed.stages.items() if name not in seen}
        seen.update(new)
        for name, seconds in new.items():
            if apart:
                continue
            stage = name.split("/")[0]
            count, total_s = by_stage.get(stage, (0, 0.0))
            by_stage[stage] = (count + 1, total_s + seconds)
        rows.append({"chapter": source.stem, "apart": apart, "commit": executed.commit,
                     "seeds": executed.seeds, "wall_s": executed.wall_s, "entries": len(executed.stages),
                     "stage_s": sum(executed.stages.values()), "new_entries": len(new),
                     "new_stage_s": sum(new.values())})
    if len(levels) > 1:
        raise ToxlabError(f"{chapters} mixes levels {sorted(levels)}; re-execute the book at one level")
    stages = sorted(({"stage": name, "entries": n, "stage_s": s} for name, (n, s) in by_stage.items()),
                    key=lambda r: -r["stage_s"])
    study = [r for r in rows if not r["apart"]]
    return {"level": levels.pop() if levels else None, "chapters": rows, "stages": stages,
            "entries": sum(r["new_entries"] for r in study), "stage_s": sum(r["new_stage_s"] for r in study)}
