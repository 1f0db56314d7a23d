"""rl-baselines3-zoo reads the shipped hyperparameter files unchanged, with the meaning train.py gives them.

* every algorithm file x every registered env id (and an unlisted id, which falls back to ``default``
  in both): RL Zoo's own reading (``ExperimentManager.read_hyperparameters`` then
  ``_preprocess_hyperparams``) gives the same model arguments, budget, n_envs, normalization and
  env options as :func:`equiglb.agents.algos.load_hyperparams` + ``build_model_kwargs``;
* ``python -m rl_zoo3.train ... -conf <shipped file>`` trains, and ``python -m rl_zoo3.enjoy`` runs the result.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from equiglb.agents.algos import ALGOS, DEFAULT_ENTRY, build_model_kwargs, hyperparams_path, load_hyperparams
from equiglb.envs.registration import ENTRY_POINT, ENV_IDS

rl_zoo3 = pytest.importorskip("rl_zoo3")
from rl_zoo3.exp_manager import ExperimentManager  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ENV = "equiglb/EquitableGLB-v0"


def _zoo_reading(algo: str, env_id: str, tmp_path: Path) -> tuple[ExperimentManager, dict]:
    """What RL Zoo makes of the shipped file (its code, not a copy of it)."""
    em = ExperimentManager(argparse.Namespace(), algo, env_id, str(tmp_path), config=str(hyperparams_path(algo)),
                           verbose=0)
    raw, _saved = em.read_hyperparameters()
    kwargs, env_wrapper, callbacks, vec_env_wrapper = em._preprocess_hyperparams(raw)
    assert env_wrapper is None and vec_env_wrapper is None and callbacks == []
    return em, kwargs


def _same(a, b) -> bool:
    """Equal values; schedules (callables) compared at several progress points."""
    if callable(a) and not isinstance(a, type) or callable(b) and not isinstance(b, type):
        fa = a if callable(a) else (lambda _p: a)
        fb = b if callable(b) else (lambda _p: b)
        return all(np.isclose(fa(p), fb(p), rtol=1e-12, atol=0) for p in (1.0, 0.5, 0.1))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture
def unlisted_id():
    """A registered id that no hyperparameter file lists (both readers fall back to ``default``)."""
    env_id = "equiglb-tests/Unlisted-v0"
    gym.register(env_id, entry_point=ENTRY_POINT, kwargs={"scenario": "synthetic"})
    yield env_id
    del gym.registry[env_id]


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_entry_reads_the_same_in_rl_zoo_and_train_py(algo, tmp_path, capsys, unlisted_id):
    data = yaml.safe_load(hyperparams_path(algo).read_text())
    assert set(ENV_IDS) <= set(data), f"{algo}.yml lacks entries for {sorted(set(ENV_IDS) - set(data))}"
    for env_id in [*ENV_IDS, unlisted_id]:
        em, zoo_kwargs = _zoo_reading(algo, env_id, tmp_path)
        hp = load_hyperparams(algo, env_id)
        ours = build_model_kwargs(algo, hp, n_actions=10)
        entry = env_id if env_id in data else DEFAULT_ENTRY
        assert em.n_timesteps == hp["n_timesteps"] == data[entry]["n_timesteps"], env_id
        assert em.n_envs == hp["n_envs"], env_id
        assert em.env_kwargs == hp.get("env_kwargs", {}), env_id
        # RL Zoo: VecNormalize(**normalize_kwargs) with the algorithm's gamma; train.py: the same kwargs
        assert em.normalize == bool(hp["normalize"]), env_id
        ours_norm = {**(hp["normalize"] if isinstance(hp["normalize"], dict) else {}), "gamma": hp["gamma"]}
        assert em.normalize_kwargs == ours_norm, env_id
        # the model's constructor arguments (action noise is added by both from noise_type/noise_std)
        zoo_kwargs = {k: v for k, v in zoo_kwargs.items() if k not in ("noise_type", "noise_std")}
        ours.pop("action_noise", None)
        policy = ours.pop("policy", None) or hp["policy"]
        assert zoo_kwargs.pop("policy") == policy == "MlpPolicy"
        assert zoo_kwargs.keys() == ours.keys(), (env_id, sorted(zoo_kwargs), sorted(ours))
        for k in ours:
            assert _same(zoo_kwargs[k], ours[k]), (env_id, k, zoo_kwargs[k], ours[k])
    capsys.readouterr()   # RL Zoo prints every entry it reads


def test_ppo_keeps_the_tuned_values():
    """The tuned PPO defaults (docs/training.md) survive the format: the MPC residual mode for the synthetic and
    eGLB-2022 ids, run X of the site_scores table (1M steps) for the ids without a residual entry."""
    hp = load_hyperparams("ppo", ENV)
    assert (hp["gamma"], hp["ent_coef"], hp["n_timesteps"], hp["n_steps"], hp["batch_size"]) == (0.9, 0.0, 150_000,
                                                                                                  256, 256)
    assert hp["policy_kwargs"]["log_std_init"] == -1.5 and hp["policy_kwargs"]["net_arch"] == [64, 64]
    assert hp["policy_kwargs"]["activation_fn"].__name__ == "Tanh"
    assert hp["normalize"] is True and hp["env_kwargs"] == {"episode_length": 240, "random_start": True,
                                                            "action_mode": "mpc_residual", "mpc_horizon": 24,
                                                            "mpc_residual_max_factor": 1.5, "forecast_horizon": 6}
    real = load_hyperparams("ppo", "equiglb/EquitableGLB-eglb2022-v0")
    assert real["env_kwargs"]["episode_length"] == 121 and real["env_kwargs"]["action_mode"] == "mpc_residual"
    test_id = load_hyperparams("ppo", "equiglb/EquitableGLB-eglb2022-test-v0")["env_kwargs"]
    assert {k: v for k, v in test_id.items() if k != "random_start"} == \
        {k: v for k, v in real["env_kwargs"].items() if k != "random_start"}     # the same spaces as the train id
    partial = load_hyperparams("ppo", "equiglb/EquitableGLB-eglb2022-partial-v0")
    assert (partial["gamma"], partial["ent_coef"], partial["n_timesteps"]) == (0.2, 0.01, 1_000_000)
    assert partial["env_kwargs"] == {"episode_length": 24, "random_start": True}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


def test_rl_zoo_trains_with_the_shipped_file_and_enjoy_runs_it(tmp_path):
    algo, params, n = "ppo", ["n_steps:32", "batch_size:64", "n_epochs:1"], 512
    conf = str(hyperparams_path(algo))
    _run(["rl_zoo3.train", "--algo", algo, "--env", ENV, "--gym-packages", "equiglb", "-conf", conf, "-n", str(n),
          "-f", str(tmp_path), "--num-threads", "1", "--eval-freq", "-1", "--seed", "3", "-params", *params], tmp_path)
    (run,) = (tmp_path / algo).iterdir()
    slug = run.name.rsplit("_", 1)[0]
    assert (run / f"{slug}.zip").is_file() and (run / slug / "vecnormalize.pkl").is_file()
    saved = yaml.load((run / slug / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert dict(saved)["policy_kwargs"] == yaml.safe_load(Path(conf).read_text())[ENV]["policy_kwargs"]
    out = _run(["rl_zoo3.enjoy", "--algo", algo, "--env", ENV, "--gym-packages", "equiglb", "-f", str(tmp_path),
                "--no-render", "-n", "260", "--num-threads", "1", "--verbose", "1"], tmp_path).stdout
    # one full 240-hour episode of the entry's env_kwargs, with a finite (negative: -J) return
    assert "Episode Length 240" in out, out[-2000:]
    reward = float(out.split("Episode Reward:")[1].split()[0])
    assert np.isfinite(reward) and reward < 0
