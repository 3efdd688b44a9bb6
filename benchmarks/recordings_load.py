"""Loading and windowing the 13 CWRU recordings of ../shared/data/cwru: seconds, and proof
that the windows are views of the recordings (no copy until they are batched).

Times, in a fresh process: the imports, the first load, then the median of ``--repeats``
further loads; each load reads the 13 ``.mat`` files, checks them
for NaN and flat segments, resamples the 48 kHz normal baseline to 12 kHz and cuts every
recording into leak-free windows (2048 samples, stride 512, first 70 % for training).

    python benchmarks/recordings_load.py [--data ../shared/data/cwru]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cwru"


def load_and_window(data: Path):
    from retain.vibration import load_recordings, time_split

    recordings = load_recordings(data, fs=12_000)
    return recordings, time_split(recordings, length=2048, stride=512, train_fraction=0.7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not args.data.is_dir() or not any(args.data.glob("*.mat")):
        print(f"skipped: no CWRU .mat files in {args.data}; download them from the CWRU Bearing "
              "Data Center (engineering.case.edu/bearingdatacenter), see docs/vibration.md")
        return
    start = time.perf_counter()
    import scipy.io
    import scipy.signal
    import torch

    import retain.vibration  # noqa: F401

    del scipy
    imports = time.perf_counter() - start
    torch.set_num_threads(1)
    start = time.perf_counter()
    recordings, (train, test) = load_and_window(args.data)
    first = time.perf_counter() - start
    again = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        load_and_window(args.data)
        again.append(time.perf_counter() - start)
    storages = {r.signal.untyped_storage().data_ptr() for r in recordings}
    views = all(p.untyped_storage().data_ptr() in storages for p in train.parts + test.parts)
    raw_mb = sum(r.signal.numel() for r in recordings) * 4 / 1e6
    window_mb = (len(train) + len(test)) * 2048 * 4 / 1e6
    print(f"{len(recordings)} recordings ({raw_mb:.1f} MB float32 at {recordings.fs:g} Hz) -> "
          f"{len(train)} training + {len(test)} test windows ({window_mb:.1f} MB if copied)")
    print(f"windows are views of the recordings: {views}")
    print(f"imports (torch, scipy.io, scipy.signal, retain.vibration), once: {imports:.2f} s")
    print(f"first load + windowing: {first:.3f} s")
    print(f"next loads, median of {args.repeats}: {statistics.median(again):.3f} s")


if __name__ == "__main__":
    main()
