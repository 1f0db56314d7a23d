"""The evaluation protocol of a scenario: the episodes an evaluated split is cut into (docs/data.md, *The monthly
protocol*).

A scenario whose splits include calendar months (splits named ``"YYYY-MM"``: the ``world`` scenarios) has the
**monthly protocol**: every calendar month of the evaluated split is one episode with its own offline optimum,
and a table reports per policy the mean gap over months with a 95 % bootstrap CI
(:func:`equiglb.stats.summarize`). Any other scenario evaluates the split as one window. :func:`evaluation_months`
is the one place that decides it; :func:`run_months` runs policies month by month and :func:`summary_rows`
aggregates the months of each policy. The callers are :func:`equiglb.evaluate_policy`,
:func:`equiglb.agents.evaluate.evaluate_table` (``python -m equiglb.agents.evaluate``, the final table of
``train.py``), the periodic validation of ``train.py`` and ``benchmarks/world_baselines.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from equiglb.baselines.compare import run_policies
from equiglb.baselines.offline import OfflinePolicy
from equiglb.baselines.policy import Policy
from equiglb.ledger import Report
from equiglb.scenario import Scenario, Weights

__all__ = ["MONTHLY_COLUMNS", "Episodes", "MonthlyComparison", "episodes", "evaluation_months", "tuning_hours",
           "month_row", "run_months", "summary_rows"]

_MONTH = re.compile(r"^\d{4}-\d{2}$")

#: Columns printed for a monthly table (every numeric column but ``months`` is the mean over months; the CSV
#: and JSON files carry every column).
MONTHLY_COLUMNS = ("policy", "information", "months", "energy_cost_usd", "carbon_max_t", "water_max_m3",
                   "social_max", "unserved", "objective", "gap_to_offline", "gap_to_offline_ci_low",
                   "gap_to_offline_ci_high")


def evaluation_months(scenario: Scenario, split: str) -> list[str] | None:
    """The calendar months (``"YYYY-MM"``, in time order) that are the episodes of ``split`` when ``scenario``
    has the monthly protocol (its splits include calendar months); ``None`` when it does not (the split is
    evaluated as one window). A split of a monthly scenario that holds no whole month is an
    :class:`~equiglb.validate.OptionError`."""
    if not any(_MONTH.match(name) for name in scenario.splits) or _MONTH.match(split):
        return None                      # a single month asked for is one window already
    from equiglb.envs.monthly import calendar_months  # noqa: PLC0415  (the env stack only for monthly scenarios)

    return calendar_months(scenario, split)


def tuning_hours(scenario: Scenario, train_split: str = "train") -> int | None:
    """Length of the windows ``online-eglb-tuned`` tunes on under the monthly protocol: the mean length of the
    calendar months of ``train_split`` (730 h for the ``world`` train year), so that one tuning serves months of
    672 to 744 h. ``None`` without the monthly protocol (the tuning windows are as long as the evaluated
    window) or when ``train_split`` holds no month."""
    if train_split not in scenario.splits:
        return None
    s, n = scenario.splits[train_split]
    lengths = [v[1] for k, v in scenario.splits.items() if _MONTH.match(k) and s <= v[0] and v[0] + v[1] <= s + n]
    return int(round(float(np.mean(lengths)))) if lengths else None


@dataclass(frozen=True)
class Episodes:
    """How a split is evaluated (:func:`episodes`): ``months`` (the calendar months, each one episode; ``None``:
    the split is one window), ``probe`` (the window the baselines are checked on before any run: the first
    month, or the split) and ``tune_hours`` (the tuning windows' length of ``online-eglb-tuned``: one mean
    month under the monthly protocol, else ``None``, the evaluated window's length)."""

    months: list[str] | None
    probe: Scenario
    tune_hours: int | None


def episodes(scenario: Scenario, split: str, train_split: str = "train") -> Episodes:
    """The :class:`Episodes` of ``split`` of ``scenario`` (``split`` must be one of its splits)."""
    months = evaluation_months(scenario, split)
    if months is None:
        return Episodes(None, scenario.split(split), None)
    return Episodes(months, scenario.split(months[0]), tuning_hours(scenario, train_split))


@dataclass
class MonthlyComparison:
    """What :func:`run_months` evaluated: per policy and month its row (``month_rows``, the columns of
    ``months.csv``), the summary over months (``rows``, one per policy, the columns of ``table.csv``) and the
    ledger's report of each month (``reports[policy]``, in month order)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    month_rows: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, list[Report]] = field(default_factory=dict)


def run_months(scenario: Scenario, months: Sequence[str], policies: Iterable[Policy], weights: Weights | None = None,
               on_done: Callable[..., None] | None = None) -> MonthlyComparison:
    """Schedule every policy on each month of ``months`` (splits of ``scenario``) as one episode and account it
    by the ledger against that month's offline optimum (:func:`equiglb.baselines.compare.run_policies` per
    month); the rows per month and their summary per policy (:func:`summary_rows`).

    ``on_done(policy, month=month)`` is called after each (policy, month)."""
    pols = list(policies)
    oracle = next((p for p in pols if isinstance(p, OfflinePolicy)), None)
    out = MonthlyComparison()
    for m in months:
        window = scenario.split(m)
        w = window.weights if weights is None else weights
        # the month's offline optimum: the offline policy's own row when it is in the list, else solved once here
        j_off = None if oracle is not None else OfflinePolicy().solve(window, w).objective_usd
        res = run_policies(window, pols, w, offline_objective=j_off,
                           on_done=None if on_done is None else partial(on_done, month=m))
        if j_off is None:
            j_off = float(next(r["objective"] for r in res.rows if r["policy"] == getattr(oracle, "name", None)))
        for r in res.rows:
            out.month_rows.append(month_row(r, m, window.T, j_off))
            out.reports.setdefault(r["policy"], []).append(res.reports[r["policy"]])
    out.rows = summary_rows(out.month_rows, f"{scenario.name}: {len(months)} month(s)")
    return out


def month_row(row: dict[str, Any], month: str, hours: int, offline_objective: float) -> dict[str, Any]:
    """One row of ``months.csv`` from a row of :func:`~equiglb.baselines.compare.run_policies` on the month's
    window: ``policy``, ``information``, ``month``, ``hours_h``, the ledger's columns, ``objective_usd``,
    ``offline_objective_usd``, ``gap_to_offline_pct`` (100 (J / J_offline - 1)) and ``wall_time_s``."""
    ledger = {k: v for k, v in row.items() if k not in ("policy", "information", "scenario", "objective",
                                                           "gap_to_offline", "wall_time_s")}
    return {"policy": row["policy"], "information": row["information"], "month": month, "hours_h": int(hours),
            **ledger, "objective_usd": row["objective"], "offline_objective_usd": offline_objective,
            "gap_to_offline_pct": 100.0 * row["gap_to_offline"], "wall_time_s": row["wall_time_s"]}


def summary_rows(month_rows: Sequence[dict[str, Any]], scenario: str = "") -> list[dict[str, Any]]:
    """One row per policy (in first-seen order) from the rows of :func:`month_row`: ``policy``,
    ``information``, ``scenario``, ``months``, the mean over months of every ledger column, ``objective`` (mean
    J per month, USD), ``gap_to_offline`` (mean over months of J / J_offline - 1, a fraction, as in the
    one-window table) with its 95 % bootstrap CI over months (``gap_to_offline_ci_low``/``_high``,
    :func:`equiglb.stats.summarize`) and ``wall_time_s`` (summed)."""
    from equiglb.stats import summarize  # noqa: PLC0415  (rliable and pandas only when a table is summarized)

    names = list(dict.fromkeys(r["policy"] for r in month_rows))
    out = []
    skip = {"policy", "information", "month", "hours_h", "objective_usd", "offline_objective_usd",
            "gap_to_offline_pct", "wall_time_s"}
    for name in names:
        sel = [r for r in month_rows if r["policy"] == name]
        gaps = [r["gap_to_offline_pct"] / 100.0 for r in sel]
        finite = all(math.isfinite(g) for g in gaps)
        s = summarize(gaps) if finite else {"mean": math.nan, "mean_ci_low": math.nan, "mean_ci_high": math.nan}
        means = {k: float(np.mean([r[k] for r in sel])) for k, v in sel[0].items()
                 if k not in skip and isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        out.append({"policy": name, "information": sel[0]["information"], "scenario": scenario, "months": len(sel),
                    **means, "objective": float(np.mean([r["objective_usd"] for r in sel])),
                    "gap_to_offline": s["mean"], "gap_to_offline_ci_low": s["mean_ci_low"],
                    "gap_to_offline_ci_high": s["mean_ci_high"],
                    "wall_time_s": float(np.sum([r["wall_time_s"] for r in sel]))})
    return out
