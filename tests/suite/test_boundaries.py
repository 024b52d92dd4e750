"""Import boundaries: the library (`forcing/`) imports nothing from the Lightning side, and the
repository's own modules import one another without a cycle.

Every `.py` file of `forcing/`, `lightning_modules/`, `callbacks/`, `datamodules/` and the top-level
scripts is parsed with `ast` (never imported). Counted: every `import x` / `from x import y`
anywhere in a file, of three kinds: at module level, inside a function or class body (deferred
imports), and under `if TYPE_CHECKING:` (annotation-only imports are dependencies of the design
too). `from x import y` depends on the module `x.y` when that is one of ours, else on `x`; relative
imports are resolved against the importing module. A package's `__init__` is not an implicit
dependency of its submodules (only what a file names counts).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("forcing", "lightning_modules", "callbacks", "datamodules")
LIBRARY = "forcing"
#: what the library never imports (the Lightning side and the Hydra configs)
UPWARD = ("lightning_modules", "callbacks", "datamodules", "conf")
#: edges left to other parts of the redesign, each with its reason (delete when the reason is gone)
PENDING: dict[tuple[str, str], str] = {}


# ---------------------------------------------------------------------------------------------- helpers
def module_name(path: Path, root: Path = ROOT) -> str:
    """Dotted name of a source file (`pkg/__init__.py` -> `pkg`)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def repo_sources(root: Path = ROOT) -> dict[str, str]:
    """{module name: source} of the packages and the top-level scripts of `root`."""
    files = [p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))] + sorted(root.glob("*.py"))
    return {module_name(p, root): p.read_text() for p in files}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(module: str, source: str, is_package: bool = False) -> list[tuple[str, str]]:
    """(dotted name, kind) of every import in `source`; kind: "module", "function" or "type_checking".

    `from x import a` yields `x.a` (the caller decides whether that is a module or a name in `x`).
    """
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, kind: str) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, kind) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.extend((f"{base}.{alias.name}" if alias.name != "*" else base, kind) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body:
                visit(child, "type_checking")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, "function" if kind == "module" else kind)
            else:
                visit(child, kind)

    visit(ast.parse(source), "module")
    return found


def resolve(name: str, modules: Iterable[str]) -> str | None:
    """The longest of `modules` that `name` is or lies in (`a.b.c` -> `a.b` when `a.b.c` is a name)."""
    known = set(modules)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def import_graph(sources: Mapping[str, str], packages: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """{module: {imported module of `sources`: kind}} (self-imports dropped); `packages` are `__init__`s."""
    pkgs = set(packages)
    graph: dict[str, dict[str, str]] = {}
    for module, source in sources.items():
        edges: dict[str, str] = {}
        for name, kind in imported_names(module, source, module in pkgs):
            target = resolve(name, sources)
            if target is not None and target != module:
                edges.setdefault(target, kind)
        graph[module] = edges
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, deterministic order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := dfs(start)) is not None:
            return cycle
    return None


def upward_imports(sources: Mapping[str, str], library: str = LIBRARY) -> list[str]:
    """`module -> imported name (kind)` for every import of `UPWARD` by a module of `library`."""
    leaks = []
    for module, source in sources.items():
        if module == library or module.startswith(library + "."):
            for name, kind in imported_names(module, source):
                if name.split(".")[0] in UPWARD:
                    leaks.append(f"{module} -> {name} ({kind})")
    return leaks


def repo_graph() -> dict[str, dict[str, str]]:
    """The import graph of the repository, without the `PENDING` edges."""
    sources = repo_sources()
    packages = {module_name(p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py")}
    graph = import_graph(sources, packages)
    for a, b in PENDING:
        graph.get(a, {}).pop(b, None)
    return graph


# ---------------------------------------------------------------------------------------------- the repository
def test_library_imports_nothing_from_the_lightning_side() -> None:
    assert upward_imports(repo_sources()) == []


def test_repository_has_no_import_cycle() -> None:
    graph = repo_graph()
    assert len(graph) > 100 and "forcing.models" in graph["lightning_modules.base"]  # the graph is real
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(
        f"{a} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:])
    ) + f" -> {cycle[-1]}"


# ---------------------------------------------------------------------------------------------- the helpers
IMPORTS = '''
import os
from typing import TYPE_CHECKING
from pkg.a import thing
if TYPE_CHECKING:
    from pkg.b import Model
def f():
    import pkg.c
class C:
    def g(self):
        from . import d
'''


def test_every_kind_of_import_is_seen() -> None:
    assert imported_names("pkg.x", IMPORTS) == [
        ("os", "module"),
        ("typing.TYPE_CHECKING", "module"),
        ("pkg.a.thing", "module"),
        ("pkg.b.Model", "type_checking"),
        ("pkg.c", "function"),
        ("pkg.d", "function"),
    ]
    graph = import_graph({"pkg.x": IMPORTS, "pkg.a": "", "pkg.b": "", "pkg.c": "", "pkg.d": ""})
    assert graph["pkg.x"] == {"pkg.a": "module", "pkg.b": "type_checking", "pkg.c": "function", "pkg.d": "function"}


@pytest.mark.parametrize(
    ("sources", "cycle"),
    [
        ({"a": "import b", "b": "import c", "c": ""}, None),
        ({"a": "import b", "b": "import a"}, ["a", "b", "a"]),
        ({"a": "import b", "b": "def f():\n    from c import x", "c": "from a import y"}, ["a", "b", "c", "a"]),
        ({"a": "import b", "b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a"}, ["a", "b", "a"]),
        ({"p": "from p.m import x", "p.m": "from p import y"}, ["p", "p.m", "p"]),  # package <-> submodule
        ({"p": "from . import m", "p.m": "from .n import z", "p.n": ""}, None),  # relative, acyclic
    ],
)
def test_find_cycle_on_planted_graphs(sources: dict[str, str], cycle: list[str] | None) -> None:
    assert find_cycle(import_graph(sources, packages={"p"})) == cycle


def test_upward_import_is_caught(tmp_path: Path) -> None:
    planted = {
        "forcing.ok": "from forcing.models import wan",
        "forcing.bad": "def f():\n    from lightning_modules.launch import paradigm_class",
        "forcing.typed": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import callbacks.x",
        "lightning_modules.fine": "from forcing import bench",
    }
    assert upward_imports(planted) == [
        "forcing.bad -> lightning_modules.launch.paradigm_class (function)",
        "forcing.typed -> callbacks.x (type_checking)",
    ]
