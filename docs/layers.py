"""The picture of retain's layers in docs/architecture.md, drawn from the import graph.

    python docs/layers.py        # prints the picture (tests/test_import_cycles.py checks that
                                 # docs/architecture.md shows exactly this)

The layers are the import-linter contract's (pyproject.toml); each package (``retain.X``) is
listed in its layer with the retain packages it imports, type-checking imports included, as
grimp finds them. An arrow points down or sideways, never up (``lint-imports``), and no set of
modules imports itself through others (tests/test_import_cycles.py).
"""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("command line", "applications", "checkpoint format", "core")


def layers() -> list[list[str]]:
    """The contract's layers, top first, as lists of ``retain.X`` names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return [[name.strip() for name in layer.split(":")] for layer in contract["layers"]]


def package_imports(graph) -> dict[str, set[str]]:
    """``retain.X -> {retain.Y, ...}``: the packages each package's modules import."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        if module == "retain":
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != "retain" and package(imported) != package(module):
                edges.setdefault(package(module), set()).add(package(imported))
    return edges


def depths(layer: list[str], edges: dict[str, set[str]]) -> dict[str, int]:
    """Each package's height inside its layer: 0 imports no sibling, n imports one of n - 1."""
    found: dict[str, int] = {}

    def height(package: str, seen: frozenset[str]) -> int:
        if package not in found:
            below = [t for t in edges.get(package, ()) if t in layer and t not in seen]
            found[package] = 1 + max((height(t, seen | {t}) for t in below), default=-1)
        return found[package]

    for package in layer:
        height(package, frozenset({package}))
    return found


def picture(width: int = 96) -> str:
    """Layers top first; in each, packages that import their siblings above those they
    import; ``↑`` marks an import of a higher layer (the one the contract allows)."""
    graph = grimp.build_graph("retain", cache_dir=None)
    edges = package_imports(graph)
    all_layers = layers()
    lines = []
    for i, (name, layer) in enumerate(zip(NAMES, all_layers, strict=True)):
        higher = {p for upper in all_layers[:i] for p in upper}
        lines.append(f"{name} " + "─" * (width - len(name) - 1))
        height = depths(layer, edges)
        for package in sorted(layer, key=lambda p: (-height[p], p)):
            targets = " ".join(sorted(t.removeprefix("retain.") + ("↑" if t in higher else "")
                                      for t in edges.get(package, ())))
            text = f"{package.removeprefix('retain.'):<13}→ {targets or '(nothing of retain)'}"
            lines += textwrap.wrap(text, width, subsequent_indent=" " * 15)
    return "\n".join(lines)


if __name__ == "__main__":
    print(picture())
