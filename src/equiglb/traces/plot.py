"""A figure of the ``world`` scenario's data (``python -m equiglb.traces plot world --out FILE.png``).

Panels: daily means of carbon intensity, price and water intensity of every site over the two years (one
row per site; colour scales clipped at the 1st and 99th percentiles so that a few price spikes do not wash
out the rest), the three ServeGen models' request rates over the trace's 14 days (each relative to its own
mean; the scenario's demand uses m-large), and each region's mean demand by UTC hour of day. matplotlib is
imported only here (no pyplot, no display).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from equiglb.scenario import Scenario
from equiglb.traces.fetch import PINNED_DATASETS, verify_dataset_files
from equiglb.traces.world import servegen_hourly

__all__ = ["plot_world"]


def _daily(a: np.ndarray) -> np.ndarray:
    T = a.shape[0] // 24 * 24
    return a[:T].reshape(T // 24, 24, -1).mean(axis=1)


def plot_world(scn: Scenario, out: os.PathLike | str, servegen_dir: os.PathLike | str | None = None) -> Path:
    """Write the figure of ``scn`` (a ``world`` scenario) to ``out``; the ServeGen panel reads ``servegen_dir``
    (default: the same look-up as the scenario, :func:`equiglb.traces.datadir.dataset_dir`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    from equiglb.traces.datadir import dataset_dir  # noqa: PLC0415

    sg = Path(servegen_dir) if servegen_dir is not None else dataset_dir("servegen", None)
    models = ("m-large", "m-mid", "m-small")
    rels = [r for r in PINNED_DATASETS["servegen"].manifest if r.split("/")[2] in models]
    verify_dataset_files("servegen", sg, rels)
    rates = {m: servegen_hourly(sg, m) for m in models}

    fig = Figure(figsize=(15, 17), dpi=100)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(4, 2, height_ratios=[1, 1, 1, 1.05], hspace=0.3, wspace=0.34, top=0.95)
    days = scn.timestamps[::24][: scn.T // 24].astype("datetime64[D]")
    x0, x1 = days[0].astype("datetime64[s]").astype(float), days[-1].astype("datetime64[s]").astype(float)
    ticks = [np.datetime64(f"{y}-{m:02d}-01") for y in (2023, 2024) for m in (1, 4, 7, 10)]
    tick_x = [t.astype("datetime64[s]").astype(float) for t in ticks if days[0] <= t <= days[-1]]
    tick_l = [str(t)[:7] for t in ticks if days[0] <= t <= days[-1]]
    for row, (field, label, cmap) in enumerate([("carbon", "carbon intensity (t/MWh)", "viridis"),
                                                ("price", "electricity price (USD/MWh)", "RdYlBu_r"),
                                                ("water", "water intensity (m³/MWh = L/kWh)", "Blues")]):
        ax = fig.add_subplot(gs[row, :])
        d = _daily(getattr(scn, field)).T                         # (N, days)
        lo, hi = np.percentile(d, [1, 99])
        im = ax.imshow(d, aspect="auto", interpolation="nearest", cmap=cmap, vmin=lo, vmax=hi,
                       extent=(x0, x1 + 86400.0, scn.N - 0.5, -0.5))
        ax.set_yticks(range(scn.N), scn.site_names, fontsize=8)
        ax.set_xticks(tick_x, tick_l, fontsize=8)
        ax.set_title(f"{label}: daily mean per site (colour scale clipped to the 1st-99th percentile)", fontsize=10)
        for name in ("val", "test"):
            if name in scn.splits:
                s = scn.timestamps[scn.splits[name][0]].astype("datetime64[s]").astype(float)
                ax.axvline(s, color="k", lw=1.2, ls="--")
                ax.text(s, scn.N - 0.9, f" {name} split →", fontsize=8, va="bottom", ha="left",
                        bbox={"facecolor": "white", "alpha": 0.8, "pad": 1.5, "edgecolor": "none"})
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
    ax = fig.add_subplot(gs[3, 0])
    hours = np.arange(336) / 24.0
    for m, r in rates.items():
        ax.plot(hours, r / r.mean(), lw=1.0, label=f"{m} (mean {r.mean():,.0f} req/s)")
    ax.set_xlabel("day of the ServeGen trace (14 real days; hour 0 = trace start)")
    ax.set_ylabel("request rate / its mean")
    ax.set_title("ServeGen request rates by model (world demand = m-large)", fontsize=10)
    ax.set_ylim(0, 2.6)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    ax.set_xlim(0, 14)
    ax = fig.add_subplot(gs[3, 1])
    utc_hour = scn.timestamps.astype(np.int64) % 24
    prof = np.stack([scn.demand[utc_hour == h].mean(axis=0) for h in range(24)], axis=1)   # (J, 24)
    im = ax.imshow(prof / prof.mean(axis=1, keepdims=True), aspect="auto", interpolation="nearest", cmap="magma",
                   extent=(-0.5, 23.5, scn.J - 0.5, -0.5))
    ax.set_yticks(range(scn.J), [f"{n} ({m:.2f})" for n, m in zip(scn.region_names, scn.demand.mean(axis=0))],
                  fontsize=8)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlabel("hour of day (UTC)")
    ax.set_title("demand by region and UTC hour / the region's mean\n(label: mean load units per hour)", fontsize=10)
    fig.colorbar(im, ax=ax, pad=0.01, fraction=0.05)
    fig.suptitle(f"{scn.name}: {scn.N} sites, {scn.T:,} h ({scn.timestamps[0]} .. {scn.timestamps[-1]} UTC); "
                 f"Electricity Maps (ODbL), Open-Meteo (CC BY 4.0), ServeGen (Apache-2.0)", fontsize=11, y=0.985)
    out = Path(out)
    fig.savefig(out, bbox_inches="tight")
    return out
