"""The captured step: ``Learner(..., compile=mode)`` compiles the update with ``torch.compile``.

What is captured is the part of a step that is pure tensor math: the forward pass of all rows,
the labelled-row selection and task mask, the criterion and every strategy's loss terms, as
one graph whose backward AOTAutograd compiles with it; and the optimizer step, as a second
graph (one fused update of every parameter). What stays eager is what must: the strategies'
``extend_batch`` (memory draws use a host random generator), ``after_backward`` and
``after_step`` (buffer insertion) hooks, which run between the compiled pieces unchanged.

A strategy whose ``criterion`` or ``loss_terms`` runs inside the graph must declare
``capturable = True`` (static shapes, no ``.item()``, no Python branch on a tensor value);
a learner refuses ``compile`` with any other, naming it. The optimizer step stays eager under
a scheduler (a new learning rate each step would recompile it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from retain.errors import RetainError

if TYPE_CHECKING:
    from retain.strategies.base import Strategy

#: ``torch.compile`` modes a learner accepts (``compile=True`` is ``"default"``)
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: hooks that run inside the captured graph
CAPTURED_HOOKS = ("criterion", "loss_terms")


def compile_mode(compile: bool | str | None) -> str | None:
    """The ``torch.compile`` mode of a learner's ``compile`` argument, or ``None`` (eager).

    >>> compile_mode(True), compile_mode(None), compile_mode("reduce-overhead")
    ('default', None, 'reduce-overhead')
    """
    if compile is None or compile is False:
        return None
    if compile is True:
        return "default"
    if compile not in MODES:
        raise RetainError(f"compile must be True, False or one of {MODES}, got {compile!r}")
    return compile


def check_capturable(strategies: Sequence[Strategy], world_size: int = 1) -> None:
    """A :class:`RetainError` naming each strategy whose terms cannot run in the graph."""
    if world_size > 1:
        raise RetainError("compile is not supported with several ranks: train distributed "
                          "eagerly (compile=None)")
    refused = [f"{type(s).__name__} ({', '.join(h for h in CAPTURED_HOOKS if s.overrides(h))})"
               for s in strategies
               if any(s.overrides(h) for h in CAPTURED_HOOKS)
               and not getattr(s, "capturable", False)]
    if refused:
        raise RetainError(
            f"compile=... cannot capture {', '.join(refused)}: the hook runs inside the "
            "compiled graph and the strategy does not declare `capturable = True` (static "
            "shapes, no .item(), no branch on tensor values); use compile=None with it")


class CapturedStep:
    """The compiled pieces of a learner's step: ``loss(batch)`` and ``optimizer_step()``."""

    def __init__(self, loss_of: Any, mode: str):
        self.mode = mode
        self.loss = torch.compile(loss_of, mode=mode)
        self._optimizer: torch.optim.Optimizer | None = None
        self._step: Any = None

    def optimizer_step(self, optimizer: torch.optim.Optimizer, scheduled: bool) -> None:
        """One compiled step of ``optimizer`` (eager under a scheduler); recompiled when the
        learner's optimizer is replaced (Lightning wraps it)."""
        if scheduled:
            optimizer.step()
            return
        if optimizer is not self._optimizer:
            self._optimizer, self._step = optimizer, torch.compile(optimizer.step, mode=self.mode)
        self._step()
