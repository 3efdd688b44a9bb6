"""Side-by-side timing on a noisy shared machine: wait for quiet, alternate contenders, repeat,
report medians with min-max. Every benchmark script goes through :func:`compare`."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


def load_average() -> float:
    """The 1-minute load average (what other processes ask of the cores)."""
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, max_wait_s: float, poll_s: float = 60.0) -> float:
    """Sleep until the 1-minute load is below ``max_load`` or ``max_wait_s`` has passed.
    Timing ratios measured on a busy 2-core machine mean little, so every figure is
    printed with the load it was measured under. Returns the load when it stopped waiting."""
    deadline = time.monotonic() + max_wait_s
    while load_average() > max_load and time.monotonic() < deadline:
        print(f"  load {load_average():.2f} > {max_load}: waiting", flush=True)
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    return load_average()


def machine() -> str:
    """One line naming the machine, torch build and thread count."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Timings:
    """Seconds per repeat for each contender, and the load while they ran."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratio(self, name: str, reference: str) -> tuple[float, float, float]:
        """Median of the paired ratios and their min-max (pairs ran back to back)."""
        pairs = [a / b for a, b in zip(self.seconds[name], self.seconds[reference], strict=True)]
        return statistics.median(pairs), min(pairs), max(pairs)

    @property
    def load(self) -> str:
        return f"{min(self.loads):.1f}-{max(self.loads):.1f}"


def compare(contenders: dict[str, Callable[[], float]], repeats: int) -> Timings:
    """Run every contender ``repeats`` times, alternating their order each round.

    A contender is a callable that does its own set-up and returns the seconds of the part
    being measured, so set-up (model building, data slicing) stays outside the figure.
    """
    timings = Timings({name: [] for name in contenders})
    names = list(contenders)
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            timings.loads.append(load_average())
            timings.seconds[name].append(contenders[name]())
    return timings


def fmt_ratio(ratio: tuple[float, float, float]) -> str:
    median, lo, hi = ratio
    return f"{median:.3f} ({lo:.2f}-{hi:.2f})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
