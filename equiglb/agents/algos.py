"""The stable-baselines3 algorithms equiglb trains, and their hyperparameters (rl-baselines3-zoo layout).

Hyperparameters live in ``equiglb/agents/hyperparams/<algo>.yml``: one top-level key per
environment id plus a ``default`` entry used for ids without their own entry. Each entry holds the
keyword arguments of the SB3 algorithm plus the zoo's special keys:

* ``n_timesteps``: training budget (environment steps, summed over the parallel envs);
* ``policy``: SB3 policy name (``MlpPolicy``);
* ``n_envs``: number of parallel environments;
* ``normalize``: ``true``/``false`` or a dict of :class:`~stable_baselines3.common.vec_env.VecNormalize`
  keyword arguments (``norm_obs``, ``norm_reward``, ``clip_obs``, ``gamma`` ...);
* ``env_kwargs``: keyword arguments of ``gymnasium.make`` (scenario options);
* ``policy_kwargs``: a dict; ``activation_fn`` may be a name (``tanh``, ``relu``, ``elu``);
* ``noise_type``/``noise_std``: action noise of off-policy algorithms (``normal`` or ``ornstein-uhlenbeck``).
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3 import A2C, DDPG, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["ALGOS", "OFF_POLICY", "SPECIAL_KEYS", "HyperparamError", "hyperparams_path", "load_hyperparams",
           "parse_overrides", "build_model_kwargs"]

#: Algorithm name -> stable-baselines3 class. All of them handle a continuous (Box) action space.
ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3, "ddpg": DDPG}
#: Algorithms with a replay buffer (saved with checkpoints so that resuming is exact).
OFF_POLICY = frozenset({"sac", "td3", "ddpg"})
#: Keys of a hyperparameter entry that are not keyword arguments of the algorithm.
SPECIAL_KEYS = ("n_timesteps", "policy", "n_envs", "normalize", "env_kwargs", "noise_type", "noise_std",
                "torch_num_threads")

_ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU", "gelu": "GELU"}


class HyperparamError(ValueError):
    """A hyperparameter file or override is invalid; the message names the key and value."""


def hyperparams_path(algo: str) -> Path:
    """The YAML file holding the default hyperparameters of ``algo``."""
    return Path(str(resources.files("equiglb.agents") / "hyperparams" / f"{algo}.yml"))


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` (or the zoo's ``key:value``) items; values are read as YAML.

    ``n_steps=256`` gives an int, ``gamma=0.995`` a float, ``policy_kwargs={net_arch: [64, 64]}`` a
    dict, ``normalize=false`` a bool. Dotted keys set nested values: ``env_kwargs.episode_length=48``.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        sep = "=" if "=" in item else ":" if ":" in item else None
        if sep is None:
            raise HyperparamError(f"hyperparameter override {item!r} is not of the form key=value")
        key, raw = item.split(sep, 1)
        key = key.strip()
        if not key:
            raise HyperparamError(f"hyperparameter override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise HyperparamError(f"hyperparameter override {item!r}: value {raw!r} is not valid YAML ({exc})")
        target = out
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
            if not isinstance(target, dict):
                raise HyperparamError(f"hyperparameter override {item!r}: {p!r} is not a mapping")
        target[leaf] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k in ("env_kwargs", "normalize"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_hyperparams(algo: str, env_id: str, overrides: dict[str, Any] | None = None,
                     path: Path | None = None) -> dict[str, Any]:
    """Hyperparameters of ``algo`` for ``env_id``: the file's ``default`` entry, updated by the
    entry of ``env_id`` (if any), updated by ``overrides``. Raises :class:`HyperparamError`."""
    if algo not in ALGOS:
        raise HyperparamError(f"unknown algorithm {algo!r}; available: {sorted(ALGOS)}")
    path = hyperparams_path(algo) if path is None else Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HyperparamError(f"cannot read hyperparameter file {path}: {exc}") from exc
    if "default" not in data:
        raise HyperparamError(f"hyperparameter file {path} has no 'default' entry")
    hp = _merge(data["default"] or {}, data.get(env_id) or {})
    hp = _merge(hp, overrides or {})
    _check(algo, hp)
    return hp


def _check(algo: str, hp: dict[str, Any]) -> None:
    cls = ALGOS[algo]
    import inspect

    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "env", "policy"}
    unknown = sorted(set(hp) - accepted - set(SPECIAL_KEYS))
    if unknown:
        raise HyperparamError(f"{algo}: unknown hyperparameter(s) {unknown}; {cls.__name__} accepts "
                              f"{sorted(accepted | set(SPECIAL_KEYS))}")
    n = hp.get("n_timesteps")
    if n is not None and (not isinstance(n, (int, float)) or n < 1):
        raise HyperparamError(f"{algo}: n_timesteps must be a positive number, got {n!r}")
    n_envs = hp.get("n_envs", 1)
    if not isinstance(n_envs, int) or n_envs < 1:
        raise HyperparamError(f"{algo}: n_envs must be a positive integer, got {n_envs!r}")
    norm = hp.get("normalize", False)
    if not isinstance(norm, (bool, dict)):
        raise HyperparamError(f"{algo}: normalize must be true/false or a mapping, got {norm!r}")
    if hp.get("noise_type") not in (None, "normal", "ornstein-uhlenbeck"):
        raise HyperparamError(f"{algo}: noise_type must be 'normal' or 'ornstein-uhlenbeck', "
                              f"got {hp['noise_type']!r}")
    for key in ("learning_rate", "gamma"):
        v = hp.get(key)
        if v is not None and not isinstance(v, (int, float)):
            raise HyperparamError(f"{algo}: {key} must be a number, got {v!r}")
    if "gamma" in hp and not 0 <= hp["gamma"] <= 1:
        raise HyperparamError(f"{algo}: gamma must be in [0, 1], got {hp['gamma']!r}")


def build_model_kwargs(algo: str, hp: dict[str, Any], n_actions: int) -> dict[str, Any]:
    """Keyword arguments for ``ALGOS[algo](policy, env, **kwargs)`` from a hyperparameter entry."""
    import torch

    kwargs = {k: copy.deepcopy(v) for k, v in hp.items() if k not in SPECIAL_KEYS}
    pk = kwargs.get("policy_kwargs")
    if isinstance(pk, dict) and isinstance(pk.get("activation_fn"), str):
        name = pk["activation_fn"].lower().removeprefix("nn.")
        if name not in _ACTIVATIONS:
            raise HyperparamError(f"{algo}: policy_kwargs.activation_fn {pk['activation_fn']!r} is not one of "
                                  f"{sorted(_ACTIVATIONS)}")
        pk["activation_fn"] = getattr(torch.nn, _ACTIVATIONS[name])
    noise = hp.get("noise_type")
    if noise is not None and algo in OFF_POLICY:
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        std = float(hp.get("noise_std", 0.1))
        cls = NormalActionNoise if noise == "normal" else OrnsteinUhlenbeckActionNoise
        kwargs["action_noise"] = cls(mean=np.zeros(n_actions), sigma=std * np.ones(n_actions))
    return kwargs
