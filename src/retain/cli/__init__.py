"""The ``retain`` command. Each sub-module registers its commands on the one Typer app."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from retain.errors import RetainError

app = typer.Typer(
    name="retain",
    help="Incremental training of neural networks: learn new data without forgetting.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)

# modules with a ``register(app)`` function; add yours here
COMMAND_MODULES = (
    "retain.cli.run",
    "retain.cli.data",
    "retain.cli.bench",
    "retain.cli.store",
    "retain.cli.forecast",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "register"):
            module.register(app)
        elif hasattr(module, "app"):
            app.add_typer(module.app, name=name.rsplit(".", 1)[-1])


_register()


def main() -> None:
    """Entry point: user errors become one red line and exit status 2, not a traceback."""
    try:
        app()
    except RetainError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
