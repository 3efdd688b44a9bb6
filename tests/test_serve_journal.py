"""The serve journal and the update process in-process (no server): all-or-nothing writes,
prequential sums that survive reopening, and an update process killed half way settled by
the next one without losing or double-learning labels."""

import pytest
from serve_server import rows

from retain.serve.journal import Journal, JournalError
from retain.serve.settings import ServeSettings
from retain.serve.updater import _current, _recover, _schema, labelled_frame, run_update
from retain.store import Store


def _label_rows(journal: Journal, frame, version: int = 1) -> None:
    journal.add_labels([(None, version, [r.x1, r.x2], r.kind, float(i % 2), None)
                        for i, r in enumerate(frame.itertuples())])


def test_writes_are_all_or_nothing_and_figures_survive_reopening(tmp_path):
    journal = Journal(tmp_path)
    journal.log_predictions([("a", 1, [0.0, 1.0], "low", None)])
    with pytest.raises(JournalError, match=r"\['a'\] are already used"):
        journal.log_predictions([("b", 1, [0.0, 1.0], "low", None),
                                 ("a", 1, [0.0, 1.0], "low", None)])
    assert set(journal.pending(["a", "b"])) == {"a"}
    journal.add_labels([("a", 1, [0.0, 1.0], "high", 1.0, None)])
    with pytest.raises(JournalError):
        journal.add_labels([(None, 1, [0.0, 0.0], "low", 0.0, None),
                            ("a", 1, [0.0, 1.0], "high", 1.0, None)])
    assert journal.unused() == 1
    journal.add_labels([(None, 2, [0.0, 0.0], "low", 0.0, None),
                        (None, 2, [0.0, 0.0], "low", 1.0, None)])
    journal.close()
    again = Journal(tmp_path)
    assert again.prequential() == {1: {"labels": 1, "error": 1.0},
                                   2: {"labels": 2, "error": 0.5}}
    assert again.labelled(["a", "b"]) == {"a"} and again.unused() == 3


def test_an_update_learns_the_waiting_labels_once(serve_store):
    journal = Journal(serve_store)
    _label_rows(journal, rows(40, 3))
    settings = ServeSettings(store=str(serve_store))
    outcome = run_update(settings, "test")
    assert outcome["status"] == "promoted" and outcome["version"] == 2
    assert journal.unused() == 0
    assert run_update(settings, "test") is None  # nothing left to learn
    [update] = journal.updates()
    assert (update["rows"], update["status"], update["trigger"]) == (40, "promoted", "test")


def test_a_killed_update_is_settled_by_the_next_one(serve_store):
    journal = Journal(serve_store)
    store, schema = Store(serve_store), _schema(Store(serve_store))
    _label_rows(journal, rows(40, 3))
    # killed after the store recorded version 2, before the journal heard of it
    taken = journal.unused_rows()
    first = journal.start_update("count", taken[0][0], taken[-1][0], len(taken))
    assert store.update(labelled_frame(taken, schema)).status == "promoted"
    # killed before the store recorded anything
    _label_rows(journal, rows(30, 4))
    rest = [r for r in journal.unused_rows() if r[0] > taken[-1][0]]
    second = journal.start_update("count", rest[0][0], rest[-1][0], len(rest))
    _recover(journal, store, schema)
    updates = {u["id"]: u for u in journal.updates()}
    assert (updates[first]["status"], updates[first]["version"]) == ("promoted", 2)
    assert updates[second]["status"] == "interrupted"
    assert [r[0] for r in journal.unused_rows()] == [r[0] for r in rest]  # not learned twice
    assert journal.interrupted() == []


def test_a_rise_of_the_prequential_error_raises_a_drift_alarm(tmp_path):
    from retain.serve.policy import UpdatePolicy

    journal = Journal(tmp_path)
    policy = UpdatePolicy(ServeSettings(store=str(tmp_path), drift=True, update_every=None),
                          journal)
    started: list[str] = []
    policy._start = lambda trigger: started.append(trigger) or True
    rng = __import__("numpy").random.default_rng(0)
    steady = [(None, 1, [0.0, 0.0], "low", float(e), None) for e in rng.random(300) < 0.05]
    journal.add_labels(steady)
    assert policy.tick() is False and started == []  # a steady 5% error: no alarm
    worse = [(None, 1, [0.0, 0.0], "low", float(e), None) for e in rng.random(100) < 0.6]
    journal.add_labels(worse)
    assert policy.tick() is True and started == ["drift alarm (adwin)"]


def test_a_failed_update_holds_the_policy_back_for_retry_after(tmp_path):
    from retain.serve.policy import UpdatePolicy

    journal = Journal(tmp_path)
    policy = UpdatePolicy(ServeSettings(store=str(tmp_path), update_every=20,
                                        retry_after=0.5), journal)
    started: list[str] = []
    policy._start = lambda trigger: started.append(trigger) or True
    journal.add_labels([(None, 1, [0.0, 0.0], "low", 0.0, None)] * 30)
    assert policy.after_labels(30) is True  # no update yet: no back-off
    update = journal.start_update("30 labels", 1, 30, 30)
    journal.finish_update(update, "failed", None, "disk full", take_labels=False)
    assert policy.backing_off()
    assert policy.after_labels(31) is False and len(started) == 1  # held back
    assert policy.start("requested", asked=True) is True  # POST /update is not
    __import__("time").sleep(0.6)
    assert policy.after_labels(32) is True and len(started) == 3
    rejected = journal.start_update("32 labels", 1, 30, 30)
    journal.finish_update(rejected, "rejected", 2, "worse on the holdout", take_labels=True)
    assert not policy.backing_off()  # a rejection is an outcome, not a failure


def test_predictions_of_one_loop_turn_share_a_commit_and_a_bad_id_fails_alone(tmp_path):
    import asyncio

    from retain.serve.journal import GroupCommit

    journal = Journal(tmp_path)
    journal.log_predictions([("used", 1, [0.0, 0.0], "low", None)])
    group, writes = GroupCommit(journal), []
    write = journal.log_predictions
    journal.log_predictions = lambda rows: writes.append(len(rows)) or write(rows)

    async def turn(names):
        return await asyncio.gather(*(group.log([(n, 1, [0.0, 1.0], "low", None)])
                                      for n in names), return_exceptions=True)
    assert asyncio.run(turn(["a", "b", "c"])) == [None, None, None]
    assert writes == [3]  # three requests, one transaction
    outcome = asyncio.run(turn(["d", "used", "e"]))
    assert outcome[0] is None and outcome[2] is None
    assert isinstance(outcome[1], JournalError) and "['used']" in str(outcome[1])
    assert writes == [3, 3, 1, 1, 1]  # the batch failed whole, then one by one
    assert set(journal.pending(["a", "b", "c", "d", "e"])) == {"a", "b", "c", "d", "e"}


def test_in_shadow_mode_the_new_version_never_serves_before_its_trial(serve_store, monkeypatch):
    """A worker polling while the store promotes (after ``Store.update`` made version 2
    current, before the update process returns) must still be told to serve the champion."""
    from retain.serve.service import ServeState

    journal = Journal(serve_store)
    _label_rows(journal, rows(40, 3))
    settings = ServeSettings(store=str(serve_store), shadow=True)
    worker = ServeState(settings)
    seen = []
    real = Store.update

    def update_then_poll(self, *args, **kwargs):
        version = real(self, *args, **kwargs)
        seen.append((_current(self), worker.serving_version()))
        return version

    monkeypatch.setattr(Store, "update", update_then_poll)
    outcome = run_update(settings, "test")
    assert outcome["status"] == "shadow" and outcome["version"] == 2
    assert seen == [(2, 1)]  # the store's current is 2; the worker serves the champion 1
    assert journal.get_state("shadow")["challenger"] == 2


def test_a_killed_shadow_update_is_put_on_trial_by_the_next_one(serve_store):
    journal = Journal(serve_store)
    store, schema = Store(serve_store), _schema(Store(serve_store))
    settings = ServeSettings(store=str(serve_store), shadow=True)
    _label_rows(journal, rows(40, 3))
    taken = journal.unused_rows()
    first = journal.start_update("count", taken[0][0], taken[-1][0], len(taken))
    journal.set_state("shadow", {"champion": 1, "challenger": None, "since": None,
                                 "update": first})  # as run_update writes it, then killed
    assert store.update(labelled_frame(taken, schema)).status == "promoted"
    _recover(journal, store, schema, settings)
    [update] = journal.updates()
    assert (update["status"], update["version"]) == ("shadow", 2)
    trial = journal.get_state("shadow")
    assert (trial["champion"], trial["challenger"]) == (1, 2)
