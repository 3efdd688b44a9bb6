"""Datasets for retain: built-in MNIST and digits, plus loaders for your own files.

Every loader returns ``(train, test)`` ``TensorDataset`` pairs so they plug
straight into the training API. To add a dataset, write a module here and add
its names below (and to ``FETCHABLE`` if it must be downloaded).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from retain.catalog import Catalog
from retain.datasets.digits import digits
from retain.datasets.files import as_dataset, data_home, from_arrays, load
from retain.datasets.mnist import fetch_mnist, mnist, mnist_dir, read_idx


class Fetchable(NamedTuple):
    """A dataset that is downloaded once into the cache (used by ``retain data``)."""

    fetch: Callable[..., Path]  # fetch(root=None, force=False, progress=None) -> folder
    path: Callable[[Any], Path]  # path(root=None) -> folder it is (or would be) stored in
    about: str


#: datasets ``retain data fetch`` downloads (entry-point group ``retain.datasets``, whose
#: entries are :class:`Fetchable`)
FETCHABLE: Catalog = Catalog("dataset", {
    "mnist": Fetchable(fetch_mnist, mnist_dir, "MNIST handwritten digits, 70k 28x28 (11 MB)"),
}, group="retain.datasets")

#: datasets that need no download, with a one-line reason (shown by the CLI)
BUNDLED: Catalog = Catalog("bundled dataset", {
    "digits": "ships with scikit-learn; nothing to fetch",
})

__all__ = [
    "BUNDLED",
    "FETCHABLE",
    "Fetchable",
    "as_dataset",
    "data_home",
    "digits",
    "fetch_mnist",
    "from_arrays",
    "load",
    "mnist",
    "mnist_dir",
    "read_idx",
]
