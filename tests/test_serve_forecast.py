"""``retain serve`` over a forecast store: ``GET /forecast`` answers what the store predicts,
``POST /observe`` keeps measured rows durably (token, every bad row named, nothing changed),
a completed day runs the gated update in the background and the new version serves, the
journal survives a restart, and the metrics give each version's forecast error."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient

from retain.errors import RetainError
from retain.forecasting import synthetic
from retain.forecasting.experiment import Experiment
from retain.serve import create_app
from retain.serve.forecast_journal import JOURNAL_FILE
from retain.serve.forecast_service import ForecastState
from retain.store.forecasts import ForecastStore

DAY = 24
FRAME = synthetic(days=46).frame.reset_index()
HISTORY_DAYS = 40
TOKEN = "a-long-random-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COLUMNS = ["forecast", "lower_80", "upper_80", "lower_95", "upper_95"]


def _frame(first: int, last: int) -> pd.DataFrame:
    return FRAME.iloc[first * DAY:last * DAY]


def _rows(first: int, last: int) -> list[dict]:
    """Days ``[first, last)`` as the JSON rows a client posts."""
    return _json(_frame(first, last))


def _json(frame: pd.DataFrame) -> list[dict]:
    return [{"time": t.isoformat(), **{c: float(row[c]) for c in frame.columns if c != "time"}}
            for t, row in zip(frame["time"], frame.to_dict("records"), strict=True)]


def _future(day: int) -> pd.DataFrame:
    return FRAME.iloc[day * DAY:(day + 1) * DAY][["time", "WorkDay"]]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-exact comparisons
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    torch.set_num_threads(1)
    store = ForecastStore(tmp_path_factory.mktemp("template") / "store")
    store.init(_frame(0, HISTORY_DAYS), time="time", label="Demand",
               covariates=["Temperature", "WorkDay"], known_future=["WorkDay"],
               experiment=Experiment.quick())
    return store.path


@pytest.fixture
def folder(template, tmp_path):
    shutil.copytree(template, tmp_path / "store")
    return tmp_path / "store"


def _client(folder, **options) -> TestClient:
    return TestClient(create_app(folder, token=TOKEN, poll=0.05, **options))


def _observe(client, rows=(), future=None, status=200):
    body = {"rows": list(rows)}
    if future is not None:
        body["future"] = _json(future)
    answer = client.post("/observe", json=body, headers=AUTH)
    assert answer.status_code == status, answer.text
    return answer.json()


def _served(answer: dict) -> pd.DataFrame:
    return pd.DataFrame(answer["forecast"]).astype({c: float for c in COLUMNS})


def _snapshot(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != ".lock" and not p.name.endswith(("-wal", "-shm"))}


def test_the_forecast_is_what_the_store_predicts_computed_once(folder, monkeypatch):
    loads = []
    load = ForecastStore.load
    monkeypatch.setattr(ForecastStore, "load", lambda self, v=None: loads.append(v) or load(
        self, v))
    with _client(folder) as client:
        missing = client.get("/forecast")
        assert missing.status_code == 409
        assert "known-future column(s) ['WorkDay']" in missing.json()["detail"]
        assert "'future' rows to POST /observe" in missing.json()["detail"]
        assert _observe(client, future=_future(HISTORY_DAYS)) == {
            "kept": 0, "skipped": 0, "pending_rows": 0, "days_waiting": 0,
            "update_started": False}
        loads.clear()
        first = client.get("/forecast").json()
        assert [client.get("/forecast").json() for _ in range(3)] == [first] * 3
        assert len(loads) == 1  # computed once, then kept
    expected = ForecastStore(folder).predict(_future(HISTORY_DAYS))
    served = _served(first)
    assert first["version"] == 1 and len(served) == DAY
    assert (pd.to_datetime(served["time"]) == expected["time"]).all()
    for c in COLUMNS:
        np.testing.assert_array_equal(served[c].to_numpy(), expected[c].to_numpy())


def test_observe_needs_the_token(folder):
    with _client(folder) as client:
        body = {"rows": _rows(HISTORY_DAYS, HISTORY_DAYS + 1)}
        assert client.post("/observe", json=body).status_code == 401
        wrong = {"Authorization": "Bearer a-wrong-token-of-some-length"}
        assert client.post("/observe", json=body, headers=wrong).status_code == 403
    with TestClient(create_app(folder)) as open_server:  # no token: no writes at all
        assert open_server.post("/observe", json=body, headers=AUTH).status_code == 403
    assert not (folder / JOURNAL_FILE).exists()


def _edit(rows: list[dict], what: str) -> list[dict]:
    rows = [dict(r) for r in rows]
    if what == "missing":
        del rows[2]["Temperature"]
    elif what == "extra":
        rows[1]["Humidity"] = 0.5
    elif what == "text":
        rows[3]["Demand"] = "high"
    elif what == "null":
        rows[3]["Demand"] = None
    elif what == "twice":
        rows.insert(2, rows[1])
    elif what == "order":
        rows[1], rows[2] = rows[2], rows[1]
    elif what == "gap":
        del rows[4]
    elif what == "time":
        rows[0]["time"] = "yesterday"
    elif what == "changed":
        rows = _rows(HISTORY_DAYS - 1, HISTORY_DAYS)
        rows[5]["Demand"] += 1.0
    return rows


@pytest.mark.filterwarnings("ignore:Could not infer format")  # pandas, on 'yesterday'
@pytest.mark.parametrize("what, status, message", [
    ("missing", 422, r"row 2 lacks column\(s\) \['Temperature'\]"),
    ("extra", 422, r"row 1 has unknown column\(s\) \['Humidity'\]"),
    ("text", 422, "row 3, column 'Demand': 'high' is not a number"),
    ("null", 422, "row 3, column 'Demand': None is not a number"),
    ("twice", 422, "appears twice"),
    ("order", 422, "not in increasing order"),
    ("gap", 422, "a gap"),
    ("time", 422, "cannot parse 'yesterday' as a timestamp"),
    ("changed", 422, "was already learnt with other values"),
])
def test_bad_rows_are_named_and_nothing_changes(folder, what, status, message):
    good = _rows(HISTORY_DAYS, HISTORY_DAYS + 1)[:12]
    with _client(folder) as client:
        _observe(client, good[:6])
        before = _snapshot(folder)
        health = client.get("/health").json()
        answer = client.post("/observe", json={"rows": _edit(good[6:], what)}, headers=AUTH)
        assert answer.status_code == status, answer.text
        assert re.search(message, answer.json()["detail"])
        assert _snapshot(folder) == before
        assert client.get("/health").json() == {**health, "uptime_s": pytest.approx(
            health["uptime_s"], abs=60)}
        assert _observe(client, good[6:])["kept"] == 6  # the good rows still fit


def test_a_completed_day_is_learnt_in_the_background_and_the_new_version_serves(folder):
    day = _rows(HISTORY_DAYS, HISTORY_DAYS + 1)
    with _client(folder) as client:
        assert _observe(client, day[:18]) == {"kept": 18, "skipped": 0, "pending_rows": 18,
                                              "days_waiting": 0, "update_started": False}
        done = _observe(client, day[12:], future=_future(HISTORY_DAYS + 1))
        assert done == {"kept": 6, "skipped": 6, "pending_rows": DAY, "days_waiting": 1,
                        "update_started": True}
        client.app.state.serve.wait_for_update()
        answer = client.get("/forecast").json()
        health = client.get("/health").json()
        versions = client.get("/versions").json()
    store = ForecastStore(folder)
    assert [(v.id, v.status, v.current) for v in store.history()] == [
        (1, "promoted", False), (2, "promoted", True)]
    assert answer["version"] == 2 and versions["serving"] == 2
    assert (health["pending_rows"], health["days_waiting"]) == (0, 0)
    expected = store.predict(_future(HISTORY_DAYS + 1))
    np.testing.assert_array_equal(_served(answer)["forecast"], expected["forecast"])
    assert json.loads((folder / JOURNAL_FILE).read_text().splitlines()[0]).keys() == {"future"}


def test_rows_kept_survive_a_restart_and_their_day_is_learnt_then(folder, monkeypatch):
    def killed(self, rows):
        raise RuntimeError("the server was killed before the store got the rows")

    with monkeypatch.context() as patch:
        patch.setattr(ForecastState, "_run", killed)
        with _client(folder) as client:
            first = _observe(client, _rows(HISTORY_DAYS, HISTORY_DAYS + 1))
            assert first["update_started"]
            client.app.state.serve.wait_for_update()
            health = client.get("/health").json()
            assert health["pending_rows"] == DAY and "was killed" in health["last_error"]
            _observe(client, _rows(HISTORY_DAYS + 1, HISTORY_DAYS + 2)[:5])
    assert len(ForecastStore(folder).history()) == 1  # the store never got them
    with open(folder / JOURNAL_FILE, "a") as journal:
        journal.write('{"rows": [{"time": "2024')  # a write cut short: never acknowledged
    with _client(folder) as client:  # on start: the journal re-fed, the waiting day learnt
        client.app.state.serve.wait_for_update()
        health = client.get("/health").json()
        assert (health["version"], health["pending_rows"]) == (2, 0)  # the store kept all
        assert len(ForecastStore(folder).observed()) == (HISTORY_DAYS + 1) * DAY + 5
        rest = _observe(client, _rows(HISTORY_DAYS + 1, HISTORY_DAYS + 2)[5:])
        assert rest["update_started"]
        client.app.state.serve.wait_for_update()
        assert client.get("/health").json()["version"] == 3
    store = ForecastStore(folder)
    assert store.load().days_learned == HISTORY_DAYS + 2
    pd.testing.assert_frame_equal(
        store.observed().frame.reset_index(), _frame(0, HISTORY_DAYS + 2), check_dtype=False)


def test_metrics_give_each_versions_forecast_error(folder):
    with _client(folder) as client:
        _observe(client, _rows(HISTORY_DAYS, HISTORY_DAYS + 2), future=_future(HISTORY_DAYS + 2))
        client.app.state.serve.wait_for_update()
        client.get("/forecast")
        text = client.get("/metrics").text
    errors = ForecastStore(folder).errors_by_version()
    assert sorted(errors) == [1, 2]
    for version, figures in errors.items():
        assert f'retain_serve_forecast_mae{{version="{version}"}} {figures["mae"]!r}' in text
        assert f'retain_serve_forecast_days_total{{version="{version}"}} 1.0' in text
    assert "retain_serve_version 3.0" in text
    assert 'retain_serve_updates_total{status="promoted"} 2.0' in text
    assert 'retain_serve_requests_total{route="/forecast",status="200"} 1.0' in text
    assert 'retain_serve_request_seconds_count{route="/observe"} 1.0' in text


def test_a_forecast_store_is_served_by_one_worker(folder):
    from typer.testing import CliRunner

    from retain.cli import app

    with pytest.raises(RetainError, match="served by one worker"):
        CliRunner().invoke(app, ["serve", "--store", str(folder), "--workers", "2"],
                           catch_exceptions=False)


def test_sigkill_loses_no_acknowledged_row_and_the_day_is_learnt_after_restart(folder):
    """A real ``retain serve`` process, killed (SIGKILL) while rows arrive one by one, then
    right after the answer that started the update (whose process may finish on its own or
    not have started): every acknowledged row is kept and the day is learnt."""
    from serve_server import serving

    day, acked = _rows(HISTORY_DAYS, HISTORY_DAYS + 1), []
    with serving(folder, token=TOKEN) as server:
        for row in day[:10]:
            answer = server.http.post("/observe", json={"rows": [row]}, headers=AUTH)
            assert answer.status_code == 200, answer.text
            acked.append(row)
        server.kill()
    with serving(folder, token=TOKEN) as server:
        health = server.http.get("/health").json()
        assert health["observed_until"] == acked[-1]["time"]
        answer = server.http.post("/observe", json={"rows": day}, headers=AUTH).json()
        assert (answer["kept"], answer["skipped"], answer["update_started"]) == (14, 10, True)
        server.kill()  # the update has just started, or not yet
    with serving(folder, token=TOKEN) as server:
        server.wait(lambda: server.http.get("/health").json()["version"] == 2, 60,
                    "the day to be learnt")
    store = ForecastStore(folder)
    assert store.load().days_learned == HISTORY_DAYS + 1
    assert len(store.observed()) == (HISTORY_DAYS + 1) * DAY
