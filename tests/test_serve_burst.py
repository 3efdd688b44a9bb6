"""``retain serve`` after a rejected update, under a burst of labels: it keeps updating, and
labels that arrive while an update runs start the next one when it ends (the count rule is
checked on every poll too), without waiting for another label."""


import pytest
from serve_server import AUTH, make_store, rows, serving, update_idle

from retain.serve.journal import Journal
from retain.serve.policy import UpdatePolicy
from retain.serve.settings import ServeSettings
from retain.store import Store


@pytest.fixture()
def serve_store(tmp_path):
    return make_store(tmp_path / "store")


def _learn(server, frame):
    response = server.http.post("/learn", headers=AUTH, json={"rows": frame.to_dict("records")})
    assert response.status_code == 200, response.text
    return response.json()


def _finished(server, count):
    def done():
        updates = server.http.get("/versions").json()["updates"]
        finished = [u for u in updates if u["status"] != "running"]
        return finished if len(finished) >= count else None
    return server.wait(done, 90, f"{count} update(s) to finish")


def test_after_a_rejected_update_a_burst_of_labels_keeps_updating(serve_store):
    with serving(serve_store, "--update-every", "24", "--retry-after", "60") as server:
        assert _learn(server, rows(30, 2, invert=True))["update_started"]  # flipped labels
        [rejected] = _finished(server, 1)
        assert rejected["status"] == "rejected"
        for i in range(6):  # the burst: 180 honest labels in quick requests
            _learn(server, rows(30, 10 + i))

        def settled():
            health = server.http.get("/health").json()
            return (update_idle(serve_store) and not health["update_running"]
                    and health["pending_labels"] < 24 and health)

        server.wait(settled, timeout=120, what="the burst's labels to be learned")
        statuses = [u["status"] for u in server.http.get("/versions").json()["updates"]]
        assert statuses[0] == "rejected" and "promoted" in statuses[1:], statuses
        history = [v.status for v in Store(serve_store).history()]
        assert history[:2] == ["promoted", "rejected"] and "promoted" in history[2:]


class _Started(UpdatePolicy):
    """The policy with the update process replaced by a flag (no process, no store)."""

    running = False
    starts: list

    def _start(self, trigger: str) -> bool:
        if self.running:
            return False
        self.running = True
        self.starts.append(trigger)
        return True

    def reap(self) -> None:
        pass


def test_labels_that_came_while_an_update_ran_start_the_next_when_it_ends(tmp_path):
    settings = ServeSettings(store=str(tmp_path), update_every=24, retry_after=60)
    journal = Journal(tmp_path)
    policy = _Started(settings, journal)
    policy.starts = []
    records = [(None, 1, [0.1, 0.2], "high", 0.0, None)] * 30
    assert policy.after_labels(journal.add_labels(records))  # the first update starts
    for _ in range(5):  # the burst: each /learn finds an update running
        assert not policy.after_labels(journal.add_labels(records))
    assert len(policy.starts) == 1
    policy.running = False  # it ended (rejected: it took its labels; here none were taken)
    assert policy.tick(), "the poll did not start the update the burst's labels wait for"
    assert policy.starts[-1] == "180 labels"
    # a failed update (an error) backs off for retry_after, a rejected one does not
    update = journal.start_update("test", 1, 1, 1)
    journal.finish_update(update, "failed", None, "the store is busy", take_labels=False)
    policy.running = False
    assert not policy.tick()
    journal.finish_update(journal.start_update("t", 1, 1, 1), "rejected", 2, "x",
                          take_labels=False)
    assert policy.tick()
    journal.close()

