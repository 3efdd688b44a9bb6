"""A vibration stream that separates the contenders: 13 real operating conditions (fault type x
motor load) learned class-incrementally from few windows, over a frozen pretrained backbone.

The CWRU recordings (normal at 0 HP; inner race, ball and outer race faults of 0.021 in at
0, 1, 2 and 3 HP) become 13 classes, one per recording ("inner@2HP"); the loads arrive one
experience at a time (0 HP: normal and the three faults; then the three faults at 1, 2, 3
HP), each recording giving only its first ``--windows`` training windows (time split: the
first 70 % of a recording trains, the last 30 % tests, ``retain.vibration.time_split``).
Telling loads apart means telling shaft speeds 1-2 % apart, so the task is not saturated.

Backbones (the vibration CNN, its classifier dropped, frozen; ``--features envelope``: a
fixed envelope spectrum and one small learned convolution, 64 weights; ``--features raw``:
three learned convolutions over the raw window, 39,024 weights):
sim: trained on simulated motor-6205 windows (the simulator's four fault classes at CWRU's
  four shaft speeds); it never saw a real window.
real0: trained on the real 0 HP recordings only (the part of the training windows before
  the validation cut), so the loads 1-3 HP are held out from it.

Contenders on the cached features: ncm, slda, ranpac (no stored sample), replay (a linear
head with Replay of ``--capacity`` feature vectors), joint (the linear head on all
experiences at once); and replay from scratch (the whole CNN, random weights, Replay of
``--capacity`` windows). ``--adapt`` adds the heads after first-session adaptation of the
backbone on the first experience (``retain.backbone.adapt_first``).

Settings are chosen on validation data only: the same stream with ``validation=0.2`` (each
recording's training part cut once more; its last 20 % scores, the test part is not read),
by final average accuracy: NCM ``normalize``, SLDA ``shrinkage``, the Adam learning rate
and epochs of the linear heads, of replay from scratch and of the adaptation (this one by
the three heads' mean); RanPAC chooses its ridge itself on a split of the training samples.

    python benchmarks/pretrained_vibration.py --backbone sim,real0 --adapt
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from pretrained_heads import HEADS, adapt_table, adapted_heads, heads_on_features, scratch_replay
from timing import machine, markdown_table, peak_rss_mb
from torch import nn

from retain import Learner
from retain.backbone import cache_stream, freeze
from retain.data import materialize
from retain.vibration import VibrationCNN, load_recordings, recordings_stream
from retain.vibration.pretrain import simulated_windows
from retain.vibration.recordings import RecordingSet

GRID = {"ncm": [{"normalize": False}, {"normalize": True}],
        "slda": [{"shrinkage": s} for s in (1e-4, 1e-3, 1e-2, 1e-1, 0.5)],
        "ranpac": [{}],
        "replay": [{"lr": lr, "epochs": e} for e in (5, 20, 50) for lr in (1e-3, 3e-3, 1e-2)],
        "joint": [{"lr": lr, "epochs": e} for e in (5, 20, 50) for lr in (1e-3, 3e-3, 1e-2)]}
#: replay from scratch, and first-session adaptation
TRAINING = [{"lr": lr, "epochs": e} for e in (5, 20, 50) for lr in (1e-3, 3e-3, 1e-2)]


def conditions(folder: str) -> RecordingSet:
    """The recordings at 12 kHz, each labelled by its fault type and load."""
    recordings = load_recordings(folder, fs=12_000)
    relabelled = [dataclasses.replace(r, label=f"{r.meta['fault']}@{r.meta['load']}HP")
                  for r in recordings]
    classes = tuple(sorted({r.label for r in relabelled},
                           key=lambda c: (c.split("@")[1], c)))
    return RecordingSet(relabelled, recordings.fs, classes, recordings.resampled)


FEATURES = "envelope"  # --features


def cnn(n_classes: int, stream) -> VibrationCNN:
    torch.manual_seed(0)
    return VibrationCNN(n_classes=n_classes, length=stream.info["length"], features=FEATURES,
                        fs=stream.info["fs"])


def pretrain(kind: str, recordings: RecordingSet, stream) -> nn.Module:
    """The frozen backbone ``kind`` names (module docstring)."""
    start = time.perf_counter()
    if kind == "sim":
        pre = cnn(4, stream)
        data, epochs = simulated_windows(n_per_class=128, seed=0), 10
    elif kind == "real0":
        pre = cnn(len(recordings.classes), stream)
        known = recordings_stream(recordings, by="load", n_experiences=1, validation=0.2)
        data, epochs = torch.utils.data.TensorDataset(*materialize(known[0].train)[:2]), 5
    else:
        raise SystemExit(f"--backbone: sim or real0, got {kind!r}")
    Learner(pre, torch.optim.Adam(pre.parameters(), lr=3e-3), seed=0).learn(
        data, epochs=epochs, batch_size=32)
    print(f"backbone {kind}: {len(data)} windows, {epochs} epochs, "
          f"{time.perf_counter() - start:.0f} s")
    return freeze(pre.net[:-1])


def best(label: str, grid: list[dict], score) -> dict:
    """The setting of ``grid`` with the highest ``score(setting)``, printed with the rest."""
    scores = [score(setting) for setting in grid]
    chosen = grid[max(range(len(grid)), key=scores.__getitem__)]
    print(f"  {label}: validation accuracy "
          + ", ".join(f"{_show(g)} {a:.3f}" for g, a in zip(grid, scores, strict=True))
          + f" -> {_show(chosen)}", flush=True)
    return chosen


def _show(setting: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in setting.items()) or "-"


def choose(backbone, val_stream, dim, n_classes, capacity) -> dict[str, dict]:
    """Each contender's settings with the best final average accuracy on validation."""
    cached = cache_stream(backbone, val_stream)

    def score(name):
        return lambda setting: heads_on_features(cached, dim, n_classes, 1, {name: setting},
                                                 capacity)[name][1].average_accuracy
    return {name: best(name, grid, score(name)) for name, grid in GRID.items()}


def table(backbone, stream, settings, dim, n_classes, capacity, scratch) -> str:
    start = time.perf_counter()
    cached = cache_stream(backbone, stream)
    feature_seconds = time.perf_counter() - start
    results = {name: (feature_seconds + s, r, m) for name, (s, r, m) in
               heads_on_features(cached, dim, n_classes, 1, settings, capacity).items()}
    if scratch is not None:
        results["replay from scratch"] = scratch
    rows = [[name, _show(settings.get(name, {})), f"{r.average_accuracy:.3f}",
             f"{r.forgetting:.3f}", f"{seconds:.1f}", f"{memory / 2**20:.2f}"]
            for name, (seconds, r, memory) in results.items()]
    return markdown_table(["contender", "chosen on validation", "final average accuracy",
                           "forgetting", "seconds", "state MB"], rows)


def adaptation(backbone, stream, val_stream, dim, n, settings) -> str:
    """Adaptation epochs and learning rate chosen on validation by the closed-form heads'
    mean accuracy; then the heads with and without it on the test stream."""
    def score(setting):
        out = adapted_heads(backbone, val_stream, dim, n, setting["epochs"], setting["lr"],
                            settings)
        return sum(r.average_accuracy for _, r in out.values()) / len(out)
    chosen = best("first-session adaptation", TRAINING, score)
    print(f"first-session adaptation on {stream[0].name} ({_show(chosen)}), the heads' "
          "settings as chosen above:")
    return adapt_table(backbone, stream, dim, n, chosen["epochs"], chosen["lr"], settings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="sim,real0")
    ap.add_argument("--windows", type=int, default=16, help="training windows per recording")
    ap.add_argument("--capacity", type=int, default=52, help="replay memory (samples)")
    ap.add_argument("--adapt", action="store_true", help="also first-session adaptation")
    ap.add_argument("--data", default=str(Path(__file__).parents[1] / "../shared/data/cwru"))
    ap.add_argument("--features", default="envelope", choices=["envelope", "raw"],
                    help="the CNN's input: envelope spectrum (fixed) or raw (learned filters)")
    args = ap.parse_args()
    global FEATURES
    FEATURES = args.features
    torch.set_num_threads(1)
    print(machine())
    if not Path(args.data).is_dir():
        print(f"skipped: no CWRU folder at {args.data}")
        return
    recordings = conditions(args.data)
    stream, val_stream = (recordings_stream(recordings, by="load", train_windows=args.windows,
                                            validation=v) for v in (None, 0.2))
    n = len(recordings.classes)
    stream.name = f"CWRU conditions by load (class-incremental, {args.windows} windows each)"
    print(f"{stream.name}: classes {list(recordings.classes)}; experiences "
          f"{[e.name for e in stream]}, {[len(e.train) for e in stream]} training and "
          f"{[len(e.test) for e in stream]} test windows; replay capacity {args.capacity}")
    chosen = best("replay from scratch", TRAINING, lambda g: scratch_replay(
        lambda: cnn(n, stream), val_stream, g["epochs"], g["lr"],
        args.capacity)[1].average_accuracy)
    scratch = scratch_replay(lambda: cnn(n, stream), stream, chosen["epochs"], chosen["lr"],
                             args.capacity)
    print(f"replay from scratch ({_show(chosen)}): accuracy {scratch[1].average_accuracy:.3f}")
    for kind in args.backbone.split(","):
        backbone = pretrain(kind, recordings, stream)
        dim = backbone(torch.zeros(1, 1, stream.info["length"])).shape[1]
        settings = choose(backbone, val_stream, dim, n, args.capacity)
        print(table(backbone, stream, settings, dim, n, args.capacity, scratch))
        scratch = None  # the same run for every backbone: printed once
        if args.adapt:
            print(adaptation(backbone, stream, val_stream, dim, n, settings))
    print(f"peak RSS {peak_rss_mb():.0f} MB; heads: {HEADS}")


if __name__ == "__main__":
    main()
