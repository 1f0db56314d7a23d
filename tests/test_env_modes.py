"""The learning-augmented action modes ("prices", "eglb_residual", "mpc_residual"): same ledger, same guarantees."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import assert_random_episode_returns_minus_objective, assert_vector_equals_single_envs, small_synthetic
from gymnasium.utils.env_checker import check_env

from equiglb.baselines import MPCPolicy, OnlineEGLBPolicy
from equiglb.envs import EquitableGLBEnv

NEW_MODES = ("prices", "eglb_residual", "mpc_residual")


@pytest.mark.parametrize("mode", NEW_MODES)
@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("q", [1.0, 2.0, math.inf])
def test_return_is_minus_objective_for_random_actions(mode, K, q):
    scn = small_synthetic(K, q)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=24, action_mode=mode)
    assert_random_episode_returns_minus_objective(env, scn)


@pytest.mark.parametrize("K", [1, 3])
def test_residual_action_zero_is_online_eglb(K):
    scn = small_synthetic(K, math.inf)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=48, action_mode="eglb_residual")
    env.reset(seed=0, options={"start": 5})
    for _ in range(48):
        env.step(np.zeros(env.action_space.shape, np.float32))
    window = env.window()
    expected = OnlineEGLBPolicy().schedule(window, env.weights)
    np.testing.assert_array_equal(env.executed_schedule(), expected)


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("q", [1.0, 2.0, math.inf])
@pytest.mark.parametrize("horizon", [1, 4])
def test_mpc_residual_action_zero_is_mpc(K, q, horizon):
    scn = small_synthetic(K, q)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=12, action_mode="mpc_residual",
                          mpc_horizon=horizon)
    env.reset(seed=0, options={"start": 5})
    for _ in range(12):
        env.step(np.zeros(env.action_space.shape, np.float32))
    expected = MPCPolicy(horizon=horizon).schedule(env.window(), env.weights)
    np.testing.assert_allclose(env.executed_schedule(), expected, rtol=1e-9, atol=1e-9)


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
