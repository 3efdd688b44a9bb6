"""The model store: init, gated updates, rollback, predict, export, and refusing bad input."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError
from retain.store import DivergenceError, DivergenceGuard
from retain.store.lock import StoreLock
from retain.store.store import Store, gate
from retain.strategies import Strategy


def day_frame(day: int, rows: int = 48, seed: int = 0) -> pd.DataFrame:
    """One day of synthetic half-hourly electricity demand as spring turns to summer: days
    warm by 0.5 degrees a day, demand falls with temperature while heating (below 17 degrees)
    and rises once cooling starts (above 20), on a daily cycle with a working-day step. A model
    that saw only winter must learn the cooling response from the daily updates."""
    rng = np.random.default_rng([seed, day + 1000])
    hours = np.arange(rows) * 24 / rows
    time = pd.Timestamp("2024-01-01") + pd.to_timedelta(day, "D") + pd.to_timedelta(hours, "h")
    temp = 8 + 0.5 * day + 5 * np.sin(2 * np.pi * (hours - 9) / 24) + rng.normal(0, 1, rows)
    workday = float(day % 7 < 5)
    demand = (30 + 0.6 * np.maximum(17 - temp, 0) + 1.2 * np.maximum(temp - 20, 0)
              + 6 * np.sin(2 * np.pi * (hours - 14) / 24) + 4 * workday
              + rng.normal(0, 0.5, rows))
    return pd.DataFrame({"time": time, "temperature": temp,
                         "hour_sin": np.sin(2 * np.pi * hours / 24),
                         "hour_cos": np.cos(2 * np.pi * hours / 24), "workday": workday,
                         "demand": demand})


def history_frame(days: int = 14) -> pd.DataFrame:
    return pd.concat([day_frame(d) for d in range(-days, 0)], ignore_index=True)


INIT = {"label": "demand", "time": "time", "model_args": {"hidden": (32, 32)},
        "strategies": ("replay",), "epochs": 4, "batch_size": 16}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "store"
    Store(path).init(history_frame(), **INIT)
    return path


@pytest.fixture()
def store(template, tmp_path):
    shutil.copytree(template, tmp_path / "store")
    return Store(tmp_path / "store")


def snapshot(store: Store) -> tuple:
    """Everything a user could lose: the history and every checkpoint byte."""
    files = {str(p.relative_to(store.path)): p.read_bytes()
             for p in sorted((store.path / "versions").rglob("*")) if p.is_file()}
    return [v.to_dict() for v in store.history()], files


def test_init_trains_a_promoted_first_version(store):
    (first,) = store.history()
    assert (first.id, first.parent, first.status, first.current) == (1, None, "promoted", True)
    assert first.data_rows == 14 * 48 and first.data_start == "2023-12-18T00:00:00"
    assert first.metrics["train_rows"] + first.metrics["holdout_rows"] == 14 * 48
    assert first.metrics["holdout_error"] < 0.3  # MSE of standardised demand, well below 1
    prediction = store.predict(day_frame(0))
    assert list(prediction.columns) == ["time", "prediction"] and len(prediction) == 48
    error = np.abs(prediction["prediction"] - day_frame(0)["demand"]).mean()
    assert error < 2.0  # in demand units (spread ~6)


def test_read_gives_a_version_with_its_schema_and_checkpoint(store):
    version, schema, checkpoint = store.read()
    assert version.id == 1 and version.current and schema["label"] == "demand"
    assert checkpoint.manifest["normalization"] == checkpoint.normalization
    with pytest.raises(RetainError, match="version 7"):
        store.read(7)


def test_update_promotes_good_data_and_refuses_it_twice(store):
    v2 = store.update(day_frame(0))
    assert (v2.id, v2.parent, v2.status, v2.current) == (2, 1, "promoted", True)
    m = v2.metrics
    # the day's 38 rows and the 134 the first version held out (learned now, window 1)
    assert m["train_rows"] == 38 + 134 and m["holdout_rows"] == 10 and m["memory_rows"] == 500
    assert m["holdout_error"] <= m["holdout_error_before"] + 0.02
    # 10 held-out rows are too few to judge (min_holdout 20); the memory and labels are judged
    assert "holdout: 10 rows, too few to judge" in v2.reason
    assert "replay memory error" in v2.reason and m["today_error_before"] < 0.1
    with pytest.raises(RetainError, match="already learned by version 2.*--force"):
        store.update(day_frame(0))
    assert store.update(day_frame(0), force=True).id == 3


@pytest.mark.parametrize("corrupt", ["constant", "shuffled"])
def test_gate_rejects_a_corrupted_day(store, corrupt):
    bad = day_frame(0)
    if corrupt == "constant":
        bad["demand"] = 30.0
    else:
        bad["demand"] = np.random.default_rng(0).permutation(bad["demand"].to_numpy())
    before = store.predict(day_frame(1))
    v2 = store.update(bad)
    assert v2.status == "rejected" and not v2.current
    assert "labels look wrong" in v2.reason and "no better than chance" in v2.reason
    assert v2.metrics["holdout_error"] >= v2.metrics["holdout_chance_error"]
    assert store.history()[0].current
    pd.testing.assert_frame_equal(store.predict(day_frame(1)), before)
    assert store.load(2).experiences_seen == 2  # the rejected candidate is kept to inspect


def test_rollback_restores_predictions_bit_for_bit(store):
    store.update(day_frame(0))
    before = store.predict(day_frame(5))
    v3 = store.update(day_frame(1))
    assert v3.status == "promoted"
    assert not store.predict(day_frame(5)).equals(before)
    restored = store.rollback()
    assert (restored.id, restored.current, restored.status) == (2, True, "promoted")
    after = store.predict(day_frame(5))
    assert np.array_equal(after["prediction"].to_numpy(), before["prediction"].to_numpy())
    statuses = {v.id: v.status for v in store.history()}
    assert statuses == {1: "promoted", 2: "promoted", 3: "rolled-back"}
    assert "rolled back to 2" in store.history()[2].reason
    assert store.rollback(to=3).id == 3  # undo the rollback
    assert store.update(day_frame(2)).parent == 3


def test_rollback_refuses_what_cannot_be_restored(store):
    with pytest.raises(RetainError, match="version 1 is the first version"):
        store.rollback()
    bad = day_frame(0)
    bad["demand"] = 30.0
    store.update(bad)
    with pytest.raises(RetainError, match="version 2 was rejected"):
        store.rollback(to=2)
    with pytest.raises(RetainError, match="no version 7"):
        store.rollback(to=7)


class _PoisonAt(Strategy):
    """Makes the loss NaN from step ``at`` on (a stand-in for a numerically bad batch)."""

    name = "poison"

    def __init__(self, at: int):
        super().__init__(at=at)
        self.at, self.steps = at, 0

    def loss_terms(self, learner, batch, loss):
        self.steps += 1
        return loss * float("nan") if self.steps >= self.at else loss


def test_guard_reports_the_exact_step_checking_once_per_window():
    model = nn.Linear(3, 2)
    guard = DivergenceGuard(check_every=5)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      strategies=[_PoisonAt(7), guard])
    data = TensorDataset(torch.randn(64, 3), torch.randint(0, 2, (64,)))
    with pytest.raises(DivergenceError, match="diverged at step 7: loss is nan") as info:
        learner.learn(data, batch_size=4)
    assert info.value.step == 7 and guard._steps == 10  # noticed at the check after step 10


def test_guard_catches_an_exploding_loss():
    guard = DivergenceGuard(max_ratio=10, check_every=3)
    guard.reference = 2.0
    guard._window = torch.tensor([1.0, 5.0, 25.0])
    guard._steps = 3
    with pytest.raises(DivergenceError, match="step 3: loss 25 exceeds the limit 20"):
        guard.check()


def test_diverged_update_is_rejected_with_its_step(store):
    wild = day_frame(0)
    wild["temperature"] = wild["temperature"] * 1e18  # a unit error upstream
    version = store.update(wild)
    assert version.status == "rejected"
    assert "diverged at step 1" in version.reason and "epoch 1, batch 1 of 11" in version.reason
    assert version.metrics["diverged_step"] == 1
    with pytest.raises(RetainError, match="version 2 has no checkpoint"):
        store.load(2)
    assert store.history()[0].current


def test_gate_rule():
    assert gate({"holdout_error": 0.1, "memory_error": None},
                {"holdout_error": 0.12, "memory_error": None}, 0.02)[0]
    ok, reason = gate({"holdout_error": 0.1, "memory_error": 0.1},
                      {"holdout_error": 0.1, "memory_error": 0.13}, 0.02)
    assert not ok and reason == "replay memory error rose 0.1000 -> 0.1300 (tolerance 0.02)"
    assert not gate({"holdout_error": 0.1}, {"holdout_error": float("nan")}, 0.02)[0]
    ok, reason = gate({"holdout_error": 0.9}, {"holdout_error": 0.8}, 0.02, chance=0.75)
    assert not ok and reason.startswith("holdout error 0.8000 is no better than chance (0.75")
    assert gate({"holdout_error": 0.9}, {"holdout_error": 0.7}, 0.02, chance=0.75)[0]


def test_bad_input_changes_nothing(store, tmp_path):
    before = snapshot(store)
    missing = day_frame(0).drop(columns=["workday"])
    with pytest.raises(RetainError, match=r"lacks column\(s\) \['workday'\]"):
        store.update(missing)
    extra = day_frame(0).assign(price=1.0)
    with pytest.raises(RetainError, match=r"unexpected column\(s\) \['price'\]"):
        store.update(extra)
    text = day_frame(0).astype({"temperature": str})
    text.loc[3, "temperature"] = "warm"
    with pytest.raises(RetainError, match="column 'temperature', row 4: 'warm' is not a number"):
        store.update(text)
    with pytest.raises(RetainError, match="data file not found"):
        store.update(tmp_path / "nope.csv")
    with pytest.raises(RetainError, match="already a retain store"):
        store.init(history_frame(), **INIT)
    assert snapshot(store) == before


def test_a_corrupt_current_version_stops_the_update(store):
    model_file = store.path / "versions" / "000001" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:-10])
    before = snapshot(store)
    with pytest.raises(RetainError, match="000001/model.safetensors is truncated"):
        store.update(day_frame(0))
    assert snapshot(store) == before


def test_a_folder_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    for action in (lambda s: s.history(), lambda s: s.update(day_frame(0)),
                   lambda s: s.rollback(), lambda s: s.predict(day_frame(0))):
        with pytest.raises(RetainError, match="is not a retain store .*no registry.sqlite"):
            action(Store(tmp_path))
    (tmp_path / "registry.sqlite").write_text("not a database")
    with pytest.raises(RetainError, match="registry.sqlite is not a store registry"):
        Store(tmp_path).history()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "registry.sqlite"]
    with pytest.raises(RetainError, match="already a retain store"):
        Store(tmp_path).init(history_frame(), **INIT)
    (tmp_path / "registry.sqlite").unlink()
    with pytest.raises(RetainError, match=r"is not empty \(notes.txt\)"):
        Store(tmp_path).init(history_frame(), **INIT)


def test_a_held_lock_makes_the_update_fail_clearly(store):
    before = snapshot(store)
    with StoreLock(store.path, purpose="nightly job"):
        with pytest.raises(RetainError, match=r"is busy: pid \d+ \(nightly job.*waited 0.2 s"):
            store.update(day_frame(0), wait=0.2)
    assert snapshot(store) == before


def test_leftovers_of_a_crash_are_removed_by_the_next_writer(store):
    versions = store.path / "versions"
    shutil.copytree(versions / "000001", versions / "000002")  # written, never recorded
    (versions / ".tmp-000003-abc").mkdir()  # half-written
    version = store.update(day_frame(0))
    assert version.id == 2 and version.status == "promoted"
    assert sorted(p.name for p in versions.iterdir()) == ["000001", "000002"]
    assert store.load().experiences_seen == 2


def test_holdout_file_and_export(store, tmp_path):
    held = tmp_path / "held.parquet"
    day_frame(1).to_parquet(held)
    version = store.update(day_frame(0), holdout=held)
    assert version.metrics["train_rows"] == 48 and version.metrics["holdout_rows"] == 48
    out = store.export(tmp_path / "model.safetensors")
    weights = safetensors.torch.load_file(out)
    learner = store.load()
    assert weights.keys() == learner.model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in learner.model.state_dict().items())
    with safetensors.safe_open(out, "pt") as f:
        about = json.loads(f.metadata()["retain"])
    assert about["version"] == 2 and about["model"]["name"] == "mlp"
    assert about["schema"]["features"] == ["temperature", "hour_sin", "hour_cos", "workday"]


def test_classification_store_with_text_labels(tmp_path):
    rng = np.random.default_rng(0)

    def frame(n, shift):
        x = rng.normal(size=(n, 2)) + shift
        label = np.where(x[:, 0] > shift, "high", np.where(x[:, 1] > shift, "mid", "low"))
        return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": label})

    store = Store(tmp_path / "s")
    first = store.init(frame(400, 0.0), label="kind", strategies=("replay", "ewc"), epochs=10)
    assert first.strategy == "replay+ewc" and first.metrics["holdout_error"] < 0.15
    version = store.update(frame(100, 0.1))
    assert version.status == "promoted"
    predicted = store.predict(frame(50, 0.0).drop(columns=["kind"]))["prediction"]
    assert set(predicted) <= {"high", "mid", "low"}
    unknown = frame(20, 0.0)
    unknown.loc[0, "kind"] = "extreme"
    grown = store.update(unknown)  # a label the store has not seen is a new class
    assert grown.metrics["new_classes"] == [3]
