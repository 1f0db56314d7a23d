"""Per-slot routing shared by the baselines and the environment: the allowed (i, j, k) pairs and a fast per-slot LP.

The per-slot problem of every per-slot policy (equity-oblivious greedy, online eGLB) is

    min  Σ cost[i,j,k] x[i,j,k] + penalty Σ_j u[j]
    s.t. Σ_{i,k} x[i,j,k] + u[j] = λ[j]          (demand, load units)
         Σ_{j,k} e[k] x[i,j,k]     <= M[i]        (capacity, MWh)
         x >= 0 on allowed pairs, u >= 0           (unserved load at the penalty)

:class:`SlotRouter` solves it by a greedy merit order when the cost does not depend on the region
(K = 1, full mask: a transportation problem whose sites are interchangeable for every region) and
with one HiGHS model built once and re-solved with new costs and demand (hot-started from the
previous basis) otherwise; ``scipy.optimize.linprog`` is the fallback.

:class:`PriceRouter` builds that per-slot cost from equity prices (the *calibrated price* of online
eGLB, and of the environment's price action mode) and routes with a :class:`SlotRouter`: the one
definition of "route a slot by prices" in the package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

try:
    import highspy
except ImportError:  # pragma: no cover - highspy ships with scipy's and cvxpy's HiGHS
    highspy = None  # type: ignore[assignment]

from equiglb.scenario import Scenario, Weights

__all__ = ["Pairs", "SlotRouter", "PriceRouter", "repair_by_spare_capacity"]


@dataclass(frozen=True)
class Pairs:
    """The allowed (i, j, k) triples of a scenario, in C order of ``scenario.allowed``.

    Attributes:
        i, j, k: (P,) indices of site, region and model of each pair.
        energy: (P,) e[k], MWh per load unit.
        demand_matrix: (P, J) sparse 0/1, ``x_pairs @ demand_matrix`` = served load per region.
        capacity_matrix: (P, N) sparse, entries e[k]: ``x_pairs @ capacity_matrix`` = IT MWh per site.
    """

    shape: tuple[int, int, int]
    i: np.ndarray
    j: np.ndarray
    k: np.ndarray
    energy: np.ndarray
    demand_matrix: sp.csr_matrix
    capacity_matrix: sp.csr_matrix

    @classmethod
    def of(cls, scenario: Scenario) -> Pairs:
        """The pairs of ``scenario`` (mask and hosting)."""
        N, J, K = scenario.N, scenario.J, scenario.K
        i, j, k = np.nonzero(scenario.allowed)
        P = i.size
        e = np.asarray(scenario.energy_per_unit)[k]
        ones = np.ones(P)
        rows = np.arange(P)
        return cls(
            shape=(N, J, K), i=i, j=j, k=k, energy=e,
            demand_matrix=sp.csr_matrix((ones, (rows, j)), shape=(P, J)),
            capacity_matrix=sp.csr_matrix((e, (rows, i)), shape=(P, N)),
        )

    @property
    def P(self) -> int:
        """Number of allowed pairs."""
        return int(self.i.size)

    def scatter(self, x_pairs: np.ndarray) -> np.ndarray:
        """(..., P) pair loads to (..., N, J, K) routings (zero on pairs that are not allowed)."""
        x_pairs = np.asarray(x_pairs)
        out = np.zeros(x_pairs.shape[:-1] + self.shape)
        out[..., self.i, self.j, self.k] = x_pairs
        return out


class SlotRouter:
    """Solves the per-slot routing LP of the module docstring for one scenario (cached structure).

    Args:
        scenario: gives the pairs, capacity M[i] and energy per unit e[k].
        penalty_usd: USD per unserved load unit (the Weights' ``unserved_penalty_usd``).
    """

    def __init__(self, scenario: Scenario, penalty_usd: float):
        self.pairs = Pairs.of(scenario)
        self.penalty = float(penalty_usd)
        self.capacity = np.asarray(scenario.capacity, dtype=np.float64)
        self.N, self.J, self.K = scenario.N, scenario.J, scenario.K
        self.full = bool(scenario.allowed.all()) and self.K == 1
        pr = self.pairs
        P, J = pr.P, self.J
        # LP variables [x_pairs (P), u (J)]
        self._A_eq = sp.hstack([pr.demand_matrix.T, sp.identity(J)], format="csc")
        self._A_ub = sp.hstack([pr.capacity_matrix.T, sp.csr_matrix((self.N, J))], format="csc")
        self._bounds = (0, None)
        self._P = P
        self._highs = self._build_highs()

    def __getstate__(self) -> dict:
        """Copy and pickle support: the HiGHS model is not picklable, so the state holds the arrays and
        the model's current basis (the hot start of the next solve); :meth:`__setstate__` rebuilds the
        model and restores that basis. Each solve starts from the basis alone (:meth:`route_pairs`), so the
        original and the copy solve the next slots from the same state (bit-identical routings)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_highs", "_optimal")}
        state["_basis"] = _highs_basis(self.__dict__.get("_highs"))
        return state

    def __setstate__(self, state: dict) -> None:
        """Rebuild the HiGHS model after a copy or an unpickling and restore its basis."""
        basis = state.pop("_basis", None)
        self.__dict__.update(state)
        self._highs = self._build_highs()
        _set_highs_basis(self._highs, basis)

    def route(self, cost: np.ndarray, demand: np.ndarray) -> np.ndarray:
        """Optimal routing (N, J, K) for per-unit ``cost`` (N, J, K) in USD and ``demand`` (J,)."""
        if self.full and np.all(cost[:, :1, 0] == cost[:, :, 0]):
            return self._greedy(cost[:, 0, 0], demand)
        return self.pairs.scatter(self.route_pairs(cost[self.pairs.i, self.pairs.j, self.pairs.k], demand))

    def _build_highs(self):
        """One HiGHS model kept across slots (only costs and demand change; hot-started from the last
        basis), or None when highspy is unavailable (then scipy's linprog is used)."""
        if highspy is None:  # pragma: no cover
            return None
        n = self._P + self.J
        A = sp.vstack([self._A_eq, self._A_ub], format="csc")
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, A.shape[0]
        lp.col_cost_ = np.zeros(n)
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.full(n, highspy.kHighsInf)
        lp.row_lower_ = np.concatenate([np.zeros(self.J), np.full(self.N, -highspy.kHighsInf)])
        lp.row_upper_ = np.concatenate([np.zeros(self.J), self.capacity])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr
        lp.a_matrix_.index_ = A.indices
        lp.a_matrix_.value_ = A.data
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.passModel(lp)
        self._cols = np.arange(n, dtype=np.int32)
        self._demand_rows = np.arange(self.J, dtype=np.int32)
        self._capacity_rows = np.arange(self.J, self.J + self.N, dtype=np.int32)
        self._optimal = highspy.HighsModelStatus.kOptimal
        return h

    def route_pairs(self, cost_pairs: np.ndarray, demand: np.ndarray) -> np.ndarray:
        """Optimal pair loads (P,) by HiGHS for per-unit pair costs (P,) and demand (J,).

        The LP is solved in units of the slot's total demand (so that HiGHS' absolute tolerances
        are relative ones, whatever the scenario's unit) and its solution is projected onto the
        capacity and demand constraints exactly: a site over capacity, or a region served more than
        its demand, by the solver's rounding is scaled down to the bound.
        """
        d = np.asarray(demand, dtype=np.float64)
        scale = float(d.sum())
        if scale <= 0:
            return np.zeros(self._P)
        c = np.concatenate([cost_pairs, np.full(self.J, self.penalty)])
        h = self._highs
        x = None
        if h is not None:
            h.changeColsCost(c.size, self._cols, c)
            h.changeRowsBounds(self.J, self._demand_rows, d / scale, d / scale)
            h.changeRowsBounds(self.N, self._capacity_rows, np.full(self.N, -highspy.kHighsInf), self.capacity / scale)
            # hot start from the last basis only (not HiGHS' factorization or pricing weights): the solve
            # is then a function of the basis and the data, which a copy of the router restores exactly
            basis = h.getBasis()
            h.clearSolver()
            if basis.valid:
                h.setBasis(basis)
            h.run()
            if h.getModelStatus() == self._optimal:
                x = np.asarray(h.getSolution().col_value)[: self._P]
        if x is None:
            from scipy.optimize import linprog  # noqa: PLC0415  (the fallback only: scipy.optimize is slow to import)

            res = linprog(c, A_ub=self._A_ub, b_ub=self.capacity / scale, A_eq=self._A_eq, b_eq=d / scale,
                          bounds=self._bounds, method="highs")
            if res.status != 0:
                raise RuntimeError(f"per-slot routing LP failed: {res.message}")
            x = res.x[: self._P]
        x = np.maximum(x, 0.0) * scale
        pr = self.pairs
        load = pr.capacity_matrix.T @ x                                  # IT MWh per site
        over = np.divide(self.capacity, load, out=np.ones(self.N), where=load > self.capacity)
        x = x * over[pr.i]
        served = pr.demand_matrix.T @ x                                  # load units per region
        excess = np.divide(d, served, out=np.ones(self.J), where=served > d)
        return x * excess[pr.j]

    def _greedy(self, site_cost: np.ndarray, demand: np.ndarray) -> np.ndarray:
        """Merit order (K = 1, full mask): fill the cheapest sites; every region gets the same mix."""
        e = self.pairs.energy[0]
        total = float(demand.sum())
        load = np.zeros(self.N)
        left = total
        for i in np.argsort(site_cost, kind="stable"):
            if left <= 0 or site_cost[i] >= self.penalty:
                break
            take = min(left, self.capacity[i] / e)
            load[i] = take
            left -= take
        x = np.zeros((self.N, self.J, 1))
        if total > 0:
            x[:, :, 0] = load[:, None] * (demand / total)[None, :]
        return x


class PriceRouter:
    """Routes slot t by the calibrated price: energy price plus per-site equity prices on footprints.

    The per-unit cost of pair (i, j, k) in USD is

        e[k] · PUE_i · (p[t,i] + γᶜ_i c[t,i] + γʷ_i w[t,i])  +  σ_j s[k]  +  μ_d d[i, j]

    with γᶜ in USD/t CO2 and γʷ in USD/m³ per site, σ_j in USD per load unit and unit of quality
    loss per region (the social block; only when the scenario has one) and the latency term when the
    weights price latency. The slot is routed by the scenario's :class:`SlotRouter` (merit order or
    per-slot LP). With γ = 0 this is per-slot minimum-cost routing.

    Args:
        scenario: the window routed (its data of slot t is read at slot t only).
        weights: gives ``mu_latency`` and ``unserved_penalty_usd``.
        router: a :class:`SlotRouter` to share (default: a new one). It depends only on the static
            data, so one router serves every window of a scenario (an environment builds it once and
            passes it for each episode's window); it is checked against ``scenario`` and ``weights``.
            Its per-slot LP is hot-started from the last basis it solved, so routings through a
            shared router can differ from a fresh one's in the last bits (round-off of another
            simplex path, ~1e-16 load units).
    """

    def __init__(self, scenario: Scenario, weights: Weights, router: SlotRouter | None = None):
        sc = scenario
        self.scenario = sc
        if router is None:
            router = SlotRouter(sc, weights.unserved_penalty_usd)
        elif (router.pairs.shape != (sc.N, sc.J, sc.K) or router.pairs.P != int(sc.allowed.sum())
              or not np.array_equal(router.capacity, sc.capacity) or router.penalty != weights.unserved_penalty_usd):
            raise ValueError(f"PriceRouter: the SlotRouter given was built for other static data or penalty "
                             f"than scenario {sc.name!r} with unserved_penalty_usd={weights.unserved_penalty_usd}")
        self.router = router
        self.shape = (sc.N, sc.J, sc.K)
        self._e = np.asarray(sc.energy_per_unit)
        self._ql = np.asarray(sc.quality_loss)
        self._pue = np.asarray(sc.pue)
        lat = sc.latency if (sc.latency is not None and weights.mu_latency) else None
        self._lat_cost = None if lat is None else weights.mu_latency * lat[:, :, None]

    def route_cost(self, t: int, site_cost: np.ndarray, social_cost: np.ndarray | None = None) -> np.ndarray:
        """Route slot t for a per-site cost (N,) in USD per IT MWh and an optional per-region social
        cost (J,) in USD per load unit and unit of quality loss; returns x (N, J, K) in load units."""
        cost = site_cost[:, None, None] * self._e[None, None, :]                       # (N, 1, K)
        if social_cost is not None:
            cost = cost + social_cost[None, :, None] * self._ql[None, None, :]
        if self._lat_cost is not None:
            cost = cost + self._lat_cost
        return self.router.route(np.broadcast_to(cost, self.shape), self.scenario.demand[t])

    def route(self, t: int, gamma_carbon: np.ndarray, gamma_water: np.ndarray,
              gamma_social: np.ndarray | None = None) -> np.ndarray:
        """Route slot t by given equity prices, without any dual state.

        Args:
            t: slot index in the scenario.
            gamma_carbon: (N,) USD per tonne CO2 emitted at each site.
            gamma_water: (N,) USD per m³ of water consumed at each site.
            gamma_social: (J,) USD per load unit and unit of quality loss, per region, or None.

        Returns:
            The routing x (N, J, K) in load units (demand and capacity respected; unserved load only
            where no capacity is left, priced at the penalty).
        """
        sc = self.scenario
        site = self._pue * (sc.price[t] + gamma_carbon * sc.carbon[t] + gamma_water * sc.water[t])
        return self.route_cost(t, site, gamma_social)


def repair_by_spare_capacity(scenario: Scenario, x: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Make a slot routing ``x`` (N, J, K) respect capacity, keeping each region's split where possible.

    Overloaded sites are scaled down to capacity; the load they shed is offered to the same region's
    other allowed pairs in proportion to their spare capacity (in MWh), for a few rounds. What cannot
    be placed stays unserved (the ledger prices it). This is the repair of the equity-oblivious
    baselines, which have no preference among the other sites; the environment's repair
    (:func:`equiglb.envs.actions.repair`) moves shed load in proportion to the agent's weights instead.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    allowed = scenario.allowed
    e, M = np.asarray(scenario.energy_per_unit), scenario.capacity
    for _ in range(rounds):
        energy = (x @ e).sum(axis=1)                                    # (N,) MWh
        over = energy > M * (1 + 1e-12)
        if not over.any():
            break
        scale = np.where(over, M / np.maximum(energy, 1e-300), 1.0)
        shed = (x * (1 - scale)[:, None, None]).sum(axis=(0, 2))       # (J,) load units shed
        x *= scale[:, None, None]
        spare = np.maximum(M - (x @ e).sum(axis=1), 0.0)               # (N,) MWh
        weight = allowed * (spare[:, None, None] / e[None, None, :])    # (N, J, K) load units
        tot = weight.sum(axis=(0, 2))
        frac = np.divide(weight, tot[None, :, None], out=np.zeros_like(weight), where=tot[None, :, None] > 0)
        x += frac * shed[None, :, None]
    energy = (x @ e).sum(axis=1)
    over = energy > M
    if over.any():  # last resort: scale down (the shed load is unserved)
        x *= np.where(over, M / energy, 1.0)[:, None, None]
    return x


def _highs_basis(h) -> tuple[list[int], list[int]] | None:
    """The basis of HiGHS model ``h`` as (column statuses, row statuses) of plain ints, or None when
    there is no model or no valid basis yet."""
    if h is None:
        return None
    basis = h.getBasis()
    if not basis.valid:
        return None
    return [int(v) for v in basis.col_status], [int(v) for v in basis.row_status]


def _set_highs_basis(h, basis: tuple[list[int], list[int]] | None) -> None:
    """Give HiGHS model ``h`` the basis of :func:`_highs_basis` (nothing when either is None)."""
    if h is None or basis is None:
        return
    b = highspy.HighsBasis()
    b.col_status = [highspy.HighsBasisStatus(v) for v in basis[0]]
    b.row_status = [highspy.HighsBasisStatus(v) for v in basis[1]]
    b.valid = True
    h.setBasis(b)
