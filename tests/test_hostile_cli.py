"""Hostile inputs on the command lines, class 7 (CLIs never print a traceback for a user error):
``python -m equiglb.baselines`` and ``python -m equiglb.traces``. Every case ends with exit status 2 and
exactly one ``error:`` line on stderr naming the option, file or value, and nothing on stdout (the
options are checked before anything is solved or written).

Most cases call the entry points in-process (an uncaught exception fails the test as a traceback would);
one test runs a sample of them as real subprocesses, started together to keep the wall time low."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from equiglb.baselines.__main__ import main as baselines_main
from equiglb.traces.__main__ import main as traces_main

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)


def run(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """Run a CLI entry point in-process; returns (exit status, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (code, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert out == "", out


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    """A 3-hour generic-format folder without a latency matrix."""
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "scenario.yaml").write_text("name: tiny\nsites: [a, b]\nregions: [x]\n")
    rows = ["time,site,signal,value"] + [f"2024-01-01T0{h}:00Z,{s},{sig},1" for s in "ab" for h in range(3)
                                         for sig in ("price", "carbon", "water")]
    (d / "signals.csv").write_text("\n".join(rows) + "\n")
    (d / "demand.csv").write_text("time,region,demand\n" + "".join(f"2024-01-01T0{h}:00Z,x,0.5\n" for h in range(3)))
    return d


# ---------------------------------------------------------------------- python -m equiglb.baselines

BASE = ["--horizon", "24", "--policies", "min-cost"]

BASELINES_CASES = {
    "mpc horizon zero": (["--mpc-horizon", "0"], ["--mpc-horizon=0: must be in 1..168 hours"]),
    "mpc horizon negative": (["--mpc-horizon", "-5"], ["--mpc-horizon=-5"]),
    "mpc horizon fractional": (["--mpc-horizon", "24.9"], ["--mpc-horizon", "'24.9'"]),
    "mpc horizon huge": (["--mpc-horizon", "100000"], ["--mpc-horizon=100000"]),
    "seed negative": (["--seed", "-1"], ["--seed=-1"]),
    "seed fractional": (["--seed", "1.5"], ["--seed", "'1.5'"]),
    "solver missing": (["--solver", "NOPE"], ["--solver='NOPE': solver not installed", "HIGHS"]),
    "csv folder missing": (["--csv", "/nonexistent/x.csv"], ["--csv='/nonexistent/x.csv'", "does not exist"]),
    "json folder missing": (["--json", "/nonexistent/x.json"], ["--json='/nonexistent/x.json'"]),
    "csv is a folder": (["--csv", "/tmp"], ["--csv='/tmp': is a folder"]),
    "horizon fractional": (["--horizon", "24.9"], ["--horizon", "'24.9'"]),
    "horizon zero": (["--horizon", "0"], ["horizon=0: must be in 1..1440 hours"]),
    "horizon huge": (["--horizon", "1000000000"], ["horizon=1000000000"]),
    "q below 1": (["--q", "0.5"], ["--q=0.5"]),
    "q text": (["--q", "abc"], ["--q", "'abc'"]),
    "q nan": (["--q", "nan"], ["--q=nan"]),
    "mu_carbon nan": (["--mu-carbon", "nan"], ["--mu-carbon=nan"]),
    "mu_carbon negative": (["--mu-carbon", "-1"], ["--mu-carbon=-1.0"]),
    "mu_water huge": (["--mu-water", "1e300"], ["--mu-water=1e+300: magnitude"]),
    "mu_social text": (["--mu-social", "lots"], ["--mu-social", "'lots'"]),
    "unknown policy": (["--policies", "teleport"], ["unknown policy name(s) ['teleport']", "valid names"]),
    "no policy": (["--policies", ","], ["unknown policy name(s) []"]),
    "unknown scenario": (["--scenario", "atlantis"], ["--scenario='atlantis'", "available"]),
    "unknown split": (["--split", "nope"], ["no split 'nope'"]),
    "missing data dir": (["--scenario", "eglb-2022", "--data-dir", "/nonexistent"], ["/nonexistent"]),
    "unknown flag": (["--frobnicate"], ["unrecognized arguments: --frobnicate"]),
}


@pytest.mark.parametrize("case", list(BASELINES_CASES))
def test_baselines_cli_refuses(case, capsys):
    extra, needles = BASELINES_CASES[case]
    code, out, err = run(baselines_main, BASE + extra, capsys)
    assert_user_error(code, out, err, *needles)


def test_baselines_cli_same_output_file(tmp_path, capsys):
    f = str(tmp_path / "rows")
    assert_user_error(*run(baselines_main, BASE + ["--csv", f, "--json", f], capsys), "name the same file")
    assert not (tmp_path / "rows").exists()


def test_baselines_cli_outputs_checked_before_solving(tmp_path, capsys):
    # the offline and MPC programs would take seconds; the bad path is refused before
    code, out, err = run(baselines_main, ["--policies", "offline,mpc", "--csv", str(tmp_path / "no" / "x.csv")],
                         capsys)
    assert_user_error(code, out, err, "--csv=", "does not exist")


def test_baselines_cli_nearest_without_latency(tiny_csv, capsys):
    code, out, err = run(baselines_main, ["--scenario", "csv", "--data-dir", str(tiny_csv), "--policies",
                                          "min-cost,nearest"], capsys)
    assert_user_error(code, out, err, "'nearest' needs a latency matrix", "'csv'")


def test_baselines_cli_tampered_traces(eglb_dir, tmp_path, capsys):
    copy = tmp_path / "eglb"
    shutil.copytree(eglb_dir, copy)
    (copy / "price").chmod(0o755)
    (copy / "price" / "Texas_Price.csv").chmod(0o644)
    with open(copy / "price" / "Texas_Price.csv", "a") as f:
        f.write("2099-01-01 00,1.0\n")
    code, out, err = run(baselines_main, ["--scenario", "eglb-2022", "--data-dir", str(copy), "--policies",
                                          "min-cost"], capsys)
    assert_user_error(code, out, err, "price/Texas_Price.csv: differs from the pinned eGLB-2022 manifest")


# ---------------------------------------------------------------------- python -m equiglb.traces

def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


TRACES_CASES = {
    "hours fractional": (["show", "synthetic", "-O", "hours=24.9"],
                         ["hours=24.9: expected an integer number of hours"]),
    "seed negative": (["show", "synthetic", "-O", "seed=-3"], ["seed=-3"]),
    "hours nan": (["show", "synthetic", "-O", "hours=nan"], ["hours=nan"]),
    "option for another scenario": (["show", "synthetic", "-O", "verify=false"], ["unknown option(s) ['verify']"]),
    "option without value": (["show", "synthetic", "-O", "hours"], ["--option expects KEY=VALUE, got 'hours'"]),
    "verify not a bool": (["show", "eglb-2022", "-O", "verify=1"], ["verify=1: expected True or False"]),
    "tz shift not a bool": (["show", "synthetic", "-O", "demand_tz_shift=yes"], ["demand_tz_shift='yes'"]),
    "weights not Weights": (["show", "synthetic", "-O", "weights=eglb"], ["weights=str object"]),
    "q huge": (["show", "synthetic", "-O", "q=1e300"], ["Weights.q=1e+300"]),
    "unknown scenario": (["show", "atlantis"], ["unknown scenario 'atlantis'"]),
    "missing data dir": (["show", "eglb-2022", "-O", "data_dir=/nonexistent"], ["/nonexistent"]),
    "csv without folder": (["show", "csv"], ["needs data_dir="]),
    "timeout zero": (["fetch", "eglb-2022", "--timeout", "0"], ["--timeout=0.0: must be > 0.0 s"]),
    "timeout negative": (["fetch", "eglb-2022", "--timeout", "-1"], ["--timeout=-1.0"]),
    "timeout text": (["fetch", "eglb-2022", "--timeout", "soon"], ["--timeout", "'soon'"]),
    "timeout nan": (["fetch", "eglb-2022", "--timeout", "nan"], ["--timeout=nan"]),
    "ftp url": (["fetch", "eglb-2022", "--base-url", "ftp://example.org/"], ["base_url='ftp://example.org/'"]),
    "not a url": (["fetch", "eglb-2022", "--base-url", "data"], ["base_url='data'"]),
    "unknown dataset": (["fetch", "eglb-2023"], ["invalid choice: 'eglb-2023'"]),
    "calibrate missing folder": (["calibrate", "/nonexistent"], ["/nonexistent: eGLB-2022 trace folder not found"]),
    "calibrate output folder missing": (["calibrate", "/tmp", "-o", "/nonexistent/p.json"],
                                        ["--output='/nonexistent/p.json'"]),
    "unknown command": (["bogus"], ["invalid choice: 'bogus'"]),
    "no command": ([], ["the following arguments are required: cmd"]),
}


@pytest.mark.parametrize("case", list(TRACES_CASES))
def test_traces_cli_refuses(case, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIGLB_CACHE", str(tmp_path / "cache"))
    argv, needles = TRACES_CASES[case]
    code, out, err = run(traces_main, argv, capsys)
    assert_user_error(code, out, err, *needles)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.csv"))


def test_traces_cli_offline_fetch(tmp_path, capsys):
    code, out, err = run(traces_main, ["fetch", "eglb-2022", "--cache-dir", str(tmp_path), "--base-url",
                                       closed_port_url(), "--timeout", "2"], capsys)
    assert_user_error(code, out, err, "cannot download http://127.0.0.1:", "AI_workload.csv")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


# ---------------------------------------------------------------------- real subprocesses

SUBPROCESS_CASES = [
    (["equiglb.baselines", "--mpc-horizon", "0"], "--mpc-horizon=0"),
    (["equiglb.baselines", "--csv", "/nonexistent/x.csv"], "--csv='/nonexistent/x.csv'"),
    (["equiglb.traces", "show", "synthetic", "-O", "hours=24.9"], "hours=24.9"),
    (["equiglb.traces", "bogus"], "invalid choice: 'bogus'"),
]  # a sample: each subprocess costs seconds of imports; the in-process cases above cover the rest


def test_cli_subprocesses_exit_2_with_one_error_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "EQUIGLB_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=tmp_path) for argv, _ in SUBPROCESS_CASES]
    for p, (argv, needle) in zip(procs, SUBPROCESS_CASES):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 2, (argv, p.returncode, err)
        assert "Traceback" not in err, (argv, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (argv, err)
        assert out == "", (argv, out)
