"""Replay a schedule through the environment (checks that return == -J(x) for baselines)."""

from __future__ import annotations

from typing import Any

import numpy as np

from equiglb.ledger import Report
from equiglb.scenario import Scenario, Weights

__all__ = ["replay"]


def replay(scenario: Scenario, schedule: np.ndarray, weights: Weights | None = None,
           **env_kwargs: Any) -> tuple[float, Report]:
    """Step an :class:`EquitableGLBEnv` on the whole ``scenario`` with the routing of ``schedule``.

    Each slot's x[t] (N, J, K) becomes the ``"routing"`` action with the same per-region fractions
    (:meth:`ActionMap.action_for`). A schedule that serves all demand within capacity is executed
    unchanged (to rounding), so the return equals ``-evaluate(scenario, schedule, weights).objective_usd``.
    A schedule that leaves load unserved is executed with its fractions scaled up to the full demand
    (the environment never drops load while capacity remains), so its return differs.

    Args:
        scenario: the window to replay (all of its slots, in order).
        schedule: x[t, i, j, k], load units, shape (T, N, J, K).
        weights: objective weights (default: the scenario's).
        env_kwargs: further options of the environment (e.g. ``forecast_horizon``).

    Returns:
        (episode return in USD, the episode's :class:`equiglb.ledger.Report`).
    """
    x = np.asarray(schedule, dtype=np.float64)
    shape = (scenario.T, scenario.N, scenario.J, scenario.K)
    if x.shape != shape:
        raise ValueError(f"schedule has shape {x.shape}, expected (T, N, J, K) = {shape}")
    if not np.isfinite(x).all():
        raise ValueError("schedule has non-finite values")
    if weights is not None:
        scenario = scenario.with_weights(weights)
    from equiglb.envs.glb_env import EquitableGLBEnv  # noqa: PLC0415  (light `import equiglb.envs`)

    env = EquitableGLBEnv(scenario=scenario, split="all", episode_length=scenario.T, random_start=False,
                          action_mode="routing", **env_kwargs)
    env.reset(seed=0)
    total, action_map = 0.0, env.slot.action_map
    assert action_map is not None                     # "routing" mode maps actions
    for t in range(scenario.T):
        total += env.step(action_map.action_for(x[t], dtype=np.float64))[1]
    return total, env.episode_report()
