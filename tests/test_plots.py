"""The report plots a newcomer reads: every policy its own colour, no text over the data, legends beside the axes.

Checked on the figures themselves (``matplotlib.pyplot.close`` is intercepted to keep them): the colours of the
policies are pairwise different (11 policies, more than tab10's 10), no annotation sits in the axes, and no
legend's box overlaps an axes' box.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from equiglb.agents.report import distinct_colors, plot_cost_vs_worst, plot_footprints  # noqa: E402
from equiglb.sweep.report import plot_frontier, plot_gaps  # noqa: E402

NAMES = ["offline", "online-eglb", "online-eglb-tuned", "mpc", "min-cost", "min-carbon", "min-water", "nearest",
         "proportional", "random", "ppo (agent)"]


@pytest.fixture
def figures(monkeypatch):
    kept: list = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    monkeypatch.undo()
    for fig in kept:
        plt.close(fig)


def _legends_beside_axes(fig) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    assert legends, "no legend"
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), (leg.get_title().get_text(), ax.get_title())


def _no_text_in_axes(fig) -> None:
    for ax in fig.axes:
        assert not ax.texts, [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("n", [1, 9, 10, 11, 20, 21, 40])
def test_distinct_colors_are_pairwise_different(n):
    assert len({to_hex(c) for c in distinct_colors(n)}) == n


def test_cost_vs_worst_and_footprints(tmp_path, figures):
    rows = [{"policy": n, "energy_cost_usd": 290_000.0 + (i % 3), "carbon_max_t": 50.0, "water_max_m3": 80.0}
            for i, n in enumerate(NAMES)]       # nearly equal points: names next to them would overprint
    plot_cost_vs_worst(rows, tmp_path / "cost_vs_worst.png")
    (fig,) = figures
    _no_text_in_axes(fig)
    for ax in fig.axes:
        colors = [to_hex(c.get_facecolor()[0]) for c in ax.collections]
        assert len(colors) == len(NAMES) and len(set(colors)) == len(NAMES)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == NAMES
    _legends_beside_axes(fig)
    rng = np.random.default_rng(0)
    fp = {n: {"carbon_t": rng.uniform(1, 9, 5), "water_m3": rng.uniform(1, 9, 5)} for n in NAMES}
    plot_footprints(fp, [f"site{i}" for i in range(5)], tmp_path / "footprints.png")
    fig = figures[-1]
    bars = {to_hex(c.patches[0].get_facecolor()) for c in fig.axes[0].containers}
    assert len(bars) == len(NAMES)                   # "offline" and "ppo (agent)" no longer share a colour
    _legends_beside_axes(fig)
    assert (tmp_path / "cost_vs_worst.png").stat().st_size > 0 and (tmp_path / "footprints.png").stat().st_size > 0


def test_sweep_frontier_and_gaps(tmp_path, figures):
    recs = []
    for pol, kind in [("ppo", "agent"), ("sac", "agent"), ("offline", "baseline"), ("online-eglb", "baseline"),
                      ("mpc", "baseline"), ("min-cost", "baseline")]:
        for j, mu in enumerate(["30", "60", "120"]):
            recs.append({"policy": pol, "kind": kind, "mu_water": mu, "energy_cost_usd_mean": 290_000 + 800 * j,
                         "carbon_max_t_mean": 50 - 0.5 * j, "water_max_m3_mean": 80 - 3 * j,   # all on one spot
                         "gap_to_offline_mean": 0.01 * j, "gap_to_offline_mean_ci_low": 0.01 * j - 0.005,
                         "gap_to_offline_mean_ci_high": 0.01 * j + 0.005})
    summary = pd.DataFrame(recs)
    plot_frontier(summary, ["mu_water"], tmp_path / "frontier.png")
    plot_gaps(summary, ["mu_water"], tmp_path / "gap_ci.png")
    frontier, gaps = figures
    _no_text_in_axes(frontier)
    lines = [to_hex(line.get_color()) for line in frontier.axes[0].get_lines()]
    assert len(lines) == 6 and len(set(lines)) == 6
    titles = {leg.get_title().get_text() for leg in frontier.legends}
    assert titles == {"policy", "grid point"}
    _legends_beside_axes(frontier)
    _legends_beside_axes(gaps)
