"""The monthly evaluation protocol: one episode = one calendar month of a split (docs/data.md, *world*).

Calendar months differ in length (672 to 744 h), while :class:`~equiglb.envs.glb_env.EquitableGLBEnv` has
one ``episode_length``. :class:`MonthlyEpisodesEnv` therefore holds one ``EquitableGLBEnv`` per month of the
split (each on the scenario's month split, e.g. ``"2024-07"``, with its exact length) over one shared
Scenario, and hands each ``reset`` to the next month. It is the entry point of
``equiglb/EquitableGLB-world-test-v0`` and ``equiglb/EquitableGLB-world-partial-test-v0``.
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from equiglb.envs.glb_env import EquitableGLBEnv
from equiglb.ledger import Report
from equiglb.scenario import Scenario
from equiglb.validate import OptionError

__all__ = ["MonthlyEpisodesEnv", "calendar_months"]

_MONTH = re.compile(r"^\d{4}-\d{2}$")


def calendar_months(scenario: Scenario, split: str) -> list[str]:
    """The month splits (``"YYYY-MM"``) of ``scenario`` that lie inside ``split``, in time order."""
    if split not in scenario.splits:
        raise OptionError(f"split={split!r} is not a split of scenario {scenario.name!r}; available: "
                          f"{sorted(k for k in scenario.splits if not _MONTH.match(k))}")
    s, n = scenario.splits[split]
    out = [(v[0], k) for k, v in scenario.splits.items() if _MONTH.match(k) and s <= v[0] and v[0] + v[1] <= s + n]
    if not out:
        raise OptionError(f"split {split!r} of scenario {scenario.name!r} holds no calendar month (no split named "
                          f"'YYYY-MM' inside it)")
    return [k for _, k in sorted(out)]


class MonthlyEpisodesEnv(gym.Env):
    r"""
    ## Description

    The environment of :class:`~equiglb.envs.glb_env.EquitableGLBEnv` (same spaces, reward and info; see its
    docstring), with the evaluation protocol of the ``world`` scenario: **each episode is one calendar month**
    of ``split`` (default ``"test"``: 2024-07 .. 2024-12), from its first to its last hour, so episodes have
    672 to 744 steps.

    ## Episodes

    ``reset(seed=s)`` starts the first month of the split, every following ``reset()`` the next month (after
    the last it starts again at the first): ``len(env.unwrapped.months)`` resets evaluate the whole split.
    ``reset(options={"month": "2024-09"})`` starts that month. ``env.unwrapped.month`` is the current month.

    ## Observation Space

    The union (smallest lower and largest upper bound of every entry) of the months' observation spaces: the
    observation of a month is that month's ``EquitableGLBEnv`` observation (its cumulative-footprint scales
    use the month's length).

    ## Arguments

    ``split`` (the split whose months are the episodes), ``months`` (a subset of them, e.g. ``["2024-07"]``),
    and every option of ``EquitableGLBEnv`` except ``episode_length`` and ``random_start`` (the months fix
    them). ``render_mode`` as there.
    """

    metadata = EquitableGLBEnv.metadata

    def __init__(self, render_mode: str | None = None, split: str = "test", months: list[str] | None = None,
                 **options: Any):
        for bad in ("episode_length", "random_start"):
            if bad in options:
                raise OptionError(f"{bad}={options[bad]!r}: the episodes of the monthly evaluation are the calendar "
                                  f"months of the split; use the train id (e.g. equiglb/EquitableGLB-world-v0) for "
                                  f"windows of a chosen length")
        if not isinstance(split, str):
            raise OptionError(f"split={split!r}: expected the name of a split, e.g. 'test'")
        first = options.pop("scenario", "world")
        probe = EquitableGLBEnv(scenario=first, split="all", episode_length=1, **options)
        scn = probe.scenario
        available = calendar_months(scn, split)
        if months is None:
            chosen = available
        else:
            if isinstance(months, str) or not isinstance(months, (list, tuple)) or not months:
                raise OptionError(f"months={months!r}: expected a non-empty list of months such as ['2024-07']")
            for m in months:
                if m not in available:
                    raise OptionError(f"months: {m!r} is not a calendar month of split {split!r} of scenario "
                                      f"{scn.name!r}; its months are {available}")
            chosen = list(months)
        rest = {k: v for k, v in options.items() if k not in ("data_dir", "scenario_options")}
        self.envs: dict[str, EquitableGLBEnv] = {m: EquitableGLBEnv(render_mode=render_mode, scenario=scn, split=m,
                                                                    **rest) for m in chosen}
        del probe
        self.months: tuple[str, ...] = tuple(chosen)
        self.split = split
        self.render_mode = render_mode
        envs = list(self.envs.values())
        self.action_space = envs[0].action_space
        lows = np.min([e.observer.space.low for e in envs], axis=0)
        highs = np.max([e.observer.space.high for e in envs], axis=0)
        self.observation_space = spaces.Box(lows, highs, dtype=np.float32)
        self._index = -1
        self._current = envs[0]

    # ------------------------------------------------------------------ gymnasium API
    @property
    def month(self) -> str:
        """The current episode's month (``"YYYY-MM"``)."""
        return self.months[max(self._index, 0)]

    @property
    def current(self) -> EquitableGLBEnv:
        """The current month's environment."""
        return self._current

    @property
    def scenario(self) -> Scenario:
        return self._current.scenario

    @property
    def weights(self):
        return self._current.weights

    @property
    def config(self):
        return self._current.config

    @property
    def action_map(self):
        """The action map (the same for every month: one scenario, one action mode)."""
        return self._current.action_map

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start the next month (the first after ``seed`` is given, or ``options={"month": ...}``)."""
        super().reset(seed=seed)
        opts = dict(options or {})
        month = opts.pop("month", None)
        if opts:
            raise OptionError(f"reset options {sorted(opts)} are not supported by the monthly evaluation; the only "
                              f"option is 'month' (one of {list(self.months)})")
        if month is not None:
            if month not in self.envs:
                raise OptionError(f"month={month!r} is not an episode of this environment; its months are "
                                  f"{list(self.months)}")
            self._index = self.months.index(month)
        elif seed is not None:
            self._index = 0
        else:
            self._index = (self._index + 1) % len(self.months)
        self._current = self.envs[self.months[self._index]]
        return self._current.reset(seed=seed)

    def step(self, action: np.ndarray):
        return self._current.step(action)

    def render(self):
        return self._current.render()

    # ------------------------------------------------------------------ accounting helpers
    def window(self) -> Scenario:
        """The current month's window of the scenario (with the environment's weights)."""
        return self._current.window()

    def executed_schedule(self) -> np.ndarray:
        return self._current.executed_schedule()

    def episode_report(self) -> Report:
        return self._current.episode_report()

    def episode_metrics(self) -> dict[str, float]:
        return self._current.episode_metrics()
