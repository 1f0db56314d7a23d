"""One slot step: action → routing → accounting, one class per action mode (docs/env.md, "Action modes").

:data:`ACTION_MODE_REGISTRY` maps each action mode's name to its class, a leaf of one of three bases:

* :class:`SlotStep`, the base of every mode: the ledger, the reset of the window(s) and the accounting of
  a routing (:meth:`SlotStep._account`). With ``batch_size=B`` every array has a leading axis of B copies.
* :class:`_MapStep`: the modes of an :class:`~equiglb.envs.actions.ActionMap` (weights on routing
  triples, :class:`RoutingStep`, or on sites, :class:`SiteScoresStep`): the batched numpy reference path
  (map, repair, ledger), readable top to bottom. :class:`SiteScoresStep` holds the one accelerator,
  :class:`CompiledSiteScores`, chosen once at construction where it applies (every region in one group,
  one model, no social or latency term: the default ids): the same map, water-filling and slot formulas
  as one compiled loop (:mod:`equiglb.envs.kernels`, numba), pinned to the reference by the tests.
* :class:`PriceStep` (``"prices"``): the action sets per-site equity prices and the slot is routed by
  the baselines' per-slot router (:class:`equiglb.control.routing.PriceRouter`, shared with online eGLB).
* :class:`_PlannerStep`: run an inner planner per env copy and scale its equity terms by the action:
  :class:`ResidualStep` (``"eglb_residual"``, online eGLB's duals) and :class:`MPCResidualStep`
  (``"mpc_residual"``, MPC's equity coefficients).

A mode with options of its own declares them as a dataclass next to it (:class:`EGLBResidualOptions`,
:class:`MPCResidualOptions`; the class's :attr:`SlotStep.options_type`), checked by name when built.
:func:`make_slot_step` builds a mode by name; every mode leaves the slot's quantities and the cumulative
state in its ``ledger`` and returns the executed routing x, which the ledger accounts: the return is
-J(x) in every mode.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from equiglb.control import MAX_HORIZON_H, MAX_TAIL_DAYS, TAIL_BLOCK_HOURS
from equiglb.envs import kernels
from equiglb.envs.actions import ActionMap, check_action, unit_weights
from equiglb.envs.options import option
from equiglb.forecast import Forecaster
from equiglb.ledger import UNSERVED_RTOL, DenseRouting, FactoredRouting, Ledger
from equiglb.scenario import Scenario, Weights
from equiglb.validate import as_bool, as_float, as_int, one_of

if TYPE_CHECKING:
    from equiglb.control.eglb import EGLBCore
    from equiglb.control.mpc import MPCCore, MPCSolver

# The control layer's routing LPs and planners (scipy.sparse, highspy) load in the modes that use them, so that
# ``gym.make`` of the default mode does not import them.

__all__ = ["SlotStep", "RoutingStep", "SiteScoresStep", "CompiledSiteScores", "PriceStep", "ResidualStep",
           "MPCResidualStep", "EGLBResidualOptions", "MPCResidualOptions", "ACTION_MODE_REGISTRY",
           "ACTION_MODES", "make_slot_step", "RESIDUAL_MAX_FACTOR", "MPC_HORIZON_H", "DUAL_OBS_CAP",
           "RESIDUAL_OBSERVATIONS", "RESIDUAL_REWARDS"]

#: ``"eglb_residual"``: by default an action entry a scales its eGLB dual by RESIDUAL_MAX_FACTOR ** clip(a),
#: a factor in [1/4, 4]; a = 0 is online eGLB exactly. The option ``eglb_residual_max_factor`` = f sets the
#: range to [1/f, f].
RESIDUAL_MAX_FACTOR = 4.0
#: ``"mpc_residual"``: the default look-ahead (hours) of the MPC run inside the environment
MPC_HORIZON_H = 6
#: ``"mpc_residual"``: the observations an agent may have (option ``mpc_residual_observation``)
RESIDUAL_OBSERVATIONS = ("full", "spreads", "none")
#: ``"mpc_residual"``: the rewards (option ``mpc_residual_reward``)
RESIDUAL_REWARDS = ("cost", "vs-planner")
#: ``"eglb_residual"``: the eGLB duals in the observation are clipped to [0, DUAL_OBS_CAP]
#: (dimensionless; each block lies in the unit ball of the dual norm at the offline optimum).
DUAL_OBS_CAP = 4.0
#: action dtypes the compiled kernel takes as they are (anything else is converted to float64 first)
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class SlotStep:
    """The base of every action mode, for one copy (``batch_size=None``) or B copies (leading axis B).

    A mode is built as ``cls(scenario, weights, batch_size, options, forecaster)`` (:func:`make_slot_step`).

    Args:
        scenario: the scenario (with the environment's weights and region weights applied).
        weights: the objective weights of the reward.
        batch_size: None for one copy, else B.
        options: the mode's own options (an instance of :attr:`options_type`; None: its defaults).
        forecaster: the environment's :class:`~equiglb.forecast.Forecaster` (read by the modes that plan on
            forecasts; ``None``: perfect forecasts).
    """

    #: the mode's name (a key of :data:`ACTION_MODE_REGISTRY`)
    mode: ClassVar[str]
    #: the dataclass of the mode's own options (None: the mode has none)
    options_type: ClassVar[type | None] = None
    #: the action dimension (set by each mode)
    dim: int
    #: number of observation features the step adds (the eGLB duals of the residual mode)
    extra_dim = 0

    def __init__(self, scenario: Scenario, weights: Weights, batch_size: int | None = None, options: Any = None,
                 forecaster: Forecaster | None = None):
        self.scenario = scenario
        self.action_map: ActionMap | None = None
        self.ledger = Ledger(scenario, weights, batch_size)
        self.batch = () if batch_size is None else (batch_size,)

    def extra(self) -> np.ndarray | None:
        """Observation features of the step's own state ((..., extra_dim)), or None."""
        return None

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) ``start .. start+length-1`` (``index`` selects copies with a batch)."""
        self.ledger.reset(start, length, index)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route and account slot ``t``; returns the reward (USD) and the routing x (..., N, J, K)."""
        raise NotImplementedError

    def _account(self, t: int | np.ndarray, routing: DenseRouting | FactoredRouting
                 ) -> tuple[np.ndarray | float, np.ndarray]:
        """Account ``routing`` in the ledger; the reward (a float for one copy) and x (..., N, J, K)."""
        reward = self.ledger.step(t, routing)
        return (float(reward) if not self.batch else reward), routing.dense()


# ---------------------------------------------------------------------- the action-map modes
class _MapStep(SlotStep):
    """The reference path of the action-map modes: check the action, map it to a repaired routing
    (:meth:`equiglb.envs.actions.ActionMap.routing`) and account it in the ledger."""

    def __init__(self, scenario: Scenario, weights: Weights, batch_size: int | None = None,
                 options: None = None, forecaster: Forecaster | None = None):
        super().__init__(scenario, weights, batch_size)
        self.action_map = ActionMap(scenario, self.mode)
        self.dim = self.action_map.dim

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route and account slot ``t``; returns the reward (USD) and the routing x (..., N, J, K)."""
        assert self.action_map is not None
        a = self.action_map.check(action, self.batch)
        return self._account(t, self.action_map.routing(a, self.scenario.demand[t]))


class RoutingStep(_MapStep):
    """``action_mode="routing"``: one weight per allowed (site, region, model) triple
    (:class:`~equiglb.envs.actions.ActionMap`)."""

    mode = "routing"


class SiteScoresStep(_MapStep):
    """``action_mode="site_scores"``: one weight per hosted (site, model) pair, shared by every region
    (:class:`~equiglb.envs.actions.ActionMap`). Where :meth:`CompiledSiteScores.applies`, the compiled
    accelerator runs the slot (chosen once here; ``compiled=False`` keeps the reference path, which the
    tests pin the accelerator to)."""

    mode = "site_scores"

    def __init__(self, scenario: Scenario, weights: Weights, batch_size: int | None = None,
                 options: None = None, forecaster: Forecaster | None = None, compiled: bool = True):
        super().__init__(scenario, weights, batch_size)
        #: the accelerator of this configuration, or None (the reference path runs)
        self.compiled = CompiledSiteScores(self) if compiled and CompiledSiteScores.applies(scenario, weights) \
            else None

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route and account slot ``t`` (by the accelerator where it applies); the reward and x."""
        if self.compiled is not None:
            return self.compiled.step(t, action)
        return super().step(t, action)


class CompiledSiteScores:
    """The accelerator of :class:`SiteScoresStep` where :meth:`applies` (see the module docstring), for one
    copy or a batch: the compiled kernel :func:`equiglb.envs.kernels.site_scores_slot` does the map, the
    water-filling and the ledger's slot formulas; this class holds its constant tables and hands the
    results to the ledger (:meth:`equiglb.ledger.Ledger.record`, as the reference path does).
    """

    @staticmethod
    def applies(scenario: Scenario, weights: Weights) -> bool:
        """Whether the accelerator covers this configuration of ``"site_scores"``."""
        if scenario.K != 1:
            return False
        one_group = bool(np.all(scenario.allowed == scenario.allowed[:, :1, :]))
        no_social = not scenario.social_tracked(weights)
        no_latency = scenario.latency is None or not weights.mu_latency
        return one_group and no_social and no_latency

    def __init__(self, step: SiteScoresStep):
        sc, am = step.scenario, step.action_map
        assert am is not None
        self.ledger, self.batch, self.dim = step.ledger, step.batch, am.dim
        weights = step.ledger.weights
        e = float(sc.energy_per_unit[0])
        mwh = e * sc.pue                                          # facility MWh per load unit at site i
        self._N, self._J = sc.N, sc.J
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
        self._B = 1 if not self.batch else self.batch[0]
        self._t = np.zeros(self._B, dtype=np.int64)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """As :meth:`_MapStep.step`."""
        a = np.asarray(action)
        if a.dtype not in _KERNEL_DTYPES or a.shape != self.batch + (self.dim,):
            a = check_action(action, self.dim, self.batch, SiteScoresStep.mode)   # converts, or raises
        B, N, J = self._B, self._N, self._J
        self._t[:] = t
        led = self.ledger
        out = np.empty((B, kernels.OUT_FACILITY + N))
        x = np.empty((B, N, J, 1))
        bad = kernels.site_scores_slot(self._t, a.reshape(B, -1), self._site_of_entry, self._sites, self._per_unit,
                                       self._demand, self._share, self._total, self._params,
                                       led.footprint.reshape(B, 2, N), np.asarray(led.phi_usd).reshape(B), out,
                                       x.reshape(B, N, J))
        if bad >= 0:
            check_action(action, self.dim, self.batch, SiteScoresStep.mode)     # raises, naming the entry
        if not self.batch:
            out, x = out[0], x[0]
        led.record(phi_usd=out[..., kernels.OUT_PHI], energy_cost_usd=out[..., kernels.OUT_COST],
                   unserved_load=out[..., kernels.OUT_UNSERVED], slot_cost_usd=out[..., kernels.OUT_SLOT_COST],
                   facility_energy_mwh=out[..., kernels.OUT_FACILITY:])
        reward = out[..., kernels.OUT_REWARD]
        return (float(reward) if not self.batch else reward), x


# ---------------------------------------------------------------------- the modes that route by prices
def _price_blocks(scenario: Scenario, weights: Weights) -> tuple[bool, int]:
    """Whether the social term is in force, and the dimension of an action in the blocks of per-site
    equity prices: N carbon, N water and, with a social term, J social entries."""
    social = scenario.social_in_force(weights)
    return social, 2 * scenario.N + (scenario.J if social else 0)


class PriceStep(SlotStep):
    """``action_mode="prices"``: the action sets per-site equity prices; the slot is routed by them.

    Map: ``u = (clip(a, -1, 1) + 1) / 2`` in [0, 1] per entry, in blocks of N carbon entries, N
    water entries and, when the scenario has a social term, J social entries. The prices are
    ``u_c[i] μ_c ω_i`` USD/t CO2 and ``u_w[i] μ_w ω_i`` USD/m³ at site i, and ``u_s[j] μ_s / Λ_j``
    USD per load unit and unit of quality loss for region j (Λ_j the episode's total demand of j):
    ``u`` are the dimensionless duals of online eGLB, whose blocks lie in the unit ball of the dual
    norm at the offline optimum, so the box [0, 1] holds them for every q (scale-free). The slot is
    then routed at minimum ``energy cost + prices × footprints`` under demand and capacity by
    :class:`~equiglb.control.routing.PriceRouter`, the router of online eGLB.
    """

    mode = "prices"

    def __init__(self, scenario: Scenario, weights: Weights, batch_size: int | None = None,
                 options: None = None, forecaster: Forecaster | None = None):
        super().__init__(scenario, weights, batch_size)
        from equiglb.control.routing import PriceRouter, SlotRouter  # noqa: PLC0415

        self.social, self.dim = _price_blocks(scenario, weights)     # 2N (+ J with a social term)
        self.slot_router = SlotRouter(scenario, weights.unserved_penalty_usd)
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


# ---------------------------------------------------------------------- the modes that run an inner planner
class _PlannerStep(SlotStep):
    """Run an inner planner (a "core") per env copy, and scale its equity terms by the action.

    Each reset copy starts a new core on its episode's window (:meth:`_start_core`). Each slot the action
    becomes multipliers ``f ** clip(a, -1, 1)`` (factors in [1/f, f], ``f = max_factor``); the copy's core
    routes the slot with them (:meth:`_route`) and then steps with the executed routing. Action 0 is the
    core's algorithm exactly.
    """

    def __init__(self, scenario: Scenario, weights: Weights, batch_size: int | None, options: Any):
        super().__init__(scenario, weights, batch_size)
        n = 1 if batch_size is None else batch_size
        #: the mode's options (its :attr:`options_type`; the defaults when None is given)
        self.options = options if options is not None else self.options_type()  # type: ignore[misc]
        self.max_factor = self.options.max_factor
        self.log_range = math.log(self.max_factor)
        self.starts = np.zeros(n, dtype=np.int64)
        self.cores: list[Any] = [None] * n

    def _start_core(self, start: int, length: int) -> Any:
        """A new core on the window ``start .. start+length-1``."""
        raise NotImplementedError

    def _route(self, b: int, k: int, scale: np.ndarray) -> np.ndarray:
        """The routing x (N, J, K) of copy ``b``'s core at slot ``k`` of its window with the action's multipliers."""
        raise NotImplementedError

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) and a new core for each reset copy."""
        super().reset(start, length, index)
        chosen = np.arange(len(self.cores)) if index is None else np.arange(len(self.cores))[index]
        starts = np.broadcast_to(np.asarray(start, dtype=np.int64), chosen.shape)
        for b, s in zip(chosen.tolist(), starts.tolist()):
            self.starts[b] = s
            self.cores[b] = self._start_core(s, int(length))

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """Route slot ``t`` by each copy's core with the action's multipliers, account it, step the cores."""
        a = check_action(action, self.dim, self.batch, self.mode)
        scale = np.exp(self.log_range * np.clip(a, -1.0, 1.0)).reshape((-1, self.dim))
        ts = np.asarray(t).reshape(-1)
        xs = []
        for b, (core, start, tb, sb) in enumerate(zip(self.cores, self.starts, ts, scale)):
            assert core is not None, f"{type(self).__name__}.step before reset"
            k = int(tb) - int(start)                    # the slot within the core's window
            xb = self._route(b, k, sb)
            core.update(k, xb)
            xs.append(xb)
        return self._account(t, DenseRouting(np.stack(xs).reshape(self.batch + xs[0].shape)))


@dataclasses.dataclass
class EGLBResidualOptions:
    """The options of ``action_mode="eglb_residual"`` (:class:`ResidualStep`), checked by name when built."""

    eglb_eta_scale: float = option(1.0, "the `eta_scale` of the online eGLB inside the environment (> 0)",
                                   agent=True)
    eglb_z_max_scale: float = option(1.0, "the `z_max_scale` of the online eGLB inside the environment (> 0)",
                                     agent=True)
    eglb_residual_max_factor: float = option(RESIDUAL_MAX_FACTOR, "the action multiplies the duals by "
                                             "factors in [1/f, f] (> 1)", agent=True)

    def __post_init__(self) -> None:
        self.eglb_eta_scale = as_float("eglb_eta_scale", self.eglb_eta_scale, lo=0.0, lo_open=True)
        self.eglb_z_max_scale = as_float("eglb_z_max_scale", self.eglb_z_max_scale, lo=0.0, lo_open=True)
        self.eglb_residual_max_factor = as_float("eglb_residual_max_factor", self.eglb_residual_max_factor,
                                                 lo=1.0, lo_open=True)

    @property
    def max_factor(self) -> float:
        """The largest multiplier of the action (the range of its equity prices)."""
        return self.eglb_residual_max_factor


class ResidualStep(_PlannerStep):
    """``action_mode="eglb_residual"``: online eGLB runs inside the environment; the action scales its prices.

    Each episode starts an :class:`~equiglb.control.eglb.EGLBCore` on the episode's window,
    with the documented online-eGLB defaults times the base's ``eta_scale`` and ``z_max_scale``
    (the environment options ``eglb_eta_scale`` and ``eglb_z_max_scale``, 1.0 by default; e.g. the
    choice of :func:`~equiglb.baselines.eglb_tuned.tune_online_eglb`). Each slot the action, in the blocks of
    :class:`PriceStep`, multiplies the core's duals by ``f ** clip(a, -1, 1)`` (factors in [1/f, f];
    ``f`` the option ``eglb_residual_max_factor``, :data:`RESIDUAL_MAX_FACTOR` by
    default) before the core routes the slot; the core then takes its mirror-descent
    step with the executed routing. Action 0 is that online eGLB exactly
    (``OnlineEGLBPolicy(eta_scale=..., z_max_scale=...)``). The observation gains the core's duals
    before scaling (:attr:`extra_dim` = the action dimension, clipped to [0, DUAL_OBS_CAP]).

    Args:
        scenario, weights, batch_size: as :class:`SlotStep`.
        options: the mode's options (default: :class:`EGLBResidualOptions` ``()``).
    """

    mode = "eglb_residual"
    options_type = EGLBResidualOptions

    def __init__(self, scenario: Scenario, weights: Weights, batch_size: int | None = None,
                 options: EGLBResidualOptions | None = None, forecaster: Forecaster | None = None):
        super().__init__(scenario, weights, batch_size, options)
        from equiglb.control.routing import SlotRouter  # noqa: PLC0415

        self.social, self.dim = _price_blocks(scenario, weights)     # the blocks of PriceStep
        self.slot_router = SlotRouter(scenario, weights.unserved_penalty_usd)
        self.extra_dim = self.dim
        self.eta_scale, self.z_max_scale = self.options.eglb_eta_scale, self.options.eglb_z_max_scale
        self.cores = [self._start_core(0, 1) for _ in self.cores]

    def _start_core(self, start: int, length: int) -> EGLBCore:
        from equiglb.control.eglb import EGLBCore  # noqa: PLC0415
        from equiglb.control.routing import PriceRouter  # noqa: PLC0415

        window, w = self.scenario.window(start, length), self.ledger.weights
        return EGLBCore(window, w, eta_scale=self.eta_scale, z_max_scale=self.z_max_scale,
                        router=PriceRouter(window, w, router=self.slot_router))

    def _route(self, b: int, k: int, scale: np.ndarray) -> np.ndarray:
        N = self.scenario.N
        return self.cores[b].route(k, scale[:N], scale[N:2 * N], scale[2 * N:] if self.social else None)

    def extra(self) -> np.ndarray | None:
        """The cores' duals γ before scaling, clipped to [0, DUAL_OBS_CAP] ((..., extra_dim))."""
        g = np.stack([np.clip(c.gamma, 0.0, DUAL_OBS_CAP) for c in self.cores])
        return g[0] if not self.batch else g


@dataclasses.dataclass
class MPCResidualOptions:
    """The options of ``action_mode="mpc_residual"`` (:class:`MPCResidualStep`), checked by name when built."""

    mpc_horizon: int = option(MPC_HORIZON_H, "the look-ahead of the MPC inside the environment (hours, "
                              f"1..{MAX_HORIZON_H})", agent=True)
    mpc_residual_max_factor: float = option(RESIDUAL_MAX_FACTOR, "the action multiplies the MPC's equity "
                                            "coefficients by factors in [1/f, f] (> 1)", agent=True)
    mpc_residual_observation: str = option("full", 'what the agent observes: "full" (the observation table), '
                                           '"spreads" (1, elapsed fraction, carbon and water spreads) or "none" '
                                           "(a constant 1: a state-independent policy)", agent=True)
    mpc_residual_reward: str = option("cost", 'the reward: "cost" (minus the slot\'s objective increment, USD; '
                                      'return -J) or "vs-planner" (that minus the planner\'s alone on its own '
                                      "trajectory: return J(planner) - J, USD)")
    mpc_tail_days: int = option(0, "days of observed history after the MPC's window, standing for the episode's "
                                f"hours left (0: none, 1..{MAX_TAIL_DAYS}; docs/baselines.md, the history tail)",
                                agent=True)
    mpc_tail_weight: float = option(1.0, "the history tail's hours per hour of the episode left (>= 0)", agent=True)
    mpc_tail_block_hours: int = option(1, "consecutive hours of history per tail slot (1, 2, 3, 4, 6, 8, 12 or 24; "
                                       "the tail's cost falls about that many times)", agent=True)
    mpc_warm_start: bool = option(False, "start each slot's MPC program from the copy's previous slot's basis (the "
                                  "window moved one slot ahead, the tail kept): the same J to the solver's "
                                  "tolerance in fewer iterations (1.4-3.6x faster per slot with a history tail "
                                  "in docs/env.md's runs); routings may differ at ties",
                                  agent=True)

    def __post_init__(self) -> None:
        self.mpc_horizon = as_int("mpc_horizon", self.mpc_horizon, 1, MAX_HORIZON_H, unit="hours")
        self.mpc_residual_max_factor = as_float("mpc_residual_max_factor", self.mpc_residual_max_factor, lo=1.0,
                                                lo_open=True)
        self.mpc_residual_observation = one_of("mpc_residual_observation", self.mpc_residual_observation,
                                               RESIDUAL_OBSERVATIONS)
        self.mpc_residual_reward = one_of("mpc_residual_reward", self.mpc_residual_reward, RESIDUAL_REWARDS)
        self.mpc_tail_days = as_int("mpc_tail_days", self.mpc_tail_days, 0, MAX_TAIL_DAYS, unit="days")
        self.mpc_tail_weight = as_float("mpc_tail_weight", self.mpc_tail_weight, lo=0.0, hi=100.0)
        self.mpc_tail_block_hours = one_of("mpc_tail_block_hours", self.mpc_tail_block_hours, TAIL_BLOCK_HOURS)
        self.mpc_warm_start = as_bool("mpc_warm_start", self.mpc_warm_start)

    @property
    def max_factor(self) -> float:
        """The largest multiplier of the action (the range of its equity coefficients)."""
        return self.mpc_residual_max_factor


class MPCResidualStep(_PlannerStep):
    """``action_mode="mpc_residual"``: MPC runs inside the environment; the action scales its equity terms.

    Each episode starts an :class:`~equiglb.control.mpc.MPCCore` on the episode's window with
    look-ahead ``horizon`` hours (the option ``mpc_horizon``, :data:`MPC_HORIZON_H` by default; at
    most the episode's length) that reads the environment's forecasts (its ``forecaster``, the one the
    observation shows; ``None``, for ``forecast_model="perfect"``, is the truth) within the episode's
    window (hours past the episode are outside the objective and get zero demand). The action has one entry per equity
    term: carbon, water and, when the scenario has a social term, social. Each slot the MPC program's
    carbon coefficients and accumulated carbon of every site are multiplied by ``f ** clip(a[0], -1, 1)``,
    the water ones by ``f ** clip(a[1], -1, 1)`` (and the social ones by ``f ** clip(a[2], -1, 1)``), with
    ``f`` the option ``mpc_residual_max_factor`` (:data:`RESIDUAL_MAX_FACTOR` by default);
    the first slot of the program's solution is executed. Action 0 is ``MPCPolicy(horizon, forecast_model=...,
    seed=forecast_seed)`` exactly (the same forecasts).

    One multiplier per term, not per site: MPC's program is a linear (or conic) program whose solution
    jumps between vertices, and per-site multipliers that change from slot to slot move load between
    sites every hour. Measured on the synthetic scenario's first 240 train hours (MPC 6 h: J =
    350,974 USD): random per-site multipliers with log-factor std 0.05 × ln 4 raised J by 5.2-6.5 %
    (three draws), the same noise on one multiplier per term by 0.06-0.08 %.

    The program is built once per look-ahead (:func:`~equiglb.control.mpc.make_mpc_solver`: the LP to HiGHS
    directly for one model and q in {1, inf}, else the matrix-form program of any structure to HiGHS or
    Clarabel; never cvxpy unless a solver is named) and shared by every copy. With the option ``mpc_warm_start``
    each copy has its own, which starts each slot from that copy's previous slot (``MPCPolicy(warm_start=True)``).

    Args:
        scenario, weights, batch_size: as :class:`SlotStep`.
        options: the mode's options (default: :class:`MPCResidualOptions` ``()``).
        forecaster: the environment's :class:`~equiglb.forecast.Forecaster` (``None``: perfect forecasts).
    """

    mode = "mpc_residual"
    options_type = MPCResidualOptions

    def __init__(self, scenario: Scenario, weights: Weights, batch_size: int | None = None,
                 options: MPCResidualOptions | None = None, forecaster: Forecaster | None = None):
        super().__init__(scenario, weights, batch_size, options)
        #: the environment's forecaster (None: perfect forecasts within the episode)
        self.forecaster = forecaster
        self.social = scenario.social_in_force(weights)
        self.dim = 3 if self.social else 2                     # carbon, water (, social)
        self.horizon = self.options.mpc_horizon
        #: the MPC program of each copy: one object shared by every copy, or with ``mpc_warm_start`` one per copy
        #: (a warm start continues its own copy's run); empty before the first reset
        self.solvers: list[MPCSolver] = []
        #: with the reward ``"vs-planner"``: the planner alone (action 0) on its own trajectory, the same
        #: windows and forecasts (its own ledger and MPC program); None with the reward ``"cost"``
        self.planner: MPCResidualStep | None = None
        if self.options.mpc_residual_reward == "vs-planner":
            alone = dataclasses.replace(self.options, mpc_residual_reward="cost")
            self.planner = MPCResidualStep(scenario, weights, batch_size, alone, forecaster)

    def reset(self, start: int | np.ndarray, length: int, index: np.ndarray | None = None) -> None:
        """Start the window(s) and a new MPC run for each reset copy (the program is built once per length)."""
        o = self.options
        window = min(self.horizon, int(length))
        slots = window + 24 * o.mpc_tail_days // o.mpc_tail_block_hours   # window + tail
        if not self.solvers or self.solvers[0].H != slots:     # the tail's slots are fixed: slots fix the window
            self._build_solvers(slots, window, {})
        super().reset(start, length, index)
        if self.planner is not None:
            self.planner.reset(start, length, index)

    def step(self, t: int | np.ndarray, action: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """As :meth:`_PlannerStep.step`; with the reward ``"vs-planner"`` the reward is the slot's minus the
        planner's alone at the same slot of its own run (USD; the episode's return is J(planner) - J)."""
        reward, x = super().step(t, action)
        if self.planner is None:
            return reward, x
        alone, _ = self.planner.step(t, np.zeros(np.shape(action)))
        return reward - alone, x

    def _start_core(self, start: int, length: int) -> MPCCore:
        from equiglb.control.mpc import HistoryTail, MPCCore  # noqa: PLC0415

        H, o = min(self.horizon, int(length)), self.options
        tail = (HistoryTail(self.scenario, o.mpc_tail_days, o.mpc_tail_weight, strict=False,
                            block_hours=o.mpc_tail_block_hours) if o.mpc_tail_days else None)
        return MPCCore(self.scenario.window(start, length), self.ledger.weights, H, forecaster=self.forecaster,
                       offset=start, tail=tail)

    @property
    def solver(self) -> MPCSolver | None:
        """The first copy's MPC program (every copy's without ``mpc_warm_start``); None before the first reset."""
        return self.solvers[0] if self.solvers else None

    def _build_solvers(self, slots: int, window: int, used: dict[str, int]) -> None:
        """Build the MPC program of ``slots`` slots whose first ``window`` recede: one shared by every copy, or
        with ``mpc_warm_start`` one per copy; ``used`` (solver name -> slots) carried over into the first."""
        from equiglb.control.mpc import make_mpc_solver  # noqa: PLC0415

        structure, warm = self.scenario.window(0, slots), self.options.mpc_warm_start
        built = [make_mpc_solver(structure, slots, self.ledger.weights, window=window)
                 for _ in range(len(self.cores) if warm else 1)]
        for solver in built:
            solver.warm_start = warm
        self.solvers = built if warm else built * len(self.cores)
        self.solvers[0].solvers_used.update(used)

    def _route(self, b: int, k: int, scale: np.ndarray) -> np.ndarray:
        sc = self.scenario
        assert self.solvers, "MPCResidualStep.step before reset"
        return self.cores[b].route(k, self.solvers[b], np.full(sc.N, scale[0]), np.full(sc.N, scale[1]),
                                   np.full(sc.J, scale[2]) if self.social else None)

    def __getstate__(self) -> dict:
        """Copy and pickle support: the MPC program (a HiGHS model or a compiled cvxpy problem) is not
        picklable; the state keeps its slots and window and :meth:`__setstate__` builds it again (each solve
        passes the whole program, so a rebuilt one gives the same routings; a warm start's basis is not kept:
        the next slot of a copy starts cold)."""
        state = self.__dict__.copy()
        solvers = state.pop("solvers")
        first = solvers[0] if solvers else None
        state["_solver_slots"] = None if first is None else (first.H, first.window)
        state["_solver_used"] = None if first is None else dict(first.solvers_used)
        return state

    def __setstate__(self, state: dict) -> None:
        """Rebuild the MPC program(s) recorded by :meth:`__getstate__`."""
        slots, used = state.pop("_solver_slots", None), state.pop("_solver_used", None)
        self.__dict__.update(state)
        self.solvers = []
        if slots is not None:
            self._build_solvers(slots[0], slots[1], used or {})


# ---------------------------------------------------------------------- the registry
#: every action mode of the environment, by name: one class each (docs/env.md, "How to add a mode")
ACTION_MODE_REGISTRY: dict[str, type[SlotStep]] = {
    "routing": RoutingStep,
    "site_scores": SiteScoresStep,
    "prices": PriceStep,
    "eglb_residual": ResidualStep,
    "mpc_residual": MPCResidualStep,
}
#: the names of the action modes, in the registry's order
ACTION_MODES: tuple[str, ...] = tuple(ACTION_MODE_REGISTRY)


def make_slot_step(scenario: Scenario, weights: Weights, mode: str, batch_size: int | None = None,
                   options: Any = None, forecaster: Forecaster | None = None) -> SlotStep:
    """The slot step of action mode ``mode`` (:data:`ACTION_MODE_REGISTRY`) with the mode's ``options`` (an
    instance of its :attr:`~SlotStep.options_type`; None: the defaults) and the environment's ``forecaster``
    (read by the modes that plan on forecasts)."""
    cls = ACTION_MODE_REGISTRY[mode]
    if options is not None and (cls.options_type is None or not isinstance(options, cls.options_type)):
        raise TypeError(f"make_slot_step: {type(options).__name__} options do not apply to action mode {mode!r}")
    return cls(scenario, weights, batch_size, options, forecaster)
