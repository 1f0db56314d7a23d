"""Learning from the oracle (equiglb.agents.imitate) and the program's optimal value (MPCCore.plan)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

import equiglb
from equiglb.agents.imitate import (
    LEVELS,
    THETA_BOUND,
    fit_multipliers,
    imitate_multipliers,
    interpolate_grid,
    oracle_costs,
)
from equiglb.agents.search import LinearMultipliers, episode_objective
from equiglb.control.mpc import AggregateLPSolver, MPCCore, make_mpc_solver
from equiglb.control.offline import solve_offline
from equiglb.ledger import weights_in_force
from equiglb.scenario import Weights
from equiglb.validate import OptionError

KW = {"action_mode": "mpc_residual", "mpc_horizon": 6, "mpc_residual_max_factor": 1.5, "forecast_errors": True,
      "episode_length": 24, "random_start": False, "split": "train"}


def _window(name: str, start: int, hours: int, q: float | None = None):
    sc = equiglb.load_scenario(name)
    w = sc.window(start, hours)
    weights = weights_in_force(w, None)
    if q is not None:
        weights = dataclasses.replace(weights, q=q)
    return w, weights


@pytest.mark.parametrize("q", [math.inf, 1.0])
def test_the_oracles_value_is_the_offline_optimum_and_stays_so_along_its_own_plan(q):
    """With perfect forecasts and the whole window ahead, the program's value at slot 0 is the offline optimum's J;
    following the oracle's own first slots, the cost so far plus the value at slot t stays that J (principle of
    optimality), and after the last slot the equity terms make up the rest."""
    w, weights = _window("synthetic", 100, 30, q)
    solver = make_mpc_solver(w, w.T, weights)
    assert isinstance(solver, AggregateLPSolver)
    core = MPCCore(w, weights, w.T)
    best = solve_offline(w, weights).objective_usd
    spent = 0.0
    for t in range(w.T):
        x, value = core.plan(t, solver)
        assert spent + value == pytest.approx(best, rel=1e-7)
        core.update(t, x)
        spent += float(core.ledger.slot_cost_usd)
    assert spent + float(core.ledger.phi_usd) == pytest.approx(best, rel=1e-7)


def test_plan_refuses_a_solver_other_than_the_lp_accelerator():
    w, weights = _window("synthetic-multimodel", 0, 6)
    solver = make_mpc_solver(w, 3, weights)
    with pytest.raises(TypeError, match="AggregateLPSolver.*got DirectMPCSolver"):
        MPCCore(w, weights, 3).plan(0, solver)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_interpolate_grid_is_exact_at_the_points_and_multilinear_between(d):
    rng = np.random.default_rng(d)
    levels = np.array(LEVELS)
    q = rng.normal(size=(7, len(levels) ** d))
    ref = [RegularGridInterpolator((levels,) * d, q[s].reshape((len(levels),) * d)) for s in range(7)]
    points = rng.uniform(-1, 1, size=(7, d))
    np.testing.assert_allclose(interpolate_grid(q, levels, points), [r(p)[0] for r, p in zip(ref, points)],
                               rtol=1e-12, atol=1e-12)
    grid = np.array(list(itertools.product(levels, repeat=d)))
    for g in (0, len(grid) // 2, len(grid) - 1):
        np.testing.assert_allclose(interpolate_grid(q, levels, np.repeat(grid[g:g + 1], 7, axis=0)), q[:, g])


@pytest.mark.parametrize("target", [(-0.5, 0.5), (0.25, -0.75)])
def test_the_fit_finds_the_action_of_least_cost(target):
    """Q the distance to one action, the same for every state: a constant policy fits that action."""
    levels = np.linspace(-1, 1, 9)
    grid = np.array(list(itertools.product(levels, repeat=2)))
    q = np.tile(np.abs(grid - np.array(target)).sum(axis=1), (20, 1))
    features = np.random.default_rng(0).normal(size=(20, 8))
    features[:, 0] = 1.0
    theta = fit_multipliers(features, q, levels, 2, "constant")
    assert theta.shape == (2, 1)
    np.testing.assert_allclose(np.tanh(theta[:, 0]), target, atol=2e-3)


def test_the_fit_reads_the_features_of_its_set():
    """Q whose best action is the sign of feature 'elapsed': the set 'elapsed' fits it, to the grid's edge."""
    levels = np.array(LEVELS)
    grid = np.array(list(itertools.product(levels, repeat=2)))
    features = np.zeros((40, 8))
    features[:, 0] = 1.0
    features[:, 1] = np.linspace(-1, 1, 40)
    best = np.where(features[:, 1:2] > 0, 1.0, -1.0) * np.ones((1, 2))
    q = np.abs(grid[None, :, :] - best[:, None, :]).sum(axis=2)
    theta = fit_multipliers(features, q, levels, 2, "elapsed")
    actions = np.tanh(features[:, :2] @ theta.T)
    assert np.all(np.sign(actions) == np.sign(best)) and np.abs(theta).max() <= THETA_BOUND
    with pytest.raises(OptionError, match=r"q_usd has shape \(40, 25\): expected \(40, 125\)"):
        fit_multipliers(features, q, levels, 3)
    with pytest.raises(OptionError, match=r"levels=\(0\.5, 0\.0\)"):
        fit_multipliers(features, q, (0.5, 0.0), 2)


def test_oracle_costs_are_whole_window_costs_above_the_offline_optimum():
    """Every Q(s_t, a) plus the cost of the slots before t is the J of a feasible schedule of the window, so it is at
    least the offline optimum; at the last slot, for the action played, it is the episode's J."""
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    planner = LinearMultipliers.for_env(env, features="constant")
    played = oracle_costs(env, planner, 48)
    assert played.q_usd.shape == (24, 25) and played.features.shape == (24, 8)
    assert played.objective_usd == pytest.approx(episode_objective(env, planner, 48), rel=1e-12)
    base = env.unwrapped
    window = base.scenario.window(48, 24)
    best = solve_offline(window, base.weights).objective_usd
    # the slot costs of the planner's own episode, from the ledger of a replay
    costs = []
    env.reset(seed=0, options={"start": 48})
    for _ in range(24):
        env.step(np.zeros(2, np.float32))
        costs.append(float(base.slot.cores[0].ledger.slot_cost_usd))
    spent = np.concatenate([[0.0], np.cumsum(costs)[:-1]])
    assert np.all(spent[:, None] + played.q_usd >= best * (1 - 1e-7))
    zero = int(np.flatnonzero((played.grid == 0).all(axis=1))[0])
    assert spent[-1] + played.q_usd[-1, zero] == pytest.approx(played.objective_usd, rel=1e-9)
    assert played.q_usd[0].min() < played.q_usd[0].max()          # the actions differ in their cost-to-go


def test_the_planners_cost_to_go_of_the_played_action_is_the_episodes_j():
    """continuation="planner": after the planner's own action the rollout is the episode itself, so the cost of the
    slots before t plus Q(s_t, 0) is the episode's J at every slot; other actions cost something else."""
    env = gym.make("equiglb/EquitableGLB-v0", **{**KW, "episode_length": 12})
    planner = LinearMultipliers.for_env(env, features="constant")
    played = oracle_costs(env, planner, 30, continuation="planner")
    base = env.unwrapped
    costs = []
    env.reset(seed=0, options={"start": 30})
    for _ in range(12):
        env.step(np.zeros(2, np.float32))
        costs.append(float(base.slot.cores[0].ledger.slot_cost_usd))
    spent = np.concatenate([[0.0], np.cumsum(costs)[:-1]])
    zero = int(np.flatnonzero((played.grid == 0).all(axis=1))[0])
    np.testing.assert_allclose(spent + played.q_usd[:, zero], played.objective_usd, rtol=1e-12)
    assert np.ptp(played.q_usd[0]) > 0
    with pytest.raises(OptionError, match="continuation='hindsight'"):
        oracle_costs(env, planner, 30, continuation="hindsight")


def test_oracle_costs_refuse_a_scenario_outside_the_lp_accelerator():
    env = gym.make("equiglb/EquitableGLB-v0", **{**KW, "scenario": "synthetic-multimodel", "episode_length": 6,
                                                 "mpc_horizon": 2})
    with pytest.raises(OptionError, match="not one of the LP accelerator.*DirectMPCSolver"):
        oracle_costs(env, lambda obs: np.zeros(3, np.float32), 10)


def test_imitation_is_deterministic_keeps_its_rounds_and_returns_the_best_on_its_windows():
    p1, h1 = imitate_multipliers(KW, [0, 24], rounds=2, features="constant")
    p2, h2 = imitate_multipliers(KW, [0, 24], rounds=2, features="constant")
    np.testing.assert_array_equal(p1.theta, p2.theta)
    assert h1.train_change_pct == h2.train_change_pct and h1.train_change_pct[0] == 0.0
    assert len(h1.train_change_pct) == 3 and h1.states == [48, 96] and len(h1.thetas) == 2
    assert h1.chosen == int(np.argmin(h1.train_change_pct[1:]))
    np.testing.assert_allclose(p1.theta, h1.thetas[h1.chosen], atol=1e-6)
    env = gym.make("equiglb/EquitableGLB-v0", **KW)
    j = [episode_objective(env, p1, s) for s in (0, 24)]
    change = 100 * np.mean([a / b - 1 for a, b in zip(j, h1.planner_j_usd)])
    assert change == pytest.approx(h1.train_change_pct[h1.chosen + 1], abs=1e-9)
    with pytest.raises(OptionError, match="rounds=0"):
        imitate_multipliers(KW, [0], rounds=0)
    with pytest.raises(OptionError, match="features='nope'"):
        imitate_multipliers(KW, [0], features="nope")


def test_imitation_never_reads_the_held_out_window():
    """The test window's data changed (reversed), the same policy: only the training windows are played."""
    p1, _ = imitate_multipliers(KW, [0], rounds=1, features="constant")
    sc = equiglb.load_scenario("synthetic")
    s, n = sc.splits["test"]
    arrays = {k: getattr(sc, k).copy() for k in ("price", "carbon", "water", "demand")}
    for a in arrays.values():
        a[s:s + n] = a[s:s + n][::-1].copy()
    p2, _ = imitate_multipliers({**KW, "scenario": dataclasses.replace(sc, **arrays)}, [0], rounds=1,
                                features="constant")
    np.testing.assert_array_equal(p1.theta, p2.theta)


@pytest.mark.parametrize("argv, named", [
    (["--protocol", "world"], r"--method imitate --protocol world: the cost-to-go of each action needs the LP"),
    (["--rounds", "0"], r"--rounds=0: expected at least 1"),
])
def test_policy_search_refuses_imitation_options_by_name_before_any_work(argv, named, capsys):
    from conftest import load_benchmark  # noqa: PLC0415

    ps = load_benchmark("policy_search")
    with pytest.raises(SystemExit, match=named):
        ps.main(["--stage", "val", "--features", "constant", "--method", "imitate", *argv])
    assert "CartPole" not in capsys.readouterr().out


def test_weights_with_q_other_than_one_or_inf_are_not_the_accelerators():
    w, weights = _window("synthetic", 0, 6, 2.0)
    assert not AggregateLPSolver.applies(w, weights) and isinstance(weights, Weights)
