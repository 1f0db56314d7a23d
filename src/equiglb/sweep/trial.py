"""One trial of a sweep: the training plan of the trial run as ``train.py`` runs it, and its evaluation rows.

A trial trains and evaluates through exactly the code path of ``python train.py``
(:func:`equiglb.agents.cli.train_plan` with the trial's :class:`~equiglb.agents.plan.TrainPlan`, which
returns the rows of the final table), in its own folder ``DIR/trials/<trial id>/``: train.py's run
folder goes to ``<trial folder>/<algo>/<env>_<n>/`` and its console output to ``train.log``. When
the run succeeds, ``result.json`` is written last (atomically): a trial folder with a
``result.json`` is finished, which is what ``--resume`` checks. A failed trial writes
``error.json`` (exit code, message) instead and does not raise, so the other trials go on. Under
Ray this module runs as the trial's own process (:func:`equiglb.sweep.worker.run_trial_process`).

For hyperparameter search, :func:`~equiglb.traces.derived.holdout_scenario` (the scenario ``"holdout"``)
splits the base scenario's train window into ``fit`` (the first part) and ``val`` (its last
``val_fraction``) and drops every slot after the train window, so a search trial cannot see the
test window at all.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from equiglb.agents.cli import train_plan
from equiglb.agents.plan import TrainPlan, overrides
from equiglb.agents.runs import UserError
from equiglb.agents.trainer import TrainResult
from equiglb.sweep.worker import ERROR_FILE, RESULT_FILE, write_json
from equiglb.traces.derived import holdout_scenario  # the scenario "holdout" (re-exported here)

__all__ = ["METRICS", "run_trial", "trial_plan", "holdout_scenario"]

#: Columns of train.py's eval/table.csv kept per policy (units in the names; gap_to_offline is a
#: fraction: 0.05 = 5 % above the offline optimum's objective J, in USD).
METRICS = ("objective", "gap_to_offline", "energy_cost_usd", "carbon_max_t", "carbon_mean_t", "carbon_par",
           "carbon_lq_t", "water_max_m3", "water_mean_m3", "water_par", "water_lq_m3", "social_max", "unserved")


def trial_plan(spec: dict[str, Any]) -> TrainPlan:
    """The train.py plan of a trial (``spec`` as built by :mod:`equiglb.sweep.engine`): its algorithm, id, seed
    and budget, its folder as the log folder, no progress bar, one torch thread, the sweep's environment
    options with the trial's grid point and hyperparameter overrides (the sweep keeps their values as text,
    read as train.py reads ``--env-kwargs`` and ``-params``; raises :class:`UserError` for a malformed one),
    the baselines of the table only in the trial that solves them."""
    env_kwargs = {**spec.get("env_kwargs", {}), **spec.get("point", {})}
    plan = TrainPlan(algo=spec["algo"], env_id=spec["env"], seed=int(spec["seed"]), log_folder=str(spec["trial_dir"]),
                     progress=False, eval_freq=int(spec["eval_freq"]), torch_threads=1,
                     n_timesteps=int(spec["n_timesteps"]) if spec.get("n_timesteps") else None,
                     env_kwargs=overrides([f"{k}={v}" for k, v in env_kwargs.items()], "--env-kwargs"),
                     hyperparams=overrides([f"{k}={v}" for k, v in (spec.get("hyperparams") or {}).items()],
                                           "--hyperparams"),
                     baselines=list(spec["baselines"]) if spec.get("with_baselines") else [])
    if spec.get("train_split"):
        plan = replace(plan, train_split=spec["train_split"], eval_split=spec["eval_split"])
    return plan


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {m: float(r[m]) for m in METRICS if m in r}


def run_trial(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one trial; return its result (``status`` ``"ok"`` or ``"error"``), also written to its folder.

    The result holds the agent's row of the evaluation table (:data:`METRICS`), the baselines' rows,
    the wall time of the whole train.py run (s) and the run folder.
    """
    torch.set_num_threads(1)
    trial_dir = Path(spec["trial_dir"])
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / ERROR_FILE).unlink(missing_ok=True)
    algo_dir = trial_dir / spec["algo"]
    before = set(algo_dir.iterdir()) if algo_dir.is_dir() else set()
    base = {"trial_id": spec["trial_id"], "algo": spec["algo"], "seed": spec["seed"], "point": spec.get("point", {}),
            "hyperparams": spec.get("hyperparams", {})}
    t0 = time.perf_counter()
    trained, error = TrainResult(1), ""
    with open(trial_dir / "train.log", "a") as log:
        log.write(f"\n=== train.py, trial {spec['trial_id']}\n")
        log.flush()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                trained = train_plan(trial_plan(spec))
            except UserError as exc:    # a malformed KEY=VALUE text of the sweep's options
                print(f"train.py: error: {exc}", file=sys.stderr)
                trained = TrainResult(2)
            except Exception:
                error = traceback.format_exc()
                log.write(error)
    wall = time.perf_counter() - t0
    new = sorted(set(algo_dir.iterdir()) - before) if algo_dir.is_dir() else []
    run_dir = trained.run_dir or (new[0] if len(new) == 1 else None)
    if trained.exit_code == 0 and run_dir is not None and trained.rows:
        agent = [r for r in trained.rows if str(r["policy"]).endswith("(agent)")]
        if len(agent) == 1:
            result = {**base, "status": "ok", **_row(agent[0]), "wall_time_s": wall, "run_dir": str(run_dir),
                      "baselines": [{"policy": str(r["policy"]), **_row(r)} for r in trained.rows
                                    if not str(r["policy"]).endswith("(agent)")]}
            if not all(math.isfinite(result[m]) for m in ("objective", "gap_to_offline")):
                error = f"non-finite objective or gap in {run_dir / 'eval' / 'table.csv'}"
            else:
                write_json(trial_dir / RESULT_FILE, result)
                return result
        else:
            error = f"{run_dir / 'eval' / 'table.csv'} has {len(agent)} agent rows, expected 1"
    if not error:
        tail = (trial_dir / "train.log").read_text().strip().splitlines()[-5:]
        error = f"train.py exited with code {trained.exit_code}: " + " | ".join(tail)
    result = {**base, "status": "error", "exit_code": trained.exit_code, "error": error.strip()[-2000:],
              "wall_time_s": wall, "run_dir": str(run_dir) if run_dir is not None else ""}
    write_json(trial_dir / ERROR_FILE, result)
    return result


def _exit_with_parent(interval_s: float = 1.0) -> None:
    """Exit when the process that started this one dies (a killed sweep leaves no trial running)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


if __name__ == "__main__":
    _exit_with_parent()
    run_trial(json.loads(Path(sys.argv[1]).read_text()))
