"""Run every benchmark section, print the tables and write them to docs/benchmarks.md.

    python benchmarks/run_all.py                 # the figures in docs/benchmarks.md
    python benchmarks/run_all.py --quick         # plumbing check, minutes, figures meaningless
    python benchmarks/run_all.py --avalanche-summary /path/peers/results/retain-w2.summary.md

The Avalanche comparison runs in its own virtual environment (benchmarks/avalanche/run.sh);
pass its summary file to include it in the page.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import fisher_cost
import long_stream
import options
import overhead
import step_counts
import torch
from timing import load_average, machine, wait_for_quiet

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

INTRO = """# Benchmarks

What retain costs on top of PyTorch, measured side by side in one run: contenders alternate,
every figure is repeated, ratios are medians of back-to-back pairs with their min-max. The code
is in `benchmarks/` (see its README for what each section measures and how the hand-written
reference loops are kept honest).
"""


def _section(title: str, module, args: list[str]) -> tuple[str, str, str]:
    """``(title, the command that prints the table alone, the table)``."""
    return title, " ".join(["python", f"benchmarks/{module.__name__}.py", *args]), module.main(args)


def sections(args) -> list[tuple[str, str, str]]:
    quick = args.quick
    return [
        _section("1. Overhead: retain's Learner / a hand-written loop doing the same math",
                 overhead, ["--repeats", str(1 if quick else args.repeats),
                            "--samples", str(200 if quick else args.samples)]),
        _section("1b. Work per step, counted (independent of the machine's load)",
                 step_counts, []),
        _section("3. Flat cost over a long stream",
                 long_stream, ["--experiences", str(7 if quick else 50),
                               "--steps", str(10 if quick else args.steps),
                               "--repeats", str(1 if quick else args.repeats)]),
        _section("4. Consolidation: diagonal Fisher (closed form / torch.func) vs a per-sample "
                 "loop", fisher_cost, ["--samples", str(16 if quick else 128),
                                       "--repeats", str(1 if quick else 3)]),
        _section("5. Options", options, ["--repeats", str(1 if quick else 3),
                                         "--samples", str(200 if quick else 2000)]
                 + (["--no-compile"] if quick else [])),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000,
                        help="training samples per MNIST experience in section 1 (max ~12,000)")
    parser.add_argument("--steps", type=int, default=100, help="steps per experience, section 3")
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--wait-minutes", type=float, default=10.0,
                        help="how long to wait for the load to drop below --max-load")
    parser.add_argument("--avalanche-summary", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start_load = wait_for_quiet(args.max_load, 60 * args.wait_minutes)
    started = datetime.datetime.now().isoformat(timespec="minutes")
    parts = sections(args)
    if args.avalanche_summary is not None:
        parts.insert(1, ("2. Against Avalanche 0.6.0 (peers harness, retain column)",
                         "bash benchmarks/avalanche/run.sh PEERS",
                         args.avalanche_summary.read_text()))
    command = "python benchmarks/run_all.py " + " ".join(sys.argv[1:] if argv is None else argv)
    page = [INTRO, f"Command: `{command.strip()}`  ",
            f"Machine: {machine()}  ",
            f"Started {started}; 1-minute load average {start_load:.1f} at the start and "
            f"{load_average():.1f} at the end (per-row loads in the tables).\n"]
    for title, alone, table in parts:
        page += [f"## {title}\n", f"This section alone: `{alone}`\n", table, ""]
    args.out.write_text("\n".join(page))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
