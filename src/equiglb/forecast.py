"""Forecasts of the traces, shared by the environment's observations, model-predictive control and the
residual action modes (docs/forecasts.md).

:class:`Forecaster` ``(scenario, model, seed, scale, window)`` issues, at slot t, the forecasts of slots
t+1 .. t+H of the four signals (price USD/MWh, carbon t/MWh, water m³/MWh, demand load units); the
value of slot t itself (lead 0) is the observed one. Models (:data:`FORECAST_MODELS`):

* ``"perfect"``: the truth. An **oracle**, kept for upper bounds and labelled so in every table.
* ``"calibrated"``: the truth times a multiplicative error, ``forecast = actual · exp(e)``, whose
  mean absolute percentage error (MAPE) by signal, site/region and lead time matches the published
  figures collected in :data:`CALIBRATION_SOURCES` (docs/forecasts.md has the table, measured by
  ``benchmarks/forecast_value.py --calibration``). The log error ``e`` of target slot s at lead h is a
  random walk in issue time plus an AR(1) in target time (see :class:`Forecaster`), Student-t tailed
  (3 degrees of freedom) for prices, clipped to ``|e| <= ln 10`` (a forecast is never off by more than
  a factor of ten). Multiplicative errors keep the sign of prices and keep the other signals >= 0.
* ``"persistence"``: the same hour of the latest observed day, ``actual[s - 24·ceil((s - t)/24)]``
  (what a forecaster must beat); a target whose same hour lies before the window's first slot (the
  window's first day) gets the value observed at t (no data before the window is read).

Every forecast is a deterministic function of (seed, issue slot): the errors are drawn from a
counter-based generator keyed on (seed, signal, site or region name, target hour in UTC, innovation
lead), so the environment and a baseline that use the same seed see identical forecasts, whatever window
each of them holds. No forecast reads past the last slot of its window (the environment's split, a
baseline's scenario window): target slots past it repeat that slot's value, as with perfect forecasts.

The legacy :func:`forecast` (independent Gaussian noise per slot and lead, ``noise_std·sqrt(h)``) is
kept for the ``forecast_noise`` option, with its old meaning.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from equiglb.validate import OptionError, as_float, as_int, as_seed, one_of

if TYPE_CHECKING:
    from equiglb.scenario import Scenario

__all__ = ["forecast", "Forecaster", "Forecast", "ForecastError", "FORECAST_MODELS", "SIGNALS", "target_mape",
           "zone_of", "MAX_LOG_ERROR", "AR_RHO", "CALIBRATION_SOURCES", "information_label",
           "load_forecasts", "IssuedForecasts"]

#: the forecast models of :class:`Forecaster` (``"noise"``, the legacy option, is handled by the callers)
FORECAST_MODELS: tuple[str, ...] = ("perfect", "calibrated", "persistence")
#: the signals, in the order of :meth:`Forecaster.table`'s columns blocks
SIGNALS: tuple[str, ...] = ("price", "carbon", "water", "demand")
#: the largest absolute log error: a calibrated forecast is within a factor of 10 of the truth
MAX_LOG_ERROR = math.log(10.0)
#: lag-1 correlation (in target time) of the innovations of the calibrated errors (measured on hourly carbon: 0.74-0.98)
AR_RHO = 0.9
#: taps of the AR(1) filter (truncated at rho**32 = 3 %, so that every target's error is a finite sum)
AR_TAPS = 32
#: degrees of freedom of the Student-t tail of the price errors
PRICE_DOF = 3.0


class ForecastError(OptionError):
    """A forecast request or a user forecast file is invalid (the message names the value or file and row)."""


# ---------------------------------------------------------------------------------------------------------------
# Calibration targets (published figures; docs/forecasts.md cites them)

#: CarbonCast day-ahead carbon-intensity forecasts (Maji et al., BuildSys 2022; carbonfirst/CarbonCast,
#: data/<REGION>/<REGION>_MAPE_iter0.txt): mean MAPE in % of day 1, 2, 3, 4 after issue, by zone code
CARBONCAST_MAPE_PCT: dict[str, tuple[float, float, float, float]] = {
    "US-MIDA-PJM": (2.7, 3.4, 3.8, 4.0), "US-NE-ISNE": (4.6, 7.1, 8.6, 9.6), "SE": (6.0, 7.9, 8.4, 9.0),
    "US-CAL-CISO": (9.7, 12.4, 13.2, 13.7), "US-MIDW-AECI": (9.9, 13.1, 14.2, 14.5),
    "US-TEX-ERCO": (11.5, 12.6, 13.1, 13.2), "US-NW-BPAT": (11.9, 17.4, 20.4, 22.3),
    "DE": (13.3, 17.2, 18.2, 19.7), "ES": (23.6, 25.9, 26.7, 27.2),
}
#: 24-hour persistence MAPE (%) of Electricity Maps LCA carbon intensity, sustain-cluster 2023 hourly data
CARBON_PERSISTENCE_PCT: dict[str, float] = {"US-MIDA-PJM": 4.1, "US-CAL-CISO": 8.7, "US-TEX-ERCO": 17.9,
                                            "DE-LU": 23.1, "GB": 32.0, "CA-ON": 38.5, "JP-TK": 4.9, "SG": 0.7}
#: 24-hour persistence mean absolute percentage error (%) of day-ahead prices, sustain-cluster 2023 data
PRICE_PERSISTENCE_PCT: dict[str, float] = {"JP-TK": 25.0, "US-CAL-CISO": 26.0, "SG": 35.0, "US-MIDA-PJM": 36.0,
                                           "US-TEX-ERCO": 38.0, "DE-LU": 59.0, "AU-VIC": 124.0}
#: ServeGen m-large inference demand, hourly sums: persistence MAPE (%) at 1 hour and at 24 hours
DEMAND_MAPE_PCT: tuple[float, float] = (14.2, 39.9)
#: zone codes of the site names of the eGLB-2022 and synthetic scenarios (the grids the eGLB sites are in);
#: Georgia, Nevada, Belgium, the Netherlands and Denmark have no published figure: defaults
SITE_ZONES: dict[str, str] = {"Texas": "US-TEX-ERCO", "Virginia": "US-MIDA-PJM", "Germany": "DE-LU",
                              "Japan": "JP-TK", "Singapore": "SG", "California": "US-CAL-CISO"}
#: zone codes that name the same grid in the two tables
_ZONE_ALIASES: dict[str, str] = {"DE-LU": "DE", "DE": "DE-LU"}

CALIBRATION_SOURCES = {
    "carbon": "CarbonCast day 1-4 MAPE (Maji et al. 2022) where the zone has one, else its 24-h persistence "
              "MAPE (Electricity Maps 2023), else the median CarbonCast day-1 figure",
    "water": "the site's carbon-intensity figure (the off-site water intensity follows the same grid mix)",
    "price": "24-h persistence mean APE of the zone's day-ahead price (2023), else the median of those zones",
    "demand": "ServeGen m-large hourly sums: 14.2 % one hour ahead, 39.9 % one day ahead (persistence)",
}


def zone_of(name: str) -> str:
    """The grid zone code of a site name: the name itself (Electricity Maps zone codes such as ``"DE-LU"``),
    or :data:`SITE_ZONES`' code of an eGLB site name (``"Texas"`` -> ``"US-TEX-ERCO"``)."""
    return SITE_ZONES.get(name, name)


def _lookup(table: dict, zone: str):
    for z in (zone, _ZONE_ALIASES.get(zone, ""), zone.split("-")[0] if zone.startswith("SE-") else ""):
        if z and z in table:
            return table[z]
    return None


#: exponent of the lead-time growth within a day, MAPE(h) = MAPE(24 h)·(h/24)^LEAD_EXPONENT: the one
#: measured one-hour/one-day pair (ServeGen demand, 14.2 % and 39.9 %), used for every signal
LEAD_EXPONENT = math.log(DEMAND_MAPE_PCT[1] / DEMAND_MAPE_PCT[0]) / math.log(24.0)
#: day-d / day-1 ratios (d = 1..4) used where a zone has no multi-day figure: the median over CarbonCast's zones
DEFAULT_DAY_RATIOS: tuple[float, ...] = tuple(
    float(np.median([v[d] / v[0] for v in CARBONCAST_MAPE_PCT.values()])) for d in range(4))
DEFAULT_CARBON_PCT = float(np.median([v[0] for v in CARBONCAST_MAPE_PCT.values()]))
DEFAULT_PRICE_PCT = float(np.median(list(PRICE_PERSISTENCE_PCT.values())))


def _day_targets(signal: str, name: str) -> tuple[tuple[float, ...], str]:
    """MAPE (fraction) at 24, 48, 72, 96 h ahead for a series, and where the figure comes from."""
    zone = zone_of(name)
    if signal in ("carbon", "water"):
        cc = _lookup(CARBONCAST_MAPE_PCT, zone)
        if cc is not None:
            return tuple(v / 100 for v in cc), f"CarbonCast {zone}"
        p = _lookup(CARBON_PERSISTENCE_PCT, zone)
        src = f"24-h persistence {zone}" if p is not None else "default (median CarbonCast day 1)"
        base = (p if p is not None else DEFAULT_CARBON_PCT) / 100
    elif signal == "price":
        p = _lookup(PRICE_PERSISTENCE_PCT, zone)
        src = f"24-h persistence {zone}" if p is not None else "default (median of the zones)"
        base = (p if p is not None else DEFAULT_PRICE_PCT) / 100
    elif signal == "demand":
        base, src = DEMAND_MAPE_PCT[1] / 100, "ServeGen m-large"
    else:
        raise ForecastError(f"signal={signal!r}: expected one of {list(SIGNALS)}")
    return tuple(base * r for r in DEFAULT_DAY_RATIOS), src


def target_mape(signal: str, name: str, leads_h: np.ndarray | Sequence[int]) -> np.ndarray:
    """The calibrated model's target MAPE (a fraction) of ``signal`` at site/region ``name`` for each lead
    time in hours (>= 1): ``MAPE(24 h)·(h/24)^LEAD_EXPONENT`` within a day, the day figures at 24, 48, 72 and
    96 h with linear interpolation between them, the day-4 figure beyond."""
    days, _ = _day_targets(signal, name)
    h = np.asarray(leads_h, dtype=np.float64)
    within = days[0] * np.power(np.minimum(h, 24.0) / 24.0, LEAD_EXPONENT)
    beyond = np.interp(h, [24.0, 48.0, 72.0, 96.0], days)
    return np.where(h <= 24.0, within, beyond)


def target_source(signal: str, name: str) -> str:
    """Where the target of :func:`target_mape` for this series comes from (a zone's figure or a default)."""
    return _day_targets(signal, name)[1]


# ---------------------------------------------------------------------------------------------------------------
# From a target MAPE to the standard deviation of the log error, for the clipped error distributions

_N_QUANTILES = 20000


@lru_cache(maxsize=4)
def _mape_curve(heavy: bool) -> tuple[np.ndarray, np.ndarray]:
    """(sigma grid, MAPE = E|exp(clip(sigma·Z)) - 1| on it) for Z standard normal or unit-variance Student-t."""
    from scipy import special  # noqa: PLC0415  (scipy.special loads when forecasts are made, not on import)

    u = (np.arange(_N_QUANTILES) + 0.5) / _N_QUANTILES
    z = special.stdtrit(PRICE_DOF, u) / math.sqrt(PRICE_DOF / (PRICE_DOF - 2.0)) if heavy else special.ndtri(u)
    sig = np.concatenate([[0.0], np.geomspace(1e-4, 30.0, 600)])
    mape = np.array([np.abs(np.expm1(np.clip(s * z, -MAX_LOG_ERROR, MAX_LOG_ERROR))).mean() for s in sig])
    return sig, np.maximum.accumulate(mape)


def sigma_for_mape(mape: np.ndarray, heavy: bool) -> np.ndarray:
    """Standard deviation of the log error whose clipped multiplicative error has mean absolute value ``mape``."""
    sig, curve = _mape_curve(heavy)
    m = np.asarray(mape, dtype=np.float64)
    if np.any(m >= curve[-1]):
        raise ForecastError(f"target MAPE {float(m.max()):.3g} is beyond what errors clipped at a factor of 10 "
                            f"reach ({curve[-1]:.3g})")
    return np.interp(m, curve, sig)


# ---------------------------------------------------------------------------------------------------------------
# Counter-based random numbers: a hash of (key, target hour, innovation lead)

_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + _GOLD
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _key(seed: int, signal: str, name: str) -> np.uint64:
    digest = hashlib.blake2b(f"{seed}|{signal}|{name}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _uniform(keys: np.ndarray, hours: np.ndarray, leads: np.ndarray) -> np.ndarray:
    """U(0, 1) of shape (len(hours), len(leads), len(keys)), a pure function of (key, hour, lead)."""
    h = _mix(hours.astype(np.uint64)[:, None, None] ^ _mix(leads.astype(np.uint64)[None, :, None]))
    z = _mix(keys[None, None, :] ^ h)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2.0 ** 53)


_AR_WEIGHTS = AR_RHO ** np.arange(AR_TAPS) / math.sqrt(float(np.sum(AR_RHO ** (2 * np.arange(AR_TAPS)))))


@dataclass(frozen=True)
class Forecast:
    """Forecasts issued at one slot for leads 1..H: ``price`` (H, N) USD/MWh, ``carbon`` (H, N) t/MWh,
    ``water`` (H, N) m³/MWh, ``demand`` (H, J) load units."""

    price: np.ndarray
    carbon: np.ndarray
    water: np.ndarray
    demand: np.ndarray


class Forecaster:
    """Forecasts of a scenario's window, one model, deterministic given (seed, issue slot).

    The calibrated log error of series r (a site's price, carbon or water, a region's demand) for target
    slot s at lead h = s - t is

        e_r(s, h) = W_r(s) · Σ_{k=1..h} a_r(k) · η_r(s, k),    a_r(k)² = σ_r(k)² - σ_r(k-1)²,

    clipped to ±ln 10, where σ_r(h) = scale × the log-error deviation whose MAPE is
    :func:`target_mape` (Gaussian, or Student-t for prices), η_r(·, k) is an AR(1) sequence in the target
    hour with lag-1 correlation :data:`AR_RHO` (a finite filter of :data:`AR_TAPS` taps of hashed standard
    normals), and W_r(s) = 1 except for prices, where it is a per-target-hour scale mixture
    sqrt((ν-2)/χ²_ν) that makes the error Student-t with ν = 3 (a hard-to-forecast hour, a spike, is
    missed at every lead). Hence:

    * the error grows with the lead time (its deviation is σ_r(h));
    * consecutive issues of one target are strongly correlated: the forecast made at t+1 for slot s
      shares every innovation but one with the one made at t, corr = σ_r(h-1)/σ_r(h) (0.80 at h = 2,
      0.99 at h = 24);
    * along one issued trajectory the errors are correlated across lead hours: corr(e(t+h, h),
      e(t+h+1, h+1)) ≈ AR_RHO·σ_r(h)/σ_r(h+1) (0.72-0.89, as measured for carbon, 0.74-0.98);
    * a target's error never depends on the issue time other than through its lead, nor on any data.

    Args:
        scenario: the scenario (its site and region names key the errors and the calibration).
        model: one of :data:`FORECAST_MODELS`.
        seed: seed of the calibrated errors (integer >= 0).
        scale: multiplier of the calibrated log errors' deviation (>= 0; 0 is perfect, 1 the calibration).
        window: (start, length) of the slots forecasts may read (default: the whole scenario); a
            forecast never reads a slot after the window's last one, persistence none before its first.

    Raises:
        OptionError (ForecastError): an unknown model, a negative or non-finite scale, a bad seed or window.
    """

    def __init__(self, scenario: Scenario, model: str = "calibrated", seed: int = 0, scale: float = 1.0,
                 window: tuple[int, int] | None = None):
        self.model = one_of("forecast_model", model, FORECAST_MODELS)
        self.seed = as_seed("forecast_seed", seed)
        self.scale = as_float("forecast_scale", scale, lo=0.0, hi=100.0)
        start, length = (0, scenario.T) if window is None else window
        self.first = as_int("window start", start, 0, scenario.T - 1, unit="slots")
        length = as_int("window length", length, 1, scenario.T - self.first, unit="slots")
        self.last = self.first + length - 1
        self.scenario = scenario
        self.N, self.J = scenario.N, scenario.J
        # the series in the order of the signals: price, carbon, water (N each), demand (J)
        self.names = [(g, n) for g in SIGNALS[:3] for n in scenario.site_names] + \
                     [("demand", n) for n in scenario.region_names]
        self.truth = np.concatenate([scenario.price, scenario.carbon, scenario.water, scenario.demand], axis=1)
        self._keys = np.array([_key(self.seed, g, n) for g, n in self.names], dtype=np.uint64)
        self._heavy = np.array([g == "price" for g, _ in self.names])
        self._hour0 = int(scenario.timestamps[0].astype("datetime64[h]").astype(np.int64))
        self._sigma = np.zeros((0, len(self.names)))          # σ_r(h) for h = 0..H_max
        self._blocks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._block_h = 0

    @property
    def max_horizon(self) -> int:
        """The longest horizon :meth:`issue` accepts (hours): the window's length."""
        return self.last - self.first + 1

    def offset_of(self, window: Scenario, option: str = "forecast_model") -> int:
        """The forecaster's slot of ``window``'s first slot (matched by UTC hour); raises :class:`ForecastError`
        (naming ``option``) unless every slot of ``window`` is an issue slot of this forecaster's window."""
        hour = int(window.timestamps[0].astype("datetime64[h]").astype(np.int64))
        offset = hour - self._hour0
        if offset < self.first or offset + window.T - 1 > self.last:
            raise ForecastError(f"{option}: the forecaster covers {self.scenario.timestamps[self.first]} .. "
                                f"{self.scenario.timestamps[self.last]} UTC and cannot forecast the window "
                                f"{window.timestamps[0]} .. {window.timestamps[-1]} UTC of scenario {window.name!r}")
        return offset

    @property
    def label(self) -> str:
        """The model's name as tables show it (``"perfect (oracle)"`` for the truth)."""
        if self.model == "perfect":
            return "perfect (oracle)"
        if self.model == "calibrated" and self.scale != 1.0:
            return f"calibrated x{self.scale:g}"
        return self.model

    # ----------------------------------------------------------------------------------- calibrated errors
    def sigma(self, horizon: int) -> np.ndarray:
        """σ_r(h) for h = 0..horizon (rows) and every series (columns): the log errors' deviations."""
        if self._sigma.shape[0] <= horizon:
            h = np.arange(1, horizon + 1)
            cols = []
            for (g, n), heavy in zip(self.names, self._heavy):
                cols.append(sigma_for_mape(target_mape(g, n, h), bool(heavy)))
            s = np.zeros((horizon + 1, len(self.names)))
            s[1:] = np.maximum.accumulate(np.stack(cols, axis=1), axis=0) * self.scale
            self._sigma = s
        return self._sigma[:horizon + 1]

    _BLOCK = 128
    #: memory the cached error blocks may take (bytes)
    CACHE_BYTES = 256 * 2 ** 20

    def _block(self, b: int, H: int) -> np.ndarray:
        """Log errors e[s, h] (BLOCK, H + 1, series) of target slots b·BLOCK .. (b+1)·BLOCK - 1, h = 0..H."""
        from scipy import special  # noqa: PLC0415

        if H > self._block_h:
            self._blocks.clear()
            self._block_h = max(H, 24)
        H = self._block_h
        if b in self._blocks:
            self._blocks.move_to_end(b)
            return self._blocks[b]
        B, M = self._BLOCK, AR_TAPS
        hours = self._hour0 + np.arange(b * B - M + 1, (b + 1) * B, dtype=np.int64)
        xi = special.ndtri(_uniform(self._keys, hours, np.arange(1, H + 1)))    # (B+M-1, H, S)
        eta = np.zeros((B,) + xi.shape[1:])
        for m in range(M):                                                      # a fixed summation order
            eta += _AR_WEIGHTS[m] * xi[M - 1 - m:M - 1 - m + B]
        sig = self.sigma(H)
        a = np.sqrt(np.maximum(np.diff(sig ** 2, axis=0), 0.0))                # (H, S)
        e = np.zeros((B, H + 1, len(self.names)))
        np.cumsum(eta * a[None], axis=1, out=e[:, 1:])
        if self._heavy.any():
            u = _uniform(self._keys[self._heavy], hours[M - 1:], np.zeros(1, dtype=np.int64))[:, 0, :]
            chi2 = special.chdtri(PRICE_DOF, u)
            e[:, :, self._heavy] *= np.sqrt((PRICE_DOF - 2.0) / chi2)[:, None, :]
        np.clip(e, -MAX_LOG_ERROR, MAX_LOG_ERROR, out=e)
        # least recently used blocks go first, beyond CACHE_BYTES (at least four blocks are kept)
        while self._blocks and len(self._blocks) >= max(4, self.CACHE_BYTES // e.nbytes):
            self._blocks.popitem(last=False)
        self._blocks[b] = e
        return e

    def log_errors(self, t: int, horizon: int) -> np.ndarray:
        """The calibrated log errors e(t+h, h) (horizon, series) of the forecast issued at ``t``."""
        out = np.empty((horizon, len(self.names)))
        s = t + 1 + np.arange(horizon)
        B = self._BLOCK
        for b in np.unique(s // B):
            sel = (s // B) == b
            blk = self._block(int(b), horizon)
            out[sel] = blk[s[sel] - b * B, (s - t)[sel]]
        return out

    def target_log_errors(self, s: int, horizon: int) -> np.ndarray:
        """The calibrated log errors e(s, h), h = 1..horizon, of the forecasts of target slot ``s`` issued at
        s - h (horizon, series): one row of the error block, the errors :meth:`log_errors` gives issue by issue."""
        b = s // self._BLOCK
        return self._block(b, horizon)[s - b * self._BLOCK, 1:horizon + 1].copy()

    # ----------------------------------------------------------------------------------- issuing
    def _check(self, t: int, horizon: int) -> tuple[int, int]:
        t = as_int("issue slot t", t, self.first, self.last, unit="slots")
        horizon = as_int("horizon", horizon, unit="hours")
        if horizon < 0:
            as_int("horizon", horizon, 0, self.last - self.first + 1, unit="hours")     # raises, with the range
        if horizon > self.last - self.first + 1:
            raise ForecastError(f"horizon={horizon} h is longer than the forecaster's window "
                                f"({self.last - self.first + 1} h of scenario {self.scenario.name!r}): there is "
                                f"no data to forecast that far")
        return t, horizon

    def values(self, t: int, horizon: int) -> np.ndarray:
        """The forecasts issued at slot ``t`` of slots t+1 .. t+horizon, (horizon, 3N + J) in the order price,
        carbon, water (N each), demand (J); native units. No check of ``t`` and ``horizon`` (see :meth:`issue`)."""
        s = t + 1 + np.arange(horizon)
        if self.model == "persistence":
            src = s - 24 * np.ceil((s - t) / 24.0).astype(np.int64)
            src = np.where(src < self.first, t, src)
            return self.truth[src].copy()
        out = self.truth[np.minimum(s, self.last)].copy()
        if self.model == "calibrated" and self.scale > 0 and horizon > 0:
            out *= np.exp(self.log_errors(t, horizon))
        return out

    def issue(self, t: int, horizon: int) -> Forecast:
        """The forecasts made at slot ``t`` (a slot of the window) of slots t+1 .. t+horizon, by signal."""
        t, horizon = self._check(t, horizon)
        v = self.values(t, horizon)
        N = self.N
        return Forecast(price=v[:, :N], carbon=v[:, N:2 * N], water=v[:, 2 * N:3 * N], demand=v[:, 3 * N:])

    def table(self, ts: np.ndarray, horizon: int) -> np.ndarray:
        """:meth:`values` of every issue slot in ``ts``: (len(ts), horizon, 3N + J), the same numbers (bit for
        bit) computed for all issue slots at once."""
        ts = np.asarray(ts, dtype=np.int64)
        if type(self).values is not Forecaster.values:           # a subclass's own values (a file)
            out = np.empty((len(ts), horizon, len(self.names)))
            for k, t in enumerate(ts.tolist()):
                out[k] = self.values(int(t), horizon)
            return out
        lead = np.arange(1, horizon + 1)
        s = ts[:, None] + lead[None, :]                          # (L, H) target slots
        if self.model == "persistence":
            src = s - 24 * ((lead + 23) // 24)[None, :]
            src = np.where(src < self.first, ts[:, None], src)
            return self.truth[src]
        out = self.truth[np.minimum(s, self.last)]                # (L, H, S), a new array
        if self.model == "calibrated" and self.scale > 0 and horizon > 0:
            e = np.empty(out.shape)
            B = self._BLOCK
            blocks = s // B
            for b in np.unique(blocks):
                sel = blocks == b
                blk = self._block(int(b), horizon)
                e[sel] = blk[s[sel] - b * B, np.broadcast_to(lead, s.shape)[sel]]
            out *= np.exp(e)
        return out


def information_label(model: str, horizons: str) -> str:
    """What a policy knew, as tables show it: ``"forecasts (calibrated, 24 h)"``; the oracle says so."""
    shown = "perfect (oracle)" if model == "perfect" else model
    return f"forecasts ({shown}, {horizons})"


# ---------------------------------------------------------------------------------------------------------------
# User forecasts: a CSV file of issued forecasts

_CSV_COLUMNS = ("issue_time", "lead_h", "signal", "name", "value")


class IssuedForecasts(Forecaster):
    """Forecasts read from a file (:func:`load_forecasts`): the same :meth:`issue` as :class:`Forecaster`."""

    def __init__(self, scenario: Scenario, values: np.ndarray, first: int, source: str):
        super().__init__(scenario, "perfect", window=(first, values.shape[0]))
        self._values = values          # (issue slots of the window, H, 3N + J)
        self.model = "file"
        self.source = source

    @property
    def label(self) -> str:
        return f"file {os.path.basename(self.source)}"

    @property
    def max_horizon(self) -> int:
        return int(self._values.shape[1])

    def _check(self, t: int, horizon: int) -> tuple[int, int]:
        t, horizon = super()._check(t, horizon)
        if horizon > self._values.shape[1]:
            raise ForecastError(f"horizon={horizon} h: {self.source} has forecasts up to {self._values.shape[1]} h")
        return t, horizon

    def values(self, t: int, horizon: int) -> np.ndarray:
        return self._values[t - self.first, :horizon].copy()


def load_forecasts(path: os.PathLike | str, scenario: Scenario, window: tuple[int, int] | None = None,
                   horizon: int | None = None) -> IssuedForecasts:
    """Read issued forecasts from a CSV file with the columns ``issue_time`` (UTC hour, ISO 8601),
    ``lead_h`` (1..H), ``signal`` (price, carbon, water, demand), ``name`` (a site for the first three, a
    region for demand) and ``value`` (the signal's unit), one row per forecast.

    Every issue slot of ``window`` (default: the whole scenario) must have a forecast for every lead
    1..H, signal and site/region; H is ``horizon`` or the largest lead in the file. Raises
    :class:`ForecastError` naming the file (and row) for a missing column, an unparseable or non-finite
    value, an unknown signal or name, a lead < 1, a duplicate, or a missing issue time or lead.
    """
    import csv  # noqa: PLC0415

    path = os.fspath(path)
    start, length = (0, scenario.T) if window is None else window
    if not os.path.isfile(path):
        raise ForecastError(f"{path}: no such forecast file")
    names = [(g, n) for g in SIGNALS[:3] for n in scenario.site_names] + [("demand", n) for n in scenario.region_names]
    col = {k: c for c, k in enumerate(names)}
    rows: list[tuple[int, int, int, float]] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != list(_CSV_COLUMNS):
            raise ForecastError(f"{path}: the header must be {','.join(_CSV_COLUMNS)}, got {header}")
        t0 = scenario.timestamps[0].astype("datetime64[h]")
        for line, rec in enumerate(reader, start=2):
            if len(rec) != len(_CSV_COLUMNS):
                raise ForecastError(f"{path}, row {line}: expected {len(_CSV_COLUMNS)} columns, got {len(rec)}")
            try:
                issue = int((np.datetime64(rec[0].strip().rstrip("Z"), "h") - t0).astype(np.int64))
            except ValueError:
                raise ForecastError(f"{path}, row {line}: issue_time={rec[0]!r} is not a UTC hour") from None
            try:
                lead, value = int(rec[1]), float(rec[4])
            except ValueError:
                raise ForecastError(f"{path}, row {line}: lead_h={rec[1]!r} and value={rec[4]!r} must be "
                                    f"an integer and a number") from None
            key = (rec[2].strip(), rec[3].strip())
            if key not in col:
                raise ForecastError(f"{path}, row {line}: signal={key[0]!r} name={key[1]!r} is not a series of "
                                    f"scenario {scenario.name!r} (signals {list(SIGNALS)}; sites "
                                    f"{list(scenario.site_names)}; regions {list(scenario.region_names)})")
            if lead < 1 or not math.isfinite(value):
                raise ForecastError(f"{path}, row {line}: lead_h={lead} must be >= 1 and value={value!r} finite")
            if key[0] in ("carbon", "water", "demand") and value < 0:
                raise ForecastError(f"{path}, row {line}: {key[0]} value={value!r} must be >= 0")
            rows.append((issue, lead, col[key], value))
    if not rows:
        raise ForecastError(f"{path}: no forecast rows")
    arr = np.array(rows, dtype=np.float64)
    H = int(arr[:, 1].max()) if horizon is None else as_int("horizon", horizon, 1, unit="hours")
    out = np.full((length, H, len(names)), np.nan)
    inside = (arr[:, 0] >= start) & (arr[:, 0] < start + length) & (arr[:, 1] <= H)
    sel = arr[inside]
    it, ld, c = (sel[:, 0] - start).astype(int), sel[:, 1].astype(int) - 1, sel[:, 2].astype(int)
    flat = np.ravel_multi_index((it, ld, c), out.shape)
    if len(np.unique(flat)) != len(flat):
        raise ForecastError(f"{path}: a forecast (issue_time, lead_h, signal, name) is given twice")
    out.ravel()[flat] = sel[:, 3]
    missing = np.argwhere(np.isnan(out))
    if len(missing):
        i, h, c = missing[0]
        g, n = names[c]
        raise ForecastError(f"{path}: no forecast issued at {scenario.timestamps[start + i]} UTC for lead "
                            f"{h + 1} h of {g} at {n!r} ({len(missing)} missing of {out.size}; the window needs "
                            f"every issue hour of slots {start}..{start + length - 1}, leads 1..{H})")
    return IssuedForecasts(scenario, out, start, path)


# ---------------------------------------------------------------------------------------------------------------
# The legacy noise model (option forecast_noise)

def forecast(series: np.ndarray, t: int, horizon: int, noise_std: float = 0.0,
             rng: np.random.Generator | None = None, nonnegative: bool = True) -> np.ndarray:
    """Forecast of ``series[t+1 .. t+horizon]`` (shape (horizon, ...)) made at slot ``t``, with the legacy
    noise model of the ``forecast_noise`` option:

        value[t+h] * (1 + noise_std * sqrt(h) * ε),   ε ~ N(0, 1) independent per (t, h, series),

    clipped at 0 for signals that cannot be negative (demand, carbon, water); prices keep their sign.
    ``noise_std = 0`` is a perfect forecast. Slots past the end of the series repeat the last value.

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
