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

Every id has a vector entry point:
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

from typing import Any

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_IDS", "WORLD_ENV_IDS", "register_envs"]

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
    """Register every id of :data:`ENV_IDS` and :data:`WORLD_ENV_IDS` (idempotent)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
                     kwargs=dict(kwargs))
    for env_id, (entry, kwargs) in WORLD_ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry, kwargs=dict(kwargs),
                     vector_entry_point=VECTOR_ENTRY_POINT if entry == ENTRY_POINT else None)
