"""Reading hourly CSV series with validation. Every error names the file, the field and the value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from equiglb.scenario import ScenarioError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TraceError", "read_hourly_csv", "check_hourly", "read_csv_checked"]


class TraceError(ScenarioError):
    """A trace file is missing or malformed."""


def _show(v: object) -> str:
    """repr of a cell value without numpy's type wrapper (``nan``, not ``np.float64(nan)``)."""
    return repr(v.item() if hasattr(v, "item") else v)


def exact_float_options(pandas_version: str) -> dict[str, Any]:
    """The ``read_csv`` options that parse every float exactly (to the nearest double, as ``float(text)``):
    ``float_precision="round_trip"`` under pandas 2 (its default parser may be 1 ulp off); none under pandas 3,
    which parses exactly by default and deprecates the option (a warning per call). Asked of the imported
    pandas when a file is read, so that importing equiglb reads no package metadata."""
    return {"float_precision": "round_trip"} if int(pandas_version.split(".")[0]) < 3 else {}


def read_csv_checked(path: Path) -> pd.DataFrame:
    """Read a CSV file with the checks every trace file gets, naming the file in every error.

    Refused: a missing or unreadable file (a folder, a symlink loop, no permission), an empty file, a
    file that does not end with a newline (a truncated download or copy: its last value may be cut
    mid-number), text that is not UTF-8, and a file with a header but no data rows. A UTF-8 byte-order
    mark is accepted. Numbers are parsed exactly (:func:`exact_float_options`).
    """
    import pandas as pd  # noqa: PLC0415  (pandas loads only when a trace file is read)

    if not path.is_file():
        raise TraceError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                raise TraceError(f"{path}: the file is empty")
            f.seek(size - 1)
            last = f.read(1)
    except OSError as exc:
        raise TraceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if last not in (b"\n", b"\r"):
        raise TraceError(f"{path}: the file does not end with a newline; it looks truncated (its last value may be "
                         f"cut mid-number). If the file is complete, add a final newline")
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", **exact_float_options(pd.__version__))
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8 CSV") from None
    except Exception as exc:  # pandas raises many types for malformed files
        raise TraceError(f"{path}: cannot be read as CSV ({str(exc).strip()})") from None
    if len(df) == 0:
        raise TraceError(f"{path}: header only, no data rows (columns {[str(c) for c in df.columns]})")
    return df


def _find_column(df: pd.DataFrame, wanted: str, path: Path) -> str:
    """The column whose name equals ``wanted`` after stripping spaces (upstream has ' WUE (L/kWh)')."""
    for col in df.columns:
        if str(col).strip() == wanted.strip():
            return col
    raise TraceError(f"{path}: missing column {wanted!r}; the file has columns {[str(c) for c in df.columns]}")


def check_hourly(ts: np.ndarray, path: os.PathLike | str, field: str = "time") -> None:
    """Raise TraceError unless ``ts`` (datetime64[h]) is strictly increasing by exactly one hour."""
    if ts.size < 2:
        return
    d = np.diff(ts).astype(np.int64)
    if np.any(d == 0):
        k = int(np.argmax(d == 0))
        raise TraceError(f"{path}: duplicate timestamp {ts[k + 1]} in column {field!r} (row {k + 3})")
    if np.any(d < 0):
        k = int(np.argmax(d < 0))
        raise TraceError(f"{path}: timestamps not increasing in column {field!r}: {ts[k]} then {ts[k + 1]} "
                         f"(row {k + 3})")
    if np.any(d != 1):
        k = int(np.argmax(d != 1))
        raise TraceError(f"{path}: gap of {int(d[k])} h in column {field!r} between {ts[k]} and {ts[k + 1]} "
                         f"(rows {k + 2}-{k + 3}); hourly data without gaps is required")


def read_hourly_csv(path: os.PathLike | str, value_column: str, time_column: str = "Time (UTC)",
                    nonnegative: bool = True, time_format: str | None = "%Y-%m-%d %H") -> tuple[np.ndarray, np.ndarray]:
    """Read one hourly series: returns (timestamps as datetime64[h] UTC, float64 values).

    Checks: those of :func:`read_csv_checked`, both columns exist (names compared without surrounding spaces),
    timestamps parse and are hourly, strictly increasing and without gaps, values are finite,
    and (if ``nonnegative``) not negative.
    """
    import pandas as pd  # noqa: PLC0415

    path = Path(path)
    df = read_csv_checked(path)
    tcol = _find_column(df, time_column, path)
    vcol = _find_column(df, value_column, path)
    raw_t = df[tcol].astype(str).str.strip()
    parsed = pd.to_datetime(raw_t, format=time_format, errors="coerce", utc=True)
    if parsed.isna().any():
        k = int(np.argmax(parsed.isna().to_numpy()))
        raise TraceError(f"{path}: unparseable timestamp {raw_t.iloc[k]!r} in column {str(tcol)!r} (row {k + 2})")
    ts = parsed.dt.tz_convert(None).to_numpy().astype("datetime64[h]")
    check_hourly(ts, path, str(tcol))
    values = pd.to_numeric(df[vcol], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.argmax(bad))
        raise TraceError(f"{path}: missing or non-numeric value {_show(df[vcol].iloc[k])} in column {str(vcol)!r} "
                         f"(row {k + 2}, {ts[k]})")
    if nonnegative and np.any(values < 0):
        k = int(np.argmax(values < 0))
        raise TraceError(f"{path}: negative value {float(values[k])!r} in column {str(vcol)!r} (row {k + 2}, {ts[k]}); "
                         f"this signal must be >= 0")
    return ts, values
