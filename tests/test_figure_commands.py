"""Published figures have commands: benchmarks/figure_commands.py finds none missing in the
README (and finds them where they are), and docs/reproduction.md's commands give every row of
its table exactly the seeds the table counts."""

import re
import shlex
import sys
from pathlib import Path

import yaml

from retain.bench.grid import expand
from retain.bench.reproduce import CELLS, cell_runs, select
from retain.cli.bench import parse_seeds, split_methods

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import figure_commands  # noqa: E402


def test_every_figure_in_the_readme_has_a_command_next_to_it():
    missing = figure_commands.unexplained(ROOT / "README.md")
    assert missing == [], "\n".join(f"README.md:{line}: {found}" for line, found, _ in missing)


def test_the_check_lists_figures_without_a_command(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Speed\n\nThe demo took 47 s and scored 0.877 on 2026-12-02 with torch 2.13.0.\n\n"
        "The demo (`retain demo`) took 47 s.\n\n"
        "Versions only: Python 3.11, an MLP 784-100-100-10, `--lr 0.03`, 5 tasks.\n\n"
        "| strategy | accuracy |\n|---|---|\n| replay | 0.88 |\n\n"
        "```bash\nretain run --strategy replay\n```\n\nIt reached 0.88 (+68 points).\n")
    missing = figure_commands.unexplained(page)
    assert [(line, found) for line, found, _ in missing] == [
        (3, ["47 s", "0.877"]), (11, ["0.88"])]
    assert figure_commands.main([str(page)]) == 1


def _reproduction_commands() -> list[list[str]]:
    text = (ROOT / "docs" / "reproduction.md").read_text()
    block = re.search(r"```console\n(.*?)```", text, re.S).group(1).replace("\\\n", " ")
    return [shlex.split(line[2:]) for line in block.splitlines()
            if "--reproduce buzzega2020" in line]


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_reproduction_commands_give_every_row_its_seeds():
    seeds: dict[tuple, set[int]] = {}
    for args in _reproduction_commands():
        tables = _option(args, "--tables")
        methods = _option(args, "--methods")
        for cell in select("buzzega2020", tables and tables.split(","),
                           methods and split_methods(methods)):
            seeds.setdefault((cell.table, cell.method, cell.buffer), set()).update(
                parse_seeds(_option(args, "--seeds")))
    text = (ROOT / "docs" / "reproduction.md").read_text()
    rows = re.findall(r"^\| ((?:seq|perm|rot)-mnist) \| (.+?) \| (\d+|–) \| [^|]+ \| [^|]+ \| "
                      r"(\d+) \|", text, re.M)
    assert len(rows) == len(CELLS)
    for table, method, buffer, count in rows:
        key = (table, method, None if buffer == "–" else int(buffer))
        assert seeds[key] == set(range(int(count))), key


def test_the_oewc_lambda_grid_config_runs_the_reproduction_settings():
    config = yaml.safe_load((ROOT / "benchmarks" / "buzzega2020_pmnist_oewc_lambda.yaml")
                            .read_text())
    runs = {run["id"]: run for run in expand(config)}
    [cell] = [c for c in CELLS if (c.table, c.method) == ("perm-mnist", "oEWC")]
    assert cell_runs(cell, [0])[0]["id"] in runs  # λ = 4 of the grid is the cell's seed 0
    lambdas = sorted({s[0][1]["lambda_"] for s in (r["strategy"] for r in runs.values())})
    assert lambdas == [4, 10, 30, 100] and len(runs) == 8
