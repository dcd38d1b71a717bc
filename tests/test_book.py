"""The book machinery: parameters cells, level parameters, skipping unchanged chapters, failure handling."""

import pytest

from toxlab import book
from toxlab.errors import ConfigError, ToxlabError


def test_every_chapter_has_a_literal_parameters_cell_with_level_and_seeds():
    sources = book.chapter_sources()
    assert sources, "no chapter sources found"
    for source in sources:
        declared = book.declared_parameters(source.read_text())
        assert {"level", "seeds"} <= set(declared), source.name
        assert declared["level"] == "cpu"  # the default level when a chapter runs as it is


@pytest.mark.parametrize("level", book.LEVELS)
def test_every_level_gives_every_chapter_only_declared_parameters(level):
    for source in book.chapter_sources():
        params = book.chapter_params(level, source)
        assert params["level"] == level
        assert set(params) <= set(book.declared_parameters(source.read_text()))
        assert isinstance(params["seeds"], list) and all(isinstance(s, int) for s in params["seeds"])


def test_parameters_cell_must_hold_literals():
    source = '# %% tags=["parameters"]\nlevel = "cpu"\nseeds = list(range(3))\n'
    with pytest.raises(ValueError):
        book.declared_parameters(source)
    with pytest.raises(ConfigError, match="only `name = literal`"):
        book.declared_parameters('# %% tags=["parameters"]\nimport os\n')
    with pytest.raises(ConfigError, match="no cell tagged"):
        book.declared_parameters("# %%\nx = 1\n")


def test_unknown_level_and_chapter():
    with pytest.raises(ConfigError, match="unknown level"):
        book.level_params("huge")
    with pytest.raises(ConfigError, match="no chapter"):
        book.find_chapter("99")


def test_fingerprint_changes_with_parameters():
    source = book.chapter_sources()[0]
    a = book.chapter_fingerprint(source, {"level": "smoke", "seeds": [0]})
    assert a == book.chapter_fingerprint(source, {"level": "smoke", "seeds": [0]})
    assert a != book.chapter_fingerprint(source, {"level": "smoke", "seeds": [1]})


def test_failing_chapter_raises_and_keeps_the_previous_output(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    (notebooks / "params").mkdir(parents=True)
    (notebooks / "params" / "smoke.yaml").write_text("common:\n  seeds: [0]\n")
    source = notebooks / "09_broken.py"
    source.write_text('# %% tags=["parameters"]\nlevel = "cpu"\nseeds = [0]\n\n# %%\nraise RuntimeError("planted")\n')
    monkeypatch.setattr(book, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(book, "CHAPTERS", tmp_path / "chapters")
    monkeypatch.setattr(book, "FAILED", tmp_path / "failed")
    (tmp_path / "chapters").mkdir()
    previous = tmp_path / "chapters" / "09_broken.ipynb"
    previous.write_text("previous good output")
    with pytest.raises(ToxlabError, match="09_broken failed in cell .*RuntimeError: planted"):
        book.execute_chapter(source, "smoke", log=lambda m: None)
    assert previous.read_text() == "previous good output"
    assert (tmp_path / "failed" / "09_broken.executed.ipynb").exists()
