"""No import cycle anywhere in ckpt_gui: every import counts, in functions and TYPE_CHECKING too.

The graph is read from the source with ``ast`` (nothing is imported): one node per
module, one edge per ``import``/``from ... import`` wherever it is written. A cycle
hidden in a function or behind ``TYPE_CHECKING`` still ties the modules together
(they cannot be understood, tested or moved apart), so it fails here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ckpt_gui

PACKAGE_ROOT = Path(ckpt_gui.__file__).parent
PACKAGE = "ckpt_gui"


def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of the package (packages by their __init__)."""
    modules: dict[str, Path] = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                package = name.split(".") if is_package else name.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from a import b` imports module a.b when there is one, else a name of a.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in targets:
            found.update(_with_parents(target, modules))
    own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    # The importer's own packages are initialised before it runs: not a dependency.
    return found - own_packages - {name}


def _with_parents(target: str, modules: dict[str, Path]) -> Iterator[str]:
    """``a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``: each one of ours is an edge."""
    parts = target.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in modules:
            yield prefix


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "; ".join(edges)


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    found = [describe(component, graph) for component in cycles(graph)]
    assert found == []


def test_the_graph_sees_imports_in_functions_and_under_type_checking() -> None:
    """The reader finds what the cycle test relies on (known edges of the real code)."""
    graph = import_graph()
    # app.build_window imports the features inside the function; its annotations come
    # from a TYPE_CHECKING block.
    assert "ckpt_gui.qt.export.feature" in graph["ckpt_gui.qt.app"]
    assert "ckpt_gui.qt.main_window" in graph["ckpt_gui.qt.app"]
    assert "ckpt_gui.qt.shell" in graph["ckpt_gui.qt.export.controller"]


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"x": {"y"}, "y": set()}) == []
