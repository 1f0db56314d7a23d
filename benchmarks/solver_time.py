"""Offline solve time (compile + solve) and peak memory by window length, each solver on the tight
eGLB-2022 instance, and online eGLB throughput. Prints tables; not a test. The offline solves take
``solve_offline``'s default path (``method`` column: the direct program from 2,000 pair-hours on);
benchmarks/offline_scale.py compares the paths at month and year scale.

    python benchmarks/solver_time.py [--data-dir ../shared/traces/eglb-2022] [--lengths 24,168,457,8760]

Windows up to the real trace's 457 h use eGLB-2022 when its folder is given (or found at
../shared/traces/eglb-2022), else the synthetic scenario; longer ones use the synthetic scenario
(N = J = 10) generated for that many hours. Case "full" is full connection with one model (solved
by the exact site aggregation); case "partial" uses the study's partial-connection mask (the
general per-pair program). Each length runs in a fresh subprocess, so its compile
time includes cvxpy's canonicalization and its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DEFAULT_EGLB = REPO.parent / "shared" / "traces" / "eglb-2022"


def _scenario(length: int, data_dir: str | None, partial: bool = False):
    """N = J = 10; ``partial``: the eGLB study's partial-connection mask (the general per-pair program
    instead of the exact site aggregation used for full connection with one model)."""
    import dataclasses

    import equiglb

    if data_dir and length <= 457:
        return equiglb.load_scenario("eglb-2022-partial" if partial else "eglb-2022",
                                     data_dir=data_dir).window(0, length)
    sc = equiglb.load_scenario("synthetic", hours=max(length, 2)).window(0, length)
    if partial:
        if data_dir:
            from equiglb.traces.eglb2022 import read_partial_mask

            mask = read_partial_mask(Path(data_dir) / "partial_mask.csv")
        else:
            mask = np.eye(sc.N, dtype=bool) | np.roll(np.eye(sc.N, dtype=bool), 1, axis=0)
        sc = dataclasses.replace(sc, mask=mask, name=sc.name + "-partial")
    return sc


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_length(length: int, data_dir: str | None, partial: bool) -> dict:
    """Solve the offline optimum, then again with new weights (re-using the compiled problem), and
    report times and peak RSS."""
    from equiglb.baselines import solve_offline
    from equiglb.control.offline import _problem_for
    from equiglb.control.offline_direct import DirectProgram

    sc = _scenario(length, data_dir, partial)
    base_rss = _peak_rss_mb()
    t0 = time.perf_counter()
    res = solve_offline(sc)
    first = time.perf_counter() - t0
    variables = DirectProgram(sc, sc.weights).columns if res.method == "direct" \
        else _problem_for(sc, sc.weights, True).x.size
    out = {"hours": length, "scenario": sc.name, "method": res.method, "variables": variables, "solver": res.solver,
           "status": res.status,
           "objective_usd": res.objective_usd, "first_s": first, "compile_s": res.compile_time_s,
           "solve_s": res.solve_time_s, "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": base_rss}
    t0 = time.perf_counter()
    solve_offline(sc.with_weights(sc.weights.replace(mu_carbon=sc.weights.mu_carbon * 1.1)))
    out["resolve_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def solvers_on_eglb(data_dir: str) -> list[dict]:
    """Each installed solver on the whole eGLB-2022 trace (three slots have demand == capacity)."""
    import cvxpy as cp

    import equiglb
    from equiglb.control.offline import OfflineProblem

    sc = equiglb.load_scenario("eglb-2022", data_dir=data_dir)
    tight = int(((sc.demand.sum(axis=1) - sc.capacity.sum()) == 0).sum())
    rows = []
    for aggregate, allow in ((True, True), (True, False), (False, True), (False, False)):
        prob = OfflineProblem(sc, sc.T, sc.weights, allow_unserved=allow, aggregate=aggregate)
        prob.set_data(sc, sc.weights)
        program = "aggregated" if aggregate else "per-pair"
        for s in ["HIGHS", "CLARABEL", "SCS", "OSQP", "ECOS"]:
            if s not in cp.installed_solvers():
                rows.append({"program": program, "solver": s, "unserved_allowed": allow, "status": "not installed"})
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                status, value, _, solve_s = prob.solve(s)
                wall = time.perf_counter() - t0
            obj = equiglb.evaluate(sc, prob.schedule(), sc.weights).objective_usd \
                if prob.x.value is not None and status in ("optimal", "optimal_inaccurate") else float("nan")
            rows.append({"program": program, "solver": s, "unserved_allowed": allow, "status": status,
                         "solver_value": value, "ledger_objective": obj, "wall_s": wall, "solve_s": solve_s,
                         "tight_slots": tight})
    return rows


def online_rate(data_dir: str | None) -> list[dict]:
    """Online eGLB steps per second (schedule of a whole window, including reset): a merit order per
    slot with full connection, one re-solved HiGHS LP per slot with the partial mask."""
    from equiglb.baselines import OnlineEGLBPolicy, make_policy

    out = []
    for length, partial in ((457, False), (8760, False), (457, True), (8760, True)):
        sc = _scenario(length, data_dir, partial)
        for name, pol in (("online-eglb", OnlineEGLBPolicy()), ("min-cost", make_policy("min-cost"))):
            t0 = time.perf_counter()
            pol.schedule(sc)
            dt = time.perf_counter() - t0
            out.append({"policy": name, "scenario": sc.name, "hours": length, "steps_per_s": length / dt})
    return out


def _table(rows: list[dict], cols: list[str]) -> str:
    def f(v):
        return f"{v:,.3f}" if isinstance(v, float) else str(v)

    cells = [[f(r.get(c, "")) for c in cols] for r in rows]
    w = [max(len(c), *(len(r[k]) for r in cells)) for k, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w[k]) for k, c in enumerate(cols))]
    lines += ["  ".join(v.rjust(w[k]) for k, v in enumerate(r)) for r in cells]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(DEFAULT_EGLB) if DEFAULT_EGLB.is_dir() else None)
    p.add_argument("--lengths", default="24,168,457,8760")
    p.add_argument("--cases", default="full,partial", help="full (aggregated program), partial (per pair)")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--partial", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one is not None:
        print(json.dumps(one_length(args.one, args.data_dir, args.partial)))
        return
    import cvxpy
    import numpy

    print(f"python {sys.version.split()[0]}, cvxpy {cvxpy.__version__}, numpy {numpy.__version__}, "
          f"{os.cpu_count()} CPUs; eGLB-2022 traces: {args.data_dir or 'not found (synthetic only)'}")
    rows = []
    for case in args.cases.split(","):
        for length in [int(v) for v in args.lengths.split(",")]:
            cmd = [sys.executable, __file__, "--one", str(length)] + (["--partial"] if case == "partial" else []) \
                + (["--data-dir", args.data_dir] if args.data_dir else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                rows.append({"hours": length, "status": f"failed: {proc.stderr.strip().splitlines()[-1]}"})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {case} {length} h done", file=sys.stderr, flush=True)
    print("\nOffline optimum: first solve (compile + solve) in a fresh process, re-solve with new weights")
    print(_table(rows, ["hours", "scenario", "method", "variables", "solver", "status", "objective_usd", "first_s",
                        "compile_s",
                        "solve_s", "resolve_s", "peak_rss_mb"]))
    if args.data_dir:
        print("\nEach solver on eGLB-2022 (457 h, q = inf); 'tight_slots' = hours with demand == capacity")
        print(_table(solvers_on_eglb(args.data_dir), ["program", "solver", "unserved_allowed", "status", "solver_value",
                                                      "ledger_objective", "wall_s", "solve_s", "tight_slots"]))
    print("\nOnline throughput")
    print(_table(online_rate(args.data_dir), ["policy", "scenario", "hours", "steps_per_s"]))


if __name__ == "__main__":
    main()
