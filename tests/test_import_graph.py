"""No two parts of the package import each other (issue 20): the graph between locallearn's top-level parts,
counting every import (lazy ones inside functions and those under ``if TYPE_CHECKING:`` too), has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import locallearn

ROOT = Path(locallearn.__file__).parent


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("").parts
    return rel[0] if rel[0] != "__init__" else ""


def part_graph() -> dict[str, set[str]]:
    """Part -> the other parts it imports from (``locallearn.X...`` names; the package's own ``__init__`` left out)."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        part = _part(path)
        if not part:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                bits = name.split(".")
                if bits[0] == "locallearn" and len(bits) > 1 and bits[1] != part:
                    graph.setdefault(part, set()).add(bits[1])
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_cycle_finds_a_lazy_two_cycle_and_passes_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_no_two_parts_of_the_package_import_each_other():
    graph = part_graph()
    assert "schedules" in graph and "distributed" in graph["schedules"]  # the graph sees the package's imports
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
