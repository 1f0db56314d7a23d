"""Shared fixtures. Tests that need ../shared (the real traces) skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_EGLB = Path(os.environ.get("EQUIGLB_SHARED_EGLB", REPO.parent / "shared" / "traces" / "eglb-2022"))


@pytest.fixture(scope="session")
def eglb_dir() -> Path:
    """The real eGLB-2022 trace folder (../shared/traces/eglb-2022), or skip."""
    if not (SHARED_EGLB / "AI_workload.csv").is_file():
        pytest.skip(f"real eGLB-2022 traces not found at {SHARED_EGLB} (set EQUIGLB_SHARED_EGLB)")
    return SHARED_EGLB


@pytest.fixture(scope="session")
def eglb(eglb_dir):
    """The eglb-2022 Scenario (full connection)."""
    import equiglb

    return equiglb.load_scenario("eglb-2022", data_dir=eglb_dir)


def assert_vector_equals_single_envs(env_kwargs: dict, B: int, L: int, seed: int, action_seed: int,
                                     action_bound: float) -> None:
    """The native vector env of ``equiglb/EquitableGLB-v0`` with ``env_kwargs`` and B copies gives the
    observations and rewards of B single envs reset with seeds ``seed + b``, for L random steps."""
    import gymnasium as gym
    import numpy as np

    venv = gym.make_vec("equiglb/EquitableGLB-v0", num_envs=B, vectorization_mode="vector_entry_point", **env_kwargs)
    envs = [gym.make("equiglb/EquitableGLB-v0", **env_kwargs) for _ in range(B)]
    obs_v, _ = venv.reset(seed=seed)
    obs_s = np.stack([e.reset(seed=seed + b)[0] for b, e in enumerate(envs)])
    np.testing.assert_allclose(obs_v, obs_s, rtol=1e-6)
    rng = np.random.default_rng(action_seed)
    for _ in range(L):
        a = rng.uniform(-action_bound, action_bound, (B,) + venv.single_action_space.shape).astype(np.float32)
        obs_v, r_v, *_ = venv.step(a)
        steps = [e.step(a[b]) for b, e in enumerate(envs)]
        np.testing.assert_allclose(r_v, [s[1] for s in steps], rtol=1e-9)
        np.testing.assert_allclose(obs_v, np.stack([s[0] for s in steps]), rtol=1e-5, atol=1e-6)
