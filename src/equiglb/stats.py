"""Aggregation over seeds: mean, interquartile mean (IQM) and 95 % bootstrap confidence intervals.

One definition for every quality claim of the package (``benchmarks/agent_quality.py``, the sweeps of
:mod:`equiglb.sweep`). The estimates and the bootstrap follow rliable (Agarwal et al., *Deep RL at the
Edge of the Statistical Precipice*, NeurIPS 2021), the field's convention: the interval is the
percentile bootstrap over runs (seeds) with ``reps`` resamples, drawn from a generator seeded with
``seed`` so that a table is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics

__all__ = ["SeedSummary", "summarize", "summarize_groups", "iqm"]


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of the values (rliable's ``aggregate_iqm``)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    return float(metrics.aggregate_iqm(v))


class SeedSummary(dict):
    """``n``, ``mean``, ``std`` (sample, ddof = 1), ``iqm``, and the 95 % bootstrap bounds
    ``mean_ci_low``/``mean_ci_high`` and ``iqm_ci_low``/``iqm_ci_high``, in the unit of the values."""


def summarize(values: Sequence[float] | np.ndarray, reps: int = 2000, seed: int = 0,
              confidence: float = 0.95) -> SeedSummary:
    """Summarize one value per seed (e.g. the gap to the offline optimum in %).

    Args:
        values: one finite number per run (seed).
        reps: bootstrap resamples.
        seed: seed of the bootstrap's generator.
        confidence: coverage of the interval (0.95 = 95 %).

    With a single value the intervals collapse to that value (no spread can be estimated); so they
    do when every value is the same (each resample is that value: no bootstrap is needed).
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"summarize needs a non-empty list of numbers, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"summarize got a non-finite value: {v.tolist()}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = int(v.size)
    out = SeedSummary(n=n, mean=float(v.mean()), std=float(v.std(ddof=1)) if n > 1 else 0.0, iqm=iqm(v))
    if n == 1 or bool((v == v[0]).all()):
        out.update(mean_ci_low=out["mean"], mean_ci_high=out["mean"], iqm_ci_low=out["iqm"],
                   iqm_ci_high=out["iqm"])
        return out
    saved = np.random.get_state()     # rliable resamples with numpy's global generator: seed it, then restore
    np.random.seed(seed)
    try:
        _, ci = rly.get_interval_estimates(
            {"x": v.reshape(-1, 1)},
            lambda s: np.array([metrics.aggregate_mean(s), metrics.aggregate_iqm(s)]),
            reps=reps, confidence_interval_size=confidence)
    finally:
        np.random.set_state(saved)
    lo, hi = ci["x"]
    out.update(mean_ci_low=float(lo[0]), mean_ci_high=float(hi[0]), iqm_ci_low=float(lo[1]),
               iqm_ci_high=float(hi[1]))
    for k in ("mean_ci_low", "mean_ci_high", "iqm_ci_low", "iqm_ci_high"):
        if not math.isfinite(out[k]):
            raise ArithmeticError(f"bootstrap bound {k} is not finite for values {v.tolist()}")
    return out


def summarize_groups(table: pd.DataFrame, by: Sequence[str], columns: Sequence[str], reps: int = 2000,
                     seed: int = 0, confidence: float = 0.95, means: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`summarize` each column of ``table`` within each group of ``by`` (one row per run).

    Returns one row per group: the ``by`` columns, ``n_seeds`` (rows in the group), and for each
    column ``c`` the columns ``c_mean``, ``c_std``, ``c_iqm``, ``c_mean_ci_low``, ``c_mean_ci_high``,
    ``c_iqm_ci_low``, ``c_iqm_ci_high`` (in the unit of ``c``); for each column of ``means`` only
    ``c_mean`` (no bootstrap: it costs ``reps`` evaluations per group and column). Groups keep their
    first-seen order. Every group's bootstrap uses the same ``seed``, so a table is reproducible.
    """
    missing = [c for c in (*by, *columns, *means) if c not in table.columns]
    if missing:
        raise KeyError(f"summarize_groups: no column(s) {missing} in the table; it has {list(table.columns)}")
    rows = []
    for key, group in table.groupby(list(by), sort=False, dropna=False):
        keys = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(by, keys))
        row["n_seeds"] = len(group)
        for c in columns:
            s = summarize(group[c].to_numpy(dtype=np.float64), reps=reps, seed=seed, confidence=confidence)
            row.update({f"{c}_{k}": v for k, v in s.items() if k != "n"})
        for c in means:
            row[f"{c}_mean"] = float(group[c].to_numpy(dtype=np.float64).mean())
        rows.append(row)
    return pd.DataFrame(rows)
