"""Pieces shared by several strategies: a frozen teacher and a quadratic weight penalty."""

from __future__ import annotations

import copy

import torch
from torch import nn


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with gradients off: the 'old model' of LwF, DER, iCaRL."""
    teacher = copy.deepcopy(model)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class Teacher:
    """The frozen previous model (LwF, iCaRL) as declarable state (``add_state``).

    Saved as its weights only (``None`` before the first snapshot, so it is then left out of
    the checkpoint); loaded weights wait until the strategy is bound, then a frozen copy of the
    learner's own model receives them, so a checkpoint never holds a module.
    """

    def __init__(self) -> None:
        self.module: nn.Module | None = None
        self._weights: dict[str, torch.Tensor] | None = None  # loaded, not yet attached

    @property
    def ready(self) -> bool:
        """True once a snapshot exists (or loaded weights were attached)."""
        return self.module is not None

    def snapshot(self, model: nn.Module) -> None:
        """Become a frozen copy of ``model``."""
        self.module, self._weights = frozen_copy(model), None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        return dict(self.module.state_dict()) if self.module is not None else self._weights

    def load_state_dict(self, weights: dict[str, torch.Tensor] | None) -> None:
        self.module, self._weights = None, None if weights is None else dict(weights)

    def attach(self, model: nn.Module, device: torch.device) -> None:
        """Rebuild on ``model`` from loaded weights, or move the live copy to ``device``."""
        if self._weights is not None:
            self.module = frozen_copy(model)
            self.module.load_state_dict(self._weights)
            self._weights = None
        elif self.module is not None:
            self.module.to(device)


class QuadraticPenalty:
    """The penalty ``λ/2 · Σ_t Σ_i Ω_t,i (θ_i − θ*_t,i)²`` folded into one quadratic in θ.

    Expanding the sum gives ``λ/2 · (A θ² − 2 B θ + C)`` with ``A = Σ_t Ω_t`` and
    ``B = Σ_t Ω_t θ*_t``, so the cost per step is constant in the number of tasks, and its
    gradient ``λ (A θ − B)`` is added to ``.grad`` with two fused foreach ops, without autograd.
    Used by EWC, online EWC, SI and MAS (which differ only in how Ω is estimated).
    """

    def __init__(self) -> None:
        self.A: list[torch.Tensor] = []
        self.B: list[torch.Tensor] = []
        self.C = 0.0

    @property
    def empty(self) -> bool:
        return not self.A

    def accumulate(
        self, importance: list[torch.Tensor], anchor: list[torch.Tensor], decay: float = 1.0
    ) -> None:
        """Add one task's term; ``decay`` < 1 shrinks the older terms first."""
        anchor = [a.detach() for a in anchor]
        weighted = torch._foreach_mul(importance, anchor)
        c = sum(float((w * a).sum()) for w, a in zip(weighted, anchor, strict=True))
        if self.empty:
            self.A = [i.detach().clone() for i in importance]
            self.B = weighted
            self.C = c
            return
        torch._foreach_mul_(self.A, decay)
        torch._foreach_add_(self.A, importance)
        torch._foreach_mul_(self.B, decay)
        torch._foreach_add_(self.B, weighted)
        self.C = decay * self.C + c

    def reanchor(self, importance: list[torch.Tensor], anchor: list[torch.Tensor],
                 decay: float) -> None:
        """Online form: ``A ← decay·A + Ω`` and a single anchor ``θ*`` (``B = A θ*``)."""
        anchor = [a.detach() for a in anchor]
        if self.empty:
            self.A = [i.detach().clone() for i in importance]
        else:
            torch._foreach_mul_(self.A, decay)
            torch._foreach_add_(self.A, importance)
        self.B = torch._foreach_mul(self.A, anchor)
        self.C = sum(float((b * a).sum()) for b, a in zip(self.B, anchor, strict=True))

    def add_gradient(self, params: list[torch.Tensor], lambda_: float,
                     values: list[torch.Tensor] | None = None) -> None:
        """``p.grad += λ (A p − B)`` for every parameter, fused.

        ``values`` are detached views of ``params`` (cache them: they share storage, so they
        follow optimizer updates); reading detached values keeps ``.grad`` out of autograd.
        """
        if values is None:
            values = [p.detach() for p in params]
        grads = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        torch._foreach_addcmul_(grads, self.A, values, value=lambda_)
        torch._foreach_add_(grads, self.B, alpha=-lambda_)

    def value(self, params: list[torch.Tensor], lambda_: float) -> torch.Tensor:
        """The penalty itself (for logging and tests; training uses :meth:`add_gradient`)."""
        total = sum(
            (a * p.detach() ** 2 - 2 * b * p.detach()).sum()
            for a, b, p in zip(self.A, self.B, params, strict=True)
        )
        return 0.5 * lambda_ * (total + self.C)

    def to(self, device) -> None:
        self.A = [a.to(device) for a in self.A]
        self.B = [b.to(device) for b in self.B]

    def state_dict(self) -> dict:
        return {"A": list(self.A), "B": list(self.B), "C": self.C}

    def load_state_dict(self, state: dict) -> None:
        self.A = [t.clone() for t in state["A"]]
        self.B = [t.clone() for t in state["B"]]
        self.C = float(state["C"])


def trainable_parameters(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]
