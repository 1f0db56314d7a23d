"""Equity-oblivious GLB (the eGLB study's comparisons) and a random reference policy.

All are online: slot t uses only slot t's data.

* ``min-cost`` / ``min-carbon`` / ``min-water``: each slot, the routing that minimizes the slot's
  energy cost (USD) / carbon (t) / water (m³) under demand and capacity (a merit order when the
  structure allows, the per-slot LP otherwise; :class:`~equiglb.control.routing.SlotRouter`).
* ``nearest``: each region to its lowest-latency site (its own), overflow to the next nearest by
  ``scenario.latency``; competing regions share a site's spare capacity in proportion to their requests.
* ``proportional``: each region splits its demand over the sites it reaches in proportion to capacity
  (capacity-repaired when a partial mask overloads a site).
* ``random``: uniform random (Dirichlet(1)) fractions over each region's allowed pairs, capacity-repaired,
  seeded.
"""

from __future__ import annotations

import numpy as np

from equiglb.baselines.policy import OnlinePolicy
from equiglb.control.routing import SlotRouter, repair_by_spare_capacity
from equiglb.scenario import Scenario, Weights
from equiglb.validate import as_seed, one_of

__all__ = ["MinSignalPolicy", "NearestPolicy", "ProportionalPolicy", "RandomPolicy"]

_SIGNALS = {"min-cost": "price", "min-carbon": "carbon", "min-water": "water"}


class MinSignalPolicy(OnlinePolicy):
    """Per-slot minimum of one signal: ``signal`` in {"price", "carbon", "water"} (per facility MWh).

    Unserved load costs ``weights.unserved_penalty_usd`` per unit for ``price``; for carbon and water
    it is priced far above any routing so that demand is served whenever capacity allows.
    """

    def __init__(self, signal: str = "price"):
        self.signal = one_of("signal", signal, sorted(_SIGNALS.values()))
        self.name = {v: k for k, v in _SIGNALS.items()}[signal]

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.scenario = scenario
        series = getattr(scenario, self.signal)
        if self.signal == "price":
            penalty = weights.unserved_penalty_usd
        else:
            penalty = 1e6 * (float(np.abs(series).max()) * float(scenario.pue.max())
                             * float(scenario.energy_per_unit.max()) + 1.0)
        self.router = SlotRouter(scenario, penalty)
        self._unit = scenario.pue[:, None, None] * scenario.energy_per_unit[None, None, :]   # (N, 1, K)

    def act(self, t: int) -> np.ndarray:
        sc = self.scenario
        cost = getattr(sc, self.signal)[t][:, None, None] * self._unit                       # (N, 1, K)
        return self.router.route(np.broadcast_to(cost, (sc.N, sc.J, sc.K)), sc.demand[t])


def _allocate_by_rank(scenario: Scenario, order: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Rounds r = 0, 1, ...: every region asks its r-th preferred pair for its unplaced load; a site
    grants min(1, spare / requested energy) of every request. ``order`` is (J, R) flat (i, k) indices."""
    sc = scenario
    N, J, K = sc.N, sc.J, sc.K
    e = sc.energy_per_unit
    x = np.zeros((N, J, K))
    spare = sc.capacity.astype(np.float64).copy()
    left = demand.astype(np.float64).copy()
    jj = np.arange(J)
    for r in range(order.shape[1]):
        flat = order[:, r]
        valid = flat >= 0
        i, k = np.divmod(np.where(valid, flat, 0), K)
        req = np.where(valid, left, 0.0)
        req_energy = np.bincount(i, weights=req * e[k], minlength=N)
        grant = np.divide(spare, req_energy, out=np.ones(N), where=req_energy > 0).clip(max=1.0)
        placed = req * grant[i]
        np.add.at(x, (i, jj, k), placed)
        spare = np.maximum(spare - np.bincount(i, weights=placed * e[k], minlength=N), 0.0)
        left -= placed
        if left.max(initial=0.0) <= 0:
            break
    return x


class NearestPolicy(OnlinePolicy):
    """Each region to its nearest site (lowest latency; best-quality hosted model first), overflow to
    the next nearest. Requires ``scenario.latency``."""

    name = "nearest"

    @staticmethod
    def check(scenario: Scenario) -> None:
        """Raise ``ValueError`` if ``scenario`` cannot be run by this policy (it has no latency matrix);
        callers can check before any work is done."""
        if scenario.latency is None:
            raise ValueError(f"scenario {scenario.name!r} has no latency matrix; 'nearest' needs one")

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.check(scenario)
        latency = scenario.latency
        assert latency is not None  # checked above
        self.scenario = scenario
        N, J, K = scenario.N, scenario.J, scenario.K
        allowed = scenario.allowed                                         # (N, J, K)
        # preference key per region: latency, then quality loss, then energy per unit
        lat = np.broadcast_to(latency[:, :, None], (N, J, K))
        key = np.lexsort((np.broadcast_to(scenario.energy_per_unit, (N, J, K)).transpose(1, 0, 2).reshape(J, -1),
                          np.broadcast_to(scenario.quality_loss, (N, J, K)).transpose(1, 0, 2).reshape(J, -1),
                          lat.transpose(1, 0, 2).reshape(J, -1)), axis=-1)
        ok = allowed.transpose(1, 0, 2).reshape(J, -1)
        self.order = np.where(np.take_along_axis(ok, key, axis=1), key, -1)   # (J, N*K) flat (i, k)

    def act(self, t: int) -> np.ndarray:
        return _allocate_by_rank(self.scenario, self.order, self.scenario.demand[t])


class ProportionalPolicy(OnlinePolicy):
    """Each region splits its demand over its reachable sites in proportion to their capacity (over the
    models hosted there equally), then capacity is repaired."""

    name = "proportional"

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.scenario = scenario
        allowed = scenario.allowed.astype(np.float64)
        per_model = np.divide(1.0, allowed.sum(axis=2, keepdims=True), out=np.zeros((scenario.N, scenario.J, 1)),
                              where=allowed.sum(axis=2, keepdims=True) > 0)
        share = allowed * per_model * scenario.capacity[:, None, None]
        total = share.sum(axis=(0, 2), keepdims=True)
        # (N, J, K), sums to 1 per region; a region whose reachable sites all have capacity 0 routes nothing
        # (its demand is unserved, as under any policy) instead of dividing 0 by 0 into NaN
        self.share = np.divide(share, total, out=np.zeros_like(share), where=total > 0)

    def act(self, t: int) -> np.ndarray:
        return repair_by_spare_capacity(self.scenario, self.share * self.scenario.demand[t][None, :, None])


class RandomPolicy(OnlinePolicy):
    """Uniformly random routing fractions (Dirichlet(1) over each region's allowed pairs), capacity-repaired.

    Args:
        seed: seed of the generator, re-seeded at every :meth:`reset` (reproducible schedules).
    """

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = as_seed("seed", seed)

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.scenario = scenario
        self.rng = np.random.default_rng(self.seed)
        self.allowed = scenario.allowed

    def act(self, t: int) -> np.ndarray:
        sc = self.scenario
        g = self.rng.standard_exponential(self.allowed.shape) * self.allowed   # Dirichlet(1) via exponentials
        frac = g / g.sum(axis=(0, 2), keepdims=True)
        return repair_by_spare_capacity(sc, frac * sc.demand[t][None, :, None])
