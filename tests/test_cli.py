"""The `retain` command: JSON output, reports, configs and one-line errors."""

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "retain.cli"]


def _retain(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # small models: one thread, no contention
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=env)


def test_run_writes_json_results_and_report(tmp_path):
    out = tmp_path / "out"
    proc = _retain("run", "--scenario", "split-digits", "--strategy", "naive",
                   "--strategy", "replay:capacity=200", "--epochs", "2", "--lr", "0.05",
                   "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)  # stdout is pure JSON; progress and table go to stderr
    naive = payload["results"]["naive"]
    replay = payload["results"]["replay:capacity=200"]
    assert len(naive["accuracy_matrix"]) == 5
    assert replay["average_accuracy"] > naive["average_accuracy"] + 0.2
    for name in ("results.json", "index.html", "curves.png", "matrix-naive.png"):
        assert (out / name).stat().st_size > 0
    assert "matrix-naive.png" in (out / "index.html").read_text()


def test_config_file_gives_the_same_keys(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("scenario: split-digits\nstrategy: [naive]\nepochs: 1\nbatch_size: 64\n")
    proc = _retain("run", "--config", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["batch_size"] == 64


@pytest.mark.parametrize("args, message", [
    (["run", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["run", "--scenario", "split-digits", "--strategy", "foo"], "unknown strategy 'foo'"),
    (["run", "--scenario", "split-digits", "--strategy", "ewc:lamda=1"],
     "has no hyper-parameter 'lamda'"),
    (["run", "--scenario", "missing.csv"], "missing.csv"),
    (["run", "--config", "nowhere.yaml"], "does not exist"),
])
def test_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    proc = _retain(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in " ".join(proc.stderr.split())


def test_bad_config_keys_are_named(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("scenario: split-digits\nepoch: 3\n")
    proc = _retain("run", "--config", str(config))
    assert proc.returncode == 2 and "epoch" in proc.stderr


def _demo_results():
    import numpy as np

    from retain.cli.run import DEMO
    from retain.metrics import RunResult

    matrix = np.array([[0.9, 0.1], [0.4, 0.8]])
    return {label: RunResult(matrix, np.array([0.1, 0.1]), [1.0, 1.0], [10, 10],
                             flips=[{"negative": 0.1, "positive": 0.2}] * 2)
            for label in DEMO["strategy"]}


def _table_text(console_args) -> str:
    from io import StringIO

    from rich.console import Console

    from retain.cli.run import print_table

    out = StringIO()
    print_table(_demo_results(), "demo", Console(file=out, color_system=None, **console_args))
    return out.getvalue()


def test_a_piped_table_keeps_each_strategy_on_one_line():
    text = _table_text({"width": 80})  # not a terminal: as `retain demo | cat`
    from retain.cli.run import DEMO

    for label in DEMO["strategy"]:
        assert sum(f"│ {label} " in line for line in text.splitlines()) == 1, (label, text)


def test_an_80_column_terminal_table_fits_and_breaks_names_between_words():
    from retain.cli.run import DEMO

    text = _table_text({"width": 80, "force_terminal": True})
    assert max(map(len, text.splitlines())) <= 80, text
    words = {w for label in DEMO["strategy"] for w in label.replace(":", " ").replace(",", " ")
             .split()}
    assert all(w in text for w in words), text  # no name folded inside a word
    for number in ("0.600", "-0.500", "2.0"):  # average, BWT, seconds: numbers whole
        assert number in text, text


def test_every_option_of_every_command_shows_its_default():
    from retain.cli import COMMANDS, load_commands

    for module in sorted({module for module, _ in COMMANDS.values()}):
        for name, command in load_commands(module).items():
            stack = [command]
            while stack:
                cmd = stack.pop()
                stack.extend(getattr(cmd, "commands", {}).values())
                hidden = [p.name for p in cmd.params if p.param_type_name == "option"
                          and not isinstance(p.show_default, str)
                          and (p.default is None or not p.show_default
                               or (p.is_flag and not p.secondary_opts))]
                assert not hidden, f"retain {name}: no default shown for {hidden}"


def test_run_help_shows_the_defaults_it_runs_with():
    from typer.testing import CliRunner

    from retain.cli import app

    out = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    for shown in ("[default: (split-digits)]", "[default: (naive)]", "[default: (0.03)]",
                  "[default: (10)]"):
        assert shown in out, out
