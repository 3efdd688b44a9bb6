"""Saving learners and keeping a versioned, gated model store (see docs/store.md).

- :func:`save_learner` / :func:`load_learner`: one learner in a checkpoint folder
  (safetensors + a JSON manifest, never pickle), resumable exactly.
- :class:`Store`: a folder of versions with a SQLite history, the gated daily ``update``,
  ``rollback``, ``predict`` and ``export``.
"""

from retain.extras import require

require("pandas", "data")  # the store reads and writes tables

from retain.checkpoint import Checkpoint, load_learner, open_checkpoint, save_learner  # noqa: E402
from retain.store.guard import DivergenceError, DivergenceGuard  # noqa: E402
from retain.store.registry import Version  # noqa: E402
from retain.store.store import Store  # noqa: E402

__all__ = ["Checkpoint", "DivergenceError", "DivergenceGuard", "Store", "Version",
           "load_learner", "open_checkpoint", "save_learner"]
