"""Avalanche / retain / plain ratios from the peers harness's JSON lines, contended runs kept.

The harness drops every run that other processes disturbed; on a machine that is never quiet
that is all of them. This table keeps them and adds the CPU time each run itself used
(``own_cpu_s``), which waiting for a core does not inflate, beside the wall time.

    python benchmarks/avalanche/summarize.py PEERS/results/retain-w1.jsonl [...]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LIBS = {"plain": "plain", "avalanche": "avalanche",
        "clbench.adapters.retain_adapter:RetainAdapter": "retain", "retain": "retain"}


def summarize(paths: list[Path]) -> str:
    runs: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for path in paths:
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("kind") == "median" or "wall_s" not in rec:
                continue
            runs[(rec["workload"], rec["strategy"], LIBS[rec["library"]])].append(rec)

    def med(key, workload, strategy, lib):
        return statistics.median(r[key] for r in runs[(workload, strategy, lib)])

    lines = ["| workload | strategy | final acc plain / avalanche / retain | wall s plain / "
             "avalanche / retain | own CPU s plain / avalanche / retain | avalanche/retain wall "
             "| avalanche/retain CPU | retain/plain CPU | peak RSS MB avalanche / retain | runs "
             "| contended |", "|" + "---|" * 11]
    for workload, strategy in dict.fromkeys((w, s) for w, s, _ in runs):
        libs = ("plain", "avalanche", "retain")
        if not all((workload, strategy, lib) in runs for lib in libs):
            continue
        acc = " / ".join(
            f"{statistics.mean(r['final_avg_acc'] for r in runs[(workload, strategy, lib)]):.3f}"
            for lib in libs)
        wall = [med("wall_s", workload, strategy, lib) for lib in libs]
        cpu = [med("own_cpu_s", workload, strategy, lib) for lib in libs]
        rss = [med("peak_rss_mb", workload, strategy, lib) for lib in libs[1:]]
        n = len(runs[(workload, strategy, "retain")])
        contended = sum(r.get("contended", False) for lib in libs
                        for r in runs[(workload, strategy, lib)])
        lines.append(
            f"| {workload} | {strategy} | {acc} | {' / '.join(f'{w:.2f}' for w in wall)} | "
            f"{' / '.join(f'{c:.2f}' for c in cpu)} | {wall[1] / wall[2]:.2f} | "
            f"{cpu[1] / cpu[2]:.2f} | {cpu[2] / cpu[0]:.2f} | {rss[0]:.0f} / {rss[1]:.0f} | "
            f"{n} | {contended} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize([Path(p) for p in sys.argv[1:]]))
