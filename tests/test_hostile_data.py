"""Hostile inputs, class 1 (trace integrity): the eGLB-2022 folder against its pinned manifest, the hourly
CSV reader, and the generic CSV/YAML format. Every case asserts the error class and that the message names
the file (and the row, column or field when there is one)."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import equiglb
from equiglb.traces import EGLB_2022_COMMIT, IntegrityError, OptionError, TraceError
from equiglb.traces.csvio import read_hourly_csv
from equiglb.traces.fetch import EGLB_2022_MANIFEST, verify_eglb_files

# ---------------------------------------------------------------------- eGLB-2022 against the manifest


@pytest.fixture
def copy(eglb_dir, tmp_path, monkeypatch) -> Path:
    """A writable copy of the real folder; no cache or environment variable interferes."""
    monkeypatch.setenv("EQUIGLB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EQUIGLB_EGLB_2022_DIR", raising=False)
    d = tmp_path / "eglb"
    shutil.copytree(eglb_dir, d)
    for p in [d, *d.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return d


def cut_rows(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` data rows (a complete, well-formed but shorter file)."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:rows + 1]))


def cut_mid_number(path: Path) -> None:
    """Cut the last value in the middle of its digits and keep a final newline (the file still parses)."""
    text = path.read_text().rstrip("\n")
    path.write_text(text[:-3] + "\n")


def same_size_edit(path: Path) -> None:
    """Change one digit of the last value: same size, different content."""
    data = path.read_bytes()
    k = max(i for i in range(len(data)) if data[i:i + 1].isdigit())
    path.write_bytes(data[:k] + (b"1" if data[k:k + 1] != b"1" else b"2") + data[k + 1:])


TAMPER = {
    "400 rows": (lambda p: cut_rows(p, 400), "bytes"),
    "cut mid-number": (cut_mid_number, "bytes"),
    "same size, one digit": (same_size_edit, "sha256"),
    "header only": (lambda p: cut_rows(p, 0), "bytes"),
    "empty": (lambda p: p.write_bytes(b""), "bytes"),
    "removed": (lambda p: p.unlink(), "not found"),
}
FILES = ["AI_workload.csv", "price/Germany_Price.csv", "carbon/Texas_carbon.csv", "water/Japan_water.csv"]


@pytest.mark.parametrize("how", list(TAMPER))
@pytest.mark.parametrize("rel", FILES)
def test_tampered_file_named(copy, rel, how):
    edit, needle = TAMPER[how]
    edit(copy / rel)
    with pytest.raises(IntegrityError) as err:
        equiglb.load_scenario("eglb-2022", data_dir=copy)
    msg = str(err.value)
    assert rel in msg and needle in msg and "verify=False" in msg


def test_edited_partial_mask_only_matters_for_the_partial_scenario(copy):
    same_size_edit(copy / "partial_mask.csv")
    assert equiglb.load_scenario("eglb-2022", data_dir=copy).T == 457  # the full scenario does not read it
    with pytest.raises(IntegrityError, match=r"partial_mask\.csv: differs .* sha256"):
        equiglb.load_scenario("eglb-2022-partial", data_dir=copy)


def test_truncated_cache_file_is_detected(copy, tmp_path, monkeypatch):
    cached = tmp_path / "cache" / "eglb-2022" / EGLB_2022_COMMIT
    shutil.copytree(copy, cached)
    assert equiglb.load_scenario("eglb-2022").T == 457  # found in the cache without data_dir
    cut_rows(cached / "water" / "Texas_water.csv", 100)
    with pytest.raises(IntegrityError, match=rf"{cached}/water/Texas_water\.csv: differs"):
        equiglb.load_scenario("eglb-2022")


def test_env_var_folder_is_verified(copy, monkeypatch):
    monkeypatch.setenv("EQUIGLB_EGLB_2022_DIR", str(copy))
    cut_mid_number(copy / "price" / "Japan_Price.csv")
    with pytest.raises(IntegrityError, match=r"price/Japan_Price\.csv"):
        equiglb.load_scenario("eglb-2022")


def test_verify_false_loads_an_edited_copy(copy):
    path = copy / "price" / "Texas_Price.csv"
    lines = path.read_text().splitlines(keepends=True)
    stamp = lines[1].split(",")[0]
    lines[1] = f"{stamp},123.5\n"
    path.write_text("".join(lines))
    with pytest.raises(IntegrityError):
        equiglb.load_scenario("eglb-2022", data_dir=copy)
    scn = equiglb.load_scenario("eglb-2022", data_dir=copy, verify=False)
    i = scn.site_names.index("Texas")
    k = int((np.datetime64(stamp.replace(" ", "T"), "h") - scn.timestamps[0]).astype(int))
    if 0 <= k < scn.T:
        assert scn.price[k, i] == 123.5


@pytest.mark.parametrize("bad", ["no", 0, 1, None, "False"])
def test_verify_must_be_a_bool(copy, bad):
    with pytest.raises(OptionError, match=rf"verify={bad!r}"):
        equiglb.load_scenario("eglb-2022", data_dir=copy, verify=bad)


def test_verify_false_still_refuses_a_header_only_file(copy):
    cut_rows(copy / "AI_workload.csv", 0)
    with pytest.raises(TraceError, match=r"AI_workload\.csv: header only"):
        equiglb.load_scenario("eglb-2022", data_dir=copy, verify=False)


def test_verify_false_still_refuses_a_file_cut_without_newline(copy):
    path = copy / "carbon" / "Denmark_carbon.csv"
    path.write_bytes(path.read_bytes().rstrip(b"\n")[:-2])
    with pytest.raises(TraceError, match=r"Denmark_carbon\.csv: the file does not end with a newline"):
        equiglb.load_scenario("eglb-2022", data_dir=copy, verify=False)


def test_verify_false_shorter_workload_warns_about_the_lost_split(copy):
    cut_rows(copy / "AI_workload.csv", 400)
    with pytest.warns(UserWarning, match=r"covers? 400 h.*\['test'\]"):
        scn = equiglb.load_scenario("eglb-2022", data_dir=copy, verify=False)
    assert scn.T == 400 and "test" not in scn.splits
    with pytest.raises(equiglb.ScenarioError, match="no split 'test'"):
        scn.split("test")


def test_verify_eglb_files_passes_on_the_published_folder(eglb_dir):
    verify_eglb_files(eglb_dir)  # every file of the manifest, including partial_mask.csv
    assert sum(size for size, _ in EGLB_2022_MANIFEST.values()) == sum(
        (eglb_dir / rel).stat().st_size for rel in EGLB_2022_MANIFEST)


def test_data_dir_is_a_file_or_missing(copy):
    with pytest.raises(TraceError, match="trace folder not found"):
        equiglb.load_scenario("eglb-2022", data_dir=copy / "AI_workload.csv")
    with pytest.raises(TraceError, match="nowhere: eGLB-2022 trace folder not found"):
        equiglb.load_scenario("eglb-2022", data_dir=copy / "nowhere")


@pytest.mark.parametrize("bad", [3, b"/tmp", ["a"], ""])
def test_data_dir_type(bad):
    with pytest.raises(OptionError, match="data_dir="):
        equiglb.load_scenario("eglb-2022", data_dir=bad)


# ---------------------------------------------------------------------- the hourly CSV reader

GOOD = "Time (UTC),Carbon (kg/kWh)\n2022-09-22 00,0.5\n2022-09-22 01,0.6\n2022-09-22 02,0.7\n"

CSV_CASES = {
    "empty": (b"", "the file is empty"),
    "header only": (b"Time (UTC),Carbon (kg/kWh)\n", "header only, no data rows"),
    "no final newline": (GOOD.rstrip("\n").encode(), "does not end with a newline"),
    "semicolons": (GOOD.replace(",", ";").encode(), "missing column 'Time (UTC)'"),
    "nan cell": (GOOD.replace("0.6", "nan").encode(), "non-numeric value nan in column 'Carbon (kg/kWh)' (row 3"),
    "text cell": (GOOD.replace("0.6", "abc").encode(), "non-numeric value 'abc' in column 'Carbon (kg/kWh)' (row 3"),
    "empty cell": (GOOD.replace("0.6", "").encode(), "missing or non-numeric value nan"),
    "overflow": (GOOD.replace("0.6", "1e400").encode(), "(row 3"),
    "decimal comma": (GOOD.replace("0.6", '"0,6"').encode(), "non-numeric value '0,6'"),
    "duplicate time": (GOOD.replace("2022-09-22 01", "2022-09-22 00").encode(), "duplicate timestamp"),
    "decreasing": (GOOD.replace("2022-09-22 02", "2022-09-21 23").encode(), "not increasing"),
    "gap": (GOOD.replace("2022-09-22 02", "2022-09-22 04").encode(), "gap of 3 h"),
    "bad time format": (GOOD.replace("2022-09-22 01", "22/09/2022 01h").encode(),
                        "unparseable timestamp '22/09/2022 01h'"),
    "negative": (GOOD.replace("0.6", "-0.6").encode(), "negative value -0.6"),
    "extra field": (GOOD.replace("0.6", "0.6,7").encode(), "cannot be read as CSV"),
    "latin-1": (GOOD.replace("Carbon", "Carbon").encode() + "2022-09-22 03,0.8 é\n".encode("latin-1"), "not UTF-8"),
    "missing value column": (b"Time (UTC),CO2\n2022-09-22 00,0.5\n", "missing column 'Carbon (kg/kWh)'"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_hourly_csv_refuses(tmp_path, case):
    data, needle = CSV_CASES[case]
    path = tmp_path / "Site_carbon.csv"
    path.write_bytes(data)
    with pytest.raises(TraceError) as err:
        read_hourly_csv(path, "Carbon (kg/kWh)")
    assert str(path) in str(err.value) and needle in str(err.value)


def test_hourly_csv_accepts_a_bom_and_crlf(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    ts, v = read_hourly_csv(path, "Carbon (kg/kWh)")
    assert v.tolist() == [0.5, 0.6, 0.7] and str(ts[0]) == "2022-09-22T00"


def test_hourly_csv_parses_numbers_exactly(tmp_path):
    vals = [0.1 + 0.2, 1 / 3, 2.0 ** -40, 123456789.123456789]
    rows = "".join(f"2022-09-22 {h:02d},{v!r}\n" for h, v in enumerate(vals))
    path = tmp_path / "exact.csv"
    path.write_text("Time (UTC),Carbon (kg/kWh)\n" + rows)
    assert read_hourly_csv(path, "Carbon (kg/kWh)")[1].tolist() == vals


@pytest.mark.parametrize("kind", ["folder", "symlink loop", "dangling symlink"])
def test_hourly_csv_not_a_file(tmp_path, kind):
    path = tmp_path / "x.csv"
    if kind == "folder":
        path.mkdir()
    elif kind == "symlink loop":
        os.symlink(tmp_path / "y.csv", path)
        os.symlink(path, tmp_path / "y.csv")
    else:
        os.symlink(tmp_path / "nothing.csv", path)
    with pytest.raises(TraceError, match=rf"{path}: file not found"):
        read_hourly_csv(path, "Carbon (kg/kWh)")


# ---------------------------------------------------------------------- the generic format

META = """\
name: tiny
sites:
  - {name: east, capacity_mw: 2.0}
  - {name: west, capacity_mw: 1.0}
regions: [na, eu]
splits: {train: [0, 2], test: [2, 1]}
"""


def signals(hours: int = 3, start: int = 0) -> list[str]:
    rows = ["time,site,signal,value"]
    for site in ("east", "west"):
        for h in range(start, start + hours):
            t = f"2024-01-01T{h:02d}:00Z"
            rows += [f"{t},{site},price,{10 + h}", f"{t},{site},carbon,0.{4 + h}", f"{t},{site},water,{2 + h}"]
    return rows


def demand(hours: int = 3, start: int = 0) -> list[str]:
    return ["time,region,demand"] + [f"2024-01-01T{h:02d}:00Z,{r},{0.5 + 0.1 * h:.1f}"
                                     for r in ("na", "eu") for h in range(start, start + hours)]


def folder(tmp_path: Path, meta: str = META, sig: list[str] | None = None, dem: list[str] | None = None,
           meta_name: str = "scenario.yaml") -> Path:
    d = tmp_path / "fleet"
    d.mkdir(exist_ok=True)
    (d / meta_name).write_text(meta)
    (d / "signals.csv").write_text("\n".join(signals() if sig is None else sig) + "\n")
    (d / "demand.csv").write_text("\n".join(demand() if dem is None else dem) + "\n")
    return d


def test_generic_baseline_folder_loads(tmp_path):
    s = equiglb.load_scenario("csv", data_dir=folder(tmp_path))
    assert (s.T, s.N, s.J) == (3, 2, 2) and s.capacity.tolist() == [2.0, 1.0]


META_CASES = {
    "duplicate yaml key": (META + "name: other\n", "duplicate key 'name'"),
    "capacity bool": (META.replace("capacity_mw: 2.0", "capacity_mw: true"),
                      "site 'east': field 'capacity_mw' must be a number, got True"),
    "capacity text": (META.replace("capacity_mw: 2.0", "capacity_mw: big"),
                      "field 'capacity_mw' must be a number, got 'big'"),
    "capacity negative": (META.replace("capacity_mw: 2.0", "capacity_mw: -2.0"), "'capacity' must be >= 0, got -2.0"),
    "capacity huge": (META.replace("capacity_mw: 2.0", "capacity_mw: 1.0e+300"), "'capacity' has the value 1e+300"),
    "capacity nan": (META.replace("capacity_mw: 2.0", "capacity_mw: .nan"), "field 'capacity_mw' must be finite"),
    "pue below 1": (META.replace("capacity_mw: 2.0", "capacity_mw: 2.0, pue: 0.5"), "'pue' must be >= 1"),
    "weights q text": (META + "weights: {q: two}\n", "field 'weights': q must be a number, got 'two'"),
    "weights bool": (META + "weights: {mu_carbon: true}\n", "field 'weights': mu_carbon must be a number, got True"),
    "weights unknown": (META + "weights: {mu_foo: 1}\n", "field 'weights'"),
    "weights list": (META + "weights: [1, 2]\n", "field 'weights' must be a mapping"),
    "weights huge": (META + "weights: {mu_water: 1.0e+300}\n", "Weights.mu_water=1e+300: magnitude"),
    "q below 1": (META + "weights: {q: 0.5}\n", "Weights.q=0.5: must be in [1, 100] or inf"),
    "splits list": (META.replace("splits: {train: [0, 2], test: [2, 1]}", "splits: [0, 2]"), "field 'splits' must map"),
    "split scalar": (META.replace("test: [2, 1]", "test: 2"), "split 'test' = 2 must be (start, length)"),
    "split fractional": (META.replace("test: [2, 1]", "test: [2, 0.5]"),
                         "split 'test' length=0.5: expected an integer"),
    "split text": (META.replace("test: [2, 1]", "test: [two, 1]"), "split 'test' start='two': expected an integer"),
    "split outside": (META.replace("test: [2, 1]", "test: [2, 99]"),
                      "split 'test' = (start=2, length=99) is outside 0..3"),
    "latency text": (META + "latency_ms: {na: {east: far, west: 1}, eu: {east: 1, west: 1}}\n",
                     "region 'na', site 'east' must be a number, got 'far'"),
    "latency missing pair": (META + "latency_ms: {na: {east: 1, west: 1}, eu: {east: 1}}\n",
                             "missing latency from region 'eu' to site 'west'"),
    "no sites": (META.replace("  - {name: east, capacity_mw: 2.0}\n  - {name: west, capacity_mw: 1.0}\n", " []\n"),
                 "field 'sites' must be a non-empty list"),
    "duplicate site": (META.replace("name: west", "name: east"), "duplicate name 'east' in 'sites'"),
    "unknown unit": (META + "units: {price: EUR/MWh}\n", "unknown price unit 'EUR/MWh'"),
    "unknown field": (META + "colour: blue\n", "unknown field(s) ['colour']"),
    "not a mapping": ("- a\n- b\n", "must be a mapping of fields, got list"),
    "yaml syntax": (META + "sites: [\n", "cannot be parsed"),
    "mask unknown site": (META + "mask: {eu: [north]}\n", "'eu' lists unknown name 'north'"),
    "region reaches nothing": (META + "mask: {eu: []}\n", "region 'eu' reaches no site"),
}


@pytest.mark.parametrize("case", list(META_CASES))
def test_generic_metadata_refused(tmp_path, case):
    meta, needle = META_CASES[case]
    d = folder(tmp_path, meta=meta)
    with pytest.raises(TraceError) as err:
        equiglb.load_scenario("csv", data_dir=d)
    assert "scenario.yaml" in str(err.value) and needle in str(err.value), str(err.value)


def test_generic_json_duplicate_key(tmp_path):
    d = folder(tmp_path, meta='{"name": "a", "name": "b", "sites": ["east", "west"], "regions": ["na", "eu"]}',
               meta_name="scenario.json")
    with pytest.raises(TraceError, match=r"scenario\.json: cannot be parsed \(duplicate key 'name'\)"):
        equiglb.load_scenario("csv", data_dir=d)


def test_generic_metadata_not_utf8(tmp_path):
    d = folder(tmp_path)
    (d / "scenario.yaml").write_bytes(META.encode() + "description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(TraceError, match=r"scenario\.yaml: not UTF-8"):
        equiglb.load_scenario("csv", data_dir=d)


TABLE_CASES = {
    "signals header only": ("sig", ["time,site,signal,value"], "signals.csv: header only"),
    "signals unknown site": ("sig", signals() + ["2024-01-01T00:00Z,north,price,1"], "site 'north' in column 'site'"),
    "signals missing series": ("sig", [r for r in signals() if not r.endswith(",west,water,2")
                                       and ",west,water," not in r], "no rows for site 'west', signal 'water'"),
    "signals unknown signal": ("sig", signals() + ["2024-01-01T00:00Z,east,wind,1"], "unknown signal 'wind'"),
    "signals nan": ("sig", [r.replace(",east,price,11", ",east,price,nan") for r in signals()], "non-numeric value"),
    "signals negative water": ("sig", [r.replace(",west,water,3", ",west,water,-3") for r in signals()],
                               "negative water -3.0 for site 'west'"),
    "demand negative": ("dem", [r.replace(",na,0.6", ",na,-0.6") for r in demand()],
                        "negative demand -0.6 for region 'na'"),
    "demand text": ("dem", [r.replace(",eu,0.7", ",eu,lots") for r in demand()],
                    "non-numeric value 'lots' in column 'demand'"),
    "demand duplicate hour": ("dem", demand() + ["2024-01-01T02:00Z,eu,0.9"], "duplicate timestamp"),
    "demand off the hour": ("dem", [r.replace("T01:00Z,na", "T01:30Z,na") for r in demand()], "is not on a whole hour"),
    "demand bad time": ("dem", [r.replace("2024-01-01T02:00Z,na", "yesterday,na") for r in demand()],
                        "unparseable timestamp 'yesterday'"),
    "demand missing column": ("dem", [r.replace("demand", "load", 1) if i == 0 else r for i, r in enumerate(demand())],
                              "missing column 'demand'"),
    "disjoint hours": ("dem", demand(3, start=10), "share no common hour"),
}


@pytest.mark.parametrize("case", list(TABLE_CASES))
def test_generic_tables_refused(tmp_path, case):
    which, rows, needle = TABLE_CASES[case]
    d = folder(tmp_path, sig=rows if which == "sig" else None, dem=rows if which == "dem" else None)
    with pytest.raises(TraceError) as err:
        equiglb.load_scenario("csv", data_dir=d)
    name = "signals.csv" if which == "sig" else "demand.csv"
    assert (name in str(err.value) or "fleet" in str(err.value)) and needle in str(err.value), str(err.value)


def test_generic_truncated_table(tmp_path):
    d = folder(tmp_path)
    (d / "demand.csv").write_bytes((d / "demand.csv").read_bytes().rstrip(b"\n")[:-1])
    with pytest.raises(TraceError, match=r"demand\.csv: the file does not end with a newline"):
        equiglb.load_scenario("csv", data_dir=d)


def test_generic_empty_table(tmp_path):
    d = folder(tmp_path)
    (d / "signals.csv").write_bytes(b"")
    with pytest.raises(TraceError, match=r"signals\.csv: the file is empty"):
        equiglb.load_scenario("csv", data_dir=d)


def test_generic_shorter_series_warns_and_keeps_the_common_hours(tmp_path):
    d = folder(tmp_path, sig=signals(5))
    with pytest.warns(UserWarning, match=r"keeps the 3 h common to all"):
        s = equiglb.load_scenario("csv", data_dir=d)
    assert s.T == 3


def test_generic_equal_series_do_not_warn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert equiglb.load_scenario("csv", data_dir=folder(tmp_path)).T == 3


def test_generic_bom_accepted(tmp_path):
    d = folder(tmp_path)
    (d / "signals.csv").write_bytes(b"\xef\xbb\xbf" + (d / "signals.csv").read_bytes())
    assert equiglb.load_scenario("csv", data_dir=d).price[0].tolist() == [10.0, 10.0]


def test_generic_no_metadata(tmp_path):
    d = folder(tmp_path)
    (d / "scenario.yaml").unlink()
    with pytest.raises(TraceError, match=r"fleet: no metadata file; expected one of"):
        equiglb.load_scenario("csv", data_dir=d)
