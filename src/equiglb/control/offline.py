"""The offline optimum (eGLB-Off, generalized): the full-window convex program of docs/model.md §2–§3.

    min  Σ_t Σ_i p[t,i] E[t,i] + μ_c‖ω⊙C‖_q + μ_w‖ω⊙W‖_q + μ_s‖S‖_q + μ_d·latency + penalty·Σ u
    s.t. Σ_{i,k} x[t,i,j,k] + u[t,j] = λ[t,j],   Σ_{j,k} e[k] x[t,i,j,k] <= M[i],   x, u >= 0

over the allowed pairs only (mask and hosting), for any q in [1, inf]. The program is built once
per (structure, window length) in matrix form with ``cp.Parameter``s (DPP), so a second window of
the same length re-uses cvxpy's canonicalization. The solver is chosen by problem class (an LP for
q in {1, inf}: HiGHS; a second-order cone for q = 2 and power cones otherwise: Clarabel); a
failing solver falls back to the next one with a warning, recorded in :class:`OfflineResult`.
The reported objective is always the ledger's (:func:`equiglb.ledger.evaluate`) J(x).

Three paths behind one seam, chosen once per solve by :func:`choose_method` (``method=`` forces one):

* ``"cvxpy"``, the **reference**: :class:`OfflineProblem` above;
* ``"direct"``, the **accelerator**: :class:`equiglb.control.offline_direct.DirectProgram`, the same
  program written in matrix form (exact reductions by region class, no cvxpy canonicalization) and
  handed to HiGHS (q in {1, inf}) or Clarabel (cones) directly. Tests pin it to the reference;
* ``"blockipm"``: the same matrix-form program solved by :mod:`equiglb.control.blockipm`, an
  interior-point method that factors the slot blocks batched and the norms' linking rows apart
  (q in {1, 2, inf}, where it is the seam's first choice); when it does not converge the direct
  solvers follow, as for ``"direct"``.

cvxpy is imported by the functions that build or solve the cvxpy program only: the direct path, the
environments and ``import equiglb`` never load it. The policy over :func:`solve_offline` is
:class:`equiglb.baselines.offline.OfflinePolicy`.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from equiglb.control.blockipm import BLOCKIPM_SOLVER, blockipm_applies, solve_blockipm
from equiglb.control.offline_direct import DIRECT_SOLVERS, DirectProgram
from equiglb.control.routing import Pairs, SlotRouter
from equiglb.ledger import Report, evaluate, weights_in_force
from equiglb.scenario import Scenario, ScenarioError, Weights
from equiglb.validate import OptionError, one_of

if TYPE_CHECKING:
    import cvxpy as cp

__all__ = ["OfflineProblem", "OfflineResult", "InfeasibleError", "SolverError",
           "solve_offline", "solve_with_fallback", "solver_order", "check_solver", "norm_expr",
           "check_reachable", "choose_method", "METHODS", "DIRECT_MIN_PAIR_SLOTS"]

#: ``method=`` values of :func:`solve_offline`: the seam's choice, the accelerator (its solvers, or the
#: block interior point first), the reference.
METHODS = ("auto", "direct", "blockipm", "cvxpy")

#: ``method="auto"`` uses the direct program from this many allowed (i, j, k) pairs × hours on (below it
#: the cvxpy program compiles and solves in well under a second, and small programs keep its solver
#: fallback chain).
DIRECT_MIN_PAIR_SLOTS = 2_000

class InfeasibleError(ScenarioError):
    """Demand cannot be placed in a slot and unserved load is not allowed (names slot and region)."""


class SolverError(RuntimeError):
    """Every solver tried failed on the offline program."""


def check_solver(solver: str | None, option: str = "solver") -> str | None:
    """``solver`` in upper case if cvxpy has it installed (``None`` passes), else :class:`OptionError`
    naming the option and listing the installed solvers."""
    if solver is None:
        return None
    import cvxpy as cp  # noqa: PLC0415  (cvxpy loads only where a cvxpy solver is named or used)

    installed = sorted(cp.installed_solvers())
    if not isinstance(solver, str) or solver.upper() not in installed:
        raise OptionError(f"{option}={solver!r}: solver not installed; installed cvxpy solvers: {installed}")
    return solver.upper()


def solver_order(q: float, solver: str | None = None) -> list[str]:
    """Solvers to try, best first: the requested one, then by class (LP: HiGHS; cones: Clarabel)."""
    import cvxpy as cp  # noqa: PLC0415

    installed = set(cp.installed_solvers())
    lp = q in (1.0, math.inf)
    order = ["HIGHS", "CLARABEL", "SCS"] if lp else ["CLARABEL", "SCS"]
    solver = check_solver(solver)
    if solver is not None:
        order = [solver] + [s for s in order if s != solver]
    return [s for s in order if s in installed]


def norm_expr(v: cp.Expression, q: float) -> cp.Expression:
    """‖v‖_q of a non-negative cvxpy vector (max for q = inf, sum for q = 1)."""
    import cvxpy as cp  # noqa: PLC0415

    if q == math.inf:
        return cp.max(v)
    if q == 1.0:
        return cp.sum(v)
    return cp.norm(v, q)  # type: ignore[arg-type]  # any real p >= 1 works; cvxpy's stub says int | str


@dataclass
class OfflineResult:
    """Outcome of one offline solve. Times in seconds; objectives in USD."""

    schedule: np.ndarray            # x[t, i, j, k], load units
    report: Report                  # the ledger's accounting of ``schedule``
    status: str                     # cvxpy status of the accepted solve
    solver: str                     # solver that produced the schedule
    solver_objective_usd: float     # the solver's optimal value (compare with report.objective_usd)
    compile_time_s: float           # cvxpy canonicalization (0 when re-used), plus data transfer
    solve_time_s: float             # the solver's own time
    wall_time_s: float              # everything, including failed attempts
    attempts: list[str] = field(default_factory=list)   # "SOLVER: status" per attempt, in order
    method: str = "cvxpy"           # "cvxpy" (the reference program), "direct" or "blockipm" (matrix form)

    @property
    def objective_usd(self) -> float:
        """J(x) by the ledger."""
        return self.report.objective_usd

    @property
    def fell_back(self) -> bool:
        """True when the first solver tried did not produce the schedule."""
        return len(self.attempts) > 1


def _structure_key(scenario: Scenario, T: int, weights: Weights, allow_unserved: bool) -> tuple:
    h = hashlib.sha1()
    for a in (scenario.allowed, scenario.energy_per_unit, scenario.quality_loss):
        h.update(np.ascontiguousarray(a).tobytes())
    social = scenario.social_in_force(weights)
    latency = bool(weights.mu_latency) and scenario.latency is not None
    if latency:  # μ_d and d[i, j] are constants of the program
        h.update(np.ascontiguousarray(scenario.latency).tobytes())
        h.update(np.float64(weights.mu_latency).tobytes())
    return (h.hexdigest(), T, weights.q, social, latency, bool(allow_unserved))


class OfflineProblem:
    """The parameterized offline program for one structure and window length T.

    Parameters (set by :meth:`set_data`): price, carbon and water coefficients per MWh of IT energy
    (USD/MWh, with PUE, ω and μ folded in), demand (T, J), capacity (T, N) per slot (MWh of IT energy; the
    scenario's in every slot, unless set per slot, as the MPC programs with a history tail do), the social scale
    μ_s/Λ[j] (J,) and the unserved penalty (USD per load unit).
    """

    def __init__(self, scenario: Scenario, T: int, weights: Weights, allow_unserved: bool = True,
                 offsets: bool = False, aggregate: bool | None = None):
        import cvxpy as cp  # noqa: PLC0415

        self.key = _structure_key(scenario, T, weights, allow_unserved) + (offsets,)
        _, _, q, social, latency, _, _ = self.key
        # Exact aggregation: when every region reaches every site with the one model and no term
        # depends on the region (no social, no latency), only the site loads matter; the program is
        # solved for one aggregate region (J times fewer variables) and every region gets the same
        # site mix (x[t,i,j] = E[t,i] λ[t,j] / Σ_j λ[t,j]), which is feasible with the same J(x).
        can_aggregate = scenario.K == 1 and bool(scenario.allowed.all()) and not social and not latency
        if aggregate and not can_aggregate:
            raise ValueError("aggregate=True needs K = 1, a full mask and no social or latency term")
        self.aggregate = can_aggregate if aggregate is None else bool(aggregate)
        self.J_regions = scenario.J
        if self.aggregate:
            N0, e0 = scenario.N, float(scenario.energy_per_unit[0])
            zeros = np.zeros(N0, dtype=np.intp)
            pr = Pairs(shape=(N0, 1, 1), i=np.arange(N0), j=zeros, k=zeros, energy=np.full(N0, e0),
                       demand_matrix=sp.csr_matrix(np.ones((N0, 1))),
                       capacity_matrix=sp.csr_matrix(e0 * np.eye(N0)))
        else:
            pr = Pairs.of(scenario)
        self.pairs = pr
        N, J, P = scenario.N, (1 if self.aggregate else scenario.J), pr.P
        self._demand = np.zeros((0, scenario.J))   # (T, J) load units, set by set_arrays
        self.T, self.q, self.allow_unserved = T, q, allow_unserved
        self.N = N
        self.x = cp.Variable((T, P), nonneg=True, name="x")
        # Coefficients depend on (t, i) only, so they multiply the IT energy E (T, N), not x: with
        # scalar-valued dot products cvxpy's parameter tensors stay linear in T (multiply(param, var)
        # over a (T, P) array makes them quadratic: minutes of compile time at T = 457).
        self.price = cp.Parameter(T * N, name="price_usd_per_mwh_it")
        self.carbon = cp.Parameter((N, T), nonneg=True, name="carbon_usd_per_mwh_it")
        self.water = cp.Parameter((N, T), nonneg=True, name="water_usd_per_mwh_it")
        self.demand = cp.Parameter((T, J), nonneg=True, name="demand")
        self.capacity = cp.Parameter((T, N), nonneg=True, name="capacity_mwh")           # per slot
        x = self.x
        # IT energy E (T, N), MWh, as its own variable: the cost and footprint rows then read N·T
        # entries instead of P·T (3x faster HiGHS solves of the per-pair eGLB-2022 program)
        it_mwh = cp.Variable((T, N), nonneg=True, name="it_mwh")
        served = x @ pr.demand_matrix
        cons = [it_mwh == x @ pr.capacity_matrix, it_mwh <= self.capacity]
        obj = self.price @ cp.vec(it_mwh, order="C")
        carbon = cp.hstack([self.carbon[i] @ it_mwh[:, i] for i in range(N)])   # (N,) USD
        water = cp.hstack([self.water[i] @ it_mwh[:, i] for i in range(N)])
        # offsets: footprints accumulated before the window (USD, μ and ω folded in), for MPC
        self.carbon_offset = cp.Parameter(N, nonneg=True, name="carbon_offset_usd") if offsets else None
        self.water_offset = cp.Parameter(N, nonneg=True, name="water_offset_usd") if offsets else None
        self.social_offset: cp.Parameter | None = None
        if offsets:
            carbon, water = carbon + self.carbon_offset, water + self.water_offset
        obj += norm_expr(carbon, q)
        obj += norm_expr(water, q)
        self.social_scale: cp.Parameter | None = None
        self.penalty: cp.Parameter | None = None
        if social:
            qm = sp.csr_matrix((scenario.quality_loss[pr.k], (np.arange(P), pr.j)), shape=(P, J))
            self.social_scale = cp.Parameter(J, nonneg=True, name="mu_social_per_demand")
            social_usd = cp.multiply(self.social_scale, cp.sum(x, axis=0) @ qm)
            if offsets:
                self.social_offset = cp.Parameter(J, nonneg=True, name="social_offset_usd")
                social_usd = social_usd + self.social_offset
            obj += norm_expr(social_usd, q)
        if latency:
            assert scenario.latency is not None  # the structure key says there is a latency term
            lat = weights.mu_latency * scenario.latency[pr.i, pr.j]
            obj += cp.sum(x @ lat)
        self.u: cp.Variable | None = None
        if allow_unserved:
            self.u = cp.Variable((T, J), nonneg=True, name="unserved")
            self.penalty = cp.Parameter(nonneg=True, name="penalty_usd_per_unit")
            cons.append(served + self.u == self.demand)
            obj += self.penalty * cp.sum(self.u)
        else:
            cons.append(served == self.demand)
        self.problem = cp.Problem(cp.Minimize(obj), cons)
        if not self.problem.is_dpp():
            raise AssertionError("offline program is not DPP; canonicalization could not be cached")

    def set_data(self, scenario: Scenario, weights: Weights) -> None:
        """Load a window of length T of ``scenario`` (same structure) into the parameters."""
        if scenario.T != self.T:
            raise ValueError(f"OfflineProblem built for T={self.T} h, got a window of {scenario.T} h")
        self.set_arrays(scenario, weights, scenario.price, scenario.carbon, scenario.water, scenario.demand,
                        scenario.demand.sum(axis=0))

    def set_arrays(self, scenario: Scenario, weights: Weights, price: np.ndarray, carbon: np.ndarray,
                   water: np.ndarray, demand: np.ndarray, total_demand: np.ndarray,
                   carbon_t: np.ndarray | None = None, water_m3: np.ndarray | None = None,
                   quality_sum: np.ndarray | None = None) -> None:
        """Load (T, N) price/carbon/water, (T, J) demand, the normalization Λ (J,) of the social cost
        and (with ``offsets``) the footprints before the window: carbon_t (N,), water_m3 (N,) and the
        quality-loss sums (J,), from ``scenario``'s static data and ``weights``."""
        sc = scenario
        self.price.value = (price * sc.pue).ravel()                       # (T, N) C order
        omega = sc.region_weights * sc.pue
        self.carbon.value = weights.mu_carbon * (carbon * omega).T
        self.water.value = weights.mu_water * (water * omega).T
        self._demand = np.asarray(demand, dtype=np.float64)
        self.demand.value = self._demand.sum(axis=1, keepdims=True) if self.aggregate else self._demand
        self.capacity.value = np.broadcast_to(sc.capacity, (len(price), sc.N))
        inv = np.divide(1.0, total_demand, out=np.zeros(sc.J), where=total_demand > 0)
        if self.social_scale is not None:
            self.social_scale.value = weights.mu_social * inv
        if self.penalty is not None:
            self.penalty.value = weights.unserved_penalty_usd
        if self.carbon_offset is not None and self.water_offset is not None:
            assert carbon_t is not None and water_m3 is not None, "offsets need carbon_t and water_m3"
            self.carbon_offset.value = weights.mu_carbon * sc.region_weights * carbon_t
            self.water_offset.value = weights.mu_water * sc.region_weights * water_m3
            if self.social_offset is not None:
                assert quality_sum is not None, "a social offset needs quality_sum"
                self.social_offset.value = weights.mu_social * quality_sum * inv

    def solve(self, solver: str, **opts) -> tuple[str, float, float, float]:
        """Solve with ``solver``; returns (status, objective, compile+overhead s, solver s)."""
        import cvxpy as cp  # noqa: PLC0415

        t0 = time.perf_counter()
        try:
            # warm_start=False: cvxpy hands HiGHS the previous primal solution, which made a re-solve
            # with new weights 8x slower than a cold solve at 8760 h (7.9 s against 0.9 s)
            self.problem.solve(solver=solver, **{"canon_backend": "COO", "warm_start": False, **opts})
        except cp.SolverError as exc:  # the solver crashed or gave up
            return f"solver_error ({str(exc).splitlines()[0][:120]})", math.nan, time.perf_counter() - t0, 0.0
        wall = time.perf_counter() - t0
        st = self.problem.solver_stats.solve_time or 0.0
        return self.problem.status, float(self.problem.value) if self.problem.value is not None else math.nan, \
            wall - st, st

    def schedule(self, rows: slice = slice(None)) -> np.ndarray:
        """The solved routing x[t, i, j, k] (load units) of the slots ``rows`` of the window."""
        if self.x.value is None:
            raise SolverError("OfflineProblem.schedule: there is no solution; solve first and check its status")
        xp = np.maximum(self.x.value[rows], 0.0)
        if not self.aggregate:
            return self.pairs.scatter(xp)
        lam = self._demand[rows]                                            # (T', J)
        tot = lam.sum(axis=1, keepdims=True)
        share = np.divide(lam, tot, out=np.zeros_like(lam), where=tot > 0)
        return (xp[:, :, None] * share[:, None, :])[..., None]


_CACHE: dict[tuple, OfflineProblem] = {}
_CACHE_SIZE = 4


def _problem_for(scenario: Scenario, weights: Weights, allow_unserved: bool) -> OfflineProblem:
    key = _structure_key(scenario, scenario.T, weights, allow_unserved)
    prob = _CACHE.get(key)
    if prob is None:
        prob = OfflineProblem(scenario, scenario.T, weights, allow_unserved)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = prob
    return prob


def check_reachable(scenario: Scenario) -> None:
    """Raise :class:`InfeasibleError` naming the first slot and region whose demand exceeds the capacity
    it can reach (per region, and for all regions together). Necessary conditions, checked quickly."""
    sc = scenario
    cap_units = sc.capacity[:, None] / sc.energy_per_unit[None, :]       # (N, K) load units
    reach = (sc.allowed * cap_units[:, None, :]).max(axis=2).sum(axis=0)  # (J,) upper bound
    bad = sc.demand > reach[None, :] * (1 + 1e-9) + 1e-12
    if bad.any():
        t, j = (int(v) for v in np.argwhere(bad)[0])
        raise InfeasibleError(
            f"scenario {sc.name!r}: slot t={t} ({sc.timestamps[t]} UTC), region {sc.region_names[j]!r}: "
            f"demand {sc.demand[t, j]:.6g} load units exceeds the reachable capacity {reach[j]:.6g} and "
            f"unserved load is not allowed")
    total_cap = cap_units.max(axis=1)[sc.allowed.any(axis=(1, 2))].sum()
    tot = sc.demand.sum(axis=1)
    bad_t = tot > total_cap * (1 + 1e-9) + 1e-12
    if bad_t.any():
        t = int(np.argmax(bad_t))
        j = int(np.argmax(sc.demand[t]))
        raise InfeasibleError(
            f"scenario {sc.name!r}: slot t={t} ({sc.timestamps[t]} UTC): total demand {tot[t]:.6g} exceeds total "
            f"capacity {total_cap:.6g} (largest region {sc.region_names[j]!r}) and unserved load is not allowed")


def _diagnose_slots(scenario: Scenario, tol: float = 1e-7) -> None:
    """Exact per-slot check (max servable load by LP); raise naming the first slot/region short."""
    router = SlotRouter(scenario, penalty_usd=1.0)
    zero = np.zeros(router.pairs.P)
    for t in range(scenario.T):
        xp = router.route_pairs(zero, scenario.demand[t])
        short = scenario.demand[t] - xp @ router.pairs.demand_matrix
        if short.max() > tol * max(1.0, scenario.demand[t].max()):
            j = int(np.argmax(short))
            raise InfeasibleError(
                f"scenario {scenario.name!r}: slot t={t} ({scenario.timestamps[t]} UTC), region "
                f"{scenario.region_names[j]!r}: {short[j]:.6g} load units cannot be placed within the capacity "
                f"it can reach and unserved load is not allowed")


def solve_with_fallback(prob: OfflineProblem, q: float, solver: str | None = None,
                        **solver_opts) -> tuple[bool, str, str, float, float, float, list[str]]:
    """Try the solvers of :func:`solver_order` in turn until one returns an optimal status.

    Returns (ok, solver, status, objective, compile s, solve s, attempts); warns on a fallback and on
    an inaccurate optimum.
    """
    import cvxpy as cp  # noqa: PLC0415

    ok_status = (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    attempts: list[str] = []
    status, value, compile_s, solve_s, s = "not solved", math.nan, 0.0, 0.0, ""
    for n, s in enumerate(solver_order(q, solver)):
        # the options are settings of the first solver tried (by name): a fallback solver runs at its defaults
        # (SCS refuses Clarabel's ``tol_gap_abs`` with a TypeError, which would end the fallback chain)
        status, value, c_s, solve_s = prob.solve(s, **(solver_opts if n == 0 else {}))
        compile_s += c_s
        attempts.append(f"{s}: {status}")
        if status in ok_status and prob.x.value is not None:
            if len(attempts) > 1:
                warnings.warn(f"offline solve: fell back to {s} after {'; '.join(attempts[:-1])}",
                              RuntimeWarning, stacklevel=3)
            if status != cp.OPTIMAL:
                warnings.warn(f"offline solve: {s} returned {status}", RuntimeWarning, stacklevel=3)
            return True, s, status, value, compile_s, solve_s, attempts
    return False, s, status, value, compile_s, solve_s, attempts


def choose_method(scenario: Scenario, solver: str | None = None, method: str = "auto",
                  weights: Weights | None = None) -> str:
    """The path of the offline solve: ``method`` unless it is ``"auto"``; then the matrix-form program when
    no cvxpy solver is requested and the window has at least :data:`DIRECT_MIN_PAIR_SLOTS` allowed pairs ×
    hours (``"blockipm"`` where the weights' q is one it handles, q in {1, 2, inf}, else ``"direct"``),
    else the cvxpy reference."""
    method = one_of("method", method, METHODS)
    if method != "auto":
        return method
    if solver is not None:
        return "cvxpy"
    pairs = int(np.count_nonzero(scenario.allowed))
    if pairs * scenario.T < DIRECT_MIN_PAIR_SLOTS:
        return "cvxpy"
    return "blockipm" if blockipm_applies(weights_in_force(scenario, weights).q) else "direct"


def solve_offline(scenario: Scenario, weights: Weights | None = None, solver: str | None = None,
                  allow_unserved: bool = True, method: str = "auto", **solver_opts) -> OfflineResult:
    """Solve the offline program on the whole of ``scenario`` (a window) and account it by the ledger.

    Args:
        scenario: the window to solve (use ``scenario.window``/``split`` first).
        weights: objective weights (default: the scenario's).
        solver: try this solver first (default by class: HIGHS for q in {1, inf}, else CLARABEL). With
            ``method="auto"`` naming a solver selects the cvxpy program; with ``method="direct"`` it must
            be HIGHS or CLARABEL.
        allow_unserved: unserved load is a variable at ``weights.unserved_penalty_usd`` per unit; with
            False an instance whose demand cannot be placed raises :class:`InfeasibleError`.
        method: ``"auto"`` (:func:`choose_method`), ``"direct"`` (the matrix-form program, no cvxpy),
            ``"blockipm"`` (the same program, the block interior point first) or ``"cvxpy"`` (the
            reference program).
        solver_opts: passed to ``problem.solve`` (cvxpy) or to the solver (direct: HiGHS options or
            Clarabel settings by name; with options or a named solver the block interior point is
            skipped).

    Raises:
        OptionError: an unknown ``method``, or a ``solver`` the chosen path does not have.
        InfeasibleError: (allow_unserved=False) naming the slot and region.
        SolverError: every solver failed; the message lists each attempt and its status.
    """
    w = weights_in_force(scenario, weights)
    path = choose_method(scenario, solver, method, w)
    if path == "blockipm" and (solver is not None or solver_opts or not blockipm_applies(w.q)):
        path = "direct"                  # options and solvers name the direct program's solvers
    if path == "direct" and solver is not None:
        solver = check_solver(solver)
        if solver not in DIRECT_SOLVERS:
            raise OptionError(f"solver={solver!r} with method='direct': the direct program is solved by one of "
                              f"{list(DIRECT_SOLVERS)}; use method='cvxpy' for other solvers")
    if not allow_unserved:
        check_reachable(scenario)
    if path in ("direct", "blockipm"):
        return _solve_direct(scenario, w, solver, allow_unserved, solver_opts, path == "blockipm")
    t_start = time.perf_counter()
    prob = _problem_for(scenario, w, allow_unserved)
    t_build = time.perf_counter() - t_start
    prob.set_data(scenario, w)
    ok, s, status, value, compile_s, solve_s, attempts = solve_with_fallback(prob, w.q, solver, **solver_opts)
    if ok:
        x = prob.schedule()
        report = _account(scenario, x, w, s, value)
        return OfflineResult(
            schedule=x, report=report, status=status, solver=s,
            solver_objective_usd=value, compile_time_s=compile_s + t_build, solve_time_s=solve_s,
            wall_time_s=time.perf_counter() - t_start, attempts=attempts)
    if not allow_unserved:
        _diagnose_slots(scenario)
    raise SolverError(f"offline solve of {scenario.name!r} (T={scenario.T} h, q={w.q}) failed with every "
                      f"solver: {'; '.join(attempts)}")


def _account(scenario: Scenario, x: np.ndarray, w: Weights, solver: str, value: float) -> Report:
    """The ledger's report of ``x``, warning when the solver's value differs from it beyond tolerances."""
    report = evaluate(scenario, x, w)
    if abs(report.objective_usd - value) > 1e-5 * max(1.0, abs(report.objective_usd)):
        warnings.warn(f"offline solve: {solver} reported {value:.6f} USD but its schedule accounts to "
                      f"{report.objective_usd:.6f} USD by the ledger (solver tolerances)",
                      RuntimeWarning, stacklevel=3)
    return report


def _solve_direct(scenario: Scenario, w: Weights, solver: str | None, allow_unserved: bool,
                  solver_opts: dict, blockipm: bool = False) -> OfflineResult:
    """The direct path of :func:`solve_offline`: build, solve (the block interior point first when
    ``blockipm``, then HiGHS/Clarabel, in order), account."""
    t_start = time.perf_counter()
    prog = DirectProgram(scenario, w, allow_unserved)
    t_layout = time.perf_counter() - t_start
    out = solve_blockipm(prog) if blockipm else prog.solve(solver, solver_opts)
    if blockipm and not out.ok:
        first = out
        out = prog.solve(solver, solver_opts)
        out.attempts = first.attempts + out.attempts
        out.build_time_s += first.build_time_s
        out.solve_time_s += first.solve_time_s
    if not out.ok or out.schedule is None:
        if not allow_unserved:
            _diagnose_slots(scenario)
        raise SolverError(f"offline solve of {scenario.name!r} (T={scenario.T} h, q={w.q}, direct program) did not "
                          f"reach an optimum: {'; '.join(out.attempts)}")
    if len(out.attempts) > 1:
        warnings.warn(f"offline solve: fell back to {out.solver} after {'; '.join(out.attempts[:-1])}",
                      RuntimeWarning, stacklevel=3)
    report = _account(scenario, out.schedule, w, out.solver, out.objective_usd)
    return OfflineResult(
        schedule=out.schedule, report=report, status=out.status, solver=out.solver,
        solver_objective_usd=out.objective_usd, compile_time_s=out.build_time_s + t_layout,
        solve_time_s=out.solve_time_s, wall_time_s=time.perf_counter() - t_start, attempts=out.attempts,
        method="blockipm" if out.solver == BLOCKIPM_SOLVER else "direct")
