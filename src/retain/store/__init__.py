"""Saving learners and keeping a versioned, gated model store (see docs/store.md).

- :func:`save_learner` / :func:`load_learner`: one learner in a checkpoint folder
  (safetensors + a JSON manifest, never pickle), resumable exactly.
- :class:`Store`: a folder of versions with a SQLite history, the gated daily ``update``,
  ``rollback``, ``predict`` and ``export``.
"""

from retain.checkpoint import Checkpoint, load_learner, open_checkpoint, save_learner
from retain.store.guard import DivergenceError, DivergenceGuard
from retain.store.registry import Version
from retain.store.store import Store

__all__ = ["Checkpoint", "DivergenceError", "DivergenceGuard", "Store", "Version",
           "load_learner", "open_checkpoint", "save_learner"]
