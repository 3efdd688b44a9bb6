"""Scenarios: how a dataset becomes a stream of experiences."""

from retain.scenarios.experience import Experience, Stream
from retain.scenarios.split_by import split_by
from retain.scenarios.splits import class_incremental, from_datasets, task_incremental
from retain.scenarios.transforms import permuted, rotate, rotated

__all__ = ["Experience", "Stream", "class_incremental", "task_incremental", "from_datasets",
           "permuted", "rotated", "rotate", "split_by"]
