"""Shared fixtures. Tests that need ../shared (the real traces) skip with a reason when it is absent."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

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
def world_data_dir() -> Path:
    """The folder holding sustain-cluster/ and servegen/ side by side (../shared/traces), or skip."""
    shared = Path(os.environ.get("EQUIGLB_SHARED_TRACES", REPO.parent / "shared" / "traces"))
    for name in ("sustain-cluster", "servegen"):
        if not (shared / name / "MANIFEST.tsv").is_file():
            pytest.skip(f"real data set {name} not found at {shared / name} (set EQUIGLB_SHARED_TRACES)")
    return shared


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


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` as a module (registered in ``sys.modules`` under ``name``)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


def small_synthetic(K: int, q: float):
    """72 generated hours: the synthetic scenario (K = 1) or the multi-model one (K = 3), with q."""
    import equiglb

    scn = equiglb.load_scenario("synthetic" if K == 1 else "synthetic-multimodel", hours=72, seed=3)
    return scn.with_weights(scn.weights.replace(q=q))


def assert_random_episode_returns_minus_objective(env, scn) -> None:
    """One episode of ``env`` (on ``scn``, from slot 10) with random actions: every observation in the
    space, every routing nonnegative and within capacity, and the return equal to -J(x) of the
    executed schedule."""
    import numpy as np

    from equiglb.ledger import evaluate

    env.reset(seed=1, options={"start": 10})
    env.action_space.seed(1)
    total, done = 0.0, False
    while not done:
        obs, r, done, _, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        x = info["routing"]
        assert np.all(x >= -1e-12)
        assert np.all((x @ scn.energy_per_unit).sum(axis=1) <= scn.capacity * (1 + 1e-9) + 1e-12)
        total += r
    rep = evaluate(env.window(), env.executed_schedule(), env.weights)
    assert total == pytest.approx(-rep.objective_usd, rel=1e-9)
