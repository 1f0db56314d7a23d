"""Agent quality over seeds: gap to the offline optimum on a held-out test window, with 95 % CIs.

    python benchmarks/agent_quality.py --protocol eglb-2022 [--algo ppo] [--seeds 5] [-n 300000]
        [--env-kwargs KEY=VALUE ...] [--residual-base {default,tuned}] [--ensemble M] [--augment COPIES]
        [--data-dir ../shared/traces/eglb-2022]
        [--out quality.json] [-- more train.py flags]

For each seed s of ``--first-seed .. --first-seed + --seeds - 1`` this trains one agent through
train.py's own code path (``equiglb.agents.cli.main``: train split for training, periodic
evaluations on the scenario's ``val`` split or else on the train split, never the test window) and
reads its row of ``<run>/eval/table.csv`` (the ledger's J(x) on the test window and its gap to the
offline optimum of that window). It then runs, on the same test window and weights:

* ``online-eglb``: online eGLB with its documented defaults (deterministic: one value);
* ``online-eglb-tuned``: online eGLB with step and bound tuned on the train split only;
* ``mpc-H perfect (oracle)``: MPC with horizon ``--mpc-horizon`` and perfect forecasts (deterministic);
* ``mpc-H calibrated``: the same with calibrated forecasts (docs/forecasts.md; one run per seed s, the
  forecasts' seed s);
* ``mpc-H noise σ``: the same with the legacy relative forecast noise ``--mpc-noise`` (one run per seed
  s, noise seeded with s);
* with a residual action mode (``--env-kwargs action_mode=mpc_residual`` or ``eglb_residual``): the
  agents' own planner alone with the agents' forecasts, their action 0, e.g. ``mpc-24 calibrated (agent's
  base)`` (deterministic).

Every row says what the policy knew (``information``: none, forecasts (model, horizon), hindsight).

``--residual-base tuned`` (with ``--env-kwargs action_mode=eglb_residual``) first tunes online eGLB
on the train split exactly as ``online-eglb-tuned`` does for the test window's length
(:func:`equiglb.baselines.eglb_tuned.tune_online_eglb`: five train windows as long as the test
window, the 21-point grid), prints the chosen ``eta_scale`` and ``z_max_scale`` and passes them as
the environment options ``eglb_eta_scale`` and ``eglb_z_max_scale``: the online eGLB inside the
environment, which action 0 reproduces, is then the tuned one, in training and in the evaluation.

``--ensemble M`` trains S × M agents (seeds first-seed .. first-seed + S·M - 1) and scores each group of
M consecutive seeds acting as one (``python -m equiglb.agents.evaluate --ensemble``: each slot the mean of
the members' deterministic actions), so the agent row holds S ensembles; the members' own gaps are a
second row. ``--augment COPIES`` trains on the scenario ``augmented`` (:mod:`equiglb.traces.derived`: the
train split plus COPIES × its length of hours generated from a calibration on the train split only);
the test window, the tuning and the baselines are the protocol's own.

Every row prints the per-seed gaps (%), the mean, the interquartile mean (IQM) and 95 % percentile
bootstrap confidence intervals of both (``equiglb.stats.summarize``: rliable's estimators, 2,000
resamples, bootstrap seed 0). ``--out FILE.json`` saves everything.

Protocols (``--protocol``): ``eglb-2022`` (``equiglb/EquitableGLB-eglb2022-residual-v0``: real traces, full
connection; train = first 336 h, test = last 121 h), ``eglb-2022-partial`` (the same with the study's
partial connection mask, ``-partial-24h-v0``), ``synthetic`` (``equiglb/EquitableGLB-residual-constant-v0``,
train.py's default for ppo: 1,440 generated hours, train = first 1,200, test = last 240) and ``synthetic-full``
(the same windows with ``equiglb/EquitableGLB-residual-v0``, the full observation).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import gymnasium as gym  # noqa: E402
import yaml  # noqa: E402

from equiglb.agents.algos import ALGOS, parse_overrides  # noqa: E402
from equiglb.agents.cli import main as train_main  # noqa: E402
from equiglb.agents.evaluate import evaluate_models, scenario_of  # noqa: E402
from equiglb.baselines import MPCPolicy, OnlineEGLBPolicy, TunedOnlineEGLBPolicy, compare, make_policy  # noqa: E402
from equiglb.baselines.eglb_tuned import tune_online_eglb  # noqa: E402
from equiglb.envs.core import agent_base, agent_information  # noqa: E402
from equiglb.stats import summarize  # noqa: E402
from equiglb.traces.derived import MAX_COPIES  # noqa: E402

#: protocol -> (environment id, needs the eGLB-2022 data folder)
PROTOCOLS: dict[str, tuple[str, bool]] = {
    # the ids of ppo.yml's tuned entries (their registered defaults are the tuned env settings)
    "eglb-2022": ("equiglb/EquitableGLB-eglb2022-residual-v0", True),
    "eglb-2022-partial": ("equiglb/EquitableGLB-eglb2022-partial-24h-v0", True),
    "synthetic": ("equiglb/EquitableGLB-residual-constant-v0", False),
    # the synthetic protocol's earlier default: the same residual mode with the full observation
    "synthetic-full": ("equiglb/EquitableGLB-residual-v0", False),
}
TRAIN_SPLIT, TEST_SPLIT = "train", "test"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="eglb-2022", help="scenario and environment")
    p.add_argument("--algo", choices=sorted(ALGOS), default="ppo", help="RL algorithm")
    p.add_argument("--seeds", type=int, default=5, help="number of training seeds S (default 5)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + S - 1")
    p.add_argument("-n", "--n-timesteps", type=int, default=None,
                   help="training steps per seed (default: the algorithm's hyperparameter file)")
    p.add_argument("--env-kwargs", nargs="+", metavar="KEY=VALUE", default=None,
                   help="extra environment keyword arguments, as train.py takes them")
    p.add_argument("--residual-base", choices=("default", "tuned"), default="default",
                   help="eglb_residual only: the online eGLB inside the environment: its documented defaults, or "
                        "tuned on the train split as online-eglb-tuned is (sets eglb_eta_scale, eglb_z_max_scale)")
    p.add_argument("--ensemble", type=int, default=1, metavar="M",
                   help="train M agents per seed slot and score each group of M, acting as one (the mean of their "
                        "deterministic actions; equiglb.agents.policy.EnsemblePolicy): S ensembles from S x M "
                        "trainings (default 1: single agents)")
    p.add_argument("--augment", type=int, default=0, metavar="COPIES",
                   help="train on the scenario 'augmented': the train split plus COPIES x its length of hours "
                        "generated from a calibration on the train split only (0: the real train split alone)")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "traces" / "eglb-2022"),
                   help="folder of the eGLB-2022 traces (eglb-2022 protocols)")
    p.add_argument("--mpc-horizon", type=int, default=24, help="MPC horizon (h)")
    p.add_argument("--mpc-noise", type=float, default=0.1,
                   help="relative one-hour-ahead forecast error of the noisy MPC (grows with sqrt(h))")
    p.add_argument("-f", "--log-folder", default=None, help="where the run folders go (default: a temp folder)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="save per-seed gaps and summaries as JSON")
    p.add_argument("extra", nargs="*", help="more train.py flags (after --)")
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every bad value is an error naming the option, before any training."""
    check_protocol_args(p, args)
    if args.n_timesteps is not None and args.n_timesteps < 1:
        p.error(f"--n-timesteps must be >= 1, got {args.n_timesteps}")
    if args.ensemble < 1:
        p.error(f"--ensemble must be >= 1 agents per ensemble, got {args.ensemble}")
    if not 0 <= args.augment <= MAX_COPIES:
        p.error(f"--augment must be in 0..{MAX_COPIES} copies of the train split, got {args.augment}")
    if args.mpc_horizon < 1:
        p.error(f"--mpc-horizon must be >= 1 hour, got {args.mpc_horizon}")
    if not (math.isfinite(args.mpc_noise) and args.mpc_noise >= 0):
        p.error(f"--mpc-noise must be finite and >= 0, got {args.mpc_noise}")
    keys = {item.split("=", 1)[0].strip(): item.split("=", 1)[1].strip() if "=" in item else ""
            for item in args.env_kwargs or []}
    if "split" in keys:
        p.error("--env-kwargs split=...: the protocol fixes the splits (train / test)")
    if args.augment and {"scenario", "scenario_options"} & set(keys):
        p.error("--augment sets the scenario itself; drop scenario/scenario_options from --env-kwargs")
    if args.residual_base == "tuned":
        if keys.get("action_mode", "").strip("'\"") != "eglb_residual":
            p.error("--residual-base tuned: needs --env-kwargs action_mode=eglb_residual")
        given = sorted(set(keys) & {"eglb_eta_scale", "eglb_z_max_scale"})
        if given:
            p.error(f"--residual-base tuned sets {given[0]} itself; drop it from --env-kwargs")


def check_protocol_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The checks of the flags this script shares with select_residual.py: ``--seeds``, ``--first-seed``,
    ``--data-dir`` (for the eGLB-2022 protocols) and ``--out``."""
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.first_seed < 0:
        p.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if PROTOCOLS[args.protocol][1] and not (Path(args.data_dir) / "AI_workload.csv").is_file():
        p.error(f"--data-dir {args.data_dir!r}: no eGLB-2022 traces there (AI_workload.csv missing)")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        p.error(f"--out {args.out!r}: folder {Path(args.out).resolve().parent} does not exist")


def train_one(args: argparse.Namespace, env_id: str, env_flags: list[str], seed: int, log: Path,
              splits: tuple[str, str] = (TRAIN_SPLIT, TEST_SPLIT), more_flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train and evaluate one seed through train.py; return its run folder, config and agent row.

    ``args`` supplies ``algo``, ``n_timesteps`` and ``extra`` (more train.py flags); ``splits`` are the
    training and the evaluation split; ``more_flags`` go to train.py before ``args.extra``
    (benchmarks/select_residual.py passes its candidates' flags there)."""
    folder = log / f"seed{seed}"
    flags = ["--algo", args.algo, "--env", env_id, "--seed", str(seed), "-f", str(folder),
             "--train-split", splits[0], "--eval-split", splits[1], "--no-progress", *env_flags, *more_flags,
             *args.extra]
    if args.n_timesteps:
        flags += ["-n", str(args.n_timesteps)]
    flags += ["--baselines"]                                    # none: the agent's row (and its gap) only
    t0 = time.perf_counter()
    code = train_main(flags)
    if code != 0:
        raise SystemExit(f"seed {seed}: train.py exited with status {code} (flags: {' '.join(flags)})")
    runs = [d for d in (folder / args.algo).iterdir() if d.is_dir()]
    if len(runs) != 1:
        raise SystemExit(f"seed {seed}: expected one run folder under {folder / args.algo}, found {runs}")
    run = runs[0]
    with open(run / "eval" / "table.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    agent = [r for r in rows if r["policy"].endswith("(agent)")]
    if len(agent) != 1:
        raise SystemExit(f"seed {seed}: no agent row in {run / 'eval' / 'table.csv'}")
    cfg = yaml.safe_load((run / "config.yml").read_text())
    return {"seed": seed, "run": str(run), "env_kwargs": cfg["env_kwargs"], "eval_freq": cfg.get("eval_freq"),
            "objective_usd": float(agent[0]["objective"]), "gap": float(agent[0]["gap_to_offline"]),
            "wall_s": time.perf_counter() - t0}


def row(name: str, gaps_pct: list[float], seeds: list[int] | None, information: str = "none") -> dict[str, Any]:
    s = summarize(gaps_pct)
    return {"policy": name, "information": information, "seeds": seeds, "gaps_pct": gaps_pct, **s}


def fmt(r: dict[str, Any]) -> str:
    per = ", ".join(f"{g:+.2f}" for g in r["gaps_pct"])
    return (f"{r['policy']:<34} {r['information']:<42} {r['n']:>2} {r['mean']:>+7.2f} "
            f"[{r['mean_ci_low']:+.2f}, {r['mean_ci_high']:+.2f}]"
            f" {r['iqm']:>+7.2f} [{r['iqm_ci_low']:+.2f}, {r['iqm_ci_high']:+.2f}]   {per}")


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    env_id, needs_data = PROTOCOLS[args.protocol]
    kv = (["data_dir=" + str(args.data_dir)] if needs_data else []) + list(args.env_kwargs or [])
    env_flags = ["--env-kwargs", *kv] if kv else []
    seeds = list(range(args.first_seed, args.first_seed + args.seeds * args.ensemble))
    groups = [seeds[g * args.ensemble:(g + 1) * args.ensemble] for g in range(args.seeds)]

    # the test window must not overlap the train split (checked before any training)
    full = scenario_of(env_id, {**parse_overrides(kv)})
    (a0, an), (b0, bn) = full.splits[TRAIN_SPLIT], full.splits[TEST_SPLIT]
    if a0 < b0 + bn and b0 < a0 + an:
        raise SystemExit(f"{args.protocol}: train split {a0}..{a0 + an - 1} overlaps test {b0}..{b0 + bn - 1}")
    val = next((s for s in ("val", "validation") if s in full.splits), TRAIN_SPLIT)
    print(f"=== agent quality: protocol {args.protocol}, {env_id}, algo {args.algo}, seeds {seeds} ===\n"
          f"train split hours {a0}..{a0 + an - 1}; periodic evaluation on the {val!r} split; test window hours "
          f"{b0}..{b0 + bn - 1} ({bn} h), used only by the final tables", flush=True)
    base_tuning = None
    if args.residual_base == "tuned":
        # the train split only, with the test window's length and the evaluation weights: online-eglb-tuned's call
        t_tune = time.perf_counter()
        base_tuning = tune_online_eglb(full.split(TRAIN_SPLIT), full.weights, window_hours=bn)
        kv += [f"eglb_eta_scale={base_tuning.eta_scale!r}", f"eglb_z_max_scale={base_tuning.z_max_scale!r}"]
        env_flags = ["--env-kwargs", *kv]
        print(f"residual base: online eGLB tuned on the train split: eta_scale {base_tuning.eta_scale:g}, "
              f"z_max_scale {base_tuning.z_max_scale:g} (train windows of {base_tuning.window_hours} h at "
              f"{list(base_tuning.starts)}; mean train gap {100 * base_tuning.score:+.2f} % vs default "
              f"{100 * base_tuning.default_score:+.2f} %; {time.perf_counter() - t_tune:.0f} s)", flush=True)

    if args.augment:
        # the agents train on the augmented scenario; the tuning above and the baselines below use the real one
        aug = {"source": full.name, "copies": args.augment}
        env_flags = ["--env-kwargs", *kv, "scenario=augmented", "scenario_options=" + json.dumps(aug)]
        gen = scenario_of(env_id, parse_overrides(env_flags[1:]))
        print(f"augmentation: {gen.splits['generated'][1]} generated hours before the real data (calibrated on "
              f"the train split {a0}..{a0 + an - 1} only); the agents' train split is {gen.splits[TRAIN_SPLIT][1]} h",
              flush=True)

    log = Path(args.log_folder or tempfile.mkdtemp(prefix="agent_quality_"))
    log.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs = []
    for s in seeds:
        r = train_one(args, env_id, env_flags, s, log)
        print(f"seed {s}: gap {100 * r['gap']:+.2f} % ({r['wall_s']:.0f} s, {r['run']})", flush=True)
        runs.append(r)
    if any(r["env_kwargs"] != runs[0]["env_kwargs"] for r in runs):
        raise SystemExit("the seeds ran with different env_kwargs; see their config.yml")

    # baselines on the window the agents were evaluated on (the runs' own env_kwargs; with --augment, the
    # real scenario they were built from, whose test window holds the same data: checked through J_off below)
    real_kwargs = {k: v for k, v in runs[0]["env_kwargs"].items()
                   if not (args.augment and k in ("scenario", "scenario_options"))}
    full = scenario_of(env_id, real_kwargs)
    window, w = full.split(TEST_SPLIT), full.weights
    tuned = TunedOnlineEGLBPolicy(train=full.split(TRAIN_SPLIT))
    perfect = MPCPolicy(horizon=args.mpc_horizon, forecast_model="perfect")
    policies = [OnlineEGLBPolicy(), tuned, perfect]
    # what the agents knew, and their own planner alone with the same forecasts (their action 0)
    options = {**gym.spec(env_id).kwargs, **runs[0]["env_kwargs"]}
    agents_info = agent_information(options)
    own = agent_base(options, full, TEST_SPLIT)        # a forecast correction or a history tail reads them
    if own is not None:
        policies.append(make_policy(own[0], **own[1]))
        policies[-1].name = own[2]                          # an instance attribute: compare needs distinct names
    base = compare(window, policies, w)
    j_off = base[0]["objective"] / (1 + base[0]["gap_to_offline"])
    for r in runs:                                            # the agents' tables used the same optimum
        j_off_agent = r["objective_usd"] / (1 + r["gap"])
        if abs(j_off_agent / j_off - 1) > 1e-6:
            raise SystemExit(f"seed {r['seed']}: its offline optimum {j_off_agent:,.2f} USD differs from this "
                             f"window's {j_off:,.2f} USD: not the same test window")
    ensembles = []
    if args.ensemble > 1:
        # each group of M agents acting as one, on the same test window (evaluate's own code path)
        by_seed = {r["seed"]: r for r in runs}
        for g, group in enumerate(groups):
            out = evaluate_models([Path(by_seed[s]["run"]) / "model.zip" for s in group], split=TEST_SPLIT,
                                  baselines=[], out_dir=log / f"ensemble{g}", names=[f"seed{s}" for s in group],
                                  progress=False, print_table=False, ensemble=True)
            ens = [r for r in json.loads((out / "table.json").read_text()) if r["policy"].startswith("ensemble")]
            if len(ens) != 1 or abs(ens[0]["objective"] / (1 + ens[0]["gap_to_offline"]) / j_off - 1) > 1e-6:
                raise SystemExit(f"ensemble of seeds {group}: no row, or not the same test window ({out})")
            ensembles.append(float(ens[0]["gap_to_offline"]))
            print(f"ensemble of seeds {group}: gap {100 * ensembles[-1]:+.2f} %", flush=True)
    # one calibrated-forecast and one noisy-forecast MPC run per seed slot (one policy per compare call)
    calibrated = [compare(window, [MPCPolicy(horizon=args.mpc_horizon, forecast_model="calibrated", seed=s)], w,
                          offline_objective=j_off)[0] for s in seeds[:args.seeds]]
    noisy = [compare(window, [MPCPolicy(horizon=args.mpc_horizon, noise_std=args.mpc_noise, seed=s)], w,
                     offline_objective=j_off)[0] for s in seeds[:args.seeds]] if args.mpc_noise > 0 else []
    agents = [row(f"{args.algo} (agent)", [100 * r["gap"] for r in runs], seeds, agents_info)]
    if ensembles:
        agents = [row(f"{args.algo} ensemble of {args.ensemble}", [100 * g for g in ensembles], seeds[:args.seeds],
                      agents_info),
                  row(f"{args.algo} (its members)", [100 * r["gap"] for r in runs], seeds, agents_info)]
    H = args.mpc_horizon
    table = [
        *agents,
        *([row(own[2], [100 * base[3]["gap_to_offline"]], None, base[3]["information"])] if own else []),
        row("online-eglb", [100 * base[0]["gap_to_offline"]], None, base[0]["information"]),
        row("online-eglb-tuned", [100 * base[1]["gap_to_offline"]], None, base[1]["information"]),
        row(f"mpc-{H} perfect (oracle)", [100 * base[2]["gap_to_offline"]], None, base[2]["information"]),
        row(f"mpc-{H} calibrated", [100 * r["gap_to_offline"] for r in calibrated], seeds[:args.seeds],
            calibrated[0]["information"]),
        *([row(f"mpc-{H} noise {args.mpc_noise:g}", [100 * r["gap_to_offline"] for r in noisy], seeds[:args.seeds],
               noisy[0]["information"])] if noisy else []),
    ]
    assert tuned.tuning is not None
    if base_tuning is not None and (base_tuning.eta_scale, base_tuning.z_max_scale) != \
            (tuned.tuning.eta_scale, tuned.tuning.z_max_scale):
        raise SystemExit(f"the residual base {base_tuning} differs from online-eglb-tuned's {tuned.tuning}")
    wall = time.perf_counter() - t0
    print(f"\nGap to the offline optimum on the test window ({window.T} h, J_off = {j_off:,.2f} USD), in %:")
    print(f"{'policy':<34} {'information':<42} {'n':>2} {'mean':>7} [95 % CI]        {'IQM':>7} [95 % CI]        "
          f"per seed")
    for r in table:
        print(fmt(r))
    print(f"online-eglb-tuned: eta_scale {tuned.tuning.eta_scale:g}, z_max_scale {tuned.tuning.z_max_scale:g} "
          f"(train windows of {tuned.tuning.window_hours} h at {list(tuned.tuning.starts)}; mean train gap "
          f"{100 * tuned.tuning.score:+.2f} % vs default {100 * tuned.tuning.default_score:+.2f} %)")
    ref_s = float(base[0]["wall_time_s"])
    print(f"wall time {wall:.0f} s (seeds {sum(r['wall_s'] for r in runs):.0f} s); reference on this machine: plain "
          f"online eGLB on the test window {ref_s:.2f} s; run folders under {log}")
    if args.out:
        out = {"protocol": args.protocol, "env_id": env_id, "env_kwargs": runs[0]["env_kwargs"], "algo": args.algo,
               "n_timesteps": args.n_timesteps, "extra_flags": args.extra, "seeds": seeds,
               "test_window": {"start_h": b0, "hours": bn}, "train_split": {"start_h": a0, "hours": an},
               "periodic_eval_split": val, "offline_objective_usd": j_off, "rows": table, "runs": runs,
               "tuning": {"eta_scale": tuned.tuning.eta_scale, "z_max_scale": tuned.tuning.z_max_scale,
                          "window_hours": tuned.tuning.window_hours, "starts": list(tuned.tuning.starts)},
               "augment_copies": args.augment, "ensemble": args.ensemble,
               "ensemble_groups": groups if args.ensemble > 1 else None, "residual_base": {"base": args.residual_base,
                                 **({"eta_scale": base_tuning.eta_scale, "z_max_scale": base_tuning.z_max_scale}
                                    if base_tuning is not None else {})},
               "wall_s": wall, "online_eglb_wall_s": ref_s}
        Path(args.out).write_text(json.dumps(out, indent=2))
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
