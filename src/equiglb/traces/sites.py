"""Static data of the ten eGLB-2022 sites: names, coordinates, UTC offsets and a latency model."""

from __future__ import annotations

import numpy as np

__all__ = ["EGLB_SITES", "EGLB_FILE_NAMES", "EGLB_UTC_OFFSET_H", "EGLB_COORDS_DEG", "latency_ms"]

#: Site (and gateway) names, in the study's order. Files use the upstream spelling "Belguim".
EGLB_SITES: tuple[str, ...] = ("Texas", "Virginia", "Georgia", "Nevada", "Germany", "Belgium",
                               "Netherlands", "Denmark", "Japan", "Singapore")
EGLB_FILE_NAMES: tuple[str, ...] = tuple("Belguim" if s == "Belgium" else s for s in EGLB_SITES)

#: UTC offsets (hours) in force during the trace window (22 Sep - 11 Oct 2022, daylight saving time
#: in the US and Europe).
EGLB_UTC_OFFSET_H = np.array([-5, -4, -4, -7, 2, 2, 2, 2, 9, 8], dtype=np.float64)

#: Approximate (latitude, longitude) of each site, degrees; used only for the latency model.
EGLB_COORDS_DEG = np.array([
    [31.0, -97.5],   # Texas
    [38.9, -77.5],   # Virginia (Ashburn)
    [33.7, -84.4],   # Georgia (Atlanta)
    [39.5, -119.8],  # Nevada (Reno)
    [50.1, 8.7],     # Germany (Frankfurt)
    [50.5, 3.8],     # Belgium (St. Ghislain)
    [53.4, 6.8],     # Netherlands (Eemshaven)
    [56.2, 9.5],     # Denmark
    [35.7, 139.7],   # Japan (Tokyo)
    [1.35, 103.8],   # Singapore
])


def latency_ms(coords_a_deg: np.ndarray, coords_b_deg: np.ndarray) -> np.ndarray:
    """Round-trip latency (ms) between every pair of points: great-circle distance at 2/3 of the
    speed of light in fibre, there and back (1 ms per 100 km), plus 1 ms of switching.

    Returns an array of shape (len(a), len(b)).
    """
    a = np.radians(np.asarray(coords_a_deg, dtype=np.float64))[:, None, :]
    b = np.radians(np.asarray(coords_b_deg, dtype=np.float64))[None, :, :]
    dlat, dlon = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
    h = np.sin(dlat / 2) ** 2 + np.cos(a[..., 0]) * np.cos(b[..., 0]) * np.sin(dlon / 2) ** 2
    km = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return km / 100.0 + 1.0
