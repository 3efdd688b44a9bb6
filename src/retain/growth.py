"""Growing a classifier when labels it has not seen arrive (class-incremental learning).

The output layer — the model's last ``nn.Linear`` — gets new units; the old units keep their
weights, so predictions of the old classes do not move. New units start as Avalanche's
``IncrementalClassifier`` starts them (the layer's default initialisation) but rescaled to the
old units' mean weight norm, with the old units' mean bias, so a new class begins neither
dominant nor unreachable. Everything shaped like the layer grows with it: the optimizer's state
(Adam's moments get zeros for the new units), strategies' per-parameter state (EWC/SI/MAS
importance: zero, so the new units are free to learn), the learner's seen classes and task
masks. The model remembers the growth (``model.retain_grown``) so a checkpoint rebuilds the
grown model (:mod:`retain.checkpoint.recipes`).

>>> import torch
>>> from torch import nn
>>> from retain import Learner
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> learner = Learner(model, torch.optim.Adam(model.parameters()))
>>> x = torch.randn(5, 4)
>>> old = model(x)
>>> learner.grow_classes(3)  # the name of the grown layer
'2'
>>> model(x).shape, torch.allclose(model(x)[:, :2], old, atol=1e-6)
(torch.Size([5, 3]), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from retain.errors import RetainError

GROWN_ATTR = "retain_grown"  # {"layer": name, "out_features": n} on a grown model
# strategies whose state holds outputs of the old size (logits, class means, a frozen copy of
# the model sized for the old classes) and that do not grow with the layer
CANNOT_GROW = ("der", "derpp", "icarl", "gdumb")
SIZE_ATTRS = ("out_features", "n_classes", "num_classes")


def output_layer(model: nn.Module) -> tuple[str, nn.Linear]:
    """``(name, layer)`` of the model's output layer: its last ``nn.Linear``."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
    if last is None:
        raise RetainError(f"{type(model).__name__} has no nn.Linear output layer to grow; "
                          "new classes need a model whose last layer is nn.Linear")
    return last


def grow_output(model: nn.Module, optimizer: torch.optim.Optimizer, strategies: Sequence[Any],
                n_classes: int) -> str | None:
    """Give ``model`` ``n_classes`` output units (from fewer), and the optimizer's and the
    strategies' state shaped like them; returns the grown layer's name (``None`` if it had
    enough units already). :meth:`retain.Learner.grow_classes` calls it, then grows its own
    class masks with :func:`widen` (this module does not know the learner)."""
    name, layer = output_layer(model)
    old = layer.out_features
    if n_classes <= old:
        return None
    refused = [s.name for s in strategies if s.name in CANNOT_GROW]
    if refused:
        raise RetainError(f"strategy {refused[0]!r} cannot learn new classes (its state holds "
                          f"outputs for {old}); use replay, replay-stratified, ewc, si, mas, ...")
    extra = _new_units(layer, n_classes - old)
    with torch.no_grad():
        for attr, rows in zip(("weight", "bias"), extra, strict=False):
            previous = getattr(layer, attr)
            # a new Parameter, not a resized one: graphs built before keep the old shape
            param = nn.Parameter(torch.cat([previous.detach(), rows.to(previous)]),
                                 requires_grad=previous.requires_grad)
            setattr(layer, attr, param)
            _swap_in_optimizer(optimizer, previous, param)
            for strategy in strategies:
                _grow_aligned(strategy, previous, param)
    layer.out_features = n_classes
    for size in SIZE_ATTRS:  # the model's own record of its classes, if it keeps one
        if getattr(model, size, None) == old:
            setattr(model, size, n_classes)
    setattr(model, GROWN_ATTR, {"layer": name, "out_features": n_classes})
    return name


def grow_layer(model: nn.Module, grown: dict[str, Any]) -> None:
    """Rebuild the shape of a grown model (weights come from the checkpoint after)."""
    layer = dict(model.named_modules()).get(grown["layer"])
    if not isinstance(layer, nn.Linear):
        raise RetainError(f"the checkpoint grew layer {grown['layer']!r}, which this model "
                          "lacks or which is not nn.Linear")
    extra = grown["out_features"] - layer.out_features
    if extra > 0:
        with torch.no_grad():
            layer.weight.data = torch.cat([layer.weight.data,
                                           layer.weight.data.new_zeros(extra, layer.in_features)])
            if layer.bias is not None:
                layer.bias.data = torch.cat([layer.bias.data, layer.bias.data.new_zeros(extra)])
        for size in SIZE_ATTRS:
            if getattr(model, size, None) == layer.out_features:
                setattr(model, size, grown["out_features"])
        layer.out_features = grown["out_features"]
    setattr(model, GROWN_ATTR, dict(grown))


def widen(t: torch.Tensor | None, n: int, dim: int) -> torch.Tensor | None:
    """``t`` with zeros (``False``) appended along ``dim`` up to ``n`` (a class mask for the
    new classes: not seen, in no task yet); ``None`` or a wide enough ``t`` unchanged.

    >>> widen(torch.tensor([True, False]), 3, dim=0)
    tensor([ True, False, False])
    """
    if t is None or t.shape[dim] >= n:
        return t
    shape = list(t.shape)
    shape[dim] = n - t.shape[dim]
    return torch.cat([t, t.new_zeros(shape)], dim)


def _new_units(layer: nn.Linear, n: int) -> list[torch.Tensor]:
    weight = torch.empty(n, layer.in_features)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # nn.Linear's own initialisation
    old_norm = layer.weight.detach().norm(dim=1).mean().cpu()
    weight = weight * (old_norm / weight.norm(dim=1, keepdim=True).clamp_min(1e-12))
    if layer.bias is None:
        return [weight]
    return [weight, torch.full((n,), float(layer.bias.detach().mean()))]


def _swap_in_optimizer(optimizer: torch.optim.Optimizer, previous: nn.Parameter,
                       param: nn.Parameter) -> None:
    """``param`` takes ``previous``'s place in its group, with its state grown by zeros."""
    for group in optimizer.param_groups:
        group["params"] = [param if p is previous else p for p in group["params"]]
    state = optimizer.state.pop(previous, None)
    if state is not None:
        extra = param.shape[0] - previous.shape[0]
        optimizer.state[param] = {k: _pad(v, extra, None) if torch.is_tensor(v)
                                  and v.shape == previous.shape else v
                                  for k, v in state.items()}


def _grow_aligned(strategy: Any, previous: nn.Parameter, param: nn.Parameter) -> None:
    """Grow what a strategy keeps laid out like the parameter (lists aligned with the
    model's parameters, also inside objects such as a quadratic penalty): the parameter
    itself and views of it are replaced by the new one, a copy of its values gets the new
    units' weights, anything else (importance, anchors) zeros for the new units."""
    extra = param.shape[0] - previous.shape[0]
    storage = previous.data_ptr()
    owners = [strategy, *(v for v in vars(strategy).values() if hasattr(v, "__dict__"))]
    for owner in owners:  # declared state and caches alike, and objects such as a penalty
        for key, holder in list(vars(owner).items()):
            if isinstance(holder, tuple) and any(torch.is_tensor(t) for t in holder):
                holder = list(holder)  # foreach ops return tuples
                setattr(owner, key, holder)
            if not isinstance(holder, list):
                continue
            for i, t in enumerate(holder):
                if t is previous:
                    holder[i] = param
                elif not (torch.is_tensor(t) and t.shape == previous.shape):
                    continue
                elif t.data_ptr() == storage:
                    holder[i] = param.detach()
                else:
                    copy = torch.equal(t, previous.detach().to(t))
                    holder[i] = _pad(t, extra, param.detach()[-extra:] if copy else None)


def _pad(t: torch.Tensor, extra: int, rows: torch.Tensor | None) -> torch.Tensor:
    rows = t.new_zeros((extra, *t.shape[1:])) if rows is None else rows.to(t)
    return torch.cat([t, rows])
