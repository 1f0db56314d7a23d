"""Test-month table of every baseline on the ``world`` scenario (the monthly protocol of docs/data.md).

    python benchmarks/world_baselines.py [--data-dir ../shared/traces] [--scenario world|world-partial]
        [--months 2024-07,2024-08] [--days 2] [--policies offline,mpc,...] [--csv FILE] [--json FILE] [--jobs 2]

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
* ``mpc``: calibrated forecasts of the next ``--mpc-horizon`` hours (the environment's default forecasts,
  seed 0: errors as an operator has them, docs/forecasts.md), re-planned every hour: the main MPC row;
* ``mpc-oracle``: the same MPC with perfect forecasts (an oracle);
* ``online-eglb``: no forecast (the current slot and the past);
* ``online-eglb-tuned``: no forecast; step size and bound tuned **once** before the months on a bounded budget:
  5 windows of a mean month (730 h) spread evenly over 2023 (starts at hours 0, 2008, 4015, 6022, 8030), each
  with its offline optimum and the 21-point grid of online eGLB runs (``--days D``: windows of D days); the
  same tuning as ``train.py``'s final table on a world scenario;
* ``min-cost`` / ``min-carbon`` / ``min-water`` / ``nearest`` / ``proportional`` / ``random``: the current
  slot only (equity-oblivious).

**Resume** (``--csv FILE``): each finished (policy, month) is appended to FILE at once; a run given a FILE that
holds rows of the same scenario, month and hours skips those (policy, month) pairs, so a long table can be
split over several runs (e.g. ``--months 2024-07,2024-08`` now, the rest later, one CSV) and an interrupted
run loses at most the pair it was on. The summary covers every row of FILE for the months and policies asked.
``--jobs N`` schedules N months at once, each in its own (forked) process, after the tuning; each process
appends its rows to FILE as they finish.

Cost on a 2-core machine (shared): a month's offline optimum 3 to 5 s, online eGLB about 1 s, the tuning 1.5
to 2.5 min once, the plain cvxpy reference about 15 s a month; MPC (24 h) took 20 s for two days through the
MPC path of this writing (minutes a month), so MPC's two rows (12 month-long runs) dominate: the whole table
(6 months x 11 policies) fits in about 30 minutes once MPC's month takes about 2 minutes. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import equiglb  # noqa: E402
from equiglb.baselines import make_policy, tune_online_eglb  # noqa: E402
from equiglb.baselines.policy import Policy  # noqa: E402
from equiglb.protocol import tuning_hours  # noqa: E402
from equiglb.stats import summarize  # noqa: E402
from equiglb.traces.world import month_splits  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "traces"
POLICIES = ("offline", "mpc", "mpc-oracle", "online-eglb", "online-eglb-tuned", "min-cost", "min-carbon",
            "min-water", "nearest", "proportional", "random")
KNEW = {"offline": "hindsight (oracle)", "mpc": "calibrated forecasts, H h (seed 0)",
        "mpc-oracle": "perfect forecasts, H h (oracle forecasts)",
        "online-eglb": "no forecast", "online-eglb-tuned": "no forecast; tuned on 5 windows of 2023",
        "min-cost": "current slot", "min-carbon": "current slot", "min-water": "current slot",
        "nearest": "current slot", "proportional": "current slot", "random": "nothing (seeded)"}
#: Columns of the per-(policy, month) CSV, units in the names.
FIELDS = ("scenario", "month", "hours_h", "policy", "knew", "objective_usd", "offline_objective_usd",
          "gap_to_offline_pct", "unserved_load", "schedule_s", "reference_s", "time_ratio")
NUMERIC = {"hours_h": int, "objective_usd": float, "offline_objective_usd": float, "gap_to_offline_pct": float,
           "unserved_load": float, "schedule_s": float, "reference_s": float, "time_ratio": float}


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


def read_rows(path: Path | None) -> list[dict[str, Any]]:
    """The rows of a per-(policy, month) CSV written by this script (none if absent)."""
    if path is None or not path.is_file():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise SystemExit(f"--csv {path}: its header {reader.fieldnames} is not this script's {list(FIELDS)}; "
                             f"give another file")
        return [{k: NUMERIC[k](v) if k in NUMERIC else v for k, v in r.items()} for r in reader]


#: the lock of the CSV shared by the ``--jobs`` worker processes (None: one process)
_LOCK: Any = None


def append_row(path: Path | None, row: dict[str, Any]) -> None:
    """Append ``row`` to the CSV at ``path`` (with the header when the file is new; under the workers' lock)."""
    if path is None:
        return
    with _LOCK if _LOCK is not None else contextlib.nullcontext():
        new = not path.is_file()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                w.writeheader()
            w.writerow(row)


def _init_worker(lock: Any) -> None:
    global _LOCK
    _LOCK = lock


@dataclass(frozen=True)
class MonthTask:
    """One month to (finish) scheduling: its window, the policies left, and what a previous run recorded."""

    month: str
    start: int
    hours: int
    todo: tuple[str, ...]
    reference_s: float | None          # recorded plain cvxpy reference, if any
    offline_objective_usd: float | None  # recorded offline optimum, if any


@dataclass(frozen=True)
class Setup:
    """What every month's run reads: the scenario, its train split, the tuning length, the options."""

    scn: equiglb.Scenario
    train: equiglb.Scenario
    tune_hours: int | None
    horizon: int
    csv_path: Path | None


def run_month(setup: Setup, task: MonthTask) -> list[dict[str, Any]]:
    """Schedule the policies left of one month (the offline optimum first), append each row to the CSV as it
    finishes, and return the rows."""
    scn, m = setup.scn, task.month
    win = scn.window(task.start, task.hours, name=f"{scn.name}[{m}]")
    ref_s = task.reference_s
    if ref_s is None:
        ref_s, ref_status = plain_cvxpy_reference(win)
        print(f"{m}: {task.hours} h; plain cvxpy min-cost LP reference {ref_s:.2f} s ({ref_status})", flush=True)
    else:
        print(f"{m}: {task.hours} h; resumed; plain cvxpy reference {ref_s:.2f} s (recorded)", flush=True)
    j_off = task.offline_objective_usd
    rows = []
    for name in task.todo:
        pol = make_baseline(name, setup.train, setup.tune_hours, setup.horizon)
        t1 = time.perf_counter()
        x = pol.schedule(win)
        secs = time.perf_counter() - t1
        rep = equiglb.evaluate(win, x)
        if name == "offline":
            j_off = rep.objective_usd
        assert j_off is not None
        row = {"scenario": scn.name, "month": m, "hours_h": task.hours, "policy": name, "knew": KNEW[name],
               "objective_usd": rep.objective_usd, "offline_objective_usd": j_off,
               "gap_to_offline_pct": 100.0 * (rep.objective_usd / j_off - 1.0), "unserved_load": rep.unserved_load,
               "schedule_s": secs, "reference_s": ref_s, "time_ratio": secs / ref_s}
        append_row(setup.csv_path, row)
        rows.append(row)
        print(f"  {m} {name:18s} J = {rep.objective_usd:16,.1f} USD  unserved {rep.unserved_load:.3g}  "
              f"{secs:8.2f} s", flush=True)
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder holding sustain-cluster/ and servegen/")
    p.add_argument("--scenario", default="world", choices=["world", "world-partial"])
    p.add_argument("--months", default=None, help="comma-separated months of the test split (default: all six)")
    p.add_argument("--days", type=int, default=None, help="keep only the first DAYS days of each month (quick run)")
    p.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, out of {','.join(POLICIES)}")
    p.add_argument("--mpc-horizon", type=int, default=24, help="MPC look-ahead, hours (default 24)")
    p.add_argument("--csv", default=None,
                   help="append each finished (policy, month) here; rows already in it are skipped (resume)")
    p.add_argument("--json", default=None, help="write the per-month rows and the summary here")
    p.add_argument("--jobs", type=int, default=1,
                   help="months scheduled at once, each in its own process (default 1; the tuning is done first)")
    return p


def make_baseline(name: str, train: equiglb.Scenario, hours: int | None, horizon: int) -> Policy:
    """The policy of the table's row ``name``."""
    if name == "online-eglb-tuned":
        return make_policy(name, train=train, window_hours=hours)
    if name == "mpc":
        return make_policy("mpc", horizon=horizon, forecast_model="calibrated", seed=0)
    if name == "mpc-oracle":
        return make_policy("mpc", horizon=horizon, forecast_model="perfect")
    return make_policy(name)


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    KNEW["mpc"] = f"calibrated forecasts, {args.mpc_horizon} h (seed 0)"
    KNEW["mpc-oracle"] = f"perfect forecasts, {args.mpc_horizon} h (oracle forecasts)"
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
    policies = ["offline", *[n for n in policies if n != "offline"]]      # each month's optimum first
    if args.days is not None and not 1 <= args.days <= 28:
        p.error(f"--days={args.days}: expected 1..28")
    if not 1 <= args.mpc_horizon <= 168:
        p.error(f"--mpc-horizon={args.mpc_horizon}: expected 1..168 hours")
    if not 1 <= args.jobs <= 12:
        p.error(f"--jobs={args.jobs}: expected 1..12 processes")
    csv_path = Path(args.csv) if args.csv else None
    rows = read_rows(csv_path)

    t0 = time.perf_counter()
    scn = equiglb.load_scenario(args.scenario, data_dir=args.data_dir)
    load_s = time.perf_counter() - t0
    train = scn.split("train")
    tune_h = 24 * args.days if args.days is not None else tuning_hours(scn)
    print(f"{scn.summary()}\nloaded in {load_s:.1f} s; weights {scn.weights}")
    if rows:
        print(f"--csv {csv_path}: {len(rows)} (policy, month) row(s) already done")
    setup = Setup(scn, train, tune_h, args.mpc_horizon, csv_path)
    tasks = []
    for m in months:
        start, length = test_months[m]
        if args.days is not None:
            length = 24 * args.days
        done = {r["policy"]: r for r in rows if (r["scenario"], r["month"], r["hours_h"]) == (scn.name, m, length)}
        todo = tuple(n for n in policies if n not in done)
        if not todo:
            print(f"{m}: {length} h; every policy already in {csv_path}")
            continue
        ref = next(iter(done.values()))["reference_s"] if done else None
        tasks.append(MonthTask(m, start, length, todo, ref, done["offline"]["objective_usd"] if "offline" in done
                               else None))
    if any("online-eglb-tuned" in t.todo for t in tasks):       # once, before the months (and their processes)
        t1 = time.perf_counter()
        res = tune_online_eglb(train, scn.weights, window_hours=tune_h)
        print(f"online-eglb-tuned: tuned in {time.perf_counter() - t1:.1f} s on windows of {res.window_hours} h "
              f"of 2023 starting at hours {list(res.starts)}: eta_scale {res.eta_scale}, z_max_scale "
              f"{res.z_max_scale} (mean gap {100 * res.score:.2f} %, defaults {100 * res.default_score:.2f} %)",
              flush=True)
    if args.jobs == 1 or len(tasks) <= 1:
        for t in tasks:
            rows.extend(run_month(setup, t))
    else:       # forked workers inherit the scenario and the tuning; each appends its rows under one lock
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(min(args.jobs, len(tasks)), initializer=_init_worker, initargs=(ctx.Lock(),)) as pool:
            for out in pool.starmap(run_month, [(setup, t) for t in tasks]):
                rows.extend(out)
    lengths = {m: 24 * args.days if args.days is not None else test_months[m][1] for m in months}
    table = [r for r in rows if r["scenario"] == scn.name and r["month"] in lengths
             and r["hours_h"] == lengths[r["month"]] and r["policy"] in policies]
    print(f"\n{scn.name}, test months {','.join(months)}" + (f" (first {args.days} days each)" if args.days else ""))
    print(f"{'policy':18s} {'knew':42s} {'gap % mean [95% CI over months]':>34s} {'s/month':>9s} "
          f"{'x plain cvxpy':>13s}")
    summary = []
    for name in policies:
        sel = [r for r in table if r["policy"] == name]
        s = summarize([r["gap_to_offline_pct"] for r in sel])
        secs = float(np.mean([r["schedule_s"] for r in sel]))
        ratio = float(np.mean([r["time_ratio"] for r in sel]))
        ci = f"{s['mean']:9.2f} [{s['mean_ci_low']:8.2f}, {s['mean_ci_high']:8.2f}]"
        print(f"{name:18s} {KNEW[name]:42s} {ci:>34s} {secs:9.2f} {ratio:13.2f}")
        summary.append({"policy": name, "knew": KNEW[name], "months": len(sel), **{f"gap_pct_{k}": v for k, v in
                                                                                    s.items() if k != "n"},
                        "schedule_s_mean": secs, "time_ratio_mean": ratio})
    if args.json:
        Path(args.json).write_text(json.dumps({"scenario": scn.name, "days": args.days, "rows": table,
                                               "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
