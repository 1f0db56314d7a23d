"""Calibration of the synthetic generator from a trace folder in the eGLB-2022 layout.

``calibrate(data_dir)`` computes every parameter of :mod:`equiglb.traces.synthetic` from the data:
means, hour-of-day profiles (UTC), day-to-day AR(1) level, hourly AR(1) noise, the two-level tariff
of the US prices, and the demand process. The shipped ``default_params.json`` is its output on the
eGLB-2022 traces; regenerate it with::

    python -m equiglb.traces calibrate ../shared/traces/eglb-2022 -o src/equiglb/traces/default_params.json
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from equiglb.scenario import Scenario
from equiglb.traces.csvio import TraceError
from equiglb.traces.eglb2022 import load_eglb_folder
from equiglb.traces.synthetic import SeriesParams, SyntheticParams

__all__ = ["calibrate", "calibrate_scenario", "fit_series", "is_tariff"]

#: A price series is a two-level daily tariff if at most two distinct values occur on this share of days.
TARIFF_DAY_SHARE = 0.8
#: Hours whose typical price is this many times the day's base are the tariff's peak hours.
TARIFF_PEAK_RATIO = 1.5


def _full_days(ts: np.ndarray, v: np.ndarray, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Cut to whole UTC days: (D, 24) values and (D,) months (datetime64[M])."""
    hour = (ts - ts.astype("datetime64[D]")).astype(np.int64)
    first = int(np.argmax(hour == 0)) if np.any(hour == 0) else ts.size
    D = (ts.size - first) // 24
    if D < 2:
        raise TraceError(f"{path}: calibration needs at least two whole UTC days of data, got {ts.size} h")
    sl = slice(first, first + 24 * D)
    return v[sl].reshape(D, 24), ts[sl][::24].astype("datetime64[M]")


def _lag1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation, clipped to [-0.99, 0.99] (0 for constant series)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 3 or np.std(x[:-1]) == 0 or np.std(x[1:]) == 0:
        return 0.0
    return float(np.clip(np.corrcoef(x[:-1], x[1:])[0, 1], -0.99, 0.99))


def is_tariff(days: np.ndarray) -> bool:
    """True if the series has at most two distinct values on most days (a two-level daily tariff)."""
    distinct = np.array([np.unique(np.round(d, 6)).size for d in days])
    return bool(np.mean(distinct <= 2) >= TARIFF_DAY_SHARE and days.min() > 0)


def fit_series(days: np.ndarray, months: np.ndarray, tariff_ok: bool = False, floor: float | None = None,
               cap: float | None = None) -> SeriesParams:
    """Fit one series given as (D, 24) whole UTC days; ``tariff_ok`` allows the tariff model."""
    m = float(days.mean())
    if tariff_ok and is_tariff(days):
        base = days.min(axis=1, keepdims=True)
        ratio = np.median(days / base, axis=0)
        peak = np.flatnonzero(ratio > TARIFF_PEAK_RATIO)
        off = np.setdiff1d(np.arange(24), peak)
        mult = float(np.median((days / base)[:, peak])) if peak.size else 1.0
        month_base = [float(np.median(days[months == mo][:, off])) for mo in np.unique(months)]
        mstd = float(np.std(np.log(month_base))) if len(month_base) > 1 else 0.0
        return SeriesParams(kind="tariff", mean=m, peak_hours=tuple(int(h) for h in peak),
                            peak_multiplier=mult, monthly_std=mstd, floor=floor, cap=cap)
    rel = days / m - 1.0
    level = rel.mean(axis=1)
    profile = (rel - level[:, None]).mean(axis=0)
    resid = rel - level[:, None] - profile[None, :]
    return SeriesParams(kind="ar", mean=m, profile=tuple(float(v) for v in profile),
                        daily_std=float(level.std()), daily_ar=_lag1(level),
                        hourly_std=float(resid.std()), hourly_ar=_lag1(resid),
                        floor=floor, cap=cap)


def calibrate_scenario(scn: Scenario) -> SyntheticParams:
    """Calibrate from a loaded scenario (its sites' price/carbon/water, and region 0's demand)."""
    ts = scn.timestamps
    out: dict[str, list[SeriesParams]] = {}
    for sig in ("price", "carbon", "water"):
        arr = getattr(scn, sig)
        out[sig] = []
        for i, site in enumerate(scn.site_names):
            days, months = _full_days(ts, arr[:, i], f"{scn.source} ({sig}, {site})")
            out[sig].append(fit_series(days, months, tariff_ok=(sig == "price"),
                                       floor=None if sig == "price" else 0.0))
    d = scn.demand.sum(axis=1)
    peak = d.max()
    if peak <= 0:
        raise TraceError(f"{scn.source}: the demand is zero everywhere; cannot calibrate the demand process")
    days, months = _full_days(ts, d / peak, f"{scn.source} (demand)")
    demand = fit_series(days, months, floor=0.0, cap=1.0)
    return SyntheticParams(sites=scn.site_names, price=tuple(out["price"]), carbon=tuple(out["carbon"]),
                           water=tuple(out["water"]), demand=demand,
                           start=str(np.datetime_as_string(ts[0], unit="h")),
                           source=f"calibrated on {scn.source} ({scn.T} h)")


def calibrate(data_dir: os.PathLike | str) -> SyntheticParams:
    """Calibrate every generator parameter from a trace folder in the eGLB-2022 layout.

    Demand is normalized to its peak (1 load unit = the workload's maximum hour, as in eGLB).
    """
    scn = load_eglb_folder(data_dir)
    p = calibrate_scenario(scn)
    return SyntheticParams(sites=p.sites, price=p.price, carbon=p.carbon, water=p.water, demand=p.demand,
                           start=p.start,
                           source=f"calibrated on the folder {Path(data_dir).name!r} ({scn.T} h from {p.start} UTC)")
