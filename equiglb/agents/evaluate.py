"""Evaluate saved agents beside the optimization baselines on any scenario window.

    python -m equiglb.agents.evaluate logs/ppo/equiglb-EquitableGLB-v0_1 other/model.zip \
        --env equiglb/EquitableGLB-eglb2022-v0 --env-kwargs data_dir=../shared/traces/eglb-2022 --split test

Every agent routes the window slot by slot through the environment (:class:`AgentPolicy`); the
baselines are run by :func:`equiglb.baselines.compare` on the same window with the same weights, and
every row comes from the same ledger. Writes ``table.csv``, ``table.json`` and the plots of
:mod:`equiglb.agents.report` into ``--out`` (default: ``<first run folder>/eval_<env>_<split>``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym

import numpy as np

from equiglb.agents.report import write_report
from equiglb.scenario import Scenario

__all__ = ["scenario_of", "evaluate_models", "compare_policies", "main"]


def scenario_of(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Scenario:
    """The whole scenario (with the env's weights applied) behind ``gymnasium.make(env_id, **env_kwargs)``."""
    import equiglb.envs  # noqa: F401  (registers the ids)

    kw = {k: v for k, v in (env_kwargs or {}).items() if k not in ("split", "episode_length", "random_start")}
    env = gym.make(env_id, **kw)
    try:
        return env.unwrapped.scenario
    finally:
        env.close()


def compare_policies(window: Scenario, policies: Sequence[Any], progress: bool = False
                     ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Rows of :func:`equiglb.baselines.compare` for ``policies`` on ``window`` (with its weights), so a
    baseline's row is the baselines command's, and the schedule x[t, i, j, k] each policy produced."""
    from equiglb.baselines import compare

    schedules: dict[str, np.ndarray] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(policies), desc="policies evaluated", unit="policy")
    for pol in policies:
        _record(pol, schedules, bar)
    try:
        rows = compare(window, policies, window.weights)
    finally:
        if bar is not None:
            bar.close()
    return rows, schedules


def _record(pol: Any, store: dict[str, np.ndarray], bar: Any = None) -> None:
    # Keep the schedule each policy returns (instance attribute, so isinstance checks in compare hold).
    inner = pol.schedule

    def schedule(scenario: Scenario, weights: Any = None) -> np.ndarray:
        if bar is not None:
            bar.set_postfix_str(pol.name)
        x = inner(scenario, weights)
        store[pol.name] = np.asarray(x)
        if bar is not None:
            bar.update(1)
        return x

    pol.schedule = schedule


def evaluate_models(models: Sequence[str | Path], env_id: str | None = None, env_kwargs: dict[str, Any] | None = None,
                    split: str = "test", baselines: Sequence[str] | None = None, progress: bool = True,
                    out_dir: str | Path | None = None, algo: str | None = None,
                    names: Sequence[str] | None = None, print_table: bool = True) -> Path:
    """Evaluate saved models and the baselines on ``split`` of the env's scenario; write the report.

    Args:
        models: model zips or run folders (their ``model.zip``).
        env_id, env_kwargs: the environment (and scenario options) to evaluate on; default: those the
            first model was trained with (its run's config.yml).
        split: the scenario window (``test`` is the held-out window).
        baselines: baseline names (default: all of ``equiglb.baselines.POLICY_NAMES``; ``[]`` for none).
        out_dir: where to write; default ``<first run folder>/eval_<env>_<split>``.
        algo: the algorithm of the models (default: detected per model).
        names: row labels of the agents (default: ``<algo>:<run folder name>``).

    Returns:
        The folder written.
    """
    from equiglb.agents.policy import AgentPolicy, run_config
    from equiglb.agents.trainer import check_model_file, env_slug
    from equiglb.baselines import format_table
    from equiglb.ledger import evaluate

    paths = [check_model_file(m) for m in models]
    cfg = run_config(paths[0]) if paths else {}
    env_id = env_id or cfg.get("env_id")
    if env_id is None:
        raise ValueError("evaluate_models: give env_id (the first model has no config.yml)")
    if env_kwargs is None:
        env_kwargs = dict(cfg.get("env_kwargs") or {}) if cfg.get("env_id") == env_id else {}
    full = scenario_of(env_id, env_kwargs)
    window = full.split(split)
    agents = []
    for n, p in enumerate(paths):
        c = run_config(p)
        agent_kwargs = {k: v for k, v in (c.get("env_kwargs") or env_kwargs).items()
                        if k in ("action_mode", "forecast_horizon", "forecast_noise", "include_prev_action")}
        label = names[n] if names and n < len(names) else None
        ag = AgentPolicy(p, env_id=env_id, env_kwargs=agent_kwargs, algo=algo, reference=full)
        ag.name = label or f"{ag.algo}:{p.parent.name}"
        agents.append(ag)
    base_names = _baseline_names(baselines)
    policies = _make_baselines(base_names) + agents
    t0 = time.perf_counter()
    print(f"Evaluating {len(agents)} agent(s) and {len(base_names)} baseline(s) on {full.name} split {split!r} "
          f"({window.T} h) ...", flush=True)
    rows, schedules = compare_policies(window, policies, progress=progress)
    footprints = {}
    for name, x in schedules.items():
        rep = evaluate(window, x, window.weights)
        footprints[name] = {"carbon_t": rep.carbon_t, "water_m3": rep.water_m3}
    agent_routing = {ag.name: ag.schedule_executed() for ag in agents}
    if out_dir is None:
        base = paths[0].parent if paths else Path(".")
        out_dir = base / f"eval_{env_slug(env_id)}_{split}"
    out_dir = Path(out_dir)
    write_report(out_dir, rows, window, footprints=footprints, agent_routing=agent_routing)
    if print_table:
        print(format_table(rows))
        print(f"({time.perf_counter() - t0:.0f} s) Table and plots in {out_dir}", flush=True)
    return out_dir


def _baseline_names(baselines: Sequence[str] | None) -> list[str]:
    if baselines is not None:
        return list(baselines)
    from equiglb.baselines import POLICY_NAMES

    return list(POLICY_NAMES)


def _make_baselines(names: Sequence[str]) -> list[Any]:
    if not names:
        return []
    from equiglb.baselines import make_policy

    return [make_policy(n) for n in names]


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m equiglb.agents.evaluate``."""
    p = argparse.ArgumentParser(prog="python -m equiglb.agents.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="RUN_DIR_OR_ZIP", help="saved models (zip) or train.py run folders")
    p.add_argument("--env", default=None, help="environment id to evaluate on (default: the first model's)")
    p.add_argument("--env-kwargs", nargs="+", metavar="KEY=VALUE", default=None,
                   help="options of gymnasium.make (scenario options such as data_dir=, q=), values as YAML")
    p.add_argument("--split", default="test", help="scenario split to evaluate on")
    p.add_argument("--baselines", nargs="*", default=None, metavar="NAME",
                   help="baselines to include (default: all; give none to skip)")
    p.add_argument("--algo", default=None, help="algorithm of the models (default: detected)")
    p.add_argument("--names", nargs="+", default=None, help="row labels of the models")
    p.add_argument("-o", "--out", default=None, help="output folder (default: <first run>/eval_<env>_<split>)")
    p.add_argument("--gym-packages", nargs="+", default=(), metavar="MODULE",
                   help="extra modules to import so that their environment ids are registered")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    import importlib

    from equiglb.agents.algos import HyperparamError, parse_overrides
    from equiglb.agents.trainer import UserError

    args = build_parser().parse_args(argv)
    try:
        for mod in args.gym_packages:
            importlib.import_module(mod)
        kw = parse_overrides(args.env_kwargs) if args.env_kwargs else None
        evaluate_models(args.models, env_id=args.env, env_kwargs=kw, split=args.split, baselines=args.baselines,
                        out_dir=args.out, algo=args.algo, names=args.names)
    except (UserError, HyperparamError, ImportError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
