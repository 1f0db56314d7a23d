"""Loader for the eGLB-2022 trace folder (Li, Yang, Wierman, Ren, arXiv 2307.05494).

Folder layout (as upstream ``data/``)::

    AI_workload.csv                 Time (UTC), Power (Watt)
    price/<Site>_Price.csv          Time (UTC), Price (USD/MWh)     (six files are 24 h longer)
    carbon/<Site>_carbon.csv        Time (UTC), Carbon (kg/kWh)
    water/<Site>_water.csv          Time (UTC), " WUE (L/kWh)"      (leading space upstream)
    partial_mask.csv                10 x 10, row = data center, column = gateway (optional)

The study's conventions are applied: demand = workload power / 2708 W at every gateway (2708 W is
the trace maximum, so at the peak hour the fleet is exactly full), capacity 1 per site, e = 1,
PUE = 1, and the series are aligned on their common timestamps (the longer price files are cut).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from equiglb.scenario import Scenario
from equiglb.traces.csvio import TraceError, read_csv_checked, read_hourly_csv
from equiglb.traces.sites import EGLB_COORDS_DEG, EGLB_FILE_NAMES, EGLB_SITES, EGLB_UTC_OFFSET_H, latency_ms

__all__ = ["load_eglb_folder", "read_partial_mask", "EGLB_WORKLOAD_NORM_W", "EGLB_SPLITS"]

#: The study's workload normalization (W): demand = power / 2708.
EGLB_WORKLOAD_NORM_W = 2708.0
#: Named windows of the 457-hour trace: two weeks to train, the remaining 121 h to test.
EGLB_SPLITS = {"train": (0, 336), "test": (336, 121)}


def read_partial_mask(path: os.PathLike | str, sites: tuple[str, ...] = EGLB_FILE_NAMES) -> np.ndarray:
    """Read ``partial_mask.csv`` as a (N, J) bool array (row data center i, column gateway j)."""
    path = Path(path)
    df = read_csv_checked(path)
    df = df.set_index(df.columns[0])
    rows = [str(r).strip() for r in df.index]
    cols = [str(c).strip() for c in df.columns]
    if rows != list(sites) or cols != list(sites):
        raise TraceError(f"{path}: rows {rows} / columns {cols} do not match the sites {list(sites)}")
    vals = df.to_numpy()
    if not np.isin(vals, (0, 1)).all():
        raise TraceError(f"{path}: mask entries must be 0 or 1, got {sorted(set(vals.ravel().tolist()))}")
    return vals.astype(bool)


def load_eglb_folder(data_dir: os.PathLike | str, partial: bool = False, name: str | None = None) -> Scenario:
    """Load the eGLB-2022 folder as a Scenario (N = J = 10, K = 1, T = 457 on the published data)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise TraceError(f"{d}: eGLB-2022 trace folder not found")
    series: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"price": [], "carbon": [], "water": []}
    spec = {"price": ("price/{}_Price.csv", "Price (USD/MWh)", False),
            "carbon": ("carbon/{}_carbon.csv", "Carbon (kg/kWh)", True),
            "water": ("water/{}_water.csv", "WUE (L/kWh)", True)}
    for sig, (pattern, col, nonneg) in spec.items():
        for site in EGLB_FILE_NAMES:
            series[sig].append(read_hourly_csv(d / pattern.format(site), col, nonnegative=nonneg))
    wl_ts, wl = read_hourly_csv(d / "AI_workload.csv", "Power (Watt)")
    # align every series on the common hourly range
    all_ts = [wl_ts] + [ts for sig in series.values() for ts, _ in sig]
    start = max(ts[0] for ts in all_ts)
    end = min(ts[-1] for ts in all_ts)
    if end < start:
        raise TraceError(f"{d}: the trace files share no common time range")
    T = int((end - start).astype(np.int64)) + 1

    def cut(ts: np.ndarray, v: np.ndarray) -> np.ndarray:
        k = int((start - ts[0]).astype(np.int64))
        return v[k:k + T]

    arrays = {sig: np.stack([cut(ts, v) for ts, v in lst], axis=1) for sig, lst in series.items()}
    demand_1 = cut(wl_ts, wl) / EGLB_WORKLOAD_NORM_W
    N = len(EGLB_SITES)
    mask = read_partial_mask(d / "partial_mask.csv") if partial else np.ones((N, N), bool)
    splits = {k: v for k, v in EGLB_SPLITS.items() if v[0] + v[1] <= T}
    if len(splits) < len(EGLB_SPLITS):
        lost = sorted(set(EGLB_SPLITS) - set(splits))
        warnings.warn(f"{d}: the traces cover {T} h, fewer than the published 457 h; split(s) {lost} do not fit and "
                      f"are not defined for this folder", stacklevel=2)
    return Scenario(
        name=name or ("eglb-2022-partial" if partial else "eglb-2022"),
        demand=np.repeat(demand_1[:, None], N, axis=1),
        price=arrays["price"], carbon=arrays["carbon"], water=arrays["water"],
        capacity=np.ones(N), mask=mask,
        site_names=EGLB_SITES, region_names=EGLB_SITES,
        timestamps=start + np.arange(T).astype("timedelta64[h]"),
        latency=latency_ms(EGLB_COORDS_DEG, EGLB_COORDS_DEG),
        utc_offset_h=EGLB_UTC_OFFSET_H, splits=splits, source=str(d),
    )
