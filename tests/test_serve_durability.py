"""SIGKILL ``retain serve`` while ``/learn`` requests are in flight: every acknowledged label
is there after a restart, the prequential figures with it, and the store is intact."""

import sqlite3
import threading

import httpx
from serve_server import AUTH, rows, serving

from retain.serve.journal import JOURNAL_FILE, PREDICTIONS_FILE
from retain.store import Store

ROUNDS = 1
PER_ROUND = 200
BATCH = 2


def _learn_until_killed(url: str, batches: list[list[dict]], acked: list[str],
                        lock: threading.Lock) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for labels in batches:
            try:
                response = http.post("/learn", json={"labels": labels}, headers=AUTH)
            except httpx.TransportError:
                return  # the server is gone
            assert response.status_code == 200, response.text
            with lock:
                acked.extend(label["id"] for label in labels)


def _integrity(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_sigkill_during_learn_loses_no_acknowledged_label(serve_store):
    day = rows(2 * PER_ROUND, 11)
    acked: list[str] = []
    labels: dict[str, str] = {}
    for round_ in range(ROUNDS):
        with serving(serve_store, "--update-every", "0") as server:
            if round_:  # the restart found everything acknowledged before the kill
                again = server.http.post("/learn", headers=AUTH, json={"labels": [
                    {"id": i, "label": labels[i]} for i in acked]})
                assert again.status_code == 409, again.text
                assert server.http.get("/health").json()["pending_labels"] >= len(acked)
            part = day.iloc[round_ * PER_ROUND:(round_ + 1) * PER_ROUND]
            made = server.predict(part)["predictions"]
            todo = [{"id": p["id"], "label": k} for p, k in zip(made, part["kind"], strict=True)]
            labels.update({t["id"]: t["label"] for t in todo})
            batches = [todo[i:i + BATCH] for i in range(0, len(todo), BATCH)]
            lock, before = threading.Lock(), len(acked)
            enough = before + 20
            threads = [threading.Thread(target=_learn_until_killed,
                                        args=(server.url, batches[k::4], acked, lock))
                       for k in range(4)]
            for t in threads:
                t.start()
            server.wait(lambda n=enough: len(acked) >= n, 30, "some labels to be acknowledged",
                        every=0.005)
            server.kill()  # SIGKILL with requests in flight
            for t in threads:
                t.join(timeout=30)
            assert len(acked) < before + len(todo), "the kill came after every request"
    with serving(serve_store, "--update-every", "0") as server:
        health = server.http.get("/health").json()
        versions = server.http.get("/versions").json()
        again = server.http.post("/learn", headers=AUTH, json={"labels": [
            {"id": i, "label": labels[i]} for i in acked]})
        assert again.status_code == 409
        done = versions["prequential"]["1"]["labels"]
        assert done == health["pending_labels"] >= len(acked)
        metrics = server.http.get("/metrics").text
        assert f'retain_serve_prequential_labels_total{{version="1"}} {float(done)}' in metrics
        # an unacknowledged label is either in (its answer was lost) or can be sent again
        rest = [i for i in labels if i not in set(acked)][:5]
        for i in rest:
            retry = server.http.post("/learn", headers=AUTH,
                                     json={"labels": [{"id": i, "label": labels[i]}]})
            assert retry.status_code in (200, 409), retry.text
    assert _integrity(serve_store / JOURNAL_FILE) == "ok"
    assert _integrity(serve_store / PREDICTIONS_FILE) == "ok"
    assert _integrity(serve_store / "registry.sqlite") == "ok"
    assert [v.status for v in Store(serve_store).history()] == ["promoted"]
    Store(serve_store).load()  # every file's size and hash verified
