"""Outputs of a sweep: ``trials.csv``, ``summary.csv``/``summary.json``, the printed table and the plots.

``summary`` has one row per algorithm × grid point and one per baseline × grid point, aggregated
over seeds by :func:`equiglb.stats.summarize_groups` (mean, IQM and 95 % percentile-bootstrap
confidence intervals, rliable). ``gap_to_offline`` is a fraction of the offline optimum's objective
(0.05 = 5 % above it); ``objective`` and ``energy_cost_usd`` are USD, ``carbon_max_t`` tonnes CO2,
``water_max_m3`` cubic metres: the ledger's units (docs/model.md §5, §6). ``information`` says what each
policy knew beyond the present (none, forecasts (model, horizon), hindsight), as the evaluation tables of the
trials' run folders label it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from equiglb.stats import summarize_groups  # noqa: E402
from equiglb.sweep.trial import METRICS  # noqa: E402

__all__ = ["SUMMARY_COLUMNS", "trials_table", "baselines_table", "summary_table", "write_outputs"]

#: Columns summarized over seeds with bootstrap confidence intervals.
SUMMARY_COLUMNS = ("gap_to_offline", "objective")
#: Columns averaged over seeds (the frontier's axes).
MEAN_COLUMNS = ("energy_cost_usd", "carbon_max_t", "water_max_m3")


def _informations(run_dir: str) -> dict[str, str]:
    """policy -> its ``information`` label in the run folder's evaluation table (empty if none is there)."""
    path = Path(run_dir) / "eval" / "table.csv" if run_dir else None
    if path is None or not path.is_file():
        return {}
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError):
        return {}
    if "information" not in table.columns:
        return {}
    return {str(p): ("" if pd.isna(i) else str(i)) for p, i in zip(table["policy"], table["information"])}


def _agent_information(run_dir: str) -> str:
    return next((i for p, i in _informations(run_dir).items() if p.endswith("(agent)")), "")


def trials_table(results: list[dict[str, Any]], grid_keys: list[str]) -> pd.DataFrame:
    """One row per trial: algo, seed, every grid key, status, the agent's metrics, wall time, run folder."""
    rows = []
    for r in results:
        rows.append({"trial_id": r["trial_id"], "algo": r["algo"], "seed": r["seed"],
                     **{k: r.get("point", {}).get(k) for k in grid_keys}, "status": r["status"],
                     **{m: r.get(m, math.nan) for m in METRICS}, "wall_time_s": r.get("wall_time_s", math.nan),
                     "run_dir": r.get("run_dir", ""), "error": r.get("error", ""),
                     "information": _agent_information(r.get("run_dir", "")) if r["status"] == "ok" else ""})
    return pd.DataFrame(rows)


def baselines_table(results: list[dict[str, Any]], grid_keys: list[str]) -> pd.DataFrame:
    """One row per baseline × grid point × seed (from the trials that solved the baselines)."""
    rows = []
    for r in results:
        if r["status"] != "ok":
            continue
        info = _informations(r.get("run_dir", ""))
        for b in r.get("baselines", []):
            rows.append({"policy": b["policy"], "seed": r["seed"], **{k: r.get("point", {}).get(k) for k in grid_keys},
                         **{m: b.get(m, math.nan) for m in METRICS}, "trial_id": r["trial_id"],
                         "information": info.get(str(b["policy"]), "")})
    df = pd.DataFrame(rows)
    if len(df):   # each (baseline, point, seed) once: the first algorithm's trial solved the full set
        df = df.drop_duplicates(subset=["policy", "seed", *grid_keys], keep="first")
    return df


def summary_table(trials: pd.DataFrame, baselines: pd.DataFrame, grid_keys: list[str], reps: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Seed aggregation per algorithm × grid point (``kind`` = agent) and baseline × grid point
    (``kind`` = baseline), over the successful trials only."""
    parts = []
    ok = trials[trials["status"] == "ok"].rename(columns={"algo": "policy"})
    if len(ok):
        s = summarize_groups(ok, ["policy", *grid_keys], SUMMARY_COLUMNS, reps=reps, seed=seed,
                             means=MEAN_COLUMNS)
        parts.append(s.assign(kind="agent"))
    if len(baselines):
        s = summarize_groups(baselines, ["policy", *grid_keys], SUMMARY_COLUMNS, reps=reps, seed=seed,
                             means=MEAN_COLUMNS)
        parts.append(s.assign(kind="baseline"))
    if not parts:
        return pd.DataFrame(columns=["kind", "policy", *grid_keys, "n_seeds"])
    df = pd.concat(parts, ignore_index=True)
    # what each policy knew at each grid point (the first trial's label)
    labels: dict[tuple, str] = {}
    for table in (ok, baselines):
        if "information" in table.columns:
            for _, r in table.iterrows():
                labels.setdefault((r["policy"], *[r[k] for k in grid_keys]), str(r["information"]))
    df["information"] = [labels.get((r["policy"], *[r[k] for k in grid_keys]), "") for _, r in df.iterrows()]
    first = ("kind", "policy", "information", *grid_keys)
    return df[[*first, *[c for c in df.columns if c not in first]]]


def format_summary(summary: pd.DataFrame, grid_keys: list[str]) -> str:
    """The readable table printed at the end of a sweep."""
    if summary.empty:
        return "(no successful trial)"
    rows = []
    for _, r in summary.iterrows():
        rows.append({"policy": r["policy"], "information": r.get("information", ""), **{k: r[k] for k in grid_keys},
                     "n": int(r["n_seeds"]),
                     "gap mean % [95% CI]": f"{100 * r['gap_to_offline_mean']:+.2f} "
                                            f"[{100 * r['gap_to_offline_mean_ci_low']:+.2f}, "
                                            f"{100 * r['gap_to_offline_mean_ci_high']:+.2f}]",
                     "gap IQM %": f"{100 * r['gap_to_offline_iqm']:+.2f}",
                     "J mean (USD)": f"{r['objective_mean']:,.0f}",
                     "cost (USD)": f"{r['energy_cost_usd_mean']:,.0f}",
                     "worst carbon (t)": f"{r['carbon_max_t_mean']:,.2f}",
                     "worst water (m3)": f"{r['water_max_m3_mean']:,.0f}"})
    return pd.DataFrame(rows).to_string(index=False)


def _point_label(row: pd.Series, grid_keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in grid_keys) or "default"


def _colors(n: int) -> list[Any]:
    """``n`` pairwise different colours (tab10, tab20, then evenly spaced hues)."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("hsv")(i / n) for i in range(n)]


#: marker of each grid point (in grid order) on the frontier; cycled beyond its length
GRID_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")


def plot_gaps(summary: pd.DataFrame, grid_keys: list[str], path: Path) -> None:
    """Mean gap to the offline optimum with its 95 % CI, per policy (colour) and grid point (x)."""
    labels = list(dict.fromkeys(_point_label(r, grid_keys) for _, r in summary.iterrows()))
    policies = list(dict.fromkeys(summary["policy"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) * max(1, len(policies)) / 2), 4))
    width = 0.8 / max(1, len(policies))
    colors = _colors(len(policies))
    for i, pol in enumerate(policies):
        sub = summary[summary["policy"] == pol]
        shift = (i - (len(policies) - 1) / 2) * width
        xs = [labels.index(_point_label(r, grid_keys)) + shift for _, r in sub.iterrows()]
        mean = 100 * sub["gap_to_offline_mean"].to_numpy()
        lo = mean - 100 * sub["gap_to_offline_mean_ci_low"].to_numpy()
        hi = 100 * sub["gap_to_offline_mean_ci_high"].to_numpy() - mean
        ax.errorbar(xs, mean, yerr=[lo, hi], fmt="o", capsize=3, label=pol, color=colors[i])
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right")
    ax.set_ylabel("gap to offline optimum (%), mean and 95% CI")
    ax.axhline(0, color="grey", lw=0.8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="policy")   # beside the data
    ax.set_title("Objective J above the offline optimum, over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_frontier(summary: pd.DataFrame, grid_keys: list[str], path: Path) -> None:
    """The cost–equity frontier: mean energy cost (USD) against the worst region's carbon (t) and
    water (m³), one line per policy through the grid points (in grid order), every policy on one figure."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    policies = list(dict.fromkeys(summary["policy"]))
    colors = _colors(len(policies))
    points = list(dict.fromkeys(_point_label(r, grid_keys) for _, r in summary.iterrows()))
    marker_of = {p: GRID_MARKERS[i % len(GRID_MARKERS)] for i, p in enumerate(points)}
    # colour = policy (a line through its grid points, agents solid, baselines dashed), marker = grid point;
    # both named in legends beside the axes, no text over the data
    for n, pol in enumerate(policies):
        sub = summary[summary["policy"] == pol]
        style = "-" if sub["kind"].iloc[0] == "agent" else "--"
        for ax, col in zip(axes, ("carbon_max_t_mean", "water_max_m3_mean")):
            ax.plot(sub["energy_cost_usd_mean"], sub[col], style, color=colors[n], lw=1.2, label=pol)
            for _, r in sub.iterrows():
                ax.scatter(r["energy_cost_usd_mean"], r[col], color=colors[n], s=36, zorder=3,
                           marker=marker_of[_point_label(r, grid_keys)], edgecolors="black", linewidths=0.4)
    axes[0].set_ylabel("worst-region carbon (t CO2)")
    axes[1].set_ylabel("worst-region water (m3)")
    for ax in axes:
        ax.set_xlabel("energy cost (thousand USD)")
        ax.xaxis.set_major_locator(MaxNLocator(5))          # tick labels that never run into each other
        ax.xaxis.set_major_formatter(lambda v, _pos: f"{v / 1000:,.1f}")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    first = fig.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.95), title="policy")
    if len(points) > 1:
        grid = [Line2D([], [], ls="", marker=marker_of[p], color="grey", markeredgecolor="black", label=p)
                for p in points]
        fig.add_artist(first)
        fig.legend(handles=grid, fontsize=7, loc="lower left", bbox_to_anchor=(1.0, 0.05), title="grid point")
    fig.suptitle("Cost-equity frontier over the grid (means over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_outputs(results: list[dict[str, Any]], grid_keys: list[str], out: Path, reps: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Write trials.csv, baselines.csv, summary.csv/.json and the plots to ``out``; return the summary."""
    trials = trials_table(results, grid_keys)
    baselines = baselines_table(results, grid_keys)
    trials.to_csv(out / "trials.csv", index=False)
    baselines.to_csv(out / "baselines.csv", index=False)
    summary = summary_table(trials, baselines, grid_keys, reps=reps, seed=seed)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.json").write_text(json.dumps(summary.to_dict(orient="records"), indent=1))
    if not summary.empty:
        plot_gaps(summary, grid_keys, out / "gap_ci.png")
        plot_frontier(summary, grid_keys, out / "frontier.png")
    return summary
