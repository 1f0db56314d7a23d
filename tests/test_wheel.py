"""Training from an installed package: build the wheel, install it into a fresh venv, train from outside the repo.

Nothing is downloaded: the wheel is built without isolation, installed with ``--no-index --no-deps``,
and a ``.pth`` file in the new venv appends this interpreter's site-packages so that the heavy
dependencies (torch, cvxpy, stable-baselines3) resolve. ``.pth`` files of that directory are not
processed, so an editable install of the checkout there stays invisible: ``equiglb`` must come
from the wheel, and the test checks that it does.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from equiglb.agents.algos import load_hyperparams

REPO = Path(__file__).resolve().parents[1]
ALGOS = ("ppo", "a2c", "sac", "td3", "ddpg")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(venv bin folder, environment without the checkout, wheel) of a fresh venv holding only the wheel."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"                      # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(REPO / "src" / "equiglb", src / "src" / "equiglb",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / f)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
          "--outdir", str(root / "dist"), str(src)], root, env)
    (wheel,) = (root / "dist").glob("equiglb-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "--no-compile",
          str(wheel)], root, env)
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root,
                        env).strip())
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_equiglb_test_shared_deps.pth").write_text("\n".join(sorted(shared)) + "\n")
    return venv / "bin", env, wheel


def test_wheel_holds_the_hyperparameter_files_and_the_entry_points(installed):
    _bin, _env, wheel = installed
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for algo in ALGOS:
        assert f"equiglb/agents/hyperparams/{algo}.yml" in names
    assert "equiglb/agents/__main__.py" in names
    assert "equiglb-train = equiglb.agents.cli:main" in entry_points
    assert not any(n.startswith("tests/") for n in names)


def test_train_from_the_installed_package_outside_the_repository(installed, tmp_path):
    bin_dir, env, _wheel = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    # where equiglb and its data come from, found without importing it (fast)
    where = _run([str(bin_dir / "python"), "-c", "import importlib.util as u; print(u.find_spec('equiglb').origin)"],
                 work, env).strip()
    assert Path(where).is_relative_to(bin_dir.parent), where    # the wheel's copy, not the checkout
    assert (Path(where).parent / "agents" / "hyperparams" / "ppo.yml").is_file()

    help_text = _run([str(bin_dir / "python"), "-m", "equiglb.agents", "--help"], work, env)
    for flag in ("--algo", "--env", "--n-timesteps", "--hyperparams", "--baselines", "--resume"):
        assert flag in help_text

    out = _run([str(bin_dir / "equiglb-train"), "--algo", "ppo", "-n", "128", "--n-envs", "2", "--seed", "4",
                "--env-kwargs", "episode_length=24", "--eval-freq", "0", "--no-progress", "-f", "logs",
                "--hyperparams", "n_steps=32", "batch_size=64", "n_epochs=1", "--baselines", "offline"], work, env)
    (run,) = (work / "logs" / "ppo").iterdir()
    assert str(run.relative_to(work)) in out
    cfg = yaml.safe_load((run / "config.yml").read_text())
    assert cfg["num_timesteps"] >= 128 and cfg["seed"] == 4
    assert cfg["hyperparams"]["gamma"] == load_hyperparams("ppo", cfg["env_id"])["gamma"]  # ppo.yml read
    assert (run / "model.zip").is_file() and (run / "vecnormalize.pkl").is_file()
    with open(run / "eval" / "table.csv", newline="") as f:
        rows = {r["policy"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"offline", "mpc-24 calibrated (agent's base)", "ppo (agent)"}   # the agent's planner alone
    offline, agent = float(rows["offline"]["objective"]), float(rows["ppo (agent)"]["objective"])
    assert offline <= float(rows["mpc-24 calibrated (agent's base)"]["objective"]) * (1 + 1e-9)
    assert 0 < offline <= agent * (1 + 1e-9)             # nothing beats the offline optimum
