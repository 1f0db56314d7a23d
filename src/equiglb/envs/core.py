"""What the single and the vector environment share: configuration, observation features and scales.

Everything here works on arrays with optional leading batch axes, so that
:class:`~equiglb.envs.glb_env.EquitableGLBEnv` (no batch axis) and
:class:`~equiglb.envs.vector.EquitableGLBVectorEnv` (batch axis B) compute the same numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from equiglb.control import MAX_HORIZON_H, tail_text
from equiglb.envs.options import EnvOptions, is_agent_option, option_defaults
from equiglb.envs.slot import ACTION_MODE_REGISTRY, ACTION_MODES, MPCResidualOptions
from equiglb.forecast import FORECAST_MODELS, MAX_LOG_ERROR, Forecaster, ForecastError, forecast, information_label
from equiglb.forecast_correction import CorrectedForecaster, Correction, fit_correction
from equiglb.scenario import Scenario, Weights
from equiglb.traces import load_scenario
from equiglb.validate import (
    MAX_MAGNITUDE,
    OptionError,
    UnknownOptionError,
    as_bool,
    as_float,
    as_float_array,
    as_int,
    as_path,
    as_seed,
    one_of,
    only_with,
)

__all__ = ["EnvConfig", "Observer", "AGENT_OPTIONS", "RESIDUAL_OPTIONS", "MPC_OPTIONS", "MODE_OPTIONS",
           "OPTION_FIELDS", "OPTION_ORDER", "CARRIED_OPTIONS", "OPTION_DEFAULTS", "ENV_FORECAST_MODELS",
           "MAX_OBS_TABLE_BYTES",
           "MAX_HORIZON_H", "agent_information", "agent_base"]

#: every keyword option of the environment, declared once: the fields of
#: :class:`~equiglb.envs.options.EnvOptions`, then those of each action mode's options (registry order)
OPTION_FIELDS: tuple[dataclasses.Field, ...] = (
    *dataclasses.fields(EnvOptions),
    *(f for cls in ACTION_MODE_REGISTRY.values() if cls.options_type is not None
      for f in dataclasses.fields(cls.options_type)))
#: the action modes that have options of their own, and those options by default value
#: (:attr:`equiglb.envs.slot.SlotStep.options_type`)
MODE_OPTIONS: dict[str, dict[str, Any]] = {name: option_defaults(cls.options_type)
                                           for name, cls in ACTION_MODE_REGISTRY.items()
                                           if cls.options_type is not None}
#: options that apply only with ``action_mode="eglb_residual"`` (the inner online eGLB's tuning and the
#: range of the action's multipliers), by default value
RESIDUAL_OPTIONS: dict[str, Any] = MODE_OPTIONS["eglb_residual"]
#: options that apply only with ``action_mode="mpc_residual"`` (the inner MPC's look-ahead in hours and the
#: range of the action's multipliers), by default value
MPC_OPTIONS: dict[str, Any] = MODE_OPTIONS["mpc_residual"]
#: options that change what an agent observes or what its action does: a trained agent must be
#: evaluated with the same values (``equiglb.agents.evaluate`` keeps them, the window options it sets itself)
AGENT_OPTIONS: tuple[str, ...] = tuple(f.name for f in OPTION_FIELDS if is_agent_option(f))
#: the environment's forecast models: :data:`equiglb.forecast.FORECAST_MODELS` and ``"noise"``, the legacy
#: independent Gaussian noise of ``forecast_noise`` (implied by ``forecast_noise > 0``)
ENV_FORECAST_MODELS: tuple[str, ...] = (*FORECAST_MODELS, "noise")
#: the most memory the observation table of an environment may take (bytes): the table holds one observation
#: per slot of the scenario, forecast_horizon x (3N + J) forecast entries each
MAX_OBS_TABLE_BYTES = 2 ** 30

#: the names of every option, in declaration order, as a set, and the action modes' own options
OPTION_ORDER: tuple[str, ...] = tuple(f.name for f in OPTION_FIELDS)
OPTION_NAMES = frozenset(OPTION_ORDER)
MODE_OPTION_NAMES = frozenset(k for names in MODE_OPTIONS.values() for k in names)
#: the options a trained agent is run with wherever it is evaluated: :data:`AGENT_OPTIONS` and every action
#: mode's options (a run that switched a tuned id's mode set the id's options of the other mode back to their
#: defaults, and its agent must run with them, e.g. ``mpc_residual_reward``)
CARRIED_OPTIONS = frozenset(AGENT_OPTIONS) | MODE_OPTION_NAMES
#: every option's default, by name, in declaration order (what an option not given takes)
OPTION_DEFAULTS: dict[str, Any] = {f.name: f.default for f in OPTION_FIELDS}


def split_options(options: Mapping[str, Any]) -> tuple[EnvOptions, dict[str, dict[str, Any]]]:
    """The keyword options of ``gymnasium.make`` as :class:`~equiglb.envs.options.EnvOptions` and, per action
    mode with options (:data:`MODE_OPTIONS`), the ones given of that mode; an unknown name raises
    :class:`~equiglb.validate.UnknownOptionError` listing the options."""
    unknown = sorted(k for k in options if k not in OPTION_NAMES)
    if unknown:
        valid = list(OPTION_ORDER)
        raise UnknownOptionError(f"unexpected keyword argument {unknown[0]!r}: unknown environment "
                                 f"option(s) {unknown}; the options are {valid}")
    shared = EnvOptions(**{k: v for k, v in options.items() if k not in MODE_OPTION_NAMES})
    by_mode = {mode: {k: options[k] for k in names if k in options} for mode, names in MODE_OPTIONS.items()}
    return shared, by_mode


@dataclasses.dataclass
class EnvConfig:
    """The environment options, resolved against a scenario (the options: docs/env.md, "Keyword arguments").

    Attributes:
        scenario: the whole scenario with the environment's weights (and region weights) applied.
        weights: objective weights of the reward.
        split: name of the split episodes are drawn from.
        split_start, split_length: that split's window (slots of ``scenario``).
        episode_length: slots per episode (default: the whole split).
        random_start: draw the start uniformly in the split (else its first slot).
        action_mode, forecast_horizon (hours), include_prev_action.
        forecast_errors: the observation holds the recent forecast errors (:func:`recent_forecast_errors`).
        forecast_model: the forecasts of the observation and of the MPC inside ``action_mode="mpc_residual"``
            (one :class:`~equiglb.forecast.Forecaster` per environment): ``"calibrated"`` (default),
            ``"persistence"``, ``"perfect"`` (an oracle) or ``"noise"`` (legacy, with ``forecast_noise``).
        forecast_seed, forecast_scale: the calibrated errors' seed and the multiplier of their deviation.
        forecast_noise: relative std at 1 h of the legacy noise model (0 unless forecast_model="noise").
        mode_options: the action mode's own options (an instance of its
            :attr:`~equiglb.envs.slot.SlotStep.options_type`, e.g.
            :class:`~equiglb.envs.slot.MPCResidualOptions`), None for a mode without options.
    """

    scenario: Scenario
    weights: Weights
    split: str
    split_start: int
    split_length: int
    episode_length: int
    random_start: bool
    action_mode: str
    forecast_horizon: int
    forecast_noise: float
    include_prev_action: bool
    forecast_model: str = "calibrated"
    user_forecaster: Forecaster | None = None
    forecast_seed: int = 0
    forecast_scale: float = 1.0
    mode_options: Any = None
    forecast_errors: bool = False
    forecast_correction: str | None = None

    @classmethod
    def make(cls, **options: Any) -> EnvConfig:
        """Resolve the keyword options of ``gymnasium.make`` (docs/env.md, "Keyword arguments").

        Every option is checked by name before the scenario is used (:mod:`equiglb.validate`); a wrong
        type or range raises :class:`~equiglb.validate.OptionError` (a ``ValueError``) naming the option
        and the value, e.g. ``episode_length=24.9: expected an integer number of hours``.
        """
        o, given = split_options(options)
        scenario, data_dir, scenario_options = o.scenario, o.data_dir, o.scenario_options
        if isinstance(scenario, Scenario):
            if data_dir is not None or scenario_options:
                raise OptionError("data_dir= and scenario_options= apply only when scenario= is a name")
            scn = scenario
        elif isinstance(scenario, str):
            if scenario_options is not None and not isinstance(scenario_options, Mapping):
                raise OptionError(f"scenario_options={scenario_options!r}: expected a dict of load_scenario "
                                  f"options, got a {type(scenario_options).__name__}")
            opts = dict(scenario_options or {})
            if data_dir is not None:
                opts["data_dir"] = as_path("data_dir", data_dir)
            scn = load_scenario(scenario, **opts)
        else:
            raise OptionError(f"scenario={type(scenario).__name__} object: expected a registered scenario name "
                              f"(str) or an equiglb.Scenario")
        weights = scn.weights.replace(q=o.q, mu_carbon=o.mu_carbon, mu_water=o.mu_water, mu_social=o.mu_social,
                                      mu_latency=o.mu_latency, unserved_penalty_usd=o.unserved_penalty_usd)
        changes: dict[str, Any] = {"weights": weights}
        if o.region_weights is not None:
            changes["region_weights"] = as_float_array("region_weights", o.region_weights, (scn.N,), lo=0.0)
        scn = dataclasses.replace(scn, **changes)
        split = o.split
        if split is None:
            split = "train" if "train" in scn.splits else "all"
        if not isinstance(split, str) or split not in scn.splits:
            raise OptionError(f"split={split!r} is not a split of scenario {scn.name!r}; "
                              f"available: {sorted(scn.splits)}")
        start, length = scn.splits[split]
        episode_length = o.episode_length
        if episode_length is None:
            episode_length = length
        episode_length = as_int("episode_length", episode_length, 1, length, unit="hours")
        random_start = as_bool("random_start", o.random_start)
        include_prev_action = as_bool("include_prev_action", o.include_prev_action)
        f = _ForecastSettings(o)
        action_mode, forecast_horizon, forecast_noise = f.action_mode, f.forecast_horizon, f.forecast_noise
        forecast_errors = f.forecast_errors
        # the observation table (one row per slot) must fit: refused by size before anything is allocated
        obs_dim = (3 * scn.N + scn.J + 2) + (2 * scn.N + scn.J) + 1 + forecast_horizon * (3 * scn.N + scn.J) + \
            (3 * scn.N + scn.J + scn.K * scn.N * scn.J) + (ERROR_FEATURES if forecast_errors else 0)
        need = scn.T * obs_dim * 4
        if need > MAX_OBS_TABLE_BYTES:
            per_h = scn.T * (3 * scn.N + scn.J) * 4
            fit = max(0, (MAX_OBS_TABLE_BYTES - (need - forecast_horizon * per_h)) // per_h)
            raise OptionError(f"forecast_horizon={forecast_horizon}: the observation would hold "
                              f"{forecast_horizon * (3 * scn.N + scn.J):,} forecast entries and its table of "
                              f"{scn.T} slots about {need / 2 ** 30:.2f} GiB, above the "
                              f"{MAX_OBS_TABLE_BYTES / 2 ** 30:g} GiB an environment allocates; use at most "
                              f"{fit} hours for scenario {scn.name!r}")
        if forecast_horizon >= scn.T:
            warnings.warn(f"forecast_horizon={forecast_horizon} h reaches past the end of the data of scenario "
                          f"{scn.name!r} (T={scn.T} h) from every slot; forecasts past the last slot repeat it",
                          stacklevel=3)
        # the action modes' own options: checked by name when built; another mode's only at their defaults
        mode_options = None
        for mode, values in given.items():
            mode_opts = ACTION_MODE_REGISTRY[mode].options_type(**values)  # type: ignore[misc]
            if mode == action_mode:
                mode_options = mode_opts
                continue
            for name, default in MODE_OPTIONS[mode].items():
                only_with(name, getattr(mode_opts, name), default, f"action_mode={mode!r}", False,
                          f"action_mode={action_mode!r}")
        user = f.user_forecaster
        mpc_h = mode_options.mpc_horizon if isinstance(mode_options, MPCResidualOptions) else 1
        if user is not None:
            _check_user_forecaster(user, scn, start, length, forecast_horizon, mpc_h - 1, forecast_noise)
        if forecast_errors and f.forecast_model == "noise":
            raise OptionError("forecast_errors=True with forecast_model='noise': the legacy noise is drawn afresh "
                              "at every observation, so no forecast was issued before the slot to compare with its "
                              "truth; use forecast_model='calibrated' (with forecast_scale) or 'persistence'")
        if action_mode == "mpc_residual" and forecast_noise > 0:
            raise OptionError(f"forecast_noise={forecast_noise!r} with action_mode='mpc_residual': the legacy noise "
                              f"is drawn afresh at every observation, so the MPC inside the environment cannot read "
                              f"the same forecasts; use forecast_model='calibrated' (with forecast_scale) instead")
        reduced = getattr(mode_options, "mpc_residual_observation", "full")
        if reduced != "full":
            shown = {"forecast_horizon": forecast_horizon, "forecast_errors": forecast_errors,
                     "include_prev_action": include_prev_action}
            extra = [f"{k}={v!r}" for k, v in shown.items() if v]
            if extra:
                raise OptionError(f"mpc_residual_observation={reduced!r} with {', '.join(extra)}: the reduced "
                                  f"observation holds none of these entries; leave them at their defaults or use "
                                  f"mpc_residual_observation='full'")
        check_equity_magnitude(scn, weights, mode_options.max_factor if mode_options is not None else 1.0)
        if f.forecast_correction is not None:
            user = corrected_forecaster(scn, f, split, longest_lead(forecast_horizon, mode_options))
        return cls(scenario=scn, weights=weights, split=split, split_start=start, split_length=length,
                   episode_length=episode_length, random_start=random_start, action_mode=action_mode,
                   forecast_horizon=forecast_horizon, forecast_noise=forecast_noise, forecast_model=f.forecast_model,
                   forecast_seed=f.forecast_seed, forecast_scale=f.forecast_scale, user_forecaster=user,
                   include_prev_action=include_prev_action, mode_options=mode_options,
                   forecast_errors=forecast_errors, forecast_correction=f.forecast_correction)


    def forecaster(self) -> Forecaster | None:
        """The environment's one source of forecasts, over its split (``None`` for the perfect and legacy
        models, whose observations come from the truth table and the episode's generator)."""
        if self.user_forecaster is not None:
            return self.user_forecaster
        if self.forecast_model in ("perfect", "noise"):
            return None
        return Forecaster(self.scenario, self.forecast_model, self.forecast_seed, self.forecast_scale,
                          window=(self.split_start, self.split_length))

    def uses_forecasts(self) -> bool:
        """Whether a policy of this configuration sees forecasts (in its observation or through the MPC)."""
        return self.forecast_horizon > 0 or isinstance(self.mode_options, MPCResidualOptions) or self.forecast_errors

    def information(self) -> str:
        """What an agent of this configuration knows beyond the present, as tables label it: ``"none"``, or
        ``"forecasts (<model>, obs <H> h[, mpc <H> h])"``."""
        if not self.uses_forecasts():
            return "none"
        parts = [f"obs {self.forecast_horizon} h"] if self.forecast_horizon else []
        if isinstance(self.mode_options, MPCResidualOptions):
            parts.append(f"mpc {self.mode_options.mpc_horizon} h{_tail_label(self.mode_options)}")
        if self.forecast_errors:
            parts.append("recent errors")
        model = self.forecast_model
        if getattr(self, "user_forecaster", None) is not None:
            model = self.user_forecaster.label  # type: ignore[union-attr]
        elif model == "calibrated" and self.forecast_scale != 1.0:
            model = f"calibrated x{self.forecast_scale:g}"
        elif model == "noise":
            model = f"noise {self.forecast_noise:g}"
        corr = self.forecast_correction
        if corr is not None and not isinstance(getattr(self, "user_forecaster", None), CorrectedForecaster):
            model = f"{model}, corrected (fit on {corr})"   # as CorrectedForecaster.label, without the scenario
        return information_label(model, ", ".join(parts))

    def draw_start(self, rng: np.random.Generator, start: Any = None) -> int:
        """First slot of an episode: ``start`` if given (checked: an integer slot such that the episode fits
        in the split), else the split's first slot, or uniform within the split with ``random_start``."""
        lo, hi = self.split_start, self.split_start + self.split_length - self.episode_length
        if start is not None:
            return as_int("options['start']", start, lo, hi, unit="slots")
        if self.random_start and self.split_length > self.episode_length:
            return self.split_start + int(rng.integers(0, self.split_length - self.episode_length + 1))
        return self.split_start


def check_equity_magnitude(scn: Scenario, weights: Weights, factor: float = 1.0) -> None:
    """The largest equity price the reward (and a residual mode's inner solver) can use, a μ times a region
    weight ω times the residual range ``factor``, is at most :data:`~equiglb.validate.MAX_MAGNITUDE` USD per
    unit: beyond it a solver's coefficients leave its numerical range (HiGHS stops without a status), so
    ``region_weights=[1e12, 0, ...]`` is refused by name here instead of failing mid-episode."""
    omega = float(np.max(scn.region_weights)) if np.size(scn.region_weights) else 0.0
    for name, mu in (("mu_carbon", weights.mu_carbon), ("mu_water", weights.mu_water),
                     ("mu_social", weights.mu_social)):
        top = float(mu) * omega * factor
        if top > MAX_MAGNITUDE:
            raise OptionError(f"region_weights: the largest weight {omega:g} times {name}={float(mu):g} USD"
                              f"{f' times the residual range {factor:g}' if factor != 1.0 else ''} is {top:g} USD, "
                              f"above the accepted maximum {MAX_MAGNITUDE:g}; scale region_weights down (they are "
                              f"relative weights, e.g. 1 per region)")


def _check_user_forecaster(fc: Forecaster, scn: Scenario, start: int, length: int, obs_h: int, mpc_h: int,
                           noise: float) -> None:
    """A forecaster given as ``forecast_model`` must forecast this scenario over the whole split, as far ahead
    as the observation and the inner MPC read."""
    if noise > 0:
        raise OptionError(f"forecast_noise={noise!r} with a forecaster as forecast_model: choose one")
    if fc.scenario.T != scn.T or not np.array_equal(fc.scenario.timestamps, scn.timestamps):
        raise OptionError(f"forecast_model: the forecaster was built on scenario {fc.scenario.name!r} "
                          f"(T={fc.scenario.T} h from {fc.scenario.timestamps[0]}), not on this environment's "
                          f"{scn.name!r} (T={scn.T} h from {scn.timestamps[0]})")
    if fc.first > start or fc.last < start + length - 1:
        raise OptionError(f"forecast_model: the forecaster issues at slots {fc.first}..{fc.last}, but the split "
                          f"covers slots {start}..{start + length - 1}")
    need = max(obs_h, mpc_h)
    if need > fc.max_horizon:
        raise OptionError(f"forecast_model: the forecaster issues at most {fc.max_horizon} h ahead, but the "
                          f"observation and the MPC read {need} h")


def _resolve_model(model: Any, noise: float) -> str:
    """The forecast model of the options ``forecast_model`` and ``forecast_noise`` (checked together)."""
    if model is None:
        return "noise" if noise > 0 else "calibrated"
    model = one_of("forecast_model", model, ENV_FORECAST_MODELS)
    if noise > 0 and model != "noise":
        raise OptionError(f"forecast_noise={noise!r} with forecast_model={model!r}: forecast_noise is the legacy "
                          f"noise model's deviation; use forecast_model='calibrated' with forecast_scale, or "
                          f"forecast_model='noise'")
    if model == "noise" and noise == 0:
        raise OptionError("forecast_model='noise' needs forecast_noise > 0 (the relative std at 1 h)")
    return model


def _scale(a: np.ndarray) -> float:
    m = float(np.abs(a).max()) if a.size else 0.0
    return m if m > 0 else 1.0


#: entries of the recent-forecast-error features (``forecast_errors=True``): 3 per signal group
ERROR_FEATURES = 12
#: hours of realized targets the error features average over
ERROR_WINDOW_H = 24


def _trailing_sum(a: np.ndarray, window: int) -> np.ndarray:
    """Row k: the sum of rows max(0, k - window + 1) .. k of ``a`` (along axis 0)."""
    c = np.cumsum(np.concatenate([np.zeros((1,) + a.shape[1:]), a]), axis=0)
    return c[1:] - c[np.maximum(np.arange(1, len(a) + 1) - window, 0)]


def recent_forecast_errors(forecaster: Forecaster, ts: np.ndarray, lead: int, scales: np.ndarray,
                           groups: Sequence[int], window: int = ERROR_WINDOW_H) -> np.ndarray:
    """What a controller knows at slot t of its forecasts' quality: (len(ts), 3 · len(groups)) features.

    For each signal group (price, carbon, water: N series each; demand: J), the errors e = f - x of the
    forecasts of the last ``window`` target slots u = t - window + 1 .. t (each truth x[u] known at t), in
    the observation's scale (``scales``, per series), averaged over the group's series and those slots:
    the mean absolute error of the forecasts issued 1 h before their target, their mean signed error (the
    bias), and the mean absolute error of those issued ``lead`` hours before. Only issues inside ``ts`` (the
    environment's split) count, so a slot near the split's start averages fewer hours (0 before any)."""
    ts = np.asarray(ts, dtype=np.int64)
    first = int(ts[0])
    issued = forecaster.table(ts, lead) * scales                                  # (L, lead, S)
    truth = forecaster.truth[ts] * scales                                         # (L, S)
    edges = np.cumsum([0, *groups])

    def trailing_means(h: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean absolute and mean signed error of the issues h hours ahead over the trailing window, per
        series: (L, S) each."""
        err = np.zeros((len(ts), scales.size))
        valid = ts - h >= first                                                   # target u issued at u - h
        err[valid] = issued[(ts - h - first)[valid], h - 1] - truth[valid]
        n = np.maximum(_trailing_sum(valid.astype(np.float64), window), 1.0)[:, None]
        return _trailing_sum(np.abs(err), window) / n, _trailing_sum(err, window) / n

    abs1, signed1 = trailing_means(1)
    abs_lead = trailing_means(lead)[0] if lead > 1 else abs1
    out = np.zeros((len(ts), 3 * len(groups)))
    for g in range(len(groups)):
        sl = slice(edges[g], edges[g + 1])
        out[:, 3 * g] = abs1[:, sl].mean(axis=1)
        out[:, 3 * g + 1] = signed1[:, sl].mean(axis=1)
        out[:, 3 * g + 2] = abs_lead[:, sl].mean(axis=1)
    return out


class Observer:
    """Builds the float32 observation vector (layout and scales in the environment docstring)."""

    def __init__(self, cfg: EnvConfig, action_dim: int, extra_dim: int = 0, extra_high: float = 1.0,
                 forecaster: Forecaster | None = None):
        sc = cfg.scenario
        self.cfg = cfg
        N, J = sc.N, sc.J
        self.price_scale = _scale(sc.price)          # USD/MWh
        self.carbon_scale = _scale(sc.carbon)        # t/MWh
        self.water_scale = _scale(sc.water)          # m³/MWh
        self.demand_scale = _scale(sc.demand)        # load units
        # typical per-site facility energy of one episode if the mean load were spread evenly (MWh)
        energy = float(sc.demand.sum(axis=1).mean() * sc.energy_per_unit.mean() * sc.pue.mean())
        energy = energy * cfg.episode_length / N
        if energy <= 0:
            energy = 1.0
        self.cum_carbon_scale = max(float(sc.carbon.mean()), 1e-12) * energy   # t
        self.cum_water_scale = max(float(sc.water.mean()), 1e-12) * energy     # m³
        self.social_scale = _scale(sc.quality_loss)
        hours = (sc.timestamps.astype(np.int64) % 24).astype(np.float64)
        ang = 2.0 * np.pi * hours / 24.0
        # per-slot current features: price, carbon, water (N each), demand (J), hour sin/cos
        self.price_table = sc.price / self.price_scale
        self.other_table = np.concatenate(
            [sc.carbon / self.carbon_scale, sc.water / self.water_scale, sc.demand / self.demand_scale], axis=1)
        self.current = np.concatenate(
            [self.price_table, self.other_table, np.sin(ang)[:, None], np.cos(ang)[:, None]], axis=1)
        self.signals = np.concatenate([self.price_table, self.other_table], axis=1)   # (T, 3N + J)
        self._signal_scales = np.concatenate([np.full(N, 1 / self.price_scale), np.full(N, 1 / self.carbon_scale),
                                              np.full(N, 1 / self.water_scale), np.full(J, 1 / self.demand_scale)])
        self.horizon = cfg.forecast_horizon
        self.noise = cfg.forecast_noise if cfg.forecast_model == "noise" else 0.0
        #: the environment's forecaster (None: perfect forecasts, or the legacy noise drawn per observation)
        self.forecaster = forecaster
        self._user_prices = False
        #: the last slot a forecast may read: the end of the environment's split, so that an episode on
        #: the train split never sees the held-out slots after it (past it, forecasts repeat this slot)
        self.forecast_last = cfg.split_start + cfg.split_length - 1
        #: bound of the scaled forecasts: legacy noisy forecasts are clipped to ±(1 + 8 × noise × sqrt(H))
        #: (8 standard deviations); calibrated ones are within a factor exp(MAX_LOG_ERROR) = 10 of the truth
        self.forecast_clip = 1.0 + 8.0 * self.noise * math.sqrt(max(self.horizon, 1))
        if forecaster is not None and forecaster.model == "calibrated":
            self.forecast_clip = math.exp(MAX_LOG_ERROR)
        self.action_dim = action_dim if cfg.include_prev_action else 0
        self.extra_dim, self.extra_high = extra_dim, extra_high
        self.error_dim = ERROR_FEATURES if cfg.forecast_errors else 0
        self.dim = (3 * N + J + 2) + (2 * N + J) + 1 + self.horizon * (3 * N + J) + self.error_dim + extra_dim + \
            self.action_dim
        self._N, self._J = N, J
        self._inv_len = 1.0 / cfg.episode_length
        self._inv_cum = np.repeat([1.0 / self.cum_carbon_scale, 1.0 / self.cum_water_scale], N)   # (2N,) C then W
        self._inv_social = 1.0 / self.social_scale
        # every slot's observation with zeros where the episode's state goes: the current features,
        # then C, W, S and the elapsed fraction (zeros), then perfect forecasts (noise 0) or zeros,
        # then the previous action (zeros); observe() copies a row and writes the state
        self._n_current = self.current.shape[1]
        self._forecast_at = self._n_current + 2 * N + J + 1
        table = np.zeros((sc.T, self.dim), np.float32)
        table[:, :self._n_current] = self.current
        if self.horizon and forecaster is not None:
            # the forecaster's issues at every slot of the split (deterministic: one table for every episode)
            ts = np.arange(cfg.split_start, cfg.split_start + cfg.split_length)
            issued = forecaster.table(ts, self.horizon) * self._signal_scales     # (L, H, 3N + J)
            if forecaster.model not in FORECAST_MODELS:
                # forecasts of another source (a file): the bounds hold whatever their values
                self.forecast_clip = max(1.0, float(np.abs(issued).max()))
                self._user_prices = True
            table[ts, self._forecast_at:self._forecast_at + self.horizon * (3 * N + J)] = \
                issued.reshape(len(ts), -1)
        elif self.horizon and self.noise == 0:
            table[:, self._forecast_at:self._forecast_at + self.horizon * (3 * N + J)] = \
                self.forecasts(np.arange(sc.T), None)
        self._errors_at = self._forecast_at + self.horizon * (3 * N + J)
        #: bound of the error features: the largest scaled forecast and truth apart
        self.error_bound = self.forecast_clip + 1.0
        if self.error_dim and forecaster is not None:
            lead = longest_lead(self.horizon, cfg.mode_options)
            ts = np.arange(cfg.split_start, cfg.split_start + cfg.split_length)
            feats = recent_forecast_errors(forecaster, ts, lead, self._signal_scales, (N, N, N, J))
            self.error_bound = max(self.error_bound, float(np.abs(feats).max(initial=0.0)))
            table[ts, self._errors_at:self._errors_at + self.error_dim] = feats
        self._table = table
        #: ``"full"`` (the table above), or the reduced observation of ``mpc_residual_observation``:
        #: ``"spreads"`` (1, elapsed fraction, carbon and water spreads) or ``"none"`` (a constant 1)
        self.reduced: str = getattr(cfg.mode_options, "mpc_residual_observation", "full")
        if self.reduced != "full":
            self.dim = REDUCED_DIMS[self.reduced]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of every observation entry (finite; see the environment docstring)."""
        sc, cfg = self.cfg.scenario, self.cfg
        N, J, H = sc.N, sc.J, self.horizon
        if self.reduced != "full":      # a spread (max - mean) / mean of N nonnegative sums is at most N - 1
            lo_r, hi_r = np.array([1.0, 0.0, 0.0, 0.0]), np.array([1.0, 1.0, N - 1.0, N - 1.0])
            d = self.dim
            return lo_r[:d], hi_r[:d] * (1.0 + 1e-3) + 1e-6
        neg_price = -1.0 if np.any(sc.price < 0) else 0.0
        cur_lo = np.r_[np.full(N, neg_price), np.zeros(2 * N + J), -1.0, -1.0]
        cur_hi = np.ones(3 * N + J + 2)
        # a site's facility energy per slot is at most min(M, all demand) x PUE
        e_max = float(sc.energy_per_unit.max())
        site_mwh = np.minimum(sc.capacity, e_max * float(sc.demand.sum(axis=1).max())) * sc.pue
        c_hi = cfg.episode_length * sc.carbon.max(axis=0) * site_mwh / self.cum_carbon_scale
        w_hi = cfg.episode_length * sc.water.max(axis=0) * site_mwh / self.cum_water_scale
        s_hi = np.full(J, float(sc.quality_loss.max()) / self.social_scale)
        lo = [cur_lo, np.zeros(2 * N + J + 1)]
        hi = [cur_hi, c_hi, w_hi, s_hi, np.ones(1)]
        if H:
            f = self.forecast_clip
            # noisy price forecasts may change sign (the noise is multiplicative and unclipped at 0)
            price_lo = -f if (neg_price or self.noise > 0 or self._user_prices) else 0.0
            lo.append(np.tile(np.r_[np.full(N, price_lo), np.zeros(2 * N + J)], H))
            hi.append(np.full(H * (3 * N + J), f))
        if self.error_dim:
            lo.append(np.tile([0.0, -self.error_bound, 0.0], 4))
            hi.append(np.full(self.error_dim, self.error_bound))
        if self.extra_dim:
            lo.append(np.zeros(self.extra_dim))
            hi.append(np.full(self.extra_dim, self.extra_high))
        if self.action_dim:
            lo.append(np.full(self.action_dim, -1.0))
            hi.append(np.ones(self.action_dim))
        lo_a, hi_a = np.concatenate(lo), np.concatenate(hi)
        return lo_a, hi_a * (1.0 + 1e-3) + 1e-6

    @property
    def space(self) -> spaces.Box:
        """The observation space: a float32 Box of shape (dim,) with the bounds of :meth:`bounds`."""
        lo, hi = self.bounds()
        return spaces.Box(lo.astype(np.float32), hi.astype(np.float32), dtype=np.float32)

    def forecasts(self, t: np.ndarray | int, rng: np.random.Generator | None) -> np.ndarray:
        """Scaled forecasts of the next ``horizon`` slots (..., horizon·(3N+J)) via :func:`forecast`."""
        H = self.horizon
        t = np.asarray(t)
        # a series whose slot m is the true value at min(t + m, the split's last slot), forecast from its slot 0
        idx = np.minimum(t[..., None] + np.arange(H + 1), self.forecast_last)   # (..., H+1)
        series = np.moveaxis(self.signals[idx], -2, 0)                     # (H+1, ..., S)
        N = self._N
        price = forecast(series[..., :N], 0, H, self.noise, rng, nonnegative=False)
        other = forecast(series[..., N:], 0, H, self.noise, rng, nonnegative=True)
        out = np.concatenate([price, other], axis=-1)                       # (H, ..., S)
        if self.noise > 0:
            np.clip(out, -self.forecast_clip, self.forecast_clip, out=out)
        return np.moveaxis(out, 0, -2).reshape(t.shape + (-1,))

    def observe(self, t: np.ndarray | int, elapsed: np.ndarray | int, footprint: np.ndarray,
                social: np.ndarray | None, prev_action: np.ndarray | None,
                rng: np.random.Generator | None, extra: np.ndarray | None = None) -> np.ndarray:
        """The observation (float32, (..., dim)) at slot ``t`` after ``elapsed`` slots of the episode.

        ``footprint`` (..., 2, N) is the cumulative carbon C and water W stacked (``Ledger.footprint``);
        ``social=None`` stands for S = 0 (a scenario without a social term); ``rng`` draws the
        forecast noise (unused with perfect forecasts); ``extra`` (..., extra_dim) the slot step's own
        features (the eGLB duals of the residual mode).
        """
        N, J = self._N, self._J
        if self.reduced != "full":
            return _reduced_observation(self.reduced, np.shape(t), elapsed * self._inv_len, footprint)
        out = self._table[t].copy()                    # a new array: the slot's features and zeros
        a = self._n_current
        np.multiply(footprint.reshape(footprint.shape[:-2] + (2 * N,)), self._inv_cum, out=out[..., a:a + 2 * N],
                    casting="same_kind")
        if social is not None:
            out[..., a + 2 * N:a + 2 * N + J] = social * self._inv_social
        out[..., a + 2 * N + J] = elapsed * self._inv_len
        if self.horizon and self.noise > 0:
            b = self._forecast_at
            out[..., b:b + self.horizon * (3 * N + J)] = self.forecasts(t, rng)
        if self.extra_dim:
            b = self._errors_at + self.error_dim
            out[..., b:b + self.extra_dim] = extra
        if self.action_dim:
            out[..., self.dim - self.action_dim:] = prev_action
        return out


#: the length of each reduced observation (``mpc_residual_observation``)
REDUCED_DIMS = {"spreads": 4, "none": 1}


def footprint_spread(cumulative: np.ndarray) -> np.ndarray:
    """(max - mean) / mean over the last axis (the sites) of cumulative footprints, 0 where the mean is 0."""
    mean = cumulative.mean(axis=-1)
    return np.divide(cumulative.max(axis=-1) - mean, mean, out=np.zeros_like(mean), where=mean > 0)


def _reduced_observation(kind: str, shape: tuple[int, ...], elapsed_fraction: Any,
                         footprint: np.ndarray) -> np.ndarray:
    """The reduced observation ``kind`` (float32, shape + (REDUCED_DIMS[kind],)): ``"none"`` the constant 1,
    ``"spreads"`` (1, elapsed fraction, the spread of the sites' cumulative carbon, of their water)."""
    if kind == "none":
        return np.ones(shape + (1,), np.float32)
    out = np.empty(shape + (4,), np.float32)
    out[..., 0] = 1.0
    out[..., 1] = elapsed_fraction
    out[..., 2:] = footprint_spread(np.asarray(footprint, dtype=np.float64))     # (..., 2): carbon, water
    return out


def _tail_label(mode: MPCResidualOptions) -> str:
    """The MPC's history tail as labels show it after its look-ahead (``" + history tail 5 d x0.5"``; "" without)."""
    if not mode.mpc_tail_days:
        return ""
    return f" + history tail {tail_text(mode.mpc_tail_days, mode.mpc_tail_weight, mode.mpc_tail_block_hours)}"


def agent_information(options: Mapping[str, Any]) -> str:
    """What an agent trained with the environment ``options`` (an id's registered keyword arguments merged
    with the run's) knows beyond the present, as tables label it (:meth:`EnvConfig.information`), without
    loading the scenario: ``"none"`` or ``"forecasts (<model>, obs <H> h[, mpc <H> h])"``."""
    return EnvConfig.information(_agent_settings(options))  # type: ignore[arg-type]


def agent_base(options: Mapping[str, Any], scenario: Scenario | None = None,
               split: str | None = None) -> tuple[str, dict[str, Any], str] | None:
    """The baseline that a residual-mode agent's action 0 is exactly, with the same information: ``(policy
    name, keyword arguments of make_policy, row label)``, e.g. ``("mpc", {"horizon": 24, "forecast_model":
    "calibrated", "seed": 0, "forecast_scale": 1.0}, "mpc-24 calibrated (agent's base)")``; with a forecaster
    object as ``forecast_model`` (a file's, a corrected one) the planner reads that object and the label is its
    own; ``None`` for the other modes. With ``forecast_correction`` the planner reads the environment's corrected
    forecasts of ``split`` of ``scenario`` (the evaluation's window: both are then required)."""
    cfg = _agent_settings(options)
    mode = cfg.mode_options
    if cfg.action_mode == "mpc_residual" and cfg.forecast_correction is not None:
        if scenario is None or split is None:
            raise OptionError(f"forecast_correction={cfg.forecast_correction!r}: the agent's planner row needs the "
                              f"scenario and split it is evaluated on")
        cfg.user_forecaster = corrected_forecaster(scenario, cfg, split,
                                                   longest_lead(cfg.forecast_horizon, cfg.mode_options))
    if cfg.action_mode == "mpc_residual":
        model = cfg.forecast_model
        shown = {"perfect": "perfect (oracle)", "noise": f"noise {cfg.forecast_noise:g}"}.get(model, model)
        if model == "calibrated" and cfg.forecast_scale != 1.0:
            shown = f"calibrated x{cfg.forecast_scale:g}"
        kwargs: dict[str, Any] = {"horizon": mode.mpc_horizon, "forecast_model": model, "seed": cfg.forecast_seed}
        tail = _tail_label(mode)
        if mode.mpc_tail_days:                   # the history tail reads the whole scenario, as the environment
            if scenario is None:
                raise OptionError(f"mpc_tail_days={mode.mpc_tail_days}: the agent's planner row needs the scenario "
                                  f"its history tail reads")
            kwargs.update(tail_days=mode.mpc_tail_days, tail_weight=mode.mpc_tail_weight, history=scenario,
                          tail_strict=False, tail_block_hours=mode.mpc_tail_block_hours)
        if mode.mpc_warm_start:                  # a warm start may pick another vertex at ties: the base does too
            kwargs["warm_start"] = True
        if cfg.user_forecaster is not None:      # a forecaster given as forecast_model: the planner reads it too
            kwargs["forecast_model"] = cfg.user_forecaster
            return "mpc", kwargs, f"mpc-{mode.mpc_horizon} {cfg.user_forecaster.label}{tail} (agent's base)"
        if model == "calibrated":
            kwargs["forecast_scale"] = cfg.forecast_scale
        if model == "noise":
            kwargs["noise_std"] = cfg.forecast_noise
        return "mpc", kwargs, f"mpc-{mode.mpc_horizon} {shown}{tail} (agent's base)"
    if cfg.action_mode == "eglb_residual":
        return ("online-eglb", {"eta_scale": mode.eglb_eta_scale, "z_max_scale": mode.eglb_z_max_scale},
                "online-eglb (agent's base)")
    return None


class _ForecastSettings:
    """The action mode and the forecast options, checked by name: what :meth:`EnvConfig.make` resolves
    before the scenario, and what :meth:`EnvConfig.information` and :func:`agent_base` read (with the
    mode's options, :attr:`mode_options`)."""

    def __init__(self, o: EnvOptions):
        self.action_mode = one_of("action_mode", o.action_mode, ACTION_MODES)
        # a forecast reaches at most the scenario's last slot: past it there is no data to forecast
        # the observation holds forecast_horizon x (3N + J) numbers: a year is the most that makes sense
        self.forecast_horizon = as_int("forecast_horizon", o.forecast_horizon, 0, 8760, unit="hours")
        self.forecast_noise = as_float("forecast_noise", o.forecast_noise, lo=0.0, hi=10.0,
                                       unit="(relative std at 1 h)")
        user = o.forecast_model if isinstance(o.forecast_model, Forecaster) else None
        self.user_forecaster = user
        self.forecast_model = user.model if user is not None else _resolve_model(o.forecast_model,
                                                                                  self.forecast_noise)
        self.forecast_seed = as_seed("forecast_seed", o.forecast_seed)
        self.forecast_scale = as_float("forecast_scale", o.forecast_scale, lo=0.0, hi=100.0)
        if self.forecast_scale != 1.0 and self.forecast_model != "calibrated":
            raise OptionError(f"forecast_scale={self.forecast_scale!r} applies only with "
                              f"forecast_model='calibrated', got forecast_model={self.forecast_model!r}")
        self.forecast_errors = as_bool("forecast_errors", o.forecast_errors)
        self.forecast_correction = _check_correction(o.forecast_correction, self.forecast_model)
        self.mode_options: Any = None

    def uses_forecasts(self) -> bool:
        return EnvConfig.uses_forecasts(self)  # type: ignore[arg-type]


def _check_correction(split: Any, model: str) -> str | None:
    """The option ``forecast_correction`` checked by name (the split itself is checked against the scenario by
    :func:`corrected_forecaster`)."""
    if split is None:
        return None
    if not isinstance(split, str) or not split:
        raise OptionError(f"forecast_correction={split!r}: expected the name of a split of the scenario to fit the "
                          f"correction on (e.g. 'train'), or None")
    if model in ("perfect", "noise"):
        raise OptionError(f"forecast_correction={split!r} with forecast_model={model!r}: "
                          + ("perfect forecasts have no errors to correct" if model == "perfect" else
                             "the legacy noise is drawn afresh at every observation, so no issued forecast shows an "
                             "error") + "; use forecast_model='calibrated', 'persistence' or a forecaster")
    return split


#: corrections fit by :func:`corrected_forecaster`, by what they are a function of (a few per process: every copy
#: of a vector environment and every evaluation of the same options fit the same coefficients)
_CORRECTIONS: dict[tuple, Correction] = {}


def corrected_forecaster(scn: Scenario, settings: Any, split: str, horizon: int) -> CorrectedForecaster:
    """The environment's forecasts over ``split`` (the raw model of ``settings``, or its forecaster object)
    corrected by :mod:`equiglb.forecast_correction`, the correction fit on the split named by
    ``settings.forecast_correction`` only, for leads 1 .. ``horizon`` (at most a third of that split and the
    forecaster's longest lead; leads past it are left as issued). That split must be ``split`` itself (training
    there) or end before ``split`` begins (a split after it would fit on the future of the scored window); else
    :class:`~equiglb.validate.OptionError` naming the option, the splits and their slots."""
    name = settings.forecast_correction
    if name not in scn.splits:
        raise OptionError(f"forecast_correction={name!r} is not a split of scenario {scn.name!r}; available: "
                          f"{sorted(scn.splits)}")
    a, n = scn.splits[name]
    start, length = scn.splits[split]
    if (a, n) != (start, length) and a + n > start:
        raise OptionError(f"forecast_correction={name!r}: the correction would be fit on slots {a}..{a + n - 1}, "
                          f"which neither are the environment's split {split!r} (slots {start}..{start + length - 1}) "
                          f"nor end before it; fit it on a split that ends before {split!r}, or on {split!r} itself "
                          f"to train there")
    raw = settings.user_forecaster
    if raw is not None:
        env_base, fit_base = raw, raw
    else:
        model, seed, scale = settings.forecast_model, settings.forecast_seed, settings.forecast_scale
        env_base = Forecaster(scn, model, seed, scale, window=(start, length))
        fit_base = Forecaster(scn, model, seed, scale, window=(a, n))
    H = max(1, min(horizon, n // 3, fit_base.max_horizon))
    key = None
    if raw is None:       # a function of the model, the seed, the scale, the slots and the data of the fit window
        digest = hashlib.sha1(b"".join(np.ascontiguousarray(v[a:a + n]).tobytes()
                                       for v in (scn.price, scn.carbon, scn.water, scn.demand))).hexdigest()
        key = (fit_base.model, fit_base.seed, fit_base.scale, a, n, scn.T, H, digest)
    correction = _CORRECTIONS.get(key) if key is not None else None
    if correction is None:
        try:
            correction = fit_correction(fit_base, (a, n), H)
        except ForecastError as exc:
            raise OptionError(f"forecast_correction={name!r}: {exc}") from None
        if key is not None:
            if len(_CORRECTIONS) >= 16:
                _CORRECTIONS.pop(next(iter(_CORRECTIONS)))
            _CORRECTIONS[key] = correction
    return CorrectedForecaster(env_base, correction, name)


def longest_lead(forecast_horizon: int, mode_options: Any) -> int:
    """The longest lead (hours) at which an environment reads its forecasts: the observation's, the MPC's (its
    horizon - 1), at least 1 (the recent errors' longest lead, the forecast correction's horizon)."""
    mpc_h = mode_options.mpc_horizon if isinstance(mode_options, MPCResidualOptions) else 1
    return max(1, forecast_horizon, mpc_h - 1)


def _agent_settings(options: Mapping[str, Any]) -> _ForecastSettings:
    """The action mode, forecast and mode options of keyword options (defaults and checks of
    :meth:`EnvConfig.make`; the other options are not read)."""
    o, given = split_options({k: v for k, v in options.items() if k in OPTION_NAMES})
    cfg = _ForecastSettings(o)
    options_type = ACTION_MODE_REGISTRY[cfg.action_mode].options_type
    if options_type is not None:
        cfg.mode_options = options_type(**given[cfg.action_mode])
    return cfg
