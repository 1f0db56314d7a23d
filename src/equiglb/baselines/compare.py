"""Run policies on one window and tabulate them: every number comes from the ledger.

A row is ``{"policy": name, **evaluate(scenario, x, weights).row(), "wall_time_s": ..., "information": ...,
"gap_to_offline": J/J_off - 1}``; the offline optimum J_off is solved on the same window with the same weights
(re-used from the policies when one of them is the offline policy). ``information`` says what the policy
knew beyond the present (:func:`information_of`): ``none`` (online eGLB, the oblivious policies),
``forecasts (<model>, <horizon>)`` (MPC, agents; ``perfect (oracle)`` for the truth) or ``hindsight
(oracle)`` (the offline optimum).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from equiglb.baselines.offline import OfflinePolicy
from equiglb.baselines.policy import Policy
from equiglb.ledger import Report, evaluate
from equiglb.scenario import Scenario, Weights

__all__ = ["Comparison", "run_policies", "compare", "format_table", "write_csv", "write_json", "TABLE_COLUMNS",
           "information_of"]

#: Columns printed by :func:`format_table` (the CSV/JSON files carry every column of the rows).
TABLE_COLUMNS = ("policy", "information", "scenario", "energy_cost_usd", "carbon_max_t", "carbon_mean_t", "carbon_par",
                 "water_max_m3", "water_mean_m3", "water_par", "social_max", "unserved", "objective",
                 "gap_to_offline")


def information_of(policy: Policy) -> str:
    """What ``policy`` knew beyond the present: its own ``information`` attribute (MPC, agents), ``"hindsight
    (oracle)"`` for the offline optimum, else ``"none"`` (online eGLB and the oblivious policies)."""
    info = getattr(policy, "information", None)
    if isinstance(info, str):
        return info
    if isinstance(policy, OfflinePolicy):
        return "hindsight (oracle)"
    return "none"


@dataclass
class Comparison:
    """What :func:`run_policies` evaluated: per policy (in order) its table row, the schedule
    x[t, i, j, k] it returned and the ledger's report of that schedule."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    schedules: dict[str, np.ndarray] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)


def run_policies(scenario: Scenario, policies: Iterable[Policy], weights: Weights | None = None,
                 offline_objective: float | None = None,
                 on_done: Callable[[Policy], None] | None = None) -> Comparison:
    """Schedule each policy on ``scenario`` (the whole window) once and account it by the ledger.

    Args:
        scenario: the window to evaluate on (e.g. ``scenario.split("test")``).
        policies: :class:`~equiglb.baselines.policy.Policy` objects (baselines or agents), with
            distinct names.
        weights: objective weights (default: the scenario's).
        offline_objective: J of the offline optimum on this window and weights, if already known;
            otherwise it is taken from an offline policy in ``policies`` or solved.
        on_done: called with each policy after it is scheduled (e.g. to advance a progress bar).

    Returns:
        The rows (``policy`` first, ``gap_to_offline`` = J / J_off - 1, ``wall_time_s``), the
        schedules and the reports, each policy evaluated exactly once.
    """
    w = scenario.weights if weights is None else weights
    out = Comparison()
    for pol in policies:
        if pol.name in out.schedules:
            raise ValueError(f"two policies are named {pol.name!r}; give them distinct names")
        t0 = time.perf_counter()
        x = np.asarray(pol.schedule(scenario, w))
        wall = time.perf_counter() - t0
        rep = evaluate(scenario, x, w)
        row = {"policy": pol.name, **rep.row(), "wall_time_s": wall, "information": information_of(pol)}
        if isinstance(pol, OfflinePolicy) and offline_objective is None:
            offline_objective = row["objective"]
        out.rows.append(row)
        out.schedules[pol.name] = x
        out.reports[pol.name] = rep
        if on_done is not None:
            on_done(pol)
    if offline_objective is None:
        offline_objective = OfflinePolicy().solve(scenario, w).objective_usd
    for row in out.rows:
        row["gap_to_offline"] = row["objective"] / offline_objective - 1.0 if offline_objective else math.nan
    return out


def compare(scenario: Scenario, policies: Iterable[Policy], weights: Weights | None = None,
            offline_objective: float | None = None) -> list[dict[str, Any]]:
    """The rows of :func:`run_policies` (one dict per policy, in order; ``policy`` is the first key,
    ``gap_to_offline`` = J / J_off - 1)."""
    return run_policies(scenario, policies, weights, offline_objective).rows


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0:
            return "0"
        if abs(v) >= 1e4:
            return f"{v:,.2f}"
        return f"{v:.4g}"
    return str(v)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """The rows as an aligned text table (numbers right-aligned)."""
    cols = [c for c in columns if any(c in r for r in rows)]
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[k]) for row in cells]) for k, c in enumerate(cols)]
    num = [all(isinstance(r.get(c), (int, float, np.number)) for r in rows) for c in cols]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(v.rjust(wd) if n else v.ljust(wd) for v, wd, n in zip(vals, widths, num)).rstrip()

    return "\n".join([line(cols), line(["-" * wd for wd in widths])] + [line(r) for r in cells])


def write_csv(rows: Sequence[dict[str, Any]], path: os.PathLike | str) -> None:
    """Write the rows to a CSV file (header = union of the keys, in first-seen order)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=keys)
        wr.writeheader()
        for r in rows:
            wr.writerow({k: _plain(v) for k, v in r.items()})


def write_json(rows: Sequence[dict[str, Any]], path: os.PathLike | str) -> None:
    """Write the rows to a JSON file as a list of objects (non-finite numbers become null)."""
    with open(path, "w") as fh:
        json.dump([{k: _plain(v, json_safe=True) for k, v in r.items()} for r in rows], fh, indent=2)
        fh.write("\n")


def _plain(v: Any, json_safe: bool = False) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if json_safe and isinstance(v, float) and not math.isfinite(v):
        return None
    return v
