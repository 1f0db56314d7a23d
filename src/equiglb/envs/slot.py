"""One slot step: action → routing → accounting, in two layers chosen once at construction.

* :class:`SlotStep` is the **reference**: the batched numpy path, readable top to bottom, used for
  every configuration the accelerator does not cover (one copy or a batch) and by the tests as the
  truth. It checks the action, maps it to a repaired routing
  (:meth:`equiglb.envs.actions.ActionMap.routing`, a :class:`~equiglb.ledger.DenseRouting` or
  :class:`~equiglb.ledger.FactoredRouting`) and accounts it in the :class:`~equiglb.ledger.Ledger`.
* :class:`PriceStep` (``action_mode="prices"``) and :class:`ResidualStep` (``"eglb_residual"``) are
  the learning-augmented modes: the action sets per-site equity prices, or scales the prices of an
  online-eGLB run inside the environment, and the slot is routed by the baselines' own per-slot
  router (:class:`equiglb.baselines.routing.PriceRouter`, one definition shared with online eGLB).
  :class:`MPCResidualStep` (``"mpc_residual"``) runs the baselines' MPC inside the environment
  (:class:`equiglb.baselines.mpc.MPCCore`) and the action scales its equity coefficients.
* :class:`CompiledStep` is the **accelerator** for the common case (``"site_scores"`` actions, every
  region in one group, one model, no social or latency term: the default ids), for one copy and for
  a batch: the same map, water-filling and slot formulas as one compiled loop
  (:mod:`equiglb.envs.kernels`, numba). Tests pin it to the reference slot by slot.

:func:`make_slot_step` picks the class once; nothing else in the package tests which one runs.
All leave the slot's quantities and the cumulative state in their ``ledger`` (same attributes) and
return the executed routing x, which the ledger accounts: the return is -J(x) in every mode.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from equiglb.control.eglb import EGLBCore
from equiglb.control.mpc import MAX_HORIZON_H, MPCCore, MPCSolver, make_mpc_solver
from equiglb.control.routing import PriceRouter, SlotRouter
from equiglb.envs import kernels
from equiglb.envs.actions import MAP_MODES, ActionMap, check_action, unit_weights
from equiglb.forecast import Forecaster
from equiglb.ledger import UNSERVED_RTOL, DenseRouting, FactoredRouting, Ledger
from equiglb.scenario import Scenario, Weights
from equiglb.validate import as_float, as_int

__all__ = ["SlotStep", "CompiledStep", "PriceStep", "ResidualStep", "MPCResidualStep", "make_slot_step",
           "RESIDUAL_MAX_FACTOR", "MPC_HORIZON_H", "DUAL_OBS_CAP"]

#: ``"eglb_residual"``: by default an action entry a scales its eGLB dual by RESIDUAL_MAX_FACTOR ** clip(a),
#: a factor in [1/4, 4]; a = 0 is online eGLB exactly. The option ``eglb_residual_max_factor`` = f sets the
#: range to [1/f, f].
RESIDUAL_MAX_FACTOR = 4.0
#: ``"mpc_residual"``: the default look-ahead (hours) of the MPC run inside the environment
MPC_HORIZON_H = 6
#: ``"eglb_residual"``: the eGLB duals in the observation are clipped to [0, DUAL_OBS_CAP]
#: (dimensionless; each block lies in the unit ball of the dual norm at the offline optimum).
DUAL_OBS_CAP = 4.0
#: action dtypes the compiled kernel takes as they are (anything else is converted to float64 first)
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class SlotStep:
    """Reference slot step for one copy (``batch_size=None``) or B copies (leading axis B).

    Args:
        scenario: the scenario (with the environment's weights and region weights applied).
        weights: the objective weights of the reward.
        mode: the action mode (:data:`equiglb.envs.actions.ACTION_MODES`).
        batch_size: None for one copy, else B.
    """

    #: number of observation features the step adds (the eGLB duals of the residual mode)
    extra_dim = 0

    def __init__(self, scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None):
        self.scenario = scenario
        self.mode = mode
        self.action_map: ActionMap | None = ActionMap(scenario, mode) if mode in MAP_MODES else None
        self.ledger = Ledger(scenario, weights, batch_size)
        self.batch = () if batch_size is None else (batch_size,)

    @property
    def dim(self) -> int:
        """The action dimension."""
        assert self.action_map is not None
        return self.action_map.dim

    def extra(self) -> np.ndarray | None:
        """Observation features of the step's own state ((..., extra_dim)), or None."""
        return None

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) ``start .. start+length-1`` (``index`` selects copies with a batch)."""
        self.ledger.reset(start, length, index)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route and account slot ``t``; returns the reward (USD) and the routing x (..., N, J, K)."""
        assert self.action_map is not None
        a = self.action_map.check(action, self.batch)
        return self._account(t, self.action_map.routing(a, self.scenario.demand[t]))

    def _account(self, t: int | np.ndarray, routing: DenseRouting | FactoredRouting
                 ) -> tuple[np.ndarray | float, np.ndarray]:
        """Account ``routing`` in the ledger; the reward (a float for one copy) and x (..., N, J, K)."""
        reward = self.ledger.step(t, routing)
        return (float(reward) if not self.batch else reward), routing.dense()


class CompiledStep(SlotStep):
    """Accelerator of :class:`SlotStep` where :meth:`applies` (see the module docstring), for one copy
    or a batch: the compiled kernel :func:`equiglb.envs.kernels.site_scores_slot` does the map, the
    water-filling and the ledger's slot formulas; this class holds its constant tables and hands the
    results to the ledger (same attributes as the reference leaves there).
    """

    @staticmethod
    def applies(scenario: Scenario, weights: Weights, mode: str, batch_size: int | None) -> bool:
        """Whether the accelerator covers this configuration."""
        if mode != "site_scores" or scenario.K != 1:
            return False
        one_group = bool(np.all(scenario.allowed == scenario.allowed[:, :1, :]))
        no_social = not scenario.social_tracked(weights)
        no_latency = scenario.latency is None or not weights.mu_latency
        return one_group and no_social and no_latency

    def __init__(self, scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None):
        super().__init__(scenario, weights, mode, batch_size)
        sc, am = scenario, self.action_map
        assert am is not None
        e = float(sc.energy_per_unit[0])
        mwh = e * sc.pue                                          # facility MWh per load unit at site i
        self._site_of_entry = am.index.astype(np.int64)           # action entry -> site (K = 1)
        sites = np.zeros((5, sc.N))
        sites[kernels.SITE_ALLOWED] = sc.allowed[:, 0, 0]         # every region reaches the same sites
        sites[kernels.SITE_UNIFORM] = am.uniform[:, 0]
        sites[kernels.SITE_CAPACITY] = sc.capacity
        sites[kernels.SITE_MWH_PER_LOAD] = mwh
        sites[kernels.SITE_OMEGA] = sc.region_weights
        self._sites = sites
        # per slot and per load unit at site i: energy cost (USD), carbon (t) and water (m³)
        self._per_unit = np.ascontiguousarray(np.stack([sc.price, sc.carbon, sc.water], axis=1) * mwh)
        self._demand = np.ascontiguousarray(sc.demand, dtype=np.float64)
        self._total = sc.demand.sum(axis=1)                      # (T,) total demand of each slot
        self._share = np.divide(sc.demand, self._total[:, None], out=np.zeros_like(sc.demand),
                                where=self._total[:, None] > 0)
        self._params = np.array([e, weights.q, weights.mu_carbon, weights.mu_water, weights.unserved_penalty_usd,
                                 UNSERVED_RTOL])
        self._B = 1 if batch_size is None else batch_size
        self._t = np.zeros(self._B, dtype=np.int64)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """As :meth:`SlotStep.step`."""
        a = np.asarray(action)
        if a.dtype not in _KERNEL_DTYPES or a.shape != self.batch + (self.dim,):
            a = check_action(action, self.dim, self.batch, self.mode)     # converts, or raises on the shape
        B, N, J = self._B, self.scenario.N, self.scenario.J
        self._t[:] = t
        led = self.ledger
        out = np.empty((B, kernels.OUT_FACILITY + N))
        x = np.empty((B, N, J, 1))
        bad = kernels.site_scores_slot(self._t, a.reshape(B, -1), self._site_of_entry, self._sites, self._per_unit,
                                       self._demand, self._share, self._total, self._params,
                                       led.footprint.reshape(B, 2, N), np.asarray(led.phi_usd).reshape(B), out,
                                       x.reshape(B, N, J))
        if bad >= 0:
            check_action(action, self.dim, self.batch, self.mode)     # raises, naming the entry
        if not self.batch:
            out, x = out[0], x[0]
        led.phi_usd = out[..., kernels.OUT_PHI]
        led.energy_cost_usd = out[..., kernels.OUT_COST]
        led.unserved_load = out[..., kernels.OUT_UNSERVED]
        led.slot_cost_usd = out[..., kernels.OUT_SLOT_COST]
        led.facility_energy_mwh = out[..., kernels.OUT_FACILITY:]
        reward = out[..., kernels.OUT_REWARD]
        return (float(reward) if not self.batch else reward), x


class _PricedStep(SlotStep):
    """What the ``"prices"`` and ``"eglb_residual"`` modes share: the action's blocks (N carbon, N water
    and, with a social term, J social entries) and the baselines' per-slot router, built once."""

    def __init__(self, scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None):
        super().__init__(scenario, weights, mode, batch_size)
        self.social = scenario.social_in_force(weights)
        self._dim = 2 * scenario.N + (scenario.J if self.social else 0)
        self.slot_router = SlotRouter(scenario, weights.unserved_penalty_usd)

    @property
    def dim(self) -> int:
        """The action dimension: 2N (+ J with a social term)."""
        return self._dim


class PriceStep(_PricedStep):
    """``action_mode="prices"``: the action sets per-site equity prices; the slot is routed by them.

    Map: ``u = (clip(a, -1, 1) + 1) / 2`` in [0, 1] per entry, in blocks of N carbon entries, N
    water entries and, when the scenario has a social term, J social entries. The prices are
    ``u_c[i] μ_c ω_i`` USD/t CO2 and ``u_w[i] μ_w ω_i`` USD/m³ at site i, and ``u_s[j] μ_s / Λ_j``
    USD per load unit and unit of quality loss for region j (Λ_j the episode's total demand of j):
    ``u`` are the dimensionless duals of online eGLB, whose blocks lie in the unit ball of the dual
    norm at the offline optimum, so the box [0, 1] holds them for every q (scale-free). The slot is
    then routed at minimum ``energy cost + prices × footprints`` under demand and capacity by
    :class:`~equiglb.baselines.routing.PriceRouter`, the router of online eGLB.
    """

    def __init__(self, scenario: Scenario, weights: Weights, mode: str = "prices", batch_size: int | None = None):
        super().__init__(scenario, weights, mode, batch_size)
        self.router = PriceRouter(scenario, weights, router=self.slot_router)
        self._carbon_usd = weights.mu_carbon * np.asarray(scenario.region_weights)   # USD/t per unit dual
        self._water_usd = weights.mu_water * np.asarray(scenario.region_weights)     # USD/m³ per unit dual

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route slot ``t`` by the action's prices and account it."""
        a = check_action(action, self.dim, self.batch, self.mode)
        u = unit_weights(a).reshape((-1, self.dim))
        ts = np.asarray(t).reshape(-1)
        inv_demand = self.ledger.inv_window_demand.reshape((-1, self.scenario.J))
        N = self.scenario.N
        x = np.stack([self.router.route(int(tb), ub[:N] * self._carbon_usd, ub[N:2 * N] * self._water_usd,
                                        ub[2 * N:] * self.ledger.weights.mu_social * inv if self.social else None)
                      for tb, ub, inv in zip(ts, u, inv_demand)])
        return self._account(t, DenseRouting(x.reshape(self.batch + x.shape[1:])))


class ResidualStep(_PricedStep):
    """``action_mode="eglb_residual"``: online eGLB runs inside the environment; the action scales its prices.

    Each episode starts an :class:`~equiglb.baselines.online_eglb.EGLBCore` on the episode's window,
    with the documented online-eGLB defaults times the base's ``eta_scale`` and ``z_max_scale``
    (the environment options ``eglb_eta_scale`` and ``eglb_z_max_scale``, 1.0 by default; e.g. the
    choice of :func:`~equiglb.baselines.eglb_tuned.tune_online_eglb`). Each slot the action, in the blocks of
    :class:`PriceStep`, multiplies the core's duals by ``f ** clip(a, -1, 1)`` (factors in [1/f, f];
    ``f = max_factor``, the option ``eglb_residual_max_factor``, :data:`RESIDUAL_MAX_FACTOR` by
    default) before the core routes the slot; the core then takes its mirror-descent
    step with the executed routing. Action 0 is that online eGLB exactly
    (``OnlineEGLBPolicy(eta_scale=..., z_max_scale=...)``). The observation gains the core's duals
    before scaling (:attr:`extra_dim` = the action dimension, clipped to [0, DUAL_OBS_CAP]).

    Args:
        scenario, weights, mode, batch_size: as :class:`SlotStep`.
        eta_scale, z_max_scale: the base's multipliers of online eGLB's step and auxiliary bound
            (finite, > 0).
        max_factor: the largest multiplier of a dual (finite, > 1).
    """

    def __init__(self, scenario: Scenario, weights: Weights, mode: str = "eglb_residual",
                 batch_size: int | None = None, eta_scale: float = 1.0, z_max_scale: float = 1.0,
                 max_factor: float = RESIDUAL_MAX_FACTOR):
        super().__init__(scenario, weights, mode, batch_size)
        self.extra_dim = self._dim
        n = 1 if batch_size is None else batch_size
        self.starts = np.zeros(n, dtype=np.int64)
        self.eta_scale = as_float("eta_scale", eta_scale, lo=0.0, lo_open=True)
        self.z_max_scale = as_float("z_max_scale", z_max_scale, lo=0.0, lo_open=True)
        self.max_factor = as_float("max_factor", max_factor, lo=1.0, lo_open=True)
        self.log_range = math.log(self.max_factor)
        self.cores: list[EGLBCore] = [self._core(0, 1) for _ in range(n)]

    def _core(self, start: int, length: int) -> EGLBCore:
        window, w = self.scenario.window(start, length), self.ledger.weights
        return EGLBCore(window, w, eta_scale=self.eta_scale, z_max_scale=self.z_max_scale,
                        router=PriceRouter(window, w, router=self.slot_router))

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) and a new online-eGLB core for each reset copy."""
        super().reset(start, length, index)
        chosen = np.arange(len(self.cores)) if index is None else np.arange(len(self.cores))[index]
        starts = np.broadcast_to(np.asarray(start, dtype=np.int64), chosen.shape)
        for b, s in zip(chosen.tolist(), starts.tolist()):
            self.starts[b] = s
            self.cores[b] = self._core(s, int(length))

    def extra(self) -> np.ndarray | None:
        """The cores' duals γ before scaling, clipped to [0, DUAL_OBS_CAP] ((..., extra_dim))."""
        g = np.stack([np.clip(c.gamma, 0.0, DUAL_OBS_CAP) for c in self.cores])
        return g[0] if not self.batch else g

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route slot ``t`` by online eGLB with the action's price multipliers, account it, step the duals."""
        a = check_action(action, self.dim, self.batch, self.mode)
        scale = np.exp(self.log_range * np.clip(a, -1.0, 1.0)).reshape((-1, self.dim))
        ts = np.asarray(t).reshape(-1)
        N = self.scenario.N
        xs = []
        for core, start, tb, sb in zip(self.cores, self.starts, ts, scale):
            k = int(tb) - int(start)                    # the slot within the core's window
            xb = core.route(k, sb[:N], sb[N:2 * N], sb[2 * N:] if self.social else None)
            core.update(k, xb)
            xs.append(xb)
        return self._account(t, DenseRouting(np.stack(xs).reshape(self.batch + xs[0].shape)))


class MPCResidualStep(SlotStep):
    """``action_mode="mpc_residual"``: MPC runs inside the environment; the action scales its equity terms.

    Each episode starts an :class:`~equiglb.baselines.mpc.MPCCore` on the episode's window with
    look-ahead ``horizon`` hours (the option ``mpc_horizon``, :data:`MPC_HORIZON_H` by default; at
    most the episode's length) that reads the environment's forecasts (its ``forecaster``, the one the
    observation shows; ``None``, for ``forecast_model="perfect"``, is the truth) within the episode's
    window (hours past the episode are outside the objective and get zero demand). The action has one entry per equity
    term: carbon, water and, when the scenario has a social term, social. Each slot the MPC program's
    carbon coefficients and accumulated carbon of every site are multiplied by ``f ** clip(a[0], -1, 1)``,
    the water ones by ``f ** clip(a[1], -1, 1)`` (and the social ones by ``f ** clip(a[2], -1, 1)``), with
    ``f = max_factor`` (the option ``mpc_residual_max_factor``, :data:`RESIDUAL_MAX_FACTOR` by default);
    the first slot of the program's solution is executed. Action 0 is ``MPCPolicy(horizon, forecast_model=...,
    seed=forecast_seed)`` exactly (the same forecasts).

    One multiplier per term, not per site: MPC's program is a linear (or conic) program whose solution
    jumps between vertices, and per-site multipliers that change from slot to slot move load between
    sites every hour. Measured on the synthetic scenario's first 240 train hours (MPC 6 h: J =
    350,974 USD): random per-site multipliers with log-factor std 0.05 × ln 4 raised J by 5.2-6.5 %
    (three draws), the same noise on one multiplier per term by 0.06-0.08 %.

    The program is built once per look-ahead (:func:`~equiglb.baselines.mpc.make_mpc_solver`: HiGHS
    directly where the aggregated LP applies, else the cvxpy program) and shared by every copy.

    Args:
        scenario, weights, mode, batch_size: as :class:`SlotStep`.
        horizon: the MPC look-ahead in hours (1 .. MAX_HORIZON_H).
        max_factor: the largest multiplier of an equity term (finite, > 1).
        forecaster: the environment's :class:`~equiglb.forecast.Forecaster` (``None``: perfect forecasts).
    """

    def __init__(self, scenario: Scenario, weights: Weights, mode: str = "mpc_residual",
                 batch_size: int | None = None, horizon: int = MPC_HORIZON_H,
                 max_factor: float = RESIDUAL_MAX_FACTOR, forecaster: Forecaster | None = None):
        super().__init__(scenario, weights, mode, batch_size)
        #: the environment's forecaster (None: perfect forecasts within the episode)
        self.forecaster = forecaster
        self.social = scenario.social_in_force(weights)
        self._dim = 3 if self.social else 2
        n = 1 if batch_size is None else batch_size
        self.horizon = as_int("horizon", horizon, 1, MAX_HORIZON_H, unit="hours")
        self.max_factor = as_float("max_factor", max_factor, lo=1.0, lo_open=True)
        self.log_range = math.log(self.max_factor)
        self.starts = np.zeros(n, dtype=np.int64)
        self.solver: MPCSolver | None = None
        self.cores: list[MPCCore | None] = [None] * n

    @property
    def dim(self) -> int:
        """The action dimension: 2 (carbon, water), 3 with a social term."""
        return self._dim

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) and a new MPC run for each reset copy (the program is built once per length)."""
        super().reset(start, length, index)
        H = min(self.horizon, int(length))
        if self.solver is None or self.solver.H != H:
            self.solver = make_mpc_solver(self.scenario.window(0, H), H, self.ledger.weights)
        chosen = np.arange(len(self.cores)) if index is None else np.arange(len(self.cores))[index]
        starts = np.broadcast_to(np.asarray(start, dtype=np.int64), chosen.shape)
        for b, s in zip(chosen.tolist(), starts.tolist()):
            self.starts[b] = s
            self.cores[b] = MPCCore(self.scenario.window(s, int(length)), self.ledger.weights, H,
                                    forecaster=self.forecaster, offset=s)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route slot ``t`` by MPC with the action's multipliers of its equity terms, and account it."""
        a = check_action(action, self.dim, self.batch, self.mode)
        scale = np.exp(self.log_range * np.clip(a, -1.0, 1.0)).reshape((-1, self.dim))
        ts = np.asarray(t).reshape(-1)
        sc, solver = self.scenario, self.solver
        assert solver is not None, "MPCResidualStep.step before reset"
        xs = []
        for core, start, tb, sb in zip(self.cores, self.starts, ts, scale):
            assert core is not None
            k = int(tb) - int(start)                    # the slot within the core's window
            xb = core.route(k, solver, np.full(sc.N, sb[0]), np.full(sc.N, sb[1]),
                            np.full(sc.J, sb[2]) if self.social else None)
            core.update(k, xb)
            xs.append(xb)
        return self._account(t, DenseRouting(np.stack(xs).reshape(self.batch + xs[0].shape)))


    def __getstate__(self) -> dict:
        """Copy and pickle support: the MPC program (a HiGHS model or a compiled cvxpy problem) is not
        picklable; the state keeps its look-ahead and :meth:`__setstate__` builds it again (each solve
        passes the whole program, so a rebuilt one gives the same routings)."""
        state = self.__dict__.copy()
        solver = state.pop("solver")
        state["_solver_H"] = None if solver is None else solver.H
        state["_solver_used"] = None if solver is None else dict(solver.solvers_used)
        return state

    def __setstate__(self, state: dict) -> None:
        """Rebuild the MPC program of the look-ahead recorded by :meth:`__getstate__`."""
        H, used = state.pop("_solver_H", None), state.pop("_solver_used", None)
        self.__dict__.update(state)
        self.solver = None
        if H is not None:
            self.solver = make_mpc_solver(self.scenario.window(0, H), H, self.ledger.weights)
            self.solver.solvers_used.update(used or {})


def make_slot_step(scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None,
                   residual: dict[str, Any] | None = None) -> SlotStep:
    """The slot step for a configuration, chosen once: the learning-augmented modes' own steps,
    :class:`CompiledStep` where it applies, else the reference :class:`SlotStep`. ``residual`` holds the
    residual modes' options: ``eta_scale``, ``z_max_scale`` and ``max_factor`` of ``"eglb_residual"``
    (:class:`ResidualStep`), ``horizon``, ``max_factor`` and ``forecaster`` of ``"mpc_residual"``
    (:class:`MPCResidualStep`)."""
    residual = residual or {}
    if residual and mode not in ("eglb_residual", "mpc_residual"):
        raise TypeError(f"make_slot_step: {sorted(residual)} apply only to the residual modes, got {mode!r}")
    if mode == "prices":
        return PriceStep(scenario, weights, mode, batch_size)
    if mode == "eglb_residual":
        return ResidualStep(scenario, weights, mode, batch_size, **residual)
    if mode == "mpc_residual":
        return MPCResidualStep(scenario, weights, mode, batch_size, **residual)
    cls = CompiledStep if CompiledStep.applies(scenario, weights, mode, batch_size) else SlotStep
    return cls(scenario, weights, mode, batch_size)
