"""The options of the MPC residual mode that shape learning: the reduced observations
(``mpc_residual_observation``) and the reward relative to the planner alone (``mpc_residual_reward``).

Every assertion compares with an independent computation: the full observation read by the search's own
feature code, the environment with the default reward, and the planner alone run as its own environment."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest

import equiglb  # noqa: F401  (registers the ids)
from equiglb.agents.search import LinearMultipliers
from equiglb.envs.registration import TUNED_IDS
from equiglb.validate import OptionError

ID = "equiglb/EquitableGLB-residual-v0"
WINDOW = dict(split="train", episode_length=36, random_start=False)


def _actions(seed: int, n: int = 36) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 2)).astype(np.float32)


def _play(env: gym.Env, actions: np.ndarray, start: int = 48) -> tuple[list[np.ndarray], list[float], list]:
    obs, _ = env.reset(seed=0, options={"start": start})
    seen, rewards, routings = [obs], [], []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        seen.append(obs)
        rewards.append(float(r))
        routings.append(info["routing"])
    assert term and not trunc
    return seen, rewards, routings


@pytest.mark.parametrize("kind", ["spreads", "none"])
def test_a_reduced_observation_is_the_full_observation_read_down(kind):
    full = gym.make(ID, forecast_errors=True, **WINDOW)
    reduced = gym.make(ID, forecast_horizon=0, mpc_residual_observation=kind, **WINDOW)
    acts = _actions(1)
    obs_f, r_f, x_f = _play(full, acts)
    obs_r, r_r, x_r = _play(reduced, acts)
    assert r_r == r_f                                      # the reward and the routing do not depend on it
    assert all(np.array_equal(a, b) for a, b in zip(x_r, x_f))
    features = LinearMultipliers.for_env(full, features="spreads")
    for o_r, o_f in zip(obs_r, obs_f):
        assert o_r.dtype == np.float32 and reduced.observation_space.contains(o_r)
        if kind == "none":
            assert o_r.tolist() == [1.0]
        else:   # (1, elapsed, carbon spread, water spread), as the search computes them from the full observation
            np.testing.assert_allclose(o_r, features.features(o_f), rtol=2e-6, atol=1e-7)
    if kind == "spreads":
        assert obs_r[-1][1] == 1.0 and obs_r[0][2:].tolist() == [0.0, 0.0]    # elapsed at the end, spreads at 0
        assert max(o[2] for o in obs_r) > 0.05                                  # the spreads move


def test_the_vector_env_has_the_reduced_observation_and_the_relative_reward_of_the_single_env():
    kw = dict(forecast_horizon=0, mpc_residual_observation="spreads", mpc_residual_reward="vs-planner", **WINDOW)
    venv = gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point", **kw)
    starts = [48, 120]
    acts = np.stack([_actions(2), _actions(3)], axis=1)       # (T, 2 copies, 2)
    obs, _ = venv.reset(seed=0, options={"start": starts})
    vec_obs, vec_r = [obs], []
    for a in acts:
        obs, r, *_ = venv.step(a)
        vec_obs.append(obs)
        vec_r.append(r)
    for b, start in enumerate(starts):
        single = gym.make(ID, **kw)
        obs_s, r_s, _ = _play(single, acts[:, b], start)
        # the batched ledger sums in another order: the last bits may differ
        np.testing.assert_allclose(np.array([r[b] for r in vec_r]), np.array(r_s), rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(np.stack([o[b] for o in vec_obs]), np.stack(obs_s))


def test_the_relative_return_is_the_planners_objective_minus_the_agents():
    acts = _actions(4)
    _, r_cost, _ = _play(gym.make(ID, **WINDOW), acts)
    _, r_planner, _ = _play(gym.make(ID, **WINDOW), np.zeros_like(acts))
    _, r_rel, _ = _play(gym.make(ID, mpc_residual_reward="vs-planner", **WINDOW), acts)
    j_agent, j_planner = -sum(r_cost), -sum(r_planner)
    assert abs(j_agent - j_planner) > 1.0                     # the actions matter (else the test proves nothing)
    # slot by slot: the agent's reward minus the planner's alone on its own trajectory
    np.testing.assert_allclose(r_rel, np.array(r_cost) - np.array(r_planner), rtol=0, atol=1e-9 * j_agent)
    assert sum(r_rel) == pytest.approx(j_planner - j_agent, rel=1e-9, abs=1e-6)
    # the planner's own actions earn exactly nothing
    _, r_zero, _ = _play(gym.make(ID, mpc_residual_reward="vs-planner", **WINDOW), np.zeros_like(acts))
    assert r_zero == [0.0] * len(acts)


def test_a_copy_mid_episode_continues_with_the_same_relative_rewards():
    env = gym.make(ID, mpc_residual_reward="vs-planner", **WINDOW)
    acts = _actions(5)
    env.reset(seed=0, options={"start": 60})
    for a in acts[:10]:
        env.step(a)
    twin = copy.deepcopy(env)
    for a in acts[10:]:
        assert env.step(a)[1] == twin.step(a)[1]


def test_the_default_ppo_id_observes_a_constant_against_its_planner():
    base, extra = TUNED_IDS["equiglb/EquitableGLB-residual-constant-v0"]
    assert extra["mpc_residual_observation"] == "none" and extra["mpc_residual_reward"] == "vs-planner"
    env = gym.make("equiglb/EquitableGLB-residual-constant-v0")
    assert env.observation_space.shape == (1,) and env.action_space.shape == (2,)
    assert env.unwrapped.config.episode_length == 240 and env.unwrapped.config.split == "train"


@pytest.mark.parametrize("kwargs, named", [
    (dict(mpc_residual_observation="partial"), r"mpc_residual_observation='partial': expected one of \['full', "
                                               r"'spreads', 'none'\]"),
    (dict(mpc_residual_reward="relative"), r"mpc_residual_reward='relative': expected one of \['cost', "
                                           r"'vs-planner'\]"),
    (dict(mpc_residual_observation="none", forecast_horizon=6), r"mpc_residual_observation='none' with "
                                                                r"forecast_horizon=6"),
    (dict(mpc_residual_observation="spreads", forecast_errors=True), r"with forecast_errors=True"),
    (dict(mpc_residual_observation="none", include_prev_action=True), r"with include_prev_action=True"),
])
def test_bad_values_are_refused_by_name(kwargs, named):
    with pytest.raises(OptionError, match=named):
        gym.make(ID, **{"forecast_horizon": 0, **kwargs})


def test_the_search_refuses_a_reduced_observation():
    env = gym.make(ID, forecast_horizon=0, mpc_residual_observation="spreads", **WINDOW)
    with pytest.raises(OptionError, match="mpc_residual_observation='spreads'"):
        LinearMultipliers.for_env(env)
