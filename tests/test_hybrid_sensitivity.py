"""benchmarks/hybrid_sensitivity.py: its variants are real settings that reach the hybrid,
and its ratios are MAEs over the default's on the same series."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("statsforecast")
from retain.forecasting.approaches import Settings, make_approaches  # noqa: E402
from retain.models.forecasting import ForecastCNN  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from hybrid_sensitivity import VARIANTS, ratios  # noqa: E402


def _settings(**changes) -> Settings:
    return Settings(horizon=24, season=168, period=24,
                    build=lambda: ForecastCNN(3, 48, 24), **changes)


def test_every_variant_is_a_setting_the_hybrid_takes():
    fields = set(Settings.__dataclass_fields__)
    for name, change in VARIANTS.items():
        assert set(change) <= fields, name
        hybrid, = make_approaches(["hybrid"], _settings(**change))
        assert hybrid.seed == change.get("seed", 0)


def test_width_weight_days_and_members_reach_the_hybrid():
    hybrid, = make_approaches(["hybrid"], _settings(hybrid_width=8, hybrid_blend_days=7,
                                                    hybrid_members=1))
    assert (hybrid.width, hybrid.blend_days, hybrid.members) == (8, 7, 1)
    default, = make_approaches(["hybrid"], _settings())
    assert (default.width, default.blend_days, default.members) == (16, 14, 3)


def test_ratios_are_over_the_default_on_the_same_series():
    table = ratios({"default": {"a": 2.0, "b": 4.0}, "x": {"a": 1.0, "b": 8.0}})
    assert table["default"] == {"a": 1.0, "b": 1.0, "geomean": 1.0}
    assert table["x"]["a"] == 0.5 and table["x"]["b"] == 2.0
    assert table["x"]["geomean"] == pytest.approx(1.0)


def test_members_table_passes_members_and_seed_and_averages_over_seeds(monkeypatch):
    """benchmarks/hybrid_members.py: every run gets its member count and seed, and a cell is
    the seeds' mean with their spread, over the first count's mean."""
    import hybrid_members

    calls = []
    monkeypatch.setattr(hybrid_members, "hybrid_mae", lambda s, experiment, change:
                        calls.append((s, change)) or change["hybrid_members"] + change["seed"])
    maes = hybrid_members.seed_means(["a", "b"], [1, 3], [0, 1, 2], experiment=None)
    assert {"hybrid_members": 3, "seed": 2} in [c for _, c in calls] and len(calls) == 12
    assert maes[3]["a"] == [3, 4, 5]
    table = hybrid_members.summary({1: {"a": [2.0, 2.0, 2.0], "b": [1.0, 2.0, 3.0]},
                                    3: {"a": [1.0, 1.0, 1.0], "b": [2.0, 4.0, 6.0]}})
    assert table[1]["b"] == {"mean": 2.0, "spread": 1.0, "ratio": 1.0}
    assert table[3]["a"]["ratio"] == 0.5 and table[3]["b"]["ratio"] == 2.0
    assert table[3]["geomean"]["ratio"] == pytest.approx(1.0)
