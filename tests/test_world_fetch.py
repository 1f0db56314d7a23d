"""fetch("sustain-cluster") / fetch("servegen") against an HTTP server on 127.0.0.1 serving ../shared/traces (and a
tampered mirror), and the one data folder (data_dir=, $EQUIGLB_DATA_DIR, the deprecated $EQUIGLB_EGLB_2022_DIR).
Never contacts the internet; skips with a reason when the data are absent."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from test_fetch import Server

import equiglb
from equiglb.traces import TraceError
from equiglb.traces.__main__ import main as traces_cli
from equiglb.traces.fetch import PINNED_DATASETS, FetchError, fetch, sha256_file

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EQUIGLB_SHARED_TRACES", REPO.parent / "shared" / "traces"))


@pytest.fixture(scope="module")
def shared() -> Path:
    for name in ("sustain-cluster", "servegen"):
        if not (SHARED / name / "MANIFEST.tsv").is_file():
            pytest.skip(f"real data set {name} not found at {SHARED / name} (set EQUIGLB_SHARED_TRACES)")
    return SHARED


@pytest.fixture(autouse=True)
def private_env(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIGLB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EQUIGLB_DATA_DIR", raising=False)
    monkeypatch.delenv("EQUIGLB_EGLB_2022_DIR", raising=False)


def test_embedded_manifests_match_the_shared_manifests(shared):
    for name, ds in PINNED_DATASETS.items():
        rows = {}
        for line in (shared / name / "MANIFEST.tsv").read_text().splitlines():
            rel, size, digest = line.split("\t")
            rows[rel] = (int(size), digest)
        assert rows == dict(ds.manifest), name
        assert ds.commit in (shared / name / "SOURCE.md").read_text()


def test_fetch_both_from_a_local_mirror_then_load_world_from_the_cache(shared, tmp_path):
    folders = {}
    for name in ("servegen", "sustain-cluster"):
        server = Server(shared / name)
        try:
            folders[name] = fetch(name, base_url=server.url, timeout_s=30)
            assert len(server.requests) == len(PINNED_DATASETS[name].manifest)
        finally:
            server.close()
        ds = PINNED_DATASETS[name]
        assert folders[name] == tmp_path / "cache" / name / ds.commit
        for rel in list(ds.manifest)[:: max(1, len(ds.manifest) // 10)]:
            assert sha256_file(folders[name] / rel) == ds.manifest[rel][1]
        assert not list(folders[name].rglob("*.part"))
        # a second fetch only verifies (the server is gone)
        assert fetch(name, base_url=server.url) == folders[name]
    scn = equiglb.load_scenario("world")                  # found in the cache, no data_dir
    assert scn.T == 17_544 and str(folders["sustain-cluster"]) in scn.source


def test_tampered_mirror_is_refused_and_nothing_is_written(shared, tmp_path):
    src = shared / "servegen"
    victim = "data/language/m-small/chunk-7-trace.csv"
    root = tmp_path / "mirror"
    for rel in PINNED_DATASETS["servegen"].manifest:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel == victim:
            data = (src / rel).read_bytes()
            k = data.rindex(b"3")
            dest.write_bytes(data[:k] + b"4" + data[k + 1:])
        else:
            os.symlink(src / rel, dest)
    server = Server(root)
    try:
        with pytest.raises(FetchError) as err:
            fetch("servegen", base_url=server.url)
    finally:
        server.close()
    msg = str(err.value)
    assert "checksum mismatch for chunk-7-trace.csv" in msg and victim in msg and "not saved" in msg
    assert PINNED_DATASETS["servegen"].manifest[victim][1] in msg
    folder = tmp_path / "cache" / "servegen" / PINNED_DATASETS["servegen"].commit
    assert not (folder / victim).exists() and not list(folder.rglob("*.part"))
    kept = [r for r in PINNED_DATASETS["servegen"].manifest if (folder / r).exists()]
    assert kept and all(sha256_file(folder / r) == PINNED_DATASETS["servegen"].manifest[r][1] for r in kept[:5])


def test_unknown_dataset_and_cli(shared, tmp_path, capsys):
    with pytest.raises(FetchError, match=r"unknown dataset 'servegen-2'; available: \['eglb-2022', "
                                         r"'sustain-cluster', 'servegen'\]"):
        fetch("servegen-2")
    server = Server(shared / "servegen")
    try:
        assert traces_cli(["fetch", "servegen", "--cache-dir", str(tmp_path / "c"), "--base-url", server.url,
                           "--timeout", "20"]) == 0
    finally:
        server.close()
    assert str(tmp_path / "c" / "servegen" / PINNED_DATASETS["servegen"].commit) in capsys.readouterr().out
    assert traces_cli(["fetch", "servegen", "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_one_data_folder_for_every_dataset(shared, tmp_path, monkeypatch):
    eglb = shared / "eglb-2022"
    if not (eglb / "AI_workload.csv").is_file():
        pytest.skip(f"eGLB-2022 traces not found at {eglb}")
    # data_dir = the folder holding the datasets side by side, or (eglb-2022 only) the eGLB folder itself
    assert equiglb.load_scenario("eglb-2022", data_dir=shared).T == 457
    assert equiglb.load_scenario("eglb-2022", data_dir=eglb).T == 457
    # one environment variable for all of them
    monkeypatch.setenv("EQUIGLB_DATA_DIR", str(shared))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert equiglb.load_scenario("eglb-2022").T == 457
        assert equiglb.load_scenario("world", zones=["SG"], years=[2024]).T == 8784
    # a data folder without the dataset is named
    monkeypatch.setenv("EQUIGLB_DATA_DIR", str(tmp_path))
    with pytest.raises(TraceError, match=rf"{tmp_path}/servegen: folder of the servegen data set not found "
                                         rf"\(\$EQUIGLB_DATA_DIR="):
        equiglb.traces.dataset_dir("servegen")
    # the old per-dataset variable still works, with a DeprecationWarning
    monkeypatch.delenv("EQUIGLB_DATA_DIR")
    monkeypatch.setenv("EQUIGLB_EGLB_2022_DIR", str(eglb))
    with pytest.warns(DeprecationWarning, match=r"EQUIGLB_EGLB_2022_DIR is deprecated: set \$EQUIGLB_DATA_DIR"):
        assert equiglb.load_scenario("eglb-2022").T == 457
    # nothing anywhere: the message says how to get the data
    monkeypatch.delenv("EQUIGLB_EGLB_2022_DIR")
    with pytest.raises(TraceError, match=r"sustain-cluster data set is not available locally: .*EQUIGLB_DATA_DIR.*"
                                         r"fetch sustain-cluster"):
        equiglb.load_scenario("world")
