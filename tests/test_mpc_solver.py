"""MPC's solver seam: the direct HiGHS LP (accelerator) and the direct program for every other structure
(DirectMPCSolver: HiGHS or Clarabel) pinned to the cvxpy program (reference), and the options of
``action_mode="mpc_residual"``."""

from __future__ import annotations

import math

import highspy
import numpy as np
import pytest
from conftest import small_synthetic

from equiglb.baselines.mpc import MPCPolicy
from equiglb.control.mpc import (
    AggregateConeSolver,
    AggregateLPSolver,
    CvxpyMPCSolver,
    DirectMPCSolver,
    MPCCore,
    _shift_statuses,
    _shifted_basis,
    make_mpc_solver,
)
from equiglb.control.offline import SolverError
from equiglb.envs import EquitableGLBEnv
from equiglb.ledger import evaluate
from equiglb.validate import OptionError


def _run(window, weights, solver, scales):
    """The schedule of an MPC run on ``window`` with per-slot multipliers ``scales`` (T, 2N) of the sites'
    carbon and water terms, or (T, 2N + J) with the regions' social terms."""
    core = MPCCore(window, weights, solver.H)
    N, xs = window.N, []
    for t in range(window.T):
        social = scales[t, 2 * N:] if scales.shape[1] > 2 * N else None
        x = core.route(t, solver, scales[t, :N], scales[t, N:2 * N], social)
        core.update(t, x)
        xs.append(x)
    return np.stack(xs)


@pytest.mark.parametrize("q", [1.0, math.inf])
@pytest.mark.parametrize("H", [1, 5])
def test_accelerator_equals_the_cvxpy_program(q, H):
    scn = small_synthetic(1, q)
    window, w = scn.window(10, 30), scn.weights
    solver = make_mpc_solver(window, H, w)
    assert isinstance(solver, AggregateLPSolver)
    # a full mask is one region class: the aggregated program, capacities as column bounds (no capacity rows)
    assert solver.G == 1 and solver.n_row == H + (2 * window.N if q == math.inf else 0)
    scales = np.exp(np.random.default_rng(0).uniform(-1.0, 1.0, size=(window.T, 2 * window.N)))
    fast = _run(window, w, solver, scales)
    ref = _run(window, w, CvxpyMPCSolver(window, H, w, solver="HIGHS"), scales)
    np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-6 * scn.demand.max())
    j_fast, j_ref = evaluate(window, fast, w).objective_usd, evaluate(window, ref, w).objective_usd
    assert j_fast == pytest.approx(j_ref, rel=1e-9)
    # the multipliers matter: the same run without them is another schedule
    plain = _run(window, w, make_mpc_solver(window, H, w), np.ones_like(scales))
    assert not np.allclose(plain, fast)


def _partial(q):
    """The 72-hour synthetic scenario with a partial mask: region j reaches sites j, j+1, j+3 (mod N)."""
    import dataclasses

    scn = small_synthetic(1, q)
    N, J = scn.N, scn.J
    mask = np.zeros((N, J), dtype=bool)
    for j in range(J):
        mask[[j % N, (j + 1) % N, (j + 3) % N], j] = True
    return dataclasses.replace(scn, mask=mask)


@pytest.mark.parametrize("q", [1.0, math.inf])
@pytest.mark.parametrize("H", [1, 5])
def test_partial_mask_lp_equals_the_cvxpy_program(q, H):
    """The partial-mask LP gives the cvxpy program's J and site loads slot after slot, with multipliers."""
    scn = _partial(q)
    window, w = scn.window(10, 30), scn.weights
    assert not window.allowed.all()
    solver = make_mpc_solver(window, H, w)
    assert isinstance(solver, AggregateLPSolver) and solver.G == window.J     # every mask column distinct
    scales = np.exp(np.random.default_rng(0).uniform(-1.0, 1.0, size=(window.T, 2 * window.N)))
    fast = _run(window, w, solver, scales)
    ref = _run(window, w, CvxpyMPCSolver(window, H, w, solver="HIGHS"), scales)
    assert np.all(fast[:, ~window.allowed] == 0)
    np.testing.assert_allclose(fast.sum(axis=(2, 3)), ref.sum(axis=(2, 3)), rtol=1e-6, atol=1e-6 * scn.demand.max())
    np.testing.assert_allclose(fast.sum(axis=(1, 3)), ref.sum(axis=(1, 3)), rtol=1e-6, atol=1e-6 * scn.demand.max())
    j_fast, j_ref = evaluate(window, fast, w).objective_usd, evaluate(window, ref, w).objective_usd
    assert j_fast == pytest.approx(j_ref, rel=1e-7)
    plain = _run(window, w, make_mpc_solver(window, H, w), np.ones_like(scales))
    assert not np.allclose(plain, fast)


@pytest.mark.parametrize("q", [1.0, math.inf])
@pytest.mark.parametrize("H", [1, 5])
def test_lp_merges_region_classes(q, H):
    """Regions with the same mask column are merged into one class (demand summed, one unserved load per class):
    the run gives the cvxpy program's J, site loads and served load per class, with multipliers, while the
    smallest class cannot be served whole (unserved load merges too); each region's routing keeps to the mask
    and to its demand, the class's load split among its regions in proportion to their demand."""
    import dataclasses

    scn = small_synthetic(1, q)
    N, J = scn.N, scn.J
    sites = [[0, 1], [1, 2, 3, 4], [5, 6, 7, 8, 9]]              # class c: regions j with j % 3 == c
    mask = np.zeros((N, J), dtype=bool)
    for j in range(J):
        mask[sites[j % 3], j] = True
    window = dataclasses.replace(scn, mask=mask).window(10, 30)
    w = window.weights
    solver = make_mpc_solver(window, H, w)
    assert isinstance(solver, AggregateLPSolver)
    assert [list(g) for g in solver.classes] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    scales = np.exp(np.random.default_rng(1).uniform(-1.0, 1.0, size=(window.T, 2 * N)))
    fast = _run(window, w, solver, scales)
    ref = _run(window, w, CvxpyMPCSolver(window, H, w, solver="HIGHS"), scales)
    tol = 1e-6 * window.demand.max()
    assert fast.min() >= 0 and np.all(fast[:, ~window.allowed] == 0)
    np.testing.assert_allclose(fast.sum(axis=(2, 3)), ref.sum(axis=(2, 3)), rtol=1e-6, atol=tol)
    served, served_ref = fast.sum(axis=(1, 3)), ref.sum(axis=(1, 3))                  # (T, J) load units
    for members in solver.classes:
        np.testing.assert_allclose(served[:, members].sum(axis=1), served_ref[:, members].sum(axis=1),
                                   rtol=1e-6, atol=tol)
        # pro rata: every region of a class is served the same fraction of its demand
        frac = served[:, members] / window.demand[:, members]
        np.testing.assert_allclose(frac, frac[:, :1].repeat(len(members), axis=1), rtol=1e-12)
    assert np.all(served <= window.demand * (1 + 1e-12))
    assert np.any(served[:, 0] < 0.99 * window.demand[:, 0])                           # unserved load in class 0
    j_fast, j_ref = evaluate(window, fast, w).objective_usd, evaluate(window, ref, w).objective_usd
    assert j_fast == pytest.approx(j_ref, rel=1e-7)


@pytest.mark.parametrize("structure", ["full", "partial", "social", "three models"])
@pytest.mark.parametrize("q", [1.0, math.inf])
def test_warm_start_keeps_the_optimum(structure, q):
    """MPCPolicy(warm_start=True) (each slot from the previous basis moved one slot ahead) gives the cold
    start's J on full and partial masks and on the direct program's LPs (a social term, three models), and
    actually warm-starts (fewer simplex iterations in total; on a full mask at q = 1 the cold start begins at
    the optimum)."""
    scn = {"full": lambda: small_synthetic(1, q), "partial": lambda: _partial(q),
           "social": lambda: _structure(1, q, True, True),
           "three models": lambda: _structure(3, q, True, False)}[structure]()
    window, w = scn.window(5, 30), scn.weights
    assert isinstance(make_mpc_solver(window, 8, w), DirectMPCSolver) == (structure in ("social", "three models"))
    runs = {}
    for warm in (False, True):
        pol = MPCPolicy(horizon=8, forecast_model="perfect", warm_start=warm)
        pol.reset(window, w)
        iters = 0
        xs = []
        for t in range(window.T):
            xs.append(pol.act(t))
            solver = pol._solver
            iters += (solver.last_iterations if isinstance(solver, AggregateLPSolver)        # either LP backend
                      else solver.highs.getInfo().simplex_iteration_count)
        runs[warm] = (evaluate(window, np.stack(xs), w).objective_usd, iters)
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-7)
    if structure == "full" and q == 1.0:     # the cold start's basis (each slot's cheapest fill) is the optimum
        assert runs[False][1] == 0 < runs[True][1]
    else:
        assert runs[True][1] < runs[False][1]
    with pytest.raises(OptionError, match="warm_start=1"):
        MPCPolicy(warm_start=1)


@pytest.mark.parametrize("structure", ["full", "partial", "social", "q = 2", "cvxpy"])
def test_forget_starts_the_next_slot_cold(structure):
    """``forget()`` (every solver has it; ``MPCPolicy.reset`` calls it) drops the warm
    start's state: after it, the next slot of a warm-started run takes the cold start's iterations and routing (to
    1e-9: the runs' first slots reached the same optima by other pivots, so their footprints so far differ in the
    last digits), where without it the same slot starts warm (fewer iterations)."""
    scn = {"full": lambda: small_synthetic(1, math.inf), "partial": lambda: _partial(math.inf),
           "social": lambda: _structure(1, math.inf, True, True), "q = 2": lambda: small_synthetic(1, 2.0),
           "cvxpy": lambda: small_synthetic(1, math.inf)}[structure]()
    window, w = scn.window(5, 12), scn.weights
    solver = "HIGHS" if structure == "cvxpy" else None
    pols = {k: MPCPolicy(horizon=6, forecast_model="perfect", warm_start=k != "cold", solver=solver)
            for k in ("cold", "warm", "forgot")}
    out: dict[str, tuple] = {}
    for k, pol in pols.items():
        pol.reset(window, w)
        for t in range(8):
            pol.act(t)
        if k == "forgot":
            pol._solver.forget()
        x = pol.act(8)
        out[k] = (x, getattr(pol._solver, "last_iterations", None))
    np.testing.assert_allclose(out["forgot"][0], out["cold"][0], rtol=1e-9, atol=1e-12)
    assert out["forgot"][1] == out["cold"][1]
    if structure != "cvxpy":
        assert out["warm"][1] < out["cold"][1]


@pytest.mark.parametrize("structure", ["full", "partial", "social", "q = 2"])
def test_warm_start_with_a_history_tail_moves_the_window_alone(structure):
    """With a history tail the solver is built for the window's slots and the tail's (``window=H``): a warm start
    moves the window's slots one ahead and leaves the tail's in place. The run's J is the cold start's (the same
    optimum each slot; at q = 2 to the interior-point method's tolerance) and it takes fewer iterations than the
    cold start, and for the LPs than moving every slot."""
    scn = {"full": lambda: small_synthetic(1, math.inf), "partial": lambda: _partial(math.inf),
           "social": lambda: _structure(1, math.inf, True, True), "q = 2": lambda: small_synthetic(1, 2.0)}[structure]()
    window, w = scn.window(30, 30), scn.weights
    runs = {}
    for mode in ("cold", "window", "every slot"):
        pol = MPCPolicy(horizon=6, forecast_model="perfect", warm_start=mode != "cold", tail_days=1, history=scn,
                        tail_block_hours=3)
        pol.reset(window, w)
        solver = pol._solver
        assert solver.H == 6 + 8 and solver.window == 6
        assert isinstance(solver, AggregateConeSolver) == (structure == "q = 2")
        if mode == "every slot":
            solver.window = solver.H
            if isinstance(solver, AggregateConeSolver):
                continue                              # its shift is built once, with the solver
        iters, xs = 0, []
        for t in range(window.T):
            xs.append(pol.act(t))
            iters += solver.last_iterations
        runs[mode] = (evaluate(window, np.stack(xs), w).objective_usd, iters)
    rel = 1e-6 if structure == "q = 2" else 1e-7
    for mode in runs:
        assert runs[mode][0] == pytest.approx(runs["cold"][0], rel=rel)
    assert runs["window"][1] < min(v[1] for k, v in runs.items() if k != "window")
    with pytest.raises(OptionError, match="window=15"):
        make_mpc_solver(window, 14, w, window=15)


def test_cheapest_fill_is_the_sorted_fill():
    """The cold start's basis of a full mask (compiled) is the cheapest fill written with numpy: sites by cost in a
    stable order (ties among them), filled to their bounds until each slot's demand is met; the unserved load's
    column where the sites fall short; a slot without demand keeps the logical basis."""
    from equiglb.control.densesimplex import AT_LOWER, BASIC
    from equiglb.control.mpc import _cheapest_fill

    rng = np.random.default_rng(7)
    H, P = 40, 6
    n, n_row = H * P + H + 2, H + 4
    cost = np.concatenate([rng.integers(0, 4, H * P).astype(float), np.full(H + 2, 1e3)])   # many ties
    up = np.concatenate([rng.uniform(0.0, 1.0, H * P), np.full(H + 2, 10.0)])
    demand = rng.uniform(0.0, 5.0, H)
    demand[::7] = 0.0                                                       # slots without demand
    demand[3::9] = 50.0                                                     # beyond every site: unserved
    status = np.full(n + n_row, AT_LOWER, dtype=np.int8)
    status[n:] = BASIC
    expected = status.copy()
    _cheapest_fill(cost, up, demand, P, H * P, n, status)
    c, u = cost[:H * P].reshape(H, P), up[:H * P].reshape(H, P)
    order = np.argsort(c, axis=1, kind="stable")
    k = (np.cumsum(np.take_along_axis(u, order, axis=1), axis=1) < demand[:, None]).sum(axis=1)
    slots = np.nonzero(demand > 0)[0]
    expected[np.where(k[slots] == P, H * P + slots, slots * P + order[slots, np.minimum(k[slots], P - 1)])] = BASIC
    expected[n + slots] = AT_LOWER
    np.testing.assert_array_equal(status, expected)
    assert (k[slots] == P).any() and (k[slots] < P).any() and (demand == 0).any()


def test_shift_statuses_moves_every_block_one_slot_ahead():
    """The warm start's shift (one function for the dense path's codes and HiGHS's basis): each slot-major block
    drops its slot 0 and repeats its last slot, entries outside the blocks keep their status, and the count of
    basic entries is restored on the last slot's columns; None when it cannot be."""
    B, L, U = 1, 0, 2                                  # basic, at lower, at upper
    # columns: a block of 2 per slot over H = 3 slots, then one column outside; rows: a block of 1, one outside
    cols = [B, L, U, B, L, B, U]
    rows = [B, L, L, L]                                # 4 basic entries, 4 rows: a basis
    st = _shift_statuses(np.array(cols + rows), [(0, 2)], [(0, 1)], 3, 4, B, L)
    assert st is not None
    # shifted: columns [U B | L B | L B] and U, rows [L L L] and L: 3 basic, so the last slot's first nonbasic
    # column is made basic
    assert st.tolist() == [U, B, L, B, B, B, U] + [L, L, L, L]
    assert np.count_nonzero(st == B) == 4
    assert _shift_statuses(np.array([B, B, B, B]), [(0, 1)], [], 3, 1, B, L) is None   # 3 basic, 1 row, 1 to repair
    basis = highspy.HighsBasis()
    basis.valid = True
    Status = highspy.HighsBasisStatus
    basis.col_status = [Status(v) for v in cols]
    basis.row_status = [Status(v) for v in rows]
    out = _shifted_basis(basis, [(0, 2)], [(0, 1)], 3, 4)
    assert out is not None
    assert [int(v) for v in out.col_status] + [int(v) for v in out.row_status] == st.tolist()
    # the receding window of the first 2 slots (a history tail after them): slot 1 repeated, slot 2 keeps its own
    # statuses, and the basic count restored on slot 1's columns (the window's last)
    st = _shift_statuses(np.array(cols + rows), [(0, 2)], [(0, 1)], 2, 4, B, L)
    assert st is not None and st.tolist() == [U, B, B, B, L, B, U] + [L, L, L, L]


def _structure(K, q, social, partial):
    """A 72-hour synthetic scenario with ``K`` models (3: the multi-model one), q, the social term on or off
    (with one model: a quality loss of 0.1), a latency term with three models, and a full or partial mask."""
    import dataclasses

    scn = small_synthetic(K, q)
    w = scn.weights
    if social and K == 1:
        scn = dataclasses.replace(scn, quality_loss=np.array([0.1]))
        w = w.replace(mu_social=50_000.0)
    if not social:
        w = w.replace(mu_social=0.0)
    if K == 3:
        w = w.replace(mu_latency=0.01)
    N, J = scn.N, scn.J
    mask = np.ones((N, J), dtype=bool)
    if partial:
        mask[:] = False
        for j in range(J):
            mask[[j % N, (j + 1) % N, (j + 3) % N], j] = True
    return dataclasses.replace(scn, mask=mask).with_weights(w)


def _reference_value(ref: CvxpyMPCSolver, x: np.ndarray) -> float:
    """The reference program's objective (as last loaded) at the schedule ``x`` (H, N, J, K) of its window."""
    prob = ref.prob
    pr = prob.pairs
    xp = x.sum(axis=(2, 3)) if prob.aggregate else x[:, pr.i, pr.j, pr.k]
    var = {v.name(): v for v in prob.problem.variables()}
    var["x"].value = xp
    var["it_mwh"].value = np.asarray(xp @ pr.capacity_matrix)
    var["unserved"].value = np.maximum(prob.demand.value - np.asarray(xp @ pr.demand_matrix), 0.0)
    return float(prob.problem.objective.value)


MPC_CASES = [(q, K, social, partial) for q in (1.0, 2.0, 3.0, math.inf) for K in (1, 3) for social in (False, True)
             for partial in (False, True)]


#: Clarabel settings of the reference cone programs: at its defaults the cvxpy program's optimum was up to 4e-6
#: (relative) above the optimum on these windows
TIGHT = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "max_iter": 500}


class _Pinned:
    """An MPC solver that solves each slot's program with the direct solver and with the reference, checks the
    direct solution in the reference program, and routes by the reference."""

    def __init__(self, window, H, w):
        self.lp, self.social = w.q in (1.0, math.inf), window.social_in_force(w)
        self.fast, self.H = DirectMPCSolver(window, H, w, fallback=False), H
        self.ref = CvxpyMPCSolver(window, H, w, solver_opts=None if self.lp else TIGHT)
        self.slots = self.tight = 0

    def first_slot(self, window, data, t):
        if t > 0:            # the footprints so far are offsets inside the norms
            assert data.carbon_t.any() and data.water_m3.any() and (not self.social or data.quality_sum.any())
        clarabel_before = self.ref.solvers_used.get("CLARABEL", 0)
        x_ref = self.ref.first_slot(window, data, t)
        optimum = float(self.ref.prob.problem.value)
        # the reference at TIGHT settings, unless Clarabel failed there and the slot fell back to SCS (first-order,
        # accurate to about 1e-5 only: its optimum then pins the direct solution at the looser tolerance alone)
        ref_tight = self.ref.solvers_used.get("CLARABEL", 0) > clarabel_before
        try:
            first = self.fast.first_slot(window, data, t)
        except SolverError:   # Clarabel stopped short (InsufficientProgress): in production the reference solves it
            assert not self.lp
            return x_ref
        out = self.fast.program.solve()
        assert out.ok and out.schedule is not None
        x = out.schedule
        np.testing.assert_allclose(first, x[0], rtol=1e-12, atol=1e-15)
        assert x.min() >= 0 and np.all(x[:, ~window.allowed] == 0)
        tol = 1e-9 if self.lp else 1e-6
        assert np.all((x @ window.energy_per_unit).sum(axis=2) <= data.capacity * (1 + tol))
        assert np.all(x.sum(axis=(1, 3)) <= data.demand * (1 + tol))
        # an LP to a vertex, exactly; a cone program at Clarabel's default tolerances, and to the reference's
        # tolerances where Clarabel reaches them
        assert _reference_value(self.ref, x) == pytest.approx(optimum, rel=1e-9 if self.lp else 2e-5)
        tight = None if self.lp else self.fast.program.solve(options=TIGHT)
        if tight is not None and tight.ok and ref_tight:
            assert _reference_value(self.ref, tight.schedule) == pytest.approx(optimum, rel=2e-6)
            self.tight += 1
        self.slots += 1
        assert self.fast.solvers_used == {"HIGHS" if self.lp else "CLARABEL": self.slots}
        return x_ref


@pytest.mark.filterwarnings("ignore:offline solve:RuntimeWarning", "ignore:Solution may be inaccurate:UserWarning")
@pytest.mark.parametrize("H", [1, 5])
@pytest.mark.parametrize("q,K,social,partial", MPC_CASES)
def test_direct_mpc_solver_solves_the_cvxpy_program(q, K, social, partial, H):
    """Slot after slot of a reference run (random multipliers of every site's and region's equity terms, the
    footprints so far as offsets), the direct program's solution is feasible in the cvxpy program and
    optimal there: its objective in that program is the program's optimum (where several routings are
    optimal, e.g. with three models or q = inf, the two solvers may return different ones)."""
    scn = _structure(K, q, social, partial)
    window, w = scn.window(10, 8), scn.weights
    assert window.social_in_force(w) == social and (not window.mask.all()) == partial
    accelerated = AggregateLPSolver.applies(window, w) or AggregateConeSolver.applies(window, w)
    assert isinstance(make_mpc_solver(window, H, w), DirectMPCSolver) != accelerated
    assert AggregateConeSolver.applies(window, w) == (q == 2.0 and K == 1 and not social)
    pinned = _Pinned(window, H, w)
    scales = np.exp(np.random.default_rng(0).uniform(-1.0, 1.0, size=(window.T, 2 * window.N + window.J)))
    _run(window, w, pinned, scales)
    assert pinned.slots >= window.T - (0 if q in (1.0, math.inf) else 3)
    assert q in (1.0, math.inf) or pinned.tight >= window.T - 3


@pytest.mark.parametrize("q,partial", [(1.0, False), (math.inf, False), (1.0, True), (math.inf, True)])
@pytest.mark.parametrize("H", [1, 5])
def test_direct_mpc_run_equals_the_cvxpy_run(q, partial, H):
    """Where the program's optimum is unique (one model, a social term: site loads and region splits matter),
    whole MPC runs with multipliers give the reference run's J and its site loads slot after slot."""
    scn = _structure(1, q, True, partial)
    window, w = scn.window(10, 12), scn.weights
    solver = make_mpc_solver(window, H, w)
    assert isinstance(solver, DirectMPCSolver)
    scales = np.exp(np.random.default_rng(1).uniform(-1.0, 1.0, size=(window.T, 2 * window.N + window.J)))
    fast = _run(window, w, solver, scales)
    ref = _run(window, w, CvxpyMPCSolver(window, H, w), scales)
    np.testing.assert_allclose(fast.sum(axis=(2, 3)), ref.sum(axis=(2, 3)), rtol=1e-6, atol=1e-6 * scn.demand.max())
    assert evaluate(window, fast, w).objective_usd == pytest.approx(evaluate(window, ref, w).objective_usd, rel=1e-7)


def test_direct_mpc_solver_names_a_failed_slot():
    """A direct program without an optimum is a SolverError naming the slot and the solver's status; with the
    fallback (the default) the reference program solves that slot instead, and ``solvers_used`` says so."""
    scn = _structure(3, 2.0, True, False)
    window, w = scn.window(0, 4), scn.weights
    stopped = DirectMPCSolver(window, 3, w, options={"max_iter": 1}, fallback=False)
    with pytest.raises(SolverError, match=r"^MPC at slot t=0: the direct program reached no optimum "
                                          r"\(CLARABEL \(direct\): MaxIterations\)"):
        _run(window, w, stopped, np.ones((window.T, 2 * window.N)))
    rescued = DirectMPCSolver(window, 3, w, options={"max_iter": 1})
    x = _run(window, w, rescued, np.ones((window.T, 2 * window.N)))
    assert rescued.solvers_used == {"cvxpy CLARABEL": window.T}
    ref = _run(window, w, CvxpyMPCSolver(window, 3, w), np.ones((window.T, 2 * window.N)))
    np.testing.assert_array_equal(x, ref)


def test_the_seam_chooses_once_by_structure():
    one = small_synthetic(1, math.inf)
    assert isinstance(make_mpc_solver(one, 3, one.weights), AggregateLPSolver)
    assert isinstance(make_mpc_solver(one, 3, one.weights, solver="CLARABEL"), CvxpyMPCSolver)
    q2 = small_synthetic(1, 2.0)
    assert isinstance(make_mpc_solver(q2, 3, q2.weights), AggregateConeSolver)   # a cone, not an LP
    q3 = small_synthetic(1, 3.0)
    assert isinstance(make_mpc_solver(q3, 3, q3.weights), DirectMPCSolver)       # q = 3: power cones
    part2 = _partial(2.0)
    assert isinstance(make_mpc_solver(part2, 3, part2.weights), AggregateConeSolver)  # q = 2, shared sites
    assert isinstance(make_mpc_solver(q2, 3, q2.weights, solver="CLARABEL"), CvxpyMPCSolver)
    three = small_synthetic(3, math.inf)
    assert isinstance(make_mpc_solver(three, 3, three.weights), DirectMPCSolver)  # three models, social
    world_like = _structure(3, math.inf, True, False)                            # full mask, K = 3, social
    assert isinstance(make_mpc_solver(world_like, 24, world_like.weights), DirectMPCSolver)
    multimodel = small_synthetic(3, 2.0)                                          # the multimodel scenario
    assert isinstance(make_mpc_solver(multimodel, 24, multimodel.weights), DirectMPCSolver)
    part = _partial(math.inf)
    assert isinstance(make_mpc_solver(part, 3, part.weights), AggregateLPSolver)  # a partial mask
    assert isinstance(make_mpc_solver(part, 3, part.weights, solver="HIGHS"), CvxpyMPCSolver)


def test_mpc_policy_rebuilds_its_program_for_new_weights():
    scn = small_synthetic(1, math.inf)
    window = scn.window(0, 24)
    policy = MPCPolicy(horizon=4)
    first = policy.schedule(window)
    heavier = window.weights.replace(mu_carbon=10 * window.weights.mu_carbon)
    second = policy.schedule(window, heavier)
    fresh = MPCPolicy(horizon=4).schedule(window, heavier)
    np.testing.assert_array_equal(second, fresh)
    assert not np.array_equal(first, second)


def test_mpc_residual_options_are_checked_by_name():
    with pytest.raises(OptionError, match=r"^mpc_horizon=0: must be in 1\.\.168 hours"):
        EquitableGLBEnv(action_mode="mpc_residual", mpc_horizon=0)
    with pytest.raises(OptionError, match=r"^mpc_residual_max_factor=1\.0: must be > 1\.0"):
        EquitableGLBEnv(action_mode="mpc_residual", mpc_residual_max_factor=1.0)
    with pytest.raises(OptionError, match=r"^mpc_horizon=12: applies only with action_mode='mpc_residual'"):
        EquitableGLBEnv(action_mode="eglb_residual", mpc_horizon=12)
    with pytest.raises(OptionError, match=r"^eglb_eta_scale=0\.7: applies only with action_mode='eglb_residual'"):
        EquitableGLBEnv(action_mode="mpc_residual", eglb_eta_scale=0.7)
    with pytest.raises(OptionError, match=r"^forecast_noise=0\.1 with action_mode='mpc_residual'"):
        EquitableGLBEnv(action_mode="mpc_residual", forecast_noise=0.1)


def test_mpc_residual_action_scales_the_equity_coefficients():
    """A constant action plays MPC with every site's carbon and water coefficients multiplied by the
    documented factor f ** a."""
    scn = small_synthetic(1, math.inf)
    f, a = 2.0, 0.5
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=10, action_mode="mpc_residual", mpc_horizon=3,
                          mpc_residual_max_factor=f, forecast_model="perfect")
    env.reset(seed=0, options={"start": 20})
    for _ in range(10):
        env.step(np.full(env.action_space.shape, a, np.float32))
    window = env.window()
    solver = make_mpc_solver(window, 3, env.weights)
    expected = _run(window, env.weights, solver, np.full((10, 2 * scn.N), f ** np.float32(a)))
    np.testing.assert_allclose(env.executed_schedule(), expected, rtol=1e-9, atol=1e-9)


def test_agent_quality_reports_the_mpc_base_of_mpc_residual_agents(tmp_path):
    """A tiny end-to-end run of benchmarks/agent_quality.py in the MPC residual mode: the table gains
    MPC at the mode's look-ahead (the agents' action 0), which is MPCPolicy's gap on the test window."""
    import json

    from conftest import load_benchmark

    import equiglb
    from equiglb.baselines import OfflinePolicy

    aq = load_benchmark("agent_quality")
    out = tmp_path / "q.json"
    code = aq.main(["--protocol", "synthetic", "--seeds", "1", "-n", "64", "--mpc-horizon", "2", "-f",
                    str(tmp_path / "runs"), "--out", str(out), "--env-kwargs", "action_mode=mpc_residual",
                    "mpc_horizon=3", "episode_length=24", "--", "-params", "n_steps=32", "batch_size=32",
                    "--n-envs", "2", "--eval-freq", "0"])
    assert code == 0
    table = {r["policy"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(table) >= {"ppo (agent)", "mpc-2 perfect (oracle)", "mpc-2 calibrated",
                          "mpc-3 calibrated (agent's base)"}
    info = table["ppo (agent)"]["information"]          # the id's hyperparameters may add observed forecasts
    assert info.startswith("forecasts (calibrated, ") and info.endswith("mpc 3 h)")
    test = equiglb.load_scenario("synthetic").split("test")
    j_off = evaluate(test, OfflinePolicy().schedule(test), test.weights).objective_usd
    base = MPCPolicy(horizon=3, forecast_model="calibrated", seed=0)       # the env's default forecast_seed
    j_mpc = evaluate(test, base.schedule(test), test.weights).objective_usd
    assert table["mpc-3 calibrated (agent's base)"]["mean"] == pytest.approx(100 * (j_mpc / j_off - 1), abs=1e-6)
    # train.py's own evaluation table has the same row, and says what every row knew
    import csv
    run = json.loads(out.read_text())["runs"][0]["run"]
    with open(f"{run}/eval/table.csv", newline="") as fh:
        rows = {r["policy"]: r for r in csv.DictReader(fh)}
    assert float(rows["mpc-3 calibrated (agent's base)"]["objective"]) == pytest.approx(j_mpc, rel=1e-9)
    assert rows["mpc-3 calibrated (agent's base)"]["information"] == "forecasts (calibrated, 3 h)"
    assert rows["ppo (agent)"]["information"] == info


def test_mpc_residual_routing_never_reads_past_the_episode():
    """The MPC inside the environment sees the episode's window only: an episode that ends at the last
    slot of the train split routes the same whatever the held-out test window holds."""
    import dataclasses

    import equiglb

    scn = equiglb.load_scenario("synthetic")
    a0, an = scn.splits["train"]
    last = a0 + an - 1
    price, carbon, demand = scn.price.copy(), scn.carbon.copy(), scn.demand.copy()
    price[last + 1:] *= -3.0
    carbon[last + 1:] *= 5.0
    demand[last + 1:] *= 0.1
    changed = dataclasses.replace(scn, price=price, carbon=carbon, demand=demand)
    schedules = []
    for s in (scn, changed):
        env = EquitableGLBEnv(scenario=s, split="train", episode_length=24, action_mode="mpc_residual",
                              mpc_horizon=24)
        env.reset(seed=0, options={"start": last - 23})
        rng = np.random.default_rng(0)
        for _ in range(24):
            env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        schedules.append(env.executed_schedule())
    np.testing.assert_array_equal(schedules[0], schedules[1])
    # while MPC given the whole scenario from the same slots would see the change
    ahead = [MPCPolicy(horizon=24).schedule(s.window(last - 23, 48))[:24] for s in (scn, changed)]
    assert not np.allclose(*ahead)
