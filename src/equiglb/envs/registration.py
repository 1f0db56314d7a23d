"""Gymnasium ids of equiglb; ``import equiglb`` (or ``gymnasium.make("equiglb:<id>")``) registers them.

| id | scenario | split | weights |
|---|---|---|---|
| ``equiglb/EquitableGLB-v0`` | ``"synthetic"`` (the embedded default) | train | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-v0`` | ``"eglb-2022"`` (real traces, ``data_dir=``) | train | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-test-v0`` | ``"eglb-2022"`` | test | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-partial-v0`` | ``"eglb-2022-partial"`` | train | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-partial-test-v0`` | ``"eglb-2022-partial"`` | test | eGLB, q = inf |
| ``equiglb/EquitableGLB-multimodel-v0`` | ``"synthetic-multimodel"`` | train | scenario's μ (social term), q = 2 |

The ``world`` ids (:data:`WORLD_ENV_IDS`; real 2023-2024 data, ``data_dir=`` or ``$EQUIGLB_DATA_DIR``;
docs/data.md): one episode = one calendar month.

| id | scenario | episodes | weights |
|---|---|---|---|
| ``equiglb/EquitableGLB-world-v0`` | ``"world"`` | 730 h at random starts in train (2023) | scenario's, q = inf |
| ``equiglb/EquitableGLB-world-test-v0`` | ``"world"`` | each calendar month of test (2024-07..12) | scenario's |
| ``equiglb/EquitableGLB-world-partial-v0`` | ``"world-partial"`` | as world-v0 | scenario's |
| ``equiglb/EquitableGLB-world-partial-test-v0`` | ``"world-partial"`` | as world-test-v0 | scenario's |

The test ids' entry point is :class:`equiglb.envs.monthly.MonthlyEpisodesEnv` (no vector entry point: the
months differ in length).

The ids of :data:`TUNED_IDS`: a base id of the first table with the tuned training settings as defaults
(e.g. ``equiglb/EquitableGLB-residual-v0``; docs/experiments-log.md, "The defaults").

Every id of the first table and of :data:`TUNED_IDS` has a vector entry point:
``gymnasium.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")``.

**Processes that never imported equiglb** (Ray/RLlib workers, subprocess vector envs, Minari's
``recover_environment`` in a new session). Gymnasium 1.x has no plugin mechanism that registers a
package's ids on first use: a plain id is looked up in the registry of the process, so
``gymnasium.make("equiglb/EquitableGLB-v0")`` fails there with ``Namespace equiglb not found``. Use:

* ``gymnasium.make("equiglb:equiglb/EquitableGLB-v0", **kwargs)``: gymnasium imports the module
  before ``:`` and then looks the id up (works anywhere equiglb is installed);
* Ray (RLlib, Tune): ``ray.init(runtime_env={"worker_process_setup_hook": "equiglb.envs.register_envs"})``
  runs :func:`register_envs` in every worker of the job before its first task, so the plain id works
  in the workers too (a job-level option of Ray);
* an :class:`gymnasium.envs.registration.EnvSpec` (``gymnasium.spec(id)``, e.g. pickled to a worker):
  ``gymnasium.make(spec)`` imports the entry point ``equiglb.envs.glb_env``, which registers the ids.

A start-up hook that imports equiglb into every Python process (a ``.pth`` file) is deliberately
not installed. docs/toolchains.md shows each form with RLlib, TorchRL and Minari.
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import register, registry
from gymnasium.wrappers import TimeLimit

__all__ = ["ENV_IDS", "WORLD_ENV_IDS", "TUNED_IDS", "outer_time_limit", "agent_settings", "registered_kwargs",
           "register_envs"]

ENTRY_POINT = "equiglb.envs.glb_env:EquitableGLBEnv"
VECTOR_ENTRY_POINT = "equiglb.envs.vector:EquitableGLBVectorEnv"

#: id -> default keyword arguments.
ENV_IDS: dict[str, dict[str, Any]] = {
    "equiglb/EquitableGLB-v0": {"scenario": "synthetic"},
    "equiglb/EquitableGLB-eglb2022-v0": {"scenario": "eglb-2022", "split": "train"},
    "equiglb/EquitableGLB-eglb2022-test-v0": {"scenario": "eglb-2022", "split": "test"},
    "equiglb/EquitableGLB-eglb2022-partial-v0": {"scenario": "eglb-2022-partial", "split": "train"},
    "equiglb/EquitableGLB-eglb2022-partial-test-v0": {"scenario": "eglb-2022-partial", "split": "test"},
    "equiglb/EquitableGLB-multimodel-v0": {"scenario": "synthetic-multimodel", "q": 2.0},
}

#: The tuned training settings (docs/experiments-log.md) as ids of their own: id -> (base id of :data:`ENV_IDS`, the
#: options added to its defaults). An id's registered defaults *are* its settings, so a tool that builds its
#: evaluation env from the id alone (RL Zoo's ``EvalCallback`` and ``-optimize``, ``rl_zoo3.enjoy``) evaluates
#: on the settings it trains on; the hyperparameter files list these ids without ``env_kwargs``.
#: ``*-residual-*``: the MPC residual mode (MPC 24 h look-ahead inside the env, the action scales its carbon
#: and water terms by [1/1.5, 1.5], 6-hour forecasts in the observation); ``*-<n>h-*``: episodes of n hours.
#: Train ids draw their episodes at random starts of the train split; test ids play the whole test window.
RESIDUAL = {"action_mode": "mpc_residual", "mpc_horizon": 24, "mpc_residual_max_factor": 1.5, "forecast_horizon": 6}
#: ``EquitableGLB-residual-constant-v0``: the residual mode whose agent observes nothing (a constant: a
#: state-independent pair of multipliers, a calibration of the planner's equity weights), its reward relative to
#: the planner alone; chosen on a validation window over the full observation of ``-residual-v0``
#: (docs/experiments-log.md)
CALIBRATION = {**RESIDUAL, "forecast_horizon": 0, "mpc_residual_observation": "none",
               "mpc_residual_reward": "vs-planner"}
TUNED_IDS: dict[str, tuple[str, dict[str, Any]]] = {
    "equiglb/EquitableGLB-residual-v0": ("equiglb/EquitableGLB-v0",
                                         {"episode_length": 240, "random_start": True, **RESIDUAL}),
    "equiglb/EquitableGLB-residual-constant-v0": ("equiglb/EquitableGLB-v0",
                                         {"episode_length": 240, "random_start": True, **CALIBRATION}),
    "equiglb/EquitableGLB-240h-v0": ("equiglb/EquitableGLB-v0", {"episode_length": 240, "random_start": True}),
    "equiglb/EquitableGLB-multimodel-240h-v0": ("equiglb/EquitableGLB-multimodel-v0",
                                                {"episode_length": 240, "random_start": True}),
    "equiglb/EquitableGLB-eglb2022-residual-v0": ("equiglb/EquitableGLB-eglb2022-v0",
                                                  {"episode_length": 121, "random_start": True, **RESIDUAL}),
    "equiglb/EquitableGLB-eglb2022-residual-test-v0": ("equiglb/EquitableGLB-eglb2022-test-v0", dict(RESIDUAL)),
    "equiglb/EquitableGLB-eglb2022-121h-v0": ("equiglb/EquitableGLB-eglb2022-v0",
                                              {"episode_length": 121, "random_start": True}),
    "equiglb/EquitableGLB-eglb2022-partial-24h-v0": ("equiglb/EquitableGLB-eglb2022-partial-v0",
                                                     {"episode_length": 24, "random_start": True}),
    "equiglb/EquitableGLB-eglb2022-partial-121h-v0": ("equiglb/EquitableGLB-eglb2022-partial-v0",
                                                      {"episode_length": 121, "random_start": True}),
}

def outer_time_limit(env: gym.Env, max_frames: int = 12) -> int | None:
    """``max_episode_steps`` of a :class:`~gymnasium.wrappers.TimeLimit` around ``env`` whose ``reset`` is the
    caller of ``env.reset`` (found in the calling frames), else ``None``.

    ``gymnasium.make(id, max_episode_steps=n)`` adds the ``TimeLimit`` *after* the entry point and leaves
    ``env.unwrapped.spec.max_episode_steps`` at ``None``, so the env sees the limit only this way. Called once per
    ``reset`` (a few frame look-ups; no cost per step). A registered ``additional_wrappers`` check would sit
    outside the ``TimeLimit`` too, but gymnasium refuses ``make_vec(..., "vector_entry_point")`` for such ids.
    """
    frame = sys._getframe(1)
    for _ in range(max_frames):
        if frame is None:
            return None
        obj = frame.f_locals.get("self")
        if isinstance(obj, TimeLimit) and obj.unwrapped is env:
            return int(obj._max_episode_steps)
        frame = frame.f_back   # type: ignore[assignment]
    return None


def registered_kwargs(env_id: str | None) -> dict[str, Any]:
    """Every option ``env_id`` is registered with (its ``gymnasium`` spec's kwargs); ``{}`` for ``None`` or an
    unregistered id."""
    spec = registry.get(env_id) if env_id else None
    return dict(spec.kwargs) if spec is not None else {}


def agent_settings(env_id: str | None) -> dict[str, Any]:
    """The options of ``env_id``'s registered defaults that shape an agent's spaces (action mode, forecasts,
    residual options: ``equiglb.envs.core.AGENT_OPTIONS``); ``{}`` for ``None`` or an unregistered id.

    A model trained on a tuned id (``equiglb/EquitableGLB-residual-v0``) carries these settings in the id,
    not in its run's ``env_kwargs``: evaluating it on another id (``...-eglb2022-v0``) must add them."""
    from equiglb.envs.core import AGENT_OPTIONS  # noqa: PLC0415 - envs.core imports the scenarios (heavy)

    return {k: v for k, v in registered_kwargs(env_id).items() if k in AGENT_OPTIONS}


MONTHLY_ENTRY_POINT = "equiglb.envs.monthly:MonthlyEpisodesEnv"
#: Hours of a training episode of the world ids: a mean calendar month (equiglb.traces.world.EPISODE_HOURS).
WORLD_EPISODE_HOURS = 730

#: The world ids -> (entry point, default keyword arguments); kept apart from :data:`ENV_IDS` because they need
#: the real data (like the eglb2022 ids) and the test ids have their own entry point.
WORLD_ENV_IDS: dict[str, tuple[str, dict[str, Any]]] = {
    "equiglb/EquitableGLB-world-v0": (ENTRY_POINT, {"scenario": "world", "split": "train",
                                                    "episode_length": WORLD_EPISODE_HOURS, "random_start": True}),
    "equiglb/EquitableGLB-world-test-v0": (MONTHLY_ENTRY_POINT, {"scenario": "world", "split": "test"}),
    "equiglb/EquitableGLB-world-partial-v0": (ENTRY_POINT, {"scenario": "world-partial", "split": "train",
                                                            "episode_length": WORLD_EPISODE_HOURS,
                                                            "random_start": True}),
    "equiglb/EquitableGLB-world-partial-test-v0": (MONTHLY_ENTRY_POINT, {"scenario": "world-partial",
                                                                         "split": "test"}),
}


def register_envs() -> None:
    """Register every id of :data:`ENV_IDS`, :data:`TUNED_IDS` and :data:`WORLD_ENV_IDS` (idempotent)."""
    ids = {**ENV_IDS, **{k: {**ENV_IDS[base], **extra} for k, (base, extra) in TUNED_IDS.items()}}
    for env_id, kwargs in ids.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
                     kwargs=dict(kwargs))
    for env_id, (entry, kwargs) in WORLD_ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry, kwargs=dict(kwargs),
                     vector_entry_point=VECTOR_ENTRY_POINT if entry == ENTRY_POINT else None)
