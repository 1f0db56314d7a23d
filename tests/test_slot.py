"""The slot step's accelerator is pinned to the reference path, slot by slot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_vector_equals_single_envs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import equiglb
from equiglb.envs import EquitableGLBEnv
from equiglb.envs.slot import OneCopyStep, SlotStep, make_slot_step
from equiglb.scenario import Scenario, Weights


def one_group_scenario(rng: np.random.Generator, N: int, J: int, T: int, cap_scale: float, q: float) -> Scenario:
    hosting = np.ones((N, 1), bool)
    hosting[rng.random(N) < 0.2] = False
    hosting[rng.integers(0, N)] = True
    demand = rng.uniform(0, 2, (T, J)) * (rng.random((T, J)) < 0.9)
    capacity = rng.dirichlet(np.ones(N)) * demand.sum(axis=1).max() * cap_scale
    capacity[rng.random(N) < 0.15] = 0.0
    return Scenario(
        name="one-group", demand=demand, price=rng.normal(60, 40, (T, N)), carbon=rng.uniform(0, 0.8, (T, N)),
        water=rng.uniform(0, 5, (T, N)), capacity=capacity, mask=np.ones((N, J), bool),
        site_names=[f"s{i}" for i in range(N)], region_names=[f"r{j}" for j in range(J)],
        timestamps=np.datetime64("2022-09-01T00", "h") + np.arange(T), hosting=hosting,
        energy_per_unit=rng.uniform(0.2, 1.5, 1), quality_loss=np.zeros(1), pue=rng.uniform(1.0, 1.6, N),
        model_names=["m0"], region_weights=rng.uniform(0.5, 2.0, N), weights=Weights(q=q))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), N=st.integers(1, 6), J=st.integers(1, 4), T=st.integers(1, 6),
       cap_scale=st.sampled_from([1e-9, 0.3, 0.8, 1.5, 1e6]), q=st.sampled_from([1.0, 2.0, 3.7, math.inf]))
def test_accelerator_equals_reference(seed, N, J, T, cap_scale, q):
    rng = np.random.default_rng(seed)
    sc = one_group_scenario(rng, N, J, T, cap_scale, q)
    assert OneCopyStep.applies(sc, sc.weights, "site_scores", None)
    fast, ref = OneCopyStep(sc, sc.weights, "site_scores"), SlotStep(sc, sc.weights, "site_scores")
    fast.reset(0, T)
    ref.reset(0, T)
    dim = fast.action_map.dim
    for t in range(T):
        kind = int(rng.integers(0, 3))
        a = rng.uniform(-1, 1, dim) if kind == 0 else np.full(dim, -1.0) if kind == 1 else rng.normal(0, 5, dim)
        r_fast, x_fast = fast.step(t, a)
        r_ref, x_ref = ref.step(t, a)
        scale = max(1.0, abs(r_ref))
        assert r_fast == pytest.approx(r_ref, rel=1e-9, abs=1e-9 * scale)
        np.testing.assert_allclose(x_fast, x_ref, rtol=1e-9, atol=1e-12 * max(1.0, float(sc.demand.max())))
        for name in ("energy_cost_usd", "unserved_load", "slot_cost_usd", "phi_usd"):
            assert float(getattr(fast.ledger, name)) == pytest.approx(float(getattr(ref.ledger, name)),
                                                                      rel=1e-9, abs=1e-9 * scale)
        np.testing.assert_allclose(fast.ledger.footprint, ref.ledger.footprint, rtol=1e-9, atol=1e-12)


def test_accelerator_is_chosen_once_for_the_default_env_only_where_it_applies():
    env = EquitableGLBEnv()
    assert isinstance(env.slot, OneCopyStep)                               # synthetic default, site_scores
    assert type(EquitableGLBEnv(action_mode="routing").slot) is SlotStep
    multi = equiglb.load_scenario("synthetic-multimodel", hours=48)
    assert type(make_slot_step(multi, multi.weights, "site_scores")) is SlotStep    # K > 1
    assert type(make_slot_step(env.scenario, env.weights, "site_scores", batch_size=4)) is SlotStep


def test_vector_rows_equal_the_accelerated_single_env():
    """The reference (vector env, B copies) and the accelerator (single env) give the same episodes."""
    assert_vector_equals_single_envs(dict(episode_length=24, random_start=True), B=3, L=24, seed=11,
                                     action_seed=0, action_bound=1.2)
