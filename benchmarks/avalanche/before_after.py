"""retain/plain of two versions of retain's sources, interleaved: ``step_ratio.py`` run in
turn with each ``src`` folder (after, before, before, after, ...), each run itself alternating
the plain loop and retain; prints, per strategy, the median over rounds of each run's median
train-CPU ratio, its range, and the load average beside each round:

    PYTHONPATH=PEERS python benchmarks/avalanche/before_after.py --before /path/to/main/src \\
        --workload w1 --rounds 4 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ratios(src: str, args: argparse.Namespace) -> tuple[dict[str, float], str]:
    """One step_ratio.py run with ``src`` first on the path: strategy -> median train-CPU
    ratio, and its accuracy cells."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [src, *filter(None, [os.environ.get("PYTHONPATH")])]))
    out = subprocess.run([sys.executable, str(HERE / "step_ratio.py"), "--workload",
                          args.workload, "--strategies", args.strategies, "--repeats",
                          str(args.repeats)], env=env, check=True, capture_output=True,
                         text=True).stdout
    found, acc = {}, {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0] in args.strategies.split(","):
            found[cells[0]] = float(cells[4].split()[0])
            acc[cells[0]] = cells[5]
    return found, acc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="src folder of the version before")
    ap.add_argument("--after", default=str(HERE.parents[1] / "src"))
    ap.add_argument("--workload", default="w1")
    ap.add_argument("--strategies", default="naive,ewc,replay,lwf,der")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    sides = {"before": args.before, "after": args.after}
    got: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
    accs: dict[str, dict[str, str]] = {}
    loads = []
    for r in range(args.rounds):
        order = ("after", "before") if r % 2 == 0 else ("before", "after")
        for side in order:
            found, accs[side] = ratios(sides[side], args)
            for name, value in found.items():
                got[side].setdefault(name, []).append(value)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: load {loads[-1]:.2f} "
              + " ".join(f"{s}:{n}={got[s][n][-1]:.3f}" for s in order for n in got[s]),
              flush=True)
    print(f"\n{args.workload}, {args.rounds} rounds x {args.repeats} repeats, load "
          f"{min(loads):.1f}-{max(loads):.1f}")
    print("| strategy | before (main) retain/plain | after retain/plain | acc after "
          "plain / retain |")
    print("|---|---|---|---|")
    for name in args.strategies.split(","):
        cells = [f"{statistics.median(v):.3f} ({min(v):.2f}-{max(v):.2f})"
                 for v in (got["before"][name], got["after"][name])]
        print(f"| {name} | {' | '.join(cells)} | {accs['after'][name]} |")


if __name__ == "__main__":
    main()
