"""The equity-aware geographical load balancing environment (docs/model.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from equiglb.envs.core import OPTION_ORDER, EnvConfig, Observer
from equiglb.envs.registration import outer_time_limit
from equiglb.envs.slot import DUAL_OBS_CAP, MPC_HORIZON_H, RESIDUAL_MAX_FACTOR, make_slot_step
from equiglb.forecast import Forecaster
from equiglb.ledger import Report, evaluate
from equiglb.scenario import Scenario
from equiglb.validate import check_reset_options

__all__ = ["EquitableGLBEnv"]


class EquitableGLBEnv(gym.Env):
    r"""
    ## Description

    Route the hourly inference demand of J user regions to N data centers (and K AI models) so that
    the energy cost stays low and no region carries a disproportionate share of the carbon, water or
    quality-of-service burden (eGLB, Li et al. 2024; the model is stated in docs/model.md). One step
    is one hourly slot t.

    ## Action Space

    ``Box(-1, 1, (dim,), float32)``; every entry becomes a weight ``u = (clip(a, -1, 1) + 1) / 2``.

    | action_mode | dim | meaning |
    |---|---|---|
    | ``"site_scores"`` (default) | hosted (site, model) pairs | one weight per (i, k), shared by all regions |
    | ``"routing"`` | allowed (site, region, model) triples | one weight per (i, j, k) |

    Region j splits its demand λ[t, j] over its allowed pairs (mask and hosting) in proportion to
    the weights (uniformly if they are all 0), so the proposal serves all demand. A deterministic
    repair (:func:`equiglb.envs.actions.repair`) then scales every over-full site down to exactly its
    capacity M[i] and moves the overflow to the region's other allowed pairs at sites with spare
    capacity, in proportion to its weights there (uniformly if those are 0), until no site is over
    capacity. Load stays unserved only when every site the region can reach is full; it is counted
    (``info["unserved_load"]``) and penalized (``unserved_penalty_usd`` per load unit). Out-of-range
    finite actions are clipped; NaN/inf entries or a wrong shape raise ``ValueError``. The
    compact ``"site_scores"`` mode learns better with PPO than ``"routing"`` (docs/env.md has the
    measurement) and is the environment's default; ``"routing"`` reaches every routing that serves all
    demand. The learning-augmented modes (docs/env.md) route through the baselines: ``"prices"`` and
    ``"eglb_residual"`` by equity prices (set by the action, or online eGLB's scaled by it), and
    ``"mpc_residual"`` by MPC with its equity coefficients scaled by the action; action 0 of a residual
    mode is its base algorithm exactly. ``train.py``'s hyperparameter files say which mode each id
    trains in (docs/training.md).

    ## Observation Space

    ``Box(low, high, (dim,), float32)`` with finite bounds (``observer.bounds()``), in this order
    (N sites, J regions, H = forecast_horizon):

    | entries | feature | scale (divided by) |
    |---|---|---|
    | N | price p[t, i] (USD/MWh) | max \|p\| over the scenario |
    | N | carbon intensity c[t, i] (t/MWh) | max c |
    | N | water intensity w[t, i] (m³/MWh) | max w |
    | J | demand λ[t, j] (load units) | max λ |
    | 2 | sin, cos of the UTC hour of slot t | 1 |
    | N | cumulative carbon C[i] of the episode so far (t) | mean c × E_ep |
    | N | cumulative water W[i] so far (m³) | mean w × E_ep |
    | J | social cost S[j] so far (quality loss / window demand) | max s[k] (1 if 0) |
    | 1 | fraction of the episode elapsed | 1 |
    | H·(3N+J) | forecasts of price, carbon, water, demand for t+1..t+H | as above |
    | 12 | recent forecast errors (``forecast_errors``; docs/env.md), 3 per group | as above |
    | dim(action) | previous action (if ``include_prev_action``) | 1 |

    ``E_ep`` = mean total demand per slot × mean e × mean PUE × episode_length / N (MWh): the
    per-site facility energy of an episode if the load were spread evenly, so the cumulative
    footprints are of order one at the end of an episode. Forecasts are those of the environment's
    :class:`equiglb.forecast.Forecaster` (``forecast_model``: ``"calibrated"`` by default, errors as
    published forecasters make them, within a factor 10 of the truth; ``"persistence"``; ``"perfect"``,
    an oracle; docs/forecasts.md), the same issued forecasts the MPC of ``"mpc_residual"`` reads, or
    with the legacy ``forecast_noise`` a relative Gaussian error ``forecast_noise × sqrt(h)`` at h
    hours ahead, clipped at 8 standard deviations. Forecasts never read past the last slot of the
    environment's ``split``: there they repeat that slot, so an episode on the train split sees
    nothing of the held-out test window.
    Cumulative footprints are bounded by episode_length × max intensity × min(M[i], all demand) × PUE.

    In ``"mpc_residual"`` the option ``mpc_residual_observation`` may replace this table: ``"spreads"``
    is 4 entries (1, the fraction elapsed, the spread (max - mean) / mean of the cumulative carbon C and of
    the cumulative water W over the sites, each in [0, N - 1]); ``"none"`` is the constant 1 (a
    state-independent policy; the MPC inside still reads the forecasts).

    ## Rewards

    ``r_t = -(cost_t + Φ_t - Φ_{t-1})`` in USD from :class:`equiglb.ledger.Ledger`: the slot's
    energy cost, latency and unserved penalty, plus the increase of the equity part
    ``Φ = μ_c‖ω⊙C‖_q + μ_w‖ω⊙W‖_q + μ_s‖S‖_q``. The undiscounted return of an episode is exactly
    ``-J(x)`` of the executed schedule (``equiglb.ledger.evaluate``). In ``"mpc_residual"`` with
    ``mpc_residual_reward="vs-planner"`` each reward is that minus the same for the planner alone (action
    0) run alongside on its own trajectory, and the return is ``J(planner) - J(x)`` (USD).

    ## Starting State

    The episode starts at the first slot of ``split`` or, with ``random_start=True``, at a uniform
    slot of the split such that the episode fits; cumulative footprints start at 0.

    ## Episode End

    ``terminated`` after ``episode_length`` slots (default: the whole split). Never truncated.

    ## Info

The same keys at ``reset`` and after every step, all numpy values (so every toolchain can record
them): ``t`` (int64, the scenario slot), ``energy_cost_usd``, ``unserved_load``, ``slot_cost_usd``,
``phi_usd`` (Φ_t) (float64 scalars; 0 at reset), ``facility_energy_mwh`` (float64 (N,)) and
``routing`` (the executed x[i, j, k] of the slot, load units, float64 (N, J, K); zeros at reset).
The episode's metrics: :meth:`episode_report` (an :class:`equiglb.ledger.Report`) and
:meth:`episode_metrics` (a flat dict of floats), after the last step.

    ## Arguments

    ``gymnasium.make("equiglb/EquitableGLB-v0", **kwargs)`` with the keyword options of the signature of
    ``__init__`` (and ``render_mode``: "ansi" or "rgb_array"). Their meaning and defaults are declared in
    :class:`equiglb.envs.options.EnvOptions` and, for an action mode's own options, in the mode's options
    dataclass (:class:`~equiglb.envs.slot.EGLBResidualOptions`, :class:`~equiglb.envs.slot.MPCResidualOptions`);
    docs/env.md has the table. With
    ``action_mode="eglb_residual"`` action 0 reproduces ``OnlineEGLBPolicy(eta_scale=..., z_max_scale=...)``;
    with ``action_mode="mpc_residual"`` it reproduces ``MPCPolicy(horizon=..., forecast_model=...,
    seed=forecast_seed)`` (its MPC reads the environment's forecasts within the episode, so the legacy
    ``forecast_noise`` must be 0; with ``mpc_tail_days``, the same policy with a history tail over the whole
    scenario: ``tail_days``, ``tail_weight``, ``tail_block_hours``, ``history``, ``tail_strict=False``,
    docs/baselines.md).
    Another action mode refuses a mode's options unless they are at their defaults. An unknown option raises
    :class:`~equiglb.validate.UnknownOptionError` naming it. ``gymnasium.make``'s own ``max_episode_steps`` is
    refused at the first ``reset`` unless it equals ``episode_length``: the episode length is an option of the
    environment (it sets the observation scales), not a wrapper's cut.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, *, scenario: str | Scenario = "synthetic",
                 data_dir: os.PathLike | str | None = None, scenario_options: Mapping[str, Any] | None = None,
                 split: str | None = None, q: float | None = None, mu_carbon: float | None = None,
                 mu_water: float | None = None, mu_social: float | None = None, mu_latency: float | None = None,
                 unserved_penalty_usd: float | None = None, region_weights: Sequence[float] | None = None,
                 episode_length: int | None = None, random_start: bool = False, action_mode: str = "site_scores",
                 forecast_horizon: int = 0, forecast_model: str | Forecaster | None = None, forecast_seed: int = 0,
                 forecast_scale: float = 1.0, forecast_correction: str | None = None, forecast_noise: float = 0.0,
                 forecast_errors: bool = False,
                 include_prev_action: bool = False,
                 eglb_eta_scale: float = 1.0, eglb_z_max_scale: float = 1.0,
                 eglb_residual_max_factor: float = RESIDUAL_MAX_FACTOR, mpc_horizon: int = MPC_HORIZON_H,
                 mpc_residual_max_factor: float = RESIDUAL_MAX_FACTOR, mpc_residual_observation: str = "full",
                 mpc_residual_reward: str = "cost", mpc_tail_days: int = 0, mpc_tail_weight: float = 1.0,
                 mpc_tail_block_hours: int = 1, mpc_warm_start: bool = False, **unknown: Any):
        """The options above, declared (with their meaning) by :class:`equiglb.envs.options.EnvOptions` and the
        action modes' options (docs/env.md, "Keyword arguments"; tests/test_env_options.py pins this signature to them),
        resolved by :meth:`EnvConfig.make`."""
        given = locals()
        self.config = cfg = EnvConfig.make(**{name: given[name] for name in OPTION_ORDER}, **unknown)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, "
                             f"got {render_mode!r}")
        self.render_mode = render_mode
        self.scenario = cfg.scenario
        self.weights = cfg.weights
        #: the one source of forecasts of the observation and of the MPC of the residual mode (None: perfect
        #: forecasts, or the legacy noise); its forecasts are a function of (forecast_seed, slot) only
        self.forecaster = cfg.forecaster()
        self.slot = make_slot_step(self.scenario, self.weights, cfg.action_mode, None, cfg.mode_options,
                                   self.forecaster)
        self.action_map = self.slot.action_map
        self.ledger = self.slot.ledger
        self.observer = Observer(cfg, self.slot.dim, self.slot.extra_dim, DUAL_OBS_CAP, self.forecaster)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.slot.dim,), dtype=np.float32)
        self.observation_space = self.observer.space
        self.start = cfg.split_start
        self.elapsed = 0
        self._schedule = np.zeros((cfg.episode_length, self.scenario.N, self.scenario.J, self.scenario.K))
        self._prev_action = np.zeros(self.slot.dim)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; ``options={"start": slot}`` fixes the first slot (within the split)."""
        options = check_reset_options(options, ("start",))     # before any state changes: a typo is named
        super().reset(seed=seed)
        cfg = self.config
        limit = outer_time_limit(self)     # gymnasium.make(..., max_episode_steps=n) adds a TimeLimit outside us
        if limit is not None and limit != cfg.episode_length:
            raise ValueError(f"max_episode_steps={limit} is not supported: pass episode_length={limit} "
                             f"to gymnasium.make instead (this episode has episode_length={cfg.episode_length})")
        start = cfg.draw_start(self.np_random, (options or {}).get("start"))
        self.start = start
        self.elapsed = 0
        self.slot.reset(start, cfg.episode_length)
        self._schedule = np.zeros_like(self._schedule)    # a new buffer: routings in earlier infos stay valid
        self._prev_action = np.zeros(self.slot.dim)
        return self._obs(), self._info(start, np.zeros(self._schedule.shape[1:]))

    def step(self, action: np.ndarray):
        """Route slot t with ``action``; returns (obs, reward USD, terminated, truncated, info)."""
        if self.elapsed >= self.config.episode_length:
            raise RuntimeError("step() called after the episode ended; call reset()")
        t = self.start + self.elapsed
        reward, x = self.slot.step(t, action)
        self._schedule[self.elapsed] = x
        self.elapsed += 1
        if self.config.include_prev_action:
            self._prev_action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        terminated = self.elapsed >= self.config.episode_length
        return self._obs(), reward, terminated, False, self._info(t, self._schedule[self.elapsed - 1])

    def _info(self, t: int, x: np.ndarray) -> dict[str, Any]:
        led = self.ledger
        return {"t": np.int64(t), "energy_cost_usd": np.float64(led.energy_cost_usd),
                "facility_energy_mwh": np.array(led.facility_energy_mwh),
                "unserved_load": np.float64(led.unserved_load), "slot_cost_usd": np.float64(led.slot_cost_usd),
                "phi_usd": np.float64(led.phi_usd), "routing": x}

    def _obs(self) -> np.ndarray:
        # after the last slot the observation shows the last slot's signals with elapsed = 1
        elapsed = self.elapsed
        t = self.start + min(elapsed, self.config.episode_length - 1)
        led = self.ledger
        social = led.social() if led.tracks_social else None
        return self.observer.observe(t, elapsed, led.footprint, social, self._prev_action, self.np_random,
                                     self.slot.extra())

    # ------------------------------------------------------------------ accounting helpers
    def window(self) -> Scenario:
        """The current episode's window of the scenario (with the environment's weights)."""
        return self.scenario.window(self.start, self.config.episode_length)

    def executed_schedule(self) -> np.ndarray:
        """The routing executed so far in this episode, x[t, i, j, k] (load units; a copy)."""
        return self._schedule[:self.elapsed].copy()

    def episode_report(self) -> Report:
        """``equiglb.ledger.evaluate`` of the finished episode's executed schedule."""
        if self.elapsed < self.config.episode_length:
            raise RuntimeError(f"episode_report() needs a finished episode ({self.elapsed} of "
                               f"{self.config.episode_length} slots stepped)")
        return evaluate(self.window(), self._schedule, self.weights)

    def episode_metrics(self) -> dict[str, float]:
        """The finished episode's metrics as a flat dict of floats (:meth:`episode_report` ``.row()``
        without its text column), e.g. ``objective`` (USD), ``carbon_max_t``, ``water_par``."""
        return {k: float(v) for k, v in self.episode_report().row().items() if k != "scenario"}

    # ------------------------------------------------------------------ rendering
    def render(self):
        """``"ansi"``: a text table of the slot; ``"rgb_array"``: footprint bars and a routing heatmap."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "ansi":
            return self._render_ansi()
        return self._render_rgb()

    def _render_ansi(self) -> str:
        sc, led = self.scenario, self.ledger
        t = self.start + max(self.elapsed - 1, 0)
        x = self._schedule[max(self.elapsed - 1, 0)]
        load = (x @ sc.energy_per_unit).sum(axis=1)
        lines = [f"slot {t} ({sc.timestamps[t]} UTC), step {self.elapsed}/{self.config.episode_length}, "
                 f"Phi {float(led.phi_usd):.2f} USD, unserved {float(led.unserved_load):.4f}",
                 f"{'site':<14}{'USD/MWh':>9}{'t/MWh':>8}{'m3/MWh':>8}{'IT MWh':>8}{'cap':>7}{'C t':>9}{'W m3':>10}"]
        for i, name in enumerate(sc.site_names):
            lines.append(f"{name[:13]:<14}{sc.price[t, i]:>9.2f}{sc.carbon[t, i]:>8.3f}{sc.water[t, i]:>8.3f}"
                         f"{load[i]:>8.3f}{sc.capacity[i]:>7.2f}{led.carbon_t[i]:>9.3f}{led.water_m3[i]:>10.3f}")
        return "\n".join(lines) + "\n"

    def _render_rgb(self) -> np.ndarray:
        # matplotlib loads only when an rgb_array is rendered; no pyplot, no display, backend untouched
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415

        sc, led = self.scenario, self.ledger
        x = self._schedule[max(self.elapsed - 1, 0)]
        fig = Figure(figsize=(8, 3.2), dpi=80)
        canvas = FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2)
        idx = np.arange(sc.N)
        ax1.bar(idx - 0.2, led.carbon_t / self.observer.cum_carbon_scale, 0.4, label="carbon")
        ax1.bar(idx + 0.2, led.water_m3 / self.observer.cum_water_scale, 0.4, label="water")
        ax1.set_title("regional footprints (scaled)")
        ax1.set_xlabel("site")
        ax1.legend(fontsize=7)
        ax2.imshow(x.sum(axis=2), aspect="auto", cmap="viridis")
        ax2.set_title("routing x[i, j] (load units)")
        ax2.set_xlabel("region j")
        ax2.set_ylabel("site i")
        fig.tight_layout()
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()
