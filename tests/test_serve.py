"""``retain serve`` end to end over HTTP: a real server process on a loopback port learns from
delayed labels, promotes a gated update, turns a bad one away, rolls back, and runs a shadow
trial."""

import httpx
import numpy as np
import pandas as pd
import pytest
from serve_server import AUTH, rows, serving

from retain.store import Store


def _label_all(server, frame, prediction) -> dict:
    labels = [{"id": p["id"], "label": k}
              for p, k in zip(prediction["predictions"], frame["kind"], strict=True)]
    response = server.http.post("/learn", json={"labels": labels}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _outcome(server, count: int = 1):
    def done():
        updates = server.http.get("/versions").json()["updates"]
        finished = [u for u in updates if u["status"] != "running"]
        return finished if len(finished) >= count else None
    return server.wait(done, 90, "the update to finish")


def _every_worker(server, version: int, workers: int = 2) -> None:
    """Wait until ``workers`` distinct worker processes answer with ``version``."""
    def seen():
        with httpx.Client(base_url=server.url, timeout=10) as fresh:  # a new connection
            health = fresh.get("/health").json()
        if health["version"] == version:
            found.add(health["worker"])
        else:
            found.discard(health["worker"])
        return len(found) >= workers
    found: set[int] = set()
    server.wait(seen, 60, f"{workers} workers to serve version {version}", every=0.02)


def test_delayed_labels_update_promote_serve_the_new_version_then_roll_back(serve_store):
    """With two workers: both switch to the promoted version, and back after the rollback."""
    probe = rows(5, 99)
    with serving(serve_store, "--update-every", "100", "--workers", "2") as server:
        _every_worker(server, 1)
        before = server.predict(probe)
        assert before["version"] == 1
        day = rows(120, 1)
        made = server.predict(day)
        assert made["version"] == 1 and len({p["id"] for p in made["predictions"]}) == 120
        answer = _label_all(server, day, made)
        assert answer == {"accepted": 120, "pending_labels": 120, "update_started": True}
        [update] = _outcome(server)
        assert update["status"] == "promoted", update
        assert (update["rows"], update["trigger"]) == (120, "120 labels")
        _every_worker(server, 2)
        history = Store(serve_store).history()
        assert [(v.id, v.status, v.current) for v in history] == [
            (1, "promoted", False), (2, "promoted", True)]
        assert history[1].data_rows == 120
        assert server.http.get("/health").json()["pending_labels"] == 0
        assert server.predict(probe)["version"] == 2
        metrics = server.http.get("/metrics").text
        assert 'retain_serve_prequential_labels_total{version="1"} 120.0' in metrics
        assert 'retain_serve_updates_total{status="promoted"} 1.0' in metrics
        assert 'retain_serve_request_seconds_count{route="/predict"}' in metrics
        prequential = server.http.get("/versions").json()["prequential"]["1"]
        wrong = sum(p["prediction"] != k for p, k in zip(made["predictions"], day["kind"],
                                                          strict=True))
        assert prequential == {"labels": 120, "error": wrong / 120}

        back = server.http.post("/rollback", json={}, headers=AUTH)
        assert back.status_code == 200, back.text
        assert back.json() == {"version": 1, "serving": 1}
        _every_worker(server, 1)
        again = server.predict(probe)
        assert again["version"] == 1
        assert [p["probabilities"] for p in again["predictions"]] == [
            p["probabilities"] for p in before["predictions"]]
        assert Store(serve_store).history()[1].status == "rolled-back"


def test_a_rejected_update_leaves_serving_unchanged_with_its_reason(serve_store):
    probe = rows(5, 99)
    with serving(serve_store, "--update-every", "100") as server:
        before = server.predict(probe)
        wrong = rows(120, 2, invert=True)  # every label flipped
        _label_all(server, wrong, server.predict(wrong))
        [update] = _outcome(server)
        assert update["status"] == "rejected"
        assert "replay memory error rose" in update["reason"]
        after = server.predict(probe)
        assert after["version"] == 1
        assert after["predictions"][0]["probabilities"] == before["predictions"][0][
            "probabilities"]
        assert [v.status for v in Store(serve_store).history()] == ["promoted", "rejected"]
        assert server.http.get("/health").json()["pending_labels"] == 0  # not retried
        metrics = server.http.get("/metrics").text
        assert 'retain_serve_updates_total{status="rejected"} 1.0' in metrics


def test_labelled_rows_and_the_time_rule_trigger_an_update(serve_store):
    with serving(serve_store, "--update-every", "0", "--update-interval", "1") as server:
        day = rows(40, 3)
        response = server.http.post("/learn", headers=AUTH,
                                    json={"rows": day.to_dict("records")})
        assert response.status_code == 200, response.text
        assert response.json()["update_started"] is False  # no count rule
        [update] = _outcome(server)
        assert update["trigger"] == "1 s since the last update"
        assert update["rows"] == 40
        assert update["status"] == "promoted", update["reason"]


def _near_the_boundary(n: int, seed: int) -> pd.DataFrame:
    """Rows close to the class boundary, where two versions of the model can disagree."""
    rng = np.random.default_rng(seed)
    along, across = rng.uniform(-3, 3, n), rng.uniform(-0.4, 0.4, n)
    return pd.DataFrame({"x1": (along + across) / 2, "x2": (across - along) / 2})


def _trial_won_by(store, winner: str, labels: int) -> tuple[pd.DataFrame, list[str], int]:
    """``labels`` rows that the champion (version 1) and the challenger (version 2) disagree on
    at least once, labelled with ``winner``'s predictions: the winner scores 0 errors, the
    other one ``disagree`` errors, so the rule must pick the winner."""
    pool = _near_the_boundary(4000, 11)
    champion = Store(store).predict(pool, version=1)["prediction"].tolist()
    challenger = Store(store).predict(pool, version=2)["prediction"].tolist()
    differ = [i for i, (a, b) in enumerate(zip(champion, challenger, strict=True)) if a != b]
    agree = [i for i in range(len(pool)) if i not in set(differ)]
    assert differ, "the two versions agree everywhere: no trial can tell them apart"
    chosen = (differ[: labels // 2] + agree)[:labels]
    truth = champion if winner == "champion" else challenger
    disagree = sum(champion[i] != challenger[i] for i in chosen)
    return pool.iloc[chosen].reset_index(drop=True), [truth[i] for i in chosen], disagree


@pytest.mark.parametrize("winner", ["champion", "challenger"])
def test_shadow_mode_serves_the_champion_until_the_trial_decides(serve_store, winner):
    """Trial traffic labelled by one version's own predictions: that version has no live error,
    the other one errs on every row where they disagree, so the trial's outcome is forced."""
    with serving(serve_store, "--update-every", "100", "--shadow", "--shadow-labels",
                 "40") as server:
        day = rows(120, 5)
        _label_all(server, day, server.predict(day))
        [update] = _outcome(server)
        assert update["status"] == "shadow" and update["version"] == 2
        # the champion serves throughout (the trial is journalled before the store promotes,
        # tests/test_serve_journal.py); the challenger loads beside it on a later poll
        assert server.predict(rows(3, 6))["version"] == 1
        server.wait(lambda: (h := server.http.get("/health").json())["challenger"] == 2
                    and h["version"] == 1, 60, "the champion to serve beside the challenger")
        assert server.predict(rows(3, 6))["version"] == 1  # the champion still answers
        trial, truth, disagree = _trial_won_by(serve_store, winner, 40)
        made = server.predict(trial)
        labels = [{"id": p["id"], "label": k} for p, k in zip(made["predictions"], truth,
                                                               strict=True)]
        assert server.http.post("/learn", json={"labels": labels}, headers=AUTH).status_code == 200

        def decided():
            updates = server.http.get("/versions").json()["updates"]
            return updates[0] if updates[0]["status"] != "shadow" else None
        settled = server.wait(decided, 60, "the trial to end")
        versions = server.http.get("/versions").json()
        current = [v["id"] for v in versions["versions"] if v["current"]]
        other = f"{disagree / 40:.4f}"
        if winner == "challenger":
            assert settled["status"] == "promoted" and current == [2], settled
            assert settled["reason"] == ("challenger 2 took over (live error over 40 labels: "
                                         f"challenger 0.0000, champion {other})")
            server.wait(lambda: server.predict(rows(2, 8))["version"] == 2, 60, "the swap")
        else:
            assert settled["status"] == "rolled-back" and current == [1], settled
            assert settled["reason"] == ("champion 1 kept (live error over 40 labels: "
                                         f"challenger {other}, champion 0.0000)")
            assert Store(serve_store).history()[1].status == "rolled-back"
        server.wait(lambda: server.http.get("/health").json()["challenger"] is None, 60,
                    "the challenger to be dropped")
