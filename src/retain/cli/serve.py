"""``retain serve``: the prediction service over a store (see docs/serve.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        store: Annotated[Path, typer.Option("--store", help="the store folder (retain init)")],
        host: Annotated[str, typer.Option(help="address to bind; the default takes "
                                               "connections from this machine only")
                        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port (0: a free one, printed)")] = 8000,
        workers: Annotated[int, typer.Option(help="server processes")] = 1,
        token_file: Annotated[Path | None, typer.Option(
            help="file holding the bearer token for /learn, /rollback and /update (default: "
                 "$RETAIN_SERVE_TOKEN)")] = None,
        update_every: Annotated[int, typer.Option(
            help="update after this many labels (0: never by count)")] = 500,
        update_interval: Annotated[float, typer.Option(
            help="seconds between updates while labels wait (0: never by time)")] = 0,
        drift: Annotated[bool, typer.Option(
            help="also update when ADWIN sees the prequential error rise")] = False,
        min_update_rows: Annotated[int, typer.Option(help="fewest labels an update learns")
                                   ] = 20,
        tolerance: Annotated[float | None, typer.Option(
            help="the gate's tolerance (default: 0.02 for a tabular store, 0.1 for a "
                 "forecast store: a relative rise of the learnt days' MAE)")] = None,
        shadow: Annotated[bool, typer.Option(
            help="a promoted version predicts beside the current one first and takes over "
                 "only if its live error is no worse")] = False,
        shadow_labels: Annotated[int, typer.Option(help="labels a shadow trial scores")] = 200,
        pending_ttl: Annotated[float, typer.Option(
            help="seconds a prediction id waits for its label")] = 7 * 24 * 3600.0,
        max_rows: Annotated[int, typer.Option(help="most rows in one request")] = 1000,
        max_body_bytes: Annotated[int, typer.Option(help="largest request body")] = 1_000_000,
        poll: Annotated[float, typer.Option(help="seconds between checks for a new version")
                        ] = 1.0,
        retry_after: Annotated[float, typer.Option(
            help="seconds to wait after a failed update before the policy starts another")
                               ] = 60.0,
    ) -> None:
        """Serve predictions from a store and keep learning from the labels that come back.

        On a forecast store: the next horizon at /forecast, measured rows at /observe."""
        from retain.extras import require

        uvicorn = require("uvicorn", "serve")
        from retain.errors import RetainError
        from retain.serve import create_app
        from retain.serve.settings import SETTINGS_ENV, ServeSettings, read_token
        from retain.store.forecasts import ForecastStore, open_store

        forecasts = isinstance(open_store(store), ForecastStore)
        if forecasts and workers > 1:
            raise RetainError("a forecast store is served by one worker (its forecast is "
                              "computed once and kept); drop --workers")
        gate = {} if tolerance is None else (
            {"forecast_tolerance": tolerance} if forecasts else {"tolerance": tolerance})
        settings = ServeSettings(
            store=str(store.resolve()), token=read_token(token_file), max_rows=max_rows,
            max_body_bytes=max_body_bytes, pending_ttl=pending_ttl,
            update_every=update_every or None, update_interval=update_interval or None,
            drift=drift, min_update_rows=min_update_rows, shadow=shadow,
            shadow_labels=shadow_labels, poll=poll, retry_after=retry_after, **gate)
        if settings.token is None:
            writes = "/observe is" if forecasts else "/learn, /rollback and /update are"
            err.print(f"[yellow]no token[/yellow]: {writes} refused; "
                      "pass --token-file or set $RETAIN_SERVE_TOKEN")
        if host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"[yellow]listening on {host}[/yellow]: other machines can reach it")
        if workers <= 1:
            import torch

            torch.set_num_threads(1)  # tiny forward passes: intra-op threads only contend
            app: Any = create_app(settings.store, settings)
        else:
            create_app(settings.store, settings)  # refuses a bad store before starting workers
            app = "retain.serve.app:app_from_env"
        config = uvicorn.Config(app, factory=workers > 1, host=host, port=port, workers=workers,
                                log_level="warning", access_log=False)
        sock = config.bind_socket()  # bound here, so that --port 0 can print the port it got
        shown = f"[{host}]" if ":" in host else host
        err.print(f"serving {store} on http://{shown}:{sock.getsockname()[1]} ({workers} worker"
                  f"{'s' if workers > 1 else ''}; API at /docs)", highlight=False, soft_wrap=True)
        if workers <= 1:
            config.load_app()
            with suppress(KeyboardInterrupt):
                uvicorn.Server(config).run(sockets=[sock])
            return
        from uvicorn.supervisors import Multiprocess

        metrics = tempfile.mkdtemp(prefix="retain-serve-metrics-")
        os.environ.update({SETTINGS_ENV: settings.to_json(), "PROMETHEUS_MULTIPROC_DIR": metrics})
        try:
            with suppress(KeyboardInterrupt):
                Multiprocess(config, sockets=[sock]).run()
        finally:
            shutil.rmtree(metrics, ignore_errors=True)
