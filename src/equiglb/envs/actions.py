"""Action maps: from a Box action in [-1, 1]^d to a feasible routing (load units).

Two modes (see :class:`ActionMap`):

* ``"routing"``: one weight per allowed (site i, region j, model k) triple; each region's demand is
  split over its allowed pairs in proportion to ``u = (a + 1) / 2``.
* ``"site_scores"`` (compact): one weight per hosted (site i, model k) pair, shared by every region;
  region j splits its demand over the pairs it may use in proportion to ``u``.

Both are followed by the same deterministic capacity repair: every over-full site is scaled down to
its capacity and the overflow moves to the group's other allowed sites with spare capacity, in
proportion to its weights there. :func:`repair` runs that rule in rounds for any number of groups;
:func:`waterfill` is its closed form for a single group (one level θ for every open site), which
needs no rounds. Regions that split their demand by the same fractions (every region in
``"routing"`` mode is its own group; in ``"site_scores"`` mode, regions with the same allowed pairs
form one group) are repaired together as one group whose routing is then shared out in proportion
to the regions' demand, which is the same result as repairing them one by one (the repair is linear
in a group's demand). Every function accepts leading batch axes; this module is the reference path
of :mod:`equiglb.envs.slot`.
"""

from __future__ import annotations

import numpy as np

from equiglb.ledger import DenseRouting, FactoredRouting
from equiglb.scenario import Scenario

__all__ = ["MAP_MODES", "ActionMap", "check_action", "repair", "waterfill", "unit_weights",
           "CAPACITY_RTOL"]

#: The action modes of :class:`ActionMap` (weights on routing pairs or sites); every action mode of the
#: environment is in :data:`equiglb.envs.slot.ACTION_MODE_REGISTRY`.
MAP_MODES = ("routing", "site_scores")

#: A site's IT energy may exceed its capacity M[i] by this fraction of M[i] (float rounding) before
#: the repair moves load away; relative, so that scenarios in any unit behave alike.
CAPACITY_RTOL = 1e-12


def check_action(action: np.ndarray, dim: int, batch: tuple[int, ...], mode: str) -> np.ndarray:
    """Return the action as a float64 array, raising ValueError on a wrong shape or NaN/inf, and on
    entries that are not real numbers (strings, complex numbers, booleans, objects), which numpy would
    otherwise convert silently (``"0.5"`` to 0.5, ``0.5+1j`` to 0.5)."""
    raw = np.asarray(action)
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"action of dtype {raw.dtype} (action_mode={mode!r}): expected real numbers "
                         f"(a float32 or float64 array of shape {batch + (dim,)})")
    a = raw.astype(np.float64, copy=False)
    if a.shape != batch + (dim,):
        raise ValueError(f"action has shape {a.shape}, expected {batch + (dim,)} (action_mode={mode!r})")
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0].tolist()
        raise ValueError(f"action has a non-finite value {a[tuple(bad)]!r} (NaN or inf) at index {bad}")
    return a


def unit_weights(a: np.ndarray) -> np.ndarray:
    """The weights ``u = (clip(a, -1, 1) + 1) / 2`` in [0, 1] of an action (the one place actions are clipped)."""
    return (np.clip(a, -1.0, 1.0) + 1.0) * 0.5


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
    cap_tol = capacity * (1.0 + CAPACITY_RTOL)
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
    the load placed at level θ_i, ``g_i = Σ_l min(θ_i, θ_l) Q_l``, is below the demand. With the
    sites sorted by θ, ``g`` is a cumulative sum (vectorized over copies). Returns (y, unplaced load units).
    """
    Q = p.sum(axis=-1)                                                   # (..., N) load units per unit θ
    P = (p * col_energy).sum(axis=-1)                                    # (..., N) MWh per unit θ
    pos = P > 0
    theta = capacity / np.where(pos, P, 1.0)                              # level at which site i is full
    order = np.argsort(theta, axis=-1)
    ts, qs = np.take_along_axis(theta, order, -1), np.take_along_axis(Q, order, -1)
    tq = ts * qs
    below_tq = np.cumsum(tq, axis=-1) - tq                               # Σ over sites with smaller θ of θ_l Q_l
    above_q = qs.sum(axis=-1, keepdims=True) - (np.cumsum(qs, axis=-1) - qs)   # Σ over the others of Q_l
    g = below_tq + ts * above_q                                          # load placed at level θ_i (sorted)
    full = np.take_along_axis(pos, order, -1) & (g < demand[..., None])
    done = np.where(full, tq, 0.0).sum(axis=-1)                          # load of the full sites
    rest = np.where(full, 0.0, qs).sum(axis=-1)                          # Q of the open sites
    openq = rest > 0
    level = np.maximum((demand - done) / np.where(openq, rest, 1.0), 0.0)
    fill = np.where(openq[..., None], np.minimum(level[..., None], theta), theta)
    y = np.where(pos, fill, 0.0)[..., None] * p
    unplaced = np.where(openq, 0.0, np.maximum(demand - done, 0.0))
    return y, unplaced


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
    demand = np.asarray(demand, dtype=np.float64)
    y, unplaced = _fill(p, demand, col_energy, capacity)
    if np.any(unplaced > 0):
        u = ((p.sum(axis=-1) <= 0)[..., None] & allowed).astype(np.float64)     # no preference there
        y = y + _fill(u, unplaced, col_energy, capacity)[0]
    return y


class ActionMap:
    """Maps Box actions ``a`` in [-1, 1]^dim to routings for one scenario (batched reference path).

    Map (both modes): ``u = (clip(a, -1, 1) + 1) / 2``; region j's fraction on an allowed pair is its
    weight divided by the sum of its weights over its allowed pairs (uniform when that sum is 0);
    the proposal ``x = fraction × λ[t, j]`` serves all demand and is then repaired (module
    docstring). The map is piecewise linear in ``a`` (continuous except where a region's weights
    are all 0) and, in ``"routing"`` mode, any routing that serves all demand is reachable exactly
    (:meth:`action_for`).

    Attributes:
        mode: ``"routing"`` or ``"site_scores"``.
        dim: the action dimension (allowed (i, j, k) triples, or hosted (i, k) pairs).
        index: flat indices into (N, J, K) (routing) or (N, K) (site_scores) of the action entries.
        group: (J,) the repair group of each region; ``groups`` G.
    """

    def __init__(self, scenario: Scenario, mode: str = "routing"):
        if mode not in MAP_MODES:
            raise ValueError(f"ActionMap maps the action modes {MAP_MODES}, got {mode!r}")
        self.mode = mode
        self.scenario = scenario
        N, J, K = self.shape = (scenario.N, scenario.J, scenario.K)
        self.allowed = scenario.allowed
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
        #: (N, G*K) bool: column c = (group g, model k) = divmod(c, K) is allowed at site i
        self.allowed_cols = group_allowed.reshape(N, G * K)
        self.col_group = np.kron(np.eye(G), np.ones((K, 1)))               # (C, G) column c is in group g
        self.col_energy = np.tile(scenario.energy_per_unit, G)             # (C,) e[k] of column c
        ga = self.allowed_cols.astype(np.float64)
        self.uniform = ga / ((np.ones(N) @ ga @ self.col_group) @ self.col_group.T)   # (N, C) uniform fractions
        self.member = np.zeros((J, G))
        self.member[np.arange(J), self.group] = 1.0                          # region j belongs to group g

    @property
    def factored(self) -> bool:
        """Whether routings factor as ``x[i, j, k] = y[i, k] · share[j]``: ``"site_scores"`` with one group."""
        return self.mode == "site_scores" and self.groups == 1

    def check(self, action: np.ndarray, batch: tuple[int, ...] = ()) -> np.ndarray:
        """Return the action as a float64 array, raising ValueError on a wrong shape or NaN/inf."""
        return check_action(action, self.dim, batch, self.mode)

    def fractions(self, a: np.ndarray) -> np.ndarray:
        """Group fractions p[..., i, c] (sum 1 over the columns of each group) of a checked action."""
        u = unit_weights(a)
        batch = a.shape[:-1]
        N, J, K = self.shape
        if self.mode == "routing":
            w = np.zeros(batch + (N * J * K,))
            w[..., self.index] = u
            w = w.reshape(batch + (N, J * K))
        else:
            v = np.zeros(batch + (N * K,))
            v[..., self.index] = u
            w = np.tile(v.reshape(batch + (N, K)), self.groups)              # column (g, k) takes u[i, k]
        w = w * self.allowed_cols
        s = w.sum(axis=-2) @ self.col_group                                # (..., G) weight per group
        if np.all(s > 0):
            return w * (1.0 / s @ self.col_group.T)[..., None, :]
        inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0) @ self.col_group.T
        empty = ((s <= 0).astype(np.float64) @ self.col_group.T)[..., None, :]   # groups without weight: uniform
        return w * inv[..., None, :] + self.uniform * empty

    def routing(self, a: np.ndarray, demand: np.ndarray) -> DenseRouting | FactoredRouting:
        """The repaired routing of a checked action for demand λ (..., J): factored in ``"site_scores"``
        mode with one group (:attr:`factored`), else dense."""
        N, J, K = self.shape
        lead = demand.shape[:-1]
        p = self.fractions(a)
        group_demand = demand @ self.member                                   # (..., G)
        if self.groups == 1:
            y = waterfill(p, group_demand[..., 0], self.col_energy, self.scenario.capacity, self.allowed_cols)
        else:
            gcol = group_demand @ self.col_group.T                           # (..., C) each column's group demand
            y = repair(p * gcol[..., None, :], p, self.col_group, self.col_energy, self.scenario.capacity,
                       self.allowed_cols)
        share = demand / np.where(group_demand > 0, group_demand, 1.0)[..., self.group]   # (..., J)
        if self.factored:
            return FactoredRouting(y, share)
        cols = (self.group[:, None] * K + np.arange(K)[None, :]).reshape(-1)  # column of region j, model k
        x = y[..., :, cols] * np.repeat(share, K, axis=-1)[..., None, :]
        return DenseRouting(x.reshape(lead + (N, J, K)))

    def action_for(self, x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """A ``"routing"`` action whose fractions equal those of routing ``x`` (N, J, K).

        Each region's largest entry gets weight 1 (action 1); regions with no load get the uniform
        split. In the action space's dtype (float32) by default; ``dtype=np.float64`` gives an
        action exact up to float64 rounding, for replaying a schedule to the last digit.
        """
        if self.mode != "routing":
            raise ValueError("action_for needs action_mode='routing'")
        x = np.where(self.allowed, np.asarray(x, dtype=np.float64), 0.0)
        m = x.max(axis=(0, 2), keepdims=True)
        u = np.divide(x, m, out=np.zeros_like(x), where=m > 0)
        u = np.where(m > 0, u, 1.0)
        return (2.0 * u - 1.0).reshape(-1)[self.index].astype(dtype)
