"""Scenario and Weights validation (errors name the field), windows, splits and the common options."""

from __future__ import annotations

import math

import numpy as np
import pytest

import equiglb
from equiglb.scenario import Scenario, ScenarioError, Weights
from equiglb.traces.__main__ import main


def args(**kw):
    T, N, J = 4, 2, 3
    a = dict(name="t", demand=np.full((T, J), 0.5), price=np.full((T, N), 50.0), carbon=np.full((T, N), 0.3),
             water=np.full((T, N), 2.0), capacity=np.ones(N), mask=np.ones((N, J), bool),
             site_names=("a", "b"), region_names=("r", "s", "u"),
             timestamps=np.datetime64("2024-03-01T00", "h") + np.arange(T).astype("timedelta64[h]"))
    a.update(kw)
    return a


def test_valid_and_properties():
    s = Scenario(**args())
    assert (s.T, s.N, s.J, s.K) == (4, 2, 3, 1)
    assert s.allowed.shape == (2, 3, 1) and s.allowed.all()
    assert s.splits["all"] == (0, 4)
    assert not s.demand.flags.writeable


@pytest.mark.parametrize("field, value, needle", [
    ("price", np.full((3, 2), 50.0), "'price'"),
    ("carbon", np.full((4, 3), 0.3), "'carbon'"),
    ("capacity", np.ones(3), "'capacity'"),
    ("mask", np.ones((3, 2), bool), "'mask'"),
    ("timestamps", np.arange(3).astype("datetime64[h]"), "'timestamps'"),
])
def test_shape_errors_name_field(field, value, needle):
    with pytest.raises(ScenarioError, match=needle):
        Scenario(**args(**{field: value}))


@pytest.mark.parametrize("field", ["demand", "carbon", "water", "capacity"])
def test_negative_values_rejected(field):
    a = args()
    v = np.array(a[field], dtype=float)
    v.flat[1] = -0.5
    with pytest.raises(ScenarioError, match=f"'{field}' must be >= 0, got -0.5"):
        Scenario(**args(**{field: v}))


def test_negative_price_allowed():
    p = np.full((4, 2), 50.0)
    p[2, 1] = -20.0
    assert Scenario(**args(price=p)).price.min() == -20.0


def test_nonfinite_pue_energy_errors():
    d = np.full((4, 3), 0.5)
    d[1, 2] = np.nan
    with pytest.raises(ScenarioError, match=r"'demand' has a non-finite value nan at index \(1, 2\)"):
        Scenario(**args(demand=d))
    with pytest.raises(ScenarioError, match="'pue' must be >= 1, got 0.9 for site 'b'"):
        Scenario(**args(pue=[1.0, 0.9]))
    with pytest.raises(ScenarioError, match="'energy_per_unit' must be > 0"):
        Scenario(**args(energy_per_unit=[0.0]))
    with pytest.raises(ScenarioError, match="'latency'"):
        Scenario(**args(latency=-np.ones((2, 3))))


def test_unreachable_region_and_bad_timestamps_and_splits():
    mask = np.ones((2, 3), bool)
    mask[:, 1] = False
    with pytest.raises(ScenarioError, match="region 's' reaches no site"):
        Scenario(**args(mask=mask))
    hosting = np.array([[True, False], [True, False]])
    s = Scenario(**args(model_names=("small", "big"), hosting=hosting, energy_per_unit=[0.1, 1.0],
                        quality_loss=[0.2, 0.0]))
    assert s.K == 2 and not s.allowed[:, :, 1].any()
    ts = np.array(["2024-03-01T00", "2024-03-01T01", "2024-03-01T03", "2024-03-01T04"], dtype="datetime64[h]")
    with pytest.raises(ScenarioError, match="timestamps must be hourly"):
        Scenario(**args(timestamps=ts))
    with pytest.raises(ScenarioError, match="split 'test'"):
        Scenario(**args(splits={"test": (2, 5)}))


def test_weights_validation():
    assert Weights().q == math.inf
    with pytest.raises(ScenarioError, match=r"Weights\.q=0\.5: must be in \[1, 100\] or inf"):
        Weights(q=0.5)
    with pytest.raises(ScenarioError, match=r"Weights\.q=nan: expected a finite number or inf"):
        Weights(q=float("nan"))
    with pytest.raises(ScenarioError, match="mu_water"):
        Weights(mu_water=-1.0)
    assert Weights().replace(q=2.0, mu_social=None).q == 2.0


def test_window_and_split():
    s = Scenario(**args(splits={"train": (0, 3), "test": (3, 1)}))
    w = s.window(1, 2)
    assert w.T == 2 and w.timestamps[0] == s.timestamps[1] and w.splits == {"all": (0, 2)}
    assert s.split("test").T == 1
    with pytest.raises(ScenarioError, match="window"):
        s.window(3, 5)
    with pytest.raises(ScenarioError, match="no split 'valid'"):
        s.split("valid")


def test_common_options():
    base = equiglb.load_scenario("synthetic", hours=240)
    cut = equiglb.load_scenario("synthetic", hours=240, horizon=120)
    assert cut.T == 120 and np.array_equal(cut.price, base.price[:120])
    assert cut.splits["train"][0] + cut.splits["train"][1] <= 120 and cut.splits["test"][1] >= 1
    scaled = equiglb.load_scenario("synthetic", hours=240, demand_scale=0.5)
    np.testing.assert_allclose(scaled.demand, 0.5 * base.demand)
    w = equiglb.load_scenario("synthetic", hours=48, q=2, mu_water=10)
    assert w.weights.q == 2.0 and w.weights.mu_water == 10.0 and w.weights.mu_carbon == 1500.0
    shifted = equiglb.load_scenario("synthetic", hours=240, demand_tz_shift=True)
    j = base.region_names.index("Japan")  # UTC+9: local hour h is UTC hour h - 9
    np.testing.assert_allclose(shifted.demand[:-9, j], base.demand[9:, j])
    with pytest.raises(ScenarioError, match="horizon=500"):
        equiglb.load_scenario("synthetic", hours=240, horizon=500)
    with pytest.raises(ScenarioError, match="demand_scale"):
        equiglb.load_scenario("synthetic", hours=48, demand_scale=-1.0)
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'"):
        equiglb.load_scenario("nope")


def test_registry_lists_all_names():
    names = equiglb.list_scenarios()
    for n in ("synthetic", "synthetic-multimodel", "eglb-2022", "eglb-2022-partial", "csv"):
        assert n in names


def test_traces_cli_list_and_show(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-multimodel" in out and "eglb-2022-partial" in out
    assert main(["show", "synthetic", "-O", "hours=48", "-O", "q=2"]) == 0
    assert "T=48 h" in capsys.readouterr().out
    assert main(["show", "csv"]) == 2
    assert "needs data_dir" in capsys.readouterr().err
