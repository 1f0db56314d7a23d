"""Online eGLB with its step size and auxiliary bound tuned on training windows (``online-eglb-tuned``).

Procedure (:func:`tune_online_eglb`), on the training data only:

1. windows: ``n_windows`` (default 5) windows as long as the evaluation window (``window_hours`` when
   given, e.g. a mean month for the monthly protocol; or the whole training data, when it is shorter),
   with starts spread evenly from the first to the last hour of the training data (they overlap when the
   data is short: eGLB-2022's 336 train hours give five 121-hour windows starting at 0, 54, 108, 161 and
   215; the synthetic default's 1200 give five disjoint 240-hour windows);
2. grid: ``eta_scale`` in :data:`ETA_SCALES` x ``z_max_scale`` in :data:`Z_MAX_SCALES`, the
   multipliers of the default step 1 / (G √T) and of the default causal bound of
   :class:`~equiglb.control.eglb.EGLBCore` (21 points; (1, 1) is online eGLB itself);
3. score: the mean over the windows of the gap to each window's offline optimum, J / J_off − 1,
   both accounted by the ledger with the evaluation weights;
4. choice: the point of least score; the default (1, 1) is scored first and kept unless another
   point is strictly better, so the choice is never worse than online eGLB on those windows.

The evaluated window is never read by the tuning: :class:`TunedOnlineEGLBPolicy` takes the training
data as ``train`` (e.g. ``full.split("train")``). Without it, it reloads the scenario the evaluated
window was cut from (by name, and ``source`` folder or seed), checks that the window's data equals
that scenario's data at the same hours (so a window of modified data is an error, not a silent
mismatch) and that the ``train`` split does not overlap it, and tunes on that split. Results are
cached per (training data, weights, window length, grid): a second table costs nothing.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from equiglb.baselines.online_eglb import OnlineEGLBPolicy
from equiglb.baselines.policy import OnlinePolicy
from equiglb.control.offline import solve_offline
from equiglb.ledger import objective, weights_in_force
from equiglb.scenario import Scenario, ScenarioError, Weights
from equiglb.traces import load_scenario
from equiglb.traces.csvio import TraceError

__all__ = ["ETA_SCALES", "Z_MAX_SCALES", "TuningResult", "TunedOnlineEGLBPolicy", "tune_online_eglb",
           "training_window_starts"]

#: Multipliers of online eGLB's default step size tried by the tuning.
ETA_SCALES: tuple[float, ...] = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)
#: Multipliers of online eGLB's default auxiliary bound z_max tried by the tuning.
Z_MAX_SCALES: tuple[float, ...] = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class TuningResult:
    """The outcome of :func:`tune_online_eglb`.

    Attributes:
        eta_scale, z_max_scale: the chosen multipliers.
        window_hours: length of each tuning window (h).
        starts: first hour of each window inside the training data.
        scores: (eta_scale, z_max_scale) -> mean gap to the offline optimum over the windows (fraction).
        default_score: the score of online eGLB's defaults (1, 1).
    """

    eta_scale: float
    z_max_scale: float
    window_hours: int
    starts: tuple[int, ...]
    scores: dict[tuple[float, float], float] = field(repr=False)
    default_score: float

    @property
    def score(self) -> float:
        """Mean gap of the chosen point on the tuning windows (fraction)."""
        return self.scores[(self.eta_scale, self.z_max_scale)]


def training_window_starts(train_hours: int, window_hours: int, n_windows: int) -> list[int]:
    """Starts of ``n_windows`` windows of ``window_hours`` spread evenly over ``train_hours`` hours
    (fewer when the data is too short for distinct starts)."""
    if window_hours < 1 or window_hours > train_hours or n_windows < 1:
        raise ValueError(f"training windows: need 1 <= window_hours ({window_hours}) <= train_hours "
                         f"({train_hours}) and n_windows ({n_windows}) >= 1")
    last = train_hours - window_hours
    return sorted({int(round(s)) for s in np.linspace(0, last, n_windows)})


_CACHE: dict[tuple, TuningResult] = {}


def _fingerprint(sc: Scenario, w: Weights) -> str:
    h = hashlib.sha1()
    for a in (sc.demand, sc.price, sc.carbon, sc.water, sc.capacity, sc.mask, sc.hosting, sc.energy_per_unit,
              sc.quality_loss, sc.pue, sc.region_weights, sc.latency):
        b = np.ascontiguousarray(np.zeros(0) if a is None else a)
        h.update(b.tobytes())
        h.update(str(b.shape).encode())
    h.update(repr(w).encode())
    return h.hexdigest()


def tune_online_eglb(train: Scenario, weights: Weights | None = None, window_hours: int | None = None,
                     n_windows: int = 5, eta_scales: Sequence[float] = ETA_SCALES,
                     z_max_scales: Sequence[float] = Z_MAX_SCALES) -> TuningResult:
    """Choose online eGLB's ``eta_scale`` and ``z_max_scale`` on windows of ``train`` (module docstring).

    Args:
        train: the training data only (e.g. ``scenario.split("train")``); all of it may be read.
        weights: the objective weights of the evaluation (default: ``train``'s).
        window_hours: length of the tuning windows, normally the evaluation window's length
            (default, and at most: all of ``train``).
        n_windows: number of windows.
        eta_scales, z_max_scales: the grid (both must contain 1.0, the defaults).
    """
    w = weights_in_force(train, weights)
    if 1.0 not in eta_scales or 1.0 not in z_max_scales:
        raise ValueError(f"tune_online_eglb: the grid must contain the defaults 1.0; got eta_scales={eta_scales}, "
                         f"z_max_scales={z_max_scales}")
    bad = [v for v in (*eta_scales, *z_max_scales) if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"tune_online_eglb: grid values must be finite and > 0, got {bad}")
    L = train.T if window_hours is None else min(int(window_hours), train.T)
    starts = training_window_starts(train.T, L, int(n_windows))
    grid = [(1.0, 1.0)] + [(float(e), float(z)) for e in eta_scales for z in z_max_scales if (e, z) != (1.0, 1.0)]
    key = (_fingerprint(train, w), L, tuple(starts), tuple(grid))
    if key in _CACHE:
        return _CACHE[key]
    gaps = np.zeros((len(grid), len(starts)))
    for n, s in enumerate(starts):
        win = train.window(s, L)
        j_off = solve_offline(win, w).objective_usd
        for m, (e, z) in enumerate(grid):
            x = OnlineEGLBPolicy(eta_scale=e, z_max_scale=z).schedule(win, w)
            gaps[m, n] = objective(win, x, w) / j_off - 1.0
    scores = {g: float(v) for g, v in zip(grid, gaps.mean(axis=1))}
    best = grid[0]
    for g in grid[1:]:
        if scores[g] < scores[best]:
            best = g
    res = TuningResult(eta_scale=best[0], z_max_scale=best[1], window_hours=L, starts=tuple(starts),
                       scores=scores, default_score=scores[(1.0, 1.0)])
    _CACHE[key] = res
    return res


def _same_data(a: Scenario, b: Scenario) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in
               ("demand", "price", "carbon", "water", "capacity", "mask", "hosting", "energy_per_unit", "pue",
                "region_weights", "timestamps"))


def training_data_of(window: Scenario, split: str = "train") -> Scenario:
    """The ``split`` of the scenario ``window`` was cut from, reloaded by name and source.

    Raises:
        ValueError: the parent cannot be reloaded, its data differs from the window's at the same
            hours, it has no ``split``, or that split overlaps the window. Pass ``train=`` to
            :class:`TunedOnlineEGLBPolicy` explicitly then.
    """
    hint = f"pass the training data explicitly: make_policy('online-eglb-tuned', train=full.split({split!r}))"
    candidates = []
    try:
        if os.path.isdir(window.source):
            candidates.append(load_scenario(window.name, data_dir=window.source))
        else:
            m = re.match(r"generated \(seed=(\d+)", window.source)
            if m:
                candidates.append(load_scenario(window.name, seed=int(m.group(1))))
    except (ScenarioError, TraceError, OSError, TypeError, ValueError) as exc:
        raise ValueError(f"online-eglb-tuned: cannot reload scenario {window.name!r} from {window.source!r} "
                         f"({exc}); {hint}") from exc
    for parent in candidates:
        hit = np.flatnonzero(parent.timestamps == window.timestamps[0])
        if hit.size != 1 or hit[0] + window.T > parent.T:
            continue
        start = int(hit[0])
        if not _same_data(parent.window(start, window.T), window):
            continue
        if split not in parent.splits:
            raise ValueError(f"online-eglb-tuned: scenario {parent.name!r} has no {split!r} split; {hint}")
        s0, n = parent.splits[split]
        if s0 < start + window.T and start < s0 + n:
            raise ValueError(f"online-eglb-tuned: the evaluated window (hours {start}..{start + window.T - 1} of "
                             f"{parent.name!r}) overlaps its {split!r} split (hours {s0}..{s0 + n - 1}); "
                             f"tuning there would read the evaluated data; {hint}")
        return parent.split(split)
    raise ValueError(f"online-eglb-tuned: window of {window.name!r} ({window.source!r}) is not a window of the "
                     f"reloadable scenario of that name (other options or data); {hint}")


class TunedOnlineEGLBPolicy(OnlinePolicy):
    """Online eGLB with ``eta_scale`` and ``z_max_scale`` chosen on training windows (module docstring).

    Args:
        train: the training data (all of it is used; never the evaluated window). None = the ``train``
            split of the scenario the evaluated window was cut from (:func:`training_data_of`).
        n_windows, eta_scales, z_max_scales: the tuning windows and grid of :func:`tune_online_eglb`.
        window_hours: length of the tuning windows (h); None (default): the evaluated window's length. The
            monthly protocol tunes once on windows of a mean month (:func:`equiglb.protocol.tuning_hours`)
            for months of every length.

    After :meth:`reset`, ``tuning`` holds the :class:`TuningResult`.
    """

    name = "online-eglb-tuned"

    def __init__(self, train: Scenario | None = None, n_windows: int = 5,
                 eta_scales: Sequence[float] = ETA_SCALES, z_max_scales: Sequence[float] = Z_MAX_SCALES,
                 window_hours: int | None = None):
        self.train = train
        self.window_hours = None if window_hours is None else int(window_hours)
        self.n_windows = int(n_windows)
        self.eta_scales, self.z_max_scales = tuple(eta_scales), tuple(z_max_scales)
        self.tuning: TuningResult | None = None
        self._inner: OnlineEGLBPolicy | None = None

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        train = self.train if self.train is not None else training_data_of(scenario)
        hours = scenario.T if self.window_hours is None else self.window_hours
        self.tuning = tune_online_eglb(train, weights, window_hours=hours, n_windows=self.n_windows,
                                       eta_scales=self.eta_scales, z_max_scales=self.z_max_scales)
        self._inner = OnlineEGLBPolicy(eta_scale=self.tuning.eta_scale, z_max_scale=self.tuning.z_max_scale)
        self._inner.reset(scenario, weights)

    def act(self, t: int) -> np.ndarray:
        if self._inner is None:
            raise RuntimeError("TunedOnlineEGLBPolicy.act called before reset")
        return self._inner.act(t)
