"""Every ```python block in docs/*.md and README.md runs, so the examples cannot rot; where a
block is followed by an "Output:" block, what it prints must be that output.

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
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# a python block, optionally followed by "Output:" and the block the user sees
BLOCK = re.compile(r"```python\n(.*?)```(?:\n\nOutput:\n\n```[a-z]*\n(.*?)```)?", re.S)


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
    blocks = BLOCK.findall(page.read_text())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, (code, expected) in enumerate(blocks):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page.name} block {i} failed: {exc!r}\n{code}") from exc
        if expected:
            assert _same_output(printed.getvalue(), expected), (
                f"{page.name} block {i} printed something else than its Output: block:\n"
                f"{printed.getvalue()}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_output_block_follows_the_example_it_shows(page):
    """An Output: block the pattern above does not pair with a python block would be shown to
    users and never checked."""
    text = page.read_text()
    assert text.count("\nOutput:\n") == sum(1 for _, out in BLOCK.findall(text) if out)


def test_output_comparison_allows_only_the_last_digit_of_decimals_to_differ():
    assert _same_output("acc 0.81\n", "acc 0.80")
    assert not _same_output("acc 0.82", "acc 0.80")
    assert not _same_output("acc 0.8", "acc 0.80")
    assert not _same_output("rows [51, 28]", "rows [51, 29]")
    assert not _same_output("acc 0.80\nmore", "acc 0.80")
    assert not _same_output("loss 0.80", "acc 0.80")
