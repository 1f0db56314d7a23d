"""MPC's q = 2 accelerator: the dense interior-point method of equiglb.control.socipm pinned to Clarabel on random
cone programs, and AggregateConeSolver pinned slot by slot and run by run to the cvxpy program."""

from __future__ import annotations

import dataclasses
import math

import cvxpy as cp
import numpy as np
import pytest
from conftest import small_synthetic
from test_mpc_solver import TIGHT, _partial, _reference_value, _run

import equiglb
from equiglb.control.mpc import AggregateConeSolver, CvxpyMPCSolver, DirectMPCSolver, make_mpc_solver
from equiglb.control.socipm import ITERATION_LIMIT, OPTIMAL, REDUCED, soc_ipm
from equiglb.ledger import evaluate


def _random_program(seed: int):
    """A random feasible, bounded program of the module's form: n_lin boxed or nonnegative columns, two cones of
    dimension 4 whose tails are tied to the linear columns by rows, rows ``A x = b`` with b = A x0 for an
    interior x0; and its optimum by Clarabel through cvxpy."""
    rng = np.random.default_rng(seed)
    n_lin, m_lin, d = 12, 4, 4
    A_lin = rng.uniform(0.0, 1.0, size=(m_lin, n_lin)) * (rng.random((m_lin, n_lin)) < 0.6)
    A_lin[np.arange(m_lin), rng.integers(0, n_lin, m_lin)] += 1.0
    ub = np.where(rng.random(n_lin) < 0.7, rng.uniform(0.5, 2.0, n_lin), np.inf)
    x0 = np.where(np.isfinite(ub), 0.5 * ub, 0.5)
    F = rng.normal(size=(2, d - 1, n_lin))                       # cone tails: y_k = f_k + F_k x
    f = rng.normal(size=(2, d - 1))
    m = m_lin + 2 * (d - 1)
    n = n_lin + 2 * d
    A = np.zeros((m, n))
    A[:m_lin, :n_lin] = A_lin
    for k in range(2):
        rows = slice(m_lin + k * (d - 1), m_lin + (k + 1) * (d - 1))
        A[rows, :n_lin] = -F[k]
        A[rows, n_lin + k * d + 1:n_lin + (k + 1) * d] = np.eye(d - 1)
    b = np.concatenate([A_lin @ x0, f[0], f[1]])
    c = np.concatenate([rng.normal(size=n_lin), [1.5, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0]])
    x = cp.Variable(n_lin)
    cons = [A_lin @ x == A_lin @ x0, x >= 0, x[np.isfinite(ub)] <= ub[np.isfinite(ub)]]
    obj = c[:n_lin] @ x + 1.5 * cp.norm(f[0] + F[0] @ x, 2) + 2.0 * cp.norm(f[1] + F[1] @ x, 2)
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    col = np.nonzero(A.T)
    order = np.lexsort((col[1], col[0]))
    cols, rows = col[0][order], col[1][order]
    start = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n))]).astype(np.int64)
    return dict(c=c, b=b, ub=ub, start=start, index=rows.astype(np.int64), values=A.T[cols, rows], n_lin=n_lin,
                cone_start=np.array([n_lin, n_lin + d, n], dtype=np.int64), m=m, prob=prob)


@pytest.mark.parametrize("seed", range(8))
def test_soc_ipm_reaches_clarabels_optimum_on_random_programs(seed):
    """On random cone programs (boxed and free-above linear columns, two cones), the method converges and its
    solution is feasible (rows to 1e-8, bounds, cones) with Clarabel's optimum at tight tolerances (to 1e-7)."""
    P = _random_program(seed)
    assert P["prob"].status == "optimal"
    status, x, y, it, _ = _solve(P)
    assert status == OPTIMAL and 0 < it < 60
    _assert_optimal(P, x)


def _solve(P, c=None, max_iter=100, warm=None, keep_mu=1e-3):
    """soc_ipm on the program ``P`` (every row and column on; a cold start unless ``warm``)."""
    return soc_ipm(P["c"] if c is None else c, P["b"], P["ub"], P["start"], P["index"], P["values"], P["n_lin"],
                   P["cone_start"], np.ones(P["n_lin"], dtype=np.bool_), np.ones(P["m"], dtype=np.bool_), 1e-9,
                   max_iter, np.zeros(0) if warm is None else warm, keep_mu)


def _assert_optimal(P, x):
    """x is feasible in ``P`` (rows to 1e-8, bounds, cones) with Clarabel's optimum at tight tolerances (1e-7)."""
    n = len(P["c"])
    A = np.zeros((P["m"], n))
    for j in range(n):
        A[P["index"][P["start"][j]:P["start"][j + 1]], j] = P["values"][P["start"][j]:P["start"][j + 1]]
    assert np.abs(A @ x - P["b"]).max() <= 1e-8 * (1 + np.abs(P["b"]).max())
    lin = x[:P["n_lin"]]
    assert lin.min() >= -1e-12 and np.all(lin <= P["ub"] + 1e-12)
    for a0, a1 in zip(P["cone_start"][:-1], P["cone_start"][1:]):
        assert x[a0] >= np.linalg.norm(x[a0 + 1:a1]) - 1e-9
    assert float(P["c"] @ x) == pytest.approx(P["prob"].value, rel=1e-7, abs=1e-8)


@pytest.mark.parametrize("seed", range(8))
def test_a_warm_start_reaches_the_same_optimum(seed):
    """Started from the kept iterate of the same program, or from a point far from the optimum (every x 100 times
    too large, z and y of the wrong sign), the method reaches Clarabel's optimum; from its own kept iterate in fewer
    iterations than cold."""
    P = _random_program(seed)
    status, _, _, cold_it, kept = _solve(P)
    n, n_lin = len(P["c"]), P["n_lin"]
    assert status == OPTIMAL and len(kept) == 2 * n + 2 * n_lin + P["m"]
    status, x, _, warm_it, _ = _solve(P, warm=kept)
    assert status == OPTIMAL and warm_it < cold_it
    _assert_optimal(P, x)
    y = 2 * n + 2 * n_lin
    far = np.concatenate([100.0 * kept[:n], -kept[n:2 * n], kept[2 * n:y], -5.0 * kept[y:]])
    status, x, _, _, _ = _solve(P, warm=far)
    assert status == OPTIMAL
    _assert_optimal(P, x)


def test_the_kept_iterate_is_the_first_below_keep_mu():
    """``kept`` is the first iterate whose complementarity per pair is at most ``keep_mu``: a larger keep_mu keeps an
    earlier, less complementary iterate (x·z summed over the linear columns larger), and the kept x is inside the
    bounds."""
    P = _random_program(2)
    n, n_lin = len(P["c"]), P["n_lin"]
    early, late = _solve(P, keep_mu=1e-1)[4], _solve(P, keep_mu=1e-6)[4]
    gap = [float(k[:n_lin] @ k[n:n + n_lin]) for k in (early, late)]
    assert gap[0] > 10 * gap[1] > 0
    for k in (early, late):
        assert np.all(k[:n_lin] > 0) and np.all(k[:n_lin] < P["ub"])


def test_soc_ipm_reports_the_iteration_limit():
    P = _random_program(0)
    assert _solve(P, max_iter=3)[0] == ITERATION_LIMIT


def _disjoint(q: float):
    """The 72-hour synthetic scenario with two region classes that reach disjoint halves of the sites."""
    scn = small_synthetic(1, q)
    N, J = scn.N, scn.J
    mask = np.zeros((N, J), dtype=bool)
    mask[: N // 2, : J // 2] = True
    mask[N // 2:, J // 2:] = True
    return dataclasses.replace(scn, mask=mask)


class _Pinned:
    """Solves each slot's program with AggregateConeSolver and the reference (Clarabel at tight tolerances), checks
    the accelerator's whole schedule in the reference program, and routes by the accelerator."""

    def __init__(self, window, H, w, warm_start=False):
        self.fast, self.H = AggregateConeSolver(window, H, w), H
        self.fast.warm_start = warm_start
        self.ref = CvxpyMPCSolver(window, H, w, solver_opts=TIGHT)
        self.gaps: list[float] = []

    def first_slot(self, window, data, t):
        self.ref.first_slot(window, data, t)
        optimum = float(self.ref.prob.problem.value)
        first = self.fast.first_slot(window, data, t)
        x = self.fast.window_schedule()
        np.testing.assert_array_equal(first, x[0])
        assert x.min() >= 0 and np.all(x[:, ~window.allowed] == 0)
        assert np.all((x @ window.energy_per_unit).sum(axis=2) <= data.capacity * (1 + 1e-12))
        assert np.all(x.sum(axis=(1, 3)) <= data.demand * (1 + 1e-8) + 1e-15)
        gap = _reference_value(self.ref, x) / optimum - 1.0
        if gap < -1e-7:                 # the reference stopped above the optimum (seen with shared sites): tighter
            self.ref.prob.problem.solve(solver="CLARABEL", **{**TIGHT, "tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12,
                                                              "tol_feas": 1e-12})
            optimum = float(self.ref.prob.problem.value)
            gap = _reference_value(self.ref, x) / optimum - 1.0
        self.gaps.append(gap)
        return first


@pytest.mark.filterwarnings("ignore:offline solve:RuntimeWarning", "ignore:Solution may be inaccurate:UserWarning")
@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("H", [1, 5])
@pytest.mark.parametrize("structure", ["full", "disjoint classes", "shared sites"])
def test_cone_solver_solves_the_cvxpy_program(structure, H, warm_start):
    """Slot after slot (random multipliers, the footprints so far as offsets, slots past the window's end without
    demand), the accelerator's schedule is feasible in the cvxpy program and its objective there is the program's
    optimum to 1e-7, started cold or from the previous slot's kept iterate."""
    scn = {"full": lambda: small_synthetic(1, 2.0), "disjoint classes": lambda: _disjoint(2.0),
           "shared sites": lambda: _partial(2.0)}[structure]()
    window, w = scn.window(10, 8), scn.weights
    assert isinstance(make_mpc_solver(window, H, w), AggregateConeSolver)
    pinned = _Pinned(window, H, w, warm_start)
    scales = np.exp(np.random.default_rng(2).uniform(-1.0, 1.0, size=(window.T, 2 * window.N)))
    _run(window, w, pinned, scales)
    assert len(pinned.gaps) == window.T
    assert max(abs(g) for g in pinned.gaps) <= 1e-7
    assert pinned.fast.solvers_used == {"SOC_IPM": window.T}
    if structure == "disjoint classes":
        assert pinned.fast.G == 2
    if structure == "shared sites":                     # every site reached by three classes: capacity rows
        assert pinned.fast.G == window.J and len(pinned.fast._cap_site) == H * window.N


def _trace_window(name: str, hours: int, request):
    """The first ``hours`` of the test window of the synthetic scenario or of eGLB-2022 (skipped without its
    traces), at q = 2."""
    kw = {} if name == "synthetic" else {"data_dir": request.getfixturevalue("eglb_dir")}
    scn = equiglb.load_scenario(name, **kw)
    start, _ = scn.splits["test"]
    window = scn.window(start, hours)
    return window, window.weights.replace(q=2.0)


@pytest.mark.filterwarnings("ignore:offline solve:RuntimeWarning", "ignore:Solution may be inaccurate:UserWarning")
@pytest.mark.parametrize("name", ["synthetic", "eglb-2022", "eglb-2022-partial"])
def test_cone_solver_at_h24_on_the_test_windows(name, request):
    """MPC-24 at q = 2 on 12 slots of the synthetic and eGLB-2022 test windows (full and partial mask: five region
    classes sharing sites): every slot's schedule is the reference optimum to 1e-7 (Clarabel's direct program at
    its defaults was up to 5e-6 above it here)."""
    window, w = _trace_window(name, 12, request)
    assert isinstance(make_mpc_solver(window, 24, w), AggregateConeSolver)
    pinned = _Pinned(window, 24, w)
    scales = np.exp(np.random.default_rng(3).uniform(-0.5, 0.5, size=(window.T, 2 * window.N)))
    _run(window, w, pinned, scales)
    assert max(abs(g) for g in pinned.gaps) <= 1e-7


@pytest.mark.filterwarnings("ignore:offline solve:RuntimeWarning", "ignore:Solution may be inaccurate:UserWarning")
def test_cone_solver_run_equals_the_cvxpy_run():
    """A whole MPC run (H = 5, multipliers) by the accelerator gives the reference run's J to 1e-6 and its site
    loads to 1e-4 of the largest demand (the objective is flat near the optimum: loads move more than J)."""
    scn = small_synthetic(1, 2.0)
    window, w = scn.window(10, 12), scn.weights
    scales = np.exp(np.random.default_rng(4).uniform(-1.0, 1.0, size=(window.T, 2 * window.N)))
    fast = _run(window, w, AggregateConeSolver(window, 5, w), scales)
    ref = _run(window, w, CvxpyMPCSolver(window, 5, w, solver_opts=TIGHT), scales)
    np.testing.assert_allclose(fast.sum(axis=(2, 3)), ref.sum(axis=(2, 3)), rtol=0, atol=1e-4 * scn.demand.max())
    assert evaluate(window, fast, w).objective_usd == pytest.approx(evaluate(window, ref, w).objective_usd, rel=1e-6)


class _Counting:
    """An MPC solver that counts the interior-point iterations of the solver it wraps."""

    def __init__(self, solver):
        self.solver, self.H, self.iterations = solver, solver.H, []

    def first_slot(self, window, data, t):
        x = self.solver.first_slot(window, data, t)
        self.iterations.append(self.solver.last_iterations)
        return x


@pytest.mark.parametrize("name", ["synthetic", "eglb-2022"])
def test_a_warm_started_run_equals_the_cold_run_in_fewer_iterations(name, request):
    """MPC-24 at q = 2 on 24 slots of a test window (no multipliers, as MPCPolicy): started from the previous slot's
    kept iterate moved one slot ahead, every slot is solved by the method, the run's J is the cold run's to 1e-6 and
    its site loads to 1e-4 of the largest demand (as the cold run's are the cvxpy run's: the objective is flat near
    the optimum), in at least 30 % fewer iterations."""
    window, w = _trace_window(name, 24, request)
    scales = np.ones((window.T, 2 * window.N))
    runs = {}
    for warm in (False, True):
        solver = AggregateConeSolver(window, 24, w)
        solver.warm_start = warm
        counting = _Counting(solver)
        runs[warm] = (_run(window, w, counting, scales), sum(counting.iterations), solver.solvers_used)
    (cold, cold_it, _), (warm, warm_it, used) = runs[False], runs[True]
    assert used == {"SOC_IPM": window.T}
    assert evaluate(window, warm, w).objective_usd == pytest.approx(evaluate(window, cold, w).objective_usd, rel=1e-6)
    np.testing.assert_allclose(warm.sum(axis=(2, 3)), cold.sum(axis=(2, 3)), rtol=0, atol=1e-4 * window.demand.max())
    assert warm_it <= 0.7 * cold_it                         # here 206 against 418 and 193 against 377


def test_a_warm_started_policy_restarts_cold_at_each_schedule():
    """MPCPolicy(warm_start=True) at q = 2: a second schedule of the same window (after a run on another window)
    is the first one bit for bit: the warm start never carries over a reset."""
    scn = small_synthetic(1, 2.0)
    policy = equiglb.baselines.mpc.MPCPolicy(horizon=6, forecast_model="perfect", warm_start=True)
    first = policy.schedule(scn.window(20, 12))
    policy.schedule(scn.window(40, 12))
    np.testing.assert_array_equal(policy.schedule(scn.window(20, 12)), first)
    assert policy.solvers_used == {"SOC_IPM": 36}


def test_cone_solver_falls_back_to_the_direct_program():
    """A slot the method does not solve (here: an iteration limit of 2) is solved by DirectMPCSolver (Clarabel),
    counted in ``solvers_used``, with the direct solver's routing."""
    scn = small_synthetic(1, 2.0)
    window, w = scn.window(0, 4), scn.weights
    stopped = AggregateConeSolver(window, 3, w)
    stopped.max_iter = 2
    ones = np.ones((window.T, 2 * window.N))
    x = _run(window, w, stopped, ones)
    assert stopped.solvers_used == {"direct CLARABEL": window.T}
    with pytest.raises(RuntimeError, match="not solved by the method"):
        stopped.window_schedule()
    np.testing.assert_array_equal(x, _run(window, w, DirectMPCSolver(window, 3, w), ones))


def test_mpc_policy_at_q2_uses_the_accelerator_and_matches_the_reference():
    """MPCPolicy's default at q = 2 (one model, a full mask) is the accelerator; its J over 12 slots equals the
    policy's with the cvxpy program (``solver="CLARABEL"``) to 1e-6."""
    scn = small_synthetic(1, 2.0)
    window = scn.window(20, 12)
    fast = equiglb.baselines.mpc.MPCPolicy(horizon=6, forecast_model="perfect")
    x = fast.schedule(window)
    assert fast.solvers_used == {"SOC_IPM": window.T}
    ref = equiglb.baselines.mpc.MPCPolicy(horizon=6, forecast_model="perfect", solver="CLARABEL").schedule(window)
    assert evaluate(window, x, window.weights).objective_usd == pytest.approx(
        evaluate(window, ref, window.weights).objective_usd, rel=1e-6)
    assert not math.isnan(evaluate(window, x, window.weights).objective_usd)


def test_soc_ipm_reports_numerical_trouble_instead_of_a_nan_optimum():
    """A program with a nan in its costs is never reported solved: the residuals keep the nan (a plain max() would
    drop it and let the nan iterate pass the stopping test)."""
    P = _random_program(1)
    c = P["c"].copy()
    c[3] = np.nan
    assert _solve(P, c=c)[0] not in (OPTIMAL, REDUCED)


def test_cone_solver_never_returns_a_value_that_is_not_finite(monkeypatch):
    """Whatever the method returns, a routing that is not finite is not used: the slot goes to the direct
    program."""
    import equiglb.control.mpc as mpc

    scn = small_synthetic(1, 2.0)
    window, w = scn.window(0, 3), scn.weights

    def broken(*args):
        return OPTIMAL, np.full(len(args[0]), np.nan), np.zeros(len(args[1])), 5, np.zeros(0)

    monkeypatch.setattr(mpc, "soc_ipm", broken)
    solver = AggregateConeSolver(window, 3, w)
    x = _run(window, w, solver, np.ones((window.T, 2 * window.N)))
    assert np.isfinite(x).all() and solver.solvers_used == {"direct CLARABEL": window.T}


def test_the_training_environment_at_q2_gives_finite_rewards():
    """The default training id at q = 2 (MPC-24 in the loop, random multipliers, random starts): 1,300 steps of
    finite rewards and observations (a nan optimum once reached the reward here)."""
    import gymnasium as gym

    env = gym.make("equiglb/EquitableGLB-residual-constant-v0", q=2)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(1300):
        obs, r, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        assert np.isfinite(r) and np.isfinite(obs).all()
        if term or trunc:
            env.reset()
    assert env.unwrapped.slot.solver.solvers_used.get("SOC_IPM", 0) > 1000
