"""``cnnzoo.data`` is in layers with no import circle, even through imports inside functions.

Every module of the package is parsed (not imported) and every ``import`` in it, at any depth
(function bodies and ``if TYPE_CHECKING:`` blocks included), becomes an edge of the graph of
imports within the package. The graph must have no cycle, and every module must belong to a
layer of :data:`cnnzoo.data.LAYERS` and import only modules of its own or lower layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cnnzoo.data
from cnnzoo.data import LAYERS

PACKAGE = "cnnzoo.data"
ROOT = Path(cnnzoo.data.__file__).parent


def _modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the package that module ``name`` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            # ``from pkg import sub`` imports the submodule ``pkg.sub``
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            # ``import cnnzoo.data.x.y`` imports the deepest module of the package it names
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of() -> dict[str, int]:
    return {f"{PACKAGE}.{m}" if m else PACKAGE: i for i, ms in enumerate(LAYERS) for m in ms}


def test_the_graph_is_read_from_every_import():
    """The parser sees imports at the top, inside functions and under TYPE_CHECKING."""
    edges = graph()
    assert f"{PACKAGE}.augment.functional" in edges[f"{PACKAGE}.augment"]
    assert f"{PACKAGE}.augment" in edges[f"{PACKAGE}.images"]  # under TYPE_CHECKING
    assert f"{PACKAGE}.stream" in edges[f"{PACKAGE}.build"]


def test_there_is_no_import_circle():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle in cnnzoo.data: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_has_a_layer_and_imports_no_higher_one():
    layers = layer_of()
    edges = graph()
    assert set(layers) == set(edges), (
        f"modules without a layer: {sorted(set(edges) - set(layers))}; "
        f"layers naming no module: {sorted(set(layers) - set(edges))}"
    )
    upward = [
        f"{a} (layer {layers[a]}) imports {b} (layer {layers[b]})"
        for a, targets in sorted(edges.items())
        for b in sorted(targets)
        if layers[b] > layers[a]
    ]
    assert not upward, "; ".join(upward)
