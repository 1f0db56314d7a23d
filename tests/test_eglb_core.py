"""The stepwise online-eGLB core: bit-identical to the former loop, price routing, residual scales."""

from __future__ import annotations

import math

import numpy as np
import pytest

import equiglb
from equiglb.baselines import EGLBCore, OnlineEGLBPolicy, make_policy
from equiglb.baselines.policy import OnlinePolicy
from equiglb.control.eglb import auxiliary_argmin
from equiglb.control.routing import PriceRouter, SlotRouter
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario, Weights
from tests.test_baselines import assert_feasible, small_scenario


class _ReferenceEGLB(OnlinePolicy):
    """The online eGLB loop as it was before the stepwise core (kept verbatim as the reference).

    Args:
        eta: dual step size (1/USD); None = 1 / (G √T) from the first slot's data.
        z_max: auxiliary bound in USD per slot (scalar or per coordinate); None = causal running max of
            the per-slot footprint bound.
        project_duals: clip γ at 0 after each step (the duals of B x <= z are non-negative).
        eta_scale: multiplies the step (default or given), for tuning studies.
    """

    name = "online-eglb"

    def __init__(self, eta: float | None = None, z_max: float | np.ndarray | None = None,
                 project_duals: bool = True, eta_scale: float = 1.0):
        self.eta_given, self.z_max_given = eta, z_max
        self.project_duals = project_duals
        self.eta_scale = float(eta_scale)

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        sc, w = scenario, weights
        self.scenario, self.weights = sc, w
        self.router = SlotRouter(sc, w.unserved_penalty_usd)
        self.social = bool(w.mu_social) and bool(np.any(sc.quality_loss))
        N, J = sc.N, sc.J
        self.blocks = [slice(0, N), slice(N, 2 * N)] + ([slice(2 * N, 2 * N + J)] if self.social else [])
        self.gamma = np.zeros(2 * N + (J if self.social else 0))
        self._site_scale = sc.region_weights * sc.pue * sc.capacity          # ω_i PUE_i M_i (MWh)
        self._max_c = np.zeros(N)
        self._max_w = np.zeros(N)
        self._max_demand = np.zeros(J)
        self._cum_demand = np.zeros(J)
        self._e = sc.energy_per_unit
        lat = sc.latency if (sc.latency is not None and w.mu_latency) else None
        self._lat_cost = None if lat is None else w.mu_latency * lat[:, :, None]
        self.eta: float | None = None

    def _z_max(self, t: int, inv_total: np.ndarray) -> np.ndarray:
        sc, w = self.scenario, self.weights
        if self.z_max_given is not None:
            return np.broadcast_to(np.asarray(self.z_max_given, dtype=np.float64), self.gamma.shape)
        np.maximum(self._max_c, sc.carbon[t], out=self._max_c)
        np.maximum(self._max_w, sc.water[t], out=self._max_w)
        parts = [w.mu_carbon * self._site_scale * self._max_c, w.mu_water * self._site_scale * self._max_w]
        if self.social:
            np.maximum(self._max_demand, sc.demand[t], out=self._max_demand)
            parts.append(w.mu_social * float(sc.quality_loss.max()) * self._max_demand * inv_total)
        return np.concatenate(parts)

    def act(self, t: int) -> np.ndarray:
        sc, w = self.scenario, self.weights
        N, J = sc.N, sc.J
        self._cum_demand += sc.demand[t]
        inv_total = np.divide(t + 1, sc.T * self._cum_demand, out=np.zeros(J), where=self._cum_demand > 0)
        # footprint per facility MWh (USD/MWh) at each site, per block
        ow = sc.region_weights * sc.pue
        bc = w.mu_carbon * ow * sc.carbon[t]
        bw = w.mu_water * ow * sc.water[t]
        g = self.gamma
        site = (sc.price[t] * sc.pue + g[:N] * bc + g[N:2 * N] * bw)                   # USD per IT MWh
        cost = site[:, None, None] * self._e[None, None, :]                           # (N, 1, K)
        if self.social:
            soc = w.mu_social * inv_total                                             # (J,) USD per unit loss
            cost = cost + (g[2 * N:] * soc)[None, :, None] * sc.quality_loss[None, None, :]
        if self._lat_cost is not None:
            cost = cost + self._lat_cost
        x = self.router.route(np.broadcast_to(cost, (N, J, sc.K)), sc.demand[t])
        # footprint of the chosen routing, B_t x_t (USD)
        it = (x @ self._e).sum(axis=1)
        b = [bc * it, bw * it]
        if self.social:
            b.append(soc * (x @ sc.quality_loss).sum(axis=0))
        bx = np.concatenate(b)
        z_max = self._z_max(t, inv_total)
        if self.eta is None:
            if self.eta_given is not None:
                self.eta = float(self.eta_given)
            else:
                G = max(float(np.linalg.norm(z_max[blk])) for blk in self.blocks)
                self.eta = 1.0 / (max(G, 1e-12) * math.sqrt(sc.T))
            self.eta *= self.eta_scale
        z = np.concatenate([auxiliary_argmin(g[blk], z_max[blk], w.q) for blk in self.blocks])
        g = g + self.eta * (bx - z)
        self.gamma = np.maximum(g, 0.0) if self.project_duals else g
        return x


CASES = [
    dict(K=2, mask=np.array([[1, 1], [1, 0], [0, 1]], bool)),       # per-slot LP, social, latency
    dict(K=1, J=3),                                                  # merit order (full mask, K = 1)
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("q", [1.0, 2.0, 3.0, math.inf])
@pytest.mark.parametrize("kw", [{}, {"project_duals": False}, {"eta": 2e-3, "z_max": 0.5}, {"eta_scale": 0.3}])
def test_policy_is_bit_identical_to_the_former_loop(case, q, kw):
    sc = small_scenario(T=24, seed=31 + case, **CASES[case])
    w = Weights(mu_carbon=80.0, mu_water=8.0, mu_social=150.0, mu_latency=0.01, q=q)
    new = OnlineEGLBPolicy(**kw).schedule(sc, w)
    ref = _ReferenceEGLB(**kw).schedule(sc, w)
    np.testing.assert_array_equal(new, ref)


@pytest.mark.parametrize("name", ["eglb-2022", "eglb-2022-partial"])
def test_policy_is_bit_identical_on_real_traces(eglb_dir, name):
    sc = equiglb.load_scenario(name, data_dir=eglb_dir)
    if name.endswith("partial"):
        sc = sc.window(0, 48)
    np.testing.assert_array_equal(OnlineEGLBPolicy().schedule(sc), _ReferenceEGLB().schedule(sc))


def _run_core(sc, w, scale=None, **kw):
    core = EGLBCore(sc, w, **kw)
    xs = [core.step(t, scale, scale, scale) for t in range(sc.T)]
    return np.stack(xs), core


@pytest.mark.parametrize("q", [1.0, 2.0, math.inf])
def test_unit_multipliers_reproduce_online_eglb_exactly(q):
    # the residual action mode passes exp(a): a = 0 gives multipliers of exactly 1
    sc = small_scenario(T=16, seed=33, K=2, mask=np.array([[1, 1], [1, 0], [0, 1]], bool))
    w = Weights(mu_carbon=80.0, mu_water=8.0, mu_social=150.0, q=q)
    core = EGLBCore(sc, w)
    a_site, a_region = np.zeros(sc.N), np.zeros(sc.J)
    x_ones = np.stack([core.step(t, np.exp(a_site), np.exp(a_site), np.exp(a_region)) for t in range(sc.T)])
    np.testing.assert_array_equal(x_ones, OnlineEGLBPolicy().schedule(sc, w))


def test_multipliers_change_the_routing_and_zero_is_min_cost(eglb):
    sc = eglb.window(0, 48)
    w = sc.weights
    x_eglb = OnlineEGLBPolicy().schedule(sc, w)
    x_zero, _ = _run_core(sc, w, scale=0.0)
    x_mc = make_policy("min-cost").schedule(sc, w)
    np.testing.assert_allclose(x_zero, x_mc, atol=1e-9)          # no equity price: per-slot min cost
    assert not np.allclose(x_zero, x_eglb)
    j_eglb = evaluate(sc, x_eglb, w).objective_usd
    j_big, _ = _run_core(sc, w, scale=30.0)
    assert evaluate(sc, j_big, w).objective_usd != pytest.approx(j_eglb, rel=1e-6)


@pytest.mark.parametrize("social", [False, True])
def test_price_router_with_the_core_prices_routes_like_the_core(social):
    # route(t) by the core and PriceRouter.route(t, **core.prices()) give the same cost up to rounding
    sc = small_scenario(T=12, seed=34, K=2, mask=np.array([[1, 1], [1, 0], [0, 1]], bool))
    w = Weights(mu_carbon=80.0, mu_water=8.0, mu_social=150.0 if social else 0.0, mu_latency=0.01, q=2.0)
    core = EGLBCore(sc, w)
    pr = PriceRouter(sc, w)
    assert core.prices()["social_usd_per_unit_loss"] is None     # no slot routed yet
    for t in range(sc.T):
        x = core.route(t)
        p = core.prices()
        assert (p["social_usd_per_unit_loss"] is not None) == social
        y = pr.route(t, p["carbon_usd_per_t"], p["water_usd_per_m3"], p["social_usd_per_unit_loss"])
        assert_feasible(sc.window(t, 1), y[None])
        cost = _slot_cost(sc, w, t, p)
        assert (cost * y).sum() == pytest.approx((cost * x).sum(), rel=1e-9, abs=1e-9)
        core.update(t, x)
    assert core.gamma.max() > 0


def _slot_cost(sc, w, t, p):
    """The calibrated per-unit cost of the PriceRouter docstring, written out independently."""
    site = sc.pue * (sc.price[t] + p["carbon_usd_per_t"] * sc.carbon[t] + p["water_usd_per_m3"] * sc.water[t])
    cost = site[:, None, None] * sc.energy_per_unit[None, None, :] + np.zeros((sc.N, sc.J, sc.K))
    if p["social_usd_per_unit_loss"] is not None:
        cost = cost + p["social_usd_per_unit_loss"][None, :, None] * sc.quality_loss[None, None, :]
    if w.mu_latency:
        cost = cost + w.mu_latency * sc.latency[:, :, None]
    return cost + 1e6 * ~sc.allowed


def test_prices_are_in_physical_units():
    sc = small_scenario(T=6, seed=35, K=1)
    w = Weights(mu_carbon=100.0, mu_water=10.0)
    _, core = _run_core(sc, w)
    p = core.prices()
    np.testing.assert_allclose(p["carbon_usd_per_t"], core.gamma_carbon * 100.0 * sc.region_weights)
    np.testing.assert_allclose(p["water_usd_per_m3"], core.gamma_water * 10.0 * sc.region_weights)
    obs = core.observation()
    obs[:] = -1                                                      # a copy: the state is untouched
    assert (core.gamma >= 0).all()
    assert core.gamma_social is None and core.gamma.shape == (2 * sc.N,)


def test_route_is_repeatable_and_slots_go_in_order():
    sc = small_scenario(T=4, seed=36, K=1)
    w = Weights(mu_carbon=100.0, mu_water=10.0)
    core = EGLBCore(sc, w)
    a = core.route(0)
    b = core.route(0, 2.0, 0.5)                    # a second look at slot 0 does not count its demand twice
    np.testing.assert_array_equal(core.route(0), a)
    assert b.shape == a.shape
    with pytest.raises(ValueError, match="out of order"):
        core.route(1)
    with pytest.raises(ValueError, match="without route"):
        core.update(1, a)
    core.update(0, a)
    with pytest.raises(ValueError, match="carbon_scale"):
        core.route(1, carbon_scale=-1.0)
    with pytest.raises(ValueError, match="eta_scale"):
        EGLBCore(sc, w, eta_scale=0.0)
    with pytest.raises(ValueError, match="z_max_scale"):
        EGLBCore(sc, w, z_max_scale=math.nan)


def test_z_max_scale_changes_the_bound_but_not_the_default_step(eglb):
    sc, w = eglb.window(0, 96), eglb.weights
    _, c1 = _run_core(sc, w)
    _, c2 = _run_core(sc, w, z_max_scale=0.5)
    assert c1.eta == c2.eta
    assert not np.array_equal(c1.gamma, c2.gamma)


def test_one_slot_router_serves_every_window():
    sc = small_scenario(T=30, seed=38, K=2, mask=np.array([[1, 1], [1, 0], [0, 1]], bool))
    w = Weights(mu_carbon=80.0, mu_water=8.0, q=2.0)
    shared = SlotRouter(sc, w.unserved_penalty_usd)
    for start in (0, 7, 20):
        win = sc.window(start, 10)
        core = EGLBCore(win, w, router=PriceRouter(win, w, router=shared))
        x = np.stack([core.step(t) for t in range(win.T)])
        # the shared LP is hot-started from another window's basis: equal up to round-off
        np.testing.assert_allclose(x, OnlineEGLBPolicy().schedule(win, w), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="other static data"):
        PriceRouter(sc, w.replace(unserved_penalty_usd=5.0), router=shared)
    with pytest.raises(ValueError, match="other static data"):
        PriceRouter(small_scenario(T=5, seed=39, K=1), w, router=shared)
