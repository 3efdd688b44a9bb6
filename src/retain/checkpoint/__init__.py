"""The checkpoint format: one learner in a folder (safetensors + a JSON manifest, never pickle).

This layer sits above the core (it imports :class:`retain.learner.Learner` and the catalog of
strategies and models) and below the applications (:mod:`retain.store`, the CLI). It needs
torch, numpy and safetensors only. ``Learner.save``/``Learner.load`` call the folder format,
which takes the learner class as an argument rather than importing it: no circle.

- :mod:`retain.checkpoint.format`: the folder layout, :func:`save_learner`, reading and
  verifying the sections, rebuilding a learner of a given class from them.
- :mod:`retain.checkpoint.reading`: :class:`Checkpoint`, :func:`open_checkpoint`,
  :func:`load_learner` (these build a :class:`retain.Learner`).
- :mod:`retain.checkpoint.recipes`: rebuilding model, loss, optimizer, scheduler and strategies
  from names, without importing code a manifest names.
- :mod:`retain.checkpoint.serialize`: nested state with tensors <-> JSON + flat tensor dicts.
- :mod:`retain.checkpoint.atomic`: crash-safe writes of files and folders.
"""

from retain.checkpoint.format import save_learner
from retain.checkpoint.reading import Checkpoint, load_learner, open_checkpoint

__all__ = ["Checkpoint", "load_learner", "open_checkpoint", "save_learner"]
