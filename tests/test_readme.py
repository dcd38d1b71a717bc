"""`toxlab readme` reads the README's tables from what the executed chapters hold (their records and ledgers)
and computes nothing: every stage made to fail, the README is still regenerated; a missing record stops with
one line naming the chapter to re-execute. And `toxlab.book.notebook.record` round-trips through an executed
chapter, unseen on its page."""

import importlib
import json
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from toxlab import cli
from toxlab.book import builder, notebook, report
from toxlab.core import artifacts, stage_code

SMOKE_BOOK = os.environ.get("TOXLAB_BOOK_DIR")
needs_smoke_book = pytest.mark.skipif(not SMOKE_BOOK, reason="needs the smoke book (TOXLAB_BOOK_DIR, set by make test)")

BLOCKS = "".join(f"<!-- {name}:start -->\nOLD\n<!-- {name}:end -->\n"
                 for name in ("cost", "results", "probes", "verdicts", "table1", "bench"))


def _stage_modules():
    """Every module of the pipeline layer (the cached stages)."""
    return [importlib.import_module(name) for name in stage_code.STAGE_MODULES]


def _fail_every_stage(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("toxlab readme called a stage")
    for stages in _stage_modules():
        for name, value in vars(stages).items():
            if callable(value) and getattr(value, "__module__", None) == stages.__name__ \
                    and not isinstance(value, type):
                monkeypatch.setattr(stages, name, refuse)
    monkeypatch.setattr(artifacts, "cached", refuse)
    monkeypatch.setattr(artifacts, "load", refuse)


@needs_smoke_book
def test_readme_calls_no_stage_and_reads_every_table_from_the_executed_chapters(tmp_path, monkeypatch, capsys):
    _fail_every_stage(monkeypatch)
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "empty-cache"))
    readme = tmp_path / "README.md"
    readme.write_text(BLOCKS)
    monkeypatch.setattr(builder, "CHAPTERS", Path(SMOKE_BOOK) / "chapters")
    monkeypatch.setattr(report, "README", readme)
    assert cli.main(["readme", "--level", "smoke"]) == 0
    assert "readme: rewrote README.md's tables" in capsys.readouterr().out
    text = readme.read_text()
    assert "OLD" not in text
    records = {block: builder.records(Path(SMOKE_BOOK) / "chapters" / f"{chapter}.ipynb")[name]
               for block, (chapter, name) in report.RECORDED.items()}
    assert text.count("| 0.00 | 0 |") >= 2  # the sweep's and the probes' first rows
    assert len([r for r in records["table1"] if r["setting"] == "base"]) >= 2
    for row in records["verdicts"]:
        assert f"| {row['claim']} |" in text
    assert not any((tmp_path / "empty-cache").rglob(artifacts.MANIFEST))  # nothing was computed or stored
    assert cli.main(["readme", "--level", "smoke"]) == 0  # a second run leaves the file as it was
    assert "readme: kept README.md's tables: they match" in capsys.readouterr().out
    assert readme.read_text() == text


def _executed(chapters: Path, name: str, level: str = "smoke", outputs=()) -> Path:
    cell = nbformat.v4.new_code_cell("x = 1", outputs=list(outputs))
    meta = {"toxlab": {"level": level, "params": {"level": level, "seeds": [0]}, "fingerprint": "f",
                       "commit": "abc1234", "wall_s": 1.0, "stages": {}}}
    path = chapters / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata=meta), path)
    return path


def test_a_missing_record_stops_with_one_line_naming_the_chapter(tmp_path, monkeypatch, capsys):
    _fail_every_stage(monkeypatch)
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    for source in builder.chapter_sources():
        _executed(chapters, source.stem)
    readme = tmp_path / "README.md"
    readme.write_text(BLOCKS)
    monkeypatch.setattr(builder, "CHAPTERS", chapters)
    monkeypatch.setattr(report, "README", readme)
    assert cli.main(["readme", "--level", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("toxlab: error: 03_contamination holds no `sweep` record (executed before it saved one); "
                   "re-execute it: toxlab book --level smoke --only 03 --execute")
    assert readme.read_text() == BLOCKS  # nothing half-written
    sweep = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "sweep",
                                                                       "mime_prefix": notebook.RECORD_PREFIX}},
             "data": {notebook.RECORD_MIME: {"preset": "smoke", "seeds": [0], "runs": [{"seed": 0}]}}}
    _executed(chapters, "03_contamination", outputs=[nbformat.from_dict(sweep)])
    assert cli.main(["readme", "--level", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toxlab: error: 03_contamination's `sweep` record is not what the README's table reads")
    assert err.endswith("re-execute it: toxlab book --level smoke --only 03 --execute") and "\n" not in err
    assert cli.main(["readme", "--level", "cpu"]) == 2
    assert "holds the smoke level, not cpu" in capsys.readouterr().err


RECORDING = '''# %% tags=["parameters"]
level = "cpu"
seeds = [0]

# %%
import numpy as np
from toxlab.book.notebook import record

record("demo", {"mean": np.float32(1.5), "pair": (1, 2), "missing": float("nan"), "rows": np.arange(3)})
'''


def test_a_record_round_trips_through_an_executed_chapter_and_stays_off_the_page(tmp_path, monkeypatch):
    from myst_nb.ext.glue import extract_glue_data_cell
    notebooks = tmp_path / "notebooks"
    (notebooks / "params").mkdir(parents=True)
    (notebooks / "params" / "smoke.yaml").write_text("common:\n  seeds: [0]\n")
    (notebooks / "01_demo.py").write_text(RECORDING)
    monkeypatch.setattr(builder, "NOTEBOOKS", notebooks)
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "cache"))
    path = builder.execute_chapter(notebooks / "01_demo.py", "smoke", log=lambda m: None,
                                   chapters=tmp_path / "chapters")
    assert builder.records(path) == {"demo": {"mean": 1.5, "pair": [1, 2], "missing": None, "rows": [0, 1, 2]}}
    executed = nbformat.read(path, as_version=4)
    nbformat.validate(executed)  # a record is valid notebook JSON
    cell = executed.cells[-1]
    assert [name for name, _ in extract_glue_data_cell(cell)] == ["demo"]
    assert cell.outputs == []  # what myst-nb leaves on the page


def test_jsonable_refuses_what_json_cannot_hold():
    assert notebook.jsonable({"a": (np.int64(2), [np.inf])}) == {"a": [2, [None]]}
    with pytest.raises(TypeError, match="cannot record a object"):
        notebook.jsonable(object())
    json.dumps(notebook.jsonable({"x": np.float64(0.1)}), allow_nan=False)


def test_the_committed_readme_matches_the_committed_chapters(tmp_path):
    """What `make main` checks on a fresh clone: regenerating the README from book/chapters changes nothing."""
    level = builder.cost()["level"]
    copy = tmp_path / "README.md"
    shutil.copy(report.README, copy)
    assert not report.regenerate(level, readme=copy), "README.md is out of date: run toxlab readme --level " + level
