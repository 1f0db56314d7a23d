"""The learned forecast correction (equiglb.forecast_correction): what it reads, what it fits, and the planner row of
an environment given a forecaster."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark

import equiglb
from equiglb.baselines.mpc import MPCPolicy
from equiglb.evaluation import evaluate_policy
from equiglb.forecast import AR_RHO, SIGNALS, Forecaster, ForecastError
from equiglb.forecast_correction import CorrectedForecaster, fit_correction, observed_errors

REPO = Path(__file__).resolve().parents[1]
H = 24


@pytest.fixture(scope="module")
def synthetic():
    return equiglb.load_scenario("synthetic")


@pytest.fixture(scope="module")
def fitted(synthetic):
    """A correction fit on the synthetic train split (1,200 h)."""
    return CorrectedForecaster.fit(Forecaster(synthetic, "calibrated", 3), "train", H)


def _factor(fc: CorrectedForecaster, t: int, horizon: int = H) -> np.ndarray:
    """The correction's multiplicative factor at issue slot t: corrected / raw forecasts."""
    return fc.values(t, horizon) / fc.base.values(t, horizon)


def test_the_correction_reads_slot_t_and_nothing_later(synthetic, fitted):
    """Changing every actual after slot t leaves the correction of the forecasts issued at t unchanged (the raw
    forecasts change: they are the truth times an error); other forecast errors observed up to t change it."""
    t = 1300
    ref = _factor(fitted, t)
    later = Forecaster(synthetic, "calibrated", 3)
    later.truth = later.truth.copy()
    later.truth[t + 1:] *= 1.7
    moved = CorrectedForecaster(later, fitted.correction)
    assert not np.allclose(moved.values(t, H), fitted.values(t, H))
    np.testing.assert_allclose(_factor(moved, t), ref, rtol=1e-12)
    assert np.abs(np.log(ref)).mean() > 0.01            # the correction does something ...
    other = CorrectedForecaster(Forecaster(synthetic, "calibrated", 4), fitted.correction)
    assert not np.allclose(_factor(other, t), ref, rtol=1e-3)   # ... that depends on the errors observed so far


@pytest.mark.parametrize("model", ["calibrated", "persistence"])
def test_the_fit_reads_only_its_window(synthetic, model):
    """Actuals outside the training window do not change the coefficients (bit for bit). Inside they do where the
    forecasts depend on them other than in proportion (persistence); the calibrated forecasts are the truth times
    exp(error), so their coefficients are a function of the error draws alone (another seed changes them)."""
    start, length = synthetic.splits["train"]
    base = fit_correction(Forecaster(synthetic, model, 3), (start, length), H)
    outside = Forecaster(synthetic, model, 3)
    outside.truth = outside.truth.copy()
    outside.truth[start + length:] *= 3.0
    if start > 0:
        outside.truth[:start] *= 3.0
    np.testing.assert_array_equal(fit_correction(outside, (start, length), H).beta, base.beta)
    if model == "persistence":
        inside = Forecaster(synthetic, model, 3)
        inside.truth = inside.truth.copy()
        inside.truth[start + length // 2:start + length // 2 + 5] *= 3.0
        assert np.abs(fit_correction(inside, (start, length), H).beta - base.beta).max() > 1e-3
    else:
        other = fit_correction(Forecaster(synthetic, model, 4), (start, length), H)
        assert np.abs(other.beta - base.beta).max() > 1e-3


def test_the_fit_recovers_the_calibrated_errors_persistence(fitted):
    """Under the calibrated model the best linear predictor of e(t + h, h) from x(t, h) is rho^h x(t, h) for the
    Gaussian signals (carbon, water, demand); the least-squares fit finds it from the data alone. Prices (a
    Student-t scale per target hour) are shrunk towards 0."""
    beta = fitted.correction.beta
    for g in ("carbon", "water", "demand"):
        col = beta[:6, SIGNALS.index(g)]
        np.testing.assert_allclose(col, AR_RHO ** np.arange(1, 7), atol=0.06, err_msg=g)
    price = beta[:, SIGNALS.index("price")]
    assert np.all(price[:6] < beta[:6, SIGNALS.index("carbon")]) and np.all(price[:3] > 0.3)
    assert np.all(fitted.correction.samples > 0)


def test_perfect_forecasts_are_left_as_they_are(synthetic):
    """Perfect forecasts have no error to observe: the coefficients are 0 and the forecasts unchanged."""
    fc = CorrectedForecaster.fit(Forecaster(synthetic, "perfect"), "train", 6)
    assert np.all(fc.correction.beta == 0)
    np.testing.assert_array_equal(fc.values(700, 6), fc.base.values(700, 6))


def test_leads_past_the_correction_are_as_issued_and_the_table_matches(synthetic, fitted):
    """A lead beyond the correction's horizon is the raw forecast; table() gives values() row by row."""
    v = fitted.values(900, 30)
    np.testing.assert_array_equal(v[H:], fitted.base.values(900, 30)[H:])
    np.testing.assert_array_equal(v[:H], fitted.values(900, H))
    tab = fitted.table(np.array([900, 901, 1350]), 8)
    for k, t in enumerate((900, 901, 1350)):
        np.testing.assert_array_equal(tab[k], fitted.values(t, 8))


def test_observed_errors_are_the_log_ratio_of_earlier_issues(synthetic):
    """x(t, h) = ln(forecast of slot t issued at t - h / actual of slot t), 0 before the first issue slot."""
    base = Forecaster(synthetic, "calibrated", 1)
    x = observed_errors(base, 50, 6, first=47)
    for h in (1, 2, 3):
        np.testing.assert_allclose(x[h - 1], np.log(base.values(50 - h, h)[h - 1] / base.truth[50]), rtol=1e-12)
    assert np.all(x[3:] == 0)


def test_bad_windows_and_splits_are_refused_by_name(synthetic):
    base = Forecaster(synthetic, "calibrated", 0)
    with pytest.raises(ForecastError, match="window"):
        fit_correction(base, (synthetic.T - 10, 50), 3)
    with pytest.raises(ForecastError, match="split='nope'"):
        CorrectedForecaster.fit(base, "nope")
    with pytest.raises(ValueError, match="horizon"):
        fit_correction(base, (0, 30), 24)


def test_an_environment_given_a_forecaster_rates_its_planner_on_the_same_forecasts(synthetic, fitted):
    """In mpc_residual with a forecaster as forecast_model, the agent's base row (the planner alone) reads that
    forecaster: action 0 scores exactly its J, and MPCPolicy with the same forecaster does too."""
    scored = CorrectedForecaster(Forecaster(synthetic, "calibrated", 0), fitted.correction)
    kw = {"scenario": "synthetic", "action_mode": "mpc_residual", "mpc_horizon": 12, "forecast_model": scored}
    tab = evaluate_policy(lambda obs: np.zeros(2), split="test", name="zero", baselines=(), env_kwargs=kw)
    base_row = tab[tab["policy"].str.contains("agent's base")].iloc[0]
    zero_row = tab[tab["policy"] == "zero"].iloc[0]
    assert "corrected" in base_row["policy"] and "corrected" in base_row["information"]
    assert base_row["objective"] == pytest.approx(zero_row["objective"], rel=1e-9)
    mpc = evaluate_policy(MPCPolicy(horizon=12, forecast_model=scored), split="test", name="mpc", baselines=(),
                          env_kwargs={"scenario": "synthetic"})
    assert float(mpc["objective"].iloc[-1]) == pytest.approx(zero_row["objective"], rel=1e-9)
    raw = evaluate_policy(MPCPolicy(horizon=12, forecast_model="calibrated"), split="test", name="raw",
                          baselines=(), env_kwargs={"scenario": "synthetic"})
    assert float(raw["objective"].iloc[-1]) != pytest.approx(zero_row["objective"], rel=1e-9)


def _bench(name: str):
    """``benchmarks/<name>.py`` as a module; the benchmarks folder on the path (forecast_correction imports
    policy_search)."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    return load_benchmark(name)


@pytest.mark.parametrize("stage", ["val", "test"])
def test_the_benchmark_fits_before_the_window_it_scores(stage):
    """benchmarks/forecast_correction.py fits on a split that ends before the scored one starts, and the scored
    window is never in the validation scenario."""
    bench = _bench("forecast_correction")
    args = bench.parser().parse_args(["--stage", stage, "--protocol", "synthetic"])
    kw, fit_split, eval_split = bench.windows(args)
    sc = bench.scenario_of(kw)
    (fs, fn), (es, _) = sc.splits[fit_split], sc.splits[eval_split]
    assert fs + fn <= es
    if stage == "val":
        full = equiglb.load_scenario("synthetic")
        assert sc.T <= full.splits["test"][0]          # holdout: the test window is not in it


def test_policy_search_refuses_correct_with_generated_hours():
    bench = _bench("policy_search")
    args = bench.parser().parse_args(["--stage", "val", "--protocol", "synthetic", "--correct", "--augment", "1"])
    with pytest.raises(SystemExit, match="--correct"):
        bench.setup(args)


@pytest.mark.parametrize("correct", [False, True])
def test_policy_search_draws_pair_each_policy_with_its_planner_on_the_same_draw(correct):
    """--draws: action 0 is the planner itself, so its change is exactly 0 on every draw (a policy scored on one
    draw and its planner on another would differ); another action's change differs from draw to draw."""
    bench = _bench("policy_search")
    argv = ["--stage", "val", "--protocol", "synthetic", "--features", "constant", "--draws", "2"]
    args = bench.parser().parse_args(argv + (["--correct"] if correct else []))
    run = bench.setup(args)
    fitted = bench.fit_corrected(run, 0) if correct else None
    assert bench.score_on_draws(lambda obs: np.zeros(2), run, args.draws, fitted, "zero") == [0.0, 0.0]
    moved = bench.score_on_draws(lambda obs: np.full(2, -0.5), run, args.draws, fitted, "lower")
    assert moved[0] != moved[1] and all(m != 0 for m in moved)


@pytest.mark.parametrize("argv, match", [(["--seeds", "1,x"], "--seeds='1,x'"), (["--seeds", "1,1"], "distinct"),
                                         (["--mpc-horizon", "0"], "--mpc-horizon=0")])
def test_the_benchmark_refuses_bad_options_by_name(argv, match):
    bench = _bench("forecast_correction")
    with pytest.raises(SystemExit, match=match):
        bench.main(["--stage", "val", "--protocol", "synthetic", *argv])


def test_forecasts_from_a_file_are_corrected_the_same_way(synthetic, tmp_path):
    """A file holding the calibrated forecasts' numbers gives the same coefficients and the same corrected
    forecasts as the calibrated forecaster itself; a horizon past the file's longest lead is refused."""
    from equiglb.forecast import load_forecasts

    fc = Forecaster(synthetic, "calibrated", 2)
    window, leads = (0, 120), 4
    rows = ["issue_time,lead_h,signal,name,value"]
    for t in range(window[1]):
        made = fc.values(t, leads)
        for h in range(leads):
            for c, (signal, name) in enumerate(fc.names):
                rows.append(f"{synthetic.timestamps[t]}:00Z,{h + 1},{signal},{name},{float(made[h, c])!r}")
    path = tmp_path / "issued.csv"
    path.write_text("\n".join(rows) + "\n")
    mine = load_forecasts(path, synthetic, window=window)
    a, b = fit_correction(mine, window, leads), fit_correction(fc, window, leads)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-12)
    np.testing.assert_allclose(CorrectedForecaster(mine, a).values(100, leads),
                               CorrectedForecaster(fc, b).values(100, leads), rtol=1e-12)
    with pytest.raises(ValueError, match="horizon"):
        fit_correction(mine, window, leads + 1)


# ------------------------------------------------------------------ the environment option forecast_correction
def test_the_option_gives_the_environment_the_correction_fit_on_the_named_split(synthetic):
    """``forecast_correction="train"`` on the test split: the environment forecasts with the correction fit on the
    train split (the same coefficients as fit by hand) over its own split's raw forecasts, bit for bit; the
    label says so, the same with and without the scenario."""
    import gymnasium as gym

    from equiglb.envs.core import agent_information

    kw = {"action_mode": "mpc_residual", "mpc_horizon": 12, "forecast_seed": 2, "forecast_correction": "train"}
    env = gym.make("equiglb/EquitableGLB-v0", split="test", **kw)
    fc = env.unwrapped.config.forecaster()
    assert isinstance(fc, CorrectedForecaster) and fc.split == "train"
    by_hand = CorrectedForecaster.fit(Forecaster(synthetic, "calibrated", 2, window=synthetic.splits["train"]),
                                      "train", 11)
    np.testing.assert_array_equal(fc.correction.beta, by_hand.correction.beta)
    start, length = synthetic.splits["test"]
    raw = Forecaster(synthetic, "calibrated", 2, window=(start, length))
    for t in (start, start + 30, start + length - 2):
        np.testing.assert_array_equal(fc.values(t, 11 if t < start + length - 12 else 1),
                                      CorrectedForecaster(raw, by_hand.correction).values(
                                          t, 11 if t < start + length - 12 else 1))
    label = "forecasts (calibrated, corrected (fit on train), mpc 12 h)"
    assert env.unwrapped.config.information() == label == agent_information(kw)


def test_the_corrected_planner_row_is_the_agents_action_zero():
    """Action 0 of ``mpc_residual`` with ``forecast_correction`` scores exactly the agent's-base row, which plans on
    the corrected forecasts (not the raw ones: that row differs)."""
    kw = {"action_mode": "mpc_residual", "mpc_horizon": 12, "forecast_correction": "train"}
    tab = evaluate_policy(lambda obs: np.zeros(2), split="test", name="zero", baselines=(), env_kwargs=kw)
    base_row = tab[tab["policy"].str.contains("agent's base")].iloc[0]
    zero_row = tab[tab["policy"] == "zero"].iloc[0]
    assert base_row["policy"] == "mpc-12 calibrated, corrected (fit on train) (agent's base)"
    assert base_row["objective"] == pytest.approx(zero_row["objective"], rel=1e-9)
    assert "corrected (fit on train)" in zero_row["information"]
    raw = evaluate_policy(MPCPolicy(horizon=12, forecast_model="calibrated"), split="test", name="raw",
                          baselines=(), env_kwargs={"scenario": "synthetic"})
    assert float(raw["objective"].iloc[-1]) != pytest.approx(zero_row["objective"], rel=1e-9)


def test_the_option_never_reads_the_scored_window(synthetic):
    """The correction of an environment on the test split is a function of the train split alone: other actuals
    in the test window leave its coefficients unchanged, bit for bit."""
    import dataclasses

    import gymnasium as gym

    start, length = synthetic.splits["test"]
    price = synthetic.price.copy()
    price[start:] *= 1.7
    other = dataclasses.replace(synthetic, price=price)
    from equiglb.envs import core

    kw = {"action_mode": "mpc_residual", "forecast_correction": "train", "split": "test"}
    core._CORRECTIONS.clear()             # each fit from the data, not from the cache of fits
    a = gym.make("equiglb/EquitableGLB-v0", **kw).unwrapped.config.forecaster()
    core._CORRECTIONS.clear()
    b = gym.make("equiglb/EquitableGLB-v0", scenario=other, **kw).unwrapped.config.forecaster()
    assert len(core._CORRECTIONS) == 1
    np.testing.assert_array_equal(a.correction.beta, b.correction.beta)
    assert not np.array_equal(a.values(start + 5, 3), b.values(start + 5, 3))


@pytest.mark.parametrize("kw,match", [
    ({"forecast_correction": "test", "split": "train"},
     r"^forecast_correction='test': the correction would be fit on slots 1200\.\.1439, which neither are the "
     r"environment's split 'train' \(slots 0\.\.1199\) nor end before it"),
    ({"forecast_correction": "nope"}, r"^forecast_correction='nope' is not a split of scenario 'synthetic'; "
                                      r"available: \['all', 'test', 'train'\]"),
    ({"forecast_correction": 3}, r"^forecast_correction=3: expected the name of a split"),
    ({"forecast_correction": "train", "forecast_model": "perfect"},
     r"^forecast_correction='train' with forecast_model='perfect': perfect forecasts have no errors"),
    ({"forecast_correction": "train", "forecast_model": "noise", "forecast_noise": 0.1},
     r"^forecast_correction='train' with forecast_model='noise'"),
])
def test_the_option_refuses_bad_values_by_name(kw, match):
    import gymnasium as gym

    from equiglb.validate import OptionError

    with pytest.raises(OptionError, match=match):
        gym.make("equiglb/EquitableGLB-v0", action_mode="mpc_residual", **kw)


def test_the_planner_row_of_a_corrected_agent_needs_its_window():
    from equiglb.envs.core import agent_base
    from equiglb.validate import OptionError

    with pytest.raises(OptionError, match=r"needs the scenario and split it is evaluated on"):
        agent_base({"action_mode": "mpc_residual", "forecast_correction": "train"})


def test_the_native_vector_env_with_the_option_equals_single_envs():
    """The option in the native vector environment: B copies give the single environments' observations (with
    the recent errors of the corrected forecasts) and rewards."""
    from conftest import assert_vector_equals_single_envs

    assert_vector_equals_single_envs(dict(action_mode="mpc_residual", mpc_horizon=6, forecast_correction="train",
                                          forecast_horizon=3, forecast_errors=True, episode_length=12,
                                          random_start=True), B=2, L=12, seed=5, action_seed=1, action_bound=1.0)


class _Reference(Forecaster):
    """The calibrated model through a subclass: the correction reads its errors by the reference path."""

    def values(self, t: int, horizon: int) -> np.ndarray:
        return Forecaster.values(self, t, horizon)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_the_calibrated_fast_path_reads_the_errors_of_the_reference(synthetic, scale):
    """The accelerator of the observed errors (one row of the calibrated model's error block) gives the reference's
    numbers (issue after issue, divided by the truth) to rounding: at the window's first slots, across error blocks,
    past 24 h of lead and where the truth is 0; the fit and the corrected forecasts follow."""
    import dataclasses

    from equiglb.forecast_correction import _calibrated_errors, error_reader

    demand = synthetic.demand.copy()
    demand[300, 2] = 0.0
    sc = dataclasses.replace(synthetic, demand=demand)
    fc = Forecaster(sc, "calibrated", 4, scale, window=(100, 900))
    read = error_reader(fc)
    assert read.func is _calibrated_errors
    for t in (100, 101, 110, 127, 128, 129, 255, 256, 300, 640, 999):
        for horizon in (1, 24, 40):
            np.testing.assert_allclose(read(t, horizon, 100), observed_errors(fc, t, horizon, 100), rtol=1e-12,
                                       atol=1e-14)
    assert not read(300, 24, 100)[:, 3 * sc.N + 2].any()               # the truth is 0: no error known
    assert read(300, 24, 100)[:, 3 * sc.N + 1].all()
    assert error_reader(Forecaster(sc, "persistence", 0)).func is observed_errors
    assert error_reader(_Reference(sc, "calibrated", 4, scale)).func is observed_errors
    fast = CorrectedForecaster.fit(Forecaster(sc, "calibrated", 4, scale), "train", 12)
    ref = CorrectedForecaster.fit(_Reference(sc, "calibrated", 4, scale), "train", 12)
    np.testing.assert_allclose(fast.correction.beta, ref.correction.beta, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(fast.correction.samples, ref.correction.samples)
    for t in (1250, 1300, 1400):
        np.testing.assert_allclose(fast.values(t, 12), ref.values(t, 12), rtol=1e-12)


def test_the_corrected_tail_planner_is_the_agents_action_zero():
    """``forecast_correction`` with a history tail (``mpc_tail_days``): action 0 scores exactly the agent's-base
    row, which plans with both (its label says so), and that row differs from the tail on the raw forecasts and from
    the correction without the tail."""
    kw = {"action_mode": "mpc_residual", "mpc_horizon": 6, "forecast_correction": "train", "mpc_tail_days": 2,
          "mpc_tail_weight": 0.5, "mpc_tail_block_hours": 6}
    tab = evaluate_policy(lambda obs: np.zeros(2), split="test", name="zero", baselines=(), env_kwargs=kw)
    base_row = tab[tab["policy"].str.contains("agent's base")].iloc[0]
    zero_row = tab[tab["policy"] == "zero"].iloc[0]
    assert base_row["objective"] == pytest.approx(zero_row["objective"], rel=1e-9)
    assert "corrected (fit on train)" in base_row["information"] and "history tail" in base_row["information"]
    for other in ({"forecast_correction": None}, {"mpc_tail_days": 0}):
        alone = evaluate_policy(lambda obs: np.zeros(2), split="test", name="zero", baselines=(),
                                env_kwargs={**kw, **other})
        assert float(alone["objective"].iloc[-1]) != pytest.approx(zero_row["objective"], rel=1e-9)
