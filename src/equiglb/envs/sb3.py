"""stable-baselines3 ``VecEnv`` adapter for the native vector environment.

Example::

    from stable_baselines3 import PPO
    from equiglb.envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("equiglb/EquitableGLB-v0", num_envs=16, seed=0)
    PPO("MlpPolicy", venv).learn(10_000)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from equiglb.envs.vector import EquitableGLBVectorEnv

__all__ = ["SB3VecEnv", "make_sb3_vec_env"]


class SB3VecEnv(VecEnv):
    """Presents an :class:`EquitableGLBVectorEnv` as a stable-baselines3 ``VecEnv``.

    SB3 semantics: when the (synchronous) episodes end, ``step_wait`` returns ``dones`` all True,
    the first observations of the next episodes, and per copy ``info["terminal_observation"]``,
    ``info["episode"] = {"r": return USD, "l": length}`` (as SB3's Monitor reports it) and
    ``info["TimeLimit.truncated"] = False``. Seeds set by :meth:`seed` apply at the next reset.
    """

    def __init__(self, venv: EquitableGLBVectorEnv):
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._empty: list[dict[str, Any]] = [{} for _ in range(venv.num_envs)]

    def reset(self):
        seeds = self._seeds
        seed = None if seeds[0] is None else [int(s) for s in seeds if s is not None]
        opts = self._options[0] or None
        obs, infos = self.venv.reset(seed=seed, options=opts)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called before step_async()")
        obs, rewards, term, trunc, infos = self.venv.step(self._actions)
        dones = term | trunc
        if dones.any():
            L = self.venv.config.episode_length
            ret = infos["episode_return_usd"]
            out = [{"terminal_observation": obs[b], "TimeLimit.truncated": False,
                    "episode": {"r": float(ret[b]), "l": L}} for b in range(self.num_envs)]
            obs = self.reset()
        else:
            out = [{} for _ in range(self.num_envs)]
        return obs, rewards.astype(np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        res = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [res for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def make_sb3_vec_env(env_id: str = "equiglb/EquitableGLB-v0", num_envs: int = 1, seed: int | None = None,
                     **kwargs: Any) -> SB3VecEnv:
    """``gymnasium.make_vec(env_id, num_envs, "vector_entry_point", **kwargs)`` as an SB3 VecEnv."""
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    if not isinstance(venv, EquitableGLBVectorEnv):
        raise TypeError(f"{env_id!r} is not an equiglb id: its vector entry point made a {type(venv).__name__}")
    sb3 = SB3VecEnv(venv)
    if seed is not None:
        sb3.seed(seed)
    return sb3
