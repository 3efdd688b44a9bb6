"""Option files (YAML or JSON) for the command line: read once, unknown keys refused."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from retain.errors import RetainError


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
