"""Direct policy search for the ``mpc_residual`` mode: a small linear policy of the equity multipliers,
trained by the cross-entropy method on training windows (a black-box RL method: no gradients, no value
function, whole-episode returns compared on the same windows).

    from equiglb.agents.search import search_multipliers
    policy, history = search_multipliers(env_kwargs, starts=[0, 240, 480, 720], seed=0)
    table = equiglb.evaluate_policy(policy, "equiglb/EquitableGLB-v0", split="test", env_kwargs=env_kwargs)

Why this and not only PPO: the action of ``mpc_residual`` moves J by a few tenths of a percent while the
reward of a slot varies by orders of magnitude more with prices and demand, so a policy gradient on
per-slot rewards sees mostly noise (PPO's learned multipliers ended 0.09 points *worse* than its planner on
the synthetic validation window, with or without a planner-relative reward or forecast-error features;
docs/experiments-log.md). The cross-entropy method compares candidate policies on the *same* training
windows (common random numbers: each window's forecasts and data are fixed), so the comparison is of J
itself. A policy of 16 numbers (the set ``"full"``) can still fit two or three windows; the smaller sets
have fewer weights to fit them with (docs/experiments-log.md).

The policy: ``a = tanh(Θ φ(obs))``, Θ of shape (A, number of features) for the carbon and water
multipliers (A = 2) and, on a scenario with a social term (``world``), the social one (A = 3; action 0: the
planner alone), with the features φ read from the observation of
``gymnasium.make(..., action_mode="mpc_residual", forecast_errors=True)``. The option ``features`` names
the set (:data:`FEATURE_SETS`): ``"full"`` (all 8 below, 16 weights), ``"spreads"`` (the constant, elapsed
and the two footprint spreads, 8 weights), ``"elapsed"`` (the constant and elapsed: multipliers that move
linearly, inside the tanh, with the fraction of the episode played, 4 weights) or ``"constant"`` (the constant
alone: a state-independent pair of multipliers, 2 weights; fewer weights fit a few training windows less
closely). The counts are for two multipliers; with the social one (A = 3) there are 3 weights per feature.

| feature | meaning |
|---|---|
| 1 | a constant |
| elapsed | fraction of the episode elapsed |
| sin, cos | of the UTC hour |
| carbon spread | (max - mean) / mean of the sites' cumulative carbon so far (0 at the start) |
| water spread | the same for water |
| price error | 10 × mean absolute error of the price forecasts at the longest lead, last 24 h |
| carbon error | 10 × the same for carbon |

The features are in this order in every set (a set keeps the order of the table).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from equiglb.envs.core import footprint_spread
from equiglb.validate import OptionError

__all__ = ["LinearMultipliers", "SearchHistory", "search_multipliers", "N_FEATURES", "FEATURE_NAMES",
           "FEATURE_SETS", "episode_objective"]

#: the features of the set ``"full"`` (module docstring), in order
FEATURE_NAMES = ("constant", "elapsed", "sin hour", "cos hour", "carbon spread", "water spread", "price error",
                 "carbon error")
#: number of features of the set ``"full"``
N_FEATURES = len(FEATURE_NAMES)
#: feature set -> the indices of :data:`FEATURE_NAMES` it reads
FEATURE_SETS: dict[str, tuple[int, ...]] = {"full": tuple(range(N_FEATURES)), "spreads": (0, 1, 4, 5),
                                            "elapsed": (0, 1), "constant": (0,)}


def _feature_set(features: Any) -> tuple[int, ...]:
    """The indices of the set named ``features``, or :class:`OptionError` naming the option and its value."""
    if not isinstance(features, str) or features not in FEATURE_SETS:
        raise OptionError(f"features={features!r}: expected one of {sorted(FEATURE_SETS)}")
    return FEATURE_SETS[features]
ENV_ID = "equiglb/EquitableGLB-v0"


class LinearMultipliers:
    """``obs -> tanh(Θ φ(obs))``: the policy of :func:`search_multipliers` for one environment layout.

    Args:
        theta: (n_actions, number of features of the set) weights (zeros: the planner alone).
        n_sites, n_regions: N and J of the scenario (they fix where the features sit in the observation).
        forecast_horizon: hours of forecasts in the observation (the error features follow them).
        features: the feature set, a name of :data:`FEATURE_SETS` (``"full"``: all 8).
        n_actions: the multipliers: 2 (carbon, water) or 3 (and social, on a scenario with a social term).
    """

    def __init__(self, theta: np.ndarray, n_sites: int, n_regions: int, forecast_horizon: int,
                 features: str = "full", n_actions: int = 2):
        self._index = np.array(_feature_set(features))
        self.feature_set = features
        if n_actions not in (2, 3):
            raise OptionError(f"n_actions={n_actions!r}: expected 2 (carbon, water) or 3 (and social)")
        self.n_actions = int(n_actions)
        theta = np.asarray(theta, dtype=np.float64)
        if theta.size != n_actions * len(self._index):
            raise OptionError(f"theta: features={features!r} takes {n_actions} x {len(self._index)} weights, got "
                              f"{theta.size} (shape {theta.shape})")
        self.theta = theta.reshape(n_actions, len(self._index))
        self.n_sites, self.n_regions, self.forecast_horizon = int(n_sites), int(n_regions), int(forecast_horizon)
        N, J = self.n_sites, self.n_regions
        self._hour_at = 3 * N + J                       # sin, cos
        self._cum_at = 3 * N + J + 2                    # C (N), W (N), S (J), elapsed
        self._errors_at = self._cum_at + 2 * N + J + 1 + forecast_horizon * (3 * N + J)

    @property
    def n_features(self) -> int:
        """Number of features of the set (the weights are :attr:`n_actions` x this)."""
        return len(self._index)

    @classmethod
    def for_env(cls, env: gym.Env, theta: np.ndarray | None = None, features: str = "full") -> LinearMultipliers:
        """The policy for ``env``'s layout (it must run ``mpc_residual`` with ``forecast_errors=True``; two
        multipliers, or three with a social term); ``theta`` None: zeros (the planner alone)."""
        index = _feature_set(features)
        base: Any = env.unwrapped
        cfg = base.config
        observed = getattr(cfg.mode_options, "mpc_residual_observation", "full")
        if (cfg.action_mode != "mpc_residual" or not cfg.forecast_errors
                or base.action_space.shape not in ((2,), (3,)) or observed != "full"):
            raise OptionError(f"LinearMultipliers needs action_mode='mpc_residual' with forecast_errors=True and "
                              f"the full observation, got "
                              f"action_mode={cfg.action_mode!r}, forecast_errors={cfg.forecast_errors!r}, "
                              f"mpc_residual_observation={observed!r}, action shape {base.action_space.shape}")
        sc = base.scenario
        n_actions = base.action_space.shape[0]
        pol = cls(np.zeros((n_actions, len(index))) if theta is None else theta, sc.N, sc.J, cfg.forecast_horizon,
                  features, n_actions)
        assert pol._errors_at == base.observer._errors_at
        return pol

    def all_features(self, obs: np.ndarray) -> np.ndarray:
        """The 8 features of the set ``"full"`` (:data:`FEATURE_NAMES`), whatever the policy's set."""
        N, J = self.n_sites, self.n_regions
        o = np.asarray(obs, dtype=np.float64)
        c, w = o[self._cum_at:self._cum_at + N], o[self._cum_at + N:self._cum_at + 2 * N]
        elapsed = o[self._cum_at + 2 * N + J]
        err = o[self._errors_at:self._errors_at + 12]
        return np.array([1.0, elapsed, o[self._hour_at], o[self._hour_at + 1], _spread(c), _spread(w),
                         10.0 * err[2], 10.0 * err[5]])

    def features(self, obs: np.ndarray) -> np.ndarray:
        """φ(obs) of the policy's set, (:attr:`n_features`,)."""
        return self.all_features(obs)[self._index]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.tanh(self.theta @ self.features(obs)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the weights (a row per multiplier), the feature set and the layout."""
        return {"theta": self.theta.tolist(), "features": self.feature_set, "n_sites": self.n_sites,
                "n_regions": self.n_regions, "forecast_horizon": self.forecast_horizon}

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> LinearMultipliers:
        """Read a policy written by :meth:`save` (a file without ``features``, written before the option
        existed, holds the set ``"full"``)."""
        d = json.loads(Path(path).read_text())
        theta = np.array(d["theta"], dtype=np.float64)
        return cls(theta, d["n_sites"], d["n_regions"], d["forecast_horizon"], d.get("features", "full"),
                   theta.shape[0] if theta.ndim == 2 else 2)


def _spread(v: np.ndarray) -> float:
    return float(footprint_spread(v))


def episode_objective(env: gym.Env, policy: Any, start: int) -> float:
    """J (USD) of one episode of ``env`` from slot ``start`` played by ``policy`` (obs -> action): minus
    the return, which the environment makes equal to J of the executed routing."""
    obs, _ = env.reset(seed=0, options={"start": int(start)})
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, _ = env.step(policy(obs))
        total += float(r)
        done = term or trunc
    return -total


@dataclass
class SearchHistory:
    """What :func:`search_multipliers` did: per iteration the best and mean candidate score and the score of
    the mean (relative change of J against the planner alone, averaged over the windows, %), and seconds."""

    starts: list[int]
    planner_j_usd: list[float]
    best_pct: list[float] = field(default_factory=list)
    mean_pct: list[float] = field(default_factory=list)
    center_pct: list[float] = field(default_factory=list)
    seconds: float = 0.0


def search_multipliers(env_kwargs: Mapping[str, Any], starts: Sequence[int], seed: int = 0, iterations: int = 10,
                       population: int = 10, elite: int = 3, init_std: float = 0.5,
                       env_id: str = ENV_ID, features: str = "full") -> tuple[LinearMultipliers, SearchHistory]:
    """Train :class:`LinearMultipliers` by the cross-entropy method on the episodes starting at ``starts``.

    Args:
        env_kwargs: options of ``gymnasium.make(env_id, ...)``: ``action_mode="mpc_residual"`` and
            ``forecast_errors=True`` are required, and ``split`` and ``episode_length`` say which windows
            train (every start must lie in that split: nothing else is played).
        starts: first slots of the training episodes (each candidate plays all of them).
        seed: seed of the search's sampling (the environment is deterministic given the windows).
        iterations, population, elite: the cross-entropy method's sizes.
        init_std: initial deviation of each weight.
        features: the policy's feature set (:data:`FEATURE_SETS`): ``"full"`` (8 weights per multiplier),
            ``"spreads"`` (4), ``"elapsed"`` (2) or ``"constant"`` (1; 2 multipliers, or 3 with a social term).
    Returns:
        the policy at the search distribution's mean after the last iteration, and the history.
    """
    if elite < 1 or population < elite or iterations < 1:
        raise OptionError(f"search_multipliers: need 1 <= elite <= population and iterations >= 1, got "
                          f"elite={elite}, population={population}, iterations={iterations}")
    _feature_set(features)
    env = gym.make(env_id, **dict(env_kwargs))
    policy = LinearMultipliers.for_env(env, features=features)
    t0 = time.perf_counter()
    base = [episode_objective(env, policy, s) for s in starts]      # Θ = 0: the planner alone
    hist = SearchHistory([int(s) for s in starts], base)

    def score(theta: np.ndarray) -> float:
        policy.theta = theta.reshape(policy.n_actions, policy.n_features)
        return float(np.mean([episode_objective(env, policy, s) / b - 1.0 for s, b in zip(starts, base)]))

    rng = np.random.default_rng(seed)
    dim = policy.n_actions * policy.n_features
    mean, std = np.zeros(dim), np.full(dim, init_std)
    for _ in range(iterations):
        cands = mean + std * rng.standard_normal((population, dim))
        scores = np.array([score(c) for c in cands])
        best = cands[np.argsort(scores)[:elite]]
        mean = best.mean(axis=0)
        std = 0.7 * std + 0.3 * best.std(axis=0) + 0.02
        hist.best_pct.append(100 * float(scores.min()))
        hist.mean_pct.append(100 * float(scores.mean()))
        hist.center_pct.append(100 * score(mean))
    hist.seconds = time.perf_counter() - t0
    return LinearMultipliers.for_env(env, mean.reshape(policy.n_actions, policy.n_features), features), hist
