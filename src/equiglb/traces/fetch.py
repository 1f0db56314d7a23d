"""Download the real traces at a pinned upstream commit, verified by sha256, into the cache.

Three data sets: ``"eglb-2022"`` (below), and the two behind the ``world`` scenario,
``"sustain-cluster"`` (HewlettPackard/sustain-cluster: Electricity Maps carbon and prices, Open-Meteo
weather) and ``"servegen"`` (alibaba/ServeGen: language-model request rates), whose manifests (path,
size, sha256 at the pinned commit) are the JSON files of ``src/equiglb/traces/manifests/``
(:data:`PINNED_DATASETS`). The guarantees below hold for all three.

``fetch("eglb-2022")`` (or ``python -m equiglb.traces fetch eglb-2022``) downloads every data file of
``Ren-Research/Environmentally-Equitable-AI`` at :data:`equiglb.traces.EGLB_2022_COMMIT` (MIT
licence) from ``https://raw.githubusercontent.com/Ren-Research/Environmentally-Equitable-AI/<commit>/data/``
into ``cache_root()/eglb-2022/<commit>/``, where ``load_scenario("eglb-2022")`` finds it.

* Every file is checked against the size and sha256 of the manifest embedded below before it is kept;
  downloads stream to a temporary file, are cut off at the pinned size and at ``timeout_s``, and are
  moved into place atomically (``os.replace``), so an interrupted or failed download never leaves a
  partial or wrong file, and files already verified stay in place (a second fetch only checks them).
* :func:`verify_eglb_files` checks a folder against the same manifest; ``load_scenario("eglb-2022")``
  calls it on every file it reads (opt out with ``verify=False``).
* ``partial_mask.csv`` is not upstream (the study's partial mask is in upstream ``utils/Notes.md``):
  it is written from :data:`EGLB_PARTIAL_MASK` and checked against its sha256 like the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from equiglb.traces.csvio import TraceError
from equiglb.traces.sites import EGLB_FILE_NAMES
from equiglb.validate import as_float, as_path

__all__ = ["fetch", "cache_root", "EGLB_2022_COMMIT", "FetchError", "IntegrityError", "EGLB_2022_MANIFEST",
           "EGLB_2022_SHA256", "EGLB_PARTIAL_MASK", "partial_mask_csv", "sha256_file", "verify_eglb_files",
           "PinnedDataset", "PINNED_DATASETS", "DATASET_NAMES", "verify_dataset_files"]

#: Pinned upstream commit of the eGLB-2022 traces (Ren-Research/Environmentally-Equitable-AI).
EGLB_2022_COMMIT = "182da36005763374f072c74791b18cd9fd11d724"

UPSTREAM_RAW = ("https://raw.githubusercontent.com/Ren-Research/Environmentally-Equitable-AI/"
                "{commit}/data")


def cache_root() -> Path:
    """Download cache: ``$EQUIGLB_CACHE``, else ``$XDG_CACHE_HOME/equiglb``, else ``~/.cache/equiglb``."""
    if os.environ.get("EQUIGLB_CACHE"):
        return Path(os.environ["EQUIGLB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "equiglb"


class FetchError(TraceError):
    """A download failed (offline, HTTP error, invalid URL, wrong length, timeout) or a file did not match its
    sha256."""


class IntegrityError(TraceError):
    """A file of a pinned data set (eGLB-2022) is missing or differs from the manifest (size or sha256)."""


#: The pinned manifest of the eGLB-2022 folder (upstream ``data/`` plus the generated partial mask):
#: relative path -> (size in bytes, sha256). Downloads and :func:`verify_eglb_files` check both.
EGLB_2022_MANIFEST: dict[str, tuple[int, str]] = {
    "AI_workload.csv": (14814, "9db79f5c7d22afe39841eb61f66913746baa19a8a8845e957e8c677c1e220095"),
    "carbon/Belguim_carbon.csv": (15230, "8ab159e5e44a483f0f9866d2e600bcff51807b980b2347821353ad2248b2414a"),
    "carbon/Denmark_carbon.csv": (15437, "7b31b972a1577684a7116379e1b0451aef79e72f624a7b7f4645dfbf230d6523"),
    "carbon/Georgia_carbon.csv": (15286, "8467306f9a2fe658dc9dab48a382d86df73a03fff786d56303b1b79e7d16052c"),
    "carbon/Germany_carbon.csv": (15288, "2dcccb86faa3bf30a3ac56d5670d7ba36e07e38f3b15b7342543914ff42068d9"),
    "carbon/Japan_carbon.csv": (15303, "a9d39ee800dcc2e3f8a2d4a77f67fca1b9673e19efe5c0f7d830ae1cb1efe7f2"),
    "carbon/Netherlands_carbon.csv": (15270, "a69311f5df0a0bf8e32c8590c9d1c77ade3c893285d7d9c5b1663f4c0eeb1d25"),
    "carbon/Nevada_carbon.csv": (15294, "7e732f72b6db4100b0067c321469c1583f8b7785b56885a8d5ce846a03b8c976"),
    "carbon/Singapore_carbon.csv": (15069, "f758a6485fccf5bf62529d926392fb2e3a2fba0e39f8ce47022ab26a4f16396e"),
    "carbon/Texas_carbon.csv": (15311, "a5524e9f80370bd561397fd3e52e6de028fa514cd8012ab5b896529c4b138d56"),
    "carbon/Virginia_carbon.csv": (15292, "1cab8404da0b8362f42a4c1ced960502854e0e5ab9eb98f8b8d6121353691c22"),
    "price/Belguim_Price.csv": (15622, "688152dee8cba65f0e11f9f32731eed97480f39468142c2071aaf645c9676396"),
    "price/Denmark_Price.csv": (15562, "62d2bff7e9d6f43138e880060a702a14749c867d470198ee6f4f189e2bedecee"),
    "price/Georgia_Price.csv": (9167, "c5a38a89b5e804ddda77a110905b455f7f9d36d9010b4d5a40d63a219218527e"),
    "price/Germany_Price.csv": (15595, "e75071376cbbb06addced661c6b367c7fa60dc4ebf976f7a0218daf1436e3368"),
    "price/Japan_Price.csv": (15573, "d2414a5d5bf64c7843900bca4d9f4312f52f71ef6ad5bd99a2f60cf2e6023690"),
    "price/Netherlands_Price.csv": (14808, "c30783e1f4bf5cf2bec00ff6b9d16f8b5e331fb824dec034de65dfedde97fa23"),
    "price/Nevada_Price.csv": (8986, "7730ce4d12b79dec82595511d60ee42877af58c55f07e3318dfe84fffec00aca"),
    "price/Singapore_Price.csv": (15653, "c7ee81d8e45fa97d15efbae79687ed09101f719d5ef810c850b4aae505baac3c"),
    "price/Texas_Price.csv": (9167, "945a90829f105e9c5a6566702c7057f5665ba293dbb2f90fc6c0ae4b0e6e7f0f"),
    "price/Virginia_Price.csv": (8824, "602ae22333bc81b0a6892f1ab530bc9a0eec0762d38038d2076872bf73e7a128"),
    "water/Belguim_water.csv": (14661, "fe3bca7b791a29af122a144ba4b3d5717e9a419a1c02a679e54579e6a2315864"),
    "water/Denmark_water.csv": (14797, "d85ef6671d0b25047affcaa5ceaa6c67d5c6e1636a52cf91a47f126f7afed80d"),
    "water/Georgia_water.csv": (14661, "bdffcea0555c15f962af87d9345acf1080cdcae02f31edecda8da528517b681f"),
    "water/Germany_water.csv": (14655, "c70a0b18345ea56466122dcfce22412462158382c47b35449aaccb20b697701c"),
    "water/Japan_water.csv": (14814, "a0c6d720ca83c99afc86bacc2ac4f17a666872f0cf3fdf50974d871974f2b832"),
    "water/Netherlands_water.csv": (14865, "6cc86346e60457c25b6b1d2274864a1dd55f6b5b8906ed2cdbbe3901872a68b8"),
    "water/Nevada_water.csv": (14648, "38c0d82a0fcf6f27ce8139ecc81e4ef1cbfc7a0e6fcbcf2ac16ccf1a18043347"),
    "water/Singapore_water.csv": (14663, "4d55a18d741252b1b87a7c2fd91cdec65ddbb9adb4f23a8d015bfe89195bf210"),
    "water/Texas_water.csv": (14639, "62308aadb3e677bd082d08f2cec1fcffd57eb2d73be893401910612a650f1a8f"),
    "water/Virginia_water.csv": (14646, "bd2344aec93ed3a4eeb2a960b24b63a30424b115a4b19d70f5ef4fd899a72f51"),
    "partial_mask.csv": (376, "8ea3bdaa87dacaf17000f534685d87ace6823342dcbdbd4a1bd235a84dc3e5b4"),
}
#: sha256 of every file of the manifest (a view of :data:`EGLB_2022_MANIFEST`).
EGLB_2022_SHA256: dict[str, str] = {rel: digest for rel, (_, digest) in EGLB_2022_MANIFEST.items()}
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


def verify_eglb_files(folder: os.PathLike | str, files: Iterable[str] | None = None) -> None:
    """Check files of an eGLB-2022 folder against :data:`EGLB_2022_MANIFEST` (size, then sha256).

    Args:
        folder: the folder in the upstream layout (a ``data_dir`` or the download cache).
        files: relative paths to check (default: every file of the manifest).

    Raises:
        IntegrityError: naming the first file that is missing or differs, with expected and actual size
            or sha256.
    """
    _verify(Path(folder), EGLB_2022_MANIFEST if files is None else files, EGLB_2022_MANIFEST,
            "the eGLB-2022 traces", "eGLB-2022", "eglb-2022")


@dataclasses.dataclass(frozen=True)
class PinnedDataset:
    """A public data set pinned at one upstream commit: where to download it and what every file must be.

    Attributes:
        name: the dataset's folder name (``data_dir/<name>/``, ``<cache>/<name>/<commit>/``).
        repository: upstream GitHub ``owner/name``.
        commit: the pinned upstream commit (40 hex digits).
        manifest: relative path (upstream layout) -> (size in bytes, sha256).
        licence: the licences of the files, as stated upstream (docs/data.md has the attribution).
    """

    name: str
    repository: str
    commit: str
    manifest: Mapping[str, tuple[int, str]]
    licence: str

    @property
    def raw_url(self) -> str:
        """The raw-file URL of the repository root at the pinned commit (files are ``<raw_url>/<path>``)."""
        return f"https://raw.githubusercontent.com/{self.repository}/{self.commit}"


def _load_manifest(name: str, licence: str) -> PinnedDataset:
    data = json.loads((Path(__file__).with_name("manifests") / f"{name}.json").read_text(encoding="utf-8"))
    files = {str(rel): (int(v[0]), str(v[1])) for rel, v in data["files"].items()}
    return PinnedDataset(name=name, repository=data["repository"], commit=data["commit"], manifest=files,
                         licence=licence)


#: The data sets of the ``world`` scenario, by name (manifests in ``src/equiglb/traces/manifests/``).
PINNED_DATASETS: dict[str, PinnedDataset] = {
    "sustain-cluster": _load_manifest(
        "sustain-cluster", "code MIT; carbon and prices Electricity Maps (ODbL 1.0; some prices GridStatus.io); "
                           "weather Open-Meteo (CC BY 4.0); egress prices from the clouds' public price lists"),
    "servegen": _load_manifest("servegen", "Apache-2.0 (alibaba/ServeGen)"),
}
#: Every name :func:`fetch` accepts.
DATASET_NAMES: tuple[str, ...] = ("eglb-2022", *PINNED_DATASETS)


def verify_dataset_files(name: str, folder: os.PathLike | str, files: Iterable[str] | None = None) -> None:
    """Check files of a pinned data set's folder against its manifest (size, then sha256).

    Args:
        name: ``"eglb-2022"`` or a key of :data:`PINNED_DATASETS`.
        folder: the dataset's folder in the upstream layout (``data_dir/<name>`` or the download cache).
        files: relative paths to check (default: every file of the manifest).

    Raises:
        IntegrityError: naming the first file that is missing or differs, with expected and actual size
            or sha256.
    """
    if name == "eglb-2022":
        verify_eglb_files(folder, files)
        return
    if name not in PINNED_DATASETS:
        raise FetchError(f"unknown dataset {name!r}; available: {list(DATASET_NAMES)}")
    manifest = PINNED_DATASETS[name].manifest
    _verify(Path(folder), manifest if files is None else files, manifest, f"the {name} data set", name, name)


def _verify(d: Path, files: Iterable[str], manifest: Mapping[str, tuple[int, str]], what: str, label: str,
            name: str) -> None:
    """Check ``files`` of folder ``d`` against ``manifest`` (size, then sha256); :class:`IntegrityError`
    names the first file that is missing or differs (``what``: the data set's description in messages,
    ``label``: the manifest's, ``name``: the fetch command's dataset name)."""
    hint = (f"restore it (`python -m equiglb.traces fetch {name}` downloads a verified copy), or pass "
            f"verify=False to load a copy you edited on purpose")
    for rel in files:
        size, digest = manifest[rel]
        path = d / rel
        if not path.is_file():
            raise IntegrityError(f"{path}: file of {what} not found; {hint}")
        got_size = path.stat().st_size
        if got_size != size:
            raise IntegrityError(f"{path}: differs from the pinned {label} manifest: {got_size} bytes, expected "
                                 f"{size} (truncated or edited?); {hint}")
        got = sha256_file(path)
        if got != digest:
            raise IntegrityError(f"{path}: differs from the pinned {label} manifest: sha256 {got}, expected "
                                 f"{digest}; {hint}")


def _check_url(base_url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(base_url)
    except (TypeError, ValueError):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"base_url={base_url!r}: expected an http:// or https:// URL of a folder laid out like "
                         f"upstream data/")
    return base_url.rstrip("/")


def _download_to(url: str, dest: Path, size: int, digest: str, timeout_s: float,
                 what: str = "the eGLB-2022 folder") -> None:
    """Stream ``url`` into a temporary file next to ``dest``, at most ``size`` bytes and ``timeout_s`` seconds,
    check size and sha256, then move it into place; on any failure no file is left behind."""
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix="." + dest.name + ".", suffix=".part")
    except OSError as exc:
        raise FetchError(f"{dest.parent}: cannot write a temporary file ({exc.strerror or exc})") from None
    deadline = time.monotonic() + timeout_s
    h = hashlib.sha256()
    n = 0
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                    declared = resp.headers.get("Content-Length")
                    if declared is not None and declared.strip().isdigit() and int(declared) != size:
                        raise FetchError(f"cannot download {url}: the server announces {int(declared)} bytes, the "
                                         f"pinned file has {size}; nothing was saved")
                    while True:
                        chunk = resp.read(min(1 << 16, size + 1 - n))
                        if not chunk:
                            break
                        n += len(chunk)
                        if n > size:
                            raise FetchError(f"cannot download {url}: the server sent more than the {size} bytes "
                                             f"of the pinned file; stopped, nothing was saved")
                        if time.monotonic() > deadline:
                            raise FetchError(f"cannot download {url}: not finished after --timeout {timeout_s:g} s "
                                             f"({n} of {size} bytes); nothing was saved")
                        h.update(chunk)
                        f.write(chunk)
            except FetchError:
                raise
            except urllib.error.HTTPError as exc:
                raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
            except (http.client.HTTPException, ValueError) as exc:
                raise FetchError(f"cannot download {url}: {type(exc).__name__} {exc}; nothing was saved") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise FetchError(f"cannot download {url}: {reason}. Are you offline? Without network, pass "
                                 f"data_dir=<a local copy of {what}> instead") from None
            if n != size:
                raise FetchError(f"cannot download {url}: received {n} bytes, the pinned file has {size}; "
                                 f"nothing was saved")
            if h.hexdigest() != digest:
                raise FetchError(f"checksum mismatch for {dest.name} ({url}): expected sha256 {digest}, got "
                                 f"{h.hexdigest()}; the file was not saved")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            raise FetchError(f"{dest}: cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def _is_verified(path: Path, size: int, digest: str) -> bool:
    return path.is_file() and path.stat().st_size == size and sha256_file(path) == digest


def fetch(dataset: str = "eglb-2022", cache_dir: os.PathLike | str | None = None, base_url: str | None = None,
          commit: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download (or verify the cached copy of) a trace set; returns the folder.

    Args:
        dataset: ``"eglb-2022"``, ``"sustain-cluster"`` or ``"servegen"`` (:data:`DATASET_NAMES`).
        cache_dir: cache root; default :func:`equiglb.traces.cache_root`. Files go to
            ``<cache_dir>/<dataset>/<commit>/``.
        base_url: http(s) URL of a mirror: for eglb-2022 a folder laid out like upstream ``data/``, for the
            others a folder laid out like the upstream repository (the manifest's paths start with ``data/``);
            default the raw GitHub URL at the pinned commit.
        commit: upstream commit (default: the pinned one); the embedded manifest is that commit's files.
        timeout_s: seconds allowed for each file (connection, every read, and the whole transfer), > 0.

    Every file is streamed to a temporary file, at most its pinned size (a server that keeps sending is
    cut off), then checked (size and sha256) and moved into place.

    Raises:
        FetchError: offline, HTTP error, invalid URL, wrong length, too much data, timeout (naming the URL),
            or a checksum mismatch (naming the file, expected and actual sha256). No partial file is left.
    """
    if dataset not in DATASET_NAMES:
        raise FetchError(f"unknown dataset {dataset!r}; available: {list(DATASET_NAMES)}")
    timeout_s = as_float("timeout_s", timeout_s, lo=0.0, lo_open=True, hi=86400.0, unit="s")
    pinned = PINNED_DATASETS.get(dataset)
    default_commit = EGLB_2022_COMMIT if pinned is None else pinned.commit
    commit = default_commit if commit is None else commit
    if not (isinstance(commit, str) and len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)):
        raise FetchError(f"commit={commit!r}: expected a 40-hex-digit git commit")
    root = Path(as_path("cache_dir", cache_dir)) if cache_dir is not None else cache_root()
    target = root / dataset / commit
    if pinned is None:
        manifest: Mapping[str, tuple[int, str]] = EGLB_2022_MANIFEST
        default_url = UPSTREAM_RAW.format(commit=commit)
        what = "the eGLB-2022 folder"
    else:
        manifest = pinned.manifest
        default_url = f"https://raw.githubusercontent.com/{pinned.repository}/{commit}"
        what = f"the folder holding {dataset}/"
    base = _check_url(base_url if base_url is not None else default_url)
    for sub_dir in {(target / rel).parent for rel in manifest}:
        try:
            sub_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FetchError(f"cache folder {sub_dir} cannot be created ({exc.strerror or exc}); pass "
                             f"--cache-dir / cache_dir= a writable folder") from None
    for rel, (size, expected) in manifest.items():
        dest = target / rel
        if _is_verified(dest, size, expected):
            continue
        if pinned is None and rel in _GENERATED:
            data = partial_mask_csv()
            got = hashlib.sha256(data).hexdigest()
            if got != expected:
                raise FetchError(f"checksum mismatch for {rel} (generated from EGLB_PARTIAL_MASK): expected sha256 "
                                 f"{expected}, got {got}; the file was not saved")
            _write_atomic(dest, data)
        else:
            _download_to(f"{base}/{rel}", dest, size, expected, timeout_s, what=what)
    return target
