"""Build the book: execute each chapter with papermill at one reproduction level, then render the executed
notebooks with Jupyter Book 1 (`execute_notebooks: off`: papermill is the only executor).

Chapter sources are jupytext percent-format files `notebooks/NN_name.py`; `notebooks/params/<level>.yaml`
holds each level's parameters (`common:` for every chapter, `chapters: {NN_name: {...}}` for one).
An executed chapter records a fingerprint of its source, its parameters and the toxlab code; a rebuild
skips chapters whose fingerprint is unchanged, and the stages a chapter calls are cached anyway. It also
records how long it ran and every cache entry it used, with the time each took to build (`cost`): what the
chapter costs from an empty cache.
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
from pathlib import Path
from unittest import mock

import yaml

from toxlab import artifacts
from toxlab.errors import ConfigError, ToxlabError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
BOOK = PROJECT_ROOT / "book"
CHAPTERS = BOOK / "chapters"
FAILED = BOOK / "_build" / "failed"
LEVELS = ("smoke", "cpu", "gpu")


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


def code_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "toxlab").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def chapter_fingerprint(source_path: Path, params: dict) -> str:
    payload = source_path.read_text() + json.dumps(params, sort_keys=True) + code_fingerprint()
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def execute_chapter(source_path: Path, level: str, force: bool = False, log=print,
                    chapters: Path | None = None, overrides: dict[str, object] | None = None) -> Path:
    """Execute one chapter at `level` (with parameter `overrides`) into `chapters`/NN_name.ipynb (default
    book/chapters; skipped when unchanged)."""
    import jupytext
    import nbformat
    import papermill

    params = chapter_params(level, source_path, overrides)
    fingerprint = chapter_fingerprint(source_path, params)
    chapters = chapters or CHAPTERS
    out = chapters / f"{source_path.stem}.ipynb"
    if not force and out.exists():
        try:
            meta = nbformat.read(out, as_version=4).metadata.get("toxlab", {})
        except (ValueError, OSError):  # unreadable output: execute again
            meta = {}
        if meta.get("fingerprint") == fingerprint:
            log(f"book: {source_path.stem} unchanged at level {level}, kept")
            return out
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
        result.metadata["toxlab"] = {"fingerprint": fingerprint, "level": level, "params": params,
                                     "wall_s": round(time.perf_counter() - start, 1),
                                     "stages": artifacts.read_ledger(ledger)}
        tmp_out = out.with_suffix(".tmp")
        nbformat.write(result, tmp_out)
        os.replace(tmp_out, out)  # a chapter is replaced only by a complete, successful execution
    return out


def write_toc(chapters: list[Path], book_dir: Path = BOOK) -> Path:
    """_toc.yml listing the intro and every executed chapter, in order; then, if a gpu-level run was imported
    (`toxlab gpu import`), its page and chapters as a second part."""
    main = [{"file": f"chapters/{p.stem}"} for p in sorted(chapters)]
    gpu = sorted((book_dir / "chapters" / "gpu").glob("*.ipynb"))
    if (book_dir / "gpu_level.md").is_file():
        toc = {"format": "jb-book", "root": "intro",
               "parts": [{"caption": "The study", "chapters": main},
                         {"caption": "The gpu level", "chapters": [{"file": "gpu_level"}]
                          + [{"file": f"chapters/gpu/{p.stem}"} for p in gpu]}]}
    else:
        toc = {"format": "jb-book", "root": "intro", "chapters": main}
    path = book_dir / "_toc.yml"
    header = "# Generated by `toxlab book` from the executed chapters.\n"
    path.write_text(header + yaml.safe_dump(toc, sort_keys=False))
    return path


def build_html(log=print, book_dir: Path = BOOK) -> Path:
    """Render the book with Jupyter Book 1; any Sphinx warning fails the build."""
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(book_dir),
               "--config", str(PROJECT_ROOT / "_config.yml"), "--path-output", str(book_dir),
               "-W", "-n", "--keep-going"]
    log("book: rendering HTML with Jupyter Book")
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        print(tail, file=sys.stderr)
        raise ToxlabError("Jupyter Book build failed (warnings count as errors); the output above says where")
    return book_dir / "_build" / "html"


def build(level: str, only: str | None = None, force: bool = False, html: bool = True, log=print,
          out: Path | None = None, params: list[str] | None = None) -> Path:
    """Execute the chapters (all, or those `only` lists: "03" or "01,02,03") at `level`, then render the HTML
    book. `params` ("name=value", YAML values) overrides the level's parameters in every chapter that declares
    them: a variant of the book, so it must be built elsewhere (`out`).

    `out` builds a separate copy of the book (its pages and the executed chapters) in another folder, so
    that a smoke-level test build does not replace the chapters in book/.
    """
    level_params(level)  # bad input fails before anything is written
    sources = [find_chapter(n.strip()) for n in only.split(",")] if only else chapter_sources()
    overrides = parse_params(params or [], sources)
    book_dir = Path(out).resolve() if out else BOOK
    if overrides and book_dir == BOOK:
        raise ConfigError("--param would replace the book's chapters with a variant; build it beside them with "
                          "--out DIR")
    if book_dir != BOOK:
        book_dir.mkdir(parents=True, exist_ok=True)
        for page in BOOK.glob("*.md"):
            if page.name != "gpu_level.md":  # a separate build holds its own level's chapters only
                shutil.copy(page, book_dir / page.name)
    chapters = book_dir / "chapters"
    for source in sources:
        execute_chapter(source, level, force=force, log=log, chapters=chapters, overrides=overrides)
    executed = [chapters / f"{p.stem}.ipynb" for p in chapter_sources() if (chapters / f"{p.stem}.ipynb").exists()]
    write_toc(executed, book_dir)
    if not html:
        return chapters
    return build_html(log, book_dir) / "index.html"


def cost(chapters: Path | None = None) -> dict:
    """What the executed chapters in `chapters` cost, from the ledgers they recorded (`execute_chapter`).

    Per chapter, in book order: the wall time of its last execution, the cache entries it used and the time
    they took to build, and those it needs first (an entry shared with an earlier chapter is counted there):
    their sum over the chapters is the compute of the whole level from an empty cache. Also those totals by
    stage. Raises if a chapter has no ledger (executed before ledgers were kept) or the levels differ."""
    import nbformat
    chapters = Path(chapters or CHAPTERS)
    rows, seen, by_stage, levels = [], set(), {}, set()
    for source in chapter_sources():
        path = chapters / f"{source.stem}.ipynb"
        if not path.exists():
            continue
        meta = nbformat.read(path, as_version=4).metadata.get("toxlab", {})
        if "stages" not in meta:
            raise ToxlabError(f"{path} records no cache ledger (executed by an older toxlab); re-execute it: "
                              f"toxlab book --level {meta.get('level', 'cpu')} --only {source.stem[:2]} --force")
        levels.add(meta["level"])
        new = {name: s for name, s in meta["stages"].items() if name not in seen}
        seen.update(new)
        for name, seconds in new.items():
            stage = name.split("/")[0]
            count, total = by_stage.get(stage, (0, 0.0))
            by_stage[stage] = (count + 1, total + seconds)
        rows.append({"chapter": source.stem, "wall_s": meta["wall_s"], "entries": len(meta["stages"]),
                     "stage_s": sum(meta["stages"].values()), "new_entries": len(new),
                     "new_stage_s": sum(new.values())})
    if len(levels) > 1:
        raise ToxlabError(f"{chapters} mixes levels {sorted(levels)}; re-execute the book at one level")
    stages = sorted(({"stage": name, "entries": n, "stage_s": s} for name, (n, s) in by_stage.items()),
                    key=lambda r: -r["stage_s"])
    return {"level": levels.pop() if levels else None, "chapters": rows, "stages": stages,
            "entries": len(seen), "stage_s": sum(r["new_stage_s"] for r in rows)}
