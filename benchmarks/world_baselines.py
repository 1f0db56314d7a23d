"""Test-month table of every baseline on the ``world`` scenario (the monthly protocol of docs/data.md).

    python benchmarks/world_baselines.py [--data-dir ../shared/traces] [--scenario world-partial]
        [--months 2024-07,2024-08] [--days 2] [--policies offline,mpc,...] [--csv FILE] [--json FILE]

For each calendar month of the test split (2024-07 .. 2024-12; ``--months`` picks some, ``--days D`` keeps
only the first D days of each, for a quick run), every baseline schedules the month and the ledger evaluates
J(x) (USD) with the scenario's weights (μ_s is set for a month-long window: gaps of ``--days`` runs are a
smoke test, not the protocol's numbers); the gap is J / J_offline - 1 (%) against the month's offline optimum.
Per policy: the gap of every month, the mean gap with its 95 % bootstrap CI over months
(``equiglb.stats.summarize``), and the mean schedule time per month (s) beside the **same-run reference**: a
plain cvxpy LP of the same month (min energy cost, demand and capacity constraints, the scenario's mask and
hosting; built and solved once per month by the default solver), as a ratio.

What each policy knew (the table says it too):

* ``offline``: the whole month in hindsight (an oracle: the lower bound);
* ``mpc``: perfect forecasts of the next ``--mpc-horizon`` hours (oracle forecasts), re-planned every hour;
* ``online-eglb``: no forecast (the current slot and the past);
* ``online-eglb-tuned``: no forecast; step size and bound tuned on month-long windows of the train split (2023);
* ``min-cost`` / ``min-carbon`` / ``min-water`` / ``nearest`` / ``proportional`` / ``random``: the current
  slot only (equity-oblivious).

A month's offline optimum through today's cvxpy path takes tens to hundreds of seconds at this size (15 x 15
x 3 x ~730 routing variables): the full table is slow until the direct solver lands; ``--days 2`` runs in
about a minute. Not a test.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import equiglb  # noqa: E402
from equiglb.baselines import make_policy  # noqa: E402
from equiglb.stats import summarize  # noqa: E402
from equiglb.traces.world import month_splits  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "traces"
POLICIES = ("offline", "mpc", "online-eglb", "online-eglb-tuned", "min-cost", "min-carbon", "min-water", "nearest",
            "proportional", "random")
KNEW = {"offline": "hindsight (oracle)", "mpc": "perfect forecasts, H h (oracle forecasts)",
        "online-eglb": "no forecast", "online-eglb-tuned": "no forecast; tuned on 2023 (time: 1st month)",
        "min-cost": "current slot", "min-carbon": "current slot", "min-water": "current slot",
        "nearest": "current slot", "proportional": "current slot", "random": "nothing (seeded)"}


def plain_cvxpy_reference(win: equiglb.Scenario) -> tuple[float, str]:
    """Seconds to build and solve, with cvxpy's default solver, the plain min-cost LP of ``win`` (routing
    variables of the allowed (i, j, k) per slot, demand equalities, capacity inequalities); and its status."""
    import cvxpy as cp

    t0 = time.perf_counter()
    T, N, J = win.T, win.N, win.J
    idx = np.argwhere(win.allowed)                       # (P, 3): i, j, k
    P = idx.shape[0]
    x = cp.Variable((T, P), nonneg=True)
    e = win.energy_per_unit[idx[:, 2]] * win.pue[idx[:, 0]]
    cost = win.price[:, idx[:, 0]] * e[None, :]          # USD per load unit
    A_dem = np.zeros((P, J))
    A_dem[np.arange(P), idx[:, 1]] = 1.0
    A_cap = np.zeros((P, N))
    A_cap[np.arange(P), idx[:, 0]] = win.energy_per_unit[idx[:, 2]]
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(cost, x))),
                      [x @ A_dem == win.demand, x @ A_cap <= np.broadcast_to(win.capacity, (T, N))])
    prob.solve()
    return time.perf_counter() - t0, str(prob.status)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder holding sustain-cluster/ and servegen/")
    p.add_argument("--scenario", default="world-partial", choices=["world", "world-partial"])
    p.add_argument("--months", default=None, help="comma-separated months of the test split (default: all six)")
    p.add_argument("--days", type=int, default=None, help="keep only the first DAYS days of each month (quick run)")
    p.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, out of {','.join(POLICIES)}")
    p.add_argument("--mpc-horizon", type=int, default=24, help="MPC look-ahead, hours (default 24)")
    p.add_argument("--csv", default=None, help="write the per-month rows here")
    p.add_argument("--json", default=None, help="write the per-month rows and the summary here")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    KNEW["mpc"] = f"perfect forecasts, {args.mpc_horizon} h (oracle forecasts)"
    test_months = month_splits("test")
    months = list(test_months) if args.months is None else [m.strip() for m in args.months.split(",") if m.strip()]
    for m in months:
        if m not in test_months:
            p.error(f"--months: {m!r} is not a month of the test split; its months are {list(test_months)}")
    policies = [s.strip() for s in args.policies.split(",") if s.strip()]
    for name in policies:
        if name not in POLICIES:
            p.error(f"--policies: unknown policy {name!r}; choose from {','.join(POLICIES)}")
    if "offline" not in policies:
        p.error("--policies must include offline (the gap is measured against it)")
    if args.days is not None and not 1 <= args.days <= 28:
        p.error(f"--days={args.days}: expected 1..28")
    if not 1 <= args.mpc_horizon <= 168:
        p.error(f"--mpc-horizon={args.mpc_horizon}: expected 1..168 hours")

    t0 = time.perf_counter()
    scn = equiglb.load_scenario(args.scenario, data_dir=args.data_dir)
    load_s = time.perf_counter() - t0
    train = scn.split("train")
    print(f"{scn.summary()}\nloaded in {load_s:.1f} s; weights {scn.weights}")
    rows: list[dict[str, Any]] = []
    tuned = None
    for m in months:
        start, length = test_months[m]
        if args.days is not None:
            length = 24 * args.days
        win = scn.window(start, length, name=f"{scn.name}[{m}]")
        ref_s, ref_status = plain_cvxpy_reference(win)
        print(f"\n{m}: {length} h; plain cvxpy min-cost LP reference {ref_s:.2f} s ({ref_status})")
        results: dict[str, tuple[float, float]] = {}
        for name in policies:
            if name == "online-eglb-tuned":
                tuned = tuned or make_policy(name, train=train)
                pol = tuned
            elif name == "mpc":
                pol = make_policy(name, horizon=args.mpc_horizon)
            else:
                pol = make_policy(name)
            t1 = time.perf_counter()
            x = pol.schedule(win)
            secs = time.perf_counter() - t1
            rep = equiglb.evaluate(win, x)
            results[name] = (rep.objective_usd, secs)
            print(f"  {name:18s} J = {rep.objective_usd:16,.1f} USD  unserved {rep.unserved_load:.3g}  {secs:8.2f} s")
        j_off = results["offline"][0]
        for name, (j, secs) in results.items():
            rows.append({"month": m, "hours": length, "policy": name, "knew": KNEW[name], "objective_usd": j,
                         "gap_pct": 100.0 * (j / j_off - 1.0), "schedule_s": secs, "reference_s": ref_s,
                         "time_ratio": secs / ref_s})
    print(f"\n{scn.name}, test months {','.join(months)}" + (f" (first {args.days} days each)" if args.days else ""))
    print(f"{'policy':18s} {'knew':40s} {'gap % mean [95% CI over months]':>34s} {'s/month':>9s} "
          f"{'x plain cvxpy':>13s}")
    summary = []
    for name in policies:
        sel = [r for r in rows if r["policy"] == name]
        s = summarize([r["gap_pct"] for r in sel])
        secs = float(np.mean([r["schedule_s"] for r in sel]))
        ratio = float(np.mean([r["time_ratio"] for r in sel]))
        ci = f"{s['mean']:9.2f} [{s['mean_ci_low']:8.2f}, {s['mean_ci_high']:8.2f}]"
        print(f"{name:18s} {KNEW[name]:40s} {ci:>34s} {secs:9.2f} {ratio:13.2f}")
        summary.append({"policy": name, "knew": KNEW[name], "months": len(sel), **{f"gap_pct_{k}": v for k, v in
                                                                                    s.items() if k != "n"},
                        "schedule_s_mean": secs, "time_ratio_mean": ratio})
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"scenario": scn.name, "days": args.days, "rows": rows,
                                               "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
