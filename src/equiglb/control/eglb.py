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

:class:`EGLBCore` holds the state of one window and runs the three steps one slot at a time
(``route`` then ``update``), so that an environment can drive it and scale its prices;
:class:`equiglb.baselines.online_eglb.OnlineEGLBPolicy` is a loop over it.
"""

from __future__ import annotations

import math

import numpy as np

from equiglb.control.routing import PriceRouter
from equiglb.scenario import Scenario, Weights

__all__ = ["EGLBCore", "auxiliary_argmin"]


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


def _nonneg_scale(name: str, value: float | np.ndarray | None) -> float | np.ndarray | None:
    """None, or a finite non-negative multiplier (scalar or array); a clear error otherwise."""
    if value is None:
        return None
    v = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"EGLBCore: {name} must be finite and >= 0, got {value!r}")
    return v


class EGLBCore:
    """The state of online eGLB on one window, stepped one slot at a time (see the module docstring).

    Each slot t, in order: :meth:`route` (any number of times: the calibrated-price routing, with the
    equity prices optionally scaled by given multipliers), then :meth:`update` once with the routing
    actually executed (the mirror-descent step of the duals). :meth:`step` does both.

    The duals ``gamma`` (shape (2N [+ J]): carbon per site, water per site, then social per region
    when the scenario has a social term) are dimensionless: they multiply footprints already priced
    in USD (μ and ω folded in), and at the offline optimum each block lies in the dual unit ball of
    the L_q norm (for q = ∞ its entries sum to at most 1), so they are O(1) and can enter an
    observation as they are (:meth:`observation`). :meth:`prices` gives them in physical units.

    Args:
        scenario, weights: the window and the objective weights.
        eta: dual step size (1/USD); None = 1 / (G √T) from the first slot's data.
        z_max: auxiliary bound in USD per slot (scalar or per coordinate); None = causal running max
            of the per-slot footprint bound.
        project_duals: clip γ at 0 after each step.
        eta_scale: multiplies the step (default or given).
        z_max_scale: multiplies the auxiliary bound (default or given); G of the default step is
            computed from the unscaled bound, so the two scales act independently.
        router: a :class:`~equiglb.control.routing.PriceRouter` of ``scenario`` to share.
    """

    def __init__(self, scenario: Scenario, weights: Weights, eta: float | None = None,
                 z_max: float | np.ndarray | None = None, project_duals: bool = True, eta_scale: float = 1.0,
                 z_max_scale: float = 1.0, router: PriceRouter | None = None):
        for name, v in (("eta_scale", eta_scale), ("z_max_scale", z_max_scale)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"EGLBCore: {name} must be finite and > 0, got {v!r}")
        if eta is not None and not (math.isfinite(eta) and eta > 0):
            raise ValueError(f"EGLBCore: eta must be finite and > 0 (1/USD), got {eta!r}")
        sc, w = scenario, weights
        self.scenario, self.weights = sc, w
        self.router = PriceRouter(sc, w) if router is None else router
        self.project_duals = bool(project_duals)
        self.eta_given, self.z_max_given = eta, z_max
        self.eta_scale, self.z_max_scale = float(eta_scale), float(z_max_scale)
        self.social = sc.social_in_force(w)
        N, J = sc.N, sc.J
        self.N, self.J = N, J
        self.blocks = [slice(0, N), slice(N, 2 * N)] + ([slice(2 * N, 2 * N + J)] if self.social else [])
        self.gamma = np.zeros(2 * N + (J if self.social else 0))
        self.eta: float | None = None
        self.t = 0                                                          # next slot to update
        self._omega = np.asarray(sc.region_weights)                         # ω_i
        ow = self._omega * np.asarray(sc.pue)
        self._cw = w.mu_carbon * ow                                         # USD per (t/MWh) per IT MWh
        self._ww = w.mu_water * ow
        self._site_scale = self._omega * np.asarray(sc.pue) * sc.capacity   # ω_i PUE_i M_i (MWh)
        self._max_c = np.zeros(N)
        self._max_w = np.zeros(N)
        self._max_demand = np.zeros(J)
        self._cum_demand = np.zeros(J)
        self._e = np.asarray(sc.energy_per_unit)
        self._ql = np.asarray(sc.quality_loss)
        self._ql_max = float(self._ql.max())
        self._prepared = -1
        self._bc = self._bw = self._soc = self._inv_total = np.zeros(0)

    # ------------------------------------------------------------------ state
    @property
    def gamma_carbon(self) -> np.ndarray:
        """(N,) dimensionless carbon duals per site (a view of ``gamma``)."""
        return self.gamma[: self.N]

    @property
    def gamma_water(self) -> np.ndarray:
        """(N,) dimensionless water duals per site (a view of ``gamma``)."""
        return self.gamma[self.N: 2 * self.N]

    @property
    def gamma_social(self) -> np.ndarray | None:
        """(J,) dimensionless social duals per region, or None without a social term."""
        return self.gamma[2 * self.N:] if self.social else None

    def observation(self) -> np.ndarray:
        """A copy of the duals γ (2N [+ J], dimensionless, O(1); see the class docstring)."""
        return self.gamma.copy()

    def prices(self) -> dict[str, np.ndarray | None]:
        """The current equity prices in physical units, as :meth:`PriceRouter.route` takes them:
        ``carbon_usd_per_t`` (N,) = γᶜ μ_c ω, ``water_usd_per_m3`` (N,) = γʷ μ_w ω, and
        ``social_usd_per_unit_loss`` (J,) = γˢ μ_s / Λ̂ (None without a social term; Λ̂ as of the
        last slot routed, so this key is None before the first :meth:`route`)."""
        w = self.weights
        social = None
        if self.social and self._prepared >= 0:
            social = self.gamma[2 * self.N:] * (w.mu_social * self._inv_total)
        return {"carbon_usd_per_t": self.gamma_carbon * w.mu_carbon * self._omega,
                "water_usd_per_m3": self.gamma_water * w.mu_water * self._omega,
                "social_usd_per_unit_loss": social}

    # ------------------------------------------------------------------ slot
    def _prepare(self, t: int) -> None:
        """Read slot t's data (once per slot): footprint prices and the running demand estimate."""
        if t == self._prepared:
            return
        if t != self.t:
            raise ValueError(f"EGLBCore: slot {t} routed out of order; the next slot is {self.t} "
                             f"(call update(t, x) once per slot, in order)")
        sc = self.scenario
        self._cum_demand += sc.demand[t]
        self._inv_total = np.divide(t + 1, sc.T * self._cum_demand, out=np.zeros(self.J),
                                    where=self._cum_demand > 0)
        self._bc = self._cw * sc.carbon[t]                 # USD per IT MWh per unit γ, per site
        self._bw = self._ww * sc.water[t]
        if self.social:
            self._soc = self.weights.mu_social * self._inv_total   # (J,) USD per unit loss per unit γ
        self._prepared = t

    def route(self, t: int, carbon_scale: float | np.ndarray | None = None,
              water_scale: float | np.ndarray | None = None,
              social_scale: float | np.ndarray | None = None) -> np.ndarray:
        """Route slot t by the calibrated price p_t + γᵀB_t; does not change the duals.

        Args:
            t: the slot (must be the next one: 0, 1, ... in order).
            carbon_scale, water_scale: non-negative multipliers of the carbon / water duals, a scalar
                (per block) or (N,) (per site); None = 1 (exactly online eGLB).
            social_scale: the same for the social duals, scalar or (J,) (ignored without a social term).

        Returns:
            x (N, J, K) in load units.
        """
        self._prepare(t)
        g = self.gamma
        N = self.N
        gc, gw = g[:N], g[N:2 * N]
        cs, ws = _nonneg_scale("carbon_scale", carbon_scale), _nonneg_scale("water_scale", water_scale)
        if cs is not None:
            gc = gc * cs
        if ws is not None:
            gw = gw * ws
        site = self.scenario.price[t] * self.scenario.pue + gc * self._bc + gw * self._bw   # USD per IT MWh
        social = None
        if self.social:
            gs = g[2 * N:]
            ss = _nonneg_scale("social_scale", social_scale)
            if ss is not None:
                gs = gs * ss
            social = gs * self._soc
        return self.router.route_cost(t, site, social)

    def update(self, t: int, x: np.ndarray) -> None:
        """The mirror-descent step of the duals with the routing x (N, J, K) executed at slot t."""
        if t != self._prepared or t != self.t:
            raise ValueError(f"EGLBCore: update({t}) without route({t}) first; the next slot is {self.t}")
        sc, w = self.scenario, self.weights
        it = (x @ self._e).sum(axis=1)                                    # IT MWh per site
        b = [self._bc * it, self._bw * it]
        if self.social:
            b.append(self._soc * (x @ self._ql).sum(axis=0))
        bx = np.concatenate(b)                                            # B_t x_t (USD)
        bound = self._bound(t)
        if self.eta is None:
            if self.eta_given is not None:
                self.eta = float(self.eta_given)
            else:
                G = max(float(np.linalg.norm(bound[blk])) for blk in self.blocks)
                self.eta = 1.0 / (max(G, 1e-12) * math.sqrt(sc.T))
            self.eta *= self.eta_scale
        if self.z_max_scale != 1.0:
            bound = bound * self.z_max_scale
        g = self.gamma
        z = np.concatenate([auxiliary_argmin(g[blk], bound[blk], w.q) for blk in self.blocks])
        g = g + self.eta * (bx - z)
        self.gamma = np.maximum(g, 0.0) if self.project_duals else g
        self.t = t + 1

    def step(self, t: int, carbon_scale: float | np.ndarray | None = None,
             water_scale: float | np.ndarray | None = None,
             social_scale: float | np.ndarray | None = None) -> np.ndarray:
        """:meth:`route` then :meth:`update` with that routing; returns x (N, J, K)."""
        x = self.route(t, carbon_scale, water_scale, social_scale)
        self.update(t, x)
        return x

    def _bound(self, t: int) -> np.ndarray:
        """z_max before scaling: the given bound, or the causal running max of the per-slot bound."""
        if self.z_max_given is not None:
            return np.broadcast_to(np.asarray(self.z_max_given, dtype=np.float64), self.gamma.shape)
        sc, w = self.scenario, self.weights
        np.maximum(self._max_c, sc.carbon[t], out=self._max_c)
        np.maximum(self._max_w, sc.water[t], out=self._max_w)
        parts = [w.mu_carbon * self._site_scale * self._max_c, w.mu_water * self._site_scale * self._max_w]
        if self.social:
            np.maximum(self._max_demand, sc.demand[t], out=self._max_demand)
            parts.append(w.mu_social * self._ql_max * self._max_demand * self._inv_total)
        return np.concatenate(parts)
