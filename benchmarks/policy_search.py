"""Does learning beat its own planner? The cross-entropy policy search of :mod:`equiglb.agents.search` on the
multipliers of the MPC residual mode, against MPC alone with the same forecasts and horizon.

    python benchmarks/policy_search.py --stage val  [--protocol P] [--features full,spreads,constant] [--seeds 0,1,2]
    python benchmarks/policy_search.py --stage test [--protocol P] [--features SET] [--seeds 40,41,42,43,44]

with P one of ``synthetic`` (the embedded scenario), ``eglb-2022`` (the real traces, full connection),
``eglb-2022-partial`` (the same traces with the study's partial-connection mask: the scenario
``eglb-2022-partial``), ``world`` (the 2023-2024 scenario: 15 sites, 3 models, a social term; the monthly
protocol) and ``world-partial`` (the same with its partial mask); the eGLB-2022 protocols read ``--data-dir``
(the eGLB-2022 folder), the world protocols the folder holding ``sustain-cluster/`` and ``servegen/``.

The world protocols differ in three ways, two of them for CPU time, all stated in their rows: the planner is
MPC with a 6-hour look-ahead (``--mpc-horizon``; 24 h costs about 5x per step on 15 x 15 x 3, a month-long
episode half a minute), the policy has three multipliers (carbon, water, social: the scenario has a social
term), and the search plays ``--windows 3`` of the twelve 730-h episodes that tile 2023 (the first, middle
and last), not all of them. Their stages use the scenario's own splits: trained on ``train`` (2023), scored
on ``val`` (2024-01..06) or ``test`` (2024-07..12), each calendar month one episode with its own offline
optimum (docs/data.md, *The monthly protocol*); a seed's gap is its mean over the months.

* ``--stage val``: the scenario ``holdout`` (the protocol's train split cut into ``fit`` and ``val``, the
  last hours as long as the test window); the search trains on episodes that tile ``fit``; each seed's
  policy is scored on ``val``. The test window is not in the scenario at all (world protocols: the scenario's
  own ``train`` and ``val`` splits; the test months are never played at this stage). Each feature set of
  ``--features`` (``equiglb.agents.search.FEATURE_SETS``) runs with every seed, and the set with the lowest
  mean gap on ``val`` is printed as the choice.
* ``--stage test``: the search trains on episodes that tile the train split, with fresh seeds; each policy is
  scored once on the held-out test window beside the baselines (``equiglb.evaluate_policy``). One feature set
  only: the one chosen on validation.

Every policy acts in ``action_mode="mpc_residual"`` (MPC 24 h, world protocols 6 h, on calibrated forecasts,
seed 0, inside the environment; the multipliers in [1/1.5, 1.5]) with 6 h of forecasts and the recent forecast
errors in the observation (``forecast_errors=True``). Rows (gap to the offline optimum of the window, %, an oracle): the
policy per seed and its mean with a 95 % bootstrap CI (``equiglb.stats.summarize``), MPC alone with the same
forecasts (the planner: action 0), online eGLB and its tuned variant (no forecast). Prints whether the
policy's CI upper end is below its planner's gap. Same-run reference for the times: a CartPole-v1 loop.
``--json`` writes every row, the per-set summaries, the choice and the baselines. ``--draws K`` also scores each
policy on K other draws of the scored window's forecast errors (forecast seeds 1000 ..), each paired with the
planner alone on the same draw: a table's one draw (seed 0) can favour or hurt a policy by chance.
``--augment K`` trains on the
training split (``fit`` or ``train``) extended by K x its length of hours generated from a calibration on that
split alone (the scenario ``augmented``, :mod:`equiglb.traces.derived`): more training episodes from the same
real hours; the scoring window (``val`` or ``test``) is the real one, unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import equiglb  # noqa: E402,F401  (registers the ids)
from equiglb.agents.imitate import imitate_multipliers  # noqa: E402
from equiglb.agents.search import FEATURE_NAMES, FEATURE_SETS, search_multipliers  # noqa: E402
from equiglb.control import MAX_HORIZON_H  # noqa: E402
from equiglb.evaluation import evaluate_policy  # noqa: E402
from equiglb.forecast import Forecaster  # noqa: E402
from equiglb.forecast_correction import CorrectedForecaster  # noqa: E402
from equiglb.stats import summarize  # noqa: E402
from equiglb.traces.derived import MAX_COPIES  # noqa: E402

TRACES = REPO.parent / "shared" / "traces"


@dataclass(frozen=True)
class Protocol:
    """A protocol's scenario, its episodes and its defaults."""

    scenario: str
    hours: int                   # training episode hours: the test window's length (world: a mean month)
    data_dir: Path | None        # default --data-dir (None: an embedded scenario)
    mpc_horizon: int = 24        # default --mpc-horizon (hours)
    windows: int | None = None   # default --windows (None: every training episode of the tiling)
    monthly: bool = False        # the scenario has its own val split and the monthly protocol


PROTOCOLS = {"synthetic": Protocol("synthetic", 240, None),
             "eglb-2022": Protocol("eglb-2022", 121, TRACES / "eglb-2022"),
             "eglb-2022-partial": Protocol("eglb-2022-partial", 121, TRACES / "eglb-2022"),
             "world": Protocol("world", 730, TRACES, mpc_horizon=6, windows=3, monthly=True),
             "world-partial": Protocol("world-partial", 730, TRACES, mpc_horizon=6, windows=3, monthly=True)}
MODE = {"action_mode": "mpc_residual", "mpc_residual_max_factor": 1.5, "forecast_horizon": 6, "forecast_errors": True}


def tiling(start: int, length: int, hours: int) -> list[int]:
    """Starts of the episodes of ``hours`` that tile [start, start + length) (the last one flush with its end)."""
    starts = list(range(start, start + length - hours + 1, hours))
    if starts[-1] + hours < start + length:
        starts.append(start + length - hours)
    return starts


def spread_out(starts: list[int], k: int | None) -> list[int]:
    """``k`` of ``starts`` evenly spread (the first and the last among them); all when ``k`` is None or >= their
    number."""
    if k is None or k >= len(starts):
        return starts
    return [starts[i] for i in sorted({round(x) for x in np.linspace(0, len(starts) - 1, k)})]


def cartpole_steps_per_s(steps: int = 20_000) -> float:
    """Steps per second of CartPole-v1 with random actions: the same-run speed reference."""
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def feature_sets(text: str, stage: str) -> list[str]:
    """The feature sets of ``--features`` (comma-separated names of ``FEATURE_SETS``), checked."""
    names = [t.strip() for t in text.split(",")]
    bad = [n for n in names if n not in FEATURE_SETS]
    if bad or not names or len(set(names)) != len(names):
        raise SystemExit(f"--features={text!r}: expected distinct names of {sorted(FEATURE_SETS)}, comma-separated")
    if stage == "test" and len(names) != 1:
        raise SystemExit(f"--features={text!r}: --stage test takes one set, the one chosen at --stage val")
    return names


def protocol_options(p: argparse.ArgumentParser, protocol: str = "synthetic", horizon: int | None = None,
                     horizon_help: str = "the planner's look-ahead in hours (default: 24; world: 6)") -> None:
    """Add the options every protocol benchmark shares to ``p``: ``--stage``, ``--protocol`` (default
    ``protocol``), ``--data-dir`` and ``--mpc-horizon`` (default ``horizon``; None: the protocol's own)."""
    p.add_argument("--stage", choices=["val", "test"], required=True)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default=protocol)
    p.add_argument("--data-dir", default=None,
                   help=f"the data folder (eglb-2022 protocols: the eglb-2022 folder, default {TRACES / 'eglb-2022'}; "
                        f"world: the folder holding sustain-cluster/ and servegen/, default {TRACES})")
    p.add_argument("--mpc-horizon", type=int, default=horizon, help=horizon_help)


def parser() -> argparse.ArgumentParser:
    """The command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    protocol_options(p)
    p.add_argument("--windows", type=int, default=None,
                   help="training episodes the search plays, evenly spread over those that tile the training split "
                        "(default: all; world: 3)")
    p.add_argument("--features", default="full",
                   help=f"feature set(s) of the policy, comma-separated, of {sorted(FEATURE_SETS)} (val: several "
                        "are compared and the lowest mean val gap is chosen; test: one)")
    p.add_argument("--seeds", default=None, help="comma-separated search seeds (val: 0,1,2; test: 40..44)")
    p.add_argument("--method", choices=["cem", "imitate", "rollout"], default="cem",
                   help="cem: the cross-entropy policy search (equiglb.agents.search); imitate: learning from the "
                        "oracle's cost-to-go, AggreVaTe with DAgger's rounds (equiglb.agents.imitate; it has no "
                        "randomness of its own: the seed draws the calibrated forecast errors of its training "
                        "episodes; the LP accelerator's scenarios only, not world); rollout: the same with the "
                        "planner's own cost-to-go (continuation='planner': approximate policy iteration from the "
                        "planner, no hindsight)")
    p.add_argument("--rounds", type=int, default=3,
                   help="imitate, rollout: rounds of collection and fit (1: the planner's states only)")
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--population", type=int, default=12)
    p.add_argument("--augment", type=int, default=0, metavar="K",
                   help="train on the training split extended by K x its length of generated hours, calibrated on "
                        "that split only (the scenario 'augmented', equiglb.traces.derived; 0: the real hours only); "
                        "the episodes tile the extended split, the scoring window is unchanged")
    p.add_argument("--correct", action="store_true",
                   help="the planner reads the calibrated forecasts corrected by their observed errors "
                        "(equiglb.forecast_correction), fit on the training split (fit or train) on the training "
                        "episodes' forecast seed; the scored window's forecasts stay seed 0's, corrected by the same "
                        "coefficients. The planner's row is then MPC on the corrected forecasts")
    p.add_argument("--tail", default=None, metavar="DAYS:WEIGHT[:BLOCKS]",
                   help="the planner inside the environment plans with a history tail (mpc_tail_days, "
                        "mpc_tail_weight, mpc_tail_block_hours; docs/baselines.md, the history tail), e.g. 5:0.5; the "
                        "planner's row (action 0) has the same tail")
    p.add_argument("--warm-start", action="store_true",
                   help="the planner inside the environment starts each slot from its copy's previous slot's basis "
                        "(mpc_warm_start: the same J to the solver's tolerance, faster with a history tail); the "
                        "planner's row (action 0) warm-starts too")
    p.add_argument("--draws", type=int, default=0, metavar="K",
                   help="also score each policy on K other draws of the scored window's forecast errors (forecast "
                        f"seeds {DRAW_SEED0}..), paired with its planner on each draw; prints the mean change over "
                        "seeds and draws with a 95 %% CI (a seed's value: its mean over the draws)")
    p.add_argument("--json", default=None, help="write the rows here")
    return p


def stage_windows(protocol: str, stage: str, data_dir: str | None) -> tuple[dict, str, str]:
    """The scenario options (gymnasium.make's) of a protocol's stage, its training split and its scored split:
    ``val`` of a short trace is the scenario ``holdout`` (the train split cut into ``fit`` and ``val``, ``val`` as
    long as the test window, which is not in it); otherwise the scenario's own splits (``train`` and ``stage``)."""
    proto = PROTOCOLS[protocol]
    data = {} if proto.data_dir is None else {"data_dir": data_dir or str(proto.data_dir)}
    if stage == "val" and not proto.monthly:
        full = equiglb.load_scenario(proto.scenario, **data)
        (_, an), (_, bn) = full.splits["train"], full.splits["test"]
        return ({"scenario": "holdout", "scenario_options": {"base": proto.scenario, "val_fraction": bn / an, **data}},
                "fit", "val")
    return {"scenario": proto.scenario, **data}, "train", stage   # test, or a scenario with its own val split


def scenario_of(kw: dict) -> equiglb.Scenario:
    """The whole scenario (every split) of gymnasium.make options ``kw`` (``scenario`` with ``scenario_options``
    or ``data_dir``)."""
    opts = kw.get("scenario_options", {k: v for k, v in kw.items() if k == "data_dir"})
    return equiglb.load_scenario(kw["scenario"], **opts)


@dataclass(frozen=True)
class Setup:
    """What a run trains on and scores on (:func:`setup`)."""

    scenario: str
    horizon: int                 # the planner's look-ahead (h)
    train_kw: dict               # gymnasium.make options of the training episodes (split included)
    eval_kw: dict                # the same for the scoring window (split included)
    train_split: str
    eval_split: str
    split_start: int             # the training split's first slot and length
    split_length: int
    starts: list[int]            # first slots of the training episodes the search plays
    sets: list[str]
    seeds: list[int]
    baselines: tuple[str, ...]


def setup(args: argparse.Namespace) -> Setup:
    """Check the options (a bad one is a SystemExit naming it, before any work) and build the run's windows."""
    if not 0 <= args.augment <= MAX_COPIES:
        raise SystemExit(f"--augment={args.augment}: expected 0 (no generated hours) .. {MAX_COPIES}")
    proto = PROTOCOLS[args.protocol]
    horizon = proto.mpc_horizon if args.mpc_horizon is None else args.mpc_horizon
    if not 1 <= horizon <= MAX_HORIZON_H:
        raise SystemExit(f"--mpc-horizon={horizon}: expected 1 .. {MAX_HORIZON_H} hours")
    windows = proto.windows if args.windows is None else args.windows
    if windows is not None and windows < 1:
        raise SystemExit(f"--windows={windows}: expected at least 1 training episode")
    if args.draws < 0:
        raise SystemExit(f"--draws={args.draws}: expected 0 (none) or more draws of the scored window's forecasts")
    if args.augment and args.correct:
        raise SystemExit(f"--augment={args.augment} with --correct: the correction is fit on the real training split's "
                         "forecasts; generated hours have no issued forecasts of their own (use one of the two)")
    if args.augment and proto.monthly:
        raise SystemExit(f"--augment={args.augment}: the protocol {args.protocol!r} has a year of training hours; "
                         "generated hours are for the short traces (leave --augment out)")
    sets = feature_sets(args.features, args.stage)
    seeds = [int(s) for s in (args.seeds or ("0,1,2" if args.stage == "val" else "40,41,42,43,44")).split(",")]
    if args.method != "cem":
        if proto.monthly:
            raise SystemExit(f"--method {args.method} --protocol {args.protocol}: the cost-to-go of each action needs "
                             "the LP accelerator (one model, no social term); the world scenarios have three models")
        if args.rounds < 1:
            raise SystemExit(f"--rounds={args.rounds}: expected at least 1 (round 0 collects the planner's states)")
    scenario, hours = proto.scenario, proto.hours
    data = {} if proto.data_dir is None else {"data_dir": args.data_dir or str(proto.data_dir)}
    base, train_split, eval_split = stage_windows(args.protocol, args.stage, args.data_dir)
    kw = {**base, **MODE, "mpc_horizon": horizon, "episode_length": hours, "random_start": False,
          **tail_options(args.tail), **({"mpc_warm_start": True} if args.warm_start else {})}
    train_kw = {**kw, "split": train_split}
    if args.augment:     # the training split (starting at hour 0) extended by generated hours; scoring unchanged
        train_kw.update(scenario="augmented", scenario_options={
            "source": base["scenario"], "split": train_split, "copies": args.augment,
            **base.get("scenario_options", data)})         # val: holdout's options (data inside); test: data
        train_kw.pop("data_dir", None)
    cfg = gym.make("equiglb/EquitableGLB-v0", **train_kw).unwrapped.config
    s0, n0 = cfg.split_start, cfg.split_length
    # the tuned eGLB tunes on the scenario's train split: on val that split holds val (left out there)
    baselines = ("online-eglb",) if args.stage == "val" else ("online-eglb", "online-eglb-tuned")
    return Setup(scenario, horizon, train_kw, {**kw, "split": eval_split, "episode_length": None}, train_split,
                 eval_split, s0, n0, spread_out(tiling(s0, n0, hours), windows), sets, seeds, baselines)


def tail_options(text: str | None) -> dict:
    """``--tail DAYS:WEIGHT[:BLOCKS]`` as the environment's options (none without it); a SystemExit naming the
    flag for a malformed value (the values themselves are checked by the environment, by name)."""
    if text is None:
        return {}
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        opts = {"mpc_tail_days": int(parts[0]), "mpc_tail_weight": float(parts[1])}
        if len(parts) == 3:
            opts["mpc_tail_block_hours"] = int(parts[2])
    except ValueError:
        raise SystemExit(f"--tail={text!r}: expected DAYS:WEIGHT or DAYS:WEIGHT:BLOCKS, e.g. 5:0.5 or 30:0.75:3") \
            from None
    return opts


def fit_corrected(run: Setup, seed: int) -> CorrectedForecaster:
    """``--correct``: seed ``seed``'s calibrated forecasts, corrected by coefficients fit on the training split."""
    scenario = scenario_of(run.train_kw)
    return CorrectedForecaster.fit(Forecaster(scenario, "calibrated", seed), run.train_split, run.horizon)


def scored_kw(run: Setup, fitted: CorrectedForecaster | None, scored_seed: int = 0) -> dict:
    """The options of the scored window with the forecasts of ``scored_seed``: corrected by ``fitted``'s
    coefficients with ``--correct``, raw otherwise."""
    if fitted is None:
        return {**run.eval_kw, "forecast_seed": scored_seed}
    scored = CorrectedForecaster(Forecaster(fitted.scenario, "calibrated", scored_seed), fitted.correction,
                                 run.train_split)
    return {**run.eval_kw, "forecast_model": scored}


#: the first forecast seed of ``--draws`` (the errors are keyed on the target hour: a draw of the scored window
#: is never a number a training episode read, whatever the seeds)
DRAW_SEED0 = 1000


def score_on_draws(policy, run: Setup, draws: int, fitted: CorrectedForecaster | None, name: str) -> list[float]:
    """``--draws K``: the change of the gap (points) against the planner alone on K other draws of the scored
    window's forecast errors (forecast seeds DRAW_SEED0 ..), each draw the same for the policy and its planner;
    with ``--correct`` each draw corrected by ``fitted``'s coefficients."""
    out = []
    for d in range(draws):
        kw = scored_kw(run, fitted, DRAW_SEED0 + d)
        table = evaluate_policy(policy, "equiglb/EquitableGLB-v0", split=run.eval_split, name=name, baselines=(),
                                env_kwargs=kw)
        gaps = dict(zip(table["policy"], 100 * table["gap_to_offline"]))
        out.append(gaps[name] - next(g for p_, g in gaps.items() if "agent's base" in p_))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run = setup(args)
    sets, seeds, starts, train_split, eval_split = run.sets, run.seeds, run.starts, run.train_split, run.eval_split
    s0, n0, hours = run.split_start, run.split_length, PROTOCOLS[args.protocol].hours
    ref = cartpole_steps_per_s()
    print(f"=== policy_search: stage {args.stage}, protocol {args.protocol} (scenario {run.scenario}): trains on "
          f"{train_split} (hours {s0}..{s0 + n0 - 1}, episodes of {hours} h at {starts}), scored on {eval_split}; "
          f"{f'{args.augment} x generated hours, ' if args.augment else ''}planner MPC {run.horizon} h; "
          f"{'forecasts corrected by their observed errors (fit on ' + train_split + '); ' if args.correct else ''}"
          f"{'history tail ' + args.tail + ' (days:weight[:blocks]); ' if args.tail else ''}"
          f"{'warm-started; ' if args.warm_start else ''}"
          f"feature sets {sets}; seeds {seeds}; "
          + (f"CE method {args.iterations} iterations x population {args.population}" if args.method == "cem" else
             f"imitation of the {'oracle' if args.method == 'imitate' else 'planner'}'s cost-to-go, {args.rounds} "
             "rounds (the seed: the training episodes' forecast_seed)")
          + f"; CartPole-v1 reference {ref:,.0f} steps/s ===", flush=True)
    rows: dict[str, list[dict]] = {f: [] for f in sets}
    table = None
    method = f"{args.method}-linear"
    for k, features in enumerate(sets):
        name = f"{method} ({features})"
        for n, seed in enumerate(seeds):
            train_seed = 0 if args.method == "cem" else seed     # imitation: the seed draws the training forecasts
            fitted = fit_corrected(run, train_seed) if args.correct else None
            train_kw = {**run.train_kw, "forecast_seed": train_seed} if fitted is None else \
                {**run.train_kw, "forecast_model": fitted}
            eval_kw = run.eval_kw if fitted is None else scored_kw(run, fitted)
            if args.method == "cem":
                policy, hist = search_multipliers(train_kw, starts, seed=seed,
                                                  iterations=args.iterations, population=args.population,
                                                  features=features)
                train_change, seconds = hist.center_pct[-1], hist.seconds
            else:
                # the seed draws the forecast errors of the training episodes (the imitation itself has no
                # randomness); the scored window keeps the forecasts of every row (seed 0)
                policy, imit = imitate_multipliers(train_kw, starts,
                                                   rounds=args.rounds, features=features,
                                                   continuation="oracle" if args.method == "imitate" else "planner")
                train_change, seconds = imit.train_change_pct[imit.chosen + 1], sum(imit.seconds)
                print(f"{features}: training windows J against the planner by round {imit.train_change_pct} %, "
                      f"states {imit.states}, chosen the fit of round {imit.chosen}", flush=True)
            last = k == len(sets) - 1 and n == len(seeds) - 1       # the baselines' rows once, with the last
            table = evaluate_policy(policy, "equiglb/EquitableGLB-v0", split=eval_split, name=name,
                                    baselines=run.baselines if last else (), env_kwargs=eval_kw)
            gaps = dict(zip(table["policy"], 100 * table["gap_to_offline"]))
            j_agent = float(table.loc[table["policy"] == name, "objective"].iloc[0])
            planner_now = next(g for p_, g in gaps.items() if "agent's base" in p_)
            row = {"features": features, "seed": seed, "gap_pct": gaps[name], "planner_gap_pct": planner_now,
                   "train_change_pct": train_change, "search_s": seconds, "objective_usd": j_agent,
                   "theta": policy.theta.round(4).tolist()}
            months = table.attrs.get("months")         # the monthly protocol: each month's gap, agent and planner
            if months is not None:
                by = {p_: months.loc[months["policy"] == p_, ["month", "gap_to_offline_pct"]].values.tolist()
                      for p_ in (name, next(p_ for p_ in gaps if "agent's base" in p_))}
                row["month_gap_pct"], row["planner_month_gap_pct"] = by.values()
            if args.draws:
                row["draw_change_pts"] = score_on_draws(policy, run, args.draws, fitted, name)
                print(f"{features} seed {seed}: on {args.draws} other draws of the scored window's forecasts, change "
                      f"against the planner {np.mean(row['draw_change_pts']):+.3f} points (mean)", flush=True)
            rows[features].append(row)
            print(f"{features} seed {seed}: gap {row['gap_pct']:+.3f} %  (training windows: J "
                  f"{row['train_change_pct']:+.3f} % against the planner; search {seconds:.0f} s = "
                  f"{seconds * ref:,.0f} CartPole steps)", flush=True)
    assert table is not None
    print(f"\nbaselines on {eval_split} (gap to the offline optimum, an oracle), with what each policy knew:")
    for _, r in table.iterrows():
        print(f"  {r['policy']:<45} {r['information']:<60} {100 * r['gap_to_offline']:+.3f} %")
    info = next(r["information"] for _, r in table.iterrows() if r["policy"].startswith(method))
    planner = next(100 * g for n, g in zip(table["policy"], table["gap_to_offline"]) if "agent's base" in n)
    summaries = {}
    print(f"\n{method} knew: {info}; its features by set: "
          + "; ".join(f"{f} = ({', '.join(FEATURE_NAMES[i] for i in FEATURE_SETS[f])})" for f in sets))
    for features in sets:
        s = summarize([r["gap_pct"] for r in rows[features]])
        summaries[features] = {"mean": s["mean"], "ci_low": s["mean_ci_low"], "ci_high": s["mean_ci_high"]}
        print(f"{method} ({features}): mean gap {s['mean']:+.3f} % [95 % CI {s['mean_ci_low']:+.3f}, "
              f"{s['mean_ci_high']:+.3f}] over {len(rows[features])} seeds; its planner alone {planner:+.3f} %; "
              f"target (CI upper end below the planner): {'MET' if s['mean_ci_high'] < planner else 'MISSED'}")
        if args.draws:
            d = summarize([float(np.mean(r["draw_change_pts"])) for r in rows[features]])
            summaries[features]["draws_change_pts"] = {"mean": d["mean"], "ci_low": d["mean_ci_low"],
                                                       "ci_high": d["mean_ci_high"]}
            print(f"{method} ({features}) on {args.draws} other draws of the scored window's forecasts (seeds "
                  f"{DRAW_SEED0}..{DRAW_SEED0 + args.draws - 1}), change against its planner on the same draw: "
                  f"{d['mean']:+.3f} points [95 % CI {d['mean_ci_low']:+.3f}, {d['mean_ci_high']:+.3f}] (mean over "
                  f"seeds of each seed's mean over the draws); below 0: {'yes' if d['mean_ci_high'] < 0 else 'no'}")
    choice = min(sets, key=lambda f: summaries[f]["mean"])
    if args.stage == "val":
        print(f"\nchoice by validation (lowest mean gap on {eval_split}): --features {choice} "
              f"({summaries[choice]['mean']:+.3f} % against the planner's {planner:+.3f} %: "
              f"{'better' if summaries[choice]['mean'] < planner else 'not better'} than the planner)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "stage": args.stage, "protocol": args.protocol, "method": args.method, "rounds": args.rounds,
            "mpc_horizon_h": run.horizon, "iterations": args.iterations,
            "population": args.population, "augment": args.augment,
            "correct": args.correct, "tail": args.tail, "warm_start": args.warm_start, "draws": args.draws,
            "starts": starts,
            "cartpole_steps_per_s": ref,
            "rows": [r for f in sets for r in rows[f]], "summaries": summaries, "choice": choice,
            "planner_gap_pct": planner,
            "baselines": table[["policy", "information", "gap_to_offline"]].to_dict("records")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
