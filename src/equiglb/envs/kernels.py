"""The compiled slot kernel of :class:`equiglb.envs.slot.CompiledSiteScores` (numba, ``cache=True``).

One function, :func:`site_scores_slot`, does for B copies what the reference path does for a
``"site_scores"`` action with one group of regions and one model: the map ``u = (clip(a) + 1) / 2``,
fractions over the allowed sites, the water-filling of :func:`equiglb.envs.actions.waterfill`
(with the leftovers spread uniformly over allowed sites without weight), then the ledger's slot
formulas (:meth:`equiglb.ledger.Ledger.account`: energy cost, unserved load, cumulative footprints,
Φ). It is plain Python over the copies and the N sites; numba compiles it to machine code on first
use and caches the result on disk. ``NUMBA_DISABLE_JIT=1`` runs it as Python (slow, same numbers).
``tests/test_slot.py`` pins it to the reference slot by slot.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["site_scores_slot", "SITE_ALLOWED", "SITE_UNIFORM", "SITE_CAPACITY", "SITE_MWH_PER_LOAD",
           "SITE_OMEGA", "OUT_REWARD", "OUT_PHI", "OUT_COST", "OUT_UNSERVED", "OUT_SLOT_COST", "OUT_FACILITY"]

#: rows of ``sites`` (5, N): allowed (0/1), uniform fractions over the allowed sites, capacity M (MWh),
#: facility MWh per load unit (e · PUE) and the region weight ω of each site
SITE_ALLOWED, SITE_UNIFORM, SITE_CAPACITY, SITE_MWH_PER_LOAD, SITE_OMEGA = range(5)
#: columns of ``out`` (B, 5 + N): reward, Φ_t, energy cost (USD), unserved load (load units), slot cost
#: (USD), then the facility energy of each site (MWh)
OUT_REWARD, OUT_PHI, OUT_COST, OUT_UNSERVED, OUT_SLOT_COST, OUT_FACILITY = range(6)


@njit(cache=True, error_model="numpy")
def _lq(omega: np.ndarray, v: np.ndarray, q: float) -> float:
    """L_q norm of ``omega * v`` for nonnegative vectors (as :func:`equiglb.ledger.lq_norm`, scaled by the max)."""
    m = 0.0
    for i in range(v.shape[0]):
        if omega[i] * v[i] > m:
            m = omega[i] * v[i]
    if q == math.inf or m <= 0.0:
        return m
    s = 0.0
    if q == 1.0:
        for i in range(v.shape[0]):
            s += omega[i] * v[i]
        return s
    for i in range(v.shape[0]):
        s += (omega[i] * v[i] / m) ** q
    return m * s ** (1.0 / q)


@njit(cache=True, error_model="numpy")
def _fill(p: np.ndarray, e: float, demand: float, capacity: np.ndarray, y: np.ndarray, theta: np.ndarray,
          order: np.ndarray) -> float:
    """Add to ``y`` the water-filling of ``demand`` over the sites in proportion to ``p``; return the load
    left unplaced because every site with ``p > 0`` is full (``theta``, ``order``: work arrays (N,)).

    Site i holds ``min(θ, θ_i) p[i]`` with ``θ_i = M[i] / (e p[i])`` the level at which it is full and
    θ the level that places the demand: visiting the sites by increasing θ_i, the first one that the
    demand does not fill fixes θ.
    """
    N = p.shape[0]
    rest, lowest = 0.0, math.inf                         # weight of the open sites; the smallest θ_i
    for i in range(N):
        theta[i] = capacity[i] / (e * p[i]) if p[i] > 0 else math.inf
        rest += p[i]
        lowest = min(lowest, theta[i])
    done, level = 0.0, math.inf                          # load of the full sites; the level θ
    if lowest * rest >= demand:                          # no site fills: the first site visited fixes θ
        level = demand / rest
    else:
        for i in range(N):                               # insertion sort of the sites by θ_i
            k = i
            while k > 0 and theta[order[k - 1]] > theta[i]:
                order[k] = order[k - 1]
                k -= 1
            order[k] = i
        for i in order:
            if p[i] <= 0:
                break
            if done + theta[i] * rest >= demand:         # site i (and every later one) stays open
                level = max((demand - done) / rest, 0.0)
                break
            done += theta[i] * p[i]
            rest -= p[i]
    for i in range(N):
        if p[i] > 0:
            y[i] += min(level, theta[i]) * p[i]
    return max(demand - done, 0.0) if level == math.inf else 0.0


@njit(cache=True, error_model="numpy")
def site_scores_slot(t: np.ndarray, a: np.ndarray, site_of_entry: np.ndarray, sites: np.ndarray,
                     per_unit: np.ndarray, demand: np.ndarray, share: np.ndarray, total: np.ndarray,
                     params: np.ndarray, footprint: np.ndarray, phi_prev: np.ndarray, out: np.ndarray,
                     x: np.ndarray) -> int:
    """Route and account slot ``t[b]`` of every copy b; returns -1, or the first copy whose action is
    not finite (then nothing is written).

    Args:
        t: (B,) slot of each copy. a: (B, D) actions. site_of_entry: (D,) the site of action entry d.
        sites: (5, N) per-site constants (rows ``SITE_*``). per_unit: (T, 3, N) energy cost (USD),
            carbon (t) and water (m³) per load unit at site i in slot t.
        demand, share: (T, J) demand λ (load units) and each region's fraction of the slot's total.
        total: (T,) total demand of the slot. params: e (MWh per load unit), q, μ_c, μ_w, the unserved
            penalty (USD per load unit) and the unserved tolerance (``UNSERVED_RTOL``).
        footprint: (B, 2, N) cumulative carbon and water, updated in place. phi_prev: (B,) Φ_{t-1}.
        out: (B, 5 + N) written (columns ``OUT_*``). x: (B, N, J) the routing, written.
    """
    B, D = a.shape
    N = sites.shape[1]
    for b in range(B):
        for d in range(D):
            if not math.isfinite(a[b, d]):
                return b
    e, q, mu_c, mu_w, penalty, rtol = params[0], params[1], params[2], params[3], params[4], params[5]
    allowed, capacity, omega = sites[SITE_ALLOWED], sites[SITE_CAPACITY], sites[SITE_OMEGA]
    p, y, rest, theta = np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    order = np.empty(N, dtype=np.int64)
    for b in range(B):
        s = t[b]
        # action -> fractions p over the allowed sites (uniform if every weight is 0)
        for i in range(N):
            p[i] = 0.0
        for d in range(D):
            v = min(max(float(a[b, d]), -1.0), 1.0)
            p[site_of_entry[d]] = (v + 1.0) * 0.5
        weight = 0.0
        for i in range(N):
            p[i] *= allowed[i]
            weight += p[i]
        for i in range(N):
            p[i] = p[i] / weight if weight > 0 else sites[SITE_UNIFORM, i]
        # water-filling of the slot's total demand; leftovers go uniformly to allowed sites without weight
        for i in range(N):
            y[i] = 0.0
        unplaced = _fill(p, e, total[s], capacity, y, theta, order)
        if unplaced > 0:
            for i in range(N):
                rest[i] = 1.0 if p[i] <= 0 and allowed[i] > 0 else 0.0
            _fill(rest, e, unplaced, capacity, y, theta, order)
        # accounting (Ledger.account) of x[i, j] = y[i] share[j]
        served = 0.0
        for i in range(N):
            served += y[i]
        unserved = 0.0
        for j in range(share.shape[1]):
            short = demand[s, j] - share[s, j] * served
            if short > rtol * demand[s, j]:
                unserved += short
        for i in range(N):
            for j in range(share.shape[1]):
                x[b, i, j] = y[i] * share[s, j]
        cost = 0.0
        for i in range(N):
            cost += per_unit[s, 0, i] * y[i]
            footprint[b, 0, i] += per_unit[s, 1, i] * y[i]
            footprint[b, 1, i] += per_unit[s, 2, i] * y[i]
            out[b, OUT_FACILITY + i] = sites[SITE_MWH_PER_LOAD, i] * y[i]
        phi = mu_c * _lq(omega, footprint[b, 0], q) + mu_w * _lq(omega, footprint[b, 1], q)
        slot_cost = cost + penalty * unserved
        out[b, OUT_REWARD] = -(slot_cost + phi - phi_prev[b])
        out[b, OUT_PHI] = phi
        out[b, OUT_COST] = cost
        out[b, OUT_UNSERVED] = unserved
        out[b, OUT_SLOT_COST] = slot_cost
    return -1
