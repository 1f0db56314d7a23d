"""Forecasts of the traces, shared by the environment's observations and model-predictive control.

Noise model (``noise_std > 0``): a forecast made at slot t for slot t+h (h >= 1 hours ahead) is

    value[t+h] * (1 + noise_std * sqrt(h) * ε),   ε ~ N(0, 1) independent per (t, h, series),

clipped at 0 for signals that cannot be negative (demand, carbon, water); prices keep their sign.
The error grows with the square root of the lead time, as a random walk of hourly surprises
would. ``noise_std = 0`` is a perfect forecast. Slots past the end of the trace repeat the last
value (the forecaster does not know the episode ends).
"""

from __future__ import annotations

import numpy as np

__all__ = ["forecast"]


def forecast(series: np.ndarray, t: int, horizon: int, noise_std: float = 0.0,
             rng: np.random.Generator | None = None, nonnegative: bool = True) -> np.ndarray:
    """Forecast of ``series[t+1 .. t+horizon]`` (shape (horizon, ...)) made at slot ``t``.

    Args:
        series: (T, ...) array of the true values.
        t: the current slot; only ``series[t+1:]`` is forecast.
        horizon: number of hours ahead (>= 0).
        noise_std: relative error at one hour ahead (0 = perfect foresight).
        rng: random generator (required when noise_std > 0, for reproducibility).
        nonnegative: clip the forecast at 0.
    """
    T = series.shape[0]
    idx = np.minimum(np.arange(t + 1, t + 1 + horizon), T - 1)
    out = series[idx].astype(np.float64, copy=True)
    if noise_std > 0 and horizon > 0:
        if rng is None:
            raise ValueError("forecast: a random generator is required when noise_std > 0")
        lead = np.sqrt(np.arange(1, horizon + 1, dtype=np.float64)).reshape((horizon,) + (1,) * (out.ndim - 1))
        out *= 1.0 + noise_std * lead * rng.standard_normal(out.shape)
        if nonnegative:
            np.maximum(out, 0.0, out=out)
    return out
