"""A learned correction of issued forecasts by their observed errors (docs/forecasts.md, *Correcting
forecasts by their recent errors*).

At slot t a controller knows the truth of slot t and every forecast issued so far, so it knows the error
that each earlier issue made on slot t: the observed log error of lead h,

    x_r(t, h) = ln( forecast of slot t issued at t - h  /  actual of slot t ),

for every series r (a site's price, carbon or water, a region's demand). Forecast errors persist from one
target hour to the next (the calibrated model's errors are an AR(1) in target time; real ones too), so the
error of the forecast just issued for slot t + h is predictable from it. :func:`fit_correction` fits, on a
training window only, one least-squares coefficient per signal and lead,

    e_r(t + h, h) ≈ β_{g(r), h} · x_r(t, h),     g(r) in (price, carbon, water, demand),

and :class:`CorrectedForecaster` issues ``forecast · exp(-β · x(t, h))``: the forecast divided by its
predicted error. It is a :class:`~equiglb.forecast.Forecaster`, so ``MPCPolicy(forecast_model=...)`` and the
environment's ``forecast_model=`` take it; at slot t it reads the truth up to slot t and forecasts issued up
to t, nothing later (tests pin both). Under the calibrated model the best linear predictor of e(t + h, h)
from the present is ρ^h x(t, h) for the Gaussian signals (ρ = :data:`~equiglb.forecast.AR_RHO`): the fit
recovers it from data and needs no knowledge of the model, so it applies unchanged to forecasts read from a
file (:func:`~equiglb.forecast.load_forecasts`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from equiglb.forecast import SIGNALS, Forecaster, ForecastError
from equiglb.validate import as_int

__all__ = ["Correction", "CorrectedForecaster", "fit_correction"]


@dataclass(frozen=True)
class Correction:
    """Coefficients of a fitted correction: ``beta[h - 1, g]`` for lead h = 1..H and signal group g in
    :data:`~equiglb.forecast.SIGNALS` order (dimensionless: a log error per log error), the window it was fit
    on (first slot, slots) of the forecaster's scenario, and the number of (slot, series) pairs behind each
    coefficient, ``samples[h - 1, g]``."""

    beta: np.ndarray
    window: tuple[int, int]
    samples: np.ndarray

    @property
    def horizon(self) -> int:
        """The longest lead the correction covers (hours)."""
        return int(self.beta.shape[0])


def _groups(fc: Forecaster) -> np.ndarray:
    """The signal group (index into SIGNALS) of each series of ``fc``'s columns."""
    return np.array([SIGNALS.index(g) for g, _ in fc.names])


def observed_errors(fc: Forecaster, t: int, horizon: int, first: int) -> np.ndarray:
    """x[h - 1, r] = ln(forecast of slot t issued at t - h / actual of slot t) for h = 1..horizon (the errors
    known at slot t), 0 where no forecast was issued at t - h (before slot ``first``) or the ratio is not
    positive and finite (a zero actual, a sign change). Reads the truth of slot t and forecasts issued
    before t only."""
    x = np.zeros((horizon, len(fc.names)))
    actual = fc.truth[t]
    for h in range(1, min(horizon, t - first) + 1):
        f = fc.values(t - h, h)[h - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = f / actual
        ok = (r > 0) & np.isfinite(r)
        x[h - 1] = np.log(np.where(ok, r, 1.0))
    return x


def _calibrated_errors(fc: Forecaster, t: int, horizon: int, first: int) -> np.ndarray:
    """:func:`observed_errors` of the calibrated model's own forecasts, read from its block of log errors: the
    forecast of slot t issued at t - h is the truth of slot t times exp(e(t, h)), so x[h - 1] is e(t, h) where the
    truth is not 0 (the same numbers to rounding; tests pin it to :func:`observed_errors`)."""
    x = np.zeros((horizon, len(fc.names)))
    known = min(horizon, t - first)
    if known > 0:
        x[:known] = np.where(fc.truth[t] != 0.0, fc.target_log_errors(t, known), 0.0)
    return x


def error_reader(fc: Forecaster) -> Callable[[int, int, int], np.ndarray]:
    """``observed_errors(fc, t, horizon, first)`` as a function of (t, horizon, first), chosen once per
    forecaster: for the calibrated model's own forecasts (not a subclass's, not scale 0) the accelerator
    :func:`_calibrated_errors` (one row of its error block instead of ``horizon`` issues), else the reference
    :func:`observed_errors`."""
    if type(fc).values is Forecaster.values and fc.model == "calibrated" and fc.scale > 0:
        return functools.partial(_calibrated_errors, fc)
    return functools.partial(observed_errors, fc)


def fit_correction(forecaster: Forecaster, window: tuple[int, int], horizon: int = 24) -> Correction:
    """Fit the correction's coefficients on ``window`` = (first slot, slots) of ``forecaster``'s scenario:
    issue slots t and targets t + h inside the window, and observed errors from forecasts issued inside it
    (t - h >= its first slot); nothing outside the window is read.

    Args:
        forecaster: the forecasts to correct (any :class:`~equiglb.forecast.Forecaster`, a file's too).
        window: the training window, (first slot, length in slots); never the window a policy is scored on.
        horizon: the longest lead to correct (hours, 1 .. window length // 3, at most the forecaster's longest).

    Raises:
        ForecastError: a window outside the scenario or the forecaster's window, too short for ``horizon``.
    """
    first, length = int(window[0]), int(window[1])
    if first < forecaster.first or length < 1 or first + length - 1 > forecaster.last:
        raise ForecastError(f"fit_correction: window={window!r} is not inside the forecaster's slots "
                            f"{forecaster.first}..{forecaster.last} of scenario {forecaster.scenario.name!r}")
    horizon = as_int("fit_correction horizon", horizon, 1, max(1, min(length // 3, forecaster.max_horizon)),
                     unit="hours")
    groups = _groups(forecaster)
    sxy = np.zeros((horizon, len(SIGNALS)))
    sxx = np.zeros((horizon, len(SIGNALS)))
    n = np.zeros((horizon, len(SIGNALS)), dtype=np.int64)
    end = first + length                           # exclusive
    observe = error_reader(forecaster)
    for t in range(first + 1, end - 1):
        H = min(horizon, end - 1 - t)               # targets t + 1 .. t + H inside the window
        x = observe(t, H, first)
        f = forecaster.values(t, H)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = f / forecaster.truth[t + 1:t + 1 + H]
        ok = (r > 0) & np.isfinite(r) & (x != 0.0)    # x = 0: no issue at t - h inside the window
        y = np.log(np.where(ok, r, 1.0))
        for g in range(len(SIGNALS)):
            m = ok & (groups == g)[None, :]
            sxy[:H, g] += (np.where(m, x * y, 0.0)).sum(axis=1)
            sxx[:H, g] += (np.where(m, x * x, 0.0)).sum(axis=1)
            n[:H, g] += m.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), 0.0)
    return Correction(beta=beta, window=(first, length), samples=n)


class CorrectedForecaster(Forecaster):
    """``base``'s forecasts divided by their predicted error: the forecast of slot t + h issued at t times
    ``exp(-beta[h - 1, g] · x(t, h))``, with x the observed errors of :func:`observed_errors` (leads past the
    correction's horizon are left as issued). Build it with :meth:`fit`.

    Args:
        base: the raw forecasts (the calibrated model, a file's, ...).
        correction: the coefficients (:func:`fit_correction`).
        split: the name of the split the correction was fit on, for the label (``"train"``).
    """

    def __init__(self, base: Forecaster, correction: Correction, split: str = "train"):
        super().__init__(base.scenario, "perfect", window=(base.first, base.last - base.first + 1))
        self.base = base
        self.correction = correction
        self.split = split
        self.model = base.model
        self.seed, self.scale = base.seed, base.scale
        self._groups = _groups(base)
        self._observe = error_reader(base)
        self._x_slot, self._x = -1, np.zeros((0, len(base.names)))

    @classmethod
    def fit(cls, base: Forecaster, split: str = "train", horizon: int = 24) -> CorrectedForecaster:
        """Fit the correction on ``split`` of ``base``'s scenario (a name of ``scenario.splits``) and wrap
        ``base`` with it."""
        splits = base.scenario.splits
        if split not in splits:
            raise ForecastError(f"split={split!r}: scenario {base.scenario.name!r} has the splits {sorted(splits)}")
        return cls(base, fit_correction(base, splits[split], horizon), split)

    @property
    def label(self) -> str:
        return f"{self.base.label}, corrected (fit on {self.split})"

    @property
    def max_horizon(self) -> int:
        return self.base.max_horizon

    def _check(self, t: int, horizon: int) -> tuple[int, int]:
        return self.base._check(t, horizon)

    def values(self, t: int, horizon: int) -> np.ndarray:
        v = self.base.values(t, horizon)
        H = min(horizon, self.correction.horizon)
        if H == 0:
            return v
        if self._x_slot != t:                      # every lead of the correction, once per issue slot
            self._x_slot, self._x = t, self._observe(t, self.correction.horizon, self.first)
        beta = self.correction.beta[:H][:, self._groups]
        v[:H] *= np.exp(-beta * self._x[:H])
        return v
