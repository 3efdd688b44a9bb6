"""retain's strategies inside Lightning: a ``LightningModule`` that learns experience after
experience, one ``trainer.fit`` per data module, with EWC, online EWC, LwF, Replay, DER++ or
any retain strategy, and keeps their state in Lightning checkpoints.

Needs ``pip install 'retain[lightning]'``. See :class:`retain.lightning.module.RetainModule`.
"""

from retain.extras import require

require("lightning", "lightning")  # a clear error naming the extra, before importing it

from retain.lightning.module import RetainModule  # noqa: E402

__all__ = ["RetainModule"]
