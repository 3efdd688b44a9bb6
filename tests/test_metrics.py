import numpy as np
import pytest

from retain.errors import RetainError
from retain.metrics import RunResult, average_accuracy, bwt, forgetting, fwt

R = np.array([
    [0.9, 0.1, 0.2],
    [0.6, 0.8, 0.1],
    [0.5, 0.7, 0.95],
])


def test_average_accuracy_is_mean_of_last_row():
    assert average_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.95) / 3)


def test_forgetting_uses_best_previous_score():
    # task 0: best before the end 0.9 -> 0.5 ; task 1: best 0.8 -> 0.7
    assert forgetting(R) == pytest.approx(((0.9 - 0.5) + (0.8 - 0.7)) / 2)


def test_forgetting_for_error_metrics():
    E = np.array([[1.0, 5.0], [3.0, 0.5]])  # error on task 0 rose from 1.0 to 3.0
    assert forgetting(E, higher_is_better=False) == pytest.approx(2.0)


def test_bwt_and_fwt_by_hand():
    assert bwt(R) == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    baseline = [0.1, 0.05, 0.12]
    assert fwt(R, baseline) == pytest.approx(((0.1 - 0.05) + (0.1 - 0.12)) / 2)


def test_single_experience_has_no_transfer():
    assert forgetting([[0.7]]) == 0.0 and bwt([[0.7]]) == 0.0 and fwt([[0.7]], [0.1]) == 0.0


def test_bad_matrix_is_rejected():
    with pytest.raises(RetainError, match="square"):
        average_accuracy(np.zeros((2, 3)))
    with pytest.raises(RetainError, match="baseline"):
        fwt(R, [0.1])


def test_run_result_round_trip():
    r = RunResult(R, np.array([0.1, 0.1, 0.1]), [1.0, 2.0, 3.0], [10, 10, 10])
    again = RunResult.from_dict(r.to_dict())
    assert again.summary() == pytest.approx(r.summary())
