"""Action maps: from a Box action in [-1, 1]^d to a feasible routing x[i, j, k] (load units).

Two modes (see :class:`ActionMap`):

* ``"routing"``: one weight per allowed (site i, region j, model k) triple; each region's demand is
  split over its allowed pairs in proportion to ``u = (a + 1) / 2``.
* ``"site_scores"`` (compact): one weight per hosted (site i, model k) pair, shared by every region;
  region j splits its demand over the pairs it may use in proportion to ``u``.

Both are followed by the same deterministic capacity :func:`repair`. Regions that split their
demand by the same fractions (every region in ``"routing"`` mode is its own group; in
``"site_scores"`` mode, regions with the same allowed pairs form one group) are repaired together as
one *group* whose routing is then shared out in proportion to the regions' demand, which is the
same result as repairing them one by one (the repair is linear in a group's demand). All functions
accept leading batch axes, so the single and the vector environment share them. With one group
(``"site_scores"`` and the same allowed pairs for every region) one copy's routing factors as
``x[i, j, k] = y[i, k] · share[j]``; :meth:`ActionMap.factored_routing` returns the factors, which
the single environment hands to :meth:`equiglb.ledger.Ledger.step_factored`.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from equiglb.scenario import Scenario

__all__ = ["ACTION_MODES", "ActionMap", "repair", "waterfill"]

#: The available action modes.
ACTION_MODES = ("routing", "site_scores")


def _sites(v: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Σ_i v[..., i] y[..., i, c] for v (..., N) and y (..., N, C), as a (batched) matmul."""
    return (v[..., None, :] @ y)[..., 0, :]


def repair(y: np.ndarray, pref: np.ndarray, col_group: np.ndarray, col_energy: np.ndarray,
           capacity: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Make a proposed routing respect capacity, moving overflow to reachable sites with spare capacity.

    Rounds (at most N + 1, deterministic): every site whose IT energy ``Σ_c e[c] y[i, c]`` exceeds
    its capacity ``M[i]`` is scaled down to exactly ``M[i]`` and closed; each group (region) re-places
    the load it lost on its allowed pairs at still-open sites, in proportion to its preference
    ``pref`` there (uniformly over them if its preference there is zero). A closed site is full and
    never receives load again, so every round with overflow closes at least one site. Load is left
    unplaced (unserved in the ledger) only when every site the group can reach is full.

    Args:
        y: proposed routing (..., N, C), load units, >= 0, zero where not ``allowed``; column c is
            (group g, model k) = divmod(c, K).
        pref: the groups' preference weights (..., N, C), >= 0, zero where not ``allowed``.
        col_group: (C, G) 0/1 matrix, column c belongs to group g.
        col_energy: (C,) e[k] of column c, MWh per load unit.
        capacity: M[i], MWh per slot, (N,).
        allowed: (N, C) bool, mask and hosting.

    Returns:
        The repaired routing (a new array, or ``y`` when nothing overflows).
    """
    N = capacity.shape[0]
    cap_tol = capacity + 1e-12 * np.maximum(capacity, 1.0)
    load = y @ col_energy                                                # (..., N) IT MWh
    over = load > cap_tol
    if not over.any():
        return y
    open_ = np.ones(load.shape, bool)
    for _ in range(N + 1):
        ratio = np.where(over, capacity / np.maximum(load, 1e-300), 1.0)  # < 1 on over-full sites
        lost = _sites(1.0 - ratio, y) @ col_group                           # (..., G) load units
        open_ &= ~over
        of = open_.astype(np.float64)
        ws = _sites(of, pref) @ col_group                                     # (..., G)
        coef = (lost / np.where(ws > 0, ws, 1.0)) @ col_group.T          # (..., C)
        y = y * ratio[..., :, None] + pref * (of[..., :, None] * coef[..., None, :])
        stuck = (ws <= 0) & (lost > 0)
        if stuck.any():                                                   # no preference left: uniform
            uni = allowed * of[..., :, None]
            us = np.ones(N) @ uni @ col_group
            ucoef = (np.where(stuck, lost, 0.0) / np.where(us > 0, us, 1.0)) @ col_group.T
            y = y + uni * ucoef[..., None, :]
        load = y @ col_energy
        over = load > cap_tol
        if not over.any():
            break
    return y


def _fill(p: np.ndarray, demand: np.ndarray, col_energy: np.ndarray, capacity: np.ndarray):
    """Proportional water-filling of one group: y = min(θ, θ_i) p with Σ y = demand (or all sites full).

    θ_i = M[i] / (e·p[i]) is the level at which site i is full; site i is full at the solution iff
    the load placed at level θ_i, ``Σ_l min(θ_i, θ_l) Q_l``, is below the demand (no sorting, so it
    vectorizes over copies). Returns (y, unplaced load units).
    """
    Q = p.sum(axis=-1)                                                   # (..., N) load units per unit θ
    P = Q * col_energy[0] if col_energy.size == 1 else p @ col_energy    # (..., N) MWh per unit θ
    pos = P > 0
    theta = capacity / np.where(pos, P, 1.0)                              # level at which site i is full
    g = (np.minimum(theta[..., :, None], theta[..., None, :]) @ Q[..., :, None])[..., 0]
    full = pos & (g < demand[..., None])
    ones = np.ones(theta.shape[-1])
    done = np.where(full, theta * Q, 0.0) @ ones                         # load of the full sites
    rest = np.where(full, 0.0, Q) @ ones                                 # Q of the open sites
    openq = rest > 0
    level = np.maximum((demand - done) / np.where(openq, rest, 1.0), 0.0)
    fill = np.where(openq[..., None], np.minimum(level[..., None], theta), theta)
    y = np.where(pos, fill, 0.0)[..., None] * p
    unplaced = np.where(openq, 0.0, np.maximum(demand - done, 0.0))
    return y, unplaced


def _fill_levels(Q: list[float], P: list[float], demand: float, capacity: list[float]):
    """The water-filling of :func:`_fill` for one copy in plain Python over the N sites (fast when small).

    ``Q[i]`` (load units) and ``P[i]`` (MWh) per unit level θ. Returns (fill, unplaced): site i
    holds ``fill[i]`` times its preference, ``fill[i] = min(θ, θ_i)`` (0 where ``P[i] <= 0``).
    """
    positive = min(P) > 0
    if positive:
        theta = list(map(operator.truediv, capacity, P))
    else:
        theta = [c / e if e > 0 else math.inf for c, e in zip(capacity, P)]
    rest = sum(Q)
    low = min(theta)
    if low < math.inf and low * rest >= demand:       # the emptiest site is not full: none is
        level, unplaced = max(demand / rest, 0.0), 0.0
    else:
        done, open_site = 0.0, False
        for i in sorted(range(len(theta)), key=theta.__getitem__):
            if P[i] <= 0:
                break
            if done + theta[i] * rest >= demand:      # site i (and every later one) is not full
                open_site = True
                break
            done += theta[i] * Q[i]
            rest -= Q[i]
        if open_site:
            level, unplaced = max((demand - done) / rest, 0.0), 0.0
        else:                                         # every site with preference is full
            level, unplaced = math.inf, max(demand - done, 0.0)
    if positive:
        return [level if level <= th else th for th in theta], unplaced
    return [(level if level <= th else th) if e > 0 else 0.0 for th, e in zip(theta, P)], unplaced


def _fill_one(p: np.ndarray, demand: float, col_energy: np.ndarray, capacity: list[float]):
    """:func:`_fill` for one copy (no batch axis), via :func:`_fill_levels`."""
    Q = p.sum(axis=-1)
    P = (Q * col_energy[0] if col_energy.size == 1 else p @ col_energy).tolist()
    fill, unplaced = _fill_levels(Q.tolist(), P, demand, capacity)
    return np.array(fill)[:, None] * p, unplaced


def waterfill(p: np.ndarray, demand: np.ndarray, col_energy: np.ndarray, capacity: np.ndarray,
              allowed: np.ndarray) -> np.ndarray:
    """:func:`repair` of a single group (G = 1) in closed form; the same routing without rounds.

    With one group, every open site holds ``θ p[i]`` for a common level θ that the rounds of
    :func:`repair` raise until the demand is placed, and a site stays at its capacity once full; so
    the result is ``y[i] = min(θ, θ_i) p[i]`` with ``θ_i = M[i] / (e·p[i])`` and θ solving
    ``Σ y = demand``. If every preferred site is full, the rest is spread
    the same way uniformly over the allowed sites without preference.

    Args:
        p: the group's fractions (..., N, C), summing to 1; demand: (...,) load units; col_energy (C,);
        capacity (N,); allowed (N, C) bool.
    """
    if p.ndim == 2:
        cap = capacity.tolist()
        y, unplaced = _fill_one(p, float(demand), col_energy, cap)
        if unplaced > 0:
            u = ((p.sum(axis=-1) <= 0)[:, None] & allowed).astype(np.float64)   # no preference there
            y = y + _fill_one(u, unplaced, col_energy, cap)[0]
        return y
    y, unplaced = _fill(p, demand, col_energy, capacity)
    if np.any(unplaced > 0):
        u = ((p.sum(axis=-1) <= 0)[..., None] & allowed).astype(np.float64)     # no preference there
        y = y + _fill(u, unplaced, col_energy, capacity)[0]
    return y


class ActionMap:
    """Maps Box actions ``a`` in [-1, 1]^dim to routings for one scenario.

    Map (both modes): ``u = (clip(a, -1, 1) + 1) / 2``; region j's fraction on an allowed pair is its
    weight divided by the sum of its weights over its allowed pairs (uniform when that sum is 0);
    the proposal ``x = fraction × λ[t, j]`` serves all demand and is then passed to :func:`repair`.
    The map is piecewise linear in ``a`` (continuous except where a region's weights are all 0) and,
    in ``"routing"`` mode, any routing that serves all demand is reachable exactly
    (:meth:`action_for`).

    Attributes:
        mode: ``"routing"`` or ``"site_scores"``.
        dim: the action dimension (allowed (i, j, k) triples, or hosted (i, k) pairs).
        index: flat indices into (N, J, K) (routing) or (N, K) (site_scores) of the action entries.
        group: (J,) the repair group of each region; ``groups`` G.
    """

    def __init__(self, scenario: Scenario, mode: str = "routing"):
        if mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {mode!r}")
        self.mode = mode
        self.scenario = scenario
        N, J, K = self.shape = (scenario.N, scenario.J, scenario.K)
        self.allowed = scenario.allowed
        self._cap = scenario.capacity
        if mode == "routing":
            self.index = np.flatnonzero(self.allowed)
            self.group = np.arange(J)
            group_allowed = self.allowed                                     # (N, G, K)
        else:
            self.index = np.flatnonzero(scenario.hosting)
            patterns, group = np.unique(self.allowed.transpose(1, 0, 2).reshape(J, N * K), axis=0,
                                        return_inverse=True)
            self.group = group.reshape(-1)
            group_allowed = patterns.reshape(-1, N, K).transpose(1, 0, 2)
        self.groups = G = group_allowed.shape[1]
        self.dim = int(self.index.size)
        C = G * K
        self._allowed_cols = group_allowed.reshape(N, C)                   # (N, C) bool
        self._ga = self._allowed_cols.astype(np.float64)
        self._col_group = np.kron(np.eye(G), np.ones((K, 1)))              # (C, G)
        self._col_energy = np.tile(scenario.energy_per_unit, G)            # (C,)
        counts = np.ones(N) @ self._ga @ self._col_group                   # (G,) allowed pairs per group
        self._uniform = self._ga / (counts @ self._col_group.T)
        self._member = np.zeros((J, G))
        self._member[np.arange(J), self.group] = 1.0                         # region j belongs to group g
        # site_scores: weight of column c at site i is u[i, k(c)]
        self._col_model = np.tile(np.arange(K), G)
        # column of x (N, J*K) -> column of y (N, G*K)
        self._x_cols = (self.group[:, None] * K + np.arange(K)[None, :]).reshape(-1)
        self._dense = self.dim == (N * J * K if mode == "routing" else N * K)
        self._all_allowed = bool(self._allowed_cols.all())
        # plain-Python copies for factored_routing (one copy, one group, K = 1)
        self._index_list = self.index.tolist()
        self._ga_list = self._ga[:, 0].tolist()
        self._uniform_list = self._uniform[:, 0].tolist()
        self._cap_list = self._cap.tolist()
        self._e0 = float(scenario.energy_per_unit[0])
        # factored_routing: each slot's total demand and the regions' shares of it (as routing computes them)
        self._slot_total = [sum(row) for row in scenario.demand.tolist()]
        totals = np.array(self._slot_total)
        inv = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
        self._slot_share = scenario.demand * inv[:, None]

    def check(self, action: np.ndarray, batch: tuple[int, ...] = ()) -> np.ndarray:
        """Return the action as a float64 array, raising ValueError on a wrong shape or NaN/inf."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != batch + (self.dim,):
            raise ValueError(f"action has shape {a.shape}, expected {batch + (self.dim,)} "
                             f"(action_mode={self.mode!r})")
        # one copy: a finite sum proves every entry finite (cheaper than isfinite on a short vector;
        # a sum that overflows falls through to the full check)
        if not (not batch and math.isfinite(sum(a.tolist()))) and not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0].tolist()
            raise ValueError(f"action has a non-finite value {a[tuple(bad)]!r} (NaN or inf) at index {bad}")
        return a

    def fractions(self, a: np.ndarray) -> np.ndarray:
        """Group fractions p[..., i, c] (sum 1 over the columns of each group) of a checked action."""
        u = np.minimum(np.maximum(a, -1.0), 1.0)
        u += 1.0
        u *= 0.5
        batch = a.shape[:-1]
        N, J, K = self.shape
        if not batch and self.groups == 1:                                    # one copy, one group
            w = u.reshape(N, K) if self._dense else np.zeros(N * K)
            if not self._dense:
                w[self.index] = u
                w = w.reshape(N, K)
            if not self._all_allowed:
                w = w * self._ga
            total = float(w.sum())
            return w / total if total > 0 else self._uniform
        if self.mode == "routing":
            w = np.zeros(batch + (N * J * K,))
            w[..., self.index] = u
            w = w.reshape(batch + (N, J * K))
        else:
            v = np.zeros(batch + (N * K,))
            v[..., self.index] = u
            v = v.reshape(batch + (N, K))
            w = (v if self.groups == 1 else v[..., self._col_model]) * self._ga
        s = (np.ones(N) @ w) @ self._col_group                              # (..., G)
        if np.all(s > 0):
            return w * ((1.0 / s) @ self._col_group.T)[..., None, :]
        inv = (np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)) @ self._col_group.T
        empty = ((s <= 0).astype(np.float64) @ self._col_group.T)[..., None, :]
        return w * inv[..., None, :] + self._uniform * empty

    def routing(self, a: np.ndarray, demand: np.ndarray) -> np.ndarray:
        """The repaired routing x (..., N, J, K) for a checked action and demand λ (..., J)."""
        N, J, K = self.shape
        lead = demand.shape[:-1]
        if not lead and self.groups == 1 and self.mode == "site_scores":    # one copy, one group
            total = sum(demand.tolist())
            share = demand * (1.0 / total) if total > 0 else np.zeros(J)
            y = self._group_routing(a, total)
            return y[:, None, :] * share[None, :, None]
        p = self.fractions(a)
        if self.mode == "routing":
            dcol = demand if K == 1 else np.repeat(demand, K, axis=-1)
            y = repair(p * dcol[..., None, :], p, self._col_group, self._col_energy, self._cap,
                       self._allowed_cols)
            return y.reshape(lead + (N, J, K))
        group_demand = demand @ self._member                                  # (..., G)
        gcol = group_demand if K == 1 else group_demand @ self._col_group.T
        if self.groups == 1:
            y = waterfill(p, group_demand[..., 0], self._col_energy, self._cap, self._allowed_cols)
        else:
            y = repair(p * gcol[..., None, :], p, self._col_group, self._col_energy, self._cap,
                       self._allowed_cols)
        share = demand / np.where(group_demand > 0, group_demand, 1.0)[..., self.group]   # (..., J)
        if K == 1 and self.groups == 1:
            x = y * share[..., None, :]                                      # (..., N, J)
        else:
            x = y[..., :, self._x_cols] * np.repeat(share, K, axis=-1)[..., None, :]
        return x.reshape(lead + (N, J, K))

    @property
    def factored(self) -> bool:
        """Whether one copy's routing factors as ``x[i, j, k] = y[i, k] · share[j]`` (see
        :meth:`factored_routing`): ``"site_scores"`` mode with every region in one group."""
        return self.mode == "site_scores" and self.groups == 1

    def factored_routing(self, a: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Slot ``t``'s routing (one copy) in factored form, for :attr:`factored` maps: ``(y, share)``.

        ``y`` (N, K) is the group's repaired routing (:func:`waterfill` of the total demand of slot
        t) and ``share`` (J,) each region's fraction ``λ[t, j] / Σ_j λ[t, j]`` of it (0 without
        demand, precomputed per slot); the routing is ``x[i, j, k] = y[i, k] · share[j]``, what
        :meth:`routing` returns for ``demand = λ[t]``.
        """
        return self._group_routing(a, self._slot_total[t]), self._slot_share[t]

    def _group_routing(self, a: np.ndarray, total: float) -> np.ndarray:
        """The one group's repaired routing y (N, K) of ``total`` load units for a checked action.

        With one model (K = 1) it runs in plain Python over the N sites, faster than numpy at this size.
        """
        N, J, K = self.shape
        if K > 1:
            return waterfill(self.fractions(a), total, self._col_energy, self._cap, self._allowed_cols)
        # u = (clip(a, -1, 1) + 1) / 2 per site; fractions u / Σu over allowed sites (uniform if Σu = 0)
        u = [((1.0 if v > 1.0 else -1.0 if v < -1.0 else v) + 1.0) * 0.5 for v in a.tolist()]
        if self._dense:
            w = u
        else:
            w = [0.0] * N
            for i, ui in zip(self._index_list, u):
                w[i] = ui
        if not self._all_allowed:
            w = [wi * gi for wi, gi in zip(w, self._ga_list)]
        wsum = sum(w)
        p = [wi / wsum for wi in w] if wsum > 0 else self._uniform_list
        e = self._e0
        fill, unplaced = _fill_levels(p, p if e == 1.0 else [pi * e for pi in p], total, self._cap_list)
        if unplaced > 0:              # every preferred site is full: the general path spreads the rest
            return waterfill(np.array(p)[:, None], total, self._col_energy, self._cap, self._allowed_cols)
        return np.array(list(map(operator.mul, fill, p)))[:, None]

    def action_for(self, x: np.ndarray) -> np.ndarray:
        """A float64 ``"routing"`` action whose fractions equal those of routing ``x`` (N, J, K).

        Each region's largest entry gets weight 1 (action 1); regions with no load get the uniform
        split. Exact up to float64 rounding (pass it to ``step`` as float64, not float32).
        """
        if self.mode != "routing":
            raise ValueError("action_for needs action_mode='routing'")
        x = np.where(self.allowed, np.asarray(x, dtype=np.float64), 0.0)
        m = x.max(axis=(0, 2), keepdims=True)
        u = np.divide(x, m, out=np.zeros_like(x), where=m > 0)
        u = np.where(m > 0, u, 1.0)
        return (2.0 * u - 1.0).reshape(-1)[self.index]
