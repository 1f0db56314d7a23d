"""The offline optimum's direct program (matrix form, HiGHS/Clarabel, no cvxpy) pinned to the cvxpy
reference program, and the seam that chooses between them."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from equiglb.baselines import InfeasibleError, OfflinePolicy, SolverError, solve_offline
from equiglb.control.offline import DIRECT_MIN_PAIR_SLOTS, choose_method
from equiglb.control.offline_direct import DirectProgram, direct_solver_order
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario, Weights
from equiglb.validate import OptionError

QS = [1.0, 2.0, 3.0, math.inf]


def random_instance(seed: int, K: int, full: bool, tight: bool = False, T: int | None = None,
                    twins: bool = False) -> Scenario:
    """A random small instance: N sites, J regions, K models, random hosting, PUE and region weights
    != 1, latency. ``full``: every region reaches every site; ``tight``: capacities below the peak
    demand (unserved load forced); ``twins``: regions repeat each other's mask and latency (region
    classes of several regions)."""
    rng = np.random.default_rng(seed)
    N, J = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    T = int(rng.integers(2, 6)) if T is None else T
    mask = np.ones((N, J), bool) if full else rng.random((N, J)) < 0.5
    mask[rng.integers(0, N, J), np.arange(J)] = True
    hosting = rng.random((N, K)) < 0.7
    hosting[np.arange(N), rng.integers(0, K, N)] = True
    latency = rng.uniform(0, 50, (N, J))
    if twins:
        src = rng.integers(0, 2, J)                  # every region copies region 0 or 1
        mask, latency = mask[:, src], latency[:, src]
    demand = rng.uniform(0.2, 1.0, (T, J))
    capacity = rng.uniform(0.05, 0.15, N) if tight else rng.uniform(1.0, 2.0, N) * J   # load units fit: e <= 1
    return Scenario(
        name=f"rand-{seed}", demand=demand, price=rng.uniform(-10, 80, (T, N)),
        carbon=rng.uniform(0.05, 0.8, (T, N)), water=rng.uniform(0.5, 4.0, (T, N)), capacity=capacity,
        mask=mask, hosting=hosting, energy_per_unit=rng.uniform(0.3, 1.0, K),
        quality_loss=np.sort(rng.uniform(0.0, 0.4, K)) * (np.arange(K) > 0), pue=rng.uniform(1.0, 1.5, N),
        region_weights=rng.uniform(0.5, 1.5, N), latency=latency,
        site_names=[f"s{i}" for i in range(N)], region_names=[f"r{j}" for j in range(J)],
        model_names=[f"m{k}" for k in range(K)],
        timestamps=np.datetime64("2023-01-01T00", "h") + np.arange(T).astype("timedelta64[h]"))


def assert_feasible(sc: Scenario, x: np.ndarray, unserved_allowed: bool, tol: float = 1e-7) -> None:
    """Nonnegative, zero outside allowed pairs, capacity respected, no region over-served, and every
    region's demand met unless unserved load is allowed."""
    assert x.shape == (sc.T, sc.N, sc.J, sc.K)
    assert x.min() >= 0
    assert np.abs(x * ~sc.allowed[None]).max() == 0
    it_mwh = (x @ sc.energy_per_unit).sum(axis=2)
    assert (it_mwh <= sc.capacity[None] * (1 + tol) + tol).all()
    served = x.sum(axis=(1, 3))
    assert (served <= sc.demand * (1 + tol) + tol).all()
    if not unserved_allowed:
        np.testing.assert_allclose(served, sc.demand, rtol=tol, atol=tol)


CASES = [(seed, q, K, full, social)
         for seed, (q, K, full, social) in enumerate(
             (q, K, full, social) for q in QS for K in (1, 3) for full in (True, False) for social in (False, True))]


@pytest.mark.parametrize("seed,q,K,full,social", CASES)
def test_direct_equals_the_cvxpy_program(seed, q, K, full, social):
    """Same J (ledger) as the reference on a random instance, a feasible schedule, and the same with
    unserved load forced (capacities too small) and with region classes of several regions."""
    for variant, sc in (("plain", random_instance(seed, K, full)),
                        ("tight", random_instance(100 + seed, K, full, tight=True)),
                        ("twins", random_instance(200 + seed, K, full, twins=True))):
        w = Weights(mu_carbon=60.0, mu_water=6.0, mu_social=400.0 if social else 0.0,
                    mu_latency=0.02 if seed % 3 == 0 else 0.0, q=q, unserved_penalty_usd=300.0)
        ref = solve_offline(sc, w, method="cvxpy")
        fast = solve_offline(sc, w, method="direct")
        assert fast.method == "direct" and ref.method == "cvxpy"
        assert fast.status == "optimal"
        prog = DirectProgram(sc, w)
        assert fast.solver == direct_solver_order(q, None, prog.simplex_first)[0]
        # HiGHS: a vertex. Clarabel: interior points, both paths within ~1e-8 for LPs and q = 2; at q = 3
        # the reference's own p-norm cones stop up to ~2e-7 above the direct power cones (never below)
        rel = 1e-9 if fast.solver == "HIGHS" and ref.solver == "HIGHS" else {2.0: 1e-7, 3.0: 5e-7}.get(q, 1e-7)
        assert fast.objective_usd == pytest.approx(ref.objective_usd, rel=rel), variant
        assert fast.objective_usd <= ref.objective_usd * (1 + 1e-7), variant
        assert fast.solver_objective_usd == pytest.approx(fast.objective_usd, rel=rel), variant
        assert_feasible(sc, fast.schedule, unserved_allowed=True)
        if variant == "tight":
            assert fast.report.unserved_load > 0.1
            assert fast.report.unserved_load == pytest.approx(ref.report.unserved_load, rel=1e-5)
        else:
            assert fast.report.unserved_load == 0.0
        if variant == "twins" and not sc.allowed.all():
            assert len(DirectProgram(sc, w).classes) <= 2 < sc.J or sc.J <= 2


@pytest.mark.parametrize("q", [math.inf, 2.0])
def test_region_classes_shrink_the_program_exactly(q):
    """A full mask: one class; the program has far fewer columns than pairs, and the same optimum."""
    sc = random_instance(7, 3, True, T=12)
    for social in (False, True):
        w = Weights(mu_carbon=60.0, mu_water=6.0, mu_social=400.0 if social else 0.0, q=q)
        prog = DirectProgram(sc, w)
        assert len(prog.classes) == 1
        assert prog.columns < np.count_nonzero(sc.allowed) * sc.T
        rel = 1e-9 if q == math.inf and prog.simplex_first else 1e-7    # a vertex, or an interior point
        assert solve_offline(sc, w, method="direct").objective_usd == pytest.approx(
            solve_offline(sc, w, method="cvxpy").objective_usd, rel=rel)


def test_without_unserved_load_the_schedule_meets_demand():
    sc = random_instance(3, 3, False)
    w = Weights(mu_carbon=60.0, mu_water=6.0, mu_social=100.0, q=math.inf)
    fast = solve_offline(sc, w, allow_unserved=False, method="direct")
    assert_feasible(sc, fast.schedule, unserved_allowed=False)
    assert fast.objective_usd == pytest.approx(
        solve_offline(sc, w, allow_unserved=False, method="cvxpy").objective_usd, rel=1e-9)


def test_infeasible_without_unserved_load_names_slot_and_region():
    sc = random_instance(4, 1, False, tight=True)
    with pytest.raises(InfeasibleError, match=r"slot t=\d+"):
        solve_offline(sc, allow_unserved=False, method="direct")


def test_a_non_optimal_status_is_a_named_error():
    sc = random_instance(5, 3, True)
    w = Weights(mu_social=100.0, q=2.0)
    with pytest.raises(SolverError, match=r"CLARABEL \(direct\): MaxIterations"):
        solve_offline(sc, w, method="direct", max_iter=1)


def test_highs_failure_falls_back_to_clarabel_with_a_warning():
    sc = random_instance(6, 1, True)
    w = Weights(q=math.inf)
    assert DirectProgram(sc, w).simplex_first
    with pytest.warns(RuntimeWarning, match=r"fell back to CLARABEL after HIGHS \(direct\): Time limit reached"):
        res = solve_offline(sc, w, method="direct", time_limit=0.0)
    assert res.solver == "CLARABEL" and res.attempts[0].startswith("HIGHS (direct): Time limit")
    assert res.objective_usd == pytest.approx(solve_offline(sc, w, method="cvxpy").objective_usd, rel=1e-7)


def test_the_lp_solver_order_follows_the_structure():
    site_level = random_instance(11, 1, True)
    several = random_instance(11, 3, False)
    w = Weights(mu_social=100.0, q=math.inf)
    assert DirectProgram(site_level, Weights()).simplex_first
    assert not DirectProgram(several, w).simplex_first
    assert solve_offline(site_level, method="direct").solver == "HIGHS"
    assert solve_offline(several, w, method="direct").solver == "CLARABEL"
    assert solve_offline(several, w, solver="HIGHS", method="direct").solver == "HIGHS"
    assert direct_solver_order(2.0, "HIGHS") == ["CLARABEL"]                    # HiGHS has no cones
    with pytest.raises(OptionError, match=r"^no_such_setting=1: not a Clarabel setting"):
        solve_offline(several, w, method="direct", no_such_setting=1)
    with pytest.raises(OptionError, match=r"^no_such_option=1: not a HiGHS option"):
        solve_offline(site_level, method="direct", no_such_option=1)


def test_no_demand_is_the_zero_schedule():
    sc = random_instance(8, 3, False)
    empty = dataclasses.replace(sc, demand=np.zeros_like(sc.demand))
    res = solve_offline(empty, method="direct")
    assert not res.schedule.any() and res.objective_usd == 0.0


def test_the_seam_chooses_once_by_size_and_request():
    small = random_instance(9, 1, True, T=2)
    assert np.count_nonzero(small.allowed) * small.T < DIRECT_MIN_PAIR_SLOTS
    assert choose_method(small) == "cvxpy"
    big = random_instance(9, 1, True, T=DIRECT_MIN_PAIR_SLOTS)
    assert choose_method(big) == "blockipm"                               # q = inf: the block interior point
    assert choose_method(big, weights=Weights(q=3.0)) == "direct"
    assert choose_method(big, solver="CLARABEL") == "cvxpy"               # a cvxpy solver named: the reference
    assert choose_method(small, method="direct") == "direct"
    assert choose_method(big, method="cvxpy") == "cvxpy"
    assert OfflinePolicy(method="direct").solve(small).method == "direct"
    assert OfflinePolicy().solve(small).method == "cvxpy"


def test_bad_method_and_solver_are_refused_by_name():
    sc = random_instance(10, 1, True)
    with pytest.raises(OptionError, match=r"^method='fast': expected one of \['auto', 'direct', 'blockipm', 'cvxpy'\]"):
        solve_offline(sc, method="fast")
    with pytest.raises(OptionError, match=r"^method='fast'"):
        OfflinePolicy(method="fast")
    with pytest.raises(OptionError, match=r"^solver='SCS' with method='direct'"):
        solve_offline(sc, solver="SCS", method="direct")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert solve_offline(sc, solver="CLARABEL", method="direct").solver == "CLARABEL"


def test_eglb_reference_through_the_direct_program(eglb):
    """The eGLB study's optimum (623,661.35 USD) through the direct program, both masks agreeing with
    the cvxpy program."""
    res = solve_offline(eglb, method="direct")
    assert res.objective_usd == pytest.approx(623_661.35, rel=1e-6) and res.status == "optimal"
    import equiglb

    part = equiglb.load_scenario("eglb-2022-partial", data_dir=eglb.source).window(0, 96)
    assert solve_offline(part, method="direct").objective_usd == pytest.approx(
        solve_offline(part, method="cvxpy").objective_usd, rel=1e-9)
    assert evaluate(part, solve_offline(part, method="direct").schedule).unserved_load == 0.0
