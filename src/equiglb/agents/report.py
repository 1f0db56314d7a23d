"""Comparison tables (CSV, JSON) and plots (PNG, matplotlib Agg) of agents beside baselines.

Files written by :func:`write_report` into a folder:

* ``table.csv``, ``table.json``: one row per policy, the columns of the baselines command
  (energy cost USD, carbon/water/social max, mean, PAR, ..., unserved load units, objective USD,
  gap to the offline optimum);
* ``footprints.png``: per-region (per data center) carbon (t) and water (m³) of every policy;
* ``cost_vs_worst.png``: energy cost (USD) against the worst-region carbon (t) and water (m³), one
  point per policy;
* ``routing_<policy>.png``: for each agent, the load served at each data center over time.

Under the monthly protocol (:mod:`equiglb.protocol`) :func:`write_monthly_report` writes ``table.csv`` and
``table.json`` (one row per policy: the mean over months, the mean gap with its 95 % CI), ``months.csv`` and
``months.json`` (one row per policy and month, units in the headers), ``footprints.png`` (per-site footprints
summed over the months) and ``cost_vs_worst.png`` (means over months); no routing plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from equiglb.baselines import write_csv, write_json
from equiglb.protocol import MonthlyComparison
from equiglb.scenario import Scenario

__all__ = ["write_table", "write_report", "write_monthly_report", "plot_footprints", "plot_cost_vs_worst",
           "plot_routing", "distinct_colors", "MARKERS"]

#: Marker shapes cycled with the colours, so that points stay distinguishable in greyscale too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")


def write_table(rows: Sequence[Mapping[str, Any]], out_dir: Path, stem: str = "table") -> tuple[Path, Path]:
    """Write ``rows`` as ``<stem>.csv`` and ``<stem>.json`` (the baselines command's writers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.json"
    write_csv([dict(r) for r in rows], csv_path)
    write_json([dict(r) for r in rows], json_path)
    return csv_path, json_path


def _plt():
    # matplotlib is imported here, lazily, because it is heavy and only needed for the plots.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def distinct_colors(n: int) -> list[Any]:
    """``n`` pairwise different colours: matplotlib's ``tab10`` up to 10, ``tab20`` up to 20, else evenly spaced
    hues (never two policies of one plot in one colour)."""
    plt = _plt()
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("hsv")(i / n) for i in range(n)]


def plot_footprints(footprints: Mapping[str, Mapping[str, np.ndarray]], site_names: Sequence[str],
                    path: Path, window: str = "the evaluation window") -> Path:
    """Grouped bars: per-site carbon (t) and water (m³) of each policy on ``window`` (words of the title)."""
    plt = _plt()
    names = list(footprints)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(site_names) + 3), 7), sharex=True)
    x = np.arange(len(site_names))
    width = 0.8 / max(len(names), 1)
    colors = distinct_colors(len(names))
    for ax, key, label in ((axes[0], "carbon_t", "carbon (t CO2)"), (axes[1], "water_m3", "water (m³)")):
        for n, name in enumerate(names):
            ax.bar(x + (n - (len(names) - 1) / 2) * width, footprints[name][key], width, label=name,
                   color=colors[n])
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(x, site_names, rotation=30, ha="right")
    axes[0].set_title(f"Per-region footprints (data-center regions) on {window}")
    # the legend beside the axes, never over the bars
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="policy", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_cost_vs_worst(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Energy cost (USD) against the worst-region carbon (t) and water (m³), one point per policy."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    colors = distinct_colors(len(rows))
    # each policy one colour and marker, named in one legend beside the axes: no labels over the points
    # (policies with nearly the same cost and footprint would overprint each other's names)
    for ax, key, label in ((axes[0], "carbon_max_t", "worst-region carbon (t CO2)"),
                           (axes[1], "water_max_m3", "worst-region water (m³)")):
        for n, r in enumerate(rows):
            if r.get(key) is None or r.get("energy_cost_usd") is None:
                continue
            ax.scatter(r["energy_cost_usd"], r[key], s=46, color=colors[n], marker=MARKERS[n % len(MARKERS)],
                       label=str(r["policy"]), edgecolors="black", linewidths=0.4, zorder=3)
        ax.set_xlabel("energy cost (thousand USD)")
        ax.xaxis.set_major_formatter(lambda v, _pos: f"{v / 1000:,.0f}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), title="policy")
    fig.suptitle("Cost against the worst-region footprint (lower-left is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_routing(x: np.ndarray, scenario: Scenario, title: str, path: Path) -> Path:
    """Stacked area of the load served at each data center (load units per slot) over time."""
    plt = _plt()
    per_site = np.asarray(x).sum(axis=(2, 3))                      # (T, N)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ts = scenario.timestamps.astype("datetime64[s]").astype(object)
    ax.stackplot(ts, per_site.T, labels=scenario.site_names, colors=distinct_colors(per_site.shape[1]))
    ax.plot(ts, scenario.demand.sum(axis=1), "k--", lw=1, label="total demand")
    ax.set_ylabel("load served (load units per slot)")
    ax.set_xlabel("time (UTC)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="data center")   # beside the data
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(out_dir: Path, rows: Sequence[Mapping[str, Any]], scenario: Scenario,
                 footprints: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                 agent_routing: Mapping[str, np.ndarray] | None = None) -> list[Path]:
    """Write the table (CSV, JSON) and the plots into ``out_dir``; return the paths written.

    Args:
        rows: one dict per policy (``policy`` key plus the ledger columns).
        scenario: the evaluation window (site names, timestamps, demand).
        footprints: per policy, ``{"carbon_t": (N,), "water_m3": (N,)}`` from the ledger's Report.
        agent_routing: per agent, its executed schedule x[t, i, j, k].
    """
    out_dir = Path(out_dir)
    paths = list(write_table(rows, out_dir))
    if footprints:
        paths.append(plot_footprints(footprints, scenario.site_names, out_dir / "footprints.png"))
    paths.append(plot_cost_vs_worst(rows, out_dir / "cost_vs_worst.png"))
    for name, x in (agent_routing or {}).items():
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_")
        title = f"Routing of {name} on {scenario.name}"
        paths.append(plot_routing(x, scenario, title, out_dir / f"routing_{slug}.png"))
    return paths


def write_monthly_report(out_dir: Path, result: MonthlyComparison, scenario: Scenario) -> list[Path]:
    """Write the monthly protocol's table (``table.csv``/``.json``: the summary over months), the per-month rows
    (``months.csv``/``.json``) and the plots (footprints summed over the months, cost against the worst
    footprint as means over months) into ``out_dir``; return the paths written. ``scenario``: any window of
    the evaluated scenario (its site names)."""
    out_dir = Path(out_dir)
    paths = [*write_table(result.rows, out_dir), *write_table(result.month_rows, out_dir, stem="months")]
    footprints = {name: {"carbon_t": np.sum([r.carbon_t for r in reps], axis=0),
                         "water_m3": np.sum([r.water_m3 for r in reps], axis=0)}
                  for name, reps in result.reports.items()}
    months = len(next(iter(result.reports.values()), []))
    paths.append(plot_footprints(footprints, scenario.site_names, out_dir / "footprints.png",
                                 window=f"the {months} evaluated months, summed"))
    paths.append(plot_cost_vs_worst(result.rows, out_dir / "cost_vs_worst.png"))
    return paths
