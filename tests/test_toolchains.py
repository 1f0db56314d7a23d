"""The environment in other RL toolchains, used the way they are documented in docs/toolchains.md.

* Ray: a task in a fresh worker process that never imported equiglb builds the env by id, with the
  ``equiglb:`` module prefix and with the plain id through Ray's ``worker_process_setup_hook``.
* the supported gymnasium range: the lock holds its lower end (1.2.2, the version ``ray[rllib]`` pins) and
  its upper end (1.4.0) runs in a throwaway venv, with pandas 3;
* TorchRL ``GymEnv`` + ``check_env_specs`` + its info reader;
* Minari ``DataCollector(record_infos=True)`` for a whole short episode.

The info contract these tests assert: the same keys at ``reset()`` and every ``step()``, numpy values
only (``t`` int64, the USD/load/Φ scalars float64, ``facility_energy_mwh`` (N,), ``routing``
(N, J, K)), the episode's metrics from ``env.unwrapped.episode_metrics()`` (flat str -> float).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
import tomllib
import torch
from minari import DataCollector
from torchrl.data import Unbounded
from torchrl.envs import GymEnv
from torchrl.envs.gym_like import default_info_dict_reader
from torchrl.envs.utils import check_env_specs

import equiglb

REPO = Path(equiglb.__file__).resolve().parents[2]
SRC = REPO / "src"   # the package (src/ layout)
ENV_ID = "equiglb/EquitableGLB-v0"
INFO_SCALARS = ("energy_cost_usd", "unserved_load", "slot_cost_usd", "phi_usd")
INFO_KEYS = {"t", *INFO_SCALARS, "facility_energy_mwh", "routing"}


def _env_with_repo_on_path() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    return env


# ---------------------------------------------------------------------------------------------- Ray
RAY_SCRIPT = textwrap.dedent("""
    import sys
    import ray

    def build(env_id):
        # runs in a Ray worker; reports whether equiglb was imported before gymnasium.make
        import gymnasium as gym
        before = "equiglb" in sys.modules
        try:
            env = gym.make(env_id, episode_length=3)
        except Exception as exc:                      # noqa: BLE001 - reported to the driver
            return before, type(exc).__name__ + ": " + str(exc)
        env.reset(seed=0)
        total = 0.0
        for _ in range(3):
            total += float(env.step(env.action_space.sample())[1])
        return before, total

    # address="local": a new instance of its own even when another Ray runs on the machine
    opts = dict(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.init(**opts)
    assert "equiglb" not in sys.modules
    task = ray.remote(max_calls=1)(build)             # one task per worker process: each starts fresh
    results = ray.get([task.remote("equiglb:equiglb/EquitableGLB-v0"), task.remote("equiglb/EquitableGLB-v0")])
    ray.shutdown()
    # the hook is a job-level option of Ray: every worker of the job runs it before its first task
    ray.init(runtime_env={"worker_process_setup_hook": "equiglb.envs.register_envs"}, **opts)
    results += ray.get([task.remote("equiglb/EquitableGLB-v0")])
    ray.shutdown()
    for before, out in results:
        print(repr((before, out)))
    assert "equiglb" not in sys.modules
""")


def test_ray_workers_build_the_env_by_id_without_importing_equiglb_first(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="eqr", dir="/tmp")     # Ray's own temp dir (short: socket paths)
    env = {k: v for k, v in _env_with_repo_on_path().items() if k != "RAY_ADDRESS"}
    try:
        out = subprocess.run([sys.executable, "-c", RAY_SCRIPT], capture_output=True, text=True, timeout=300,
                             cwd=str(tmp_path), env={**env, "RAY_TMPDIR": ray_tmp})
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("(")]
    assert len(lines) == 3, out.stdout
    prefixed, plain, hooked = (eval(line) for line in lines)  # noqa: S307 - our own repr of (bool, float|str)
    # the module prefix: a worker that never imported equiglb builds the env
    assert prefixed[0] is False and isinstance(prefixed[1], float) and prefixed[1] < 0
    # the plain id in such a worker fails with gymnasium's namespace error (documented)
    assert plain[0] is False and isinstance(plain[1], str) and "equiglb" in plain[1], plain
    # Ray's worker_process_setup_hook registers the ids before the task runs: the plain id works
    assert hooked[0] is True and isinstance(hooked[1], float) and hooked[1] < 0


# ------------------------------------------------------------------------------- gymnasium range
GYMNASIUM_HIGHEST = "1.4.0"  # the newest gymnasium release within pyproject's range (<1.5)
PANDAS_3 = "pandas==3.1.1"   # the newest pandas major (pyproject: pandas>=2.0; the lock has pandas 2)


def _gymnasium_range() -> tuple[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    m = re.search(r'^\s*"gymnasium\s*>=\s*([\d.]+)\s*,\s*<\s*([\d.]+)"', text, re.M)
    assert m, "pyproject.toml: the gymnasium dependency must read 'gymnasium>=LOW,<HIGH'"
    return m.group(1), m.group(2)


def test_installed_gymnasium_is_within_the_stated_range():
    low, high = _gymnasium_range()

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".")[:3])

    assert key(low) <= key(gym.__version__) < key(high)
    assert key(low) <= key(GYMNASIUM_HIGHEST) < key(high)


def test_lock_holds_the_lower_end_of_the_gymnasium_range():
    low, _ = _gymnasium_range()
    lock = (REPO / "requirements-lock.txt").read_text().splitlines()
    assert f"gymnasium=={low}" in lock                 # the version ray[rllib] pins; the whole suite runs it


HIGH_END_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    import pandas as pd
    print("gymnasium", gym.__version__, gym.__file__)
    print("pandas", pd.__version__, pd.__file__)
    assert gym.__version__ == sys.argv[1], gym.__version__
    assert int(pd.__version__.split(".")[0]) >= 3, pd.__version__
    import equiglb
    from equiglb.envs import ENV_IDS
    eglb_dir = sys.argv[2] if len(sys.argv) > 2 else ""
    for env_id in sorted(ENV_IDS):
        kw = {"data_dir": eglb_dir} if "eglb2022" in env_id else {}
        if "eglb2022" in env_id and not eglb_dir:
            continue                                     # needs the real traces; same code path
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # pandas 3 deprecations included (read_csv options)
            gym.make(env_id, **kw)
        if kw:
            continue                                     # the real traces: construction (their CSV reading) only
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(gym.make(env_id, episode_length=4, forecast_horizon=2).unwrapped)
            env = gym.make(env_id, episode_length=6)
            env.reset(seed=0)
            total = 0.0
            for _ in range(6):
                total += float(env.step(env.action_space.sample())[1])
            J = env.unwrapped.episode_report().objective_usd
            assert abs(total + J) <= 1e-9 * abs(J), (env_id, total, J)
            venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", episode_length=3)
            obs, _ = venv.reset(seed=0)
            assert venv.observation_space.contains(obs)
            sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", episode_length=3)
            sync.reset(seed=0)
            sync.step(sync.action_space.sample())
    print("ok")
""")


def test_upper_end_of_the_gymnasium_range_passes_the_env_checks(tmp_path):
    """A throwaway venv with only the highest supported gymnasium and pandas 3 (the newest major; the lock has
    gymnasium's lowest and pandas 2), the rest from the shared site-packages: the env checks and every id's
    construction (the eGLB-2022 traces' CSV reading too, when present) without a warning."""
    high = GYMNASIUM_HIGHEST
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = next((venv / "lib").glob("python3*/site-packages"))
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                          "--target", str(site), f"gymnasium=={high}", PANDAS_3], capture_output=True, text=True,
                         timeout=240)
    if pip.returncode != 0:
        pytest.skip(f"could not download gymnasium=={high} {PANDAS_3} from PyPI: {pip.stderr.strip()[-300:]}")
    shared = next(p for p in sys.path if p.endswith("site-packages") and (Path(p) / "numpy").is_dir())
    # a .pth line is appended to sys.path after the venv's own site-packages: gymnasium==high wins
    (site / "zz_shared.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    python = venv / "bin" / "python"
    eglb = Path(os.environ.get("EQUIGLB_SHARED_EGLB", REPO.parent / "shared" / "traces" / "eglb-2022"))
    traces = [str(eglb)] if (eglb / "AI_workload.csv").is_file() else []
    out = subprocess.run([str(python), "-c", HIGH_END_SCRIPT, high, *traces],
                         capture_output=True, text=True, timeout=240,
                         cwd=str(tmp_path), env=_env_with_repo_on_path())
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert f"gymnasium {high} {site}" in out.stdout and out.stdout.strip().endswith("ok"), out.stdout


# -------------------------------------------------------------------------------------------- TorchRL
def _torchrl_rollout_matches_the_ledger(env: GymEnv) -> None:

    check_env_specs(env, seed=0)
    torch.manual_seed(0)
    td = env.rollout(24, break_when_any_done=True)
    assert td.batch_size == torch.Size([24])
    unwrapped = env._env.unwrapped
    sc = unwrapped.scenario
    assert td["next", "routing"].shape == (24, sc.N, sc.J, sc.K) and td["next", "routing"].dtype == torch.float64
    assert td["next", "facility_energy_mwh"].shape == (24, sc.N)
    assert torch.equal(td["next", "t"].reshape(-1), torch.arange(unwrapped.start, unwrapped.start + 24))
    assert bool(td["next", "done"][-1]) and not bool(td["next", "done"][:-1].any())
    report = unwrapped.episode_report()
    np.testing.assert_allclose(td["next", "energy_cost_usd"].sum().item(), report.energy_cost_usd, rtol=1e-12)
    np.testing.assert_allclose(td["next", "routing"].sum().item(), unwrapped.executed_schedule().sum(), rtol=1e-12)
    np.testing.assert_allclose(td["next", "reward"].double().sum().item(), -report.objective_usd, rtol=1e-5)


def test_torchrl_gymenv_specs_and_info_reader():

    env = GymEnv(ENV_ID, episode_length=24)
    sc = env._env.unwrapped.scenario
    f64 = torch.float64
    spec = {"t": Unbounded((), dtype=torch.int64), **{k: Unbounded((), dtype=f64) for k in INFO_SCALARS},
            "facility_energy_mwh": Unbounded((sc.N,), dtype=f64), "routing": Unbounded((sc.N, sc.J, sc.K), dtype=f64)}
    env.set_info_dict_reader(default_info_dict_reader(list(spec), spec=spec))
    _torchrl_rollout_matches_the_ledger(env)


def test_torchrl_auto_registered_info_reader():

    env = GymEnv(ENV_ID, episode_length=24)
    env.auto_register_info_dict()                # infers the info specs from a reset and a step
    _torchrl_rollout_matches_the_ledger(env)


# --------------------------------------------------------------------------------------------- Minari
def test_minari_records_infos_of_a_whole_episode(tmp_path, monkeypatch):

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = DataCollector(gym.make(ENV_ID, episode_length=24), record_infos=True, data_format="arrow")
    env.reset(seed=0)
    total, terminated, steps = 0.0, False, 0
    while not terminated:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += float(reward)
        steps += 1
        assert not truncated
    metrics = env.unwrapped.episode_metrics()
    report = env.unwrapped.episode_report()
    ds = env.create_dataset(dataset_id="equiglb/test/random-v0", algorithm_name="random")
    episode = next(iter(ds.iterate_episodes()))
    infos = episode.infos
    assert set(infos) == INFO_KEYS
    sc = env.unwrapped.scenario
    assert infos["routing"].shape == (25, sc.N, sc.J, sc.K)          # reset + 24 steps
    assert infos["facility_energy_mwh"].shape == (25, sc.N)
    assert np.all(infos["routing"][0] == 0) and np.all(infos["slot_cost_usd"][0] == 0)
    np.testing.assert_allclose(infos["energy_cost_usd"][1:].sum(), report.energy_cost_usd, rtol=1e-12)
    np.testing.assert_allclose(episode.rewards.sum(), total, rtol=1e-12)
    np.testing.assert_allclose(total, -report.objective_usd, rtol=1e-9)
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in metrics.items())
    assert [v for k, v in metrics.items() if "objective" in k] == [pytest.approx(report.objective_usd, rel=1e-12)]
    assert minari.load_dataset("equiglb/test/random-v0").total_steps == 24


def test_minari_default_collector_format_works_from_the_extras(tmp_path, monkeypatch):
    """``DataCollector`` without ``data_format`` (Minari's default, ``hdf5``: h5py, which the toolchains extra and
    the lock install) records, saves and reloads an episode of the env in its default action mode."""
    pytest.importorskip("h5py", reason="h5py is installed by the toolchains extra (minari[hdf5]) and the lock")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = DataCollector(gym.make(ENV_ID, episode_length=6), record_infos=True)
    env.reset(seed=1)
    rewards = [float(env.step(env.action_space.sample())[1]) for _ in range(6)]
    J = env.unwrapped.episode_report().objective_usd
    ds = env.create_dataset(dataset_id="equiglb/test/hdf5-v0", algorithm_name="random")
    assert type(ds.storage).__name__ == "HDF5Storage"                   # the default format, not arrow
    (episode,) = list(minari.load_dataset("equiglb/test/hdf5-v0").iterate_episodes())
    np.testing.assert_allclose(episode.rewards, rewards, rtol=1e-12)
    np.testing.assert_allclose(episode.rewards.sum(), -J, rtol=1e-9)
    assert episode.infos["routing"].shape[0] == 7


def test_toolchains_extra_installs_minaris_default_format():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    minari_req = next(r for r in extras["toolchains"] if r.startswith("minari"))
    assert "hdf5" in minari_req.split("[")[1].split("]")[0].split(","), minari_req
    lock = (REPO / "requirements-lock.txt").read_text().splitlines()
    assert any(line.startswith("h5py==") for line in lock)


def test_info_has_the_same_numpy_keys_at_reset_and_every_step():
    env = gym.make(ENV_ID, episode_length=3)
    _, info = env.reset(seed=0)
    infos = [info]
    for _ in range(3):
        infos.append(env.step(env.action_space.sample())[4])
    sc = env.unwrapped.scenario
    for info in infos:
        assert set(info) == INFO_KEYS
        assert isinstance(info["t"], np.int64)
        for k in INFO_SCALARS:
            assert isinstance(info[k], np.float64), (k, type(info[k]))
        assert info["facility_energy_mwh"].shape == (sc.N,) and info["facility_energy_mwh"].dtype == np.float64
        assert info["routing"].shape == (sc.N, sc.J, sc.K) and info["routing"].dtype == np.float64
