"""The code each cached stage runs, and the check that none of it changes without the stage's version
(DESIGN: caching).

A stage's cache key (`toxlab.core.artifacts.stage_key`) covers its name, version, config, data and upstream keys, not
its code: code that changes what a stage computes must come with a bump of that stage's version, or the cache
keeps returning the old code's results. This module finds that code statically, without importing it. From
each stage function (a function of `STAGE_MODULES` that calls `artifacts.cached("<stage>", <version>, ...)`) it
follows every name the function uses, through imports at module level and inside functions, to the toxlab
definitions it reaches (functions, whole classes, module constants), and on through theirs. It stops at other
stage functions (their results reach this one through their keys), at the cache machinery
(`EXCLUDED_MODULES`) and at the version constants. A definition is hashed by its syntax tree without
docstrings, comments, layout, or the messages of `raise` and `assert` (a failed stage caches nothing), so only
a change that can alter what runs counts.

`stage_code.json` records each stage's version, the definitions it reaches and their digests. `toxlab stages
verify` (and tests/test_stage_code.py) compares them with the code as it is now, and `toxlab stages verify
--record` records them again. The digests are not part of the keys: a change that leaves results alone,
recorded as such, keeps every cache entry valid.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from toxlab.core.errors import CacheError

PACKAGE = "toxlab"
STAGE_MODULES = tuple(f"toxlab.pipeline.{name}" for name in (
    "mixtures", "pretraining", "probing", "judging", "evaluation", "baseline_runs", "external"))
#: The cache itself and the error types: how a result is stored or refused, never what it holds.
EXCLUDED_MODULES = ("toxlab.core.artifacts", "toxlab.core.errors")
CACHE_FUNCTION = ("toxlab.core.artifacts", "cached")
RECORD = Path(__file__).with_name("stage_code.json")
RECORD_COMMAND = "toxlab stages verify --record"

Target = tuple[str, str]  # (module, name) of a top-level definition


@dataclass(frozen=True)
class StageCode:
    """One stage: its name under the cache root, the function that builds it, its version (and the constant
    that holds it) and {qualified name: digest} of every definition it runs, its own function included."""

    stage: str
    function: str
    version: int
    version_name: str
    path: str
    code: dict[str, str]

    @property
    def digest(self) -> str:
        return _sha256(json.dumps(sorted(self.code.items())))


@dataclass(frozen=True)
class StageCheck:
    """One stage against the record: status is ok, code changed, version changed, not recorded or gone."""

    stage: str
    status: str
    detail: str = ""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- canonical trees
class _Canonical(ast.NodeTransformer):
    """Drops what cannot change what runs: string statements (docstrings) and the messages of raise and
    assert."""

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                setattr(node, field, [s for s in body if not (isinstance(s, ast.Expr) and isinstance(
                    s.value, ast.Constant) and isinstance(s.value.value, str))])
        return node

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        if isinstance(node.exc, ast.Call):
            node.exc.args, node.exc.keywords = [], []
        return self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        node.msg = None
        return self.generic_visit(node)


def _dump(node) -> str:
    """The tree as text, without positions, and without empty or None fields (so that the fields later Pythons
    add, such as `type_params`, leave it unchanged)."""
    if isinstance(node, ast.AST):
        fields = [f"{name}={_dump(value)}" for name in node._fields
                  if (value := getattr(node, name, None)) is not None and value != []]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(_dump(item) for item in node) + "]"
    return repr(node)


# ------------------------------------------------------------------------------------------------- modules
class _Module:
    """A parsed module: its top-level definitions {name: statements} and imports {name: spec}."""

    def __init__(self, name: str, is_package: bool, path: Path, tree: ast.Module):
        self.name, self.is_package, self.path = name, is_package, path
        self.defs: dict[str, list[ast.stmt]] = {}
        self.imports: dict[str, tuple] = {}
        self._index(tree.body)

    def _index(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs.setdefault(stmt.name, []).append(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    for node in ast.walk(target):
                        if isinstance(node, ast.Name):
                            self.defs.setdefault(node.id, []).append(stmt)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.imports.update(_import_specs(stmt, self.name, self.is_package))
            elif isinstance(stmt, (ast.If, ast.Try, ast.With)):  # e.g. an optional import, a fallback
                for field in ("body", "orelse", "finalbody"):
                    self._index(getattr(stmt, field, []))
                for handler in getattr(stmt, "handlers", []):
                    self._index(handler.body)


def _import_specs(stmt: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> dict[str, tuple]:
    """{bound name: ("module", m) or ("from", m, attribute)} of one import statement."""
    if isinstance(stmt, ast.Import):
        return {(a.asname or a.name.split(".")[0]): ("module", a.name if a.asname else a.name.split(".")[0])
                for a in stmt.names}
    base = stmt.module or ""
    if stmt.level:  # relative: from the module's package, up level - 1 more
        parts = module.split(".")[:len(module.split(".")) - stmt.level + (1 if is_package else 0)]
        base = ".".join(parts + ([stmt.module] if stmt.module else []))
    return {(a.asname or a.name): ("from", base, a.name) for a in stmt.names if a.name != "*"}


class _Package:
    """The package's modules, read from their files (`read` is how a file's text is read)."""

    def __init__(self, package: str = PACKAGE, root: Path | None = None, read: Callable[[Path], str] | None = None):
        self.package = package
        self.root = root or Path(__file__).resolve().parents[2]
        self.read = read or (lambda path: path.read_text(encoding="utf-8"))
        self._modules: dict[str, _Module | None] = {}

    def module(self, name: str) -> _Module | None:
        if name not in self._modules:
            self._modules[name] = self._load(name)
        return self._modules[name]

    def _load(self, name: str) -> _Module | None:
        if name != self.package and not name.startswith(self.package + "."):
            return None
        folder = self.root.joinpath(*name.split("."))
        for path, is_package in ((folder / "__init__.py", True), (folder.with_suffix(".py"), False)):
            if path.is_file():
                return _Module(name, is_package, path, ast.parse(self.read(path), filename=str(path)))
        return None

    def resolve(self, module: str, name: str, seen: frozenset = frozenset()) -> tuple | None:
        """What `name` at the top level of `module` is: ("module", m), ("def", m, name) or None (outside the
        package, or not defined)."""
        mod = self.module(module)
        if mod is None or (module, name) in seen:
            return None
        if name in mod.defs:
            return ("def", module, name)
        if name in mod.imports:
            return self.resolve_spec(mod.imports[name], seen | {(module, name)})
        if self.module(f"{module}.{name}") is not None:
            return ("module", f"{module}.{name}")
        return None

    def resolve_spec(self, spec: tuple, seen: frozenset = frozenset()) -> tuple | None:
        if spec[0] == "module":
            return ("module", spec[1]) if self.module(spec[1]) is not None else None
        _, module, attribute = spec
        if self.module(f"{module}.{attribute}") is not None:
            return ("module", f"{module}.{attribute}")
        return self.resolve(module, attribute, seen)

    def attribute(self, target: tuple | None, name: str) -> tuple | None:
        if target is not None and target[0] == "module":
            return self.resolve(target[1], name)
        return None  # an attribute of a class or function: the class is taken whole


# ------------------------------------------------------------------------------------------------ references
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _own_nodes(nodes: list[ast.AST]) -> Iterator[ast.AST]:
    """Every node of a scope's body, not descending into the scopes nested in it (their names are theirs)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _bindings(node: ast.AST, module: str, is_package: bool) -> dict[str, tuple | None]:
    """The names a scope binds: {name: import spec, or None for a local value}."""
    bound: dict[str, tuple | None] = {}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None:
                bound[arg.arg] = None
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        body = [g.target for g in node.generators]
    else:
        body = node.body if isinstance(node.body, list) else [node.body]
    declared_global = set()
    for child in _own_nodes(body):
        if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
            bound[child.id] = None
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound[child.name] = None
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            bound.update(_import_specs(child, module, is_package))
        elif isinstance(child, ast.ExceptHandler) and child.name:
            bound[child.name] = None
        elif isinstance(child, (ast.Global, ast.Nonlocal)):
            declared_global.update(child.names)
        elif isinstance(child, (ast.MatchAs, ast.MatchStar)) and child.name:
            bound[child.name] = None
    for name in declared_global:
        bound.pop(name, None)
    return bound


class _Uses(ast.NodeVisitor):
    """The top-level package definitions that the nodes of one module use, name by name, scope by scope."""

    def __init__(self, package: _Package, module: _Module):
        self.package, self.module = package, module
        self.scopes: list[tuple[dict, bool]] = []  # (bindings, is a class body), innermost last
        self.found: set[Target] = set()

    def _lookup(self, name: str) -> tuple | None:
        for depth, (bound, is_class) in enumerate(reversed(self.scopes)):
            if is_class and depth > 0:  # a class body's names are not visible inside its methods
                continue
            if name in bound:
                spec = bound[name]
                return self.package.resolve_spec(spec) if spec is not None else None
        return self.package.resolve(self.module.name, name)

    def _note(self, target: tuple | None) -> None:
        if target is not None and target[0] == "def":
            self.found.add((target[1], target[2]))

    def _scope(self, node: ast.AST, body: list, is_class: bool = False) -> None:
        self.scopes.append((_bindings(node, self.module.name, self.module.is_package), is_class))
        for child in body:
            self.visit(child)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for outer in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if outer is not None:
                self.visit(outer)
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg,
                    node.args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)
        if node.returns is not None:
            self.visit(node.returns)
        self._scope(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for outer in [*node.args.defaults, *node.args.kw_defaults]:
            if outer is not None:
                self.visit(outer)
        self._scope(node, [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for outer in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(outer)
        self._scope(node, node.body, is_class=True)

    def _comprehension(self, node) -> None:
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        self._scope(node, [*node.generators, *parts])

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._note(self._lookup(node.id))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name) and isinstance(node.ctx, ast.Load):
            target = self._lookup(base.id)
            for name in reversed(chain):
                target = self.package.attribute(target, name)
                self._note(target)
        self.generic_visit(node)


# ----------------------------------------------------------------------------------------------- stage code
def _stage_calls(package: _Package, module: _Module, function: ast.AST, cache_function: Target) -> Iterator[ast.Call]:
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            func, chain = node.func, []
            while isinstance(func, ast.Attribute):
                chain.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                target = package.resolve(module.name, func.id)
                for name in reversed(chain):
                    target = package.attribute(target, name)
                if target == ("def", *cache_function):
                    yield node


def _argument(call: ast.Call, position: int, name: str) -> ast.AST | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _version(package: _Package, module: _Module, stage: str, node: ast.AST | None) -> tuple[int, str, str]:
    """(version, name of the constant holding it or "" for a literal, the module that defines the constant) of
    one `artifacts.cached` call. The constant may be imported (the pipeline keeps one table of versions)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value, "", module.name
    target = package.resolve(module.name, node.id) if isinstance(node, ast.Name) else None
    if target is not None and target[0] == "def":
        home = package.module(target[1])
        stmts = home.defs.get(target[2], [])
        value = getattr(stmts[0], "value", None) if len(stmts) == 1 else None
        if isinstance(stmts[0] if stmts else None, (ast.Assign, ast.AnnAssign)) and isinstance(value, ast.Constant) \
                and type(value.value) is int:
            return value.value, target[2], target[1]
    raise CacheError(f"stage {stage!r} in {module.path.name}: pass its version to artifacts.cached as an integer "
                     "constant defined once at the top of a module (the table of stage versions)")


def _stages(package: _Package, modules: tuple[str, ...],
            cache_function: Target) -> dict[str, tuple[_Module, ast.FunctionDef, int, str]]:
    """{stage: (module, function, version, version constant, the constant's module)} of every
    `artifacts.cached` call in `modules`."""
    found: dict[str, tuple] = {}
    for name in modules:
        module = package.module(name)
        if module is None:
            raise CacheError(f"stage module {name} not found under {package.root}")
        for defs in module.defs.values():
            for function in defs:
                if not isinstance(function, ast.FunctionDef):
                    continue
                for call in _stage_calls(package, module, function, cache_function):
                    stage_node = _argument(call, 0, "stage")
                    if not (isinstance(stage_node, ast.Constant) and isinstance(stage_node.value, str)):
                        raise CacheError(f"{name}.{function.name}: name its stage with a string literal in "
                                         "artifacts.cached")
                    stage = stage_node.value
                    version = _version(package, module, stage, _argument(call, 1, "version"))
                    if stage in found and (found[stage][1] is not function or found[stage][2:] != version):
                        raise CacheError(f"stage {stage!r} is built in two places ({found[stage][1].name} and "
                                         f"{function.name}) or with two versions: one function, one version")
                    found[stage] = (module, function, *version)
    return found


def stage_code(package: str = PACKAGE, root: Path | None = None, modules: tuple[str, ...] = STAGE_MODULES,
               excluded: tuple[str, ...] = EXCLUDED_MODULES, cache_function: Target = CACHE_FUNCTION,
               read: Callable[[Path], str] | None = None) -> dict[str, StageCode]:
    """{stage: StageCode} for every stage of `modules`, from the package's source as it is now (`root` is the
    folder that holds the package; `read` reads a file's text: tests plant changes with it)."""
    pkg = _Package(package, root, read)
    stages = _stages(pkg, modules, cache_function)
    stops = {(m.name, f.name) for m, f, _, _, _ in stages.values()}
    stops |= {(home, constant) for _, _, _, constant, home in stages.values() if constant}
    digests: dict[Target, str] = {}
    uses: dict[Target, set[Target]] = {}

    def visit(target: Target) -> None:
        module = pkg.module(target[0])
        nodes = [_Canonical().visit(n) for n in module.defs[target[1]]]  # in place: idempotent, trees are ours
        digests[target] = _sha256("\n".join(_dump(n) for n in nodes))
        finder = _Uses(pkg, module)
        for node in nodes:
            finder.visit(node)
        uses[target] = {t for t in finder.found if pkg.module(t[0]) is not None and t[1] in pkg.module(t[0]).defs}

    out = {}
    for stage, (module, function, version, constant, home) in sorted(stages.items()):
        start = (module.name, function.name)
        reached, todo = set(), [start]
        while todo:
            target = todo.pop()
            if target in reached or target[0] in excluded or (target in stops and target != start):
                continue
            reached.add(target)
            if target not in digests:
                visit(target)
            todo.extend(uses[target])
        out[stage] = StageCode(stage, f"{module.name}.{function.name}", version, constant,
                               str(pkg.module(home).path.relative_to(pkg.root)),
                               {f"{m}.{n}": digests[(m, n)] for m, n in sorted(reached)})
    return out


# ------------------------------------------------------------------------------------------ record and check
def record(path: Path | None = None, current: dict[str, StageCode] | None = None) -> Path:
    """Write every stage's version and code digests to `path` (default `RECORD`), after bumping the versions of
    the stages whose results the change alters."""
    path = path or RECORD
    current = stage_code() if current is None else current
    code = {name: digest for s in current.values() for name, digest in s.code.items()}
    payload = {"about": f"the code each cached stage runs (toxlab.core.stage_code); written by `{RECORD_COMMAND}` "
                        "after "
                        "bumping the version of every stage whose results a change alters, checked by `toxlab "
                        "stages verify` and tests/test_stage_code.py",
               "stages": {s.stage: {"function": s.function, "version": s.version, "version_name": s.version_name,
                                    "code_sha256": s.digest, "code": sorted(s.code)} for s in current.values()},
               "code": dict(sorted(code.items()))}
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def read_record(path: Path | None = None) -> dict[str, dict]:
    """{stage: {"version", "code": {qualified name: digest}, ...}} from a file written by `record`."""
    path = path or RECORD
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return {stage: {**row, "code": {name: payload["code"][name] for name in row["code"]}}
                for stage, row in payload["stages"].items()}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CacheError(f"cannot read the stage code record {path} ({getattr(err, 'strerror', None) or err}); "
                         f"write it with `{RECORD_COMMAND}`") from None


def check(current: dict[str, StageCode], recorded: dict[str, dict]) -> list[StageCheck]:
    """Each stage, now and as recorded: code changed (with the version unchanged) is the stale-cache case."""
    checks = []
    for stage in sorted(set(current) | set(recorded)):
        now, then = current.get(stage), recorded.get(stage)
        if now is None:
            checks.append(StageCheck(stage, "gone", "no stage function builds it any more"))
        elif then is None:
            checks.append(StageCheck(stage, "not recorded", f"new stage ({now.function})"))
        elif then["version"] != now.version:
            checks.append(StageCheck(stage, "version changed", f"version {then['version']} -> {now.version}"))
        elif then["code"] != now.code:
            changed = sorted(n for n in set(now.code) & set(then["code"]) if now.code[n] != then["code"][n])
            added, dropped = sorted(set(now.code) - set(then["code"])), sorted(set(then["code"]) - set(now.code))
            detail = "; ".join(f"{label} {', '.join(names)}" for label, names in
                               (("changed", changed), ("now runs", added), ("no longer runs", dropped)) if names)
            checks.append(StageCheck(stage, "code changed", detail))
        else:
            checks.append(StageCheck(stage, "ok"))
    return checks


def problem(checks: list[StageCheck], current: dict[str, StageCode]) -> str | None:
    """What to do about the checks that are not ok, or None."""
    stale = [c for c in checks if c.status == "code changed"]
    other = [c for c in checks if c.status not in ("ok", "code changed")]
    lines = []
    for c in stale:
        s = current[c.stage]
        where = f"{s.version_name} = {s.version} in {s.path}" if s.version_name else f"version {s.version}"
        lines.append(f"stage {c.stage!r} runs changed code while its version ({where}) did not change: "
                     f"{c.detail}.")
    if stale:
        lines.append(f"Cached results of {'these stages' if len(stale) > 1 else 'this stage'} came from the old "
                     "code. If the change can alter them, bump the version and then run "
                     f"`{RECORD_COMMAND}`; if it cannot (a refactor, a rename), run `{RECORD_COMMAND}` alone and "
                     "say so in the commit message.")
    for c in other:
        lines.append(f"stage {c.stage!r}: {c.status} ({c.detail}): run `{RECORD_COMMAND}` to record it.")
    return "\n".join(lines) or None


def verify(path: Path | None = None) -> tuple[list[StageCheck], str | None]:
    """The checks of every stage against the record at `path` (default `RECORD`), and what to do (None when all
    are ok)."""
    current = stage_code()
    checks = check(current, read_record(path))
    return checks, problem(checks, current)
