"""The dense dual simplex (equiglb.control.densesimplex) against HiGHS, and its place behind AggregateLPSolver."""

from __future__ import annotations

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

import equiglb
from equiglb.baselines import MPCPolicy
from equiglb.control.densesimplex import AT_LOWER, BASIC, INFEASIBLE, OPTIMAL, dual_simplex
from equiglb.control.mpc import DENSE_MAX_ROWS, AggregateLPSolver, make_mpc_solver
from equiglb.control.offline_direct import pass_lp
from equiglb.ledger import evaluate


def _highs(cost, cl, cu, rl, ru, a):
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    pass_lp(hs, cost, cl, cu, rl, ru, a.indptr, a.indices, a.data)
    hs.run()
    return hs.modelStatusToString(hs.getModelStatus()), hs.getInfo().objective_function_value


def _dense(cost, cl, cu, rl, ru, a, status=None):
    n, m = len(cost), len(rl)
    if status is None:
        status = np.full(n + m, AT_LOWER, dtype=np.int8)
        status[n:] = BASIC
    code, x, d, it = dual_simplex(np.concatenate([cost, np.zeros(m)]), np.concatenate([cl, rl]),
                                  np.concatenate([cu, ru]), a.indptr.astype(np.int32), a.indices.astype(np.int32),
                                  a.data, status, 10_000)
    return code, x, d, it, status


def _random_lp(rng, m, n, density, feasible=True):
    a = sp.random(m, n, density=density, random_state=rng, data_rvs=lambda k: rng.uniform(-2, 2, k)).tocsc()
    cl, cu = rng.uniform(-1, 0, n), rng.uniform(0.1, 2, n)
    x0 = rng.uniform(cl, cu)
    act = a @ x0
    rl, ru = act - rng.uniform(0, 0.5, m), act + rng.uniform(0, 0.5, m)
    eq = rng.random(m) < 0.3
    rl[eq] = ru[eq] = act[eq]
    if not feasible:                      # a row asks for more than its columns can give
        k = int(np.argmax(np.abs(a).sum(axis=1)))
        rl[k] = ru[k] = float(np.abs(a[k].toarray()).sum() * 3 + 10)
    return rng.normal(size=n), cl, cu, rl, ru, a


@pytest.mark.parametrize("seed", range(12))
def test_random_boxed_lps_reach_highs_optimum(seed):
    """Random sparse LPs with finite bounds, equality and ranged rows: the same optimal value as HiGHS, a primal
    point within the bounds that satisfies the rows, reduced costs of the right sign (optimality certified)."""
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(5, 40)), int(rng.integers(10, 90))
    cost, cl, cu, rl, ru, a = _random_lp(rng, m, n, 0.2)
    status_h, j_h = _highs(cost, cl, cu, rl, ru, a)
    assert status_h == "Optimal"
    code, x, d, _, status = _dense(cost, cl, cu, rl, ru, a)
    assert code == OPTIMAL
    xs, r = x[:n], x[n:]
    assert cost @ xs == pytest.approx(j_h, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(a @ xs, r, atol=1e-9)
    lo, up = np.concatenate([cl, rl]), np.concatenate([cu, ru])
    assert np.all(x >= lo - 1e-9) and np.all(x <= up + 1e-9)
    nb = status != BASIC
    free = nb & (lo < up)
    assert np.all(d[free & (status == AT_LOWER)] >= -1e-9) and np.all(d[free & (status != AT_LOWER)] <= 1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_an_infeasible_lp_is_reported(seed):
    rng = np.random.default_rng(100 + seed)
    cost, cl, cu, rl, ru, a = _random_lp(rng, 12, 30, 0.3, feasible=False)
    assert _highs(cost, cl, cu, rl, ru, a)[0] == "Infeasible"
    assert _dense(cost, cl, cu, rl, ru, a)[0] == INFEASIBLE


def test_a_warm_start_from_the_optimal_basis_takes_no_iteration():
    rng = np.random.default_rng(7)
    cost, cl, cu, rl, ru, a = _random_lp(rng, 20, 50, 0.2)
    code, x, _, it, status = _dense(cost, cl, cu, rl, ru, a)
    assert code == OPTIMAL and it > 0
    code2, x2, _, it2, _ = _dense(cost, cl, cu, rl, ru, a, status=status.copy())
    assert code2 == OPTIMAL and it2 == 0
    np.testing.assert_allclose(x2, x, atol=1e-12)


def _solver_of(policy):
    return policy._solver


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("scenario, H", [("synthetic", 24), ("synthetic", 6), ("eglb-like-partial", 4)])
def test_the_dense_path_is_highs_slot_by_slot(scenario, H, warm, monkeypatch):
    """AggregateLPSolver on the dense dual simplex (the backend chosen for LPs up to DENSE_MAX_ROWS rows) routes
    every slot as on HiGHS: the same first-slot loads to 1e-9 of the demand, and the same J."""
    if scenario == "synthetic":
        window = equiglb.load_scenario("synthetic").split("test").window(0, 48)
    else:                                                 # a partial mask: three region classes
        sc = equiglb.load_scenario("synthetic").split("test").window(0, 36)
        allowed = sc.mask.copy()
        allowed[:3, :4] = False
        allowed[7:, 6:] = False
        import dataclasses  # noqa: PLC0415

        window = dataclasses.replace(sc, mask=allowed)
    runs = {}
    for backend in ("dense", "highs"):
        pol = MPCPolicy(horizon=H, forecast_model="perfect", warm_start=warm)
        orig = AggregateLPSolver.__init__

        def init(self, *args, _orig=orig, _backend=backend, **kwargs):
            _orig(self, *args, **kwargs)
            assert self.backend == "dense"                # these LPs are small: the dense path is the default
            self.backend = _backend

        monkeypatch.setattr(AggregateLPSolver, "__init__", init)
        x = pol.schedule(window)
        monkeypatch.setattr(AggregateLPSolver, "__init__", orig)
        used = _solver_of(pol).solvers_used
        assert used == {"DUAL_SIMPLEX" if backend == "dense" else "HIGHS": window.T}
        runs[backend] = (x, evaluate(window, x, window.weights).objective_usd)
    (xd, jd), (xh, jh) = runs["dense"], runs["highs"]
    assert jd == pytest.approx(jh, rel=1e-10)
    scale = window.demand.sum(axis=1).max()
    np.testing.assert_allclose(xd.sum(axis=(1, 3)), xh.sum(axis=(1, 3)), atol=1e-9 * scale)


def test_the_backend_follows_the_lp_size():
    """Full mask at H = 24 (H + 2N = 44 rows): dense; a program above DENSE_MAX_ROWS rows: HiGHS."""
    sc = equiglb.load_scenario("synthetic").split("test")
    small = make_mpc_solver(sc, 24, sc.weights)
    assert isinstance(small, AggregateLPSolver) and small.n_row == 24 + 2 * sc.N and small.backend == "dense"
    h = (DENSE_MAX_ROWS - 2 * sc.N) + 1                   # one more slot row than the dense path takes
    big = make_mpc_solver(sc, h, sc.weights)
    assert big.n_row > DENSE_MAX_ROWS and big.backend == "highs"


def test_a_slot_the_dense_path_does_not_finish_goes_to_highs(monkeypatch):
    """An iteration limit reached on the dense path: that slot is solved by HiGHS (counted in solvers_used), and
    the run's routing is the same."""
    import equiglb.control.mpc as mpc  # noqa: PLC0415

    window = equiglb.load_scenario("synthetic").split("test").window(0, 12)
    full = MPCPolicy(horizon=6, forecast_model="perfect")
    x_ref = full.schedule(window)
    assert full.solvers_used == {"DUAL_SIMPLEX": 12}
    monkeypatch.setattr(mpc, "DENSE_MAX_ITER", 1)
    limited = MPCPolicy(horizon=6, forecast_model="perfect")
    x = limited.schedule(window)
    assert limited.solvers_used.get("HIGHS", 0) > 0
    assert sum(limited.solvers_used.values()) == 12
    np.testing.assert_allclose(x, x_ref, atol=1e-9 * window.demand.max())
