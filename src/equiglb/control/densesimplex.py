"""A dense dual simplex for small boxed linear programs (numba, ``cache=True``): MPC's per-slot LP on a full mask.

HiGHS spends about 0.19 ms setting up any run, even of a one-variable LP, while the aggregated per-slot program of
a full mask at H = 24 has only 44 rows (:class:`equiglb.control.mpc.AggregateLPSolver`). This module solves such a
program in place with the textbook bounded dual simplex (Chvátal, *Linear Programming*, ch. 8; Koberstein,
*The dual simplex method, techniques for a fast and stable implementation*, 2005):

* the program ``min c·x, row_lower <= A x <= row_upper, col_lower <= x <= col_upper`` with A in compressed-column
  form is written with one logical column per row, ``A x - r = 0``, ``r`` bounded by the row bounds;
* **every bound must be finite** (the caller boxes the program: :meth:`AggregateLPSolver._solve_dense` with
  bounds the constraints imply, and for the epigraph variables one no optimum reaches, checked after): then any
  basis is dual feasible once each nonbasic column sits at the bound its reduced
  cost points to, so the method needs no phase 1: it starts from the logical basis (a cold start, the default)
  or from a given basis (a warm start);
* the inverse of the basis is kept dense (m x m) with product-form updates and recomputed from the basis every
  :data:`REFACTOR` iterations; a basis found optimal on an updated inverse is accepted when its values satisfy
  the rows to :data:`PRIMAL_TOL` (relative), else the inverse is recomputed and the iteration goes on;
* the leaving row by dual steepest edge (the largest violation² over the squared norm of its row of B⁻¹, exact
  since B⁻¹ is dense); the entering column by the bound-flipping ratio test (the breakpoints passed while the
  dual objective still rises flip to their other bound), with Harris's tolerance (:data:`DUAL_TOL`) choosing
  the largest pivot near the last breakpoint. On MPC's full-mask LP at H = 24 (266 columns, 44 rows) a cold start
  takes about 72 iterations (HiGHS 67), a warm start from the previous slot's basis about 8 (HiGHS 5).

:func:`dual_simplex` returns a status (:data:`OPTIMAL`, :data:`INFEASIBLE`, :data:`ITERATION_LIMIT` or
:data:`SINGULAR`), the values of the columns and rows, the reduced costs, the iteration count, and leaves the
final basis in ``status``. ``tests/test_densesimplex.py`` pins it to HiGHS on random boxed LPs (the optimum, with
reduced costs of the right signs) and slot by slot behind :class:`~equiglb.control.mpc.AggregateLPSolver`.
``NUMBA_DISABLE_JIT=1`` runs it as Python (slow, the same numbers).
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
#: a pivot-row entry at most this large in magnitude makes no breakpoint in the ratio test
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
def _residual(x: np.ndarray, n: int, start: np.ndarray, index: np.ndarray, values: np.ndarray) -> float:
    """The largest violation of ``A x_columns = x_rows`` relative to the largest value (one at least)."""
    m = x.shape[0] - n
    act = np.zeros(m)
    big = 1.0
    for j in range(n):
        if x[j] != 0.0:
            big = max(big, abs(x[j]))
            for k in range(start[j], start[j + 1]):
                act[index[k]] += values[k] * x[j]
    worst = 0.0
    for i in range(m):
        big = max(big, abs(x[n + i]))
        worst = max(worst, abs(act[i] - x[n + i]))
    return worst / big


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
            if since == 0 or _residual(x, n, start, index, values) <= PRIMAL_TOL:
                return OPTIMAL, x, d, it                 # the rows hold (on the updated inverse, or a fresh one)
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
        # bound-flipping ratio test: pass the breakpoints in increasing order while the dual objective still rises
        # (its slope starts at the violation and drops by |alpha_j| (u_j - l_j) at each); those passed flip to their
        # other bound. Among the breakpoints left within Harris's tolerance of the next one, the largest pivot enters.
        slope = abs(x[p] - target)
        n_flip = 0
        flip[:] = 0.0
        while True:
            e_min, t_min = -1, np.inf
            for e in range(n_el):
                if ratio[e] < t_min:
                    e_min, t_min = e, ratio[e]
            j = cand[e_min]
            width = abs(alpha[j]) * (upper[j] - lower[j])
            if n_el == 1 or slope - width < 0.0:
                break
            slope -= width                               # passed: j flips, x_B follows (below)
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
            n_el -= 1
            cand[e_min], ratio[e_min] = cand[n_el], ratio[n_el]
        bound = (abs(d[j]) + DUAL_TOL) / abs(alpha[j])
        q, best = j, abs(alpha[j])
        for e in range(n_el):
            jj = cand[e]
            if ratio[e] <= bound and abs(alpha[jj]) > best:
                q, best = jj, abs(alpha[jj])
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

