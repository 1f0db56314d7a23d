"""rl-baselines3-zoo reads the shipped hyperparameter files unchanged, with the meaning train.py gives them.

* every algorithm file x every registered env id (and an unlisted id, which falls back to ``default``
  in both): RL Zoo's own reading (``ExperimentManager.read_hyperparameters`` then
  ``_preprocess_hyperparams``) gives the same model arguments, budget, n_envs, normalization and
  env options as :func:`equiglb.agents.algos.load_hyperparams` + ``build_model_kwargs``;
* no entry has ``env_kwargs`` (RL Zoo builds its evaluation env from the id alone): every listed id's
  registered defaults are its tuned settings, and RL Zoo's evaluation env (default ``--eval-freq``) has the
  training env's settings, for every algorithm x listed id;
* ``python -m rl_zoo3.train ... -conf <shipped file>`` trains with periodic evaluation and
  ``python -m rl_zoo3.enjoy`` runs the result; ``-optimize`` completes its trials (tiny budgets).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from equiglb.agents.algos import ALGOS, DEFAULT_ENTRY, build_model_kwargs, hyperparams_path, load_hyperparams
from equiglb.envs.registration import ENTRY_POINT, ENV_IDS, TUNED_IDS

rl_zoo3 = pytest.importorskip("rl_zoo3")
from rl_zoo3.exp_manager import ExperimentManager  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)
ENV = "equiglb/EquitableGLB-residual-constant-v0"   # PPO's tuned settings, train.py's default for ppo
REAL = ("eglb2022",)   # ids that need the real traces


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
    listed = set(data) - {DEFAULT_ENTRY}
    assert listed <= set(ENV_IDS) | set(TUNED_IDS), f"{algo}.yml lists unregistered ids"
    assert not [k for k, v in data.items() if "env_kwargs" in v], f"{algo}.yml: env_kwargs in an entry"
    for env_id in [*ENV_IDS, *TUNED_IDS, unlisted_id]:
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
    """The tuned PPO defaults (docs/experiments-log.md) survive the format: the MPC residual mode for the synthetic and
    eGLB-2022 ids, run X of the site_scores table (1M steps) for the ids without a residual entry."""
    residual = {"episode_length": 240, "random_start": True, "action_mode": "mpc_residual", "mpc_horizon": 24,
                "mpc_residual_max_factor": 1.5, "forecast_horizon": 6}
    for env_id, steps, lr, log_std, extra in [          # the last one, residual-v0's entry, is eGLB-2022's (below)
            (ENV, 50_000, 1e-3, -1.0, {"forecast_horizon": 0, "mpc_residual_observation": "none",
                                       "mpc_residual_reward": "vs-planner"}),
            ("equiglb/EquitableGLB-residual-v0", 150_000, 3e-4, -1.5, {})]:
        hp = load_hyperparams("ppo", env_id)
        settings = {k: v for k, v in gym.spec(env_id).kwargs.items() if k != "scenario"}
        assert (hp["gamma"], hp["ent_coef"], hp["n_timesteps"], hp["n_steps"], hp["batch_size"],
                hp["learning_rate"]) == (0.9, 0.0, steps, 256, 256, lr)
        assert hp["policy_kwargs"]["log_std_init"] == log_std and hp["policy_kwargs"]["net_arch"] == [64, 64]
        assert hp["policy_kwargs"]["activation_fn"].__name__ == "Tanh"
        assert hp["normalize"] is True and "env_kwargs" not in hp
        assert settings == {**residual, **extra}
    real_id, test_id = "equiglb/EquitableGLB-eglb2022-residual-v0", "equiglb/EquitableGLB-eglb2022-residual-test-v0"
    assert load_hyperparams("ppo", real_id) == load_hyperparams("ppo", test_id) == hp
    real, test = gym.spec(real_id).kwargs, gym.spec(test_id).kwargs
    assert real["episode_length"] == 121 and real["action_mode"] == "mpc_residual" and test["split"] == "test"
    same = ("action_mode", "mpc_horizon", "mpc_residual_max_factor", "forecast_horizon", "scenario")
    assert {k: real[k] for k in same} == {k: test[k] for k in same}     # the same spaces as the train id
    partial = load_hyperparams("ppo", "equiglb/EquitableGLB-eglb2022-partial-24h-v0")
    assert (partial["gamma"], partial["ent_coef"], partial["n_timesteps"]) == (0.2, 0.01, 1_000_000)
    assert gym.spec("equiglb/EquitableGLB-eglb2022-partial-24h-v0").kwargs["episode_length"] == 24
    # the plain ids keep their meaning for gymnasium.make and fall back to `default`
    assert gym.spec("equiglb/EquitableGLB-v0").kwargs == {"scenario": "synthetic"}
    assert load_hyperparams("ppo", "equiglb/EquitableGLB-v0")["n_timesteps"] == 1_000_000


def _listed(algo: str) -> list[str]:
    return [k for k in yaml.safe_load(hyperparams_path(algo).read_text()) if k != DEFAULT_ENTRY]


TRACES = Path(os.environ.get("EQUIGLB_SHARED_EGLB", REPO.parent / "shared" / "traces" / "eglb-2022")).parent


def _needs_traces(env_id: str) -> bool:
    return any(r in env_id for r in REAL) and not (TRACES / "eglb-2022" / "AI_workload.csv").is_file()


def _settings(cfg) -> dict:
    """An EnvConfig's settings (the scenario by its name and length: its arrays do not compare with ==)."""
    import dataclasses

    out = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "scenario"}
    return {**out, "scenario": (cfg.scenario.name, cfg.scenario.T)}


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_rl_zoo_evaluation_env_has_the_training_settings(algo, tmp_path, capsys):
    """RL Zoo's own setup (``ExperimentManager.setup_experiment``, its default ``--eval-freq`` 25,000) for every
    listed id of the shipped file: the EvalCallback's env is built with the training env's settings."""
    from stable_baselines3.common.callbacks import EvalCallback

    for env_id in _listed(algo):
        if _needs_traces(env_id):
            continue
        # the eGLB-2022 ids need the trace folder: `--env-kwargs data_dir=...`, which RL Zoo passes to both envs
        real = {"data_dir": str(TRACES / "eglb-2022")} if "eglb2022" in env_id else None
        em = ExperimentManager(argparse.Namespace(), algo, env_id, str(tmp_path / algo), config=str(
            hyperparams_path(algo)), n_timesteps=64, eval_freq=25_000, verbose=0, seed=0, env_kwargs=real)
        model, _saved = em.setup_experiment()
        (cb,) = [c for c in em.callbacks if isinstance(c, EvalCallback)]
        train_cfg = _settings(model.get_env().get_attr("config")[0])
        eval_cfg = _settings(cb.eval_env.get_attr("config")[0])
        if not env_id.endswith("test-v0"):                          # test ids: the whole 121-hour window
            assert train_cfg["episode_length"] < 1200 and train_cfg["random_start"], (env_id, train_cfg)
        assert eval_cfg == train_cfg, (algo, env_id, eval_cfg, train_cfg)
        assert cb.eval_env.observation_space == model.get_env().observation_space, (algo, env_id)
        model.get_env().close()
        cb.eval_env.close()
    capsys.readouterr()


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
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
    # one full 240-hour episode of the entry's env_kwargs, with a finite return (J of the planner alone minus the
    # agent's J: the default id's reward is measured against the planner run alongside, of either sign)
    assert "Episode Length 240" in out, out[-2000:]
    reward = float(out.split("Episode Reward:")[1].split()[0])
    assert np.isfinite(reward)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_rl_zoo_train_evaluates_periodically_on_the_training_settings(algo, tmp_path):
    """The run that crashed at its first periodic evaluation (PPO's MPC residual entry) and the one evaluated on
    1,200-hour episodes (SAC): tiny budgets, an evaluation every few steps; the evaluations' episodes last as long
    as the training episodes (240 h)."""
    env_id = "equiglb/EquitableGLB-residual-v0" if algo == "ppo" else "equiglb/EquitableGLB-240h-v0"
    params = ["n_steps:32", "batch_size:64", "n_epochs:1", "n_envs:2"] if algo == "ppo" else \
        ["learning_starts:16", "batch_size:16", "buffer_size:1000"]
    n = 256 if algo == "ppo" else 64
    _run(["rl_zoo3.train", "--algo", algo, "--env", env_id, "--gym-packages", "equiglb", "-conf",
          str(hyperparams_path(algo)), "-n", str(n), "-f", str(tmp_path), "--num-threads", "1", "--eval-freq",
          "32", "--eval-episodes", "1", "--seed", "1", "-params", *params], tmp_path)
    (run,) = (tmp_path / algo).iterdir()
    ev = np.load(run / "evaluations.npz")
    assert len(ev["timesteps"]) >= 1
    assert (ev["ep_lengths"] == 240).all(), ev["ep_lengths"]
    assert np.isfinite(ev["results"]).all() and (ev["results"] < 0).all()


def test_rl_zoo_optimize_completes_its_trials(tmp_path):
    """``-optimize`` with a tiny budget on the default id: every trial is evaluated (on the training settings) and
    completes. Its reward is the change of cost against the planner run alongside, so a trial's value is the planner's
    J minus the agent's: finite, of either sign (0 when the agent leaves the planner's routing as it is)."""
    out = _run(["rl_zoo3.train", "--algo", "ppo", "--env", ENV, "--gym-packages", "equiglb", "-conf",
                str(hyperparams_path("ppo")), "-n", "96", "-f", str(tmp_path), "--num-threads", "1", "-optimize",
                "--n-trials", "2", "--n-jobs", "1", "--n-startup-trials", "2", "--n-evaluations", "1",
                "--eval-episodes", "1", "--sampler", "random", "--pruner", "none", "--seed", "2", "--no-optim-plots",
                "-params", "n_envs:1"], tmp_path)
    text = out.stdout + out.stderr
    assert re.search(r"Number of finished trials:\s+2\b", text), text[-3000:]
    assert "No trials are completed yet" not in text
    values = re.findall(r"Trial \d+ finished with value: (\S+) and", text)
    assert len(values) == 2 and np.isfinite([float(v) for v in values]).all(), text[-3000:]
    assert "Best trial" in text and "Value:" in text, text[-3000:]
