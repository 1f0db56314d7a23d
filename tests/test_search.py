"""The cross-entropy policy search of the MPC residual's multipliers (equiglb.agents.search)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import equiglb
from equiglb.agents.search import N_FEATURES, LinearMultipliers, episode_objective, search_multipliers
from equiglb.baselines import make_policy
from equiglb.ledger import evaluate
from equiglb.validate import OptionError

KW = {"action_mode": "mpc_residual", "mpc_horizon": 6, "mpc_residual_max_factor": 1.5, "forecast_errors": True,
      "episode_length": 24, "random_start": False, "split": "train"}


def test_zero_weights_are_the_planner_alone():
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    pol = LinearMultipliers.for_env(env)
    j = episode_objective(env, pol, 48)
    window = env.unwrapped.window()
    planner = make_policy("mpc", horizon=6)
    assert j == pytest.approx(evaluate(window, planner.schedule(window, env.unwrapped.weights),
                                       env.unwrapped.weights).objective_usd, rel=1e-9)


def test_actions_follow_the_weights_and_stay_in_range():
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    obs, _ = env.reset(seed=0, options={"start": 30})
    theta = np.zeros((2, N_FEATURES))
    theta[0, 0], theta[1, 0] = 50.0, -0.5                 # the constant feature: tanh(50) = 1, tanh(-0.5)
    a = LinearMultipliers.for_env(env, theta)(obs)
    assert env.action_space.contains(a)
    np.testing.assert_allclose(a, [1.0, np.tanh(-0.5)], rtol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    pol = LinearMultipliers.for_env(env, np.arange(2 * N_FEATURES) / 10.0)
    pol.save(tmp_path / "p.json")
    back = LinearMultipliers.load(tmp_path / "p.json")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(back(obs), pol(obs))


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
