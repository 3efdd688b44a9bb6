"""Section 5: options that may help, each measured against the default here.

- ``torch.compile`` of the model inside the Learner's step (compile time reported apart);
- channels-last memory format for a small CNN's training step;
- evaluation: one batched pass over all test sets (``StreamEvaluator``) against one
  ``learner.evaluate`` per experience, and ``inference_mode`` against ``no_grad``;
- mini-batches sliced from in-memory tensors against ``DataLoader(TensorDataset)``.

    python benchmarks/options.py --repeats 3
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from overhead import mlp, split_mnist
from timing import compare, fmt_ratio, markdown_table
from torch import nn
from torch.utils.data import DataLoader

from retain import Learner
from retain.data import iterate
from retain.evaluation import StreamEvaluator


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def learner_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.01))
    learner.update(x[:batch], y[:batch])  # warm-up (and compilation, when compiled)
    return timed(lambda: [learner.update(x[i : i + batch], y[i : i + batch], validate=False)
                          for i in range(0, x.shape[0], batch)])


def compile_row(x, y, repeats) -> list[str]:
    compiled_model = torch.compile(mlp(100))
    compile_s = timed(lambda: learner_steps(compiled_model, x[:10], y[:10], 10))
    timings = compare({"eager": lambda: learner_steps(mlp(100), x, y, 10),
                       "compiled": lambda: learner_steps(compiled_model, x, y, 10)}, repeats)
    return ["torch.compile(model), MLP-100 batch 10", fmt_ratio(timings.ratio("compiled",
                                                                              "eager")),
            f"+{compile_s:.0f} s compile", timings.load]


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 10))


def cnn_steps(x, y, channels_last: bool) -> float:
    model = cnn()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def run():
        for i in range(0, x.shape[0], 128):
            loss = F.cross_entropy(model(x[i : i + 128]), y[i : i + 128])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return timed(run)


def evaluation_rows(stream, repeats) -> list[list[str]]:
    model = mlp(100)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.01))
    tests = [e.test for e in stream]
    evaluator = StreamEvaluator(learner, tests)
    batched = compare({"per experience": lambda: timed(lambda: [learner.evaluate(t)
                                                                for t in tests]),
                       "one pass": lambda: timed(evaluator)}, repeats)
    x = torch.cat([t.tensors[0] for t in tests])

    def forward_under(context) -> float:
        def run():
            with context():
                for i in range(0, x.shape[0], 1024):
                    model(x[i : i + 1024])
        return timed(run)

    modes = compare({"no_grad": lambda: forward_under(torch.no_grad),
                     "inference_mode": lambda: forward_under(torch.inference_mode)}, repeats)
    return [["accuracy matrix row: one pass vs evaluate() per experience",
             fmt_ratio(batched.ratio("one pass", "per experience")), "", batched.load],
            ["evaluation under inference_mode vs no_grad",
             fmt_ratio(modes.ratio("inference_mode", "no_grad")), "", modes.load]]


def loader_row(x, y, repeats) -> list[str]:
    def train(batches) -> float:
        model = mlp(100)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def run():
            for xb, yb, *_ in batches():
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return timed(run)

    g = torch.Generator().manual_seed(0)
    dataset = torch.utils.data.TensorDataset(x, y)
    timings = compare({
        "DataLoader": lambda: train(lambda: DataLoader(dataset, batch_size=10, shuffle=True,
                                                       generator=g)),
        "slicing": lambda: train(lambda: iterate((x, y), 10, g))}, repeats)
    return ["mini-batches by tensor slicing vs DataLoader(TensorDataset), batch 10",
            fmt_ratio(timings.ratio("slicing", "DataLoader")), "", timings.load]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    stream = split_mnist(args.samples)
    x, y = stream[0].train.tensors
    rows = [loader_row(x, y, args.repeats)]
    rows += evaluation_rows(stream, args.repeats)
    cl = compare({"contiguous": lambda: cnn_steps(x[:1024], y[:1024], False),
                  "channels_last": lambda: cnn_steps(x[:1024], y[:1024], True)}, args.repeats)
    rows.append(["channels-last, small CNN batch 128",
                 fmt_ratio(cl.ratio("channels_last", "contiguous")), "", cl.load])
    if not args.no_compile:
        rows.append(compile_row(x, y, args.repeats))
    table = markdown_table(["option (time with / time without)", "ratio (min-max)", "note",
                            "load"], rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
