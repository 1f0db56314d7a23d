"""Online eGLB: dual mirror descent with auxiliary variables (Li, Yang, Wierman, Ren 2023, Alg. 1).

The equity part of J(x) is f(Σ_t B_t x_t) with f(y) = ‖y_c‖_q + ‖y_w‖_q [+ ‖y_s‖_q], where the
per-slot footprint map B_t gives, in USD, each site's weighted carbon μ_c ω_i c[t,i] E[t,i] and water
μ_w ω_i w[t,i] E[t,i] (and, with a social term, each region's μ_s s_k x / Λ_j). With dual variables
γ (dimensionless, one per footprint coordinate) each slot t:

1. routes by the calibrated price ``p_t + γᵀB_t`` (per-slot LP under demand and capacity;
   a merit order when K = 1, the mask is full and the cost does not depend on the region);
2. solves the auxiliary problem ``z_t = argmax_{0 <= z <= z_max} γ·z - f(z)`` (closed form per
   block: q = 1 and q = inf directly, other q by the KKT segments z = min(r γ^{1/(q-1)}, z_max));
3. takes the dual step ``γ ← γ + η (B_t x_t - z_t)`` (projected on γ >= 0 if ``project_duals``).

Defaults (the study does not fix them; both use only data up to the current slot):

* ``z_max``: per-slot bound of the footprint, the largest value of B_t x_t a coordinate could take
  in one slot: for site i, μ ω_i PUE_i M_i times the largest intensity seen so far (a running max).
  z_t is matched against the per-slot footprint B_t x_t, so a larger bound only makes γ oscillate.
* ``eta``: 1 / (G √T) (1/USD), the standard mirror-descent step D / (G √T) for a dual region of
  diameter D ~ 1 (γ is dimensionless; for q = ∞ it sits on the unit L1 ball at equilibrium) and a
  gradient bound G = the largest ‖z_max‖₂ of a block at the first slot; the regret is O(G √T).
  Measured on eGLB-2022: the per-slot z_max gives a 3.0 % gap to the offline optimum, T times it
  15.6 % (as bad as min-cost).

The social term's normalization Λ_j (the window's total demand of region j) is unknown online;
it is estimated from the demand seen so far, Λ̂_j = T · mean_{s<=t} λ[s, j].
"""

from __future__ import annotations

import math

import numpy as np

from equiglb.baselines.policy import OnlinePolicy
from equiglb.baselines.routing import SlotRouter
from equiglb.scenario import Scenario, Weights

__all__ = ["OnlineEGLBPolicy", "auxiliary_argmin"]


def auxiliary_argmin(gamma: np.ndarray, z_max: np.ndarray, q: float) -> np.ndarray:
    """argmin over 0 <= z <= z_max of ‖z‖_q - γ·z (one block; closed form, exact)."""
    gp = np.maximum(gamma, 0.0)
    z_max = np.asarray(z_max, dtype=np.float64)
    if q == 1.0:
        return np.where(gp > 1.0, z_max, 0.0)
    if q == math.inf:
        # for a fixed max m the best z is min(m, z_max) where γ > 0; the value is convex piecewise
        # linear in m with breakpoints at 0 and the z_max values
        cand = np.concatenate([[0.0], z_max])
        vals = cand - (gp[None, :] * np.minimum(cand[:, None], z_max[None, :])).sum(axis=1)
        m = cand[int(np.argmin(vals))]
        return np.where(gp > 0, np.minimum(m, z_max), 0.0)
    qs = q / (q - 1.0)                                      # dual exponent
    if (gp ** qs).sum() <= 1.0:                             # γ in the dual ball: z = 0 is optimal
        return np.zeros_like(z_max)
    g = gp ** (1.0 / (q - 1.0))                             # free coordinates: z_i = r g_i
    pos = g > 0
    with np.errstate(divide="ignore"):
        b = np.where(pos, z_max / np.where(pos, g, 1.0), np.inf)   # r at which coordinate i caps
    order = np.argsort(b)
    best_z, best_v = np.zeros_like(z_max), 0.0
    gq, zq = g ** q, z_max ** q
    capped_sum, free_sum = 0.0, float(gq.sum())
    lo = 0.0
    for n in range(int(pos.sum()) + 1):                     # segment with the n first coordinates capped
        hi = b[order[n]] if n < order.size else np.inf
        if 1.0 - free_sum > 1e-15 and capped_sum > 0:
            r = (capped_sum / (1.0 - free_sum)) ** (1.0 / q)
            if lo * (1 - 1e-12) <= r <= hi * (1 + 1e-12):
                z = np.minimum(r * g, z_max)
                v = float((z ** q).sum() ** (1.0 / q) - gp @ z)
                if v < best_v:
                    best_z, best_v = z, v
        if n < order.size:
            i = order[n]
            if not np.isfinite(b[i]):
                break
            capped_sum += zq[i]
            free_sum -= gq[i]
            lo = hi
    z = np.where(pos, z_max, 0.0)                           # the all-capped corner, for safety
    v = float((z ** q).sum() ** (1.0 / q) - gp @ z)
    return z if v < best_v else best_z


class OnlineEGLBPolicy(OnlinePolicy):
    """Online eGLB (dual mirror descent with auxiliary variables); see the module docstring.

    Args:
        eta: dual step size (1/USD); None = 1 / (G √T) from the first slot's data.
        z_max: auxiliary bound in USD per slot (scalar or per coordinate); None = causal running max of
            the per-slot footprint bound.
        project_duals: clip γ at 0 after each step (the duals of B x <= z are non-negative).
        eta_scale: multiplies the step (default or given), for tuning studies.
    """

    name = "online-eglb"

    def __init__(self, eta: float | None = None, z_max: float | np.ndarray | None = None,
                 project_duals: bool = True, eta_scale: float = 1.0):
        self.eta_given, self.z_max_given = eta, z_max
        self.project_duals = project_duals
        self.eta_scale = float(eta_scale)

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        sc, w = scenario, weights
        self.scenario, self.weights = sc, w
        self.router = SlotRouter(sc, w.unserved_penalty_usd)
        self.social = bool(w.mu_social) and bool(np.any(sc.quality_loss))
        N, J = sc.N, sc.J
        self.blocks = [slice(0, N), slice(N, 2 * N)] + ([slice(2 * N, 2 * N + J)] if self.social else [])
        self.gamma = np.zeros(2 * N + (J if self.social else 0))
        self._site_scale = sc.region_weights * sc.pue * sc.capacity          # ω_i PUE_i M_i (MWh)
        self._max_c = np.zeros(N)
        self._max_w = np.zeros(N)
        self._max_demand = np.zeros(J)
        self._cum_demand = np.zeros(J)
        self._e = sc.energy_per_unit
        lat = sc.latency if (sc.latency is not None and w.mu_latency) else None
        self._lat_cost = None if lat is None else w.mu_latency * lat[:, :, None]
        self.eta: float | None = None

    def _z_max(self, t: int, inv_total: np.ndarray) -> np.ndarray:
        sc, w = self.scenario, self.weights
        if self.z_max_given is not None:
            return np.broadcast_to(np.asarray(self.z_max_given, dtype=np.float64), self.gamma.shape)
        np.maximum(self._max_c, sc.carbon[t], out=self._max_c)
        np.maximum(self._max_w, sc.water[t], out=self._max_w)
        parts = [w.mu_carbon * self._site_scale * self._max_c, w.mu_water * self._site_scale * self._max_w]
        if self.social:
            np.maximum(self._max_demand, sc.demand[t], out=self._max_demand)
            parts.append(w.mu_social * float(sc.quality_loss.max()) * self._max_demand * inv_total)
        return np.concatenate(parts)

    def act(self, t: int) -> np.ndarray:
        sc, w = self.scenario, self.weights
        N, J = sc.N, sc.J
        self._cum_demand += sc.demand[t]
        inv_total = np.divide(t + 1, sc.T * self._cum_demand, out=np.zeros(J), where=self._cum_demand > 0)
        # footprint per facility MWh (USD/MWh) at each site, per block
        ow = sc.region_weights * sc.pue
        bc = w.mu_carbon * ow * sc.carbon[t]
        bw = w.mu_water * ow * sc.water[t]
        g = self.gamma
        site = (sc.price[t] * sc.pue + g[:N] * bc + g[N:2 * N] * bw)                   # USD per IT MWh
        cost = site[:, None, None] * self._e[None, None, :]                           # (N, 1, K)
        if self.social:
            soc = w.mu_social * inv_total                                             # (J,) USD per unit loss
            cost = cost + (g[2 * N:] * soc)[None, :, None] * sc.quality_loss[None, None, :]
        if self._lat_cost is not None:
            cost = cost + self._lat_cost
        x = self.router.route(np.broadcast_to(cost, (N, J, sc.K)), sc.demand[t])
        # footprint of the chosen routing, B_t x_t (USD)
        it = (x @ self._e).sum(axis=1)
        b = [bc * it, bw * it]
        if self.social:
            b.append(soc * (x @ sc.quality_loss).sum(axis=0))
        bx = np.concatenate(b)
        z_max = self._z_max(t, inv_total)
        if self.eta is None:
            if self.eta_given is not None:
                self.eta = float(self.eta_given)
            else:
                G = max(float(np.linalg.norm(z_max[blk])) for blk in self.blocks)
                self.eta = 1.0 / (max(G, 1e-12) * math.sqrt(sc.T))
            self.eta *= self.eta_scale
        z = np.concatenate([auxiliary_argmin(g[blk], z_max[blk], w.q) for blk in self.blocks])
        g = g + self.eta * (bx - z)
        self.gamma = np.maximum(g, 0.0) if self.project_duals else g
        return x
