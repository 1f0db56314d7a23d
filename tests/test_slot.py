"""The slot step's accelerator (one copy and a batch) is pinned to the reference path, slot by slot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_vector_equals_single_envs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import equiglb
from equiglb.envs import EquitableGLBEnv, kernels
from equiglb.envs.slot import CompiledSiteScores, RoutingStep, SiteScoresStep, make_slot_step
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
       cap_scale=st.sampled_from([1e-9, 0.3, 0.8, 1.5, 1e6]), q=st.sampled_from([1.0, 2.0, 3.7, math.inf]),
       batch_size=st.sampled_from([None, 1, 3]), dtype=st.sampled_from([np.float32, np.float64]))
def test_accelerator_equals_reference(seed, N, J, T, cap_scale, q, batch_size, dtype):
    """One copy or a batch (each copy at its own slot, some reset mid-way), float32 or float64 actions."""
    rng = np.random.default_rng(seed)
    sc = one_group_scenario(rng, N, J, T, cap_scale, q)
    assert CompiledSiteScores.applies(sc, sc.weights)
    fast = SiteScoresStep(sc, sc.weights, batch_size)
    ref = SiteScoresStep(sc, sc.weights, batch_size, compiled=False)
    assert fast.compiled is not None and ref.compiled is None
    batch = () if batch_size is None else (batch_size,)
    fast.reset(0, T)
    ref.reset(0, T)
    dim = fast.action_map.dim
    for step in range(T):
        t = step if not batch else rng.integers(0, T, batch)
        if batch and step == T // 2:                          # reset some copies mid-way
            index = rng.random(batch) < 0.5
            fast.reset(0, T, index)
            ref.reset(0, T, index)
        kind = int(rng.integers(0, 3))
        shape = batch + (dim,)
        a = rng.uniform(-1, 1, shape) if kind == 0 else np.full(shape, -1.0) if kind == 1 else rng.normal(0, 5, shape)
        a = a.astype(dtype)
        r_fast, x_fast = fast.step(t, a)
        r_ref, x_ref = ref.step(t, a)
        scale = np.maximum(1.0, np.abs(r_ref))
        np.testing.assert_allclose(r_fast, r_ref, rtol=1e-9, atol=1e-9 * float(np.max(scale)))
        assert x_fast.shape == x_ref.shape
        np.testing.assert_allclose(x_fast, x_ref, rtol=1e-9, atol=1e-12 * max(1.0, float(sc.demand.max())))
        for name in ("energy_cost_usd", "unserved_load", "slot_cost_usd", "phi_usd", "facility_energy_mwh"):
            got, want = getattr(fast.ledger, name), getattr(ref.ledger, name)
            assert np.shape(got) == np.shape(want), name
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * float(np.max(scale)), err_msg=name)
        np.testing.assert_allclose(fast.ledger.footprint, ref.ledger.footprint, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("batch_size", [None, 4])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_accelerator_refuses_a_non_finite_action_before_touching_the_ledger(batch_size, bad):
    env = EquitableGLBEnv()
    step = make_slot_step(env.scenario, env.weights, "site_scores", batch_size)
    assert isinstance(step, SiteScoresStep) and step.compiled is not None
    batch = () if batch_size is None else (batch_size,)
    step.reset(0, 24)
    step.step(0 if not batch else np.zeros(batch, np.int64), np.zeros(batch + (step.dim,), np.float32))
    before = step.ledger.footprint.copy(), np.array(step.ledger.phi_usd)
    a = np.zeros(batch + (step.dim,), np.float32)
    a[(..., 3)] = bad
    with pytest.raises(ValueError, match="non-finite"):
        step.step(1 if not batch else np.ones(batch, np.int64), a)
    np.testing.assert_array_equal(step.ledger.footprint, before[0])
    np.testing.assert_array_equal(step.ledger.phi_usd, before[1])
    with pytest.raises(ValueError, match="shape"):
        step.step(1 if not batch else np.ones(batch, np.int64), np.zeros(batch + (step.dim + 1,)))


def test_accelerator_is_chosen_once_for_the_default_env_only_where_it_applies():
    env = EquitableGLBEnv()
    assert isinstance(env.slot, SiteScoresStep) and env.slot.compiled is not None   # synthetic default
    assert type(EquitableGLBEnv(action_mode="routing").slot) is RoutingStep
    multi = equiglb.load_scenario("synthetic-multimodel", hours=48)
    assert make_slot_step(multi, multi.weights, "site_scores").compiled is None    # K > 1
    assert make_slot_step(env.scenario, env.weights, "site_scores", batch_size=4).compiled is not None


def test_vector_rows_equal_the_accelerated_single_env():
    """The reference (vector env, B copies) and the accelerator (single env) give the same episodes."""
    assert_vector_equals_single_envs(dict(episode_length=24, random_start=True), B=3, L=24, seed=11,
                                     action_seed=0, action_bound=1.2)


def test_the_kernel_as_plain_python_gives_the_compiled_numbers():
    """What NUMBA_DISABLE_JIT=1 runs (the kernel's Python source) equals the compiled kernel."""
    env = EquitableGLBEnv()
    step = make_slot_step(env.scenario, env.weights, "site_scores", batch_size=5).compiled
    assert isinstance(step, CompiledSiteScores)
    rng = np.random.default_rng(3)
    t = rng.integers(0, env.scenario.T, 5)
    a = rng.normal(0, 1.5, (5, step.dim)).astype(np.float32)
    results = []
    for kernel in (kernels.site_scores_slot, kernels.site_scores_slot.py_func):
        footprint = np.random.default_rng(4).uniform(0, 3, (5, 2, env.scenario.N))
        out, x = np.zeros((5, 15)), np.zeros((5, 10, 10))
        assert kernel(t, a, step._site_of_entry, step._sites, step._per_unit, step._demand, step._share,
                      step._total, step._params, footprint, np.ones(5), out, x) == -1
        results.append((footprint, out, x))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
