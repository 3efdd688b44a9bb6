"""A regression store served in-process (FastAPI's TestClient, no network): values come back in
the target's units and the prequential error is the squared error of standardised targets,
the scale the store's gate uses."""

import warnings

import numpy as np
import pandas as pd
import pytest
from serve_server import AUTH, TOKEN

from retain.checkpoint import open_checkpoint
from retain.serve import create_app
from retain.store import Store

with warnings.catch_warnings():  # starlette would like httpx2 for its TestClient one day
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _demand(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    temp = rng.normal(20, 5, n)
    return pd.DataFrame({"temperature": temp, "demand": 30 + 0.8 * temp + rng.normal(0, 1, n)})


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve-regression") / "store"
    Store(path).init(_demand(200, 0), label="demand", model_args={"hidden": (8,)},
                     holdout="random", lr=0.01, epochs=5)
    with TestClient(create_app(path, token=TOKEN, update_every=None)) as http:
        yield http, Store(path)


def test_values_in_units_and_the_error_on_the_gates_scale(client):
    http, store = client
    day = _demand(3, 1)
    answer = http.post("/predict", json={"rows": day[["temperature"]].to_dict("records")})
    assert answer.status_code == 200
    values = [p["prediction"] for p in answer.json()["predictions"]]
    expected = store.predict(day)["prediction"].to_numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert "probabilities" not in answer.json()["predictions"][0]
    labels = [{"id": p["id"], "label": y} for p, y in zip(answer.json()["predictions"],
                                                          day["demand"], strict=True)]
    assert http.post("/learn", json={"labels": labels}, headers=AUTH).status_code == 200
    # the target's spread is in the normalisation kept with every version
    std = open_checkpoint(store.path / "versions" / "000001").normalization["target"]["std"][0]
    error = np.mean(((np.array(values) - day["demand"].to_numpy()) / std) ** 2)
    got = http.get("/versions").json()["prequential"]["1"]
    assert got["labels"] == 3 and got["error"] == pytest.approx(error, rel=1e-6)


@pytest.mark.parametrize("label, message", [
    ("warm", "'warm' is not a number"), (True, "True is not a number"),
    (None, "None is not a number"),
])
def test_a_label_that_is_not_a_number_is_refused(client, label, message):
    http, _ = client
    pid = http.post("/predict", json={"rows": [{"temperature": 21.0}]}).json()[
        "predictions"][0]["id"]
    response = http.post("/learn", json={"labels": [{"id": pid, "label": label}]}, headers=AUTH)
    assert response.status_code == 422 and message in response.json()["detail"]
