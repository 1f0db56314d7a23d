"""fetch("eglb-2022") against an HTTP server on 127.0.0.1 serving a copy of the shared folder (and a
tampered copy). Never contacts the internet."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

import equiglb
from equiglb.traces import EGLB_2022_COMMIT
from equiglb.traces.__main__ import main as traces_cli
from equiglb.traces.fetch import EGLB_2022_SHA256, FetchError, fetch, partial_mask_csv, sha256_file


class Server:
    """A static file server on 127.0.0.1 in a thread; ``requests`` lists the paths asked for."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def copy_upstream(src: Path, dst: Path) -> Path:
    """The upstream data/ layout: the shared folder without the files that are not upstream."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("partial_mask.csv", "SHA256SUMS", "SOURCE.md",
                                                            "LICENSE"))
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


@pytest.fixture
def served(eglb_dir, tmp_path):
    server = Server(copy_upstream(eglb_dir, tmp_path / "upstream"))
    yield server
    server.close()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIGLB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EQUIGLB_EGLB_2022_DIR", raising=False)


def test_embedded_hashes_match_shared_sums(eglb_dir):
    sums = {}
    for line in (eglb_dir / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split()
        sums[rel] = digest
    assert sums == EGLB_2022_SHA256
    assert hashlib.sha256(partial_mask_csv()).hexdigest() == sums["partial_mask.csv"]
    assert partial_mask_csv() == (eglb_dir / "partial_mask.csv").read_bytes()


def test_fetch_downloads_verifies_and_loads(served, tmp_path):
    folder = fetch("eglb-2022", base_url=served.url)
    assert folder == tmp_path / "cache" / "eglb-2022" / EGLB_2022_COMMIT
    for rel, digest in EGLB_2022_SHA256.items():
        assert sha256_file(folder / rel) == digest
    assert len(served.requests) == len(EGLB_2022_SHA256) - 1  # partial_mask.csv is written locally
    assert not list(folder.rglob("*.part"))
    # the registry finds the cache without data_dir
    assert equiglb.load_scenario("eglb-2022").T == 457
    assert not equiglb.load_scenario("eglb-2022-partial").mask.all()
    # a second fetch only verifies: no request, works even with the server gone
    served.close()
    assert fetch("eglb-2022", base_url=served.url) == folder


def test_checksum_mismatch_keeps_verified_files(eglb_dir, served, tmp_path):
    bad_root = copy_upstream(eglb_dir, tmp_path / "tampered")
    victim = "price/Germany_Price.csv"
    data = (bad_root / victim).read_bytes()
    k = data.rindex(b"5")  # same length, one digit changed: only the sha256 can tell
    (bad_root / victim).write_bytes(data[:k] + b"6" + data[k + 1:])
    bad = Server(bad_root)
    try:
        with pytest.raises(FetchError) as err:
            fetch("eglb-2022", base_url=bad.url)
    finally:
        bad.close()
    msg = str(err.value)
    assert "checksum mismatch for Germany_Price.csv" in msg and f"/{victim}" in msg and EGLB_2022_SHA256[victim] in msg
    assert "not saved" in msg
    folder = tmp_path / "cache" / "eglb-2022" / EGLB_2022_COMMIT
    assert not (folder / victim).exists()
    assert not list(folder.rglob("*.part"))
    kept = [rel for rel in EGLB_2022_SHA256 if (folder / rel).exists()]
    assert "AI_workload.csv" in kept and all(sha256_file(folder / r) == EGLB_2022_SHA256[r] for r in kept)
    # resuming from a good server downloads only what is missing
    fetch("eglb-2022", base_url=served.url)
    assert len(served.requests) == len(EGLB_2022_SHA256) - 1 - len(kept)


def test_corrupted_cache_file_is_replaced(served, tmp_path):
    folder = fetch("eglb-2022", cache_dir=tmp_path / "c2", base_url=served.url)
    (folder / "AI_workload.csv").write_text("garbage")
    served.requests.clear()
    fetch("eglb-2022", cache_dir=tmp_path / "c2", base_url=served.url)
    assert served.requests == ["/AI_workload.csv"]
    assert sha256_file(folder / "AI_workload.csv") == EGLB_2022_SHA256["AI_workload.csv"]


def test_offline_error(tmp_path):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match=r"cannot download http://127\.0\.0\.1:\d+/AI_workload\.csv: .*offline"):
        fetch("eglb-2022", base_url=f"http://127.0.0.1:{port}", timeout_s=5)
    assert not list((tmp_path / "cache").rglob("*.csv"))


def test_http_404_and_unknown_dataset(eglb_dir, tmp_path):
    root = copy_upstream(eglb_dir, tmp_path / "holey")
    (root / "water" / "Texas_water.csv").unlink()
    server = Server(root)
    try:
        with pytest.raises(FetchError, match=r"water/Texas_water\.csv: HTTP 404"):
            fetch("eglb-2022", base_url=server.url)
    finally:
        server.close()
    with pytest.raises(FetchError, match="unknown dataset 'eglb-2023'"):
        fetch("eglb-2023")


def test_cli_fetch(served, tmp_path, capsys):
    assert traces_cli(["fetch", "eglb-2022", "--cache-dir", str(tmp_path / "c3"), "--base-url", served.url]) == 0
    assert str(tmp_path / "c3" / "eglb-2022" / EGLB_2022_COMMIT) in capsys.readouterr().out
