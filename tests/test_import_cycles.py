"""No module of retain imports itself back through others, type-checking imports included.

The layer contracts (pyproject.toml, ``lint-imports``) see only imports between layers; a
circle inside one layer (the core is twenty siblings) is invisible to them. This test builds
the whole import graph with grimp and fails on any strongly connected set of modules,
printing each import of the circle with its line.
"""

import grimp
import pytest

#: circles known and owned elsewhere (forecasting, issue 37's merge removes them): each entry
#: is the exact set of modules of one circle; a circle that differs at all still fails
ALLOWED: list[frozenset[str]] = [
    frozenset({"retain.forecasting.approaches", "retain.forecasting.hybrid",
               "retain.forecasting.statistical"}),
]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("retain", cache_dir=None)


def circles(graph) -> list[list[str]]:
    """The strongly connected sets of two or more modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
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
                    work.append((child, iter(sorted(
                        graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(sorted(members))
    return found


def describe(graph, members: list[str]) -> str:
    inside = set(members)
    lines = [f"a circle of {len(members)} modules:"]
    for importer in members:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & inside):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"  {importer}:{detail['line_number']} -> {imported}   "
                             f"{detail['line_contents']}")
    return "\n".join(lines)


def test_no_module_imports_itself_through_others(graph):
    bad = [c for c in circles(graph) if frozenset(c) not in ALLOWED]
    assert not bad, "\n\n".join(describe(graph, c) for c in bad)


def test_the_allowed_circles_still_exist(graph):
    """An allowed circle that is gone must leave the list, so the list only shrinks."""
    present = {frozenset(c) for c in circles(graph)}
    assert [sorted(c) for c in ALLOWED if c not in present] == []


def test_a_circle_added_on_purpose_is_caught(graph):
    graph.add_import(importer="retain.errors", imported="retain.learner", line_number=1,
                     line_contents="from retain.learner import Learner")
    try:
        bad = [c for c in circles(graph) if frozenset(c) not in ALLOWED]
        report = "\n".join(describe(graph, c) for c in bad)
    finally:
        graph.remove_import(importer="retain.errors", imported="retain.learner")
    assert len(bad) == 1 and {"retain.errors", "retain.learner"} <= set(bad[0])
    assert "retain.errors:1 -> retain.learner" in report
