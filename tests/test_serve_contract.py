"""The OpenAPI document of ``retain serve`` is the store's real contract: checked by reading it,
and by a bounded schemathesis run against a real server on loopback (the ``[dev]`` extra)."""

import shutil

import pytest
from serve_server import AUTH, serving

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402  (schemathesis brings it)
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

CHECKS = [schemathesis.checks.not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_schema_conformance,
          openapi_checks.negative_data_rejection]
#: an invalid request may also be refused as too large (413: rows over --max-rows)
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
EXAMPLES = 50  # per operation and mode: ~350 requests in about 3 s


@pytest.fixture(scope="module")
def server(serve_template, tmp_path_factory):
    path = tmp_path_factory.mktemp("serve-contract") / "store"
    shutil.copytree(serve_template, path)
    with serving(path, "--update-every", "0", "--max-rows", "50",
                 "--max-body-bytes", "20000") as running:
        yield running


@pytest.fixture(scope="module")
def document(server) -> dict:
    return server.http.get("/openapi.json").json()


def _body(document: dict, path: str) -> dict:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    ref = body["schema"]["$ref"].rsplit("/", 1)[1]
    return document["components"]["schemas"][ref]


def test_the_requests_are_the_stores_columns_and_classes(document):
    row = _body(document, "/predict")["properties"]["rows"]["items"]
    assert row["required"] == ["x1", "x2"] and row["additionalProperties"] is False
    assert row["properties"]["x1"]["type"] == "number"
    learn_row = _body(document, "/learn")["properties"]["rows"]["items"]
    assert learn_row["required"] == ["x1", "x2", "kind"]
    assert learn_row["properties"]["kind"] == {"enum": ["high", "low"]}
    answer = document["components"]["schemas"]["PredictResponse"]
    one = answer["properties"]["predictions"]["items"]["properties"]
    assert one["prediction"] == {"enum": ["high", "low"]}


def test_every_status_is_documented_in_one_error_shape(document):
    paths = document["paths"]
    documented = {(m, p): set(op["responses"]) for p, ops in paths.items() for m, op in ops.items()}
    assert {"409", "413", "422"} <= documented["post", "/predict"]
    assert {"401", "403", "409"} <= documented["post", "/rollback"]
    assert {"401", "403", "409"} <= documented["post", "/update"]
    assert {"404", "409", "410"} <= documented["post", "/learn"]
    for ops in paths.values():
        for op in ops.values():
            for status, response in op["responses"].items():
                if status.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert paths["/update"]["post"]["security"] == [{"bearer": []}]


def test_a_refusal_is_the_documented_error(server):
    refused = server.http.post("/predict", json={"rows": [{"x1": "warm", "x2": 1.0}]})
    assert refused.status_code == 422
    assert refused.json() == {"detail": "row 0, column 'x1': 'warm' is not a number"}


def test_an_undocumented_status_fails_the_run(server, document):
    """The check above can fail: drop /update's 409 from the document, and a request that
    gets it (no label waits yet: this runs before the generated
    requests) is a contract violation."""
    lying = {**document, "paths": {**document["paths"], "/update": {"post": {
        **document["paths"]["/update"]["post"],
        "responses": {k: v for k, v in document["paths"]["/update"]["post"]["responses"].items()
                      if k != "409"}}}}}
    operation = schemathesis.openapi.from_dict(lying)["/update"]["POST"]
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        operation.Case().call_and_validate(base_url=server.url, headers=AUTH,
                                           checks=[openapi_checks.status_code_conformance])


def generated(url: str, document: dict, examples: int = EXAMPLES) -> dict[str, set[int]]:
    """Send valid and invalid requests generated from ``document`` to the server at ``url``,
    each checked (:data:`CHECKS`: raises on the first failure); the statuses per operation."""
    config = schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}})
    schema = schemathesis.openapi.from_dict(document, config=config)
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [schemathesis.GenerationMode.POSITIVE]
        if operation.body:  # a route without a body or parameters has no invalid request
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:
            @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                answer = case.call_and_validate(base_url=url, headers=AUTH, checks=CHECKS)
                statuses.setdefault(case.operation.label, set()).add(answer.status_code)
            run()
    return statuses


def test_generated_requests_meet_the_contract(server, document):
    """Valid and invalid requests generated from the document: no 5xx, every status and body
    as documented, every invalid request refused; the server stays up."""
    statuses = generated(server.url, document)
    # the generated rows fit the store, so requests reach the model, not only the checks
    assert 200 in statuses["POST /predict"] and 200 in statuses["POST /learn"], statuses
    assert 422 in statuses["POST /predict"], statuses
    assert server.http.get("/health").status_code == 200


def test_a_store_of_signals_meets_its_contract(tmp_path):
    """The same over a store of windows of signals (windows of 256 samples in the document)."""
    from test_store_signals import SETTINGS, recordings

    from retain.store.store import Store

    store = Store(tmp_path / "store")
    store.init(recordings(tmp_path / "first.npz", ["normal", "inner"], per=2), **SETTINGS)
    with serving(store.path, "--update-every", "0", "--max-rows", "3") as running:
        document = running.http.get("/openapi.json").json()
        statuses = generated(running.url, document, examples=20)
        assert 200 in statuses["POST /predict"] and 422 in statuses["POST /predict"], statuses
        assert running.http.get("/health").status_code == 200
