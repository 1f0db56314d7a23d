"""The cross-entropy policy search of the MPC residual's multipliers (equiglb.agents.search)."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest

import equiglb
from equiglb.agents.search import (
    FEATURE_SETS,
    N_FEATURES,
    LinearMultipliers,
    episode_objective,
    search_multipliers,
)
from equiglb.baselines import make_policy
from equiglb.ledger import evaluate
from equiglb.validate import OptionError

KW = {"action_mode": "mpc_residual", "mpc_horizon": 6, "mpc_residual_max_factor": 1.5, "forecast_errors": True,
      "episode_length": 24, "random_start": False, "split": "train"}


@pytest.mark.parametrize("features", sorted(FEATURE_SETS))
def test_zero_weights_are_the_planner_alone(features):
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    pol = LinearMultipliers.for_env(env, features=features)
    assert pol.theta.shape == (2, len(FEATURE_SETS[features])) and not pol.theta.any()
    j = episode_objective(env, pol, 48)
    window = env.unwrapped.window()
    planner = make_policy("mpc", horizon=6)
    assert j == pytest.approx(evaluate(window, planner.schedule(window, env.unwrapped.weights),
                                       env.unwrapped.weights).objective_usd, rel=1e-9)


def test_feature_sets_read_their_features_of_the_full_set():
    """Sizes 8 / 4 / 2 / 1; each set's φ is its indices of the full φ; the constant set acts the same at every state."""
    assert {f: len(ix) for f, ix in FEATURE_SETS.items()} == {"full": N_FEATURES, "spreads": 4, "elapsed": 2,
                                                                  "constant": 1}
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    obs0, _ = env.reset(seed=0, options={"start": 30})
    for _ in range(5):                                 # footprints accumulate: the spreads leave 0
        obs1, *_ = env.step(np.zeros(2, np.float32))
    full = LinearMultipliers.for_env(env)
    spreads = LinearMultipliers.for_env(env, features="spreads")
    phi0, phi1 = full.features(obs0), full.features(obs1)
    assert not np.array_equal(phi0, phi1) and phi1[4] > 0 and phi1[5] > 0
    np.testing.assert_array_equal(spreads.features(obs1), phi1[[0, 1, 4, 5]])
    theta = np.array([[0.3, -1.0, 2.0, 0.5], [-0.2, 0.4, -1.5, 1.0]])
    a1 = LinearMultipliers.for_env(env, theta, features="spreads")(obs1)
    np.testing.assert_allclose(a1, np.tanh(theta @ phi1[[0, 1, 4, 5]]), rtol=1e-6)
    elapsed = LinearMultipliers.for_env(env, np.array([[0.1, -2.0], [0.3, 1.0]]), features="elapsed")
    np.testing.assert_array_equal(elapsed.features(obs1), phi1[[0, 1]])
    assert 0.0 < phi1[1] < 1.0                         # the fraction of the episode played
    np.testing.assert_allclose(elapsed(obs1), np.tanh([0.1 - 2.0 * phi1[1], 0.3 + phi1[1]]), rtol=1e-6)
    const = LinearMultipliers.for_env(env, np.array([0.4, -0.7]), features="constant")
    np.testing.assert_array_equal(const.features(obs1), [1.0])
    np.testing.assert_array_equal(const(obs0), const(obs1))
    np.testing.assert_allclose(const(obs0), np.tanh([0.4, -0.7]), rtol=1e-6)


def test_actions_follow_the_weights_and_stay_in_range():
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    obs, _ = env.reset(seed=0, options={"start": 30})
    theta = np.zeros((2, N_FEATURES))
    theta[0, 0], theta[1, 0] = 50.0, -0.5                 # the constant feature: tanh(50) = 1, tanh(-0.5)
    a = LinearMultipliers.for_env(env, theta)(obs)
    assert env.action_space.contains(a)
    np.testing.assert_allclose(a, [1.0, np.tanh(-0.5)], rtol=1e-6)


@pytest.mark.parametrize("features", sorted(FEATURE_SETS))
def test_save_and_load_round_trip(tmp_path, features):
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    pol = LinearMultipliers.for_env(env, np.arange(2 * len(FEATURE_SETS[features])) / 10.0 - 0.3, features)
    pol.save(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["features"] == features
    back = LinearMultipliers.load(tmp_path / "p.json")
    assert back.feature_set == features
    np.testing.assert_array_equal(back.theta, pol.theta)
    obs, _ = env.reset(seed=0, options={"start": 30})
    for _ in range(3):
        obs, *_ = env.step(np.zeros(2, np.float32))
    np.testing.assert_array_equal(back(obs), pol(obs))


def test_a_file_without_a_feature_set_holds_the_full_set(tmp_path):
    """Files written before the option existed: the 16 weights of the full set."""
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    pol = LinearMultipliers.for_env(env, np.arange(2 * N_FEATURES) / 10.0)
    d = pol.to_dict()
    del d["features"]
    (tmp_path / "old.json").write_text(json.dumps(d))
    back = LinearMultipliers.load(tmp_path / "old.json")
    assert back.feature_set == "full"
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(back(obs), pol(obs))


def test_a_bad_feature_set_or_weight_count_is_refused_by_name(tmp_path):
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    with pytest.raises(OptionError,
                       match=r"features='middle': expected one of \['constant', 'elapsed', 'full', 'spreads'\]"):
        LinearMultipliers.for_env(env, features="middle")
    with pytest.raises(OptionError, match="features=None"):
        LinearMultipliers(np.zeros(2), 10, 10, 6, features=None)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="features='middle'"):
        search_multipliers(KW, [0], iterations=1, population=3, features="middle")
    with pytest.raises(OptionError, match=r"theta: features='constant' takes 2 x 1 weights, got 16"):
        LinearMultipliers.for_env(env, np.zeros((2, N_FEATURES)), features="constant")
    d = LinearMultipliers.for_env(env).to_dict()
    (tmp_path / "bad.json").write_text(json.dumps({**d, "features": "Full"}))
    with pytest.raises(OptionError, match="features='Full'"):
        LinearMultipliers.load(tmp_path / "bad.json")


def test_refuses_an_environment_without_its_features():
    with pytest.raises(OptionError, match="forecast_errors=True"):
        LinearMultipliers.for_env(gym.make("equiglb/EquitableGLB-v0", **{**KW, "forecast_errors": False}))
    with pytest.raises(OptionError, match="elite"):
        search_multipliers(KW, [0], elite=5, population=2)


def test_the_search_is_seeded_and_never_reads_the_held_out_window():
    """Same seed, same policy; the test window's data changed (reversed: same observation scales), same policy."""
    p1, h1 = search_multipliers(KW, [0, 100], seed=3, iterations=2, population=3, elite=2)
    p2, _ = search_multipliers(KW, [0, 100], seed=3, iterations=2, population=3, elite=2)
    np.testing.assert_array_equal(p1.theta, p2.theta)
    assert len(h1.best_pct) == 2 and np.all(np.isfinite(h1.center_pct))
    sc = equiglb.load_scenario("synthetic")
    s, n = sc.splits["test"]
    arrays = {k: getattr(sc, k).copy() for k in ("price", "carbon", "water", "demand")}
    for a in arrays.values():
        a[s:s + n] = a[s:s + n][::-1].copy()
    p3, _ = search_multipliers({**KW, "scenario": dataclasses.replace(sc, **arrays)}, [0, 100], seed=3,
                               iterations=2, population=3, elite=2)
    np.testing.assert_array_equal(p1.theta, p3.theta)


def test_the_search_trains_the_weights_of_its_feature_set():
    """features="constant": 2 weights searched, the same seeded result twice, and a policy of that set."""
    p1, h1 = search_multipliers(KW, [0], seed=5, iterations=2, population=3, elite=2, features="constant")
    p2, _ = search_multipliers(KW, [0], seed=5, iterations=2, population=3, elite=2, features="constant")
    assert p1.feature_set == "constant" and p1.theta.shape == (2, 1) and p1.theta.any()
    np.testing.assert_array_equal(p1.theta, p2.theta)
    assert len(h1.center_pct) == 2


@pytest.mark.parametrize("beyond", ["below", "above"])
def test_policy_search_refuses_a_bad_augment_before_any_work(beyond, capsys):
    """benchmarks/policy_search.py --augment: out of range is refused by name before the CartPole reference or a
    search runs (the message names the flag, the value and the range)."""
    from conftest import load_benchmark  # noqa: PLC0415

    ps = load_benchmark("policy_search")
    value = "-1" if beyond == "below" else str(ps.MAX_COPIES + 1)
    with pytest.raises(SystemExit, match=rf"--augment={value}: expected 0 .*\.\. {ps.MAX_COPIES}"):
        ps.main(["--stage", "val", "--features", "constant", "--augment", value])
    assert "CartPole" not in capsys.readouterr().out


KW3 = {**KW, "scenario": "synthetic-multimodel", "mpc_horizon": 2, "episode_length": 6}


def test_a_social_term_gives_the_policy_a_third_multiplier(tmp_path):
    """With a social term (three models) the mode has three multipliers (carbon, water, social): the policy has
    a row of weights per multiplier, zeros are the planner alone, each row drives its action, and a saved policy
    loads with its three rows."""
    env = gym.make("equiglb/EquitableGLB-v0", **KW3)
    assert env.action_space.shape == (3,)
    zero = LinearMultipliers.for_env(env, features="constant")
    assert zero.n_actions == 3 and zero.theta.shape == (3, 1)
    j = episode_objective(env, zero, 10)
    window = env.unwrapped.window()
    planner = make_policy("mpc", horizon=2)
    assert j == pytest.approx(evaluate(window, planner.schedule(window, env.unwrapped.weights),
                                       env.unwrapped.weights).objective_usd, rel=1e-7)
    pol = LinearMultipliers.for_env(env, np.arange(3 * 4).reshape(3, 4) / 10.0 - 0.5, features="spreads")
    obs, _ = env.reset(seed=0, options={"start": 10})
    for _ in range(3):
        obs, *_ = env.step(np.zeros(3, np.float32))
    np.testing.assert_allclose(pol(obs), np.tanh(pol.theta @ pol.features(obs)), rtol=1e-6)
    assert env.action_space.contains(pol(obs)) and len(set(pol(obs).tolist())) == 3
    pol.save(tmp_path / "p3.json")
    back = LinearMultipliers.load(tmp_path / "p3.json")
    assert back.n_actions == 3
    np.testing.assert_array_equal(back(obs), pol(obs))
    with pytest.raises(OptionError, match=r"theta: features='constant' takes 3 x 1 weights, got 2"):
        LinearMultipliers.for_env(env, np.zeros(2), features="constant")
    with pytest.raises(OptionError, match="n_actions=4"):
        LinearMultipliers(np.zeros(4), 10, 10, 6, features="constant", n_actions=4)


def test_the_search_trains_three_multipliers_with_a_social_term():
    p1, h1 = search_multipliers(KW3, [10], seed=1, iterations=1, population=3, elite=2, features="constant")
    assert p1.theta.shape == (3, 1) and p1.theta.all() and len(h1.center_pct) == 1


@pytest.mark.parametrize("argv, named", [
    (["--mpc-horizon", "0"], r"--mpc-horizon=0: expected 1 \.\. \d+ hours"),
    (["--windows", "0"], r"--windows=0: expected at least 1"),
    (["--protocol", "world", "--augment", "2"], r"--augment=2: the protocol 'world' has a year"),
])
def test_policy_search_refuses_bad_options_by_name_before_any_work(argv, named, capsys):
    from conftest import load_benchmark  # noqa: PLC0415

    ps = load_benchmark("policy_search")
    with pytest.raises(SystemExit, match=named):
        ps.main(["--stage", "val", "--features", "constant", *argv])
    assert "CartPole" not in capsys.readouterr().out


def test_spread_out_keeps_the_first_and_last_and_spreads_the_rest():
    from conftest import load_benchmark  # noqa: PLC0415

    ps = load_benchmark("policy_search")
    starts = list(range(0, 8760 - 730 + 1, 730))                   # the twelve 730-h episodes of a year
    assert ps.spread_out(starts, 3) == [0, 4380, 8030]
    assert ps.spread_out(starts, 2) == [0, 8030] and ps.spread_out(starts, 1) == [0]
    assert ps.spread_out(starts, None) == starts == ps.spread_out(starts, 12) == ps.spread_out(starts, 40)
    five = ps.spread_out(starts, 5)
    assert len(five) == 5 and five == sorted(set(five)) and set(five) <= set(starts)


@pytest.mark.parametrize("protocol, stage", [("synthetic", "val"), ("synthetic", "test"), ("world", "val"),
                                             ("world", "test")])
def test_policy_search_trains_only_on_its_training_split(protocol, stage):
    """Every training episode lies inside the training split and outside the scored window; the test window (the
    test months of world) is not scored at the val stage."""
    from conftest import load_benchmark  # noqa: PLC0415

    ps = load_benchmark("policy_search")
    argv = ["--stage", stage, "--protocol", protocol, "--features", "constant"]
    if protocol == "world":
        data = ps.TRACES
        if not (data / "sustain-cluster").is_dir() or not (data / "servegen").is_dir():
            pytest.skip(f"world traces absent under {data}")
        argv += ["--data-dir", str(data)]
    run = ps.setup(ps.parser().parse_args(argv))
    hours = ps.PROTOCOLS[protocol].hours
    assert run.eval_split == stage and run.train_split == ("train" if stage == "test" or protocol == "world" else "fit")
    assert run.train_kw["split"] == run.train_split and run.eval_kw["split"] == stage
    full = gym.make("equiglb/EquitableGLB-v0", **run.eval_kw).unwrapped
    e0, en = full.config.split_start, full.config.split_length
    for s in run.starts:
        assert run.split_start <= s and s + hours <= run.split_start + run.split_length
        assert s + hours <= e0 or s >= e0 + en                     # no training hour is a scored hour
    if protocol == "world":
        assert run.horizon == 6 and len(run.starts) == 3 and run.train_kw["mpc_horizon"] == 6
        assert (run.split_start, run.split_length) == full.scenario.splits["train"]
        test0 = full.scenario.splits["test"][0]
        assert all(s + hours <= test0 for s in run.starts) and (stage == "test" or e0 + en <= test0)
