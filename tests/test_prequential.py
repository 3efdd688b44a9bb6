"""Prequential evaluation, drift detection on the error stream, and the learning-rate boost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from retain import Learner
from retain.drift import DriftMonitor, LRBoost
from retain.errors import RetainError
from retain.prequential import PrequentialError, prequential, sample_errors


def test_running_and_windowed_error_match_hand_computation():
    meter = PrequentialError(window=3)
    meter.update([1.0, 2.0])
    assert meter.running == 1.5 and meter.windowed == 1.5
    meter.update(np.array([3.0, 4.0, 5.0, 6.0]))
    assert meter.running == pytest.approx(21 / 6)
    assert meter.windowed == pytest.approx(5.0)  # 4, 5, 6
    meter.update(10.0)
    assert meter.windowed == pytest.approx(7.0)  # 5, 6, 10
    assert np.isnan(PrequentialError().running)
    with pytest.raises(RetainError):
        PrequentialError(window=0)


def test_sample_errors_are_zero_one_or_mean_absolute():
    assert sample_errors(torch.tensor([1, 2, 3]), torch.tensor([1, 0, 3]),
                         "classification").tolist() == [0.0, 1.0, 0.0]
    out = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    y = torch.tensor([[2.0, 2.0], [1.0, -3.0]])
    assert sample_errors(out, y, "regression").tolist() == [1.0, 2.0]


class _Recorder(nn.Module):
    """A linear model that logs whether it was asked to predict or to learn each batch."""

    def __init__(self, log):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.log = log

    def forward(self, x):
        self.log.append(("train" if self.training else "test", float(x[0, 0])))
        return self.linear(x)


def test_each_batch_is_tested_before_it_is_learned():
    log: list = []
    model = _Recorder(log)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), loss=nn.MSELoss())
    batches = [(torch.full((4, 1), float(i)), torch.zeros(4, 1)) for i in range(3)]
    result = prequential(learner, batches, window=8)
    steps = [entry for entry in log if entry[0] == "train"]
    first_test = {i: log.index(("test", float(i))) for i in range(3)}
    first_train = {i: log.index(("train", float(i))) for i in range(3)}
    assert all(first_test[i] < first_train[i] for i in range(3))
    assert len(steps) == 3 and len(result.batch_error) == 3


def test_drift_on_a_regression_stream_is_detected_and_can_be_answered():
    """y = 2x, then y = -2x: the error jumps, the detectors fire soon after, and an LR
    boost on the alarm lowers the error of the batches that follow."""
    def stream(seed):
        g = torch.Generator().manual_seed(seed)
        for i in range(300):
            x = torch.randn(16, 1, generator=g)
            yield x, (2.0 if i < 150 else -2.0) * x

    def run(boost: LRBoost | None):
        torch.manual_seed(0)
        model = nn.Linear(1, 1)
        learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.01),
                          loss=nn.MSELoss())
        return prequential(learner, stream(1), window=160, boost=boost,
                           monitor=DriftMonitor(("adwin", "page-hinkley")))

    plain = run(None)
    alarms = {name: i for i, name in reversed(plain.alarms)}
    assert set(alarms) == {"adwin", "page-hinkley"}
    assert all(150 <= i < 200 for i in alarms.values()), plain.alarms
    assert plain.windowed[149] < 0.1 < plain.windowed[200]
    boosted = run(LRBoost(factor=10.0, duration=30))
    assert np.mean(boosted.batch_error[160:220]) < 0.5 * np.mean(plain.batch_error[160:220])


def test_lr_boost_scales_for_its_duration_and_divides_back():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    boost = LRBoost(factor=4.0, duration=2)
    seen = []
    boost.trigger()
    for _ in range(3):
        with boost.applied(opt):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()  # a chainable scheduler stepping inside the boost
    assert seen == pytest.approx([0.4, 0.2, 0.025])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    with pytest.raises(RetainError):
        LRBoost(factor=0)


def test_unknown_detector_is_an_error():
    with pytest.raises(RetainError, match="unknown drift detector"):
        DriftMonitor(("cusum",))
