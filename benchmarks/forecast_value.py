"""The value of information: MPC with perfect, calibrated and persistence forecasts, beside online eGLB.

    python benchmarks/forecast_value.py [--data-dir ../shared/traces/eglb-2022] [--horizons 1 6 24]
        [--seeds 0 1 2] [--out forecast_value.json]
    python benchmarks/forecast_value.py --calibration [--data-dir ...]

Table (default): on the test window of each scenario (``synthetic``; ``eglb-2022`` when its traces are
found, ``--data-dir`` or ``../shared/traces/eglb-2022``; the calendar months of the test split of
``world`` when that scenario is registered and its data found, ``--world-dir``, ``--world-months N`` for
the first N, else a line saying it was skipped), the gap to the offline optimum
(J / J_off - 1, %) of:

* ``offline``: the hindsight optimum (an oracle, gap 0 by definition);
* ``online-eglb``: no forecast at all (online eGLB, the paper's algorithm);
* ``mpc-H <model>`` for H in ``--horizons`` and the models ``perfect`` (the truth over the window: an
  oracle), ``calibrated`` (equiglb.forecast's errors, one run per seed in ``--seeds``: mean, min and max)
  and ``persistence`` (same hour of the latest observed day). MPC at H = 1 plans slot t alone (its true
  data), so its three rows coincide: a check.

Every number comes from the ledger (``equiglb.baselines.compare``) and every row says what the policy
knew. ``--calibration``: the calibrated model's measured MAPE (%) against its target by signal, site
(zone) or region and lead time (1, 6, 24 h), over every issue slot of each scenario (seed 0): the table
of docs/forecasts.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import equiglb  # noqa: E402
from equiglb.baselines import MPCPolicy, OfflinePolicy, OnlineEGLBPolicy  # noqa: E402
from equiglb.baselines.compare import run_policies  # noqa: E402
from equiglb.forecast import Forecaster, target_mape, target_source, zone_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EGLB = REPO.parent / "shared" / "traces" / "eglb-2022"
MODELS = ("perfect", "calibrated", "persistence")


def windows(data_dir: Path | None, world_dir: Path | None = None,
            world_months: int | None = None) -> list[tuple[str, equiglb.Scenario, equiglb.Scenario]]:
    """(label, whole scenario, test window) of every scenario the run covers; prints what it skips."""
    out = []
    syn = equiglb.load_scenario("synthetic")
    out.append(("synthetic test", syn, syn.split("test")))
    folder = data_dir or DEFAULT_EGLB
    if (Path(folder) / "AI_workload.csv").is_file():
        eglb = equiglb.load_scenario("eglb-2022", data_dir=str(folder))
        out.append(("eglb-2022 test", eglb, eglb.split("test")))
    else:
        print(f"eglb-2022: skipped (no traces at {folder}; give --data-dir)")
    if "world" in equiglb.list_scenarios():
        try:
            world = equiglb.load_scenario("world", **({"data_dir": str(world_dir)} if world_dir else {}))
        except (ValueError, OSError) as exc:
            print(f"world: skipped (cannot load it: {exc})")
            return out
        # the calendar months (splits named YYYY-MM) inside the test split, else the test split(s)
        a, n = world.splits.get("test", (0, 0))
        months = sorted(k for k, (s, m) in world.splits.items()
                        if re.fullmatch(r"\d{4}-\d{2}", k) and a <= s and s + m <= a + n)
        tests = months[:world_months] if months else sorted(s for s in world.splits if s.startswith("test"))
        if not tests:
            print(f"world: skipped (no test split among {sorted(world.splits)})")
        for s in tests:
            out.append((f"world {s}", world, world.split(s)))
    else:
        print("world: skipped (load_scenario('world') is not registered in this checkout)")
    return out


def value_table(window: equiglb.Scenario, horizons: list[int], seeds: list[int]) -> list[dict]:
    """Rows (policy, information, gap %, objective USD) of one window."""
    pols = [OfflinePolicy(), OnlineEGLBPolicy()]
    for h in horizons:
        for m in MODELS:
            for s in (seeds if m == "calibrated" else [0]):
                p = MPCPolicy(horizon=h, forecast_model=m, seed=s)
                p.name = f"mpc-{h} {m}" + (f" seed {s}" if m == "calibrated" else "")
                pols.append(p)
    comp = run_policies(window, pols, window.weights)
    rows = []
    for r in comp.rows:
        rows.append({"policy": r["policy"], "information": r["information"], "gap_pct": 100 * r["gap_to_offline"],
                     "objective_usd": r["objective"], "wall_time_s": r["wall_time_s"]})
    return rows


def summarize(rows: list[dict], horizons: list[int]) -> list[dict]:
    """One line per policy: the calibrated seeds folded into mean (min .. max)."""
    out = [dict(r, gap_min=r["gap_pct"], gap_max=r["gap_pct"], runs=1) for r in rows
           if not r["policy"].startswith("mpc")]
    for h in horizons:
        for m in MODELS:
            sel = [r for r in rows if r["policy"].startswith(f"mpc-{h} {m}")]
            g = np.array([r["gap_pct"] for r in sel])
            out.append({"policy": f"mpc-{h} {m}", "information": sel[0]["information"], "gap_pct": float(g.mean()),
                        "gap_min": float(g.min()), "gap_max": float(g.max()), "runs": len(sel),
                        "objective_usd": float(np.mean([r["objective_usd"] for r in sel]))})
    return out


def print_table(label: str, window: equiglb.Scenario, lines: list[dict]) -> None:
    print(f"\n{label}: {window.T} h from {window.timestamps[0]} UTC, N={window.N}, J={window.J}")
    print("| policy | information | gap to offline (%) | range over seeds (%) | J (USD) |")
    print("|---|---|---:|---:|---:|")
    for r in lines:
        rng = f"{r['gap_min']:.2f} .. {r['gap_max']:.2f}" if r["runs"] > 1 else ""
        print(f"| {r['policy']} | {r['information']} | {r['gap_pct']:.2f} | {rng} | {r['objective_usd']:,.0f} |")


def calibration(label: str, scenario: equiglb.Scenario, leads: tuple[int, ...] = (1, 6, 24)) -> list[dict]:
    """Measured against target MAPE (%) by signal, series and lead over every issue slot of ``scenario``."""
    fc = Forecaster(scenario, "calibrated", seed=0)
    H = max(leads)
    ts = np.arange(scenario.T - H)
    issued = fc.table(ts, H)                                           # (issues, H, series)
    rows = []
    for r, (signal, name) in enumerate(fc.names):
        row = {"scenario": label, "signal": signal, "series": name, "source": target_source(signal, name),
               "zone": zone_of(name) if signal != "demand" else ""}
        for h in leads:
            truth = fc.truth[ts + h, r]
            ok = truth != 0
            ape = np.abs(issued[ok, h - 1, r] / truth[ok] - 1)
            row[f"measured_{h}h"] = 100 * float(ape.mean())
            row[f"target_{h}h"] = 100 * float(target_mape(signal, name, [h])[0])
        rows.append(row)
    return rows


def print_calibration(rows: list[dict], leads: tuple[int, ...] = (1, 6, 24)) -> None:
    head = " | ".join(f"{h} h target / measured" for h in leads)
    print(f"| scenario | signal | site or region (zone) | figure | {head} |")
    print("|---|---|---|---|" + "---:|" * len(leads))
    by = {}
    for r in rows:       # the regions' demand rows share one target: folded into one line per scenario
        key = (r["scenario"], r["signal"], r["series"] if r["signal"] != "demand" else "all regions")
        by.setdefault(key, []).append(r)
    for (scn, signal, series), rs in by.items():
        zone = rs[0]["zone"]
        name = f"{series} ({zone})" if zone and zone != series else series
        cells = " | ".join(f"{np.mean([r[f'target_{h}h'] for r in rs]):.1f} / "
                           f"{np.mean([r[f'measured_{h}h'] for r in rs]):.1f}" for h in leads)
        print(f"| {scn} | {signal} | {name} | {rs[0]['source']} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help=f"eGLB-2022 trace folder (default: {DEFAULT_EGLB})")
    p.add_argument("--horizons", type=int, nargs="+", default=[1, 6, 24], help="MPC look-aheads (hours)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the calibrated forecasts")
    p.add_argument("--world-dir", default=None, help="data folder of the world scenario (default: its own look-up)")
    p.add_argument("--world-months", type=int, default=None,
                   help="only the first N test months of the world scenario (default: all)")
    p.add_argument("--calibration", action="store_true", help="print the calibration table instead")
    p.add_argument("--out", default=None, help="write every row to this JSON file")
    args = p.parse_args(argv)
    if any(not 1 <= h <= 168 for h in args.horizons):
        p.error(f"--horizons: each must be in 1..168 hours, got {args.horizons}")
    if any(s < 0 for s in args.seeds) or not args.seeds:
        p.error(f"--seeds: integers >= 0, got {args.seeds}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir!r}: not a folder")
    data_dir = Path(args.data_dir) if args.data_dir else None
    world_dir = Path(args.world_dir) if args.world_dir else None
    if args.world_months is not None and args.world_months < 1:
        p.error(f"--world-months must be >= 1, got {args.world_months}")
    result: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    if args.calibration:
        rows = []
        for label, whole, _test in windows(data_dir, world_dir, 1):
            if label.startswith("world") and any(r["scenario"] == "world" for r in rows):
                continue
            rows += calibration(label.split()[0], whole)
        print_calibration(rows)
        result["calibration"] = rows
    else:
        for label, _whole, test in windows(data_dir, world_dir, args.world_months):
            rows = value_table(test, args.horizons, args.seeds)
            lines = summarize(rows, args.horizons)
            print_table(label, test, lines)
            result[label] = rows
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
