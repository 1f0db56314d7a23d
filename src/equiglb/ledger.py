"""The ledger: the single place that turns a routing into costs, footprints and J(x) (docs/model.md §2–§5).

Two entry points share the same formulas:

* :func:`evaluate` takes a whole schedule ``x[t, i, j, k]`` and returns a :class:`Report` with the
  energy cost, regional carbon C, water W, social cost S, unserved load, J(x) and the metrics
  (max, mean, PAR, L_q, Jain, Gini). Baselines and evaluation tables call it.
* :class:`Ledger` accounts slot by slot (with an optional leading batch axis of B copies) and
  returns the telescoping reward ``r_t = -(cost_t + Φ_t - Φ_{t-1})``, so that the undiscounted
  return of an episode is exactly ``-J(x)``. ``Ledger.step(t, routing)`` takes a routing value
  (:class:`DenseRouting` or :class:`FactoredRouting`) that computes its own per-site and per-region
  totals (:class:`SlotTotals`); :meth:`Ledger.account` accounts them and :meth:`Ledger.record` keeps the
  slot's results (also those of the environment's compiled step).

Both call the same slot formulas: :func:`energy_accounts` (facility energy, energy cost, carbon and
water), :func:`unserved_of` and :func:`equity_terms` (Φ).

Accounting per slot t (``x`` in load units):

* IT energy ``Σ_{j,k} e[k] x[i,j,k]`` (MWh), facility energy ``E[i] = γ[i] · IT energy`` (MWh)
* energy cost ``Σ_i p[t,i] E[i]`` (USD); carbon ``c[t,i] E[i]`` (t); water ``w[t,i] E[i]`` (m³)
* quality loss of region j ``Σ_{i,k} s[k] x[i,j,k]``; S[j] is its sum over the window divided by the
  window's total demand of region j (S[j] = 0 for a region without demand)
* load-weighted latency ``Σ d[i,j] x[i,j,k]``; unserved: the shortfall ``λ[t,j] - Σ_{i,k} x[i,j,k]``
  when it exceeds ``UNSERVED_RTOL · λ[t,j]`` (a smaller one is float rounding of demand that was
  served in full, e.g. at sites filled exactly to capacity), else 0

slot cost ``cost_t = energy cost + μ_d·latency + penalty·unserved`` and equity part
``Φ = μ_c‖ω⊙C‖_q + μ_w‖ω⊙W‖_q + μ_s‖S‖_q`` on the cumulative footprints (:func:`equity_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from equiglb.scenario import Scenario, Weights

__all__ = [
    "lq_norm", "jain_index", "gini", "inequality_stats", "equity_terms", "weights_in_force",
    "Ledger", "SlotTotals", "DenseRouting", "FactoredRouting", "Report", "evaluate", "objective",
    "check_schedule", "unserved_of", "energy_accounts", "UNSERVED_RTOL",
]

#: A shortfall of at most this fraction of a region's demand is float rounding, not unserved load.
UNSERVED_RTOL = 1e-9


def unserved_of(demand: np.ndarray, served: np.ndarray) -> np.ndarray:
    """Unserved load (load units): the shortfall ``demand - served`` where it exceeds
    ``UNSERVED_RTOL · demand``, else 0. Elementwise, any shape."""
    short = demand - served
    return np.where(short > UNSERVED_RTOL * demand, short, 0.0)


# ---------------------------------------------------------------------- norms and inequality metrics
def lq_norm(v: np.ndarray, q: float, axis: int = -1, nonnegative: bool = False) -> np.ndarray:
    """L_q norm along ``axis`` for q in [1, inf]; ``nonnegative=True`` skips the ``abs`` (v >= 0 known)."""
    if not nonnegative:
        v = np.abs(v)
    if v.ndim > 1 and v.size >= 256:
        # numpy reduces a short trailing axis slowly; reduce over a leading contiguous axis instead
        v = np.ascontiguousarray(np.moveaxis(v, axis, 0))
        axis = 0
    if q == math.inf:
        return v.max(axis=axis)
    if q == 1.0:
        return v.sum(axis=axis)
    if q == 2.0:
        return np.sqrt((v * v).sum(axis=axis))
    # scale by the max for numerical safety at large q
    m = v.max(axis=axis, keepdims=True)
    safe = np.where(m > 0, m, 1.0)
    return np.squeeze(m, axis=axis) * ((v / safe) ** q).sum(axis=axis) ** (1.0 / q)


def jain_index(v: np.ndarray) -> float:
    """Jain's fairness index (Σv)² / (n Σv²), in [1/n, 1]; 1 for all-equal (and all-zero) vectors."""
    v = np.asarray(v, dtype=np.float64)
    sq = float((v * v).sum())
    return 1.0 if sq == 0 else float(v.sum() ** 2 / (v.size * sq))


def gini(v: np.ndarray) -> float:
    """Gini coefficient Σ_ab |v_a - v_b| / (2 n² mean), in [0, 1 - 1/n]; 0 for all-equal vectors."""
    v = np.sort(np.asarray(v, dtype=np.float64))
    n, total = v.size, float(v.sum())
    if total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * v).sum() / (n * total)) - (n + 1.0) / n)


def inequality_stats(v: np.ndarray, q: float) -> dict[str, float]:
    """max, mean, PAR (max/mean; 1 when all zero), L_q norm, Jain's index and Gini of a vector."""
    v = np.asarray(v, dtype=np.float64)
    mx, mean = float(v.max()), float(v.mean())
    return {
        "max": mx,
        "mean": mean,
        "par": mx / mean if mean > 0 else 1.0,
        "lq": float(lq_norm(v, q)),
        "jain": jain_index(v),
        "gini": gini(v),
    }


def weights_in_force(scenario: Scenario, weights: Weights | None) -> Weights:
    """The objective weights that apply: ``weights`` when given, else the scenario's own."""
    return scenario.weights if weights is None else weights


def equity_terms(carbon_t: np.ndarray, water_m3: np.ndarray, social: np.ndarray | None, weights: Weights,
                 region_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | float]:
    """The equity part of J(x), term by term (USD): ``μ_c‖ω⊙C‖_q``, ``μ_w‖ω⊙W‖_q`` and ``μ_s‖S‖_q``.

    The one definition of Φ (their sum), batched over leading axes. ``C`` and ``W`` are (..., N),
    ``S`` is (..., J) or None when the social term is not in force (μ_s = 0 makes it 0 as well).
    """
    q = weights.q
    carbon = weights.mu_carbon * lq_norm(region_weights * carbon_t, q, nonnegative=True)
    water = weights.mu_water * lq_norm(region_weights * water_m3, q, nonnegative=True)
    social_term: np.ndarray | float = 0.0
    if weights.mu_social and social is not None:
        social_term = weights.mu_social * lq_norm(social, q, nonnegative=True)
    return carbon, water, social_term


def energy_accounts(scenario: Scenario, t: int | np.ndarray | slice, it_mwh: np.ndarray,
                    intensity: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The slot formulas of energy, cost and footprints, for slot(s) ``t`` of ``scenario`` (an int, (B,) slots,
    or ``slice(None)`` for a whole schedule) from the IT energy ``it_mwh`` (..., N) of each site (MWh).

    Returns the facility energy ``E = γ · IT energy`` (..., N) MWh, the energy cost ``p[t] · E`` of each site
    (..., N) USD and the carbon ``c[t] · E`` (t) and water ``w[t] · E`` (m³) of each site stacked (..., 2, N).
    :func:`evaluate` and :meth:`Ledger.account` both call it; ``intensity`` is ``c`` and ``w`` stacked
    (T, 2, N), if the caller keeps it.
    """
    if intensity is None:
        intensity = np.stack([scenario.carbon, scenario.water], axis=1)
    E = it_mwh * scenario.pue
    return E, scenario.price[t] * E, intensity[t] * E[..., None, :]


# ---------------------------------------------------------------------- whole schedules
@dataclass
class Report:
    """Everything the ledger computes for one schedule on one window. Units in the names."""

    scenario: str
    q: float
    energy_cost_usd: float
    facility_energy_mwh: np.ndarray      # (N,) Σ_t E[i, t]
    carbon_t: np.ndarray                 # (N,) C[i]
    water_m3: np.ndarray                 # (N,) W[i]
    social: np.ndarray                   # (J,) S[j], average quality loss of region j's demand
    unserved_load: float                 # Σ_{t,j} unserved, load units
    unserved_by_region: np.ndarray       # (J,)
    latency_load: float                  # Σ d[i,j] x, latency units × load units
    carbon_term_usd: float               # μ_c‖ω⊙C‖_q
    water_term_usd: float                # μ_w‖ω⊙W‖_q
    social_term_usd: float               # μ_s‖S‖_q
    latency_term_usd: float              # μ_d · latency
    unserved_term_usd: float             # penalty · unserved
    objective_usd: float                 # J(x)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)  # carbon/water/social -> stats

    def row(self) -> dict[str, Any]:
        """A flat dict for tables (CSV/JSON columns with units)."""
        c, w, s = self.stats["carbon"], self.stats["water"], self.stats["social"]
        return {
            "scenario": self.scenario,
            "energy_cost_usd": self.energy_cost_usd,
            "carbon_max_t": c["max"], "carbon_mean_t": c["mean"], "carbon_par": c["par"],
            "carbon_lq_t": c["lq"], "carbon_jain": c["jain"], "carbon_gini": c["gini"],
            "water_max_m3": w["max"], "water_mean_m3": w["mean"], "water_par": w["par"],
            "water_lq_m3": w["lq"], "water_jain": w["jain"], "water_gini": w["gini"],
            "social_max": s["max"], "social_mean": s["mean"], "social_par": s["par"],
            "social_lq": s["lq"],
            "unserved": self.unserved_load,
            "objective": self.objective_usd,
        }


def check_schedule(scenario: Scenario, x: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """Return ``x`` as float64 (T, N, J, K) after checking shape, finiteness and sign.

    Raises ValueError naming the problem. Small negative values (> -atol) from solvers are clipped.
    """
    x = np.asarray(x, dtype=np.float64)
    shape = (scenario.T, scenario.N, scenario.J, scenario.K)
    if x.shape != shape:
        raise ValueError(f"schedule has shape {x.shape}, expected (T, N, J, K) = {shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"schedule has non-finite values at {np.argwhere(~np.isfinite(x))[0].tolist()}")
    if np.any(x < -atol):
        raise ValueError(f"schedule has negative load {float(x.min())!r} at {np.argwhere(x < -atol)[0].tolist()}")
    return np.maximum(x, 0.0)


def evaluate(scenario: Scenario, x: np.ndarray, weights: Weights | None = None) -> Report:
    """Account a whole schedule ``x[t, i, j, k]`` (load units) on ``scenario``: J(x) and metrics."""
    w = weights_in_force(scenario, weights)
    x = check_schedule(scenario, x)
    sc = scenario
    T, N, J, K = x.shape
    # contractions as 2-D matmuls over flattened axes (numpy reduces short trailing axes slowly)
    it_mwh = (x.reshape(T * N, J * K) @ np.tile(sc.energy_per_unit, J)).reshape(T, N)   # (T, N)
    E, cost_by_site, footprint = energy_accounts(sc, slice(None), it_mwh)
    energy_cost = float(cost_by_site.sum())
    C, W = footprint.sum(axis=0)
    by_region = (np.ones(N) @ x.reshape(T, N, J * K)).reshape(T, J, K)   # Σ_i x[t, i, j, k]
    served = by_region.sum(axis=2)                              # (T, J)
    unserved = unserved_of(sc.demand, served)
    total_demand = sc.demand.sum(axis=0)
    quality = by_region.sum(axis=0) @ sc.quality_loss           # (J,) Σ_{t,i,k} s[k] x
    S = np.divide(quality, total_demand, out=np.zeros_like(quality), where=total_demand > 0)
    latency = 0.0
    if sc.latency is not None:
        latency = float((x.reshape(T, N * J * K) @ np.repeat(sc.latency.reshape(-1), K)).sum())
    omega = sc.region_weights
    carbon_term, water_term, social_term = (float(v) for v in equity_terms(C, W, S, w, omega))
    latency_term = w.mu_latency * latency
    unserved_total = float(unserved.sum())
    unserved_term = w.unserved_penalty_usd * unserved_total
    J = energy_cost + carbon_term + water_term + social_term + latency_term + unserved_term
    return Report(
        scenario=sc.name, q=w.q, energy_cost_usd=energy_cost, facility_energy_mwh=E.sum(axis=0),
        carbon_t=C, water_m3=W, social=S, unserved_load=unserved_total,
        unserved_by_region=unserved.sum(axis=0), latency_load=latency,
        carbon_term_usd=carbon_term, water_term_usd=water_term, social_term_usd=social_term,
        latency_term_usd=latency_term, unserved_term_usd=unserved_term, objective_usd=J,
        stats={"carbon": inequality_stats(omega * C, w.q), "water": inequality_stats(omega * W, w.q),
               "social": inequality_stats(S, w.q)},
    )


def objective(scenario: Scenario, x: np.ndarray, weights: Weights | None = None) -> float:
    """J(x) in USD (see :func:`evaluate`)."""
    return evaluate(scenario, x, weights).objective_usd


# ---------------------------------------------------------------------- slot by slot
@dataclass
class SlotTotals:
    """What the ledger needs of one slot's routing x (leading batch axes allowed).

    Attributes:
        it_mwh: IT energy per site ``Σ_{j,k} e[k] x[i, j, k]`` (..., N), MWh.
        served: load served per region ``Σ_{i,k} x[i, j, k]`` (..., J), load units.
        quality: quality loss per region ``Σ_{i,k} s[k] x[i, j, k]`` (..., J), or None when not tracked.
        latency: load-weighted latency ``Σ d[i, j] x[i, j, k]`` (...,), or None when not in force.
    """

    it_mwh: np.ndarray
    served: np.ndarray
    quality: np.ndarray | None
    latency: np.ndarray | None


@dataclass
class DenseRouting:
    """A slot's routing as the full array ``x`` (..., N, J, K), load units."""

    x: np.ndarray

    def dense(self) -> np.ndarray:
        """x[..., i, j, k] (load units)."""
        return self.x

    def totals(self, ledger: Ledger) -> SlotTotals:
        """Contract x into the slot totals (matmuls over an (..., N, J*K) view)."""
        sc = ledger.scenario
        N, J, K = sc.N, sc.J, sc.K
        lead = self.x.shape[:-3]
        x2 = self.x.reshape(lead + (N, J * K))
        by_region = x2.sum(axis=-2).reshape(lead + (J, K))               # Σ_i x[i, j, k]
        quality = by_region @ sc.quality_loss if ledger.tracks_social else None
        latency = None
        if ledger.latency_by_column is not None:
            latency = self.x.reshape(lead + (N * J * K,)) @ ledger.latency_by_column
        it_mwh = (x2.reshape(-1, J * K) @ ledger.energy_by_column).reshape(lead + (N,))
        return SlotTotals(it_mwh=it_mwh, served=by_region.sum(axis=-1),
                          quality=quality, latency=latency)


@dataclass
class FactoredRouting:
    """A slot's routing that factors as ``x[..., i, j, k] = site_load[..., i, k] · share[..., j]``.

    This is the routing of a group of regions that split their demand by the same fractions
    (``site_scores`` actions): ``site_load`` (..., N, K) is the group's load per site and model,
    ``share`` (..., J) each region's fraction of the group's demand.
    """

    site_load: np.ndarray
    share: np.ndarray

    def dense(self) -> np.ndarray:
        """x[..., i, j, k] (load units)."""
        return self.site_load[..., :, None, :] * self.share[..., None, :, None]

    def totals(self, ledger: Ledger) -> SlotTotals:
        """The slot totals from the factors, without building x."""
        sc = ledger.scenario
        y, share = self.site_load, self.share
        by_model = y.sum(axis=-2)                                           # (..., K) Σ_i y[i, k]
        quality = share * (by_model @ sc.quality_loss)[..., None] if ledger.tracks_social else None
        latency = None
        if ledger.tracks_latency and sc.latency is not None:               # Σ_i (Σ_k y[i, k]) (d @ share)[i]
            latency = ((share @ sc.latency.T) * y.sum(axis=-1)).sum(axis=-1)
        it_mwh = (y.reshape(-1, sc.K) @ sc.energy_per_unit).reshape(y.shape[:-1])   # one 2-D matmul
        return SlotTotals(it_mwh=it_mwh, served=share * by_model.sum(axis=-1)[..., None],
                          quality=quality, latency=latency)


class Ledger:
    """Incremental accounting of routings slot by slot; returns telescoping rewards.

    ``batch_size=None`` accounts one episode (arrays without a batch axis); an int B accounts B
    copies at once (arrays with a leading axis of B), each with its own slot index. The formulas
    are the same numpy expressions in both cases (:meth:`account`).

    After :meth:`step`, the attributes ``energy_cost_usd``, ``facility_energy_mwh``,
    ``unserved_load``, ``latency_load`` and ``slot_cost_usd`` hold that slot's quantities;
    ``footprint`` (..., 2, N) the cumulative carbon C (t) and water W (m³) stacked (``carbon_t`` and
    ``water_m3`` are views of its rows), ``quality_sum`` and ``phi_usd`` the rest of the state.

    Example::

        ledger = Ledger(scenario)
        ledger.reset(start=0, length=scenario.T)
        ret = sum(ledger.step(t, DenseRouting(x[t])) for t in range(scenario.T))   # == -objective(scenario, x)
    """

    def __init__(self, scenario: Scenario, weights: Weights | None = None, batch_size: int | None = None):
        self.scenario = sc = scenario
        self.weights = weights_in_force(scenario, weights)
        self.batch_size = batch_size
        #: whether the quality loss (social cost S) is accumulated: quality losses or μ_s > 0
        self.tracks_social = sc.social_tracked(self.weights)
        #: whether latency is charged: the scenario has latencies and μ_d > 0
        self.tracks_latency = sc.latency is not None and bool(self.weights.mu_latency)
        #: e[k] of column (j, k) of x reshaped to (N, J*K), and d[i, j] of entry (i, j, k) of x flattened
        #: (None when latency is not charged): the constants that DenseRouting contracts x with
        self.energy_by_column = np.tile(sc.energy_per_unit, sc.J)
        self.latency_by_column = (np.repeat(sc.latency.reshape(-1), sc.K)
                                  if self.tracks_latency and sc.latency is not None else None)
        self._intensity = np.stack([sc.carbon, sc.water], axis=1)           # (T, 2, N): c and w stacked
        self._demand_cumsum = np.concatenate([np.zeros((1, sc.J)), np.cumsum(sc.demand, axis=0)])
        b = () if batch_size is None else (batch_size,)
        self.footprint = np.zeros(b + (2, sc.N))      # carbon_t and water_m3 are views of its rows
        self.quality_sum = np.zeros(b + (sc.J,))
        self.inv_window_demand = np.zeros(b + (sc.J,))
        # the slot's quantities: (B,) arrays with a batch, 0-d arrays for one copy
        self.phi_usd: np.ndarray | float = np.zeros(b)
        self.energy_cost_usd: np.ndarray | float = np.zeros(b)
        self.facility_energy_mwh = np.zeros(b + (sc.N,))
        self.unserved_load: np.ndarray | float = np.zeros(b)
        self.latency_load: np.ndarray | float = np.zeros(b)
        self.slot_cost_usd: np.ndarray | float = np.zeros(b)

    @property
    def carbon_t(self) -> np.ndarray:
        """Cumulative carbon C[i] (t) of each site, (..., N): a view of ``footprint[..., 0, :]``.

        Derived on each access rather than stored, so that a copy (``copy.deepcopy``, ``pickle``) of
        the ledger, which copies ``footprint`` into a new array, cannot hold a stale detached copy.
        """
        return self.footprint[..., 0, :]

    @property
    def water_m3(self) -> np.ndarray:
        """Cumulative water W[i] (m³) of each site, (..., N): a view of ``footprint[..., 1, :]`` (see
        :attr:`carbon_t`)."""
        return self.footprint[..., 1, :]

    def reset(self, start: int | np.ndarray = 0, length: int | np.ndarray | None = None,
              index: np.ndarray | slice | None = None) -> None:
        """Zero the cumulative state for a window ``start .. start+length-1``.

        With a batch, ``start``/``length`` may be per-copy arrays and ``index`` (bool mask or
        indices) selects the copies to reset; the others keep their state.
        """
        if length is None:
            length = self.scenario.T - np.asarray(start)
        total = self._demand_cumsum[np.asarray(start) + np.asarray(length)] - self._demand_cumsum[start]
        inv = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        sel = (...,) if index is None else index
        self.inv_window_demand[sel] = inv
        self.footprint[sel] = 0.0
        self.quality_sum[sel] = 0.0
        for name in ("phi_usd", "energy_cost_usd", "facility_energy_mwh", "unserved_load", "latency_load",
                     "slot_cost_usd"):
            value = np.array(getattr(self, name))        # a slot's quantities: zero for the reset copies
            value[sel] = 0.0
            setattr(self, name, value)

    def social(self) -> np.ndarray:
        """Cumulative social cost S[j] so far (normalized by the window's total demand)."""
        return self.quality_sum * self.inv_window_demand

    def step(self, t: int | np.ndarray, routing: DenseRouting | FactoredRouting | np.ndarray) -> np.ndarray:
        """Account slot ``t`` (int, or (B,) slots) with a routing value (an array x (..., N, J, K) is
        taken as :class:`DenseRouting`); returns the reward (USD, see :meth:`account`)."""
        if isinstance(routing, np.ndarray):
            routing = DenseRouting(routing)
        return self.account(t, routing.totals(self))

    def account(self, t: int | np.ndarray, totals: SlotTotals) -> np.ndarray:
        """Account slot ``t`` from its totals; the slot formulas (module docstring).

        Returns the reward ``-(cost_t + Φ_t - Φ_{t-1})`` in USD (a 0-d array, or (B,) with a batch).
        """
        sc, w = self.scenario, self.weights
        E, cost_by_site, footprint = energy_accounts(sc, t, totals.it_mwh, self._intensity)
        cost = cost_by_site.sum(axis=-1)
        unserved = unserved_of(sc.demand[t], totals.served).sum(axis=-1)
        slot_cost = cost + w.unserved_penalty_usd * unserved
        if totals.latency is not None:
            slot_cost = slot_cost + w.mu_latency * totals.latency
            self.latency_load = totals.latency
        if totals.quality is not None:
            self.quality_sum += totals.quality
        self.footprint += footprint
        terms = equity_terms(self.carbon_t, self.water_m3, self.social() if self.tracks_social else None, w,
                             sc.region_weights)
        phi = np.asarray(terms[0] + terms[1] + terms[2])
        reward = -(slot_cost + phi - self.phi_usd)
        self.record(phi_usd=phi, energy_cost_usd=cost, unserved_load=unserved, slot_cost_usd=slot_cost,
                    facility_energy_mwh=E)
        return reward

    def record(self, *, phi_usd: np.ndarray, energy_cost_usd: np.ndarray, unserved_load: np.ndarray,
               slot_cost_usd: np.ndarray, facility_energy_mwh: np.ndarray) -> None:
        """Keep a slot's results: Φ_t and the slot's quantities (the attributes of the class docstring).

        The one place they are written after a slot: by :meth:`account`, and by the compiled step of
        :mod:`equiglb.envs.kernels`, whose kernel restates :meth:`account`'s formulas (pinned by
        tests/test_slot.py) and updates ``footprint`` in place.
        """
        self.phi_usd = phi_usd
        self.energy_cost_usd = energy_cost_usd
        self.facility_energy_mwh = facility_energy_mwh
        self.unserved_load = unserved_load
        self.slot_cost_usd = slot_cost_usd
