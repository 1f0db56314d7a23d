"""Gymnasium environments of equiglb: the single env, the native vector env, the SB3 adapter."""

from equiglb.envs.actions import ACTION_MODES, ActionMap
from equiglb.envs.glb_env import EquitableGLBEnv
from equiglb.envs.registration import ENV_IDS, register_envs
from equiglb.envs.replay import replay
from equiglb.envs.vector import EquitableGLBVectorEnv

register_envs()

__all__ = ["EquitableGLBEnv", "EquitableGLBVectorEnv", "ActionMap", "ACTION_MODES", "ENV_IDS",
           "register_envs", "replay"]
