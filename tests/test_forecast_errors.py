"""The observation's recent forecast errors (``forecast_errors=True``): what a controller can know at slot t of
its forecasts' quality, computed from the issued forecasts and the truth up to t only."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import equiglb  # noqa: F401 - registers the ids
from equiglb.envs.core import ERROR_FEATURES, ERROR_WINDOW_H
from equiglb.validate import OptionError

RESIDUAL = "equiglb/EquitableGLB-residual-v0"


def _features(env: gym.Env, obs: np.ndarray) -> np.ndarray:
    u = env.unwrapped.observer
    return obs[u._errors_at:u._errors_at + ERROR_FEATURES]


def _by_hand(env: gym.Env, t: int, lead: int) -> np.ndarray:
    """The features at slot t, one issue at a time through ``Forecaster.values`` (the reference)."""
    base = env.unwrapped
    fc, cfg, sc = base.forecaster, base.config, base.scenario
    scales = base.observer._signal_scales
    groups = [(0, sc.N), (sc.N, 2 * sc.N), (2 * sc.N, 3 * sc.N), (3 * sc.N, 3 * sc.N + sc.J)]
    out = np.zeros(ERROR_FEATURES)
    for k, h in enumerate((1, lead)):
        errs = [(fc.values(u - h, h)[h - 1] - fc.truth[u]) * scales
                for u in range(t - ERROR_WINDOW_H + 1, t + 1) if u - h >= cfg.split_start]
        if not errs:
            continue
        e = np.array(errs)
        for g, (a, b) in enumerate(groups):
            if k == 0:
                out[3 * g] = np.abs(e[:, a:b]).mean()
                out[3 * g + 1] = e[:, a:b].mean()
            else:
                out[3 * g + 2] = np.abs(e[:, a:b]).mean()
    return out


@pytest.mark.parametrize("model", ["calibrated", "persistence"])
def test_features_equal_the_issued_forecasts_against_the_truth(model):
    env = gym.make(RESIDUAL, forecast_errors=True, forecast_model=model, forecast_seed=3)
    obs, _ = env.reset(seed=0, options={"start": 10})
    lead = 23                                     # mpc_horizon 24 of the residual id: leads 1 .. 23
    for _ in range(40):
        t = env.unwrapped.start + env.unwrapped.elapsed           # the slot the observation shows
        np.testing.assert_allclose(_features(env, obs), _by_hand(env, t, lead), rtol=1e-5, atol=1e-6)
        obs, *_ = env.step(env.action_space.sample())
    assert np.abs(_features(env, obs)).max() > 0.01           # real errors, not zeros


def test_first_slot_of_the_split_has_no_errors_and_features_grow_from_issues_inside_the_split():
    env = gym.make(RESIDUAL, forecast_errors=True)
    obs, _ = env.reset(seed=0, options={"start": 0})
    assert not _features(env, obs).any()                   # no issue before the split's first slot
    obs, *_ = env.step(np.zeros(2, np.float32))
    f = _features(env, obs)
    assert f[[0, 3, 6, 9]].min() > 0                       # the 1-h issue of slot 1 was made at slot 0
    assert not f[[2, 5, 8, 11]].any()                      # no 23-h issue yet


def test_perfect_forecasts_have_zero_errors_and_noise_is_refused():
    env = gym.make(RESIDUAL, forecast_errors=True, forecast_model="perfect")
    obs, _ = env.reset(seed=0)
    for _ in range(30):
        obs, *_ = env.step(env.action_space.sample())
        assert not _features(env, obs).any()
    with pytest.raises(OptionError, match="forecast_errors=True with forecast_model='noise'"):
        gym.make("equiglb/EquitableGLB-v0", forecast_errors=True, forecast_noise=0.1, forecast_horizon=2)


def test_the_option_adds_exactly_the_features_and_leaves_the_rest_of_the_observation():
    plain = gym.make(RESIDUAL)
    more = gym.make(RESIDUAL, forecast_errors=True)
    a, _ = plain.reset(seed=5)
    b, _ = more.reset(seed=5)
    u = more.unwrapped.observer
    assert b.shape[0] == a.shape[0] + ERROR_FEATURES
    for _ in range(50):
        act = plain.action_space.sample()
        a, ra, *_ = plain.step(act)
        b, rb, *_ = more.step(act)
        assert ra == rb                                       # the option changes what is seen, not what happens
        np.testing.assert_array_equal(np.delete(b, np.s_[u._errors_at:u._errors_at + ERROR_FEATURES]), a)
        assert more.observation_space.contains(b)


def test_never_reads_the_held_out_window():
    """The test window's data changed (its hours reversed, which keeps the observation's scales, the maxima
    over the scenario): the features of every train slot are bit-identical."""
    env = gym.make(RESIDUAL, forecast_errors=True)
    sc = env.unwrapped.scenario
    s, n = sc.splits["test"]
    arrays = {k: getattr(sc, k).copy() for k in ("price", "carbon", "water", "demand")}
    for a in arrays.values():
        a[s:s + n] = a[s:s + n][::-1].copy()
    changed = dataclasses.replace(sc, **arrays)
    other = gym.make(RESIDUAL, forecast_errors=True, scenario=changed)
    t0, L = env.unwrapped.config.split_start, env.unwrapped.config.split_length
    u, v = env.unwrapped.observer, other.unwrapped.observer
    cols = np.s_[u._errors_at:u._errors_at + ERROR_FEATURES]
    np.testing.assert_array_equal(u._table[t0:t0 + L, cols], v._table[t0:t0 + L, cols])


def test_vector_env_sees_the_same_features():
    single = gym.make(RESIDUAL, forecast_errors=True)
    vec = gym.make_vec(RESIDUAL, num_envs=2, vectorization_mode="vector_entry_point", forecast_errors=True)
    o, _ = single.reset(seed=7)
    ov, _ = vec.reset(seed=[7, 8])
    np.testing.assert_array_equal(ov[0], o)


def test_tables_say_the_agent_knew_its_recent_errors():
    from equiglb.envs.core import agent_information
    env = gym.make(RESIDUAL, forecast_errors=True)
    assert env.unwrapped.config.information() == "forecasts (calibrated, obs 6 h, mpc 24 h, recent errors)"
    assert agent_information({"forecast_errors": True}) == "forecasts (calibrated, recent errors)"
    assert agent_information({}) == "none"
