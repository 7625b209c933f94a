"""The package's import graph: no import cycles, and the oracles stay oracles (no product module
imports tinymobile.reference or tinymobile.quantized_reference; they may import product modules,
such as fixedpoint.py, not the other way).

The graph is read with ``ast`` from every tinymobile/**/*.py, every ``import`` statement anywhere in
a file (module level, inside functions, under ``if``/``try``), relative imports resolved. An edge
A -> B means module A imports module B; ``from P import name`` is an edge to the submodule P.name
when there is one, else to P. Compiled modules (``_native``) and other packages are leaves.
"""
import ast
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tinymobile"
ORACLES = ("tinymobile.reference", "tinymobile.quantized_reference")

Graph = Dict[str, Dict[str, str]]  # importer -> {imported: "file:line" of the first such import}


def package_modules() -> Dict[str, Tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph() -> Graph:
    modules = package_modules()
    graph: Graph = {name: {} for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                           for alias in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    graph[name].setdefault(target, where)
    return graph


def elementary_cycles(graph: Graph, limit: int = 50) -> List[Tuple[str, ...]]:
    """Every simple cycle (each once, starting at its alphabetically first module), up to ``limit``."""
    found: List[Tuple[str, ...]] = []

    def walk(start: str, path: List[str]) -> None:
        for nxt in sorted(graph[path[-1]]):
            if len(found) >= limit:
                return
            if nxt == start:
                found.append(tuple(path))
            elif nxt > start and nxt not in path:
                walk(start, path + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def describe(cycle: Tuple[str, ...], graph: Graph) -> str:
    ring = list(cycle) + [cycle[0]]
    steps = ", ".join(f"{graph[a][b]}" for a, b in zip(ring, ring[1:]))
    return " -> ".join(ring) + f" ({steps})"


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "tinymobile.errors" in graph["tinymobile.model"]  # module level, relative
    # function level (cli imports the download module inside its commands) and `from . import x`
    assert "tinymobile.download" in graph["tinymobile.cli"]
    assert "tinymobile.converters" in graph and "tinymobile.convert" in graph["tinymobile"]
    ring = {"a": {"b": "a.py:1"}, "b": {"c": "b.py:1"}, "c": {"a": "c.py:1", "b": "c.py:2"}}
    assert elementary_cycles(ring) == [("a", "b", "c"), ("b", "c")]


def test_no_import_cycles():
    graph = import_graph()
    cycles = [describe(c, graph) for c in elementary_cycles(graph)]
    assert not cycles, "import cycles in tinymobile:\n  " + "\n  ".join(cycles)


def test_no_product_module_imports_an_oracle():
    graph = import_graph()
    assert set(ORACLES) <= set(graph), "an oracle module moved: update ORACLES"
    found = sorted((a, b) for a, targets in graph.items() if a not in ORACLES for b in targets if b in ORACLES)
    assert not found, ("product modules importing the NumPy oracles (reference.py, quantized_reference.py):\n  "
                       + "\n  ".join(f"{a} imports {b} ({graph[a][b]})" for a, b in found))
