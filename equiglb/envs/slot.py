"""One slot step: action → routing → accounting, in two layers chosen once at construction.

* :class:`SlotStep` is the **reference**: the batched numpy path, readable top to bottom and used by
  the vector environment, by single environments that the accelerator does not cover, and by the
  tests as the truth. It checks the action, maps it to a repaired routing
  (:meth:`equiglb.envs.actions.ActionMap.routing`, a :class:`~equiglb.ledger.DenseRouting` or
  :class:`~equiglb.ledger.FactoredRouting`) and accounts it in the :class:`~equiglb.ledger.Ledger`.
* :class:`PriceStep` (``action_mode="prices"``) and :class:`ResidualStep` (``"eglb_residual"``) are
  the learning-augmented modes: the action sets per-site equity prices, or scales the prices of an
  online-eGLB run inside the environment, and the slot is routed by the baselines' own per-slot
  router (:class:`equiglb.baselines.routing.PriceRouter`, one definition shared with online eGLB).
* :class:`OneCopyStep` is the **accelerator** for the common single-copy case (``"site_scores"``
  actions, every region in one group, one model, no social or latency term): the same map, repair
  and formulas on short Python lists, which are faster than numpy for N ≈ 10 sites. Tests pin it to
  the reference slot by slot.

:func:`make_slot_step` picks the class once; nothing else in the package tests which one runs.
All leave the slot's quantities and the cumulative state in their ``ledger`` (same attributes) and
return the executed routing x, which the ledger accounts: the return is -J(x) in every mode.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from equiglb.baselines.online_eglb import EGLBCore
from equiglb.baselines.routing import PriceRouter, SlotRouter
from equiglb.envs.actions import MAP_MODES, ActionMap, check_action, unit_weights
from equiglb.ledger import UNSERVED_RTOL, DenseRouting, FactoredRouting, Ledger
from equiglb.scenario import Scenario, Weights
from equiglb.validate import as_float

__all__ = ["SlotStep", "OneCopyStep", "PriceStep", "ResidualStep", "make_slot_step", "RESIDUAL_LOG_RANGE",
           "RESIDUAL_MAX_FACTOR", "DUAL_OBS_CAP"]

#: ``"eglb_residual"``: an action entry a scales its eGLB dual by exp(RESIDUAL_LOG_RANGE · clip(a)),
#: a factor in [1/4, 4]; a = 0 is online eGLB exactly. The default of the option ``eglb_residual_max_factor``
#: (:data:`RESIDUAL_MAX_FACTOR`), which sets the range to [1/f, f].
RESIDUAL_MAX_FACTOR = 4.0
RESIDUAL_LOG_RANGE = math.log(RESIDUAL_MAX_FACTOR)
#: ``"eglb_residual"``: the eGLB duals in the observation are clipped to [0, DUAL_OBS_CAP]
#: (dimensionless; each block lies in the unit ball of the dual norm at the offline optimum).
DUAL_OBS_CAP = 4.0


class SlotStep:
    """Reference slot step for one copy (``batch_size=None``) or B copies (leading axis B).

    Args:
        scenario: the scenario (with the environment's weights and region weights applied).
        weights: the objective weights of the reward.
        mode: the action mode (:data:`equiglb.envs.actions.ACTION_MODES`).
        batch_size: None for one copy, else B.
    """

    #: number of observation features the step adds (the eGLB duals of the residual mode)
    extra_dim = 0

    def __init__(self, scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None):
        self.scenario = scenario
        self.mode = mode
        self.action_map: ActionMap | None = ActionMap(scenario, mode) if mode in MAP_MODES else None
        self.ledger = Ledger(scenario, weights, batch_size)
        self.batch = () if batch_size is None else (batch_size,)

    @property
    def dim(self) -> int:
        """The action dimension."""
        assert self.action_map is not None
        return self.action_map.dim

    def extra(self) -> np.ndarray | None:
        """Observation features of the step's own state ((..., extra_dim)), or None."""
        return None

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) ``start .. start+length-1`` (``index`` selects copies with a batch)."""
        self.ledger.reset(start, length, index)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route and account slot ``t``; returns the reward (USD) and the routing x (..., N, J, K)."""
        assert self.action_map is not None
        a = self.action_map.check(action, self.batch)
        return self._account(t, self.action_map.routing(a, self.scenario.demand[t]))

    def _account(self, t: int | np.ndarray, routing: DenseRouting | FactoredRouting
                 ) -> tuple[np.ndarray | float, np.ndarray]:
        """Account ``routing`` in the ledger; the reward (a float for one copy) and x (..., N, J, K)."""
        reward = self.ledger.step(t, routing)
        return (float(reward) if not self.batch else reward), routing.dense()


class OneCopyStep(SlotStep):
    """Accelerator of :class:`SlotStep` for one copy when :meth:`applies` (see the module docstring).

    Per slot, in plain Python over the N sites: weights ``u = (clip(a) + 1) / 2``, fractions
    ``p = u / Σu`` over the allowed sites (uniform if Σu = 0), the closed-form water-filling of
    :func:`equiglb.envs.actions.waterfill` for the slot's total demand, then the ledger's formulas
    (cost, unserved, footprints, Φ) on the resulting site loads. The routing is
    ``x[i, j, 0] = y[i] · share[j]`` with ``share`` each region's fraction of the slot's demand.
    """

    @staticmethod
    def applies(scenario: Scenario, weights: Weights, mode: str, batch_size: int | None) -> bool:
        """Whether the accelerator covers this configuration."""
        if batch_size is not None or mode != "site_scores" or scenario.K != 1:
            return False
        one_group = bool(np.all(scenario.allowed == scenario.allowed[:, :1, :]))
        no_social = not weights.mu_social and not np.any(scenario.quality_loss)
        no_latency = scenario.latency is None or not weights.mu_latency
        return one_group and no_social and no_latency

    def __init__(self, scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None):
        super().__init__(scenario, weights, mode, batch_size)
        sc, am = scenario, self.action_map
        assert am is not None
        self._w = weights
        self._sites = am.index.tolist()                       # action entry -> site (K = 1)
        allowed = sc.allowed[:, 0, 0]                         # every region reaches the same sites
        self._allowed = allowed.tolist()
        self._masked = not bool(allowed.all())
        self._uniform = am.uniform[:, 0].tolist()
        self._capacity = sc.capacity.tolist()
        self._e = float(sc.energy_per_unit[0])
        mwh = sc.energy_per_unit[0] * sc.pue                  # facility MWh per load unit at site i
        self._mwh_per_load = mwh.tolist()
        # per slot and per load unit at site i: energy cost (USD), carbon (t) and water (m³)
        self._cost_rows = (sc.price * mwh).tolist()
        self._carbon_rows = (sc.carbon * mwh).tolist()
        self._water_rows = (sc.water * mwh).tolist()
        self._demand = sc.demand.tolist()
        self._total = sc.demand.sum(axis=1).tolist()
        totals = sc.demand.sum(axis=1, keepdims=True)
        self._share = np.divide(sc.demand, totals, out=np.zeros_like(sc.demand), where=totals > 0)
        self._omega = sc.region_weights.tolist()
        self._unit_omega = bool(np.all(sc.region_weights == 1.0))
        self._N = sc.N
        self._C: list[float] = [0.0] * sc.N
        self._W: list[float] = [0.0] * sc.N

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window ``start .. start+length-1``."""
        super().reset(start, length, index)
        self._C, self._W = [0.0] * self._N, [0.0] * self._N

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """As :meth:`SlotStep.step` for one copy (t an int)."""
        a = check_action(action, self.dim, (), self.mode)
        t = int(t)
        # --- action -> fractions p over the sites: u = (clip(a, -1, 1) + 1) / 2 (unit_weights), in Python
        w = [0.0] * self._N
        for i, v in zip(self._sites, a.tolist()):
            w[i] = 1.0 if v > 1.0 else 0.0 if v < -1.0 else (v + 1.0) * 0.5
        if self._masked:
            w = [wi if ok else 0.0 for wi, ok in zip(w, self._allowed)]
        total_w = sum(w)
        p = [wi / total_w for wi in w] if total_w > 0 else self._uniform
        # --- water-filling of the slot's total demand (waterfill), then leftovers on sites without weight
        total = self._total[t]
        y, unplaced = _fill_levels(p, self._e, total, self._capacity)
        if unplaced > 0:
            rest = [1.0 if (pi <= 0 and ok) else 0.0 for pi, ok in zip(p, self._allowed)]
            y2, _ = _fill_levels(rest, self._e, unplaced, self._capacity)
            y = [a1 + a2 for a1, a2 in zip(y, y2)]
        # --- accounting: Ledger.account's formulas for the factored routing y[i] · share[j]
        wts = self._w
        cost = sum(map(operator.mul, self._cost_rows[t], y))
        served = sum(y)
        unserved = 0.0                              # unserved_of per region, each short by the same fraction
        if served < total:
            for d in self._demand[t]:
                short = d - d / total * served
                if short > UNSERVED_RTOL * d:
                    unserved += short
        C = self._C = [c + k * yi for c, k, yi in zip(self._C, self._carbon_rows[t], y)]
        W = self._W = [v + k * yi for v, k, yi in zip(self._W, self._water_rows[t], y)]
        q = wts.q
        if self._unit_omega:
            phi = wts.mu_carbon * _lq(C, q) + wts.mu_water * _lq(W, q)
        else:
            phi = wts.mu_carbon * _lq(list(map(operator.mul, self._omega, C)), q) \
                + wts.mu_water * _lq(list(map(operator.mul, self._omega, W)), q)
        slot_cost = cost + wts.unserved_penalty_usd * unserved
        led = self.ledger
        reward = -(slot_cost + phi - float(led.phi_usd))
        led.footprint[:] = (C, W)
        led.phi_usd = phi
        led.energy_cost_usd = cost
        led.facility_energy_mwh = np.array(list(map(operator.mul, y, self._mwh_per_load)))
        led.unserved_load = unserved
        led.slot_cost_usd = slot_cost
        return reward, np.outer(y, self._share[t])[:, :, None]     # x (N, J, 1)


def _lq(v: list[float], q: float) -> float:
    """L_q norm of a short nonnegative list (as :func:`equiglb.ledger.lq_norm`)."""
    if q == math.inf:
        return max(v)
    if q == 1.0:
        return sum(v)
    m = max(v)
    if m <= 0:
        return 0.0
    return m * sum((vi / m) ** q for vi in v) ** (1.0 / q)


def _fill_levels(p: list[float], e: float, demand: float, capacity: list[float]) -> tuple[list[float], float]:
    """Water-filling of ``demand`` load units over sites in proportion to ``p`` (one model, e MWh per unit).

    Site i holds ``min(θ, θ_i) p[i]`` with ``θ_i = M[i] / (e p[i])`` the level at which it is full
    and θ the level that places the demand (as :func:`equiglb.envs.actions.waterfill`). Returns the
    site loads and the load left unplaced because every site with ``p > 0`` is full.
    """
    theta = [m / (e * pi) if pi > 0 else math.inf for m, pi in zip(capacity, p)]
    done, rest = 0.0, sum(p)                      # load of the full sites; weight of the open ones
    level = math.inf
    for i in sorted(range(len(p)), key=theta.__getitem__):
        if p[i] <= 0:
            break
        if done + theta[i] * rest >= demand:      # site i (and every later one) stays open
            level = max((demand - done) / rest, 0.0)
            break
        done += theta[i] * p[i]
        rest -= p[i]
    unplaced = max(demand - done, 0.0) if level == math.inf else 0.0
    return [min(level, th) * pi if pi > 0 else 0.0 for th, pi in zip(theta, p)], unplaced


class _PricedStep(SlotStep):
    """What the ``"prices"`` and ``"eglb_residual"`` modes share: the action's blocks (N carbon, N water
    and, with a social term, J social entries) and the baselines' per-slot router, built once."""

    def __init__(self, scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None):
        super().__init__(scenario, weights, mode, batch_size)
        self.social = bool(weights.mu_social) and bool(np.any(scenario.quality_loss))
        self._dim = 2 * scenario.N + (scenario.J if self.social else 0)
        self.slot_router = SlotRouter(scenario, weights.unserved_penalty_usd)

    @property
    def dim(self) -> int:
        """The action dimension: 2N (+ J with a social term)."""
        return self._dim


class PriceStep(_PricedStep):
    """``action_mode="prices"``: the action sets per-site equity prices; the slot is routed by them.

    Map: ``u = (clip(a, -1, 1) + 1) / 2`` in [0, 1] per entry, in blocks of N carbon entries, N
    water entries and, when the scenario has a social term, J social entries. The prices are
    ``u_c[i] μ_c ω_i`` USD/t CO2 and ``u_w[i] μ_w ω_i`` USD/m³ at site i, and ``u_s[j] μ_s / Λ_j``
    USD per load unit and unit of quality loss for region j (Λ_j the episode's total demand of j):
    ``u`` are the dimensionless duals of online eGLB, whose blocks lie in the unit ball of the dual
    norm at the offline optimum, so the box [0, 1] holds them for every q (scale-free). The slot is
    then routed at minimum ``energy cost + prices × footprints`` under demand and capacity by
    :class:`~equiglb.baselines.routing.PriceRouter`, the router of online eGLB.
    """

    def __init__(self, scenario: Scenario, weights: Weights, mode: str = "prices", batch_size: int | None = None):
        super().__init__(scenario, weights, mode, batch_size)
        self.router = PriceRouter(scenario, weights, router=self.slot_router)
        self._carbon_usd = weights.mu_carbon * np.asarray(scenario.region_weights)   # USD/t per unit dual
        self._water_usd = weights.mu_water * np.asarray(scenario.region_weights)     # USD/m³ per unit dual

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route slot ``t`` by the action's prices and account it."""
        a = check_action(action, self.dim, self.batch, self.mode)
        u = unit_weights(a).reshape((-1, self.dim))
        ts = np.asarray(t).reshape(-1)
        inv_demand = self.ledger.inv_window_demand.reshape((-1, self.scenario.J))
        N = self.scenario.N
        x = np.stack([self.router.route(int(tb), ub[:N] * self._carbon_usd, ub[N:2 * N] * self._water_usd,
                                        ub[2 * N:] * self.ledger.weights.mu_social * inv if self.social else None)
                      for tb, ub, inv in zip(ts, u, inv_demand)])
        return self._account(t, DenseRouting(x.reshape(self.batch + x.shape[1:])))


class ResidualStep(_PricedStep):
    """``action_mode="eglb_residual"``: online eGLB runs inside the environment; the action scales its prices.

    Each episode starts an :class:`~equiglb.baselines.online_eglb.EGLBCore` on the episode's window,
    with the documented online-eGLB defaults times the base's ``eta_scale`` and ``z_max_scale``
    (the environment options ``eglb_eta_scale`` and ``eglb_z_max_scale``, 1.0 by default; e.g. the
    choice of :func:`~equiglb.baselines.eglb_tuned.tune_online_eglb`). Each slot the action, in the blocks of
    :class:`PriceStep`, multiplies the core's duals by ``f ** clip(a, -1, 1)`` (factors in [1/f, f];
    ``f = max_factor``, the option ``eglb_residual_max_factor``, 4 = exp(RESIDUAL_LOG_RANGE) by
    default) before the core routes the slot; the core then takes its mirror-descent
    step with the executed routing. Action 0 is that online eGLB exactly
    (``OnlineEGLBPolicy(eta_scale=..., z_max_scale=...)``). The observation gains the core's duals
    before scaling (:attr:`extra_dim` = the action dimension, clipped to [0, DUAL_OBS_CAP]).

    Args:
        scenario, weights, mode, batch_size: as :class:`SlotStep`.
        eta_scale, z_max_scale: the base's multipliers of online eGLB's step and auxiliary bound
            (finite, > 0); :meth:`set_base` changes them for the next episodes.
        max_factor: the largest multiplier of a dual (finite, > 1); :meth:`set_max_factor` changes it.
    """

    def __init__(self, scenario: Scenario, weights: Weights, mode: str = "eglb_residual",
                 batch_size: int | None = None, eta_scale: float = 1.0, z_max_scale: float = 1.0,
                 max_factor: float = RESIDUAL_MAX_FACTOR):
        super().__init__(scenario, weights, mode, batch_size)
        self.extra_dim = self._dim
        n = 1 if batch_size is None else batch_size
        self.starts = np.zeros(n, dtype=np.int64)
        self.eta_scale, self.z_max_scale = 1.0, 1.0
        self.cores: list[EGLBCore] = []
        self.set_base(eta_scale, z_max_scale)
        self.max_factor, self.log_range = RESIDUAL_MAX_FACTOR, RESIDUAL_LOG_RANGE
        self.set_max_factor(max_factor)

    def set_max_factor(self, max_factor: float) -> None:
        """Scale the duals by factors in [1/max_factor, max_factor] (finite, > 1; ``ValueError`` otherwise)."""
        f = as_float("max_factor", max_factor, lo=1.0, lo_open=True)
        self.max_factor, self.log_range = f, math.log(f)

    def set_base(self, eta_scale: float = 1.0, z_max_scale: float = 1.0) -> None:
        """Use online eGLB with these multipliers of its step and auxiliary bound as the base; the cores
        restart (call :meth:`reset` before stepping). Raises ``ValueError`` unless both are finite and > 0."""
        self.eta_scale = as_float("eta_scale", eta_scale, lo=0.0, lo_open=True)
        self.z_max_scale = as_float("z_max_scale", z_max_scale, lo=0.0, lo_open=True)
        self.cores = [self._core(0, 1) for _ in range(len(self.starts))]

    def _core(self, start: int, length: int) -> EGLBCore:
        window, w = self.scenario.window(start, length), self.ledger.weights
        return EGLBCore(window, w, eta_scale=self.eta_scale, z_max_scale=self.z_max_scale,
                        router=PriceRouter(window, w, router=self.slot_router))

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) and a new online-eGLB core for each reset copy."""
        super().reset(start, length, index)
        chosen = np.arange(len(self.cores)) if index is None else np.arange(len(self.cores))[index]
        starts = np.broadcast_to(np.asarray(start, dtype=np.int64), chosen.shape)
        for b, s in zip(chosen.tolist(), starts.tolist()):
            self.starts[b] = s
            self.cores[b] = self._core(s, int(length))

    def extra(self) -> np.ndarray | None:
        """The cores' duals γ before scaling, clipped to [0, DUAL_OBS_CAP] ((..., extra_dim))."""
        g = np.stack([np.clip(c.gamma, 0.0, DUAL_OBS_CAP) for c in self.cores])
        return g[0] if not self.batch else g

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route slot ``t`` by online eGLB with the action's price multipliers, account it, step the duals."""
        a = check_action(action, self.dim, self.batch, self.mode)
        scale = np.exp(self.log_range * np.clip(a, -1.0, 1.0)).reshape((-1, self.dim))
        ts = np.asarray(t).reshape(-1)
        N = self.scenario.N
        xs = []
        for core, start, tb, sb in zip(self.cores, self.starts, ts, scale):
            k = int(tb) - int(start)                    # the slot within the core's window
            xb = core.route(k, sb[:N], sb[N:2 * N], sb[2 * N:] if self.social else None)
            core.update(k, xb)
            xs.append(xb)
        return self._account(t, DenseRouting(np.stack(xs).reshape(self.batch + xs[0].shape)))


def make_slot_step(scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None) -> SlotStep:
    """The slot step for a configuration, chosen once: the learning-augmented modes' own steps,
    :class:`OneCopyStep` where it applies, else the reference :class:`SlotStep`."""
    if mode == "prices":
        return PriceStep(scenario, weights, mode, batch_size)
    if mode == "eglb_residual":
        return ResidualStep(scenario, weights, mode, batch_size)
    cls = OneCopyStep if OneCopyStep.applies(scenario, weights, mode, batch_size) else SlotStep
    return cls(scenario, weights, mode, batch_size)
