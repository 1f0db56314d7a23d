"""The synthetic default and its calibration: shape and conventions, determinism, a year, means and
hour-of-day profiles against the real traces, the inequity phenomenon, the multi-model scenario."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import equiglb
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario, ScenarioError
from equiglb.traces.__main__ import main as traces_cli
from equiglb.traces.calibrate import calibrate, calibrate_scenario
from equiglb.traces.synthetic import SyntheticParams, default_params, load_params, synthetic_scenario

#: An hour-of-day profile is "pronounced" when its std is at least 10 % of the series mean (the US
#: tariffs, most non-US prices, Nevada and Japan carbon, Netherlands water); weaker profiles of the
#: 19-day real traces are mostly sampling noise (their standard error is 3-7 % of the mean).
PRONOUNCED = 0.10


def greedy_by_price(scn: Scenario) -> np.ndarray:
    """Cost-only routing: each hour, fill the cheapest allowed sites up to capacity."""
    x = np.zeros((scn.T, scn.N, scn.J, scn.K))
    for t in range(scn.T):
        left = scn.capacity.astype(float).copy()
        order = np.argsort(scn.price[t], kind="stable")
        for j in range(scn.J):
            need = scn.demand[t, j]
            for i in order:
                if need <= 0:
                    break
                if scn.mask[i, j]:
                    a = min(need, left[i])
                    x[t, i, j, 0] += a
                    left[i] -= a
                    need -= a
    return x


def test_default_shape_and_conventions():
    s = equiglb.load_scenario("synthetic")
    assert (s.T, s.N, s.J, s.K) == (1440, 10, 10, 1)
    assert s.splits["train"] == (0, 1200) and s.splits["test"] == (1200, 240)
    assert np.all(s.capacity == 1.0) and s.mask.all() and s.weights == equiglb.EGLB_WEIGHTS
    assert s.demand.max() <= 1.0 and s.demand.min() >= 0.0
    assert np.all(s.demand.sum(axis=1) <= s.capacity.sum())  # always feasible
    assert s.carbon.min() >= 0 and s.water.min() >= 0
    assert s.latency is not None and s.utc_offset_h[s.site_names.index("Japan")] == 9


def test_deterministic_for_seed():
    a, b = synthetic_scenario(seed=5, hours=300), synthetic_scenario(seed=5, hours=300)
    c = synthetic_scenario(seed=6, hours=300)
    for f in ("demand", "price", "carbon", "water"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
        assert not np.array_equal(getattr(a, f), getattr(c, f))
    assert np.array_equal(a.timestamps, b.timestamps)


def test_a_year():
    s = equiglb.load_scenario("synthetic", hours=8760, seed=2)
    assert s.T == 8760 and s.splits["test"] == (7300, 1460)
    assert str(s.timestamps[-1]) == "2023-09-21T23"


@pytest.mark.parametrize("seed", [0, 1])
def test_means_within_5_percent(eglb, seed):
    s = synthetic_scenario(seed=seed)
    for sig in ("price", "carbon", "water"):
        real, syn = getattr(eglb, sig).mean(axis=0), getattr(s, sig).mean(axis=0)
        rel = np.abs(syn - real) / np.abs(real)
        assert rel.max() <= 0.05, (sig, dict(zip(s.site_names, rel.round(3))))
    assert abs(s.demand.mean() - eglb.demand.mean()) <= 0.05 * eglb.demand.mean()


def hour_profile(scn: Scenario, values: np.ndarray) -> np.ndarray:
    hour = (scn.timestamps - scn.timestamps.astype("datetime64[D]")).astype(int)
    return np.stack([values[hour == h].mean(axis=0) for h in range(24)])


def test_hour_of_day_profiles_correlate(eglb):
    s = synthetic_scenario(seed=0, hours=8760)
    checked = []
    for sig in ("price", "carbon", "water"):
        real_p = hour_profile(eglb, getattr(eglb, sig))
        syn_p = hour_profile(s, getattr(s, sig))
        for i, site in enumerate(s.site_names):
            strength = real_p[:, i].std() / abs(getattr(eglb, sig)[:, i].mean())
            if strength >= PRONOUNCED:
                r = np.corrcoef(real_p[:, i], syn_p[:, i])[0, 1]
                assert r >= 0.8, (sig, site, strength, r)
                checked.append((sig, site))
    assert len(checked) >= 10, checked


def test_us_prices_are_two_level_tariffs():
    s = synthetic_scenario(seed=0, hours=24 * 20)
    for site in ("Texas", "Virginia", "Georgia", "Nevada"):
        day = s.price[:24, s.site_names.index(site)]
        levels = np.unique(day)
        assert levels.size == 2 and levels[1] / levels[0] == pytest.approx(4.0)
        assert set(np.flatnonzero(day == levels[1])) == set(range(10, 16))  # 10-15 UTC


@pytest.mark.parametrize("which", ["real", "synthetic"])
def test_cost_only_routing_concentrates_footprint(which, request):
    scn = request.getfixturevalue("eglb") if which == "real" else synthetic_scenario(seed=0)
    x = greedy_by_price(scn)
    rep = evaluate(scn, x)
    assert rep.unserved_load == pytest.approx(0.0, abs=1e-9)
    assert np.all((x.sum(axis=(2, 3))) <= scn.capacity + 1e-12)
    assert rep.stats["water"]["par"] > 1.5 and rep.stats["carbon"]["par"] > 1.5, rep.row()


def test_calibration_reproduces_shipped_params(eglb_dir):
    got = calibrate(eglb_dir).to_dict()
    shipped = default_params().to_dict()
    got.pop("source")
    shipped.pop("source")

    def close(a, b, path="params"):
        if isinstance(a, dict):
            assert a.keys() == b.keys(), path
            for k in a:
                close(a[k], b[k], f"{path}.{k}")
        elif isinstance(a, (list, tuple)):
            assert len(a) == len(b), path
            for k, (u, v) in enumerate(zip(a, b)):
                close(u, v, f"{path}[{k}]")
        elif isinstance(a, float):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
        else:
            assert a == b, path

    close(got, shipped)


def test_calibrate_own_data_and_params_option(eglb, tmp_path):
    doubled = dataclasses.replace(eglb, price=eglb.price * 2.0)
    p = calibrate_scenario(doubled)
    np.testing.assert_allclose([sp.mean for sp in p.price],
                               [2 * sp.mean for sp in calibrate_scenario(eglb).price], rtol=1e-12)
    assert p.price[0].kind == "tariff" and p.price[4].kind == "ar"
    # JSON round trip and the params= option (object, dict, file)
    path = tmp_path / "params.json"
    p.to_json(path)
    assert load_params(path) == p
    s1 = synthetic_scenario(seed=0, hours=480, params=p)
    s2 = synthetic_scenario(seed=0, hours=480, params=json.loads(path.read_text()))
    s3 = equiglb.load_scenario("synthetic", hours=480, params=str(path))
    assert np.array_equal(s1.price, s2.price) and np.array_equal(s1.price, s3.price)
    base = synthetic_scenario(seed=0, hours=480)
    np.testing.assert_allclose(s1.price.mean(axis=0), 2 * base.price.mean(axis=0), rtol=0.05)


def test_cli_calibrate(eglb_dir, tmp_path):
    out = tmp_path / "p.json"
    assert traces_cli(["calibrate", str(eglb_dir), "-o", str(out)]) == 0
    assert load_params(out).sites == default_params().sites
    assert traces_cli(["calibrate", str(tmp_path / "missing")]) == 2


def test_bad_params_name_the_problem(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope\.json: synthetic parameter file not found"):
        load_params(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScenarioError, match=r"bad\.json: not valid JSON"):
        load_params(bad)
    d = default_params().to_dict()
    d["price"][0]["daily_ar"] = 1.5
    with pytest.raises(ScenarioError, match=r"daily_ar must be in \(-1, 1\), got 1.5"):
        SyntheticParams.from_dict(d)
    d = default_params().to_dict()
    d["colour"] = "blue"
    with pytest.raises(ScenarioError, match="unknown field.*colour"):
        SyntheticParams.from_dict(d)
    with pytest.raises(ScenarioError, match=r"hours=0: must be in 1\.\.87600 hours"):
        synthetic_scenario(hours=0)


def test_multimodel_scenario():
    s = equiglb.load_scenario("synthetic-multimodel", hours=240)
    assert s.K >= 3 and s.weights.q == 2.0 and s.weights.mu_social > 0
    assert s.energy_per_unit.max() == 1.0 and np.all(np.diff(s.energy_per_unit) > 0)
    assert s.quality_loss.min() == 0.0 and np.all(np.diff(s.quality_loss) < 0)
    small_only = [s.site_names.index(n) for n in ("Japan", "Singapore")]
    assert s.hosting[small_only, 0].all() and not s.hosting[small_only, 1:].any()
    # feasible: each region at its own site, with any hosted model, fits capacity (e <= 1, demand <= 1)
    x = np.zeros((s.T, s.N, s.J, s.K))
    for j in range(s.J):
        x[:, j, j, 0] = s.demand[:, j]
    rep = evaluate(s, x)
    assert rep.unserved_load == 0.0
    assert np.all((x @ s.energy_per_unit).sum(axis=2) <= s.capacity + 1e-12)
    # the Asian regions reach the big model only through Nevada
    for j in small_only:
        reach_big = s.mask[:, j] & s.hosting[:, 2]
        assert [s.site_names[i] for i in np.flatnonzero(reach_big)] == ["Nevada"]
