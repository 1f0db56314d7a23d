"""Command line: ``python -m equiglb.sweep`` (console script ``equiglb-sweep``); see docs/experiments.md.

    python -m equiglb.sweep --algos ppo,sac --seeds 0,1,2,3,4 --grid mu_water=30,60,120 --out sweeps/water
    python -m equiglb.sweep --out sweeps/water --algos ppo,sac ... --resume     # finish an interrupted sweep
    python -m equiglb.sweep --search optuna --n-trials 30 --algos ppo --out sweeps/tune_ppo
    python -m equiglb.sweep --address 10.0.0.5:6379 ...                         # on a running Ray cluster

Steps, top to bottom: read and check the configuration (flags over ``--config`` YAML), check every
algorithm and grid point, create (or, with ``--resume``, reopen) the output folder, run the missing
trials on Ray Tune, then write the tables and plots and print the summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from equiglb.sweep.config import SweepConfig, SweepError, add_arguments, config_from_args
from equiglb.validate import CliArgumentParser

# The engine (Ray), the reports (pandas) and the agents (torch) are imported by the functions that use them,
# after the command line is parsed: ``--help`` and a bad flag answer without loading them.

__all__ = ["main", "run_grid", "search"]


def run_grid(cfg: SweepConfig, out: Path) -> int:
    """Run the missing trials of the grid sweep in ``out``, write its outputs; exit code 1 if any failed."""
    from equiglb.sweep.engine import collect, run_specs, trial_specs  # noqa: PLC0415
    from equiglb.sweep.report import format_summary, write_outputs  # noqa: PLC0415
    from equiglb.sweep.worker import read_result  # noqa: PLC0415

    specs = trial_specs(cfg, out)
    pending = [s for t, s in specs if (r := read_result(Path(s["trial_dir"]))) is None or r["status"] != "ok"]
    print(f"Sweep {out}: {len(specs)} trials ({len(cfg.algos)} algos x {len(specs) // len(cfg.algos) // len(cfg.seeds)}"
          f" grid points x {len(cfg.seeds)} seeds); {len(specs) - len(pending)} finished, running {len(pending)} "
          f"on Ray ({cfg.address or 'local'})", flush=True)
    t0 = time.perf_counter()
    lost = run_specs(pending, cfg, out)
    results = collect(specs, lost)
    summary = write_outputs(results, list(cfg.grid), out, reps=cfg.reps, seed=cfg.bootstrap_seed)
    failed = [r for r in results if r["status"] != "ok"]
    print(f"\n{format_summary(summary, list(cfg.grid))}\n")
    for r in failed:
        print(f"FAILED {r['trial_id']}: {r.get('error', '')[-500:]}", file=sys.stderr)
    print(f"{len(results) - len(failed)}/{len(results)} trials ok in {time.perf_counter() - t0:.0f} s. "
          f"Outputs in {out}: trials.csv, baselines.csv, summary.csv, summary.json, gap_ci.png, frontier.png"
          + (f"\n{len(failed)} failed: fix the cause, then rerun with --resume" if failed else ""), flush=True)
    return 1 if failed else 0


def search(cfg: SweepConfig, out: Path) -> int:
    """Hyperparameter search per algorithm; write ``search_<algo>.csv`` and ``best_<algo>.yml``."""
    import pandas as pd  # noqa: PLC0415

    from equiglb.agents.algos import hyperparams_path, read_hyperparams_file  # noqa: PLC0415
    from equiglb.sweep.engine import run_search  # noqa: PLC0415

    code = 0
    for algo in cfg.algos:
        rows = run_search(cfg, out, algo)
        df = pd.DataFrame(rows).sort_values("val_gap_to_offline", na_position="last")
        df.to_csv(out / f"search_{algo}.csv", index=False)
        ok = df[df["status"] == "ok"]
        if ok.empty:
            print(f"{algo}: every configuration failed; see {out / f'search_{algo}.csv'}", file=sys.stderr)
            code = 1
            continue
        best = ok.iloc[0]
        hp = {**{k: yaml.safe_load(v) for k, v in cfg.hyperparams.items()},
              **{k: best[k].item() if hasattr(best[k], "item") else best[k]
                 for k in rows[0] if k not in ("algo", "val_gap_to_offline", "val_objective", "status", "error")}}
        path = out / f"best_{algo}.yml"
        header = (f"# best of {len(df)} {algo} configurations (Optuna TPE on Ray Tune), scored by the gap to the\n"
                  f"# offline optimum on the validation window (the last part of the train split): "
                  f"{100 * best['val_gap_to_offline']:+.2f} %.\n"
                  f"# Layout of src/equiglb/agents/hyperparams/{algo}.yml: an entry per environment id.\n")
        shipped = read_hyperparams_file(hyperparams_path(algo))
        entry = {**shipped.get(cfg.env, shipped.get("default", {})), **hp}     # a complete entry, as RL Zoo needs
        path.write_text(header + yaml.safe_dump({cfg.env: entry}, sort_keys=False))
        print(f"{algo}: best validation gap {100 * best['val_gap_to_offline']:+.2f} % with {hp}\n"
              f"  written to {path}\n  train with: python train.py --algo {algo} --env {cfg.env} -conf {path}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 some trial failed, 2 bad configuration)."""
    p = CliArgumentParser(prog="python -m equiglb.sweep", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    from equiglb.sweep.engine import preflight, prepare_out, unprepare_out  # noqa: PLC0415

    try:
        cfg = config_from_args(args)
        preflight(cfg)
        out = prepare_out(cfg)
    except SweepError as exc:
        print(f"equiglb.sweep: error: {exc}", file=sys.stderr)
        return 2
    try:
        return search(cfg, out) if cfg.search else run_grid(cfg, out)
    except SweepError as exc:      # found on connecting to Ray (e.g. a cluster without the CPUs of a trial)
        if not cfg.resume and not (out / "trials").exists():
            unprepare_out(out)     # no trial started: the same command can be given again
        print(f"equiglb.sweep: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:         # writing the tables or plots
        print(f"equiglb.sweep: error: cannot write the sweep's outputs in {out}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
