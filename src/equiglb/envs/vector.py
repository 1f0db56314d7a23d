"""Native vector environment: B copies of :class:`~equiglb.envs.glb_env.EquitableGLBEnv` stepped at once.

Every copy shares the scenario and options; the step is the action mode's slot step
(:data:`equiglb.envs.slot.ACTION_MODE_REGISTRY`, built with ``batch_size=B``) and the
observation writer, one set of numpy operations over the batch axis with no Python loop over copies.
All copies have the same episode length, so they end together; the vector env then auto-resets
them on the next ``step`` (Gymnasium's ``NEXT_STEP`` mode: that step ignores the actions and
returns the first observations, reward 0, not terminated).

Seeding follows :class:`gymnasium.vector.SyncVectorEnv`: ``reset(seed=s)`` seeds copy b with ``s + b``
(or with ``seed[b]`` for a list), so copy b's start slots equal those of a single env reset with the
same seed. Forecast noise (if any) is drawn from one batch generator (seeded with ``s``), so with
``forecast_noise > 0`` the copies' observations differ from the single env's noise draws; everything
else, rewards included, is equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from equiglb.envs.core import EnvConfig, Observer
from equiglb.envs.slot import DUAL_OBS_CAP, make_slot_step
from equiglb.validate import OptionError, check_reset_options

__all__ = ["EquitableGLBVectorEnv"]


class EquitableGLBVectorEnv(VectorEnv):
    """B copies of the equity-aware GLB environment in numpy.

    Args:
        num_envs: number of copies B.
        render_mode: must be None: the vector env does not render (any other value is refused).
        **kwargs: the options of :class:`~equiglb.envs.glb_env.EquitableGLBEnv`.

    Info, at reset and after every step, the single env's keys with a leading axis of B: ``t``,
    ``energy_cost_usd``, ``facility_energy_mwh`` (B, N), ``unserved_load``, ``slot_cost_usd``,
    ``phi_usd``, ``routing`` (B, N, J, K). At the end of an episode also ``episode_return_usd`` (B,)
    and the cumulative ``carbon_t`` (B, N), ``water_m3`` (B, N) and ``social`` (B, J) of the episode.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **kwargs: Any):
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}: the native vector env does not render; "
                             "render a single env (gymnasium.make) instead")
        if kwargs.get("max_episode_steps") is not None:
            raise ValueError(f"max_episode_steps={kwargs['max_episode_steps']} is not supported: pass "
                             f"episode_length={kwargs['max_episode_steps']} instead")
        kwargs.pop("max_episode_steps", None)
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = B = int(num_envs)
        self.config = cfg = EnvConfig.make(**kwargs)
        self.render_mode = None
        self.scenario = cfg.scenario
        self.weights = cfg.weights
        #: the one source of forecasts of the copies' observations and of the MPC of the residual mode
        self.forecaster = cfg.forecaster()
        self.slot = make_slot_step(self.scenario, self.weights, cfg.action_mode, B, cfg.mode_options,
                                   self.forecaster)
        self.action_map = self.slot.action_map
        self.ledger = self.slot.ledger
        self.observer = Observer(cfg, self.slot.dim, self.slot.extra_dim, DUAL_OBS_CAP, self.forecaster)
        self.single_action_space = spaces.Box(-1.0, 1.0, shape=(self.slot.dim,), dtype=np.float32)
        self.single_observation_space = self.observer.space
        self.action_space = batch_space(self.single_action_space, B)
        self.observation_space = batch_space(self.single_observation_space, B)
        self._rngs = [seeding.np_random(None)[0] for _ in range(B)]
        self._np_random, self._np_random_seed = seeding.np_random(None)
        self.starts = np.full(B, cfg.split_start, dtype=np.int64)
        self.elapsed = 0
        self._returns = np.zeros(B)
        self._prev_action = np.zeros((B, self.slot.dim))
        self._needs_reset = True

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every copy; ``options={"start": slots}`` fixes the first slots (int or (B,))."""
        B, cfg = self.num_envs, self.config
        options = check_reset_options(options, ("start",))     # before any state changes: a typo is named
        if options.get("start") is not None:
            try:
                shape: tuple[int, ...] | None = np.shape(options["start"])
            except ValueError:                           # a ragged list
                shape = None
            if shape is None or len(shape) > 1 or (len(shape) == 1 and shape[0] != B):
                raise OptionError(f"reset(options={{'start': ...}}): expected one slot or a list of {B} slots (one "
                                  f"per copy), got {'a ragged list' if shape is None else f'shape {shape}'}")
        if seed is not None:
            seeds = [seed + b for b in range(B)] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != B:
                raise ValueError(f"reset(seed=...) got {len(seeds)} seeds for {B} copies")
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        given = (options or {}).get("start")
        if given is not None:                    # one slot for every copy, or one per copy; each checked
            given = np.broadcast_to(np.asarray(given, dtype=object), (B,))
            starts = np.array([cfg.draw_start(r, s) for r, s in zip(self._rngs, given)], dtype=np.int64)
        else:
            starts = np.array([cfg.draw_start(r) for r in self._rngs], dtype=np.int64)
        self.starts = starts
        self.elapsed = 0
        self._returns[:] = 0.0
        self._prev_action[:] = 0.0
        self.slot.reset(starts, cfg.episode_length)
        self._needs_reset = False
        return self._obs(), self._info(starts.copy(), np.zeros((B,) + self.scenario.allowed.shape))

    def step(self, actions: np.ndarray):
        """Step every copy with ``actions`` (B, dim); returns (obs, rewards, terminations, truncations, infos)."""
        B = self.num_envs
        if self._needs_reset:
            obs, info = self.reset()
            zeros = np.zeros(B, dtype=bool)
            return obs, np.zeros(B), zeros, zeros.copy(), info
        t = self.starts + self.elapsed
        rewards, x = self.slot.step(t, actions)
        self._returns += rewards
        self.elapsed += 1
        if self.config.include_prev_action:
            self._prev_action = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        done = self.elapsed >= self.config.episode_length
        infos = self._info(t, x)
        led = self.ledger
        if done:
            infos.update(episode_return_usd=self._returns.copy(), carbon_t=led.carbon_t.copy(),
                         water_m3=led.water_m3.copy(), social=led.social().copy())
            self._needs_reset = True
        terminations = np.full(B, done)
        return self._obs(), rewards, terminations, np.zeros(B, dtype=bool), infos

    def _info(self, t: np.ndarray, x: np.ndarray) -> dict[str, Any]:
        led = self.ledger                 # the slot's quantities are new arrays every step; Φ is state: copied
        return {"t": t, "energy_cost_usd": led.energy_cost_usd, "facility_energy_mwh": led.facility_energy_mwh,
                "unserved_load": led.unserved_load, "slot_cost_usd": led.slot_cost_usd,
                "phi_usd": np.array(led.phi_usd), "routing": x}

    def _obs(self) -> np.ndarray:
        L = self.config.episode_length
        t = self.starts + min(self.elapsed, L - 1)
        led = self.ledger
        social = led.social() if led.tracks_social else None
        return self.observer.observe(t, self.elapsed, led.footprint, social, self._prev_action, self._np_random,
                                     self.slot.extra())
