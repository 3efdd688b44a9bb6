"""Hyper-parameters chosen on validation data, never on the test sets: an Optuna search per
setting of a bench grid.

For each group of runs that differ only by seed, a study (TPE, seeded) tries ``trials``
values of the searched keys (the learning rate, EWC's ``lambda_``, ...). A trial trains the
run's strategies on the stream with a fixed random ``validation`` share of each
experience's *training* data held out, and scores the final average accuracy on those
held-out shares. The test sets are not touched. The
studies live in ``out/search.sqlite3``: a search that is stopped resumes where it was, and
a finished one is not run again. The grid then runs with the chosen values on the real
train/test split, for every seed, with the chosen values rounded to 3 significant digits.

Keys: ``lr`` (the run's learning rate) or ``strategy.param`` (``ewc.lambda_``); ranges
``log:LO:HI`` (log-uniform) or ``LO:HI`` (uniform).

>>> parse_space(["lr=log:0.001:0.3", "lwf.alpha=0.1:2"])
{'lr': ('log', 0.001, 0.3), 'lwf.alpha': ('uniform', 0.1, 2.0)}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Subset

from retain.bench.grid import RUN_DEFAULTS, label, normalise
from retain.bench.runner import _stream, _train
from retain.errors import RetainError
from retain.extras import require
from retain.scenarios.experience import Experience, Stream

#: what is searched unless --space says otherwise (keys of strategies absent from a run
#: are ignored; memory sizes are budgets, not hyper-parameters, and are never searched)
DEFAULT_SPACE: dict[str, tuple[str, float, float]] = {
    "lr": ("log", 1e-3, 0.3),
    "ewc.lambda_": ("log", 0.1, 1e4), "online-ewc.lambda_": ("log", 0.1, 1e4),
    "lwf.alpha": ("log", 0.1, 10.0), "si.c": ("log", 0.01, 10.0), "mas.lambda_": ("log", 0.1, 1e3),
    "der.alpha": ("log", 0.01, 1.0), "derpp.alpha": ("log", 0.01, 1.0),
    "derpp.beta": ("log", 0.01, 1.0),
}
STORAGE = "search.sqlite3"
RESULTS = "search.json"


def parse_space(items: Sequence[str]) -> dict[str, tuple[str, float, float]]:
    """``["lr=log:0.001:0.3", ...]`` -> ``{"lr": ("log", 0.001, 0.3), ...}``."""
    space = {}
    for item in items:
        key, _, spec = item.partition("=")
        parts = spec.split(":")
        kind = "log" if parts[0] == "log" else "uniform"
        bounds = parts[1:] if kind == "log" else parts
        try:
            lo, hi = (float(b) for b in bounds)
        except ValueError:
            raise RetainError(f"--space {item!r}: write KEY=log:LO:HI or KEY=LO:HI") from None
        if not key or not lo < hi or (kind == "log" and lo <= 0):
            raise RetainError(f"--space {item!r}: need a key and 0 < LO < HI for log ranges, "
                              "LO < HI otherwise")
        space[key.strip()] = (kind, lo, hi)
    return space


def validation_stream(stream: Stream, fraction: float, seed: int) -> Stream:
    """The stream with each experience's training data split: the first part trains, a
    fixed random ``fraction`` is its test set. The real test sets are left out."""
    if not 0 < fraction < 1:
        raise RetainError(f"the validation share must be in (0, 1), got {fraction}")
    experiences = []
    for e in stream:
        n = len(e.train)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + e.index))
        k = max(1, round(n * fraction))
        if k >= n:
            raise RetainError(f"{e.name} has {n} training samples: too few to hold out "
                              f"{fraction:.0%} for validation")
        experiences.append(Experience(Subset(e.train, order[k:].tolist()),
                                      Subset(e.train, order[:k].tolist()), index=e.index,
                                      task_label=e.task_label, classes=e.classes,
                                      name=e.name))
    return Stream(experiences, name=f"{stream.name} (validation)", n_classes=stream.n_classes,
                  task_classes=stream.task_classes)


def searched_keys(run: dict[str, Any], space: dict[str, tuple]) -> list[str]:
    """The keys of ``space`` that apply to ``run``."""
    names = {name for name, _ in run["strategy"]}
    return [k for k in space if k in RUN_DEFAULTS or k.partition(".")[0] in names]


def with_values(run: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``run`` with searched values set (``lr`` or ``strategy.param``), re-normalised."""
    new = {**run, "strategy": [[n, dict(p)] for n, p in run["strategy"]]}
    new.pop("id", None)
    for key, value in values.items():
        if key in RUN_DEFAULTS:
            new[key] = value
            continue
        target, _, param = key.partition(".")
        for name, params in new["strategy"]:
            if name == target:
                params[param] = value
    return normalise(new)


def search_group(template: dict[str, Any], out: Path, trials: int,
                 space: dict[str, tuple], fraction: float = 0.1,
                 timeout: float | None = None) -> dict[str, Any]:
    """Run (or resume) the study of one group; returns its chosen values and score."""
    optuna = require("optuna", "search")
    keys = searched_keys(template, space)
    if not keys:
        return {"params": {}, "value": None, "trials": 0}
    stream = validation_stream(_stream(template["scenario"], template["seed"],
                                       template["experiences"]), fraction, template["seed"])
    name = _study_name(template, keys)

    def objective(trial) -> float:
        values = {k: _suggest(trial, k, *space[k]) for k in keys}
        result = _train(with_values(template, values), stream)
        if not result.higher_is_better:
            raise RetainError("the search maximises accuracy: a classification grid only")
        return float(result.average_accuracy)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=name, storage=f"sqlite:///{(out / STORAGE).resolve()}",
        load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=template["seed"]))
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if done < trials:
        study.optimize(objective, n_trials=trials - done, timeout=timeout)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RetainError(f"no trial of {name} finished")
    params = {k: float(f"{v:.3g}") for k, v in study.best_trial.params.items()}
    return {"params": params, "value": study.best_value, "trials": len(complete),
            "study": name}


def _suggest(trial, key: str, kind: str, lo: float, hi: float) -> float:
    return trial.suggest_float(key, lo, hi, log=kind == "log")


def _study_name(template: dict[str, Any], keys: list[str]) -> str:
    settings = {k: template[k] for k in RUN_DEFAULTS if k not in keys}
    return json.dumps({"strategy": label(template), "searched": keys, **settings,
                       "seed": template["seed"]}, sort_keys=True)


def search_grid(runs: list[dict[str, Any]], out: Path, trials: int,
                space: dict[str, tuple] | None = None, fraction: float = 0.1,
                timeout: float | None = None,
                progress: Callable[[str, dict[str, Any]], None] | None = None,
                ) -> list[dict[str, Any]]:
    """Search every group of ``runs`` (runs differing by seed share one search, on the
    lowest seed), write ``out/search.json``, and return the runs with the chosen values."""
    if trials < 1:
        raise RetainError(f"--trials must be >= 1, got {trials}")
    space = space or DEFAULT_SPACE
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(_group_key(run), []).append(run)
    chosen, final = {}, []
    for members in groups.values():
        template = min(members, key=lambda r: r["seed"])
        found = search_group(template, Path(out), trials, space, fraction, timeout)
        chosen[label(template)] = {**found, "validation": fraction}
        if progress is not None:
            progress(label(template), found)
        final += [with_values(r, found["params"]) for r in members]
    (Path(out) / RESULTS).write_text(json.dumps(chosen, indent=2))
    return final


def _group_key(run: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in run.items() if k not in ("seed", "id")},
                      sort_keys=True)
