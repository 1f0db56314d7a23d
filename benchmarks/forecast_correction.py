"""Does a learned forecast correction beat the planner on the raw forecasts? MPC on the calibrated forecasts
corrected by their observed errors (:mod:`equiglb.forecast_correction`, fit on the training split only)
against the same MPC on the same raw forecasts.

    python benchmarks/forecast_correction.py --stage val  [--protocol P] [--seeds 0,1,2]
    python benchmarks/forecast_correction.py --stage test [--protocol P] [--seeds 40,41,42,43,44]

with P one of ``synthetic``, ``eglb-2022``, ``eglb-2022-partial``, ``world``, ``world-partial`` (as in
``benchmarks/policy_search.py``; the eGLB-2022 protocols read ``--data-dir``, the eGLB-2022 folder, the world
ones the folder holding ``sustain-cluster/`` and ``servegen/``).

* ``--stage val``: the correction is fit on ``fit`` and scored on ``val`` of the scenario ``holdout`` (the
  protocol's train split cut in two, ``val`` as long as the test window; the test window is not in it); world
  protocols: fit on ``train`` (2023), scored on the scenario's ``val`` months (2024-01..06).
* ``--stage test``: fit on the train split, scored once on the test window (world: the six test months).

The correction is least squares and has no randomness of its own; the seed draws the calibrated forecast errors
(``forecast_seed``) of the training split it is fit on. ``--scored-forecasts common`` (the default) scores every
seed's correction on the forecasts every other protocol's table uses (seed 0), so the planner's row is the one
of those tables; ``own`` scores each seed on its own draw of the scored window's forecasts too (the planner
then has a row per seed, and the rows are compared paired by seed). Both rows of a seed see the same raw
forecasts. Rows per seed: the gap to the
window's offline optimum (an oracle, %) of MPC with ``--mpc-horizon`` (24 h) on the raw calibrated forecasts
(the planner) and on the corrected ones, and their difference; then the means with 95 % bootstrap CIs
(``equiglb.stats.summarize``), the share of the planner's gap the correction closes, and online eGLB (no
forecast). Prints whether the corrected planner's CI upper end is below the planner's mean, whether the paired
difference's CI lies below 0, and whether the correction closes a third of the planner's gap. Same-run reference
for the times: a CartPole-v1 loop and the planner's own time. ``--json`` writes every row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from policy_search import cartpole_steps_per_s, protocol_options, scenario_of, stage_windows  # noqa: E402

from equiglb.baselines import make_policy  # noqa: E402
from equiglb.baselines.mpc import MPCPolicy  # noqa: E402
from equiglb.control import MAX_HORIZON_H  # noqa: E402
from equiglb.evaluation import evaluate_policy  # noqa: E402
from equiglb.forecast import Forecaster  # noqa: E402
from equiglb.forecast_correction import CorrectedForecaster  # noqa: E402
from equiglb.stats import summarize  # noqa: E402


def parser() -> argparse.ArgumentParser:
    """The command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    protocol_options(p, protocol="eglb-2022", horizon=24,
                     horizon_help="the planner's look-ahead and the correction's longest lead (hours; default 24)")
    p.add_argument("--seeds", default=None, help="comma-separated forecast seeds (val: 0,1,2; test: 40..44)")
    p.add_argument("--scored-forecasts", choices=["common", "own"], default="common",
                   help="common: score on the forecasts of seed 0 (every protocol's table); own: on each seed's")
    p.add_argument("--json", default=None, help="write the rows here")
    return p


def windows(args: argparse.Namespace) -> tuple[dict, str, str]:
    """The scenario options of the run (gymnasium.make's), the split the correction is fit on and the one
    scored (``policy_search.stage_windows``); a bad option is a SystemExit naming it."""
    if not 1 <= args.mpc_horizon <= MAX_HORIZON_H:
        raise SystemExit(f"--mpc-horizon={args.mpc_horizon}: expected 1 .. {MAX_HORIZON_H} hours")
    return stage_windows(args.protocol, args.stage, args.data_dir)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    text = args.seeds or ("0,1,2" if args.stage == "val" else "40,41,42,43,44")
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds={text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds={text!r}: expected distinct seeds >= 0")
    kw, fit_split, eval_split = windows(args)
    scenario = scenario_of(kw)
    H = args.mpc_horizon
    ref = cartpole_steps_per_s()
    print(f"=== forecast_correction: stage {args.stage}, protocol {args.protocol} (scenario {kw['scenario']}): "
          f"fit on {fit_split} {scenario.splits[fit_split]}, scored on {eval_split} {scenario.splits[eval_split]} "
          f"(first slot, slots); MPC {H} h; forecast seeds {seeds}; CartPole-v1 reference {ref:,.0f} steps/s ===",
          flush=True)
    rows = []
    common = None
    for seed in seeds:
        t0 = time.perf_counter()
        fitted = CorrectedForecaster.fit(Forecaster(scenario, "calibrated", seed), fit_split, H)
        fit_s = time.perf_counter() - t0
        scored_seed = 0 if args.scored_forecasts == "common" else seed
        corrected = CorrectedForecaster(Forecaster(scenario, "calibrated", scored_seed), fitted.correction, fit_split)
        row: dict = {"seed": seed, "scored_forecast_seed": scored_seed, "fit_s": fit_s,
                     "beta": fitted.correction.beta.round(4).tolist()}
        for label, model in (("planner", "calibrated"), ("corrected", corrected)):
            if label == "planner" and common is not None and scored_seed == 0:
                row.update(common)            # the common forecasts' planner: run once
                continue
            t0 = time.perf_counter()
            table = evaluate_policy(MPCPolicy(horizon=H, forecast_model=model, seed=scored_seed), split=eval_split,
                                    name=label, baselines=(), env_kwargs=kw)
            row[f"{label}_gap_pct"] = 100 * float(table["gap_to_offline"].iloc[-1])
            row[f"{label}_information"] = str(table["information"].iloc[-1])
            row[f"{label}_s"] = time.perf_counter() - t0
            if label == "planner" and scored_seed == 0:
                common = {k: row[k] for k in ("planner_gap_pct", "planner_information", "planner_s")}
        row["change_pts"] = row["corrected_gap_pct"] - row["planner_gap_pct"]
        rows.append(row)
        print(f"seed {seed} (scored on forecast seed {scored_seed}): planner {row['planner_gap_pct']:+.3f} %, "
              f"corrected {row['corrected_gap_pct']:+.3f} % (change {row['change_pts']:+.3f} points); fit "
              f"{fit_s:.1f} s, runs {row['planner_s']:.1f} / {row['corrected_s']:.1f} s (= "
              f"{row['corrected_s'] * ref:,.0f} CartPole steps); lead-1 beta by signal "
              f"{np.round(fitted.correction.beta[0], 3).tolist()}", flush=True)
    eglb = evaluate_policy(make_policy("online-eglb"), split=eval_split, name="online-eglb", baselines=(),
                           env_kwargs=kw)
    eglb_gap = 100 * float(eglb["gap_to_offline"].iloc[-1])
    s = {k: summarize([r[k] for r in rows]) for k in ("planner_gap_pct", "corrected_gap_pct", "change_pts")}
    p, c, d = s["planner_gap_pct"], s["corrected_gap_pct"], s["change_pts"]
    print(f"\nscored on {eval_split} (gap to the offline optimum, an oracle; mean [95 % CI] over {len(rows)} forecast "
          f"seeds), with what each policy knew:")
    print(f"  mpc-{H} on corrected forecasts   {rows[0]['corrected_information']:<62} "
          f"{c['mean']:+.3f} % [{c['mean_ci_low']:+.3f}, {c['mean_ci_high']:+.3f}]")
    print(f"  mpc-{H} (the planner)            {rows[0]['planner_information']:<62} "
          f"{p['mean']:+.3f} % [{p['mean_ci_low']:+.3f}, {p['mean_ci_high']:+.3f}]")
    print(f"  online eGLB                      {'none':<62} {eglb_gap:+.3f} %")
    print(f"  change (corrected - planner), paired by seed: {d['mean']:+.3f} points [{d['mean_ci_low']:+.3f}, "
          f"{d['mean_ci_high']:+.3f}]; closes {-d['mean'] / p['mean']:.0%} of the planner's gap")
    print(f"target (corrected CI upper end below the planner's mean): "
          f"{'MET' if c['mean_ci_high'] < p['mean'] else 'MISSED'}; paired CI below 0: "
          f"{'yes' if d['mean_ci_high'] < 0 else 'no'}; a third of the planner's gap: "
          f"{'MET' if -d['mean'] >= p['mean'] / 3 else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "stage": args.stage, "protocol": args.protocol, "scored_forecasts": args.scored_forecasts,
            "mpc_horizon_h": H, "fit_split": fit_split,
            "eval_split": eval_split, "cartpole_steps_per_s": ref, "rows": rows, "online_eglb_gap_pct": eglb_gap,
            "summaries": {k: {"mean": v["mean"], "ci_low": v["mean_ci_low"], "ci_high": v["mean_ci_high"]}
                          for k, v in s.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
