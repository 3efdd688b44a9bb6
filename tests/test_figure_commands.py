"""Published figures have commands: benchmarks/figure_commands.py finds none missing in the
README and the docs pages (and finds them where they are), and docs/reproduction.md's commands
give every row of its table exactly the seeds the table counts."""

import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from retain.bench.grid import expand
from retain.bench.reproduce import CELLS, cell_runs, select
from retain.cli.bench import parse_seeds, split_methods

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import figure_commands  # noqa: E402

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", [pytest.param(p, id=p.name) for p in PAGES])
def test_every_figure_has_a_command_next_to_it(page):
    missing = figure_commands.unexplained(page)
    assert missing == [], "\n".join(f"{page.name}:{line}: {found}" for line, found, _ in missing)


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


def test_a_command_may_set_its_environment_but_a_name_is_not_a_command(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Measured with `PYTHONPATH=src:PEERS python replay_accuracy.py`: 0.48.\n\n"
        "The `retain-balanced` row reached 0.47.\n\n"
        "The server binds to 127.0.0.1 and answers in 2.5 ms.\n")
    missing = figure_commands.unexplained(page)
    assert [(line, found) for line, found, _ in missing] == [(3, ["0.47"]), (5, ["2.5 ms"])]


def test_settings_config_blocks_and_tables_in_list_items(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Online EWC with γ = 0.9 and `lr=0.03`, tolerance (default 0.02).\n\n"
        "The config:\n\n```yaml\nlr: 0.03\nalpha: 0.5\n```\n\n"
        "- A list item's table, introduced by `retain bench --seeds 0`:\n\n"
        "  | seed | accuracy |\n  |---|---|\n  | 0 | 0.91 |\n\n"
        "- Without a command:\n\n  | seed | accuracy |\n  |---|---|\n  | 0 | 0.92 |\n\n"
        "Online EWC reached 0.93 with γ = 0.9.\n")
    missing = figure_commands.unexplained(page)
    assert [(line, found) for line, found, _ in missing] == [(20, ["0.92"]), (22, ["0.93"])]


def test_a_citation_covers_its_own_sentence_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Slip is 1–2 % (Randall & Antoni 2011). The envelope bins are 5.86 Hz.\n\n"
        "Smith & Randall (2015) report 0.95 on CWRU.\n\n"
        "The paper of [Zhang](https://example.org/wdcnn) reached 0.99.\n\n"
        "Measured 2026-12-03: the hybrid took 22.5 s.\n")
    missing = figure_commands.unexplained(page)
    assert [(line, found) for line, found, _ in missing] == [(1, ["5.86"]), (7, ["22.5 s"])]


def test_a_figure_held_by_the_named_source_file_is_its_constant(tmp_path):
    page = tmp_path / "page.md"
    source = "src/retain/bench/reproduce.py"
    lr = re.search(r'"gdumb:[^"]*", (\d\.\d+)\)', (ROOT / source).read_text()).group(1)
    page.write_text(f"GDumb retrains at lr {lr} (`{source}`).\n\n"
                    f"GDumb reached 81.97 (`{source}`).\n\n"
                    f"GDumb retrains at lr {lr} (`src/retain/no_such_file.py`).\n")
    missing = figure_commands.unexplained(page)
    assert [(line, found) for line, found, _ in missing] == [(3, ["81.97"]), (5, [lr])]


def test_a_multiple_written_onto_a_symbol_is_a_name_not_a_figure(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Impacts repeat at 2×BSF, with sidebands at 2×BSF ± FTF.\n\n"
                    "The raw model costs 5× the CPU, and 2× more at 3×.\n")
    missing = figure_commands.unexplained(page)
    assert [(line, found) for line, found, _ in missing] == [(3, ["5×", "2×", "3×"])]


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

