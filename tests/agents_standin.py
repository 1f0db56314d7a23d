"""A tiny stand-in GLB environment for the agent tests (importable with --gym-packages).

It follows the interface of equiglb's environments (keyword options ``scenario``, ``split``,
``episode_length``, ``random_start``; ``info["routing"]`` holds the executed x of the slot) and
accounts through :class:`equiglb.ledger.Ledger`, so its return is -J(x). N = 3 sites, J = 3
regions, K = 1, T = 96 h with splits train (0, 64) and test (64, 32).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from equiglb.ledger import Ledger
from equiglb.scenario import Scenario

ENV_ID = "equiglb-test/StandIn-v0"


def standin_scenario(T: int = 96, seed: int = 0) -> Scenario:
    """A small random scenario with a diurnal demand and three sites of different cost and carbon."""
    rng = np.random.default_rng(seed)
    h = np.arange(T)
    demand = 1.0 + 0.5 * np.sin(2 * np.pi * h / 24)[:, None] + 0.1 * rng.random((T, 3))
    price = np.array([30.0, 50.0, 80.0]) * (1 + 0.2 * rng.random((T, 3)))
    carbon = np.array([0.8, 0.4, 0.1]) * (1 + 0.2 * rng.random((T, 3)))
    water = np.array([2.0, 1.0, 3.0]) * (1 + 0.2 * rng.random((T, 3)))
    return Scenario(name="standin", demand=demand, price=price, carbon=carbon, water=water,
                    capacity=np.full(3, 3.0), mask=np.ones((3, 3), bool),
                    site_names=("a", "b", "c"), region_names=("a", "b", "c"),
                    timestamps=np.datetime64("2022-01-01T00", "h") + h,
                    splits={"train": (0, 64), "test": (64, 32)})


class StandInEnv(gym.Env):
    """Softmax routing over sites per region; obs = current traces, cumulative footprints, time."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: Scenario | str = "standin", split: str = "train", episode_length: int | None = 24,
                 random_start: bool = True, action_mode: str = "softmax", data_dir=None):
        full = scenario if isinstance(scenario, Scenario) else standin_scenario()
        self.scenario = full
        self.window = full.split(split) if split in full.splits else full
        self.episode_length = min(episode_length or self.window.T, self.window.T)
        self.random_start = random_start
        N, J = full.N, full.J
        self.action_space = gym.spaces.Box(-1.0, 1.0, (N * J,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (J + 3 * N + 2 * N + 1,), np.float32)
        self.ledger = Ledger(self.window)

    def _obs(self) -> np.ndarray:
        w, t = self.window, min(self.start + self.t, self.window.T - 1)
        return np.concatenate([w.demand[t], w.price[t] / 100, w.carbon[t], w.water[t],
                               self.ledger.carbon_t, self.ledger.water_m3 / 10,
                               [self.t / self.episode_length]]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        hi = self.window.T - self.episode_length
        self.start = int(self.np_random.integers(0, hi + 1)) if (self.random_start and hi > 0) else 0
        self.t = 0
        self.ledger.reset(self.start, self.episode_length)
        return self._obs(), {}

    def step(self, action):
        w = self.window
        tt = self.start + self.t
        a = np.asarray(action, np.float64).reshape(w.N, w.J) * 3.0
        share = np.exp(a - a.max(axis=0))
        share /= share.sum(axis=0)
        x = (share * w.demand[tt][None, :])[:, :, None]
        reward = self.ledger.step(tt, x)
        self.t += 1
        done = self.t >= self.episode_length
        return self._obs(), reward, False, done, {"routing": x}


if ENV_ID not in gym.envs.registry:
    gym.register(ENV_ID, entry_point=StandInEnv)
