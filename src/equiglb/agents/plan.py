"""The training plan: every option of a ``train.py`` run, written once as the fields of :class:`TrainPlan`.

Each field's metadata (:func:`option`) holds its flag names, help text, argparse type and choices, so that

* the command line of ``train.py`` is generated from it (:func:`add_flags`);
* ``config.yml`` records the fields marked ``record`` with real values (numbers, strings, lists, the
  hyperparameter files' expressions such as ``"dict(activation_fn=nn.Tanh)"``; :func:`plan_config`), and
  ``--resume`` reads them back into a plan (:func:`plan_from_config`);
* the options a resumed run keeps (:data:`RECORDED`) and those it refuses (:data:`NOT_WITH_RESUME`) follow
  from each field's ``on_resume``.

A plan is first the options *as given* (``None``: not given, resolved later from the hyperparameter file
or the algorithm's tuned id), then, after :func:`equiglb.agents.trainer.resolve`, the run's resolved
options; both are :class:`TrainPlan` values.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from equiglb.validate import cli_int

# The plan's flags are built without the training stack: ``equiglb.agents.algos`` and ``equiglb.agents.runs``
# (torch, stable-baselines3, cvxpy) load in the functions that read or write hyperparameters, so that
# ``train.py --help`` answers before those imports.

#: The names of ``equiglb.agents.algos.ALGOS`` (a test keeps them equal), written out so that the parser does
#: not import torch and stable-baselines3.
ALGO_NAMES = ("a2c", "ddpg", "ppo", "sac", "td3")

__all__ = ["TrainPlan", "option", "add_flags", "plan_from_args", "plan_config", "plan_from_config", "RECORDED",
           "NOT_WITH_RESUME", "CONFIG_KEYS", "flag_name", "overrides", "given_flags", "VEC_ENVS", "MAX_COUNT",
           "MAX_SEED", "positive_int", "nonneg_int"]

VEC_ENVS = ("dummy", "subproc", "native")
#: largest value of a count flag (``-n``, ``--n-envs``, ...): 1e12 environment steps is far beyond any run;
#: a larger number is a typo (or ``1e400``, infinity) that would otherwise fail deep inside training
MAX_COUNT = 10**12
#: largest seed: SB3 seeds numpy's legacy generator, which takes seeds below 2**32
MAX_SEED = 2**32 - 1
#: ``on_resume`` of a field: the run's recorded value is used and a different flag is refused ("kept"),
#: the flag cannot be given with --resume at all ("refused"), or the command line's value is used ("given").
ON_RESUME = ("kept", "refused", "given")
#: the ``*_kwargs`` hyperparameters config.yml records as expression strings (:func:`recorded_hyperparams`)
_KWARGS_STRINGS = ("policy_kwargs", "replay_buffer_kwargs", "rollout_buffer_kwargs")


def positive_int(text: str) -> int:
    """A positive count of a command line (``-n``, ``--n-envs``): ``1e6`` is 1,000,000; ``2048.7``, ``1e400`` and
    counts above :data:`MAX_COUNT` are refused."""
    return cli_int(text, 1, MAX_COUNT, "a positive integer")


def nonneg_int(text: str) -> int:
    """A seed of a command line: an integer in 0 .. :data:`MAX_SEED`."""
    return cli_int(text, 0, MAX_SEED, "an integer >= 0")


#: ``cli_default`` of :func:`option` when the flag's parser default is the field's default
_SAME = object()


def option(*flags: str, default: Any = None, help: str = "", record: bool = False, on_resume: str = "given",
           cli_default: Any = _SAME, **argparse_kwargs: Any) -> Any:
    """A :class:`TrainPlan` field: its command-line ``flags`` (none: not a flag), ``help``, the extra
    ``argparse_kwargs`` of ``add_argument`` (``type``, ``choices``, ``nargs``, ``metavar``, ``action``),
    whether config.yml ``record`` s it, and what ``--resume`` does with it (:data:`ON_RESUME`). The flag's
    parser default is ``default``, or ``cli_default`` when given (a KEY=VALUE field whose flag is absent
    parses as None)."""
    assert on_resume in ON_RESUME, on_resume
    meta = {"flags": flags, "help": help, "record": record, "on_resume": on_resume,
            "cli_default": default if cli_default is _SAME else cli_default, "argparse": argparse_kwargs}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainPlan:
    """A ``train.py`` run: the command line's options as given, or (resolved) the run's options."""

    algo: str | None = option(
        "--algo", choices=ALGO_NAMES, record=True, on_resume="kept",
        help="RL algorithm; default: that of the model given with -i, else ppo")
    env_id: str | None = option(
        "--env", metavar="ENV", record=True, on_resume="kept",
        help="registered environment id (equiglb/EquitableGLB-v0 is the synthetic scenario, "
             "equiglb/EquitableGLB-eglb2022-v0 the real eGLB-2022 traces); default: the tuned "
             "settings of the algorithm, equiglb/EquitableGLB-residual-constant-v0 for ppo (the MPC residual "
             "mode, 240-hour episodes, a state-independent policy), equiglb/EquitableGLB-240h-v0 for the others")
    n_timesteps: int | None = option(
        "-n", "--n-timesteps", type=positive_int, record=True, on_resume="kept",
        help="training budget in environment steps (summed over parallel envs); default: the "
             "hyperparameter file's n_timesteps")
    seed: int = option("--seed", type=nonneg_int, default=0, record=True, on_resume="kept",
                       help="random seed (envs, network init, sampling)")
    n_envs: int | None = option(
        "--n-envs", type=positive_int, record=True, on_resume="kept",
        help="number of parallel environments; default: the hyperparameter file's n_envs")
    vec_env: str | None = option(
        "--vec-env", choices=VEC_ENVS, record=True, on_resume="kept",
        help="vector env: dummy (in-process loop), subproc (one process per env) or native "
             "(equiglb's batched vector env, gymnasium.make_vec(..., 'vector_entry_point'), the "
             "fastest); default: native for equiglb ids, else dummy")
    eval_freq: int = option(
        "--eval-freq", type=int, default=10_000, record=True, on_resume="kept",
        help="evaluate on the validation window every N environment steps (summed over envs) "
             "and keep best_model.zip; <= 0 disables")
    eval_episodes: int = option("--eval-episodes", type=positive_int, default=1, record=True, on_resume="kept",
                                help="episodes per periodic evaluation")
    log_folder: str = option(
        "-f", "--log-folder", default="logs", on_resume="refused",
        help="root folder; runs go to <log-folder>/<algo>/<env>_<n>/ (n increases, never overwritten)")
    tensorboard_log: str | None = option("-tb", "--tensorboard-log", record=True, on_resume="kept",
                                         help="TensorBoard log folder; default: <run folder>/tb")
    progress: bool = option("--progress", action=argparse.BooleanOptionalAction, default=True,
                            help="show a progress bar during training and evaluation")
    device: str = option("--device", default="cpu", record=True, on_resume="kept",
                         help="torch device: cpu, cuda, auto")
    save_freq: int = option(
        "--save-freq", type=int, default=-1, record=True, on_resume="kept",
        help="save a checkpoint (model, normalization stats, replay buffer, random states) at the "
             "first consistent point (start of a rollout) after every N environment steps (summed "
             "over envs); <= 0 saves only on interruption. After SIGKILL, --resume redoes only the "
             "steps since the last checkpoint")
    #: as given: the overrides of -params; resolved: the whole validated entry of the hyperparameter file
    hyperparams: dict[str, Any] = option(
        "-params", "--hyperparams", nargs="+", metavar="KEY=VALUE", default={}, record=True, on_resume="refused",
        cli_default=None,
        help="override hyperparameters, values as YAML: gamma=0.995 n_steps=512 "
             "'policy_kwargs={net_arch: [128, 128]}' normalize=false")
    #: as given: the options of --env-kwargs; resolved: the entry's env_kwargs updated by them
    env_kwargs: dict[str, Any] = option(
        "--env-kwargs", nargs="+", metavar="KEY=VALUE", default={}, record=True, on_resume="refused",
        cli_default=None,
        help="keyword arguments of gymnasium.make (scenario options), values as YAML: "
             "episode_length=48 q=2 action_mode=routing data_dir=../shared/traces/eglb-2022")
    trained_agent: Path | None = option(
        "-i", "--trained-agent", metavar="MODEL_ZIP", record=True, on_resume="refused",
        help="continue training this saved model (its vecnormalize.pkl and replay buffer next to it "
             "are loaded when present) for --n-timesteps more steps, in a new run folder")
    resume: Path | None = option(
        "--resume", metavar="RUN_DIR",
        help="resume an interrupted run in its own folder from its latest checkpoint, with its "
             "recorded configuration (budget, seed, device, save and eval frequencies), to exactly "
             "the steps, updates and parameters of an uninterrupted run")
    eval_only: bool = option("--eval-only", action="store_true", default=False, on_resume="refused",
                             help="do not train: evaluate --trained-agent beside the baselines on the test window")
    eval_split: str = option("--eval-split", default="test", record=True, on_resume="kept",
                             help="scenario split for the final comparison table")
    train_split: str = option("--train-split", default="train", record=True, on_resume="kept",
                              help="scenario split the agent trains on")
    baselines: list[str] | None = option(
        "--baselines", nargs="*", metavar="NAME", record=True, on_resume="kept",
        help="baselines in the final table (default: all of equiglb.baselines.POLICY_NAMES; give none to skip)")
    robust_margin: float | None = option(
        "--robust-margin", type=float, metavar="M",
        help="the final table also shows the agent inside RobustPolicy (falls back to online eGLB so "
             "that J <= (1 + M) J(online eGLB) on the episode; docs/robust.md): the row "
             "'<algo> (robust <M>%%)', e.g. 0.05")
    torch_threads: int | None = option(
        "--torch-threads", type=positive_int, record=True, on_resume="kept",
        help="torch intra-op threads; default 1 (the fastest for the small MLPs here; see "
             "docs/experiments-log.md)")
    conf_file: str | None = option(
        "-conf", "--conf-file", metavar="YAML",
        help="hyperparameter file in the rl-baselines3-zoo layout (e.g. the best_<algo>.yml of "
             "python -m equiglb.sweep --search optuna); default: the package's hyperparams/<algo>.yml")
    gym_packages: list[str] = option(
        "--gym-packages", nargs="+", metavar="MODULE", default=[], cli_default=(), record=True, on_resume="refused",
        help="extra modules to import so that their environment ids are registered")
    verbose: int = option("-v", "--verbose", type=int, default=0, choices=(0, 1, 2),
                          help="verbosity of SB3 (1 prints its training tables; TensorBoard has them anyway)")
    # resolved, never given
    resume_steps: int | None = option()        # the checkpoint to resume from (None: training is finished)
    target_timesteps: int | None = option(record=True)   # num_timesteps at the end of training


def _flag_fields() -> list[Any]:
    return [f for f in fields(TrainPlan) if f.metadata["flags"]]


def flag_name(name: str) -> str:
    """The longest flag of the field ``name`` (``env_id`` -> ``--env``), as the error messages name it."""
    return max(next(f for f in fields(TrainPlan) if f.name == name).metadata["flags"], key=len)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per :class:`TrainPlan` field that has flags (its ``dest`` is the field name)."""
    for f in _flag_fields():
        meta = f.metadata
        parser.add_argument(*meta["flags"], dest=f.name, default=meta["cli_default"], help=meta["help"],
                            **meta["argparse"])


#: Options recorded in config.yml that a resumed run keeps (a differing flag is refused).
RECORDED = tuple(f.name for f in fields(TrainPlan) if f.metadata["on_resume"] == "kept")
#: The fields config.yml records (:func:`plan_config`), in its order.
CONFIG_KEYS = tuple(f.name for f in fields(TrainPlan) if f.metadata["record"])
#: Flags a resumed run cannot take at all (its configuration is recorded).
NOT_WITH_RESUME = tuple(f.name for f in fields(TrainPlan) if f.metadata["on_resume"] == "refused")


def plan_from_args(args: argparse.Namespace) -> TrainPlan:
    """The plan as given on the command line (``args`` of a parser with :func:`add_flags`); the KEY=VALUE
    lists become mappings (a malformed item raises :class:`UserError` naming the flag)."""
    values = {f.name: getattr(args, f.name) for f in _flag_fields()}
    values["hyperparams"] = overrides(args.hyperparams, f"{'--conf-file/' if args.conf_file else ''}--hyperparams")
    values["env_kwargs"] = overrides(args.env_kwargs, "--env-kwargs")
    values["gym_packages"] = list(args.gym_packages or ())
    values["baselines"] = None if args.baselines is None else list(args.baselines)
    for name in ("trained_agent", "resume"):
        values[name] = Path(values[name]) if values[name] else None
    return TrainPlan(**values)


def overrides(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` items of ``--hyperparams`` or ``--env-kwargs`` as a mapping
    (:func:`~equiglb.agents.algos.parse_overrides`: YAML values, dotted keys nested); a malformed item raises
    :class:`UserError` naming ``flag``."""
    from equiglb.agents.algos import HyperparamError, parse_overrides  # noqa: PLC0415
    from equiglb.agents.runs import UserError  # noqa: PLC0415

    try:
        return parse_overrides(items)
    except HyperparamError as exc:
        raise UserError(f"{flag}: {exc}") from exc


def given_flags(plan: TrainPlan, names: tuple[str, ...]) -> list[str]:
    """The fields among ``names`` whose value is not their default (the flags given on the command line)."""
    defaults = TrainPlan()
    return [n for n in names if getattr(plan, n) != getattr(defaults, n)]


def plan_config(plan: TrainPlan) -> dict[str, Any]:
    """The recorded fields of a resolved plan as config.yml holds them: real values (paths as text, the
    hyperparameters' classes as the files' expressions, :func:`~equiglb.agents.runs.recorded_hyperparams`)."""
    from equiglb.agents.runs import recorded_hyperparams  # noqa: PLC0415

    cfg: dict[str, Any] = {}
    for f in fields(TrainPlan):
        if f.metadata["record"]:
            value = getattr(plan, f.name)
            if isinstance(value, Path):
                value = str(value)
            cfg[f.name] = recorded_hyperparams(value) if f.name == "hyperparams" else copy.deepcopy(value)
    return cfg


def plan_from_config(cfg: dict[str, Any]) -> TrainPlan:
    """The plan a config.yml records (:func:`plan_config` read back; fields it lacks keep their defaults).
    The hyperparameters' expression strings are evaluated again, so that the plan equals the one written."""
    from equiglb.agents.algos import eval_kwargs_string  # noqa: PLC0415

    values: dict[str, Any] = {}
    for f in fields(TrainPlan):
        if f.metadata["record"] and f.name in cfg:
            values[f.name] = copy.deepcopy(cfg[f.name])
    hp = values.get("hyperparams") or {}
    for key in _KWARGS_STRINGS:
        if isinstance(hp.get(key), str):
            hp[key] = eval_kwargs_string(hp[key], key)
    if values.get("trained_agent"):
        values["trained_agent"] = Path(values["trained_agent"])
    values["gym_packages"] = list(values.get("gym_packages") or ())
    return TrainPlan(**values)
