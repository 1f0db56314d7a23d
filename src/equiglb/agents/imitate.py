"""Learning from the oracle: the multipliers of the ``mpc_residual`` mode imitated from hindsight-optimal
cost-to-go (AggreVaTe, with DAgger's rounds on the learner's own states).

    from equiglb.agents.imitate import imitate_multipliers
    policy, history = imitate_multipliers(env_kwargs, starts=[0, 240, 480, 720], rounds=3, features="constant")
    table = equiglb.evaluate_policy(policy, "equiglb/EquitableGLB-v0", split="test", env_kwargs=env_kwargs)

The oracle is the offline optimum of the training window: it knows every hour of the window. At each slot
t of a training episode, every action ``a`` of a grid (``levels`` per multiplier, their product) is scored
by its cost-to-go under the oracle,

    Q(s_t, a) = cost of slot t (energy and unserved load, USD) when the planner routes it with the
                multipliers of a  +  the least J of the rest of the window given the footprints so far,

the second term the value of the offline program from t + 1 with the true data (:meth:`MPCCore.plan
<equiglb.control.mpc.MPCCore.plan>` with perfect forecasts and a look-ahead of the whole window). Q is a
whole-window quantity in USD, so the action that minimises it is the one after which the best possible
continuation is cheapest (Ross and Bagnell, *Reinforcement and Imitation Learning via Interactive No-Regret
Learning*, 2014: AggreVaTe). The policy ``a = tanh(Θ φ(obs))`` (:class:`~equiglb.agents.search.LinearMultipliers`,
its feature sets) is fitted by cost-sensitive classification: Θ minimises the mean over the collected states of
the regret ``Q(s, π(s)) - min_a Q(s, a)``, Q interpolated multilinearly between the grid's points (Powell's method
from Θ = 0, deterministic). Round 0 collects the states of the planner alone (action 0); each later round plays
the last fitted policy on the same windows, adds its states with their Q, and fits again on all of them (Ross,
Gordon and Bagnell, 2011: DAgger). The result is the fitted policy with the lowest J on the training windows.

With ``continuation="planner"`` the rest of the window is played by the planner alone with its own forecasts
instead (a rollout, as the environment would play it): Q is then the planner's own cost-to-go after a one-slot
deviation, and the fit a step of approximate policy iteration from the planner (Lagoudakis and Parr,
*Reinforcement Learning as Classification*, 2003), without the oracle's hindsight; it costs about L / 2 planner
programs per grid point and slot (L the episode's hours).

The scoring needs the LP accelerator (:class:`~equiglb.control.mpc.AggregateLPSolver`: one model, no social or
latency term, q in {1, inf}: the synthetic and eGLB-2022 scenarios, full or partial mask): the world scenarios
are refused. Cost: per slot, (number of grid points) x (one planner program and one oracle program over the
rest of the window); on the synthetic scenario's 240-h windows about 5 ms a grid point.

No randomness: the same windows and options give the same policy.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from scipy.optimize import minimize

from equiglb.agents.search import ENV_ID, LinearMultipliers, _feature_set, episode_objective
from equiglb.control.mpc import AggregateLPSolver, MPCCore
from equiglb.ledger import Ledger
from equiglb.validate import OptionError

__all__ = ["OracleCosts", "ImitationHistory", "oracle_costs", "fit_multipliers", "interpolate_grid",
           "imitate_multipliers", "LEVELS", "THETA_BOUND", "CONTINUATIONS"]

#: what plays the rest of the window after a slot's action, in its cost-to-go (:func:`oracle_costs`)
CONTINUATIONS = ("oracle", "planner")
#: the bound of each weight of Θ in the fit (the features are of order 1: tanh(5) is 0.9999, the grid's edge)
THETA_BOUND = 5.0
#: the grid's levels of each multiplier's action (the factor is ``f ** level``, f the mode's largest factor)
LEVELS = (-1.0, -0.5, 0.0, 0.5, 1.0)


@dataclass
class OracleCosts:
    """The states of one played episode and their cost-to-go under the oracle (:func:`oracle_costs`).

    Attributes:
        features: (slots, 8) the features of the set ``"full"`` at each slot
            (:data:`~equiglb.agents.search.FEATURE_NAMES`).
        q_usd: (slots, grid points) Q(s_t, a) in USD for each action of the grid (:attr:`grid`).
        grid: (grid points, n_actions) the actions, the product of the levels (the last multiplier fastest).
        objective_usd: J (USD) of the episode as played by the policy.
    """

    features: np.ndarray
    q_usd: np.ndarray
    grid: np.ndarray
    objective_usd: float


def _grid(levels: Sequence[float] | np.ndarray, n_actions: int) -> np.ndarray:
    return np.array(list(itertools.product(levels, repeat=n_actions)), dtype=np.float64)


def _check_levels(levels: Sequence[float] | np.ndarray) -> np.ndarray:
    lv = np.asarray(levels, dtype=np.float64)
    if lv.ndim != 1 or len(lv) < 2 or not np.all(np.diff(lv) > 0) or lv[0] < -1 or lv[-1] > 1:
        raise OptionError(f"levels={tuple(levels)!r}: expected at least two increasing actions in [-1, 1]")
    return lv


def oracle_costs(env: gym.Env, policy: Any, start: int, levels: Sequence[float] | np.ndarray = LEVELS,
                 continuation: str = "oracle") -> OracleCosts:
    """Play one episode of ``env`` (``mpc_residual`` with ``forecast_errors=True``) from slot ``start`` with
    ``policy`` (obs -> action) and score every action of the grid at every slot by its cost-to-go (module
    docstring): the slot's cost with the action's multipliers plus the rest of the window played by the
    ``continuation``, ``"oracle"`` (the least J in hindsight) or ``"planner"`` (the planner alone with its own
    forecasts, as the environment would play it: a rollout). The environment's routing is the policy's: the grid's
    actions are solved beside it and never executed."""
    lv = _check_levels(levels)
    if continuation not in CONTINUATIONS:
        raise OptionError(f"continuation={continuation!r}: expected one of {CONTINUATIONS}")
    base: Any = env.unwrapped
    step = base.slot
    if base.config.action_mode != "mpc_residual":
        raise OptionError(f"oracle_costs needs action_mode='mpc_residual', got action_mode={base.config.action_mode!r}")
    reader = LinearMultipliers.for_env(env)                        # the features of the set "full"
    obs, _ = env.reset(seed=0, options={"start": int(start)})
    core: MPCCore = step.cores[0]
    planner = step.solver
    if not isinstance(planner, AggregateLPSolver):
        raise OptionError(f"oracle_costs: the scenario ({base.scenario.N} sites, {base.scenario.K} models) is not "
                          f"one of the LP accelerator (one model, no social or latency term, q in {{1, inf}}): its "
                          f"planner is a {type(planner).__name__}")
    sc, weights, L = core.scenario, core.weights, core.scenario.T
    grid = _grid(lv, step.dim)
    scales = np.exp(step.log_range * grid)                          # (grid points, n_actions) factors
    oracle_solver = AggregateLPSolver(sc, L, weights)                # the offline program of the window
    after = Ledger(sc, weights)                                      # the footprints after slot t, per action
    after.reset(0, L)
    oracle = MPCCore(sc, weights, L)                                 # perfect forecasts, the whole window ahead
    oracle.ledger = after
    features, q_rows, total, done, k = [], [], 0.0, False, 0
    while not done:
        q = np.empty(len(grid))
        oracle.seen_demand = core.seen_demand + sc.demand[k]
        for g, (fc, fw) in enumerate(scales):
            x = core.route(k, planner, np.full(sc.N, fc), np.full(sc.N, fw))
            after.footprint[:] = core.ledger.footprint
            after.phi_usd = core.ledger.phi_usd
            after.step(k, x)
            if k + 1 == L:
                rest = float(after.phi_usd)
            elif continuation == "oracle":
                rest = oracle.plan(k + 1, oracle_solver)[1]
            else:
                rest = _planner_rest(core, planner, after, k + 1)
            q[g] = float(after.slot_cost_usd) + rest
        features.append(reader.all_features(obs))
        q_rows.append(q)
        obs, r, term, trunc, _ = env.step(policy(obs))
        total += float(r)
        done, k = term or trunc, k + 1
    return OracleCosts(np.array(features), np.array(q_rows), grid, -total)


def _planner_rest(core: MPCCore, planner: AggregateLPSolver, after: Ledger, k: int) -> float:
    """J of the rest of ``core``'s window from slot ``k`` (USD: the slots' costs and the final equity terms) when the
    planner alone routes it with ``core``'s forecasts, from the footprints of ``after``."""
    sc = core.scenario
    twin = MPCCore(sc, core.weights, core.H, forecaster=core.forecaster, offset=core.offset)
    twin.ledger.footprint[:] = after.footprint
    twin.ledger.quality_sum[:] = after.quality_sum
    twin.ledger.phi_usd = after.phi_usd
    twin.seen_demand = core.seen_demand + sc.demand[k - 1]
    cost = 0.0
    for j in range(k, sc.T):
        twin.update(j, twin.route(j, planner))
        cost += float(twin.ledger.slot_cost_usd)
    return cost + float(twin.ledger.phi_usd)


def interpolate_grid(q: np.ndarray, levels: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Q of each state at its action, multilinear between the grid's points: ``q`` (states, len(levels) ** d) on
    the product grid of ``levels`` (the last action fastest), ``actions`` (states, d) in [levels[0], levels[-1]];
    (states,)."""
    n, d = len(levels), actions.shape[1]
    a = np.clip(actions, levels[0], levels[-1])
    lo = np.clip(np.searchsorted(levels, a, side="right") - 1, 0, n - 2)      # (S, d) the lower grid index
    frac = (a - levels[lo]) / (levels[lo + 1] - levels[lo])
    out = np.zeros(len(a))
    rows = np.arange(len(a))
    for corner in itertools.product((0, 1), repeat=d):
        c = np.array(corner)
        weight = np.prod(np.where(c == 1, frac, 1.0 - frac), axis=1)
        flat = np.zeros(len(a), dtype=np.int64)
        for j in range(d):
            flat = flat * n + lo[:, j] + c[j]
        out += weight * q[rows, flat]
    return out


def fit_multipliers(features: np.ndarray, q_usd: np.ndarray, levels: Sequence[float] | np.ndarray, n_actions: int,
                    feature_set: str = "constant") -> np.ndarray:
    """Θ (n_actions, features of the set) minimising the mean regret ``Q(s, tanh(Θ φ(s))) - min_a Q(s, a)`` over the
    states (``features`` (states, 8) of the set ``"full"``, ``q_usd`` (states, len(levels) ** n_actions)), Q
    interpolated by :func:`interpolate_grid`; Powell's method from Θ = 0, each weight in [-:data:`THETA_BOUND`,
    :data:`THETA_BOUND`] (deterministic)."""
    lv = _check_levels(levels)
    index = np.array(_feature_set(feature_set))
    if q_usd.shape != (len(features), len(lv) ** n_actions):
        raise OptionError(f"q_usd has shape {q_usd.shape}: expected ({len(features)}, {len(lv) ** n_actions}) for "
                          f"{n_actions} actions on {len(lv)} levels")
    phi = features[:, index]
    regret = q_usd - q_usd.min(axis=1, keepdims=True)
    scale = max(float(regret.mean()), 1e-12)                           # O(1) objective for the optimiser

    def loss(theta: np.ndarray) -> float:
        actions = np.tanh(phi @ theta.reshape(n_actions, len(index)).T)
        return float(interpolate_grid(regret, lv, actions).mean()) / scale

    dim = n_actions * len(index)
    res = minimize(loss, np.zeros(dim), method="Powell", bounds=[(-THETA_BOUND, THETA_BOUND)] * dim,
                   options={"xtol": 1e-4, "ftol": 1e-9, "maxfev": 20_000})
    return np.asarray(res.x).reshape(n_actions, len(index))


@dataclass
class ImitationHistory:
    """What :func:`imitate_multipliers` did, per round: the J change on the training windows of the policy that
    round played against the planner alone (%; round 0 is the planner, 0), the states collected so far, and
    the seconds; ``chosen`` the round whose fitted policy was returned."""

    starts: list[int]
    planner_j_usd: list[float]
    train_change_pct: list[float] = field(default_factory=list)
    states: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    thetas: list[list[list[float]]] = field(default_factory=list)
    chosen: int = 0


def imitate_multipliers(env_kwargs: Mapping[str, Any], starts: Sequence[int], rounds: int = 3,
                        features: str = "constant", levels: Sequence[float] = LEVELS, continuation: str = "oracle",
                        env_id: str = ENV_ID) -> tuple[LinearMultipliers, ImitationHistory]:
    """Fit :class:`~equiglb.agents.search.LinearMultipliers` to the oracle's cost-to-go on the episodes starting
    at ``starts`` (module docstring): ``rounds`` rounds of collection and fit (round 0 on the planner's states,
    each later one on the last fitted policy's), then the last fit is played once more; the fitted policy with
    the lowest J on the training windows is returned.

    Args:
        env_kwargs: options of ``gymnasium.make(env_id, ...)``: ``action_mode="mpc_residual"`` and
            ``forecast_errors=True`` on a scenario of the LP accelerator; ``split`` and ``episode_length`` say
            which windows train (every start must lie in that split).
        starts: first slots of the training episodes.
        rounds: rounds of collection (1: behaviour cloning of the oracle on the planner's states only).
        features: the policy's feature set (:data:`~equiglb.agents.search.FEATURE_SETS`).
        levels: the grid's levels of each action, increasing, in [-1, 1].
        continuation: what plays the rest of the window in the cost-to-go: ``"oracle"`` (the hindsight optimum:
            AggreVaTe) or ``"planner"`` (the planner alone with its forecasts: rollouts, a step of approximate
            policy iteration from the planner; about L / 2 planner programs per grid point and slot, L the
            episode's hours).
    """
    if rounds < 1:
        raise OptionError(f"rounds={rounds!r}: expected at least 1 (round 0 collects the planner's states)")
    _feature_set(features)
    lv = _check_levels(levels)
    if continuation not in CONTINUATIONS:
        raise OptionError(f"continuation={continuation!r}: expected one of {CONTINUATIONS}")
    env = gym.make(env_id, **dict(env_kwargs))
    policy = LinearMultipliers.for_env(env, features=features)     # Θ = 0: the planner alone
    hist = ImitationHistory([int(s) for s in starts], [])
    data_phi: list[np.ndarray] = []
    data_q: list[np.ndarray] = []
    fitted: list[np.ndarray] = []
    for r in range(rounds):
        t0 = time.perf_counter()
        played = [oracle_costs(env, policy, s, lv, continuation) for s in starts]
        js = [p.objective_usd for p in played]
        if r == 0:
            hist.planner_j_usd = js
        hist.train_change_pct.append(_change_pct(js, hist.planner_j_usd))
        data_phi += [p.features for p in played]
        data_q += [p.q_usd for p in played]
        theta = fit_multipliers(np.concatenate(data_phi), np.concatenate(data_q), lv, policy.n_actions, features)
        fitted.append(theta)
        hist.thetas.append(theta.round(6).tolist())
        policy.theta = theta
        hist.states.append(sum(len(p) for p in data_phi))
        hist.seconds.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    last = [episode_objective(env, policy, s) for s in starts]      # the last fit, played once (no labels)
    hist.train_change_pct.append(_change_pct(last, hist.planner_j_usd))
    hist.seconds.append(time.perf_counter() - t0)
    # the fit of round r was played in round r + 1: choose the lowest J among them
    hist.chosen = int(np.argmin(hist.train_change_pct[1:]))
    return LinearMultipliers.for_env(env, fitted[hist.chosen], features), hist


def _change_pct(js: Sequence[float], base: Sequence[float]) -> float:
    return 100.0 * float(np.mean([j / b - 1.0 for j, b in zip(js, base)]))

