"""Gymnasium environments of equiglb: the single env, the native vector env, the SB3 adapter.

Importing the package registers the ids (:mod:`equiglb.envs.registration`, light); the environment classes
load on first use of their names (PEP 562), or when ``gymnasium.make`` imports their entry point, so that
``import equiglb`` (and every command line's ``--help``) does not import the environment's stack.
"""

from typing import TYPE_CHECKING, Any

from equiglb.envs.actions import ActionMap
from equiglb.envs.registration import ENV_IDS, register_envs
from equiglb.envs.replay import replay

if TYPE_CHECKING:
    from equiglb.envs.glb_env import EquitableGLBEnv
    from equiglb.envs.slot import ACTION_MODE_REGISTRY, ACTION_MODES
    from equiglb.envs.vector import EquitableGLBVectorEnv

register_envs()

__all__ = ["EquitableGLBEnv", "EquitableGLBVectorEnv", "ActionMap", "ACTION_MODES", "ACTION_MODE_REGISTRY",
           "ENV_IDS", "register_envs", "replay"]


def __getattr__(name: str) -> Any:
    """The environment classes and the action-mode registry, imported on first use."""
    if name == "EquitableGLBEnv":
        from equiglb.envs.glb_env import EquitableGLBEnv  # noqa: PLC0415

        return EquitableGLBEnv
    if name == "EquitableGLBVectorEnv":
        from equiglb.envs.vector import EquitableGLBVectorEnv  # noqa: PLC0415

        return EquitableGLBVectorEnv
    if name in ("ACTION_MODES", "ACTION_MODE_REGISTRY"):
        from equiglb.envs import slot  # noqa: PLC0415

        return getattr(slot, name)
    raise AttributeError(f"module 'equiglb.envs' has no attribute {name!r}")
