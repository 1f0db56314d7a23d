"""The block interior-point solver of the direct program pinned to the direct program's solvers (HiGHS,
Clarabel; pinned to the cvxpy reference in tests/test_offline_direct.py) and to the cvxpy program, and
its place in the seam (``method="auto"``/``"blockipm"``, falling back to the direct solvers)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from test_offline_direct import assert_feasible, random_instance

from equiglb.baselines import solve_offline
from equiglb.control.blockipm import BLOCKIPM_SOLVER, blockipm_applies, solve_blockipm
from equiglb.control.offline import DIRECT_MIN_PAIR_SLOTS, choose_method
from equiglb.control.offline_direct import DirectProgram
from equiglb.ledger import evaluate
from equiglb.scenario import Weights

CASES = [(seed, q, K, full, social)
         for seed, (q, K, full, social) in enumerate(
             (q, K, full, social) for q in (1.0, 2.0, math.inf) for K in (1, 3) for full in (True, False)
             for social in (False, True))]


@pytest.mark.parametrize("seed,q,K,full,social", CASES)
def test_blockipm_equals_the_direct_program(seed, q, K, full, social):
    """Same J (ledger) as the direct program's solvers (HiGHS's vertex for the LPs: Clarabel's schedules
    exceed tight capacities by up to 3e-6 of them, which lowers J by up to 3e-7), a feasible schedule,
    the solver's value equal to the ledger's, on a plain instance, with unserved load forced and with
    region classes."""
    for variant, sc in (("plain", random_instance(seed, K, full)),
                        ("tight", random_instance(100 + seed, K, full, tight=True)),
                        ("twins", random_instance(200 + seed, K, full, twins=True))):
        w = Weights(mu_carbon=60.0, mu_water=6.0, mu_social=400.0 if social else 0.0,
                    mu_latency=0.02 if seed % 3 == 0 else 0.0, q=q, unserved_penalty_usd=300.0)
        ref = DirectProgram(sc, w).solve("HIGHS" if q != 2.0 else None)
        out = solve_blockipm(DirectProgram(sc, w))
        assert out.ok and out.solver == BLOCKIPM_SOLVER and out.status == "optimal", (variant, out.attempts)
        assert out.schedule is not None and ref.schedule is not None
        J, J_ref = evaluate(sc, out.schedule, w).objective_usd, evaluate(sc, ref.schedule, w).objective_usd
        assert J == pytest.approx(J_ref, rel=1e-7), variant
        assert out.objective_usd == pytest.approx(J, rel=1e-7), variant
        assert_feasible(sc, out.schedule, unserved_allowed=True)
        if variant == "tight":
            assert evaluate(sc, out.schedule, w).unserved_load > 0.1


@pytest.mark.parametrize("q", [math.inf, 2.0])
def test_the_seam_uses_it_and_it_equals_the_cvxpy_program(q):
    """``method="blockipm"`` (and "auto" on a window past DIRECT_MIN_PAIR_SLOTS) solve by the block
    interior point; J as the cvxpy reference's; without unserved load the demand is met."""
    sc = random_instance(21, 3, False, T=6)
    w = Weights(mu_carbon=60.0, mu_water=6.0, mu_social=400.0, q=q)
    res = solve_offline(sc, w, method="blockipm")
    assert res.method == "blockipm" and res.solver == BLOCKIPM_SOLVER and not res.fell_back
    ref = solve_offline(sc, w, method="cvxpy")
    assert res.objective_usd == pytest.approx(ref.objective_usd, rel=1e-7)
    assert res.objective_usd <= ref.objective_usd * (1 + 1e-7)
    strict = solve_offline(sc, w, allow_unserved=False, method="blockipm")
    assert_feasible(sc, strict.schedule, unserved_allowed=False)
    assert strict.objective_usd == pytest.approx(
        solve_offline(sc, w, allow_unserved=False, method="cvxpy").objective_usd, rel=1e-7)
    big = random_instance(21, 1, True, T=DIRECT_MIN_PAIR_SLOTS // 4)
    assert choose_method(big, weights=w) == "blockipm"
    assert solve_offline(big, w).method == "blockipm"


def test_other_norms_options_and_solvers_go_to_the_direct_solvers():
    """q = 3 is not handled (the direct program's power cones); solver options or a named solver are the
    direct solvers'; ``method="direct"`` never tries the block interior point."""
    sc = random_instance(22, 3, True, T=DIRECT_MIN_PAIR_SLOTS // 4)
    assert not blockipm_applies(3.0) and blockipm_applies(1.0)
    assert choose_method(sc, weights=Weights(q=3.0)) == "direct"
    assert choose_method(sc, weights=Weights(q=1.0)) == "blockipm"
    out = solve_blockipm(DirectProgram(sc, Weights(q=3.0)))
    assert not out.ok and out.status == "Unsupported"
    assert solve_offline(sc, Weights(q=3.0), method="blockipm").method == "direct"
    assert solve_offline(sc, Weights(q=2.0), method="blockipm", max_iter=200).solver == "CLARABEL"
    assert solve_offline(sc, Weights(q=2.0), method="direct").solver == "CLARABEL"


def test_non_convergence_is_reported_and_falls_back():
    """Too few iterations: not ok with a named status; the seam then solves with the direct solvers and
    warns, recording both attempts."""
    sc = random_instance(23, 3, False)
    w = Weights(mu_social=100.0, q=2.0)
    out = solve_blockipm(DirectProgram(sc, w), max_iter=2)
    assert not out.ok and out.status == "MaxIterations" and out.schedule is None
    assert len(out.attempts) == 1
    assert out.attempts[0].startswith(f"{BLOCKIPM_SOLVER}: MaxIterations (2 iterations, error")
    from equiglb.control import blockipm

    mp = pytest.MonkeyPatch()
    mp.setattr(blockipm, "MAX_ITER", 2)
    try:
        with pytest.warns(RuntimeWarning, match=r"fell back to CLARABEL after BLOCKIPM: MaxIterations"):
            res = solve_offline(sc, w, method="blockipm")
    finally:
        mp.undo()
    assert res.method == "direct" and res.attempts[0].startswith(BLOCKIPM_SOLVER)
    assert res.objective_usd == pytest.approx(solve_offline(sc, w, method="cvxpy").objective_usd, rel=1e-7)


def test_no_demand_is_the_zero_schedule():
    sc = random_instance(24, 3, False)
    empty = dataclasses.replace(sc, demand=np.zeros_like(sc.demand))
    out = solve_blockipm(DirectProgram(empty, Weights()))
    assert out.ok and out.schedule is not None and not out.schedule.any() and out.objective_usd == 0.0


def test_eglb_reference_through_the_block_interior_point(eglb):
    """The eGLB study's optimum (623,661.35 USD) by the block interior point, as the seam's choice."""
    res = solve_offline(eglb, method="auto")
    assert res.method == "blockipm" and not res.fell_back
    assert res.objective_usd == pytest.approx(623_661.35, rel=1e-6) and res.status == "optimal"
