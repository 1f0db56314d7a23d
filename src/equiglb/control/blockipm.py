"""The offline optimum's direct program solved by a block-structured interior-point method.

:class:`equiglb.control.offline_direct.DirectProgram` writes the offline program (docs/model.md §2–§3)
as T identical slot blocks (local equality rows, columns >= 0, the IT energy E <= capacity) coupled
only through the equity norms' few linking rows. This module solves that program with a primal-dual
interior-point method (Mehrotra predictor-corrector, Nesterov-Todd scaling for the second-order cones
of q = 2) whose Newton system is solved by block elimination, batched over the slots with numpy:

* per slot, the normal matrix A_t Θ_t A_tᵀ of the local rows; a set of rows that share no column
  (the E rows, the demand rows, ...) is a diagonal block and is eliminated first, the few rows left
  (m₂ per slot) are factorized as a (T, m₂, m₂) stack;
* the linking rows (the norms: per site carbon and water, per region social cost) then form a small
  dense Schur complement, the cone variables' scaling added to it.

The norms: q = 1 is linear (the slots are independent), q = inf an epigraph z_k >= F_ki (slack
columns), q = 2 one second-order cone (z_k, F_k) per norm. Other q are not handled here
(:func:`blockipm_applies`).

Columns, rows and the objective are scaled internally (E by its capacity, rows by their largest
entry, each norm's rows by its largest possible footprint). The iteration stops at relative primal and
dual residuals and gap below :data:`TOL`; where it stalls or meets numerical trouble its best iterate is
accepted within :data:`TOL_REDUCED`; otherwise it reports ``MaxIterations``, ``Stalled`` or
``NumericalError`` (not ok), so that the caller falls back to the general solvers. On the benchmark
(benchmarks/offline_scale.py) it converges in 30-65 iterations at q = inf and 43-95 at q = 2.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from equiglb.control.offline_direct import _LOCAL, DirectOutcome, DirectProgram, _snap_to_demand

__all__ = ["solve_blockipm", "blockipm_applies", "BLOCKIPM_SOLVER", "TOL", "MAX_ITER"]

#: The name of this solver in :class:`DirectOutcome` and attempts.
BLOCKIPM_SOLVER = "BLOCKIPM"
#: Relative primal and dual residuals and relative duality gap at which the iteration stops.
TOL = 1e-9
#: At numerical trouble (the last digits lost) the last iterate is accepted within this tolerance.
TOL_REDUCED = 5e-8
#: The iteration has stalled when the error (below 1e-5) has not halved in this many iterations.
STALL = 6
#: Iterations before ``MaxIterations``.
MAX_ITER = 150
#: Fraction of the step to the cone boundary.
STEP = 0.99
#: Second-order cone pairs keep det(y)·det(σ) >= (CENTRAL · y·σ)² along the steps.
CENTRAL = 0.01
#: A lagging second-order cone pair aims at no less than this fraction of its product per iteration.
LAG = 0.1
#: Rounds of iterative refinement of each Newton direction (with second-order cones).
REFINE = 1


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """numpy's OpenBLAS on one thread meanwhile: the solver's products are tall and skinny (T·m₂ × p), and on
    a loaded machine OpenBLAS's threads waiting for each other made them 100-400x slower (0.4 s instead of
    1 ms for 9,672 × 45). Nothing happens where numpy's OpenBLAS is not found."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libscipy_openblas*.so*"))
    try:
        lib = ctypes.CDLL(libs[0]) if libs else None
        get, put = lib.scipy_openblas_get_num_threads64_, lib.scipy_openblas_set_num_threads64_  # type: ignore[union-attr]
    except (OSError, AttributeError):
        yield
        return
    before = int(get())
    put(ctypes.c_int(1))
    try:
        yield
    finally:
        put(ctypes.c_int(before))


def blockipm_applies(q: float) -> bool:
    """True for the norms this solver handles: q in {1, 2, inf}."""
    return q in (1.0, 2.0, math.inf)



# ---------------------------------------------------------------------------- the scaled program
@dataclass
class _Data:
    """The program in the solver's scaled units (see the module docstring)."""

    T: int
    n: int
    m: int
    A: sp.csr_matrix              # (m, n) local rows, scaled
    b: np.ndarray                 # (T, m)
    c: np.ndarray                 # (T, n)
    bcols: np.ndarray             # columns with an upper bound (the E columns)
    u: np.ndarray                 # (nb,) their bounds
    e_col: np.ndarray             # (ne,) link entries: column, link row, coefficient per slot
    e_row: np.ndarray
    d: np.ndarray                 # (T, ne)
    p: int                        # linking rows
    G: np.ndarray                 # (p, ny) the cone variables in the linking rows
    cy: np.ndarray                # (ny,) their cost
    socs: list[tuple[int, int]]   # (start, size) of each second-order cone in y; the rest is >= 0
    col_scale: np.ndarray         # (n,) V = col_scale * x
    obj_scale: float              # USD / unit = obj_scale * objective


def _scaled_program(prog: DirectProgram) -> _Data:
    """The slot template, the linking entries and the cones of ``prog``, scaled."""
    L = prog.layout
    T, n, m = prog.T, L.n, L.m
    q = prog.q
    norms = prog._norms()
    cost = prog._cost()
    if q == 1.0:                              # the footprints are linear: they join the cost
        prog._linear_norms_into(cost, norms)
        norms = []
    u = prog.capacity[L.e_sites] / (prog.unit * prog.e_ref)
    col_scale = np.ones(n)
    col_scale[L.e_cols] = np.where(u > 0, u, 1.0)
    val = L.val * col_scale[L.col]
    row_scale = np.zeros(m)
    np.maximum.at(row_scale, L.row, np.abs(val))
    row_scale = np.divide(1.0, row_scale, out=np.ones(m), where=row_scale > 0)
    A = sp.csr_matrix((val * row_scale[L.row], (L.row, L.col)), shape=(m, n))
    b = prog._rhs() * row_scale[None, :]
    c = cost * col_scale[None, :]
    # linking entries, their rows (zero rows dropped) and the cones
    t_col, t_kind, t_index, t_base = prog._template(norms)
    coef = dict(norms)
    link = t_kind != _LOCAL
    col, kind, index, base = t_col[link], t_kind[link], t_index[link], t_base[link]
    d = np.zeros((T, col.size))
    for k, a in coef.items():
        sel = kind == k
        d[:, sel] += base[sel] * a[:, index[sel]]             # (T, .) or (1, .) broadcast over the slots
    d *= col_scale[col][None, :]
    keep = np.abs(d).sum(axis=0) > 0
    col, kind, index, d = col[keep], kind[keep], index[keep], d[:, keep]
    e_row = np.empty(col.size, dtype=np.int64)
    blocks: list[tuple[int, int, float]] = []             # per norm: first link row, size, row scale
    p = 0
    for k, _a in norms:
        sel = np.nonzero(kind == k)[0]
        rows, inv = np.unique(index[sel], return_inverse=True)
        if rows.size == 0:
            continue
        e_row[sel] = p + inv
        # largest footprint of a row (columns at most ~1 in scaled units): its rows and cone scaled by it
        fmax = np.bincount(inv, weights=np.abs(d[:, sel]).sum(axis=0), minlength=rows.size).max()
        blocks.append((p, rows.size, 1.0 / fmax))
        p += rows.size
    for p0, size, rs in blocks:
        d[:, (e_row >= p0) & (e_row < p0 + size)] *= rs
    cy_list: list[float] = []
    g_entries: list[tuple[int, int, float]] = []          # (link row, y index, value)
    socs: list[tuple[int, int]] = []
    ny = 0
    if q == math.inf:                                     # F_i + s_i - z = 0, s, z >= 0
        for p0, size, rs in blocks:
            for i in range(size):
                g_entries.append((p0 + i, ny + i, 1.0))
                cy_list.append(0.0)
            z = ny + size
            for i in range(size):
                g_entries.append((p0 + i, z, -1.0))
            cy_list.append(1.0 / rs)
            ny += size + 1
    elif q == 2.0:                                        # F_i - y_i = 0, (z, y) in SOC
        for p0, size, rs in blocks:
            socs.append((ny, size + 1))
            cy_list.append(1.0 / rs)
            for i in range(size):
                g_entries.append((p0 + i, ny + 1 + i, -1.0))
                cy_list.append(0.0)
            ny += size + 1
    G = np.zeros((p, ny))
    for r, j, v in g_entries:
        G[r, j] = v
    cy = np.array(cy_list)
    nz = np.abs(c[c != 0])
    ce = np.abs(c[:, L.e_cols])
    obj_scale = float(ce.mean()) if ce.size and ce.any() else (float(nz.mean()) if nz.size else 1.0)
    return _Data(T=T, n=n, m=m, A=A, b=b, c=c / obj_scale, bcols=L.e_cols.copy(), u=np.ones(L.e_cols.size),
                 e_col=col, e_row=e_row, d=d, p=p, G=G, cy=cy / obj_scale, socs=socs, col_scale=col_scale,
                 obj_scale=obj_scale * prog.unit)


# ---------------------------------------------------------------------------- second-order cones
def _soc_det(y: np.ndarray) -> float:
    """y₀² - ‖y₁‖², as (y₀ - ‖y₁‖)(y₀ + ‖y₁‖) (less cancellation near the boundary)."""
    r = float(np.linalg.norm(y[1:]))
    return float((y[0] - r) * (y[0] + r))


def _soc_nt(y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nesterov-Todd scaling of a second-order cone pair (y primal, z dual, both interior): W, W⁻¹ with
    W z = W⁻¹ y (= λ), and λ."""
    J = -np.eye(y.size)
    J[0, 0] = 1.0
    ny = math.sqrt(max(_soc_det(y), 1e-300))
    nz = math.sqrt(max(_soc_det(z), 1e-300))
    yb, zb = y / ny, z / nz
    gamma = math.sqrt(max(float(1.0 + yb @ zb) / 2.0, 1e-300))
    wb = (yb + J @ zb) / (2.0 * gamma)
    v = wb.copy()
    v[0] += 1.0
    v /= math.sqrt(2.0 * (wb[0] + 1.0))
    beta = math.sqrt(ny / nz)
    Wb = 2.0 * np.outer(v, v) - J
    W = beta * Wb
    Winv = (J @ Wb @ J) / beta
    return W, Winv, W @ z


def _jprod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Jordan product a ∘ b of the second-order cone."""
    return np.concatenate([[a @ b], a[0] * b[1:] + b[0] * a[1:]])


def _jdiv(lam: np.ndarray, r: np.ndarray) -> np.ndarray:
    """x with lam ∘ x = r."""
    det = _soc_det(lam)
    x0 = (lam[0] * r[0] - lam[1:] @ r[1:]) / det
    return np.concatenate([[x0], (r[1:] - x0 * lam[1:]) / lam[0]])


def _soc_step(y: np.ndarray, dy: np.ndarray) -> float:
    """Largest α with y + α dy in the cone (y interior)."""
    c = _soc_det(y)
    bq = 2.0 * (y[0] * dy[0] - y[1:] @ dy[1:])
    a = dy[0] ** 2 - dy[1:] @ dy[1:]
    out = math.inf
    if dy[0] < 0:
        out = -y[0] / dy[0]
    if a == 0.0:
        if bq < 0:
            out = min(out, -c / bq)
        return out
    disc = bq * bq - 4.0 * a * c
    if disc < 0:
        return out
    sq = math.sqrt(disc)
    qq = -0.5 * (bq + math.copysign(sq, bq))
    roots = [qq / a, c / qq if qq != 0 else math.inf]
    pos = [r for r in roots if r > 0]
    return min([out, *pos])


def _ratio_step(x: np.ndarray, dx: np.ndarray) -> float:
    """Largest α with x + α dx >= 0 (x > 0)."""
    if not x.size:
        return math.inf
    return float(np.divide(x, -dx, out=np.full(x.shape, np.inf), where=dx < 0).min())


# ---------------------------------------------------------------------------- the Newton system
def _scatter(src: np.ndarray, dst: np.ndarray, n_src: int, n_dst: int) -> sp.csr_matrix:
    """The 0/1 matrix (n_src, n_dst) adding entry src[a] into dst[a]: ``vals @ S`` scatters the columns of vals."""
    return sp.csr_matrix((np.ones(src.size), (src, dst)), shape=(n_src, n_dst))


def _pairs_by(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (a, b) of entries with key[a] == key[b]."""
    order = np.argsort(key, kind="stable")
    ks = key[order]
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    bounds = np.flatnonzero(np.diff(ks)) + 1
    for grp in np.split(order, bounds):
        if grp.size:
            out_a.append(np.repeat(grp, grp.size))
            out_b.append(np.tile(grp, grp.size))
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_a).astype(np.int64), np.concatenate(out_b).astype(np.int64)


class _Normal:
    """The normal matrix A diag(θ) Aᵀ + G W² Gᵀ of one program and its block elimination.

    Per slot the rows split into D (no two share a column: their block is diagonal) and R (m₂ rows);
    the entries of M[R, D], B[link, D] (the linking rows against the slot rows) and their products in
    the elimination follow static patterns (the same in every slot), evaluated as (T, entries) arrays.
    """

    def __init__(self, D: _Data):
        self.D = D
        A = D.A.tocsc()
        m, n, p = D.m, D.n, D.p
        nbrs: list[set[int]] = [set() for _ in range(m)]
        for j in range(n):
            rows = A.indices[A.indptr[j]:A.indptr[j + 1]]
            for r in rows:
                nbrs[int(r)].update(int(x) for x in rows if x != r)
        isD = np.zeros(m, bool)
        for r in sorted(range(m), key=lambda r: len(nbrs[r])):    # greedy independent set, fewest neighbours first
            if not any(isD[x] for x in nbrs[r]):
                isD[r] = True
        self.Di, self.Ri = np.flatnonzero(isD), np.flatnonzero(~isD)
        nD, m2 = self.Di.size, self.Ri.size
        self.nD, self.m2 = nD, m2
        pos = np.empty(m, dtype=np.int64)
        pos[self.Di] = np.arange(nD)
        pos[self.Ri] = np.arange(m2)
        # column entry pairs: M[r1, r2] += θ_c A[r1, c] A[r2, c]
        cols = np.repeat(np.arange(n), np.diff(A.indptr))
        a, b = _pairs_by(cols)
        r1, r2, cj, v = A.indices[a], A.indices[b], cols[a], A.data[a] * A.data[b]
        dd = isD[r1] & (r1 == r2)
        self.P_dd = sp.csr_matrix((v[dd], (cj[dd], pos[r1[dd]])), shape=(n, nD))
        rr = ~isD[r1] & ~isD[r2]
        self.P_rr = sp.csr_matrix((v[rr], (cj[rr], pos[r1[rr]] * m2 + pos[r2[rr]])), shape=(n, m2 * m2))
        rd = ~isD[r1] & isD[r2]
        key = pos[r1[rd]] * nD + pos[r2[rd]]
        xkey, xidx = np.unique(key, return_inverse=True)
        self.x_r, self.x_d = xkey // nD, xkey % nD                       # X = M[R, D] entries
        nx = xkey.size
        self.P_x = sp.csr_matrix((v[rd], (cj[rd], xidx)), shape=(n, nx))
        # linking entries against the slot rows: B[l, r] += d_e θ_c A[r, c]
        ecnt = np.diff(A.indptr)[D.e_col]
        e_of = np.repeat(np.arange(D.e_col.size), ecnt)
        starts = A.indptr[D.e_col]
        k_in = np.arange(e_of.size) - np.repeat(np.cumsum(ecnt) - ecnt, ecnt)
        at = starts[e_of] + k_in
        br, bv, bl = A.indices[at], A.data[at], D.e_row[e_of]
        ne = D.e_col.size
        sel = isD[br]
        key = bl[sel] * nD + pos[br[sel]]
        bkey, bidx = np.unique(key, return_inverse=True)
        self.bd_l, self.bd_d = bkey // nD, bkey % nD                      # Bd = B[link, D] entries
        nbd = bkey.size
        self.Q_d = sp.csr_matrix((bv[sel], (e_of[sel], bidx)), shape=(ne, nbd))
        self.Q_r = sp.csr_matrix((bv[~sel], (e_of[~sel], bl[~sel] * m2 + pos[br[~sel]])), shape=(ne, p * m2))
        # C = Σ_t Σ over pairs of link entries on one column
        self.pe1, self.pe2 = _pairs_by(D.e_col)
        # the elimination of D: pairs of entries on one D row
        self.S_x = _scatter(np.arange(nx), self.x_r * nD + self.x_d, nx, m2 * nD)    # X dense (m2, nD)
        both = np.concatenate([self.bd_d, self.x_d])
        a, b = _pairs_by(both)
        keep = (a < nbd) & (b >= nbd)                                      # (Bd entry, X entry)
        self.bx_a, self.bx_b = a[keep], b[keep] - nbd
        self.S_bx = _scatter(np.arange(self.bx_a.size), self.bd_l[self.bx_a] * m2 + self.x_r[self.bx_b],
                             self.bx_a.size, p * m2)
        self.bb_a, self.bb_b = _pairs_by(self.bd_d)
        # scatters of the solve
        self.S_x_r = _scatter(np.arange(nx), self.x_r, nx, m2)
        self.S_x_d = _scatter(np.arange(nx), self.x_d, nx, nD)
        self.S_bd_d = _scatter(np.arange(nbd), self.bd_d, nbd, nD)
        self.S_bd_l = _scatter(np.arange(nbd), self.bd_l, nbd, p)
        self.link_T = _scatter(np.arange(ne), D.e_row, ne, p).T.tocsr()   # entries -> link rows
        self.to_col = _scatter(np.arange(ne), D.e_col, ne, n)               # entries -> columns
        self.AT = D.A.T.tocsr()

    # operators ---------------------------------------------------------------
    def A_mul(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A x: slot rows (T, m), linking rows (p,)) including the cone columns G y."""
        D = self.D
        rb = (D.A @ x.T).T
        rl = self.link_T @ (D.d * x[:, D.e_col]).sum(axis=0) + D.G @ y
        return rb, rl

    def AT_mul(self, lb: np.ndarray, ll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Aᵀ λ: (slot columns (T, n), cone columns (ny,))."""
        D = self.D
        out = (self.AT @ lb.T).T
        if D.e_col.size:
            out += (self.to_col.T @ (D.d * ll[D.e_row][None, :]).T).T
        return out, D.G.T @ ll

    # factorization -----------------------------------------------------------
    def factor(self, theta: np.ndarray, W2: np.ndarray) -> None:
        """Factor A diag(θ) Aᵀ + G W² Gᵀ (θ: (T, n) of the slot columns, W²: the cones' scaling)."""
        D = self.D
        T, p, m2 = D.T, D.p, self.m2
        self.Dd = np.asarray(theta @ self.P_dd) + 1e-14                     # (T, nD)
        self.Xv = Xv = np.asarray(theta @ self.P_x)                          # (T, nx)
        inv = 1.0 / self.Dd
        X = np.asarray(Xv @ self.S_x).reshape(T, m2, self.nD)
        M2 = np.asarray(theta @ self.P_rr).reshape(T, m2, m2) - (X * inv[:, None, :]) @ X.transpose(0, 2, 1)
        qd = D.d * theta[:, D.e_col]                                         # (T, ne)
        self.Bv = Bv = np.asarray(qd @ self.Q_d)                             # (T, nbd)
        B2 = np.asarray(qd @ self.Q_r)
        if self.bx_a.size:
            B2 = B2 - np.asarray((Bv[:, self.bx_a] * Xv[:, self.bx_b] * inv[:, self.bd_d[self.bx_a]]) @ self.S_bx)
        C = np.zeros((p, p))
        if self.pe1.size:
            cv = (D.d[:, self.pe1] * D.d[:, self.pe2] * theta[:, D.e_col[self.pe1]]).sum(axis=0)
            np.add.at(C, (D.e_row[self.pe1], D.e_row[self.pe2]), cv)
        if self.bb_a.size:
            cv = (Bv[:, self.bb_a] * Bv[:, self.bb_b] * inv[:, self.bd_d[self.bb_a]]).sum(axis=0)
            np.add.at(C, (self.bd_l[self.bb_a], self.bd_l[self.bb_b]), -cv)
        diag = np.arange(m2)
        M2[:, diag, diag] += 1e-14 * (1.0 + np.abs(M2[:, diag, diag]))
        self.Linv = np.linalg.inv(np.linalg.cholesky(M2)) if m2 else M2     # (T, m2, m2)
        if p:
            Y = self.Linv @ B2.reshape(T, p, m2).transpose(0, 2, 1)          # (T, m2, p)
            self.Yr = Y.reshape(T * m2, p)
            S = C + D.G @ W2 @ D.G.T - self.Yr.T @ self.Yr
            S[np.diag_indices(p)] += 1e-14 * (1.0 + np.abs(np.diag(S)))
            self.S = sla.cho_factor(S)

    def solve(self, rb: np.ndarray, rl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(λ_b (T, m), λ_l (p,)) of the factored normal system with right-hand side (rb, rl)."""
        D = self.D
        T, m2, p = D.T, self.m2, D.p
        Di, Ri = self.Di, self.Ri
        rD = rb[:, Di]
        rDs = rD / self.Dd
        rR = rb[:, Ri] - np.asarray((self.Xv * rDs[:, self.x_d]) @ self.S_x_r)
        h = np.matmul(self.Linv, rR[:, :, None])[:, :, 0]
        if p:
            rl2 = rl - np.asarray((self.Bv * rDs[:, self.bd_d]).sum(axis=0) @ self.S_bd_l) - self.Yr.T @ h.ravel()
            ll = sla.cho_solve(self.S, rl2)
            h = h - (self.Yr @ ll).reshape(T, m2)
        else:
            ll = np.zeros(0)
        lR = np.matmul(h[:, None, :], self.Linv)[:, 0, :]
        lD = rD - np.asarray((self.Xv * lR[:, self.x_r]) @ self.S_x_d)
        if p:
            lD -= np.asarray((self.Bv * ll[self.bd_l][None, :]) @ self.S_bd_d)
        lD /= self.Dd
        lb = np.empty_like(rb)
        lb[:, Di] = lD
        lb[:, Ri] = lR
        return lb, ll


# ---------------------------------------------------------------------------- the iteration
@dataclass
class _Point:
    """A primal-dual point (or a direction): slot columns x (T, n) and the slacks w (T, nb) of their
    bounds, cone variables y (ny,); the duals s, v, σ of x, w, y; the multipliers λ of the slot rows
    (T, m) and of the linking rows (p,)."""

    x: np.ndarray
    w: np.ndarray
    y: np.ndarray
    s: np.ndarray
    v: np.ndarray
    sig: np.ndarray
    lb: np.ndarray
    ll: np.ndarray

    def moved(self, d: _Point, ap: float, ad: float) -> _Point:
        """This point plus ``ap`` times d's primal part and ``ad`` times its dual part."""
        return _Point(self.x + ap * d.x, self.w + ap * d.w, self.y + ap * d.y, self.s + ad * d.s,
                      self.v + ad * d.v, self.sig + ad * d.sig, self.lb + ad * d.lb, self.ll + ad * d.ll)


class _Cones:
    """The cone of the y variables: nonnegative entries ``lin`` and second-order cones ``socs``."""

    def __init__(self, D: _Data):
        ny = D.cy.size
        lin = np.ones(ny, bool)
        for s0, k in D.socs:
            lin[s0:s0 + k] = False
        self.lin = np.flatnonzero(lin)
        self.socs = [slice(s0, s0 + k) for s0, k in D.socs]
        self.e = lin.astype(np.float64)
        for sl in self.socs:
            self.e[sl.start] = 1.0
        self.degree = self.lin.size + len(self.socs)

    def scaling(self, y: np.ndarray, sig: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nesterov-Todd W, W⁻¹ and λ = W σ = W⁻¹ y."""
        ny = y.size
        W, Winv, lam = np.zeros((ny, ny)), np.zeros((ny, ny)), np.zeros(ny)
        li = self.lin
        W[li, li] = np.sqrt(y[li] / sig[li])
        Winv[li, li] = 1.0 / W[li, li]
        lam[li] = np.sqrt(y[li] * sig[li])
        for sl in self.socs:
            W[sl, sl], Winv[sl, sl], lam[sl] = _soc_nt(y[sl], sig[sl])
        return W, Winv, lam

    def target(self, lam: np.ndarray, smu: float) -> np.ndarray:
        """The centring target of the cones: σμ e, but for a second-order cone pair lagging behind (its
        y·σ = λ·λ far above μ) at least :data:`LAG` times its own product: aiming at σμ at once blocked
        the common step for many iterations."""
        out = smu * self.e
        for sl in self.socs:
            out[sl.start] = max(smu, LAG * float(lam[sl] @ lam[sl]))
        return out

    def prod(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a ∘ b."""
        out = a * b
        for sl in self.socs:
            out[sl] = _jprod(a[sl], b[sl])
        return out

    def div(self, lam: np.ndarray, r: np.ndarray) -> np.ndarray:
        """x with λ ∘ x = r."""
        out = r / np.where(self.e > 0, lam, 1.0) if self.socs else r / lam
        for sl in self.socs:
            out[sl] = _jdiv(lam[sl], r[sl])
        return out

    def central_step(self, y: np.ndarray, dy: np.ndarray, sig: np.ndarray, dsig: np.ndarray, alpha: float) -> float:
        """``alpha`` shortened (by 10 % at a time) until each second-order cone pair stays near its central
        path: det(y)·det(σ) >= (:data:`CENTRAL` · y·σ)² (at the centre λ = √μ e both sides are μ²). Off the
        path the next directions leave the cone at once and the iteration stalls."""
        for _ in range(200):
            ok = True
            for sl in self.socs:
                yn, sn = y[sl] + alpha * dy[sl], sig[sl] + alpha * dsig[sl]
                dety, dets = _soc_det(yn), _soc_det(sn)
                if dety <= 0 or dets <= 0 or dety * dets < (CENTRAL * float(yn @ sn)) ** 2:
                    ok = False
                    break
            if ok:
                return alpha
            alpha *= 0.9
        return alpha

    def step(self, y: np.ndarray, dy: np.ndarray) -> float:
        """Largest α with y + α dy in the cone."""
        a = _ratio_step(y[self.lin], dy[self.lin])
        for sl in self.socs:
            a = min(a, _soc_step(y[sl], dy[sl]))
        return a


class _Newton:
    """One iteration's residuals, scaling and factored Newton system at the point ``pt``."""

    def __init__(self, D: _Data, N: _Normal, K: _Cones, pt: _Point):
        self.D, self.N, self.K, self.pt = D, N, K, pt
        bc = D.bcols
        axb, axl = N.A_mul(pt.x, pt.y)
        self.rpb, self.rpl = D.b - axb, -axl
        self.ru = D.u[None, :] - pt.x[:, bc] - pt.w
        atl, gtl = N.AT_mul(pt.lb, pt.ll)
        self.rdx = D.c - atl - pt.s
        self.rdx[:, bc] += pt.v
        self.rdy = D.cy - gtl - pt.sig
        self.pobj = float((D.c * pt.x).sum() + D.cy @ pt.y)
        self.dobj = float((D.b * pt.lb).sum() - (D.u[None, :] * pt.v).sum())
        self.comp = float((pt.x * pt.s).sum() + (pt.w * pt.v).sum() + pt.y @ pt.sig)
        self.deg = pt.x.size + pt.w.size + K.degree

    def errors(self, bnorm: float, cnorm: float) -> tuple[float, float, float]:
        """Relative primal residual, dual residual and gap."""
        def top(a: np.ndarray) -> float:
            return float(np.abs(a).max()) if a.size else 0.0

        pres = max(top(self.rpb), top(self.rpl), top(self.ru)) / bnorm
        dres = max(top(self.rdx), top(self.rdy)) / cnorm
        gap = abs(self.pobj - self.dobj) / (1.0 + min(abs(self.pobj), abs(self.dobj)))
        return pres, dres, gap

    def factor(self) -> None:
        """Scale (θ of the slot columns, NT scaling of the cones) and factor the normal system."""
        pt, bc = self.pt, self.D.bcols
        self.theta = pt.x / pt.s
        self.theta[:, bc] = 1.0 / (pt.s[:, bc] / pt.x[:, bc] + pt.v / pt.w)
        self.W, self.Winv, self.lam = self.K.scaling(pt.y, pt.sig)
        self.W2 = self.W @ self.W
        if not np.isfinite(self.W2).all() or not np.isfinite(self.theta).all():
            raise np.linalg.LinAlgError("non-finite scaling")
        self.N.factor(self.theta, self.W2)

    def direction(self, r_xs: np.ndarray, r_wv: np.ndarray, r_lam: np.ndarray) -> _Point:
        """The Newton direction with complementarity right-hand sides x∘s: r_xs, w∘v: r_wv and, in the
        scaled cone space, λ ∘ (W⁻¹dy + W dσ) = r_lam."""
        D, N, pt, bc = self.D, self.N, self.pt, self.D.bcols
        rpb, rpl, ru, rdx, rdy = self.rpb, self.rpl, self.ru, self.rdx, self.rdy
        r_c = self.W @ self.K.div(self.lam, r_lam)
        rho = rdx - r_xs / pt.x
        rho[:, bc] += (r_wv - pt.v * ru) / pt.w
        ab, al = N.A_mul(self.theta * rho, np.zeros(D.cy.size))
        rhs_b, rhs_l = rpb + ab, rpl + al - D.G @ (r_c - self.W2 @ rdy)
        dlb, dll = N.solve(rhs_b, rhs_l)
        for _ in range(REFINE if self.K.socs else 0):    # iterative refinement against the unfactored operator
            atb, gtb = N.AT_mul(dlb, dll)
            mb, ml = N.A_mul(self.theta * atb, self.W2 @ gtb)
            cb, cl = N.solve(rhs_b - mb, rhs_l - ml)
            dlb, dll = dlb + cb, dll + cl
        atb, gtb = N.AT_mul(dlb, dll)
        dx = self.theta * (atb - rho)
        ds = (r_xs - pt.s * dx) / pt.x
        dw = ru - dx[:, bc]
        dv = (r_wv - pt.v * dw) / pt.w
        dsig = rdy - gtb
        dy = r_c - self.W2 @ dsig
        return _Point(dx, dw, dy, ds, dv, dsig, dlb, dll)

    def steps(self, d: _Point) -> tuple[float, float]:
        """Largest primal and dual steps along d; the cones' in the scaled space (λ + α W⁻¹dy, λ + α W dσ:
        W is an automorphism of the cone and λ is well inside it)."""
        pt, K = self.pt, self.K
        ap = min(_ratio_step(pt.x, d.x), _ratio_step(pt.w, d.w), K.step(self.lam, self.Winv @ d.y))
        ad = min(_ratio_step(pt.s, d.s), _ratio_step(pt.v, d.v), K.step(self.lam, self.W @ d.sig))
        return ap, ad

    def complementarity(self, d: _Point, ap: float, ad: float) -> float:
        """Σ x s + w v + y σ at the point moved along d."""
        pt = self.pt
        return float(((pt.x + ap * d.x) * (pt.s + ad * d.s)).sum() + ((pt.w + ap * d.w) * (pt.v + ad * d.v)).sum()
                     + (pt.y + ap * d.y) @ (pt.sig + ad * d.sig))


def _start(D: _Data, N: _Normal, K: _Cones) -> _Point:
    """Mehrotra's starting point: least-squares primal and dual solutions shifted into the cones."""
    T, ny, bc = D.T, D.cy.size, D.bcols
    N.factor(np.ones((T, D.n)), np.eye(ny))
    lb, ll = N.solve(D.b, np.zeros(D.p))
    x, y = N.AT_mul(lb, ll)
    w = D.u[None, :] - x[:, bc]
    lb, ll = N.solve(*N.A_mul(D.c, D.cy))
    atl, gtl = N.AT_mul(lb, ll)
    s, sig = D.c - atl, D.cy - gtl
    v = np.zeros_like(w)

    def low(a: np.ndarray, c: np.ndarray) -> float:       # the smallest eigenvalue over x, w and the cones
        out = min(float(a.min()) if a.size else math.inf, float(c[K.lin].min()) if K.lin.size else math.inf)
        for sl in K.socs:
            out = min(out, c[sl.start] - float(np.linalg.norm(c[sl][1:])))
        return out

    dp = max(-1.5 * low(np.concatenate([x.ravel(), w.ravel()]), y), 0.0)
    dd = max(-1.5 * low(np.concatenate([s.ravel(), v.ravel()]), sig), 0.0)
    x, w, y = x + dp, w + dp, y + dp * K.e
    s, v, sig = s + dd, v + dd, sig + dd * K.e
    xs = float((x * s).sum() + (w * v).sum() + y @ sig)
    sp_ = float(s.sum() + v.sum() + sig @ K.e)
    xp_ = float(x.sum() + w.sum() + y @ K.e)
    dp2 = 0.5 * xs / max(sp_, 1e-300) + 1e-8
    dd2 = 0.5 * xs / max(xp_, 1e-300) + 1e-8
    return _Point(x + dp2, w + dp2, y + dp2 * K.e, s + dd2, v + dd2, sig + dd2 * K.e,
                  lb, ll)


@dataclass
class _Result:
    status: str
    ok: bool
    x: np.ndarray | None
    objective: float
    iterations: int
    error: float                  # the largest relative residual or gap of the returned point (or the best one)


def _ipm(D: _Data, tol: float, max_iter: int) -> _Result:
    """Mehrotra's predictor-corrector on the scaled program."""
    N, K = _Normal(D), _Cones(D)
    pt = _start(D, N, K)
    bnorm = 1.0 + float(np.abs(D.b).max())
    cnorm = 1.0 + max(float(np.abs(D.c).max()), float(np.abs(D.cy).max()) if D.cy.size else 0.0)
    same_step = bool(K.socs)                     # the NT scaling of the cones wants one step
    status, it = "MaxIterations", 0
    history: list[float] = []
    best: tuple[float, np.ndarray | None, float] = (math.inf, None, math.nan)
    while it < max_iter:
        it += 1
        nt = _Newton(D, N, K, pt)
        pres, dres, gap = nt.errors(bnorm, cnorm)
        err = max(pres, dres, gap)
        if not math.isfinite(err):
            status = "NumericalError"
            break
        if err < best[0]:
            best = (err, pt.x, nt.pobj)
        history.append(err)
        if len(history) > STALL and history[-STALL - 1] < 1e-5 and min(history[-STALL:]) > 0.5 * history[-STALL - 1]:
            status = "Stalled"
            break
        if err <= tol:
            status = "Solved"
            break
        try:
            nt.factor()
            mu = nt.comp / nt.deg
            lam2 = K.prod(nt.lam, nt.lam)
            aff = nt.direction(-pt.x * pt.s, -pt.w * pt.v, -lam2)
            ap, ad = nt.steps(aff)
            ap, ad = min(1.0, ap), min(1.0, ad)
            if same_step:
                ap = ad = min(ap, ad)
            sigma = min(1.0, max(0.0, nt.complementarity(aff, ap, ad) / nt.comp)) ** 3
            r_lam = -lam2 - K.prod(nt.Winv @ aff.y, nt.W @ aff.sig) + K.target(nt.lam, sigma * mu)
            d = nt.direction(-pt.x * pt.s - aff.x * aff.s + sigma * mu, -pt.w * pt.v - aff.w * aff.v + sigma * mu,
                             r_lam)
            ap, ad = nt.steps(d)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
            status = "NumericalError"
            break
        ap, ad = min(1.0, STEP * ap), min(1.0, STEP * ad)
        if same_step:
            ap = ad = K.central_step(pt.y, d.y, pt.sig, d.sig, min(ap, ad))
        pt = pt.moved(d, ap, ad)
    if status == "Solved" or (status in ("NumericalError", "Stalled") and best[0] <= TOL_REDUCED):
        return _Result("Solved", True, best[1], best[2], it, best[0])
    return _Result(status, False, None, math.nan, it, best[0])


def solve_blockipm(prog: DirectProgram, tol: float = TOL, max_iter: int | None = None) -> DirectOutcome:
    """Solve ``prog`` (q in {1, 2, inf}: :func:`blockipm_applies`) by the block interior-point method.
    Returns a :class:`DirectOutcome` with ``solver`` :data:`BLOCKIPM_SOLVER`; ``Unsupported`` (not ok) for
    other q, a zero capacity or footprints before the window inside the norms (MPC's); not ok (status
    ``MaxIterations``, ``Stalled`` or ``NumericalError``) when it did not converge within ``max_iter``
    (default :data:`MAX_ITER`) iterations."""
    sc = prog.scenario
    out = DirectOutcome(ok=False, solver=BLOCKIPM_SOLVER, status="not solved", objective_usd=math.nan,
                        build_time_s=0.0, solve_time_s=0.0)
    if not prog.demand.any():
        out.ok, out.status, out.objective_usd = True, "optimal", 0.0
        out.schedule = np.zeros((prog.T, sc.N, sc.J, sc.K))
        out.attempts.append(f"{BLOCKIPM_SOLVER}: no demand in the window")
        return out
    if (not blockipm_applies(prog.q) or prog.capacity.ndim != 1 or not (prog.capacity[prog.layout.e_sites] > 0).all()
            or prog._offsets):
        out.status = "Unsupported"
        out.attempts.append(f"{BLOCKIPM_SOLVER}: Unsupported (q={prog.q:g}, a zero capacity, a capacity per slot "
                            f"or offsets in the norms)")
        return out
    t0 = time.perf_counter()
    D = _scaled_program(prog)
    t1 = time.perf_counter()
    with _one_blas_thread():
        res = _ipm(D, tol, MAX_ITER if max_iter is None else max_iter)
    t2 = time.perf_counter()
    out.build_time_s, out.solve_time_s = t1 - t0, t2 - t1
    out.attempts.append(f"{BLOCKIPM_SOLVER}: {res.status} ({res.iterations} iterations, error {res.error:.1e})")
    out.status = res.status
    if not res.ok or res.x is None:
        return out
    V = res.x * D.col_scale[None, :]
    out.ok, out.status, out.objective_usd = True, "optimal", res.objective * D.obj_scale
    x = prog.layout.rebuild(V * prog.unit, prog.demand)   # type: ignore[operator]
    out.schedule = _snap_to_demand(x, prog.demand)
    return out
