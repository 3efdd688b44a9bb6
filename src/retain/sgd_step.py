"""Plain SGD's update without ``torch.optim``'s per-call machinery, where it is the same math.

``torch.optim.SGD.step()`` with no momentum and no weight decay is ``p -= lr * p.grad`` for
every parameter with a gradient. Around that arithmetic each call runs a decorator that
toggles grad mode, a profiler range, a Python loop that gathers gradients and checks their
layout, and a dispatch on the tensors' devices: about 16 µs a step on the CPU for a
three-layer MLP, 3% of its whole step (docs/performance.md). :func:`lean_sgd_step` returns a
step doing the arithmetic only, with the kernel SGD's ``foreach`` path calls
(``torch._foreach_add_``; on the CPU it adds tensor by tensor, as SGD's default does), so the
parameters come out bit for bit the same. It returns ``None``, and the learner calls
``optimizer.step()``, whenever anything else could happen inside that call: another
optimizer or a subclass, momentum, weight decay, ``maximize``, a differentiable or fused
optimizer, a tensor learning rate, a step hook (the optimizer's or global), a patched
``step`` (every learning-rate scheduler patches it to count calls), a sparse gradient.

>>> import copy, torch
>>> model = torch.nn.Linear(3, 2)
>>> twin = copy.deepcopy(model)
>>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
>>> for m in (model, twin):
...     m(torch.ones(1, 3)).sum().backward()
>>> lean_sgd_step(optimizer)()  # the same update as optimizer.step(), bit for bit
>>> torch.optim.SGD(twin.parameters(), lr=0.1).step()
>>> torch.equal(model.weight, twin.weight)
True
>>> lean_sgd_step(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)) is None
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim import optimizer as _optimizer

_PLAIN = {"momentum": 0, "weight_decay": 0, "maximize": False, "nesterov": False,
          "differentiable": False}


def lean_sgd_step(optimizer: torch.optim.Optimizer) -> Callable[[], None] | None:
    """A function doing what ``optimizer.step()`` does, without its per-call machinery, or
    ``None`` when the optimizer is not a plain SGD (see the module's docstring). Read once
    per experience: a change of the optimizer's settings or hooks within an experience is
    not seen (the learning rate is read at every step, so schedulers may change it)."""
    if (type(optimizer) is not torch.optim.SGD or "step" in vars(optimizer)
            or optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
            or _optimizer._global_optimizer_pre_hooks
            or _optimizer._global_optimizer_post_hooks):
        return None
    groups = optimizer.param_groups
    for group in groups:
        if (any(group.get(k, v) != v for k, v in _PLAIN.items()) or group.get("fused")
                or isinstance(group["lr"], torch.Tensor)):
            return None

    def step() -> None:
        work = []
        for group in groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            if any(g.is_sparse for g in grads):
                optimizer.step()  # SGD's own sparse path, for every group (none changed yet)
                return
            work.append((params, grads, group["lr"]))
        with torch.no_grad():
            for params, grads, lr in work:
                if params:
                    torch._foreach_add_(params, grads, alpha=-lr)
    return step
