"""The native vector env equals B single envs; the stable-baselines3 adapter works with PPO."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from test_env import random_scenario

import equiglb  # noqa: F401
from equiglb.envs import EquitableGLBEnv, EquitableGLBVectorEnv
from equiglb.envs.sb3 import SB3VecEnv
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario


def _scenario(seed: int = 5, K: int = 2) -> Scenario:
    sc = random_scenario(np.random.default_rng(seed), 4, 3, K, 40, tight=True)
    return Scenario(**{**sc.__dict__, "splits": {"train": (0, 30), "test": (30, 10)}})


@pytest.mark.parametrize("mode", ["routing", "site_scores"])
def test_vector_copies_equal_single_env_runs(mode):
    sc, B, L = _scenario(), 4, 6
    kw = dict(scenario=sc, episode_length=L, random_start=True, action_mode=mode, forecast_horizon=2,
              include_prev_action=True)
    venv = EquitableGLBVectorEnv(num_envs=B, **kw)
    envs = [EquitableGLBEnv(**kw) for _ in range(B)]
    vobs, _ = venv.reset(seed=100)
    sobs = np.stack([e.reset(seed=100 + b)[0] for b, e in enumerate(envs)])
    np.testing.assert_array_equal(vobs, sobs)
    rng = np.random.default_rng(0)
    for _step in range(L):
        a = rng.uniform(-1.2, 1.2, (B, venv.action_map.dim)).astype(np.float32)
        vobs, vr, vterm, vtrunc, vinfo = venv.step(a)
        outs = [e.step(a[b]) for b, e in enumerate(envs)]
        np.testing.assert_allclose(vr, [o[1] for o in outs], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(vobs, np.stack([o[0] for o in outs]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vinfo["routing"], np.stack([o[4]["routing"] for o in outs]), rtol=1e-12,
                                   atol=1e-12)
        assert list(vterm) == [o[2] for o in outs] and not vtrunc.any()
    # each copy's return is minus the ledger objective of its executed schedule
    for b, e in enumerate(envs):
        rep = evaluate(e.window(), e.executed_schedule(), e.weights)
        assert vinfo["episode_return_usd"][b] == pytest.approx(-rep.objective_usd, rel=1e-9)
    # next step auto-resets (NEXT_STEP mode)
    obs, r, term, trunc, _ = venv.step(np.zeros((B, venv.action_map.dim), np.float32))
    assert venv.elapsed == 0 and not term.any() and np.all(r == 0)


def test_vector_bad_actions_raise():
    venv = EquitableGLBVectorEnv(num_envs=2, scenario=_scenario(), episode_length=3)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, venv.action_map.dim)))
    a = np.zeros((2, venv.action_map.dim))
    a[1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        venv.step(a)


def test_sb3_adapter_reports_episodes_and_trains_ppo():
    from stable_baselines3 import PPO

    venv = SB3VecEnv(EquitableGLBVectorEnv(num_envs=4, scenario=_scenario(), episode_length=5, random_start=True))
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (4,) + venv.observation_space.shape
    for _step in range(5):
        obs, rew, dones, infos = venv.step(np.zeros((4,) + venv.action_space.shape, np.float32))
    assert dones.all() and all("terminal_observation" in i and i["episode"]["l"] == 5 for i in infos)
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(64)


def test_make_vec_vector_entry_point(eglb_dir):
    venv = gym.make_vec("equiglb/EquitableGLB-eglb2022-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        data_dir=eglb_dir, episode_length=4)
    assert isinstance(venv, EquitableGLBVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3,) + venv.single_observation_space.shape


def test_vector_forecast_noise_is_seeded_and_bounded():
    kw = dict(scenario=_scenario(), episode_length=4, forecast_horizon=3, forecast_noise=0.2, random_start=True)
    runs = []
    for _ in range(2):
        venv = EquitableGLBVectorEnv(num_envs=5, **kw)
        obs, _ = venv.reset(seed=9)
        traj = [obs]
        for _ in range(3):
            obs, *_ = venv.step(np.zeros((5, venv.action_map.dim), np.float32))
            assert venv.observation_space.contains(obs)
            traj.append(obs)
        runs.append(np.stack(traj))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.any(runs[0][:, 0] != runs[0][:, 1])      # copies draw their own noise
