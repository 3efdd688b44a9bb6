"""Section 4: EWC's consolidation cost. The diagonal Fisher of ``retain.importance.
fisher_diagonal`` (closed form for ``nn.Linear`` layers: one matmul per layer, no per-sample
gradients) against the per-sample Python loop it replaces and against the ``torch.func`` path
(vmap over per-sample Jacobians, what retain falls back to for other layers), on the same
samples: the exact Fisher and the empirical Fisher (one gradient per sample). All must agree
within float tolerance.

    python benchmarks/fisher_cost.py --samples 256 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from timing import compare, fmt_ratio, markdown_table
from torch import nn

from retain import datasets
from retain.importance import _fisher_vmap, fisher_diagonal


def loop_fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str) -> list:
    """The textbook per-sample loop: one backward per sample (empirical) or per sample and
    class, weighted by the predicted probability (exact)."""
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for xi, yi in zip(x, y, strict=True):
        log_probs = F.log_softmax(model(xi.unsqueeze(0)), dim=1)[0]
        if kind == "empirical":
            terms = [(1.0, log_probs[yi])]
        else:
            probs = log_probs.detach().exp()
            terms = [(probs[c], log_probs[c]) for c in range(log_probs.shape[0])]
        for weight, term in terms:
            grads = torch.autograd.grad(term, params, retain_graph=True)
            for t, g in zip(total, grads, strict=True):
                t.add_(weight * g * g)
    return [t / x.shape[0] for t in total]


def measure(kind: str, model: nn.Module, x, y, repeats: int) -> list[str]:
    results: dict[str, list] = {}

    def timed(name, fn):
        def run() -> float:
            start = time.perf_counter()
            results[name] = fn()
            return time.perf_counter() - start
        return run

    def retain_fn(estimate):
        return lambda: estimate(model, [(x, y, None)], kind=kind, loss_fn=nn.CrossEntropyLoss())

    timings = compare({"retain": timed("retain", retain_fn(fisher_diagonal)),
                       "vmap": timed("vmap", retain_fn(_fisher_vmap)),
                       "loop": timed("loop", lambda: loop_fisher(model, x, y, kind))}, repeats)
    diff = max(float((a - b).abs().max() / b.abs().max())
               for name in results if name != "loop"
               for a, b in zip(results[name], results["loop"], strict=True))
    return [kind, str(x.shape[0]), f"{timings.median('retain'):.4f}",
            f"{timings.median('vmap'):.3f}", f"{timings.median('loop'):.3f}",
            fmt_ratio(timings.ratio("loop", "retain")), fmt_ratio(timings.ratio("loop", "vmap")),
            f"{diff:.1e}", timings.load]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, _ = datasets.mnist()
    x, y = (t[: args.samples] for t in train.tensors)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100),
                          nn.ReLU(), nn.Linear(100, 10))
    for estimate in (fisher_diagonal, _fisher_vmap):  # one-time set-up (torch.func, autograd)
        estimate(model, [(x[:2], y[:2], None)])
    rows = [measure(kind, model, x, y, args.repeats) for kind in ("exact", "empirical")]
    table = markdown_table(["Fisher", "samples", "retain (closed form) s", "torch.func vmap s",
                            "loop s", "loop/retain (min-max)", "loop/vmap (min-max)",
                            "max rel. diff vs loop", "load"], rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
