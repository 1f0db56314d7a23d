"""The ``world`` scenario: two years of real hourly signals at 15 sites, and K = 3 language models.

``load_scenario("world", data_dir=...)`` (and ``"world-partial"``) build a Scenario from two public data
sets, each pinned at one upstream commit and checked file by file against its manifest
(:mod:`equiglb.traces.fetch`):

* ``sustain-cluster`` (HewlettPackard/sustain-cluster): hourly carbon intensity of Electricity Maps (ODbL
  1.0), day-ahead prices in USD/MWh (Electricity Maps / GridStatus.io) and Open-Meteo weather (CC BY 4.0);
* ``servegen`` (alibaba/ServeGen, Apache-2.0): request rates of three production language models.

Every derivation below is documented in docs/data.md (section *The world scenario*); the constants are
module attributes so that a reader can check them.

* **Sites** = the 15 zones with carbon, price and weather (:data:`WORLD_ZONES`, Electricity Maps zone
  codes; GB has no prices upstream). **Regions** = the same zones (a gateway at each, as in eGLB).
* **Time**: hourly, 2023-01-01 00:00 UTC .. 2024-12-31 23:00 UTC (T = 17,544).
* **Carbon** c (t/MWh): the Electricity Maps lifecycle (LCA) intensity, or ``carbon="direct"``; g/kWh / 1000.
* **Price** p (USD/MWh): the standardized day-ahead series, negative prices kept.
* **Water** w (m³/MWh = L/kWh) = on-site WUE from the wet-bulb temperature (the eGLB study's formula,
  :func:`onsite_wue`; wet bulb by Stull 2011, :func:`wet_bulb_c`) + an *approximate* off-site
  energy-water intensity from the low-carbon and renewable shares (:func:`offsite_ewif`). PUE = 1, as in
  eGLB, so facility energy = IT energy.
* **Weather time base**: the Open-Meteo files hold local times at the fixed offset ``utc_offset_seconds``;
  they are aligned to UTC by subtracting it (interpolating half-hour offsets, IN-WE), and the hours at the
  two ends that the files' local years do not cover take the value of the same hour one day later / earlier.
* **Demand** λ (load units per hour): the m-large ServeGen trace (summed over its 162 clients, hourly),
  14 real days, placed in each region's local time, resampled to two years by drawing, for every local
  calendar day, one of the trace's weekday days (or weekend days for a Saturday or Sunday), seeded
  (``demand_seed``), independently per region; scaled by :data:`DEMAND_WEIGHTS` (population served)
  so that the mean total demand is :data:`MEAN_TOTAL_DEMAND` load units.
* **Models** (large, mid, small): e = (1, 0.199, 0.103) MWh per load unit, s = (0, 0.165, 0.283), the
  LLaMA-1 65B/13B/7B figures of :mod:`equiglb.traces.multimodel` (sources there); every site hosts all three.
* **Capacity** M[i] = 1.25 × peak λ[i] + 0.5 × mean peak (MW; the large model's e = 1): each region's own
  peak fits at its own site with 25 % headroom, and every site has spare room for shifted load.
* **world-partial**: region j may use site i only on the same or a neighbouring continent, neighbours
  being the continent pairs whose measured inter-datacenter RTT is at most 150 ms in both clouds of
  Persico et al. (GLOBECOM 2016): Europe–North America (70 ms) and North America–South America (120 and
  130 ms). ZA (Africa) has no figure in that study and is connected only to itself.
* **Splits**: ``train`` = 2023, ``val`` = 2024-01..06, ``test`` = 2024-07..12, and one split per calendar
  month, ``"2023-01"`` .. ``"2024-12"`` (the monthly protocol's episodes, :data:`MONTHS`).
* **Weights**: eGLB's μ_c = 1500 USD/t, μ_w = 60 USD/m³, q = ∞, and μ_s (see :func:`social_weight_usd`).
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from equiglb.scenario import Scenario, Weights
from equiglb.traces.csvio import TraceError
from equiglb.traces.datadir import dataset_dir
from equiglb.traces.fetch import PINNED_DATASETS, verify_dataset_files
from equiglb.traces.multimodel import MMLU_ACCURACY, MODEL_PARAMS_B
from equiglb.traces.sites import latency_ms
from equiglb.validate import OptionError, as_bool, as_float_array, as_seed, one_of

__all__ = ["WORLD_ZONES", "ALL_ZONES", "NO_PRICE_ZONES", "YEARS", "CONTINENT", "NEIGHBOURS", "RTT_MS",
           "RTT_LIMIT_MS", "MODEL_NAMES", "ENERGY_PER_UNIT", "QUALITY_LOSS", "DEMAND_WEIGHTS", "MEAN_TOTAL_DEMAND",
           "CARBON_OPTIONS", "MONTHS", "WORLD_SPLITS", "EPISODE_HOURS", "world_scenario", "wet_bulb_c",
           "onsite_wue", "offsite_ewif", "partial_mask", "month_splits", "servegen_hourly", "weekend_days",
           "load_zone_signals", "social_weight_usd", "WEATHER_TIME_BASE"]

#: Zones of sustain-cluster with carbon, price and weather, alphabetical: the sites and the regions.
WORLD_ZONES: tuple[str, ...] = ("AU-NSW", "AU-VIC", "BR-SP", "CA-ON", "CL-SIC", "DE-LU", "IN-WE", "JP-TK", "KR",
                                "SG", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS", "US-TEX-ERCO", "ZA")
#: Every zone of the data set, and those without prices (not usable as a site).
ALL_ZONES: tuple[str, ...] = tuple(sorted((*WORLD_ZONES, "GB")))
NO_PRICE_ZONES: tuple[str, ...] = ("GB",)
#: Years of the data set.
YEARS: tuple[int, ...] = (2023, 2024)

#: Continent of each zone (SOURCE.md of sustain-cluster): EU, NA (North America), SA, AP, AF.
CONTINENT: dict[str, str] = {
    "AU-NSW": "AP", "AU-VIC": "AP", "BR-SP": "SA", "CA-ON": "NA", "CL-SIC": "SA", "DE-LU": "EU", "GB": "EU",
    "IN-WE": "AP", "JP-TK": "AP", "KR": "AP", "SG": "AP", "US-CAL-CISO": "NA", "US-MIDA-PJM": "NA",
    "US-NY-NYIS": "NA", "US-TEX-ERCO": "NA", "ZA": "AF"}
#: Measured inter-datacenter round-trip times between continents (ms), (AWS, Azure): V. Persico, A. Botta,
#: A. Montieri, A. Pescapè, "A First Look at Public-Cloud Inter-Datacenter Network Performance", IEEE
#: GLOBECOM 2016, Fig. 6. Africa has no figure there.
RTT_MS: dict[frozenset[str], tuple[float, float]] = {
    frozenset({"EU", "NA"}): (70.0, 70.0), frozenset({"EU", "SA"}): (180.0, 180.0),
    frozenset({"EU", "AP"}): (190.0, 315.0), frozenset({"NA", "SA"}): (120.0, 130.0),
    frozenset({"NA", "AP"}): (240.0, 230.0), frozenset({"SA", "AP"}): (350.0, 350.0)}
#: Two continents are neighbours when the RTT is at most this in both clouds (ms).
RTT_LIMIT_MS = 150.0
#: The neighbouring continent pairs that follow (EU-NA, NA-SA).
NEIGHBOURS: frozenset[frozenset[str]] = frozenset(p for p, v in RTT_MS.items() if max(v) <= RTT_LIMIT_MS)

#: The three models, largest first; m-large / m-mid / m-small of ServeGen do not publish their sizes, so the
#: energy and quality figures are those of LLaMA-1 65B / 13B / 7B (equiglb.traces.multimodel has the sources).
MODEL_NAMES: tuple[str, ...] = ("large", "mid", "small")
#: e[k], MWh per load unit: parameter count relative to the largest (LLaMA-1 65.2B, 13.0B, 6.7B).
ENERGY_PER_UNIT = MODEL_PARAMS_B[::-1] / MODEL_PARAMS_B.max()
#: s[k] = (best 5-shot MMLU accuracy - accuracy[k]) / 100 (LLaMA-1: 63.4, 46.9, 35.1 %).
QUALITY_LOSS = (MMLU_ACCURACY.max() - MMLU_ACCURACY[::-1]) / 100.0

#: Demand weight of each region: the population served by the zone's grid, millions (rounded published
#: figures: national statistics offices' 2022-2023 estimates; for US grid operators their own "serves N
#: million people" figures; IN-WE = the states of India's Western regional grid). Override with
#: ``demand_weights=``.
DEMAND_WEIGHTS: dict[str, float] = {
    "AU-NSW": 8.3, "AU-VIC": 6.8, "BR-SP": 44.4, "CA-ON": 15.6, "CL-SIC": 19.6, "DE-LU": 85.1, "IN-WE": 315.0,
    "JP-TK": 43.0, "KR": 51.7, "SG": 5.9, "US-CAL-CISO": 32.0, "US-MIDA-PJM": 65.0, "US-NY-NYIS": 19.6,
    "US-TEX-ERCO": 26.0, "ZA": 62.0}
#: Mean total demand over all regions, load units per hour (1 load unit = 1 MWh per hour with the large model).
MEAN_TOTAL_DEMAND = 15.0
#: Capacity rule: M[i] = CAP_OWN x peak λ[i] + CAP_SHARED x mean_j peak λ[j] (MW).
CAP_OWN, CAP_SHARED = 1.25, 0.5
#: Hours of a mean calendar month (8766 / 12, rounded): the train episodes' length and μ_s's horizon.
EPISODE_HOURS = 730

#: Values of the ``carbon=`` option: Electricity Maps column.
CARBON_OPTIONS: dict[str, str] = {"lifecycle": "Carbon Intensity gCO₂eq/kWh (LCA)",
                                  "direct": "Carbon Intensity gCO₂eq/kWh (direct)"}
WEATHER_TIME_BASE = ("Open-Meteo local times at the fixed offset utc_offset_seconds; UTC = local - offset")

#: the eGLB study's on-site WUE (Ren-Research/Making-AI-Less-Thirsty, load_direct_WUE): cycles of concentration,
#: cubic in the wet-bulb temperature (°F), floor (L/kWh)
WUE_CYCLES = 6.0
WUE_POLY_F = (6e-5, -0.01, 0.61, -10.4)
WUE_FLOOR = 0.05
#: energy-water intensity factors of the same code, gal/MWh
EWIF_GAL_PER_MWH = {"gas": 300.0, "coal": 450.0, "nuclear": 600.0, "oil": 350.0, "other": 475.0, "renewable": 0.0}
#: direct emission factors (t/MWh) of gas (CCGT) and coal (pulverized) plants, IPCC AR5 WG3 Annex III (2014), used
#: to split the fossil share into gas and coal
DIRECT_CO2_GAS, DIRECT_CO2_COAL = 0.37, 0.76
LITRES_PER_GALLON = 3.785411784

_T0 = np.datetime64("2023-01-01T00", "h")


def _month_table() -> tuple[tuple[str, int, int], ...]:
    out = []
    for y in YEARS:
        for m in range(1, 13):
            start = np.datetime64(f"{y}-{m:02d}", "M")
            a = int((start.astype("datetime64[h]") - _T0).astype(np.int64))
            b = int(((start + 1).astype("datetime64[h]") - _T0).astype(np.int64))
            out.append((f"{y}-{m:02d}", a, b - a))
    return tuple(out)


#: (name, first slot, length in hours) of every calendar month of the two years.
MONTHS: tuple[tuple[str, int, int], ...] = _month_table()
#: The protocol's splits (slots of the two-year scenario).
WORLD_SPLITS: dict[str, tuple[int, int]] = {"train": (0, 8760), "val": (8760, 4368), "test": (13128, 4416)}


def month_splits(split: str | None = None) -> dict[str, tuple[int, int]]:
    """``{"2024-07": (start, length), ...}``: the calendar months, all or those inside ``split``."""
    months = {name: (a, n) for name, a, n in MONTHS}
    if split is None:
        return months
    if split not in WORLD_SPLITS:
        raise OptionError(f"split={split!r}: the world scenario's splits are {sorted(WORLD_SPLITS)}")
    s, n = WORLD_SPLITS[split]
    return {k: v for k, v in months.items() if s <= v[0] and v[0] + v[1] <= s + n}


# ---------------------------------------------------------------------- physics and approximations
def wet_bulb_c(temp_c: np.ndarray, rh_pct: np.ndarray) -> np.ndarray:
    """Wet-bulb temperature (°C) from air temperature (°C) and relative humidity (%), R. Stull, "Wet-Bulb
    Temperature from Relative Humidity and Air Temperature", J. Appl. Meteor. Climatol. 50 (2011) 2267-2269,
    eq. (1) (valid for RH 5-99 %, -20..50 °C at sea-level pressure; RH is clipped to 5-99 %)."""
    T = np.asarray(temp_c, dtype=np.float64)
    RH = np.clip(np.asarray(rh_pct, dtype=np.float64), 5.0, 99.0)
    return (T * np.arctan(0.151977 * np.sqrt(RH + 8.313659)) + np.arctan(T + RH) - np.arctan(RH - 1.676331)
            + 0.00391838 * RH ** 1.5 * np.arctan(0.023101 * RH) - 4.686035)


def onsite_wue(wet_bulb_temp_c: np.ndarray) -> np.ndarray:
    """On-site water usage effectiveness (L/kWh of IT energy) of evaporative cooling, the eGLB study's formula:
    c/(c-1) · (6e-5·Tw³ - 0.01·Tw² + 0.61·Tw - 10.4) with Tw in °F and c = 6 cycles, floored at 0.05."""
    tw_f = np.asarray(wet_bulb_temp_c, dtype=np.float64) * 9.0 / 5.0 + 32.0
    a, b, c, d = WUE_POLY_F
    wue = WUE_CYCLES / (WUE_CYCLES - 1.0) * (((a * tw_f + b) * tw_f + c) * tw_f + d)
    return np.maximum(wue, WUE_FLOOR)


def offsite_ewif(low_carbon_pct: np.ndarray, renewable_pct: np.ndarray, direct_t_per_mwh: np.ndarray) -> np.ndarray:
    """**Approximate** off-site energy-water intensity (L/kWh) from the shares the carbon files give.

    The eGLB code weights the full fuel mix by gal/MWh factors (gas 300, coal 450, nuclear 600, oil 350,
    other 475, solar/hydro/wind 0). Electricity Maps gives only the low-carbon share L and the renewable
    share R (%), so: renewables R at 0; nuclear = max(L - R, 0) at 600; fossil = 100 - L, split into coal
    and gas by its direct emission rate (direct intensity / fossil share, t/MWh) between gas 0.37 and coal
    0.76 t/MWh (IPCC AR5), linearly, at 300..450 gal/MWh. An approximation (oil, biomass and the "other"
    class are folded into these), labelled as one in docs/data.md.
    """
    L = np.clip(np.asarray(low_carbon_pct, dtype=np.float64), 0.0, 100.0)
    R = np.clip(np.asarray(renewable_pct, dtype=np.float64), 0.0, 100.0)
    fossil = (100.0 - L) / 100.0
    nuclear = np.maximum(L - R, 0.0) / 100.0
    rate = np.divide(np.asarray(direct_t_per_mwh, dtype=np.float64), fossil, out=np.zeros_like(fossil),
                     where=fossil > 1e-3)
    coal = np.clip((rate - DIRECT_CO2_GAS) / (DIRECT_CO2_COAL - DIRECT_CO2_GAS), 0.0, 1.0)
    f = EWIF_GAL_PER_MWH
    fossil_gal = f["gas"] + coal * (f["coal"] - f["gas"])
    gal_per_mwh = fossil * fossil_gal + nuclear * f["nuclear"]
    return gal_per_mwh * LITRES_PER_GALLON / 1000.0


def partial_mask(zones: Sequence[str]) -> np.ndarray:
    """(N, J) bool: site i may serve region j if same continent or neighbouring (:data:`NEIGHBOURS`)."""
    c = [CONTINENT[z] for z in zones]
    return np.array([[a == b or frozenset({a, b}) in NEIGHBOURS for b in c] for a in c], dtype=bool)


# ---------------------------------------------------------------------- reading the files
def _carbon_rel(zone: str, year: int) -> str:
    return f"data/carbon_intensity/{zone}/{year}/{zone}_{year}_hourly.csv"


def _price_rel(zone: str, year: int) -> str:
    return f"data/electricity_prices/standardized/{zone}/{year}/{zone}_electricity_prices_{year}.csv"


def _weather_rel(zone: str, year: int) -> str:
    return f"data/weather/{zone}/{year}.json"


def _servegen_rels(model: str = "m-large") -> list[str]:
    prefix = f"data/language/{model}/"
    return sorted(rel for rel in PINNED_DATASETS["servegen"].manifest if rel.startswith(prefix))


def _year_hours(year: int) -> np.ndarray:
    a = np.datetime64(f"{year}-01-01T00", "h")
    return np.arange(a, np.datetime64(f"{year + 1}-01-01T00", "h"))


def _columns(path: Path, time_col: str, suffix: str, year: int, cols: Sequence[str],
             nonneg: Sequence[bool], lo_hi: dict[str, tuple[float, float]] | None = None,
             half_hour_ok: bool = False) -> tuple[list[np.ndarray], bool]:
    """Read an hourly UTC CSV of one year: check the header, the hours (exactly the year's, written
    ``YYYY-MM-DD HH:MM:SS<suffix>``) and every value; only the needed columns are parsed.

    Returns the columns and whether the rows start at half past the hour (with ``half_hour_ok``: the IN-WE
    prices, whose hours are India's local hours, UTC+5:30)."""
    import pandas as pd  # noqa: PLC0415  (pandas loads only when a trace file is read)

    if not path.is_file():
        raise TraceError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            header = f.readline().decode("utf-8-sig").rstrip("\r\n")
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - 1, 0))
            last = f.read(1)
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    if last not in (b"\n", b"\r"):
        raise TraceError(f"{path}: the file does not end with a newline; it looks truncated")
    names = [str(c) for c in pd.read_csv(io.StringIO(header + "\n"), nrows=0).columns]
    missing = [c for c in (time_col, *cols) if c not in names]
    if missing:
        raise TraceError(f"{path}: missing column(s) {missing}; the file has columns {names}")
    try:
        df = pd.read_csv(path, usecols=[time_col, *cols], dtype={time_col: str}, encoding="utf-8-sig",
                         float_precision="round_trip")
    except Exception as exc:  # pandas raises many types for malformed files
        raise TraceError(f"{path}: cannot be read as CSV ({str(exc).strip()})") from None
    want = _year_hours(year)
    expect = np.char.add(np.char.replace(np.datetime_as_string(want, unit="s"), "T", " "), suffix)
    got = df[time_col].to_numpy(dtype=str)
    half = False
    if half_hour_ok and got.shape == expect.shape and not np.array_equal(got, expect):
        expect30 = np.char.add(np.char.replace(np.datetime_as_string(want.astype("datetime64[m]") + 30, unit="s"),
                                               "T", " "), suffix)
        if np.array_equal(got, expect30):
            expect, half = expect30, True
    if got.shape != expect.shape or not np.array_equal(got, expect):
        if got.shape != expect.shape:
            raise TraceError(f"{path}: {got.size} rows; expected every hour of {year} UTC ({expect.size} rows, "
                             f"{expect[0]} .. {expect[-1]})")
        k = int(np.argmax(got != expect))
        raise TraceError(f"{path}: row {k + 2} has the time {got[k]!r} in column {time_col!r}, expected {expect[k]!r} "
                         f"(every hour of {year} UTC, in order)")
    out = []
    for col, nn in zip(cols, nonneg):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            k = int(np.argmax(bad))
            raise TraceError(f"{path}: missing or non-numeric value {df[col].iloc[k]!r} in column {col!r} "
                             f"(row {k + 2}, {want[k]} UTC)")
        lo, hi = (lo_hi or {}).get(col, (0.0 if nn else -np.inf, np.inf))
        if np.any((v < lo) | (v > hi)):
            k = int(np.argmax((v < lo) | (v > hi)))
            raise TraceError(f"{path}: value {float(v[k])!r} in column {col!r} (row {k + 2}, {want[k]} UTC) is "
                             f"outside [{lo:g}, {hi:g}]")
        out.append(v)
    return out, half


def _half_hour_to_grid(v: np.ndarray) -> np.ndarray:
    """Rows covering [t + 0:30, t + 1:30) -> hourly slots [t, t + 1): the mean of the two rows that overlap a
    slot by half each (the first slot, whose earlier row is not in the data, takes the first row)."""
    return 0.5 * (np.r_[v[:1], v[:-1]] + v)


def _read_weather(path: Path, year: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[float, float]]:
    """(local minutes since 1970 of each row, temperature °C, RH %, utc_offset_seconds, (lat, lon))."""
    if not path.is_file():
        raise TraceError(f"{path}: file not found")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TraceError(f"{path}: not a readable Open-Meteo JSON file ({exc})") from None
    try:
        off = d["utc_offset_seconds"]
        hourly = d["hourly"]
        times, temp, rh = hourly["time"], hourly["temperature_2m"], hourly["relative_humidity_2m"]
        lat, lon = float(d["latitude"]), float(d["longitude"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TraceError(f"{path}: not an Open-Meteo hourly file (missing or invalid {exc})") from None
    if not isinstance(off, int) or isinstance(off, bool) or abs(off) > 14 * 3600:
        raise TraceError(f"{path}: utc_offset_seconds={off!r} is not an offset in seconds (|offset| <= 14 h)")
    try:
        t = np.array(times, dtype="datetime64[m]")
    except (TypeError, ValueError) as exc:
        raise TraceError(f"{path}: unparseable time in hourly.time ({exc})") from None
    want = _year_hours(year).astype("datetime64[m]")
    if t.shape != want.shape or not np.array_equal(t, want):
        raise TraceError(f"{path}: hourly.time is not every local hour of {year} ({t.size} rows, expected "
                         f"{want.size} from {want[0]})")
    arrays = []
    for name, vals, lo, hi in (("temperature_2m", temp, -90.0, 60.0), ("relative_humidity_2m", rh, 0.0, 100.0)):
        try:
            a = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        except (TypeError, ValueError):
            raise TraceError(f"{path}: hourly.{name} holds a non-number") from None
        if a.shape != t.shape:
            raise TraceError(f"{path}: hourly.{name} has {a.size} values for {t.size} hours")
        bad = ~np.isfinite(a) | (a < lo) | (a > hi)
        if bad.any():
            k = int(np.argmax(bad))
            raise TraceError(f"{path}: hourly.{name} value {vals[k]!r} at {times[k]} (local) is missing or outside "
                             f"[{lo:g}, {hi:g}]")
        arrays.append(a)
    return t.astype(np.int64), arrays[0], arrays[1], off, (lat, lon)


def _to_utc_grid(local_min: np.ndarray, values: np.ndarray, offset_s: int, grid_h: np.ndarray) -> np.ndarray:
    """Values at local times (minutes) -> the UTC hour grid: UTC = local - offset, linear interpolation between
    rows (half-hour offsets), and hours outside the rows' range take the same hour one day later / earlier."""
    utc_min = local_min - offset_s // 60
    g = grid_h.astype("datetime64[m]").astype(np.int64)
    lo, hi = utc_min[0], utc_min[-1]
    g2 = np.where(g < lo, g + 1440, np.where(g > hi, g - 1440, g))
    if np.any((g2 < lo) | (g2 > hi)):
        raise TraceError("the weather rows do not cover the scenario's hours within one day")
    return np.interp(g2, utc_min, values)


def servegen_hourly(folder: os.PathLike | str, model: str = "m-large") -> np.ndarray:
    """A ServeGen model's total request rate (req/s), hourly means of the ten-minute windows summed over its
    clients: 336 values (14 days; hour 0 = the trace start)."""
    d = Path(folder)
    total = np.zeros(2016)
    for rel in _servegen_rels(model):
        path = d / rel
        try:
            a = np.loadtxt(path, delimiter=",", usecols=(0, 1), ndmin=2)
        except (OSError, ValueError) as exc:
            raise TraceError(f"{path}: not a ServeGen trace CSV ({exc})") from None
        if a.shape != (2016, 2) or not np.array_equal(a[:, 0], np.arange(2016) * 600.0):
            raise TraceError(f"{path}: expected 2,016 ten-minute rows with ts = 0, 600, ... (14 days), got "
                             f"{a.shape[0]} rows")
        if not np.all(np.isfinite(a[:, 1]) & (a[:, 1] >= 0)):
            k = int(np.argmax(~(np.isfinite(a[:, 1]) & (a[:, 1] >= 0))))
            raise TraceError(f"{path}: rate {a[k, 1]!r} in row {k + 1} is not a rate >= 0 (requests/s)")
        total += a[:, 1]
    return total.reshape(336, 6).mean(axis=1)


def weekend_days(hourly: np.ndarray) -> tuple[int, int]:
    """The trace's weekend, inferred (its start date is not published): the two consecutive days d, d+1 whose
    mean rate together with the same days a week later (d+7, d+8) is the lowest. Returns (d, d+1), 0-based."""
    daily = np.asarray(hourly).reshape(14, 24).mean(axis=1)
    scores = [daily[[d, d + 1, d + 7, d + 8]].mean() for d in range(6)]
    d = int(np.argmin(scores))
    return d, d + 1


@dataclass(frozen=True)
class _Raw:
    """Parsed per-zone arrays on the two-year UTC grid (T = 17,544)."""

    carbon_lca: np.ndarray     # (T, Z) t/MWh
    carbon_direct: np.ndarray  # (T, Z) t/MWh
    low_carbon: np.ndarray     # (T, Z) %
    renewable: np.ndarray      # (T, Z) %
    price: np.ndarray          # (T, Z) USD/MWh
    temp: np.ndarray           # (T, Z) °C, UTC-aligned
    rh: np.ndarray             # (T, Z) %
    offset_s: np.ndarray       # (Z,) seconds
    coords: np.ndarray         # (Z, 2) degrees
    demand_profile: np.ndarray  # (336,) req/s, m-large


_CACHE: dict[tuple, _Raw] = {}
_CACHE_LOCK = threading.Lock()


def _stat_key(paths: Sequence[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append((str(p), -1, -1, -1))
    return tuple(out)


def load_zone_signals(sustain_dir: Path, servegen_dir: Path, zones: Sequence[str], years: Sequence[int],
                      verify: bool = True) -> _Raw:
    """Parse (and with ``verify`` check against the manifests) every file the scenario reads; cached in memory per
    process, keyed by every file's path, size, modification time and inode (a file changed on disk is read and
    checked again)."""
    rels_sc = [f(z, y) for z in zones for y in years for f in (_carbon_rel, _price_rel, _weather_rel)]
    rels_sg = _servegen_rels("m-large")
    paths = [sustain_dir / r for r in rels_sc] + [servegen_dir / r for r in rels_sg]
    key = (tuple(zones), tuple(years), bool(verify), _stat_key(paths))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    if verify:
        verify_dataset_files("sustain-cluster", sustain_dir, rels_sc)
        verify_dataset_files("servegen", servegen_dir, rels_sg)
    grid = np.concatenate([_year_hours(y) for y in years])
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("lca", "direct", "low", "ren", "price", "temp", "rh")}
    offsets, coords = [], []
    ci = CARBON_OPTIONS
    for z in zones:
        per: dict[str, list[np.ndarray]] = {k: [] for k in cols}
        local_t, temp, rh, offs, halves = [], [], [], set(), set()
        latlon = None
        for y in years:
            (lca, direct, low, ren), _ = _columns(
                sustain_dir / _carbon_rel(z, y), "Datetime (UTC)", "", y,
                [ci["lifecycle"], ci["direct"], "Low Carbon Percentage", "Renewable Percentage"], [True] * 4,
                {"Low Carbon Percentage": (0.0, 100.0), "Renewable Percentage": (0.0, 100.0)})
            (price,), half = _columns(sustain_dir / _price_rel(z, y), "Datetime (UTC)", "+00:00", y,
                                      ["Price (USD/MWh)"], [False], half_hour_ok=True)
            halves.add(half)
            per["lca"].append(lca / 1000.0)
            per["direct"].append(direct / 1000.0)
            per["low"].append(low)
            per["ren"].append(ren)
            per["price"].append(price)
            tm, te, h, off, ll = _read_weather(sustain_dir / _weather_rel(z, y), y)
            local_t.append(tm)
            temp.append(te)
            rh.append(h)
            offs.add(off)
            latlon = ll
        if len(offs) != 1:
            raise TraceError(f"{sustain_dir / 'data' / 'weather' / z}: the years' files have different "
                             f"utc_offset_seconds {sorted(offs)}")
        off = offs.pop()
        lt = np.concatenate(local_t)
        if len(halves) != 1:
            raise TraceError(f"{sustain_dir / 'data' / 'electricity_prices' / 'standardized' / z}: the years' files "
                             f"start at different minutes past the hour")
        for k in ("lca", "direct", "low", "ren", "price"):
            cols[k].append(np.concatenate(per[k]))
        if halves.pop():
            cols["price"][-1] = _half_hour_to_grid(cols["price"][-1])
        cols["temp"].append(_to_utc_grid(lt, np.concatenate(temp), off, grid))
        cols["rh"].append(_to_utc_grid(lt, np.concatenate(rh), off, grid))
        offsets.append(off)
        coords.append(latlon)
    raw = _Raw(carbon_lca=np.stack(cols["lca"], 1), carbon_direct=np.stack(cols["direct"], 1),
               low_carbon=np.stack(cols["low"], 1), renewable=np.stack(cols["ren"], 1),
               price=np.stack(cols["price"], 1), temp=np.stack(cols["temp"], 1), rh=np.stack(cols["rh"], 1),
               offset_s=np.array(offsets, dtype=np.int64), coords=np.array(coords, dtype=np.float64),
               demand_profile=servegen_hourly(servegen_dir, "m-large"))
    for a in (raw.carbon_lca, raw.carbon_direct, raw.low_carbon, raw.renewable, raw.price, raw.temp, raw.rh):
        a.setflags(write=False)
    with _CACHE_LOCK:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = raw
    return raw


# ---------------------------------------------------------------------- demand
def regional_demand(profile: np.ndarray, grid: np.ndarray, offsets_s: np.ndarray, weights: np.ndarray,
                    seed: int) -> np.ndarray:
    """(T, J) demand: each region's local days resampled from the trace's 14 days (weekday or weekend pool by the
    local date's day of week), seeded independently per region, shifted to UTC, scaled by the weights so that the
    mean total over the grid is :data:`MEAN_TOTAL_DEMAND` and region j's mean is proportional to weights[j]."""
    days = np.asarray(profile, dtype=np.float64).reshape(14, 24)
    we = set(weekend_days(profile))
    weekend_pool = np.array(sorted(we))
    weekday_pool = np.array([d for d in range(14) if d not in we])
    first_day = (grid[0].astype("datetime64[D]") - 1)
    last_day = (grid[-1].astype("datetime64[D]") + 2)
    local_days = np.arange(first_day, last_day)                    # local calendar dates covering the grid
    # numpy: 1970-01-01 was a Thursday; weekday 0 = Monday
    dow = (local_days.astype(np.int64) + 3) % 7
    is_weekend = dow >= 5
    children = np.random.SeedSequence(seed).spawn(len(offsets_s))
    out = np.empty((grid.size, len(offsets_s)))
    local_min = (local_days[0].astype("datetime64[m]").astype(np.int64)
                 + 60 * np.arange(local_days.size * 24))
    for j, (off, ss) in enumerate(zip(offsets_s, children)):
        rng = np.random.default_rng(ss)
        n = local_days.size
        pick = np.where(is_weekend, rng.choice(weekend_pool, n), rng.choice(weekday_pool, n))
        series = days[pick].reshape(-1)
        out[:, j] = _to_utc_grid(local_min, series, int(off), grid)
    out /= out.mean(axis=0, keepdims=True)
    share = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    return out * share[None, :] * MEAN_TOTAL_DEMAND


def social_weight_usd(demand: np.ndarray, price: np.ndarray) -> float:
    """μ_s (USD per unit of ‖S‖_∞) that balances, over a mean month (:data:`EPISODE_HOURS`), the energy cost saved
    by serving every request with the small model instead of the large one (mean total demand × (e_large -
    e_small) × mean price, per hour) against the social cost of doing so (‖s_small·1‖_∞ = s_small); rounded to
    3 significant digits. Computed on the train split (2023) of the scenario's own data."""
    per_hour = float(demand.sum(axis=1).mean()) * float(ENERGY_PER_UNIT[0] - ENERGY_PER_UNIT[-1]) \
        * float(price.mean()) / float(QUALITY_LOSS[-1])
    v = per_hour * EPISODE_HOURS
    if v <= 0:
        return 0.0
    return float(f"{v:.3g}")


# ---------------------------------------------------------------------- the scenario
def _zones_option(zones: object) -> tuple[str, ...]:
    if zones is None:
        return WORLD_ZONES
    if isinstance(zones, str) or not isinstance(zones, Sequence) or len(zones) == 0:
        raise OptionError(f"zones={zones!r}: expected a non-empty list of Electricity Maps zone codes out of "
                          f"{list(WORLD_ZONES)}")
    out = []
    for z in zones:
        if z in NO_PRICE_ZONES:
            raise OptionError(f"zones: zone {z!r} has no electricity prices in the sustain-cluster data; the zones "
                              f"with carbon, price and weather are {list(WORLD_ZONES)}")
        if z not in WORLD_ZONES:
            raise OptionError(f"zones: zone {z!r} is not in the sustain-cluster data; available: {list(WORLD_ZONES)}")
        if z in out:
            raise OptionError(f"zones: zone {z!r} is listed twice")
        out.append(z)
    return tuple(out)


def _years_option(years: object) -> tuple[int, ...]:
    if years is None:
        return YEARS
    if isinstance(years, (str, bytes)) or not isinstance(years, Sequence) or len(years) == 0:
        raise OptionError(f"years={years!r}: expected a list of years out of {list(YEARS)}")
    out = []
    for y in years:
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)):
            raise OptionError(f"years: {y!r} is not a year (an integer out of {list(YEARS)})")
        if int(y) not in YEARS:
            raise OptionError(f"years: the sustain-cluster data hold the years {list(YEARS)}, not {int(y)}")
        out.append(int(y))
    if sorted(set(out)) != out or out != list(range(out[0], out[-1] + 1)):
        raise OptionError(f"years={list(years)}: expected consecutive years in increasing order, e.g. [2023, 2024]")
    return tuple(out)


def world_scenario(data_dir: os.PathLike | str | None = None, partial: bool = False, carbon: str = "lifecycle",
                   zones: Sequence[str] | None = None, years: Sequence[int] | None = None, demand_seed: int = 0,
                   demand_weights: Sequence[float] | None = None, verify: bool = True,
                   name: str | None = None) -> Scenario:
    """The ``world`` scenario (module docstring; docs/data.md).

    Args:
        data_dir: a folder holding ``sustain-cluster/`` and ``servegen/`` side by side (like ../shared/traces);
            default ``$EQUIGLB_DATA_DIR``, else the download cache (:mod:`equiglb.traces.datadir`).
        partial: the latency mask of ``world-partial`` (same or neighbouring continent).
        carbon: ``"lifecycle"`` (default, Electricity Maps LCA) or ``"direct"``.
        zones: a subset of :data:`WORLD_ZONES` (default all 15), in the order given.
        years: consecutive years out of (2023, 2024) (default both); splits that do not fit are left out.
        demand_seed: seed of the day resampling of the demand (an integer >= 0).
        demand_weights: one weight >= 0 per zone (default :data:`DEMAND_WEIGHTS`, population served).
        verify: check every file read against the pinned manifests (default; ``False`` for a copy edited on purpose).
    """
    partial = as_bool("partial", partial)
    carbon = one_of("carbon", carbon, tuple(CARBON_OPTIONS))
    zs = _zones_option(zones)
    ys = _years_option(years)
    demand_seed = as_seed("demand_seed", demand_seed)
    verify = as_bool("verify", verify)
    if demand_weights is None:
        weights = np.array([DEMAND_WEIGHTS[z] for z in zs])
    else:
        weights = as_float_array("demand_weights", demand_weights, (len(zs),), lo=0.0)
        if not np.sum(weights) > 0:
            raise OptionError("demand_weights: at least one weight must be > 0")
    sc_dir = dataset_dir("sustain-cluster", data_dir)
    sg_dir = dataset_dir("servegen", data_dir)
    raw = load_zone_signals(sc_dir, sg_dir, zs, ys, verify=verify)
    grid = np.concatenate([_year_hours(y) for y in ys])
    T, N = grid.size, len(zs)
    carbon_arr = raw.carbon_lca if carbon == "lifecycle" else raw.carbon_direct
    water = onsite_wue(wet_bulb_c(raw.temp, raw.rh)) + offsite_ewif(raw.low_carbon, raw.renewable, raw.carbon_direct)
    demand = regional_demand(raw.demand_profile, grid, raw.offset_s, weights, demand_seed)
    peak = demand.max(axis=0) * ENERGY_PER_UNIT[0]
    capacity = CAP_OWN * peak + CAP_SHARED * float(peak.mean())
    mask = partial_mask(zs) if partial else np.ones((N, N), bool)
    # splits: the protocol's (when the years hold them) and every calendar month
    start = int((grid[0] - _T0).astype(np.int64))
    splits: dict[str, tuple[int, int]] = {}
    for k, (s, n) in {**WORLD_SPLITS, **month_splits()}.items():
        if s - start >= 0 and s - start + n <= T:
            splits[k] = (s - start, n)
    tr = splits.get("train", (0, T))
    mu_social = social_weight_usd(demand[tr[0]:tr[0] + tr[1]], raw.price[tr[0]:tr[0] + tr[1]])
    return Scenario(
        name=name or ("world-partial" if partial else "world"),
        demand=demand, price=raw.price, carbon=carbon_arr, water=water, capacity=capacity, mask=mask,
        site_names=zs, region_names=zs, timestamps=grid,
        hosting=np.ones((N, len(MODEL_NAMES)), bool), energy_per_unit=ENERGY_PER_UNIT, quality_loss=QUALITY_LOSS,
        model_names=MODEL_NAMES, latency=latency_ms(raw.coords, raw.coords), utc_offset_h=raw.offset_s / 3600.0,
        splits=splits, weights=Weights(mu_carbon=1500.0, mu_water=60.0, mu_social=mu_social, q=math.inf),
        source=f"{sc_dir} + {sg_dir}",
    )
