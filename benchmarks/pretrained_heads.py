"""Evidence for a frozen pretrained backbone with closed-form heads (NCM, SLDA, RanPAC)
against Replay and joint training, on this machine (no model hub: every backbone is trained
here first).

images: a CNN trained on MNIST classes 0-4, frozen; then a stream of six experiences, the
  classes 0-4 again and the new classes 5, 6, 7, 8, 9 one at a time (class-incremental).
images-adapt: the same backbone, then the new classes only (5 and 6, 7, 8, 9); the heads
  with and without first-session adaptation on the first experience (5 and 6).
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
import copy
import time
from pathlib import Path

import torch
from pretrained_nets import mnist_backbone, subset
from timing import machine, markdown_table, peak_rss_mb
from torch import nn

from retain import Learner
from retain.backbone import adapt_first, cache_stream, freeze
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


def heads_on_features(cached, dim, n_classes, epochs, settings=None, capacity=200):
    """``name -> (seconds, RunResult, state bytes)`` for the closed-form heads, a linear head
    trained with Replay of ``capacity`` feature vectors, and the joint linear head, all on the
    cached features; ``settings[name]`` is each one's keyword arguments (``lr`` and
    ``epochs`` for the linear heads: 1e-2 and ``epochs`` unless given)."""
    settings = settings or {}
    out = {}
    for name in [*HEADS, "replay", "joint"]:
        torch.manual_seed(0)
        head = nn.Linear(dim, n_classes)
        closed = name in HEADS
        kwargs = {**HEADS.get(name, {"lr": 1e-2, "epochs": epochs}), **settings.get(name, {})}
        strategies = ([make_strategy(name, **kwargs)] if closed else
                      [make_strategy("replay", capacity=capacity)] if name == "replay" else [])
        learner = Learner(head, torch.optim.Adam(head.parameters(),
                                                 lr=0.0 if closed else kwargs["lr"]),
                          strategies=strategies, seed=0)
        start = time.perf_counter()
        if name == "joint":
            result = train_joint(learner, cached, {"epochs": kwargs["epochs"], "batch_size": 32})
        else:
            result = learner.run(cached, epochs=1 if closed else kwargs["epochs"], batch_size=32)
        out[name] = (time.perf_counter() - start, result, state_bytes(strategies))
    return out


def scratch_replay(scratch_model, stream, epochs, lr, capacity=200):
    """``(seconds, RunResult, state bytes)`` of the whole network from random weights with
    Replay of ``capacity`` inputs."""
    model = scratch_model()
    strategies = [make_strategy("replay", capacity=capacity)]
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=lr), strategies=strategies,
                      seed=0)
    start = time.perf_counter()
    result = learner.run(stream, epochs=epochs, batch_size=32)
    return time.perf_counter() - start, result, state_bytes(strategies)


def contenders(backbone, scratch_model, stream, dim, n_classes, epochs, lr, head_lr=1e-2):
    """``name -> (seconds, RunResult, state bytes)`` for every contender; the seconds of
    those on the backbone include computing the features."""
    start = time.perf_counter()
    cached = cache_stream(backbone, stream)
    feature_seconds = time.perf_counter() - start
    settings = {"replay": {"lr": head_lr}, "joint": {"lr": head_lr}}
    out = {name: (feature_seconds + seconds, r, memory) for name, (seconds, r, memory)
           in heads_on_features(cached, dim, n_classes, epochs, settings).items()}
    out["replay from scratch"] = scratch_replay(scratch_model, stream, epochs, lr)
    return out


def table(results) -> str:
    rows = [[name, f"{r.average_accuracy:.3f}", f"{r.forgetting:.3f}", f"{seconds:.1f}",
             f"{memory / 2**20:.2f}"]
            for name, (seconds, r, memory) in results.items()]
    return markdown_table(["contender", "final average accuracy", "forgetting", "seconds",
                           "state MB"], rows)


def mnist_pretrained(args):
    """MNIST ``(train, test)`` and a CNN trained on classes 0-4 only, frozen."""
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
    return train, test, freeze(backbone)


def images(args) -> None:
    train, test, backbone = mnist_pretrained(args)
    groups = [list(range(5)), [5], [6], [7], [8], [9]]
    stream = make_stream([(subset(train, g, args.samples * len(g), seed=i),
                           subset(test, g)) for i, g in enumerate(groups)], "mnist 0-4 | 5..9")

    def scratch():
        torch.manual_seed(0)
        return nn.Sequential(mnist_backbone(), nn.Linear(128, 10))
    print(table(contenders(backbone, scratch, stream, 128, 10, args.epochs, 1e-3)))


def adapted_heads(backbone, stream, dim, n_classes, epochs, lr, settings=None):
    """``name -> (seconds, RunResult)`` of the closed-form heads over ``backbone`` after
    first-session adaptation (:func:`retain.backbone.adapt_first`: every backbone parameter
    trained with a linear head on the first experience, Adam at ``lr`` for ``epochs``, then
    frozen; ``epochs=0``: none). Seconds: the adaptation, the features and the head."""
    net = copy.deepcopy(backbone)
    start = time.perf_counter()
    if epochs:
        torch.manual_seed(0)
        adapt_first(net, nn.Linear(dim, n_classes), stream[0].train, epochs=epochs,
                    batch_size=32, lr=lr)
    cached = cache_stream(net, stream)
    before = time.perf_counter() - start
    return {name: (before + seconds, r) for name, (seconds, r, _)
            in heads_on_features(cached, dim, n_classes, 1, settings).items() if name in HEADS}


def adapt_table(backbone, stream, dim, n_classes, epochs, lr, settings=None) -> str:
    """The closed-form heads with and without first-session adaptation (adapted_heads)."""
    rows = []
    for adapt in (False, True):
        out = adapted_heads(backbone, stream, dim, n_classes, epochs if adapt else 0, lr,
                            settings)
        for name, (seconds, r) in out.items():
            if name in HEADS:
                rows.append([name, "yes" if adapt else "no", f"{r.average_accuracy:.3f}",
                             f"{r.forgetting:.3f}", f"{seconds:.1f}"])
    rows.sort(key=lambda row: list(HEADS).index(row[0]))
    return markdown_table(["head", "first-session adaptation", "final average accuracy",
                           "forgetting", "seconds"], rows)


def images_adapt(args) -> None:
    """The backbone of classes 0-4, then only the new classes: 5 and 6, 7, 8, 9."""
    train, test, backbone = mnist_pretrained(args)
    groups = [[5, 6], [7], [8], [9]]
    stream = make_stream([(subset(train, g, args.samples * len(g), seed=i),
                           subset(test, g)) for i, g in enumerate(groups)], "mnist 5,6 | 7..9")
    print(f"images-adapt: {[e.name for e in stream]}, adaptation {args.epochs} epoch(s), "
          "Adam lr 1e-3")
    print(adapt_table(backbone, stream, 128, 10, args.epochs, 1e-3))


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
        {"images": images, "images-adapt": images_adapt, "vibration": vibration,
         "vibration-real": lambda a: vibration(a, real=True)}[part](args)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
