"""Model-predictive control as a policy: :class:`MPCPolicy` over :class:`equiglb.control.mpc.MPCCore`
(the receding-horizon program, its forecasts and its solvers are described in :mod:`equiglb.control.mpc`)."""

from __future__ import annotations

import numpy as np

from equiglb.baselines.policy import OnlinePolicy
from equiglb.control import TAIL_BLOCK_HOURS, tail_text
from equiglb.control.mpc import (
    MAX_HORIZON_H,
    MAX_TAIL_DAYS,
    HistoryTail,
    MPCCore,
    MPCSolver,
    make_mpc_solver,
)
from equiglb.control.offline import _structure_key, check_solver
from equiglb.forecast import FORECAST_MODELS, Forecaster, information_label
from equiglb.scenario import Scenario, Weights
from equiglb.validate import OptionError, as_float, as_int, as_seed, one_of

__all__ = ["MPCPolicy"]


class MPCPolicy(OnlinePolicy):
    """Receding-horizon control with horizon ``horizon`` hours (see :mod:`equiglb.control.mpc`).

    Args:
        horizon: H in 1..168 hours optimized at each step (H = 1 is the greedy per-slot equity-aware policy).
        forecast_model: the forecasts of slots t+1 .. t+H-1: ``"calibrated"`` (default: errors as an
            operator has them, docs/forecasts.md), ``"persistence"`` (same hour of the latest observed day),
            ``"perfect"`` (the truth within the window: an **oracle**), ``"noise"`` (the legacy model of
            ``noise_std``, implied by ``noise_std > 0``), or a :class:`~equiglb.forecast.Forecaster` (e.g.
            your own forecasts, :func:`equiglb.forecast.load_forecasts`) whose window covers the windows
            this policy is run on (matched by UTC hour).
        forecast_scale: multiplier of the calibrated errors' deviation (>= 0; ``"calibrated"`` only).
        noise_std: legacy relative one-hour-ahead forecast error in [0, 10] (independent per slot and lead).
        seed: seed of the forecasts (integer >= 0): of the calibrated errors (the environment's
            ``forecast_seed``: the same seed gives the same forecasts) and of the legacy noise, re-seeded
            at every :meth:`reset`.
        solver: a cvxpy solver to try first (with fallback); must be installed. ``None`` (default)
            uses :class:`~equiglb.control.mpc.AggregateLPSolver` where it applies, else
            :class:`~equiglb.control.mpc.DirectMPCSolver` (the program to HiGHS or Clarabel without cvxpy);
            a name solves the cvxpy program.
        warm_start: the direct LP paths (the LP accelerator, and DirectMPCSolver for q in {1, inf}) start each
            slot's solve from the previous slot's optimal basis moved one slot ahead (fewer simplex iterations;
            the same optimum J, possibly another optimal vertex where the program has several); the q = 2
            accelerator from the previous slot's kept interior-point iterate moved one slot ahead (about half the
            iterations; the same optimum to the method's tolerance). With a history tail only the window's slots
            move; the tail's keep their place (its days of history move by one hour a slot). Each :meth:`reset`
            starts cold. Off by default.
        tail_days: the hours after each program's window, represented by this many days of observed history
            (:class:`~equiglb.control.mpc.HistoryTail`: the last ``24 * tail_days`` hours ``history`` holds before
            the slot, each standing for its share of the episode's hours left); 0 (default): no tail. The
            program then has H + 24·tail_days slots.
        tail_weight: the tail's hours per hour of the episode left (>= 0; 1 as many as are left).
        history: the scenario the tail reads (required with ``tail_days``), matched to each episode by UTC hour:
            the whole scenario (the tail follows the episode's own past as it goes on) or a split before the
            episodes (the same tail at every slot). It must hold the ``24 * tail_days`` hours before each
            episode's first slot; only hours before the slot being routed are read.
        tail_strict: False: a history without those hours is not refused, and a slot with fewer whole days of
            history before it has a tail of the whole days there are (the environment's ``mpc_residual`` mode,
            whose episodes may start at the scenario's first hour, and its agent's-base row).
        tail_block_hours: consecutive hours of history per tail slot (1, 2, 3, 4, 6, 8, 12 or 24; 1 default: a
            slot per hour): the tail's slots are the blocks' sums and load-weighted means, 24·tail_days / b of them,
            which cuts the tail's cost about b-fold (:class:`~equiglb.control.mpc.HistoryTail`).

    Raises:
        OptionError: an argument of the wrong type or range, or a solver that is not installed.
    """

    name = "mpc"

    def __init__(self, horizon: int = 24, noise_std: float = 0.0, seed: int = 0, solver: str | None = None,
                 forecast_model: str | Forecaster | None = None, forecast_scale: float = 1.0,
                 warm_start: bool = False, tail_days: int = 0, tail_weight: float = 1.0,
                 history: Scenario | None = None, tail_strict: bool = True, tail_block_hours: int = 1):
        if not isinstance(warm_start, bool):
            raise OptionError(f"warm_start={warm_start!r}: expected True or False")
        self.tail_days = as_int("tail_days", tail_days, 0, MAX_TAIL_DAYS, unit="days")
        if self.tail_days and history is None:
            raise OptionError(f"tail_days={self.tail_days} needs history=: the scenario whose hours precede the "
                              f"episodes (e.g. the whole scenario)")
        if not self.tail_days and history is not None:
            raise OptionError("history= is read by the history tail only: give tail_days >= 1 too")
        if not isinstance(tail_strict, bool):
            raise OptionError(f"tail_strict={tail_strict!r}: expected True or False")
        self.tail_weight = as_float("tail_weight", tail_weight, lo=0.0, hi=100.0)
        self.tail_block_hours: int = one_of("tail_block_hours", tail_block_hours, TAIL_BLOCK_HOURS)
        self.tail = None if history is None else HistoryTail(history, self.tail_days, tail_weight, tail_strict,
                                                             self.tail_block_hours)
        self.warm_start = warm_start
        self.horizon = as_int("horizon", horizon, 1, MAX_HORIZON_H, unit="hours")
        self.noise_std = as_float("noise_std", noise_std, lo=0.0, hi=10.0, unit="(relative std at 1 h)")
        self.seed = as_seed("seed", seed)
        if forecast_model is None:
            forecast_model = "noise" if self.noise_std > 0 else "calibrated"
        self.user_forecaster = forecast_model if isinstance(forecast_model, Forecaster) else None
        if self.user_forecaster is not None:
            model = self.user_forecaster.model
            if self.horizon - 1 > self.user_forecaster.max_horizon:
                raise OptionError(f"horizon={self.horizon}: the forecaster given as forecast_model issues at most "
                                  f"{self.user_forecaster.max_horizon} h ahead (MPC needs horizon - 1)")
        else:
            model = one_of("forecast_model", forecast_model, (*FORECAST_MODELS, "noise"))
        self.forecast_model: str = model
        if self.noise_std > 0 and self.forecast_model != "noise":
            raise OptionError(f"noise_std={self.noise_std!r} with forecast_model={self.forecast_model!r}: noise_std "
                              f"is the legacy noise model's deviation; use forecast_model='calibrated' with "
                              f"forecast_scale, or forecast_model='noise'")
        if self.forecast_model == "noise" and self.noise_std == 0:
            raise OptionError("forecast_model='noise' needs noise_std > 0 (the relative std at 1 h)")
        self.forecast_scale = as_float("forecast_scale", forecast_scale, lo=0.0, hi=100.0)
        if self.forecast_scale != 1.0 and self.forecast_model != "calibrated":
            raise OptionError(f"forecast_scale={self.forecast_scale!r} applies only with "
                              f"forecast_model='calibrated', got {self.forecast_model!r}")
        self.solver = check_solver(solver)
        self._solver: MPCSolver | None = None

    @property
    def information(self) -> str:
        """What the policy knows beyond the present, as tables label it, e.g. ``"forecasts (calibrated, 24 h)"``;
        ``"none"`` at a look-ahead of one hour (slot t alone, its true data)."""
        tail = ("" if self.tail is None else
                f", history tail ({tail_text(self.tail_days, self.tail_weight, self.tail_block_hours)})")
        if self.horizon == 1 and not tail:
            return "none"
        if self.user_forecaster is not None:
            return information_label(self.user_forecaster.label, f"{self.horizon} h") + tail
        model = self.forecast_model
        if model == "calibrated" and self.forecast_scale != 1.0:
            model = f"calibrated x{self.forecast_scale:g}"
        elif model == "noise":
            model = f"noise {self.noise_std:g}"
        return information_label(model, f"{self.horizon} h") + tail

    @property
    def solvers_used(self) -> dict[str, int]:
        """How many slots each solver solved since the program was built."""
        return {} if self._solver is None else self._solver.solvers_used

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.scenario, self.weights = scenario, weights
        self.H = min(self.horizon, scenario.T)
        slots = self.H + (0 if self.tail is None else self.tail.slots)
        key = _structure_key(scenario, slots, weights, True)
        if self._solver is None or self._solver.key != key or self._solver.weights != weights:   # key: H + tail
            self._solver = make_mpc_solver(scenario, slots, weights, self.solver, window=self.H)
        self._solver.warm_start = self.warm_start          # every solver has it (the reference's is inert)
        self._solver.forget()                              # a new run: its first slot starts cold
        forecaster, offset = None, 0
        if self.user_forecaster is not None:
            forecaster = self.user_forecaster
            offset = forecaster.offset_of(scenario)
        elif self.forecast_model in ("calibrated", "persistence"):
            forecaster = Forecaster(scenario, self.forecast_model, self.seed, self.forecast_scale)
        self.core = MPCCore(scenario, weights, self.H, self.noise_std, np.random.default_rng(self.seed),
                            forecaster=forecaster, offset=offset, tail=self.tail)

    def act(self, t: int) -> np.ndarray:
        assert self._solver is not None, "MPCPolicy.act before reset"
        x = self.core.route(t, self._solver)
        self.core.update(t, x)                   # account the applied slot
        return x
