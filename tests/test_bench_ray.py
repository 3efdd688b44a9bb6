"""``retain bench --backend ray``: the grid's runs as Ray tasks on a local Ray give the same
records, resume and summary tables as the process pool."""

from __future__ import annotations

import json

import pytest

from retain.bench.grid import expand
from retain.bench.runner import read_records, run_grid
from retain.bench.summary import write_outputs

pytest.importorskip("ray", reason="Ray comes with the distributed extra")  # in dev: installed

TIMES = ("train_time_per_experience_s", "train_time_s")


def _results(records):
    """Each run's result without its timings (the only thing allowed to differ)."""
    return {r["id"]: {k: v for k, v in r["result"].items() if k not in TIMES} for r in records}


def test_a_grid_through_local_ray_equals_the_process_pool(tmp_path):
    runs = expand({"scenario": "split-digits", "strategies": ["naive", "replay:capacity=50"],
                   "seeds": [0], "experiences": 2})
    broken = {**runs[0], "id": "broken", "scenario": "no-such-scenario"}
    ray_records = run_grid([*runs, broken], tmp_path / "ray", workers=2, backend="ray")
    pool_records = run_grid(runs, tmp_path / "pool", workers=1)
    by_id = {r["id"]: r for r in ray_records}
    assert by_id["broken"]["status"] == "error"  # a crash is recorded, the grid goes on
    assert "no-such-scenario" in by_id["broken"]["error"]
    ok = [r for r in ray_records if r["status"] == "ok"]
    assert len(ok) == len(runs) and _results(ok) == _results(pool_records)
    # resume: nothing left to run but the crashed run, retried
    again = run_grid([*runs, broken], tmp_path / "ray", workers=2, backend="ray")
    assert [r["id"] for r in again] == ["broken"]
    assert len(read_records(tmp_path / "ray")) == len(runs) + 2
    # the tables are the process pool's
    rows = {json.dumps(r, sort_keys=True) for r in _untimed(write_outputs(tmp_path / "ray"))}
    assert rows == {json.dumps(r, sort_keys=True)
                    for r in _untimed(write_outputs(tmp_path / "pool"))}


def _untimed(rows):
    return [{k: v for k, v in r.items() if "wall" not in k and "time" not in k} for r in rows]


def test_an_address_without_the_ray_backend_is_refused(tmp_path):
    from retain.errors import RetainError

    with pytest.raises(RetainError, match="--backend ray"):
        run_grid([], tmp_path, address="ray://head:10001")
    with pytest.raises(RetainError, match="'process' or 'ray'"):
        run_grid([], tmp_path, backend="dask")


def test_the_command_refuses_an_address_without_the_ray_backend(tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app

    result = CliRunner().invoke(app, ["bench", "--scenario", "split-digits", "--strategies",
                                      "naive", "--ray-address", "ray://head:10001",
                                      "--out", str(tmp_path / "b")])
    assert result.exit_code != 0
    assert "--backend ray" in str(result.exception)
