"""Does a history tail beat the planner? MPC whose program carries, after its 24-hour window, the last days of
observed history standing for the episode's hours left (``MPCPolicy(tail_days=K, tail_weight=w, history=...)``,
:class:`equiglb.control.mpc.HistoryTail`), against the same MPC on the same forecasts without it.

    python benchmarks/history_tail.py --stage val  [--protocol P] [--days 3,5,10,20] [--weights 0.25,0.5,0.75,1]
                                                   [--blocks 1]
    python benchmarks/history_tail.py --stage test [--protocol P] --days K --weight W [--blocks B]

with P one of ``synthetic``, ``eglb-2022``, ``eglb-2022-partial``, ``world``, ``world-partial`` (as in
``benchmarks/policy_search.py``; ``--data-dir`` as there).

* ``--stage val``: every (days, weight) of the grid on the validation window: ``val`` of the scenario ``holdout``
  (the protocol's train split cut in two, ``val`` as long as the test window; the test window is not in it);
  world protocols: the scenario's ``val`` months. The history is the scenario the window is cut from (for
  ``holdout`` the train split alone). The configuration with the lowest mean change is the one to test.
* ``--blocks``: the tail's block lengths in hours (``tail_block_hours``: each tail slot groups that many
  consecutive hours; 1, the default, a slot per hour); on val a grid dimension like the others.
* ``--stage test``: one configuration (``--days``, ``--weight``, ``--blocks``: the one validation chose) on the
  test window (world: each test month), the history the whole scenario.
* ``--warm-start``: each configuration's program starts from the previous slot's basis, the window's slots moved
  one ahead and the tail's kept (``MPCPolicy(warm_start=True)``); the same optimum each slot (another optimal
  vertex where there are several), in a fraction of the time on the longer tails. The planner runs as without it.
* ``--forecast-correction``: the learned part. Each draw also fits the forecast correction
  (:mod:`equiglb.forecast_correction`: least squares of each lead's error on the error observed at the issue slot)
  on that draw's forecasts of the training split (val: ``fit``; test: ``train``; never the scored window), and
  scores the planner and every configuration again on the corrected forecasts (rows ``... + correction``). The
  learned part's value on top of the tail planner is the change of ``tail + correction`` against the tail on the
  raw forecasts, paired by draw: the same tail, the same draw, what the correction learned alone differs.
* ``--episode-hours L``: the scored episodes are the windows of L hours that tile the window (each month), the
  last flush with its end, each with its own offline optimum; the gap is their mean. The settings were chosen
  on whole windows: this shows what the tail does on shorter episodes.

The tail reads only hours before the slot being routed: at slot t of the window, the hours the history holds
last before t (the train split's last days at the window's start, then the window's own past). The tail has
two settings and no randomness of its own; what varies is the draw of the calibrated forecast errors. Each
draw (``--draws``; forecast seeds 0.. on val, 100.. on test, never the same) is scored for the planner (MPC
``--mpc-horizon`` on those forecasts) and every configuration on the same forecasts, and the configuration's
change against the planner is paired by draw. Printed: per configuration the mean gap to the window's offline
optimum (an oracle; world, or with --episode-hours: the mean over the episodes), the mean change against the
planner with its 95 % bootstrap CI over draws (``equiglb.stats.summarize``), the share of the planner's mean gap
it closes, and online eGLB (no forecast); on test, whether the change's CI lies below 0 and whether it closes a
third of the planner's gap.
Same-run references for the times: CartPole-v1 steps per second, and the planner's own time per slot.
``--json`` writes every run.
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

from policy_search import cartpole_steps_per_s, protocol_options, scenario_of, stage_windows, tiling  # noqa: E402

from equiglb.baselines import OfflinePolicy, make_policy  # noqa: E402
from equiglb.baselines.mpc import MPCPolicy  # noqa: E402
from equiglb.baselines.policy import Policy  # noqa: E402
from equiglb.control import MAX_HORIZON_H, TAIL_BLOCK_HOURS  # noqa: E402
from equiglb.control.mpc import MAX_TAIL_DAYS, HistoryTail  # noqa: E402
from equiglb.forecast import Forecaster  # noqa: E402
from equiglb.forecast_correction import CorrectedForecaster  # noqa: E402
from equiglb.ledger import evaluate  # noqa: E402
from equiglb.protocol import evaluation_months  # noqa: E402
from equiglb.scenario import Scenario  # noqa: E402
from equiglb.stats import summarize  # noqa: E402
from equiglb.validate import OptionError  # noqa: E402

#: the key of the planner's row on the corrected forecasts, and the suffix of a tail's (``--forecast-correction``)
CORRECTED = "+ correction"


def parser() -> argparse.ArgumentParser:
    """The command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    protocol_options(p, horizon=24, horizon_help="the planner's look-ahead (hours; default 24, world too)")
    p.add_argument("--days", default=None, help="comma-separated tail lengths in days (val: 3,5,10,20; test: one)")
    p.add_argument("--weights", "--weight", dest="weights", default=None,
                   help="comma-separated tail weights (val: 0.25,0.5,0.75,1; test: one)")
    p.add_argument("--blocks", default="1", help="comma-separated tail block lengths in hours, each one of "
                   f"{', '.join(map(str, TAIL_BLOCK_HOURS))} (val: 1; test: one)")
    p.add_argument("--episode-hours", type=int, default=None,
                   help="score episodes of this many hours that tile each window (the last flush with its end; "
                        "each with its own offline optimum) instead of the whole window: the tail on shorter "
                        "episodes than it was chosen on")
    p.add_argument("--warm-start", action="store_true",
                   help="start each tail program from the previous slot's basis (window moved, tail kept)")
    p.add_argument("--forecast-correction", action="store_true",
                   help="also score the planner and each configuration on forecasts corrected by a fit on the "
                        "training split (the learned part)")
    p.add_argument("--draws", type=int, default=None, help="draws of the forecast errors (val: 10, test: 50)")
    p.add_argument("--json", default=None, help="write every run here")
    return p


def numbers(text: str, name: str, kind: type, lo: float, hi: float) -> list:
    """The comma-separated values of option ``name``, each of ``kind`` in [lo, hi], distinct; else SystemExit."""
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"--{name}={text!r}: expected comma-separated {kind.__name__} values") from None
    if not values or len(set(values)) != len(values) or any(not lo <= v <= hi for v in values):
        raise SystemExit(f"--{name}={text!r}: expected distinct values in [{lo:g}, {hi:g}]")
    return values


def episodes(scenario: Scenario, split: str, hours: int | None = None) -> list[Scenario]:
    """The scored windows: each month of ``split`` under the monthly protocol, else the split itself; with
    ``hours``, the windows of that many hours that tile each of them (the last flush with its end)."""
    months = evaluation_months(scenario, split)
    whole = [scenario.split(m) for m in months] if months else [scenario.split(split)]
    if hours is None:
        return whole
    return [w.window(s, hours) for w in whole for s in tiling(0, w.T, hours)]


def gap_pct(policy: Policy, windows: list[Scenario], offline_j: list[float]) -> tuple[float, float]:
    """``policy``'s mean gap to the offline optimum over ``windows`` (%), and its time per slot (ms)."""
    gaps, slots, t0 = [], 0, time.perf_counter()
    for w, j_off in zip(windows, offline_j):
        gaps.append(100 * (evaluate(w, policy.schedule(w), w.weights).objective_usd / j_off - 1))
        slots += w.T
    return float(np.mean(gaps)), 1e3 * (time.perf_counter() - t0) / slots


def scored(policy: MPCPolicy, windows: list[Scenario], offline_j: list[float], planner_gap: float) -> dict:
    """A row of a draw: ``policy``'s gap (:func:`gap_pct`), its change against the planner's ``planner_gap`` on the
    same draw, its time per slot, what it knew and its solvers."""
    g, ms = gap_pct(policy, windows, offline_j)
    return {"gap_pct": g, "change_pts": g - planner_gap, "ms_per_slot": ms, "information": policy.information,
            "solvers": policy.solvers_used}


def learned_part(runs: list[dict], planner_gap: float, val: bool) -> None:
    """Print, for the planner and each tail configuration, what the forecast correction (the learned part) changes
    against the same policy on the raw forecasts, paired by draw, and on test whether its CI lies below 0."""
    print("the learned part (the forecast correction) against the same policy on the raw forecasts, paired by draw "
          "(points; the share is of that policy's own mean gap; together: of the planner's):")
    for key in runs[0]["configs"]:
        if not key.endswith(CORRECTED):
            continue
        raw = key[: -len(CORRECTED) - 1] if key != CORRECTED else None
        raw_gap = [r["planner_gap_pct"] if raw is None else r["configs"][raw]["gap_pct"] for r in runs]
        d = summarize([r["configs"][key]["gap_pct"] - g for r, g in zip(runs, raw_gap)])
        both = summarize([r["configs"][key]["change_pts"] for r in runs])
        verdict = "" if val else (f"; target (CI below 0: learning beats its planner with confidence): "
                                  f"{'MET' if d['mean_ci_high'] < 0 else 'MISSED'}")
        print(f"  {'the planner' if raw is None else 'tail ' + raw:<22} {d['mean']:+.3f} [{d['mean_ci_low']:+.3f}, "
              f"{d['mean_ci_high']:+.3f}], closes {-d['mean'] / np.mean(raw_gap):.0%} of its gap; together "
              f"{both['mean']:+.3f} points, {-both['mean'] / planner_gap:.0%} of the planner's{verdict}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 1 <= args.mpc_horizon <= MAX_HORIZON_H:
        raise SystemExit(f"--mpc-horizon={args.mpc_horizon}: expected 1 .. {MAX_HORIZON_H} hours")
    val = args.stage == "val"
    one = "--stage test takes one --days, one --weight and one --blocks (the configuration chosen at --stage val), got "
    if not val and (args.days is None or args.weights is None):
        raise SystemExit(f"{one}--days={args.days!r} --weight={args.weights!r}")
    days = numbers(args.days or "3,5,10,20", "days", int, 1, MAX_TAIL_DAYS)
    weights = numbers(args.weights or "0.25,0.5,0.75,1", "weights", float, 0.0, 100.0)
    blocks = numbers(args.blocks, "blocks", int, 1, 24)
    if any(b not in TAIL_BLOCK_HOURS for b in blocks):
        raise SystemExit(f"--blocks={args.blocks!r}: expected hours in {TAIL_BLOCK_HOURS} (divisors of a day)")
    if not val and (len(days) > 1 or len(weights) > 1 or len(blocks) > 1):
        raise SystemExit(f"{one}--days={args.days!r} --weight={args.weights!r} --blocks={args.blocks!r}")
    draws = args.draws if args.draws is not None else (10 if val else 50)
    if draws < 2:
        raise SystemExit(f"--draws={draws}: expected at least 2 (the CI is over draws)")
    kw, fit_split, split = stage_windows(args.protocol, args.stage, args.data_dir)
    scenario = scenario_of(kw)
    shortest = min(w.T for w in episodes(scenario, split))
    if args.episode_hours is not None and not 24 <= args.episode_hours <= shortest:
        raise SystemExit(f"--episode-hours={args.episode_hours}: expected 24 .. {shortest} (the scored window's "
                         f"hours)")
    windows = episodes(scenario, split, args.episode_hours)
    history = scenario                                # the whole scenario the window is cut from
    H = args.mpc_horizon
    for w in windows:                                 # every configuration's history must hold its days: check first
        for d in days:
            try:
                HistoryTail(history, d).bind(w, H)
            except OptionError as exc:
                raise SystemExit(f"--days={d} on {split}: {exc}") from None
    seeds = list(range(0, draws)) if val else list(range(100, 100 + draws))
    ref = cartpole_steps_per_s()
    print(f"=== history_tail: stage {args.stage}, protocol {args.protocol} (scenario {kw['scenario']}, window {split}, "
          f"{len(windows)} episode(s), {sum(w.T for w in windows)} h); MPC {H} h, calibrated forecasts, draws "
          f"{seeds[0]}..{seeds[-1]}; tail days {days}, weights {weights}, blocks {blocks} h"
          f"{', warm-started' if args.warm_start else ''}; history {history.name!r} "
          f"{history.timestamps[0]} .. {history.timestamps[-1]}; CartPole-v1 {ref:,.0f} steps/s ===", flush=True)
    offline_j = [evaluate(w, OfflinePolicy().schedule(w), w.weights).objective_usd for w in windows]
    configs = [(d, wt, b) for d in days for wt in weights for b in blocks]
    runs: list[dict] = []
    for seed in seeds:
        t0 = time.perf_counter()
        planner = MPCPolicy(H, forecast_model="calibrated", seed=seed)
        base, base_ms = gap_pct(planner, windows, offline_j)
        run = {"seed": seed, "planner_gap_pct": base, "planner_ms_per_slot": base_ms,
               "planner_information": planner.information, "configs": {}}
        models: list[tuple[str, str | Forecaster]] = [("", "calibrated")]
        if args.forecast_correction:             # fit on this draw's training split, never the scored window
            corrected = CorrectedForecaster.fit(Forecaster(scenario, "calibrated", seed), fit_split, H)
            models.append((" " + CORRECTED, corrected))
            run["configs"][CORRECTED] = scored(MPCPolicy(H, forecast_model=corrected, seed=seed), windows, offline_j,
                                               base)
        for d, wt, b in configs:
            for suffix, model in models:
                pol = MPCPolicy(H, forecast_model=model, seed=seed, tail_days=d, tail_weight=wt, history=history,
                                tail_block_hours=b, warm_start=args.warm_start)
                key = f"{d}:{wt:g}" + (f":{b}h" if b > 1 else "") + suffix
                run["configs"][key] = scored(pol, windows, offline_j, base)
        runs.append(run)
        best = min(((k, c) for k, c in run["configs"].items() if CORRECTED not in k),
                   key=lambda kv: kv[1]["change_pts"])
        print(f"draw {seed}: planner {base:+.3f} % ({base_ms:.2f} ms/slot); best of this draw {best[0]} "
              f"{best[1]['change_pts']:+.3f} points; {time.perf_counter() - t0:.0f} s", flush=True)
    eglb_gap, _ = gap_pct(make_policy("online-eglb"), windows, offline_j)
    plan = summarize([r["planner_gap_pct"] for r in runs])
    print(f"\nscored on {split} (gap to the offline optimum, an oracle, %; mean [95 % CI] over {draws} draws of the "
          f"forecast errors; the change is paired by draw):")
    print(f"  {'policy':<22} {'information':<72} {'gap %':>22} {'change vs planner, points':>30} {'closes':>7} "
          f"{'ms/slot':>8}")
    print(f"  {'mpc-' + str(H) + ' (the planner)':<22} {runs[0]['planner_information']:<72} "
          f"{plan['mean']:+.3f} [{plan['mean_ci_low']:+.3f}, {plan['mean_ci_high']:+.3f}] {'':>30} {'':>7} "
          f"{np.mean([r['planner_ms_per_slot'] for r in runs]):8.2f}")
    rows = []
    for key in runs[0]["configs"]:
        g = summarize([r["configs"][key]["gap_pct"] for r in runs])
        c = summarize([r["configs"][key]["change_pts"] for r in runs])
        ms = float(np.mean([r["configs"][key]["ms_per_slot"] for r in runs]))
        if CORRECTED not in key:                          # the tail's own choice is made on the raw forecasts
            rows.append((c["mean"], key, g, c, ms))
        name = f"mpc-{H} {key}" if key == CORRECTED else f"tail {key}"
        print(f"  {name:<22} {runs[0]['configs'][key]['information']:<72} "
              f"{g['mean']:+.3f} [{g['mean_ci_low']:+.3f}, {g['mean_ci_high']:+.3f}] "
              f"{c['mean']:+.3f} [{c['mean_ci_low']:+.3f}, {c['mean_ci_high']:+.3f}]{'':>9} "
              f"{-c['mean'] / plan['mean']:7.0%} {ms:8.2f}")
    print(f"  {'online eGLB':<22} {'none':<72} {eglb_gap:+.3f}")
    _, key, g, c, _ = min(rows)
    closes = -c["mean"] / plan["mean"]
    if val:
        print(f"validation chooses days:weight[:blocks] = {key} (the lowest mean change, {c['mean']:+.3f} points)")
    else:
        print(f"target (the change's CI below 0: the tail beats its planner with confidence): "
              f"{'MET' if c['mean_ci_high'] < 0 else 'MISSED'} ({c['mean_ci_high']:+.3f}); goal (closes a third of "
              f"the planner's gap): {'MET' if closes >= 1 / 3 else 'MISSED'} ({closes:.0%})")
    if args.forecast_correction:
        learned_part(runs, plan["mean"], val)
    if args.json:
        Path(args.json).write_text(json.dumps({"protocol": args.protocol, "stage": args.stage, "split": split,
                                               "online_eglb_gap_pct": eglb_gap, "cartpole_steps_per_s": ref,
                                               "warm_start": args.warm_start,
                                               "forecast_correction_fit_split":
                                                   fit_split if args.forecast_correction else None,
                                               "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
