"""Gymnasium ids of equiglb; ``import equiglb`` (or ``gymnasium.make("equiglb:<id>")``) registers them.

| id | scenario | split | weights |
|---|---|---|---|
| ``equiglb/EquitableGLB-v0`` | ``"synthetic"`` (the embedded default) | train | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-v0`` | ``"eglb-2022"`` (real traces, ``data_dir=``) | train | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-test-v0`` | ``"eglb-2022"`` | test | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-partial-v0`` | ``"eglb-2022-partial"`` | train | eGLB, q = inf |
| ``equiglb/EquitableGLB-eglb2022-partial-test-v0`` | ``"eglb-2022-partial"`` | test | eGLB, q = inf |
| ``equiglb/EquitableGLB-multimodel-v0`` | ``"synthetic-multimodel"`` | train | scenario's μ (social term), q = 2 |

Every id has a vector entry point:
``gymnasium.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")``.
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_IDS", "register_envs"]

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


def register_envs() -> None:
    """Register every id of :data:`ENV_IDS` (idempotent)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
                     kwargs=dict(kwargs))
