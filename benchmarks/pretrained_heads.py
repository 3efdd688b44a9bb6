"""Evidence for a frozen pretrained backbone with closed-form heads (NCM, SLDA, RanPAC)
against Replay and joint training, on this machine (no model hub: every backbone is trained
here first).

images: a CNN trained on MNIST classes 0-4, frozen; then a stream of six experiences, the
  classes 0-4 again and the new classes 5, 6, 7, 8, 9 one at a time (class-incremental).
vibration: the vibration CNN trained on simulated motor-6205 windows (the simulator's four
  fault classes), frozen; then the real CWRU recordings class-incremental by fault type.
vibration-real: the same, the backbone trained instead on the real training windows of the
  first two fault types (normal, inner race) only.

Contenders, each from the same frozen backbone (features cached once, ``retain.backbone``):
ncm, slda, ranpac (no stored sample), replay (a linear head trained with Replay of 200
feature vectors), joint (the linear head trained on all experiences at once: the upper
bound); and replay from scratch (the whole network, random weights, Replay of 200 inputs).
Seconds include computing the features; memory is the bytes of the strategy's state.

    python benchmarks/pretrained_heads.py --part images,vibration
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from pretrained_nets import mnist_backbone, subset
from timing import machine, markdown_table, peak_rss_mb
from torch import nn

from retain import Learner
from retain.backbone import cache_stream, freeze
from retain.bench.runner import train_joint
from retain.scenarios.experience import make_stream
from retain.strategies import make_strategy

HEADS = {"ncm": {}, "slda": {}, "ranpac": {"projection": 2000}}


def state_bytes(strategies) -> int:
    def walk(obj):
        if isinstance(obj, torch.Tensor):
            return obj.numel() * obj.element_size()
        if isinstance(obj, dict):
            return sum(walk(v) for v in obj.values())
        if isinstance(obj, list | tuple):
            return sum(walk(v) for v in obj)
        return 0
    return sum(walk(s.state_dict()) for s in strategies)


def contenders(backbone, scratch_model, stream, dim, n_classes, epochs, lr, head_lr=1e-2):
    """``name -> (seconds, RunResult, state bytes)`` for every contender."""
    out = {}
    start = time.perf_counter()
    cached = cache_stream(backbone, stream)
    feature_seconds = time.perf_counter() - start
    for name in [*HEADS, "replay", "joint"]:
        torch.manual_seed(0)
        head = nn.Linear(dim, n_classes)
        closed = name in HEADS
        strategies = ([make_strategy(name, **HEADS[name])] if closed else
                      [make_strategy("replay", capacity=200)] if name == "replay" else [])
        learner = Learner(head, torch.optim.Adam(head.parameters(),
                                                 lr=0.0 if closed else head_lr),
                          strategies=strategies, seed=0)
        start = time.perf_counter()
        if name == "joint":
            result = train_joint(learner, cached, {"epochs": epochs, "batch_size": 32})
        else:
            result = learner.run(cached, epochs=1 if closed else epochs, batch_size=32)
        out[name] = (feature_seconds + time.perf_counter() - start, result,
                     state_bytes(strategies))
    model = scratch_model()
    strategies = [make_strategy("replay", capacity=200)]
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=lr), strategies=strategies,
                      seed=0)
    start = time.perf_counter()
    result = learner.run(stream, epochs=epochs, batch_size=32)
    out["replay from scratch"] = (time.perf_counter() - start, result, state_bytes(strategies))
    return out


def table(results) -> str:
    rows = [[name, f"{r.average_accuracy:.3f}", f"{r.forgetting:.3f}", f"{seconds:.1f}",
             f"{memory / 2**20:.2f}"]
            for name, (seconds, r, memory) in results.items()]
    return markdown_table(["contender", "final average accuracy", "forgetting", "seconds",
                           "state MB"], rows)


def images(args) -> None:
    from retain.datasets.mnist import mnist

    train, test = mnist()
    torch.manual_seed(0)
    backbone = mnist_backbone()
    pre = nn.Sequential(backbone, nn.Linear(128, 5))
    start = time.perf_counter()
    Learner(pre, torch.optim.Adam(pre.parameters(), lr=1e-3), seed=0).learn(
        subset(train, range(5), args.samples * 5), epochs=args.epochs, batch_size=64)
    print(f"images: backbone trained on {args.samples * 5} samples of classes 0-4 in "
          f"{time.perf_counter() - start:.0f} s")
    freeze(backbone)
    groups = [list(range(5)), [5], [6], [7], [8], [9]]
    stream = make_stream([(subset(train, g, args.samples * len(g), seed=i),
                           subset(test, g)) for i, g in enumerate(groups)], "mnist 0-4 | 5..9")

    def scratch():
        torch.manual_seed(0)
        return nn.Sequential(mnist_backbone(), nn.Linear(128, 10))
    print(table(contenders(backbone, scratch, stream, 128, 10, args.epochs, 1e-3)))


def vibration(args, real: bool = False) -> None:
    """``real``: the backbone is trained on the real training windows of the first two
    fault types (normal, inner race) instead of on simulated windows."""
    from torch.utils.data import ConcatDataset

    from retain.data import materialize
    from retain.vibration import VibrationCNN, load_recordings, recordings_stream
    from retain.vibration.pretrain import simulated_windows

    if not Path(args.data).is_dir():
        print(f"vibration skipped: no CWRU folder at {args.data}")
        return
    stream = recordings_stream(load_recordings(args.data, fs=12_000), by="fault")

    def model():
        torch.manual_seed(0)
        return VibrationCNN(n_classes=stream.n_classes, length=stream.info["length"],
                            features="envelope", fs=stream.info["fs"])
    pre = model()
    start = time.perf_counter()
    if real:
        known = torch.utils.data.TensorDataset(
            *materialize(ConcatDataset([stream[0].train, stream[1].train])))
        Learner(pre, torch.optim.Adam(pre.parameters(), lr=3e-3), seed=0).learn(
            known, epochs=5, batch_size=32)
    else:
        Learner(pre, torch.optim.Adam(pre.parameters(), lr=3e-3), seed=0).learn(
            simulated_windows(n_per_class=128, seed=0), epochs=10, batch_size=32)
    what = "real windows of normal and inner race" if real else "simulated windows"
    print(f"vibration: backbone trained on {what} in "
          f"{time.perf_counter() - start:.0f} s; real stream {stream.name}: "
          f"{[e.name for e in stream]}")
    backbone = freeze(pre.net[:-1])
    dim = pre.net[-1].in_features
    print(table(contenders(backbone, model, stream, dim, stream.n_classes, 5, 3e-3)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="images,vibration,vibration-real")
    ap.add_argument("--samples", type=int, default=2000, help="MNIST training samples per class")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data", default=str(Path(__file__).parents[1] / "../shared/data/cwru"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine())
    for part in args.part.split(","):
        {"images": images, "vibration": vibration,
         "vibration-real": lambda a: vibration(a, real=True)}[part](args)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
