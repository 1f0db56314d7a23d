"""Gymnasium environments of equiglb: the single env, the native vector env, the SB3 adapter."""

from equiglb.envs.actions import ActionMap
from equiglb.envs.glb_env import EquitableGLBEnv
from equiglb.envs.registration import ENV_IDS, register_envs
from equiglb.envs.replay import replay
from equiglb.envs.slot import ACTION_MODE_REGISTRY, ACTION_MODES
from equiglb.envs.vector import EquitableGLBVectorEnv

register_envs()

__all__ = ["EquitableGLBEnv", "EquitableGLBVectorEnv", "ActionMap", "ACTION_MODES", "ACTION_MODE_REGISTRY",
           "ENV_IDS", "register_envs", "replay"]
