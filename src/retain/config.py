"""Options for the command line and benches: option files (YAML or JSON, read once, unknown
keys refused) and strategy specs (``"ewc:lambda_=100+replay:capacity=200"``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from retain.errors import RetainError
from retain.strategies import Strategy, make_strategy


def read_options(path: Path | str | None, known: Iterable[str]) -> dict[str, Any]:
    """The mapping in a YAML/JSON file; a clear error for a missing or malformed file and for
    keys outside ``known`` (so a typo never silently falls back to a default)."""
    if path is None:
        return {}
    try:
        options = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise RetainError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise RetainError(f"config file {path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(options, dict):
        raise RetainError(f"config file {path} must hold a mapping of options")
    known = sorted(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise RetainError(f"unknown keys in {path}: {unknown}; known: {known}")
    return options


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
