"""The catalog of scenarios: building a stream (and a model sized for it) from a name.

Built-in scenarios are made here; the ones applications define (vibration machines, recorded
vibration) are named in :data:`CONTRIBUTED` by ``"module:attribute"`` and imported only when
used; other packages add theirs with a ``retain.scenarios`` entry point whose object is a
:class:`ScenarioSpec`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from retain import datasets, scenarios
from retain.catalog import Catalog
from retain.errors import RetainError
from retain.metrics import RunResult
from retain.models import MLP
from retain.scenarios.experience import Stream

#: the scenarios made here, name -> description
BUILTIN_SCENARIOS = {
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
        takes = [n for n in CONTRIBUTED if set(unknown) <= set(scenario_spec(n).options)]
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


#: scenarios that live with their domain code: name -> ScenarioSpec (or the older
#: ``(description, builder(seed, n) -> Stream)`` pair), imported on first use
CONTRIBUTED: Catalog = Catalog("scenario", {
    "vibration-machines": "retain.vibration.run_machines:MACHINES",
    "vibration-machines-class": "retain.vibration.run_machines:MACHINE_PAIRS",
    "recordings": "retain.vibration.run_recordings:RECORDINGS",
}, group="retain.scenarios")


def scenario_spec(name: str) -> ScenarioSpec | None:
    """The spec of a contributed scenario (``None`` for built-ins and files)."""
    if name not in CONTRIBUTED:
        return None
    spec = CONTRIBUTED[name]
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
    return [*BUILTIN_SCENARIOS, *CONTRIBUTED]


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
    from retain.models import MODELS

    if model not in MODELS:
        raise RetainError(f"unknown model {model!r}; choose mlp or one of {sorted(MODELS)}")
    sizes: dict[str, Any] = {"n_classes": n_classes}
    if len(input_shape) == 2:
        sizes.update(in_channels=input_shape[0], length=input_shape[1])
    accepted = inspect.signature(MODELS[model]).parameters
    args = stream.info.get("model_args", {}) if model == stream.info.get("model") else {}
    return MODELS[model](**{k: v for k, v in sizes.items() if k in accepted}, **args)
