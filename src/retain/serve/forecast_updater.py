"""The forecast server's update process: the store's gated update, away from the server.

Run by :class:`~retain.serve.forecast_service.ForecastState` as
``python -m retain.serve.forecast_updater STORE TOLERANCE`` with the rows the store lacks on
stdin (JSON records, the time as ISO 8601 text), at the lowest CPU priority: learning a day
takes neither the server's CPU nor its interpreter lock, so ``GET /forecast`` never waits for
it. It prints the versions decided (JSON) on stdout; an error is its last stderr line and exit
status 2. Killed half way, it leaves the store as :meth:`ForecastStore.update` does: the rows
kept, the last good version serving.
"""

from __future__ import annotations

import json
import sys

import pandas as pd
import torch

from retain.errors import RetainError
from retain.serve.updater import _lowest_priority
from retain.store.forecasts import ForecastStore


def main(argv: list[str]) -> int:
    _lowest_priority()
    torch.set_num_threads(1)
    store, tolerance = argv
    rows = pd.DataFrame(json.load(sys.stdin))
    try:
        decided = ForecastStore(store).update(rows, tolerance=float(tolerance))
    except RetainError as exc:
        print(exc, file=sys.stderr)
        return 2
    json.dump([{"id": v.id, "status": v.status, "reason": v.reason} for v in decided],
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
