"""The learning-augmented action modes ("prices", "eglb_residual"): same ledger, same guarantees."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import assert_vector_equals_single_envs
from gymnasium.utils.env_checker import check_env

import equiglb
from equiglb.baselines import OnlineEGLBPolicy
from equiglb.envs import EquitableGLBEnv
from equiglb.ledger import evaluate

NEW_MODES = ("prices", "eglb_residual")


def small_scenario(K: int, q: float) -> equiglb.Scenario:
    name = "synthetic" if K == 1 else "synthetic-multimodel"
    scn = equiglb.load_scenario(name, hours=72, seed=3)
    return scn.with_weights(scn.weights.replace(q=q))


@pytest.mark.parametrize("mode", NEW_MODES)
@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("q", [1.0, 2.0, math.inf])
def test_return_is_minus_objective_for_random_actions(mode, K, q):
    scn = small_scenario(K, q)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=24, action_mode=mode)
    env.reset(seed=1, options={"start": 10})
    env.action_space.seed(1)
    total, done = 0.0, False
    while not done:
        obs, r, done, _, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        x = info["routing"]
        assert np.all(x >= -1e-12)
        assert np.all((x @ scn.energy_per_unit).sum(axis=1) <= scn.capacity * (1 + 1e-9) + 1e-12)
        total += r
    rep = evaluate(env.window(), env.executed_schedule(), env.weights)
    assert total == pytest.approx(-rep.objective_usd, rel=1e-9)


@pytest.mark.parametrize("K", [1, 3])
def test_residual_action_zero_is_online_eglb(K):
    scn = small_scenario(K, math.inf)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=48, action_mode="eglb_residual")
    env.reset(seed=0, options={"start": 5})
    for _ in range(48):
        env.step(np.zeros(env.action_space.shape, np.float32))
    window = env.window()
    expected = OnlineEGLBPolicy().schedule(window, env.weights)
    np.testing.assert_array_equal(env.executed_schedule(), expected)


@pytest.mark.parametrize("mode", NEW_MODES)
def test_checkers_are_silent(mode):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("equiglb/EquitableGLB-v0", action_mode=mode, episode_length=24)
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(gym.make("equiglb/EquitableGLB-v0", action_mode=mode, episode_length=24), warn=True)


@pytest.mark.parametrize("mode", NEW_MODES)
def test_vector_env_equals_single_envs(mode):
    assert_vector_equals_single_envs(dict(action_mode=mode, episode_length=12, random_start=True), B=3, L=12,
                                     seed=4, action_seed=2, action_bound=1.0)


def test_residual_observation_carries_the_duals():
    env = EquitableGLBEnv(action_mode="eglb_residual", episode_length=24)
    obs, _ = env.reset(seed=0)
    assert env.slot.extra_dim == 2 * env.scenario.N
    for _ in range(5):
        obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    core = env.slot.cores[0]
    n = env.slot.extra_dim
    start = env.observer.dim - n
    np.testing.assert_allclose(obs[start:start + n], np.clip(core.gamma, 0, 4), rtol=1e-6)
