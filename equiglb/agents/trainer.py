"""Training loop of ``python train.py``: validation, run folder, vector envs, callbacks, checkpoints,
interruption (SIGINT/SIGTERM) and resumption, then the final comparison with the baselines.

Run folder ``<log-folder>/<algo>/<env>_<n>/`` (created only after every flag is validated):

* ``config.yml``      the exact configuration: flags, resolved hyperparameters, seeds, versions
* ``model.zip``       the trained SB3 model (with its optimizer state)
* ``vecnormalize.pkl`` observation/reward normalization statistics (when ``normalize`` is on)
* ``replay_buffer.pkl`` the replay buffer (off-policy algorithms)
* ``best_model.zip``  best model of the periodic evaluations on the validation window
* ``checkpoints/``    ``ckpt_<steps>_steps.zip`` (+ ``_vecnormalize.pkl``, ``_replay_buffer.pkl``)
* ``tb/``             TensorBoard logs
* ``eval/``           the comparison table (CSV, JSON) and the plots (PNG), see :mod:`equiglb.agents.report`
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import signal
import sys
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from equiglb.agents.algos import ALGOS, OFF_POLICY, HyperparamError, build_model_kwargs, load_hyperparams, \
    parse_overrides

__all__ = ["UserError", "run", "new_run_dir", "make_vec_env", "Interrupted", "latest_checkpoint"]

CKPT_RE = re.compile(r"ckpt_(\d+)_steps\.zip$")


class UserError(Exception):
    """A problem with the command line or its inputs; reported as one message, exit code 2."""


# ---------------------------------------------------------------------- run folders
def env_slug(env_id: str) -> str:
    """A folder-safe name of an env id: ``equiglb/EquitableGLB-v0`` -> ``equiglb-EquitableGLB-v0``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", env_id)


def new_run_dir(log_folder: str | os.PathLike, algo: str, env_id: str) -> Path:
    """Create and return ``<log_folder>/<algo>/<env>_<n>`` with n one above the largest existing."""
    root = Path(log_folder) / algo
    root.mkdir(parents=True, exist_ok=True)
    slug = env_slug(env_id)
    pat = re.compile(re.escape(slug) + r"_(\d+)$")
    n = max([int(m.group(1)) for p in root.iterdir() if (m := pat.match(p.name))] + [0]) + 1
    while True:
        path = root / f"{slug}_{n}"
        try:
            path.mkdir()  # never reuse a folder, even if another process just made it
            return path
        except FileExistsError:
            n += 1


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that determine a run's numbers."""
    import cvxpy
    import stable_baselines3
    import torch

    import equiglb

    return {"python": platform.python_version(), "equiglb": equiglb.__version__,
            "stable_baselines3": stable_baselines3.__version__, "gymnasium": gym.__version__,
            "torch": torch.__version__, "numpy": np.__version__, "cvxpy": cvxpy.__version__,
            "platform": platform.platform()}


def _plain(obj: Any) -> Any:
    """YAML-safe copy (tuples to lists, numpy scalars to Python, classes to names)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool):
        return obj
    for t in (int, float, str):
        if isinstance(obj, t):
            return t(obj)
    return repr(obj)


# ---------------------------------------------------------------------- environments
def _ignore_signals_in_worker(env: gym.Env, parent_pid: int) -> gym.Env:
    # Runs inside each SubprocVecEnv worker: Ctrl-C is for the trainer, which stops the workers itself.
    if os.getpid() != parent_pid:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return env


def make_vec_env(env_id: str, n_envs: int, seed: int, vec_env: str, env_kwargs: dict[str, Any]):
    """An SB3 VecEnv of ``n_envs`` copies of ``env_id`` (episode statistics recorded by a monitor)."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if vec_env == "native":
        from equiglb.envs import sb3 as native  # the adapter of equiglb's batched vector env

        return native.make_sb3_vec_env(env_id, num_envs=n_envs, seed=seed, **env_kwargs)  # reports episodes
    cls = SubprocVecEnv if vec_env == "subproc" else DummyVecEnv
    kw = {"start_method": "fork"} if vec_env == "subproc" and sys.platform != "win32" else None
    return sb3_make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=cls, env_kwargs=env_kwargs,
                            vec_env_kwargs=kw, wrapper_class=_ignore_signals_in_worker,
                            wrapper_kwargs={"parent_pid": os.getpid()})


def _wrap_normalize(venv, normalize: bool | dict, gamma: float, stats_path: Path | None, training: bool):
    from stable_baselines3.common.vec_env import VecNormalize

    if not normalize:
        return venv
    if stats_path is not None and stats_path.is_file():
        vn = VecNormalize.load(str(stats_path), venv)
        vn.training = training
        if not training:
            vn.norm_reward = False
        return vn
    kw = dict(normalize) if isinstance(normalize, dict) else {}
    kw.setdefault("gamma", gamma)
    if not training:
        kw["norm_reward"] = False
    vn = VecNormalize(venv, **kw)
    vn.training = training
    return vn


# ---------------------------------------------------------------------- interruption
class Interrupted:
    """SIGINT/SIGTERM handler: the first signal asks training to stop after the current step (so a
    checkpoint can be saved); a second one raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: stopping after this step and saving a checkpoint "
              "(send it again to abort without saving)", file=sys.stderr, flush=True)

    def __enter__(self) -> "Interrupted":
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _callbacks(stop: Interrupted, run_dir: Path, save_freq: int, n_envs: int, eval_env, eval_freq: int,
               eval_episodes: int, progress: bool, off_policy: bool):
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, \
        EvalCallback, ProgressBarCallback

    class StopOnSignal(BaseCallback):
        def _on_step(self) -> bool:
            return stop.signum is None

    cbs: list[BaseCallback] = [StopOnSignal()]
    if save_freq > 0:
        cbs.append(CheckpointCallback(save_freq=max(save_freq // n_envs, 1), save_path=str(run_dir / "checkpoints"),
                                      name_prefix="ckpt", save_replay_buffer=off_policy, save_vecnormalize=True))
    if eval_env is not None and eval_freq > 0:
        cbs.append(EvalCallback(eval_env, n_eval_episodes=eval_episodes, eval_freq=max(eval_freq // n_envs, 1),
                                best_model_save_path=str(run_dir), log_path=str(run_dir / "eval"),
                                deterministic=True, verbose=0))
    if progress:
        cbs.append(ProgressBarCallback())
    return CallbackList(cbs)


def save_checkpoint(model, run_dir: Path, off_policy: bool) -> Path:
    """Save model, normalization statistics and replay buffer under ``run_dir/checkpoints``; return the zip."""
    d = run_dir / "checkpoints"
    d.mkdir(exist_ok=True)
    stem = d / f"ckpt_{model.num_timesteps}_steps"
    model.save(str(stem))
    venv = model.get_vec_normalize_env()
    if venv is not None:
        venv.save(str(d / f"ckpt_vecnormalize_{model.num_timesteps}_steps.pkl"))
    if off_policy:
        model.save_replay_buffer(str(d / f"ckpt_replay_buffer_{model.num_timesteps}_steps.pkl"))
    return stem.with_suffix(".zip")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint zip with the most steps in ``run_dir/checkpoints`` (None if there is none)."""
    found = [(int(m.group(1)), p) for p in (run_dir / "checkpoints").glob("ckpt_*_steps.zip")
             if (m := CKPT_RE.search(p.name))]
    return max(found)[1] if found else None


def companions(model_zip: Path) -> tuple[Path | None, Path | None]:
    """(vecnormalize.pkl, replay_buffer.pkl) saved with ``model_zip`` (checkpoint or final), if present."""
    m = CKPT_RE.search(model_zip.name)
    d = model_zip.parent
    if m:
        vn, rb = d / f"ckpt_vecnormalize_{m.group(1)}_steps.pkl", d / f"ckpt_replay_buffer_{m.group(1)}_steps.pkl"
    else:
        vn, rb = d / "vecnormalize.pkl", d / "replay_buffer.pkl"
    return (vn if vn.is_file() else None), (rb if rb.is_file() else None)


def check_model_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path after checking it is a readable SB3 model zip (raises :class:`UserError`)."""
    p = Path(path)
    if p.is_dir():
        cand = [p / "model.zip", *sorted(p.glob("*.zip"))]
        p = next((c for c in cand if c.is_file()), p / "model.zip")
    if not p.is_file():
        raise UserError(f"model file {str(p)!r} does not exist")
    try:
        with zipfile.ZipFile(p) as z:
            if "data" not in z.namelist():
                raise UserError(f"model file {str(p)!r} is a zip without SB3 'data': not a stable-baselines3 model")
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"model file {str(p)!r} is not a readable stable-baselines3 zip: {exc}") from exc
    return p


# ---------------------------------------------------------------------- main flow
@dataclass
class Plan:
    """Everything validated, before a run folder exists."""

    algo: str
    env_id: str
    hp: dict[str, Any]
    env_kwargs: dict[str, Any]
    n_timesteps: int
    n_envs: int
    run_dir: Path | None = None
    load_from: Path | None = None
    resume: bool = False


def _import_packages(mods) -> None:
    for mod in mods or ():
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise UserError(f"--gym-packages: cannot import {mod!r}: {exc}") from exc


def _check_env(env_id: str, env_kwargs: dict[str, Any], split: str) -> None:
    import equiglb  # noqa: F401  (registers the equiglb/* ids)

    try:
        importlib.import_module("equiglb.envs")
    except ImportError:
        pass
    if env_id not in gym.envs.registry:
        ours = sorted(k for k in gym.envs.registry if k.startswith("equiglb"))
        raise UserError(f"unknown environment id {env_id!r}; equiglb ids: {ours}")
    try:
        env = gym.make(env_id, **{**env_kwargs, "split": split})
        env.close()
    except Exception as exc:  # the env's own message names the option
        raise UserError(f"cannot make environment {env_id!r} with {env_kwargs}: {exc}") from exc


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Validate the command line (no side effects on disk); raise :class:`UserError`."""
    _import_packages(args.gym_packages)
    if args.resume:
        run_dir = Path(args.resume)
        cfg_path = run_dir / "config.yml"
        if not cfg_path.is_file():
            raise UserError(f"--resume {args.resume!r}: no config.yml there (not a train.py run folder)")
        cfg = yaml.safe_load(cfg_path.read_text())
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(f"--resume {args.resume!r}: no checkpoint in {run_dir / 'checkpoints'}")
        check_model_file(ckpt)
        _import_packages(cfg.get("gym_packages"))
        n = args.n_timesteps or cfg["n_timesteps"]
        return Plan(cfg["algo"], cfg["env_id"], cfg["hyperparams"], cfg["env_kwargs"], int(n),
                    int(cfg["n_envs"]), run_dir=run_dir, load_from=ckpt, resume=True)
    try:
        hp = load_hyperparams(args.algo, args.env, parse_overrides(args.hyperparams))
        env_kwargs = {**(hp.get("env_kwargs") or {}), **parse_overrides(args.env_kwargs)}
    except HyperparamError as exc:
        raise UserError(str(exc)) from exc
    if "split" in env_kwargs:
        raise UserError("--env-kwargs split=...: use --train-split / --eval-split instead")
    n_timesteps = int(args.n_timesteps or hp.get("n_timesteps", 100_000))
    n_envs = int(args.n_envs or hp.get("n_envs", 1))
    if args.eval_only and not args.trained_agent:
        raise UserError("--eval-only needs --trained-agent MODEL_ZIP (or use python -m equiglb.agents.evaluate)")
    load_from = check_model_file(args.trained_agent) if args.trained_agent else None
    _check_env(args.env, env_kwargs, args.train_split)
    if args.baselines:
        from equiglb.baselines import POLICY_NAMES

        bad = [b for b in args.baselines if b not in POLICY_NAMES]
        if bad:
            raise UserError(f"--baselines: unknown {bad}; available: {list(POLICY_NAMES)}")
    if args.vec_env is None:
        spec = gym.spec(args.env)
        args.vec_env = "native" if getattr(spec, "vector_entry_point", None) and args.env.startswith("equiglb/") \
            else "dummy"
    return Plan(args.algo, args.env, hp, env_kwargs, n_timesteps, n_envs, load_from=load_from)


def run(args: argparse.Namespace) -> int:
    """Train (or resume, or only evaluate) as the command line says; return the exit code."""
    import torch

    plan = plan_from_args(args)
    torch.set_num_threads(args.torch_threads)
    if args.eval_only:
        from equiglb.agents.evaluate import evaluate_models

        out = evaluate_models([plan.load_from], env_id=plan.env_id, env_kwargs=plan.env_kwargs,
                              split=args.eval_split, baselines=args.baselines, progress=args.progress,
                              algo=plan.algo)
        print(f"Results in {out}")
        return 0

    run_dir = plan.run_dir or new_run_dir(args.log_folder, plan.algo, plan.env_id)
    off_policy = plan.algo in OFF_POLICY
    cfg_path = run_dir / "config.yml"
    if plan.resume:
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["n_timesteps"] = plan.n_timesteps
        cfg.setdefault("resumed", []).append({"utc": _now(), "from": str(plan.load_from), "argv": sys.argv})
        seed = int(cfg["seed"])
        args.eval_split, args.train_split = cfg["eval_split"], cfg["train_split"]
        args.baselines = cfg.get("baselines")
    else:
        seed = args.seed
        cfg = {
            "algo": plan.algo, "env_id": plan.env_id, "env_kwargs": plan.env_kwargs,
            "hyperparams": plan.hp, "n_timesteps": plan.n_timesteps, "n_envs": plan.n_envs, "seed": seed,
            "vec_env": args.vec_env, "device": args.device, "torch_threads": args.torch_threads,
            "eval_freq": args.eval_freq, "eval_episodes": args.eval_episodes, "save_freq": args.save_freq,
            "train_split": args.train_split, "eval_split": args.eval_split, "baselines": args.baselines,
            "trained_agent": str(plan.load_from) if plan.load_from else None,
            "gym_packages": list(args.gym_packages or ()), "argv": sys.argv, "started_utc": _now(),
            "versions": versions(),
        }
    cfg_path.write_text(yaml.safe_dump(_plain(cfg), sort_keys=False))
    tb = args.tensorboard_log or str(run_dir / "tb")
    print(f"Run folder: {run_dir}", flush=True)

    hp, env_kwargs = plan.hp, plan.env_kwargs
    gamma = float(hp.get("gamma", 0.99))
    vn_path = rb_path = None
    if plan.load_from is not None:
        vn_path, rb_path = companions(plan.load_from)
    venv = make_vec_env(plan.env_id, plan.n_envs, seed, cfg.get("vec_env", args.vec_env),
                        {**env_kwargs, "split": args.train_split})
    venv = _wrap_normalize(venv, hp.get("normalize", False), gamma, vn_path, training=True)
    eval_env = None
    if args.eval_freq > 0:
        eval_split = _validation_split(plan.env_id, env_kwargs, args.train_split)
        eval_env = make_vec_env(plan.env_id, 1, seed + 10_000, "dummy",
                                {**env_kwargs, "split": eval_split, "random_start": False})
        eval_env = _wrap_normalize(eval_env, hp.get("normalize", False), gamma, None, training=False)

    cls = ALGOS[plan.algo]
    if plan.load_from is not None:
        model = cls.load(str(plan.load_from), env=venv, device=args.device, tensorboard_log=tb)
        if off_policy and rb_path is not None:
            model.load_replay_buffer(str(rb_path))
        model.set_random_seed(seed + model.num_timesteps)
        remaining = plan.n_timesteps - model.num_timesteps if plan.resume else plan.n_timesteps
        print(f"Continuing {plan.load_from} from step {model.num_timesteps}", flush=True)
    else:
        kwargs = build_model_kwargs(plan.algo, hp, int(np.prod(venv.action_space.shape)))
        model = cls(hp.get("policy", "MlpPolicy"), venv, seed=seed, device=args.device, tensorboard_log=tb,
                    verbose=args.verbose, **kwargs)
        remaining = plan.n_timesteps

    t0 = time.perf_counter()
    if remaining > 0:
        with Interrupted() as stop:
            cb = _callbacks(stop, run_dir, args.save_freq, plan.n_envs, eval_env, args.eval_freq,
                            args.eval_episodes, args.progress, off_policy)
            model.learn(total_timesteps=remaining, callback=cb, reset_num_timesteps=plan.load_from is None,
                        tb_log_name=plan.algo.upper())
        if stop.signum is not None:
            ckpt = save_checkpoint(model, run_dir, off_policy)
            print(f"Interrupted at step {model.num_timesteps}: checkpoint saved to {ckpt}\n"
                  f"Resume with: python train.py --resume {run_dir}", file=sys.stderr, flush=True)
            venv.close()
            return 128 + stop.signum
    train_s = time.perf_counter() - t0
    model.save(str(run_dir / "model.zip"))
    if model.get_vec_normalize_env() is not None:
        model.get_vec_normalize_env().save(str(run_dir / "vecnormalize.pkl"))
    if off_policy:
        model.save_replay_buffer(str(run_dir / "replay_buffer.pkl"))
    venv.close()
    print(f"Trained {model.num_timesteps} steps in {train_s:.0f} s; model saved to {run_dir / 'model.zip'}",
          flush=True)

    from equiglb.agents.evaluate import evaluate_models

    evaluate_models([run_dir / "model.zip"], env_id=plan.env_id, env_kwargs=env_kwargs, split=args.eval_split,
                    baselines=args.baselines, progress=args.progress, out_dir=run_dir / "eval",
                    algo=plan.algo, names=[f"{plan.algo} (agent)"])
    cfg["finished_utc"] = _now()
    cfg["train_seconds"] = round(train_s, 1)
    cfg["num_timesteps"] = int(model.num_timesteps)
    cfg_path.write_text(yaml.safe_dump(_plain(cfg), sort_keys=False))
    print(f"Run folder: {run_dir}")
    return 0


def _validation_split(env_id: str, env_kwargs: dict[str, Any], train_split: str) -> str:
    """The split periodic evaluations use: ``val`` if the scenario has one, else the train split
    (never the test window, which is kept for the final table)."""
    from equiglb.agents.evaluate import scenario_of

    splits = scenario_of(env_id, env_kwargs).splits
    return next((s for s in ("val", "validation") if s in splits), train_split)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
