"""Building scenarios, models and strategies from names, for the CLI, configs and benches."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from retain import datasets, scenarios
from retain.errors import RetainError
from retain.metrics import RunResult
from retain.models import MLP
from retain.scenarios import Stream
from retain.strategies import Strategy, make_strategy

SCENARIOS = {
    "split-mnist": "class-incremental MNIST, 5 experiences of 2 classes",
    "task-split-mnist": "task-incremental MNIST (task label given, multi-head by masking)",
    "permuted-mnist": "domain-incremental MNIST, a pixel permutation per experience",
    "rotated-mnist": "domain-incremental MNIST, a rotation per experience",
    "rotated-mnist-nearest": "rotated-mnist with nearest-neighbour pixels (mammoth's PIL "
                             "rotation) instead of bilinear",
    "split-digits": "class-incremental scikit-learn digits (fast)",
    "task-split-digits": "task-incremental scikit-learn digits (fast)",
}
_DEFAULT_EXPERIENCES = {"permuted-mnist": 10, "rotated-mnist": 10, "rotated-mnist-nearest": 10}
_MNIST_SCENARIOS = ("split-mnist", "task-split-mnist", "permuted-mnist", "rotated-mnist",
                    "rotated-mnist-nearest")


# options of contributed scenarios (``retain run --data DIR --by load``), None when not given
SCENARIO_OPTIONS = ("data", "by", "window", "stride", "fs", "train_fraction", "validation")


def build_scenario(name: str, seed: int = 0, n_experiences: int | None = None,
                   fetch: bool = True, options: Mapping[str, Any] | None = None) -> Stream:
    """A stream by scenario name, or from a data file (``.npz``/``.csv``/``.parquet``), which is
    split class-incrementally. ``options`` go to a contributed scenario that declares them."""
    given = {k: v for k, v in (options or {}).items() if v is not None}
    spec = scenario_spec(name)
    unknown = sorted(set(given) - set(spec.options if spec else ()))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        takes = [n for n, s in EXTRA_SCENARIOS.items() if isinstance(s, ScenarioSpec)
                 and set(unknown) <= set(s.options)]
        verb = "is not an option" if len(unknown) == 1 else "are not options"
        raise RetainError(f"{flags} {verb} of scenario {name!r}"
                          + (f"; it is for {', '.join(takes)}" if takes else ""))
    if spec is not None and spec.options:
        stream = spec.build(seed, n_experiences, **given)
        return _with_model(spec, stream)
    n = n_experiences or _DEFAULT_EXPERIENCES.get(name, 5)
    if name in _MNIST_SCENARIOS:
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
    return scenarios.rotated(train, test, n_experiences=n, seed=seed,
                             interpolation="nearest" if name.endswith("-nearest") else "bilinear")


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario contributed by another module, with the settings that suit it.

    Why: a domain scenario needs its own model (a 1-D CNN for vibration windows, not the
    MLP) and its own training budget; keeping them next to the builder makes
    ``retain run --scenario NAME`` work without extra flags, while every flag, config key
    or explicit strategy hyper-parameter still overrides them.
    """

    description: str
    build: Callable[[int, int | None], Stream]  # build(seed, n_experiences) -> Stream
    model: str | None = None  # a retain.models.MODELS name, sized from the stream
    model_args: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # ``retain run`` options
    # extra report sections: report(out_dir, results, config) -> [Section]
    report: Callable[[Path, dict[str, RunResult], dict], list] | None = None
    # keyword options build() takes from SCENARIO_OPTIONS: build(seed, n, data=..., by=...)
    options: tuple[str, ...] = ()


# scenarios contributed by other modules: name -> ScenarioSpec, or the older
# (description, builder(seed, n) -> Stream) pair
EXTRA_SCENARIOS: dict[str, ScenarioSpec | tuple[str, Any]] = {}


def scenario_spec(name: str) -> ScenarioSpec | None:
    """The registered spec of a contributed scenario (``None`` for built-ins and files)."""
    spec = EXTRA_SCENARIOS.get(name)
    return ScenarioSpec(*spec) if isinstance(spec, tuple) else spec


def scenario_defaults(name: str) -> dict[str, Any]:
    """``retain run`` options a contributed scenario sets (its model included)."""
    spec = scenario_spec(name)
    if spec is None:
        return {}
    return {**spec.defaults, **({"model": spec.model} if spec.model else {})}


def _extra_scenario(name: str, seed: int, n: int | None) -> Stream | None:
    spec = scenario_spec(name)
    if spec is None:
        return None
    return _with_model(spec, spec.build(seed, n))


def _with_model(spec: ScenarioSpec, stream: Stream) -> Stream:
    if spec.model:
        stream.info.update(model=spec.model, model_args=dict(spec.model_args))
    return stream


def all_scenarios() -> list[str]:
    return [*SCENARIOS, *EXTRA_SCENARIOS]


def mlp(input_shape: tuple[int, ...], n_classes: int, hidden: tuple[int, ...] = (100, 100),
        ) -> nn.Sequential:
    """The continual-learning benchmark MLP (Flatten, Linear+ReLU per hidden layer, Linear):
    :class:`retain.models.MLP`'s layers as a plain ``nn.Sequential``, whose last layer iCaRL
    and the checkpoints of earlier versions (keys ``1.weight``, ...) expect."""
    return MLP(math.prod(input_shape), n_classes, hidden).layers


def stream_shape(stream: Stream) -> tuple[tuple[int, ...], int]:
    """Input shape and number of classes of a stream."""
    first = stream[0].train[0]
    n_classes = stream.n_classes
    if n_classes is None:
        n_classes = int(max(int(e.train.tensors[1].max()) for e in stream)) + 1
    return tuple(first[0].shape), n_classes


def build_model(stream: Stream, model: str | None = None,
                hidden: tuple[int, ...] = (100, 100), seed: int = 0) -> nn.Module:
    """A fresh model for a stream, initialised from ``seed``.

    ``model=None`` takes the model the stream's scenario names (else the MLP). A registered
    model gets the sizes it asks for from the stream: ``n_classes`` and, for sequence
    inputs ``[C, T]``, ``in_channels`` and ``length``.
    """
    input_shape, n_classes = stream_shape(stream)
    model = model or stream.info.get("model", "mlp")
    torch.manual_seed(seed)
    if model == "mlp":
        return mlp(input_shape, n_classes, hidden)
    from retain.models import MODELS  # built-in models registered by their modules

    if model not in MODELS:
        raise RetainError(f"unknown model {model!r}; choose mlp or one of {sorted(MODELS)}")
    sizes: dict[str, Any] = {"n_classes": n_classes}
    if len(input_shape) == 2:
        sizes.update(in_channels=input_shape[0], length=input_shape[1])
    accepted = inspect.signature(MODELS[model]).parameters
    args = stream.info.get("model_args", {}) if model == stream.info.get("model") else {}
    return MODELS[model](**{k: v for k, v in sizes.items() if k in accepted}, **args)


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


def build_strategies(spec: str | dict,
                     defaults: Mapping[str, Mapping[str, Any]] | None = None) -> list[Strategy]:
    """Strategies from a spec; ``defaults`` (per strategy name, e.g. a scenario's tuned
    ``{"ewc": {"lambda_": 300}}``) fill the hyper-parameters the spec does not set."""
    defaults = defaults or {}
    return [make_strategy(name, **{**defaults.get(name, {}), **params})
            for name, params in parse_strategy(spec)]


def strategy_label(spec: str | dict) -> str:
    if isinstance(spec, dict):
        return "+".join(spec)
    return str(spec)


def _contributed_scenarios() -> None:
    """Scenarios that live with their domain code (imported last: they import this module)."""
    from retain.cli.recordings import SCENARIOS as recordings
    from retain.cli.vibration import SCENARIOS as vibration

    EXTRA_SCENARIOS.update(vibration)
    EXTRA_SCENARIOS.update(recordings)


_contributed_scenarios()
