"""One trial of a sweep: ``train.py`` with the trial's flags, then its evaluation table read back.

A trial trains and evaluates through exactly the code path of ``python train.py``
(:func:`equiglb.agents.cli.main`), in its own folder ``DIR/trials/<trial id>/``: train.py's run
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
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from equiglb.agents.cli import main as train_main
from equiglb.sweep.worker import ERROR_FILE, RESULT_FILE, write_json
from equiglb.traces.derived import holdout_scenario  # the scenario "holdout" (re-exported here)

__all__ = ["METRICS", "run_trial", "train_argv", "holdout_scenario"]

#: Columns of train.py's eval/table.csv kept per policy (units in the names; gap_to_offline is a
#: fraction: 0.05 = 5 % above the offline optimum's objective J, in USD).
METRICS = ("objective", "gap_to_offline", "energy_cost_usd", "carbon_max_t", "carbon_mean_t", "carbon_par",
           "carbon_lq_t", "water_max_m3", "water_mean_m3", "water_par", "water_lq_m3", "social_max", "unserved")


def train_argv(spec: dict[str, Any]) -> list[str]:
    """The train.py flags of a trial (``spec`` as built by :mod:`equiglb.sweep.engine`)."""
    argv = ["--algo", spec["algo"], "--env", spec["env"], "--seed", str(spec["seed"]),
            "-f", str(spec["trial_dir"]), "--no-progress", "--eval-freq", str(spec["eval_freq"]),
            "--torch-threads", "1"]
    if spec.get("n_timesteps"):
        argv += ["-n", str(spec["n_timesteps"])]
    env_kwargs = {**spec.get("env_kwargs", {}), **spec.get("point", {})}
    if env_kwargs:
        argv += ["--env-kwargs", *(f"{k}={v}" for k, v in env_kwargs.items())]
    if spec.get("hyperparams"):
        argv += ["-params", *(f"{k}={v}" for k, v in spec["hyperparams"].items())]
    if spec.get("train_split"):
        argv += ["--train-split", spec["train_split"], "--eval-split", spec["eval_split"]]
    argv += ["--baselines", *(spec["baselines"] if spec.get("with_baselines") else [])]
    return argv


def _row(r: pd.Series) -> dict[str, Any]:
    return {m: float(r[m]) for m in METRICS if m in r.index}


def run_trial(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one trial; return its result (``status`` ``"ok"`` or ``"error"``), also written to its folder.

    The result holds the agent's row of the evaluation table (:data:`METRICS`), the baselines' rows,
    the wall time of the whole train.py call (s) and the run folder.
    """
    torch.set_num_threads(1)
    trial_dir = Path(spec["trial_dir"])
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / ERROR_FILE).unlink(missing_ok=True)
    algo_dir = trial_dir / spec["algo"]
    before = set(algo_dir.iterdir()) if algo_dir.is_dir() else set()
    argv = train_argv(spec)
    base = {"trial_id": spec["trial_id"], "algo": spec["algo"], "seed": spec["seed"], "point": spec.get("point", {}),
            "hyperparams": spec.get("hyperparams", {}), "argv": argv}
    t0 = time.perf_counter()
    code, error = 1, ""
    with open(trial_dir / "train.log", "a") as log:
        log.write(f"\n=== train.py {' '.join(argv)}\n")
        log.flush()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                code = int(train_main(argv))
            except SystemExit as exc:  # argparse rejected a flag
                code = exc.code if isinstance(exc.code, int) else 2
            except Exception:
                error = traceback.format_exc()
                log.write(error)
    wall = time.perf_counter() - t0
    new = sorted(set(algo_dir.iterdir()) - before) if algo_dir.is_dir() else []
    if code == 0 and len(new) == 1 and (new[0] / "eval" / "table.csv").is_file():
        table = pd.read_csv(new[0] / "eval" / "table.csv")
        agent = table[table["policy"].astype(str).str.endswith("(agent)")]
        if len(agent) == 1:
            result = {**base, "status": "ok", **_row(agent.iloc[0]), "wall_time_s": wall, "run_dir": str(new[0]),
                      "baselines": [{"policy": str(r["policy"]), **_row(r)} for _, r in table.iterrows()
                                    if not str(r["policy"]).endswith("(agent)")]}
            if not all(math.isfinite(result[m]) for m in ("objective", "gap_to_offline")):
                error = f"non-finite objective or gap in {new[0] / 'eval' / 'table.csv'}"
            else:
                write_json(trial_dir / RESULT_FILE, result)
                return result
        else:
            error = f"{new[0] / 'eval' / 'table.csv'} has {len(agent)} agent rows, expected 1"
    if not error:
        tail = (trial_dir / "train.log").read_text().strip().splitlines()[-5:]
        error = f"train.py exited with code {code}: " + " | ".join(tail)
    result = {**base, "status": "error", "exit_code": code, "error": error.strip()[-2000:], "wall_time_s": wall,
              "run_dir": str(new[0]) if len(new) == 1 else ""}
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
