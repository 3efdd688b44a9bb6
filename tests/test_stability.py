"""The stability gap: min-ACC and WC-ACC against hand-made curves, and eval_every in runs."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from retain import Learner, RetainError, datasets, scenarios
from retain.metrics import RunResult
from retain.stability import min_acc, wc_acc
from retain.strategies import Replay

NAN = float("nan")
# three experiences; rows are evaluation points, tagged with the experience training then
CURVE = np.array([[0.50, NAN, NAN],    # during 0
                  [0.90, NAN, NAN],    # end of 0
                  [0.30, 0.40, NAN],   # during 1: experience 0 falls to 0.30
                  [0.80, 0.95, NAN],   # end of 1
                  [0.60, 0.20, 0.50],  # during 2: 0 at 0.60, 1 falls to 0.20
                  [0.70, 0.85, 0.90]])  # end of 2
TAGS = [0, 0, 1, 1, 2, 2]


def test_min_acc_is_the_mean_of_each_earlier_experiences_lowest_point_after_it():
    # experience 0: min(0.30, 0.80, 0.60, 0.70) = 0.30 (its own 0.50 during training is
    # not counted); experience 1: min(0.20, 0.85) = 0.20 (0.40 and 0.95 are while it trains)
    assert min_acc(CURVE, TAGS) == pytest.approx((0.30 + 0.20) / 2)


def test_wc_acc_weighs_the_last_experience_by_one_over_t():
    assert wc_acc(CURVE, TAGS) == pytest.approx(0.90 / 3 + (2 / 3) * 0.25)


def test_one_experience_has_no_min_acc_and_its_wc_acc_is_its_accuracy():
    assert min_acc([[0.4], [0.7]], [0, 0]) is None
    assert wc_acc([[0.4], [0.7]], [0, 0]) == pytest.approx(0.7)


@pytest.mark.parametrize("curve, tags, message", [
    (np.zeros((2, 2)), [0], "one experience per point"),
    (np.zeros((2, 2)), [0, 0], "no evaluation after experience 0"),
    (np.zeros((0, 2)), [], "shape"),
])
def test_malformed_curves_are_refused(curve, tags, message):
    with pytest.raises(RetainError, match=message):
        min_acc(curve, tags)


def _learner(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    return Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                   strategies=[Replay(capacity=100)], seed=seed)


@pytest.fixture(scope="module")
def stream():
    train, test = datasets.digits()
    return scenarios.class_incremental(train, test, n_experiences=3)


def test_eval_every_leaves_training_alone_and_records_the_curve(stream):
    plain = _learner().run(stream, epochs=2, batch_size=16)
    every = _learner().run(stream, epochs=2, batch_size=16, eval_every=10, eval_samples=None)
    np.testing.assert_array_equal(plain.accuracy_matrix, every.accuracy_matrix)
    assert plain.curve is None and plain.min_acc is None
    steps_per_experience = [int(np.ceil(len(e.train) / 16)) * 2 for e in stream]
    expected_steps, boundary = [], 0
    for n in steps_per_experience:
        expected_steps += [boundary + s for s in range(10, n + 1, 10)]
        if n % 10:
            expected_steps.append(boundary + n)
        boundary += n
    assert every.curve_steps == expected_steps
    C, tags = every.curve, np.array(every.curve_training)
    for i in range(3):
        assert np.isnan(C[tags == i, i + 1:]).all()          # not yet seen: not evaluated
        end = np.flatnonzero(tags == i)[-1]                    # the boundary is a matrix row
        np.testing.assert_allclose(C[end, : i + 1], every.accuracy_matrix[i, : i + 1])
    by_hand = np.mean([np.nanmin(C[tags > k, k]) for k in range(2)])
    assert every.min_acc == pytest.approx(by_hand)
    assert every.min_acc <= every.accuracy_matrix[-1, :2].mean()   # a minimum, not the end
    again = RunResult.from_dict(json.loads(json.dumps(every.to_dict(), allow_nan=False)))
    np.testing.assert_array_equal(again.curve, every.curve)
    assert again.wc_acc == pytest.approx(every.wc_acc)


def test_the_curve_scores_a_fixed_subset_of_each_test_set(stream):
    small = _learner().run(stream, epochs=1, batch_size=16, eval_every=10, eval_samples=20)
    C, tags = small.curve, np.array(small.curve_training)
    during = [p for p in range(len(tags) - 1) if tags[p + 1] == tags[p]]
    # 20 samples per set: every score during training is a multiple of 1/20
    assert np.allclose(np.round(C[during, 0] * 20), C[during, 0] * 20)
    assert not np.allclose(np.round(small.accuracy_matrix[:, 0] * 20),
                           small.accuracy_matrix[:, 0] * 20)  # the boundaries use all


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_eval_every_must_be_a_positive_number_of_steps(stream, bad):
    with pytest.raises(RetainError, match="eval_every must be a positive number"):
        _learner().run(stream, eval_every=bad)
