"""Model-predictive control: receding-horizon offline optimization on forecasts.

Each slot t, MPC solves the offline program on the window [t, t+H): slot t with its true data (known
when routing, as for every online policy), slots t+1 .. t+H-1 with forecasts from
:func:`equiglb.forecast.forecast` (perfect, or noisy with the environment's noise model, seeded), the
footprints accumulated before t as constants inside the equity norms, and applies the first slot.
Slots past the end of the episode get zero demand. One parameterized cvxpy problem of length
min(H, T) is compiled at :meth:`MPCPolicy.reset` and re-solved with new parameter values.

The social cost's normalization Λ_j (the window's total demand) is estimated as the demand seen and
forecast so far, scaled to the episode length.
"""

from __future__ import annotations

import numpy as np

from equiglb.baselines.offline import OfflineProblem, SolverError, _structure_key, check_solver, solve_with_fallback
from equiglb.baselines.policy import OnlinePolicy
from equiglb.forecast import forecast
from equiglb.ledger import Ledger
from equiglb.scenario import Scenario, Weights
from equiglb.validate import as_float, as_int, as_seed

__all__ = ["MPCPolicy", "MAX_HORIZON_H"]

#: Longest MPC look-ahead accepted (hours): one week; the program grows linearly with it.
MAX_HORIZON_H = 168


class MPCPolicy(OnlinePolicy):
    """Receding-horizon control with horizon ``horizon`` hours (see the module docstring).

    Args:
        horizon: H in 1..168 hours optimized at each step (H = 1 is the greedy per-slot equity-aware policy).
        noise_std: relative one-hour-ahead forecast error in [0, 10] (0 = perfect foresight within the window).
        seed: seed of the forecast noise (integer >= 0), re-seeded at every :meth:`reset`.
        solver: first cvxpy solver to try (default by problem class, with fallback); must be installed.

    Raises:
        OptionError: an argument of the wrong type or range, or a solver that is not installed.
    """

    name = "mpc"

    def __init__(self, horizon: int = 24, noise_std: float = 0.0, seed: int = 0, solver: str | None = None):
        self.horizon = as_int("horizon", horizon, 1, MAX_HORIZON_H, unit="hours")
        self.noise_std = as_float("noise_std", noise_std, lo=0.0, hi=10.0, unit="(relative std at 1 h)")
        self.seed = as_seed("seed", seed)
        self.solver = check_solver(solver)

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.scenario, self.weights = scenario, weights
        self.H = min(self.horizon, scenario.T)
        prob: OfflineProblem | None = getattr(self, "_prob", None)
        if prob is None or prob.key != self._key(scenario, weights):
            self._prob = OfflineProblem(scenario, self.H, weights, allow_unserved=True, offsets=True)
        self.rng = np.random.default_rng(self.seed)
        self.ledger = Ledger(scenario, weights)      # the true footprints of the applied slots
        self.ledger.reset(0, scenario.T)
        self.seen_demand = np.zeros(scenario.J)
        self.solvers_used: dict[str, int] = {}

    def _key(self, scenario: Scenario, weights: Weights) -> tuple:
        return _structure_key(scenario, self.H, weights, True) + (True,)

    def _window(self, series: np.ndarray, t: int, nonneg: bool) -> np.ndarray:
        ahead = forecast(series, t, self.H - 1, self.noise_std, self.rng if self.noise_std > 0 else None,
                         nonnegative=nonneg)
        return np.concatenate([series[t:t + 1], ahead], axis=0)

    def act(self, t: int) -> np.ndarray:
        sc, w, H = self.scenario, self.weights, self.H
        price = self._window(sc.price, t, False)
        carbon = self._window(sc.carbon, t, True)
        water = self._window(sc.water, t, True)
        demand = self._window(sc.demand, t, True)
        beyond = np.arange(t, t + H) >= sc.T
        demand[beyond] = 0.0
        seen = self.seen_demand + demand.sum(axis=0)
        total = seen * sc.T / min(t + H, sc.T)
        led = self.ledger
        self._prob.set_arrays(sc, w, price, carbon, water, demand, total, led.carbon_t, led.water_m3,
                              led.quality_sum)
        ok, solver, status, _, _, _, attempts = solve_with_fallback(self._prob, w.q, self.solver)
        if not ok:
            raise SolverError(f"MPC at slot t={t}: every solver failed: {'; '.join(attempts)}")
        self.solvers_used[solver] = self.solvers_used.get(solver, 0) + 1
        x = self._prob.schedule(slice(0, 1))[0]
        led.step(t, x)                                # account the applied slot in the ledger
        self.seen_demand += sc.demand[t]
        return x
