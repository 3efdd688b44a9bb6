"""Every ```python block in docs/*.md and README.md runs, so the examples cannot rot; the
block shown right after it (optionally introduced by "Output:", in a plain, ``text``,
``console`` or ``output`` fence) is its output, and what it prints must be exactly that. A block
that prints must show what it prints. Pages without a python block have no item here.

Blocks of one page run in order in one namespace, in a temporary working directory. Outputs
are compared line by line, ignoring trailing spaces and surrounding blank lines; text and
integers must match exactly, decimals within one unit of their last printed digit (another
CPU's float rounding may flip the last digit of a trained model's score, nothing more).
"""

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL_PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```$", re.S | re.M)
OUTPUT_FENCES = {"", "text", "console", "output"}


def examples(text: str) -> list[tuple[str, str | None]]:
    """``(code, shown output or None)`` for each python block of a page, in order: the output
    is the next fence if only blank lines and an optional "Output:" line stand between."""
    return [(code, shown.group(2) if shown else None) for code, shown in _pairs(text)]


def _pairs(text: str) -> list[tuple[str, re.Match | None]]:
    fences = list(FENCE.finditer(text))
    found = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else None
        shown = None
        if (after is not None and after.group(1) in OUTPUT_FENCES
                and text[fence.end():after.start()].strip() in ("", "Output:")):
            shown = after
        found.append((fence.group(2), shown))
    return found


PAGES = [page for page in ALL_PAGES if examples(page.read_text())]


DECIMAL = re.compile(r"-?\d+\.\d+")


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def _same_output(printed: str, expected: str) -> bool:
    got, want = _lines(printed), _lines(expected)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if DECIMAL.sub("#", g) != DECIMAL.sub("#", w):
            return False
        for a, b in zip(DECIMAL.findall(g), DECIMAL.findall(w), strict=True):
            places = len(b.split(".")[1])
            if len(a.split(".")[1]) != places or abs(float(a) - float(b)) > 1.01 * 10**-places:
                return False
    return True


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_run_and_print_their_documented_output(page, tmp_path, monkeypatch):
    blocks = examples(page.read_text())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, (code, expected) in enumerate(blocks):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page.name} block {i} failed: {exc!r}\n{code}") from exc
        if expected is not None:
            assert _same_output(printed.getvalue(), expected), (
                f"{page.name} block {i} printed something else than the output shown after it:"
                f"\n{printed.getvalue()}")
        else:
            assert not printed.getvalue().strip(), (
                f"{page.name} block {i} prints but the page does not show what:\n"
                f"{printed.getvalue()}")


def test_every_output_block_follows_the_example_it_shows():
    """An "Output:" block not paired with a python block would be shown and never checked."""
    unpaired = {}
    for page in ALL_PAGES:
        text = page.read_text()
        shown = {out.start() for _, out in _pairs(text) if out}
        labels = [m.end() for m in re.finditer(r"\nOutput:\n", text)]
        fences = [m.start() for m in FENCE.finditer(text)]
        after = [next((f for f in fences if f > label), None) for label in labels]
        if any(f not in shown for f in after):
            unpaired[page.name] = [text[:label].count("\n") for label, f in zip(
                labels, after, strict=True) if f not in shown]
    assert unpaired == {}, "Output: lines (line numbers) with no python block before them"


def test_pages_without_python_blocks_yield_no_item_and_output_pairs_whatever_the_fence():
    assert "architecture.md" not in {page.name for page in PAGES}
    text = ("```python\nprint(1)\n```\n\n```console\n1\n```\n\n```python\nx = 1\n```\n\n"
            "```bash\nls\n```")
    assert examples(text) == [("print(1)\n", "1\n"), ("x = 1\n", None)]


def test_output_comparison_allows_only_the_last_digit_of_decimals_to_differ():
    assert _same_output("acc 0.81\n", "acc 0.80")
    assert not _same_output("acc 0.82", "acc 0.80")
    assert not _same_output("acc 0.8", "acc 0.80")
    assert not _same_output("rows [51, 28]", "rows [51, 29]")
    assert not _same_output("acc 0.80\nmore", "acc 0.80")
    assert not _same_output("loss 0.80", "acc 0.80")
