"""Diagonal parameter-importance estimates from per-sample gradients.

The estimators (all but the last need per-sample gradients; none loops over samples in Python):

- ``exact``: the true Fisher ``E_x Σ_c p(c|x) (∂ log p(c|x)/∂θ)²`` — the expectation over the
  model's own predictive distribution (Gaussian likelihood with unit variance for regression:
  ``E_x Σ_k (∂f_k/∂θ)²``).
- ``sampled``: ``(∂ log p(ŷ|x)/∂θ)²`` with one label ``ŷ`` drawn from ``p(·|x)`` per sample
  (Monte-Carlo estimate of ``exact``; classification only).
- ``empirical``: squared per-sample gradients of the loss at the observed label.
- ``weighted-empirical``: ``p(y|x) (∂ log p(y|x)/∂θ)²`` at the observed label ``y``: the
  empirical terms weighted by the model's probability of that label (mammoth's online-EWC
  estimate; classification with a negative log-likelihood loss only). Confidently right
  samples count fully, misclassified ones hardly at all.
- ``batched-empirical``: squared mini-batch gradients (what many libraries do; cheaper,
  biased low by roughly the batch size).

Two ways to get the per-sample terms, chosen automatically and equal within float rounding:

**Closed form for ``nn.Linear`` layers** (used when every trainable parameter is the weight or
bias of an ``nn.Linear``). A linear layer maps its input ``a_n`` (a vector per sample) to
``z_n = W a_n + b``, so for any scalar per-sample function ``s_n`` (a log-probability, an
output, a loss) the per-sample gradient is an outer product,
``∂s_n/∂W = δ_n a_nᵀ`` with ``δ_n = ∂s_n/∂z_n``, and ``∂s_n/∂b = δ_n``. Its elementwise square
factorises, ``(δ_n a_nᵀ)² = δ_n² (a_n²)ᵀ``, so any weighted sum of squared per-sample
gradients is one matmul: ``Σ_n Σ_c w_nc (δ_nc a_nᵀ)² = Dᵀ (A²)`` with
``D[n] = Σ_c w_nc δ_nc²`` (bias: ``Σ_n D[n]``). Samples are independent in ``eval()`` mode, so
``δ_nc`` for every sample and layer comes from one backward pass of ``Σ_n s_nc`` to the layer
outputs: ``exact`` takes one backward per class (``w_nc = p(c|x_n)``; per output for
regression, ``w = 1``), ``sampled`` and ``empirical`` one in all. Nothing of size
``samples × parameters`` is ever formed. This is exact, not an approximation (unlike K-FAC,
which factorises an *expectation* of outer products), because the factorisation holds sample by
sample. It needs each such layer called once per forward on a 2-D input (one row per sample)
and its parameters used nowhere else; forward hooks and the autograd graph verify that.

**``torch.func`` fallback** (any other model: convolutions, recurrent layers, normalisation
layers with affine parameters, shared weights, 3-D inputs to a linear layer...):
``vmap`` over ``grad``/``jacrev`` gives the per-sample gradients (``exact`` materialises the
``[N, C, P]`` per-sample Jacobian, so the batch is cut into chunks to bound memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from retain.errors import RetainError

FISHER_KINDS = ("exact", "sampled", "empirical", "weighted-empirical", "batched-empirical")
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
    *,
    closed_form: bool = True,
) -> list[torch.Tensor]:
    """Mean diagonal Fisher information over the samples in ``batches``, one tensor per
    trainable parameter (in ``model.parameters()`` order).

    ``output_map(out, task)`` post-processes outputs (task-incremental head masking). Uses the
    closed form for ``nn.Linear`` layers where it applies, ``torch.func`` otherwise (see the
    module docstring); both give the same values. ``closed_form=False`` forces ``torch.func``
    (the reference the closed form is tested against).
    """
    if kind not in FISHER_KINDS:
        raise RetainError(f"unknown Fisher estimator {kind!r}; choose one of {FISHER_KINDS}")
    if kind in ("sampled", "weighted-empirical") and task_type != "classification":
        raise RetainError(f"the {kind!r} Fisher is defined for classification only")
    if kind in ("empirical", "weighted-empirical", "batched-empirical") and loss_fn is None:
        raise RetainError(f"the {kind!r} Fisher needs a loss_fn")
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
            vmap_chunk = _chunk_size(n_params, kind)
            layers = _linear_layers(model) if closed_form else None

            def output(p: dict, x: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
                out = functional_call(model, ({**p, **frozen}, buffers), (x.unsqueeze(0),))
                if output_map is not None:
                    out = output_map(out, None if t is None else t.unsqueeze(0))
                return out.squeeze(0)

            linear_chunk = _linear_chunk_size(layers) if layers is not None else vmap_chunk
            for x, y, t in batches:
                for xs, ys, ts in _chunks(x, y, t, linear_chunk if layers is not None
                                          else vmap_chunk):
                    if layers is not None and _accumulate_linear(
                        model, layers, xs, ys, ts, kind, task_type, loss_fn, output_map,
                        generator, total,
                    ):
                        continue
                    layers = None  # the model does not qualify: torch.func from now on
                    for xc, yc, tc in _chunks(xs, ys, ts, vmap_chunk):
                        _accumulate(output, params, xc, yc, tc, kind, task_type, loss_fn,
                                    generator, total)
                count += x.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise RetainError("cannot estimate the Fisher information from an empty experience")
    return [total[n] / count for n in names]


#: :func:`fisher_diagonal` through ``torch.func`` only (tests and benchmarks compare with it)
_fisher_vmap = partial(fisher_diagonal, closed_form=False)


def _chunks(x, y, t, size: int) -> Iterator[tuple]:
    for start in range(0, x.shape[0], size):
        stop = start + size
        yield x[start:stop], y[start:stop], None if t is None else t[start:stop]


def _chunk_size(n_params: int, kind: str) -> int:
    per_sample = n_params * (16 if kind == "exact" else 1)
    return max(1, _CHUNK_FLOATS // max(per_sample, 1))


# --- closed form for nn.Linear layers --------------------------------------------------------


@dataclass
class _Layer:
    """A linear layer whose parameters get the closed form, and what one forward recorded."""

    module: nn.Linear
    weight: str | None  # parameter names in ``model.named_parameters()``; None if frozen
    bias: str | None
    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)


def _linear_layers(model: nn.Module) -> list[_Layer] | None:
    """The ``nn.Linear`` layers holding the trainable parameters, or ``None`` if some trainable
    parameter is anything but the weight or bias of exactly one plain ``nn.Linear``."""
    owners: dict[int, list[tuple[str, nn.Module, str]]] = {}
    for prefix, module in model.named_modules(remove_duplicate=False):
        for attr, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                name = f"{prefix}.{attr}" if prefix else attr
                owners.setdefault(id(p), []).append((name, module, attr))
    layers: dict[int, _Layer] = {}
    for uses in owners.values():
        if len(uses) != 1:
            return None  # shared (tied) parameter, or a module reached twice
        name, module, attr = uses[0]
        if (not isinstance(module, nn.Linear) or type(module).forward is not nn.Linear.forward
                or attr not in ("weight", "bias")):
            return None
        layer = layers.setdefault(id(module), _Layer(module, None, None))
        setattr(layer, attr, name)
    return list(layers.values())


def _linear_chunk_size(layers: list[_Layer]) -> int:
    # activations, their gradients and the per-layer D: a few floats per unit per sample
    per_sample = 4 * sum(lay.module.in_features + lay.module.out_features for lay in layers)
    return max(1, _CHUNK_FLOATS // max(per_sample, 1))


@contextmanager
def _recording(layers: list[_Layer]) -> Iterator[None]:
    """Record each layer's input and output during a forward pass."""

    def hook(layer: _Layer):
        def record(module, args, out):
            layer.inputs.append(args[0] if len(args) == 1 else None)
            layer.versions.append(args[0]._version if len(args) == 1 else -1)
            layer.outputs.append(out)
            # hand a copy downstream, so that an in-place op after the layer (ReLU(inplace=True))
            # cannot rewrite the tensor we differentiate with respect to
            return out.clone()
        return record

    handles = []
    try:
        for layer in layers:
            layer.inputs, layer.outputs, layer.versions = [], [], []
            handles.append(layer.module.register_forward_hook(hook(layer), prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _qualifies(layers: list[_Layer], n: int, root: torch.Tensor) -> bool:
    """Each layer ran once on a 2-D, one-row-per-sample input left untouched, and its trainable
    parameters reach ``root`` through that call only."""
    for layer in layers:
        if len(layer.outputs) != 1 or layer.inputs[0] is None:
            return False
        a, z = layer.inputs[0], layer.outputs[0]
        if (a.dim() != 2 or a.shape[0] != n or z.dim() != 2 or not z.requires_grad
                or a._version != layer.versions[0]):
            return False
    if not root.requires_grad:
        return False
    wanted = {id(getattr(lay.module, attr)) for lay in layers for attr in ("weight", "bias")
              if getattr(lay, attr) is not None}
    return all(uses <= 1 for p, uses in _parameter_uses(root).items() if p in wanted)


def _parameter_uses(root: torch.Tensor) -> dict[int, int]:
    """How many times each leaf tensor (by ``id``) enters the autograd graph of ``root``."""
    uses: dict[int, int] = {}
    seen = set()
    stack = [root.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            if child is None:
                continue
            leaf = getattr(child, "variable", None)  # AccumulateGrad
            if leaf is not None:
                uses[id(leaf)] = uses.get(id(leaf), 0) + 1
            stack.append(child)
    return uses


def _accumulate_linear(model, layers, x, y, t, kind, task_type, loss_fn, output_map, generator,
                       total) -> bool:
    """Add this chunk's closed-form terms to ``total``; ``False`` (nothing added) if the model
    does not qualify."""
    if not layers:
        return True  # no trainable parameters
    with torch.enable_grad():  # also when called under no_grad, as the torch.func path allows
        return _accumulate_linear_graph(model, layers, x, y, t, kind, task_type, loss_fn,
                                        output_map, generator, total)


def _accumulate_linear_graph(model, layers, x, y, t, kind, task_type, loss_fn, output_map,
                             generator, total) -> bool:
    with _recording(layers):
        out = model(x)
        if output_map is not None:
            out = output_map(out, t)
    if not _qualifies(layers, x.shape[0], out):
        return False
    zs = [layer.outputs[0] for layer in layers]
    squares = [torch.zeros_like(z) for z in zs]  # D per layer: Σ_c w_nc δ_nc²

    def add(scalar: torch.Tensor, weight: torch.Tensor | None = None, last: bool = False):
        deltas = torch.autograd.grad(scalar, zs, retain_graph=not last, allow_unused=True)
        for d, delta in zip(squares, deltas, strict=True):
            if delta is not None:
                sq = delta.square()
                d.add_(sq if weight is None else sq * weight.unsqueeze(1))

    if kind == "exact" and task_type == "classification":
        if out.dim() != 2:
            return False
        log_p = torch.log_softmax(out, dim=-1)
        probs = log_p.detach().exp()
        present = [c for c, live in enumerate(probs.any(dim=0).tolist()) if live]  # not masked
        for i, c in enumerate(present):
            add(log_p[:, c].sum(), probs[:, c], last=i == len(present) - 1)
    elif kind == "exact":
        flat = out.reshape(out.shape[0], -1)
        for k in range(flat.shape[1]):
            add(flat[:, k].sum(), last=k == flat.shape[1] - 1)
    elif kind == "sampled":
        if out.dim() != 2:
            return False
        with torch.no_grad():
            drawn = torch.multinomial(torch.softmax(out, -1), 1, generator=generator)
        add(torch.log_softmax(out, dim=-1).gather(1, drawn).sum(), last=True)
    else:  # empirical, weighted-empirical
        target = y if task_type == "classification" else y.reshape(out.shape)
        weight = _label_probability(out.detach(), y) if kind == "weighted-empirical" else None
        add(_per_sample_losses(loss_fn, out, target).sum(), weight, last=True)

    for layer, d in zip(layers, squares, strict=True):
        if layer.weight is not None:
            total[layer.weight] += d.t() @ layer.inputs[0].detach().square()
        if layer.bias is not None:
            total[layer.bias] += d.sum(dim=0)
    return True


def _label_probability(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``p(y_n | x_n)`` per sample: the weights of the ``weighted-empirical`` Fisher."""
    return torch.log_softmax(logits, dim=-1).gather(1, y.unsqueeze(1)).squeeze(1).exp()


def _per_sample_losses(loss_fn, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``loss_fn`` on each sample alone (a batch of one, as the ``torch.func`` path does), so a
    mean-reduced loss gives per-sample values; differentiable with respect to ``out``."""
    def one(o, yt):
        return loss_fn(o.unsqueeze(0), yt.unsqueeze(0))
    try:
        return vmap(one)(out, target)
    except RuntimeError:  # a loss torch.func cannot batch: a loop over the (cheap) loss only
        return torch.stack([one(o, yt) for o, yt in zip(out, target, strict=True)])


# --- torch.func fallback ---------------------------------------------------------------------


def _accumulate(output, params, x, y, t, kind, task_type, loss_fn, generator, total) -> None:
    t_dim = 0 if t is not None else None
    if kind == "exact":
        if task_type == "classification":
            def log_probs(p, xi, ti):
                return torch.log_softmax(output(p, xi, ti), dim=-1)
            jac = vmap(jacrev(log_probs), in_dims=(None, 0, t_dim))(params, x, t)
            with torch.no_grad():
                probs = vmap(lambda xi, ti: log_probs(params, xi, ti).exp(),
                             in_dims=(0, t_dim))(x, t)
            for n, j in jac.items():  # j: [N, C, *shape]
                w = probs.reshape(probs.shape + (1,) * (j.dim() - 2))
                total[n] += (w * j.pow(2)).sum(dim=(0, 1))
        else:
            def flat_output(p, xi, ti):
                return output(p, xi, ti).reshape(-1)
            jac = vmap(jacrev(flat_output), in_dims=(None, 0, t_dim))(params, x, t)
            for n, j in jac.items():
                total[n] += j.pow(2).sum(dim=(0, 1))
        return
    if kind == "sampled":
        with torch.no_grad():
            logits = vmap(lambda xi, ti: output(params, xi, ti), in_dims=(0, t_dim))(x, t)
            y = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)

        def sample_score(p, xi, yi, ti):
            return torch.log_softmax(output(p, xi, ti), dim=-1).gather(-1, yi.reshape(1))[0]

        grads = vmap(grad(sample_score), in_dims=(None, 0, 0, t_dim))(params, x, y, t)
    else:
        def sample_loss(p, xi, yi, ti):
            out = output(p, xi, ti).unsqueeze(0)
            target = yi.unsqueeze(0)
            if task_type != "classification":
                target = target.reshape(out.shape)
            return loss_fn(out, target)

        grads = vmap(grad(sample_loss), in_dims=(None, 0, 0, t_dim))(params, x, y, t)
    weight = None
    if kind == "weighted-empirical":
        with torch.no_grad():
            logits = vmap(lambda xi, ti: output(params, xi, ti), in_dims=(0, t_dim))(x, t)
            weight = _label_probability(logits, y)
    for n, g in grads.items():
        sq = g.pow(2)
        if weight is not None:
            sq = weight.reshape((-1,) + (1,) * (g.dim() - 1)) * sq
        total[n] += sq.sum(dim=0)


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
