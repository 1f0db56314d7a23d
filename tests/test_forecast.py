"""The forecaster (src/equiglb/forecast.py): calibration, correlations, determinism, no look-past-the-split,
one source per episode (observation, mpc baseline, MPC residual mode), the legacy noise option and bad input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import equiglb
from equiglb.baselines import MPCPolicy, make_policy
from equiglb.control.mpc import MPCCore, make_mpc_solver
from equiglb.envs.core import agent_base, agent_information
from equiglb.envs.glb_env import EquitableGLBEnv
from equiglb.envs.vector import EquitableGLBVectorEnv
from equiglb.forecast import (
    _AR_WEIGHTS,
    MAX_LOG_ERROR,
    Forecaster,
    ForecastError,
    load_forecasts,
    target_mape,
)
from equiglb.scenario import Scenario
from equiglb.validate import OptionError

SITES = ("DE-LU", "SG", "US-CAL-CISO", "Texas")        # zones with figures, and an eGLB site name
REGIONS = ("r0", "r1")


def constant_scenario(T: int) -> Scenario:
    """Truth 1 everywhere (prices 50 USD/MWh): a forecast's APE is then exactly its error."""
    N, J = len(SITES), len(REGIONS)
    return Scenario(name="flat", demand=np.ones((T, J)), price=np.full((T, N), 50.0), carbon=np.full((T, N), 0.4),
                    water=np.full((T, N), 2.0), capacity=np.full(N, 10.0), mask=np.ones((N, J), bool),
                    site_names=SITES, region_names=REGIONS,
                    timestamps=np.datetime64("2023-01-01T00", "h") + np.arange(T))


@pytest.fixture(scope="module")
def long_errors():
    """Log errors of the calibrated forecasts issued at 12,000 consecutive hours, leads 1..48."""
    sc = constant_scenario(12_100)
    fc = Forecaster(sc, "calibrated", seed=1)
    ts = np.arange(12_000)
    return fc, np.log(fc.table(ts, 48) / fc.truth[0])          # (issues, lead, series)


@pytest.mark.parametrize("lead", [1, 6, 24, 48])
def test_calibrated_mape_matches_the_targets_by_signal_zone_and_lead(long_errors, lead):
    fc, e = long_errors
    ape = np.abs(np.expm1(e[:, lead - 1]))                        # (issues, series)
    for r, (signal, name) in enumerate(fc.names):
        target = float(target_mape(signal, name, [lead])[0])
        assert ape[:, r].mean() == pytest.approx(target, rel=0.2), (signal, name, lead)


def test_targets_follow_the_published_figures():
    # CarbonCast day-1..4 for CAISO, 24-h persistence for Singapore's carbon and Germany's prices
    np.testing.assert_allclose(target_mape("carbon", "US-CAL-CISO", [24, 48, 72, 96]), [0.097, 0.124, 0.132, 0.137])
    assert target_mape("carbon", "SG", [24])[0] == pytest.approx(0.007)
    assert target_mape("price", "DE-LU", [24])[0] == pytest.approx(0.59)
    assert target_mape("price", "Germany", [24])[0] == pytest.approx(0.59)      # the eGLB site's zone
    np.testing.assert_allclose(target_mape("demand", "anywhere", [1, 24]), [0.142, 0.399], rtol=1e-9)
    # errors grow with the lead time
    assert np.all(np.diff(target_mape("price", "Nowhere", np.arange(1, 120))) >= 0)


def test_errors_grow_with_lead_and_prices_are_heavy_tailed(long_errors):
    fc, e = long_errors
    sd = e.std(axis=0)                                             # (lead, series)
    assert np.all(sd[23] > sd[0]) and np.all(sd[47] > sd[23])
    kurt = ((e[:, 23] - e[:, 23].mean(0)) ** 4).mean(0) / e[:, 23].var(0) ** 2
    price = [r for r, (g, _) in enumerate(fc.names) if g == "price"]
    demand = [r for r, (g, _) in enumerate(fc.names) if g == "demand"]
    assert kurt[price].min() > 4.0 > 3.4 > kurt[demand].max()     # Student-t against Gaussian (3)
    assert np.abs(e).max() <= MAX_LOG_ERROR + 1e-12


def test_consecutive_issues_and_lead_hours_are_correlated_as_specified(long_errors):
    """For a Gaussian series: the forecasts of one target made one hour apart have correlation
    sigma(h)/sigma(h+1); along one issued trajectory, consecutive lead hours rho_AR·sigma(h)/sigma(h+1)."""
    fc, e = long_errors
    r = fc.names.index(("demand", "r0"))
    sig = fc.sigma(48)[:, r]
    rho_ar = float(np.sum(_AR_WEIGHTS[:-1] * _AR_WEIGHTS[1:]))
    for h in (1, 5, 23):
        # target s = t + h issued at t (row t, lead h) and at t - 1 (row t - 1, lead h + 1)
        same_target = np.corrcoef(e[1:, h - 1, r], e[:-1, h, r])[0, 1]
        assert same_target == pytest.approx(sig[h] / sig[h + 1], abs=0.03)
        along = np.corrcoef(e[:, h - 1, r], e[:, h, r])[0, 1]
        assert along == pytest.approx(rho_ar * sig[h] / sig[h + 1], abs=0.04)
    assert np.corrcoef(e[1:, 22, r], e[:-1, 23, r])[0, 1] > 0.95    # the day-ahead forecast barely moves


def test_deterministic_by_seed_and_issue_slot_whatever_was_issued_before():
    sc = equiglb.load_scenario("synthetic")
    a, b = Forecaster(sc, seed=3), Forecaster(sc, seed=3)
    b.issue(900, 100)                                   # another cache state first
    for t in (0, 5, 500, 1300):
        np.testing.assert_array_equal(a.issue(t, 24).price, b.issue(t, 24).price)
        np.testing.assert_array_equal(a.values(t, 6), b.values(t, 24)[:6])      # shorter horizons are prefixes
    assert not np.allclose(a.values(500, 24), Forecaster(sc, seed=4).values(500, 24))
    # a window of the scenario sees the same forecasts at the same hours (keyed by UTC hour and name)
    w = Forecaster(sc.window(400, 200), seed=3)
    np.testing.assert_array_equal(w.values(100, 24), a.values(500, 24))


def test_persistence_is_the_same_hour_of_the_latest_observed_day():
    sc = equiglb.load_scenario("synthetic")
    fc = Forecaster(sc, "persistence", window=(100, 500))
    f = fc.issue(200, 30)
    np.testing.assert_array_equal(f.demand[:24], sc.demand[201 - 24:225 - 24])
    np.testing.assert_array_equal(f.demand[24:], sc.demand[225 - 48:231 - 48])
    # the window's first day: nothing before the window is read; the value observed at t stands in
    np.testing.assert_array_equal(fc.issue(110, 3).carbon, np.repeat(sc.carbon[110][None], 3, axis=0))


@pytest.mark.parametrize("model", ["calibrated", "persistence", "perfect"])
def test_no_forecast_reads_past_the_split_or_the_issue_slot(model):
    """Changing the held-out test window leaves every forecast of the train split unchanged; persistence
    also ignores every slot after the issue slot."""
    sc = equiglb.load_scenario("synthetic")
    a0, an = sc.splits["train"]
    last = a0 + an - 1
    changed = dataclasses.replace(sc, price=np.where(np.arange(sc.T)[:, None] > last, -3 * sc.price, sc.price),
                                  demand=np.where(np.arange(sc.T)[:, None] > last, 0.1 * sc.demand, sc.demand))
    ts = np.arange(last - 30, last + 1)
    f1 = Forecaster(sc, model, seed=2, window=(a0, an)).table(ts, 48)
    f2 = Forecaster(changed, model, seed=2, window=(a0, an)).table(ts, 48)
    np.testing.assert_array_equal(f1, f2)
    # the observations' forecasts in native units (the observation scales are the whole scenario's maxima)
    shown = []
    for s in (sc, changed):
        ob = EquitableGLBEnv(scenario=s, forecast_horizon=24, forecast_model=model).observer
        S = ob.signals.shape[1]
        rows = ob._table[a0:last + 1, ob._forecast_at:ob._forecast_at + 24 * S].reshape(-1, 24, S)
        shown.append(rows / ob._signal_scales.astype(np.float32))
    np.testing.assert_allclose(shown[0], shown[1], rtol=1e-6)
    if model == "persistence":
        t = 300
        future = dataclasses.replace(sc, carbon=np.where(np.arange(sc.T)[:, None] > t, 0.0, sc.carbon))
        np.testing.assert_array_equal(Forecaster(sc, model).values(t, 72), Forecaster(future, model).values(t, 72))


def test_the_environment_and_the_mpc_baseline_see_the_same_forecasts():
    """One source per episode: the observation's forecasts are the forecaster's, the MPC inside the
    residual mode reads them, and MPCPolicy with the same seed on the episode's window routes identically."""
    H, L = 6, 36
    env = EquitableGLBEnv(split="test", action_mode="mpc_residual", mpc_horizon=H, forecast_horizon=4,
                          forecast_seed=5, episode_length=L)
    assert env.slot.forecaster is env.forecaster is env.observer.forecaster
    obs, _ = env.reset(options={"start": 1250})
    ob, S = env.observer, env.observer.signals.shape[1]
    shown = obs[ob._forecast_at:ob._forecast_at + 4 * S].reshape(4, S) / ob._signal_scales
    np.testing.assert_allclose(shown, env.forecaster.values(1250, 4), rtol=1e-6)
    for _ in range(L):
        env.step(np.zeros(env.action_space.shape, np.float32))
    x_env = env.executed_schedule()
    x_mpc = MPCPolicy(horizon=H, forecast_model="calibrated", seed=5).schedule(env.window(), env.weights)
    np.testing.assert_array_equal(x_env, x_mpc)
    other = MPCPolicy(horizon=H, forecast_model="calibrated", seed=6).schedule(env.window(), env.weights)
    assert not np.allclose(other, x_env)
    # the same through make_policy, the scripts' name
    again = make_policy("mpc", horizon=H, forecast_model="calibrated", seed=5).schedule(env.window(), env.weights)
    np.testing.assert_array_equal(again, x_mpc)


def test_perfect_forecaster_reproduces_the_truth_path_of_mpc():
    sc = equiglb.load_scenario("synthetic").window(0, 48)
    w, H = sc.weights, 12
    solver = make_mpc_solver(sc.window(0, H), H, w)
    runs = []
    for fc in (None, Forecaster(sc, "perfect")):
        core, xs = MPCCore(sc, w, H, forecaster=fc), []
        for t in range(sc.T):
            xs.append(core.route(t, solver))
            core.update(t, xs[-1])
        runs.append(np.stack(xs))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], MPCPolicy(horizon=H, forecast_model="perfect").schedule(sc))


def test_vector_env_observes_the_single_envs_forecasts():
    kw = dict(episode_length=5, random_start=True, forecast_horizon=3, forecast_model="calibrated")
    single = EquitableGLBEnv(**kw)
    vec = EquitableGLBVectorEnv(num_envs=2, **kw)
    obs, _ = vec.reset(seed=11)
    for b in range(2):
        np.testing.assert_array_equal(obs[b], single.reset(seed=11 + b)[0])
        assert single.observation_space.contains(obs[b])


def test_information_labels_and_the_agents_base():
    ppo = {"action_mode": "mpc_residual", "mpc_horizon": 24, "forecast_horizon": 6}
    assert agent_information(ppo) == "forecasts (calibrated, obs 6 h, mpc 24 h)"
    assert agent_information({}) == "none"
    assert agent_information({"forecast_horizon": 3, "forecast_model": "perfect"}) == \
        "forecasts (perfect (oracle), obs 3 h)"
    name, kwargs, label = agent_base(ppo)
    assert (name, label) == ("mpc", "mpc-24 calibrated (agent's base)")
    assert make_policy(name, **kwargs).information == "forecasts (calibrated, 24 h)"
    assert MPCPolicy(forecast_model="perfect").information == "forecasts (perfect (oracle), 24 h)"


def test_legacy_forecast_noise_keeps_its_meaning():
    env = EquitableGLBEnv(forecast_horizon=2, forecast_noise=0.1)
    assert env.config.forecast_model == "noise" and env.forecaster is None and env.observer.noise == 0.1
    assert MPCPolicy(horizon=3, noise_std=0.2).forecast_model == "noise"
    with pytest.raises(OptionError, match=r"^forecast_noise=0\.1 with forecast_model='calibrated'"):
        EquitableGLBEnv(forecast_noise=0.1, forecast_model="calibrated")
    with pytest.raises(OptionError, match=r"^noise_std=0\.2 with forecast_model='persistence'"):
        MPCPolicy(noise_std=0.2, forecast_model="persistence")


@pytest.mark.parametrize("make, message", [
    (lambda: EquitableGLBEnv(forecast_model="oracle"), r"^forecast_model='oracle': expected one of"),
    (lambda: EquitableGLBEnv(forecast_scale=-1.0), r"^forecast_scale=-1\.0: must be >= 0"),
    (lambda: EquitableGLBEnv(forecast_scale=2.0, forecast_model="perfect"), r"^forecast_scale=2\.0 applies only"),
    (lambda: EquitableGLBEnv(forecast_seed=-1), r"^forecast_seed=-1"),
    (lambda: MPCPolicy(forecast_model="magic"), r"^forecast_model='magic': expected one of"),
    (lambda: MPCPolicy(forecast_scale=math.nan), r"^forecast_scale=nan"),
    (lambda: make_policy("mpc", horizon=24, forecast_model="Calibrated"), r"^forecast_model='Calibrated'"),
    (lambda: Forecaster(constant_scenario(48), "calibrated", scale=-0.5), r"^forecast_scale=-0\.5"),
    (lambda: Forecaster(constant_scenario(48)).issue(0, 49), r"^horizon=49 h is longer than the forecaster's window"),
    (lambda: Forecaster(constant_scenario(48), window=(10, 20)).issue(30, 2), r"^issue slot t=30: must be in 10\.\.29"),
    (lambda: Forecaster(constant_scenario(48)).issue(0, -1), r"^horizon=-1: must be in 0\.\.48 hours"),
])
def test_bad_input_is_refused_by_name(make, message):
    with pytest.raises(OptionError, match=message):
        make()


def test_a_horizon_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    import equiglb.envs.core as core

    def no_table(*a, **k):
        raise AssertionError("allocated")

    monkeypatch.setattr(core.Observer, "__init__", no_table)
    with pytest.raises(OptionError, match=r"^forecast_horizon=8760: the observation would hold 350,400 "
                                          r"forecast entries and its table of 1440 slots about [\d.]+ GiB.*"
                                          r"use at most \d+ hours"):
        EquitableGLBEnv(forecast_horizon=8760)


# ------------------------------------------------------------------------------------------ user forecast files

def _write_csv(path, fc: Forecaster, ts, H, drop=None, header="issue_time,lead_h,signal,name,value"):
    lines = [header]
    for t in ts:
        v = fc.values(int(t), H)
        for h in range(H):
            for c, (g, n) in enumerate(fc.names):
                if drop == (int(t), h + 1):
                    continue
                lines.append(f"{fc.scenario.timestamps[t]}:00Z,{h + 1},{g},{n},{float(v[h, c])!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_csv_of_issued_forecasts_round_trips(tmp_path):
    sc = constant_scenario(60)
    fc = Forecaster(sc, "calibrated", seed=9)
    path = _write_csv(tmp_path / "f.csv", fc, range(10, 30), 4)
    user = load_forecasts(path, sc, window=(10, 20))
    for t in (10, 17, 29):
        np.testing.assert_array_equal(user.issue(t, 4).price, fc.issue(t, 4).price)
    assert user.label == "file f.csv"
    with pytest.raises(ForecastError, match=r"f\.csv has forecasts up to 4 h"):
        user.issue(12, 5)


@pytest.mark.parametrize("case, message", [
    ("missing", r"no forecast issued at 2023-01-01T15 UTC for lead 2 h"),
    ("header", r"the header must be issue_time,lead_h,signal,name,value"),
    ("name", r"row 6: signal='carbon' name='Atlantis' is not a series"),
    ("columns", r"row 2: expected 5 columns, got 4"),
    ("time", r"row 2: issue_time='yesterday' is not a UTC hour"),
    ("absent", r"no such forecast file"),
])
def test_bad_forecast_files_are_refused_by_name(tmp_path, case, message):
    sc = constant_scenario(60)
    fc = Forecaster(sc, "calibrated")
    path = tmp_path / "f.csv"
    if case == "missing":
        _write_csv(path, fc, range(10, 20), 3, drop=(15, 2))
    elif case == "header":
        _write_csv(path, fc, range(10, 20), 3, header="time,lead,signal,name,value")
    else:
        _write_csv(path, fc, range(10, 20), 3)
        text = path.read_text().splitlines()
        if case == "name":
            text[5] = text[5].replace("DE-LU", "Atlantis")
        elif case == "columns":
            text[1] = text[1].rsplit(",", 1)[0]
        elif case == "time":
            text[1] = "yesterday," + text[1].split(",", 1)[1]
        path.write_text("\n".join(text) + "\n")
        if case == "absent":
            path = tmp_path / "none.csv"
    with pytest.raises(ForecastError, match=message):
        load_forecasts(path, sc, window=(10, 10))


def test_the_calibration_table_of_the_docs_is_the_benchmarks_output():
    """docs/forecasts.md's synthetic calibration rows are what benchmarks/forecast_value.py measures."""
    from conftest import REPO, load_benchmark

    fv = load_benchmark("forecast_value")
    rows = fv.calibration("synthetic", equiglb.load_scenario("synthetic"))
    doc = (REPO / "docs" / "forecasts.md").read_text(encoding="utf-8")
    checked = 0
    for r in rows:
        if r["signal"] == "demand":
            continue
        cells = [f"{r[f'target_{h}h']:.1f} / {r[f'measured_{h}h']:.1f}" for h in (1, 6, 24)]
        assert f"| synthetic | {r['signal']} | " in doc and " | ".join(cells) in doc, (r["signal"], r["series"])
        checked += 1
    assert checked == 30


def test_your_own_forecasts_drive_the_mpc_baseline_and_the_environment_alike(tmp_path):
    """A CSV of issued forecasts, given as forecast_model, is the one source of the observation and of the
    MPC inside mpc_residual; MPCPolicy with it routes as the environment's action 0 does."""
    w = equiglb.load_scenario("synthetic").window(1200, 30)
    made = Forecaster(w, "calibrated", seed=4)
    user = load_forecasts(_write_csv(tmp_path / "mine.csv", made, range(w.T), 5), w)
    x_file = MPCPolicy(horizon=6, forecast_model=user).schedule(w)
    np.testing.assert_array_equal(x_file, MPCPolicy(horizon=6, forecast_model="calibrated", seed=4).schedule(w))
    env = EquitableGLBEnv(scenario=w, split="all", action_mode="mpc_residual", mpc_horizon=6, forecast_horizon=2,
                          forecast_model=user)
    assert env.config.information() == "forecasts (file mine.csv, obs 2 h, mpc 6 h)"
    obs, _ = env.reset()
    for _ in range(w.T):
        assert env.observation_space.contains(obs)
        obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    np.testing.assert_array_equal(env.executed_schedule(), x_file)
    with pytest.raises(OptionError, match=r"^horizon=8: the forecaster given as forecast_model issues at most 5 h"):
        MPCPolicy(horizon=8, forecast_model=user)
    with pytest.raises(OptionError, match=r"^forecast_model: the forecaster issues at most 5 h ahead, but the "
                                          r"observation and the MPC read 7 h"):
        EquitableGLBEnv(scenario=w, split="all", action_mode="mpc_residual", mpc_horizon=8, forecast_model=user)
    with pytest.raises(OptionError, match=r"^forecast_model: the forecaster was built on scenario 'synthetic' "
                                          r"\(T=30 h"):
        EquitableGLBEnv(forecast_model=user)
    with pytest.raises(ForecastError, match=r"^forecast_model: the forecaster covers .* cannot forecast the window"):
        MPCPolicy(horizon=3, forecast_model=user).schedule(equiglb.load_scenario("synthetic").window(0, 24))


def test_the_baselines_command_labels_what_each_row_knew(tmp_path, capsys):
    from equiglb.baselines.__main__ import main

    out = tmp_path / "rows.json"
    assert main(["--horizon", "48", "--policies", "offline,online-eglb,mpc,min-cost", "--mpc-horizon", "3",
                 "--forecast-model", "persistence", "--json", str(out)]) == 0
    import json

    info = {r["policy"]: r["information"] for r in json.loads(out.read_text())}
    assert info == {"offline": "hindsight (oracle)", "online-eglb": "none", "mpc": "forecasts (persistence, 3 h)",
                    "min-cost": "none"}
    assert "information" in capsys.readouterr().out.splitlines()[1]
    assert main(["--forecast-model", "oracle"]) == 2
    assert "--forecast-model='oracle': expected one of" in capsys.readouterr().err
    assert main(["--forecast-scale", "-1"]) == 2
    assert "--forecast-scale=-1.0: must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["calibrated", "persistence", "perfect"])
def test_the_table_of_many_issues_is_each_issue_bit_for_bit(model):
    sc = equiglb.load_scenario("synthetic")
    fc = Forecaster(sc, model, seed=7, window=(100, 900))
    ts = np.arange(100, 1000, 7)
    tab = Forecaster(sc, model, seed=7, window=(100, 900)).table(ts, 30)
    for k, t in enumerate(ts):
        np.testing.assert_array_equal(tab[k], fc.values(int(t), 30))
