"""The eGLB-2022 loader: values equal to the files (read independently with the csv module), the
partial mask, and every bad-input case of the CSV reader (messages name file, column and value)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

import equiglb
from equiglb.traces.csvio import TraceError, read_hourly_csv
from equiglb.traces.eglb2022 import load_eglb_folder, read_partial_mask
from equiglb.traces.sites import EGLB_FILE_NAMES, EGLB_SITES


def read_columns(path: Path) -> tuple[list[str], list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [r[0] for r in rows[1:]], [float(r[1]) for r in rows[1:]]


def test_shape_and_conventions(eglb):
    assert (eglb.T, eglb.N, eglb.J, eglb.K) == (457, 10, 10, 1)
    assert eglb.site_names == EGLB_SITES and eglb.region_names == EGLB_SITES
    assert str(eglb.timestamps[0]) == "2022-09-22T00" and str(eglb.timestamps[-1]) == "2022-10-11T00"
    assert np.all(eglb.capacity == 1.0) and eglb.mask.all() and np.all(eglb.energy_per_unit == 1.0)
    assert np.all(eglb.pue == 1.0)
    assert eglb.demand.max() == pytest.approx(1.0, abs=0.01)  # 2708 W is the trace maximum
    assert eglb.splits["train"] == (0, 336) and eglb.splits["test"] == (336, 121)


def test_values_equal_files(eglb_dir, eglb):
    times, power = read_columns(eglb_dir / "AI_workload.csv")
    assert len(times) == 457
    np.testing.assert_array_equal(np.array(times, dtype="datetime64[h]"), eglb.timestamps)
    for j in range(10):
        np.testing.assert_allclose(eglb.demand[:, j], np.array(power) / 2708.0, rtol=1e-13)
    folders = {"price": "price/{}_Price.csv", "carbon": "carbon/{}_carbon.csv", "water": "water/{}_water.csv"}
    for sig, pattern in folders.items():
        arr = getattr(eglb, sig)
        for i, fname in enumerate(EGLB_FILE_NAMES):
            t, v = read_columns(eglb_dir / pattern.format(fname))
            assert t[0] == "2022-09-22 00" and len(v) >= 457  # six price files are 24 h longer
            np.testing.assert_allclose(arr[:, i], v[:457], rtol=1e-13, err_msg=f"{sig} {fname}")


def test_partial_mask_equals_file(eglb_dir):
    scn = equiglb.load_scenario("eglb-2022-partial", data_dir=eglb_dir)
    with open(eglb_dir / "partial_mask.csv", newline="") as f:
        rows = list(csv.reader(f))
    expected = np.array([[int(v) for v in r[1:]] for r in rows[1:]], dtype=bool)
    np.testing.assert_array_equal(scn.mask, expected)
    assert scn.name == "eglb-2022-partial" and not scn.mask.all()


def test_missing_folder_message(tmp_path, monkeypatch):
    with pytest.raises(TraceError, match="trace folder not found"):
        load_eglb_folder(tmp_path / "nope")
    monkeypatch.delenv("EQUIGLB_EGLB_2022_DIR", raising=False)
    monkeypatch.setenv("EQUIGLB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(TraceError, match="fetch eglb-2022"):
        equiglb.load_scenario("eglb-2022")


def test_env_var_and_missing_file_in_copy(eglb_dir, tmp_path, monkeypatch):
    copy = tmp_path / "eglb"
    shutil.copytree(eglb_dir, copy)
    monkeypatch.setenv("EQUIGLB_EGLB_2022_DIR", str(copy))
    assert equiglb.load_scenario("eglb-2022").T == 457
    (copy / "water").chmod(0o755)  # the shared folder is read-only; its copy keeps the modes
    (copy / "water" / "Denmark_water.csv").unlink()
    with pytest.raises(TraceError, match=r"Denmark_water\.csv: file of the eGLB-2022 traces not found"):
        equiglb.load_scenario("eglb-2022")


# ---------------------------------------------------------------------- the CSV reader, bad inputs
def write(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = "Time (UTC),Carbon (kg/kWh)\n2022-09-22 00,0.5\n2022-09-22 01,0.4\n2022-09-22 02,0.3\n"


def test_reader_good_and_leading_space(tmp_path):
    ts, v = read_hourly_csv(write(tmp_path, GOOD), "Carbon (kg/kWh)")
    assert ts.size == 3 and v.tolist() == [0.5, 0.4, 0.3]
    ts, v = read_hourly_csv(write(tmp_path, "Time (UTC), WUE (L/kWh)\n2022-09-22 00,1\n"), "WUE (L/kWh)")
    assert v.tolist() == [1.0]


@pytest.mark.parametrize("text, needles", [
    ("Time (UTC),Price\n2022-09-22 00,1\n", ["x.csv", "missing column 'Carbon (kg/kWh)'", "'Price'"]),
    ("When,Carbon (kg/kWh)\n2022-09-22 00,1\n", ["x.csv", "missing column 'Time (UTC)'"]),
    (GOOD.replace("2022-09-22 01", "22/09/2022 1am"), ["x.csv", "unparseable timestamp '22/09/2022 1am'", "row 3"]),
    (GOOD.replace("2022-09-22 01", "2022-09-22 00"), ["x.csv", "duplicate timestamp 2022-09-22T00"]),
    ("Time (UTC),Carbon (kg/kWh)\n2022-09-22 01,1\n2022-09-22 00,1\n", ["x.csv", "not increasing",
                                                                          "2022-09-22T01 then 2022-09-22T00"]),
    (GOOD.replace("2022-09-22 02", "2022-09-22 05"), ["x.csv", "gap of 4 h", "2022-09-22T01", "2022-09-22T05"]),
    (GOOD.replace(",0.4", ","), ["x.csv", "missing or non-numeric value nan", "'Carbon (kg/kWh)'", "row 3"]),
    (GOOD.replace(",0.4", ",abc"), ["x.csv", "non-numeric value 'abc'", "row 3"]),
    (GOOD.replace(",0.4", ",-0.4"), ["x.csv", "negative value -0.4", "'Carbon (kg/kWh)'", "row 3"]),
])
def test_reader_bad_inputs_name_the_problem(tmp_path, text, needles):
    with pytest.raises(TraceError) as err:
        read_hourly_csv(write(tmp_path, text), "Carbon (kg/kWh)")
    for n in needles:
        assert n in str(err.value), (n, str(err.value))


def test_reader_missing_file_and_negative_price_allowed(tmp_path):
    with pytest.raises(TraceError, match=r"nope\.csv: file not found"):
        read_hourly_csv(tmp_path / "nope.csv", "Price (USD/MWh)")
    p = write(tmp_path, "Time (UTC),Price (USD/MWh)\n2022-09-22 00,-65.5\n")
    assert read_hourly_csv(p, "Price (USD/MWh)", nonnegative=False)[1].tolist() == [-65.5]


def test_partial_mask_bad_inputs(tmp_path):
    names = ",".join(EGLB_FILE_NAMES)
    rows = "\n".join(f"{n}," + ",".join("1" for _ in EGLB_FILE_NAMES) for n in EGLB_FILE_NAMES)
    good = write(tmp_path, f"data_center,{names}\n{rows}\n", "m.csv")
    assert read_partial_mask(good).all()
    bad = write(tmp_path, good.read_text().replace("Japan,1", "Japan,2"), "m2.csv")
    with pytest.raises(TraceError, match=r"m2\.csv: mask entries must be 0 or 1"):
        read_partial_mask(bad)
    swapped = write(tmp_path, good.read_text().replace("\nTexas,", "\nTexass,"), "m3.csv")
    with pytest.raises(TraceError, match=r"m3\.csv: rows .*Texass"):
        read_partial_mask(swapped)
