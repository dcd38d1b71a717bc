"""No cached stage runs changed code under an unchanged version: the code each stage runs, as recorded in
toxlab/core/stage_code.json, is the code as it is now. Planted changes show the check fires (a statement added to
`hooks.capture_pools` fails `activations`, and only the stages that run it) and stays quiet where nothing can
change a result (docstrings, comments, layout, error messages)."""

import ast
import textwrap
from pathlib import Path

import pytest

from toxlab import cli
from toxlab.core import stage_code

ROOT = Path(stage_code.__file__).resolve().parents[2]


def test_every_stage_runs_the_code_recorded_for_its_version():
    current = stage_code.stage_code()
    problem = stage_code.problem(stage_code.check(current, stage_code.read_record()), current)
    if problem:
        pytest.fail(problem, pytrace=False)


def test_every_cached_stage_is_found_with_the_version_its_key_holds():
    from toxlab.pipeline import versions
    current = stage_code.stage_code()
    built = {node.args[0].value for module in stage_code.STAGE_MODULES
             for node in ast.walk(ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text()))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "artifacts.cached"}
    assert set(current) == built and {"activations", "probe", "evaluate", "baseline"} <= built
    for s in current.values():
        assert s.version == getattr(versions, s.version_name), s.stage
        assert s.function in s.code  # its own function, nested builders included
    activations, probe = current["activations"].code, current["probe"].code
    assert "toxlab.interp.hooks.capture_pools" in activations and "toxlab.model.decoder.pick_device" in activations
    assert "toxlab.interp.separability.analyse" in probe
    # an upstream stage's code reaches a stage through its key, not its digest: probe reads activations
    assert "toxlab.pipeline.probing.activations" not in probe and "toxlab.interp.hooks.capture_pools" not in probe
    assert not any(name.startswith(("toxlab.core.artifacts.", "toxlab.core.errors.")) for name in activations)


def _snapshot():
    """A file reader that keeps what it read first: a clean and a planted reading see the same files, even
    while someone edits the checkout."""
    texts: dict[Path, str] = {}
    return lambda path: texts.setdefault(path, path.read_text(encoding="utf-8"))


def _planted(edits: dict[str, callable], base=None):
    """A file reader (over `base`, a `_snapshot`) that applies `edits[file name](tree)` to those toxlab modules
    and writes the module back with ast.unparse (which also drops every comment and changes the layout)."""
    base = base or _snapshot()

    def read(path: Path) -> str:
        text = base(path)
        if path.name not in edits:
            return text
        tree = ast.parse(text)
        edits[path.name](tree)
        return ast.unparse(tree)
    return read


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def _add_statement(name: str, statement: str):
    def edit(tree):
        fn = _function(tree, name)
        fn.body.insert(1, ast.parse(statement).body[0])  # after the docstring
    return edit


def test_a_change_to_capture_pools_without_a_version_bump_fails_the_stages_that_run_it():
    snapshot = _snapshot()
    clean = stage_code.stage_code(read=snapshot)
    planted = stage_code.stage_code(read=_planted({"hooks.py": _add_statement("capture_pools", "texts = list(texts)")},
                                                  snapshot))
    recorded = {s.stage: {"version": s.version, "code": s.code} for s in clean.values()}
    checks = {c.stage: c for c in stage_code.check(planted, recorded)}
    assert checks["activations"].status == "code changed"
    assert checks["activations"].detail == "changed toxlab.interp.hooks.capture_pools"
    fired = {stage for stage, c in checks.items() if c.status != "ok"}
    assert fired == {s.stage for s in clean.values() if "toxlab.interp.hooks.capture_pools" in s.code}
    assert "tokenizer" not in fired and "probe" not in fired
    message = stage_code.problem(list(checks.values()), planted)
    assert "stage 'activations'" in message and "ACTIVATIONS_VERSION = 1 in toxlab/pipeline/versions.py" in message
    assert f"bump the version and then run `{stage_code.RECORD_COMMAND}`" in message


def test_docstrings_comments_layout_and_error_messages_do_not_count():
    snapshot = _snapshot()
    clean = stage_code.stage_code(read=snapshot)

    def reword(tree):
        fn = _function(tree, "capture_pools")
        fn.body[0] = ast.Expr(ast.Constant("Another docstring entirely."))
        fn.body.insert(1, ast.Expr(ast.Constant("a note, not code")))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                node.exc.args = [ast.Constant("a reworded error message")]

    # every stage module and the modules they reach, re-laid out without comments, and capture_pools reworded
    edits = {name: (lambda tree: None) for name in ("versions.py", "common.py", "mixtures.py", "pretraining.py",
                                                    "probing.py", "judging.py", "evaluation.py", "baseline_runs.py",
                                                    "corpora.py", "decoder.py", "evaluate.py", "minilm.py", "corpus.py",
                                                    "encoder.py")}
    planted = stage_code.stage_code(read=_planted({**edits, "hooks.py": reword}, snapshot))
    assert {s: c.code for s, c in planted.items()} == {s: c.code for s, c in clean.items()}


def test_a_version_bump_asks_for_the_code_to_be_recorded_again(tmp_path):
    snapshot = _snapshot()
    clean = stage_code.stage_code(read=snapshot)

    def bump(tree):
        for node in tree.body:
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ACTIVATIONS_VERSION":
                node.value = ast.Constant(2)

    planted = stage_code.stage_code(read=_planted({
        "versions.py": bump, "hooks.py": _add_statement("capture_pools", "texts = list(texts)")}, snapshot))
    assert planted["activations"].version == 2
    assert planted["activations"].code["toxlab.pipeline.probing.activations"] == clean["activations"].code[
        "toxlab.pipeline.probing.activations"]  # the version constant is not part of the stage's code
    checks = stage_code.check(planted, stage_code.read_record(stage_code.record(tmp_path / "clean.json", clean)))
    assert {c.stage: c.status for c in checks if c.status != "ok"} == {
        "activations": "version changed", **{s: "code changed" for s, c in clean.items()
                                             if s != "activations" and "toxlab.interp.hooks.capture_pools" in c.code}}
    recorded = stage_code.read_record(stage_code.record(tmp_path / "planted.json", planted))
    assert all(c.status == "ok" for c in stage_code.check(planted, recorded))


def test_scopes_imports_and_classes_on_a_planted_package(tmp_path):
    """A name bound locally is not the module's; an import inside a function is followed; a class is taken
    whole; a stage that calls another stage does not take its code."""
    package = tmp_path / "plantpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "artifacts.py").write_text("def cached(stage, version, config, build, upstream=None):\n    pass\n")
    (package / "helpers.py").write_text(textwrap.dedent('''
        SCALE = 2

        def scale(x):
            return x * SCALE

        def unused(x):
            return x

        class Fitter:
            def fit(self, x):
                return x + 1
    '''))
    stages_source = textwrap.dedent('''
        from plantpkg import artifacts

        A_VERSION = 1
        B_VERSION = 4

        def unused(x):
            return -x

        def a(config):
            def build(out, work):
                from plantpkg.helpers import Fitter, scale as s
                unused = 3
                return s(unused) + Fitter().fit(1)
            return artifacts.cached("a", A_VERSION, config, build)

        def b(config):
            upstream = {"a": a(config).key}
            return artifacts.cached("b", B_VERSION, config, lambda out, work: None, upstream=upstream)
    ''')
    (package / "stages.py").write_text(stages_source)

    def code(**files):
        def read(path):
            return files.get(path.name, path.read_text())
        return stage_code.stage_code("plantpkg", tmp_path, ("plantpkg.stages",), ("plantpkg.artifacts",),
                                     ("plantpkg.artifacts", "cached"), read)

    found = code()
    assert sorted(found["a"].code) == ["plantpkg.helpers.Fitter", "plantpkg.helpers.SCALE", "plantpkg.helpers.scale",
                                       "plantpkg.stages.a"]
    assert sorted(found["b"].code) == ["plantpkg.stages.b"] and found["b"].version == 4
    helpers = (package / "helpers.py").read_text()
    method = code(**{"helpers.py": helpers.replace("x + 1", "x + 2")})
    assert method["a"].code != found["a"].code and method["b"].code == found["b"].code
    constant = code(**{"helpers.py": helpers.replace("SCALE = 2", "SCALE = 3")})
    assert constant["a"].code["plantpkg.helpers.SCALE"] != found["a"].code["plantpkg.helpers.SCALE"]
    assert code(**{"helpers.py": helpers.replace("return x\n", "return 2 * x\n")}) == found  # `unused` is not run
    comment = code(**{"stages.py": stages_source.replace("unused = 3", "unused = 3  # a local, not the function")})
    assert comment == found


def test_the_command_line_records_and_verifies(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(stage_code, "RECORD", tmp_path / "stage_code.json")
    snapshot, found = _snapshot(), stage_code.stage_code
    monkeypatch.setattr(stage_code, "stage_code", lambda: found(read=snapshot))
    assert cli.main(["stages", "verify", "--record"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "stage_code.json")
    assert cli.main(["stages", "verify"]) == 0
    assert "stages run the code recorded for their versions" in capsys.readouterr().out
    planted = found(read=_planted({"hooks.py": _add_statement("capture_pools", "texts = list(texts)")}, snapshot))
    monkeypatch.setattr(stage_code, "stage_code", lambda: planted)
    assert cli.main(["stages", "verify"]) == 2
    out, err = capsys.readouterr()
    assert "code changed    activations (changed toxlab.interp.hooks.capture_pools)" in out
    assert stage_code.RECORD_COMMAND in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("version", ["'1'", "A_VERSION + 1"])
def test_a_version_that_is_not_an_integer_constant_is_refused(tmp_path, version):
    package = tmp_path / "badpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "artifacts.py").write_text("def cached(*args):\n    pass\n")
    (package / "stages.py").write_text(f"from badpkg import artifacts\nA_VERSION = 1\n\n"
                                       f"def a(config):\n    return artifacts.cached('a', {version}, config, None)\n")
    from toxlab.core.errors import CacheError
    with pytest.raises(CacheError, match="integer constant"):
        stage_code.stage_code("badpkg", tmp_path, ("badpkg.stages",), (), ("badpkg.artifacts", "cached"))


@pytest.mark.slow
def test_every_toxlab_function_a_stage_runs_is_in_its_recorded_code(env, tiny):
    """The static reach holds what really runs: every toxlab function called while a stage (tokenizer up to
    probe, on the fixture data) runs is among the definitions of that stage's code, save the cache's own."""
    import sys

    from toxlab.pipeline import probing

    current = stage_code.stage_code()
    stage_of = {s.function: s.stage for s in current.values()}
    skip = ("toxlab.core.artifacts", "toxlab.core.errors")
    ran: dict[str, set[str]] = {}

    def top(frame) -> str | None:
        """The top-level toxlab definition a frame runs (None outside toxlab's files, or a module's body)."""
        module, name = frame.f_globals.get("__name__", ""), frame.f_code.co_qualname.split(".")[0]
        inside = frame.f_code.co_filename.startswith(str(ROOT / "toxlab"))
        return f"{module}.{name}" if inside and name != "<module>" else None

    def profiler(frame, event, arg):
        if event != "call" or (name := top(frame)) is None or name in stage_of:
            return  # a stage's own function (and its builder) is its code by definition
        outer = frame.f_back
        while outer is not None and top(outer) not in stage_of:
            if outer.f_code.co_name == "<module>" or outer.f_globals.get("__name__", "").startswith(skip):
                return  # the cache calling in (rank, the builder) or a module's body at import
            outer = outer.f_back
        if outer is not None:
            ran.setdefault(stage_of[top(outer)], set()).add(name)

    sys.setprofile(profiler)
    try:
        probing.probe(tiny.with_fraction(0.1), seed=0, progress=False)
    finally:
        sys.setprofile(None)
    assert {"tokenizer", "mixture", "pretrain", "activations", "probe"} <= set(ran)
    assert "toxlab.interp.hooks.capture_pools" in ran["activations"]
    unseen = {stage: sorted(n for n in names if n not in current[stage].code and not n.startswith(skip))
              for stage, names in ran.items()}
    assert not any(unseen.values()), unseen
