"""A store whose updates bring classes it has not seen: the output layer grows, the gate
judges the old classes (no worse) and the new ones (learned) apart, predictions name them."""

import numpy as np
import pandas as pd
import pytest

from retain.store.store import Store

CENTRES = {"normal": (0, 0), "inner": (4, 0), "outer": (0, 4), "ball": (4, 4)}


def machine(classes, rows=80, seed=0) -> pd.DataFrame:
    """Feature rows of a machine's recordings: one blob per fault class."""
    rng = np.random.default_rng(seed)
    labels = np.resize(np.array(classes), rows)
    centre = np.array([CENTRES[c] for c in labels], dtype=float)
    x = centre + rng.normal(0, 0.7, (rows, 2))
    return pd.DataFrame({"rms": x[:, 0], "kurtosis": x[:, 1], "fault": labels})


INIT = {"label": "fault", "model_args": {"hidden": (32,)}, "strategies": ("replay-stratified",),
        "holdout": "random", "epochs": 30, "batch_size": 16, "lr": 0.01, "min_holdout": 10}


@pytest.fixture()
def store(tmp_path):
    store = Store(tmp_path / "store")
    store.init(machine(["normal", "inner"], rows=200), **INIT)
    return store


def accuracy(store, frame, version=None) -> float:
    predicted = store.predict(frame.drop(columns="fault"), version=version)["prediction"]
    return float((predicted.to_numpy() == frame["fault"].to_numpy()).mean())


def test_an_update_with_a_new_fault_grows_the_classifier_and_is_promoted(store):
    v2 = store.update(machine(["normal", "inner", "outer"], rows=300, seed=1))
    assert v2.status == "promoted", v2.reason
    assert v2.metrics["new_classes"] == [2] and "new classes outer error" in v2.reason
    assert "holdout error" in v2.reason  # the old classes judged on their own rows
    assert accuracy(store, machine(["outer"], seed=7)) > 0.9  # the new class learned
    assert accuracy(store, machine(["normal", "inner"], seed=8)) > 0.9  # the old ones kept
    v3 = store.update(machine(["normal", "ball"], rows=300, seed=2))
    assert v3.status == "promoted" and v3.metrics["new_classes"] == [3], v3.reason
    assert accuracy(store, machine(list(CENTRES), rows=200, seed=9)) > 0.85
    schema = store.read()[1]
    assert list(schema["classes"]) == ["inner", "normal", "outer", "ball"]  # known ids never move
    assert store.load().model.out_features == 4  # the catalogued MLP rebuilt, grown


def test_rollback_goes_back_to_the_classes_of_that_version(store):
    store.update(machine(["normal", "inner", "outer"], rows=300, seed=1))
    store.rollback()
    assert list(store.read()[1]["classes"]) == ["inner", "normal"]
    predicted = set(store.predict(machine(["outer"], seed=3).drop(columns="fault"))["prediction"])
    assert predicted <= {"inner", "normal"}
    again = store.update(machine(["normal", "inner", "outer"], rows=300, seed=4))
    assert again.status == "promoted" and again.metrics["new_classes"] == [2]


def test_a_new_class_that_is_not_learned_is_rejected(store):
    """The deliberate break: 'outer' rows that look like the (three times as many) 'inner'
    rows: nothing tells them apart, so the new class cannot be learned."""
    frame = machine(["normal", "inner", "inner", "inner", "outer"], rows=300, seed=1)
    outer = frame["fault"] == "outer"
    frame.loc[outer, ["rms", "kurtosis"]] = np.random.default_rng(0).normal(
        CENTRES["inner"], 0.7, (int(outer.sum()), 2))
    version = store.update(frame)
    assert version.status == "rejected" and "new classes outer not learned" in version.reason
    assert list(store.read()[1]["classes"]) == ["inner", "normal"]  # the current version
