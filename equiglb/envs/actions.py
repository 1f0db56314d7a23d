"""Action maps: from a Box action in [-1, 1]^d to a feasible routing x[i, j, k] (load units).

Two modes (see :class:`ActionMap`):

* ``"routing"``: one weight per allowed (site i, region j, model k) triple; each region's demand is
  split over its allowed pairs in proportion to ``u = (a + 1) / 2``.
* ``"site_scores"`` (compact): one weight per hosted (site i, model k) pair, shared by every region;
  region j splits its demand over the pairs it may use in proportion to ``u``.

Both are followed by the same deterministic capacity :func:`repair`. All functions accept any
leading batch axes, so the single and the vector environment share them.
"""

from __future__ import annotations

import numpy as np

from equiglb.scenario import Scenario

__all__ = ["ACTION_MODES", "ActionMap", "repair"]

#: The available action modes.
ACTION_MODES = ("routing", "site_scores")


def repair(x: np.ndarray, pref: np.ndarray, allowed: np.ndarray, energy_per_unit: np.ndarray,
           capacity: np.ndarray) -> np.ndarray:
    """Make a proposed routing respect capacity, moving overflow to reachable sites with spare capacity.

    Rounds (at most N + 1, deterministic): every site whose IT energy ``Σ_{j,k} e[k] x[i,j,k]`` exceeds
    its capacity ``M[i]`` is scaled down to exactly ``M[i]`` and closed; each region re-places the load
    it lost on its allowed pairs at still-open sites, in proportion to its preference ``pref`` there
    (uniformly over them if its preference there is zero). A closed site is full and never receives
    load again, so every round with overflow closes at least one site. Load is left unplaced (and
    becomes unserved in the ledger) only when every site the region can reach is full.

    Args:
        x: proposed routing (..., N, J, K), load units, >= 0, zero where not ``allowed``.
        pref: the region's preference weights (..., N, J, K), >= 0.
        allowed: (N, J, K) bool, mask and hosting.
        energy_per_unit: e[k], MWh per load unit, (K,).
        capacity: M[i], MWh per slot, (N,).

    Returns:
        The repaired routing (a new array), capacity respected to floating-point rounding.
    """
    N = capacity.shape[0]
    batch = x.shape[:-3]
    open_ = np.ones(batch + (N,), bool)
    allowed_f = allowed.astype(np.float64)
    tol = 1e-12 * np.maximum(capacity, 1.0)
    for _ in range(N + 1):
        load = (x @ energy_per_unit).sum(axis=-1)                    # (..., N) IT MWh
        over = load > capacity + tol
        if not over.any():
            break
        ratio = np.where(over, capacity / np.where(over, load, 1.0), 1.0)
        scaled = x * ratio[..., :, None, None]
        lost = (x - scaled).sum(axis=(-3, -1))                       # (..., J) load units
        x = scaled
        open_ &= ~over
        o = open_[..., :, None, None]
        w = pref * o
        ws = w.sum(axis=(-3, -1), keepdims=True)
        u = allowed_f * o
        us = u.sum(axis=(-3, -1), keepdims=True)
        share = np.where(ws > 0, w / np.where(ws > 0, ws, 1.0), u / np.where(us > 0, us, 1.0))
        x = x + lost[..., None, :, None] * share
    return x


class ActionMap:
    """Maps Box actions ``a`` in [-1, 1]^dim to routings for one scenario.

    Map (both modes): ``u = (clip(a, -1, 1) + 1) / 2``; region j's fraction on an allowed pair is its
    weight divided by the sum of its weights over its allowed pairs (uniform when that sum is 0);
    the proposal ``x = fraction × λ[t, j]`` serves all demand and is then passed to :func:`repair`.
    The map is piecewise linear in ``a`` (continuous except where a region's weights are all 0) and
    any routing that serves all demand is reachable exactly (see :meth:`action_for`).

    Attributes:
        mode: ``"routing"`` or ``"site_scores"``.
        dim: the action dimension (allowed (i, j, k) triples, or hosted (i, k) pairs).
        index: flat indices into (N, J, K) (routing) or (N, K) (site_scores) of the action entries.
    """

    def __init__(self, scenario: Scenario, mode: str = "routing"):
        if mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {mode!r}")
        self.mode = mode
        self.scenario = scenario
        self.allowed = scenario.allowed
        self._allowed_f = self.allowed.astype(np.float64)
        self.shape = (scenario.N, scenario.J, scenario.K)
        if mode == "routing":
            self.index = np.flatnonzero(self.allowed)
        else:
            self.index = np.flatnonzero(scenario.hosting)
        self.dim = int(self.index.size)
        counts = self._allowed_f.sum(axis=(0, 2), keepdims=True)
        self._uniform = self._allowed_f / counts

    def check(self, action: np.ndarray, batch: tuple[int, ...] = ()) -> np.ndarray:
        """Return the action as a float64 array, raising ValueError on a wrong shape or NaN/inf."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != batch + (self.dim,):
            raise ValueError(f"action has shape {a.shape}, expected {batch + (self.dim,)} "
                             f"(action_mode={self.mode!r})")
        if not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0].tolist()
            raise ValueError(f"action has a non-finite value {a[tuple(bad)]!r} (NaN or inf) at index {bad}")
        return a

    def fractions(self, a: np.ndarray) -> np.ndarray:
        """Region fractions f[..., i, j, k] (sum 1 over (i, k) for every j) of a checked action."""
        u = (np.clip(a, -1.0, 1.0) + 1.0) * 0.5
        batch = a.shape[:-1]
        N, J, K = self.shape
        if self.mode == "routing":
            w = np.zeros(batch + (N * J * K,))
            w[..., self.index] = u
            w = w.reshape(batch + (N, J, K))
        else:
            v = np.zeros(batch + (N * K,))
            v[..., self.index] = u
            w = v.reshape(batch + (N, 1, K)) * self._allowed_f
        s = w.sum(axis=(-3, -1), keepdims=True)
        return np.where(s > 0, w / np.where(s > 0, s, 1.0), self._uniform)

    def routing(self, a: np.ndarray, demand: np.ndarray) -> np.ndarray:
        """The repaired routing x (..., N, J, K) for a checked action and demand λ (..., J)."""
        f = self.fractions(a)
        x = f * demand[..., None, :, None]
        sc = self.scenario
        return repair(x, f, self.allowed, sc.energy_per_unit, sc.capacity)

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
