"""Evaluate saved agents beside the optimization baselines on any scenario window.

    python -m equiglb.agents.evaluate logs/ppo/equiglb-EquitableGLB-v0_1 other/model.zip \
        --env equiglb/EquitableGLB-eglb2022-v0 --env-kwargs data_dir=../shared/traces/eglb-2022 --split test

Every agent routes the window slot by slot through the environment (:class:`AgentPolicy`); an agent of
a residual action mode brings its own planner alone, with the same forecasts, as a row of its own (e.g.
``mpc-24 calibrated (agent's base)``: its action 0), and the column ``information`` says what each row knew
(none, forecasts (model, horizon), hindsight). The baselines and the agents are run once each by
:func:`equiglb.baselines.compare.run_policies` on the same window with the same weights, and every row
comes from the same ledger. Writes ``table.csv``, ``table.json``, ``evaluated.yml`` (what was evaluated)
and the plots of :mod:`equiglb.agents.report` into ``--out`` (default: a new
``<first run folder>/eval_<env>_<split>[_<k>]``, never an existing one). Every input is checked before any policy runs.

On a scenario with the monthly protocol (the ``world`` scenarios; :mod:`equiglb.protocol`, docs/data.md) each
calendar month of ``--split`` is one episode with its own offline optimum: ``table.csv`` holds per policy the
mean over months and the mean gap's 95 % CI, ``months.csv`` every (policy, month).
"""

from __future__ import annotations

import argparse
import contextvars
import importlib
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml
from tqdm.auto import tqdm

import equiglb.envs  # noqa: F401  (registers the equiglb/* ids)
from equiglb import evaluation
from equiglb.agents.algos import ALGOS, HyperparamError, parse_overrides
from equiglb.agents.policy import AgentPolicy, EnsemblePolicy
from equiglb.agents.report import write_monthly_report, write_report
from equiglb.agents.runs import (
    UserError,
    check_agent_options,
    check_model_file,
    env_slug,
    new_output_dir,
    now_utc,
    plain,
    run_config,
)
from equiglb.baselines import POLICY_NAMES, format_table, make_policy
from equiglb.baselines.compare import run_policies
from equiglb.baselines.policy import OnlinePolicy, Policy
from equiglb.envs.core import CARRIED_OPTIONS, agent_base, agent_information
from equiglb.envs.registration import agent_settings
from equiglb.protocol import MONTHLY_COLUMNS, Episodes, episodes, run_months
from equiglb.scenario import Scenario
from equiglb.validate import OptionError

__all__ = ["scenario_of", "check_baselines", "default_labels", "evaluate_models", "evaluate_table", "build_parser",
           "main"]



#: the robust margin ``train.py --robust-margin`` asks for (read by :func:`evaluate_models` when its own
#: ``robust_margin`` is not given; set by :func:`equiglb.agents.cli.main` for the run)
ROBUST_MARGIN: contextvars.ContextVar[float | None] = contextvars.ContextVar("ROBUST_MARGIN", default=None)


def check_robust_margin(margin: float | None, option: str = "--robust-margin") -> float | None:
    """``margin`` if None or a finite number >= 0, else :class:`UserError` naming ``option``."""
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))
                               or not math.isfinite(margin) or margin < 0):
        raise UserError(f"{option} {margin!r}: expected a finite number >= 0 (e.g. 0.05 for 5 %)")
    return margin


def robust_label(name: str, margin: float) -> str:
    """Row label of an agent's robust wrapper: ``"ppo (agent)"`` -> ``"ppo (robust 5%)"``."""
    base = name[:-len(" (agent)")] if name.endswith(" (agent)") else name
    return f"{base} (robust {100 * margin:g}%)"


def episodes_of(full: Scenario, split: str, train_split: str = "train") -> Episodes:
    """:func:`equiglb.protocol.episodes` (the months of a monthly scenario's split, or the split as one window),
    raising :class:`UserError` instead."""
    try:
        return episodes(full, split, train_split)
    except OptionError as exc:
        raise UserError(str(exc)) from exc


def scenario_of(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Scenario:
    """:func:`equiglb.evaluation.scenario_of`, raising :class:`UserError` (the CLIs' error) instead."""
    try:
        return evaluation.scenario_of(env_id, env_kwargs)
    except OptionError as exc:
        raise UserError(str(exc)) from exc


def check_split(scenario: Scenario, split: str, option: str) -> Scenario:
    """:func:`equiglb.evaluation.check_split`, raising :class:`UserError` (the CLIs' error) instead."""
    try:
        return evaluation.check_split(scenario, split, option)
    except OptionError as exc:
        raise UserError(str(exc)) from exc


def check_baselines(names: Sequence[str], window: Scenario, option: str = "--baselines",
                    train: Scenario | None = None, tune_hours: int | None = None) -> list[Policy]:
    """The baselines ``names``, after checking each is known and can run on ``window`` (an online
    baseline is reset on it, which is where it rejects a scenario, e.g. ``nearest`` without latencies).
    ``train`` is the training window that ``online-eglb-tuned`` tunes on (never ``window``), on windows of
    ``tune_hours`` (default: ``window``'s length; :class:`equiglb.protocol.Episodes`)."""
    bad = [b for b in names if b not in POLICY_NAMES]
    if bad:
        raise UserError(f"{option}: unknown {bad}; available: {list(POLICY_NAMES)}")
    if len(set(names)) != len(names):
        raise UserError(f"{option}: {list(names)} names a baseline twice")
    policies = [make_policy(n, train=train, window_hours=tune_hours) if n == "online-eglb-tuned" else make_policy(n)
                for n in names]
    for pol in policies:
        if isinstance(pol, OnlinePolicy):
            try:
                pol.reset(window, window.weights)
            except (ValueError, KeyError) as exc:
                raise UserError(f"{option} {pol.name}: cannot run on scenario {window.name!r}: {exc}") from exc
    return policies


def evaluate_models(models: Sequence[str | Path], **options: Any) -> Path:
    """:func:`evaluate_table` (same arguments); returns the folder written."""
    return evaluate_table(models, **options)[0]


def evaluate_table(models: Sequence[str | Path], env_id: str | None = None, env_kwargs: dict[str, Any] | None = None,
                   split: str = "test", baselines: Sequence[str] | None = None, progress: bool = True,
                   out_dir: str | Path | None = None, algo: str | None = None,
                   names: Sequence[str] | None = None, print_table: bool = True, ensemble: bool = False,
                   robust_margin: float | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """Evaluate saved models and the baselines on ``split`` of the env's scenario; write the report.

    Args:
        models: model zips or run folders (their ``model.zip``).
        env_id, env_kwargs: the environment (and scenario options) to evaluate on; default: those the
            first model was trained with (its run's config.yml).
        split: the scenario window (``test`` is the held-out window).
        baselines: baseline names (default: all of ``equiglb.baselines.POLICY_NAMES``; ``[]`` for none).
        out_dir: where to write; it must not hold a table already. Default: a new folder
            ``<first run folder>/eval_<env>_<split>`` (``_2``, ``_3``... when taken).
        algo: the algorithm of the models (default: detected per model).
        names: row labels of the agents (default: :func:`default_labels`, ``<algo>:<run folder name>``).
        ensemble: add the row ``ensemble(<k>)``: the models acting as one, each slot the mean of their
            deterministic actions (:class:`~equiglb.agents.policy.EnsemblePolicy`; two models at least,
            trained with the same environment options).
        robust_margin: also evaluate each agent inside :class:`~equiglb.agents.robust.RobustPolicy` with
            online eGLB as its expert and this margin, as the row ``<agent> (robust <margin>%)`` beside it
            (docs/robust.md). Default: :data:`ROBUST_MARGIN` (``train.py --robust-margin``), else none.

    Under the monthly protocol (:func:`equiglb.protocol.episodes`) every policy runs each calendar month of
    ``split`` as one episode; the table's rows are the summary over months (:func:`equiglb.protocol.summary_rows`)
    and ``months.csv`` holds each (policy, month).

    Returns:
        The folder written, and the rows of its table (one dict per policy: ``policy`` and the ledger's columns).

    Raises:
        UserError: a bad input (named in the message), before any policy runs.
    """
    robust_margin = check_robust_margin(ROBUST_MARGIN.get() if robust_margin is None else robust_margin)
    paths = [check_model_file(m) for m in models]
    cfg = run_config(paths[0]) if paths else {}
    env_id = env_id or cfg.get("env_id")
    if env_id is None:
        raise UserError("give --env: the first model has no config.yml to take it from")
    env_id = evaluation.window_env_id(env_id)      # a monthly test id: its train id, the months cut here
    for p in paths:                                # options given that a model would not run with: refused
        check_agent_options(p, env_kwargs or {})
    if env_kwargs is None:
        env_kwargs = dict(cfg.get("env_kwargs") or {}) if cfg.get("env_id") == env_id else {}
    if algo is not None and algo not in ALGOS:
        raise UserError(f"--algo {algo!r}: not one of {sorted(ALGOS)}")
    if names is not None and len(names) != len(paths):
        raise UserError(f"--names: {len(names)} label(s) for {len(paths)} model(s)")
    full = scenario_of(env_id, env_kwargs)
    window = check_split(full, split, "--split")
    train_split = str(cfg.get("train_split", "train"))
    train = full.split(train_split) if train_split in full.splits and train_split != split else None
    eps = episodes_of(full, split, train_split)
    base = check_baselines(list(POLICY_NAMES) if baselines is None else list(baselines), eps.probe, train=train,
                           tune_hours=eps.tune_hours)
    agents = []
    for p in paths:
        c = run_config(p)
        trained = {**agent_settings(c.get("env_id")), **(c.get("env_kwargs") or {})}   # the trained id's + run's
        agent_kwargs = {k: v for k, v in (trained or env_kwargs).items() if k in CARRIED_OPTIONS}
        ag = AgentPolicy(p, env_id=env_id, env_kwargs=agent_kwargs, algo=algo, reference=full)
        agents.append(ag)
    labels = list(names) if names else default_labels(paths, [a.algo for a in agents])
    for ag, label in zip(agents, labels):
        ag.name = label
    # what each agent knew (its forecasts), and its own planner alone with the same forecasts as a row
    registered = dict(gym.spec(env_id).kwargs)
    for ag in agents:
        options = {**registered, **ag.env_kwargs}
        try:
            ag.information = agent_information(options)
            own = agent_base(options, full, split)
        except ValueError as exc:
            raise UserError(f"model {ag.model_path}: {exc}") from exc
        if own is not None and own[2] not in {p.name for p in base}:
            pol = make_policy(own[0], **own[1])
            pol.name = own[2]
            base.append(pol)
    if ensemble and len(agents) < 2:
        raise UserError(f"--ensemble needs at least two models, got {len(agents)}")
    members: list[Policy] = [*agents]
    if ensemble:
        # the same agents: run_policies schedules one policy after another, and each schedule is a new array
        members.append(EnsemblePolicy(agents))
    if robust_margin is not None:
        from equiglb.agents.robust import RobustPolicy  # noqa: PLC0415

        # the same agents, each followed unless it would lose more than the margin to online eGLB
        members.extend(RobustPolicy(ag, expert="online-eglb", margin=robust_margin,
                                    name=robust_label(ag.name, robust_margin)) for ag in agents)
    policies: list[Policy] = [*base, *members]
    if len({p.name for p in policies}) != len(policies):
        raise UserError(f"row labels {[p.name for p in policies]} are not distinct; give --names")
    out = _output_dir(out_dir, paths, env_id, split)

    t0 = time.perf_counter()
    what = f"{window.T} h" if eps.months is None else f"{len(eps.months)} calendar months, each one episode"
    print(f"Evaluating {len(agents)} agent(s) and {len(base)} baseline(s) on {full.name} split {split!r} "
          f"({what}) ...", flush=True)
    bar = tqdm(total=len(policies) * len(eps.months or [split]), desc="policies evaluated", unit="policy",
               disable=not progress)
    try:
        if eps.months is None:
            result = run_policies(window, policies, window.weights, on_done=lambda _p: bar.update(1))
        else:
            monthly = run_months(full, eps.months, policies, window.weights, on_done=lambda _p, month: bar.update(1))
    finally:
        bar.close()
    if eps.months is None:
        rows = result.rows
        footprints = {name: {"carbon_t": rep.carbon_t, "water_m3": rep.water_m3} for name, rep in
                      result.reports.items()}
        agent_routing = {ag.name: result.schedules[ag.name] for ag in members}
        write_report(out, rows, window, footprints=footprints, agent_routing=agent_routing)
    else:
        rows = monthly.rows
        write_monthly_report(out, monthly, window)
    (out / "evaluated.yml").write_text(yaml.safe_dump(plain({
        "models": [str(p) for p in paths], "names": [a.name for a in members], "env_id": env_id,
        "env_kwargs": env_kwargs, "split": split, **({"months": eps.months} if eps.months is not None else {}),
        "baselines": [b.name for b in base],
        **({"robust_margin": robust_margin} if robust_margin is not None else {}), "utc": now_utc()}),
        sort_keys=False))
    if print_table:
        print(format_table(rows) if eps.months is None else format_table(rows, MONTHLY_COLUMNS))
        print(f"({time.perf_counter() - t0:.0f} s) Table and plots in {out}", flush=True)
    return out, [dict(r) for r in rows]


def default_labels(paths: Sequence[Path], algos: Sequence[str]) -> list[str]:
    """Row labels ``<algo>:<run folder>``; models whose run folders share a name get as many parent
    folders as make their labels distinct (``ppo:seed0/ppo/equiglb-EquitableGLB-v0_1``)."""
    def label(p: Path, algo: str, depth: int) -> str:
        parts = p.resolve().parent.parts
        return f"{algo}:{'/'.join(parts[max(1, len(parts) - depth):])}"

    out = [label(p, a, 1) for p, a in zip(paths, algos)]
    for depth in range(2, max((len(p.resolve().parts) for p in paths), default=1) + 1):
        clash = {x for x in out if out.count(x) > 1}
        if not clash:
            break
        out = [label(p, a, depth) if x in clash else x for p, a, x in zip(paths, algos, out)]
    return out


def _output_dir(out_dir: str | Path | None, paths: Sequence[Path], env_id: str, split: str) -> Path:
    """A folder that holds no table yet: ``out_dir`` (created) or a new numbered one."""
    if out_dir is None:
        base = paths[0].parent if paths else Path(".")
        return new_output_dir(base, f"eval_{env_slug(env_id)}_{split}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file, not a folder")
    if (out / "table.csv").exists() or (out / "table.json").exists():
        raise UserError(f"--out {str(out)!r} already holds a table; choose another folder (nothing is overwritten)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {str(out)!r}: cannot create the folder: {exc}") from exc
    return out


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """Parser of ``python -m equiglb.agents.evaluate``."""
    p = argparse.ArgumentParser(prog=prog or "python -m equiglb.agents.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="RUN_DIR_OR_ZIP", help="saved models (zip) or train.py run folders")
    p.add_argument("--env", default=None, help="environment id to evaluate on (default: the first model's)")
    p.add_argument("--env-kwargs", nargs="+", metavar="KEY=VALUE", default=None,
                   help="options of gymnasium.make (scenario options such as data_dir=, q=), values as YAML")
    p.add_argument("--split", default="test", help="scenario split to evaluate on")
    p.add_argument("--baselines", nargs="*", default=None, metavar="NAME",
                   help="baselines to include (default: all; give none to skip)")
    p.add_argument("--algo", default=None, choices=sorted(ALGOS), help="algorithm of the models (default: detected)")
    p.add_argument("--names", nargs="+", default=None, help="row labels of the models")
    p.add_argument("--ensemble", action="store_true",
                   help="also evaluate the models as one ensemble (the mean of their deterministic actions)")
    p.add_argument("--robust-margin", type=float, default=None, metavar="M",
                   help="also evaluate each agent inside RobustPolicy (falls back to online eGLB; J <= (1 + M) "
                        "J(online eGLB) on the episode, docs/robust.md) as the row '<agent> (robust <M>%%)'")
    p.add_argument("-o", "--out", default=None,
                   help="output folder, which must not hold a table (default: a new <first run>/eval_<env>_<split>)")
    p.add_argument("--gym-packages", nargs="+", default=(), metavar="MODULE",
                   help="extra modules to import so that their environment ids are registered")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    return p


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Entry point; returns the exit code (2 with one ``error:`` line for a bad input)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        for mod in args.gym_packages:
            try:
                importlib.import_module(mod)
            except ImportError as exc:
                raise UserError(f"--gym-packages: cannot import {mod!r}: {exc}") from exc
        try:
            kw = parse_overrides(args.env_kwargs) if args.env_kwargs else None
        except HyperparamError as exc:
            raise UserError(f"--env-kwargs: {exc}") from exc
        evaluate_models(args.models, env_id=args.env, env_kwargs=kw, split=args.split, baselines=args.baselines,
                        out_dir=args.out, algo=args.algo, names=args.names, progress=args.progress,
                        ensemble=args.ensemble, robust_margin=args.robust_margin)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
