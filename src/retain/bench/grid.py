"""A bench grid: scenario × strategies × hyper-parameters × seeds, expanded and checked
before anything runs, so a typo fails in a second, not an hour into the grid."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import typing
from pathlib import Path
from typing import Any

from retain.config import parse_strategy, read_options
from retain.errors import RetainError
from retain.optim import OPTIMIZERS
from retain.scenarios.catalog import all_scenarios
from retain.strategies import STRATEGIES

#: settings of one run besides its strategies and seed, with their defaults
RUN_DEFAULTS: dict[str, Any] = {
    "scenario": "split-digits", "experiences": None, "epochs": 1, "batch_size": 10,
    "lr": 0.03, "optimizer": "sgd", "model": "mlp", "hidden": [100, 100], "init": "default",
}
_RUN_TYPES: dict[str, Any] = {
    "scenario": str, "experiences": int | None, "epochs": int, "batch_size": int,
    "lr": float, "optimizer": str, "model": str, "hidden": list, "init": str,
}
#: weight initialisations a run can ask for (mammoth's MLP uses Xavier-uniform, zero bias)
INITS = ("default", "xavier")
#: keys of a bench config file
CONFIG_KEYS = {*RUN_DEFAULTS, "strategies", "seeds", "grid", "runs", "max_runs", "workers"}
DEFAULT_MAX_RUNS = 100
#: pseudo-strategy: train once on all experiences together (the upper bound of a table)
JOINT = "joint"


def load_config(path: Path) -> dict[str, Any]:
    """Read a YAML bench config and reject unknown keys."""
    return read_options(path, CONFIG_KEYS)


def expand(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of a config, each a plain JSON-able dict with an ``id``.

    ``strategies`` lists specs (``"der:capacity=200"``, composed with ``+``); ``grid`` maps a
    run setting (``lr``), a strategy hyper-parameter (``alpha``: set on every strategy in a
    spec that accepts it) or ``strategy.param`` to a list of values; ``runs`` lists explicit
    runs (settings + ``strategy``) added as they are; every run is repeated for each seed.
    """
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise RetainError(f"unknown bench options {unknown}; known: {sorted(CONFIG_KEYS)}")
    base = {k: config.get(k, v) for k, v in RUN_DEFAULTS.items()}
    seeds = _as_list(config.get("seeds", [0]), "seeds")
    grid = config.get("grid") or {}
    if not isinstance(grid, dict):
        raise RetainError("grid must map a key to a list of values, e.g. {lr: [0.01, 0.1]}")
    entries = [{**base, "strategy": s} for s in _as_list(config.get("strategies", []),
                                                         "strategies")]
    for item in config.get("runs") or []:
        if not isinstance(item, dict) or "strategy" not in item:
            raise RetainError(f"each entry of runs needs a strategy, got {item!r}")
        entries.append({**base, **item})
    if not entries:
        raise RetainError("nothing to run: give --strategies or a config with strategies/runs")
    keys = list(grid)
    values = [_as_list(grid[k], f"grid {k}") for k in keys]
    runs = []
    for entry in entries:
        for combo in itertools.product(*values):
            run = _apply_grid(entry, dict(zip(keys, combo, strict=True)))
            for seed in seeds:
                runs.append(normalise({**run, "seed": seed}))
    unique = {r["id"]: r for r in runs}  # a grid key a strategy lacks repeats its runs
    return list(unique.values())


def _apply_grid(entry: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    run = dict(entry)
    parts = [(n, dict(p)) for n, p in _strategy_parts(run["strategy"])]
    for key, value in point.items():
        if key in RUN_DEFAULTS:
            run[key] = value
            continue
        target, _, param = key.rpartition(".")
        if target and target not in STRATEGIES:
            raise RetainError(f"grid key {key!r}: unknown strategy {target!r}")
        if target and param not in _accepted(target):
            raise RetainError(f"strategy {target!r} has no hyper-parameter {param!r}; it "
                              f"accepts {', '.join(_accepted(target))}")
        if not target and not any(param in _accepted(n) for n in STRATEGIES):
            raise RetainError(f"grid key {key!r} is neither a run setting "
                              f"({', '.join(RUN_DEFAULTS)}) nor a hyper-parameter of any "
                              "strategy")
        for name, params in parts:
            if target in ("", name) and param in _accepted(name):
                params[param] = value
    run["strategy"] = parts
    return run


def normalise(run: dict[str, Any]) -> dict[str, Any]:
    """Check a run's settings and strategy specs, and give it a stable ``id``."""
    unknown = sorted(set(run) - {*RUN_DEFAULTS, "strategy", "seed", "id"})
    if unknown:
        raise RetainError(f"unknown run settings {unknown}; known: {sorted(RUN_DEFAULTS)}")
    for key, kind in _RUN_TYPES.items():
        _check_type(f"setting {key!r}", run.get(key, RUN_DEFAULTS[key]), kind)
    _check_type("seed", run["seed"], int)
    if run["scenario"] not in all_scenarios() and not Path(run["scenario"]).suffix:
        raise RetainError(f"unknown scenario {run['scenario']!r}; choose one of "
                          f"{', '.join(all_scenarios())}")
    OPTIMIZERS.require(run["optimizer"])
    if run.get("init", "default") not in INITS:
        raise RetainError(f"unknown init {run['init']!r}; choose one of {', '.join(INITS)}")
    parts = _strategy_parts(run["strategy"])
    for name, params in parts:
        check_strategy(name, params)
    clean = {**{k: run.get(k, v) for k, v in RUN_DEFAULTS.items()}, "seed": run["seed"],
             "strategy": [[name, dict(sorted(params.items()))] for name, params in parts]}
    clean["id"] = run_id(clean)
    return clean


def run_id(run: dict[str, Any]) -> str:
    """Stable id of a run's settings: the key a results file is resumed by."""
    text = json.dumps({k: v for k, v in run.items() if k != "id"}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def label(run: dict[str, Any]) -> str:
    """Short name of a run's strategies and hyper-parameters (``der(alpha=0.2)``)."""
    parts = []
    for name, params in run["strategy"]:
        args = ",".join(f"{k}={v}" for k, v in params.items())
        parts.append(f"{name}({args})" if args else name)
    return "+".join(parts)


def check_strategy(name: str, params: dict[str, Any]) -> None:
    """Unknown strategy, unknown hyper-parameter or a value of the wrong type -> RetainError."""
    if name == JOINT:
        if params:
            raise RetainError("the joint baseline takes no hyper-parameters")
        return
    if name not in STRATEGIES:
        raise RetainError(f"unknown strategy {name!r}; choose one of "
                          f"{', '.join(sorted([*STRATEGIES, JOINT]))}")
    hints = _hints(name)
    for key, value in params.items():
        if key not in hints:
            raise RetainError(f"strategy {name!r} has no hyper-parameter {key!r}; it accepts "
                              f"{', '.join(_accepted(name))}")
        _check_type(f"{name}.{key}", value, hints[key])


def _check_type(what: str, value: Any, kind: Any) -> None:
    allowed = typing.get_args(kind) or (kind,)
    if any(_is_a(value, a) for a in allowed):
        return
    names = " or ".join(getattr(a, "__name__", str(a)) for a in allowed)
    raise RetainError(f"{what} must be {names}, got {value!r} ({type(value).__name__})")


def _is_a(value: Any, kind: Any) -> bool:
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Any or not isinstance(kind, type):
        return True
    return isinstance(value, typing.get_origin(kind) or kind)


def _hints(name: str) -> dict[str, Any]:
    init = STRATEGIES[name].__init__
    hints = typing.get_type_hints(init)
    return {p: hints.get(p, Any) for p in inspect.signature(init).parameters if p != "self"}


def _accepted(name: str) -> list[str]:
    return [] if name == JOINT else list(_hints(name))


def _strategy_parts(spec: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(spec, list) and all(isinstance(p, list | tuple) and len(p) == 2
                                      for p in spec):
        return [(str(n), dict(p)) for n, p in spec]
    return parse_strategy(spec)


def _as_list(value: Any, what: str) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [value]
    raise RetainError(f"{what} must be a list, got {value!r}")
