"""Training run of ``python train.py``, in the order it happens (see :func:`run`):

1. **plan**: resolve the options as given (a :class:`~equiglb.agents.plan.TrainPlan`, from the command
   line or the sweep), or the recorded ``config.yml`` of ``--resume``, into the run's plan (:func:`resolve`;
   nothing built, nothing written);
2. **validate and build**: check everything that can be known in advance by building the
   environments and the model in memory (:func:`build`): hyperparameter values, policy against the
   observation space, device, writable folders, the train and evaluation splits, the baselines of
   the final table on the evaluation window, a model given with ``-i`` (algorithm, shapes, file),
   the checkpoint to resume. Any problem raises :class:`~equiglb.agents.runs.UserError` here;
3. **run folder**: only now create ``<log-folder>/<algo>/<env>_<n>/`` and write ``config.yml``
   (layout in :mod:`equiglb.agents.runs`);
4. **train** with checkpoints at consistent points, periodic evaluation and exact interruption
   (:mod:`equiglb.agents.resume`);
5. **final evaluation** on the held-out window beside the baselines (``eval/table.csv``; under the monthly
   protocol of the ``world`` scenarios, :mod:`equiglb.protocol`, each calendar month of it is one episode, and
   the periodic evaluation plays each month of the validation split);
6. **report**: the step and update counts and times into ``config.yml``; :func:`run` returns a
   :class:`TrainResult` (exit code, run folder, the final table's rows).
"""

from __future__ import annotations

import ast
import importlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

import equiglb.envs  # noqa: F401  (registers the equiglb/* ids)
from equiglb.agents.algos import (
    ALGOS,
    OFF_POLICY,
    HyperparamError,
    build_model_kwargs,
    check_device,
    load_hyperparams,
)
from equiglb.agents.evaluate import (
    check_baselines,
    check_split,
    episodes_of,
    evaluate_models,
    evaluate_table,
    scenario_of,
)
from equiglb.agents.plan import (
    CONFIG_KEYS,
    NOT_WITH_RESUME,
    RECORDED,
    TrainPlan,
    flag_name,
    given_flags,
    plan_config,
    plan_from_config,
)
from equiglb.agents.policy import normalizes_obs
from equiglb.agents.resume import (
    ConsistentPoints,
    Interrupted,
    PeriodicEval,
    ReplayableEnv,
    ReplayableVecEnv,
    StopAtConsistentPoint,
    load_history,
    load_resume_state,
    restore_env_replay,
    save_checkpoint,
    save_history,
    set_rng_state,
)
from equiglb.agents.runs import (
    UserError,
    check_agent_options,
    check_model_file,
    check_writable,
    checkpoint_paths,
    companions,
    detect_algo,
    latest_checkpoint,
    new_run_dir,
    now_utc,
    read_config,
    run_config,
    versions,
    write_config,
)
from equiglb.baselines import POLICY_NAMES
from equiglb.envs.core import CARRIED_OPTIONS, MODE_OPTIONS
from equiglb.envs.monthly import MonthlyEpisodesEnv
from equiglb.envs.registration import registered_kwargs
from equiglb.envs.sb3 import make_sb3_vec_env

__all__ = ["Built", "TrainResult", "resolve", "build", "run", "make_vec_env"]

DEFAULT_ALGO = "ppo"


@dataclass
class Built:
    """The environments and the model of a validated plan, in memory."""

    venv: VecEnv | None = None
    model: BaseAlgorithm | None = None       # None: nothing to train (--eval-only, or training finished)
    eval_env: VecEnv | None = None
    #: episodes of each periodic evaluation: ``--eval-episodes``, or the validation split's months (monthly protocol)
    eval_episodes: int = 1


@dataclass
class TrainResult:
    """What a run (:func:`run`) ends with: its exit code (0, or 128 + the signal that interrupted it), its
    run folder (None for ``--eval-only``) and the rows of its final evaluation table (one dict per policy,
    the columns of ``eval/table.csv``; empty when it did not get that far)."""

    exit_code: int
    run_dir: Path | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------- 1. plan
def _import_packages(mods: Any) -> None:
    for mod in mods or ():
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise UserError(f"--gym-packages: cannot import {mod!r}: {exc}") from exc


#: ``--env`` when not given: the id of the algorithm's tuned settings (ppo.yml, a2c.yml, ... list them).
DEFAULT_ENV_IDS = {"ppo": "equiglb/EquitableGLB-residual-constant-v0", "*": "equiglb/EquitableGLB-240h-v0"}


def resolve(given: TrainPlan) -> TrainPlan:
    """The run's plan from the options as given (:func:`~equiglb.agents.plan.plan_from_args`), or from the
    recorded ``config.yml`` of ``--resume``: the algorithm, id, hyperparameters and environment options
    resolved and validated (raises :class:`UserError`; builds and writes nothing)."""
    _import_packages(given.gym_packages)
    if given.resume is not None:
        return _plan_resume(given)
    if given.eval_only and given.trained_agent is None:
        raise UserError("--eval-only needs --trained-agent MODEL_ZIP (or use python -m equiglb.agents.evaluate)")
    trained = check_model_file(given.trained_agent, "--trained-agent") if given.trained_agent is not None else None
    # without --algo: the algorithm of the model given with -i, else PPO
    algo = given.algo or (detect_algo(trained) if trained is not None else DEFAULT_ALGO)
    # without --env: the algorithm's tuned settings (an id whose registered defaults are them)
    env_id = given.env_id if given.env_id is not None else DEFAULT_ENV_IDS.get(algo, DEFAULT_ENV_IDS["*"])
    try:
        conf = Path(given.conf_file) if given.conf_file else None
        hp = load_hyperparams(algo, env_id, given.hyperparams, path=conf)
    except HyperparamError as exc:
        raise UserError(f"{'--conf-file/' if given.conf_file else ''}--hyperparams: {exc}") from exc
    try:
        env_kwargs = merge_env_kwargs(hp.get("env_kwargs") or {}, given.env_kwargs,
                                      registered=registered_kwargs(env_id))
    except HyperparamError as exc:
        raise UserError(f"--env-kwargs: {exc}") from exc
    if "split" in env_kwargs:
        raise UserError("--env-kwargs split=...: use --train-split / --eval-split instead")
    if given.eval_only and trained is not None:
        check_agent_options(trained, given.env_kwargs, flag="--trained-agent")
    vec_env = given.vec_env
    if vec_env is None:
        spec = gym.envs.registry.get(env_id)
        native = spec is not None and getattr(spec, "vector_entry_point", None) and env_id.startswith("equiglb/")
        vec_env = "native" if native else "dummy"
    return replace(given, algo=algo, env_id=env_id, hyperparams=hp, env_kwargs=env_kwargs,
                   n_timesteps=int(given.n_timesteps or hp.get("n_timesteps", 100_000)),
                   n_envs=int(given.n_envs or hp.get("n_envs", 1)), vec_env=vec_env,
                   torch_threads=given.torch_threads if given.torch_threads is not None else 1,
                   trained_agent=trained)


def _plan_resume(given: TrainPlan) -> TrainPlan:
    """The plan of ``--resume RUN_DIR``: the run's recorded configuration, from its latest checkpoint."""
    assert given.resume is not None
    run_dir, shown = given.resume, str(given.resume)
    for name in given_flags(given, NOT_WITH_RESUME):
        raise UserError(f"--resume takes the run's recorded configuration; {flag_name(name)} cannot be given "
                        "with it (use -i MODEL_ZIP to continue training in a new run folder)")
    cfg = read_config(run_dir)
    # gym_packages and trained_agent may be absent (config.yml of earlier versions)
    required = [k for k in CONFIG_KEYS if k not in ("gym_packages", "trained_agent")]
    missing = [k for k in required if k not in cfg]
    if missing:
        raise UserError(f"--resume {shown!r}: config.yml lacks {missing} (not written by this train.py)")
    for name in given_flags(given, RECORDED):
        if getattr(given, name) != cfg[name]:
            raise UserError(f"--resume {shown!r}: {flag_name(name)} {getattr(given, name)!r} differs from the "
                            f"recorded {name}: {cfg[name]!r}; a resumed run keeps its configuration (never rewritten)")
    if cfg.get("finished_utc"):
        raise UserError(f"--resume {shown!r}: this run finished at {cfg['finished_utc']}; nothing to resume")
    if cfg["algo"] not in ALGOS:
        raise UserError(f"--resume {shown!r}: config.yml names an unknown algorithm {cfg['algo']!r}")
    _import_packages(cfg.get("gym_packages"))
    steps: int | None = None
    if cfg.get("trained_utc"):      # training ended; only the final evaluation is left
        check_model_file(run_dir / "model.zip", "--resume model")
    else:
        found = latest_checkpoint(run_dir)
        if found is None:
            raise UserError(f"--resume {shown!r}: no checkpoint in {str(run_dir / 'checkpoints')!r} "
                            "(interrupted before its first consistent point: start it again)")
        steps = found[0]
        check_model_file(found[1], "--resume checkpoint")
        if not checkpoint_paths(run_dir, steps)["resume"].is_file():
            raise UserError(f"--resume {shown!r}: checkpoint {found[1].name} has no "
                            f"{checkpoint_paths(run_dir, steps)['resume'].name} (not written by this train.py)")
    try:
        recorded = plan_from_config(cfg)
    except HyperparamError as exc:
        raise UserError(f"--resume {shown!r}: config.yml: {exc}") from exc
    return replace(recorded, log_folder=str(run_dir.parent), progress=given.progress,
                   verbose=given.verbose, robust_margin=given.robust_margin, trained_agent=None,
                   resume=run_dir, resume_steps=steps)


# ---------------------------------------------------------------------- 2. validate and build
def normalize_kwargs(normalize: Any) -> dict[str, Any] | None:
    """VecNormalize keyword arguments of a ``normalize`` hyperparameter (None: no normalization).

    Accepts ``true``/``false``, a mapping, or rl-baselines3-zoo's string ``"dict(norm_obs=True, ...)"``.
    """
    if isinstance(normalize, str):
        text = normalize.strip()
        if text.lower() in ("true", "false"):
            return {} if text.lower() == "true" else None
        try:
            node = ast.parse(text, mode="eval").body
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" \
                    and not node.args:
                return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
            value = ast.literal_eval(node)
        except (SyntaxError, ValueError) as exc:
            raise UserError(f"--hyperparams normalize={normalize!r}: not true/false or dict(...)") from exc
        return normalize_kwargs(value)
    if isinstance(normalize, dict):
        return dict(normalize)
    return {} if normalize else None


def merge_env_kwargs(entry: dict[str, Any], given: dict[str, Any],
                     registered: dict[str, Any] | None = None) -> dict[str, Any]:
    """The hyperparameter entry's ``env_kwargs`` updated key by key by ``--env-kwargs`` (``given``).

    When ``given`` switches the action mode, the entry's options of another mode
    (:data:`equiglb.envs.core.MODE_OPTIONS`: the residual modes' bases and ranges) belong to the entry's
    mode, not to the one asked for: they are dropped (the environment would refuse them). Those given
    on the command line are kept, so the environment names them in its error. Options of another mode
    among the id's ``registered`` defaults (a tuned id such as ``equiglb/EquitableGLB-residual-v0``) cannot
    be dropped: they are set back to the environment's defaults, which every mode accepts.
    """
    out = {**entry, **given}
    if "action_mode" in given:
        mode = given["action_mode"]
        dropped = sorted(k for m, opts in MODE_OPTIONS.items() if m != mode for k in opts
                         if k in entry and k not in given)
        for k in dropped:
            del out[k]
        reset = {k: opts[k] for m, opts in MODE_OPTIONS.items() if m != mode for k in opts
                 if k in (registered or {}) and k not in given}
        out.update(reset)
        if dropped or reset:
            print(f"--env-kwargs action_mode={mode}: the options of another action mode are not used: "
                  f"{', '.join(sorted({*dropped, *reset}))}", flush=True)
    return out


def make_vec_env(env_id: str, n_envs: int, vec_env: str, env_kwargs: dict[str, Any]) -> VecEnv:
    """An SB3 VecEnv of ``n_envs`` copies of ``env_id`` with seeded, replayable episodes
    (:class:`~equiglb.agents.resume.ReplayableVecEnv` around the native vector env, or
    :class:`~equiglb.agents.resume.ReplayableEnv` around each monitored copy). The model seeds it."""
    if vec_env == "native":
        return ReplayableVecEnv(make_sb3_vec_env(env_id, num_envs=n_envs, **env_kwargs))
    cls = SubprocVecEnv if vec_env == "subproc" else DummyVecEnv
    kw = {"start_method": "fork"} if vec_env == "subproc" and sys.platform != "win32" else None
    return sb3_make_vec_env(env_id, n_envs=n_envs, vec_env_cls=cls, env_kwargs=env_kwargs, vec_env_kwargs=kw,
                            wrapper_class=ReplayableEnv, wrapper_kwargs={"parent_pid": os.getpid()})


def _wrap_normalize(venv: VecEnv, plan: TrainPlan, stats: Path | None, training: bool) -> VecEnv:
    kw = normalize_kwargs(plan.hyperparams.get("normalize", False))
    if kw is None:
        return venv
    if stats is not None:
        try:
            vn = VecNormalize.load(str(stats), venv)
        except Exception as exc:
            raise UserError(f"normalization statistics {str(stats)!r} do not load: {type(exc).__name__}: {exc}") \
                from exc
    else:
        kw.setdefault("gamma", float(plan.hyperparams.get("gamma", 0.99)))
        try:
            vn = VecNormalize(venv, **kw)
        except TypeError as exc:
            raise UserError(f"--hyperparams normalize={plan.hyperparams.get('normalize')!r}: {exc}") from exc
    vn.training = training
    if not training:
        vn.norm_reward = False
    return vn


def _check_shapes(model_path: Path, model: BaseAlgorithm, venv: VecEnv, env_id: str, option: str) -> None:
    for what, mine, env_space in (("observation", model.observation_space, venv.observation_space),
                                  ("action", model.action_space, venv.action_space)):
        if mine.shape != env_space.shape:
            raise UserError(f"{option} {str(model_path)!r} was trained on {what}s of shape {mine.shape}, "
                            f"but {env_id} with these --env-kwargs has {env_space.shape}")


def _probe(path: Path, plan: TrainPlan, venv: VecEnv, option: str) -> None:
    """Check the model file loads as ``plan.algo`` with the env's observation and action shapes."""
    assert plan.algo is not None and plan.env_id is not None
    saved = detect_algo(path)
    if saved != plan.algo:
        raise UserError(f"{option} {str(path)!r} was trained with {saved}, not --algo {plan.algo}")
    try:
        probe = ALGOS[plan.algo].load(str(path), device=plan.device)
    except Exception as exc:
        raise UserError(f"{option} {str(path)!r} does not load as a {plan.algo} model: "
                        f"{type(exc).__name__}: {exc}") from exc
    _check_shapes(path, probe, venv, plan.env_id, option)


def _probe_spaces(plan: TrainPlan) -> None:
    """``-i MODEL``: the model's algorithm and observation/action shapes against one copy of the
    environment, checked before the baselines (whose tuning takes minutes) and the vector env are built."""
    assert plan.trained_agent is not None and plan.env_id is not None
    kwargs = dict(plan.env_kwargs)
    if plan.eval_only:              # evaluated with the agent options it was trained with (as evaluate_models)
        agent = run_config(plan.trained_agent).get("env_kwargs") or plan.env_kwargs
        kwargs = {**{k: v for k, v in kwargs.items() if k not in CARRIED_OPTIONS},
                  **{k: v for k, v in agent.items() if k in CARRIED_OPTIONS}}
    try:
        env = gym.make(plan.env_id, **{**kwargs, "split": plan.train_split})
    except Exception as exc:  # the env's own message names the option
        raise UserError(f"cannot make environment {plan.env_id!r} with --env-kwargs {plan.env_kwargs}: {exc}") from exc
    try:
        _probe(plan.trained_agent, plan, DummyVecEnv([lambda: env]), "--trained-agent")
    finally:
        env.close()


def build(plan: TrainPlan) -> Built:
    """Check everything that can be known before training by building it in memory; raise
    :class:`UserError` naming the option, file or value. Nothing is written."""
    assert plan.algo is not None and plan.env_id is not None and plan.vec_env is not None   # resolved
    assert plan.n_envs is not None and plan.torch_threads is not None
    torch.set_num_threads(plan.torch_threads)
    try:
        check_device(plan.device)
    except HyperparamError as exc:
        raise UserError(str(exc)) from exc
    if plan.resume is None and not plan.eval_only:
        check_writable(plan.log_folder, "--log-folder")
    if plan.tensorboard_log:
        check_writable(plan.tensorboard_log, "--tensorboard-log")
    if plan.env_id not in gym.envs.registry:
        ours = sorted(k for k in gym.envs.registry if k.startswith("equiglb"))
        raise UserError(f"--env: unknown environment id {plan.env_id!r}; equiglb ids: {ours}")
    full = scenario_of(plan.env_id, plan.env_kwargs)
    train = check_split(full, plan.train_split, "--train-split")
    check_split(full, plan.eval_split, "--eval-split")
    eps = episodes_of(full, plan.eval_split, plan.train_split)     # the months of a monthly scenario's split
    if plan.trained_agent is not None:
        _probe_spaces(plan)                          # before any baseline is tuned (minutes for some)
    check_baselines(list(plan.baselines) if plan.baselines is not None else list(POLICY_NAMES), eps.probe,
                    train=train, tune_hours=eps.tune_hours)
    if plan.eval_only:
        return Built()  # evaluate_models checks the model before it writes anything
    if plan.eval_freq > 0 and plan.eval_episodes < 1:
        raise UserError(f"--eval-episodes {plan.eval_episodes}: expected a positive integer")

    try:
        venv = make_vec_env(plan.env_id, plan.n_envs, plan.vec_env, {**plan.env_kwargs, "split": plan.train_split})
    except Exception as exc:  # the env's own message names the option
        raise UserError(f"cannot make environment {plan.env_id!r} with --env-kwargs {plan.env_kwargs}: {exc}") from exc
    cls = ALGOS[plan.algo]
    off_policy = plan.algo in OFF_POLICY
    if plan.resume is not None and plan.resume_steps is None:
        venv.close()
        return Built()  # only the final evaluation is left
    if plan.resume is not None:
        assert plan.resume_steps is not None
        paths = checkpoint_paths(plan.resume, plan.resume_steps)
        _probe(paths["model"], plan, venv, "--resume checkpoint")
        venv = _wrap_normalize(venv, plan, paths["vecnormalize"] if paths["vecnormalize"].is_file() else None, True)
        model = cls.load(str(paths["model"]), env=venv, device=plan.device, force_reset=False)
        try:
            load_resume_state(plan.resume, plan.resume_steps)
        except Exception as exc:
            raise UserError(f"--resume: {str(paths['resume'])!r} is not readable: {type(exc).__name__}: {exc}") \
                from exc
        if off_policy:
            if not paths["replay_buffer"].is_file():
                raise UserError(f"--resume: the checkpoint's replay buffer {str(paths['replay_buffer'])!r} is missing")
            model.load_replay_buffer(str(paths["replay_buffer"]))  # type: ignore[attr-defined]
    elif plan.trained_agent is not None:
        _probe(plan.trained_agent, plan, venv, "--trained-agent")
        vn_path, rb_path = companions(plan.trained_agent)
        if vn_path is None and normalizes_obs(run_config(plan.trained_agent)):
            raise UserError(f"--trained-agent {str(plan.trained_agent)!r} was trained with normalized observations "
                            f"but its vecnormalize.pkl is missing next to it")
        venv = _wrap_normalize(venv, plan, vn_path, True)
        model = cls.load(str(plan.trained_agent), env=venv, device=plan.device)
        if off_policy and rb_path is not None:
            model.load_replay_buffer(str(rb_path))  # type: ignore[attr-defined]
        model.set_random_seed(plan.seed)
    else:
        venv = _wrap_normalize(venv, plan, None, True)
        try:
            kwargs = build_model_kwargs(plan.algo, plan.hyperparams, int(np.prod(venv.action_space.shape or (1,))))
            model = cls(plan.hyperparams.get("policy", "MlpPolicy"), venv, seed=plan.seed, device=plan.device,
                        verbose=plan.verbose, **kwargs)
        except HyperparamError as exc:
            raise UserError(f"--hyperparams: {exc}") from exc
        except Exception as exc:  # SB3 rejects the value (n_steps=0, CnnPolicy on vectors, ...)
            policy = plan.hyperparams.get("policy", "MlpPolicy")
            raise UserError(f"--hyperparams of {plan.algo} (policy {policy!r}) for "
                            f"{plan.env_id} rejected by {cls.__name__}: {type(exc).__name__}: {exc}") from exc
    eval_env, eval_episodes = None, plan.eval_episodes
    if plan.eval_freq > 0:
        val = next((s for s in ("val", "validation") if s in full.splits), plan.train_split)
        months = episodes_of(full, val, plan.train_split).months
        if months is None:
            eval_env = sb3_make_vec_env(plan.env_id, n_envs=1, vec_env_cls=DummyVecEnv,
                                        env_kwargs={**plan.env_kwargs, "split": val, "random_start": False})
        else:   # the monthly protocol: each calendar month of the validation split is one episode
            eval_env = sb3_make_vec_env(MonthlyEpisodesEnv, n_envs=1, vec_env_cls=DummyVecEnv,
                                        env_kwargs=monthly_env_kwargs(plan.env_id, plan.env_kwargs, val))
            eval_episodes = len(months)
        eval_env = _wrap_normalize(eval_env, plan, None, training=False)
    return Built(venv=venv, model=model, eval_env=eval_env, eval_episodes=eval_episodes)


def monthly_env_kwargs(env_id: str, env_kwargs: dict[str, Any], split: str) -> dict[str, Any]:
    """Keyword arguments of :class:`~equiglb.envs.monthly.MonthlyEpisodesEnv` playing each calendar month of
    ``split`` with the options of ``env_id`` (its registered defaults) and ``env_kwargs``: the training env's
    scenario and options, less the window options the months fix (``episode_length``, ``random_start``)."""
    spec = gym.envs.registry[env_id]
    kw = {**dict(spec.kwargs or {}), **env_kwargs, "split": split}
    return {k: v for k, v in kw.items() if k not in ("episode_length", "random_start")}


# ---------------------------------------------------------------------- 3. run folder
def make_run_folder(plan: TrainPlan, model: BaseAlgorithm | None) -> tuple[Path, dict[str, Any]]:
    """Create the run folder and write config.yml (a resumed run appends a record, nothing else)."""
    if plan.resume is not None:
        cfg = read_config(plan.resume)
        cfg.setdefault("resumed", []).append({"utc": now_utc(), "from_step": plan.resume_steps, "argv": sys.argv})
        write_config(plan.resume, cfg)
        return plan.resume, cfg
    assert plan.algo is not None and plan.env_id is not None and plan.n_timesteps is not None
    run_dir = new_run_dir(plan.log_folder, plan.algo, plan.env_id)
    start = int(model.num_timesteps) if plan.trained_agent is not None and model is not None else 0
    recorded = plan_config(replace(plan, target_timesteps=start + plan.n_timesteps))
    cfg = {**recorded, "argv": sys.argv, "started_utc": now_utc(), "versions": versions()}
    write_config(run_dir, cfg)
    return run_dir, cfg


# ---------------------------------------------------------------------- 4. train
def train(plan: TrainPlan, built: Built, run_dir: Path) -> int | None:
    """Train to the recorded target step count; return the signal number if interrupted (a
    checkpoint is then saved at the last consistent point), else None."""
    assert plan.algo is not None
    model, off_policy = built.model, plan.algo in OFF_POLICY
    assert model is not None and built.venv is not None
    model.tensorboard_log = plan.tensorboard_log or str(run_dir / "tb")
    target = plan.target_timesteps if plan.target_timesteps is not None else read_config(run_dir)["target_timesteps"]
    fresh = plan.resume is None and plan.trained_agent is None
    if plan.resume is not None:
        assert plan.resume_steps is not None
        state = load_resume_state(run_dir, plan.resume_steps)
        vn = model.get_vec_normalize_env()
        if vn is not None and state["vecnormalize_returns"] is not None:
            vn.returns = state["vecnormalize_returns"].copy()
        restore_env_replay(built.venv, state["env"])
        set_rng_state(model, state["rng"])
        history = load_history(run_dir, up_to=plan.resume_steps)
        save_history(run_dir, history)           # evaluations after the checkpoint are redone
        print(f"Resuming {run_dir} from step {model.num_timesteps} (checkpoint), to step {target}", flush=True)
    else:
        history = load_history(run_dir)
        if plan.trained_agent is not None:
            print(f"Continuing {plan.trained_agent} from step {model.num_timesteps}, to step {target}", flush=True)
    remaining = target - int(model.num_timesteps)
    if remaining <= 0:
        return None
    steps, why = step_budget(model, remaining)
    if why:
        print(why, flush=True)
    with Interrupted() as stop:
        points = ConsistentPoints(stop, lambda: save_checkpoint(model, run_dir, off_policy), plan.save_freq,
                                  last_saved=int(model.num_timesteps))
        cbs: list[BaseCallback] = [points]
        periodic = None
        if built.eval_env is not None:
            periodic = PeriodicEval(built.eval_env, plan.eval_freq, built.eval_episodes, plan.seed + 10_000,
                                    run_dir, history)
            cbs.append(periodic)
        if plan.progress:
            cbs.append(ProgressBarCallback())     # its total is `steps`: the bar ends at steps/steps
        try:
            model.learn(total_timesteps=steps, callback=CallbackList(cbs), reset_num_timesteps=fresh,
                        tb_log_name=plan.algo.upper())
        except StopAtConsistentPoint:
            model.logger.dump(model.num_timesteps)
        if stop.signum is None and periodic is not None and periodic.last != int(model.num_timesteps):
            periodic.evaluate()     # the final model on the validation window too: the choice covers it
        if stop.signum is not None:
            ckpt = points.saved_on_stop or save_checkpoint(model, run_dir, off_policy)
            print(f"Interrupted at step {model.num_timesteps}: checkpoint saved to {ckpt}\n"
                  f"Resume with: python train.py --resume {run_dir}", file=sys.stderr, flush=True)
            return stop.signum
    return None


def step_budget(model: BaseAlgorithm, remaining: int) -> tuple[int, str | None]:
    """The steps ``model.learn`` will really take for a budget of ``remaining``, and why they differ.

    stable-baselines3 stops at the first whole collection at or past the budget: on-policy algorithms collect
    rollouts of ``n_steps x n_envs`` steps, off-policy ones ``train_freq`` steps per env times ``n_envs``.
    The budget is rounded up to a whole number of collections (and the progress bar's total is that number,
    so it ends at total/total); a statement says so when the rounding changes it. Episode-based
    ``train_freq`` cannot be predicted: the budget is passed unchanged and the statement says why.
    """
    n_envs = int(getattr(model, "n_envs", 1) or 1)
    if hasattr(model, "n_steps") and not hasattr(model, "train_freq"):
        chunk, unit = int(model.n_steps) * n_envs, f"whole rollouts of n_steps {model.n_steps} x n_envs {n_envs}"
    else:
        tf = getattr(model, "train_freq", None)
        if tf is None or str(getattr(getattr(tf, "unit", None), "value", "step")) != "step":
            return remaining, (f"Training budget {remaining:,} steps; train_freq counts episodes, so training "
                               "stops at the end of the first episode at or past it")
        chunk, unit = int(tf.frequency) * n_envs, f"train_freq {tf.frequency} step(s) x n_envs {n_envs}"
    steps = -(-remaining // chunk) * chunk
    if steps == remaining:
        return steps, None
    return steps, (f"Training {steps:,} steps, not {remaining:,}: {type(model).__name__} collects {unit} = "
                   f"{chunk:,} steps at a time, so the budget is rounded up to {steps // chunk:,} collections")


def choose_model(run_dir: Path, final_steps: int) -> tuple[Path, dict[str, Any]]:
    """The model the test window evaluates: the one with the best mean return on the validation window among
    the periodic evaluations (the final model included; a tie goes to the final model), and the statement of
    that choice (recorded in config.yml as ``evaluated_model``). The test window never enters the choice."""
    hist = load_history(run_dir)
    final = run_dir / "model.zip"
    if not hist["timesteps"]:
        return final, {"file": "model.zip", "step": final_steps,
                       "why": "the final model (no evaluation on the validation window: --eval-freq <= 0)"}
    means = {int(t): float(np.mean(r)) for t, r in zip(hist["timesteps"], hist["results"])}
    best_step = max(means, key=lambda t: (means[t], t == final_steps))
    final_mean = means.get(final_steps)
    best = run_dir / "best_model.zip"
    info: dict[str, Any] = {"validation_mean_return_usd": {str(t): round(m, 6) for t, m in means.items()}}
    if best_step == final_steps or not best.is_file() or (final_mean is not None and final_mean >= means[best_step]):
        return final, {**info, "file": "model.zip", "step": final_steps,
                       "why": f"the final model (step {final_steps:,}): the best mean return on the validation "
                              f"window, {means.get(final_steps, means[best_step]):.6g} USD"}
    return best, {**info, "file": "best_model.zip", "step": best_step,
                  "why": f"the checkpoint of step {best_step:,} (best_model.zip): the best mean return on the "
                         f"validation window, {means[best_step]:.6g} USD, against "
                         f"{'n/a' if final_mean is None else f'{final_mean:.6g} USD'} for the final model "
                         f"(step {final_steps:,})"}


def save_final(model: BaseAlgorithm, run_dir: Path, off_policy: bool) -> None:
    """model.zip, vecnormalize.pkl and replay_buffer.pkl of the finished training."""
    model.save(str(run_dir / "model.zip"))
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.save(str(run_dir / "vecnormalize.pkl"))
    if off_policy:
        model.save_replay_buffer(str(run_dir / "replay_buffer.pkl"))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- the run, top to bottom
def run(given: TrainPlan) -> TrainResult:
    """Train (or resume, or only evaluate) as the plan ``given`` says (:func:`resolve`); return the exit
    code, the run folder and the final table's rows. Raises :class:`UserError` for a bad input."""
    plan = resolve(given)                                                 # 1. plan
    built = build(plan)                                                   # 2. validate and build
    if plan.eval_only:
        assert plan.trained_agent is not None
        out = evaluate_models([plan.trained_agent], env_id=plan.env_id, env_kwargs=plan.env_kwargs,
                              split=plan.eval_split, baselines=plan.baselines, progress=plan.progress,
                              algo=plan.algo)
        print(f"Results in {out}")
        return TrainResult(0)
    run_dir, cfg = make_run_folder(plan, built.model)                     # 3. run folder
    print(f"Run folder: {run_dir}", flush=True)

    if built.model is not None:                                           # 4. train
        t0 = time.perf_counter()
        signum = train(plan, built, run_dir)
        for env in (built.venv, built.eval_env):
            if env is not None:
                env.close()
        cfg = read_config(run_dir)                                        # wall time summed over segments
        cfg["train_seconds"] = round(float(cfg.get("train_seconds", 0.0)) + time.perf_counter() - t0, 1)
        if signum is not None:
            write_config(run_dir, cfg)
            return TrainResult(128 + signum, run_dir)
        save_final(built.model, run_dir, plan.algo in OFF_POLICY)
        cfg.update(trained_utc=now_utc(), num_timesteps=int(built.model.num_timesteps),
                   n_updates=int(getattr(built.model, "_n_updates", 0)))
        if int(built.model.num_timesteps) != int(cfg["target_timesteps"]):
            cfg["num_timesteps_why"] = step_budget(built.model, int(cfg["n_timesteps"]))[1]
        write_config(run_dir, cfg)
        print(f"Trained {built.model.num_timesteps:,} steps; model saved to {run_dir / 'model.zip'}", flush=True)

    cfg = read_config(run_dir)
    chosen, choice = choose_model(run_dir, int(cfg.get("num_timesteps", 0)))
    cfg["evaluated_model"] = choice
    write_config(run_dir, cfg)
    print(f"Evaluating on the {plan.eval_split} window: {choice['why']}", flush=True)

    for stale in ("table.csv", "table.json"):                             # 5. final evaluation
        (run_dir / "eval" / stale).unlink(missing_ok=True)     # of an evaluation interrupted before it ended
    with _signals_abort():
        _, rows = evaluate_table([chosen], env_id=plan.env_id, env_kwargs=plan.env_kwargs, split=plan.eval_split,
                                 baselines=plan.baselines, progress=plan.progress, out_dir=run_dir / "eval",
                                 algo=plan.algo, names=[f"{plan.algo} (agent)"])
    cfg = read_config(run_dir)                                            # 6. report
    cfg["finished_utc"] = now_utc()
    write_config(run_dir, cfg)
    print(f"Run folder: {run_dir}")
    return TrainResult(0, run_dir, rows)


class _signals_abort:
    """During the final evaluation SIGTERM, like SIGINT, raises KeyboardInterrupt (``--resume`` redoes it)."""

    def __enter__(self) -> None:
        self._old = signal.signal(signal.SIGTERM, signal.default_int_handler)

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGTERM, self._old)
