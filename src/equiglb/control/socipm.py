"""A small dense interior-point method for linear programs with second-order cones (numba, ``cache=True``):
MPC's per-slot program at q = 2.

The program of :class:`equiglb.control.mpc.AggregateConeSolver` at H = 24 on a full mask has 44 rows (the demand
of each slot and one link row per site and norm), 264 linear columns and two second-order cones of dimension
N + 1 (on the eGLB-2022 partial mask, five region classes sharing sites: 380 rows, 1,030 columns). Clarabel
solves it in about 7-10 ms (16 ms), most of it in setting up and factorizing a sparse KKT system far larger than
the problem. This module solves the normal equations of the program itself, ``A Θ Aᵀ`` (m x m, dense), with the
primal-dual method of Mehrotra (predictor-corrector, one common step for primal and dual) and the
Nesterov-Todd scaling of the cones (Vandenberghe, *The CVXOPT linear and quadratic cone program solvers*,
2010; Andersen, Roos and Terlaky, *On implementing a primal-dual interior-point method for conic quadratic
optimization*, Math. Program. 95, 2003):

    min c·x   s.t.   A x = b,   0 <= x_j <= ub_j  (j < n_lin; ub_j may be +inf),   x_k ∈ SOC  (the cone blocks)

with A in compressed-column form. Columns ``j < n_lin`` are linear; the others are the cone blocks, block k the
columns ``cone_start[k] .. cone_start[k+1]`` with ``x_0 >= ||x_1..||``. Inactive columns and rows (``col_on``,
``row_on``: a slot without demand, whose columns can only be 0) are left out of the program.

For a second-order cone pair (x, z) the scaling is W = sqrt(θ²) W̄ with θ² = γ(x)/γ(z), γ(v) = sqrt(v₀² - |v₁|²)
and w̄ = (x̄ + J z̄) / sqrt(2 (1 + x̄·z̄)) (x̄ = x/γ(x), z̄ = z/γ(z), J = diag(1, -I)): W² z = x, and
W² = θ² (2 w̄ w̄ᵀ - J) enters the normal matrix as the diagonal x/z of a linear column does.

The normal matrix is factorized within its envelope (the first column of each row that can be nonzero): the
rows with nothing left of the diagonal (a slot's demand rows) are a diagonal block, a slot's rows touch only
their slot, and the link rows are dense. Its linear columns' entries are listed once per solve, so that an
iteration assembles it in one pass. Once the iterate's error is below :data:`REFINE_BELOW`, each corrector
direction is refined (:data:`REFINE` rounds on the primal rows), and the dual rows of the cone columns are met
exactly (dz = r_d - Aᵀ dy), which keeps the residuals at rounding level as the scaling grows ill-conditioned near
the optimum. On MPC-24's programs of the synthetic and eGLB-2022 test windows it converges in 12-27 iterations
(15-18 on average, about 15 µs each here); warm-started from the previous slot's kept iterate (``warm``,
``keep_mu``) in about 9.

:func:`soc_ipm` returns a status (:data:`OPTIMAL`; :data:`REDUCED`, the best iterate within
:data:`REDUCED_FACTOR` x ``tol`` where the method could go no further; :data:`ITERATION_LIMIT` or
:data:`NUMERICAL`), the primal x (the best iterate when not optimal), the row duals y, the iteration count and the
kept iterate. It stops when the relative primal and dual residuals, the complementarity and the gap are below
``tol``.
``tests/test_socipm.py`` pins it to Clarabel on random cone programs (cold and warm-started) and, slot by slot, to
the cvxpy program.
``NUMBA_DISABLE_JIT=1`` runs it as Python (slow, the same numbers).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["soc_ipm", "OPTIMAL", "REDUCED", "ITERATION_LIMIT", "NUMERICAL", "STEP", "REFINE", "REFINE_BELOW",
           "REDUCED_FACTOR", "WARM_MARGIN"]

#: statuses returned by :func:`soc_ipm`: converged to ``tol``; stopped (numerical trouble or the iteration limit) at
#: an iterate within ``REDUCED`` x ``tol``, which it returns; the iteration limit; numerical trouble
OPTIMAL, REDUCED, ITERATION_LIMIT, NUMERICAL = 0, 1, 2, 3
#: an iterate within this multiple of ``tol`` is accepted when the method can go no further (status ``REDUCED``)
REDUCED_FACTOR = 100.0
#: fraction of the step to the boundary of the cones (and of the bounds) taken
STEP = 0.99
#: rounds of iterative refinement of each corrector direction (on the primal rows A dx = r_p), once the iterate's
#: error is below :data:`REFINE_BELOW` (earlier, refinement changes nothing that matters: the same iterations)
REFINE = 1
REFINE_BELOW = 1e-5
#: a warm start's least distance of x, z, v (and x below its bound) from the boundary, in the program's scaled units
WARM_MARGIN = 1e-2
#: the linear algebra's loops may reassociate sums (vectorized), nothing else of fastmath (nan and inf kept)
_REASSOC = {"reassoc", "contract"}


@njit(cache=True, error_model="numpy")
def _cone_step(u: np.ndarray, d: np.ndarray, a0: int, a1: int) -> float:
    """The largest α >= 0 with u + α d in the cone of ``u[a0:a1]`` (u inside it); ``inf`` if there is none."""
    if a1 - a0 == 1:
        return -u[a0] / d[a0] if d[a0] < 0 else np.inf
    aa = d[a0] * d[a0]
    bb = u[a0] * d[a0]
    cc = u[a0] * u[a0]
    for k in range(a0 + 1, a1):
        aa -= d[k] * d[k]
        bb -= u[k] * d[k]
        cc -= u[k] * u[k]
    if cc <= 0.0:
        return 0.0
    disc = bb * bb - aa * cc                         # f(α) = aa α² + 2 bb α + cc, f(0) = cc > 0
    if disc < 0.0:
        return np.inf                                # d inside ±K and pointing in: f never vanishes
    if aa == 0.0:
        return -cc / (2.0 * bb) if bb < 0 else np.inf
    qq = -(bb + math.copysign(math.sqrt(disc), bb))
    best = np.inf
    for r in (qq / aa, cc / qq if qq != 0.0 else np.inf):
        if 0.0 < r < best:
            best = r
    if best == np.inf and aa < 0.0:
        return 0.0
    return best


@njit(cache=True, error_model="numpy")
def _gamma(v: np.ndarray, a0: int, a1: int) -> float:
    g = v[a0] * v[a0]
    for k in range(a0 + 1, a1):
        g -= v[k] * v[k]
    return math.sqrt(g) if g > 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def _wbar_mul(w: np.ndarray, v: np.ndarray, inverse: bool, out: np.ndarray) -> None:
    """out = W̄ v (or W̄⁻¹ v = J W̄ J v) for the cone scaling vector w (w·Jw = 1)."""
    n = len(w)
    s = 0.0
    for k in range(1, n):
        s += w[k] * v[k]
    sign = -1.0 if inverse else 1.0
    out[0] = w[0] * v[0] + sign * s
    f = s / (1.0 + w[0])
    for k in range(1, n):
        out[k] = sign * v[0] * w[k] + v[k] + f * w[k]


@njit(cache=True, error_model="numpy")
def _jordan_div(lam: np.ndarray, r: np.ndarray, det: float, out: np.ndarray) -> None:
    """out with lam ∘ out = r (the Jordan product of the cone: (u·v, u₀ v₁ + v₀ u₁)); ``det`` = λ₀² - |λ₁|², given
    as γ(x) γ(z) (the same in exact arithmetic, without the cancellation near the cone's boundary)."""
    n = len(lam)
    dot = 0.0
    for k in range(1, n):
        dot += lam[k] * r[k]
    out[0] = (lam[0] * r[0] - dot) / det
    for k in range(1, n):
        out[k] = (r[k] - out[0] * lam[k]) / lam[0]


@njit(cache=True, error_model="numpy")
def _envelope(m: int, start: np.ndarray, index: np.ndarray, cone_start: np.ndarray) -> np.ndarray:
    """first[i]: the first column of row i of the lower triangle of A Θ Aᵀ that can be nonzero (the rows of a
    column meet, and any two rows of one cone's columns); the Cholesky factor keeps to this envelope (no fill left
    of it), so :func:`_cholesky` and :func:`_chol_solve` skip the zeros before it (MPC's demand rows: all of them)."""
    first = np.arange(m)
    n_lin = cone_start[0]
    for j in range(n_lin):
        lo = m
        for p in range(start[j], start[j + 1]):
            lo = min(lo, index[p])
        for p in range(start[j], start[j + 1]):
            first[index[p]] = min(first[index[p]], lo)
    for k in range(len(cone_start) - 1):
        lo = m
        for p in range(start[cone_start[k]], start[cone_start[k + 1]]):
            lo = min(lo, index[p])
        for p in range(start[cone_start[k]], start[cone_start[k + 1]]):
            first[index[p]] = min(first[index[p]], lo)
    return first


@njit(cache=True, error_model="numpy", fastmath=_REASSOC)
def _cholesky(M: np.ndarray, first: np.ndarray) -> bool:
    """The lower Cholesky factor of M (its lower triangle read, zero left of ``first``) in place; False when a
    pivot is not positive. The leading rows with nothing left of the diagonal (MPC's demand rows) are a diagonal
    block, factorized by their square roots; the rows after it row by row, each entry a dot product along the two
    rows within both envelopes (a loop from column 0 where both start there: from a variable start the same loop
    ran at half the speed here)."""
    m = M.shape[0]
    nd = 0
    while nd < m and first[nd] == nd:
        nd += 1
    for j in range(nd):
        d = M[j, j]
        if not d > 0.0:
            return False
        d = math.sqrt(d)
        M[j, j] = d
        inv = 1.0 / d
        for i in range(nd, m):
            M[i, j] *= inv
    for i in range(nd, m):
        fi = first[i]
        for j in range(max(nd, fi), i + 1):
            s = M[i, j]
            lo = max(fi, first[j])
            if lo == 0:
                for k in range(j):
                    s -= M[i, k] * M[j, k]
            else:
                for k in range(lo, j):
                    s -= M[i, k] * M[j, k]
            if j < i:
                M[i, j] = s / M[j, j]
            elif s > 0.0:
                M[i, i] = math.sqrt(s)
            else:
                return False
    return True


@njit(cache=True, error_model="numpy", fastmath=_REASSOC)
def _chol_solve(L: np.ndarray, first: np.ndarray, y: np.ndarray) -> None:
    """y <- (L Lᵀ)⁻¹ y in place (L from :func:`_cholesky`), both sweeps along L's rows (from column 0 where the
    envelope starts there, as :func:`_cholesky`)."""
    m = L.shape[0]
    for i in range(m):
        s = y[i]
        fi = first[i]
        if fi == 0:
            for k in range(i):
                s -= L[i, k] * y[k]
        else:
            for k in range(fi, i):
                s -= L[i, k] * y[k]
        y[i] = s / L[i, i]
    for i in range(m - 1, -1, -1):
        y[i] /= L[i, i]
        yi = y[i]
        fi = first[i]
        if fi == 0:
            for k in range(i):
                y[k] -= L[i, k] * yi
        else:
            for k in range(fi, i):
                y[k] -= L[i, k] * yi


@njit(cache=True, error_model="numpy")
def _linear_pairs(m: int, start: np.ndarray, index: np.ndarray, values: np.ndarray, n_lin: int,
                  col_on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of the lower triangle of A Θ Aᵀ that the active linear columns make, in the order a column loop
    adds them: each as (column j, its entry's index in the flattened m x m matrix, a_pj a_qj), so that the normal
    matrix of an iteration is one pass ``M[at] += θ[j] (a_pj a_qj)`` (the same terms added in the same order)."""
    most = 0                                              # at most every (p, q) pair of each column
    for j in range(n_lin):
        most += (start[j + 1] - start[j]) ** 2
    col = np.empty(most, dtype=np.int64)
    at = np.empty(most, dtype=np.int64)
    val = np.empty(most)
    e = 0
    for j in range(n_lin):
        if col_on[j]:
            for p in range(start[j], start[j + 1]):
                for q in range(start[j], start[j + 1]):
                    if index[q] <= index[p]:
                        col[e], at[e], val[e] = j, index[p] * m + index[q], values[p] * values[q]
                        e += 1
    col, at, val = col[:e], at[:e], val[:e]
    return col, at, val


@njit(cache=True, error_model="numpy")
def _warm_point(warm: np.ndarray, x: np.ndarray, z: np.ndarray, s: np.ndarray, v: np.ndarray, y: np.ndarray,
                ub: np.ndarray, bounded: np.ndarray, col_on: np.ndarray, row_on: np.ndarray,
                cone_start: np.ndarray) -> None:
    """The starting point of a warm start, in place: ``warm`` (x, z, s, v, y stacked) with every x, z, v of an active
    linear column at least :data:`WARM_MARGIN` (x also that far below its bound, or a quarter of the bound when it
    is smaller), s = ub - x, each cone's x and z that far inside the cone (the head raised), and the columns and
    rows that are off at zero as in the cold start."""
    n, m, n_lin = len(x), len(y), len(s)
    d = WARM_MARGIN
    x[:] = warm[:n]
    z[:] = warm[n:2 * n]
    y[:] = warm[2 * n + 2 * n_lin:2 * n + 2 * n_lin + m]
    for i in range(m):
        if not row_on[i]:
            y[i] = 0.0
    for j in range(n_lin):
        if not col_on[j]:
            x[j] = z[j] = 0.0
            continue
        z[j] = max(z[j], d)
        if bounded[j]:
            dj = min(d, 0.25 * ub[j])
            x[j] = min(max(x[j], dj), ub[j] - dj)
            s[j] = ub[j] - x[j]
            v[j] = max(warm[2 * n + n_lin + j], d)
        else:
            x[j] = max(x[j], d)
    for k in range(len(cone_start) - 1):
        a0, a1 = cone_start[k], cone_start[k + 1]
        for u in (x, z):
            tail = 0.0
            for p in range(a0 + 1, a1):
                tail += u[p] * u[p]
            u[a0] = max(u[a0], math.sqrt(tail) + d)


@njit(cache=True, error_model="numpy")
def soc_ipm(c: np.ndarray, b: np.ndarray, ub: np.ndarray, start: np.ndarray, index: np.ndarray,
            values: np.ndarray, n_lin: int, cone_start: np.ndarray, col_on: np.ndarray, row_on: np.ndarray,
            tol: float, max_iter: int, warm: np.ndarray, keep_mu: float
            ) -> tuple[int, np.ndarray, np.ndarray, int, np.ndarray]:
    """Solve the program of the module docstring; returns (status, x, y, iterations, kept). ``ub`` (n_lin,) holds the
    linear columns' upper bounds (``inf``: none); the data should come scaled to O(1) values.

    A warm start: ``warm`` (empty: the cold start) is a starting point stacked as ``kept`` is, (x, z, s, v, y) of
    lengths n, n, n_lin, n_lin, m, for instance the ``kept`` of a similar program; it is moved into the interior
    (:func:`_warm_point`). ``kept`` is the first iterate whose complementarity per pair is at most ``keep_mu``
    (else the last one): a point from which the next program can start, centred and not yet at the boundary."""
    n, m, nk = len(c), len(b), len(cone_start) - 1
    bounded = np.zeros(n_lin, dtype=np.bool_)
    x, z = np.zeros(n), np.zeros(n)
    s, v = np.zeros(n_lin), np.zeros(n_lin)
    nu = nk
    for j in range(n_lin):
        if not col_on[j]:
            continue
        nu += 1
        z[j] = 1.0
        if np.isfinite(ub[j]):
            bounded[j] = True
            nu += 1
            x[j] = 0.5 * ub[j]
            s[j] = ub[j] - x[j]
            v[j] = 1.0
        else:
            x[j] = 1.0
    for k in range(nk):
        x[cone_start[k]] = 1.0 + (cone_start[k + 1] - cone_start[k])
        z[cone_start[k]] = 1.0
    y = np.zeros(m)
    if len(warm) > 0:
        _warm_point(warm, x, z, s, v, y, ub, bounded, col_on, row_on, cone_start)
    kept = np.zeros(0)
    bnorm, cnorm = 0.0, 0.0
    for i in range(m):
        if row_on[i]:
            bnorm = max(bnorm, abs(b[i]))
    for j in range(n):
        if j >= n_lin or col_on[j]:
            cnorm = max(cnorm, abs(c[j]))
    # per cone: θ², w̄ and λ = W z, stacked like the columns
    th2, ldet = np.zeros(nk), np.zeros(nk)
    wb = np.zeros(n)
    lam = np.zeros(n)
    theta = np.zeros(n_lin)
    ix, iz, is_, iv = np.zeros(n_lin), np.zeros(n_lin), np.zeros(n_lin), np.zeros(n_lin)
    M = np.zeros((m, m))
    Mf = M.reshape(m * m)                                 # a view: M's entries in one index
    pair_col, pair_at, pair_val = _linear_pairs(m, start, index, values, n_lin, col_on)
    first = _envelope(m, start, index, cone_start)
    rp, rd = np.zeros(m), np.zeros(n)
    tmp, tmp2 = np.zeros(n), np.zeros(n)
    dxa, dza, dva = np.zeros(n), np.zeros(n), np.zeros(n_lin)
    dx, dz, dv = np.zeros(n), np.zeros(n), np.zeros(n_lin)
    rxz, rsv, rc = np.zeros(n), np.zeros(n_lin), np.zeros(n)
    g = np.zeros(n)
    best_err = np.inf
    best_x, best_y = x.copy(), y.copy()
    it = 0
    status = ITERATION_LIMIT
    for it in range(max_iter):
        # residuals: rp = b - A x, rd = c - Aᵀ y - z + v
        for i in range(m):
            rp[i] = b[i] if row_on[i] else 0.0
        pobj, dobj, compl = 0.0, 0.0, 0.0
        for j in range(n):
            if j < n_lin and not col_on[j]:
                rd[j] = 0.0
                continue
            aty = 0.0
            for p in range(start[j], start[j + 1]):
                rp[index[p]] -= values[p] * x[j]
                aty += values[p] * y[index[p]]
            rd[j] = c[j] - aty - z[j]
            pobj += c[j] * x[j]
            compl += x[j] * z[j]
            if j < n_lin and bounded[j]:
                rd[j] += v[j]
                dobj -= ub[j] * v[j]
                compl += s[j] * v[j]
        for i in range(m):
            if row_on[i]:
                dobj += b[i] * y[i]
        # the largest residual, nan kept (a comparison with nan is false: max() would drop it)
        pres, dres = 0.0, 0.0
        for i in range(m):
            if not abs(rp[i]) <= pres:
                pres = abs(rp[i])
        for j in range(n):
            if not abs(rd[j]) <= dres:
                dres = abs(rd[j])
        mu = compl / nu
        err = pres / (1.0 + bnorm)
        for e in (dres / (1.0 + cnorm), compl / (1.0 + abs(pobj)), abs(pobj - dobj) / (1.0 + abs(pobj))):
            if not e <= err:
                err = e
        if not math.isfinite(err) or not math.isfinite(dobj):   # nan or inf anywhere: numerical trouble
            status = NUMERICAL
            break
        if err < best_err:
            best_err = err
            best_x[:] = x
            best_y[:] = y
        if len(kept) == 0 and (mu <= keep_mu or err <= tol):
            kept = np.concatenate((x, z, s, v, y))
        if err <= tol:
            return OPTIMAL, x, y, it, kept
        # scaling
        trouble = False
        # the reciprocals of the linear columns' x, z, s, v (0 where a column is off or unbounded), so that the
        # directions and the step need no division
        for j in range(n_lin):
            if col_on[j]:
                ix[j], iz[j] = 1.0 / x[j], 1.0 / z[j]
                d = z[j] * ix[j]
                if bounded[j]:
                    is_[j], iv[j] = 1.0 / s[j], 1.0 / v[j]
                    d += v[j] * is_[j]
                theta[j] = 1.0 / d
        for k in range(nk):
            a0, a1 = cone_start[k], cone_start[k + 1]
            gx, gz = _gamma(x, a0, a1), _gamma(z, a0, a1)
            if gx <= 0.0 or gz <= 0.0:                   # a point on the cone's boundary: no scaling
                trouble = True
                break
            th2[k] = gx / gz
            ldet[k] = gx * gz                                # det(λ) = det(W z) = θ² γ(z)²
            xz = 0.0
            for p in range(a0, a1):
                xz += x[p] * z[p] / (gx * gz)
            f = 1.0 / math.sqrt(2.0 * (1.0 + xz))
            wb[a0] = (x[a0] / gx + z[a0] / gz) * f
            for p in range(a0 + 1, a1):
                wb[p] = (x[p] / gx - z[p] / gz) * f
            _wbar_mul(wb[a0:a1], z[a0:a1], False, lam[a0:a1])
            th = math.sqrt(th2[k])
            for p in range(a0, a1):
                lam[p] *= th
        if trouble:
            status = NUMERICAL
            break
        # the normal matrix A Θ Aᵀ
        for i in range(m):                                 # the envelope of the lower triangle (nothing else is read)
            M[i, first[i]:i + 1] = 0.0
        for e in range(len(pair_col)):
            Mf[pair_at[e]] += theta[pair_col[e]] * pair_val[e]
        for k in range(nk):
            a0, a1 = cone_start[k], cone_start[k + 1]
            for j1 in range(a0, a1):
                for p in range(start[j1], start[j1 + 1]):
                    for j2 in range(a0, a1):
                        sgn = 0.0 if j1 != j2 else (1.0 if j1 == a0 else -1.0)
                        w2 = th2[k] * (2.0 * wb[j1] * wb[j2] - sgn)
                        for q in range(start[j2], start[j2 + 1]):
                            if index[q] <= index[p]:
                                M[index[p], index[q]] += values[p] * w2 * values[q]
        for i in range(m):
            if not row_on[i]:
                M[i, :i] = 0.0
                M[i + 1:, i] = 0.0
                M[i, i] = 1.0
        diag_max = 0.0
        for i in range(m):
            diag_max = max(diag_max, M[i, i])
        for i in range(m):
            M[i, i] += 1e-14 * diag_max
        if not _cholesky(M, first):
            status = NUMERICAL
            break
        # predictor (affine) then corrector, on the same factor
        sigma_mu = 0.0
        for rnd in range(2):
            if rnd == 0:
                for j in range(n_lin):
                    rxz[j] = -x[j] * z[j]
                    rsv[j] = -s[j] * v[j] if bounded[j] else 0.0
                for k in range(nk):
                    for p in range(cone_start[k], cone_start[k + 1]):
                        rc[p] = -lam[p]                       # q = λ ⊘ (-λ∘λ) = -λ
            else:
                for j in range(n_lin):
                    rxz[j] = -x[j] * z[j] + sigma_mu - dxa[j] * dza[j]
                    rsv[j] = (-s[j] * v[j] + sigma_mu + dxa[j] * dva[j]) if bounded[j] else 0.0
                for k in range(nk):
                    a0, a1 = cone_start[k], cone_start[k + 1]
                    th = math.sqrt(th2[k])
                    _wbar_mul(wb[a0:a1], dxa[a0:a1], True, tmp[a0:a1])        # W⁻¹ dx_a
                    _wbar_mul(wb[a0:a1], dza[a0:a1], False, tmp2[a0:a1])      # W dz_a
                    ll, uv = 0.0, 0.0
                    for p in range(a0, a1):
                        tmp[p] /= th
                        tmp2[p] *= th
                        ll += lam[p] * lam[p]
                        uv += tmp[p] * tmp2[p]
                    g[a0] = -ll + sigma_mu - uv                                # r_c = -λ∘λ + σμe - u∘w
                    for p in range(a0 + 1, a1):
                        g[p] = -2.0 * lam[a0] * lam[p] - (tmp[a0] * tmp2[p] + tmp2[a0] * tmp[p])
                    _jordan_div(lam[a0:a1], g[a0:a1], ldet[k], rc[a0:a1])     # q = λ ⊘ r_c
            # g = the part of dx that does not depend on dy
            for j in range(n_lin):
                if col_on[j]:
                    g[j] = theta[j] * (-rd[j] + rxz[j] * ix[j] - rsv[j] * is_[j])
            for k in range(nk):
                a0, a1 = cone_start[k], cone_start[k + 1]
                th = math.sqrt(th2[k])
                _wbar_mul(wb[a0:a1], rc[a0:a1], False, tmp[a0:a1])           # W q
                wrd = 0.0
                for p in range(a0, a1):
                    wrd += wb[p] * rd[p]
                for p in range(a0, a1):
                    jr = rd[p] if p == a0 else -rd[p]                          # J rd
                    g[p] = -th2[k] * (2.0 * wb[p] * wrd - jr) + th * tmp[p]
            rhs = rp.copy()
            for j in range(n):
                if j < n_lin and not col_on[j]:
                    continue
                for p in range(start[j], start[j + 1]):
                    rhs[index[p]] -= values[p] * g[j]
            for i in range(m):
                if not row_on[i]:
                    rhs[i] = 0.0
            dy = rhs
            _chol_solve(M, first, dy)
            rounds = REFINE if rnd == 1 and err < REFINE_BELOW else 0     # the predictor sets the centring only
            for ref in range(rounds + 1):
                # dx = Θ Aᵀ dy + g; then (refinement) dy corrected by the rows dx misses: A dx = rp
                for j in range(n):
                    aty = 0.0
                    for p in range(start[j], start[j + 1]):
                        aty += values[p] * dy[index[p]]
                    tmp2[j] = aty
                for j in range(n_lin):
                    dx[j] = theta[j] * tmp2[j] + g[j] if col_on[j] else 0.0
                for k in range(nk):
                    a0, a1 = cone_start[k], cone_start[k + 1]
                    wa = 0.0
                    for p in range(a0, a1):
                        wa += wb[p] * tmp2[p]
                    for p in range(a0, a1):
                        ja = tmp2[p] if p == a0 else -tmp2[p]
                        dx[p] = th2[k] * (2.0 * wb[p] * wa - ja) + g[p]
                if ref == rounds:
                    break
                res = rp.copy()
                for j in range(n):
                    for p in range(start[j], start[j + 1]):
                        res[index[p]] -= values[p] * dx[j]
                for i in range(m):
                    if not row_on[i]:
                        res[i] = 0.0
                _chol_solve(M, first, res)
                dy += res
            for j in range(n_lin):
                dz[j] = (rxz[j] - z[j] * dx[j]) * ix[j]
                dv[j] = (rsv[j] + v[j] * dx[j]) * is_[j]
            for k in range(nk):
                for p in range(cone_start[k], cone_start[k + 1]):
                    dz[p] = rd[p] - tmp2[p]                  # = W⁻¹ (q - W⁻¹ dx), the dual rows exactly
            # the largest step inside the cones and bounds
            # of the linear columns: 1 / the largest relative decrease of x, z, s, v (a nan in the direction is met
            # in x at the next iteration's residuals)
            worst = 0.0
            for j in range(n_lin):
                r = max(max(-dx[j] * ix[j], -dz[j] * iz[j]), max(dx[j] * is_[j], -dv[j] * iv[j]))
                worst = max(worst, r)
            alpha = 1.0 / worst if worst != 0.0 else np.inf
            for k in range(nk):
                a0, a1 = cone_start[k], cone_start[k + 1]
                alpha = min(alpha, _cone_step(x, dx, a0, a1), _cone_step(z, dz, a0, a1))
            if not alpha > 0.0:                           # nan, or no room left: numerical trouble
                trouble = True
                break
            if rnd == 0:
                aa = min(1.0, alpha)
                ca = 0.0
                for j in range(n_lin):
                    if col_on[j]:
                        ca += (x[j] + aa * dx[j]) * (z[j] + aa * dz[j])
                        if bounded[j]:
                            ca += (s[j] - aa * dx[j]) * (v[j] + aa * dv[j])
                for k in range(nk):
                    for p in range(cone_start[k], cone_start[k + 1]):
                        ca += (x[p] + aa * dx[p]) * (z[p] + aa * dz[p])
                sigma = (ca / compl) ** 3
                sigma_mu = sigma * mu
                dxa[:] = dx
                dza[:] = dz
                dva[:] = dv
            else:
                step = min(1.0, STEP * alpha)
                for j in range(n):
                    x[j] += step * dx[j]
                    z[j] += step * dz[j]
                for j in range(n_lin):
                    if bounded[j]:
                        s[j] -= step * dx[j]
                        v[j] += step * dv[j]
                for i in range(m):
                    y[i] += step * dy[i]
        if trouble:
            status = NUMERICAL
            break
    if best_err <= REDUCED_FACTOR * tol:
        return REDUCED, best_x, best_y, it + 1, kept
    return status, best_x, best_y, it + 1, kept
