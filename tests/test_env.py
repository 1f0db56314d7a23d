"""The Gymnasium environment: feasibility of the action map, return == -J(x), seeding, API checks."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import equiglb
from equiglb.envs import ENV_IDS, EquitableGLBEnv, replay
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario, Weights


def random_scenario(rng: np.random.Generator, N: int, J: int, K: int, T: int, tight: bool = False) -> Scenario:
    """A random valid scenario; every region reaches at least one site hosting a model."""
    hosting = rng.random((N, K)) < 0.6
    hosting[np.arange(N), rng.integers(0, K, N)] = True
    mask = rng.random((N, J)) < 0.5
    mask[rng.integers(0, N, J), np.arange(J)] = True
    demand = rng.uniform(0, 2, (T, J)) * (rng.random((T, J)) < 0.85)
    cap_total = demand.sum(axis=1).max() * (rng.uniform(0.3, 0.9) if tight else rng.uniform(0.8, 2.0))
    capacity = rng.dirichlet(np.ones(N)) * cap_total * rng.uniform(0.5, 1.5)
    capacity[rng.random(N) < 0.1] = 0.0
    return Scenario(
        name="random", demand=demand, price=rng.normal(60, 40, (T, N)), carbon=rng.uniform(0, 0.8, (T, N)),
        water=rng.uniform(0, 5, (T, N)), capacity=capacity, mask=mask,
        site_names=[f"s{i}" for i in range(N)], region_names=[f"r{j}" for j in range(J)],
        timestamps=np.datetime64("2022-09-01T00", "h") + np.arange(T), hosting=hosting,
        energy_per_unit=rng.uniform(0.2, 1.5, K), quality_loss=rng.uniform(0, 0.3, K),
        pue=rng.uniform(1.0, 1.6, N), model_names=[f"m{k}" for k in range(K)],
        region_weights=rng.uniform(0.5, 2.0, N),
        weights=Weights(q=float(rng.choice([1.0, 2.0, 3.5, math.inf])), mu_social=float(rng.uniform(0, 500))),
    )


def extreme_action(rng: np.random.Generator, dim: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.uniform(-1, 1, dim)
    if kind == 1:
        return np.full(dim, -1.0)                       # all weights 0: uniform split
    if kind == 2:
        a = np.full(dim, -1.0)
        a[rng.integers(0, dim)] = 1.0                   # everything on one pair
        return a
    return rng.normal(0, 5, dim)                        # far outside the box: clipped


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), N=st.integers(1, 4), J=st.integers(1, 4), K=st.integers(1, 3),
       T=st.integers(1, 5), tight=st.booleans(), mode=st.sampled_from(["routing", "site_scores"]))
def test_routing_is_feasible_and_return_is_minus_objective(seed, N, J, K, T, tight, mode):
    rng = np.random.default_rng(seed)
    sc = random_scenario(rng, N, J, K, T, tight)
    env = EquitableGLBEnv(scenario=sc, split="all", action_mode=mode, forecast_horizon=2, include_prev_action=True)
    env.reset(seed=seed % 1000)
    allowed, e = sc.allowed, sc.energy_per_unit
    total, xs = 0.0, []
    for t in range(T):
        a = extreme_action(rng, env.action_map.dim, int(rng.integers(0, 4)))
        obs, r, terminated, truncated, info = env.step(a.astype(np.float32))
        assert env.observation_space.contains(obs)
        x = info["routing"]
        xs.append(x)
        total += r
        assert x.shape == (N, J, K) and np.all(x >= 0)
        assert np.all(x[~allowed] == 0)                                  # mask and hosting
        load = (x @ e).sum(axis=1)
        assert np.all(load <= sc.capacity + 1e-9)                        # capacity
        served = x.sum(axis=(0, 2))
        assert np.all(served <= sc.demand[t] + 1e-9)
        unserved = np.maximum(sc.demand[t] - served, 0)
        assert info["unserved_load"] == pytest.approx(unserved.sum(), abs=1e-9)
        for j in np.flatnonzero(unserved > 1e-9):                         # only when reach is full
            reach = allowed[:, j, :].any(axis=1)
            assert np.all(load[reach] >= sc.capacity[reach] - 1e-9), (j, load, sc.capacity)
        assert terminated == (t == T - 1) and not truncated
    rep = evaluate(sc, np.stack(xs), sc.weights)
    assert total == pytest.approx(-rep.objective_usd, rel=1e-9, abs=1e-9)
    assert env.episode_metrics()["objective"] == pytest.approx(rep.objective_usd, rel=1e-12)


def test_demand_is_fully_served_when_capacity_suffices():
    rng = np.random.default_rng(1)
    sc = random_scenario(rng, 4, 3, 2, 6)
    sc = Scenario(**{**sc.__dict__, "capacity": np.full(4, 100.0)})   # every site can take everything
    env = EquitableGLBEnv(scenario=sc, split="all", action_mode="routing")
    env.reset(seed=0)
    for t in range(6):
        _, _, _, _, info = env.step(env.action_space.sample())
        assert info["routing"].sum(axis=(0, 2)) == pytest.approx(sc.demand[t], rel=1e-12, abs=1e-12)
        assert info["unserved_load"] == pytest.approx(0.0, abs=1e-12)


def test_overflow_moves_to_spare_capacity_before_going_unserved():
    """Two sites of capacity 1, one region with demand 1.5 that prefers site 0: 1 + 0.5, nothing unserved."""
    sc = Scenario(name="two", demand=[[1.5]], price=[[10.0, 50.0]], carbon=[[0.1, 0.1]], water=[[1.0, 1.0]],
                  capacity=[1.0, 1.0], mask=[[True], [True]], site_names=["a", "b"], region_names=["r"],
                  timestamps=np.array(["2022-01-01T00"], dtype="datetime64[h]"))
    env = EquitableGLBEnv(scenario=sc, split="all", action_mode="routing")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, -1.0], np.float32))
    assert info["routing"][:, 0, 0] == pytest.approx([1.0, 0.5])
    assert info["unserved_load"] == 0.0


@pytest.mark.parametrize("bad", [np.array([np.nan, 0.0]), np.array([np.inf, 0.0]), np.zeros(3), np.zeros((1, 2))])
def test_bad_actions_raise(bad):
    sc = random_scenario(np.random.default_rng(0), 2, 1, 1, 2)
    sc = Scenario(**{**sc.__dict__, "mask": np.ones((2, 1), bool), "hosting": np.ones((2, 1), bool)})
    env = EquitableGLBEnv(scenario=sc, split="all", action_mode="routing")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="non-finite|shape"):
        env.step(bad)


def test_replay_of_a_hand_schedule_gives_minus_objective():
    rng = np.random.default_rng(7)
    sc = random_scenario(rng, 3, 4, 2, 8)
    sc = Scenario(**{**sc.__dict__, "capacity": np.full(3, 50.0)})
    # hand schedule: each region splits its demand evenly over its allowed pairs
    allowed = sc.allowed.astype(float)
    frac = allowed / allowed.sum(axis=(0, 2), keepdims=True)
    x = frac[None] * sc.demand[:, None, :, None]
    w = Weights(q=2.0, mu_social=100.0)
    ret, report = replay(sc, x, w)
    assert ret == pytest.approx(-evaluate(sc, x, w).objective_usd, rel=1e-9)
    assert report.objective_usd == pytest.approx(evaluate(sc, x, w).objective_usd, rel=1e-9)


def test_same_seed_same_trajectory():
    sc = random_scenario(np.random.default_rng(3), 3, 3, 1, 30)
    sc = Scenario(**{**sc.__dict__, "splits": {"train": (0, 20), "test": (20, 10)}})
    kw = dict(scenario=sc, episode_length=5, random_start=True, forecast_horizon=2, forecast_noise=0.1,
              include_prev_action=True)
    runs = []
    for _ in range(2):
        env = EquitableGLBEnv(**kw)
        obs, _ = env.reset(seed=11)
        act_rng = np.random.default_rng(0)
        traj = [obs]
        for _ in range(5):
            obs, r, *_ = env.step(act_rng.uniform(-1, 1, env.action_map.dim).astype(np.float32))
            traj += [obs, np.array([r])]
        runs.append((env.start, np.concatenate(traj)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_render_modes():
    sc = random_scenario(np.random.default_rng(2), 3, 2, 1, 3)
    for mode in ("ansi", "rgb_array"):
        env = EquitableGLBEnv(scenario=sc, split="all", render_mode=mode)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        out = env.render()
        if mode == "ansi":
            assert isinstance(out, str) and "s0" in out
        else:
            assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def _needs(env_id: str, eglb_dir) -> dict:
    scen = ENV_IDS[env_id]["scenario"]
    if scen not in equiglb.list_scenarios():
        pytest.skip(f"scenario {scen!r} is not registered yet")
    return {"data_dir": eglb_dir} if scen.startswith("eglb") else {}


@pytest.fixture
def maybe_eglb_dir(request):
    return request.getfixturevalue("eglb_dir") if "eglb2022" in request.node.callspec.params["env_id"] else None


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_env_checkers_pass_without_warnings(env_id, maybe_eglb_dir):
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    kwargs = _needs(env_id, maybe_eglb_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id, episode_length=4, forecast_horizon=2, include_prev_action=True, **kwargs)
        gym_check(env.unwrapped)
        sb3_check(gym.make(env_id, episode_length=4, **kwargs), warn=True)
        venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", episode_length=3, **kwargs)
        obs, _ = venv.reset(seed=0)
        assert venv.observation_space.contains(obs)
        obs, r, term, trunc, _ = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(obs) and r.shape == (2,)


def test_default_id_uses_the_synthetic_scenario():
    if "synthetic" not in equiglb.list_scenarios():
        pytest.skip("scenario 'synthetic' is not registered yet")
    env = gym.make("equiglb/EquitableGLB-v0", episode_length=3)
    assert env.unwrapped.scenario.name == "synthetic"
    assert env.unwrapped.weights.q == math.inf and env.unwrapped.weights.mu_carbon == 1500.0


def test_make_with_module_prefix_needs_no_prior_import():
    if "synthetic" not in equiglb.list_scenarios():
        pytest.skip("scenario 'synthetic' is not registered yet")
    code = ("import sys, gymnasium as gym\n"
            "assert 'equiglb' not in sys.modules\n"
            "env = gym.make('equiglb:equiglb/EquitableGLB-v0', episode_length=2)\n"
            "env.reset(seed=0); env.step(env.action_space.sample()); print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(Path(equiglb.__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_every_make_keyword_is_accepted(eglb_dir):
    env = gym.make("equiglb/EquitableGLB-eglb2022-partial-v0", data_dir=eglb_dir, split="test", q=2.0,
                   mu_carbon=1000.0, mu_water=30.0, mu_social=1.0, region_weights=np.linspace(1, 2, 10),
                   episode_length=24, random_start=True, action_mode="routing", forecast_horizon=3,
                   forecast_noise=0.05, include_prev_action=True, render_mode="ansi")
    u = env.unwrapped
    assert u.config.split == "test" and u.weights.q == 2.0 and u.weights.mu_water == 30.0
    assert u.scenario.region_weights[-1] == 2.0
    obs, _ = env.reset(seed=0)
    assert 336 <= u.start <= 336 + 121 - 24 and env.observation_space.contains(obs)
    assert not u.scenario.mask.all()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), N=st.integers(1, 6), K=st.integers(1, 3), B=st.integers(1, 3),
       zeros=st.booleans())
def test_closed_form_waterfill_equals_the_repair_rounds(seed, N, K, B, zeros):
    """For one group, :func:`waterfill` is the closed form of the rounds of :func:`repair`."""
    from equiglb.envs.actions import repair, waterfill

    rng = np.random.default_rng(seed)
    allowed = rng.random((N, K)) < 0.7
    allowed[rng.integers(0, N), rng.integers(0, K)] = True
    w = rng.random((B, N, K)) * allowed * (rng.random((B, N, K)) < (0.5 if zeros else 1.1))
    w[w.sum(axis=(1, 2)) == 0] = allowed
    p = w / w.sum(axis=(1, 2), keepdims=True)
    e = rng.uniform(0.2, 1.5, K)
    cap = rng.uniform(0, 1, N) * (rng.random(N) < 0.9)
    demand = rng.uniform(0, 2 * cap.sum() + 0.1, B)
    closed = waterfill(p, demand, e, cap, allowed)
    rounds = repair(p * demand[:, None, None], p, np.ones((K, 1)), e, cap, allowed)
    np.testing.assert_allclose(closed, rounds, rtol=1e-9, atol=1e-12)
    single = waterfill(p[0], demand[0], e, cap, allowed)        # the unbatched (plain Python) path
    np.testing.assert_allclose(single, closed[0], rtol=1e-12, atol=1e-14)


def test_forecasts_never_read_past_the_split():
    """On the train split, the perfect forecasts of its last slot repeat that slot: none of the test
    window's values reach the observation (they differ from it, so a leak would show)."""
    H = 6
    env = EquitableGLBEnv(split="train", forecast_horizon=H, episode_length=24, forecast_model="perfect")
    cfg, ob = env.config, env.observer
    last = cfg.split_start + cfg.split_length - 1
    env.reset(seed=0, options={"start": last - 23})
    for _ in range(23):
        obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    assert env.start + env.elapsed == last
    S = ob.signals.shape[1]
    ahead = obs[ob._forecast_at:ob._forecast_at + H * S].reshape(H, S)
    np.testing.assert_allclose(ahead, np.broadcast_to(ob.signals[last], (H, S)), rtol=1e-6)
    assert not np.allclose(ob.signals[last + 1:last + 1 + H], ob.signals[last])   # the test window differs
    assert EquitableGLBEnv(split="test", forecast_horizon=H).observer.forecast_last == env.scenario.T - 1


def test_a_clone_folder_named_equiglb_does_not_shadow_the_package(tmp_path):
    # the src/ layout: a checkout in a folder named "equiglb" (cloned into the current directory) has no
    # src/equiglb/__init__.py at its top, so scripts run from its parent import the installed package, not the folder
    repo = Path(equiglb.__file__).resolve().parents[2]
    clone = tmp_path / "equiglb"
    clone.mkdir()
    for name in ("src", "tests", "docs", "benchmarks"):
        (clone / name).symlink_to(repo / name)
    (clone / "train.py").symlink_to(repo / "train.py")
    code = ("import equiglb, gymnasium as gym\n"
            "assert equiglb.__file__ is not None, 'a namespace package: the folder shadows the package'\n"
            "env = gym.make('equiglb/EquitableGLB-v0', episode_length=2)\n"
            "env.reset(seed=0); print('ok', equiglb.__file__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok ") and Path(out.stdout.split(" ", 1)[1].strip()).resolve() == \
        Path(equiglb.__file__).resolve()
