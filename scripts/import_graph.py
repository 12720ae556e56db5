"""The import graph of the ``i2i`` package, from its source (Python's ``ast``, nothing imported).

    python scripts/import_graph.py [SRC_DIR]       # default: src/i2i next to this script

Prints the edges between the package's layers (``i2i.train -> i2i.runs``; ``(lazy)`` when every
import behind an edge sits inside a function), then any import cycle between modules, counting
imports inside functions too (a lazy import does not make a circle go away), and leaving out
imports under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. "i2i.infer.translator"
    target: str  # imported module
    lazy: bool  # inside a function


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(name: str, modules: set[str]) -> str | None:
    """The longest known module that ``name`` (a module or a name in one) lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(src: Path) -> list[Import]:
    """Every import of an ``i2i`` module by another, outside ``if TYPE_CHECKING:`` blocks."""
    files = {module_name(p, src): p for p in sorted(src.rglob("*.py"))}
    found = []
    for source, path in files.items():
        tree = ast.parse(path.read_text())
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]

        def visit(node: ast.AST, lazy: bool, source: str = source, package: str = package) -> None:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    visit(child, lazy)
                return
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                names = [f"{base}.{a.name}" for a in node.names]
            for name in names:
                target = resolve(name, set(files))
                if target and target != source:
                    found.append(Import(source, target, lazy))
            inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for child in ast.iter_child_nodes(node):
                visit(child, inner)

        visit(tree, False)
    return found


def layer(module: str) -> str:
    """``i2i.infer.translator`` -> ``i2i.infer``; top-level modules stand for themselves."""
    return ".".join(module.split(".")[:2])


def cycles(edges: list[Import]) -> list[list[str]]:
    """The import cycles between modules (each listed once, from its smallest module)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.source].add(e.target)
    found: set[tuple[str, ...]] = set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == path[0]:
                i = path.index(min(path))
                found.add(tuple(path[i:] + path[:i]))
            elif nxt not in path and nxt > path[0]:
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return [list(c) for c in sorted(found)]


def layer_edges(edges: list[Import]) -> dict[tuple[str, str], bool]:
    """(layer, layer) -> whether every import behind that edge is lazy."""
    out: dict[tuple[str, str], bool] = {}
    for e in edges:
        key = (layer(e.source), layer(e.target))
        if key[0] != key[1]:
            out[key] = out.get(key, True) and e.lazy
    return out


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "src/i2i"
    edges = imports(src)
    print(f"layer edges of {src} (lazy: only inside functions)")
    for (a, b), lazy in sorted(layer_edges(edges).items()):
        print(f"  {a} -> {b}{'  (lazy)' if lazy else ''}")
    found = cycles(edges)
    print(f"import cycles between modules: {len(found)}")
    for cycle in found:
        print("  " + " -> ".join([*cycle, cycle[0]]))


if __name__ == "__main__":
    main()
