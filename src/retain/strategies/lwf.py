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

    The teacher is frozen and in eval mode, so its output for a row of the experience cannot
    change. Where :meth:`Learner.learn` gathers batches from in-memory tensors, the first
    epoch runs the teacher every step as the textbook loop does; from the second, the teacher
    runs once over the experience's rows (in ``eval_batch_size`` chunks) and each step reads
    its rows' outputs. Replayed rows go through the teacher every step; outputs larger than
    the inputs are not kept.

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
        # the teacher's outputs of the experience's rows (built once the first epoch is over;
        # False: too large to keep), those of the step's incoming rows, rows seen before
        self._outputs: torch.Tensor | bool | None = None
        self._new: torch.Tensor | None = None
        self._seen = 0

    def before_experience(self, learner: LearnerView, experience: Experience) -> None:
        self._outputs, self._seen = None if self.teacher.ready else False, 0

    def extend_batch(self, learner: LearnerView, batch: Batch) -> None:
        # eager, before the forward pass: a captured step (compile=...) sees a tensor
        self._new = None
        rows, outputs = batch.rows, self._outputs
        if rows is None or outputs is False:
            return
        if outputs is None:
            x = batch.source[0]
            if self._seen < x.shape[0]:  # the first epoch: one pass may be all there is
                self._seen += batch.n_new
                return
            outputs = self._outputs = self._experience_outputs(x, learner.eval_batch_size)
            if outputs is False:
                return
        self._new = outputs[rows] if type(rows) is slice else outputs.index_select(0, rows)

    def _experience_outputs(self, x: torch.Tensor, chunk: int) -> torch.Tensor | bool:
        """The teacher's outputs of every row of ``x``, or ``False`` where a row's outputs
        would take more memory than its inputs."""
        with torch.no_grad():
            first = self.teacher(x[:chunk])
            if first[0].numel() >= x[0].numel():
                return False
            outputs = first.new_empty((x.shape[0], *first.shape[1:]))
            outputs[: first.shape[0]] = first
            for start in range(chunk, x.shape[0], chunk):
                outputs[start : start + chunk] = self.teacher(x[start : start + chunk])
        return outputs

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        self._outputs, self._new = None, None
        self.teacher.snapshot(learner.model)
        if learner.task_type == "classification":
            self.old_units = torch.nonzero(learner.seen_classes).squeeze(1)

    def loss_terms(self, learner: LearnerView, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        if not self.teacher.ready:
            return loss
        target = self._new  # the incoming rows' outputs, once the first epoch is over
        if target is None:
            with torch.no_grad():
                target = self.teacher(batch.x)
        elif batch.n_rows != batch.n_new:  # replayed rows: through the teacher
            with torch.no_grad():
                target = torch.cat((target, self.teacher(batch.x[batch.n_new :])))
        if learner.task_type != "classification":
            return loss + self.alpha * F.mse_loss(batch.out, target)
        units = self.old_units
        student = batch.out.index_select(1, units)
        target = target.index_select(1, units)
        t = self.temperature
        kd = F.kl_div(F.log_softmax(student / t, dim=1), F.softmax(target / t, dim=1),
                      reduction="batchmean")
        return loss + self.alpha * kd
