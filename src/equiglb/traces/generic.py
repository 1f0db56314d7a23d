"""The generic trace format for users' own data (scenario name ``"csv"``); documented in docs/data.md.

A folder with three files (names configurable in the metadata)::

    scenario.yaml   (or scenario.yml / scenario.json)  sites, regions, models, capacities, mask, ...
    signals.csv     time, site, signal, value          signal in {price, carbon, water}
    demand.csv      time, region, demand               load units per hour

``.parquet`` files are read too (needs pyarrow). ``time`` is ISO 8601; a timestamp with an offset
(``2024-01-01T00:00+01:00``) is converted to UTC, one without is taken as UTC. Every (site, signal)
and every region series must be hourly, in increasing order, without duplicates or gaps; the
scenario covers the time range common to all series. Units are declared in the metadata and
converted to the model's units (USD/MWh, t/MWh, m³/MWh).

Load with ``equiglb.load_scenario("csv", data_dir="my_folder")`` (or ``path="my_folder/x.yaml"``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from equiglb.scenario import Scenario, Weights
from equiglb.traces.csvio import TraceError, _show, check_hourly, read_csv_checked
from equiglb.validate import OptionError, as_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_generic", "save_generic", "read_metadata", "read_tidy", "UNIT_FACTORS", "METADATA_NAMES"]

METADATA_NAMES = ("scenario.yaml", "scenario.yml", "scenario.json")
SIGNALS = ("price", "carbon", "water")

#: Factor converting a declared unit into the model's unit, per quantity.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "price": {"USD/MWh": 1.0, "USD/kWh": 1000.0},
    "carbon": {"t/MWh": 1.0, "kg/kWh": 1.0, "g/kWh": 1e-3, "gCO2eq/kWh": 1e-3, "kg/MWh": 1e-3,
               "lb/MWh": 0.45359237e-3},
    "water": {"m3/MWh": 1.0, "L/kWh": 1.0, "L/MWh": 1e-3, "gal/MWh": 3.785411784e-3},
    "demand": {"load units": 1.0},
}
_META_KEYS = {"name", "sites", "regions", "models", "mask", "hosting", "latency_ms", "units", "signals_file",
              "demand_file", "splits", "weights", "description"}


def _fail(path: Path | str, msg: str) -> None:
    raise TraceError(f"{path}: {msg}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _no_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate key {dup[0]!r}")
    return dict(pairs)


def read_metadata(path: os.PathLike | str) -> dict[str, Any]:
    """Read the YAML/JSON metadata file as a dict (checks the file exists, is UTF-8, parses, has no
    duplicated key and only known fields)."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "metadata file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        _fail(path, f"not UTF-8 text (byte {exc.start})")
    except OSError as exc:
        _fail(path, f"cannot be read ({exc.strerror or exc})")
    try:
        if path.suffix == ".json":
            meta = json.loads(text, object_pairs_hook=_no_duplicate_json_keys)
        else:
            meta = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except Exception as exc:  # json.JSONDecodeError, ValueError, yaml.YAMLError
        _fail(path, f"cannot be parsed ({exc})")
    if not isinstance(meta, dict):
        _fail(path, f"must be a mapping of fields, got {type(meta).__name__}")
    unknown = set(meta) - _META_KEYS
    if unknown:
        _fail(path, f"unknown field(s) {sorted(unknown)}; known fields are {sorted(_META_KEYS)}")
    return meta


def _read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415  (pandas loads only when a trace file is read or written)

    if not path.is_file():
        _fail(path, "file not found")
    if path.suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:
            _fail(path, f"cannot be read ({exc})")
        if len(df) == 0:
            _fail(path, "no data rows")
    else:
        df = read_csv_checked(path)
    df.columns = [str(c).strip() for c in df.columns]
    for c in columns:
        if c not in df.columns:
            _fail(path, f"missing column {c!r}; the file has columns {list(df.columns)}")
    return df


def _parse_time(df: pd.DataFrame, path: Path) -> np.ndarray:
    import pandas as pd  # noqa: PLC0415  (pandas loads only when a trace file is read or written)

    raw = df["time"].astype(str).str.strip()
    t = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
    if t.isna().any():
        k = int(np.argmax(t.isna().to_numpy()))
        _fail(path, f"unparseable timestamp {raw.iloc[k]!r} in column 'time' (row {k + 2}); use ISO 8601, "
                    f"e.g. 2024-01-01T00:00Z")
    off_hour = (t.dt.minute != 0) | (t.dt.second != 0)
    if off_hour.any():
        k = int(np.argmax(off_hour.to_numpy()))
        _fail(path, f"timestamp {raw.iloc[k]!r} in column 'time' (row {k + 2}) is not on a whole hour")
    return t.dt.tz_convert(None).to_numpy().astype("datetime64[h]")


def _values(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    import pandas as pd  # noqa: PLC0415  (pandas loads only when a trace file is read or written)

    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        k = int(np.argmax(bad))
        _fail(path, f"missing or non-numeric value {_show(df[col].iloc[k])} in column {col!r} (row {k + 2})")
    return v


def read_tidy(path: Path, key: str, value: str, names: tuple[str, ...], nonnegative: dict[str, bool],
              signal_col: str | None = None) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Read a tidy table into ``{(name, signal): (timestamps, values)}`` with every check.

    ``key`` is the column naming the site/region, ``value`` the value column, ``signal_col`` the
    column naming the signal (``None``: one signal named after ``value``).
    """
    cols = ("time", key, value) + ((signal_col,) if signal_col else ())
    df = _read_table(path, cols)
    ts = _parse_time(df, path)
    vals = _values(df, value, path)
    keys = df[key].astype(str).str.strip().to_numpy()
    sigs = df[signal_col].astype(str).str.strip().to_numpy() if signal_col else np.full(len(df), value)
    unknown_names = sorted(str(k) for k in set(keys) - set(names))
    if unknown_names:
        _fail(path, f"{key} {unknown_names[0]!r} in column {key!r} is not among the {key}s of the metadata "
                    f"{list(names)}")
    unknown_sigs = sorted(str(s) for s in set(sigs) - set(nonnegative))
    if unknown_sigs:
        _fail(path, f"unknown signal {unknown_sigs[0]!r} in column {signal_col!r}; expected one of "
                    f"{list(nonnegative)}")
    out = {}
    for sig, nonneg in nonnegative.items():
        for n in names:
            rows = np.flatnonzero((keys == n) & (sigs == sig))
            if rows.size == 0:
                what = f"{key} {n!r}" + (f", signal {sig!r}" if signal_col else "")
                _fail(path, f"no rows for {what} (sites/regions mismatched between the metadata and this file)")
            t = ts[rows]
            try:
                check_hourly(t, path, f"time ({key} {n!r}{', ' + sig if signal_col else ''})")
            except TraceError as exc:  # re-word row numbers to the file's rows
                raise TraceError(str(exc).split(" (row")[0] + f" (file rows {rows[0] + 2}..{rows[-1] + 2})") from None
            v = vals[rows]
            if nonneg and np.any(v < 0):
                k = int(np.argmax(v < 0))
                _fail(path, f"negative {sig} {float(v[k])!r} for {key} {n!r} at {t[k]} (row {rows[k] + 2}); "
                            f"{sig} must be >= 0")
            out[(n, sig)] = (t, v)
    return out


def _names(meta: dict, field: str, path: Path, required: bool = True) -> list[dict]:
    items = meta.get(field)
    if items is None:
        if required:
            _fail(path, f"missing field {field!r}")
        return []
    if not isinstance(items, list) or not items:
        _fail(path, f"field {field!r} must be a non-empty list")
    out = []
    for k, it in enumerate(items):
        it = {"name": it} if isinstance(it, str) else it
        if not isinstance(it, dict) or "name" not in it:
            _fail(path, f"{field}[{k}] must be a name or a mapping with a 'name', got {it!r}")
        out.append(it)
    names = [str(it["name"]) for it in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        _fail(path, f"duplicate name {dup[0]!r} in {field!r}")
    return out


def _number(v: Any, what: str, path: Path, allow_inf: bool = False) -> float:
    """A metadata number: int, float, or a string of one (YAML 1.1 reads ``1e3`` as a string); never a bool."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        _fail(path, f"{what} must be a number, got {v!r} ({type(v).__name__})")
    try:
        f = float(v)
    except ValueError:
        _fail(path, f"{what} must be a number, got {v!r}")
    if math.isnan(f) or (math.isinf(f) and not (allow_inf and f > 0)):
        _fail(path, f"{what} must be finite{' or inf' if allow_inf else ''}, got {v!r}")
    return f


def _num(it: dict, key: str, default: float, where: str, path: Path) -> float:
    return _number(it.get(key, default), f"{where}: field {key!r}", path)


def _membership(meta: dict, field: str, rows: list[str], cols: list[str], path: Path) -> np.ndarray:
    """``{row_name: [col_name, ...]}`` -> (len(rows), len(cols)) bool; all True when absent."""
    spec = meta.get(field)
    if spec is None:
        return np.ones((len(rows), len(cols)), bool)
    if not isinstance(spec, dict):
        _fail(path, f"field {field!r} must map each name to a list of names")
    out = np.zeros((len(rows), len(cols)), bool)
    for r, lst in spec.items():
        if str(r) not in rows:
            _fail(path, f"field {field!r}: unknown name {r!r}; expected one of {rows}")
        for c in lst if isinstance(lst, list) else [lst]:
            if str(c) not in cols:
                _fail(path, f"field {field!r}: {r!r} lists unknown name {c!r}; expected one of {cols}")
            out[rows.index(str(r)), cols.index(str(c))] = True
    for r in rows:
        if r not in spec:
            out[rows.index(r)] = True  # not listed: unrestricted
    return out


def _unit_factor(meta: dict, quantity: str, default: str, path: Path) -> float:
    unit = str((meta.get("units") or {}).get(quantity, default))
    table = UNIT_FACTORS[quantity]
    if unit not in table:
        _fail(path, f"field 'units': unknown {quantity} unit {unit!r}; supported: {list(table)}")
    return table[unit]


def load_generic(data_dir: os.PathLike | str | None = None, path: os.PathLike | str | None = None,
                 name: str | None = None) -> Scenario:
    """Load a scenario in the generic format from a folder (``data_dir``) or a metadata file (``path``)."""
    if name is not None and not isinstance(name, str):
        raise OptionError(f"name={name!r}: expected a str, got a {type(name).__name__}")
    if path is None:
        if data_dir is None:
            raise TraceError("the 'csv' scenario needs data_dir=<folder> or path=<metadata file>")
        d = Path(as_path("data_dir", data_dir))
        if not d.is_dir():
            _fail(d, "folder not found")
        found = [d / n for n in METADATA_NAMES if (d / n).is_file()]
        if not found:
            _fail(d, f"no metadata file; expected one of {list(METADATA_NAMES)}")
        path = found[0]
    path = Path(as_path("path", path))
    meta = read_metadata(path)
    folder = path.parent
    sites = _names(meta, "sites", path)
    regions = _names(meta, "regions", path)
    models = _names(meta, "models", path, required=False) or [{"name": "default"}]
    site_names = [str(s["name"]) for s in sites]
    region_names = [str(r["name"]) for r in regions]
    model_names = [str(m["name"]) for m in models]

    factors = {q: _unit_factor(meta, q, d, path) for q, d in
               (("price", "USD/MWh"), ("carbon", "t/MWh"), ("water", "m3/MWh"), ("demand", "load units"))}
    sig_path = folder / str(meta.get("signals_file", "signals.csv"))
    dem_path = folder / str(meta.get("demand_file", "demand.csv"))
    sig = read_tidy(sig_path, "site", "value", tuple(site_names),
                    {"price": False, "carbon": True, "water": True}, signal_col="signal")
    dem = read_tidy(dem_path, "region", "demand", tuple(region_names), {"demand": True})
    series = list(sig.values()) + list(dem.values())
    start = max(t[0] for t, _ in series)
    end = min(t[-1] for t, _ in series)
    if end < start:
        _fail(folder, f"the series in {sig_path.name} and {dem_path.name} share no common hour "
                      f"(latest start {start}, earliest end {end})")
    T = int((end - start).astype(np.int64)) + 1
    longest = max(len(t) for t, _ in series)
    if T < longest:
        names = [f"{n}/{s}" for (n, s), (t, _) in list(sig.items()) + list(dem.items()) if len(t) == longest]
        warnings.warn(f"{path}: the series cover different hours; the scenario keeps the {T} h common to all "
                      f"({start} .. {end}), {longest - T} h fewer than the longest ({', '.join(names[:3])})",
                      stacklevel=2)

    def cut(t: np.ndarray, v: np.ndarray) -> np.ndarray:
        k = int((start - t[0]).astype(np.int64))
        return v[k:k + T]

    arrays = {s: np.stack([cut(*sig[(n, s)]) for n in site_names], axis=1) * factors[s] for s in SIGNALS}
    demand = np.stack([cut(*dem[(n, "demand")]) for n in region_names], axis=1) * factors["demand"]

    def site_field(key: str, default: float) -> np.ndarray:
        return np.array([_num(s, key, default, f"site {s['name']!r}", path) for s in sites])

    latency = None
    if meta.get("latency_ms") is not None:
        spec = meta["latency_ms"]
        latency = np.full((len(site_names), len(region_names)), np.nan)
        if not isinstance(spec, dict):
            _fail(path, "field 'latency_ms' must map each region to {site: ms}")
        for r, row in spec.items():
            if str(r) not in region_names or not isinstance(row, dict):
                _fail(path, f"field 'latency_ms': unknown region {r!r} or not a mapping of site -> ms")
            for s, ms in row.items():
                if str(s) not in site_names:
                    _fail(path, f"field 'latency_ms': region {r!r} lists unknown site {s!r}")
                latency[site_names.index(str(s)), region_names.index(str(r))] = _number(
                    ms, f"field 'latency_ms': region {r!r}, site {s!r}", path)
        if np.isnan(latency).any():
            i, j = np.argwhere(np.isnan(latency))[0]
            _fail(path, f"field 'latency_ms': missing latency from region {region_names[j]!r} to site "
                        f"{site_names[i]!r} (give every pair)")
    weights = meta.get("weights") or {}
    if not isinstance(weights, dict):
        _fail(path, "field 'weights' must be a mapping, e.g. {mu_carbon: 1500, q: inf}")
    try:
        w = Weights(**{str(k): _number(v, f"field 'weights': {k}", path, allow_inf=(k == "q"))
                       for k, v in weights.items()})
    except TypeError as exc:
        _fail(path, f"field 'weights': {exc}")
    except ValueError as exc:
        if isinstance(exc, TraceError):
            raise
        _fail(path, f"field 'weights': {exc}")
    splits = meta.get("splits") or {}
    if not isinstance(splits, dict):
        _fail(path, f"field 'splits' must map each split name to [start, length] (slots), got {splits!r}")
    try:
        scn = Scenario(
            name=name or str(meta.get("name", "csv")),
            demand=demand, price=arrays["price"], carbon=arrays["carbon"], water=arrays["water"],
            capacity=site_field("capacity_mw", 1.0),
            mask=_membership(meta, "mask", region_names, site_names, path).T,
            hosting=_membership(meta, "hosting", site_names, model_names, path),
            energy_per_unit=np.array([_num(m, "energy_mwh_per_unit", 1.0, f"model {m['name']!r}", path)
                                      for m in models]),
            quality_loss=np.array([_num(m, "quality_loss", 0.0, f"model {m['name']!r}", path) for m in models]),
            pue=site_field("pue", 1.0), region_weights=site_field("region_weight", 1.0),
            utc_offset_h=site_field("utc_offset_h", 0.0), latency=latency,
            site_names=tuple(site_names), region_names=tuple(region_names), model_names=tuple(model_names),
            timestamps=start + np.arange(T).astype("timedelta64[h]"),
            splits={str(k): v for k, v in splits.items()}, weights=w, source=str(path),
        )
    except TraceError:
        raise
    except ValueError as exc:  # ScenarioError from the Scenario's own validation: add the file
        raise TraceError(f"{path}: {exc}") from None
    return scn


def save_generic(scn: Scenario, folder: os.PathLike | str, metadata_name: str = "scenario.yaml") -> Path:
    """Write ``scn`` in the generic format (metadata + signals.csv + demand.csv); returns the metadata path.

    ``load_generic(data_dir=folder)`` reads it back (same arrays, static data, splits and weights).
    """
    import pandas as pd  # noqa: PLC0415  (pandas loads only when a trace file is read or written)

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    times = pd.DatetimeIndex(scn.timestamps.astype("datetime64[ns]")).strftime("%Y-%m-%dT%H:%MZ")
    frames = []
    for sig in SIGNALS:
        arr = getattr(scn, sig)
        for i, site in enumerate(scn.site_names):
            frames.append(pd.DataFrame({"time": times, "site": site, "signal": sig, "value": arr[:, i]}))
    pd.concat(frames).to_csv(d / "signals.csv", index=False, float_format="%.17g")
    pd.concat([pd.DataFrame({"time": times, "region": r, "demand": scn.demand[:, j]})
               for j, r in enumerate(scn.region_names)]).to_csv(d / "demand.csv", index=False, float_format="%.17g")
    w = scn.weights
    meta: dict[str, Any] = {
        "name": scn.name,
        "units": {"price": "USD/MWh", "carbon": "t/MWh", "water": "m3/MWh", "demand": "load units"},
        "sites": [{"name": s, "capacity_mw": float(scn.capacity[i]), "pue": float(scn.pue[i]),
                   "utc_offset_h": float(scn.utc_offset_h[i]), "region_weight": float(scn.region_weights[i])}
                  for i, s in enumerate(scn.site_names)],
        "regions": list(scn.region_names),
        "models": [{"name": m, "energy_mwh_per_unit": float(scn.energy_per_unit[k]),
                    "quality_loss": float(scn.quality_loss[k])} for k, m in enumerate(scn.model_names)],
        "mask": {r: [s for i, s in enumerate(scn.site_names) if scn.mask[i, j]]
                 for j, r in enumerate(scn.region_names)},
        "hosting": {s: [m for k, m in enumerate(scn.model_names) if scn.hosting[i, k]]
                    for i, s in enumerate(scn.site_names)},
        "splits": {k: list(v) for k, v in scn.splits.items() if k != "all"},
        "weights": {"mu_carbon": w.mu_carbon, "mu_water": w.mu_water, "mu_social": w.mu_social,
                    "mu_latency": w.mu_latency, "q": w.q, "unserved_penalty_usd": w.unserved_penalty_usd},
    }
    if scn.latency is not None:
        meta["latency_ms"] = {r: {s: float(scn.latency[i, j]) for i, s in enumerate(scn.site_names)}
                              for j, r in enumerate(scn.region_names)}
    path = d / metadata_name
    if path.suffix == ".json":
        path.write_text(json.dumps(meta, indent=1) + "\n")
    else:
        path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return path
