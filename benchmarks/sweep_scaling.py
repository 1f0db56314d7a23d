"""Sweep scaling: 4 equal trials one after another, then on a local Ray instance with 2 CPUs.

    python benchmarks/sweep_scaling.py [-n 49152] [--trials 4] [--cpus 2] [--out DIR]

Both halves run the same 4 trials (PPO, seeds 0..3, ``-n`` steps, only the offline optimum solved)
through the same function, :func:`equiglb.sweep.worker.run_trial_process` (one train.py run in a
child process), in the same run of this script. Prints the sequential wall time (the reference),
the Ray wall time including Ray's start-up, their ratio (target <= 0.6 on 2 cores), and Ray's
overhead: its start-up, and per trial the time Ray spent around the trial's process (scheduling,
actor start, result transfer) = (Ray wall without start-up x CPUs - sum of the trials' process
times) / trials.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from equiglb.sweep.config import SweepConfig  # noqa: E402
from equiglb.sweep.engine import ray_session, trial_specs, tune_grid  # noqa: E402
from equiglb.sweep.worker import run_trial_process  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--n-timesteps", type=int, default=49152,
                   help="training steps per trial (about 10 s of training here, beside ~15 s of fixed cost)")
    p.add_argument("--trials", type=int, default=4, help="number of equal trials")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--out", default=None, help="folder for the trials (default: a temp folder)")
    args = p.parse_args(argv)
    root = Path(args.out or tempfile.mkdtemp(prefix="sweep_scaling_")).resolve()

    def specs(tag: str) -> list[dict]:
        cfg = SweepConfig(out=str(root / tag), algos=["ppo"], seeds=list(range(args.trials)),
                          n_timesteps=args.n_timesteps, baselines=[], num_cpus=args.cpus)
        return [s for _, s in trial_specs(cfg, root / tag)]

    t0 = time.perf_counter()
    seq = [run_trial_process(s) for s in specs("sequential")]
    t_seq = time.perf_counter() - t0
    if any(r["status"] != "ok" for r in seq):
        print("a sequential trial failed:", [r.get("error") for r in seq if r["status"] != "ok"], file=sys.stderr)
        return 1

    ray_specs = specs("ray")
    cfg = SweepConfig(out=str(root / "ray"), num_cpus=args.cpus)
    t0 = time.perf_counter()
    with ray_session(None, args.cpus):
        t_up = time.perf_counter() - t0
        t1 = time.perf_counter()
        lost = tune_grid(ray_specs, cfg, root / "ray")
        t_tune = time.perf_counter() - t1
    t_ray = time.perf_counter() - t0
    results = [json.loads((Path(s["trial_dir"]) / "result.json").read_text()) for s in ray_specs
               if (Path(s["trial_dir"]) / "result.json").is_file()]
    if lost or len(results) != len(ray_specs):
        print(f"a Ray trial failed: {lost}", file=sys.stderr)
        return 1
    proc = sum(r["process_wall_s"] for r in results)
    per_trial = (t_tune * min(args.cpus, args.trials) - proc) / args.trials
    ratio = t_ray / t_seq
    print(f"\n=== sweep scaling: {args.trials} equal PPO trials of {args.n_timesteps} steps, {args.cpus} CPUs ===")
    print(f"one after another (reference):   {t_seq:7.1f} s  ({t_seq / args.trials:.1f} s per trial)")
    print(f"on local Ray, incl. start-up:    {t_ray:7.1f} s  -> ratio {ratio:.2f} (target <= 0.60: "
          f"{'met' if ratio <= 0.6 else 'NOT met'})")
    print(f"Ray start-up (ray.init):         {t_up:7.1f} s")
    print(f"Tune experiment:                 {t_tune:7.1f} s, trials' own processes {proc:.1f} s in total")
    print(f"Ray overhead per trial:          {per_trial:7.1f} s  (scheduling, actor start, result transfer)")
    print(f"trial folders: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
