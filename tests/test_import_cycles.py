"""No two modules of a package import each other, directly or round a longer circle (lazy imports included): a
circle makes import order matter and hides which module owns a concept."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "odedge": REPO / "edge_component" / "odedge",
    "odshared": REPO / "lambdas" / "shared" / "odshared",
    "odctl": REPO / "scripts" / "odctl",
    "bench": REPO / "bench",
    "infra": REPO / "infra",
}


def module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str) -> list[tuple[int, str, list[str]]]:
    """Every import of the module ``name`` at ``path`` (lazy ones too) as (line, module, names it takes), a
    relative import resolved against ``name``: shared with test_layers so both read imports alike."""
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
    return found


def _graph(package: str, root: Path) -> dict[str, set[str]]:
    modules = {module_name(package, root, p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for _, module, names in imports(path, name):
            targets = [module, *(f"{module}.{taken}" for taken in names)]
            graph[name].update(t for t in targets if t in modules and t != name and not name.startswith(f"{t}."))
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_circle(package):
    graph = _graph(package, PACKAGES[package])
    # a package's __init__ importing its own submodules is no circle of concern; drop those edges
    for name in graph:
        graph[name] = {t for t in graph[name] if not (t.startswith(f"{name}.") and name == package)}
    assert _circle(graph) is None, " -> ".join(_circle(graph) or [])
