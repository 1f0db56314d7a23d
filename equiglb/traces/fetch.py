"""Download the real eGLB-2022 traces at a pinned upstream commit, verified by sha256, into the cache.

``fetch("eglb-2022")`` (or ``python -m equiglb.traces fetch eglb-2022``) downloads every data file of
``Ren-Research/Environmentally-Equitable-AI`` at :data:`equiglb.traces.EGLB_2022_COMMIT` (MIT
licence) from ``https://raw.githubusercontent.com/Ren-Research/Environmentally-Equitable-AI/<commit>/data/``
into ``cache_root()/eglb-2022/<commit>/``, where ``load_scenario("eglb-2022")`` finds it.

* Every file is checked against the sha256 embedded below before it is kept; files are written
  atomically (temporary file + ``os.replace``), so an interrupted or failed download never leaves
  a partial or wrong file, and files already verified stay in place (a second fetch only checks them).
* ``partial_mask.csv`` is not upstream (the study's partial mask is in upstream ``utils/Notes.md``):
  it is written from :data:`EGLB_PARTIAL_MASK` and checked against its sha256 like the others.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from equiglb.traces.csvio import TraceError

__all__ = ["fetch", "FetchError", "EGLB_2022_SHA256", "EGLB_PARTIAL_MASK", "partial_mask_csv", "sha256_file"]

UPSTREAM_RAW = "https://raw.githubusercontent.com/Ren-Research/Environmentally-Equitable-AI/{commit}/data"


class FetchError(TraceError):
    """A download failed (offline, HTTP error) or a file did not match its sha256."""


#: sha256 of every file of the eGLB-2022 folder (upstream ``data/`` plus the generated partial mask).
EGLB_2022_SHA256: dict[str, str] = {
    "AI_workload.csv": "9db79f5c7d22afe39841eb61f66913746baa19a8a8845e957e8c677c1e220095",
    "carbon/Belguim_carbon.csv": "8ab159e5e44a483f0f9866d2e600bcff51807b980b2347821353ad2248b2414a",
    "carbon/Denmark_carbon.csv": "7b31b972a1577684a7116379e1b0451aef79e72f624a7b7f4645dfbf230d6523",
    "carbon/Georgia_carbon.csv": "8467306f9a2fe658dc9dab48a382d86df73a03fff786d56303b1b79e7d16052c",
    "carbon/Germany_carbon.csv": "2dcccb86faa3bf30a3ac56d5670d7ba36e07e38f3b15b7342543914ff42068d9",
    "carbon/Japan_carbon.csv": "a9d39ee800dcc2e3f8a2d4a77f67fca1b9673e19efe5c0f7d830ae1cb1efe7f2",
    "carbon/Netherlands_carbon.csv": "a69311f5df0a0bf8e32c8590c9d1c77ade3c893285d7d9c5b1663f4c0eeb1d25",
    "carbon/Nevada_carbon.csv": "7e732f72b6db4100b0067c321469c1583f8b7785b56885a8d5ce846a03b8c976",
    "carbon/Singapore_carbon.csv": "f758a6485fccf5bf62529d926392fb2e3a2fba0e39f8ce47022ab26a4f16396e",
    "carbon/Texas_carbon.csv": "a5524e9f80370bd561397fd3e52e6de028fa514cd8012ab5b896529c4b138d56",
    "carbon/Virginia_carbon.csv": "1cab8404da0b8362f42a4c1ced960502854e0e5ab9eb98f8b8d6121353691c22",
    "price/Belguim_Price.csv": "688152dee8cba65f0e11f9f32731eed97480f39468142c2071aaf645c9676396",
    "price/Denmark_Price.csv": "62d2bff7e9d6f43138e880060a702a14749c867d470198ee6f4f189e2bedecee",
    "price/Georgia_Price.csv": "c5a38a89b5e804ddda77a110905b455f7f9d36d9010b4d5a40d63a219218527e",
    "price/Germany_Price.csv": "e75071376cbbb06addced661c6b367c7fa60dc4ebf976f7a0218daf1436e3368",
    "price/Japan_Price.csv": "d2414a5d5bf64c7843900bca4d9f4312f52f71ef6ad5bd99a2f60cf2e6023690",
    "price/Netherlands_Price.csv": "c30783e1f4bf5cf2bec00ff6b9d16f8b5e331fb824dec034de65dfedde97fa23",
    "price/Nevada_Price.csv": "7730ce4d12b79dec82595511d60ee42877af58c55f07e3318dfe84fffec00aca",
    "price/Singapore_Price.csv": "c7ee81d8e45fa97d15efbae79687ed09101f719d5ef810c850b4aae505baac3c",
    "price/Texas_Price.csv": "945a90829f105e9c5a6566702c7057f5665ba293dbb2f90fc6c0ae4b0e6e7f0f",
    "price/Virginia_Price.csv": "602ae22333bc81b0a6892f1ab530bc9a0eec0762d38038d2076872bf73e7a128",
    "water/Belguim_water.csv": "fe3bca7b791a29af122a144ba4b3d5717e9a419a1c02a679e54579e6a2315864",
    "water/Denmark_water.csv": "d85ef6671d0b25047affcaa5ceaa6c67d5c6e1636a52cf91a47f126f7afed80d",
    "water/Georgia_water.csv": "bdffcea0555c15f962af87d9345acf1080cdcae02f31edecda8da528517b681f",
    "water/Germany_water.csv": "c70a0b18345ea56466122dcfce22412462158382c47b35449aaccb20b697701c",
    "water/Japan_water.csv": "a0c6d720ca83c99afc86bacc2ac4f17a666872f0cf3fdf50974d871974f2b832",
    "water/Netherlands_water.csv": "6cc86346e60457c25b6b1d2274864a1dd55f6b5b8906ed2cdbbe3901872a68b8",
    "water/Nevada_water.csv": "38c0d82a0fcf6f27ce8139ecc81e4ef1cbfc7a0e6fcbcf2ac16ccf1a18043347",
    "water/Singapore_water.csv": "4d55a18d741252b1b87a7c2fd91cdec65ddbb9adb4f23a8d015bfe89195bf210",
    "water/Texas_water.csv": "62308aadb3e677bd082d08f2cec1fcffd57eb2d73be893401910612a650f1a8f",
    "water/Virginia_water.csv": "bd2344aec93ed3a4eeb2a960b24b63a30424b115a4b19d70f5ef4fd899a72f51",
    "partial_mask.csv": "8ea3bdaa87dacaf17000f534685d87ace6823342dcbdbd4a1bd235a84dc3e5b4",
}
_GENERATED = ("partial_mask.csv",)

#: The eGLB partial-connection mask (row data center i, column gateway j), sites in the study's order
#: (Texas, Virginia, Georgia, Nevada, Germany, Belgium, Netherlands, Denmark, Japan, Singapore), as in
#: upstream utils/Notes.md.
EGLB_PARTIAL_MASK = np.array([
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],  # Texas
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],  # Virginia
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],  # Georgia
    [1, 1, 1, 1, 0, 0, 0, 0, 1, 1],  # Nevada
    [0, 1, 1, 0, 1, 1, 1, 1, 0, 0],  # Germany
    [0, 1, 1, 0, 1, 1, 1, 1, 0, 0],  # Belgium
    [0, 1, 1, 0, 1, 1, 1, 1, 0, 0],  # Netherlands
    [0, 1, 1, 0, 1, 1, 1, 1, 0, 0],  # Denmark
    [0, 0, 0, 1, 0, 0, 0, 0, 1, 1],  # Japan
    [0, 0, 0, 1, 0, 0, 0, 0, 1, 1],  # Singapore
], dtype=bool)


def partial_mask_csv() -> bytes:
    """The bytes of ``partial_mask.csv`` (upstream file spellings, ``\\n`` line ends)."""
    from equiglb.traces.sites import EGLB_FILE_NAMES

    lines = ["data_center," + ",".join(EGLB_FILE_NAMES)]
    for name, row in zip(EGLB_FILE_NAMES, EGLB_PARTIAL_MASK.astype(int)):
        lines.append(name + "," + ",".join(str(v) for v in row))
    return ("\n".join(lines) + "\n").encode()


def sha256_file(path: os.PathLike | str) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(url: str, timeout_s: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot download {url}: {reason}. Are you offline? Without network, pass "
                         f"data_dir=<a local copy of the eGLB-2022 folder> instead") from None


def fetch(dataset: str = "eglb-2022", cache_dir: os.PathLike | str | None = None, base_url: str | None = None,
          commit: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download (or verify the cached copy of) a trace set; returns the folder.

    Args:
        dataset: ``"eglb-2022"`` (the only one).
        cache_dir: cache root; default :func:`equiglb.traces.cache_root`. Files go to
            ``<cache_dir>/eglb-2022/<commit>/``.
        base_url: URL of a folder laid out like upstream ``data/`` (a mirror, or a local test
            server); default the raw GitHub URL at the pinned commit.
        commit: upstream commit (default :data:`equiglb.traces.EGLB_2022_COMMIT`); the embedded
            checksums are those of that commit's files.
        timeout_s: network timeout per file, seconds.

    Raises:
        FetchError: offline or HTTP error (naming the URL), or a checksum mismatch (naming the
            file, expected and actual sha256; the bad file is not written).
    """
    from equiglb.traces import EGLB_2022_COMMIT, cache_root

    if dataset != "eglb-2022":
        raise FetchError(f"unknown dataset {dataset!r}; available: ['eglb-2022']")
    commit = commit or EGLB_2022_COMMIT
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / "eglb-2022" / commit
    base = (base_url or UPSTREAM_RAW.format(commit=commit)).rstrip("/")
    for rel, expected in EGLB_2022_SHA256.items():
        dest = target / rel
        if dest.is_file() and sha256_file(dest) == expected:
            continue
        data = partial_mask_csv() if rel in _GENERATED else _download(f"{base}/{rel}", timeout_s)
        got = hashlib.sha256(data).hexdigest()
        if got != expected:
            source = "generated from EGLB_PARTIAL_MASK" if rel in _GENERATED else f"{base}/{rel}"
            raise FetchError(f"checksum mismatch for {rel} ({source}): expected sha256 {expected}, got {got}; "
                             f"the file was not saved")
        _write_atomic(dest, data)
    return target
