"""One slot step: action → routing → accounting, in two layers chosen once at construction.

* :class:`SlotStep` is the **reference**: the batched numpy path, readable top to bottom and used by
  the vector environment, by single environments that the accelerator does not cover, and by the
  tests as the truth. It checks the action, maps it to a repaired routing
  (:meth:`equiglb.envs.actions.ActionMap.routing`, a :class:`~equiglb.ledger.DenseRouting` or
  :class:`~equiglb.ledger.FactoredRouting`) and accounts it in the :class:`~equiglb.ledger.Ledger`.
* :class:`OneCopyStep` is the **accelerator** for the common single-copy case (``"site_scores"``
  actions, every region in one group, one model, no social or latency term): the same map, repair
  and formulas on short Python lists, which are faster than numpy for N ≈ 10 sites. Tests pin it to
  the reference slot by slot.

:func:`make_slot_step` picks one of the two; nothing else in the package tests which one runs.
Both leave the slot's quantities and the cumulative state in their ``ledger`` (same attributes).
"""

from __future__ import annotations

import math

import numpy as np

from equiglb.envs.actions import ActionMap
from equiglb.ledger import UNSERVED_RTOL, Ledger
from equiglb.scenario import Scenario, Weights

__all__ = ["SlotStep", "OneCopyStep", "make_slot_step"]


class SlotStep:
    """Reference slot step for one copy (``batch_size=None``) or B copies (leading axis B).

    Args:
        scenario: the scenario (with the environment's weights and region weights applied).
        weights: the objective weights of the reward.
        mode: the action mode (:data:`equiglb.envs.actions.ACTION_MODES`).
        batch_size: None for one copy, else B.
    """

    def __init__(self, scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None):
        self.scenario = scenario
        self.action_map = ActionMap(scenario, mode)
        self.ledger = Ledger(scenario, weights, batch_size)
        self.batch = () if batch_size is None else (batch_size,)

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) ``start .. start+length-1`` (``index`` selects copies with a batch)."""
        self.ledger.reset(start, length, index)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route and account slot ``t``; returns the reward (USD) and the routing x (..., N, J, K)."""
        a = self.action_map.check(action, self.batch)
        routing = self.action_map.routing(a, self.scenario.demand[t])
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
        self._w = weights
        self._sites = am.index.tolist()                       # action entry -> site (K = 1)
        self._allowed = sc.allowed[:, 0, 0].tolist()          # every region reaches the same sites
        self._uniform = am.uniform[:, 0].tolist()
        self._capacity = sc.capacity.tolist()
        self._e = float(sc.energy_per_unit[0])
        self._mwh_per_load = (sc.energy_per_unit[0] * sc.pue).tolist()    # facility MWh per load unit
        self._price = sc.price.tolist()
        self._intensity = np.stack([sc.carbon, sc.water], axis=1)          # (T, 2, N)
        self._demand = sc.demand.tolist()
        self._total = sc.demand.sum(axis=1).tolist()
        totals = sc.demand.sum(axis=1, keepdims=True)
        self._share = np.divide(sc.demand, totals, out=np.zeros_like(sc.demand), where=totals > 0)
        self._omega = sc.region_weights.tolist()
        self._N, self._J = sc.N, sc.J

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """As :meth:`SlotStep.step` for one copy (t an int)."""
        a = self.action_map.check(action)
        t = int(t)
        N = self._N
        # --- action -> fractions p over the sites (the clip of unit_weights, in Python)
        w = [0.0] * N
        for i, v in zip(self._sites, a.tolist()):
            if self._allowed[i]:
                w[i] = ((1.0 if v > 1.0 else -1.0 if v < -1.0 else v) + 1.0) * 0.5
        total_w = sum(w)
        p = [wi / total_w for wi in w] if total_w > 0 else self._uniform
        # --- water-filling of the slot's total demand (waterfill), then leftovers on sites without weight
        total = self._total[t]
        y, unplaced = _fill_levels(p, self._e, total, self._capacity)
        if unplaced > 0:
            rest = [1.0 if (pi <= 0 and ok) else 0.0 for pi, ok in zip(p, self._allowed)]
            y2, _ = _fill_levels(rest, self._e, unplaced, self._capacity)
            y = [a1 + a2 for a1, a2 in zip(y, y2)]
        # --- accounting (Ledger.account's formulas for a factored routing)
        led, wts = self.ledger, self._w
        E = [yi * k for yi, k in zip(y, self._mwh_per_load)]
        cost = sum(pi * ei for pi, ei in zip(self._price[t], E))
        served = sum(y)
        unserved = 0.0                              # unserved_of per region, each short by the same fraction
        if served < total:
            for d in self._demand[t]:
                short = d - d / total * served
                if short > UNSERVED_RTOL * d:
                    unserved += short
        E_arr = np.array(E)
        led.footprint += self._intensity[t] * E_arr
        carbon, water = led.footprint.tolist()
        omega, q = self._omega, wts.q
        phi = wts.mu_carbon * _lq([o * c for o, c in zip(omega, carbon)], q) \
            + wts.mu_water * _lq([o * v for o, v in zip(omega, water)], q)
        slot_cost = cost + wts.unserved_penalty_usd * unserved
        reward = -(slot_cost + phi - float(led.phi_usd))
        led.phi_usd = np.asarray(phi)
        led.energy_cost_usd = np.asarray(cost)
        led.facility_energy_mwh = E_arr
        led.unserved_load = np.asarray(unserved)
        led.slot_cost_usd = np.asarray(slot_cost)
        x = np.multiply(np.array(y)[:, None], self._share[t])[:, :, None]     # (N, J, 1)
        return reward, x


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


def make_slot_step(scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None) -> SlotStep:
    """The slot step for a configuration: :class:`OneCopyStep` where it applies, else :class:`SlotStep`."""
    cls = OneCopyStep if OneCopyStep.applies(scenario, weights, mode, batch_size) else SlotStep
    return cls(scenario, weights, mode, batch_size)
