"""The library's imports go one way: no circles, no Dagster, each layer using only those below.

Read from the source with `ast` (nothing is imported), counting imports inside functions too:
a lazy import still makes a circle, it only hides it until run time. Imports under
`if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "geovision"

# Lower layers never import higher ones. Modules at the package top (layout, errors, hashing,
# discovery, io, provenance) are the foundation every layer may use.
LAYERS = {
    "data": 1,
    "models": 2,
    "experiment": 3,
    "analysis": 4, "features": 4, "satellite": 4, "inference": 4,
    "pipeline": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str) -> str | None:
    """The deepest geovision module a dotted name points into (None outside geovision)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_names(module: str) -> set[str]:
    """Every absolute name `module` imports (relative imports made absolute)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        # `from package import submodule` depends on the submodule, not on the package's
        # __init__ (which may itself import that submodule); any other name is the package's.
        for alias in node.names:
            full = f"{base}.{alias.name}"
            names.add(full if full in MODULES else base)
    return names


def dependencies(module: str) -> set[str]:
    deps = {_resolve(name) for name in imported_names(module)}
    return {dep for dep in deps if dep is not None and dep != module}


GRAPH = {module: dependencies(module) for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) < 2:
        return 0
    # The CLI's command groups (geovision/cli_<group>.py) sit in the CLI's layer.
    top = "cli" if parts[1].startswith("cli_") else parts[1]
    return LAYERS.get(top, 0)


def test_the_graph_is_read_from_the_source():
    # Top-level, function-local and relative imports are all edges; TYPE_CHECKING ones are not.
    assert "geovision.data.registry" in GRAPH["geovision.pipeline"]
    # imported inside a function:
    assert "geovision.experiment.runtime.train" in GRAPH["geovision.pipeline"]
    assert _is_dagster("dagster") and _is_dagster("dagster_aws.s3")
    assert not _is_dagster("dagster_pipes")


def test_no_import_circles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


# The dependency-free protocol package a torchrun worker reports through; not Dagster itself.
ALLOWED_DAGSTER = {"dagster_pipes"}


def _is_dagster(name: str) -> bool:
    top = name.split(".")[0]
    return (top == "dagster" or top.startswith("dagster_")) and top not in ALLOWED_DAGSTER


def test_no_dagster_inside_the_library():
    offenders = sorted(module for module in MODULES
                       if any(_is_dagster(name) for name in imported_names(module)))
    assert offenders == [], f"geovision must not import dagster: {offenders}"


def test_layers_depend_downward_only():
    upward = sorted(f"{module} -> {dep}" for module, deps in GRAPH.items() for dep in deps
                    if layer(dep) > layer(module))
    assert upward == [], "imports against the layer order (data <- models <- experiment <- " \
                         "analysis/features/satellite/inference <- pipeline <- cli):\n" \
                         + "\n".join(upward)


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert find_cycle(graph) == expected
