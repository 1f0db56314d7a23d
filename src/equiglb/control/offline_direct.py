"""The offline optimum as a sparse program in matrix form, handed to HiGHS or Clarabel directly.

The same program as :class:`equiglb.control.offline.OfflineProblem` (docs/model.md §2–§3, unserved
load at the penalty, capacities, mask and hosting), without cvxpy's canonicalization: the constraint
matrix is written once with numpy index arithmetic in compressed-column form, because every slot has
the same block of columns and rows and the slots meet only in the equity norms.

Exact reductions (the schedule is rebuilt from the reduced variables; J(x) is accounted by the
ledger on the rebuilt schedule, as for the reference):

* **Region classes.** Regions with the same allowed (site, model) pairs (and, with a latency term, the
  same latency column) are interchangeable on the sites' side; their routing is solved per class.
* **Without a social term** only the load a class sends to each site (w[t, i, g]) and the model mix
  of each site (y[t, i, k]) matter: allowed = mask × hosting, so any site may run its hosted models
  for any class that reaches it. The schedule is x[t, i, j, k] = w[t, i, g] · λ[t, j] / Λ[t, g] ·
  y[t, i, k] / Σ_k y[t, i, k]. With a full mask there is one class and w is the site's load.
* **With a social term** each region keeps its own model mix z[t, j, k] (the social cost reads it)
  and a class of several regions sends f[t, i, g, k] of model k to site i; per class and model
  Σ_{j in g} z[t, j, k] = Σ_i f[t, i, g, k], and x[t, i, j, k] = f[t, i, g, k] · z[t, j, k] / Σ_{j' in g}
  z[t, j', k]. A class of one region routes x directly.
* **IT energy** E[t, i] is a column bounded by the capacity M[i]; the price, carbon and water terms
  read it (N entries per slot instead of one per route).

Norms: q = 1 is linear (the footprints join the cost), q = inf an epigraph per norm (an LP: HiGHS),
q = 2 one second-order cone per norm and other q power cones (Clarabel). Loads are passed in units
of the window's mean hourly demand so that the solvers' tolerances are relative.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import clarabel
import highspy
import numpy as np
import scipy.sparse as sp

from equiglb.scenario import Scenario, Weights
from equiglb.validate import OptionError

__all__ = ["DirectProgram", "DirectOutcome", "direct_solver_order", "DIRECT_SOLVERS"]

#: Solvers the direct path can use (upper case, as cvxpy names them).
DIRECT_SOLVERS = ("HIGHS", "CLARABEL")

# entry kinds of the slot template
_LOCAL, _CARBON, _WATER, _SOCIAL = 0, 1, 2, 3


def direct_solver_order(q: float, solver: str | None = None, simplex_first: bool = True) -> list[str]:
    """Direct solvers to try, best first. A cone program (q not in {1, inf}): Clarabel. An LP: HiGHS's
    dual simplex then Clarabel when ``simplex_first`` (no social term, one region class or one model per
    site, at most :data:`SIMPLEX_MAX_COLUMNS` columns: the site-level programs of the eGLB study), else
    Clarabel then HiGHS (the block-angular LPs
    with several models and classes are degenerate: Clarabel's interior point took 3-10x less time than
    HiGHS's simplex or IPX on month-long 15 x 15 x 3 programs, benchmarks/offline_scale.py). A requested
    solver (one of :data:`DIRECT_SOLVERS`) goes first where it applies."""
    if q not in (1.0, math.inf):
        order = ["CLARABEL"]
    else:
        order = ["HIGHS", "CLARABEL"] if simplex_first else ["CLARABEL", "HIGHS"]
    if solver is not None and solver in order:
        order = [solver] + [s for s in order if s != solver]
    return order


def pass_lp(h: highspy.Highs, cost: np.ndarray, col_lower: np.ndarray, col_upper: np.ndarray,
            row_lower: np.ndarray, row_upper: np.ndarray, start: np.ndarray, index: np.ndarray,
            value: np.ndarray) -> None:
    """Hand the LP ``min cost·x, row_lower <= A x <= row_upper, col_lower <= x <= col_upper`` to ``h``, A in
    compressed-column form (``start`` (n + 1,), ``index``, ``value``), as numpy arrays in one call.

    The same model as a :class:`highspy.HighsLp` filled field by field (the same solutions bit for bit), without
    its element-by-element copies: handing over MPC's per-slot LP at H = 24 took 0.14 against 0.58 ms (full mask,
    266 columns) and 0.21 against 1.78 ms (eGLB-2022 partial mask, 770 columns), measured in one run on the 120
    slots of ``benchmarks/mpc_time.py``'s windows."""
    n = len(cost)
    status = h.passModel(n, len(row_lower), len(index), int(highspy.MatrixFormat.kColwise),
                         int(highspy.ObjSense.kMinimize), 0.0, cost, col_lower, col_upper, row_lower, row_upper,
                         np.asarray(start[:n], dtype=np.int32), np.asarray(index, dtype=np.int32), value,
                         np.zeros(n, dtype=np.int32))                       # integrality: every column continuous
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS rejected the LP ({n} columns, {len(row_lower)} rows, {len(index)} entries)")


@dataclass
class DirectOutcome:
    """One direct solve. Times in seconds; ``objective_usd`` is the solver's optimal value in USD."""

    ok: bool
    solver: str
    status: str                   # "optimal" when ``ok``, else the solver's own status
    objective_usd: float
    build_time_s: float           # the matrices (all attempts)
    solve_time_s: float           # the solver runs (all attempts)
    attempts: list[str] = field(default_factory=list)
    schedule: np.ndarray | None = None


@dataclass
class _Layout:
    """The columns and rows of one slot, and how to rebuild x[t, i, j, k] from them."""

    n: int                        # columns per slot
    m: int                        # equality rows per slot
    col: np.ndarray               # local entries: column, row, value (sorted by column)
    row: np.ndarray
    val: np.ndarray
    demand_rows: np.ndarray       # (J,) the row holding region j's demand
    e_cols: np.ndarray            # (N_E,) the E columns, one per site with routes
    e_sites: np.ndarray           # (N_E,) their sites
    const_cost: np.ndarray        # (n,) USD per load unit: latency and the unserved penalty
    social_region: np.ndarray     # (n,) region whose social cost a column carries, -1 if none
    social_loss: np.ndarray       # (n,) s[k] of that column
    rebuild: object               # callable (V (T, n), demand (T, J)) -> x (T, N, J, K)


def _classes(sc: Scenario, latency: bool) -> list[np.ndarray]:
    """Regions grouped by their allowed (site, model) pairs (and latency column), in order of first region."""
    keys: dict[bytes, list[int]] = {}
    allowed = sc.allowed
    for j in range(sc.J):
        key = np.ascontiguousarray(allowed[:, j, :]).tobytes()
        if latency:
            assert sc.latency is not None
            key += np.ascontiguousarray(sc.latency[:, j]).tobytes()
        keys.setdefault(key, []).append(j)
    return [np.array(v) for v in keys.values()]


class _Builder:
    """Collects columns and local entries of the slot template."""

    def __init__(self) -> None:
        self.n = 0
        self.m = 0
        self.entries: list[tuple[int, int, float]] = []
        self.cost: list[float] = []
        self.soc_region: list[int] = []
        self.soc_loss: list[float] = []

    def row(self) -> int:
        self.m += 1
        return self.m - 1

    def column(self, cost: float = 0.0, social_region: int = -1, social_loss: float = 0.0) -> int:
        self.cost.append(cost)
        self.soc_region.append(social_region)
        self.soc_loss.append(social_loss)
        self.n += 1
        return self.n - 1

    def add(self, c: int, r: int, v: float) -> None:
        self.entries.append((c, r, v))

    def layout(self, demand_rows: np.ndarray, e_cols: np.ndarray, e_sites: np.ndarray, rebuild) -> _Layout:
        ent = np.array(sorted(self.entries), dtype=np.float64).reshape(-1, 3)
        return _Layout(n=self.n, m=self.m, col=ent[:, 0].astype(np.int64), row=ent[:, 1].astype(np.int64),
                       val=ent[:, 2], demand_rows=demand_rows, e_cols=e_cols, e_sites=e_sites,
                       const_cost=np.array(self.cost), social_region=np.array(self.soc_region, dtype=np.int64),
                       social_loss=np.array(self.soc_loss), rebuild=rebuild)


def _energy_rows(b: _Builder, sc: Scenario, sites: list[int]) -> tuple[dict[int, int], np.ndarray, np.ndarray]:
    """One E column and one row ``E[i] - Σ e·routes = 0`` per site in ``sites``."""
    rows, cols = {}, []
    for i in sites:
        r = b.row()
        c = b.column()
        b.add(c, r, 1.0)
        rows[i] = r
        cols.append(c)
    return rows, np.array(cols, dtype=np.int64), np.array(sites, dtype=np.int64)


def _flow_layout(sc: Scenario, w: Weights, classes: list[np.ndarray], latency: bool,
                 allow_unserved: bool, e_ref: float) -> _Layout:
    """No social term: class-to-site loads w[i, g] and per-site model mixes y[i, k]."""
    N, J, K = sc.N, sc.J, sc.K
    allowed, e = sc.allowed, sc.energy_per_unit / e_ref            # E in units of e_ref
    b = _Builder()
    G = len(classes)
    reach = np.stack([allowed[:, g[0], :].any(axis=1) for g in classes])    # (G, N)
    used = np.asarray(reach.any(axis=0), dtype=bool)
    models = [np.nonzero(sc.hosting[i])[0] for i in range(N)]
    sites = [i for i in range(N) if used[i]]
    demand_row = np.array([b.row() for _ in classes])
    e_row, e_cols, e_sites = _energy_rows(b, sc, sites)
    lat = (w.mu_latency * sc.latency) if latency and sc.latency is not None else np.zeros((N, J))
    demand_rows = np.empty(J, dtype=np.int64)
    for g, members in enumerate(classes):
        demand_rows[members] = demand_row[g]
    # routes
    w_cols = np.full((N, G), -1, dtype=np.int64)
    y_cols = np.full((N, K), -1, dtype=np.int64)
    if G == 1:
        j0 = classes[0][0]
        for i in sites:
            for k in models[i]:
                c = b.column(cost=float(lat[i, j0]))
                b.add(c, demand_row[0], 1.0)
                b.add(c, e_row[i], -float(e[k]))
                y_cols[i, k] = c
    else:
        bal = {i: b.row() for i in sites if len(models[i]) > 1}
        for i in sites:
            for g, members in enumerate(classes):
                if not reach[g, i]:
                    continue
                c = b.column(cost=float(lat[i, members[0]]))
                b.add(c, demand_row[g], 1.0)
                if i in bal:
                    b.add(c, bal[i], 1.0)
                else:
                    b.add(c, e_row[i], -float(e[models[i][0]]))
                w_cols[i, g] = c
            if i in bal:
                for k in models[i]:
                    c = b.column()
                    b.add(c, bal[i], -1.0)
                    b.add(c, e_row[i], -float(e[k]))
                    y_cols[i, k] = c
    if allow_unserved:
        for g in range(G):
            c = b.column(cost=float(w.unserved_penalty_usd))
            b.add(c, demand_row[g], 1.0)

    def rebuild(V: np.ndarray, demand: np.ndarray) -> np.ndarray:
        T = V.shape[0]
        x = np.zeros((T, N, J, K))
        V = np.maximum(V, 0.0)
        if G == 1:
            lam = demand
            tot = lam.sum(axis=1, keepdims=True)
            share = np.divide(lam, tot, out=np.zeros_like(lam), where=tot > 0)       # (T, J)
            for i in sites:
                for k in models[i]:
                    x[:, i, :, k] = V[:, y_cols[i, k], None] * share
            return x
        for g, members in enumerate(classes):
            lam = demand[:, members]
            tot = lam.sum(axis=1, keepdims=True)
            share = np.divide(lam, tot, out=np.zeros_like(lam), where=tot > 0)       # (T, |g|)
            for i in sites:
                if w_cols[i, g] < 0:
                    continue
                load = V[:, w_cols[i, g], None] * share                               # (T, |g|)
                if len(models[i]) == 1:
                    x[:, i, members, models[i][0]] = load
                    continue
                ys = V[:, y_cols[i, models[i]]]                                       # (T, K_i)
                ytot = ys.sum(axis=1, keepdims=True)
                mix = np.divide(ys, ytot, out=np.zeros_like(ys), where=ytot > 0)
                x[:, i, members[:, None], models[i][None, :]] = load[:, :, None] * mix[:, None, :]
        return x

    return b.layout(demand_rows, e_cols, e_sites, rebuild)


def _commodity_layout(sc: Scenario, w: Weights, classes: list[np.ndarray], latency: bool,
                      allow_unserved: bool, e_ref: float) -> _Layout:
    """Social term: region model mixes z[j, k], class-to-site routes f[i, g, k] (x itself for a class of one)."""
    N, J, K = sc.N, sc.J, sc.K
    allowed, e, s = sc.allowed, sc.energy_per_unit / e_ref, sc.quality_loss
    b = _Builder()
    demand_rows = np.array([b.row() for _ in range(J)], dtype=np.int64)
    sites = [i for i in range(N) if allowed[i].any()]
    e_row, e_cols, e_sites = _energy_rows(b, sc, sites)
    lat = (w.mu_latency * sc.latency) if latency and sc.latency is not None else np.zeros((N, J))
    routes: list[tuple[np.ndarray, np.ndarray]] = []        # per class: f columns (N, K), z columns (|g|, K)
    for members in classes:
        j0 = int(members[0])
        f = np.full((N, K), -1, dtype=np.int64)
        z = np.full((len(members), K), -1, dtype=np.int64)
        single = len(members) == 1
        bal = {} if single else {k: b.row() for k in range(K) if allowed[:, j0, k].any()}
        for i in sites:
            for k in range(K):
                if not allowed[i, j0, k]:
                    continue
                if single:
                    c = b.column(cost=float(lat[i, j0]), social_region=j0, social_loss=float(s[k]))
                    b.add(c, demand_rows[j0], 1.0)
                else:
                    c = b.column(cost=float(lat[i, j0]))
                    b.add(c, bal[k], -1.0)
                b.add(c, e_row[i], -float(e[k]))
                f[i, k] = c
        for a, j in enumerate(members if not single else []):
            for k in bal:
                c = b.column(social_region=int(j), social_loss=float(s[k]))
                b.add(c, demand_rows[j], 1.0)
                b.add(c, bal[k], 1.0)
                z[a, k] = c
        routes.append((f, z))
    if allow_unserved:
        for j in range(J):
            c = b.column(cost=float(w.unserved_penalty_usd))
            b.add(c, demand_rows[j], 1.0)

    def rebuild(V: np.ndarray, demand: np.ndarray) -> np.ndarray:
        T = V.shape[0]
        x = np.zeros((T, N, J, K))
        V = np.maximum(V, 0.0)
        for members, (f, z) in zip(classes, routes):
            for k in range(K):
                ii = np.nonzero(f[:, k] >= 0)[0]
                if ii.size == 0:
                    continue
                load = V[:, f[ii, k]]                                                 # (T, n_i)
                if len(members) == 1:
                    x[:, ii, members[0], k] = load
                    continue
                zs = V[:, z[:, k]]                                                    # (T, |g|)
                ztot = zs.sum(axis=1, keepdims=True)
                mix = np.divide(zs, ztot, out=np.zeros_like(zs), where=ztot > 0)
                x[:, ii[:, None], members[None, :], k] = load[:, :, None] * mix[:, None, :]
        return x

    return b.layout(demand_rows, e_cols, e_sites, rebuild)


#: The dual simplex is tried first only on site-level LPs up to this many columns: on the random
#: 15 x 15 x 3 full-mask program it took 1-3 s for a month (45,384 columns; Clarabel 3 s) but more than
#: 240 s for a year (534,360 columns; Clarabel 54 s).
SIMPLEX_MAX_COLUMNS = 100_000

SCALE_ENERGY = False   # True (E in units of the largest e) left Clarabel AlmostSolved on month-scale q = 2 programs

#: A region served within this fraction of its demand by an interior-point solution is served in full.
SNAP_RTOL = 1e-7


def _snap_to_demand(x: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """An interior-point schedule with each region's service scaled to its demand where it falls short
    by at most :data:`SNAP_RTOL` (the solver stops within its tolerance inside the demand rows; the
    ledger would count the rest as unserved load) or exceeds it; sites then stay within capacity to
    the same relative tolerance."""
    served = x.sum(axis=(1, 3))                                              # (T, J)
    short = demand - served
    fix = (served > 0) & ((short < 0) | (short <= SNAP_RTOL * demand))
    factor = np.divide(demand, served, out=np.ones_like(served), where=fix)
    return x * factor[:, None, :, None]


class DirectProgram:
    """The offline program of one window in matrix form (see the module docstring).

    The structure (layout, region classes) comes from the scenario's static data and the weights; the
    series (prices, footprints, demand) are loaded by :meth:`set_series`, with the options MPC needs: the
    social normalization Λ given, the footprints before the window as offsets inside the norms, and
    per-site (per-region) multipliers of the equity coefficients and offsets, as
    :meth:`equiglb.control.offline.OfflineProblem.set_arrays` with ``offsets=True``.

    Args:
        scenario: the window (its static data give the structure, its series the coefficients).
        weights: the objective weights in force.
        allow_unserved: unserved load is a column at ``weights.unserved_penalty_usd`` per load unit.
        T: the program's length in slots: ``None`` loads ``scenario``'s own series (the offline program);
            a number builds the structure only, for series given to :meth:`set_series` (MPC's window).
        simplex_first: try HiGHS's dual simplex before Clarabel on an LP (``None``: by structure and size, see
            :func:`direct_solver_order`).
    """

    def __init__(self, scenario: Scenario, weights: Weights, allow_unserved: bool = True, T: int | None = None,
                 simplex_first: bool | None = None):
        sc, w = scenario, weights
        self.scenario, self.weights, self.allow_unserved = sc, w, allow_unserved
        self.T = sc.T if T is None else T
        self.social = sc.social_in_force(w)
        self.latency = bool(w.mu_latency) and sc.latency is not None
        self.classes = _classes(sc, self.latency)
        make = _commodity_layout if self.social else _flow_layout
        self.e_ref = float(sc.energy_per_unit.max()) if SCALE_ENERGY else 1.0   # E columns: IT MWh / e_ref
        self.layout = make(sc, w, self.classes, self.latency, allow_unserved, self.e_ref)
        self.layout_name = "commodity" if self.social else "flow"
        L = self.layout
        self._onto_t = sp.csr_matrix((np.ones(sc.J), (np.arange(sc.J), L.demand_rows)), shape=(sc.J, L.m)).T
        one_model = all(int(np.count_nonzero(sc.hosting[i] & sc.allowed[i].any(axis=0))) <= 1 for i in range(sc.N))
        self.simplex_first = (not self.social and (len(self.classes) == 1 or one_model)
                              and self.T * self.layout.n <= SIMPLEX_MAX_COLUMNS) if simplex_first is None \
            else simplex_first
        self.q = w.q
        #: a HiGHS instance to solve the LP with (``None``: a new one per solve), and a basis to start it from
        #: (``None``: a cold start; one of another size is ignored): MPC's opt-in warm start
        self.highs: highspy.Highs | None = None
        self.start_basis: highspy.HighsBasis | None = None
        self._offsets: dict[int, np.ndarray] = {}
        self._scales: dict[int, np.ndarray] = {}
        if T is None:
            self.set_series(sc.price, sc.carbon, sc.water, sc.demand)

    def set_series(self, price: np.ndarray, carbon: np.ndarray, water: np.ndarray, demand: np.ndarray,
                   total: np.ndarray | None = None, carbon_t: np.ndarray | None = None,
                   water_m3: np.ndarray | None = None, quality_sum: np.ndarray | None = None,
                   carbon_scale: np.ndarray | None = None, water_scale: np.ndarray | None = None,
                   social_scale: np.ndarray | None = None, capacity: np.ndarray | None = None) -> None:
        """Load the program's series: (T, N) price (USD/MWh), carbon (t/MWh) and water (m³/MWh), (T, J) demand;
        optionally the social normalization Λ (J,) (default: the demand's sum over the window), the
        footprints before the window (carbon_t, water_m3 (N,) and the quality-loss sums (J,), in the
        demand's load units) as offsets inside the norms, the multipliers of site i's carbon and water
        coefficients and offsets (N,) and of region j's social ones (J,), and the capacity in IT MWh per slot,
        (N,) or per slot (T, N) (default: the scenario's)."""
        if price.shape[0] != self.T or demand.shape[0] != self.T:
            raise ValueError(f"DirectProgram built for T={self.T} slots, got series of {price.shape[0]}")
        sc, w = self.scenario, self.weights
        self.price, self.carbon, self.water, self.demand = price, carbon, water, demand
        self.total = demand.sum(axis=0) if total is None else total
        self.capacity = sc.capacity if capacity is None else capacity             # (N,), or (T, N) per slot
        # load unit: the window's mean hourly demand (tolerances become relative)
        total_load = float(demand.sum())
        self.unit = total_load / self.T if total_load > 0 else 1.0
        self._scales = {k: s for k, s in ((_CARBON, carbon_scale), (_WATER, water_scale), (_SOCIAL, social_scale))
                        if s is not None}
        self._offsets = {}
        if carbon_t is not None:
            self._offsets[_CARBON] = w.mu_carbon * sc.region_weights * carbon_t
        if water_m3 is not None:
            self._offsets[_WATER] = w.mu_water * sc.region_weights * water_m3
        if quality_sum is not None and self.social:
            self._offsets[_SOCIAL] = w.mu_social * quality_sum * self._inverse_total()
        for k in self._offsets:
            if k in self._scales:
                self._offsets[k] = self._offsets[k] * self._scales[k]

    def _slot_capacity(self) -> np.ndarray:
        """The E columns' bounds (T, n_E): each slot's capacity of their sites, in the program's units."""
        L = self.layout
        cap = np.broadcast_to(self.capacity, (self.T, self.scenario.N))
        return cap[:, L.e_sites] / (self.unit * self.e_ref)

    def _inverse_total(self) -> np.ndarray:
        """1 / Λ_j (0 where Λ_j = 0)."""
        lam = self.total
        return np.divide(1.0, lam, out=np.zeros(self.scenario.J), where=lam > 0)

    @property
    def columns(self) -> int:
        """Columns of the slot blocks (T · columns per slot), without the norms' auxiliary columns."""
        return self.T * self.layout.n

    @property
    def rows(self) -> int:
        """Equality rows of the slot blocks (T · rows per slot)."""
        return self.T * self.layout.m

    # ------------------------------------------------------------------ coefficients
    def _norms(self) -> list[tuple[int, np.ndarray]]:
        """The equity norms in force: (entry kind, coefficient array), USD per MWh of IT energy
        (carbon, water: (T, N), times e_ref) or per load unit of quality loss (social: (1, J), μ_s / Λ_j),
        times the multipliers of :meth:`set_series`."""
        sc, w = self.scenario, self.weights
        out: list[tuple[int, np.ndarray]] = []
        omega = sc.region_weights * sc.pue
        if w.mu_carbon and np.any(self.carbon * omega):
            out.append((_CARBON, w.mu_carbon * self.e_ref * self.carbon * omega))
        if w.mu_water and np.any(self.water * omega):
            out.append((_WATER, w.mu_water * self.e_ref * self.water * omega))
        if self.social:
            inv = self._inverse_total()
            if np.any(inv):
                out.append((_SOCIAL, (w.mu_social * inv)[None, :]))
        return [(k, a * self._scales[k] if k in self._scales else a) for k, a in out]

    def _norm_offsets(self, norms: list[tuple[int, np.ndarray]]) -> dict[int, np.ndarray]:
        """The offsets (USD, in the program's load units) inside the norms in force that have one."""
        return {k: self._offsets[k] / self.unit for k, _ in norms if k in self._offsets}

    def _offset_constant(self, norms: list[tuple[int, np.ndarray]]) -> float:
        """The offsets' sum, the constant they add to the objective for q = 1 (USD, in the program's load units)."""
        return float(sum(off.sum() for off in self._norm_offsets(norms).values()))

    def _linear_norms_into(self, cost: np.ndarray, norms: list[tuple[int, np.ndarray]]) -> None:
        """q = 1: the norms are sums of nonnegative footprints, linear in the columns; add their coefficients
        to ``cost`` (T, n) in place (carbon, water on the E columns; social on the columns of each region)."""
        L = self.layout
        for kind, a in norms:
            if kind == _SOCIAL:
                cols = np.nonzero(L.social_region >= 0)[0]
                cost[:, cols] += a[0, L.social_region[cols]] * L.social_loss[cols]
            else:
                cost[:, L.e_cols] += a[:, L.e_sites]

    def _template(self, norms: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, ...]:
        """Entries of one slot's columns: (column, kind, index, base value), sorted by column; ``index`` is
        the local row (kind _LOCAL), the site (carbon, water) or the region (social)."""
        L = self.layout
        cols, kinds, idx, vals = [L.col], [np.zeros(L.col.size, np.int64)], [L.row], [L.val]
        kinds_in = {k for k, _ in norms}
        for kind in (_CARBON, _WATER):
            if kind in kinds_in:
                cols.append(L.e_cols)
                kinds.append(np.full(L.e_cols.size, kind))
                idx.append(L.e_sites)
                vals.append(np.ones(L.e_cols.size))
        if _SOCIAL in kinds_in:
            sc_cols = np.nonzero((L.social_region >= 0) & (L.social_loss > 0))[0]
            cols.append(sc_cols)
            kinds.append(np.full(sc_cols.size, _SOCIAL))
            idx.append(L.social_region[sc_cols])
            vals.append(L.social_loss[sc_cols])
        c, k, i, v = (np.concatenate(a) for a in (cols, kinds, idx, vals))
        order = np.lexsort((k, c))
        return c[order], k[order], i[order], v[order]

    def _cost(self) -> np.ndarray:
        """(T, n) USD per scaled column unit: energy price on E (with PUE), latency, penalty."""
        sc, L = self.scenario, self.layout
        cost = np.broadcast_to(L.const_cost, (self.T, L.n)).copy()
        cost[:, L.e_cols] += self.price[:, L.e_sites] * sc.pue[L.e_sites] * self.e_ref
        return cost

    def _rhs(self) -> np.ndarray:
        """(T, m) right-hand sides of the slot rows: demand (in load units of ``unit``), 0 elsewhere."""
        rhs = np.zeros((self.T, self.layout.m))
        rhs += (self._onto_t @ (self.demand / self.unit).T).T      # regions summed onto their demand rows
        return rhs

    def _matrix(self, norms: list[tuple[int, np.ndarray]], link_row: dict[int, np.ndarray],
                link_sign: float, extra_entries: list[tuple[np.ndarray, np.ndarray]] | None,
                n_rows: int, n_extra_cols: int, extra_cols: list[tuple[np.ndarray, np.ndarray]],
                nonneg_base: int | None, ub_base: int | None,
                chunk_base: dict[int, int] | None = None, chunk: int = 0) -> sp.csc_matrix:
        """The constraint matrix in CSC form: the T slot blocks' columns (local rows, the norms' rows at
        ``link_row[kind][index]`` times ``link_sign``, and for Clarabel the rows -x <= 0 at
        ``nonneg_base`` and E <= M at ``ub_base``), then ``extra_cols`` (row indices, values) each. With
        ``chunk_base``, a norm's entries of slot t go to the row of its block of ``chunk`` slots instead
        (``chunk_base[kind] + (t // chunk) * size + index``, with the sign +1)."""
        L = self.layout
        T, n, m = self.T, L.n, L.m
        c, kind, index, base = self._template(norms)
        coef = {k: a for k, a in norms}
        per_t_rows = np.empty((T, c.size), dtype=np.int64)
        per_t_vals = np.empty((T, c.size))
        t_off = (np.arange(T) * m)[:, None]
        loc = kind == _LOCAL
        per_t_rows[:, loc] = t_off + index[loc]
        per_t_vals[:, loc] = base[loc]
        for k in (_CARBON, _WATER, _SOCIAL):
            sel = kind == k
            if not sel.any():
                continue
            a = coef[k]
            sign = link_sign
            if chunk_base is not None:
                per_t_rows[:, sel] = chunk_base[k] + (np.arange(T) // chunk)[:, None] * a.shape[1] + index[sel][None, :]
                sign = 1.0
            else:
                per_t_rows[:, sel] = link_row[k][index[sel]][None, :]
            per_t_vals[:, sel] = sign * base[sel] * a[:, index[sel]] if a.shape[0] == T \
                else sign * base[sel] * a[0, index[sel]][None, :]
        counts = np.bincount(c, minlength=n)
        parts_r, parts_v = [per_t_rows], [per_t_vals]
        if nonneg_base is not None:       # one -1 per column, appended after its other entries
            # insert per column: rebuild order so that each column's entries stay contiguous
            pos = np.cumsum(counts) + np.arange(n)                      # slot-local positions of the -1s
            width = c.size + n
            rows = np.empty((T, width), dtype=np.int64)
            vals = np.empty((T, width))
            keep = np.ones(width, bool)
            keep[pos] = False
            rows[:, keep], vals[:, keep] = per_t_rows, per_t_vals
            rows[:, pos] = nonneg_base + (np.arange(T) * n)[:, None] + np.arange(n)[None, :]
            vals[:, pos] = -1.0
            counts = counts + 1
            if ub_base is not None:
                width2 = width + L.e_cols.size
                csum = np.cumsum(counts)
                pos2 = csum[L.e_cols] + np.arange(L.e_cols.size)          # after each E column's entries
                rows2 = np.empty((T, width2), dtype=np.int64)
                vals2 = np.empty((T, width2))
                keep2 = np.ones(width2, bool)
                keep2[pos2] = False
                rows2[:, keep2], vals2[:, keep2] = rows, vals
                rows2[:, pos2] = ub_base + (np.arange(T) * L.e_cols.size)[:, None] + np.arange(L.e_cols.size)[None, :]
                vals2[:, pos2] = 1.0
                counts = counts.copy()
                counts[L.e_cols] += 1
                rows, vals = rows2, vals2
            parts_r, parts_v = [rows], [vals]
        width = parts_r[0].shape[1]
        indptr = [(np.arange(T)[:, None] * width + np.concatenate([[0], np.cumsum(counts)[:-1]])[None, :]).ravel()]
        indices = [parts_r[0].ravel()]
        data = [parts_v[0].ravel()]
        nnz = T * width
        for r, v in extra_cols:
            indptr.append(np.array([nnz]))
            indices.append(np.asarray(r, dtype=np.int64))
            data.append(np.asarray(v, dtype=np.float64))
            nnz += len(r)
        indptr.append(np.array([nnz]))
        ptr = np.concatenate(indptr)
        A = sp.csc_matrix((np.concatenate(data), np.concatenate(indices), ptr),
                          shape=(n_rows, T * n + len(extra_cols)))
        return A

    # ------------------------------------------------------------------ solvers
    def _solve_highs(self, opts: dict) -> tuple[str, bool, np.ndarray | None, float, float, float]:
        """The LP (q in {1, inf}) with HiGHS. Returns (status, ok, V, objective USD, build s, solve s)."""
        t0 = time.perf_counter()
        L = self.layout
        T, n, m = self.T, L.n, L.m
        norms = self._norms()
        offsets = self._norm_offsets(norms)
        constant = 0.0                     # q = 1: the offsets' sum, outside the LP
        cost = self._cost()
        n_slot_rows = T * m
        link_row: dict[int, np.ndarray] = {}
        extra: list[tuple[np.ndarray, np.ndarray]] = []
        extra_cost: list[float] = []
        n_rows = n_slot_rows
        if self.q == 1.0:
            # the footprints are linear: their coefficients join the cost
            self._linear_norms_into(cost, norms)
            constant = self._offset_constant(norms)
            norms = []
        else:
            for kind, a in norms:
                size = a.shape[1]
                link_row[kind] = n_rows + np.arange(size)
                extra.append((link_row[kind], -np.ones(size)))
                extra_cost.append(1.0)
                n_rows += size
        A = self._matrix(norms, link_row, 1.0, None, n_rows, len(extra), extra, None, None)
        col_cost = np.concatenate([cost.ravel(), extra_cost])
        upper = np.full((T, n), highspy.kHighsInf)
        upper[:, L.e_cols] = self._slot_capacity()
        col_upper = np.concatenate([upper.ravel(), np.full(len(extra), highspy.kHighsInf)])
        rhs = self._rhs().ravel()
        row_lower = np.concatenate([rhs, np.full(n_rows - n_slot_rows, -highspy.kHighsInf)])
        row_upper = np.concatenate([rhs, np.zeros(n_rows - n_slot_rows)])
        for kind, rows in link_row.items():       # q = inf: F + offset - z <= 0
            if kind in offsets:
                row_upper[rows] = -offsets[kind]
        h = highspy.Highs() if self.highs is None else self.highs
        h.setOptionValue("output_flag", False)
        # the dual simplex for the site-level programs (see direct_solver_order); the others are degenerate
        # and block-angular: the interior point method with crossover (2-4x faster than the simplex there)
        if not self.simplex_first:
            h.setOptionValue("solver", "ipm")
        for k, v in opts.items():      # HiGHS's own "solver" option is spelled highs_solver here
            key = "solver" if k == "highs_solver" else k
            if h.setOptionValue(key, v) != highspy.HighsStatus.kOk:
                raise OptionError(f"{k}={v!r}: not a HiGHS option value (the direct program's HiGHS options; "
                                  f"HiGHS's own 'solver' option is spelled highs_solver)")
        pass_lp(h, col_cost, np.zeros(A.shape[1]), col_upper, row_lower, row_upper, A.indptr, A.indices, A.data)
        basis = self.start_basis
        if basis is not None and len(basis.col_status) == A.shape[1] and len(basis.row_status) == A.shape[0]:
            h.setBasis(basis)
        del A
        t1 = time.perf_counter()
        h.run()
        t2 = time.perf_counter()
        status = h.getModelStatus()
        name = h.modelStatusToString(status)
        if status != highspy.HighsModelStatus.kOptimal:
            return name, False, None, math.nan, t1 - t0, t2 - t1
        V = np.asarray(h.getSolution().col_value)[:T * n].reshape(T, n)
        value = float(h.getInfo().objective_function_value) * self.unit
        if constant:
            value += constant * self.unit
        return name, True, V, value, t1 - t0, t2 - t1

    def _solve_clarabel(self, opts: dict) -> tuple[str, bool, np.ndarray | None, float, float, float]:
        """The program with Clarabel (any q). Returns as :meth:`_solve_highs`."""
        t0 = time.perf_counter()
        L = self.layout
        T, n, m = self.T, L.n, L.m
        q = self.q
        norms = self._norms()
        offsets = self._norm_offsets(norms)
        constant = 0.0                     # q = 1: the offsets' sum, outside the program
        cost = self._cost()
        n_E = L.e_cols.size
        n_slot_rows = T * m
        # rows: slot equalities | norm rows (nonnegative for q = inf, cones otherwise) | -x <= 0 | E <= M
        link_row: dict[int, np.ndarray] = {}
        extra: list[tuple[np.ndarray, np.ndarray]] = []
        extra_cost: list[float] = []
        r = n_slot_rows
        # the footprints summed by blocks of ~sqrt(T) slots into free columns P (rows Σ a·E - P = 0), which
        # enter the norms: no row of the matrix holds more than ~sqrt(T) slots (dense rows slow the
        # factorization of the KKT system)
        chunk = max(1, math.ceil(math.sqrt(T)))
        n_chunks = math.ceil(T / chunk)
        chunk_base: dict[int, int] = {}
        if q != 1.0:
            for kind, a in norms:
                chunk_base[kind] = r
                r += n_chunks * a.shape[1]
        cones: list = [clarabel.ZeroConeT(r)]
        n_zero = r
        b_norm: list[np.ndarray] = [np.zeros(r - n_slot_rows)]
        if q == 1.0:
            self._linear_norms_into(cost, norms)
            constant = self._offset_constant(norms)
            norms = []
            sign = 1.0
        elif q == math.inf:
            sign = 1.0
            for kind, a in norms:                  # F_r - z <= 0
                size = a.shape[1]
                link_row[kind] = r + np.arange(size)
                extra.append((link_row[kind], -np.ones(size)))
                extra_cost.append(1.0)
                r += size
            if r > n_zero:
                cones.append(clarabel.NonnegativeConeT(r - n_zero))
            b_norm.append(np.zeros(r - n_zero))
        elif q == 2.0:
            sign = -1.0
            for kind, a in norms:                  # (z, F) in SOC: rows -z, -F
                size = a.shape[1]
                link_row[kind] = r + 1 + np.arange(size)
                extra.append((np.array([r]), -np.ones(1)))
                extra_cost.append(1.0)
                cones.append(clarabel.SecondOrderConeT(size + 1))
                r += size + 1
            b_norm.append(np.zeros(r - n_zero))
        else:
            sign = -1.0
            alpha = 1.0 / q
            pending: list[tuple[int, int, int]] = []
            for kind, a in norms:                  # Σ r_i <= z and (r_i, z, F_i) in POW(1/q)
                size = a.shape[1]
                pending.append((kind, size, r))
                link_row[kind] = r + 1 + 3 * np.arange(size) + 2
                cones.append(clarabel.NonnegativeConeT(1))
                cones.extend(clarabel.PowerConeT(alpha) for _ in range(size))
                r += 1 + 3 * size
            for _kind, size, r0 in pending:
                pw = r0 + 1 + 3 * np.arange(size)
                extra.append((np.concatenate([[r0], pw + 1]), -np.ones(size + 1)))      # z
                extra_cost.append(1.0)
                for i in range(size):                                                  # r_i
                    extra.append((np.array([r0, pw[i]]), np.array([1.0, -1.0])))
                    extra_cost.append(0.0)
            b_norm.append(np.zeros(r - n_zero))
        extra_nonneg = len(extra)
        nonneg_base = r
        ub_base = nonneg_base + T * n
        # the auxiliary columns are nonnegative too
        extra = [(np.append(rows, ub_base + T * n_E + e), np.append(vals, -1.0))
                 for e, (rows, vals) in enumerate(extra)]
        for kind, a in norms:                      # the free block sums P[kind, block, index]
            size = a.shape[1]
            for blk in range(n_chunks):
                for i in range(size):
                    extra.append((np.array([chunk_base[kind] + blk * size + i, link_row[kind][i]]),
                                  np.array([-1.0, sign])))
                    extra_cost.append(0.0)
        n_extra = len(extra)
        n_rows = ub_base + T * n_E + extra_nonneg
        cones.append(clarabel.NonnegativeConeT(T * n + T * n_E + extra_nonneg))
        A = self._matrix(norms, link_row, sign, None, n_rows, n_extra, extra, nonneg_base, ub_base,
                         chunk_base if norms else None, chunk)
        ub = self._slot_capacity().ravel()
        b = np.concatenate([self._rhs().ravel(), *b_norm, np.zeros(T * n), ub, np.zeros(extra_nonneg)])
        for kind, rows in link_row.items():       # the offsets inside the norms: F + offset
            if kind in offsets:
                b[rows] = -sign * offsets[kind]
        c = np.concatenate([cost.ravel(), extra_cost])
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        for k, v in opts.items():
            try:
                setattr(settings, k, v)
            except (AttributeError, TypeError) as exc:
                raise OptionError(f"{k}={v!r}: not a Clarabel setting value ({exc})") from None
        P = sp.csc_matrix((A.shape[1], A.shape[1]))
        solver = clarabel.DefaultSolver(P, c, A, b, cones, settings)
        del A
        t1 = time.perf_counter()
        sol = solver.solve()
        t2 = time.perf_counter()
        name = str(sol.status)
        name = name.split(".")[-1]
        if name != "Solved":
            return name, False, None, math.nan, t1 - t0, t2 - t1
        V = np.asarray(sol.x)[:T * n].reshape(T, n)
        value = float(sol.obj_val) * self.unit
        if constant:
            value += constant * self.unit
        return name, True, V, value, t1 - t0, t2 - t1

    def solve(self, solver: str | None = None, options: dict | None = None, slots: int | None = None) -> DirectOutcome:
        """Try the solvers of :func:`direct_solver_order` until one reports an optimum; ``options`` go to
        the first solver tried (HiGHS options, or Clarabel settings, by name). The outcome's schedule holds
        the first ``slots`` slots (default: all)."""
        opts = dict(options or {})
        sc = self.scenario
        out = DirectOutcome(ok=False, solver="", status="not solved", objective_usd=math.nan,
                            build_time_s=0.0, solve_time_s=0.0)
        rows = slice(0, self.T if slots is None else slots)
        demand = self.demand[rows]
        if not self.demand.any():            # x = 0 is the only feasible routing
            offsets = self._norm_offsets(self._norms()).values()          # constants inside the norms (MPC)
            value = sum(float(np.linalg.norm(off, ord=self.q)) for off in offsets) * self.unit
            out.ok, out.solver, out.status, out.objective_usd = True, "none", "optimal", value
            out.schedule = np.zeros((demand.shape[0], sc.N, sc.J, sc.K))
            out.attempts.append("none: no demand in the window")
            return out
        for n_try, s in enumerate(direct_solver_order(self.q, solver, self.simplex_first)):
            run = self._solve_highs if s == "HIGHS" else self._solve_clarabel
            status, ok, V, value, build_s, solve_s = run(opts if n_try == 0 else {})
            out.build_time_s += build_s
            out.solve_time_s += solve_s
            out.attempts.append(f"{s} (direct): {status}")
            out.solver, out.status = s, status
            if ok and V is not None:
                out.ok, out.status, out.objective_usd = True, "optimal", value
                x = self.layout.rebuild(V[rows] * self.unit, demand)   # type: ignore[operator]
                out.schedule = x if s == "HIGHS" else _snap_to_demand(x, demand)
                return out
        return out
