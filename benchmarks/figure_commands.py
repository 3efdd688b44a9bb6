"""Figures with no command: every paragraph, list item or table row of a page that quotes a
measured number must name, in backticks, the command that produces it, or the number must
stand in ``benchmarks/README.md`` on a line that names one.

A figure is a decimal number or a number with a unit of measure (%, ×, s, ms, min, points,
/s, GW, MW); dates, versions, numbers inside backticks (a command's arguments), settings
(``γ = 0.9``, ``default 0.02``) and config blocks (``yaml``, ``toml``) are not. A fenced block
belongs to the paragraph that introduces it (a table printed by the command that paragraph
names). Two other sources are accepted, each checkable by a reader: a sentence citing a
publication (``Smith & Randall (2015)``, ``Zhang et al. 2017``) or an external link quotes
that source's figures, and a figure that a paragraph's named source file
(``src/retain/...py`` in backticks) holds literally is that code's constant. Prints
``PAGE:LINE: figures -- the start of the paragraph`` for each one
without a command; exits 1 if there is any.

    python benchmarks/figure_commands.py                 # README.md
    python benchmarks/figure_commands.py docs/*.md       # any pages
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT = r"(?:%|×|x\b|\s?s\b|\s?ms\b|\s?min\b|\s?minutes\b|\s?points\b|/s\b|\s?GW\b|\s?MW\b)"
FIGURE = re.compile(rf"(?<![\w.])[-+−]?\d[\d,]*(?:\.\d+)?{UNIT}|(?<![\w.-])[-+−]?\d+\.\d+\b")
EXAMPLE = "`python (the example above)`"
# a command, after any environment settings (PYTHONPATH=src python ...); the program name
# must end at a space, so a name such as `retain-balanced` is not taken for one
COMMAND = re.compile(r"`\$? ?(?:[A-Z_]+=\S* )*(?:retain|python|make|torchrun|bash|pytest"
                     r"|/usr/bin/time)(?=[\s`])[^`]*`")
NOT_FIGURES = [
    re.compile(r"`[^`]*`"),  # inline code: a command's arguments, names
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),  # dates
    re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"),  # addresses such as 127.0.0.1
    re.compile(r"(?i)\b(?:torch|python|avalanche|pytorch)\s*(?:>=\s*)?\d+(?:\.\d+)+"),  # versions
    re.compile(r"\b\d+-\d+-\d+(?:-\d+)*\b"),  # layer sizes such as 784-100-100-10
    re.compile(r"(?<![\w.])\d+×(?=[^\W\d_])"),  # a multiple of a named quantity: 2×BSF
    # settings: a value given to a name (γ = 0.9, lr=0.03) or a default (default 0.02)
    re.compile(r"(?:(?<![\w.])[^\W\d_]\w*\s?=|\bdefaults? (?:to |is )?)\s?[-+−]?\d[\d.,]*"),
]
CONFIG = ("yaml", "yml", "toml", "ini")  # fences holding settings, not results
CITATION = re.compile(  # Zhang et al. 2017, Smith & Randall (2015), McFadden & Smith 1984
    r"\b[A-Z][\w-]+(?: et al\.,?| (?:&|and) [A-Z][\w-]+,?)? \(?(?:19|20)\d\d\b(?!-\d)"
    r"(?<=\(\d{4})|\b[A-Z][\w-]+(?: et al\.,?| (?:&|and) [A-Z][\w-]+,?) (?:19|20)\d\d\b(?!-)"
    r"|\]\(https?://")
SOURCE = re.compile(r"`(src/retain/[\w/]+\.py)`")


def paragraphs(text: str) -> list[tuple[int, str]]:
    """``(first line, text)`` of each paragraph, list item and table row, headings dropped. An
    output block (plain or ``text`` fence) joins the paragraph before it; a ``bash`` or
    ``console`` block is commands: they go, in backticks, to the paragraph before it (not
    across a heading, not to a table row) and the one right after it; a ``python`` block is
    the command of the paragraph right after it (its "Output:", checked by test_docs.py). A
    table row has the commands of the paragraph that introduces the table."""
    units: list[list] = []  # [first line, lines, open for more lines]
    fence: str | None = None
    commands: list[str] = []  # of the block just closed, for the next paragraph
    heading = False  # a heading since the last paragraph: a block starts a new section
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("  |"):  # a table inside a list item
            line = line.lstrip()
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
                after_example = commands[:1] == [EXAMPLE] and fence in ("", "text")
                commands = []
                if after_example:  # its output, shown right after it
                    units.append([number, [EXAMPLE], True])
            else:
                fence = None
            continue
        if fence is not None:
            if fence == "python":  # an executed example: it is the command of its output
                commands = [EXAMPLE]
            elif fence in ("bash", "console", "sh", "shell"):
                commands.append(f"`{line.strip()}`")
                if units and not heading and not units[-1][1][-1].startswith("|"):
                    units[-1][1].append(commands[-1])
            elif units and fence not in CONFIG:
                units[-1][1].append(line)
            continue
        if line.startswith("#"):
            commands, heading = [], True
        starts = (not line.strip() or line.startswith(("#", "|", "- ", "* "))
                  or re.match(r"\d+\. ", line))
        if units and units[-1][2] and not starts:
            units[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            if line.startswith("|") and units and not heading:  # a table: the commands of
                commands += COMMAND.findall("\n".join(units[-1][1]))  # what introduces it
            units.append([number, [*commands, line], not line.startswith("|")])
            commands, heading = [], False
        if not line.strip() and units:
            units[-1][2] = False
    return [(start, "\n".join(lines)) for start, lines, _ in units]


def figures(unit: str) -> list[str]:
    unit = " ".join(s for s in re.split(r"(?<=[.;:])\s+(?=[A-Z(*])", unit)
                    if not CITATION.search(s))  # a cited source's figures are its own
    for pattern in NOT_FIGURES:
        unit = pattern.sub(" ", unit)
    return [m.group(0).strip() for m in FIGURE.finditer(unit)]


def in_source(figure: str, unit: str) -> bool:
    """Whether a source file the paragraph names (in backticks) holds ``figure`` literally."""
    number = re.sub(r"[^\d.]", "", figure.replace(",", "")).strip(".")
    for path in SOURCE.findall(unit):
        file = ROOT / path
        if file.is_file() and re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])",
                                        file.read_text()):
            return True
    return False


def listed() -> set[str]:
    """Figures that ``benchmarks/README.md`` gives beside a command."""
    found: set[str] = set()
    for line in (ROOT / "benchmarks" / "README.md").read_text().splitlines():
        if COMMAND.search(line) or line.startswith("$ "):
            found |= set(figures(line))
    return found


def unexplained(page: Path) -> list[tuple[int, list[str], str]]:
    """``(line, figures, paragraph)`` for each paragraph of ``page`` quoting figures without
    a command."""
    known = listed()
    missing = []
    for line, unit in paragraphs(page.read_text()):
        if COMMAND.search(unit):
            continue
        alone = [f for f in figures(unit) if f not in known and not in_source(f, unit)]
        if alone:
            missing.append((line, alone, unit))
    return missing


def main(argv: list[str]) -> int:
    pages = [Path(a) for a in argv] or [ROOT / "README.md"]
    count = 0
    for page in pages:
        for line, found, unit in unexplained(page):
            count += 1
            first = " ".join(unit.split())[:90]
            print(f"{page.name}:{line}: {', '.join(found[:6])} -- {first}")
    print(f"{count} paragraph(s) quote figures with no command", file=sys.stderr)
    return 1 if count else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
