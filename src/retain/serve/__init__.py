"""A prediction service over a model store that keeps learning (see docs/serve.md).

``retain serve --store DIR`` or :func:`create_app` (FastAPI): ``/predict`` logs every
prediction with its features; ``/learn`` takes the labels when they come, scores the logged
prediction first (test-then-train) and keeps them durably; an update policy runs the store's
gated update in a separate process, and every worker switches to a promoted version atomically.
On a forecast store it serves ``/forecast`` and takes measured rows at ``/observe`` instead
(:mod:`retain.serve.forecast_app`).
"""

from retain.extras import require

require("fastapi", "serve")
require("uvicorn", "serve")
require("prometheus_client", "serve")

from retain.serve.factory import create_app  # noqa: E402
from retain.serve.settings import ServeSettings  # noqa: E402

__all__ = ["ServeSettings", "create_app"]
