"""A module's place says its layer (STYLE rule 13): toxlab's imports point down the layers, none goes in a circle
(not even inside a function), and the chapters import only the layers a reader's page needs.

The layers, lowest first, are the subpackages (and the two top-level modules) of toxlab; a module may import
its own layer and the layers below it. Imports are read from the source with ast, at module level and inside
functions alike, so a function-level import cannot hide a cycle or an upward import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "toxlab"

#: The layer order, lowest first. `toxlab/__init__.py` (the version) sits with core.
LAYERS = ("core", "data", "model", "interp", "judges", "evaluation", "baselines", "pipeline", "analysis", "book",
          "cli")
#: What a chapter (notebooks/NN_name.py) may import: the cached stages, what is concluded from them, and the
#: book's set-up and figures.
CHAPTER_LAYERS = ("pipeline", "analysis", "book")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(toxlab module, line) of every import in the file, at any depth: `from toxlab.a import b` names the module
    toxlab.a.b when that is a module, else toxlab.a."""
    found = []
    is_package = path.name == "__init__.py"
    own = module_name(path) if path.is_relative_to(PACKAGE) else ""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "toxlab"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from this module's package
                parts = own.split(".")[:len(own.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base.split(".")[0] != "toxlab":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in known else base, node.lineno))
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else 0


def graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: {target for target, _ in imports(path, known) if target != name}
            for name, path in modules().items()}


def test_every_module_sits_in_a_declared_layer():
    for name in modules():
        parts = name.split(".")
        assert len(parts) == 1 or parts[1] in LAYERS, f"{name}: put it in one of the layers {LAYERS}"


def test_imports_point_down_the_layers():
    known = set(modules())
    upward = [f"{name}:{line} imports {target} ({LAYERS[layer(name)]} -> {LAYERS[layer(target)]})"
              for name, path in modules().items() for target, line in imports(path, known)
              if layer(target) > layer(name)]
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_goes_in_a_circle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_fire_on_planted_imports():
    edges = {"toxlab.core.config": {"toxlab.core.errors"}, "toxlab.core.errors": set(),
             "toxlab.interp.probe": {"toxlab.core.config"}}
    assert find_cycle(edges) is None
    assert find_cycle({**edges, "toxlab.core.errors": {"toxlab.interp.probe"}}) == [
        "toxlab.core.config", "toxlab.core.errors", "toxlab.interp.probe", "toxlab.core.config"]
    assert layer("toxlab.interp.probe") > layer("toxlab.core.config") and layer("toxlab") == 0
    assert layer("toxlab.pipeline.probing") < layer("toxlab.analysis.codesign") < layer("toxlab.cli")


def chapter_imports() -> dict[str, set[str]]:
    known = set(modules())
    return {path.stem: {target for target, _ in imports(path, known)}
            for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))}


def test_chapters_import_only_the_pipeline_analysis_and_book_layers():
    found = chapter_imports()
    assert found, "no chapters found"
    below = {(chapter, target) for chapter, targets in found.items() for target in targets
             if LAYERS[layer(target)] not in CHAPTER_LAYERS}
    assert not below, f"chapters importing below {CHAPTER_LAYERS}: {sorted(below)}; a chapter reads stage results " \
                      "through toxlab.analysis (typed rows) and the pipeline"


@pytest.mark.parametrize("old", ["stages", "judge", "judge_card", "data", "evaluate", "analysis", "book", "artifacts"])
def test_no_module_is_left_at_its_old_flat_path(old):
    assert not (PACKAGE / f"{old}.py").exists(), f"toxlab/{old}.py: its code lives in a subpackage now"
