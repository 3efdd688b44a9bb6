"""Learning without Forgetting (Li & Hoiem, TPAMI 2017)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from retain.strategies.base import Batch, Strategy
from retain.strategies.common import Teacher

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


class LwF(Strategy):
    """Distil the previous model's outputs into the current one while learning new data.

    After each experience a frozen copy of the model becomes the teacher. Classification adds
    ``alpha · KL(softmax(teacher/T) ‖ softmax(student/T))`` on the output units of the classes
    seen before (batch mean); regression adds ``alpha · MSE(student, teacher)``.

    Args:
        alpha: weight of the distillation term.
        temperature: softmax temperature T.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = LwF(alpha=1.0)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> s.teacher.ready
    True
    """

    name = "lwf"
    capturable = True  # its terms are tensor math: Learner(compile=...) captures them
    distributed = True  # the teacher copies weights that are identical on every rank

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0):
        super().__init__(alpha=alpha, temperature=temperature)
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.add_state("teacher", Teacher())  # saved as weights, rebuilt on the model
        self.add_state("old_units", None)  # output units of the classes seen before

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        self.teacher.snapshot(learner.model)
        if learner.task_type == "classification":
            self.old_units = torch.nonzero(learner.seen_classes).squeeze(1)

    def loss_terms(self, learner: LearnerView, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        if not self.teacher.ready:
            return loss
        with torch.no_grad():
            target = self.teacher(batch.x)
        if learner.task_type != "classification":
            return loss + self.alpha * F.mse_loss(batch.out, target)
        units = self.old_units
        student = batch.out.index_select(1, units)
        target = target.index_select(1, units)
        t = self.temperature
        kd = F.kl_div(F.log_softmax(student / t, dim=1), F.softmax(target / t, dim=1),
                      reduction="batchmean")
        return loss + self.alpha * kd
