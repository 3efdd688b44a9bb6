"""Update regressions (flip rates): hand-made cases, Learner.run, and the store's gate."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from retain import Learner, RetainError, datasets, scenarios
from retain.flips import flip_rates
from retain.metrics import RunResult
from retain.store import Store
from retain.strategies import Replay


def test_classification_flips_match_a_hand_count():
    # old right on 0-5, new right on 3-9: 3 broken (0,1,2), 4 fixed (6..9), new errors 3
    old = torch.tensor([True] * 6 + [False] * 4)
    new = torch.tensor([False] * 3 + [True] * 7)
    f = flip_rates(old, new)
    assert (f.negative_flip_rate, f.positive_flip_rate, f.rows) == (0.3, 0.4, 10)
    assert f.negative_flip_impact == pytest.approx(3 / 3)


def test_an_update_without_new_errors_has_no_negative_flip_impact():
    f = flip_rates(torch.tensor([False, True]), torch.tensor([True, True]))
    assert (f.negative_flip_rate, f.positive_flip_rate, f.negative_flip_impact) == (0, 0.5, 0)


def test_negative_flip_impact_counts_only_new_errors_that_were_right_before():
    old = torch.tensor([True, False, False, True])
    new = torch.tensor([False, False, False, True])   # 3 errors, 1 of them new
    assert flip_rates(old, new).negative_flip_impact == pytest.approx(1 / 3)


def test_regression_flips_use_the_tolerance():
    old = torch.tensor([1.0, 1.0, 1.0, 1.0])
    new = torch.tensor([1.05, 1.2, 0.7, 1.0])
    assert flip_rates(old, new, tolerance=0.1).to_dict() == {
        "negative_flip_rate": 0.25, "positive_flip_rate": 0.25, "negative_flip_impact": None,
        "rows": 4}
    assert flip_rates(old, new, tolerance=0.0).negative_flip_rate == 0.5


@pytest.mark.parametrize("old, new, message", [
    (torch.tensor([True]), torch.tensor([True, False]), "same length"),
    (torch.tensor([], dtype=torch.bool), torch.tensor([], dtype=torch.bool), "at least one"),
    (torch.tensor([True]), torch.tensor([0.5]), "both"),
    (torch.tensor([0.5]), torch.tensor([float("nan")]), "NaN"),
])
def test_bad_scores_are_refused(old, new, message):
    with pytest.raises(RetainError, match=message):
        flip_rates(old, new)


def test_run_records_each_updates_flips_against_the_model_before_it():
    train, test = datasets.digits()
    stream = scenarios.class_incremental(train, test, n_experiences=3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                      strategies=[Replay(capacity=50)])
    result = learner.run(stream, epochs=1, batch_size=10)
    # the same updates, step by step, with predictions compared by hand
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    twin = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                   strategies=[Replay(capacity=50)])
    x = torch.cat([e.test.tensors[0] for e in stream])
    y = torch.cat([e.test.tensors[1] for e in stream])
    seen = np.cumsum([len(e.test) for e in stream])
    before = twin.predict(x) == y
    for i, experience in enumerate(stream):
        twin.learn(experience, epochs=1, batch_size=10)
        after = twin.predict(x) == y
        n = seen[i]
        broken = int((before[:n] & ~after[:n]).sum())
        fixed = int((~before[:n] & after[:n]).sum())
        assert result.flips[i]["negative_flip_rate"] == pytest.approx(broken / n)
        assert result.flips[i]["positive_flip_rate"] == pytest.approx(fixed / n)
        assert result.flips[i]["negative_flip_impact"] == pytest.approx(
            broken / int((~after[:n]).sum()))
        before = after
    assert result.negative_flip_rate == pytest.approx(
        np.mean([f["negative_flip_rate"] for f in result.flips[1:]]))
    assert result.negative_flip_rate > 0  # class-incremental updates break old classes
    again = RunResult.from_dict(result.to_dict())
    assert again.flips == result.flips and again.summary() == result.summary()


def _rows(region_labels: dict[str, list[int]], seed: int) -> pd.DataFrame:
    """1-d points: 'low' (x near -2, class 0), 'high' (x near 2, class 1) and 'middle' (x
    near 0) whose labels are given; a second feature is noise."""
    rng = np.random.default_rng(seed)
    centre = {"low": -2.0, "high": 2.0, "middle": 0.0}
    parts = []
    for region, labels in region_labels.items():
        n = len(labels)
        parts.append(pd.DataFrame({"x": centre[region] + rng.uniform(-0.4, 0.4, n),
                                   "noise": rng.normal(0, 1, n), "label": labels}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture()
def ambiguous(tmp_path):
    """A store whose first version calls the middle class 0, new data that calls it 1, and
    a holdout whose middle rows are half 0, half 1: the update keeps the holdout accuracy
    (3/4 either way) but breaks every middle row labelled 0 (a quarter of the holdout)."""
    history = _rows({"low": [0] * 100, "high": [1] * 100, "middle": [0] * 100}, seed=1)
    store = Store(tmp_path / "store")
    store.init(history, label="label", strategies=["naive"], lr=0.01, epochs=30,
               holdout="random", holdout_fraction=0.1)
    new = _rows({"low": [0] * 100, "high": [1] * 100, "middle": [1] * 200}, seed=2)
    holdout = _rows({"low": [0] * 50, "high": [1] * 50, "middle": [0] * 50 + [1] * 50}, seed=3)
    return store, new, holdout


def test_the_gate_refuses_an_update_that_keeps_accuracy_but_flips_too_many(ambiguous):
    store, new, holdout = ambiguous
    rejected = store.update(new, holdout=holdout, max_negative_flips=0.1)
    m = rejected.metrics
    assert rejected.status == "rejected"
    assert m["holdout_error"] == pytest.approx(m["holdout_error_before"], abs=0.02)
    assert m["holdout_negative_flip_rate"] == pytest.approx(0.25, abs=0.03)
    assert m["holdout_positive_flip_rate"] == pytest.approx(0.25, abs=0.03)
    assert m["memory_negative_flip_rate"] is None  # no replay memory in this store
    assert "holdout negative flip rate" in rejected.reason and "limit 0.1" in rejected.reason
    assert store.history()[0].current  # version 1 still serves
    # without the limit the same update passes the error gate: only the flips show it
    promoted = store.update(new, holdout=holdout)
    assert promoted.status == "promoted"
    assert promoted.metrics["holdout_negative_flip_rate"] == pytest.approx(
        m["holdout_negative_flip_rate"])


def test_a_flip_limit_outside_zero_one_is_refused_before_learning(ambiguous):
    store, new, holdout = ambiguous
    with pytest.raises(RetainError, match=r"share of rows in \[0, 1\]"):
        store.update(new, holdout=holdout, max_negative_flips=5)
    assert len(store.history()) == 1


def test_store_updates_record_memory_flips(tmp_path):
    history = _rows({"low": [0] * 100, "high": [1] * 100, "middle": [0] * 100}, seed=1)
    store = Store(tmp_path / "store")
    store.init(history, label="label", strategies=["replay"], epochs=5, holdout="random")
    version = store.update(_rows({"low": [0] * 60, "high": [1] * 60, "middle": [0] * 60}, 4))
    m = version.metrics
    assert m["memory_rows"] > 0
    for key in ("holdout", "memory"):
        assert 0 <= m[f"{key}_negative_flip_rate"] <= 1
        assert 0 <= m[f"{key}_positive_flip_rate"] <= 1
