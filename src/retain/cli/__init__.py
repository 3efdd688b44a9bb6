"""The ``retain`` command. Command modules are imported only when their command runs.

Why: importing every command module (and with them torch and matplotlib) took seconds before
``retain --help`` could print a line. The table below gives each command's module and the first
paragraph of its help, which is all ``--help`` shows; tests check it against the modules.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

try:
    import typer
    from rich.console import Console
    from rich.markup import escape
    from typer.core import TyperCommand, TyperGroup
except ImportError as exc:  # the command needs the cli extra; the library does not
    raise SystemExit(
        f"the retain command needs an extra: pip install 'retain[cli]' ({exc})") from exc

from retain.errors import RetainError

#: command name -> (module with ``register(app)`` or a Typer ``app``, first paragraph of its help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("retain.cli.run", "Train strategies on a scenario and compare what they remember."),
    "demo": ("retain.cli.run", "The main job: Naive, EWC, LwF and Replay side by side on "
             "class-incremental Split\nMNIST (MLP 100-100, 1 epoch, batch 10)."),
    "bench": ("retain.cli.bench", "Run scenario × strategies × hyper-parameters × seeds; resume "
              "an interrupted grid."),
    "init": ("retain.cli.store", "Create a store and train its first version on DATA (history)."),
    "update": ("retain.cli.store", "Learn DATA on top of the current version; promote it only if "
               "it passes the gate.\nExit status 0: promoted, 1: rejected, 2: error."),
    "history": ("retain.cli.store", "Every version: the version it learned from, status, end of "
                "its data, holdout and\nreplay-memory errors, and why ('*' marks the current "
                "one)."),
    "rollback": ("retain.cli.store", "Make an earlier version current again."),
    "predict": ("retain.cli.store", "Write predictions for DATA as CSV to stdout."),
    "export": ("retain.cli.store", "Write a version's plain weights (safetensors, with its recipe "
               "as metadata)."),
    "serve": ("retain.cli.serve", "Serve predictions from a store and keep learning from the "
              "labels that come back."),
    "forecast": ("retain.cli.forecast", "Forecast each day, score it, then learn it: incremental "
                 "updates against a frozen\nmodel, seasonal-naive and retraining from scratch."),
    "data": ("retain.cli.data", "Download built-in datasets and show where they are cached "
             "($RETAIN_DATA, else the user cache folder)."),
}


def load_commands(module_name: str) -> dict[str, Any]:
    """The click commands a command module defines, by name (imports the module)."""
    module = importlib.import_module(module_name)
    holder = typer.Typer()
    if hasattr(module, "register"):
        module.register(holder)
    else:
        holder.add_typer(module.app, name=module_name.rsplit(".", 1)[-1])
    commands = dict(typer.main.get_group(holder).commands)
    for name, command in commands.items():
        show_defaults(command, getattr(module, "OPTION_DEFAULTS", {}).get(name, {}))
    return commands


def show_defaults(command: Any, effective: dict[str, Any]) -> None:
    """Every option's default in ``--help``: its own; for an option whose default is ``None``
    (taken from a config file, else from the command module's ``OPTION_DEFAULTS``), the value
    it gets, or ``none``."""
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "option":
            continue
        if param.is_flag and not param.secondary_opts:  # click shows no default for these
            param.show_default = "on" if param.default else "off"
        elif param.default is None:
            value = effective.get(param.name)
            param.show_default = ("none" if value is None else
                                  ", ".join(map(str, value)) if isinstance(value, list | tuple)
                                  else str(value))
        else:
            param.show_default = True
    for sub in getattr(command, "commands", {}).values():
        show_defaults(sub, effective)


class LazyGroup(TyperGroup):
    """Lists commands from :data:`COMMANDS`; imports a command's module only to run it."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in COMMANDS:  # a stand-in with the help text, for listings
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])
        return None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if name in COMMANDS and name not in self.commands:
            self.commands.update(load_commands(COMMANDS[name][0]))
            command = self.commands[name]
        return name, command, rest


app = typer.Typer(
    name="retain",
    help="Incremental training of neural networks: learn new data without forgetting.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,
)
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    # a callback makes Typer build a group even though no command is registered up front
    pass


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
