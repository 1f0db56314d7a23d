"""Property tests over thousands of small random scenarios in every unit scale, action mode and q.

Capacities (and the demand with them) range over 1e-9 .. 1e6 units, so that tiny-unit scenarios
behave like MW ones: every tolerance in the action maps, the routers and the ledger is relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equiglb.envs import ACTION_MODE_REGISTRY, EquitableGLBEnv
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario, Weights


def scaled_scenario(rng: np.random.Generator, N: int, J: int, K: int, T: int, unit: float, q: float,
                    tight: bool) -> Scenario:
    """A random valid scenario whose demand and capacities are in units of ``unit`` (1e-9 .. 1e6)."""
    hosting = rng.random((N, K)) < 0.6
    hosting[np.arange(N), rng.integers(0, K, N)] = True
    mask = rng.random((N, J)) < 0.6
    mask[rng.integers(0, N, J), np.arange(J)] = True
    e = rng.uniform(0.2, 1.5, K)
    demand = unit * rng.uniform(0, 2, (T, J)) * (rng.random((T, J)) < 0.85)
    total = max(float(demand.sum(axis=1).max()), unit)
    capacity = rng.dirichlet(np.ones(N)) * total * float(e.max()) * (rng.uniform(0.3, 0.9) if tight else 2.0)
    capacity[rng.random(N) < 0.1] = 0.0
    return Scenario(
        name="scaled", demand=demand, price=rng.normal(60, 40, (T, N)), carbon=rng.uniform(0, 0.8, (T, N)),
        water=rng.uniform(0, 5, (T, N)), capacity=capacity, mask=mask,
        site_names=[f"s{i}" for i in range(N)], region_names=[f"r{j}" for j in range(J)],
        timestamps=np.datetime64("2022-09-01T00", "h") + np.arange(T), hosting=hosting,
        energy_per_unit=e, quality_loss=rng.uniform(0, 0.3, K), pue=rng.uniform(1.0, 1.6, N),
        model_names=[f"m{k}" for k in range(K)], region_weights=rng.uniform(0.5, 2.0, N),
        weights=Weights(q=q, mu_social=float(rng.choice([0.0, 200.0]))))


def check_episode(sc: Scenario, mode: str, rng: np.random.Generator) -> None:
    env = EquitableGLBEnv(scenario=sc, split="all", action_mode=mode)
    env.reset(seed=int(rng.integers(0, 1000)))
    total = 0.0
    allowed, e = sc.allowed, sc.energy_per_unit
    for t in range(sc.T):
        a = rng.uniform(-1.5, 1.5, env.action_space.shape).astype(np.float32)
        _, r, terminated, _, info = env.step(a)
        total += r
        x = info["routing"]
        assert np.all(x >= 0)
        assert np.all(x[~allowed] == 0)                                             # mask and hosting
        load = (x @ e).sum(axis=1)
        assert np.all(load <= sc.capacity * (1 + 1e-9)), (load, sc.capacity)      # capacity, relative
        served = x.sum(axis=(0, 2))
        demand = sc.demand[t]
        assert np.all(served <= demand * (1 + 1e-9))
        short = demand - served
        unserved = np.where(short > 1e-9 * demand, short, 0.0).sum()
        assert float(info["unserved_load"]) == pytest.approx(unserved, rel=1e-6, abs=1e-12 * max(demand.sum(), 1e-300))
        assert terminated == (t == sc.T - 1)
    rep = evaluate(sc, env.executed_schedule(), sc.weights)
    assert total == pytest.approx(-rep.objective_usd, rel=1e-9, abs=1e-9)


SCALES = st.sampled_from([1e-9, 1e-6, 1e-3, 1.0, 1e3, 1e6])
QS = st.sampled_from([1.0, 2.0, 3.7, math.inf])


@pytest.mark.parametrize("mode", sorted(ACTION_MODE_REGISTRY))
def test_invariants_in_every_mode_scale_and_q(mode):
    examples = 600 if mode in ("routing", "site_scores") else 250

    @settings(max_examples=examples, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2**32 - 1), N=st.integers(1, 4), J=st.integers(1, 4), K=st.integers(1, 3),
           T=st.integers(1, 4), unit=SCALES, q=QS, tight=st.booleans())
    def run(seed, N, J, K, T, unit, q, tight):
        rng = np.random.default_rng(seed)
        check_episode(scaled_scenario(rng, N, J, K, T, unit, q, tight), mode, rng)

    run()
