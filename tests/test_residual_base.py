"""The residual mode's base: ``eglb_eta_scale`` / ``eglb_z_max_scale`` set the online eGLB inside the environment."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from conftest import assert_random_episode_returns_minus_objective, load_benchmark, small_synthetic

from equiglb.baselines import OnlineEGLBPolicy
from equiglb.control.eglb import EGLBCore
from equiglb.envs import EquitableGLBEnv
from equiglb.envs.core import AGENT_OPTIONS, RESIDUAL_OPTIONS
from equiglb.envs.slot import EGLBResidualOptions, MPCResidualOptions, ResidualStep, make_slot_step
from equiglb.ledger import evaluate
from equiglb.validate import OptionError


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("eta_scale, z_max_scale", [(0.7, 1.0), (1.4, 0.5), (0.35, 2.0)])
def test_action_zero_is_online_eglb_with_the_scales(K, eta_scale, z_max_scale):
    scn = small_synthetic(K, math.inf)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=48, action_mode="eglb_residual",
                          eglb_eta_scale=eta_scale, eglb_z_max_scale=z_max_scale)
    policy = OnlineEGLBPolicy(eta_scale=eta_scale, z_max_scale=z_max_scale)
    for episode, start in enumerate((5, 20)):             # a second episode: the cores restart with the scales
        env.reset(seed=0, options={"start": start})
        for _ in range(48):
            env.step(np.zeros(env.action_space.shape, np.float32))
        expected = policy.schedule(env.window(), env.weights)
        if episode == 0 or K == 1:
            np.testing.assert_array_equal(env.executed_schedule(), expected)
        else:
            # K > 1: the per-slot LP router is shared across episodes and warm-started, so after the first
            # episode it may pick another routing of the same cost among ties (regions swapped between
            # sites' models); the per-site loads, hence the footprints, the duals and J(x), are the same
            e = scn.energy_per_unit
            np.testing.assert_allclose((env.executed_schedule() @ e).sum(axis=2), (expected @ e).sum(axis=2),
                                       rtol=1e-9, atol=1e-9)
            assert env.episode_report().objective_usd == pytest.approx(
                evaluate(env.window(), expected, env.weights).objective_usd, rel=1e-12)
    default = OnlineEGLBPolicy().schedule(env.window(), env.weights)
    assert not np.allclose(env.executed_schedule(), default)          # the option is not ignored


def test_vector_env_action_zero_is_online_eglb_with_the_scales():
    scn = small_synthetic(1, math.inf)
    B, L = 3, 24
    venv = gym.make_vec("equiglb/EquitableGLB-v0", num_envs=B, vectorization_mode="vector_entry_point",
                        scenario=scn, split="all", episode_length=L, random_start=True,
                        action_mode="eglb_residual", eglb_eta_scale=0.5, eglb_z_max_scale=2.0)
    venv.reset(seed=7)
    starts = np.array(venv.unwrapped.slot.starts)
    xs = []
    for _ in range(L):
        *_, info = venv.step(np.zeros(venv.action_space.shape, np.float32))
        xs.append(info["routing"])
    x = np.stack(xs, axis=1)                                                   # (B, L, N, J, K)
    for b in range(B):
        expected = OnlineEGLBPolicy(eta_scale=0.5, z_max_scale=2.0).schedule(scn.window(int(starts[b]), L), scn.weights)
        np.testing.assert_array_equal(x[b], expected)


@pytest.mark.parametrize("K", [1, 3])
def test_return_is_minus_objective_with_a_tuned_base(K):
    scn = small_synthetic(K, 2.0)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=24, action_mode="eglb_residual",
                          eglb_eta_scale=0.7, eglb_z_max_scale=2.0)
    assert_random_episode_returns_minus_objective(env, scn)


@pytest.mark.parametrize("option", sorted(RESIDUAL_OPTIONS))
@pytest.mark.parametrize("value, message", [
    (0.0, "must be > "), (-1.0, "must be > "), (math.nan, "expected a finite number"),
    (math.inf, "expected a finite number"), ("0.7", "expected a number, got a str"),
    (True, "expected a number, got a bool"), (None, "expected a number, got a NoneType"),
])
def test_bad_values_are_refused_by_name(option, value, message):
    with pytest.raises(OptionError) as err:
        EquitableGLBEnv(action_mode="eglb_residual", episode_length=24, **{option: value})
    assert str(err.value).startswith(f"{option}=")
    assert message in str(err.value)


@pytest.mark.parametrize("option", sorted(RESIDUAL_OPTIONS))
@pytest.mark.parametrize("mode", ["site_scores", "routing", "prices"])
def test_other_modes_refuse_a_non_default_base(option, mode):
    with pytest.raises(OptionError, match=rf"^{option}=2\.0: applies only with action_mode='eglb_residual', "
                                          rf"got action_mode='{mode}'"):
        EquitableGLBEnv(action_mode=mode, episode_length=24, **{option: 2.0})
    default = RESIDUAL_OPTIONS[option]
    env = EquitableGLBEnv(action_mode=mode, episode_length=24, **{option: default})   # the default: accepted
    assert env.config.mode_options is None            # the option of another mode is not in force


def test_defaults_and_numpy_values():
    env = EquitableGLBEnv(action_mode="eglb_residual", episode_length=24)
    assert env.config.mode_options == EGLBResidualOptions(1.0, 1.0)
    env = EquitableGLBEnv(action_mode="eglb_residual", episode_length=24, eglb_eta_scale=np.float32(0.5),
                          eglb_z_max_scale=2)
    slot = env.slot
    assert isinstance(slot, ResidualStep)
    assert (slot.eta_scale, slot.z_max_scale) == (0.5, 2.0)
    assert isinstance(env.config.mode_options.eglb_z_max_scale, float)
    env.reset(seed=0)
    assert (slot.cores[0].eta_scale, slot.cores[0].z_max_scale) == (0.5, 2.0)


@pytest.mark.parametrize("factor", [1.5, 4.0, 10.0])
def test_max_factor_sets_the_range_of_the_multipliers(factor):
    scn = small_synthetic(1, 2.0)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=24, action_mode="eglb_residual",
                          eglb_eta_scale=0.7, eglb_residual_max_factor=factor)
    env.reset(seed=0, options={"start": 3})
    core = EGLBCore(env.window(), env.weights, eta_scale=0.7)
    N = scn.N
    rng = np.random.default_rng(0)
    for t in range(24):
        a = rng.uniform(-1.5, 1.5, env.action_space.shape).astype(np.float32)   # beyond the box: clipped
        env.step(a)
        m = factor ** np.clip(a.astype(np.float64), -1.0, 1.0)
        core.step(t, m[:N], m[N:2 * N])
        np.testing.assert_allclose(env.slot.cores[0].gamma, core.gamma, rtol=1e-12, atol=1e-15)
    with pytest.raises(OptionError, match=r"^eglb_residual_max_factor=1\.0: must be > 1\.0"):
        EquitableGLBEnv(action_mode="eglb_residual", episode_length=24, eglb_residual_max_factor=1.0)


def test_residual_options_check_the_base():
    scn = small_synthetic(1, math.inf)
    with pytest.raises(ValueError, match=r"^eglb_eta_scale=0\.0: must be > 0\.0"):
        EGLBResidualOptions(eglb_eta_scale=0.0)
    with pytest.raises(ValueError, match=r"^eglb_z_max_scale=nan"):
        EGLBResidualOptions(eglb_z_max_scale=math.nan)
    with pytest.raises(ValueError, match=r"^eglb_residual_max_factor=0\.5: must be > 1\.0"):
        EGLBResidualOptions(eglb_residual_max_factor=0.5)
    with pytest.raises(TypeError, match="do not apply to action mode 'site_scores'"):
        make_slot_step(scn, scn.weights, "site_scores", options=EGLBResidualOptions(eglb_eta_scale=0.7))
    with pytest.raises(TypeError, match="do not apply to action mode 'eglb_residual'"):
        make_slot_step(scn, scn.weights, "eglb_residual", options=MPCResidualOptions())


def test_a_trained_agent_is_evaluated_with_the_same_base():
    # equiglb.agents.evaluate keeps AGENT_OPTIONS of the run's env_kwargs for the agent's environment
    assert set(RESIDUAL_OPTIONS) <= set(AGENT_OPTIONS)


def _agent_quality():
    return load_benchmark("agent_quality")


@pytest.mark.parametrize("argv, message", [
    (["--residual-base", "tuned"], "needs --env-kwargs action_mode=eglb_residual"),
    (["--residual-base", "tuned", "--env-kwargs", "action_mode=prices"],
     "needs --env-kwargs action_mode=eglb_residual"),
    (["--residual-base", "tuned", "--env-kwargs", "action_mode=eglb_residual", "eglb_eta_scale=0.5"],
     "sets eglb_eta_scale itself"),
])
def test_agent_quality_residual_base_flag_is_checked(argv, message, capsys):
    aq = _agent_quality()
    with pytest.raises(SystemExit) as exc:
        aq.main(["--protocol", "synthetic", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
