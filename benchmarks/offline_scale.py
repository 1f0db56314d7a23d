"""Offline optimum at month and year scale: the direct program (matrix form) solved by the block interior
point (``method="blockipm"``) and/or by HiGHS/Clarabel (``method="direct"``) on random 15 sites x 15
regions x 3 models instances, beside a plain cvxpy solve of the same run. Not a test.

    python benchmarks/offline_scale.py [--hours 744,8760] [--qs inf,2] [--masks full,continents]
                                       [--social off,on] [--methods blockipm,direct] [--timeout 600]
                                       [--reference 744]

Instances are seeded (``--seed``): diurnal demand in 15 time zones, prices with negative hours, carbon
and water per site, three models (energy per load unit 1.0 / 0.4 / 0.15 × 10 kWh, quality loss
0 / 0.08 / 0.25), hosting of every model at every site, capacities 1.5x the peak demand spread over
the sites (± 40 %), PUE 1.1-1.5, region weights 0.5-1.5. Masks: ``full`` (every region reaches every
site), ``continents`` (the zones in 5 random continents; a region reaches the sites of its own and of
the neighbouring continents, as the `world-partial` variant plans), ``random`` (each pair allowed with
probability 1/2, the own site always: no two regions alike, the worst case for the region classes).
Weights: eGLB's μ_c = 1500 USD/t, μ_w = 60 USD/m³, μ_s = 5000 USD per unit of S with ``--social on``.
Every case runs in a fresh subprocess (its peak RSS is its own) with a wall-clock timeout. The
reference is ``solve_offline(..., method="cvxpy")`` of the month at q = inf, full mask, no social term.
The offline optimum knows the whole window (hindsight): it is the oracle every policy is compared to.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

TARGET_MONTH_S = 2.0
TARGET_YEAR_S = 30.0
TARGET_YEAR_GB = 8.0


def instance(hours: int, mask: str, seed: int = 0, N: int = 15, K: int = 3):
    """The random N x N x K instance of the module docstring (regions are the sites' zones)."""
    from equiglb.scenario import Scenario

    J = N
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    tz = rng.integers(-8, 10, J)                                          # UTC offset of each zone, h
    local = (t[:, None] + tz[None, :]) % 24
    demand = rng.uniform(50, 200, J) * (1 + 0.5 * np.sin(2 * np.pi * (local - 9) / 24)) \
        * rng.uniform(0.85, 1.15, (hours, J))                             # load units per hour
    local_n = (t[:, None] + tz[None, :N]) % 24
    price = rng.uniform(20, 90, N) * (1 + 0.4 * np.sin(2 * np.pi * (local_n - 12) / 24)) \
        + rng.normal(0, 25, (hours, N))                                   # USD/MWh, some negative
    carbon = rng.uniform(0.05, 0.8, N) * rng.uniform(0.7, 1.3, (hours, N))   # t/MWh
    water = rng.uniform(0.5, 5, N) * rng.uniform(0.7, 1.3, (hours, N))       # m³/MWh
    e = np.array([1.0, 0.4, 0.15]) * 1e-2                                  # MWh per load unit
    if mask == "full":
        m = np.ones((N, J), bool)
    elif mask == "continents":
        cont = rng.integers(0, 5, N)
        near = np.eye(5, dtype=bool) | (rng.random((5, 5)) < 0.3)
        near |= near.T
        m = near[cont[:, None], cont[None, :]]
    elif mask == "random":
        m = rng.random((N, J)) < 0.5
        np.fill_diagonal(m, True)
    else:
        raise SystemExit(f"--masks: unknown mask {mask!r} (full, continents, random)")
    capacity = rng.uniform(0.6, 1.4, N) * 1.5 * demand.sum(axis=1).max() * e.max() / N    # MW
    return Scenario(name=f"random-{N}x{J}x{K}-{mask}-{hours}h", demand=demand, price=price, carbon=carbon,
                    water=water, capacity=capacity, mask=m, hosting=np.ones((N, K), bool), energy_per_unit=e,
                    quality_loss=np.array([0.0, 0.08, 0.25]), pue=rng.uniform(1.1, 1.5, N),
                    region_weights=rng.uniform(0.5, 1.5, N), site_names=[f"z{i}" for i in range(N)],
                    region_names=[f"z{j}" for j in range(J)], model_names=["large", "mid", "small"],
                    timestamps=np.datetime64("2023-01-01T00", "h") + t.astype("timedelta64[h]"))


def one_case(hours: int, mask: str, q: float, social: bool, method: str, seed: int) -> dict:
    """Build the instance, solve it, account it by the ledger; times and peak RSS of this process."""
    from equiglb.baselines import solve_offline
    from equiglb.control.offline_direct import DirectProgram
    from equiglb.scenario import Weights

    sc = instance(hours, mask, seed)
    w = Weights(mu_social=5000.0 if social else 0.0, q=q)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    t0, c0 = time.perf_counter(), time.process_time()
    res = solve_offline(sc, w, method=method)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"hours": hours, "mask": mask, "q": q, "social": social, "method": res.method, "solver": res.solver,
           "attempts": "; ".join(res.attempts),
           "status": res.status, "objective_usd": res.objective_usd, "unserved": res.report.unserved_load,
           "wall_s": wall, "cpu_s": cpu, "build_s": res.compile_time_s, "solve_s": res.solve_time_s,
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "rss_before_gb": rss0}
    if method in ("direct", "blockipm"):
        prog = DirectProgram(sc, w)
        out.update(classes=len(prog.classes), columns=prog.columns, pairs=int(np.count_nonzero(sc.allowed)) * hours)
    return out


def _run(args, hours, mask, q, social, method) -> dict:
    cmd = [sys.executable, __file__, "--one", json.dumps([hours, mask, q, social, method, args.seed])]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"hours": hours, "mask": mask, "q": q, "social": social, "method": method,
                "status": f"timeout after {args.timeout:.0f} s", "wall_s": time.perf_counter() - t0}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"hours": hours, "mask": mask, "q": q, "social": social, "method": method,
                "status": f"failed: {last[:100]}", "wall_s": time.perf_counter() - t0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(rows: list[dict], cols: list[str]) -> str:
    def f(v):
        return f"{v:,.3f}" if isinstance(v, float) else str(v)

    cells = [[f(r.get(c, "")) for c in cols] for r in rows]
    w = [max(len(c), *(len(r[k]) for r in cells)) for k, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w[k]) for k, c in enumerate(cols))]
    lines += ["  ".join(v.rjust(w[k]) for k, v in enumerate(r)) for r in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", default="744,8760", help="window lengths, hours (744 = a month, 8760 = a year)")
    p.add_argument("--qs", default="inf,2", help="norms q")
    p.add_argument("--masks", default="full,continents", help="full, continents, random")
    p.add_argument("--social", default="off,on", help="social term off/on")
    p.add_argument("--methods", default="blockipm", help="blockipm (the block interior point, the direct "
                   "solvers after it if it fails) and/or direct (HiGHS/Clarabel)")
    p.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit per case, s")
    p.add_argument("--reference", type=int, default=744,
                   help="hours of the plain cvxpy reference (q = inf, full mask, no social); 0 skips it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the rows here")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one is not None:
        hours, mask, q, social, method, seed = json.loads(args.one)
        print(json.dumps(one_case(hours, mask, q, social, method, seed)))
        return 0
    import clarabel
    import cvxpy
    import highspy

    print(f"python {sys.version.split()[0]}, cvxpy {cvxpy.__version__}, clarabel {clarabel.__version__}, "
          f"highspy {getattr(highspy, '__version__', '?')}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    rows = []
    if args.reference:
        ref = _run(args, args.reference, "full", math.inf, False, "cvxpy")
        ref["case"] = "reference (cvxpy)"
        rows.append(ref)
        print(f"  reference done: {ref.get('wall_s', float('nan')):.2f} s {ref.get('status')}", file=sys.stderr,
              flush=True)
    for hours in [int(h) for h in args.hours.split(",")]:
        for q in [float(v) for v in args.qs.split(",")]:
            for mask in args.masks.split(","):
                for social, method in [(s == "on", m) for s in args.social.split(",")
                                       for m in args.methods.split(",")]:
                    r = _run(args, hours, mask, q, social, method)
                    r["case"] = method
                    if r.get("status") == "optimal" and "wall_s" in r:
                        if hours <= 744:
                            r["target"] = "met" if r["wall_s"] <= TARGET_MONTH_S else f"missed (> {TARGET_MONTH_S:g} s)"
                        else:
                            ok = r["wall_s"] <= TARGET_YEAR_S * hours / 8760 and r["peak_rss_gb"] <= TARGET_YEAR_GB
                            r["target"] = "met" if ok else f"missed (> {TARGET_YEAR_S:g} s or {TARGET_YEAR_GB:g} GB)"
                        if (rows and rows[0].get("case") == "reference (cvxpy)" and rows[0].get("status") == "optimal"
                                and hours == rows[0]["hours"]):
                            r["vs_reference"] = rows[0]["wall_s"] / r["wall_s"]
                    rows.append(r)
                    print(f"  {hours} h q={q} {mask} social={social} {method}: {r.get('wall_s', float('nan')):.2f} s "
                          f"{r.get('status')}", file=sys.stderr, flush=True)
    print("\nOffline optimum (hindsight: the oracle), random 15 x 15 x 3 instances; wall = build + solve + ledger;"
          " cpu = this process's CPU time over the same span (on a loaded machine wall > cpu); vs_reference ="
          " the cvxpy month's wall time / this wall time")
    print(_table(rows, ["case", "hours", "mask", "q", "social", "method", "solver", "status", "classes", "columns",
                        "pairs", "objective_usd", "wall_s", "cpu_s", "build_s", "solve_s", "peak_rss_gb",
                        "vs_reference", "target", "attempts"]))
    for label, sel in (("month (<= 2 s)", lambda r: r["hours"] <= 744),
                       ("year (<= 30 s and 8 GB)", lambda r: r["hours"] > 744)):
        for method in args.methods.split(","):
            cases = [r for r in rows if r.get("case") == method and sel(r)]
            if cases:
                met = sum(r.get("target") == "met" for r in cases)
                print(f"target {label}, {method}: met in {met} of {len(cases)} cases"
                      + ("" if met == len(cases) else " (missed: " + "; ".join(
                          f"q={r['q']:g} {r['mask']} social={r['social']}: {r.get('wall_s', math.nan):.1f} s "
                          f"{r.get('status')}" for r in cases if r.get("target") != "met") + ")"))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
