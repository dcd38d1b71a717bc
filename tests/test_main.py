"""`make main` on a fresh clone with an empty cache: the book rendered from the executed chapters, nothing
computed, `git status` clean (the README byte-identical), and a report of what it kept; once the code changes,
the chapters are stale: rendered as executed with a note on their pages, and the command that re-executes them
printed. The clone is a new repository holding the working tree's tracked files, with the smoke-executed
chapters (TOXLAB_BOOK_DIR, from `make test`) as its book, so that it runs in about a minute."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toxlab.book import builder
from toxlab.core import artifacts

SMOKE_BOOK = os.environ.get("TOXLAB_BOOK_DIR")
pytestmark = [pytest.mark.skipif(not SMOKE_BOOK, reason="needs the smoke book (TOXLAB_BOOK_DIR, set by make test)"),
              pytest.mark.skipif(not shutil.which("make") or not shutil.which("git"), reason="needs make and git")]


def _git(clone: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=toxlab", "-c", "user.email=toxlab@localhost", *args], cwd=clone,
                          capture_output=True, text=True, check=True).stdout


def _fresh_clone(tmp_path: Path) -> Path:
    root, clone = builder.PROJECT_ROOT, tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (root / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, clone / name)
    for executed in (clone / "book" / "chapters").glob("*.ipynb"):
        executed.unlink()
    for executed in (Path(SMOKE_BOOK) / "chapters").glob("*.ipynb"):
        shutil.copy2(executed, clone / "book" / "chapters" / executed.name)
    _git(clone, "init", "-q")
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", "-m", "a clone whose book is the smoke level")
    return clone


def _make_main(clone: Path, cache: Path) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent.parent  # installed already: make's install step is marked done (-o)
    env = {**os.environ, "PYTHONPATH": str(clone), "TOXLAB_CACHE": str(cache)}
    env.pop("TOXLAB_DATA", None)  # rendering needs no data
    return subprocess.run(["make", "-C", str(clone), "main", "LEVEL=smoke", f"VENV={venv}", "-o",
                           f"{venv}/.installed"], env=env, capture_output=True, text=True, timeout=900)


def test_make_main_on_a_fresh_clone_renders_the_executed_book_and_computes_nothing(tmp_path):
    clone, cache = _fresh_clone(tmp_path), tmp_path / "empty-cache"
    subprocess.run([sys.executable, "-m", "toxlab.cli", "readme", "--level", "smoke"], cwd=clone, check=True,
                   env={**os.environ, "PYTHONPATH": str(clone)}, capture_output=True)
    _git(clone, "commit", "-q", "-am", "README generated from the smoke chapters")

    done = _make_main(clone, cache)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for source in builder.chapter_sources():
        assert f"book: kept {source.stem} as executed (smoke level, seeds " in done.stdout
    assert "executing" not in done.stdout and "stale" not in done.stdout
    assert "readme: kept README.md's tables: they match" in done.stdout
    assert (clone / "book" / "_build" / "html" / "index.html").is_file()
    assert _git(clone, "status", "--porcelain") == ""
    assert not any(cache.rglob(artifacts.MANIFEST))

    # the code changes: every chapter is stale, rendered as executed with a note, and nothing is executed
    with open(clone / "toxlab" / "book" / "report.py", "a") as handle:
        handle.write("\n# a change to the code\n")
    _git(clone, "commit", "-q", "-am", "a change to the code")
    done = _make_main(clone, cache)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    n = len(builder.chapter_sources())
    assert f"book: {n} chapter(s) stale, kept as executed (their pages say so); " \
           "`toxlab book --level smoke --execute` re-executes them: about " in done.stdout
    assert "executing" not in done.stdout
    page = (clone / "book" / "_build" / "html" / "chapters" / "01_background.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)  # the page's words, without the markup that splits inline code
    assert "Executed with an earlier version" in text and "toxlab book --level smoke --only 01 --execute" in text
    assert _git(clone, "status", "--porcelain") == ""
    assert not any(cache.rglob(artifacts.MANIFEST))
