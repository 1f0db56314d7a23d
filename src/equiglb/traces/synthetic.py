"""The synthetic default scenario: calibrated, seeded hourly traces for the ten eGLB-2022 sites.

Every series (price, carbon and water of each site, and the demand of each region) is one of two
stochastic models whose parameters (:class:`SeriesParams`) come from
:func:`equiglb.traces.calibrate.calibrate`; the package ships the parameters computed from the
eGLB-2022 traces in ``default_params.json`` (numbers only, no raw data).

``"ar"`` model (carbon, water, demand, non-US prices), in units relative to the series mean ``m``::

    value[t] = m · (1 + a[day(t)] + p[hour(t)] + e[t])

* ``p[h]``: hour-of-day profile in UTC (24 numbers, mean 0);
* ``a[d]``: day-to-day level, AR(1) over days with coefficient ``daily_ar`` and stationary std
  ``daily_std``;
* ``e[t]``: hourly noise, AR(1) over hours with coefficient ``hourly_ar`` and stationary std
  ``hourly_std`` (this makes the series smooth like the interpolated upstream prices).

``"tariff"`` model (the US prices, a two-level daily tariff)::

    value[t] = b[month(t)] · (peak_multiplier if hour(t) in peak_hours else 1)

with a monthly base ``b`` log-normal around its mean (log std ``monthly_std``).

Centering: the stochastic part of each series is centered over the generated horizon (the ``"ar"``
deviations are shifted to mean 0; the tariff is rescaled), so every site's mean price, carbon and
water intensity equals the calibrated mean for any seed and length. The ranking of the sites' means
drives cost-only routing and hence the footprint concentration this project studies; without the
centering a 60-day draw of, e.g., Denmark's price (daily std 59 % of its mean, AR 0.8) would move
its mean by about 20 %. Afterwards values are clipped to ``[floor, cap]`` (floor 0 for the
intensities and the demand, none for prices, which may be negative as in the data; cap 1 for demand).

Demand: every region draws its own realization of the calibrated BLOOM-workload process,
normalized so that 1 load unit is the workload peak and capped at 1, so each region's demand never
exceeds one site's capacity and the total demand never exceeds the fleet's capacity (10 sites x 1).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from equiglb.scenario import EGLB_WEIGHTS, Scenario, ScenarioError
from equiglb.traces.sites import EGLB_COORDS_DEG, EGLB_SITES, EGLB_UTC_OFFSET_H, latency_ms
from equiglb.validate import OptionError, as_int, as_path, as_seed

__all__ = ["SeriesParams", "SyntheticParams", "default_params", "load_params", "generate_series",
           "generate_traces", "synthetic_scenario", "SYNTHETIC_HOURS", "SYNTHETIC_TEST_HOURS"]

#: Default generated length: 60 days of hourly slots.
SYNTHETIC_HOURS = 1440
#: Longest synthetic scenario (hours): ten years. Longer requests are refused before any memory is used.
MAX_HOURS = 87_600
#: Default held-out test split: the last 10 days (240 h); "train" is everything before it.
SYNTHETIC_TEST_HOURS = 240
SIGNALS = ("price", "carbon", "water")


@dataclass(frozen=True)
class SeriesParams:
    """Parameters of one generated hourly series (see the module docstring for the two models).

    Attributes:
        kind: ``"ar"`` or ``"tariff"``.
        mean: the series mean, in the signal's unit (USD/MWh, t/MWh, m³/MWh, load units).
        profile: 24 hour-of-day (UTC) deviations relative to the mean, summing to 0 (``"ar"``).
        daily_std, daily_ar: stationary relative std and AR(1) coefficient of the daily level.
        hourly_std, hourly_ar: stationary relative std and AR(1) coefficient of the hourly noise.
        peak_hours: UTC hours of the tariff's peak level (``"tariff"``).
        peak_multiplier: peak price / base price (``"tariff"``).
        monthly_std: std of the log monthly base price (``"tariff"``).
        floor, cap: clip values to this range (``None``: unbounded).
    """

    kind: str
    mean: float
    profile: tuple[float, ...] = ()
    daily_std: float = 0.0
    daily_ar: float = 0.0
    hourly_std: float = 0.0
    hourly_ar: float = 0.0
    peak_hours: tuple[int, ...] = ()
    peak_multiplier: float = 1.0
    monthly_std: float = 0.0
    floor: float | None = None
    cap: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "profile", tuple(float(v) for v in self.profile))
        object.__setattr__(self, "peak_hours", tuple(int(h) for h in self.peak_hours))
        if self.kind not in ("ar", "tariff"):
            raise ScenarioError(f"SeriesParams.kind must be 'ar' or 'tariff', got {self.kind!r}")
        if self.kind == "ar" and len(self.profile) != 24:
            raise ScenarioError(f"SeriesParams.profile must have 24 hourly values, got {len(self.profile)}")
        for name in ("daily_ar", "hourly_ar"):
            v = getattr(self, name)
            if not -1.0 < v < 1.0:
                raise ScenarioError(f"SeriesParams.{name} must be in (-1, 1), got {v!r}")
        for name in ("mean", "daily_std", "hourly_std", "peak_multiplier", "monthly_std"):
            v = getattr(self, name)
            if not np.isfinite(v) or (name != "mean" and v < 0):
                raise ScenarioError(f"SeriesParams.{name} must be finite{' and >= 0' if name != 'mean' else ''}, "
                                    f"got {v!r}")
        if any(not 0 <= h < 24 for h in self.peak_hours):
            raise ScenarioError(f"SeriesParams.peak_hours must be UTC hours 0..23, got {self.peak_hours}")


@dataclass(frozen=True)
class SyntheticParams:
    """Calibrated parameters of the synthetic generator (JSON-serializable with :meth:`to_json`).

    Attributes:
        sites: site names (N); the synthetic scenario has one user region per site.
        price, carbon, water: one :class:`SeriesParams` per site.
        demand: the demand process of every region (load units, 1 = workload peak).
        start: first timestamp (UTC, ``YYYY-MM-DDTHH``) of the generated traces by default.
        source: where the parameters were calibrated from.
    """

    sites: tuple[str, ...]
    price: tuple[SeriesParams, ...]
    carbon: tuple[SeriesParams, ...]
    water: tuple[SeriesParams, ...]
    demand: SeriesParams
    start: str = "2022-09-22T00"
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sites", tuple(str(s) for s in self.sites))
        for sig in SIGNALS:
            v = tuple(p if isinstance(p, SeriesParams) else SeriesParams(**p) for p in getattr(self, sig))
            if len(v) != len(self.sites):
                raise ScenarioError(f"SyntheticParams.{sig} has {len(v)} entries for {len(self.sites)} sites")
            object.__setattr__(self, sig, v)
        if not isinstance(self.demand, SeriesParams):
            object.__setattr__(self, "demand", SeriesParams(**self.demand))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of lists and numbers."""
        return dataclasses.asdict(self)

    def to_json(self, path: os.PathLike | str | None = None) -> str:
        """JSON text (written to ``path`` when given)."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SyntheticParams:
        """Inverse of :meth:`to_dict`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ScenarioError(f"SyntheticParams: unknown field(s) {sorted(unknown)}")
        try:
            return cls(**dict(d))
        except TypeError as exc:
            raise ScenarioError(f"SyntheticParams: {exc}") from exc


def load_params(path: os.PathLike | str) -> SyntheticParams:
    """Read parameters written by ``python -m equiglb.traces calibrate DIR -o FILE``."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: synthetic parameter file not found")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON ({exc})") from exc
    return SyntheticParams.from_dict(d)


_DEFAULT: SyntheticParams | None = None


def default_params() -> SyntheticParams:
    """The shipped parameters (``default_params.json``, calibrated on the eGLB-2022 traces)."""
    global _DEFAULT
    if _DEFAULT is None:
        text = resources.files("equiglb.traces").joinpath("default_params.json").read_text()
        _DEFAULT = SyntheticParams.from_dict(json.loads(text))
    return _DEFAULT


# ---------------------------------------------------------------------- generation
def _ar1(rng: np.random.Generator, n: int, phi: np.ndarray) -> np.ndarray:
    """(n, S) stationary AR(1) paths with unit variance and coefficients ``phi`` (S,)."""
    z = rng.standard_normal((n, phi.size))
    out = np.empty_like(z)
    out[0] = z[0]
    scale = np.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + scale * z[t]
    return out


def generate_series(params: list[SeriesParams] | tuple[SeriesParams, ...], timestamps: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Generate one series per parameter set on ``timestamps`` (datetime64[h], UTC): shape (T, S)."""
    ts = np.asarray(timestamps, dtype="datetime64[h]")
    T, S = ts.size, len(params)
    hour = (ts - ts.astype("datetime64[D]")).astype(np.int64)
    day = (ts.astype("datetime64[D]") - ts[0].astype("datetime64[D]")).astype(np.int64)
    month = (ts.astype("datetime64[M]") - ts[0].astype("datetime64[M]")).astype(np.int64)
    n_days, n_months = int(day[-1]) + 1, int(month[-1]) + 1
    # Draw every random number first, in a fixed order, so the output depends only on the seed.
    daily = _ar1(rng, n_days, np.array([p.daily_ar for p in params]))
    hourly = _ar1(rng, T, np.array([p.hourly_ar for p in params]))
    monthly = rng.standard_normal((n_months, S))
    out = np.empty((T, S))
    for s, p in enumerate(params):
        if p.kind == "ar":
            dev = p.daily_std * daily[day, s] + np.asarray(p.profile)[hour] + p.hourly_std * hourly[:, s]
            out[:, s] = p.mean * (1.0 + dev - dev.mean())
        else:
            shape = np.where(np.isin(hour, p.peak_hours), p.peak_multiplier, 1.0)
            v = np.exp(p.monthly_std * monthly[month, s]) * shape
            out[:, s] = v * (p.mean / v.mean())
        if p.floor is not None or p.cap is not None:
            out[:, s] = np.clip(out[:, s], p.floor, p.cap)
    return out


def generate_traces(params: SyntheticParams, hours: int, seed: int = 0,
                    start: str | np.datetime64 | None = None) -> dict[str, np.ndarray]:
    """Generate ``hours`` hourly slots: ``timestamps`` (T,), ``price``/``carbon``/``water`` (T, N)
    and ``demand`` (T, J = N), deterministic for ``seed``."""
    hours = as_int("hours", hours, 1, MAX_HOURS, unit="hours")
    seed = as_seed("seed", seed)
    if start is not None and not isinstance(start, (str, np.datetime64)):
        raise OptionError(f"start={start!r}: expected an ISO 8601 hour such as '2022-09-22T00', got a "
                          f"{type(start).__name__}")
    try:
        t0 = np.datetime64(str(start if start is not None else params.start), "h")
    except (TypeError, ValueError) as exc:
        raise OptionError(f"start={start!r}: expected an ISO 8601 hour such as '2022-09-22T00' ({exc})") from None
    ts = t0 + np.arange(hours).astype("timedelta64[h]")
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {"timestamps": ts}
    for sig in SIGNALS:
        out[sig] = generate_series(getattr(params, sig), ts, rng)
    out["demand"] = generate_series([params.demand] * len(params.sites), ts, rng)
    return out


def _resolve_params(params: SyntheticParams | Mapping[str, Any] | os.PathLike | str | None) -> SyntheticParams:
    if params is None:
        return default_params()
    if isinstance(params, SyntheticParams):
        return params
    if isinstance(params, Mapping):
        return SyntheticParams.from_dict(params)
    return load_params(as_path("params", params))


def default_splits(hours: int) -> dict[str, tuple[int, int]]:
    """``train`` = all but the last ``SYNTHETIC_TEST_HOURS / SYNTHETIC_HOURS`` (1/6) of the hours,
    ``test`` = the rest (1200 h / 240 h at the default length)."""
    test = max(1, int(round(hours * SYNTHETIC_TEST_HOURS / SYNTHETIC_HOURS)))
    if hours < 2:
        return {}
    return {"train": (0, hours - test), "test": (hours - test, test)}


def synthetic_scenario(seed: int = 0, hours: int = SYNTHETIC_HOURS,
                       params: SyntheticParams | Mapping[str, Any] | os.PathLike | str | None = None,
                       start: str | None = None, name: str = "synthetic") -> Scenario:
    """The embedded default scenario: the ten eGLB-2022 sites, one region per site, K = 1.

    Args:
        seed: random seed; the same seed gives the same traces.
        hours: number of hourly slots to generate (default 1440 = 60 days; a year is 8760; at most
            :data:`MAX_HOURS`).
            The common ``horizon`` option of :func:`equiglb.load_scenario` then cuts the result.
        params: a :class:`SyntheticParams`, its dict, or a JSON file from
            ``python -m equiglb.traces calibrate``; default: the shipped eGLB-2022 calibration.
        start: first timestamp (UTC), default the calibration's start (2022-09-22T00).

    Static data as in eGLB-2022: capacity 1 MW per site, full connection, e = 1, PUE = 1, the eGLB
    weights, latency from the site coordinates. Splits: ``train`` = first 1200 h, ``test`` =
    last 240 h at the default length (5/6 and 1/6 of ``hours`` otherwise).
    """
    hours = as_int("hours", hours, 1, MAX_HOURS, unit="hours")
    seed = as_seed("seed", seed)
    if not isinstance(name, str):
        raise OptionError(f"name={name!r}: expected a str, got a {type(name).__name__}")
    p = _resolve_params(params)
    tr = generate_traces(p, hours, seed, start)
    N = len(p.sites)
    if p.sites == EGLB_SITES:
        coords, offsets = EGLB_COORDS_DEG, EGLB_UTC_OFFSET_H
        latency = latency_ms(coords, coords)
    else:
        latency, offsets = None, np.zeros(N)
    return Scenario(
        name=name, demand=tr["demand"], price=tr["price"], carbon=tr["carbon"], water=tr["water"],
        capacity=np.ones(N), mask=np.ones((N, N), bool), site_names=p.sites, region_names=p.sites,
        timestamps=tr["timestamps"], latency=latency, utc_offset_h=offsets,
        splits=default_splits(int(hours)), weights=EGLB_WEIGHTS,
        source=f"generated (seed={seed}, params: {p.source or 'custom'})",
    )
