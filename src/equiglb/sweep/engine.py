"""Run a sweep's trials on Ray Tune: a local Ray instance by default, or a running cluster.

Each trial is a Tune function trainable that calls :func:`equiglb.sweep.worker.run_trial_process` (one
``train.py`` run) with the CPUs of ``--cpus-per-trial`` reserved. Finished trials are recognized by
their ``result.json``; ``--resume`` runs only the others. A failed trial is recorded with its error
and the others go on (Tune's ``max_failures=0``, errors caught in the trial).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import ray
import yaml
from ray import tune
from ray.tune.search.optuna import OptunaSearch

import equiglb
from equiglb.agents.algos import ALGOS
from equiglb.agents.evaluate import check_baselines, check_split, scenario_of
from equiglb.agents.runs import UserError
from equiglb.agents.trainer import build, resolve
from equiglb.baselines import POLICY_NAMES
from equiglb.sweep.config import SweepConfig, SweepError, TrialSpec, expand_trials, grid_points
from equiglb.sweep.trial import trial_plan
from equiglb.sweep.worker import grid_trainable, read_result, search_trainable
from equiglb.validate import cli_value, write_atomic

__all__ = ["SEARCH_SPACES", "preflight", "prepare_out", "trial_specs", "ray_session", "tune_grid", "run_specs",
           "collect", "run_search"]

CONFIG_FILE = "sweep.yml"
#: seconds to wait for a TCP connection to ``--address`` before the sweep is refused
CONNECT_TIMEOUT_S = 10.0
#: Keys of sweep.yml that may differ between a sweep and its resumption (they do not change a result).
RESUMABLE = ("resume", "address", "num_cpus", "cpus_per_trial", "reps", "bootstrap_seed")

#: The hyperparameter search space per algorithm (Ray Tune domains, sampled by Optuna's TPE).
SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": tune.loguniform(1e-4, 3e-3), "gamma": tune.choice([0.0, 0.2, 0.5, 0.8, 0.9, 0.99]),
            "ent_coef": tune.loguniform(1e-4, 5e-2), "n_steps": tune.choice([64, 128, 256, 512]),
            "n_epochs": tune.choice([5, 10, 20]), "clip_range": tune.choice([0.1, 0.2, 0.3]),
            "gae_lambda": tune.uniform(0.8, 1.0)},
    "a2c": {"learning_rate": tune.loguniform(1e-4, 3e-3), "gamma": tune.choice([0.0, 0.2, 0.5, 0.8, 0.9, 0.99]),
            "ent_coef": tune.loguniform(1e-4, 5e-2), "n_steps": tune.choice([5, 16, 32, 64])},
    "sac": {"learning_rate": tune.loguniform(1e-4, 3e-3), "gamma": tune.choice([0.0, 0.2, 0.5, 0.8, 0.9, 0.99]),
            "batch_size": tune.choice([64, 128, 256]), "tau": tune.choice([0.005, 0.01, 0.02])},
    "td3": {"learning_rate": tune.loguniform(1e-4, 3e-3), "gamma": tune.choice([0.0, 0.2, 0.5, 0.8, 0.9, 0.99]),
            "batch_size": tune.choice([64, 128, 256]), "tau": tune.choice([0.005, 0.01, 0.02])},
    "ddpg": {"learning_rate": tune.loguniform(1e-4, 3e-3), "gamma": tune.choice([0.0, 0.2, 0.5, 0.8, 0.9, 0.99]),
             "batch_size": tune.choice([64, 128, 256]), "tau": tune.choice([0.005, 0.01, 0.02])},
}


# ---------------------------------------------------------------------- validation, output folder
def _check_algo(algo: str) -> None:
    """``algo`` is one of train.py's algorithms (:data:`~equiglb.agents.algos.ALGOS`)."""
    if algo not in ALGOS:
        raise SweepError(f"--algos: {algo!r} is not an algorithm of train.py (choose from {', '.join(sorted(ALGOS))})")


def _yaml_value(text: str) -> Any:
    try:
        return cli_value(text)                     # as train.py reads the same key=value text
    except yaml.YAMLError as exc:
        raise SweepError(f"value {text!r} is not valid YAML ({exc})") from exc


def _absolute_paths(kwargs: dict[str, str]) -> dict[str, str]:
    """``data_dir`` given relative to the current folder, made absolute (trials run elsewhere)."""
    out = dict(kwargs)
    if "data_dir" in out and out["data_dir"] and not os.path.isabs(out["data_dir"]) and Path(out["data_dir"]).exists():
        out["data_dir"] = str(Path(out["data_dir"]).resolve())
    return out


def check_address(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """``--address HOST:PORT`` (or ``ray://HOST:PORT``): something accepts TCP connections there within
    ``timeout_s`` seconds, else :class:`SweepError` naming the address; ``ray.init`` itself would retry
    for minutes. ``auto`` and other forms are left to Ray."""
    if not address:
        return
    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]]+?)\]?:(\d+)", address.strip())
    if m is None:
        if address.strip() == "auto":
            return
        raise SweepError(f"--address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto")
    host, port = m.group(1), int(m.group(2))
    if not 0 < port < 65536:
        raise SweepError(f"--address {address!r}: port {port} is not in 1..65535")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise SweepError(f"--address {address!r}: cannot connect to a Ray cluster there within {timeout_s:g} s "
                         f"({type(exc).__name__}: {exc}); start one with `ray start --head --port {port}`, or "
                         f"omit --address for a local Ray instance") from None


def check_cluster_cpus(cfg: SweepConfig) -> None:
    """On the connected Ray: ``--cpus-per-trial`` at most the cluster's CPUs (else no trial could ever
    be scheduled and Tune would wait forever)."""
    total = float(ray.cluster_resources().get("CPU", 0.0))
    if cfg.cpus_per_trial > total:
        where = f"the Ray cluster at {cfg.address}" if cfg.address else "the local Ray instance"
        raise SweepError(f"--cpus-per-trial {cfg.cpus_per_trial:g} is more than the {total:g} CPUs of {where}: "
                         f"no trial could ever start")


def _trial_check_specs(cfg: SweepConfig, folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """For every algorithm and grid point, the spec a trial receives (its folder: ``folder``)."""
    if cfg.search is not None:
        return [(f"--search {algo}", {"algo": algo, "seed": cfg.seeds[0], "point": {}, "env": cfg.env,
                                      "env_kwargs": holdout_env_kwargs(cfg, 0.2), "hyperparams": cfg.hyperparams,
                                      "n_timesteps": cfg.n_timesteps, "baselines": [], "with_baselines": False,
                                      "eval_freq": 0, "train_split": "fit", "eval_split": "val",
                                      "trial_dir": str(folder)}) for algo in cfg.algos]
    fixed = _absolute_paths(cfg.env_kwargs)
    return [(f"--algos {algo} --grid point {point or '(none)'}",
             {"algo": algo, "seed": cfg.seeds[0], "point": point, "env": cfg.env, "env_kwargs": fixed,
              "hyperparams": cfg.hyperparams, "n_timesteps": cfg.n_timesteps, "baselines": cfg.baselines,
              "with_baselines": i == 0, "eval_freq": cfg.eval_freq, "trial_dir": str(folder)})
            for i, algo in enumerate(cfg.algos) for point in grid_points(cfg.grid)]


def check_trials(cfg: SweepConfig) -> None:
    """Check every trial's train.py run the way the trial will make it, before any trial starts: its plan
    (:func:`~equiglb.sweep.trial.trial_plan`) resolved as train.py resolves it (hyperparameter file,
    overrides, the merged environment options), its environment made on the train split with exactly those
    options, its evaluation split;
    and, once per algorithm, the model itself built in memory (SB3's checks of the hyperparameters).
    Raises :class:`SweepError` naming the algorithm, the grid point and train.py's message."""
    with tempfile.TemporaryDirectory(prefix="equiglb-sweep-check-") as tmp:
        built_algos: set[str] = set()
        for where, spec in _trial_check_specs(cfg, Path(tmp)):
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    plan = resolve(trial_plan(spec))
                    assert plan.env_id is not None and plan.algo is not None
                    try:
                        gym.make(plan.env_id, **{**plan.env_kwargs, "split": plan.train_split}).close()
                    except Exception as exc:  # the env's own message names the option
                        raise UserError(f"cannot make {plan.env_id!r} with {plan.env_kwargs}: {exc}") from exc
                    full = scenario_of(plan.env_id, plan.env_kwargs)
                    window = check_split(full, plan.eval_split, "--eval-split")
                    # the baselines the trial evaluates, on its window (the tuned one is checked by name:
                    # building it tunes it, which takes minutes)
                    check_baselines([b for b in plan.baselines or [] if b != "online-eglb-tuned"], window)
                    if plan.algo not in built_algos:
                        # baselines are checked by name above
                        b = build(replace(plan, baselines=[], eval_freq=0))
                        for env in (b.venv, b.eval_env):
                            if env is not None:
                                env.close()
                        built_algos.add(plan.algo)
            except UserError as exc:
                raise SweepError(f"{where}: every trial would fail: train.py --algo {spec['algo']} ...: {exc}") \
                    from None


def preflight(cfg: SweepConfig) -> None:
    """Check algorithms, environment id, baselines, the Ray address and every trial's train.py run
    (:func:`check_trials`) before anything is written or any trial starts."""
    for algo in cfg.algos:
        _check_algo(algo)
    if cfg.search is not None:
        missing = [a for a in cfg.algos if a not in SEARCH_SPACES]
        if missing:
            raise SweepError(f"--search: no search space for {missing}; spaces exist for {sorted(SEARCH_SPACES)}")
        if len(grid_points(cfg.grid)) != 1:
            raise SweepError(f"--search tunes one environment setting: give one value per --grid key, got {cfg.grid}")
    if cfg.env not in gym.envs.registry:
        ours = sorted(k for k in gym.envs.registry if k.startswith("equiglb"))
        raise SweepError(f"--env {cfg.env!r} is not a registered environment id; equiglb ids: {ours}")
    bad = [b for b in cfg.baselines if b not in POLICY_NAMES]
    if bad:
        raise SweepError(f"--baselines: unknown {bad}; available: {list(POLICY_NAMES)}")
    fixed = _absolute_paths(cfg.env_kwargs)
    for point in grid_points(cfg.grid):
        kwargs = {k: _yaml_value(v) for k, v in {**fixed, **point}.items()}
        try:
            gym.make(cfg.env, **kwargs).close()
        except Exception as exc:
            where = f"--grid point {point}" if point else "--env-kwargs"
            raise SweepError(f"{where}: cannot make {cfg.env!r} with {kwargs}: {exc}") from exc
    check_trials(cfg)
    check_address(cfg.address)


def prepare_out(cfg: SweepConfig) -> Path:
    """The sweep's folder: new (or empty) unless ``--resume``; never another sweep's folder overwritten.

    With ``--resume`` the folder must hold a sweep whose configuration (``sweep.yml``) matches,
    except for :data:`RESUMABLE` keys.
    """
    out = Path(cfg.out).resolve()
    saved = out / CONFIG_FILE
    if cfg.resume:
        if not saved.is_file():
            raise SweepError(f"--resume --out {str(out)!r}: no {CONFIG_FILE} there (not a sweep folder)")
        try:
            old = yaml.safe_load(saved.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise SweepError(f"--resume --out {str(out)!r}: {saved} is not readable ({type(exc).__name__}: "
                             f"{exc}); it records the sweep's configuration, restore it or start a new --out") from None
        if not isinstance(old, dict):
            raise SweepError(f"--resume --out {str(out)!r}: {saved} does not hold a sweep configuration "
                             f"(a {type(old).__name__}); restore it or start a new --out")
        new = cfg.to_dict()
        diff = sorted(k for k in new if k not in RESUMABLE and k != "out" and old.get(k) != new[k])
        if diff:
            raise SweepError(f"--resume --out {str(out)!r}: the configuration differs from {saved} in {diff} "
                             f"(saved {[old.get(k) for k in diff]}, given {[new[k] for k in diff]})")
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        hint = " (add --resume to finish it)" if saved.is_file() else ""
        raise SweepError(f"--out {str(out)!r} exists and is not empty: choose a new folder{hint}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(saved, yaml.safe_dump({**cfg.to_dict(), "out": str(out)}, sort_keys=False))
    except OSError as exc:
        raise SweepError(f"--out {str(out)!r}: cannot create the sweep folder there ({type(exc).__name__}: "
                         f"{exc.strerror or exc})") from None
    return out


def unprepare_out(out: Path) -> None:
    """Undo :func:`prepare_out` of a new sweep that never started a trial (its ``sweep.yml`` and the
    folder, if then empty), so that the same command can be given again."""
    (out / CONFIG_FILE).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        out.rmdir()


def trial_specs(cfg: SweepConfig, out: Path) -> list[tuple[TrialSpec, dict[str, Any]]]:
    """Each trial with the plain dict its Ray task receives."""
    fixed = _absolute_paths(cfg.env_kwargs)
    return [(t, {"trial_id": t.trial_id, "algo": t.algo, "seed": t.seed, "point": t.point, "env": cfg.env,
                 "env_kwargs": fixed, "hyperparams": cfg.hyperparams, "n_timesteps": cfg.n_timesteps,
                 "baselines": cfg.baselines, "with_baselines": t.with_baselines, "eval_freq": cfg.eval_freq,
                 "trial_dir": str(out / "trials" / t.trial_id)})
            for t in expand_trials(cfg)]


# ---------------------------------------------------------------------- Ray
@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None):
    """``ray.init`` (a new local instance, or the cluster at ``address``) and ``ray.shutdown`` at the end.

    The workers import this very equiglb: on a cluster the package folder is shipped with the job
    (``runtime_env`` ``py_modules``); locally its parent folder is put on their ``PYTHONPATH``.
    Connecting to a cluster, the token of Ray's token authentication is used when one exists
    (``~/.ray/auth_token`` or ``$RAY_AUTH_TOKEN``) and ``RAY_AUTH_MODE`` is not set, as ``ray start``
    does.
    """
    pkg_parent = str(Path(equiglb.__file__).resolve().parents[1])
    env_vars = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runtime_env: dict[str, Any] = {"env_vars": env_vars}
    if address:
        runtime_env["py_modules"] = [equiglb]
        token = Path.home() / ".ray" / "auth_token"
        if "RAY_AUTH_MODE" not in os.environ and (token.is_file() or os.environ.get("RAY_AUTH_TOKEN")):
            os.environ["RAY_AUTH_MODE"] = "token"   # as `ray start` does when a token exists
    else:
        env_vars["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, os.environ.get("PYTHONPATH", "")) if p)
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    if ray.is_initialized():                 # an enclosing session (the command line's) is reused
        yield
        return
    try:
        # "local": a new local instance even when another Ray runs on the machine (ray.init() without an
        # address would attach to it through $RAY_ADDRESS or /tmp/ray/ray_current_cluster)
        ray.init(address=address or "local", num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, runtime_env=runtime_env, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise SweepError(f"--address {address!r}: cannot connect to Ray: {exc}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _tune_run(trainable, param_space: dict[str, Any], cfg: SweepConfig, out: Path, name: str,
              tune_config: tune.TuneConfig) -> tune.ResultGrid:
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cfg.cpus_per_trial}), param_space=param_space,
        tune_config=tune_config,
        run_config=tune.RunConfig(name=name, storage_path=str(out / "ray"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)))
    return tuner.fit()


def tune_grid(specs: list[dict[str, Any]], cfg: SweepConfig, out: Path) -> dict[str, str]:
    """Run ``specs`` as one Tune experiment on the connected Ray; return ``{trial_id: error}`` of the
    trials Ray itself lost (a worker that died); errors inside train.py are in each trial's ``error.json``."""
    name = f"grid_{time.strftime('%Y%m%d-%H%M%S')}"
    grid = _tune_run(grid_trainable, {"spec": tune.grid_search(specs)}, cfg, out, name,
                     tune.TuneConfig(num_samples=1, trial_dirname_creator=lambda t: t.trial_id, reuse_actors=True))
    lost = {}
    for i in range(len(grid)):
        r = grid[i]
        if r.error is not None:
            lost[(r.config or {})["spec"]["trial_id"]] = f"{type(r.error).__name__}: {r.error}"[-2000:]
    return lost


def run_specs(specs: list[dict[str, Any]], cfg: SweepConfig, out: Path) -> dict[str, str]:
    """:func:`tune_grid` in a Ray session (local, or the cluster at ``cfg.address``); nothing if no specs."""
    if not specs:
        return {}
    with ray_session(cfg.address, cfg.num_cpus):
        check_cluster_cpus(cfg)
        return tune_grid(specs, cfg, out)


def collect(specs: list[tuple[TrialSpec, dict[str, Any]]], lost: dict[str, str]) -> list[dict[str, Any]]:
    """Every trial's result (finished, failed, or never run)."""
    out = []
    for t, spec in specs:
        res = read_result(Path(spec["trial_dir"]))
        if res is None:
            res = {"trial_id": t.trial_id, "algo": t.algo, "seed": t.seed, "point": t.point, "status": "error",
                   "error": lost.get(t.trial_id, "the trial did not finish (interrupted?)"), "run_dir": ""}
        out.append(res)
    return out


# ---------------------------------------------------------------------- hyperparameter search
def holdout_env_kwargs(cfg: SweepConfig, val_fraction: float) -> dict[str, str]:
    """Environment options of a search trial: the ``holdout`` scenario of the sweep's scenario."""
    fixed = {**_absolute_paths(cfg.env_kwargs), **grid_points(cfg.grid)[0]}
    base = fixed.pop("scenario", None) or (gym.spec(cfg.env).kwargs or {}).get("scenario", "synthetic")
    options = _yaml_value(fixed.pop("scenario_options", "")) or {}
    if not isinstance(options, dict):
        raise SweepError(f"--env-kwargs scenario_options={options!r}: expected a mapping")
    options = {**options, "base": base, "val_fraction": val_fraction}
    fixed["scenario"] = "holdout"
    fixed["scenario_options"] = yaml.safe_dump(options, default_flow_style=True).strip()
    return fixed


def run_search(cfg: SweepConfig, out: Path, algo: str, val_fraction: float = 0.2) -> list[dict[str, Any]]:
    """Optuna (TPE) search over :data:`SEARCH_SPACES` ``[algo]`` with ``cfg.n_trials`` configurations,
    each trained on the ``fit`` part of the train split with the first seed and scored by its gap to
    the offline optimum on the ``val`` part. Returns one record per configuration."""
    spec = {"algo": algo, "seed": cfg.seeds[0], "point": {}, "env": cfg.env,
            "env_kwargs": holdout_env_kwargs(cfg, val_fraction), "hyperparams": cfg.hyperparams,
            "n_timesteps": cfg.n_timesteps, "baselines": [], "with_baselines": False, "eval_freq": 0,
            "train_split": "fit", "eval_split": "val", "trial_dir": str(out / "trials")}
    searcher = OptunaSearch(metric="val_gap_to_offline", mode="min", seed=cfg.seeds[0])
    with ray_session(cfg.address, cfg.num_cpus):
        check_cluster_cpus(cfg)
        grid = _tune_run(search_trainable, {"spec": spec, "hp": SEARCH_SPACES[algo]}, cfg, out, f"search_{algo}",
                         tune.TuneConfig(search_alg=searcher, num_samples=cfg.n_trials,
                                         trial_dirname_creator=lambda t: t.trial_id))
    rows = []
    for i in range(len(grid)):
        r = grid[i]
        m = r.metrics or {}
        rows.append({"algo": algo, **{k: v for k, v in (r.config or {}).get("hp", {}).items()},
                     "val_gap_to_offline": m.get("val_gap_to_offline", math.nan) if m.get("ok") else math.nan,
                     "val_objective": m.get("val_objective", math.nan), "status": "ok" if m.get("ok") else "error",
                     "error": "" if m.get("ok") else str(r.error or "train.py failed (see the trial's train.log)")})
    return rows

