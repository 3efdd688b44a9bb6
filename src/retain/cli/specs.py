"""Building scenarios, models and strategies from names, for the CLI, configs and benches."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from retain import datasets, scenarios
from retain.errors import RetainError
from retain.scenarios import Stream
from retain.strategies import Strategy, make_strategy

SCENARIOS = {
    "split-mnist": "class-incremental MNIST, 5 experiences of 2 classes",
    "task-split-mnist": "task-incremental MNIST (task label given, multi-head by masking)",
    "permuted-mnist": "domain-incremental MNIST, a pixel permutation per experience",
    "rotated-mnist": "domain-incremental MNIST, a rotation per experience",
    "split-digits": "class-incremental scikit-learn digits (fast)",
    "task-split-digits": "task-incremental scikit-learn digits (fast)",
}
_DEFAULT_EXPERIENCES = {"permuted-mnist": 10, "rotated-mnist": 10}


def build_scenario(name: str, seed: int = 0, n_experiences: int | None = None,
                   fetch: bool = True) -> Stream:
    """A stream by scenario name, or from a data file (``.npz``/``.csv``/``.parquet``), which is
    split class-incrementally."""
    n = n_experiences or _DEFAULT_EXPERIENCES.get(name, 5)
    if name in ("split-mnist", "task-split-mnist", "permuted-mnist", "rotated-mnist"):
        train, test = datasets.mnist(fetch=fetch)
    elif name in ("split-digits", "task-split-digits"):
        train, test = datasets.digits(seed=seed)
    elif Path(name).suffix.lower() in (".npz", ".csv", ".parquet"):
        train, test = datasets.load(name, seed=seed)
        return scenarios.class_incremental(train, test, n_experiences=n, seed=seed)
    else:
        extra = _extra_scenario(name, seed, n_experiences)
        if extra is not None:
            return extra
        raise RetainError(
            f"unknown scenario {name!r}; choose one of {', '.join(all_scenarios())} "
            f"or give a .npz/.csv/.parquet file")
    if name.startswith("task-"):
        return scenarios.task_incremental(train, test, n_experiences=n, seed=seed)
    if name.startswith("split"):
        return scenarios.class_incremental(train, test, n_experiences=n, seed=seed)
    if name == "permuted-mnist":
        return scenarios.permuted(train, test, n_experiences=n, seed=seed)
    return scenarios.rotated(train, test, n_experiences=n, seed=seed)


# scenarios contributed by other modules: name -> (description, builder(seed, n) -> Stream)
EXTRA_SCENARIOS: dict[str, tuple[str, Any]] = {}


def _extra_scenario(name: str, seed: int, n: int | None) -> Stream | None:
    if name in EXTRA_SCENARIOS:
        return EXTRA_SCENARIOS[name][1](seed, n)
    return None


def all_scenarios() -> list[str]:
    return [*SCENARIOS, *EXTRA_SCENARIOS]


def mlp(input_shape: tuple[int, ...], n_classes: int, hidden: tuple[int, ...] = (100, 100),
        ) -> nn.Sequential:
    """The continual-learning benchmark MLP (Flatten, Linear+ReLU per hidden layer, Linear)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def stream_shape(stream: Stream) -> tuple[tuple[int, ...], int]:
    """Input shape and number of classes of a stream."""
    first = stream[0].train[0]
    n_classes = stream.n_classes
    if n_classes is None:
        n_classes = int(max(int(e.train.tensors[1].max()) for e in stream)) + 1
    return tuple(first[0].shape), n_classes


def build_model(stream: Stream, model: str = "mlp", hidden: tuple[int, ...] = (100, 100),
                seed: int = 0) -> nn.Module:
    """A fresh model for a stream, initialised from ``seed``."""
    input_shape, n_classes = stream_shape(stream)
    torch.manual_seed(seed)
    if model == "mlp":
        return mlp(input_shape, n_classes, hidden)
    from retain.models import MODELS  # built-in models registered by their modules

    if model not in MODELS:
        raise RetainError(f"unknown model {model!r}; choose mlp or one of {sorted(MODELS)}")
    return MODELS[model](n_classes=n_classes)


def parse_value(text: str) -> Any:
    """A command-line value as YAML (numbers, booleans, lists), else the string itself."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_strategy(spec: str | dict) -> list[tuple[str, dict[str, Any]]]:
    """``"ewc:lambda_=1000,fisher=empirical+replay:capacity=200"`` -> composed strategies.

    A dict form (from YAML) is ``{name: {param: value}}`` or a list of such.
    """
    if isinstance(spec, dict):
        return [(name, dict(params or {})) for name, params in spec.items()]
    parts = []
    for piece in str(spec).split("+"):
        name, _, args = piece.strip().partition(":")
        params: dict[str, Any] = {}
        for item in filter(None, (a.strip() for a in args.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise RetainError(f"strategy argument {item!r} in {spec!r} must be key=value")
            params[key.strip()] = parse_value(value.strip())
        parts.append((name.strip().lower(), params))
    return parts


def build_strategies(spec: str | dict) -> list[Strategy]:
    return [make_strategy(name, **params) for name, params in parse_strategy(spec)]


def strategy_label(spec: str | dict) -> str:
    if isinstance(spec, dict):
        return "+".join(spec)
    return str(spec)
