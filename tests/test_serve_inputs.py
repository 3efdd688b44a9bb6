"""Every bad request to ``retain serve`` gets a 4xx naming the row, column or id at fault, and
nothing is written for it; writes need the bearer token. One server for the whole module."""

import json
import shutil
import time
import warnings

import httpx
import pytest
from serve_server import AUTH, TOKEN, rows, serving

from retain.serve import create_app

with warnings.catch_warnings():  # starlette would like httpx2 for its TestClient one day
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TTL = 3.0


@pytest.fixture(scope="module")
def server(serve_template, tmp_path_factory):
    path = tmp_path_factory.mktemp("serve-inputs") / "store"
    shutil.copytree(serve_template, path)
    with serving(path, "--update-every", "0", "--max-rows", "50", "--max-body-bytes",
                 "20000", "--pending-ttl", "3600") as running:
        yield running


def _post(server, route, body, auth=True, **kw):
    return server.http.post(route, json=body, headers=AUTH if auth else {}, **kw)


def _pending(server) -> int:
    return server.http.get("/health").json()["pending_labels"]


GOOD = {"x1": 0.5, "x2": -0.2}


@pytest.mark.parametrize("row, status, message", [
    ({"x1": 0.5}, 422, "row 1 lacks column(s) ['x2']"),
    ({**GOOD, "price": 3}, 422, "row 1 has unknown column(s) ['price']"),
    ({"x1": "warm", "x2": 1}, 422, "row 1, column 'x1': 'warm' is not a number"),
    ({"x1": True, "x2": 1}, 422, "row 1, column 'x1': True is not a number"),
    ({"x1": None, "x2": 1}, 422, "row 1, column 'x1': None is not a number"),
    ({"x1": [1], "x2": 1}, 422, "row 1, column 'x1': [1] is not a number"),
    ({"x1": 1e39, "x2": 1}, 422, "row 1, column 'x1': 1e+39 is too large"),
])
def test_bad_rows_are_refused_by_row_and_column(server, row, status, message):
    good = f"ok-{message}"
    response = _post(server, "/predict", {"rows": [GOOD, row], "ids": [good, "bad-1"]})
    assert response.status_code == status and message in response.json()["detail"]
    # nothing was logged: the good row's id is still free
    assert _post(server, "/predict", {"rows": [GOOD], "ids": [good]}).status_code == 200


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_inf_are_refused(server, literal):
    body = '{"rows": [{"x1": LITERAL, "x2": 1}]}'.replace("LITERAL", literal)
    response = server.http.post("/predict", content=body,
                                headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "row 0, column 'x1'" in response.json()["detail"]
    assert "not a finite number" in response.json()["detail"]


@pytest.mark.parametrize("body, status, message", [
    ({"rows": []}, 422, "rows: List should have at least 1 item"),
    ({"rows": [GOOD], "ids": ["a", "b"]}, 422, "2 ids for 1 rows"),
    ({"rows": [GOOD, GOOD], "ids": ["same", "same"]}, 422, "prediction id 'same' appears twice"),
    ({"rows": [GOOD], "ids": [""]}, 422, "must have 1 to 200 characters"),
    ({"rows": [GOOD], "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ({"rows": "x1=1"}, 422, "rows: Input should be a valid list"),
    ({"rows": [GOOD] * 51}, 413, "51 rows is more than this server takes in one request (50)"),
])
def test_bad_predict_requests(server, body, status, message):
    response = _post(server, "/predict", body)
    assert response.status_code == status and message in response.json()["detail"], \
        response.text


def test_malformed_json_and_oversized_bodies(server):
    response = server.http.post("/predict", content=b'{"rows": [',
                                headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.json()["detail"]
    big = json.dumps({"rows": [{"x1": 0.123456789, "x2": 0.5}] * 40, "pad": "x" * 30000})
    response = server.http.post("/predict", content=big,
                                headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than this server takes (20000 bytes)" \
        in response.text

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        yield big[:15000].encode()
        yield big[15000:].encode()
    response = server.http.post("/predict", content=chunks(),
                                headers={"content-type": "application/json"})
    assert response.status_code == 413 and "(20000 bytes)" in response.json()["detail"]


def test_a_client_id_is_used_once(server):
    assert _post(server, "/predict", {"rows": [GOOD], "ids": ["once"]}).status_code == 200
    again = _post(server, "/predict", {"rows": [GOOD, GOOD], "ids": ["fresh", "once"]})
    assert again.status_code == 409 and "['once'] are already used" in again.json()["detail"]
    # all or nothing: 'fresh' was not logged by the refused request
    assert _post(server, "/predict", {"rows": [GOOD], "ids": ["fresh"]}).status_code == 200


def _predicted(server, n: int, prefix: str) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(n)]
    assert _post(server, "/predict", {"rows": [GOOD] * n, "ids": ids}).status_code == 200
    return ids


@pytest.mark.parametrize("label, message", [
    ("medium", "label of prediction 'L-1': 'medium' is not one of the classes ['high', 'low']"),
    (1, "label of prediction 'L-1': 1 is not one of the classes"),
    (None, "label of prediction 'L-1': None is not one of the classes"),
])
def test_labels_of_the_wrong_kind_are_refused_and_nothing_is_written(server, label, message):
    ids = _predicted(server, 2, f"L{label}")
    ids[1] = "L-1"
    _predicted(server, 1, "L") if label == "medium" else None
    before = _pending(server)
    response = _post(server, "/learn", {"labels": [{"id": ids[0], "label": "high"},
                                                   {"id": "L-1", "label": label}]})
    assert response.status_code == 422 and message in response.json()["detail"]
    assert _pending(server) == before
    ok = _post(server, "/learn", {"labels": [{"id": ids[0], "label": "high"}]})
    assert ok.status_code == 200 and ok.json()["pending_labels"] == before + 1


def test_unknown_and_duplicate_ids(server):
    ids = _predicted(server, 3, "D")
    before = _pending(server)
    unknown = _post(server, "/learn", {"labels": [{"id": ids[0], "label": "low"},
                                                  {"id": "nope", "label": "low"}]})
    assert unknown.status_code == 404 and "['nope']" in unknown.json()["detail"]
    twice = _post(server, "/learn", {"labels": [{"id": ids[1], "label": "low"},
                                                {"id": ids[1], "label": "high"}]})
    assert twice.status_code == 422 and f"{ids[1]!r} appears twice" in twice.json()["detail"]
    assert _pending(server) == before
    assert _post(server, "/learn", {"labels": [{"id": ids[0], "label": "low"}]}).status_code \
        == 200
    again = _post(server, "/learn", {"labels": [{"id": ids[2], "label": "low"},
                                                {"id": ids[0], "label": "high"}]})
    assert again.status_code == 409 and f"[{ids[0]!r}] already have a label" in \
        again.json()["detail"]
    assert _pending(server) == before + 1


class _Clock:
    """The ``time`` module with a ``time()`` that moves only when the test says so."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


def test_a_label_is_taken_up_to_the_ttl_after_its_prediction_and_refused_after(
        serve_store, monkeypatch):
    """In process, with the clock of the prediction log and of /learn injected: no request
    has to beat a real-time expiry."""
    from retain.serve import journal
    from retain.serve.routes import learn

    clock = _Clock(1_000_000.0)
    monkeypatch.setattr(journal, "time", clock)
    monkeypatch.setattr(learn, "time", clock)
    with TestClient(create_app(serve_store, token=TOKEN, update_every=None,
                               pending_ttl=TTL)) as http:
        ids = ["T-0", "T-1", "T-2"]
        assert http.post("/predict", json={"rows": [GOOD] * 3, "ids": ids}).status_code == 200
        clock.now += TTL  # exactly the TTL: still taken
        on_time = http.post("/learn", json={"labels": [{"id": "T-0", "label": "low"}]},
                            headers=AUTH)
        assert on_time.status_code == 200, on_time.text
        clock.now += 0.001
        late = http.post("/learn", json={"labels": [{"id": "T-1", "label": "low"},
                                                    {"id": "T-2", "label": "high"}]},
                         headers=AUTH)
        assert late.status_code == 410
        assert late.json()["detail"] == (f"prediction id(s) ['T-1', 'T-2'] expired: labels are "
                                         f"taken up to {TTL:g} s after the prediction")
        assert http.get("/health").json()["pending_labels"] == 1  # nothing written for them


@pytest.mark.parametrize("body, message", [
    ({}, "nothing to learn"),
    ({"rows": [GOOD]}, "row 0 lacks column(s) ['kind']"),
    ({"rows": [{**GOOD, "kind": "high"}, {**GOOD, "kind": "warm"}]},
     "row 1, label column 'kind': 'warm' is not one of the classes"),
    ({"labels": [{"id": "x"}]}, "labels.0.label: Field required"),
    ({"labels": [{"id": "x", "label": "high", "extra": 1}]}, "Extra inputs are not permitted"),
])
def test_bad_learn_requests(server, body, message):
    before = _pending(server)
    response = _post(server, "/learn", body)
    assert response.status_code == 422 and message in response.json()["detail"], response.text
    assert _pending(server) == before


def test_writes_need_the_token(server):
    body = {"rows": [{**GOOD, "kind": "high"}]}
    for route, payload in (("/learn", body), ("/rollback", {}), ("/update", None)):
        missing = server.http.post(route, json=payload)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = server.http.post(route, json=payload,
                                 headers={"Authorization": f"Bearer {TOKEN[:-1]}x"})
        assert wrong.status_code == 403 and wrong.json()["detail"] == "the bearer token is wrong"
        basic = server.http.post(route, json=payload, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
    assert server.http.get("/versions").json()["versions"][0]["current"] is True


def test_a_server_without_token_refuses_every_write(serve_store):
    with serving(serve_store, token=None) as server:
        response = server.http.post("/learn", headers=AUTH, json={"rows": [{**GOOD, "kind": 1}]})
        assert response.status_code == 403 and "has no token" in response.json()["detail"]
        assert server.predict(rows(2, 1))["version"] == 1  # predictions need none


def test_the_openapi_page_lists_every_route(server):
    paths = set(server.http.get("/openapi.json").json()["paths"])
    assert {"/predict", "/learn", "/versions", "/rollback", "/update", "/health",
            "/metrics"} <= paths
    assert server.http.get("/docs").status_code == 200
    with pytest.raises(httpx.TransportError):  # bound to 127.0.0.1 only
        httpx.get(f"http://127.0.0.2:{server.port}/health", timeout=1)


def test_manual_update_needs_enough_labels_and_runs_last(server):
    """Last in the module: the update takes the labels the tests above left."""
    waiting = _pending(server)
    if waiting < 20:
        refused = _post(server, "/update", None)
        assert refused.status_code == 409 and f"{waiting} labels wait" in refused.json()["detail"]
        rows_ = rows(30, 4).to_dict("records")
        assert _post(server, "/learn", {"rows": rows_}).status_code == 200
    started = _post(server, "/update", None)
    assert started.status_code == 202 and started.json()["started"] is True

    def finished():
        updates = server.http.get("/versions").json()["updates"]
        return updates if updates and updates[-1]["status"] != "running" else None
    [update] = server.wait(finished, 90, "the update")
    assert update["trigger"] == "requested" and update["status"] == "promoted", update
    assert _pending(server) == 0
