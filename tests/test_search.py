"""retain bench --search optuna: chosen on validation splits of the training data (never the
test sets), within a budget, resumable, and reported."""

import json

import optuna
import pytest
import torch
from typer.testing import CliRunner

from retain import RetainError
from retain.bench import search
from retain.bench.grid import expand
from retain.bench.runner import _stream
from retain.cli import app
from retain.scenarios.experience import Experience, Stream


class Untouchable(torch.utils.data.Dataset):
    """A test set that fails the moment anything reads it."""

    def __len__(self):
        raise AssertionError("the search read a test set")

    def __getitem__(self, i):
        raise AssertionError("the search read a test set")


@pytest.fixture()
def no_test_sets(monkeypatch):
    real = _stream("split-digits", 0, 3)
    poisoned = Stream([Experience(e.train, Untouchable(), index=e.index, name=e.name)
                       for e in real], name=real.name, n_classes=real.n_classes)
    monkeypatch.setattr(search, "_stream", lambda *args: poisoned)
    return real


def test_validation_splits_are_disjoint_parts_of_the_training_data(no_test_sets):
    split = search.validation_stream(no_test_sets, 0.2, seed=0)
    for real, part in zip(no_test_sets, split, strict=True):
        fit, val = part.train.indices, part.test.indices
        assert part.train.dataset is real.train and part.test.dataset is real.train
        assert not set(fit) & set(val) and len(fit) + len(val) == len(real.train)
        assert len(val) == round(0.2 * len(real.train))
    with pytest.raises(RetainError, match=r"validation share must be in \(0, 1\)"):
        search.validation_stream(no_test_sets, 1.0, seed=0)


def test_the_search_never_reads_a_test_set_and_resumes(no_test_sets, tmp_path):
    run = expand({"scenario": "split-digits", "experiences": 3, "strategies": ["ewc"],
                  "seeds": [0]})[0]
    space = {"lr": ("log", 0.01, 0.1), "ewc.lambda_": ("log", 1.0, 100.0)}
    first = search.search_group(run, tmp_path, trials=2, space=space)
    assert first["trials"] == 2 and set(first["params"]) == {"lr", "ewc.lambda_"}
    assert 0.01 <= first["params"]["lr"] <= 0.1 and 0 < first["value"] <= 1
    more = search.search_group(run, tmp_path, trials=3, space=space)  # resumes: 1 more
    again = search.search_group(run, tmp_path, trials=3, space=space)  # budget spent
    study = optuna.load_study(study_name=first["study"],
                              storage=f"sqlite:///{tmp_path / search.STORAGE}")
    assert more["trials"] == again["trials"] == len(study.trials) == 3
    assert again["params"] == more["params"] and more["value"] >= first["value"]


def test_bench_search_reports_the_chosen_values_and_runs_them(tmp_path):
    out = tmp_path / "grid"
    args = ["bench", "--scenario", "split-digits", "--experiences", "2", "--strategies",
            "naive", "--seeds", "0,1", "--workers", "1", "--search", "optuna", "--trials", "2",
            "--space", "lr=log:0.01:0.1", "--out", str(out), "--json"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    chosen = json.loads((out / search.RESULTS).read_text())["naive"]
    lr = chosen["params"]["lr"]
    assert chosen["trials"] == 2 and chosen["validation"] == 0.1
    assert f"search naive: lr={lr:.4g}" in result.output
    runs = [json.loads(line)["run"] for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["seed"] for r in runs) == [0, 1] and {r["lr"] for r in runs} == {lr}
    again = CliRunner().invoke(app, args, catch_exceptions=False)  # nothing left to do
    assert "resuming: 2 of 2 runs already done" in again.output
    assert json.loads((out / search.RESULTS).read_text())["naive"]["trials"] == 2


@pytest.mark.parametrize("item", ["lr=log:0:1", "lr=0.3:0.1", "lr", "=1:2", "lr=log:a:b"])
def test_malformed_search_ranges_are_refused(item):
    with pytest.raises(RetainError, match="--space"):
        search.parse_space([item])
