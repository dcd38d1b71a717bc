"""The book machinery: parameters cells, level parameters, skipping unchanged chapters, failure handling, and
what each chapter costs from an empty cache."""

import shutil

import pytest
import yaml

from toxlab.book import builder, report
from toxlab.core.errors import ConfigError, ToxlabError


def test_every_chapter_has_a_literal_parameters_cell_with_level_and_seeds():
    sources = builder.chapter_sources()
    assert sources, "no chapter sources found"
    for source in sources:
        declared = builder.declared_parameters(source.read_text())
        assert {"level", "seeds"} <= set(declared), source.name
        assert declared["level"] == "cpu"  # the default level when a chapter runs as it is


@pytest.mark.parametrize("level", builder.LEVELS)
def test_every_level_gives_every_chapter_only_declared_parameters(level):
    for source in builder.chapter_sources():
        params = builder.chapter_params(level, source)
        assert params["level"] == level
        assert set(params) <= set(builder.declared_parameters(source.read_text()))
        assert isinstance(params["seeds"], list) and all(isinstance(s, int) for s in params["seeds"])


def test_papermill_reads_every_parameter_a_chapter_declares():
    """papermill parses a parameters cell line by line and drops a line with a second '=' (in a comment, say):
    it then warns 'Passed unknown parameter' for a parameter the chapter does declare."""
    import jupytext
    from papermill.translators import PythonTranslator

    for source in builder.chapter_sources():
        cell = next(c for c in jupytext.reads(source.read_text(), fmt="py:percent").cells
                    if "parameters" in c.metadata.get("tags", []))
        seen = {p.name for p in PythonTranslator.inspect(cell)}
        assert set(builder.declared_parameters(source.read_text())) <= seen, source.name


def test_parameters_cell_must_hold_literals():
    source = '# %% tags=["parameters"]\nlevel = "cpu"\nseeds = list(range(3))\n'
    with pytest.raises(ValueError):
        builder.declared_parameters(source)
    with pytest.raises(ConfigError, match="only `name = literal`"):
        builder.declared_parameters('# %% tags=["parameters"]\nimport os\n')
    with pytest.raises(ConfigError, match="no cell tagged"):
        builder.declared_parameters("# %%\nx = 1\n")


def test_unknown_level_and_chapter():
    with pytest.raises(ConfigError, match="unknown level"):
        builder.level_params("huge")
    with pytest.raises(ConfigError, match="no chapter"):
        builder.find_chapter("99")


def test_fingerprint_changes_with_parameters():
    source = builder.chapter_sources()[0]
    a = builder.chapter_fingerprint(source, {"level": "smoke", "seeds": [0]})
    assert a == builder.chapter_fingerprint(source, {"level": "smoke", "seeds": [0]})
    assert a != builder.chapter_fingerprint(source, {"level": "smoke", "seeds": [1]})


def test_failing_chapter_raises_and_keeps_the_previous_output(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    (notebooks / "params").mkdir(parents=True)
    (notebooks / "params" / "smoke.yaml").write_text("common:\n  seeds: [0]\n")
    source = notebooks / "09_broken.py"
    source.write_text('# %% tags=["parameters"]\nlevel = "cpu"\nseeds = [0]\n\n# %%\nraise RuntimeError("planted")\n')
    monkeypatch.setattr(builder, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(builder, "CHAPTERS", tmp_path / "chapters")
    monkeypatch.setattr(builder, "FAILED", tmp_path / "failed")
    (tmp_path / "chapters").mkdir()
    previous = tmp_path / "chapters" / "09_broken.ipynb"
    previous.write_text("previous good output")
    with pytest.raises(ToxlabError, match="09_broken failed in cell .*RuntimeError: planted"):
        builder.execute_chapter(source, "smoke", log=lambda m: None)
    assert previous.read_text() == "previous good output"
    assert (tmp_path / "failed" / "09_broken.executed.ipynb").exists()


COSTED = '''# %% tags=["parameters"]
level = "cpu"
seeds = [0]

# %%
import time
from toxlab.core import artifacts


def build(out, work):
    time.sleep(0.3)
    (out / "x.txt").write_text("x")


for n in {entries}:
    artifacts.cached("demo", 1, {{"n": n}}, build)
'''


def test_each_chapter_records_its_entries_and_cost_counts_shared_ones_once(tmp_path, monkeypatch):
    import nbformat
    notebooks, chapters = tmp_path / "notebooks", tmp_path / "chapters"
    (notebooks / "params").mkdir(parents=True)
    (notebooks / "params" / "smoke.yaml").write_text("common:\n  seeds: [0]\n")
    (notebooks / "01_first.py").write_text(COSTED.format(entries=[1, 2]))
    (notebooks / "02_second.py").write_text(COSTED.format(entries=[2, 3, 4]))  # entry 2 is shared
    monkeypatch.setattr(builder, "NOTEBOOKS", notebooks)
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "cache"))
    for source in builder.chapter_sources():
        builder.execute_chapter(source, "smoke", log=lambda m: None, chapters=chapters)
    meta = nbformat.read(chapters / "02_second.ipynb", as_version=4).metadata["toxlab"]
    assert len(meta["stages"]) == 3 and all(s >= 0.3 for s in meta["stages"].values()) and meta["wall_s"] > 0.9
    cost = builder.cost(chapters)
    first, second = cost["chapters"]
    assert cost["level"] == "smoke" and cost["entries"] == 4
    assert (first["entries"], first["new_entries"], second["entries"], second["new_entries"]) == (2, 2, 3, 2)
    assert cost["stage_s"] == pytest.approx(first["new_stage_s"] + second["new_stage_s"])
    assert second["stage_s"] > second["new_stage_s"] and cost["stages"][0]["entries"] == 4
    table = report.cost_table(cost)
    assert "| 02_second |" in table and "| **4** |" in table and "| demo | 4 |" in table and "| 100% |" in table
    # an executed chapter without a ledger, or chapters of two levels, cannot be costed
    notebook = nbformat.read(chapters / "01_first.ipynb", as_version=4)
    notebook.metadata["toxlab"]["level"] = "cpu"
    nbformat.write(notebook, chapters / "01_first.ipynb")
    with pytest.raises(ToxlabError, match="mixes levels"):
        builder.cost(chapters)
    del notebook.metadata["toxlab"]["stages"]
    nbformat.write(notebook, chapters / "01_first.ipynb")
    with pytest.raises(ToxlabError, match="no cache ledger.*--only 01 --force"):
        builder.cost(chapters)


def test_readme_refuses_a_level_other_than_the_executed_chapters(tmp_path, monkeypatch, capsys):
    import nbformat

    from toxlab import cli
    (tmp_path / "notebooks" / "params").mkdir(parents=True)
    (tmp_path / "notebooks" / "params" / "cpu.yaml").write_text("common:\n  seeds: [0]\n")
    (tmp_path / "notebooks" / "01_only.py").write_text(COSTED.format(entries=[1]))
    (tmp_path / "chapters").mkdir()
    notebook = nbformat.v4.new_notebook(metadata={"toxlab": {"level": "smoke", "wall_s": 1.0, "stages": {}}})
    nbformat.write(notebook, tmp_path / "chapters" / "01_only.ipynb")
    monkeypatch.setattr(builder, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(builder, "CHAPTERS", tmp_path / "chapters")
    assert cli.main(["readme", "--level", "cpu"]) != 0
    assert "holds the smoke level, not cpu: execute it first with toxlab book --level cpu --execute" in \
        capsys.readouterr().err


PARAMETRIC = '''# %% tags=["parameters"]
level = "cpu"
seeds = [0]
label = "default"

# %%
print(level, seeds, label)
'''


def test_params_override_declared_parameters_in_a_separate_build(tmp_path, monkeypatch):
    import nbformat
    notebooks = tmp_path / "notebooks"
    (notebooks / "params").mkdir(parents=True)
    (notebooks / "params" / "smoke.yaml").write_text("common:\n  seeds: [0, 1]\n")
    (notebooks / "01_first.py").write_text(PARAMETRIC)
    (notebooks / "02_second.py").write_text(PARAMETRIC)
    monkeypatch.setattr(builder, "NOTEBOOKS", notebooks)
    sources = builder.chapter_sources()
    assert builder.parse_params(["seeds=[0]", "label=two words"], sources) == {"seeds": [0], "label": "two words"}
    for bad, message in [(["seeds"], "not of the form name=value"), (["level=cpu"], "choose the level with --level"),
                         (["n_boot=3"], "no chapter run here declares it; they declare label, seeds"),
                         (["seeds=[0"], "not valid YAML")]:
        with pytest.raises(ConfigError, match=message):
            builder.parse_params(bad, sources)
    with pytest.raises(ConfigError, match="build it beside them with --out DIR"):
        builder.build("smoke", params=["seeds=[0]"], html=False)
    out = builder.build("smoke", only="01, 02", params=["seeds=[3]"], html=False, out=tmp_path / "variant",
                     log=lambda m: None)
    for name in ("01_first", "02_second"):
        meta = nbformat.read(out / f"{name}.ipynb", as_version=4).metadata["toxlab"]
        assert meta["params"] == {"level": "smoke", "seeds": [3]}
    assert builder.chapter_params("smoke", sources[0]) == {"level": "smoke", "seeds": [0, 1]}


def _demo_book(tmp_path, monkeypatch, chapters=("01_first", "02_second")):
    notebooks = tmp_path / "notebooks"
    (notebooks / "params").mkdir(parents=True)
    (notebooks / "params" / "smoke.yaml").write_text("common:\n  seeds: [0]\n")
    for name in chapters:
        (notebooks / f"{name}.py").write_text(COSTED.format(entries=[int(name[:2])]))
    monkeypatch.setattr(builder, "NOTEBOOKS", notebooks)
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "cache"))
    return notebooks


def test_rendering_executes_nothing_and_names_the_command_for_what_is_missing(tmp_path, monkeypatch):
    _demo_book(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match=r"holds no 01_first, 02_second executed at the smoke level; execute them "
                                          r"with: toxlab book --level smoke --only 01,02 --execute --out "):
        builder.build("smoke", html=False, out=tmp_path / "out", log=lambda m: None)
    assert not (tmp_path / "out" / "chapters").exists()


def test_stale_chapters_are_kept_and_noted_and_execute_re_executes_them_with_a_price_tag(tmp_path, monkeypatch):
    import nbformat
    notebooks = _demo_book(tmp_path, monkeypatch)
    lines = []
    chapters = builder.build("smoke", execute=True, html=False, out=tmp_path / "out", log=lines.append)
    assert "book: executing 2 chapter(s) at the smoke level: 01_first (missing), 02_second (missing)" in lines
    assert "book: [2/2] 02_second: no ledger to time it by; an unknown time (no ledger yet) left in all" in lines
    first = nbformat.read(chapters / "01_first.ipynb", as_version=4).metadata["toxlab"]
    assert first["commit"] == builder.current_commit()
    # the code of chapter 1 changes: it is stale, kept as executed and not executed again
    (notebooks / "01_first.py").write_text(COSTED.format(entries=[1]) + "\nprint('changed')\n")
    lines.clear()
    builder.build("smoke", html=False, out=tmp_path / "out", log=lines.append)
    assert nbformat.read(chapters / "01_first.ipynb", as_version=4).metadata["toxlab"] == first
    assert not any("executing" in line for line in lines)
    assert any(line.startswith("book: kept 01_first as executed (smoke level, seeds 0, commit ") and "stale" in line
               for line in lines)
    assert any(line.startswith("book: kept 02_second") and "stale" not in line for line in lines)
    stale = [line for line in lines if "1 chapter(s) stale" in line]
    assert stale and "`toxlab book --level smoke --only 01 --execute --out " in stale[0]
    state = {c.name: c for c in builder.survey("smoke", builder.chapter_sources(), chapters)}
    assert (state["01_first"].state, state["02_second"].state) == (builder.STALE, builder.FRESH)
    note = builder.stale_note(state["01_first"], "smoke")
    assert f"commit `{first['commit']}` (smoke level, seeds 0)" in note and "--only 01 --execute" in note
    # with its cache entry gone, the ledger prices the re-execution; --execute runs the stale chapter only
    shutil.rmtree(tmp_path / "cache" / "demo")
    lines.clear()
    builder.build("smoke", execute=True, html=False, out=tmp_path / "out", log=lines.append)
    assert "book: executing 1 chapter(s) at the smoke level: 01_first (stale)" in lines
    assert any("builds 1 cache entries that" in line for line in lines)
    assert nbformat.read(chapters / "01_first.ipynb", as_version=4).metadata["toxlab"]["fingerprint"] != \
        first["fingerprint"]
    lines.clear()
    builder.build("smoke", force=True, only="02", html=False, out=tmp_path / "out", log=lines.append)
    assert "book: executing 1 chapter(s) at the smoke level: 02_second (forced)" in lines


def test_a_stale_note_goes_under_the_title_of_a_copy(tmp_path):
    import nbformat
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\nIntro."),
                                               nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(notebook, chapters / "01_first.ipynb")
    (tmp_path / "book" / "_build" / "html").mkdir(parents=True)
    staging = builder._staged(tmp_path / "book", {"01_first": "NOTE"})
    assert nbformat.read(staging / "chapters" / "01_first.ipynb", as_version=4).cells[0].source == \
        "# Title\n\nNOTE\n\nIntro."
    assert nbformat.read(chapters / "01_first.ipynb", as_version=4).cells[0].source == "# Title\n\nIntro."
    assert not (staging / "_build").exists()


def test_pages_collapse_code_and_show_the_parameters_once():
    """On the page: code behind its toggle unless a tag decides; the injected values shown once, their defaults
    not, collapsed like the rest behind a toggle that names the level and seeds."""
    import nbformat
    cell = nbformat.v4.new_code_cell
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"), cell("level = 'cpu'", metadata={"tags": ["parameters"]}),
        cell("level = 'smoke'", metadata={"tags": ["injected-parameters"]}), cell("import toxlab"),
        cell("!pip install toxlab", metadata={"tags": ["remove-cell"]}),
        cell("plan = 1", metadata={"tags": ["show-input", "nbval-check-output"]}), cell("x = 2")],
        metadata={"toxlab": {"params": {"level": "smoke", "seeds": [0, 1]}}})
    builder.present(notebook)
    assert [c.metadata.get("tags") for c in notebook.cells[1:]] == [
        ["parameters", "remove-cell"], ["injected-parameters", "hide-input"], ["hide-input"], ["remove-cell"],
        ["show-input", "nbval-check-output"], ["hide-input"]]
    toggle = notebook.cells[2].metadata["mystnb"]["code_prompt_show"]
    assert toggle.startswith(builder.PARAMETERS_TOGGLE) and "smoke level" in toggle and "seeds 0, 1" in toggle
    assert [c for c in notebook.cells if "mystnb" in c.metadata] == [notebook.cells[2]]  # the others: _config.yml's
    alone = nbformat.v4.new_notebook(cells=[cell("level = 'cpu'", metadata={"tags": ["parameters"]})])
    builder.present(alone)  # nothing injected: the defaults are the values the page ran with, shown the same way
    assert alone.cells[0].metadata["tags"] == ["parameters", "hide-input"]
    assert alone.cells[0].metadata["mystnb"]["code_prompt_show"] == builder.PARAMETERS_TOGGLE


def _glue(name: str, shown: bool = False):
    """A glue output as myst-nb's `glue` writes it: hidden (display=False) under a mime prefix, or shown."""
    import nbformat
    prefix = "" if shown else "application/papermill.record/"
    return nbformat.v4.new_output("display_data", data={prefix + "text/plain": repr(name)},
                                  metadata={"scrapbook": {"name": name, "mime_prefix": prefix}})


def _toggles_in_a_row(cells) -> list[int]:
    """The cells whose code toggle comes right under another's with nothing shown between them."""
    def toggle(cell):  # the plain code toggle: not the parameters' own, nor that of a cell shown otherwise
        tags = set(cell.metadata.get("tags", []))
        return "hide-input" in tags and tags <= {"hide-input", "nbval-check-output"} and "mystnb" not in cell.metadata

    def shows(cell):  # stderr and hidden glues are not on the page
        return any(not o.get("metadata", {}).get("scrapbook", {}).get("mime_prefix") and o.get("name") != "stderr"
                   for o in cell.get("outputs", []))
    return [i for i in range(1, len(cells))
            if toggle(cells[i]) and toggle(cells[i - 1]) and not shows(cells[i - 1])]


def test_a_run_of_collapsed_cells_with_nothing_shown_between_reads_as_one_toggle():
    """On the page, code toggles never come two in a row with nothing to see between them: collapsed cells
    whose outputs do not show are merged with the collapsed cell after them, sources joined by a blank line,
    outputs (glues too) in order; markdown, a visible output, the parameters cell and cells tagged to show
    otherwise end a run and are left as they are."""
    import copy

    import nbformat
    import yaml
    code, md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    stderr = nbformat.v4.new_output("stream", name="stderr", text="loading...\n")
    table = nbformat.v4.new_output("execute_result", data={"text/html": "<table></table>"}, execution_count=4)
    record = nbformat.v4.new_output("display_data", data={"application/vnd.toxlab.record+json": 1}, metadata={
        "scrapbook": {"name": "rec", "mime_prefix": "application/vnd.toxlab.record+"}})
    cells = [
        md("# Title"), code("level = 'cpu'", metadata={"tags": ["parameters"]}),
        code("level = 'smoke'", metadata={"tags": ["injected-parameters"]}),
        code("import toxlab\n", outputs=[stderr]),                    # the run: stderr is not on the page,
        code("entry = toxlab.run()"),                                  # this computes,
        code("glue('n', 3, display=False)", outputs=[_glue("n"), record]),  # this glues for the prose,
        code("table", outputs=[table], metadata={"tags": ["nbval-check-output"]}),  # this shows: the run ends
        code("after = 1"),                                             # under the table: a toggle of its own
        md("Prose quoting {glue:text}`n` and {glue:text}`shown`."),
        code("a = 1"), md("More prose."), code("b = 2"),
        code("!pip install toxlab", metadata={"tags": ["remove-cell"]}), code("c = 3"),
        code("plan = 1", metadata={"tags": ["show-input"]}), code("d = 4"),
        code("e = 5", metadata={"tags": ["remove-output"]}),
        code("glue('shown', 1)", outputs=[_glue("shown", shown=True)]),  # a shown glue is a visible output
        code("g = 7")]
    notebook = nbformat.v4.new_notebook(cells=copy.deepcopy(cells),
                                        metadata={"toxlab": {"params": {"level": "smoke", "seeds": [0]}}})
    builder.present(notebook)
    page = notebook.cells

    merged = page[3]
    assert merged.source == "import toxlab\n\nentry = toxlab.run()\n\nglue('n', 3, display=False)\n\ntable"
    assert merged.outputs == [stderr, _glue("n"), record, table]
    assert merged.metadata["tags"] == ["hide-input", "nbval-check-output"]
    assert [c.source for c in page] == [c.source for c in cells[:3] + [merged] + cells[7:]]
    assert [c.outputs for c in page[4:] if c.cell_type == "code"] == \
        [c.outputs for c in cells[7:] if c.cell_type == "code"]
    glues = [o.metadata["scrapbook"]["name"] for c in page if c.cell_type == "code" for o in c.outputs
             if "scrapbook" in o.get("metadata", {})]
    assert glues == ["n", "rec", "shown"]  # every glue kept, once, for the prose's {glue:...} references
    assert [c.metadata["tags"] for c in page[1:3]] == [["parameters", "remove-cell"],
                                                       ["injected-parameters", "hide-input"]]
    assert page[2].metadata["mystnb"]["code_prompt_show"].startswith(builder.PARAMETERS_TOGGLE)
    assert [c.metadata["tags"] for c in page[9:14]] == [
        ["remove-cell"], ["hide-input"], ["show-input"], ["hide-input"], ["remove-output", "hide-input"]]
    assert _toggles_in_a_row(page) == []
    before = copy.deepcopy(cells)
    for cell in before:
        if cell.cell_type == "code" and set(cell.metadata.get("tags", [])) <= {"nbval-check-output"}:
            cell.metadata["tags"] = ["hide-input", *cell.metadata.get("tags", [])]
    assert _toggles_in_a_row(before) == [4, 5, 6]  # each cell collapsed alone: four toggles in a row

    config = yaml.safe_load((builder.PROJECT_ROOT / "_config.yml").read_text())
    assert config["sphinx"]["config"]["nb_output_stderr"] == "remove"  # why stderr does not end a run


def test_a_change_in_any_subpackage_makes_the_chapters_stale(tmp_path):
    """The chapters' fingerprint covers every module of the package, not only its top level."""
    package = tmp_path / "toxlab"
    (package / "interp").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "interp" / "hooks.py").write_text("X = 1\n")
    before = builder.code_fingerprint(package)
    (package / "interp" / "hooks.py").write_text("X = 2\n")
    assert builder.code_fingerprint(package) != before
    (package / "interp" / "hooks.py").write_text("X = 1\n")
    assert builder.code_fingerprint(package) == before
    (package / "interp" / "hooks.py").rename(package / "hooks.py")  # the same code in another place
    assert builder.code_fingerprint(package) != before


def test_appendices_have_their_own_part_and_only_the_sizing_study_is_costed_apart(tmp_path, monkeypatch):
    """The table of contents lists the appendices after the study. The sizing appendix measures how the level was
    chosen: its entries are not the level's compute (the total and the stages leave them out) and its row says what
    it adds; an appendix that applies the study (a reader's model) is part of the level and counted in it."""
    notebooks, chapters = tmp_path / "notebooks", tmp_path / "chapters"
    (notebooks / "params").mkdir(parents=True)
    (notebooks / "params" / "smoke.yaml").write_text("common:\n  seeds: [0]\n")
    (notebooks / "01_first.py").write_text(COSTED.format(entries=[1, 2]))
    (notebooks / "02_yours.py").write_text(COSTED.format(entries=[1, 3]))  # entry 1 was counted in chapter 1
    (notebooks / "03_sizing.py").write_text(COSTED.format(entries=[2, 5]))  # entry 2 is the level's, counted there
    monkeypatch.setattr(builder, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(builder, "APPENDICES", ("02_yours", "03_sizing"))
    monkeypatch.setattr(builder, "COSTED_APART", ("03_sizing",))
    monkeypatch.setenv("TOXLAB_CACHE", str(tmp_path / "cache"))
    for source in builder.chapter_sources():
        builder.execute_chapter(source, "smoke", log=lambda m: None, chapters=chapters)
    cost = builder.cost(chapters)
    first, yours, sizing = cost["chapters"]
    assert [r["apart"] for r in cost["chapters"]] == [False, False, True]
    assert cost["entries"] == 3 and cost["stage_s"] == pytest.approx(first["new_stage_s"] + yours["new_stage_s"])
    assert sizing["new_entries"] == 1 and sum(r["entries"] for r in cost["stages"]) == 3
    table = report.cost_table(cost)
    assert table.index("| 02_yours |") < table.index("| **all** |") < table.index(
        "| 03_sizing (not in the level's total) |")
    toc = yaml.safe_load(builder.write_toc(sorted(chapters.glob("*.ipynb")), tmp_path).read_text())
    assert [(p["caption"], [c["file"] for c in p["chapters"]]) for p in toc["parts"]] == [
        ("The study", ["chapters/01_first"]), ("Appendices", ["chapters/02_yours", "chapters/03_sizing"])]
