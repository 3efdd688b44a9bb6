"""Named catalogs filled explicitly, extended by entry points: every name a user can type.

Strategies, models, scenarios, buffer policies, optimizers, schedulers and datasets are each
a :class:`Catalog`, with the same error for an unknown name and the same extension.

A :class:`Catalog` maps a name to an object. Its entries are given where the catalog is made,
either as the object itself or as a ``"module:attribute"`` reference that is imported on first
use (so a core catalog can name an application's strategy without importing it); nothing is
added as a side effect of importing a module. Third-party packages add entries with an entry
point in their ``pyproject.toml``::

    [project.entry-points."retain.strategies"]
    my-replay = "my_package.replay:MyReplay"

after which ``retain run --strategy my-replay`` and ``load_learner`` find it. The groups:
``retain.strategies``, ``retain.models``, ``retain.scenarios``, ``retain.buffers``,
``retain.optimizers``, ``retain.schedulers``, ``retain.datasets``, ``retain.forecast_approaches``
(a factory building the approach from the run's settings).

    >>> numbers = Catalog("number", {"one": 1, "pi": "math:pi"})
    >>> numbers["pi"]
    3.141592653589793
    >>> sorted(numbers)
    ['one', 'pi']
    >>> try:
    ...     numbers["two"]
    ... except KeyError as exc:
    ...     print(exc.args[0])
    unknown number 'two'; choose one of one, pi
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import Any

from retain.errors import RetainError


class Catalog(Mapping[str, Any]):
    """``name -> object``, from explicit entries and the entry-point ``group``.

    Args:
        kind: what the entries are, for error messages ("strategy", "model", ...).
        entries: name -> the object, or a ``"module:attribute"`` reference imported when
            first looked up.
        group: entry-point group whose entries are added on first use (``None``: none).
    """

    def __init__(self, kind: str, entries: Mapping[str, Any] | None = None,
                 group: str | None = None):
        self.kind = kind
        self.group = group
        self._entries: dict[str, Any] = dict(entries or {})
        self._plugins_loaded = group is None

    def add(self, name: str, obj: Any) -> Any:
        """Add (or replace) ``name``; returns ``obj`` so it can decorate a class."""
        self._entries[name] = obj
        return obj

    def _plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry in metadata.entry_points(group=self.group):
            self._entries.setdefault(entry.name, entry.value)

    def __getitem__(self, name: str) -> Any:
        self._plugins()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; choose one of "
                           f"{', '.join(sorted(self._entries))}")
        value = self._entries[name]
        if isinstance(value, str) and ":" in value:
            module, _, attr = value.partition(":")
            value = self._entries[name] = getattr(importlib.import_module(module), attr)
        return value

    def require(self, name: str) -> Any:
        """``self[name]``, with an unknown name a :class:`~retain.errors.RetainError` carrying
        the same message (for names a user typed)."""
        try:
            return self[name]
        except KeyError as exc:
            raise RetainError(exc.args[0]) from None

    def __iter__(self) -> Iterator[str]:
        self._plugins()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._plugins()
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        self._plugins()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Catalog({self.kind!r}, {sorted(self)})"
