"""The forecasting approaches: one catalog, each class with a docstring example (run by the
doctests), and the package split by role: deploying a forecaster loads nothing of the
backtest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from retain.errors import RetainError
from retain.forecasting.approaches import APPROACHES, Approach, Settings, make_approaches

SETTINGS = Settings(horizon=24, season=168, period=24, build=lambda: None)


@pytest.mark.parametrize("name", list(APPROACHES))
def test_every_catalogued_approach_is_built_and_its_class_has_an_example(name):
    approach = make_approaches([name], SETTINGS)[0]
    assert isinstance(approach, Approach) and approach.name == name
    assert ">>> " in (type(approach).__doc__ or ""), f"{type(approach).__name__} has no example"


def test_an_unknown_name_is_refused_by_the_catalog_before_any_is_built():
    with pytest.raises(RetainError, match="unknown approach 'magic'; choose one of frozen, gbm"):
        make_approaches(["replay", "magic"], SETTINGS)
    with pytest.raises(RetainError, match="listed twice"):
        make_approaches(["replay", "replay"], SETTINGS)
    assert APPROACHES.group == "retain.forecast_approaches"


def test_deploying_a_forecaster_loads_nothing_of_the_backtest():
    code = ("import sys\n"
            "from retain.forecasting import Forecaster, synthetic\n"
            "import retain.forecasting.forecaster, retain.forecasting.bundle\n"
            "print(sorted(m for m in sys.modules if m.startswith('retain.forecasting.backtest')"
            " or m.split('.')[0] == 'matplotlib'))\n"
            "from retain.forecasting import run_experiment\n"
            "print(run_experiment.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "retain.forecasting.backtest.run"]


def test_the_command_line_help_names_every_catalogued_approach_and_the_defaults():
    """`retain forecast --help` writes the names out (importing the catalog would slow every
    `retain` command): they must be the catalog's, and the default the experiment's."""
    import re

    import typer

    from retain.cli.forecast import register
    from retain.forecasting.experiment import DEFAULT_APPROACHES

    app = typer.Typer()
    register(app)
    [option] = [p for p in typer.main.get_command(app).params if p.name == "approaches"]
    default, also = re.fullmatch(r"comma-separated \(default: (.*)\); also available: (.*)",
                                 option.help).groups()
    assert tuple(default.split(",")) == DEFAULT_APPROACHES
    assert sorted(default.split(",") + also.split(", ")) == sorted(APPROACHES)
