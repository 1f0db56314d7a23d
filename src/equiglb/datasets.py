"""Minari datasets of the baselines, for offline RL: ``python -m equiglb.datasets --help``.

For each policy (``offline``, ``online-eglb``, ``mpc`` or any other name of
:data:`equiglb.baselines.POLICY_NAMES`) and each episode:

1. ``env.reset(seed=seed + episode)`` picks the episode's window (``env.unwrapped.window()``);
2. the baseline computes its schedule x[t, i, j, k] on that window with the environment's weights
   (the offline optimum sees the whole window; online policies route slot by slot);
3. the schedule is replayed through the environment, and every observation, action, reward and info is
   recorded. The action mode is the environment's (the id's default, ``"site_scores"`` for the plain ids)
   unless ``--action-mode`` (``action_mode=`` of :func:`record_datasets`) names another:

   * ``"routing"``: slot t gets the action ``env.unwrapped.action_map.action_for(x[t], dtype=np.float64)``
     (the same per-region fractions, exact to float64 rounding): the replay *is* the baseline;
   * ``"site_scores"`` (the default mode): slot t gets the scores whose fractions are the schedule's
     per-site, per-model shares of the slot's load, :func:`site_scores_action` (exact to float64 rounding
     for those shares). The mode routes every region of a group in the same proportions, so the replay is
     the baseline *projected* onto the mode: the dataset's transitions are the environment's own and its
     return is that of the projected policy, reported beside -J(x) of the baseline (its gap, in %);
   * the other modes (``prices``, ``eglb_residual``, ``mpc_residual``) act on a base policy inside the
     environment and have no action for a given schedule: refused, naming the modes that work;
4. in the ``"routing"`` mode the episode's summed reward is checked against -J(x) of the schedule
   (:func:`equiglb.ledger.evaluate`, relative tolerance ``--rtol``, default :data:`RETURN_RTOL`;
   docs/model.md §4): a mismatch (e.g. a schedule with unserved load, which the environment would
   serve) is an error, never a silently different dataset. Measured: 1e-16 for LP baselines
   (q = 1 or ∞, HiGHS) and online policies; about 2e-9 for the offline optimum at q = 2 (a conic
   solver meets demand to about 1e-9), hence ``--rtol 1e-8`` there.

The environment is stepped with the float64 action; the dataset stores it in the action space's
dtype (float32). A float32 action near -1 (a weight near 0) is resolved to about 6e-8, so stepping
the recovered environment with the stored actions reproduces the episode's return to about 1e-7
relative (measured: 3e-10 on the synthetic scenario, 1.6e-7 on the multimodel one). Infos hold,
for the reset and every step, the numeric keys of the
environment's ``info`` (same keys throughout; docs/env.md).

Minari stores the datasets in its ``arrow`` format here; ``minari.DataCollector``'s own default format
(``hdf5``) needs ``h5py``, which the ``toolchains`` extra installs too.

One Minari dataset per policy, id ``<prefix>/<policy>-v0`` with ``<prefix>`` = ``--dataset-id``
(default ``equiglb/<env name>-<split>``). ``minari.load_dataset(id).recover_environment()`` rebuilds
the environment (``gymnasium.make`` of the recorded id and keyword arguments). Needs the
``minari`` and ``pyarrow`` packages (the ``toolchains`` extra).

Example::

    python -m equiglb.datasets --env equiglb/EquitableGLB-v0 --split test \\
        --policies offline,online-eglb,mpc --env-kwargs episode_length=24 random_start=true --episodes 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import equiglb  # noqa: F401  (registers the equiglb/* ids)
from equiglb.baselines import POLICY_NAMES, make_policy
from equiglb.envs import ACTION_MODES, EquitableGLBEnv
from equiglb.envs.monthly import MonthlyEpisodesEnv
from equiglb.ledger import evaluate
from equiglb.validate import CliArgumentParser, KeyValueError, cli_int, parse_key_values

__all__ = ["RETURN_RTOL", "RECORDABLE_MODES", "EpisodeRecord", "record_episode", "record_datasets",
           "site_scores_action", "main"]

#: Relative tolerance of |return + J(x)| / |J(x)| for a recorded episode.
RETURN_RTOL = 1e-9
DEFAULT_POLICIES = "offline,online-eglb,mpc"



class DatasetError(ValueError):
    """Bad input of ``python -m equiglb.datasets`` (printed as one ``error:`` line)."""


@dataclass
class EpisodeRecord:
    """One replayed episode: T steps, T + 1 observations and infos (reset first)."""

    observations: np.ndarray        # (T + 1, obs_dim), float32
    actions: np.ndarray             # (T, act_dim), the action space's dtype
    rewards: np.ndarray             # (T,) USD
    terminations: np.ndarray        # (T,) bool
    truncations: np.ndarray         # (T,) bool
    infos: dict[str, Any]           # key -> (T + 1, ...) array, or a list of T + 1 numpy scalars
    objective_usd: float            # J(x) of the baseline's schedule on the episode's window
    seed: int
    action_mode: str = "routing"    # the mode the actions are in ("routing": the return is -J(x) exactly)

    @property
    def return_usd(self) -> float:
        """The episode's summed reward (USD); -J(x) of the baseline in the ``"routing"`` mode."""
        return float(np.sum(self.rewards))


def _base(env: gym.Env) -> EquitableGLBEnv:
    base = env.unwrapped
    if not isinstance(base, (EquitableGLBEnv, MonthlyEpisodesEnv)):
        raise TypeError(f"{env} is not an equiglb environment")
    return base  # type: ignore[return-value]  # a MonthlyEpisodesEnv has the same window/weights/config/action_map


def _stack_infos(infos: list[dict[str, Any]]) -> dict[str, Any]:
    # arrays stacked to (T + 1, ...); scalars kept as a list of numpy scalars (Minari's arrow storage
    # decodes a stacked 1-d array of scalars wrongly)
    keys = set(infos[0])
    for n, info in enumerate(infos[1:], start=1):
        if set(info) != keys:
            raise RuntimeError(f"info keys differ between reset and step {n}: {sorted(keys)} vs {sorted(info)}")
    out: dict[str, Any] = {}
    for k in sorted(keys):
        values = [np.asarray(info[k]) for info in infos]
        out[k] = [v[()] for v in values] if values[0].ndim == 0 else np.stack(values)
    return out


#: Action modes in which a baseline's schedule has an action (see the module docstring).
RECORDABLE_MODES = ("routing", "site_scores")


def site_scores_action(action_map: Any, x: np.ndarray) -> np.ndarray:
    """A ``"site_scores"`` action (float64) whose fractions are routing ``x``'s (N, J, K) per-site, per-model
    shares of the slot's load: score u[i, k] = y[i, k] / max y with y[i, k] = Σ_j x[i, j, k] over the allowed
    pairs (action 2u - 1); a slot without load gets the uniform split (action 1 everywhere)."""
    N, _J, K = action_map.shape
    x = np.where(action_map.allowed, np.asarray(x, dtype=np.float64), 0.0)
    y = x.sum(axis=1).reshape(N * K)
    m = y.max()
    u = y / m if m > 0 else np.ones_like(y)
    return (2.0 * u - 1.0)[action_map.index]


def _mode_error(mode: str, label: str = "action_mode=") -> str:
    return (f"{label}{mode!r}: a baseline's schedule has no action in this mode (it acts on a base policy "
            f"inside the environment); datasets of the baselines can be recorded in {list(RECORDABLE_MODES)}")


def record_episode(env: gym.Env, policy_name: str, seed: int, rtol: float = RETURN_RTOL) -> EpisodeRecord:
    """Reset ``env`` (an equiglb env in the ``"routing"`` or ``"site_scores"`` action mode) with ``seed``,
    compute the baseline's schedule on the episode's window and replay it through ``env``. In the
    ``"routing"`` mode raises ``RuntimeError`` if the return differs from -J(x) by more than ``rtol``
    relative; in ``"site_scores"`` the return is the projected policy's (module docstring)."""
    base = _base(env)
    action_map = base.action_map
    mode = base.config.action_mode
    if action_map is None or mode not in RECORDABLE_MODES:
        raise ValueError(f"record_episode: {_mode_error(mode)}")
    obs, info = env.reset(seed=seed)
    window, weights = base.window(), base.weights
    x = make_policy(policy_name).schedule(window, weights)
    objective_usd = evaluate(window, x, weights).objective_usd
    dtype = env.action_space.dtype
    observations, actions, rewards, terms, truncs, infos = [obs], [], [], [], [], [info]
    for t in range(window.T):
        action = action_map.action_for(x[t], dtype=np.float64) if mode == "routing" \
            else site_scores_action(action_map, x[t])
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action.astype(dtype))
        rewards.append(float(reward))
        terms.append(bool(terminated))
        truncs.append(bool(truncated))
        infos.append(info)
    if not (terms[-1] or truncs[-1]):
        raise RuntimeError(f"episode of {window.T} slots did not end after its last slot")
    total = float(np.sum(rewards))
    if mode == "routing" and abs(total + objective_usd) > rtol * abs(objective_usd):
        report = evaluate(window, x, weights)
        short = float(np.abs(x.sum(axis=(1, 3)) - window.demand).max())
        raise RuntimeError(f"{policy_name}: replayed return {total!r} USD differs from -J(x) = {-objective_usd!r} USD "
                           f"by more than {rtol:g} relative; the schedule leaves {report.unserved_load:.6g} load units "
                           f"unserved and misses a slot's demand by up to {short:.3g} (the environment serves all "
                           "demand): raise unserved_penalty_usd, or --rtol for a conic solver's tolerance")
    return EpisodeRecord(np.stack(observations), np.stack(actions), np.asarray(rewards), np.asarray(terms),
                         np.asarray(truncs), _stack_infos(infos), objective_usd, seed, mode)


def record_datasets(env_id: str, policies: Sequence[str], episodes: int = 1, split: str | None = None,
                    env_kwargs: dict[str, Any] | None = None, dataset_prefix: str | None = None,
                    seed: int = 0, rtol: float = RETURN_RTOL, action_mode: str | None = None) -> dict[str, Any]:
    """Record one Minari dataset per policy (see the module docstring); returns ``{policy: MinariDataset}``.

    ``action_mode``: the mode of the recorded actions (default: the environment's, i.e. the id's default
    or ``env_kwargs["action_mode"]``); one of :data:`RECORDABLE_MODES`, else ``ValueError`` before any work.
    Datasets are written under ``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``).
    """
    import minari  # noqa: PLC0415  (minari loads when a dataset is written, not for --help)
    from minari.data_collector import EpisodeBuffer  # noqa: PLC0415
    from minari.storage.local import get_dataset_path  # noqa: PLC0415

    kwargs = dict(env_kwargs or {})
    if split is not None:
        kwargs["split"] = split
    if action_mode is not None:
        kwargs["action_mode"] = action_mode
    if kwargs.get("action_mode", "routing") not in RECORDABLE_MODES:
        raise ValueError(_mode_error(kwargs["action_mode"]))
    env = gym.make(env_id, **kwargs)
    mode = _base(env).config.action_mode
    if mode not in RECORDABLE_MODES:                      # the id's default mode
        env.close()
        raise ValueError(_mode_error(mode))
    prefix = dataset_prefix or default_prefix(env_id, _base(env).config.split)
    # every policy's episodes are recorded (and checked) before the first dataset is written, and the
    # datasets written by this call are removed again if a later one fails: all or nothing
    recorded: dict[str, list[EpisodeBuffer]] = {}
    gaps: dict[str, list[float]] = {}
    for name in policies:
        buffers = []
        for e in range(episodes):
            rec = record_episode(env, name, seed + e, rtol)
            gaps.setdefault(name, []).append(-rec.return_usd / rec.objective_usd - 1.0)
            buffers.append(EpisodeBuffer(id=e, seed=rec.seed, observations=rec.observations, actions=rec.actions,
                                         rewards=list(rec.rewards), terminations=list(rec.terminations),
                                         truncations=list(rec.truncations), infos=rec.infos))
        recorded[name] = buffers
    out: dict[str, Any] = {}
    try:
        for name, buffers in recorded.items():
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="`(author_email|code_permalink)` is set to None")
                out[name] = minari.create_dataset_from_buffers(
                    dataset_id=f"{prefix}/{name}-v0", buffer=buffers, env=env, eval_env=env.spec,
                    algorithm_name=f"equiglb baseline {name}", author="equiglb", data_format="arrow",
                    description=_description(name, env_id, mode, gaps[name]),
                    requirements=[f"equiglb=={equiglb.__version__}"])
    except BaseException:
        for name in out:
            shutil.rmtree(get_dataset_path(f"{prefix}/{name}-v0"), ignore_errors=True)
        raise
    return out


def _description(name: str, env_id: str, mode: str, gaps: list[float]) -> str:
    if mode == "routing":
        return (f"{name} baseline of equiglb replayed through {env_id} (action_mode='routing'); "
                f"each episode's summed reward is -J(x) of the baseline's schedule (USD).")
    worst = max(gaps, key=abs)
    return (f"{name} baseline of equiglb projected onto action_mode={mode!r} and replayed through {env_id}: slot "
            f"t's action routes each site and model the schedule's share of the load; the transitions are the "
            f"environment's, and an episode's summed reward (USD) is the projected policy's, within "
            f"{100 * abs(worst):.3g} % of -J(x) of the baseline's schedule (largest gap {100 * worst:+.3g} %).")


def default_prefix(env_id: str, split: str) -> str:
    """``equiglb/<env name>-<split>`` for an id ``[namespace/]name-vN``."""
    name = env_id.split(":")[-1].split("/")[-1].rsplit("-v", 1)[0]
    return f"equiglb/{name}-{split}"


# ------------------------------------------------------------------------------------------------ CLI
def _parse_kv(items: Sequence[str]) -> dict[str, Any]:
    try:
        return parse_key_values(items)
    except KeyValueError as exc:
        raise DatasetError(f"--env-kwargs: {exc.why}, got {exc.item!r}") from exc


#: upper bound of ``--episodes`` (each episode solves a baseline on its window)
MAX_EPISODES = 100_000
#: largest ``--seed`` (episode e is reset with seed + e, at most 2**63 - 1)
MAX_SEED = 2**63 - 1 - MAX_EPISODES


def _episodes(text: str) -> int:
    return cli_int(text, -(2**63), MAX_EPISODES, f"an integer number of episodes <= {MAX_EPISODES}")


def _seed(text: str) -> int:
    return cli_int(text, -(2**63), MAX_SEED, "an integer seed")


def build_parser() -> argparse.ArgumentParser:
    p = CliArgumentParser(prog="python -m equiglb.datasets",
                          description="Record Minari datasets of equiglb's baselines replayed through the env.")
    p.add_argument("--env", default="equiglb/EquitableGLB-v0", help="registered env id (default: %(default)s)")
    p.add_argument("--split", default=None, help="scenario split: train, test or all (default: the id's)")
    p.add_argument("--policies", default=DEFAULT_POLICIES,
                   help=f"comma-separated, from: {', '.join(POLICY_NAMES)} (default: {DEFAULT_POLICIES})")
    p.add_argument("--action-mode", choices=ACTION_MODES, default=None,
                   help="action mode of the recorded actions (default: the env's own, site_scores for the plain "
                        "ids); routing replays each baseline exactly, site_scores its projection onto the mode")
    p.add_argument("--episodes", type=_episodes, default=1, help="episodes per policy (default: 1)")
    p.add_argument("--seed", type=_seed, default=0, help="episode e is reset with seed + e (default: 0; >= 0)")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="K=V",
                   help="options of gymnasium.make, values as YAML: episode_length=24 random_start=true data_dir=...")
    p.add_argument("--dataset-id", default=None,
                   help="dataset id prefix; each policy's dataset is PREFIX/<policy>-v0 "
                        "(default: equiglb/<env name>-<split>)")
    p.add_argument("--rtol", type=float, default=RETURN_RTOL,
                   help="largest accepted |return + J(x)| / J(x) of an episode (default: %(default)g; q other than "
                        "1 and inf is solved by a conic solver that meets demand to about 1e-9: use 1e-8)")
    p.add_argument("--data-path", default=None,
                   help="Minari datasets folder (sets MINARI_DATASETS_PATH; default: its value or ~/.minari/datasets)")
    return p


def _check(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown or not names:
        raise DatasetError(f"--policies: unknown name(s) {unknown or [args.policies]}; "
                           f"valid names: {', '.join(POLICY_NAMES)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DatasetError(f"--policies {args.policies}: {twice} listed twice (one dataset per policy)")
    if args.seed < 0:
        raise DatasetError(f"--seed must be >= 0 (episode e is reset with seed + e), got {args.seed}")
    if not 0 < args.rtol < 1:
        raise DatasetError(f"--rtol must be in (0, 1), got {args.rtol}")
    if args.episodes < 1:
        raise DatasetError(f"--episodes must be >= 1, got {args.episodes}")
    kwargs = _parse_kv(args.env_kwargs)
    if "action_mode" in kwargs:
        raise DatasetError(f"--env-kwargs action_mode={kwargs['action_mode']!r}: give the mode with --action-mode "
                           f"(one of {list(RECORDABLE_MODES)})")
    if args.episodes > 1 and not kwargs.get("random_start"):
        raise DatasetError(f"--episodes {args.episodes} needs --env-kwargs random_start=true (and an episode_length "
                           "shorter than the split); otherwise every episode replays the same window")
    try:
        gym.spec(args.env)
    except gym.error.Error as exc:
        raise DatasetError(f"--env {args.env!r}: {exc}") from None
    if args.action_mode is not None and args.action_mode not in RECORDABLE_MODES:
        raise DatasetError(_mode_error(args.action_mode, "--action-mode "))
    if args.dataset_id is not None:
        from minari.dataset.minari_dataset import parse_dataset_id  # noqa: PLC0415

        try:
            parse_dataset_id(f"{args.dataset_id}/{names[0]}-v0")
        except Exception as exc:  # noqa: BLE001 - minari raises plain exceptions for bad ids
            raise DatasetError(f"--dataset-id {args.dataset_id!r}: {exc}") from None
    return names, kwargs


def _data_path(path: str) -> Path:
    """``--data-path``: an existing writable folder, or one that can be created (it is then created)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise DatasetError(f"--data-path {path!r}: exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"--data-path {path!r}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise DatasetError(f"--data-path {path!r}: not writable (permission denied)")
    return p.resolve()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m equiglb.datasets``; returns the exit status (2 on bad input)."""
    args = build_parser().parse_args(argv)
    from minari.storage.local import get_dataset_path  # noqa: PLC0415  (after --help: minari is slow to import)

    try:
        names, kwargs = _check(args)
        if args.data_path is not None:
            os.environ["MINARI_DATASETS_PATH"] = str(_data_path(args.data_path))
        try:
            probe = gym.make(args.env, **dict(kwargs, **({"action_mode": args.action_mode} if args.action_mode else {}),
                                              **({"split": args.split} if args.split else {})))
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise DatasetError(f"--env {args.env} with --split {args.split} --env-kwargs {kwargs}: {exc}") from None
        cfg = _base(probe).config
        prefix = args.dataset_id or default_prefix(args.env, cfg.split)
        probe.close()
        if cfg.action_mode not in RECORDABLE_MODES:
            raise DatasetError(_mode_error(cfg.action_mode, f"--env {args.env}: its action mode (give another with "
                                                            "--action-mode) "))
        if args.episodes > 1 and cfg.split_length == cfg.episode_length:
            raise DatasetError(f"--episodes {args.episodes} with random_start=true: split {cfg.split!r} is "
                               f"{cfg.split_length} h long, one episode of episode_length={cfg.episode_length}, so "
                               f"every episode would replay the same window; give a shorter episode_length")
        root = get_dataset_path()
        taken = [f"{prefix}/{n}-v0" for n in names if (root / f"{prefix}/{n}-v0").exists()]
        if taken:
            raise DatasetError(f"--dataset-id {prefix}: dataset(s) {taken} already exist in {root}; choose another "
                               f"--dataset-id or --data-path (nothing was written)")
        datasets = record_datasets(args.env, names, args.episodes, args.split, kwargs, prefix, args.seed,
                                   args.rtol, action_mode=args.action_mode)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:           # a replay that is not -J(x): nothing is written for any policy
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:                # writing a dataset: those of this run are removed again
        print(f"error: writing the datasets under {get_dataset_path()}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for name, ds in datasets.items():
        returns = [float(np.sum(ep.rewards)) for ep in ds.iterate_episodes()]
        what = "(= -J of the baseline)" if cfg.action_mode == "routing" \
            else f"(the baseline projected onto action_mode={cfg.action_mode!r}; see the dataset's description)"
        print(f"{prefix}/{name}-v0: {ds.total_episodes} episodes, {ds.total_steps} steps, "
              f"mean return {np.mean(returns):,.2f} USD {what}")
    print(f"saved under {os.environ.get('MINARI_DATASETS_PATH', Path.home() / '.minari' / 'datasets')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
