"""InfLoRA: interference-free low-rank adaptation for continual learning (Liang & Li, CVPR
2024), for the ``nn.Linear`` layers of any model (plain torch: no peft needed).

Each adapted layer computes ``W x + Σ_past U_s D_s x + U_t D_t x``. For task ``t`` the
down-projection ``D_t`` is *designed*, not trained: its rows are the main directions of the
task's inputs to the layer once the subspace spanned by earlier tasks' inputs is projected
out; only the up-projection ``U_t`` trains. As ``D_t`` is orthogonal to earlier inputs,
``U_t D_t x_old ≈ 0``: what the layer computes on earlier tasks' inputs does not change, so
neither does the network's output on them (the key property, tested). After the task its
branch is frozen into the layer's past slots and the input subspace of the task is added to
the layer's basis (gradient projection memory's energy criterion, ``threshold``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from retain.errors import RetainError
from retain.strategies.base import Strategy

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


_NOISE = 1e-6  # singular values below this share of the inputs' norm are rounding noise


class InfLoRALinear(nn.Module):
    """A frozen ``nn.Linear`` with room for ``tasks`` low-rank branches of rank ``rank``."""

    def __init__(self, base: nn.Linear, rank: int, tasks: int):
        super().__init__()
        self.base, self.rank, self.tasks = base, int(rank), int(tasks)
        base.requires_grad_(False)
        n_in, n_out = base.in_features, base.out_features
        self.up = nn.Parameter(torch.zeros(n_out, rank))  # U_t: the only trained weights
        self.register_buffer("down", torch.zeros(rank, n_in))  # D_t: designed
        self.register_buffer("past_down", torch.zeros(rank * tasks, n_in))
        self.register_buffer("past_up", torch.zeros(n_out, rank * tasks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.base(x) + F.linear(F.linear(x, self.past_down), self.past_up)
                + F.linear(F.linear(x, self.down), self.up))


def add_inflora(model: nn.Module, target_modules: Sequence[str], rank: int = 4,
                tasks: int = 10) -> nn.Module:
    """Replace the ``nn.Linear`` layers whose name ends with one of ``target_modules`` by
    :class:`InfLoRALinear` (in place); every other parameter is frozen. Build the optimizer
    afterwards, over the parameters that require gradients."""
    for p in model.parameters():
        p.requires_grad_(False)
    found = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t)
                                                 for t in target_modules):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child,
                    InfLoRALinear(module, rank, tasks))
            found.append(name)
    if not found:
        raise RetainError(f"no nn.Linear layer of the model is named {list(target_modules)}")
    return model


class InfLoRA(Strategy):
    """Designs each task's down-projections before it and freezes its branch after it, in
    every :class:`InfLoRALinear` layer of the model (:func:`add_inflora`).

    Args:
        threshold: share of each task's input energy the layer's basis must capture (GPM).
        samples: inputs per experience used to design the branch and extend the basis.

    Example (a two-layer model, two tasks on inputs in different subspaces):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = add_inflora(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)),
    ...                     ["0", "2"], rank=2, tasks=3)
    >>> trainable = [p for p in model.parameters() if p.requires_grad]
    >>> s = InfLoRA(threshold=1.0)
    >>> learner = Learner(model, torch.optim.Adam(trainable, lr=0.05), strategies=[s])
    >>> old = torch.zeros(32, 8); old[:, :3] = torch.randn(32, 3)
    >>> new = torch.zeros(32, 8); new[:, 4:] = torch.randn(32, 4)
    >>> _ = learner.learn(TensorDataset(old, torch.randint(0, 2, (32,))), epochs=5)
    >>> before = learner.outputs(old)
    >>> _ = learner.learn(TensorDataset(new, torch.randint(2, 4, (32,))), epochs=5)
    >>> bool((learner.outputs(old) - before).abs().max() < 1e-4)
    True
    """

    name = "inflora"

    def __init__(self, threshold: float = 0.999, samples: int = 512):
        if not 0.0 < threshold <= 1.0:
            raise RetainError(f"InfLoRA threshold must be in (0, 1], got {threshold!r}")
        super().__init__()
        self.threshold, self.samples = float(threshold), int(samples)
        self.add_state("bases", {})  # layer name -> [in, k] orthonormal columns
        self.add_state("task", 0)

    def before_experience(self, learner: LearnerView, experience: Experience) -> None:
        layers = _layers(learner.model)
        if self.task >= min(m.tasks for m in layers.values()):
            raise RetainError(f"the InfLoRA layers have room for {self.task} tasks; build them "
                              "with more (add_inflora(..., tasks=...))")
        inputs = self._inputs(learner, experience, layers)
        for name, layer in layers.items():
            x = self._residual(name, inputs[name])
            # rows of D_t: the main directions of the residual inputs (right singular vectors);
            # none where the residual is rounding noise (earlier tasks fill the input space)
            _, s, vh = torch.linalg.svd(x, full_matrices=False)
            k = min(layer.rank, int((s > _NOISE * float(inputs[name].norm())).sum()))
            down = torch.zeros_like(layer.down)
            down[:k] = vh[:k].to(down.dtype)
            with torch.no_grad():
                layer.down.copy_(down)
                layer.up.zero_()
            learner.optimizer.state.pop(layer.up, None)  # stale moments of the last task

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        layers = _layers(learner.model)
        with torch.no_grad():
            for layer in layers.values():
                rows = slice(self.task * layer.rank, (self.task + 1) * layer.rank)
                layer.past_down[rows] = layer.down
                layer.past_up[:, rows] = layer.up
                layer.up.zero_()
                layer.down.zero_()
        inputs = self._inputs(learner, experience, layers)
        for name, x in inputs.items():
            self.bases[name] = self._extended(name, x)
        self.task = int(self.task) + 1

    def _residual(self, name: str, x: torch.Tensor) -> torch.Tensor:
        basis = self.bases.get(name)
        return x if basis is None else x - (x @ basis) @ basis.T

    def _extended(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """The basis with the fewest new directions that capture ``threshold`` of the energy
        of ``x`` (with what the basis captures already)."""
        total = float((x * x).sum())
        residual = self._residual(name, x)
        captured = total - float((residual * residual).sum())
        u, s, vh = torch.linalg.svd(residual, full_matrices=False)
        energy = captured + torch.cumsum(s * s, 0)
        k = int((energy < self.threshold * total).sum()) + 1 if total > 0 else 0
        k = min(k, int((s > _NOISE * total ** 0.5).sum()))
        new = vh[:k].T
        basis = self.bases.get(name)
        return new if basis is None else torch.cat((basis, new), dim=1)

    def _inputs(self, learner: LearnerView, experience: Experience,
                layers: dict[str, InfLoRALinear]) -> dict[str, torch.Tensor]:
        seen: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        hooks = [m.register_forward_hook(
            lambda module, args, out, name=name: seen[name].append(
                args[0].reshape(-1, args[0].shape[-1]).double()))
            for name, m in layers.items()]
        was_training = learner.model.training
        learner.model.eval()
        try:
            with torch.inference_mode():
                for x, _, _ in learner.batches(experience.train, limit=self.samples):
                    learner.model(x)
        finally:
            for h in hooks:
                h.remove()
            learner.model.train(was_training)
        return {name: torch.cat(xs) for name, xs in seen.items()}  # float64


def _layers(model: nn.Module) -> dict[str, InfLoRALinear]:
    layers = {n: m for n, m in model.named_modules() if isinstance(m, InfLoRALinear)}
    if not layers:
        raise RetainError("InfLoRA needs InfLoRALinear layers: wrap the model first with "
                          "retain.pretrained.inflora.add_inflora")
    return layers
