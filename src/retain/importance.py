"""Diagonal parameter-importance estimates, computed with per-sample gradients.

Per-sample gradients come from ``torch.func`` (``vmap`` over ``grad``/``jacrev``), batched over
samples, never a Python loop over samples. The estimators:

- ``exact``: the true Fisher ``E_x Σ_c p(c|x) (∂ log p(c|x)/∂θ)²`` — the expectation over the
  model's own predictive distribution (Gaussian likelihood with unit variance for regression:
  ``E_x Σ_k (∂f_k/∂θ)²``).
- ``sampled``: one label drawn from ``p(·|x)`` per sample (Monte-Carlo estimate of ``exact``).
- ``empirical``: squared per-sample gradients of the loss at the observed label.
- ``batched-empirical``: squared mini-batch gradients (what many libraries do; cheaper,
  biased low by roughly the batch size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from retain.errors import RetainError

FISHER_KINDS = ("exact", "sampled", "empirical", "batched-empirical")
Batches = Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
OutputMap = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

_CHUNK_FLOATS = 2**25  # per-sample gradient memory per chunk (~128 MiB of float32)


def fisher_diagonal(
    model: nn.Module,
    batches: Batches,
    kind: str = "exact",
    task_type: str = "classification",
    loss_fn: nn.Module | None = None,
    output_map: OutputMap | None = None,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Mean diagonal Fisher information over the samples in ``batches``, one tensor per
    trainable parameter (in ``model.parameters()`` order).

    ``output_map(out, task)`` post-processes outputs (task-incremental head masking).
    """
    if kind not in FISHER_KINDS:
        raise RetainError(f"unknown Fisher estimator {kind!r}; choose one of {FISHER_KINDS}")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    was_training = model.training
    model.eval()
    try:
        if kind == "batched-empirical":
            count = _batched_empirical(model, batches, loss_fn, output_map, task_type, total)
        else:
            n_params = sum(p.numel() for p in params.values())

            def output(p: dict, x: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
                out = functional_call(model, ({**p, **frozen}, buffers), (x.unsqueeze(0),))
                if output_map is not None:
                    out = output_map(out, None if t is None else t.unsqueeze(0))
                return out.squeeze(0)

            for x, y, t in batches:
                chunk = _chunk_size(x, n_params, kind)
                for start in range(0, x.shape[0], chunk):
                    xs = x[start : start + chunk]
                    ys = y[start : start + xs.shape[0]]
                    ts = None if t is None else t[start : start + xs.shape[0]]
                    _accumulate(output, params, xs, ys, ts, kind, task_type, loss_fn,
                                generator, total)
                count += x.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise RetainError("cannot estimate the Fisher information from an empty experience")
    return [total[n] / count for n in names]


def _chunk_size(x: torch.Tensor, n_params: int, kind: str) -> int:
    per_sample = n_params * (16 if kind == "exact" else 1)
    return max(1, min(x.shape[0], _CHUNK_FLOATS // max(per_sample, 1)))


def _accumulate(output, params, x, y, t, kind, task_type, loss_fn, generator, total) -> None:
    if kind == "exact":
        if task_type == "classification":
            def log_probs(p, xi, ti):
                return torch.log_softmax(output(p, xi, ti), dim=-1)
            jac = vmap(jacrev(log_probs), in_dims=(None, 0, 0 if t is not None else None))(
                params, x, t
            )
            with torch.no_grad():
                probs = vmap(lambda xi, ti: log_probs(params, xi, ti).exp(),
                             in_dims=(0, 0 if t is not None else None))(x, t)
            for n, j in jac.items():  # j: [N, C, *shape]
                w = probs.reshape(probs.shape + (1,) * (j.dim() - 2))
                total[n] += (w * j.pow(2)).sum(dim=(0, 1))
        else:
            def flat_output(p, xi, ti):
                return output(p, xi, ti).reshape(-1)
            jac = vmap(jacrev(flat_output), in_dims=(None, 0, 0 if t is not None else None))(
                params, x, t
            )
            for n, j in jac.items():
                total[n] += j.pow(2).sum(dim=(0, 1))
        return
    if kind == "sampled":
        if task_type != "classification":
            raise RetainError("the 'sampled' Fisher is defined for classification only")
        with torch.no_grad():
            logits = vmap(lambda xi, ti: output(params, xi, ti),
                          in_dims=(0, 0 if t is not None else None))(x, t)
            y = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)

    def sample_loss(p, xi, yi, ti):
        out = output(p, xi, ti).unsqueeze(0)
        target = yi.unsqueeze(0)
        if task_type != "classification":
            target = target.reshape(out.shape)
        return loss_fn(out, target)

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0, 0 if t is not None else None))(
        params, x, y, t
    )
    for n, g in grads.items():
        total[n] += g.pow(2).sum(dim=0)


def _batched_empirical(model, batches, loss_fn, output_map, task_type, total) -> int:
    """Mean over mini-batches of the squared mini-batch gradient (Avalanche's estimate)."""
    count = 0
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for x, y, t in batches:
        model.zero_grad(set_to_none=True)
        out = model(x)
        if output_map is not None:
            out = output_map(out, t)
        target = y if task_type == "classification" else y.reshape(out.shape)
        loss_fn(out, target).backward()
        for n, p in params.items():
            if p.grad is not None:
                total[n] += p.grad.detach().pow(2)
        count += 1
    model.zero_grad(set_to_none=True)
    return count
