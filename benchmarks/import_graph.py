"""Which retain package imports which: an ``ast`` scan of ``src/retain``, no imports executed.

    python benchmarks/import_graph.py            # package -> packages it imports (top level)
    python benchmarks/import_graph.py --modules  # module -> retain modules it imports
    python benchmarks/import_graph.py --lazy     # include imports inside functions

By default only module-level imports count (those run when the module is imported); imports inside
functions are deferred and listed with ``--lazy``. A package is ``retain.X`` for a sub-package or
module ``X``; ``retain`` itself is the top-level ``__init__``.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level(tree: ast.Module):
    """Statements executed at import time (module body, ``if``/``try`` blocks, not functions)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if isinstance(node, ast.ClassDef):
                todo.extend(n for n in node.body if not isinstance(n, (ast.FunctionDef,
                                                                          ast.AsyncFunctionDef)))
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            todo.extend(getattr(node, field, []) or [])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, lazy: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes = ast.walk(tree) if lazy else _top_level(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m == "retain" or m.startswith("retain.")}


def existing(mod: str, known: set[str]) -> str | None:
    while mod and mod not in known:
        mod = mod.rpartition(".")[0]
    return mod or None


def package_of(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", action="store_true")
    ap.add_argument("--lazy", action="store_true")
    args = ap.parse_args()
    files = sorted((SRC / "retain").rglob("*.py"))
    known = {module_name(p) for p in files}
    graph: dict[str, set[str]] = defaultdict(set)
    for path in files:
        src = module_name(path)
        for target in imports(path, args.lazy):
            target = existing(target, known)
            if target is None or target == src:
                continue
            if args.modules:
                graph[src].add(target)
            elif package_of(target) != package_of(src) and target != "retain":
                graph[package_of(src)].add(package_of(target))
    for src in sorted(graph):
        print(f"{src:28s} -> {', '.join(sorted(graph[src]))}")


if __name__ == "__main__":
    main()
