"""Crash safety: SIGKILL the updating process at random points; the store must always open
and its current version load intact."""

import multiprocessing
import os
import random
import shutil
import signal
import time

import torch
from test_store import INIT, day_frame, history_frame, template  # noqa: F401 (fixture)

import retain.store.store as store_module
from retain.store import open_checkpoint
from retain.store.store import Store

KILLS = 20


def _update_forever(path, first_day: int, saving) -> None:
    """Update day after day; ``saving`` is set when a checkpoint write starts, so the parent
    can aim half of its kills at the write, the commit and the registry update."""
    torch.set_num_threads(1)
    save = store_module.save_learner

    def announce_then_save(*args, **kwargs):
        saving.set()
        return save(*args, **kwargs)

    store_module.save_learner = announce_then_save
    store = Store(path)
    for day in range(first_day, first_day + 1000):
        store.update(day_frame(day % 30), force=True)


def _check_intact(store: Store) -> dict:
    """Every invariant a crash must not break; returns what the crash left behind."""
    history = store.history()
    assert sum(v.current for v in history) == 1
    current = next(v for v in history if v.current)
    assert current.status == "promoted"
    store.load()  # verifies every file's size and hash
    folders = {int(p.name) for p in (store.path / "versions").iterdir() if p.name.isdigit()}
    for v in history:
        if v.status != "rejected":
            assert v.id in folders, f"recorded version {v.id} lost its checkpoint"
            open_checkpoint(store.path / "versions" / f"{v.id:06d}")
    return {"temporaries": any(p.name.startswith(".tmp-")
                               for p in (store.path / "versions").iterdir()),
            "unrecorded": bool(folders - {v.id for v in history}),
            "candidates": sum(v.status == "candidate" for v in history)}


def test_sigkill_at_random_points_never_damages_the_store(template, tmp_path):  # noqa: F811
    path = tmp_path / "store"
    shutil.copytree(template, path)
    store = Store(path)
    fork = multiprocessing.get_context("fork")
    rng = random.Random(0)
    left, versions_seen = [], 1
    for kill in range(KILLS):
        saving = fork.Event()
        child = fork.Process(target=_update_forever, args=(path, kill, saving))
        child.start()
        if kill % 2:
            assert saving.wait(timeout=60)
            time.sleep(rng.uniform(0.0, 0.05))
        else:
            time.sleep(rng.uniform(0.05, 1.0))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        left.append(_check_intact(store))
        versions = len(store.history())
        assert versions >= versions_seen  # nothing recorded is ever lost
        versions_seen = versions
    print(f"\n{KILLS} kills, {versions_seen - 1} versions recorded; kills that left "
          f"temporaries: {sum(x['temporaries'] for x in left)}, unrecorded checkpoints: "
          f"{sum(x['unrecorded'] for x in left)}, undecided candidates: "
          f"{sum(x['candidates'] for x in left)}")
    final = store.update(day_frame(31))
    assert final.status in ("promoted", "rejected") and final.id == versions_seen + 1
    after = _check_intact(store)
    assert not after["temporaries"] and not after["unrecorded"] and not after["candidates"]
