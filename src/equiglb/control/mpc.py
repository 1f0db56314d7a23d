"""Model-predictive control: receding-horizon offline optimization on forecasts.

Each slot t, MPC solves the offline program on the window [t, t+H): slot t with its true data (known
when routing, as for every online policy), slots t+1 .. t+H-1 with the forecasts issued at t by an
:class:`equiglb.forecast.Forecaster` (``forecast_model="calibrated"`` by default, ``"persistence"``, or
``"perfect"``, an oracle; docs/forecasts.md) or, with ``noise_std > 0``, the legacy independent noise of
:func:`equiglb.forecast.forecast`, the footprints accumulated before t as constants inside the equity
norms, and applies the first slot. Slots past the end of the episode get zero demand.

The social cost's normalization Λ_j (the window's total demand) is estimated as the demand seen and
forecast so far, scaled to the episode length.

The per-slot program is solved behind one seam, chosen once per (structure, H, weights) by
:func:`make_mpc_solver`:

* :class:`CvxpyMPCSolver`, the **reference**: the parameterized cvxpy program
  :class:`~equiglb.control.offline.OfflineProblem` of length H, compiled once and re-solved with new
  parameter values (every structure and q; solver fallback as for the offline optimum);
* :class:`AggregateLPSolver`, the **accelerator** where it applies (one model, every region reaching
  a site, no social or latency term, q in {1, inf}: the synthetic and eGLB-2022 scenarios, full or partial
  mask): the same program aggregated over region classes (regions with the same mask column merged: demand
  summed, one unserved load per class, the class's load split among its regions in proportion to their
  demand; exact; a full mask is one class, the offline program's own aggregation), written as a linear
  program in matrix form and handed to HiGHS directly (per slot on 120 h of the test windows, against the
  cvxpy program: 18x and 10x faster at H = 6 and 24 with the synthetic full mask, 8x and 4x with the
  eGLB-2022 partial mask; ``benchmarks/mpc_time.py``);
* :class:`AggregateConeSolver`, the accelerator at **q = 2** on the same structure (full or partial mask): the
  aggregated program with its norms as second-order cones, solved by the dense interior-point method of
  :mod:`equiglb.control.socipm` (at H = 24 on the synthetic and eGLB-2022 test windows about 0.35 ms per slot
  cold and 0.26 warm-started, 20x faster than DirectMPCSolver's Clarabel; on the eGLB-2022 partial mask 3.5 and
  2.0 ms, 4.6x; ``benchmarks/mpc_time.py``);
* :class:`DirectMPCSolver`, for **every other structure** (several models, a social or latency term, any other
  q: the ``world`` and ``synthetic-multimodel`` scenarios): the offline program's matrix
  form (:class:`~equiglb.control.offline_direct.DirectProgram`) of length H with the footprints so far as
  offsets inside the norms, handed to HiGHS (q in {1, inf}) or Clarabel (cones) without cvxpy.

Tests pin each to the reference (tests/test_mpc_solver.py, tests/test_socipm.py); ``solver=`` names a cvxpy solver and
forces the reference.

:class:`MPCCore` is one MPC run over a window (its footprints so far and the demand seen), shared by
:class:`equiglb.baselines.mpc.MPCPolicy` and the environment's ``action_mode="mpc_residual"``
(:class:`equiglb.envs.slot.MPCResidualStep`), which multiplies the equity coefficients of each site
(and region) in the program by the action's factors before the solve; factors of 1 are MPC exactly.
"""

from __future__ import annotations

import math

import highspy
import numpy as np
from numba import njit

from equiglb.control import MAX_HORIZON_H, MAX_TAIL_DAYS, TAIL_BLOCK_HOURS
from equiglb.control.densesimplex import AT_LOWER, BASIC, OPTIMAL, SINGULAR, dual_simplex
from equiglb.control.offline import OfflineProblem, SolverError, _structure_key, solve_with_fallback
from equiglb.control.offline_direct import DirectProgram, _classes, pass_lp
from equiglb.control.socipm import OPTIMAL as SOC_OPTIMAL
from equiglb.control.socipm import REDUCED as SOC_REDUCED
from equiglb.control.socipm import soc_ipm
from equiglb.forecast import Forecaster, forecast
from equiglb.ledger import Ledger
from equiglb.scenario import Scenario, Weights
from equiglb.validate import OptionError, as_float, as_int, one_of

__all__ = ["MPCCore", "MPCSolver", "MPCWindow", "CvxpyMPCSolver", "AggregateLPSolver", "AggregateConeSolver",
           "DirectMPCSolver", "HistoryTail", "make_mpc_solver", "MAX_HORIZON_H", "MAX_TAIL_DAYS",
           "TAIL_BLOCK_HOURS"]


class MPCWindow:
    """The data of one MPC program: slots t .. t+H-1 of a window (true slot t, forecasts after it).

    Attributes (arrays of H rows): ``price`` (USD/MWh), ``carbon`` (t/MWh), ``water`` (m³/MWh),
    ``demand`` (load units, zero past the window's end); ``total`` (J,) the estimated window demand Λ;
    the footprints before t: ``carbon_t`` (N,) t, ``water_m3`` (N,) m³, ``quality_sum`` (J,); and the
    multipliers of the equity coefficients ``carbon_scale``, ``water_scale`` (N,) and ``social_scale``
    (J,), ones for plain MPC; ``capacity`` (H, N) IT MWh of each slot (the scenario's in the window's slots;
    a history tail's slot stands for several hours and has their capacity, :class:`HistoryTail`).
    :class:`MPCCore` hands the solvers every
    load-proportional quantity (demand, footprints, capacity) divided by the program's total demand,
    so that solver tolerances are relative whatever the scenario's unit; every term of the program is
    positively homogeneous in them, so the solution scales back exactly.
    """

    __slots__ = ("price", "carbon", "water", "demand", "total", "carbon_t", "water_m3", "quality_sum",
                 "carbon_scale", "water_scale", "social_scale", "capacity")

    def __init__(self, price: np.ndarray, carbon: np.ndarray, water: np.ndarray, demand: np.ndarray,
                 total: np.ndarray, carbon_t: np.ndarray, water_m3: np.ndarray, quality_sum: np.ndarray,
                 carbon_scale: np.ndarray, water_scale: np.ndarray, social_scale: np.ndarray,
                 capacity: np.ndarray):
        self.capacity = capacity
        self.price, self.carbon, self.water, self.demand, self.total = price, carbon, water, demand, total
        self.carbon_t, self.water_m3, self.quality_sum = carbon_t, water_m3, quality_sum
        self.carbon_scale, self.water_scale, self.social_scale = carbon_scale, water_scale, social_scale


class CvxpyMPCSolver:
    """Reference MPC solver: :class:`OfflineProblem` of length H with offsets, compiled once.

    Args:
        scenario: a window of the structure to solve (its static data are used).
        H: the look-ahead in hours.
        weights: the objective weights.
        solver: first cvxpy solver to try (default by problem class, with fallback).
        solver_opts: passed to each solve (e.g. tighter tolerances for a reference optimum).
    """

    def __init__(self, scenario: Scenario, H: int, weights: Weights, solver: str | None = None,
                 solver_opts: dict | None = None):
        self.H, self.weights, self.solver = H, weights, solver
        self.solver_opts = dict(solver_opts or {})
        self.key = _structure_key(scenario, H, weights, True)
        self.prob = OfflineProblem(scenario, H, weights, allow_unserved=True, offsets=True)
        self.solvers_used: dict[str, int] = {}
        #: the reference solves every slot from scratch: no receding window to move, no warm start (an
        #: accelerated solver's attributes, kept here so that any solver can be configured alike)
        self.window, self.warm_start = H, False

    def forget(self) -> None:
        """Start the next slot cold, as a new run: every solver has it; the reference keeps nothing between
        slots."""

    def first_slot(self, scenario: Scenario, data: MPCWindow, t: int) -> np.ndarray:
        """Solve the program of ``data`` and return its first slot's routing x (N, J, K); ``t`` names
        the slot in errors."""
        prob, w = self.prob, self.weights
        prob.set_arrays(scenario, w, data.price, data.carbon, data.water, data.demand, data.total,
                        data.carbon_t, data.water_m3, data.quality_sum)
        prob.capacity.value = data.capacity
        # the multipliers scale each site's (region's) equity coefficients and its offset alike
        for param, offset, s in ((prob.carbon, prob.carbon_offset, data.carbon_scale),
                                 (prob.water, prob.water_offset, data.water_scale)):
            if not np.all(s == 1.0):
                param.value = param.value * s[:, None]
                assert offset is not None
                offset.value = offset.value * s
        if prob.social_scale is not None and not np.all(data.social_scale == 1.0):
            prob.social_scale.value = prob.social_scale.value * data.social_scale
            assert prob.social_offset is not None
            prob.social_offset.value = prob.social_offset.value * data.social_scale
        ok, solver, status, _, _, _, attempts = solve_with_fallback(prob, w.q, self.solver, **self.solver_opts)
        if not ok:
            raise SolverError(f"MPC at slot t={t}: every solver failed: {'; '.join(attempts)}")
        self.solvers_used[solver] = self.solvers_used.get(solver, 0) + 1
        return prob.schedule(slice(0, 1))[0]



def _shift_slots(values: np.ndarray, blocks: list[tuple[int, int]], H: int) -> np.ndarray:
    """A copy of ``values`` with each slot-major block (first index, entries per slot; H slots) moved one slot
    ahead: its slot 0 dropped and its last slot repeated. The other entries are kept."""
    out = values.copy()
    for first, width in blocks:
        out[first:first + (H - 1) * width] = values[first + width:first + H * width]
    return out


def _moving_slots(H: int, window: int | None) -> int:
    """The slots a warm start moves one slot ahead: the receding ``window`` (default all H slots of the program).
    The slots after it (a history tail, :class:`HistoryTail`) keep their place: a tail's slot t+1 holds nearly the
    hours of its slot t (its days of history move by one hour), so its previous status is the better guess."""
    if window is None:
        return H
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or not 1 <= window <= H:
        raise OptionError(f"window={window!r}: expected the program's receding slots, an integer in 1 .. {H}")
    return int(window)


def _shift_statuses(status: np.ndarray, col_blocks: list[tuple[int, int]], row_blocks: list[tuple[int, int]],
                    H: int, n_row: int, basic: int, lower: int) -> np.ndarray | None:
    """The previous slot's optimal basis moved one slot ahead: a warm start for the next program.

    ``status`` holds the column then the row statuses (integer codes, ``basic`` and ``lower`` among them);
    ``col_blocks`` and ``row_blocks`` are (first index, entries per slot) of the slot-major blocks (H slots each)
    among the columns and among the rows. Each block's slot 0 is dropped and its last slot repeated; other
    entries keep their status. The count of basic entries is restored on the last slot's columns (a basic one
    made ``lower``, a nonbasic one made ``basic``); None when that fails (a cold start then)."""
    n_col = len(status) - n_row
    st = _shift_slots(status, col_blocks + [(n_col + f, w) for f, w in row_blocks], H)
    n_basic = int(np.count_nonzero(st == basic))
    for first, width in col_blocks:
        for c in range(first + (H - 1) * width, first + H * width):
            if n_basic == n_row:
                break
            if n_basic > n_row and st[c] == basic:
                st[c], n_basic = lower, n_basic - 1
            elif n_basic < n_row and st[c] != basic:
                st[c], n_basic = basic, n_basic + 1
    return st if n_basic == n_row else None


#: HiGHS's basis statuses by their integer value (kLower 0, kBasic 1, kUpper 2, kZero 3, kNonbasic 4): a list
#: lookup builds the 1,010 column statuses of the eGLB-2022 partial-mask LP (H = 24) in about 0.04 ms, the enum's
#: constructor in about 1 ms (one loaded run); the whole shift of that basis 1.38 ms against 1.67 with the former
#: lists of enums, whose comparisons were the cost
_HIGHS_STATUS = [highspy.HighsBasisStatus(v) for v in range(5)]


def _shifted_basis(basis: highspy.HighsBasis, col_blocks: list[tuple[int, int]], row_blocks: list[tuple[int, int]],
                   H: int, n_row: int) -> highspy.HighsBasis | None:
    """:func:`_shift_statuses` of a HiGHS basis (None when it is not valid or the shift fails)."""
    if not basis.valid:
        return None
    codes = np.array([s.value for s in basis.col_status] + [s.value for s in basis.row_status], dtype=np.int64)
    Status = highspy.HighsBasisStatus
    st = _shift_statuses(codes, col_blocks, row_blocks, H, n_row, Status.kBasic.value, Status.kLower.value)
    if st is None:
        return None
    n_col, table = len(codes) - n_row, _HIGHS_STATUS
    out = highspy.HighsBasis()
    out.col_status = [table[v] for v in st[:n_col].tolist()]
    out.row_status = [table[v] for v in st[n_col:].tolist()]
    return out


#: HiGHS's presolve on the per-slot LPs: "off" (on these small programs it cost more than it saved: 1.47 -> 0.89 ms
#: per slot for the aggregated LP at H = 24, 25.7 -> 20.5 ms for the eGLB-2022 partial-mask LP). The same vertices
#: as with "choose" (HiGHS's default) on the synthetic runs measured, but not bit for bit: routings differ by up
#: to 2e-13 of a site's load, J by at most 4e-16 (relative) over 240 slots.
#:
#: Nothing else measured on these LPs paid (the 120 per-slot LPs of 120 h at H = 24, synthetic 266 x 44 and
#: eGLB-2022 partial, re-solved from a cold start): the primal simplex took 3.5x (synthetic) and 1.9x (partial)
#: the dual's time, the interior point 4.4x and 1.8x; Devex or Dantzig pricing, the other scaling, crash and
#: price strategies and no cost perturbation were within 10 % (the same J to 1e-14); a HiGHS model kept from slot
#: to slot (costs, bounds and rows changed in place, then a cold start) was slower to update than a new model is
#: to pass (0.39 against 0.11 ms at H = 24) and not the same vertex bit for bit. A HiGHS run costs about 0.19 ms
#: even on a one-variable LP (its setup), which bounds any per-slot LP from below.
LP_PRESOLVE = "off"

#: The per-slot LPs of :class:`AggregateLPSolver` with at most this many rows go to the dense dual simplex of
#: :mod:`equiglb.control.densesimplex` (a full mask: H + 2N rows, 44 at H = 24 with 10 sites), larger ones to HiGHS.
#: Its iteration costs O(rows²) against HiGHS's setup of about 0.19 ms per run: at H = 24 on 120 h of the synthetic
#: test window, 0.50-0.68 ms per slot against 0.86 (cold) and 0.26-0.29 against 0.68 (warm start) with HiGHS, two
#: quiet runs (``benchmarks/mpc_time.py``). The eGLB-2022 partial mask's LP (380 rows, 1,010 columns at H = 24) stays
#: with HiGHS: on the dense path it took 151-154 ms per slot cold and 60-62 warm against HiGHS's 7.2-7.6 and 4.6-5.1
#: (120 h of its test window, the same J, one run under load: a ratio, not a time).
DENSE_MAX_ROWS = 96
#: the dense dual simplex's iteration limit per slot (then the slot is solved by HiGHS)
DENSE_MAX_ITER = 5_000


def _quiet_highs() -> highspy.Highs:
    """A HiGHS instance for the per-slot LPs: silent, presolve :data:`LP_PRESOLVE`."""
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    hs.setOptionValue("presolve", LP_PRESOLVE)
    return hs


class _RegionClasses:
    """The region classes of a one-model program (the regions with the same mask column; a full mask is one class),
    shared by the aggregated solvers: the class sums of a per-region series and the split of a class's load among
    its regions in proportion to their demand."""

    N: int
    J: int
    G: int
    P: int
    weights: Weights
    classes: list[np.ndarray]
    class_of: np.ndarray
    site_of: np.ndarray
    cls_of: np.ndarray

    @staticmethod
    def _one_model(scenario: Scenario, weights: Weights) -> bool:
        """The structure both aggregated solvers need: one model, no social or latency term, every region
        reaching a site."""
        social = scenario.social_in_force(weights)
        latency = bool(weights.mu_latency) and scenario.latency is not None
        return (scenario.K == 1 and not social and not latency
                and bool(scenario.allowed[:, :, 0].any(axis=0).all()))

    @staticmethod
    def _class_reach(sc: Scenario) -> tuple[list[np.ndarray], np.ndarray]:
        """The region classes (regions with the same mask column, in order of first region) and the sites each
        reaches, (N, G)."""
        classes = _classes(sc, latency=False)
        return classes, np.stack([sc.allowed[:, members[0], 0] for members in classes], axis=1)

    def _set_classes(self, sc: Scenario) -> np.ndarray:
        """Set the classes and the allowed (site, class) pairs p (``site_of``, ``cls_of``); returns the mask of the
        classes (N, G)."""
        self.N, self.J = sc.N, sc.J
        #: the region classes (regions with the same mask column), in order of first region
        self.classes, reach = self._class_reach(sc)
        self.G = len(self.classes)
        self.class_of = np.empty(sc.J, dtype=np.int64)
        for g, members in enumerate(self.classes):
            self.class_of[members] = g
        self.site_of, self.cls_of = np.nonzero(reach)                      # the allowed (site, class) pairs p
        self.P = len(self.site_of)
        return reach

    def _class_sums(self, lam: np.ndarray) -> np.ndarray:
        """The per-region ``lam`` (..., J) summed over each class: (..., G). A class of every region (a full mask)
        is summed as ``lam.sum(axis=-1)``, as the aggregated LP always was: numpy's sum of a copy can differ from
        the sum of a strided view in the last bit, and full-mask routings stay the same bit for bit."""
        if self.G == 1 and len(self.classes[0]) == self.J:
            return lam.sum(axis=-1)[..., None]                            # the same numbers, without the stack
        return np.stack([lam.sum(axis=-1) if len(members) == self.J else lam[..., members].sum(axis=-1)
                         for members in self.classes], axis=-1)

    def _unit_terms(self, scenario: Scenario, data: MPCWindow) -> tuple[float, np.ndarray, np.ndarray, np.ndarray,
                                                                         np.ndarray, np.ndarray]:
        """The program's terms per load unit: the IT MWh per load unit ``e``, the energy price ``price`` (H, N) and
        the equity coefficients ``coef_c``, ``coef_w`` (H, N) in USD per load unit at each site and slot (the norms'
        entries: μ ω, the multiplier, facility MWh and the intensity), and the footprints so far as the norms'
        offsets ``off_c``, ``off_w`` (N,) in USD."""
        w = self.weights
        e = float(scenario.energy_per_unit[0])
        mwh = e * scenario.pue                                                 # facility MWh per load unit at site i
        omega = scenario.region_weights
        coef_c = (w.mu_carbon * omega * data.carbon_scale) * mwh * data.carbon     # (H, N) USD per load unit
        coef_w = (w.mu_water * omega * data.water_scale) * mwh * data.water
        off_c = w.mu_carbon * omega * data.carbon_scale * data.carbon_t
        off_w = w.mu_water * omega * data.water_scale * data.water_m3
        return e, data.price * mwh, coef_c, coef_w, off_c, off_w

    def _split(self, pair_load: np.ndarray, lam0: np.ndarray) -> np.ndarray:
        """Slot 0's routing (N, J, 1) from its load per (site, class) pair ``pair_load`` (P,): each class's load
        at a site split among its regions in proportion to their demand ``lam0`` (J,)."""
        load = np.zeros((self.N, self.G))
        load[self.site_of, self.cls_of] = np.maximum(pair_load, 0.0)              # slot 0's x[i, g]
        tot0 = self._class_sums(lam0)[self.class_of]
        share = np.divide(lam0, tot0, out=np.zeros(self.J), where=tot0 > 0)  # each region's part of its class
        return (np.take(load, self.class_of, axis=1) * share[None, :])[..., None]      # C order, as sums expect


class AggregateLPSolver(_RegionClasses):
    """Accelerator of :class:`CvxpyMPCSolver` where :meth:`applies` (one model, no social or latency term,
    q in {1, inf}; any mask in which every region reaches a site): the program aggregated over **region
    classes** as one LP in matrix form, solved by HiGHS (highspy) directly.

    A region class is the regions with the same allowed sites (the same column of the mask; a full mask is
    one class). The program's objective reads the site totals only and unserved load is penalised linearly
    at one price per load unit, so the regions of a class are interchangeable: the program is solved for one
    region per class (its demand the class's sum, one unserved load per class and slot) and the class's load
    at each site is split among its regions in proportion to their demand. Any per-region solution sums to a
    class solution of the same cost, and the pro-rata split of a class solution (unserved load included) is a
    per-region solution with the same site totals and unserved total, so the optimum is the per-region
    program's (:class:`OfflineProblem`; with a full mask its own aggregation, the same J(x)).

    Columns: the load x[t, p] of every allowed (site, class) pair p (H·P), for q = inf the load S[t, i] of
    every site that several classes reach, the unserved load u[t, g] (H·G), and for q = inf the epigraph
    variables z_c, z_w of the two maxima. Rows: demand ``Σ_i x[t, i, g] + u[t, g] = Λ[t, g]`` (H·G); per slot
    and site that several classes reach, ``S[t, i] - Σ_g x[t, i, g] = 0`` (q = inf; S bounded by the
    capacity) or the capacity ``Σ_g e x[t, i, g] <= M_i`` (q = 1); the capacity of a site that one class
    reaches is its x column's bound; for q = inf ``s_i (offset_i + Σ_t coef[t, i] L[t, i]) - z <= 0`` per
    site and footprint, L the site's S or its one x column. For q = 1 the norms are sums and the footprint
    coefficients join the energy cost. Where several splits among classes are
    optimal the routing may differ from the cvxpy program's while J is the same (tests pin J and the site
    loads).
    """

    @staticmethod
    def applies(scenario: Scenario, weights: Weights) -> bool:
        """Whether the accelerator covers this structure and these weights."""
        return weights.q in (1.0, math.inf) and _RegionClasses._one_model(scenario, weights)

    def __init__(self, scenario: Scenario, H: int, weights: Weights, window: int | None = None):
        self.H, self.weights = H, weights
        #: the receding window's slots, moved one slot ahead by a warm start (:func:`_moving_slots`)
        self.window = _moving_slots(H, window)
        self.key = _structure_key(scenario, H, weights, True)
        sc, N = scenario, scenario.N
        reach = self._set_classes(sc)
        G, P = self.G, self.P
        shared = reach.sum(axis=1) > 1                                     # sites with a row per slot
        self._shared = shared_sites = np.nonzero(shared)[0]
        n_sh = len(shared_sites)
        self.maxima = weights.q == math.inf
        #: q = inf: the site total of a shared site is a column S[t, i] (bounded by the capacity; its row
        #: S - Σ_g x = 0) that carries the price and the footprints, so that the footprint rows have an entry per
        #: slot and site, not per pair: at H = 24 on 120 h of the eGLB-2022 partial test window, 9.5 ms per slot
        #: against 12.0 with capacity rows (online eGLB 0.95 ms in the same runs; the same 2.7 ms at H = 6).
        #: q = 1 (no footprint rows): a capacity row Σ_g e x <= M (6.1 ms per slot at H = 24, 7.5 with S columns)
        self.site_cols = self.maxima and n_sh > 0
        nx, nu, ns = H * P, H * G, (H * n_sh if self.site_cols else 0)
        self.c_u = nx + ns                                                 # first u column (after x and S)
        self.n_col = self.c_u + nu + (2 if self.maxima else 0)
        self.r_cap = H * G                                                 # first row of the shared sites
        self.r_foot = self.r_cap + H * n_sh                                # first footprint row (q = inf)
        self.n_row = self.r_foot + (2 * N if self.maxima else 0)
        # the fixed sparsity, as (column, row, value) triplets in compressed-column order (rows ascending)
        t_of, p_of = np.divmod(np.arange(nx), P)
        i_of, g_of = self.site_of[p_of], self.cls_of[p_of]
        xs = np.nonzero(shared[i_of])[0]                                   # x columns at shared sites
        site_row = self.r_cap + t_of[xs] * n_sh + np.searchsorted(shared_sites, i_of[xs])
        e = float(sc.energy_per_unit[0])
        cols = [np.arange(nx), xs]
        rows = [t_of * G + g_of, site_row]                                 # x[t, p] -> demand row t G + g, site row
        vals = [np.ones(nx), np.full(len(xs), -1.0 if self.site_cols else e)]   # capacity rows: IT MWh per unit
        xb = np.nonzero(~shared[i_of])[0]                                  # x columns at sites one class reaches
        if self.site_cols:
            ts, ks = np.divmod(np.arange(ns), n_sh)
            # the columns of the price and footprints, and those bounded by their site's capacity: x[t, p] at the
            # sites one class reaches, and S
            carrier = np.concatenate([xb, nx + np.arange(ns)])
            self._t_c, self._i_c = np.concatenate([t_of[xb], ts]), np.concatenate([i_of[xb], shared_sites[ks]])
            self._bounded, self._bounded_t, self._bounded_site = carrier, self._t_c, self._i_c
            cols.append(nx + np.arange(ns))
            rows.append(self.r_cap + np.arange(ns))                        # S[t, k] -> its site row
            vals.append(np.ones(ns))
        else:
            carrier, self._t_c, self._i_c = np.arange(nx), t_of, i_of
            self._bounded, self._bounded_t, self._bounded_site = xb, t_of[xb], i_of[xb]
        self._carrier = carrier
        n_fixed = sum(len(c) for c in cols)
        if self.maxima:
            cols += [carrier, carrier]
            rows += [self.r_foot + self._i_c, self.r_foot + N + self._i_c]
            vals += [np.zeros(2 * len(carrier))]                          # the footprint coefficients, per slot
        cols.append(self.c_u + np.arange(nu))                              # u[t, g] -> demand row t G + g
        rows.append(np.arange(nu))
        vals.append(np.ones(nu))
        if self.maxima:
            cols += [np.full(N, self.c_u + nu), np.full(N, self.c_u + nu + 1)]
            rows += [self.r_foot + np.arange(N), self.r_foot + N + np.arange(N)]
            vals.append(np.full(2 * N, -1.0))                              # the -z entries
        col, row = np.concatenate(cols), np.concatenate(rows)
        order = np.lexsort((row, col))
        self.index = row[order].astype(np.int32)
        self.values = np.concatenate(vals)[order]
        self.start = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=self.n_col))]).astype(np.int32)
        at = np.empty(len(order), dtype=np.int64)
        at[order] = np.arange(len(order))                                  # a triplet's entry
        n_c = len(carrier)
        self._carbon_at = at[n_fixed:n_fixed + n_c] if self.maxima else at[:0]
        self._water_at = at[n_fixed + n_c:n_fixed + 2 * n_c] if self.maxima else at[:0]
        self.col_lower = np.zeros(self.n_col)
        self.col_upper = np.full(self.n_col, highspy.kHighsInf)
        self.row_lower = np.full(self.n_row, -highspy.kHighsInf)
        self.row_upper = np.zeros(self.n_row)
        if self.site_cols:
            self.row_lower[self.r_cap:self.r_foot] = 0.0                   # S - Σ_g x = 0
        self.highs = _quiet_highs()
        self.solvers_used: dict[str, int] = {}
        #: the LP's solver, chosen once by its size (:data:`DENSE_MAX_ROWS`): ``"dense"`` (the dense dual simplex)
        #: or ``"highs"``. The dense one needs finite bounds: the implied ones (a load at most its class's demand,
        #: a footprint row's activity at least minus the largest z) and, for q = inf, z at most twice the largest
        #: footprint the box allows plus one (an optimum's z is the largest footprint, below it)
        self.backend = "dense" if self.n_row <= DENSE_MAX_ROWS else "highs"
        self._x_row = t_of * G + g_of                                      # each x column's demand row
        self._lo = np.empty(self.n_col + self.n_row)
        self._up = np.empty(self.n_col + self.n_row)
        self._cost = np.zeros(self.n_col + self.n_row)
        self._status: np.ndarray | None = None
        #: simplex iterations of the last slot's solve (either backend)
        self.last_iterations = 0
        #: the optimal value of the last slot's program, in its units (USD per load unit of the program's demand;
        #: :meth:`MPCCore.plan` scales it to USD): the cost of its slots plus its equity terms of the footprints so
        #: far and planned, with the multipliers
        self.last_value = math.nan
        #: warm start (opt-in, ``MPCPolicy(warm_start=True)``): the previous program's basis moved one slot ahead
        #: (slot-major column and row blocks). Off by default: a copied environment rebuilds its solver, and
        #: a cold start makes every routing a function of the program alone (bit for bit, tests/test_copies.py)
        self.col_blocks = [(0, P)] + ([(nx, n_sh)] if self.site_cols else []) + [(self.c_u, G)]
        self.row_blocks = [(0, G), (self.r_cap, n_sh)]
        self.warm_start = False
        self._basis: highspy.HighsBasis | None = None
        self._last_t = -2                                     # the slot of the previous solve

    def forget(self) -> None:
        """As :meth:`CvxpyMPCSolver.forget`: drop the previous slot's basis (HiGHS's and the dense simplex's)."""
        self._basis, self._status, self._last_t = None, None, -2

    def first_slot(self, scenario: Scenario, data: MPCWindow, t: int) -> np.ndarray:
        """As :meth:`CvxpyMPCSolver.first_slot`."""
        w, H, N, G, P = self.weights, self.H, self.N, self.G, self.P
        nu, c_u = H * G, self.c_u
        e, price, coef_c, coef_w, off_c, off_w = self._unit_terms(scenario, data)
        t_c, i_c = self._t_c, self._i_c
        self.col_upper[self._bounded] = data.capacity[self._bounded_t, self._bounded_site] / e
        cost = np.zeros(self.n_col)
        cost[self._carrier] = price[t_c, i_c]
        cost[c_u:c_u + nu] = w.unserved_penalty_usd
        demand = self._class_sums(data.demand)                                 # Λ[t, g] (H, G)
        self.row_lower[:nu] = demand.ravel()                                   # row t G + g
        self.row_upper[:nu] = demand.ravel()
        if not self.site_cols:
            self.row_upper[self.r_cap:self.r_foot] = data.capacity[:, self._shared].ravel()
        if self.maxima:
            cost[c_u + nu:] = 1.0
            self.values[self._carbon_at] = coef_c[t_c, i_c]
            self.values[self._water_at] = coef_w[t_c, i_c]
            self.row_upper[self.r_foot:self.r_foot + N] = -off_c
            self.row_upper[self.r_foot + N:] = -off_w
        else:
            cost[self._carrier] += (coef_c + coef_w)[t_c, i_c]
        sol = self._solve_lp(cost, t)
        # the optimal value: the columns' costs (the maxima's z hold the offsets); for q = 1 the footprints so far
        # are constants outside the LP
        self.last_value = float(cost @ sol)
        if not self.maxima:
            self.last_value += float(off_c.sum() + off_w.sum())
        return self._split(sol[:P], data.demand[0])

    def _solve_lp(self, cost: np.ndarray, t: int) -> np.ndarray:
        """Solve the LP (its matrix and bounds, the column costs ``cost``) at slot t: by :meth:`_solve_dense` when
        :attr:`backend` is ``"dense"`` and it reaches the optimum, else by HiGHS, from the
        previous slot's basis moved one slot ahead when the previous program was slot t - 1 of the same run (else
        a cold start); the column values. A status other than optimal is a :class:`SolverError`."""
        if self.backend == "dense":
            x = self._solve_dense(cost, t)
            if x is not None:
                return x
        hs = self.highs
        pass_lp(hs, cost, self.col_lower, self.col_upper, self.row_lower, self.row_upper, self.start, self.index,
                self.values)
        if self.warm_start and self._basis is not None and t == self._last_t + 1:
            shifted = _shifted_basis(self._basis, self.col_blocks, self.row_blocks, self.window, self.n_row)
            if shifted is not None:
                hs.setBasis(shifted)
        hs.run()
        self._last_t = t
        self.last_iterations = hs.getInfo().simplex_iteration_count
        self._basis = hs.getBasis() if self.warm_start else None
        status = hs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolverError(f"MPC at slot t={t}: HiGHS returned {hs.modelStatusToString(status)}")
        self.solvers_used["HIGHS"] = self.solvers_used.get("HIGHS", 0) + 1
        return np.asarray(hs.getSolution().col_value)

    def _solve_dense(self, cost: np.ndarray, t: int) -> np.ndarray | None:
        """:meth:`_solve_lp` by the dense dual simplex on the boxed LP; None when it does not reach the optimum of
        the LP itself (an iteration limit, or z on its artificial bound): HiGHS solves the slot then."""
        n, nu, c_u, N = self.n_col, self.H * self.G, self.c_u, self.N
        lo, up = self._lo, self._up
        lo[:n], up[:n] = self.col_lower, self.col_upper
        lo[n:], up[n:] = self.row_lower, self.row_upper
        nx = self.H * self.P
        np.minimum(up[:nx], self.row_upper[self._x_row], out=up[:nx])        # a load <= its class's demand
        up[c_u:c_u + nu] = self.row_upper[:nu]                                 # unserved <= demand
        if self.maxima:
            z_up = np.empty(2)
            for k, at in enumerate((self._carbon_at, self._water_at)):
                most = np.bincount(self._i_c, weights=self.values[at] * up[self._carrier], minlength=N)
                rows = slice(self.r_foot + k * N, self.r_foot + (k + 1) * N)
                z_up[k] = 2.0 * max(float(np.max(most - self.row_upper[rows])), 0.0) + 1.0
            up[c_u + nu:n] = z_up
            lo[n + self.r_foot:n + self.r_foot + N] = -z_up[0] - 1.0           # Σ coef x - z >= -z_max
            lo[n + self.r_foot + N:] = -z_up[1] - 1.0
        elif not self.site_cols:
            lo[n + self.r_cap:n + self.r_foot] = -1.0                          # capacity rows: Σ e x >= 0
        if not (np.isfinite(lo).all() and np.isfinite(up).all()):
            return None
        self._cost[:n] = cost
        warm = self.warm_start and self._status is not None and t == self._last_t + 1
        status = self._shifted_status() if warm else None
        if status is None:
            status = self._cold_status(cost, up)
        code, x, _, it = dual_simplex(self._cost, lo, up, self.start, self.index, self.values, status,
                                      DENSE_MAX_ITER)
        if code == SINGULAR and warm:                                          # the shifted basis: retry cold
            status = self._cold_status(cost, up)
            code, x, _, it = dual_simplex(self._cost, lo, up, self.start, self.index, self.values, status,
                                          DENSE_MAX_ITER)
        self.last_iterations = it
        if code != OPTIMAL or (self.maxima and np.any(x[c_u + nu:n] >= up[c_u + nu:n] * (1.0 - 1e-9))):
            self._status = None
            return None
        self._last_t = t
        self._status = status if self.warm_start else None
        self.solvers_used["DUAL_SIMPLEX"] = self.solvers_used.get("DUAL_SIMPLEX", 0) + 1
        return x[:n]

    def _cold_status(self, cost: np.ndarray, up: np.ndarray) -> np.ndarray:
        """The starting basis of a cold start: the logical basis, except that with one region class and no shared
        site (a full mask) each slot's demand row takes as basic the load of the site at which the slot's cheapest
        fill meets its demand (sites by cost, each to its bound; the unserved load when the sites fall short):
        the optimum of the program without its equity rows, so that the dual simplex starts with every demand row
        met and has the footprint rows left to fix (q = inf at H = 24 on the synthetic test window: 47 iterations
        on average against 72 from the logical basis); for q = 1 (no footprint rows) it is the optimum."""
        n, H, P = self.n_col, self.H, self.P
        status = np.full(n + self.n_row, AT_LOWER, dtype=np.int8)
        status[n:] = BASIC
        if self.G != 1 or len(self._shared):
            return status
        _cheapest_fill(cost, up, self.row_upper[:H], P, self.c_u, n, status)
        return status

    def _shifted_status(self) -> np.ndarray | None:
        """The previous slot's statuses (columns then rows) moved one slot ahead (:func:`_shift_statuses`)."""
        assert self._status is not None
        return _shift_statuses(self._status, self.col_blocks, self.row_blocks, self.window, self.n_row, BASIC,
                               AT_LOWER)


@njit(cache=True)
def _cheapest_fill(cost: np.ndarray, up: np.ndarray, demand: np.ndarray, P: int, c_u: int, n: int,
                   status: np.ndarray) -> None:
    """:meth:`AggregateLPSolver._cold_status` of a full mask, in place: for each slot t with demand, the sites
    (columns t P .. t P + P - 1) by cost (a stable order), each filled to its bound ``up`` until the slot's demand
    is met; the load of the site that meets it (the unserved load u[t] = column ``c_u + t`` when the sites fall
    short) becomes basic and the demand row's logical (``n + t``) leaves the basis."""
    order = np.empty(P, dtype=np.int64)
    for t in range(len(demand)):
        if not demand[t] > 0:
            continue
        for a in range(P):                                     # insertion sort: stable, as numpy's "stable"
            key, b = a, a - 1
            while b >= 0 and cost[t * P + order[b]] > cost[t * P + key]:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = key
        filled, k = 0.0, 0
        for a in range(P):                                     # the marginal site's rank
            filled += up[t * P + order[a]]
            if filled < demand[t]:
                k += 1
        status[c_u + t if k == P else t * P + order[min(k, P - 1)]] = BASIC
        status[n + t] = AT_LOWER


#: soc_ipm's empty starting point: a cold start
_COLD = np.zeros(0)


@njit(cache=True)
def _cone_program(price: np.ndarray, coef_c: np.ndarray, coef_w: np.ndarray, off_c: np.ndarray, off_w: np.ndarray,
                  demand: np.ndarray, cap_units: np.ndarray, load: float, pen: float, flat: np.ndarray,
                  x_dem: np.ndarray, carbon_at: np.ndarray, water_at: np.ndarray,
                  dem_row: np.ndarray, cap_row: np.ndarray, cap_site: np.ndarray, cap_slot: np.ndarray,
                  cone_start: np.ndarray, c: np.ndarray, b: np.ndarray, ub: np.ndarray, values: np.ndarray,
                  col_on: np.ndarray, row_on: np.ndarray) -> None:
    """:class:`AggregateConeSolver`'s program of a slot, written in place (one compiled pass instead of some twenty
    numpy calls a slot): the costs c, the rows' right-hand sides b (the class demands ``demand`` (H·G,), in the
    program's load units, in their rows ``dem_row``; the shared sites' capacities ``cap_units[slot, site]
    * load`` in rows ``cap_row``; the link rows' offsets), the upper bounds ub (the x columns' capacities
    ``cap_units`` (H, N) in load units per program unit, times ``load``; u and w none), the x columns' link entries in
    ``values``, and which columns and rows are on (a class without demand in a slot, a site without capacity,
    a slot without demand: off). USD are scaled to the largest price or coefficient per load unit (at least
    1e-12)."""
    usd = 1e-12
    for v in price.ravel():
        usd = max(usd, abs(v))
    for v in coef_c.ravel():
        usd = max(usd, v)
    for v in coef_w.ravel():
        usd = max(usd, v)
    nx, nu, nw, N = len(flat), len(demand), len(cap_row), len(off_c)
    pr, cc, cw, cap = price.ravel(), coef_c.ravel(), coef_w.ravel(), cap_units.ravel()
    c[:] = 0.0
    for k in range(nx):
        c[k] = pr[flat[k]] / usd
        values[carbon_at[k]] = -cc[flat[k]] / usd
        values[water_at[k]] = -cw[flat[k]] / usd
        ub[k] = cap[flat[k]] * load
        col_on[k] = demand[x_dem[k]] > 0 and ub[k] > 0
    for k in range(nu):
        c[nx + k] = pen / usd
        ub[nx + k] = np.inf
        col_on[nx + k] = demand[k] > 0
        b[dem_row[k]] = demand[k]
        row_on[dem_row[k]] = demand[k] > 0
    if nw > 0:
        H = cap_slot[nw - 1] + 1
        G = nu // H
        for k in range(nw):
            t = cap_slot[k]
            slot = 0.0
            for g in range(G):
                slot += demand[t * G + g]
            on = slot > 0 and cap_units[t, cap_site[k]] > 0
            ub[nx + nu + k] = np.inf
            b[cap_row[k]] = cap_units[t, cap_site[k]] * load
            row_on[cap_row[k]] = on
            col_on[nx + nu + k] = on
    for k in range(len(cone_start) - 1):
        c[cone_start[k]] = 1.0
    r_link = len(b) - 2 * N
    for i in range(N):
        b[r_link + i] = off_c[i] * (load / usd)
        b[r_link + N + i] = off_w[i] * (load / usd)


class AggregateConeSolver(_RegionClasses):
    """Accelerator of :class:`CvxpyMPCSolver` at q = 2 where :meth:`applies` (one model, no social or latency term,
    every region reaching a site; any mask: a full mask is one region class): the program aggregated over region
    classes as :class:`AggregateLPSolver`'s, its two norms second-order cones, solved by the dense interior-point
    method of :mod:`equiglb.control.socipm` on the program's own normal equations.

    Columns: the load x[t, p] of every allowed (site, class) pair p, bounded by the site's capacity (H·P); the
    unserved load u[t, g] (H·G); for each slot and site that several classes reach (a *shared* site) the capacity
    left, w[t, k] >= 0 (H·S); the cones (z_c, y_c) and (z_w, y_w) of dimension N + 1, z the norm. Rows, slot by
    slot (G + S rows a slot): demand ``Σ_i x[t, i, g] + u[t, g] = Λ[t, g]`` and, per shared site, the capacity
    ``Σ_g x[t, i, g] + w[t, k] = M_i / e``; then ``y_c[i] - Σ_t Σ_g coef_c[t, i] x[t, i, g] = offset_c[i]`` per
    site (N, the footprints so far the offsets), the same for water. The objective: the energy cost, the unserved
    penalty and z_c + z_w. Loads are scaled to the program's mean demand per slot and USD to the largest cost or
    coefficient per load unit, so that the solver's tolerances are relative. A slot without demand (past the
    window's end) and a site without capacity leave their columns and rows out. A slot on which the method does
    not converge (or returns a value that is not finite) is solved by :class:`DirectMPCSolver` (Clarabel),
    counted in ``solvers_used``.
    """

    #: the interior-point method's relative tolerance (residuals and gap) and its iteration limit
    tol = 1e-9
    max_iter = 100
    #: a warm start's point: the iterate of the previous slot's solve whose complementarity per pair first fell
    #: to this (scaled units), moved one slot ahead
    keep_mu = 1e-3

    @staticmethod
    def applies(scenario: Scenario, weights: Weights) -> bool:
        """Whether the accelerator covers this structure and these weights."""
        return weights.q == 2.0 and _RegionClasses._one_model(scenario, weights)

    def __init__(self, scenario: Scenario, H: int, weights: Weights, window: int | None = None):
        self.H, self.weights = H, weights
        #: the receding window's slots, moved one slot ahead by a warm start (:func:`_moving_slots`)
        self.window = _moving_slots(H, window)
        self.key = _structure_key(scenario, H, weights, True)
        reach = self._set_classes(scenario)
        N, G, P = self.N, self.G, self.P
        shared = np.nonzero(reach.sum(axis=1) > 1)[0]                          # the shared sites
        S = len(shared)
        R = G + S                                                               # rows a slot
        nx, nu, nw = H * P, H * G, H * S
        self.n_lin = nx + nu + nw
        n = self.n_lin + 2 * (N + 1)
        r_c, r_w = H * R, H * R + N                                             # the link rows
        t_of, p_of = np.divmod(np.arange(nx), P)
        g_of = self.cls_of[p_of]
        self._i_x = self.site_of[p_of]
        self._x_dem = t_of * G + g_of                                           # each x column's class demand
        self._dem_row = (np.arange(nu) // G) * R + np.arange(nu) % G            # demand t G + g's row
        k_of = np.full(N, -1)
        k_of[shared] = np.arange(S)
        xs = np.nonzero(k_of[self._i_x] >= 0)[0]                               # x columns at shared sites
        slot_w, k_w = np.divmod(np.arange(nw), max(S, 1))                     # each w column's slot and site
        self._cap_slot: np.ndarray = slot_w
        self._cap_site = shared[k_w]
        self._cap_row = self._cap_slot * R + G + k_w
        y_c, y_w = self.n_lin + 1 + np.arange(N), self.n_lin + N + 2 + np.arange(N)   # the cones' tails
        # x: its demand, carbon and water rows, and its capacity row at a shared site; u: its demand row; w: its
        # capacity row; y: +1 in its link row. The link entries' values are set each slot (:meth:`first_slot`)
        links = len(self._i_x)
        col = np.concatenate([np.repeat(np.arange(nx), 3), xs, nx + np.arange(nu), nx + nu + np.arange(nw), y_c, y_w])
        row = np.concatenate([np.stack([self._dem_row[self._x_dem], r_c + self._i_x, r_w + self._i_x], axis=1).ravel(),
                              t_of[xs] * R + G + k_of[self._i_x[xs]], self._dem_row, self._cap_row, r_c + np.arange(N),
                              r_w + np.arange(N)])
        order = np.lexsort((row, col))
        self.index = row[order].astype(np.int64)
        self.start = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=n))]).astype(np.int64)
        self.values = np.ones(len(order))
        at = np.empty(len(order), dtype=np.int64)
        at[order] = np.arange(len(order))
        self._carbon_at, self._water_at = at[1:3 * links:3], at[2:3 * links:3]    # the x columns' link entries
        self.cone_start = np.array([self.n_lin, self.n_lin + N + 1, n], dtype=np.int64)
        self.n = n
        self.col_on = np.ones(self.n_lin, dtype=np.bool_)
        self.row_on = np.ones(H * R + 2 * N, dtype=np.bool_)
        self.solvers_used: dict[str, int] = {}
        #: interior-point iterations of the last slot's solve
        self.last_iterations = 0
        self._fallback: DirectMPCSolver | None = None
        self._last: tuple[np.ndarray, np.ndarray, float, np.ndarray] | None = None
        #: warm start (opt-in, ``MPCPolicy(warm_start=True)``): each slot's method starts from the previous slot's
        #: kept iterate moved one slot ahead (:func:`soc_ipm`'s ``kept``; fewer iterations, the same optimum to
        #: the tolerance). Off by default, for the reason :class:`AggregateLPSolver` gives
        self.warm_start = False
        self._kept: np.ndarray | None = None
        self._last_t = -2                                                       # the slot of the previous solve
        n2, nl = 2 * n, self.n_lin
        blocks = [(o + f, w) for o in (0, n, n2, n2 + nl) for f, w in ((0, P), (nx, G), (nx + nu, S))]
        blocks.append((n2 + 2 * nl, R))                               # x, z, s, v: the x, u, w blocks; y: slot rows
        #: the kept iterate's entries moved one slot ahead (:func:`_shift_slots` of its indices)
        self._kept_shift = _shift_slots(np.arange(n2 + 2 * nl + H * R + 2 * N), blocks, self.window)
        self._flat = t_of * N + self._i_x                                       # x[t, p]'s entry of an (H, N) array

    def forget(self) -> None:
        """As :meth:`CvxpyMPCSolver.forget`: drop the previous slot's kept iterate."""
        self._kept, self._last_t = None, -2

    def window_schedule(self) -> np.ndarray:
        """The last program's whole schedule (H, N, J, 1), in the program's units as :meth:`first_slot`'s slot 0
        (for tests: its objective in the reference program); only after a slot the method solved itself."""
        if self._last is None:
            raise RuntimeError("AggregateConeSolver.window_schedule: the last slot was not solved by the method")
        return np.stack([self._slot_routing(h) for h in range(self.H)])

    def _slot_routing(self, h: int) -> np.ndarray:
        """Slot h's routing (N, J, 1) of the last program's solution (the loads clipped to their bounds, and a shared
        site's loads scaled down to its capacity where their sum exceeds it within the method's tolerance)."""
        assert self._last is not None
        x, ub, load, demand = self._last
        cols = slice(h * self.P, (h + 1) * self.P)
        sol = np.where(self.col_on[cols], np.minimum(np.maximum(x[cols], 0.0), ub[cols]), 0.0)
        if len(self._cap_site):
            total = np.bincount(self._i_x[cols], weights=sol, minlength=self.N)       # per site, as ub's units
            cap = np.zeros(self.N)
            cap[self._i_x[cols]] = ub[cols]
            sol = sol * np.divide(cap, total, out=np.ones(self.N), where=total > cap)[self._i_x[cols]]
        return self._split(sol / load, demand[h])

    def first_slot(self, scenario: Scenario, data: MPCWindow, t: int) -> np.ndarray:
        """As :meth:`CvxpyMPCSolver.first_slot`."""
        H = self.H
        e, price, coef_c, coef_w, off_c, off_w = self._unit_terms(scenario, data)
        load = H                                                       # loads in units of the mean demand per slot
        demand = self._class_sums(data.demand) * load                          # (H, G)
        c, b, ub = np.empty(self.n), np.empty(len(self.row_on)), np.empty(self.n_lin)
        _cone_program(price, coef_c, coef_w, off_c, off_w, demand.ravel(), data.capacity / e, float(load),
                      self.weights.unserved_penalty_usd, self._flat, self._x_dem, self._carbon_at,
                      self._water_at, self._dem_row, self._cap_row, self._cap_site, self._cap_slot, self.cone_start,
                      c, b, ub, self.values, self.col_on, self.row_on)
        def solve(start: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, int, np.ndarray]:
            return soc_ipm(c, b, ub, self.start, self.index, self.values, self.n_lin, self.cone_start, self.col_on,
                           self.row_on, self.tol, self.max_iter, start, self.keep_mu)

        warm = self.warm_start and self._kept is not None and t == self._last_t + 1
        status, x, _, it, kept = solve(self._kept[self._kept_shift] if warm and self._kept is not None else _COLD)
        if warm and status not in (SOC_OPTIMAL, SOC_REDUCED):                  # the warm start failed: cold
            status, x, _, it2, kept = solve(_COLD)
            it += it2
        self.last_iterations = it
        self._last_t = t
        self._kept = kept if self.warm_start and len(kept) else None
        solved = status in (SOC_OPTIMAL, SOC_REDUCED) and bool(np.isfinite(x).all())
        self._last = (x, ub, load, data.demand) if solved else None
        if solved:
            name = "SOC_IPM" if status == SOC_OPTIMAL else "SOC_IPM (reduced accuracy)"
            self.solvers_used[name] = self.solvers_used.get(name, 0) + 1
            return self._slot_routing(0)
        if self._fallback is None:
            self._fallback = DirectMPCSolver(scenario, H, self.weights, window=self.window)
        routing = self._fallback.first_slot(scenario, data, t)
        for name, k in self._fallback.solvers_used.items():
            self.solvers_used[f"direct {name}"] = self.solvers_used.get(f"direct {name}", 0) + k
        self._fallback.solvers_used.clear()
        return routing


class DirectMPCSolver:
    """Accelerator of :class:`CvxpyMPCSolver` for every structure the LP accelerator leaves out (several
    models, a social or latency term, any q): the program as :class:`~equiglb.control.offline_direct.DirectProgram`
    of length H, with the footprints so far as offsets inside the norms, the given normalization Λ and the
    multipliers, handed to HiGHS (q in {1, inf}: the dual simplex, then Clarabel) or Clarabel (cones) directly.
    The structure (region classes, slot template) is built once; each slot loads its window's series and solves
    from a cold start. A slot whose direct program reaches no optimum (Clarabel stops short on a rare cone
    program) is solved by the reference program, built then, when ``fallback`` (``solvers_used`` counts it
    under ``"cvxpy <solver>"``); otherwise, or when that fails too, it is a :class:`SolverError`.

    Args:
        scenario: a window of the structure to solve (its static data are used).
        H: the look-ahead in hours.
        weights: the objective weights.
        options: settings of the first solver tried (HiGHS options or Clarabel settings, by name).
        fallback: solve a slot the direct program fails on with :class:`CvxpyMPCSolver`.
        window: the program's receding slots (default all H): with a history tail, the H - window slots after
            them stay in place in a warm start (:func:`_moving_slots`).
    """

    def __init__(self, scenario: Scenario, H: int, weights: Weights, options: dict | None = None,
                 fallback: bool = True, window: int | None = None):
        self.H, self.weights = H, weights
        #: the receding window's slots, moved one slot ahead by a warm start (:func:`_moving_slots`)
        self.window = _moving_slots(H, window)
        self.key = _structure_key(scenario, H, weights, True)
        # an LP goes to HiGHS's dual simplex first: one window's program is small, and a vertex as the reference's
        self.program = DirectProgram(scenario, weights, allow_unserved=True, T=H, simplex_first=True)
        self.options = dict(options or {})
        self.fallback = fallback
        self._reference: CvxpyMPCSolver | None = None
        self.solvers_used: dict[str, int] = {}
        #: an LP's HiGHS instance, kept from slot to slot (each solve a cold start unless ``warm_start``, the opt-in
        #: of ``MPCPolicy(warm_start=True)``: the previous slot's basis moved one slot ahead, as AggregateLPSolver's)
        self.highs = _quiet_highs() if weights.q in (1.0, math.inf) else None
        self.program.highs = self.highs
        self.warm_start = False
        self._basis: highspy.HighsBasis | None = None
        self._last_t = -2
        #: the simplex iterations of the last slot's solve (0 when HiGHS did not solve it)
        self.last_iterations = 0

    def forget(self) -> None:
        """As :meth:`CvxpyMPCSolver.forget`: drop the previous slot's basis."""
        self._basis, self._last_t = None, -2

    def first_slot(self, scenario: Scenario, data: MPCWindow, t: int) -> np.ndarray:
        """As :meth:`CvxpyMPCSolver.first_slot`."""
        prog = self.program
        prog.set_series(data.price, data.carbon, data.water, data.demand, data.total, data.carbon_t,
                        data.water_m3, data.quality_sum, data.carbon_scale, data.water_scale, data.social_scale,
                        data.capacity)
        warm = self.warm_start and self.highs is not None
        prog.start_basis = None
        if warm and self._basis is not None and t == self._last_t + 1:
            L, n_row = prog.layout, len(self._basis.row_status)
            prog.start_basis = _shifted_basis(self._basis, [(0, L.n)], [(0, L.m)], self.window, n_row)
        out = prog.solve(options=self.options, slots=1)
        self.last_iterations = (self.highs.getInfo().simplex_iteration_count
                                if self.highs is not None and out.solver == "HIGHS" else 0)
        if warm:
            assert self.highs is not None
            self._last_t = t
            self._basis = self.highs.getBasis() if out.ok and out.solver == "HIGHS" else None
        if out.ok and out.schedule is not None:
            self.solvers_used[out.solver] = self.solvers_used.get(out.solver, 0) + 1
            return out.schedule[0]
        failed = f"MPC at slot t={t}: the direct program reached no optimum ({'; '.join(out.attempts)})"
        if not self.fallback:
            raise SolverError(failed)
        if self._reference is None:
            self._reference = CvxpyMPCSolver(scenario, self.H, self.weights)
        ref = self._reference
        try:
            x = ref.first_slot(scenario, data, t)
        except SolverError as exc:
            raise SolverError(f"{failed}; the cvxpy program: {exc}") from None
        (used,) = ref.solvers_used                 # the one solver of this slot (cleared after each)
        ref.solvers_used.clear()
        self.solvers_used[f"cvxpy {used}"] = self.solvers_used.get(f"cvxpy {used}", 0) + 1
        return x


MPCSolver = CvxpyMPCSolver | AggregateLPSolver | AggregateConeSolver | DirectMPCSolver


def make_mpc_solver(scenario: Scenario, H: int, weights: Weights, solver: str | None = None,
                    window: int | None = None) -> MPCSolver:
    """The per-slot MPC solver for a structure, chosen once: with no cvxpy ``solver`` requested,
    :class:`AggregateLPSolver` where it applies, else :class:`DirectMPCSolver`; with one, the reference
    :class:`CvxpyMPCSolver`. ``window``: the program's receding slots when a history tail follows them (the
    accelerators' warm starts move those alone; :func:`_moving_slots`)."""
    if solver is None and AggregateLPSolver.applies(scenario, weights):
        return AggregateLPSolver(scenario, H, weights, window)
    if solver is None and AggregateConeSolver.applies(scenario, weights):
        return AggregateConeSolver(scenario, H, weights, window)
    if solver is None:
        return DirectMPCSolver(scenario, H, weights, window=window)
    _moving_slots(H, window)                     # the reference has no warm start: the option is only checked
    return CvxpyMPCSolver(scenario, H, weights, solver)


def utc_hours(scenario: Scenario) -> np.ndarray:
    """The scenario's slots as whole hours since 1970-01-01 UTC (int64, (T,))."""
    return np.asarray(scenario.timestamps).astype("datetime64[h]").astype(np.int64)


class HistoryTail:
    """The hours after an MPC program's window, represented by the most recent days of observed history.

    The equity norms run over the whole episode, but the program on slots [t, t+H) sees nothing of the hours
    after its window: it equalizes the footprints as if the episode ended with it. A history tail appends
    ``24 * days`` slots to each program: the ``24 * days`` hours that ``history`` holds last before slot t
    (their true series: what a controller has observed by then). Each tail slot stands for ``m`` hours,
    ``m = weight * n_h / days``, with ``n_h`` the number of the episode's hours after the window that fall on
    the tail slot's hour of day (UTC): with weight 1 the tail's hours are exactly the episode's hours left, as if
    the future repeated those days. A tail slot standing for m hours has m times its hour's demand and
    capacity, so that its load is m hours of load, priced, counted in the footprints and, where it cannot be
    placed, penalised once per load unit, as those hours would be. The tail's routing is never applied, only
    the window's first slot; the tail moves the footprints the program expects at the episode's end, and with
    them which sites the norms bind at.

    With ``block_hours`` b > 1 each tail slot groups b consecutive hours of history (``24 * days / b`` slots):
    its demand and capacity are the sums of its hours' (each m times its hour's), and its price, carbon and water
    the means of its hours' weighted by their load (m times the hour's total demand). Each day keeps its own
    variation between blocks (a day's blocks are not averaged with other days'); what is lost is the variation
    within a block. A program with b-hour blocks has the same value as with hours where the series are constant
    within each block; the tail's cost falls about b-fold.

    The history is matched to the episode by UTC hour, and only its hours before slot t are read (the tail is
    causal: an episode's own past hours enter the tail as the episode goes on when ``history`` holds them; a
    history that ends before the episode, such as the train split before the test window, gives the same tail at
    every slot). A tail with ``weight`` 0 leaves the program the plain one.

    Args:
        history: a scenario with the episode's sites and regions whose hourly series hold the ``24 * days`` hours
            before the episode's first slot (for example the whole scenario, or its train split).
        days: whole days of history in the tail (1 .. :data:`MAX_TAIL_DAYS`).
        weight: the tail's hours per hour of the episode left (>= 0; 1: as many as are left).
        strict: a history without the ``24 * days`` hours before an episode's first slot is refused (:meth:`bind`);
            not strict (the environment's episodes, which may start at the scenario's first hour), a slot with
            fewer whole days of history before it has a tail of the whole days there are.
        block_hours: consecutive hours per tail slot, one of :data:`TAIL_BLOCK_HOURS` (1: a slot per hour).

    Raises:
        OptionError: a bad ``days``, ``weight``, ``block_hours`` or ``history``.
    """

    def __init__(self, history: Scenario, days: int, weight: float = 1.0, strict: bool = True,
                 block_hours: int = 1):
        if not isinstance(history, Scenario):
            raise OptionError(f"history={history!r}: expected a Scenario (e.g. the whole scenario, or its train "
                              f"split) whose hours precede the episodes")
        self.days = as_int("tail_days", days, 1, MAX_TAIL_DAYS, unit="days")
        self.weight = as_float("tail_weight", weight, lo=0.0, hi=100.0, unit="(tail hours per hour left)")
        self.block_hours: int = one_of("tail_block_hours", block_hours, TAIL_BLOCK_HOURS)
        self.history, self.strict = history, strict
        self._hours = utc_hours(history)                # consecutive hours (a Scenario's timestamps are)
        self._hod = self._hours % 24                    # each history hour's hour of day (UTC)
        self.slots = 24 * self.days // self.block_hours
        self._end = np.zeros(0, dtype=np.int64)
        self._left = np.zeros((1, 24))
        self.H = 0

    def bind(self, window: Scenario, H: int) -> None:
        """Prepare the tails of ``window``'s programs of H slots; an :class:`OptionError` naming ``history`` when
        its sites or regions differ or (:attr:`strict`) it does not hold the ``24 * days`` hours before the
        window's first slot."""
        hist = self.history
        if list(hist.site_names) != list(window.site_names) or list(hist.region_names) != list(window.region_names):
            raise OptionError(f"history={hist.name!r}: its sites {list(hist.site_names)} and regions "
                              f"{list(hist.region_names)} are not the episode's ({list(window.site_names)}, "
                              f"{list(window.region_names)})")
        hours = utc_hours(window)
        end = np.clip(hours - self._hours[0], 0, hist.T)                       # history rows before each slot
        if self.strict and end[0] < self.slots:
            raise OptionError(f"history={hist.name!r} with tail_days={self.days}: the tail needs the {self.slots} "
                              f"hours before the episode's first slot {window.timestamps[0]}, and the history "
                              f"({hist.timestamps[0]} .. {hist.timestamps[-1]}) holds {int(end[0])} of them")
        self._end, self.H = end, H
        hod = hours % 24
        # _left[s, h]: the episode's slots from s on that fall on hour of day h (row T: none)
        onehot = np.zeros((window.T + 1, 24))
        onehot[np.arange(window.T), hod] = 1.0
        self._left = np.cumsum(onehot[::-1], axis=0)[::-1]

    def rows(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Slot t's tail: the price (USD/MWh), carbon (t/MWh) and water (m³/MWh) of its slots ((slots, N) each),
        their demand (slots, J) in load units over the hours each slot stands for, and those hours (slots,): a
        slot of hour h of history stands for m = w n_h / days hours and holds m times the hour's demand; a block
        of b hours sums its hours' (class docstring). With d < days whole days of history before slot t (not
        strict), the last 24·d / b slots hold them, each hour standing for w n_h / d hours, and the others nothing
        (no demand, 0 hours)."""
        end = int(self._end[t])
        d = min(self.days, end // 24)
        rows = slice(end - 24 * d, end)
        left = self._left[min(t + self.H, len(self._left) - 1)]               # (24,) hours left after the window
        h = self.history
        m = (self.weight / d) * left[self._hod[rows]] if d else np.zeros(0)
        series = (h.price[rows], h.carbon[rows], h.water[rows], m[:, None] * h.demand[rows], m)
        if self.block_hours > 1:
            series = self._blocks(*series)
        if d == self.days:
            return series
        pad = self.slots - len(m) // self.block_hours                         # slots of no history: nothing
        return tuple(np.concatenate([np.zeros((pad, *a.shape[1:])), a]) for a in series)  # type: ignore[return-value]

    def _blocks(self, price: np.ndarray, carbon: np.ndarray, water: np.ndarray, demand: np.ndarray,
                m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The hourly tail grouped into blocks of :attr:`block_hours` consecutive hours: demand and hours summed,
        the series averaged with the hours' load as weights (their hours m where a block has no load, equal
        weights where it has no hours either)."""
        b = self.block_hours
        n = len(m) // b
        load = demand.sum(axis=1).reshape(n, b)
        weight = np.where(load.sum(axis=1, keepdims=True) > 0, load,
                          np.where(m.reshape(n, b).sum(axis=1, keepdims=True) > 0, m.reshape(n, b), 1.0))
        weight = weight / weight.sum(axis=1, keepdims=True)

        def mean(a: np.ndarray) -> np.ndarray:
            return np.einsum("nb,nbk->nk", weight, a.reshape(n, b, a.shape[1]))

        return (mean(price), mean(carbon), mean(water), demand.reshape(n, b, demand.shape[1]).sum(axis=1),
                m.reshape(n, b).sum(axis=1))


class MPCCore:
    """One MPC run over a window: the footprints of the slots applied so far and the demand seen.

    Args:
        scenario: the window (slot 0 is its first hour; forecasts never read past its last slot).
        weights: the objective weights.
        H: the look-ahead in hours (at most the window's length).
        noise_std: legacy relative one-hour-ahead forecast error (0 = perfect).
        rng: the legacy forecast noise's generator (required when ``noise_std`` > 0).
        forecaster: the source of the forecasts (``None``: the truth, or the legacy noise); slot t of the
            window is the forecaster's slot ``offset + t``.
        offset: the forecaster's slot of the window's first slot.
        tail: the hours after each window as days of history (:class:`HistoryTail`), bound here to the window;
            the solvers are then built for :attr:`slots` = H + 24·days slots.
    """

    def __init__(self, scenario: Scenario, weights: Weights, H: int, noise_std: float = 0.0,
                 rng: np.random.Generator | None = None, forecaster: Forecaster | None = None, offset: int = 0,
                 tail: HistoryTail | None = None):
        self.scenario, self.weights, self.H = scenario, weights, H
        self.tail = tail
        if tail is not None:
            tail.bind(scenario, H)
        #: the program's slots: the window's H and the tail's
        self.slots = H + (0 if tail is None else tail.slots)
        self.noise_std, self.rng = noise_std, rng
        self.forecaster, self.offset = forecaster, offset
        self.ledger = Ledger(scenario, weights)      # the true footprints of the applied slots
        self.ledger.reset(0, scenario.T)
        self.seen_demand = np.zeros(scenario.J)
        self._ones = (np.ones(scenario.N), np.ones(scenario.N), np.ones(scenario.J))

    def _window(self, series: np.ndarray, t: int, nonneg: bool) -> np.ndarray:
        ahead = forecast(series, t, self.H - 1, self.noise_std, self.rng if self.noise_std > 0 else None,
                         nonnegative=nonneg)
        return np.concatenate([series[t:t + 1], ahead], axis=0)

    def _issued(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Slot t's truth and the forecaster's issue at t for the window's slots t+1 .. t+H-1; slots past the
        window's end repeat its last row (as the perfect forecasts do; their demand is zeroed)."""
        sc, H, N = self.scenario, self.H, self.scenario.N
        assert self.forecaster is not None
        inside = min(H - 1, sc.T - 1 - t)
        rows = np.empty((H, 3 * N + sc.J))
        rows[0] = np.concatenate([sc.price[t], sc.carbon[t], sc.water[t], sc.demand[t]])
        rows[1:1 + inside] = self.forecaster.values(self.offset + t, inside)
        rows[1 + inside:] = rows[inside]
        return rows[:, :N], rows[:, N:2 * N], rows[:, 2 * N:3 * N], rows[:, 3 * N:]

    def route(self, t: int, solver: MPCSolver, carbon_scale: np.ndarray | None = None,
              water_scale: np.ndarray | None = None, social_scale: np.ndarray | None = None) -> np.ndarray:
        """Routing x (N, J, K) of slot ``t`` of the window: the first slot of the program on
        [t, t+H), with the equity coefficients of site i multiplied by ``carbon_scale[i]`` and
        ``water_scale[i]`` and those of region j by ``social_scale[j]`` (ones when None)."""
        return self._solve(t, solver, carbon_scale, water_scale, social_scale)[0]

    def plan(self, t: int, solver: AggregateLPSolver, carbon_scale: np.ndarray | None = None,
             water_scale: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """:meth:`route`'s routing of slot ``t`` and the program's optimal value in USD: the cost (energy and
        unserved load) of slots t .. t+H-1 as planned plus the equity terms of the footprints so far and
        planned, with the multipliers (ones: the terms of J). With perfect forecasts (``forecaster`` None, no
        noise) and H at least the slots left, it is the hindsight cost-to-go: the least J of the window given the
        slots already applied, minus their cost (at slot 0, the offline optimum's J). With no demand left it is
        the equity terms of the footprints so far.
        The LP accelerator only (:class:`AggregateLPSolver`: one model, no social or latency term, q in {1, inf})."""
        if not isinstance(solver, AggregateLPSolver):
            raise TypeError(f"MPCCore.plan needs an AggregateLPSolver (one model, no social or latency term, q in "
                            f"{{1, inf}}), got {type(solver).__name__}")
        x, unit = self._solve(t, solver, carbon_scale, water_scale, None)
        if unit <= 0:
            return x, float(self.ledger.phi_usd)
        return x, unit * solver.last_value

    def _solve(self, t: int, solver: MPCSolver, carbon_scale: np.ndarray | None,
               water_scale: np.ndarray | None, social_scale: np.ndarray | None) -> tuple[np.ndarray, float]:
        """:meth:`route`'s routing and the program's unit (its total demand, load units; 0: no program)."""
        sc, H = self.scenario, self.H
        if self.forecaster is None and self.noise_std == 0:
            rows = np.minimum(np.arange(t, t + H), sc.T - 1)         # perfect forecasts: the truth, held at the end
            price, carbon, water, demand = sc.price[rows], sc.carbon[rows], sc.water[rows], sc.demand[rows]
        elif self.forecaster is None:
            price = self._window(sc.price, t, False)
            carbon = self._window(sc.carbon, t, True)
            water = self._window(sc.water, t, True)
            demand = self._window(sc.demand, t, True)
        else:
            price, carbon, water, demand = self._issued(t)
        demand[np.arange(t, t + H) >= sc.T] = 0.0
        seen = self.seen_demand + demand.sum(axis=0)
        total = seen * sc.T / min(t + H, sc.T)
        capacity = np.broadcast_to(sc.capacity, (H, sc.N))
        if self.tail is not None:                    # the tail's slots, each m hours of a day of history
            tp, tc, tw, td, m = self.tail.rows(t)
            price, carbon, water = (np.concatenate([a, b]) for a, b in ((price, tp), (carbon, tc), (water, tw)))
            demand = np.concatenate([demand, td])
            capacity = np.concatenate([capacity, m[:, None] * sc.capacity])
        unit = float(demand.sum())                  # load-proportional inputs in units of the program's demand
        if unit <= 0:
            return np.zeros((sc.N, sc.J, sc.K)), 0.0
        led = self.ledger
        one_c, one_w, one_s = self._ones
        data = MPCWindow(price, carbon, water, demand / unit, total, led.carbon_t / unit, led.water_m3 / unit,
                         led.quality_sum / unit, one_c if carbon_scale is None else carbon_scale,
                         one_w if water_scale is None else water_scale,
                         one_s if social_scale is None else social_scale, capacity / unit)
        return _within_bounds(sc, unit * solver.first_slot(sc, data, t), sc.demand[t]), unit

    def update(self, t: int, x: np.ndarray) -> None:
        """Account the executed routing ``x`` of slot ``t`` (the footprints the next programs start from)."""
        self.ledger.step(t, x)
        self.seen_demand += self.scenario.demand[t]


def _within_bounds(scenario: Scenario, x: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """``x`` (N, J, K) projected onto the capacity and demand bounds exactly, as the per-slot router does:
    a site over capacity, or a region served more than its demand, by the solver's rounding (interior
    point solvers stop within a tolerance) is scaled down to the bound."""
    load = (x @ scenario.energy_per_unit).sum(axis=1)                           # (N,) IT MWh
    cap = scenario.capacity
    over = load > cap
    if over.any():                                                              # (else every factor is 1)
        x = x * np.divide(cap, load, out=np.ones_like(cap), where=over)[:, None, None]
    served = x.sum(axis=(0, 2))                                                 # (J,) load units
    over = served > demand
    if over.any():
        x = x * np.divide(demand, served, out=np.ones_like(served), where=over)[None, :, None]
    return x
