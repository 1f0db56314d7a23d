"""The stable-baselines3 algorithms equiglb trains, and their hyperparameters (rl-baselines3-zoo files).

Hyperparameters live in ``src/equiglb/agents/hyperparams/<algo>.yml``, in the format of
rl-baselines3-zoo, which reads the same files unchanged
(``python -m rl_zoo3.train --algo ppo --env <id> --gym-packages equiglb -conf <file>``):

* one **complete** entry per registered env id (RL Zoo uses an id's entry *instead of* ``default``
  and never merges the two; the shipped files write the shared values once with a YAML anchor,
  ``default: &ppo`` and ``<<: *ppo``, which ``yaml.safe_load`` expands);
* ``default``: the entry of an env id that has none (both this module and RL Zoo fall back to it);
* keys: the keyword arguments of the SB3 algorithm, plus ``n_timesteps`` (training budget in env
  steps, summed over the parallel envs), ``policy`` (``MlpPolicy``), ``n_envs``, ``normalize``
  (``true``/``false`` or a string of :class:`~stable_baselines3.common.vec_env.VecNormalize` keyword
  arguments such as ``"dict(norm_obs=True, norm_reward=False)"``; its ``gamma`` is the algorithm's),
  ``env_kwargs`` (keyword arguments of ``gymnasium.make``) and, for off-policy algorithms,
  ``noise_type`` (``normal`` or ``ornstein-uhlenbeck``) with ``noise_std``;
* ``policy_kwargs`` (and ``normalize``, ``replay_buffer_kwargs``, ``rollout_buffer_kwargs``) given as a
  string are Python expressions, as in RL Zoo: ``"dict(net_arch=[64, 64], activation_fn=nn.Tanh)"``.
  This module evaluates them without ``eval``: only ``dict(...)``, literals, the activation classes
  ``nn.<Name>`` / ``th.nn.<Name>`` and the optimizers ``th.optim.<Name>`` (the names RL Zoo's
  namespace provides) are allowed;
* ``learning_rate`` and ``clip_range`` may be RL Zoo's linear schedule ``lin_<initial value>``.

:func:`load_hyperparams` validates every value by name (type and range) before any work is done
and raises :class:`HyperparamError` naming the key and the value. RL Zoo-only keys that
``train.py`` would not apply (``env_wrapper``, ``vec_env_wrapper``, ``callback``, ``frame_stack``,
``monitor_kwargs``) are refused rather than ignored.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3 import A2C, DDPG, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from torch import nn

from equiglb.validate import KeyValueError, parse_key_values, yaml_load_unique

__all__ = ["ALGOS", "OFF_POLICY", "SPECIAL_KEYS", "DEFAULT_ENTRY", "HyperparamError", "LinearSchedule",
           "hyperparams_path", "read_hyperparams_file", "load_hyperparams", "parse_overrides",
           "eval_kwargs_string", "accepted_keys", "build_model_kwargs", "check_device"]

#: Algorithm name -> stable-baselines3 class. All of them handle a continuous (Box) action space.
ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3, "ddpg": DDPG}
#: Algorithms with a replay buffer (saved with checkpoints so that resuming is exact).
OFF_POLICY = frozenset({"sac", "td3", "ddpg"})
#: Keys of a hyperparameter entry that are not keyword arguments of the algorithm (as in RL Zoo).
SPECIAL_KEYS = ("n_timesteps", "policy", "n_envs", "normalize", "env_kwargs", "noise_type", "noise_std")
#: The entry used for an env id without its own entry.
DEFAULT_ENTRY = "default"
#: Keys that are valid somewhere but not in an equiglb hyperparameter entry, with the reason.
REFUSED_KEYS = {
    "env_wrapper": "an RL Zoo-only key that equiglb's train.py would not apply",
    "vec_env_wrapper": "an RL Zoo-only key that equiglb's train.py would not apply",
    "callback": "an RL Zoo-only key that equiglb's train.py would not apply",
    "frame_stack": "an RL Zoo-only key that equiglb's train.py would not apply",
    "monitor_kwargs": "an RL Zoo-only key that equiglb's train.py would not apply",
    "seed": "set by the command line (--seed)",
    "device": "set by the command line (--device)",
    "verbose": "set by the command line (-v/--verbose)",
    "tensorboard_log": "set by the command line (-tb/--tensorboard-log)",
    "env": "the environment is --env (and env_kwargs)",
    "action_noise": "write noise_type and noise_std instead",
    "replay_buffer_class": "equiglb's observations are flat vectors: the default replay buffer is the one to use",
    "rollout_buffer_class": "equiglb's observations are flat vectors: the default rollout buffer is the one to use",
    "_init_setup_model": "a private argument of stable-baselines3",
}
#: Policies that need images or dict observations; equiglb's observation is a flat Box vector.
_IMAGE_OR_DICT_POLICIES = {"CnnPolicy": "it is for image observations",
                           "MultiInputPolicy": "it is for dict observations"}
#: Names a kwargs string may use: activation classes (``nn.X`` / ``th.nn.X``) and optimizers (``th.optim.X``).
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    name: getattr(nn, name) for name in ("Tanh", "ReLU", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Softplus",
                                         "SELU", "CELU", "Mish", "ReLU6", "Hardtanh", "Hardswish", "Identity")}
_OPTIMIZERS: dict[str, type[th.optim.Optimizer]] = {"Adam": th.optim.Adam, "AdamW": th.optim.AdamW,
                                                      "RMSprop": th.optim.RMSprop, "SGD": th.optim.SGD}
_NAMESPACE: dict[str, Any] = {
    **{f"nn.{k}": v for k, v in _ACTIVATIONS.items()}, **{f"th.nn.{k}": v for k, v in _ACTIVATIONS.items()},
    **{f"th.optim.{k}": v for k, v in _OPTIMIZERS.items()}, "RMSpropTFLike": RMSpropTFLike}
_SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf")
_SCHEDULE_RE = re.compile(r"^lin_(.+)$")


class HyperparamError(ValueError):
    """A hyperparameter file or override is invalid; the message names the key and value."""


class LinearSchedule:
    """RL Zoo's ``lin_<initial_value>``: ``progress_remaining * initial_value`` (1 at the start, 0 at the end)."""

    def __init__(self, initial_value: float) -> None:
        self.initial_value = float(initial_value)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial_value

    def __repr__(self) -> str:
        return f"lin_{self.initial_value}"


def hyperparams_path(algo: str) -> Path:
    """The YAML file holding the default hyperparameters of ``algo``."""
    return Path(str(resources.files("equiglb.agents") / "hyperparams" / f"{algo}.yml"))


def check_device(device: str) -> str:
    """``device`` if it is ``auto`` or a torch device present on this machine (``cpu``, ``cuda[:N]``, ``mps``);
    else :class:`HyperparamError` naming it (SB3 would silently fall back to the CPU for a missing GPU)."""
    if device == "auto":
        return device
    try:
        d = th.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise HyperparamError(f"--device {device!r}: not a torch device ({exc})") from exc
    if d.type == "cuda":
        if not th.cuda.is_available():
            raise HyperparamError(f"--device {device!r}: CUDA is not available on this machine; use --device cpu")
        if (d.index or 0) >= th.cuda.device_count():
            raise HyperparamError(f"--device {device!r}: only {th.cuda.device_count()} CUDA device(s) here")
    elif d.type == "mps":
        if not th.backends.mps.is_available():
            raise HyperparamError(f"--device {device!r}: MPS is not available on this machine; use --device cpu")
    elif d.type != "cpu":
        raise HyperparamError(f"--device {device!r}: use cpu, cuda[:n], mps or auto")
    return device


# ---------------------------------------------------------------------- reading
def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` (or RL Zoo's ``key:value``) items; values are read as YAML.

    ``n_steps=256`` gives an int, ``gamma=0.995`` a float, ``policy_kwargs=dict(net_arch=[32, 32])`` a
    kwargs string (as in the files), ``normalize=false`` a bool. The separator is the first ``=`` or
    ``:``. Dotted keys set nested values: ``env_kwargs.episode_length=48``.
    """
    try:
        flat = parse_key_values(items, separators="=:")
    except KeyValueError as exc:
        raise HyperparamError(f"hyperparameter override {exc.item!r}: {exc.why}") from exc
    out: dict[str, Any] = {}
    for key, value in flat.items():
        target = out
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
            if not isinstance(target, dict):
                raise HyperparamError(f"hyperparameter override {key}=...: {p!r} is not a mapping")
        target[leaf] = value
    return out


def read_hyperparams_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every entry of a hyperparameter file (env id -> entry), as ``yaml.safe_load`` (and RL Zoo) read it."""
    path = Path(path)
    try:
        data = yaml_load_unique(path.read_text())         # a key written twice is refused, not the last kept
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise HyperparamError(f"cannot read hyperparameter file {path}: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise HyperparamError(f"hyperparameter file {path}: expected a mapping of env id -> entry, got {data!r}")
    for env_id, entry in data.items():
        if not isinstance(entry, dict):
            raise HyperparamError(f"hyperparameter file {path}: entry {env_id!r} must be a mapping, got {entry!r}")
    return data


def eval_kwargs_string(text: str, key: str = "policy_kwargs") -> dict[str, Any]:
    """Evaluate an RL Zoo kwargs string such as ``"dict(net_arch=[64, 64], activation_fn=nn.Tanh)"``.

    The same result as RL Zoo's ``eval`` for every string it accepts within the allowed names
    (``dict``, literals, ``nn.<activation>``, ``th.nn.<activation>``, ``th.optim.<optimizer>``,
    ``RMSpropTFLike``); anything else (other names, calls, operators) raises :class:`HyperparamError`
    naming ``key`` and the text, so no arbitrary code runs.
    """
    def fail(why: str) -> HyperparamError:
        return HyperparamError(f"{key}={text!r}: {why}; write a Python expression such as "
                               "\"dict(net_arch=[64, 64], activation_fn=nn.Tanh)\" using only dict(...), literals, "
                               f"nn.<activation> or th.nn.<activation> ({', '.join(_ACTIVATIONS)}), "
                               f"th.optim.<{'|'.join(_OPTIMIZERS)}> and RMSpropTFLike")

    def dotted(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            head = dotted(node.value)
            return None if head is None else f"{head}.{node.attr}"
        return None

    def ev(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)) \
                and not isinstance(node.operand.value, bool):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        if isinstance(node, ast.List):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            if any(k is None or not (isinstance(k, ast.Constant) and isinstance(k.value, str)) for k in node.keys):
                raise fail("dict keys must be strings")
            return {ev(k): ev(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            if node.args or any(kw.arg is None for kw in node.keywords):
                raise fail("dict(...) takes keyword arguments only")
            return {kw.arg: ev(kw.value) for kw in node.keywords}
        name = dotted(node)
        if name is not None:
            if name in _NAMESPACE:
                return _NAMESPACE[name]
            if name.startswith("torch."):
                raise fail(f"{name!r} is not defined for RL Zoo (it evaluates with nn and th): write "
                           f"{name.replace('torch.', 'th.', 1)!r}")
            raise fail(f"name {name!r} is not allowed")
        raise fail(f"{ast.unparse(node)!r} is not allowed")

    if not isinstance(text, str):
        raise HyperparamError(f"{key}={text!r}: expected a kwargs string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise fail(f"not a Python expression ({exc.msg})") from exc
    value = ev(tree.body)
    if not isinstance(value, dict):
        raise fail("it must evaluate to a dict")
    return value


# ---------------------------------------------------------------------- validation rules
Rule = Callable[[Any], "str | None"]  # None if the value is valid, else what it must be


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
        and math.isfinite(v)


def _integer(lo: int, extra: tuple[int, ...] = ()) -> Rule:
    text = f"an integer >= {lo}" + "".join(f" or {e}" for e in extra)
    return lambda v: None if _is_int(v) and (v >= lo or v in extra) else text


def _number(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
            hi_open: bool = False) -> Rule:
    if lo is not None and hi is not None:
        text = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'} (a number)"
    elif lo is not None:
        text = f"a number {'>' if lo_open else '>='} {lo:g}"
    else:
        text = "a number"

    def rule(v: Any) -> str | None:
        if not _is_num(v):
            return text
        if lo is not None and (v < lo or (lo_open and v == lo)):
            return text
        if hi is not None and (v > hi or (hi_open and v == hi)):
            return text
        return None
    return rule


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false (a YAML boolean, not a string or a number)"


def _schedule(v: Any) -> str | None:
    text = "a number > 0 or a linear schedule 'lin_<number > 0>'"
    if isinstance(v, str) and (m := _SCHEDULE_RE.match(v)):
        try:
            return None if math.isfinite(float(m.group(1))) and float(m.group(1)) > 0 else text
        except ValueError:
            return text
    return _number(0, lo_open=True)(v) and text


def _optional(rule: Rule) -> Rule:
    return lambda v: None if v is None else (rule(v) and f"null or {rule(v)}")


def _choice(*options: Any) -> Rule:
    return lambda v: None if isinstance(v, str) and v in options else f"one of {list(options)}"


def _sac_ent_coef(v: Any) -> str | None:
    if v == "auto" or (isinstance(v, str) and v.startswith("auto_") and (_float(v[5:]) or 0) > 0):
        return None
    return _number(0)(v) and "a number >= 0, 'auto' or 'auto_<initial value > 0>'"


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _train_freq(v: Any) -> str | None:
    ok = _is_int(v) and v >= 1 or (isinstance(v, (list, tuple)) and len(v) == 2 and _is_int(v[0]) and v[0] >= 1
                                   and v[1] in ("step", "episode"))
    return None if ok else "an integer >= 1 or [n >= 1, 'step' | 'episode']"


def _n_timesteps(v: Any) -> str | None:
    ok = (_is_int(v) or (isinstance(v, float) and math.isfinite(v) and v.is_integer())) and v >= 1
    return None if ok else "a whole number >= 1 (environment steps)"


def _mapping(v: Any) -> str | None:
    return None if isinstance(v, dict) and all(isinstance(k, str) for k in v) else "a mapping of name -> value"


_RULES: dict[str, Rule] = {
    # RL Zoo's special keys
    "n_timesteps": _n_timesteps, "n_envs": _integer(1), "env_kwargs": _mapping,
    "noise_type": _choice("normal", "ornstein-uhlenbeck"), "noise_std": _number(0, lo_open=True),
    # on-policy
    "learning_rate": _schedule, "n_steps": _integer(1), "batch_size": _integer(1), "n_epochs": _integer(1),
    "gamma": _number(0, 1), "gae_lambda": _number(0, 1), "clip_range": _schedule,
    "clip_range_vf": _optional(_schedule), "normalize_advantage": _boolean, "ent_coef": _number(0),
    "vf_coef": _number(0), "max_grad_norm": _number(0, lo_open=True), "use_sde": _boolean,
    "sde_sample_freq": _integer(1, extra=(-1,)), "target_kl": _optional(_number(0, lo_open=True)),
    "stats_window_size": _integer(1), "rms_prop_eps": _number(0, lo_open=True), "use_rms_prop": _boolean,
    # off-policy
    "buffer_size": _integer(1), "learning_starts": _integer(0), "tau": _number(0, 1, lo_open=True),
    "train_freq": _train_freq, "gradient_steps": _integer(1, extra=(-1,)), "optimize_memory_usage": _boolean,
    "target_update_interval": _integer(1), "policy_delay": _integer(1),
    "target_policy_noise": _number(0), "target_noise_clip": _number(0), "use_sde_at_warmup": _boolean,
    "target_entropy": lambda v: None if v == "auto" or _is_num(v) else "'auto' or a number",
}
_ALGO_RULES: dict[str, dict[str, Rule]] = {
    "ppo": {"batch_size": _integer(2)},    # SB3 asserts batch_size > 1 (advantage normalization)
    "sac": {"ent_coef": _sac_ent_coef},
}
_POLICY_KWARG_RULES: dict[str, Rule] = {
    "log_std_init": _number(), "ortho_init": _boolean, "full_std": _boolean, "use_expln": _boolean,
    "squash_output": _boolean, "share_features_extractor": _boolean, "normalize_images": _boolean,
    "n_critics": _integer(1), "clip_mean": _number(0, lo_open=True), "use_sde": _boolean,
    "optimizer_kwargs": _mapping, "features_extractor_kwargs": _mapping,
    "activation_fn": lambda v: None if v in _ACTIVATIONS.values() else
    f"one of nn.{', nn.'.join(_ACTIVATIONS)} (a class, as in \"dict(activation_fn=nn.Tanh)\")",
    "optimizer_class": lambda v: None if v in (*_OPTIMIZERS.values(), RMSpropTFLike) else
    f"one of th.optim.{', th.optim.'.join(_OPTIMIZERS)}, RMSpropTFLike",
}
_NORMALIZE_RULES: dict[str, Rule] = {"norm_obs": _boolean, "norm_reward": _boolean,
                                     "clip_obs": _number(0, lo_open=True), "clip_reward": _number(0, lo_open=True),
                                     "epsilon": _number(0, lo_open=True)}


def accepted_keys(algo: str) -> list[str]:
    """Every key an entry of ``algo`` may hold: the SB3 constructor's arguments and RL Zoo's special keys."""
    cls = ALGOS[algo]
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "policy"} - set(REFUSED_KEYS)
    special = set(SPECIAL_KEYS) - ({"noise_type", "noise_std"} if algo not in OFF_POLICY else set())
    return sorted(params | special)


def _net_arch(v: Any, algo: str) -> str | None:
    def layers(x: Any) -> bool:
        return isinstance(x, list) and all(_is_int(n) and n >= 1 for n in x)
    heads = ("pi", "qf") if algo in OFF_POLICY else ("pi", "vf")
    if layers(v) or (isinstance(v, dict) and v and set(v) <= set(heads) and all(layers(x) for x in v.values())):
        return None
    return f"a list of layer widths >= 1 such as [64, 64], or dict({'=[...], '.join(heads)}=[...])"


# ---------------------------------------------------------------------- loading
def load_hyperparams(algo: str, env_id: str, overrides: dict[str, Any] | None = None,
                     path: Path | None = None) -> dict[str, Any]:
    """Hyperparameters of ``algo`` for ``env_id``, validated and resolved.

    The entry of ``env_id`` in ``path`` (default :func:`hyperparams_path`), or the ``default`` entry
    when the file has none for ``env_id`` (as RL Zoo does), updated by ``overrides`` (``env_kwargs``,
    ``normalize`` and ``policy_kwargs`` mappings are merged key by key). Resolved: ``policy_kwargs``
    a dict (activation and optimizer classes), ``normalize`` ``False``/``True`` or a dict of
    VecNormalize keyword arguments, ``n_timesteps`` an int. Raises :class:`HyperparamError` naming
    the key and the value (and the file and entry, or "override") before any work is done.
    """
    if algo not in ALGOS:
        raise HyperparamError(f"unknown algorithm {algo!r}; available: {sorted(ALGOS)}")
    path = hyperparams_path(algo) if path is None else Path(path)
    data = read_hyperparams_file(path)
    entry = env_id if env_id in data else DEFAULT_ENTRY
    if entry not in data:
        raise HyperparamError(f"hyperparameter file {path} has no entry for {env_id!r} and no {DEFAULT_ENTRY!r} "
                              f"entry; its entries: {sorted(data)}")
    overrides = copy.deepcopy(overrides or {})
    for key in ("policy_kwargs", "normalize"):   # a mapping override updates the file's string
        if isinstance(overrides.get(key), dict) and isinstance(data[entry].get(key), str):
            data[entry][key] = eval_kwargs_string(data[entry][key], key)
    hp = _merge(data[entry], overrides)

    def where(key: str) -> str:
        return "override" if key in overrides else f"{path}, entry {entry!r}"
    return _resolve(algo, hp, where)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k in ("env_kwargs", "normalize", "policy_kwargs"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve(algo: str, hp: dict[str, Any], where: Callable[[str], str]) -> dict[str, Any]:
    """Check every key and value of ``hp`` by name; return it with kwargs strings evaluated."""
    def bad(key: str, value: Any, must: str) -> HyperparamError:
        return HyperparamError(f"{algo}: {key} must be {must}, got {value!r} ({where(key.split('.')[0])})")

    refused = {k: REFUSED_KEYS[k] for k in hp if k in REFUSED_KEYS}
    if refused:
        k, why = next(iter(refused.items()))
        raise HyperparamError(f"{algo}: {k}={hp[k]!r} is not allowed in a hyperparameter entry: {why} ({where(k)})")
    valid = accepted_keys(algo)
    unknown = sorted(set(hp) - set(valid))
    if unknown:
        shown = ", ".join(f"{k}={hp[k]!r}" for k in unknown)
        hint = " (noise_type/noise_std are for the off-policy algorithms sac, td3, ddpg)" \
            if {"noise_type", "noise_std"} & set(unknown) else ""
        raise HyperparamError(f"{algo}: unknown hyperparameter(s) {unknown} [{shown}] ({where(unknown[0])}){hint}; "
                              f"{ALGOS[algo].__name__} accepts {valid}")
    for key in ("n_timesteps", "policy"):
        if key not in hp:
            raise HyperparamError(f"{algo}: the entry has no {key!r} (RL Zoo needs every entry complete) "
                                  f"({where(key)})")
    rules = {**_RULES, **_ALGO_RULES.get(algo, {})}
    for key, value in hp.items():
        if key in rules and (must := rules[key](value)):
            raise bad(key, value, must)

    policy = hp["policy"]
    if policy != "MlpPolicy":
        why = _IMAGE_OR_DICT_POLICIES.get(policy, "it is not a policy of stable-baselines3") \
            if isinstance(policy, str) else "it is not a policy name"
        raise bad("policy", policy, f"'MlpPolicy' ({policy!r} is refused: {why}; equiglb's observation is a flat "
                                    "vector of numbers)")
    hp["n_timesteps"] = int(hp["n_timesteps"])
    hp["normalize"] = _resolve_normalize(hp.get("normalize", False), bad)
    for key in ("replay_buffer_kwargs", "rollout_buffer_kwargs", "policy_kwargs"):
        if isinstance(hp.get(key), str):
            try:
                hp[key] = eval_kwargs_string(hp[key], key)
            except HyperparamError as exc:
                raise HyperparamError(f"{algo}: {exc} ({where(key)})") from exc
        if key in hp and hp[key] is not None and (must := _mapping(hp[key])):
            raise bad(key, hp[key], must)
    if hp.get("policy_kwargs") is not None:
        hp["policy_kwargs"] = _resolve_policy_kwargs(algo, hp["policy_kwargs"], bad)

    # keys that are valid alone but not together
    if ("noise_type" in hp) != ("noise_std" in hp):
        given, missing = ("noise_type", "noise_std") if "noise_type" in hp else ("noise_std", "noise_type")
        raise bad(missing, None, f"given with {given}={hp[given]!r} (RL Zoo needs both)")
    n_envs = hp.get("n_envs", 1)
    if algo == "ppo":
        rollout = hp.get("n_steps", 2048) * n_envs
        if rollout < 2:
            raise bad("n_steps", hp.get("n_steps"), f"such that n_steps * n_envs > 1 (n_envs={n_envs})")
        if hp.get("batch_size", 64) > rollout:
            raise bad("batch_size", hp.get("batch_size"),
                      f"<= n_steps * n_envs = {rollout} (the rollout it samples mini-batches from)")
    if algo in OFF_POLICY:
        if hp.get("batch_size", 256) > hp.get("buffer_size", 1_000_000):
            raise bad("batch_size", hp.get("batch_size"), f"<= buffer_size = {hp.get('buffer_size', 1_000_000)}")
        if hp.get("learning_starts", 100) >= hp["n_timesteps"]:
            raise bad("learning_starts", hp.get("learning_starts", 100),
                      f"< n_timesteps = {hp['n_timesteps']} (else no gradient step is ever taken)")
    return hp


def _resolve_normalize(value: Any, bad: Callable[[str, Any, str], HyperparamError]) -> bool | dict[str, Any]:
    must = "true, false or VecNormalize keyword arguments such as \"dict(norm_obs=True, norm_reward=False)\""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = eval_kwargs_string(value, "normalize")
        except HyperparamError as exc:
            raise bad("normalize", value, must) from exc
    if not isinstance(value, dict):
        raise bad("normalize", value, must)
    if "gamma" in value:
        raise bad("normalize.gamma", value["gamma"], "absent: VecNormalize's gamma is the algorithm's gamma "
                                                     "(RL Zoo sets it so)")
    for k, v in value.items():
        if k not in _NORMALIZE_RULES:
            raise bad(f"normalize.{k}", v, f"one of the VecNormalize options {sorted(_NORMALIZE_RULES)}")
        if must_k := _NORMALIZE_RULES[k](v):
            raise bad(f"normalize.{k}", v, must_k)
    return value or True    # RL Zoo normalizes for any mapping, even an empty one


def _resolve_policy_kwargs(algo: str, value: Any,
                           bad: Callable[[str, Any, str], HyperparamError]) -> dict[str, Any]:
    policy_cls = ALGOS[algo].policy_aliases["MlpPolicy"]
    valid = sorted(set(inspect.signature(policy_cls.__init__).parameters)
                   - {"self", "observation_space", "action_space", "lr_schedule", "features_extractor_class"})
    for k, v in value.items():
        if k not in valid:
            raise bad(f"policy_kwargs.{k}", v, f"one of the options of {algo}'s MlpPolicy {valid}")
        if isinstance(v, str) and k in ("activation_fn", "optimizer_class"):
            raise bad(f"policy_kwargs.{k}", v, "a class, not a string: write policy_kwargs as a string, "
                                               f"\"dict({k}=nn.Tanh)\" (RL Zoo evaluates only strings)")
        must = _net_arch(v, algo) if k == "net_arch" else _POLICY_KWARG_RULES[k](v) if k in _POLICY_KWARG_RULES \
            else None
        if must:
            raise bad(f"policy_kwargs.{k}", v, must)
    return value


# ---------------------------------------------------------------------- model construction
def build_model_kwargs(algo: str, hp: dict[str, Any], n_actions: int) -> dict[str, Any]:
    """Keyword arguments for ``ALGOS[algo](hp["policy"], env, **kwargs)`` from a resolved entry
    (:func:`load_hyperparams`), as RL Zoo builds them: ``lin_`` schedules, ``train_freq`` as a tuple,
    the action noise of ``noise_type``/``noise_std`` over ``n_actions`` action dimensions."""
    kwargs = {k: copy.deepcopy(v) for k, v in hp.items() if k not in SPECIAL_KEYS}
    for key in _SCHEDULE_KEYS:
        if isinstance(kwargs.get(key), str) and (m := _SCHEDULE_RE.match(kwargs[key])):
            kwargs[key] = LinearSchedule(float(m.group(1)))
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = eval_kwargs_string(kwargs["policy_kwargs"])
    noise = hp.get("noise_type")
    if noise is not None and algo in OFF_POLICY:
        mean, sigma = np.zeros(n_actions), float(hp["noise_std"]) * np.ones(n_actions)
        kwargs["action_noise"] = NormalActionNoise(mean=mean, sigma=sigma) if noise == "normal" \
            else OrnsteinUhlenbeckActionNoise(mean=mean, sigma=sigma)
    return kwargs
