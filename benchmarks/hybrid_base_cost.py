"""What one daily refresh of the hybrid's base costs, by its parts, measured side by side.

    python benchmarks/hybrid_base_cost.py [--repeats 5]

On 8 weeks of elecdemand (2,688 half-hours, the default base window), times the MSTL
decomposition (statsmodels' ``MSTL``, which statsforecast's ``mstl`` wraps) with statsmodels'
exact STL (steps of 1 and 5 inner iterations, as the ``mstl`` contender fits), with steps of
10 for every smoother (the hybrid's first version), with R's steps (its second) and with R's
steps and R's 2 inner iterations (``r_stl``, now the default), and how far each seasonal
profile is from the exact one; then AutoETS with its form search (``ZZN``) against a refit of
the form it found. Prints the seconds and the ratios, alternating the variants so that
machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from statsforecast.models import AutoETS
    from statsmodels.tsa.seasonal import MSTL

    from retain.forecasting.bundled import load
    from retain.forecasting.seasonal import r_stl

    y = load("elecdemand").frame.iloc[:2688, 0].to_numpy(np.float64)
    seasons = [48, 336]
    five = {"seasonal_deg": 0, "inner_iter": 5}  # statsforecast's mstl
    variants = {"exact (steps of 1)": five, "steps of 10": {**r_stl(seasons, 10), **five},
                "R's steps": {**r_stl(seasons), **five},
                "R's steps and iterations": r_stl(seasons)}
    times = {name: [] for name in variants}
    parts = {}
    for _ in range(args.repeats):
        for name, kw in variants.items():
            start = time.perf_counter()
            parts[name] = MSTL(y, periods=seasons, stl_kwargs=dict(kw)).fit().seasonal
            times[name].append(time.perf_counter() - start)

    def seasonal(p):
        return np.asarray(p).sum(axis=1)

    exact = seasonal(parts["exact (steps of 1)"])
    amplitude = exact.max() - exact.min()
    print(f"MSTL decomposition of {len(y)} steps, seasons {seasons} (median of "
          f"{args.repeats}):")
    for name in variants:
        off = np.abs(seasonal(parts[name]) - exact).max()
        print(f"  {name:26s} {np.median(times[name]):7.3f} s  "
              f"{np.median(times['exact (steps of 1)']) / np.median(times[name]):5.1f}x cheaper "
              f"than exact; seasonal profile at most {off:.3f} off the exact one "
              f"({off / amplitude:.1%} of its range)")
    deseasonal = y - seasonal(parts["R's steps and iterations"])
    search, refit = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        found = AutoETS(model="ZZN").fit(deseasonal)
        search.append(time.perf_counter() - start)
        components = str(found.model_["components"])
        start = time.perf_counter()
        AutoETS(model=components[:3], damped=components[3:] == "D").fit(deseasonal)
        refit.append(time.perf_counter() - start)
    print(f"AutoETS on the deseasonalised series: form search {np.median(search):.3f} s, "
          f"refit of the form found ({found.model_['method']}) {np.median(refit):.3f} s: "
          f"{np.median(search) / np.median(refit):.1f}x cheaper")
    old = np.median(times["steps of 10"]) + np.median(search)
    second = np.median(times["R's steps"]) + (6 * np.median(refit) + np.median(search)) / 7
    new = np.median(times["R's steps and iterations"]) + (27 * np.median(refit)
                                                         + np.median(search)) / 28
    print(f"one base refresh with a daily ETS refit: {old:.3f} s first (steps of 10, daily "
          f"form search), {second:.3f} s second (R's steps, weekly form search), {new:.3f} s "
          f"now (R's steps and iterations, form search every 4 weeks): {old / new:.1f}x and "
          f"{second / new:.1f}x cheaper")


if __name__ == "__main__":
    main()
