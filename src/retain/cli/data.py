"""``retain data``: download built-in datasets and show where they are cached."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from retain.errors import RetainError

app = typer.Typer(
    help="Download built-in datasets and show where they are cached "
    "($RETAIN_DATA, else the user cache folder).",
    no_args_is_help=True,
)
err = Console(stderr=True)

RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Base data folder (default: $RETAIN_DATA, else the user cache folder).",
        file_okay=False,
    ),
]


def _lookup(name: str):
    from retain.datasets import BUNDLED, FETCHABLE

    key = name.lower()
    if key in FETCHABLE:
        return FETCHABLE[key]
    if key in BUNDLED:
        err.print(f"[bold]{key}[/bold]: {BUNDLED[key]}")
        raise typer.Exit(0)
    err.print(
        f"[red]error:[/red] unknown dataset {name!r}; "
        f"known: {', '.join(sorted([*FETCHABLE, *BUNDLED]))}"
    )
    raise typer.Exit(2)


@app.command()
def fetch(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. mnist.")],
    root: RootOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Download even if present.")] = False,
) -> None:
    """Download NAME into the cache and verify its checksums."""
    spec = _lookup(name)
    start = time.perf_counter()
    try:
        folder = spec.fetch(root, force=force, progress=lambda m: err.print(f"  {escape(m)}"))
    except RetainError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        raise typer.Exit(1) from e
    took = time.perf_counter() - start
    err.print(f"[green]{name.lower()} ready[/green] in {escape(str(folder))} ({took:.1f} s)")


@app.command()
def path(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. mnist.")],
    root: RootOpt = None,
) -> None:
    """Print the folder NAME is (or would be) stored in."""
    spec = _lookup(name)
    typer.echo(str(spec.path(root)))


@app.command("list")
def list_() -> None:
    """List built-in datasets and whether they are downloaded."""
    from retain.datasets import BUNDLED, FETCHABLE

    for key, spec in FETCHABLE.items():
        folder = spec.path(None)
        state = "present" if folder.is_dir() and any(folder.iterdir()) else "not fetched"
        typer.echo(f"{key:10} {state:12} {spec.about}  [{folder}]")
    for key, about in BUNDLED.items():
        typer.echo(f"{key:10} {'bundled':12} {about}")
