"""Offline optimum and equity-oblivious baselines: reference values, hand/brute-force optima, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linprog

from equiglb.baselines import (
    InfeasibleError,
    MinSignalPolicy,
    MPCPolicy,
    NearestPolicy,
    OfflinePolicy,
    ProportionalPolicy,
    RandomPolicy,
    compare,
    make_policy,
    solve_offline,
)
from equiglb.control import offline as offline_mod
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario, Weights

# ---------------------------------------------------------------------- helpers


def small_scenario(T=3, N=3, J=2, K=2, seed=0, mask=None, hosting=None, demand_scale=0.5, **kw) -> Scenario:
    """A random small instance (capacity 1 MWh per site, demand below reachable capacity)."""
    rng = np.random.default_rng(seed)
    return Scenario(
        name=f"small-{seed}",
        demand=demand_scale * rng.uniform(0.2, 1.0, (T, J)),
        price=rng.uniform(-5, 80, (T, N)),
        carbon=rng.uniform(0.1, 0.8, (T, N)),
        water=rng.uniform(0.5, 4.0, (T, N)),
        capacity=np.ones(N),
        mask=np.ones((N, J), bool) if mask is None else mask,
        hosting=hosting,
        energy_per_unit=np.linspace(1.0, 0.6, K),
        quality_loss=np.linspace(0.0, 0.3, K),
        pue=rng.uniform(1.0, 1.4, N),
        region_weights=rng.uniform(0.5, 1.5, N),
        latency=rng.uniform(0, 50, (N, J)),
        site_names=[f"s{i}" for i in range(N)], region_names=[f"r{j}" for j in range(J)],
        model_names=[f"m{k}" for k in range(K)],
        timestamps=np.datetime64("2022-01-01T00", "h") + np.arange(T).astype("timedelta64[h]"),
        **kw,
    )


def assert_feasible(sc: Scenario, x: np.ndarray, tol: float = 1e-6) -> None:
    """Demand met, capacity respected, zero outside allowed pairs."""
    assert x.shape == (sc.T, sc.N, sc.J, sc.K)
    assert (x >= -tol).all()
    assert np.abs(x * ~sc.allowed[None]).max() <= tol
    np.testing.assert_allclose(x.sum(axis=(1, 3)), sc.demand, atol=tol)
    assert ((x @ sc.energy_per_unit).sum(axis=2) <= sc.capacity[None] + tol).all()


def lp_reference(sc: Scenario, w: Weights, extra: np.ndarray | None = None) -> float:
    """Independent LP (scipy/HiGHS, dense, every (t,i,j,k)) for q = 1 or inf, with an epigraph for the max."""
    T, N, J, K = sc.T, sc.N, sc.J, sc.K
    nx = T * N * J * K
    idx = np.arange(nx).reshape(T, N, J, K)
    e = sc.energy_per_unit[None, None, None, :]
    fac = sc.pue[None, :, None, None] * e                                          # facility MWh per unit
    carbon = w.mu_carbon * (sc.region_weights * sc.carbon)[:, :, None, None] * fac  # USD per unit
    water = w.mu_water * (sc.region_weights * sc.water)[:, :, None, None] * fac
    lam = sc.demand.sum(axis=0)
    social = w.mu_social * sc.quality_loss[None, None, None, :] / lam[None, None, :, None]
    cost = (sc.price[:, :, None, None] * fac).repeat(J, 2) + 0 * social
    if extra is not None:                                  # (N, J) USD per load unit, e.g. latency
        cost = cost + extra[None, :, :, None]
    A_eq = np.zeros((T * J, nx))
    for t in range(T):
        for j in range(J):
            A_eq[t * J + j, idx[t, :, j, :].ravel()] = 1
    A_cap = np.zeros((T * N, nx))
    for t in range(T):
        for i in range(N):
            A_cap[t * N + i, idx[t, i].ravel()] = np.tile(sc.energy_per_unit, J)
    bounds = [(0, None) if a else (0, 0) for a in np.broadcast_to(sc.allowed, (T, N, J, K)).ravel()]
    if w.q == 1:
        c = (cost + carbon + water + np.broadcast_to(social, cost.shape)).ravel()
        res = linprog(c, A_ub=A_cap, b_ub=np.tile(sc.capacity, T), A_eq=A_eq, b_eq=sc.demand.ravel(),
                      bounds=bounds, method="highs")
        assert res.status == 0
        return res.fun
    # q = inf: epigraph variables tc, tw, ts
    c = np.concatenate([cost.ravel(), [1.0, 1.0, 1.0]])
    rows, rhs = [], []
    for i in range(N):
        r = np.zeros(nx + 3); r[idx[:, i].ravel()] = carbon[:, i].repeat(J, 1).ravel(); r[nx] = -1
        rows.append(r); rhs.append(0.0)
        r = np.zeros(nx + 3); r[idx[:, i].ravel()] = water[:, i].repeat(J, 1).ravel(); r[nx + 1] = -1
        rows.append(r); rhs.append(0.0)
    for j in range(J):
        r = np.zeros(nx + 3); r[idx[:, :, j].ravel()] = np.broadcast_to(social[0, 0, j], (T, N, K)).ravel()
        r[nx + 2] = -1
        rows.append(r); rhs.append(0.0)
    A_ub = np.vstack([np.hstack([A_cap, np.zeros((T * N, 3))])] + [np.array(rows)])
    b_ub = np.concatenate([np.tile(sc.capacity, T), rhs])
    A_eq3 = np.hstack([A_eq, np.zeros((T * J, 3))])
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq3, b_eq=sc.demand.ravel(),
                  bounds=bounds + [(0, None)] * 3, method="highs")
    assert res.status == 0
    return res.fun


# ---------------------------------------------------------------------- reference values (real traces)


def test_eglb_offline_reference(eglb):
    res = solve_offline(eglb, eglb.weights)
    assert res.status == "optimal" and res.solver == "BLOCKIPM"  # the seam's choice
    assert res.objective_usd == pytest.approx(623_661.35, rel=1e-6)
    assert res.solver_objective_usd == pytest.approx(res.objective_usd, rel=1e-8)
    assert_feasible(eglb, res.schedule)


def test_eglb_aggregated_equals_per_pair_program(eglb):
    sc = eglb.window(200, 48)
    values = []
    for aggregate in (True, False):
        prob = offline_mod.OfflineProblem(sc, sc.T, sc.weights, aggregate=aggregate)
        prob.set_data(sc, sc.weights)
        assert prob.solve("HIGHS")[0] == "optimal"
        x = prob.schedule()
        assert_feasible(sc, x)
        values.append(evaluate(sc, x).objective_usd)
    assert values[0] == pytest.approx(values[1], rel=1e-8)


def test_eglb_min_cost_reference(eglb):
    x = MinSignalPolicy("price").schedule(eglb)
    assert_feasible(eglb, x)
    assert evaluate(eglb, x).energy_cost_usd == pytest.approx(291_698.61, abs=0.01)


def test_eglb_offline_replay_through_env(eglb):
    replay = pytest.importorskip("equiglb.envs.replay").replay
    sc = eglb.window(100, 24)
    res = solve_offline(sc)
    ret, _ = replay(sc, res.schedule, sc.weights)
    assert ret == pytest.approx(-res.objective_usd, rel=1e-7)


# ---------------------------------------------------------------------- small instances


@pytest.mark.parametrize("q", [1.0, math.inf])
@pytest.mark.parametrize("seed", [0, 1])
def test_offline_matches_independent_lp(q, seed):
    mask = np.array([[1, 1], [1, 0], [0, 1]], bool)
    hosting = np.array([[1, 1], [0, 1], [1, 0]], bool)
    sc = small_scenario(seed=seed, mask=mask, hosting=hosting)
    w = Weights(mu_carbon=40.0, mu_water=5.0, mu_social=30.0, q=q)
    res = solve_offline(sc, w, allow_unserved=False)
    assert_feasible(sc, res.schedule)
    assert res.objective_usd == pytest.approx(lp_reference(sc, w), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("q", [1.0, math.inf])
def test_offline_aggregated_full_mask_matches_lp(q):
    # K = 1, full mask, no region-dependent term: solved for one aggregate region, then split
    sc = small_scenario(T=4, N=3, J=3, K=1, seed=12, demand_scale=0.9)
    w = Weights(mu_carbon=70.0, mu_water=9.0, q=q)
    res = solve_offline(sc, w, allow_unserved=False)
    assert offline_mod._problem_for(sc, w, False).aggregate
    assert_feasible(sc, res.schedule)
    assert res.objective_usd == pytest.approx(lp_reference(sc, w), rel=1e-6, abs=1e-6)
    assert res.solver_objective_usd == pytest.approx(res.objective_usd, rel=1e-7)


def _one_slot(price, carbon, q, mu_carbon=1.0):
    """T = 1, two sites, one region of demand 1, capacity 1 each: J(x) is a function of x0 in [0, 1]."""
    return Scenario(name="two-sites", demand=[[1.0]], price=[price], carbon=[carbon], water=[[0.0, 0.0]],
                    capacity=[1.0, 1.0], mask=np.ones((2, 1), bool), site_names=["a", "b"], region_names=["r"],
                    timestamps=np.array(["2022-01-01T00"], "datetime64[h]"),
                    weights=Weights(mu_carbon=mu_carbon, mu_water=0.0, q=q))


def test_offline_q2_closed_form():
    # min sqrt((a x)^2 + (b (1-x))^2): optimum a b / sqrt(a^2 + b^2) at x = b^2 / (a^2 + b^2)
    a, b = 0.3, 0.7
    sc = _one_slot([0.0, 0.0], [a, b], 2.0)
    res = solve_offline(sc)
    assert res.solver == "CLARABEL"
    assert res.objective_usd == pytest.approx(a * b / math.hypot(a, b), rel=1e-6)
    assert res.schedule[0, 0, 0, 0] == pytest.approx(b * b / (a * a + b * b), abs=1e-5)


@pytest.mark.parametrize("q", [1.0, 2.0, 3.0, math.inf])
def test_offline_grid_search(q):
    sc = _one_slot([10.0, 4.0], [0.5, 0.2], q, mu_carbon=30.0)
    xs = np.linspace(0, 1, 200_001)
    C = np.stack([0.5 * xs, 0.2 * (1 - xs)], axis=1) * 30.0
    norm = C.max(axis=1) if q == math.inf else (C ** q).sum(axis=1) ** (1 / q)
    brute = (10 * xs + 4 * (1 - xs) + norm).min()
    res = solve_offline(sc)
    assert res.objective_usd == pytest.approx(brute, rel=1e-6)


def test_offline_k2_by_hand():
    # one site, two models: m0 costs 1 MWh/unit with no loss, m1 0.5 MWh/unit with loss 0.2;
    # price 100 USD/MWh, capacity 0.75 MWh, demand 1: x0 + x1 = 1, x0 + 0.5 x1 <= 0.75 -> x1 >= 0.5.
    # J = 100 (x0 + 0.5 x1) + mu_s * 0.2 x1 (q = 1): with mu_s = 100, cost 100 - 50 x1 + 20 x1 -> x1 = 1.
    # With mu_s = 400: 100 - 50 x1 + 80 x1 -> x1 = 0.5 (capacity binds), J = 75 + 40 = 115.
    base = dict(name="k2", demand=[[1.0]], price=[[100.0]], carbon=[[0.0]], water=[[0.0]], capacity=[0.75],
                mask=[[True]], site_names=["s"], region_names=["r"], model_names=["big", "small"],
                energy_per_unit=[1.0, 0.5], quality_loss=[0.0, 0.2],
                timestamps=np.array(["2022-01-01T00"], "datetime64[h]"))
    sc = Scenario(**base)
    r1 = solve_offline(sc, Weights(mu_social=100.0, q=1.0))
    assert r1.objective_usd == pytest.approx(50.0 + 20.0, rel=1e-7)
    r2 = solve_offline(sc, Weights(mu_social=400.0, q=1.0))
    assert r2.objective_usd == pytest.approx(115.0, rel=1e-7)
    np.testing.assert_allclose(r2.schedule[0, 0, 0], [0.5, 0.5], atol=1e-6)


def test_cached_program_follows_new_weights():
    # the second solve re-uses the compiled program (same structure and length) with new parameters
    sc = small_scenario(T=3, seed=13)
    for w in (Weights(mu_carbon=10.0, mu_latency=0.5, q=1.0), Weights(mu_carbon=90.0, mu_latency=2.0, q=1.0)):
        assert solve_offline(sc, w).objective_usd == pytest.approx(lp_reference_latency(sc, w), rel=1e-6)


def lp_reference_latency(sc: Scenario, w: Weights) -> float:
    """q = 1 optimum with latency: the latency term is linear, so add it to the prices pair by pair."""
    return lp_reference(sc, w, extra=w.mu_latency * sc.latency)


def test_min_cost_equals_offline_without_equity():
    sc = small_scenario(T=4, seed=3, mask=np.array([[1, 0], [1, 1], [0, 1]], bool))
    w = Weights(mu_carbon=0.0, mu_water=0.0, q=1.0)
    x = MinSignalPolicy("price").schedule(sc, w)
    assert_feasible(sc, x)
    assert evaluate(sc, x, w).objective_usd == pytest.approx(solve_offline(sc, w).objective_usd, rel=1e-7)


def test_mpc_full_horizon_perfect_forecast_is_offline():
    sc = small_scenario(T=5, seed=4, K=1)
    w = Weights(mu_carbon=60.0, mu_water=10.0)
    x = MPCPolicy(horizon=sc.T, forecast_model="perfect").schedule(sc, w)
    assert_feasible(sc, x)
    assert evaluate(sc, x, w).objective_usd == pytest.approx(solve_offline(sc, w).objective_usd, rel=1e-6)


def test_mpc_noisy_is_seeded():
    sc = small_scenario(T=6, seed=5, K=1)
    a = MPCPolicy(horizon=3, noise_std=0.2, seed=7).schedule(sc)
    b = MPCPolicy(horizon=3, noise_std=0.2, seed=7).schedule(sc)
    np.testing.assert_array_equal(a, b)
    assert_feasible(sc, a)


# ---------------------------------------------------------------------- errors and fallback


def test_infeasible_names_slot_and_region():
    sc = small_scenario(T=3, seed=0, mask=np.array([[1, 0], [1, 0], [0, 1]], bool))
    demand = sc.demand.copy()
    demand[2, 1] = 5.0                                   # region r1 reaches only s2 (capacity 1 MWh)
    import dataclasses

    bad = dataclasses.replace(sc, demand=demand)
    with pytest.raises(InfeasibleError, match=r"t=2.*'r1'"):
        solve_offline(bad, allow_unserved=False)
    res = solve_offline(bad)                             # allowed by default: unserved at the penalty
    assert res.report.unserved_load > 3.0


def test_infeasible_found_by_diagnosis():
    # each region alone fits, the total fits, but r0 and r1 share the only site they reach
    import dataclasses

    sc = small_scenario(T=2, N=2, J=3, K=1, seed=1, mask=np.array([[1, 1, 0], [0, 0, 1]], bool))
    demand = np.full((2, 3), 0.3)
    demand[1, :2] = 0.6
    with pytest.raises(InfeasibleError, match=r"t=1"):
        solve_offline(dataclasses.replace(sc, demand=demand), allow_unserved=False)


def test_solver_fallback_is_reported(monkeypatch):
    sc = small_scenario(seed=2)
    real = offline_mod.OfflineProblem.solve

    def failing(self, solver, **opts):
        if solver == "HIGHS":
            return "solver_error (forced)", math.nan, 0.0, 0.0
        return real(self, solver, **opts)

    monkeypatch.setattr(offline_mod.OfflineProblem, "solve", failing)
    with pytest.warns(RuntimeWarning, match="fell back to CLARABEL"):
        res = solve_offline(sc)
    assert res.solver == "CLARABEL" and res.fell_back
    assert res.attempts[0].startswith("HIGHS: solver_error")
    monkeypatch.setattr(offline_mod.OfflineProblem, "solve", real)
    assert res.objective_usd == pytest.approx(solve_offline(sc).objective_usd, rel=1e-5)


def test_unknown_solver_and_policy():
    with pytest.raises(ValueError, match="not installed"):
        solve_offline(small_scenario(), solver="NOPE")
    with pytest.raises(ValueError, match="valid names: offline"):
        make_policy("bogus")


# ---------------------------------------------------------------------- heuristics and compare()


@pytest.mark.parametrize("name", ["min-cost", "min-carbon", "min-water", "nearest", "proportional", "random"])
def test_oblivious_feasible_partial_mask_k2(name):
    mask = np.array([[1, 1], [1, 0], [0, 1]], bool)
    hosting = np.array([[1, 1], [0, 1], [1, 1]], bool)
    sc = small_scenario(T=4, seed=6, mask=mask, hosting=hosting, demand_scale=0.6)
    assert_feasible(sc, make_policy(name).schedule(sc))


def test_min_signal_is_per_slot_optimal():
    sc = small_scenario(T=2, seed=8)
    x = MinSignalPolicy("carbon").schedule(sc)
    w = Weights(mu_carbon=1.0, mu_water=0.0, q=1.0)                # total carbon, linear
    zero_price = Scenario(**{**{f: getattr(sc, f) for f in ("name", "demand", "carbon", "water", "capacity",
                                                                 "mask", "hosting", "energy_per_unit", "pue",
                                                                 "site_names", "region_names", "model_names",
                                                                 "timestamps")},
                             "price": np.zeros_like(sc.price)})
    assert evaluate(zero_price, x, w).objective_usd == pytest.approx(
        solve_offline(zero_price, w).objective_usd, rel=1e-7)


def test_nearest_serves_own_site_when_it_fits(eglb):
    sc = eglb.window(0, 24)
    x = NearestPolicy().schedule(sc)
    own = np.einsum("tiik->ti", x)
    np.testing.assert_allclose(own, sc.demand, rtol=1e-12)


def test_random_seeded():
    sc = small_scenario(T=3, seed=9)
    np.testing.assert_array_equal(RandomPolicy(3).schedule(sc), RandomPolicy(3).schedule(sc))
    assert not np.array_equal(RandomPolicy(3).schedule(sc), RandomPolicy(4).schedule(sc))


def test_proportional_split_by_capacity():
    import dataclasses

    sc = dataclasses.replace(small_scenario(T=2, seed=10, K=1), capacity=np.array([1.0, 2.0, 1.0]))
    x = ProportionalPolicy().schedule(sc)[..., 0]
    np.testing.assert_allclose(x / sc.demand[:, None, :], np.broadcast_to([[0.25], [0.5], [0.25]], x.shape))


def test_compare_rows():
    sc = small_scenario(T=4, seed=11)
    rows = compare(sc, [OfflinePolicy(), make_policy("min-cost"), make_policy("online-eglb")])
    assert [r["policy"] for r in rows] == ["offline", "min-cost", "online-eglb"]
    assert list(rows[0])[0] == "policy"
    assert rows[0]["gap_to_offline"] == 0.0
    for r in rows:
        assert r["gap_to_offline"] >= -1e-7
        assert r["gap_to_offline"] == pytest.approx(r["objective"] / rows[0]["objective"] - 1)
    # without the offline policy in the list the optimum is solved on the same window
    rows2 = compare(sc, [make_policy("min-cost")])
    assert rows2[0]["gap_to_offline"] == pytest.approx(rows[1]["gap_to_offline"], rel=1e-7)
