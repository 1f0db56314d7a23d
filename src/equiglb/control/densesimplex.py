"""A dense dual simplex for small boxed linear programs (numba, ``cache=True``): MPC's per-slot LP on a full mask.

HiGHS spends about 0.19 ms setting up any run, even of a one-variable LP, while the aggregated per-slot program of
a full mask at H = 24 has only 44 rows (:class:`equiglb.control.mpc.AggregateLPSolver`). This module solves such a
program in place with the textbook bounded dual simplex (Chvátal, *Linear Programming*, ch. 8; Koberstein,
*The dual simplex method, techniques for a fast and stable implementation*, 2005):

* the program ``min c·x, row_lower <= A x <= row_upper, col_lower <= x <= col_upper`` with A in compressed-column
  form is written with one logical column per row, ``A x - r = 0``, ``r`` bounded by the row bounds;
* **every bound must be finite** (the caller boxes the program with bounds no optimum reaches, and checks the
  optimum stays off them): then any basis is dual feasible once each nonbasic column sits at the bound its reduced
  cost points to, so the method needs no phase 1: it starts from the logical basis (a cold start, the default)
  or from a given basis (a warm start);
* the inverse of the basis is kept dense (m x m) with product-form updates, and recomputed from the basis every
  :data:`REFACTOR` iterations and at the end (the optimum is checked on the fresh inverse);
* the leaving row is the one of largest bound violation, the entering column by Harris's two-pass ratio test
  (tolerance :data:`DUAL_TOL`), ties broken towards the largest pivot.

:func:`dual_simplex` returns a status (:data:`OPTIMAL`, :data:`INFEASIBLE`, :data:`ITERATION_LIMIT` or
:data:`SINGULAR`), the column and row values and the final basis. ``tests/test_densesimplex.py`` pins it to HiGHS
on MPC's programs and on random boxed LPs. ``NUMBA_DISABLE_JIT=1`` runs it as Python (slow, the same numbers).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["dual_simplex", "OPTIMAL", "INFEASIBLE", "ITERATION_LIMIT", "SINGULAR", "AT_LOWER", "AT_UPPER", "BASIC",
           "REFACTOR", "PRIMAL_TOL", "DUAL_TOL"]

#: statuses returned by :func:`dual_simplex`
OPTIMAL, INFEASIBLE, ITERATION_LIMIT, SINGULAR = 0, 1, 2, 3
#: the status of a column or row in a basis: nonbasic at its lower or upper bound, or basic
AT_LOWER, AT_UPPER, BASIC = 0, 1, 2
#: iterations between two recomputations of the basis inverse
REFACTOR = 64
#: a basic value further than this outside its bounds is infeasible (the programs come scaled to O(1) values)
PRIMAL_TOL = 1e-9
#: Harris's tolerance on reduced costs in the ratio test
DUAL_TOL = 1e-9
#: a pivot smaller than this is refused in the ratio test's second pass
PIVOT_TOL = 1e-9


@njit(cache=True)
def _column_into(j: int, n: int, start: np.ndarray, index: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """Column j of [A, -I] (j < n: A's column; else the logical of row j - n) into the dense ``out`` (m,)."""
    out[:] = 0.0
    if j < n:
        for k in range(start[j], start[j + 1]):
            out[index[k]] = values[k]
    else:
        out[j - n] = -1.0


@njit(cache=True)
def _invert(basic: np.ndarray, n: int, start: np.ndarray, index: np.ndarray, values: np.ndarray,
            binv: np.ndarray) -> bool:
    """The inverse of the basis ``basic`` into ``binv``; False when the basis is (numerically) singular."""
    m = basic.shape[0]
    b = np.zeros((m, m))
    col = np.zeros(m)
    for k in range(m):
        _column_into(basic[k], n, start, index, values, col)
        b[:, k] = col
    # Gauss-Jordan with partial pivoting on [B | I]
    inv = np.eye(m)
    for c in range(m):
        piv, best = -1, 1e-11
        for r in range(c, m):
            if abs(b[r, c]) > best:
                piv, best = r, abs(b[r, c])
        if piv < 0:
            return False
        if piv != c:
            for k in range(m):
                b[c, k], b[piv, k] = b[piv, k], b[c, k]
                inv[c, k], inv[piv, k] = inv[piv, k], inv[c, k]
        p = b[c, c]
        for k in range(m):
            b[c, k] /= p
            inv[c, k] /= p
        for r in range(m):
            if r != c and b[r, c] != 0.0:
                f = b[r, c]
                for k in range(m):
                    b[r, k] -= f * b[c, k]
                    inv[r, k] -= f * inv[c, k]
    binv[:, :] = inv
    return True


@njit(cache=True)
def _recompute(basic: np.ndarray, status: np.ndarray, x: np.ndarray, d: np.ndarray, cost: np.ndarray, n: int,
               start: np.ndarray, index: np.ndarray, values: np.ndarray, binv: np.ndarray) -> None:
    """The basic values ``x_B = -B⁻¹ N x_N`` and the reduced costs ``d = c - yᵀ[A, -I]``, ``y = c_Bᵀ B⁻¹``,
    from the current inverse."""
    m = basic.shape[0]
    rhs = np.zeros(m)                                  # N x_N
    for j in range(n + m):
        if status[j] != BASIC and x[j] != 0.0:
            if j < n:
                for k in range(start[j], start[j + 1]):
                    rhs[index[k]] += values[k] * x[j]
            else:
                rhs[j - n] -= x[j]
    y = np.zeros(m)
    for k in range(m):
        v = 0.0
        for i in range(m):
            v += binv[k, i] * rhs[i]
        x[basic[k]] = -v
        c = cost[basic[k]]
        if c != 0.0:
            for i in range(m):
                y[i] += c * binv[k, i]
    for j in range(n + m):
        if status[j] == BASIC:
            d[j] = 0.0
        elif j < n:
            v = cost[j]
            for k in range(start[j], start[j + 1]):
                v -= y[index[k]] * values[k]
            d[j] = v
        else:
            d[j] = cost[j] + y[j - n]


@njit(cache=True)
def dual_simplex(cost: np.ndarray, lower: np.ndarray, upper: np.ndarray, start: np.ndarray, index: np.ndarray,
                 values: np.ndarray, status: np.ndarray, max_iter: int) -> tuple[int, np.ndarray, np.ndarray, int]:
    """Solve ``min cost·x`` over ``[A, -I] (x, r) = 0``, ``lower <= (x, r) <= upper`` by the bounded dual simplex.

    Args:
        cost: (n + m,) the columns' costs, then the rows' (zeros).
        lower, upper: (n + m,) finite bounds of the columns, then of the rows (the row activities A x).
        start, index, values: A (m x n) in compressed-column form (int32 or int64 ``start`` and ``index``).
        status: (n + m,) int8, overwritten: the starting basis (:data:`BASIC` exactly m entries, the others'
            :data:`AT_LOWER` / :data:`AT_UPPER` are set from their reduced costs); the logical basis for a cold
            start. On return, the final basis.
        max_iter: the iteration limit.
    Returns:
        (status code, the values (n + m,) of the columns then the rows, the reduced costs (n + m,), iterations).
    """
    nm = cost.shape[0]
    m = nm - (start.shape[0] - 1)
    n = nm - m
    basic = np.empty(m, dtype=np.int64)
    k = 0
    for j in range(nm):
        if status[j] == BASIC:
            if k == m:
                return SINGULAR, np.zeros(nm), np.zeros(nm), 0
            basic[k] = j
            k += 1
    if k != m:
        return SINGULAR, np.zeros(nm), np.zeros(nm), 0
    binv = np.empty((m, m))
    if not _invert(basic, n, start, index, values, binv):
        return SINGULAR, np.zeros(nm), np.zeros(nm), 0
    x = np.zeros(nm)
    d = np.zeros(nm)
    # nonbasic columns at the bound their reduced cost points to (dual feasible: every bound is finite)
    for j in range(nm):
        if status[j] != BASIC:
            x[j] = lower[j]
    _recompute(basic, status, x, d, cost, n, start, index, values, binv)
    for j in range(nm):
        if status[j] != BASIC:
            if d[j] < 0.0:
                status[j], x[j] = AT_UPPER, upper[j]
            else:
                status[j], x[j] = AT_LOWER, lower[j]
    _recompute(basic, status, x, d, cost, n, start, index, values, binv)
    rho = np.empty(m)
    alpha = np.zeros(nm)
    acol = np.empty(m)
    flip = np.empty(m)
    cand = np.empty(nm, dtype=np.int64)
    ratio = np.empty(nm)
    it, since = 0, 0
    while True:
        # leaving row: dual steepest edge, the largest violation² / ||row of B⁻¹||² (exact weights: B⁻¹ is dense)
        r, worst = -1, 0.0
        for k in range(m):
            j = basic[k]
            v = lower[j] - x[j]
            if v <= PRIMAL_TOL:
                v = x[j] - upper[j]
            if v > PRIMAL_TOL:
                w = 0.0
                for i in range(m):
                    w += binv[k, i] * binv[k, i]
                if v * v / w > worst:
                    r, worst = k, v * v / w
        if r < 0:
            if since == 0:                               # checked on a fresh inverse: optimal
                return OPTIMAL, x, d, it
            if not _invert(basic, n, start, index, values, binv):
                return SINGULAR, x, d, it
            _recompute(basic, status, x, d, cost, n, start, index, values, binv)
            since = 0
            continue
        if it >= max_iter:
            return ITERATION_LIMIT, x, d, it
        p = basic[r]
        s = 1.0 if x[p] < lower[p] else -1.0             # +1: p rises to its lower bound, -1: falls to its upper
        target = lower[p] if s > 0 else upper[p]
        # the pivot row alpha_r = (B⁻¹ [A, -I])_r over the nonbasic columns
        for i in range(m):
            rho[i] = binv[r, i]
        n_el = 0
        for j in range(nm):
            if status[j] == BASIC or lower[j] == upper[j]:
                alpha[j] = 0.0                           # basic or fixed: never enters
                continue
            if j < n:
                v = 0.0
                for kk in range(start[j], start[j + 1]):
                    v += rho[index[kk]] * values[kk]
            else:
                v = -rho[j - n]
            alpha[j] = v
            a = s * v                                    # eligible: at lower with s·alpha < 0, at upper with > 0
            if (status[j] == AT_LOWER and a < -PIVOT_TOL) or (status[j] == AT_UPPER and a > PIVOT_TOL):
                cand[n_el] = j
                ratio[n_el] = abs(d[j]) / abs(a)
                n_el += 1
        if n_el == 0:
            return INFEASIBLE, x, d, it
        # bound-flipping ratio test: pass the breakpoints in order while the dual objective still rises (its slope
        # starts at the violation and drops by |alpha_j| (u_j - l_j) at each); those passed flip to their other
        # bound; among the breakpoints within Harris's tolerance of the stopping one, the largest pivot enters
        order = np.argsort(ratio[:n_el])
        slope = abs(x[p] - target)
        stop = n_el - 1
        for e in range(n_el):
            j = cand[order[e]]
            slope -= abs(alpha[j]) * (upper[j] - lower[j])
            if slope < 0.0:
                stop = e
                break
        bound = (abs(d[cand[order[stop]]]) + DUAL_TOL) / abs(alpha[cand[order[stop]]])
        q, best, pick = -1, 0.0, stop
        for e in range(n_el):
            j = cand[order[e]]
            if ratio[order[e]] > bound:
                break
            if e >= stop or abs(alpha[j]) > 1e3 * PIVOT_TOL:
                if e >= stop and abs(alpha[j]) > best:
                    q, best, pick = j, abs(alpha[j]), e
        if q < 0:
            q, pick = cand[order[stop]], stop
        # the columns of the breakpoints before the entering one flip bounds; x_B follows: x_B -= B⁻¹ (a_j Δ_j)
        flip[:] = 0.0
        n_flip = 0
        for e in range(pick):
            j = cand[order[e]]
            if status[j] == AT_LOWER:
                delta, status[j], x[j] = upper[j] - lower[j], AT_UPPER, upper[j]
            else:
                delta, status[j], x[j] = lower[j] - upper[j], AT_LOWER, lower[j]
            if j < n:
                for kk in range(start[j], start[j + 1]):
                    flip[index[kk]] += values[kk] * delta
            else:
                flip[j - n] -= delta
            n_flip += 1
        if n_flip > 0:
            for i in range(m):
                v = 0.0
                for kk in range(m):
                    v += binv[i, kk] * flip[kk]
                x[basic[i]] -= v
        # dual step: the reduced costs move along the pivot row (q's reaches 0, p's takes -theta)
        theta = d[q] / alpha[q]
        for j in range(nm):
            if alpha[j] != 0.0:
                d[j] -= theta * alpha[j]
        d[q] = 0.0
        d[p] = -theta
        # primal step: x_q moves until x_p reaches its bound; x_B = -B⁻¹ N x_N moves by -acol · step
        if q < n:
            for i in range(m):
                v = 0.0
                for kk in range(start[q], start[q + 1]):
                    v += binv[i, index[kk]] * values[kk]
                acol[i] = v
        else:
            for i in range(m):
                acol[i] = -binv[i, q - n]
        step = (x[p] - target) / acol[r]
        x[q] += step
        for i in range(m):
            x[basic[i]] -= acol[i] * step
        x[p] = target
        # basis change and the product-form update of the inverse
        status[p] = AT_LOWER if s > 0 else AT_UPPER
        status[q] = BASIC
        basic[r] = q
        piv = acol[r]
        for kk in range(m):
            binv[r, kk] /= piv
        for i in range(m):
            f = acol[i]
            if i != r and f != 0.0:
                for kk in range(m):
                    binv[i, kk] -= f * binv[r, kk]
        it += 1
        since += 1
        if since >= REFACTOR:
            if not _invert(basic, n, start, index, values, binv):
                return SINGULAR, x, d, it
            _recompute(basic, status, x, d, cost, n, start, index, values, binv)
            since = 0


def box(col_lower: np.ndarray, col_upper: np.ndarray, row_lower: np.ndarray, row_upper: np.ndarray,
        cost: np.ndarray, start: np.ndarray, index: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite bounds (n + m,) for :func:`dual_simplex` of an LP whose infinite bounds no optimum reaches.

    * a column with an infinite upper bound that has a positive entry in an equality row whose other entries
      are nonnegative on nonnegative columns is bounded by that row's value over its entry (the unserved load
      and each routed load, bounded by the demand);
    * a column left with an infinite upper bound, a positive cost and only negative entries, in rows with a
      finite upper bound (an epigraph variable z of ``F(x) - z <= b``): at an optimum it is at most the largest
      value those rows can force, ``max (F_max - b) / |entry|``; twice that plus one bounds it;
    * a row with an infinite side gets the extreme value of its activity over the box, one beyond.

    Every other infinite bound is a ValueError (the program is not of this kind). The caller checks that no
    optimum lies on a bound set here (:func:`on_artificial_bound`)."""
    n, m = len(col_lower), len(row_lower)
    lo = np.concatenate([col_lower, row_lower]).astype(np.float64)
    up = np.concatenate([col_upper, row_upper]).astype(np.float64)
    if not np.isfinite(lo[:n]).all():
        raise ValueError("box: every column needs a finite lower bound")
    counts = np.diff(start[:n + 1])
    col_of = np.repeat(np.arange(n), counts)
    equal = row_lower[index] == row_upper[index]
    open_cols = np.nonzero(~np.isfinite(up[:n]))[0]
    for j in open_cols:
        rows, vals = index[start[j]:start[j + 1]], values[start[j]:start[j + 1]]
        for r, a in zip(rows, vals):
            if a > 0 and row_lower[r] == row_upper[r] and np.isfinite(row_upper[r]):
                sel = index == r
                if (values[sel] >= 0).all() and (lo[col_of[sel]] >= 0).all():
                    up[j] = min(up[j], row_upper[r] / a)
    del equal
    act_hi = np.zeros(m)                               # the largest row activity over the box, open columns aside
    for j in range(n):
        if not np.isfinite(up[j]):
            continue
        rows, vals = index[start[j]:start[j + 1]], values[start[j]:start[j + 1]]
        act_hi[rows] += np.maximum(vals * lo[j], vals * up[j])
    for j in open_cols:
        if np.isfinite(up[j]):
            continue
        rows, vals = index[start[j]:start[j + 1]], values[start[j]:start[j + 1]]
        if cost[j] <= 0 or (vals >= 0).any() or not np.isfinite(row_upper[rows]).all():
            raise ValueError(f"box: column {j} has no finite upper bound that no optimum reaches")
        forced = np.max((act_hi[rows] - row_upper[rows]) / -vals)
        up[j] = 2.0 * max(forced, lo[j]) + 1.0
    act_lo, act_hi = np.zeros(m), np.zeros(m)
    for j in range(n):
        rows, vals = index[start[j]:start[j + 1]], values[start[j]:start[j + 1]]
        act_lo[rows] += np.minimum(vals * lo[j], vals * up[j])
        act_hi[rows] += np.maximum(vals * lo[j], vals * up[j])
    lo[n:] = np.where(np.isfinite(lo[n:]), lo[n:], act_lo - 1.0)
    up[n:] = np.where(np.isfinite(up[n:]), up[n:], act_hi + 1.0)
    return lo, up
