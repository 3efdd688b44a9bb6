"""``retain serve`` over a store that learned windows of signals: ``POST /predict`` takes
windows (and their recordings, for a vote per recording) and answers as ``Store.predict``
does; their labels, sent by prediction id, are learned by the server's update."""

import json
import warnings

import numpy as np
import pytest
from test_store_signals import SETTINGS, recordings

from retain.serve import create_app
from retain.serve.updater import run_update
from retain.store.store import Store

with warnings.catch_warnings():  # starlette would like httpx2 for its TestClient one day
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "a-long-random-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-signals")
    store = Store(folder / "store")
    store.init(recordings(folder / "first.npz", ["normal", "inner"]), **SETTINGS)
    return store


@pytest.fixture(scope="module")
def client(store):
    app = create_app(store.path, token=TOKEN, update_every=None, min_update_rows=10,
                     max_body_bytes=10_000_000)
    with TestClient(app) as client:
        yield client


def _windows(path):
    with np.load(path) as f:
        return f["x"], f["label"], f["recording"]


def test_windows_are_predicted_as_the_store_predicts_them(store, client, tmp_path):
    test = recordings(tmp_path / "test.npz", ["normal", "inner"], per=1, seed=9)
    x, _, recording = _windows(test)
    answer = client.post("/predict", json={"signals": x.tolist(),
                                           "recordings": recording.tolist()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = store.predict(test)
    assert [p["prediction"] for p in body["predictions"]] == expected["prediction"].tolist()
    assert body["recordings"] == store.predict(test, per="recording").to_dict("records")
    flat = client.post("/predict", json={"signals": x[:2, 0].tolist()})  # one channel: [time]
    assert [p["prediction"] for p in flat.json()["predictions"]] == \
        expected["prediction"].tolist()[:2]


@pytest.mark.parametrize("body, message", [
    ({"rows": [{"channel0": 1.0}]}, "this store learns windows of signals: send 'signals'"),
    ({"signals": [[0.0] * 100]}, "windows of shape [1, 100]; this store learns windows of "
                                 "[channels, time] = [1, 256] (or [time])"),
    ({"signals": [[0.0] * 256, [0.0] * 255]}, "windows of different shapes"),
    ({"signals": [[0.0] * 256], "recordings": ["a", "b"]}, "give one per window (1)"),
    ({"signals": [[1e39] * 256]}, "window 0, channel 0, sample 0: 1e+39 is not a finite"),
    ({"signals": [[True] * 256]}, "signals.0"),
])
def test_bad_windows_are_refused_by_name(client, body, message):
    answer = client.post("/predict", json=body)
    assert answer.status_code == 422 and message in answer.json()["detail"], answer.text


def test_a_nan_sample_is_refused(client):
    raw = json.dumps({"signals": [[0.0] * 255 + [float("nan")]]})  # Python writes NaN
    answer = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert "window 0, channel 0, sample 255" in answer.json()["detail"]


def test_the_document_shows_the_window_shape(client):
    doc = client.get("/openapi.json").json()
    request = doc["components"]["schemas"]["PredictRequest"]
    assert request["required"] == ["signals"]
    samples = request["properties"]["signals"]["items"]["anyOf"][1]
    assert samples["minItems"] == samples["maxItems"] == 256
    assert "rows" not in doc["components"]["schemas"]["LearnRequest"]["properties"]


def test_labels_of_predicted_windows_are_learned_by_an_update(store, client, tmp_path):
    x, label, _ = _windows(recordings(tmp_path / "day.npz", ["normal", "inner"], per=2,
                                      seed=3))
    ids = [f"w{i}" for i in range(len(x))]
    assert client.post("/predict", json={"signals": x.tolist(), "ids": ids}).status_code == 200
    labels = [{"id": i, "label": str(y)} for i, y in zip(ids, label, strict=True)]
    learned = client.post("/learn", json={"labels": labels}, headers=AUTH)
    assert learned.status_code == 200 and learned.json()["accepted"] == len(x), learned.text
    refused = client.post("/learn", json={"rows": [{"channel0": 1.0, "label": "normal"}]},
                          headers=AUTH)
    assert refused.status_code == 422 and "by their prediction ids" in refused.json()["detail"]
    before = len(store.history())
    outcome = run_update(client.app.state.serve.settings, "test")
    assert outcome is not None and outcome["status"] in ("promoted", "rejected"), outcome
    assert len(store.history()) == before + 1
    assert store.history()[-1].data_rows == len(x)  # the windows the predictions saw, all of them
