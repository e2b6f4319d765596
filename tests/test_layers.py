"""The import structure: data flows one way, and no module imports back up.

Every ``import`` of an ``invalloc`` module anywhere in a module (top level, inside a function,
under ``TYPE_CHECKING``) is an edge. Two checks, from the source text (nothing is imported):

- no import cycle between modules (a function-level import still ties the two together);
- a package imports only from its own layer and the layers before it (:data:`LAYERS`).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Packages and top-level modules from the bottom up. Those of one entry may import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("invalloc", "console", "digests", "processes", "tracking", "cluster", "workbooks"),  # shared utilities
    ("config", "scenarios", "experiments", "tuned"),
    ("history",),  # a planner's tables and sales history → scenario configuration
    ("sim",),
    ("env",),
    ("baselines",),
    ("agents",),
    ("rules",),  # the rule-table format and its numpy evaluator: a policy kind like the others
    ("evaluation",),
    ("export",),
    ("governance",),
    ("quickstart", "api"),  # the whole path in one command, and the Python API (invalloc.api)
    ("cli", "__main__"),
)

#: Imports that run against the layers on purpose, (importer, imported). The root package's
#: ``__getattr__`` loads the Python API (top layer) when ``invalloc.simulate`` and the rest are
#: first used, so that ``import invalloc`` stays light; it runs at attribute access, never while
#: a module imports.
LAZY_EXPORTS: frozenset[tuple[str, str]] = frozenset({("invalloc", "invalloc.api")})


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (SRC / "invalloc").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the invalloc modules it imports (``from a.b import c`` counts a.b and a.b.c)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def _layered_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """:func:`_imports` without :data:`LAZY_EXPORTS`."""
    return {name: {t for t in targets if (name, t) not in LAZY_EXPORTS} for name, targets in _imports(modules).items()}


def _unit(module: str) -> str:
    """``invalloc.sim.books`` → ``sim``; ``invalloc.tracking`` → ``tracking``; ``invalloc`` → itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "invalloc"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_package_has_a_layer():
    units = {_unit(m) for m in _modules()}
    placed = {u for layer in LAYERS for u in layer}
    assert units <= placed, f"give these a layer in LAYERS: {sorted(units - placed)}"


def test_no_import_cycle_between_modules():
    assert _cycles(_layered_imports(_modules())) == []


def test_the_lazy_exports_are_still_there():
    """Every exception in :data:`LAZY_EXPORTS` is an import the source makes (none is stale)."""
    edges = _imports(_modules())
    assert all(target in edges.get(source, set()) for source, target in LAZY_EXPORTS)


def test_packages_import_only_from_layers_before_them():
    rank = {unit: level for level, layer in enumerate(LAYERS) for unit in layer}
    upward = sorted(
        f"{source} imports {target}"
        for source, targets in _layered_imports(_modules()).items()
        for target in targets
        if rank[_unit(target)] > rank[_unit(source)]
    )
    assert upward == []


def test_the_checks_can_fail():
    """The cycle finder and the layer rule see a cycle and an upward import when there is one."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    rank = {unit: level for level, layer in enumerate(LAYERS) for unit in layer}
    assert rank[_unit("invalloc.sim.books")] < rank[_unit("invalloc.evaluation.compare")]
