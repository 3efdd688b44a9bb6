"""`retain demo`, the README's first command: it runs, writes its report, and prints the table
the README shows (same columns, same strategies, the settings the README names). The demo's
own code path runs on the bundled digits (`--quick`, seconds) instead of MNIST (minutes)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from retain.cli.run import DEMO, RUN_DEFAULTS

README = Path(__file__).resolve().parents[1] / "README.md"


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """The header cells and the rows' cells of a rich table as printed (box characters)."""
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    rows = [line for line in text.splitlines() if line.startswith("│")]
    cells = lambda line: [c.strip() for c in re.split(r"[┃│]", line)[1:-1]]  # noqa: E731
    return cells(header), [cells(row) for row in rows]


def _readme_demo_block() -> str:
    text = README.read_text()
    return re.search(r"```\n( *demo: split-mnist\n.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}  # no folded cells
    proc = subprocess.run([sys.executable, "-m", "retain.cli", "demo", "--quick", "--out",
                           str(out), "--json"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout), proc.stderr  # the table goes to stderr with --json


def test_the_demo_prints_the_columns_and_strategies_the_readme_shows(quick_demo):
    _, payload, printed = quick_demo
    header, rows = _table(printed)
    shown_header, shown_rows = _table(_readme_demo_block())
    assert header == shown_header
    assert "NFR" in header and "PFR" in header
    assert [r[0] for r in rows] == [r[0] for r in shown_rows] == DEMO["strategy"]
    assert all(len(r) == len(header) for r in rows + shown_rows)
    assert list(payload["results"]) == DEMO["strategy"]
    for row in rows:  # what is printed is what was measured
        result = payload["results"][row[0]]
        assert row[1] == f"{result['average_accuracy']:.3f}"
        assert row[2] == f"{result['forgetting']:.3f}"


def test_the_demo_runs_the_settings_the_readme_names(quick_demo):
    out, payload, _ = quick_demo
    config = payload["config"]
    assert config == {**RUN_DEFAULTS, **DEMO, "scenario": "split-digits"}  # --quick: digits
    assert (DEMO["scenario"], DEMO["epochs"], DEMO["batch_size"], DEMO["optimizer"],
            DEMO["lr"], RUN_DEFAULTS["hidden"]) == ("split-mnist", 1, 10, "sgd", 0.1, [100, 100])
    assert ("Split\nMNIST (MLP 784-100-100-10, 1 epoch, batch 10, SGD lr 0.1)"
            in README.read_text())
    assert json.loads((out / "results.json").read_text())["config"] == config
    assert (out / "index.html").stat().st_size > 0


def test_memory_wins_where_regularisation_fails_as_the_readme_says(quick_demo):
    """The README's reading of its table (Replay far above the others, which stay near
    chance for 5 tasks of 2 classes), on the digits the quick demo uses."""
    results = quick_demo[1]["results"]
    replay = results["replay:capacity=500"]["average_accuracy"]
    others = [r["average_accuracy"] for name, r in results.items() if name != "replay:capacity=500"]
    assert max(others) < 0.3 and replay > max(others) + 0.25
