"""The generic tidy format ("csv" scenario): round trips, units and time zones, and every bad input
(messages name the file, field and value)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import equiglb
from equiglb.traces.csvio import TraceError
from equiglb.traces.generic import load_generic, save_generic

META = """\
name: tiny-fleet
units: {price: USD/MWh, carbon: g/kWh, water: L/kWh}
sites:
  - {name: east, capacity_mw: 2.0, pue: 1.2, utc_offset_h: -5}
  - {name: west, capacity_mw: 1.0}
regions: [na, eu]
models:
  - {name: small, energy_mwh_per_unit: 0.2, quality_loss: 0.3}
  - {name: big, energy_mwh_per_unit: 1.0, quality_loss: 0.0}
mask: {eu: [east]}
hosting: {west: [small]}
splits: {train: [0, 2], test: [2, 1]}
weights: {q: 2, mu_social: 100}
"""


def signals_rows(hours=3, start=0):
    rows = ["time,site,signal,value"]
    for site, base in (("east", 10.0), ("west", 20.0)):
        for h in range(start, start + hours):
            t = f"2024-01-01T{h:02d}:00Z"
            rows += [f"{t},{site},price,{base + h}", f"{t},{site},carbon,{400 + h}", f"{t},{site},water,{2 + h}"]
    return rows


def demand_rows(hours=3):
    return ["time,region,demand"] + [f"2024-01-01T{h:02d}:00Z,{r},{0.5 + 0.1 * h}" for r in ("na", "eu")
                                     for h in range(hours)]


def make(tmp_path: Path, meta: str = META, signals: list[str] | None = None, demand: list[str] | None = None) -> Path:
    d = tmp_path / "fleet"
    d.mkdir(exist_ok=True)
    (d / "scenario.yaml").write_text(meta)
    (d / "signals.csv").write_text("\n".join(signals if signals is not None else signals_rows()) + "\n")
    (d / "demand.csv").write_text("\n".join(demand if demand is not None else demand_rows()) + "\n")
    return d


def test_load_small_folder(tmp_path):
    s = equiglb.load_scenario("csv", data_dir=make(tmp_path))
    assert (s.T, s.N, s.J, s.K) == (3, 2, 2, 2) and s.name == "tiny-fleet"
    np.testing.assert_allclose(s.price[:, 0], [10, 11, 12])
    np.testing.assert_allclose(s.carbon[:, 1], [0.400, 0.401, 0.402])  # g/kWh -> t/MWh
    np.testing.assert_allclose(s.water[:, 0], [2, 3, 4])
    np.testing.assert_allclose(s.demand[:, 1], [0.5, 0.6, 0.7])
    np.testing.assert_array_equal(s.mask, [[True, True], [True, False]])  # eu reaches only east
    np.testing.assert_array_equal(s.hosting, [[True, True], [True, False]])
    assert s.capacity.tolist() == [2.0, 1.0] and s.pue.tolist() == [1.2, 1.0]
    assert s.weights.q == 2.0 and s.weights.mu_social == 100.0 and s.splits["test"] == (2, 1)
    assert str(s.timestamps[0]) == "2024-01-01T00"
    # path= to the metadata file, and the common options
    s2 = equiglb.load_scenario("csv", path=make(tmp_path) / "scenario.yaml", horizon=2, q=1)
    assert s2.T == 2 and s2.weights.q == 1.0


def test_offsets_converted_to_utc_and_common_range(tmp_path):
    # east's rows written in UTC+01:00 local time; west starts an hour later: common range = 2 h
    sig = signals_rows()
    sig = [r.replace("T00:00Z,east", "T01:00+01:00,east").replace("T01:00Z,east", "T02:00+01:00,east")
           .replace("T02:00Z,east", "T03:00+01:00,east") for r in sig]
    sig = [r for r in sig if not r.startswith("2024-01-01T00:00Z,west")]
    s = load_generic(data_dir=make(tmp_path, meta=META.replace("splits: {train: [0, 2], test: [2, 1]}\n", ""),
                                   signals=sig))
    assert s.T == 2 and str(s.timestamps[0]) == "2024-01-01T01"
    np.testing.assert_allclose(s.price[:, 0], [11, 12])


@pytest.mark.parametrize("name", ["eglb-2022-partial", "synthetic-multimodel"])
def test_round_trip(name, tmp_path, request):
    if name.startswith("eglb"):
        scn = equiglb.load_scenario(name, data_dir=request.getfixturevalue("eglb_dir"))
    else:
        scn = equiglb.load_scenario(name, hours=72)
    for meta_name in ("scenario.yaml", "scenario.json"):
        folder = tmp_path / meta_name
        save_generic(scn, folder, meta_name)
        back = load_generic(data_dir=folder)
        for f in ("demand", "price", "carbon", "water", "capacity", "mask", "hosting", "energy_per_unit",
                  "quality_loss", "pue", "latency", "region_weights", "utc_offset_h", "timestamps"):
            np.testing.assert_array_equal(getattr(back, f), getattr(scn, f), err_msg=f)
        assert back.weights == scn.weights and back.splits == scn.splits
        assert back.model_names == scn.model_names and back.site_names == scn.site_names


def test_electricity_maps_style_example(tmp_path):
    """The worked example of docs/data.md: an hourly Electricity Maps-like export (local time with
    offset, gCO2eq/kWh) reshaped into the tidy format with pandas."""
    export = pd.DataFrame({
        "Datetime (UTC)": pd.date_range("2024-03-01", periods=4, freq="h", tz="UTC"),
        "Zone id": "DE",
        "Carbon intensity gCO₂eq/kWh (direct)": [380.0, 370.0, 365.0, 390.0],
    })
    tidy = pd.DataFrame({"time": export["Datetime (UTC)"].dt.strftime("%Y-%m-%dT%H:%MZ"),
                         "site": "frankfurt", "signal": "carbon",
                         "value": export["Carbon intensity gCO₂eq/kWh (direct)"]})
    price = tidy.assign(signal="price", value=[90.0, 85.0, 80.0, 95.0])
    water = tidy.assign(signal="water", value=1.8)
    d = tmp_path / "de"
    d.mkdir()
    pd.concat([tidy, price, water]).to_csv(d / "signals.csv", index=False)
    pd.DataFrame({"time": tidy["time"], "region": "europe", "demand": 0.5}).to_csv(d / "demand.csv", index=False)
    (d / "scenario.json").write_text(json.dumps({
        "sites": [{"name": "frankfurt", "pue": 1.1}], "regions": ["europe"],
        "units": {"carbon": "gCO2eq/kWh", "price": "USD/MWh", "water": "L/kWh"}}))
    s = equiglb.load_scenario("csv", data_dir=d)
    np.testing.assert_allclose(s.carbon[:, 0], [0.380, 0.370, 0.365, 0.390])
    assert s.T == 4 and s.weights == equiglb.EGLB_WEIGHTS


def bad_cases():
    s, d = signals_rows(), demand_rows()
    return {
        "missing metadata": (dict(meta=None), ["no metadata file", "scenario.yaml"]),
        "missing signals": (dict(signals=None), ["signals.csv: file not found"]),
        "missing column": (dict(signals=[s[0].replace("value", "val")] + s[1:]),
                           ["signals.csv", "missing column 'value'"]),
        "unparseable": (dict(signals=s[:2] + [s[2].replace("2024-01-01T00:00Z", "yesterday")] + s[3:]),
                        ["signals.csv", "unparseable timestamp 'yesterday'", "row 3"]),
        "not whole hour": (dict(signals=[s[0], s[1].replace("T00:00Z", "T00:30Z")] + s[2:]),
                           ["signals.csv", "not on a whole hour", "row 2"]),
        "duplicate": (dict(signals=s[:4] + [s[1]] + s[4:]),
                      ["signals.csv", "duplicate timestamp 2024-01-01T00", "site 'east', price"]),
        "non-monotonic": (dict(signals=[s[0], s[4], s[1]] + s[2:4] + s[5:]),
                          ["signals.csv", "not increasing", "site 'east', price"]),
        "gap": (dict(demand=[d[0], d[1], d[3]] + d[4:]),
                ["demand.csv", "gap of 2 h", "region 'na'"]),
        "NaN": (dict(signals=s[:3] + [s[3].rsplit(",", 1)[0] + ","] + s[4:]),
                ["signals.csv", "missing or non-numeric value nan", "column 'value'", "row 4"]),
        "negative carbon": (dict(signals=[r.replace("carbon,400", "carbon,-400") for r in s]),
                            ["signals.csv", "negative carbon -400.0", "site 'east'", "row 3"]),
        "negative demand": (dict(demand=[d[0], d[1].replace(",0.5", ",-0.5")] + d[2:]),
                            ["demand.csv", "negative demand -0.5", "region 'na'"]),
        "unknown site": (dict(signals=s + ["2024-01-01T00:00Z,north,price,1"]),
                         ["signals.csv", "site 'north'", "not among the sites of the metadata"]),
        "site without data": (dict(signals=[r for r in s if ",west," not in r]),
                              ["signals.csv", "no rows for site 'west', signal 'price'", "mismatched"]),
        "unknown signal": (dict(signals=s + ["2024-01-01T00:00Z,east,wind,1"]),
                           ["signals.csv", "unknown signal 'wind'"]),
        "unknown unit": (dict(meta=META.replace("carbon: g/kWh", "carbon: kg/MJ")),
                         ["scenario.yaml", "unknown carbon unit 'kg/MJ'"]),
        "unknown field": (dict(meta=META + "colour: blue\n"), ["scenario.yaml", "unknown field(s) ['colour']"]),
        "bad yaml": (dict(meta="sites: [a, b\n"), ["scenario.yaml", "cannot be parsed"]),
        "missing sites": (dict(meta="regions: [na]\n"), ["scenario.yaml", "missing field 'sites'"]),
        "bad mask": (dict(meta=META.replace("mask: {eu: [east]}", "mask: {eu: [south]}")),
                     ["scenario.yaml", "field 'mask'", "unknown name 'south'"]),
        "bad number": (dict(meta=META.replace("capacity_mw: 2.0", "capacity_mw: lots")),
                       ["scenario.yaml", "site 'east'", "'capacity_mw' must be a number", "'lots'"]),
        "bad pue": (dict(meta=META.replace("pue: 1.2", "pue: 0.8")),
                    ["scenario.yaml", "'pue' must be >= 1, got 0.8 for site 'east'"]),
        "bad weights": (dict(meta=META.replace("weights: {q: 2, mu_social: 100}", "weights: {q: 0.5}")),
                        ["scenario.yaml", "field 'weights'", "Weights.q=0.5: must be in [1, 100] or inf"]),
        "no common range": (dict(demand=["time,region,demand"] + [f"2024-02-01T00:00Z,{r},1" for r in ("na", "eu")]),
                            ["share no common hour"]),
        "unreachable region": (dict(meta=META.replace("mask: {eu: [east]}", "mask: {eu: [west]}")
                                    .replace("hosting: {west: [small]}", "hosting: {west: []}")),
                               ["scenario.yaml", "region 'eu' reaches no site"]),
    }


@pytest.mark.parametrize("case", list(bad_cases()))
def test_bad_inputs_name_the_problem(case, tmp_path):
    kw, needles = bad_cases()[case]
    d = make(tmp_path, **{k: v for k, v in kw.items() if v is not None})
    for k, v in kw.items():
        if v is None:
            (d / {"meta": "scenario.yaml", "signals": "signals.csv", "demand": "demand.csv"}[k]).unlink()
    with pytest.raises(TraceError) as err:
        load_generic(data_dir=d)
    for n in needles:
        assert n in str(err.value), (n, str(err.value))


def test_negative_price_allowed_and_missing_folder(tmp_path):
    s = load_generic(data_dir=make(tmp_path, signals=[r.replace("price,10.0", "price,-10.0") for r in signals_rows()]))
    assert s.price[0, 0] == -10.0
    with pytest.raises(TraceError, match="folder not found"):
        load_generic(data_dir=tmp_path / "nothing")
    with pytest.raises(TraceError, match="needs data_dir"):
        equiglb.load_scenario("csv")


def test_parquet_tables(tmp_path):
    """signals/demand as .parquet: read with pyarrow, or a clear error naming the file without it."""
    d = make(tmp_path, meta=META + "signals_file: signals.parquet\n")
    if importlib.util.find_spec("pyarrow") is None:
        (d / "signals.parquet").write_bytes(b"PAR1")
        with pytest.raises(TraceError, match=r"signals\.parquet: cannot be read"):
            load_generic(data_dir=d)
        return
    pd.read_csv(d / "signals.csv").to_parquet(d / "signals.parquet")
    s = load_generic(data_dir=d)
    np.testing.assert_allclose(s.price[:, 0], [10, 11, 12])
