"""Does learning beat its own planner? The cross-entropy policy search of :mod:`equiglb.agents.search` on the
multipliers of the MPC residual mode, against MPC alone with the same forecasts and horizon.

    python benchmarks/policy_search.py --stage val  [--protocol P] [--features full,spreads,constant] [--seeds 0,1,2]
    python benchmarks/policy_search.py --stage test [--protocol P] [--features SET] [--seeds 40,41,42,43,44]

with P one of ``synthetic`` (the embedded scenario), ``eglb-2022`` (the real traces, full connection) and
``eglb-2022-partial`` (the same traces with the study's partial-connection mask: the scenario
``eglb-2022-partial``); both eGLB-2022 protocols read ``--data-dir`` (the eGLB-2022 folder).

* ``--stage val``: the scenario ``holdout`` (the protocol's train split cut into ``fit`` and ``val``, the
  last hours as long as the test window); the search trains on episodes that tile ``fit``; each seed's
  policy is scored on ``val``. The test window is not in the scenario at all. Each feature set of
  ``--features`` (``equiglb.agents.search.FEATURE_SETS``) runs with every seed, and the set with the lowest
  mean gap on ``val`` is printed as the choice.
* ``--stage test``: the search trains on episodes that tile the train split, with fresh seeds; each policy is
  scored once on the held-out test window beside the baselines (``equiglb.evaluate_policy``). One feature set
  only: the one chosen on validation.

Every policy acts in ``action_mode="mpc_residual"`` (MPC 24 h on calibrated forecasts, seed 0, inside the
environment; the multipliers in [1/1.5, 1.5]) with 6 h of forecasts and the recent forecast errors in the
observation (``forecast_errors=True``). Rows (gap to the offline optimum of the window, %, an oracle): the
policy per seed and its mean with a 95 % bootstrap CI (``equiglb.stats.summarize``), MPC alone with the same
forecasts (the planner: action 0), online eGLB and its tuned variant (no forecast). Prints whether the
policy's CI upper end is below its planner's gap. Same-run reference for the times: a CartPole-v1 loop.
``--json`` writes every row, the per-set summaries, the choice and the baselines. ``--augment K`` trains on the
training split (``fit`` or ``train``) extended by K x its length of hours generated from a calibration on that
split alone (the scenario ``augmented``, :mod:`equiglb.traces.derived`): more training episodes from the same
real hours; the scoring window (``val`` or ``test``) is the real one, unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import equiglb  # noqa: E402,F401  (registers the ids)
from equiglb.agents.search import FEATURE_NAMES, FEATURE_SETS, search_multipliers  # noqa: E402
from equiglb.evaluation import evaluate_policy  # noqa: E402
from equiglb.stats import summarize  # noqa: E402
from equiglb.traces.derived import MAX_COPIES  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "traces" / "eglb-2022"
#: protocol -> (scenario, episode hours = the test window's length)
PROTOCOLS = {"synthetic": ("synthetic", 240), "eglb-2022": ("eglb-2022", 121),
             "eglb-2022-partial": ("eglb-2022-partial", 121)}
MODE = {"action_mode": "mpc_residual", "mpc_horizon": 24, "mpc_residual_max_factor": 1.5, "forecast_horizon": 6,
        "forecast_errors": True}


def tiling(start: int, length: int, hours: int) -> list[int]:
    """Starts of the episodes of ``hours`` that tile [start, start + length) (the last one flush with its end)."""
    starts = list(range(start, start + length - hours + 1, hours))
    if starts[-1] + hours < start + length:
        starts.append(start + length - hours)
    return starts


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage", choices=["val", "test"], required=True)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="synthetic")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="the eglb-2022 folder (the eglb-2022 protocols)")
    p.add_argument("--features", default="full",
                   help=f"feature set(s) of the policy, comma-separated, of {sorted(FEATURE_SETS)} (val: several "
                        "are compared and the lowest mean val gap is chosen; test: one)")
    p.add_argument("--seeds", default=None, help="comma-separated search seeds (val: 0,1,2; test: 40..44)")
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--population", type=int, default=12)
    p.add_argument("--augment", type=int, default=0, metavar="K",
                   help="train on the training split extended by K x its length of generated hours, calibrated on "
                        "that split only (the scenario 'augmented', equiglb.traces.derived; 0: the real hours only); "
                        "the episodes tile the extended split, the scoring window is unchanged")
    p.add_argument("--json", default=None, help="write the rows here")
    args = p.parse_args(argv)
    if not 0 <= args.augment <= MAX_COPIES:
        raise SystemExit(f"--augment={args.augment}: expected 0 (no generated hours) .. {MAX_COPIES}")
    sets = feature_sets(args.features, args.stage)
    seeds = [int(s) for s in (args.seeds or ("0,1,2" if args.stage == "val" else "40,41,42,43,44")).split(",")]
    scenario, hours = PROTOCOLS[args.protocol]
    data = {"data_dir": args.data_dir} if args.protocol.startswith("eglb-2022") else {}
    if args.stage == "val":
        full = equiglb.load_scenario(scenario, **data)
        (_, an), (_, bn) = full.splits["train"], full.splits["test"]
        base = {"scenario": "holdout", "scenario_options": {"base": scenario, "val_fraction": bn / an, **data}}
        train_split, eval_split = "fit", "val"
    else:
        base = {"scenario": scenario, **data}
        train_split, eval_split = "train", "test"
    kw = {**base, **MODE, "episode_length": hours, "random_start": False}
    train_kw = dict(kw)
    if args.augment:     # the training split (starting at hour 0) extended by generated hours; scoring unchanged
        train_kw.update(scenario="augmented", scenario_options={
            "source": base["scenario"], "split": train_split, "copies": args.augment,
            **base.get("scenario_options", data)})         # val: holdout's options (data inside); test: data
        train_kw.pop("data_dir", None)
    env = gym.make("equiglb/EquitableGLB-v0", **train_kw, split=train_split)
    s0, n0 = env.unwrapped.config.split_start, env.unwrapped.config.split_length
    starts = tiling(s0, n0, hours)
    ref = cartpole_steps_per_s()
    print(f"=== policy_search: stage {args.stage}, protocol {args.protocol} (scenario {scenario}): trains on "
          f"{train_split} (hours {s0}..{s0 + n0 - 1}, episodes of {hours} h at {starts}), scored on {eval_split}; "
          f"{f'{args.augment} x generated hours, ' if args.augment else ''}"
          f"feature sets {sets}; seeds {seeds}; CE method {args.iterations} iterations x population "
          f"{args.population}; CartPole-v1 reference {ref:,.0f} steps/s ===", flush=True)
    # the tuned eGLB tunes on the scenario's train split: on val that split holds val (left out there)
    baselines = ("online-eglb",) if args.stage == "val" else ("online-eglb", "online-eglb-tuned")
    eval_kw = {**kw, "split": eval_split, "episode_length": None}
    rows: dict[str, list[dict]] = {f: [] for f in sets}
    table = None
    for k, features in enumerate(sets):
        name = f"cem-linear ({features})"
        for n, seed in enumerate(seeds):
            policy, hist = search_multipliers({**train_kw, "split": train_split}, starts, seed=seed,
                                              iterations=args.iterations, population=args.population,
                                              features=features)
            last = k == len(sets) - 1 and n == len(seeds) - 1       # the baselines' rows once, with the last
            table = evaluate_policy(policy, "equiglb/EquitableGLB-v0", split=eval_split, name=name,
                                    baselines=baselines if last else (), env_kwargs=eval_kw)
            gaps = dict(zip(table["policy"], 100 * table["gap_to_offline"]))
            j_agent = float(table.loc[table["policy"] == name, "objective"].iloc[0])
            planner_now = next(g for p_, g in gaps.items() if "agent's base" in p_)
            row = {"features": features, "seed": seed, "gap_pct": gaps[name], "planner_gap_pct": planner_now,
                   "train_change_pct": hist.center_pct[-1], "search_s": hist.seconds, "objective_usd": j_agent,
                   "theta": policy.theta.round(4).tolist()}
            rows[features].append(row)
            print(f"{features} seed {seed}: gap {row['gap_pct']:+.3f} %  (training windows: J "
                  f"{row['train_change_pct']:+.3f} % against the planner; search {hist.seconds:.0f} s = "
                  f"{hist.seconds * ref:,.0f} CartPole steps)", flush=True)
    assert table is not None
    print(f"\nbaselines on {eval_split} (gap to the offline optimum, an oracle), with what each policy knew:")
    for _, r in table.iterrows():
        print(f"  {r['policy']:<45} {r['information']:<60} {100 * r['gap_to_offline']:+.3f} %")
    info = next(r["information"] for _, r in table.iterrows() if r["policy"].startswith("cem-linear"))
    planner = next(100 * g for n, g in zip(table["policy"], table["gap_to_offline"]) if "agent's base" in n)
    summaries = {}
    print(f"\ncem-linear knew: {info}; its features by set: "
          + "; ".join(f"{f} = ({', '.join(FEATURE_NAMES[i] for i in FEATURE_SETS[f])})" for f in sets))
    for features in sets:
        s = summarize([r["gap_pct"] for r in rows[features]])
        summaries[features] = {"mean": s["mean"], "ci_low": s["mean_ci_low"], "ci_high": s["mean_ci_high"]}
        print(f"cem-linear ({features}): mean gap {s['mean']:+.3f} % [95 % CI {s['mean_ci_low']:+.3f}, "
              f"{s['mean_ci_high']:+.3f}] over {len(rows[features])} seeds; its planner alone {planner:+.3f} %; "
              f"target (CI upper end below the planner): {'MET' if s['mean_ci_high'] < planner else 'MISSED'}")
    choice = min(sets, key=lambda f: summaries[f]["mean"])
    if args.stage == "val":
        print(f"\nchoice by validation (lowest mean gap on {eval_split}): --features {choice} "
              f"({summaries[choice]['mean']:+.3f} % against the planner's {planner:+.3f} %: "
              f"{'better' if summaries[choice]['mean'] < planner else 'not better'} than the planner)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "stage": args.stage, "protocol": args.protocol, "iterations": args.iterations,
            "population": args.population, "augment": args.augment, "starts": starts, "cartpole_steps_per_s": ref,
            "rows": [r for f in sets for r in rows[f]], "summaries": summaries, "choice": choice,
            "planner_gap_pct": planner,
            "baselines": table[["policy", "information", "gap_to_offline"]].to_dict("records")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
