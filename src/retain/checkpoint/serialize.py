"""Nested state as JSON plus a flat dict of tensors: the pickle-free form of a checkpoint.

``flatten`` walks a state dict (dicts, lists, tuples, tensors, numpy arrays, numbers, strings)
and replaces every tensor with a reference ``{"__tensor__": key}``; the tensors go to a flat
``{key: tensor}`` dict for safetensors. Keys are the path to the tensor (``state/0/exp_avg``),
so they are stable across saves. What JSON cannot say by itself (tuples, dicts with integer keys,
numpy arrays) is tagged, so ``unflatten`` gives back the same structure. Anything else fails
loudly: a checkpoint never holds an object that needs code to rebuild.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from retain.errors import RetainError

TENSOR, ARRAY, TUPLE, ITEMS = "__tensor__", "__ndarray__", "__tuple__", "__items__"
_TAGS = {TENSOR, ARRAY, TUPLE, ITEMS}
_SCALARS = (str, int, float, bool, type(None))


def flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """JSON-able skeleton of ``obj``; its tensors are added to ``tensors`` under their path."""
    if isinstance(obj, torch.Tensor):
        return {TENSOR: _put(tensors, path, obj.detach())}
    if isinstance(obj, np.ndarray):
        return {ARRAY: _put(tensors, path, torch.from_numpy(np.ascontiguousarray(obj)))}
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {TUPLE: [flatten(v, tensors, _join(path, i)) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, _join(path, i)) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not _TAGS & obj.keys():
            return {k: flatten(v, tensors, _join(path, k)) for k, v in obj.items()}
        bad = [k for k in obj if not isinstance(k, _SCALARS)]
        if bad:
            raise RetainError(f"cannot store the dict key {bad[0]!r} at {path or '/'!r} in a "
                              "checkpoint: keys must be strings or numbers")
        return {ITEMS: [[k, flatten(v, tensors, _join(path, k))] for k, v in obj.items()]}
    raise RetainError(
        f"cannot store a {type(obj).__module__}.{type(obj).__qualname__} at {path or '/'!r} in "
        "a checkpoint: only tensors, numpy arrays, numbers, strings, lists and dicts can be "
        "saved without pickle. Keep such objects out of state_dict(), or store their data.")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag == TENSOR:
            return _get(tensors, value)
        if tag == ARRAY:
            return _get(tensors, value).numpy()
        if tag == TUPLE:
            return tuple(unflatten(v, tensors) for v in value)
        if tag == ITEMS:
            return {k: unflatten(v, tensors) for k, v in value}
    return {k: unflatten(v, tensors) for k, v in obj.items()}


def _join(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


def _put(tensors: dict[str, torch.Tensor], key: str, tensor: torch.Tensor) -> str:
    if key in tensors:
        raise RetainError(f"two tensors of the state map to the same key {key!r}")
    tensors[key] = tensor
    return key


def _get(tensors: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    try:
        return tensors[key]
    except KeyError:
        raise RetainError(f"the checkpoint's tensor files lack the tensor {key!r}") from None
