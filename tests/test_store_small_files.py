"""The gate for small daily files (24 rows a day): a pooled holdout over the last updates, a
paired test on the error rise, a minimum holdout below which the gate does not judge, and
held-out rows learned once they leave the pool."""

import numpy as np
import pandas as pd
import pytest
from test_store import INIT, day_frame

from retain.store.pool import Pool
from retain.store.store import Store

ROWS, DAYS, SHUFFLED = 24, 10, 6
SMALL = {**INIT, "holdout_window": 4}


def history() -> pd.DataFrame:
    return pd.concat([day_frame(d, rows=ROWS) for d in range(-14, 0)], ignore_index=True)


def day(d: int) -> pd.DataFrame:
    frame = day_frame(d, rows=ROWS)
    if d == SHUFFLED:
        frame["demand"] = np.random.default_rng(d).permutation(frame["demand"].to_numpy())
    return frame


def run(path, **settings) -> list:
    store = Store(path)
    store.init(history(), **settings)
    return [store.update(day(d)) for d in range(DAYS)]


def test_small_daily_files_promote_good_days_and_reject_a_shuffled_day(tmp_path):
    versions = run(tmp_path / "store", **SMALL)
    statuses = [v.status for v in versions]
    assert statuses[SHUFFLED] == "rejected", versions[SHUFFLED].reason
    assert "labels look wrong" in versions[SHUFFLED].reason
    good = [v for i, v in enumerate(versions) if i != SHUFFLED]
    assert all(v.status == "promoted" for v in good), [(v.id, v.reason) for v in good
                                                       if v.status != "promoted"]
    # the pooled holdout: the first version's held-out rows, then 4 days of 5 rows each
    assert [v.metrics["today_holdout_rows"] for v in versions[:2]] == [5, 5]
    assert all(v.metrics["holdout_rows"] >= 20 for v in good)  # enough to judge: judged
    assert all("too few to judge" not in v.reason for v in good)


def test_without_the_pool_and_the_test_noise_rejects_good_days(tmp_path):
    """The deliberate break: today's 5 rows judged by the point estimate (min_holdout 1,
    no test) reject good days that the small-file gate promotes."""
    versions = run(tmp_path / "store", **INIT, min_holdout=1, significance=0.999999)
    rejected_good = [v for i, v in enumerate(versions) if i != SHUFFLED
                     and v.status == "rejected"]
    assert rejected_good, "the noisy gate rejected no good day: this test shows nothing"


def test_held_out_rows_are_learned_when_they_leave_the_pool(tmp_path):
    store = Store(tmp_path / "store")
    first = store.init(history(), **{**INIT, "holdout_window": 2})
    init_held = first.metrics["holdout_rows"]  # 67 rows of the history
    v2, v3, v4 = (store.update(day_frame(d, rows=ROWS)) for d in range(3))
    # day 0: 19 rows learned; the history's held-out rows stay for a second holdout
    assert (v2.metrics["train_rows"], v2.metrics["holdout_rows"]) == (19, init_held + 5)
    # day 1: the history's held-out rows have served two holdouts: learned now
    assert (v3.metrics["train_rows"], v3.metrics["holdout_rows"]) == (19 + init_held, 10)
    assert (v4.metrics["train_rows"], v4.metrics["holdout_rows"]) == (19 + 5, 10)
    pool = Pool.load(store.path / "rows" / f"{v4.id:06d}.npz", like=None)
    assert sorted(set(pool.generation.tolist())) == [v3.id, v4.id]


def test_an_update_nothing_can_judge_leaves_its_rows_to_the_next(tmp_path):
    """No replay memory and 5 held-out rows: the gate cannot judge, says so, and the next
    update learns the waiting rows with its own."""
    store = Store(tmp_path / "store")
    store.init(history(), **{**INIT, "strategies": ("naive",), "holdout_window": 1})
    v2 = store.update(day_frame(0, rows=ROWS))
    assert v2.status == "rejected" and v2.reason.startswith("cannot judge")
    assert "its rows wait for the next update" in v2.reason and v2.metrics["rows_wait"]
    v3 = store.update(day_frame(1, rows=ROWS))
    # day 1's 19 rows, and day 0's 24 plus the history's 67 held-out rows that waited
    assert v3.metrics["train_rows"] == 19 + 24 + 67 and v3.parent == 1


@pytest.mark.parametrize("bad", [{"holdout_window": 0}, {"min_holdout": 0},
                                 {"significance": 1.5}])
def test_bad_gate_settings_are_refused_before_anything_is_made(tmp_path, bad):
    from retain import RetainError

    with pytest.raises(RetainError, match=next(iter(bad))):
        Store(tmp_path / "store").init(history(), **{**INIT, **bad})
    assert not (tmp_path / "store").exists()
