"""What a server is started with: the store, the token, the limits and the update policy.

The settings travel to uvicorn's worker processes as JSON in an environment variable, so every
worker of ``retain serve --workers N`` builds the same app.

>>> s = ServeSettings(store="demand-store", update_every=100)
>>> ServeSettings.from_json(s.to_json()) == s
True
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from retain.errors import RetainError

TOKEN_ENV = "RETAIN_SERVE_TOKEN"
SETTINGS_ENV = "RETAIN_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServeSettings:
    """Options of a server (the same as ``retain serve``'s flags).

    ``update_every``: labels that trigger an update (``None``: never by count);
    ``update_interval``: seconds between updates while labels wait (``None``: never by time);
    ``drift``: also update when a detector sees the prequential error rise;
    ``min_update_rows``: fewest labels an update learns; ``tolerance``: the gate's;
    ``pending_ttl``: seconds a prediction waits for its label; ``shadow``: a promoted version
    first predicts beside the current one for ``shadow_labels`` labels and takes over only if
    its live error is no worse; ``poll``: seconds between checks for a new version;
    ``retry_after``: seconds the policy waits after a failed update before it starts another
    (a failed update leaves its labels waiting, so without a pause every new label would start
    the same failing update again; ``POST /update`` is not held back);
    ``forecast_tolerance``: the gate's tolerance over a forecast store (a relative rise of the
    learnt days' MAE, see :mod:`retain.store.forecasts`).
    """

    store: str
    token: str | None = None
    max_rows: int = 1000
    max_body_bytes: int = 1_000_000
    pending_ttl: float = 7 * 24 * 3600.0
    update_every: int | None = 500
    update_interval: float | None = None
    drift: bool = False
    min_update_rows: int = 20
    tolerance: float = 0.02
    shadow: bool = False
    shadow_labels: int = 200
    poll: float = 1.0
    retry_after: float = 60.0
    forecast_tolerance: float = 0.1

    def __post_init__(self) -> None:
        positive = {"max_rows": self.max_rows, "max_body_bytes": self.max_body_bytes,
                    "pending_ttl": self.pending_ttl, "min_update_rows": self.min_update_rows,
                    "shadow_labels": self.shadow_labels, "poll": self.poll,
                    "retry_after": self.retry_after or 1,
                    "update_every": self.update_every or 1,
                    "update_interval": self.update_interval or 1}
        bad = [f"{k}={v}" for k, v in positive.items() if not v > 0]
        if bad:
            raise RetainError(f"these settings must be positive: {', '.join(bad)}")
        if not self.forecast_tolerance >= 0:
            raise RetainError(f"forecast_tolerance must be >= 0, got {self.forecast_tolerance}")
        if self.min_update_rows < 5:
            raise RetainError("min_update_rows must be at least 5: the gate keeps a holdout "
                              "out of every update")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def path(self) -> Path:
        return Path(self.store)


def read_token(token_file: str | Path | None) -> str | None:
    """The bearer token from ``token_file`` (first line), else ``$RETAIN_SERVE_TOKEN``."""
    if token_file is not None:
        path = Path(token_file)
        if not path.is_file():
            raise RetainError(f"token file not found: {path}")
        token = path.read_text().strip().splitlines()[0].strip() if path.read_text().strip() \
            else ""
        if not token:
            raise RetainError(f"the token file {path} is empty")
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if token and len(token) < 16:
        raise RetainError("the token is shorter than 16 characters; make a long random one, "
                          "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return token or None
