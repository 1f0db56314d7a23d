"""What runs inside Ray: the Tune trainables and the child process of each trial (light imports only).

A Ray worker imports this module to run a trial, so it imports nothing heavy (no torch, no cvxpy):
the trial itself runs in a child process, ``python -m equiglb.sweep.trial <trial folder>/spec.json``,
because train.py installs signal handlers (Ctrl-C saves a checkpoint), which Python allows only in
a main thread, and Ray Tune runs a function trainable in a thread.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ray import tune

__all__ = ["RESULT_FILE", "ERROR_FILE", "run_trial_process", "read_result", "write_json", "grid_trainable",
           "search_trainable"]

RESULT_FILE = "result.json"
ERROR_FILE = "error.json"


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def read_result(trial_dir: Path) -> dict[str, Any] | None:
    """The finished result of a trial folder, its error record, or None if it never ended."""
    for name in (RESULT_FILE, ERROR_FILE):
        p = trial_dir / name
        if p.is_file():
            try:
                record = json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                record = exc
            if not isinstance(record, dict) or record.get("status") not in ("ok", "error"):
                # written atomically by the trial, so damaged afterwards: the trial counts as not finished
                # (--resume runs it again) rather than stopping the sweep with a traceback
                why = f"{type(record).__name__}: {record}" if isinstance(record, Exception) else "no status"
                print(f"equiglb.sweep: warning: {p} is not a trial record ({why}); the trial is run again",
                      file=sys.stderr, flush=True)
                return None
            return record
    return None


def run_trial_process(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`equiglb.sweep.trial.run_trial` in a child Python process (its main thread), with this process's equiglb
    first on its path; returns the result it wrote, or an error record if the process died."""
    trial_dir = Path(spec["trial_dir"])
    trial_dir.mkdir(parents=True, exist_ok=True)
    for name in (RESULT_FILE, ERROR_FILE):
        (trial_dir / name).unlink(missing_ok=True)
    spec_path = trial_dir / "spec.json"
    write_json(spec_path, spec)
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
    t0 = time.perf_counter()
    with open(trial_dir / "train.log", "a") as log:
        proc = subprocess.run([sys.executable, "-m", "equiglb.sweep.trial", str(spec_path)], stdout=log,
                              stderr=subprocess.STDOUT, env=env, check=False)
    result = read_result(trial_dir)
    if result is not None:   # the child's whole life: interpreter start, imports, train.py, evaluation
        result["process_wall_s"] = time.perf_counter() - t0
        write_json(trial_dir / (RESULT_FILE if result["status"] == "ok" else ERROR_FILE), result)
    if result is None:
        result = {"trial_id": spec["trial_id"], "algo": spec["algo"], "seed": spec["seed"],
                  "point": spec.get("point", {}), "status": "error", "exit_code": proc.returncode,
                  "error": f"the trial process died with exit code {proc.returncode}; see {trial_dir / 'train.log'}",
                  "wall_time_s": time.perf_counter() - t0, "process_wall_s": time.perf_counter() - t0, "run_dir": ""}
        write_json(trial_dir / ERROR_FILE, result)
    return result


def grid_trainable(config: dict[str, Any]) -> None:
    result = run_trial_process(config["spec"])
    tune.report({"ok": result["status"] == "ok", "gap_to_offline": result.get("gap_to_offline", math.nan),
                 "objective": result.get("objective", math.nan), "wall_time_s": result["wall_time_s"]})


def search_trainable(config: dict[str, Any]) -> None:
    spec = dict(config["spec"])
    tid = tune.get_context().get_trial_id()
    spec["trial_id"] = f"{spec['algo']}__search__{tid}"
    spec["trial_dir"] = str(Path(spec["trial_dir"]) / spec["trial_id"])
    spec["hyperparams"] = {**spec["hyperparams"], **{k: repr(v) if isinstance(v, float) else str(v)
                                                     for k, v in config["hp"].items()}}
    result = run_trial_process(spec)
    # a failed configuration scores as the worst possible, so the searcher moves away from it
    tune.report({"val_gap_to_offline": result.get("gap_to_offline", math.inf) if result["status"] == "ok"
                 else 1e9, "val_objective": result.get("objective", math.nan), "ok": result["status"] == "ok"})


