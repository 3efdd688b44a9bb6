"""The catalogs: explicit entries, every recorded name rebuildable, entry points for plugins."""

import subprocess
import sys
import textwrap

import pytest

from retain.catalog import Catalog
from retain.models import MODELS
from retain.scenarios.catalog import CONTRIBUTED, all_scenarios, scenario_spec
from retain.strategies import STRATEGIES, Strategy, make_strategy


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_is_found_by_the_name_it_records(name):
    cls = STRATEGIES[name]
    assert issubclass(cls, Strategy) and cls.name == name
    assert make_strategy(name).name == name


def test_application_strategies_are_in_the_catalog_without_importing_their_package():
    code = ("import sys\nfrom retain.strategies import STRATEGIES\n"
            "names = sorted(STRATEGIES)\n"
            "print('divergence-guard' in names, 'replay-stratified' in names,"
            " 'retain.forecasting' in sys.modules, 'retain.store' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "False", "False"]


def test_models_and_contributed_scenarios_resolve():
    assert all(callable(MODELS[name]) for name in MODELS)
    assert set(CONTRIBUTED) <= set(all_scenarios())
    assert all(scenario_spec(name).description for name in CONTRIBUTED)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="unknown model 'nope'; choose one of"):
        MODELS["nope"]
    with pytest.raises(ValueError, match="unknown strategy 'nope'; choose one of .*replay"):
        make_strategy("nope")


def test_a_catalog_entry_added_at_run_time():
    catalog = Catalog("thing", {"a": 1})
    assert catalog.add("b", 2) == 2 and dict(catalog) == {"a": 1, "b": 2}


def test_a_third_party_strategy_is_found_by_its_entry_point(tmp_path):
    """A package that declares ``[project.entry-points."retain.strategies"]`` is found by
    make_strategy (so by ``retain run --strategy`` and ``load_learner``) with no import."""
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent('''
        from retain.strategies import Naive

        class Plain(Naive):
            """Naive under another name."""
            name = "my-plain"
    '''))
    info = tmp_path / "my_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[retain.strategies]\nmy-plain = my_plugin:Plain\n")
    code = ("from retain.strategies import make_strategy\n"
            "print(type(make_strategy('my-plain')).__name__)")
    env_path = f"{tmp_path}:{':'.join(p for p in sys.path if p)}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": env_path}).stdout.strip()
    assert out == "Plain"


def _registries():
    from retain.buffers import BUFFERS
    from retain.datasets import BUNDLED, FETCHABLE
    from retain.optim import OPTIMIZERS, SCHEDULERS

    return {"strategy": STRATEGIES, "model": MODELS, "scenario": CONTRIBUTED,
            "buffer policy": BUFFERS, "optimizer": OPTIMIZERS, "scheduler": SCHEDULERS,
            "dataset": FETCHABLE, "bundled dataset": BUNDLED}


@pytest.mark.parametrize("kind", sorted(_registries()))
def test_every_registry_a_user_names_is_a_catalog_with_one_error(kind):
    registry = _registries()[kind]
    assert isinstance(registry, Catalog) and registry.kind == kind
    known = ", ".join(sorted(registry))
    message = f"unknown {kind} 'nope'; choose one of {known}"
    with pytest.raises(KeyError) as lookup:
        registry["nope"]
    assert lookup.value.args[0] == message
    with pytest.raises(ValueError) as required:
        registry.require("nope")
    assert str(required.value) == message


def test_unknown_buffer_optimizer_and_dataset_names_give_the_catalog_error():
    from retain.buffers import make_buffer
    from retain.optim import make_optimizer
    from retain.strategies import Replay

    for build in (lambda: make_buffer("nope", 10), lambda: Replay(policy="nope"),
                  lambda: make_optimizer("nope", [], lr=0.1)):
        with pytest.raises(ValueError, match=r"^unknown (buffer policy|optimizer) 'nope'; "
                                             r"choose one of "):
            build()


def test_a_third_party_optimizer_is_found_by_its_entry_point(tmp_path):
    info = tmp_path / "my_optim-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-optim\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[retain.optimizers]\nasgd = torch.optim:ASGD\n")
    code = ("import torch\nfrom retain.optim import make_optimizer\n"
            "print(type(make_optimizer('asgd', [torch.zeros(1, requires_grad=True)], 0.1))"
            ".__name__)")
    env_path = f"{tmp_path}:{':'.join(p for p in sys.path if p)}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": env_path}).stdout.strip()
    assert out == "ASGD"
