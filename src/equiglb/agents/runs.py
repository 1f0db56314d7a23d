"""Run folders of ``train.py``: layout, configuration, model files and user errors.

Every other module of :mod:`equiglb.agents` imports this one at the top; it imports none of them
(only :mod:`equiglb.agents.algos` for the algorithm registry).

Layout of a run folder ``<log-folder>/<algo>/<env>_<n>/`` (``n`` one above the largest existing,
never reused):

* ``config.yml``        the exact configuration: flags, resolved hyperparameters, seeds, versions
* ``model.zip``         the trained SB3 model (with its optimizer state)
* ``vecnormalize.pkl``  observation/reward normalization statistics (when ``normalize`` is on)
* ``replay_buffer.pkl`` the replay buffer (off-policy algorithms)
* ``best_model.zip``    best model of the periodic evaluations (``+ best_vecnormalize.pkl``)
* ``checkpoints/``      ``ckpt_<steps>_steps.zip`` + ``ckpt_vecnormalize_<steps>_steps.pkl``,
  ``ckpt_replay_buffer_<steps>_steps.pkl``, ``ckpt_resume_<steps>_steps.pkl`` (random-number
  generator states and environment replay log); the zip is written last, so a checkpoint whose zip
  exists is complete
* ``tb/``               TensorBoard logs (one curve, continued by ``--resume``)
* ``eval/``             ``evaluations.npz`` (periodic evaluations), the comparison table
  (``table.csv``, ``table.json``) and the plots (PNG) of :mod:`equiglb.agents.report`
* ``eval_<env>_<split>[_<k>]/`` tables of later ``--eval-only`` runs (a new folder each time)
"""

from __future__ import annotations

import json
import os
import platform
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cvxpy
import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
import yaml

import equiglb
from equiglb.agents.algos import ALGOS

__all__ = ["UserError", "check_agent_options", "CKPT_RE", "env_slug", "new_run_dir", "new_output_dir", "versions",
           "plain", "now_utc", "read_config", "write_config", "run_config", "check_model_file", "detect_algo",
           "companions", "checkpoint_paths", "latest_checkpoint", "check_writable"]

CKPT_RE = re.compile(r"ckpt_(\d+)_steps\.zip$")


class UserError(Exception):
    """A problem with the command line or its inputs; reported as one ``error:`` line, exit code 2."""


def env_slug(env_id: str) -> str:
    """A folder-safe name of an env id: ``equiglb/EquitableGLB-v0`` -> ``equiglb-EquitableGLB-v0``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", env_id)


def check_writable(path: str | os.PathLike, option: str) -> None:
    """Raise :class:`UserError` unless ``path`` is, or can be created as, a writable folder."""
    p = Path(path).absolute()
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{option} {str(path)!r}: {str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{option} {str(path)!r}: folder {str(probe)!r} is not writable")


def _numbered(root: Path, stem: str, first_suffix: bool) -> Path:
    """Create and return ``root/<stem>_<n>`` (or ``root/<stem>`` first) that did not exist before."""
    root.mkdir(parents=True, exist_ok=True)
    pat = re.compile(re.escape(stem) + r"_(\d+)$")
    taken = [int(m.group(1)) for p in root.iterdir() if (m := pat.match(p.name))]
    if not first_suffix and (root / stem).exists():
        taken.append(1)
    n = max(taken + [0]) + 1
    if not first_suffix and n == 1:
        try:
            (root / stem).mkdir()
            return root / stem
        except FileExistsError:
            n = 2
    while True:
        path = root / f"{stem}_{n}"
        try:
            path.mkdir()  # never reuse a folder, even if another process just made it
            return path
        except FileExistsError:
            n += 1


def new_run_dir(log_folder: str | os.PathLike, algo: str, env_id: str) -> Path:
    """Create and return ``<log_folder>/<algo>/<env>_<n>`` with n one above the largest existing."""
    return _numbered(Path(log_folder) / algo, env_slug(env_id), first_suffix=True)


def new_output_dir(parent: Path, stem: str) -> Path:
    """Create and return ``parent/<stem>``, or ``parent/<stem>_2``, ``_3``... if taken (never overwritten)."""
    return _numbered(parent, stem, first_suffix=False)


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that determine a run's numbers."""
    return {"python": platform.python_version(), "equiglb": equiglb.__version__,
            "stable_baselines3": stable_baselines3.__version__, "gymnasium": gym.__version__,
            "torch": torch.__version__, "numpy": np.__version__, "cvxpy": cvxpy.__version__,
            "platform": platform.platform()}


def plain(obj: Any) -> Any:
    """YAML-safe copy (tuples to lists, numpy scalars to Python, classes and functions to their Python
    expression, :func:`python_expression`, anything else to its repr)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool):
        return obj
    for t in (int, float, str):
        if isinstance(obj, t):
            return t(obj)
    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
        return python_expression(obj)
    return repr(obj)


def python_expression(obj: Any) -> str:
    """``obj`` as the Python expression RL Zoo's hyperparameter strings use (names ``dict``, ``nn``, ``th``):
    ``torch.nn.Tanh`` -> ``nn.Tanh``, ``torch.optim.Adam`` -> ``th.optim.Adam``, another class or function ->
    ``module.Name``, a mapping -> ``dict(key=value, ...)``, anything else -> its ``repr``."""
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in obj):
            return "dict(" + ", ".join(f"{k}={python_expression(v)}" for k, v in obj.items()) + ")"
        return "{" + ", ".join(f"{k!r}: {python_expression(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list):
        return "[" + ", ".join(python_expression(v) for v in obj) + "]"
    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
        module, name = getattr(obj, "__module__", "") or "", obj.__qualname__
        if module.startswith("torch.nn"):
            return f"nn.{name}"
        if module.startswith("torch.optim"):
            return f"th.optim.{name}"
        return f"{module}.{name}" if module else name
    if isinstance(obj, np.generic):
        return repr(obj.item())
    return repr(obj)


def recorded_hyperparams(hp: dict[str, Any]) -> dict[str, Any]:
    """A resolved entry as config.yml records it: real values, never a ``<class ...>`` repr. The
    ``*_kwargs`` mappings that hold classes (``policy_kwargs`` with ``activation_fn=nn.Tanh``) become the
    expression string the hyperparameter files use, which train.py and RL Zoo read back unchanged."""
    out = dict(hp)
    for key in ("policy_kwargs", "replay_buffer_kwargs", "rollout_buffer_kwargs"):
        v = out.get(key)
        if isinstance(v, dict) and any(isinstance(x, type) or callable(x) for x in v.values()):
            out[key] = python_expression(v)
    return out


def now_utc() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_config(run_dir: Path) -> dict[str, Any]:
    """The ``config.yml`` of a run folder (raises :class:`UserError` when absent or unreadable)."""
    path = run_dir / "config.yml"
    if not path.is_file():
        raise UserError(f"{str(run_dir)!r}: no config.yml there (not a train.py run folder)")
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{str(path)!r} is not readable YAML: {exc}") from exc
    if not isinstance(cfg, dict):
        raise UserError(f"{str(path)!r} is not a mapping of options")
    return cfg


def write_config(run_dir: Path, cfg: dict[str, Any]) -> None:
    """Write ``config.yml`` atomically (a reader never sees half a file)."""
    tmp = run_dir / "config.yml.tmp"
    tmp.write_text(yaml.safe_dump(plain(cfg), sort_keys=False))
    os.replace(tmp, run_dir / "config.yml")


def run_config(model_zip: Path) -> dict[str, Any]:
    """The ``config.yml`` of the run a model belongs to (``{}`` when there is none or it is unreadable)."""
    for d in (model_zip.parent, model_zip.parent.parent):
        p = d / "config.yml"
        if p.is_file():
            try:
                cfg = yaml.safe_load(p.read_text())
            except (OSError, yaml.YAMLError):
                return {}
            return cfg if isinstance(cfg, dict) else {}
    return {}


def check_model_file(path: str | os.PathLike, option: str = "model file") -> Path:
    """``path`` as a Path after checking it is a readable SB3 model zip (raises :class:`UserError`).

    A run folder stands for its ``model.zip``.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "model.zip"
    if not p.is_file():
        raise UserError(f"{option} {str(p)!r} does not exist")
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            if "data" not in names or "policy.pth" not in names:
                raise UserError(f"{option} {str(p)!r} is a zip without SB3 'data' and 'policy.pth': "
                                "not a stable-baselines3 model")
            json.loads(z.read("data"))
            if z.testzip() is not None:
                raise UserError(f"{option} {str(p)!r} is corrupt (a member fails its CRC check)")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError(f"{option} {str(p)!r} is not a readable stable-baselines3 zip: {exc}") from exc
    return p


def detect_algo(model_zip: Path) -> str:
    """The algorithm of a saved SB3 model: the one its run's config.yml records, else told from the
    parameters stored in the zip (DDPG is TD3 with ``policy_delay=1`` and ``target_noise_clip=0``)."""
    cfg = run_config(model_zip)
    if cfg.get("algo") in ALGOS:
        return str(cfg["algo"])
    with zipfile.ZipFile(model_zip) as z:
        data = json.loads(z.read("data"))
    if "clip_range" in data:
        return "ppo"
    if "target_entropy" in data:
        return "sac"
    if "policy_delay" in data:
        ddpg = data.get("policy_delay") == 1 and not data.get("target_noise_clip")
        return "ddpg" if ddpg else "td3"
    if "normalize_advantage" in data or "rms_prop_eps" in data:
        return "a2c"
    raise UserError(f"model file {str(model_zip)!r}: cannot tell which algorithm saved it; give --algo")


def companions(model_zip: Path) -> tuple[Path | None, Path | None]:
    """(vecnormalize.pkl, replay_buffer.pkl) saved with ``model_zip`` (checkpoint or final), if present."""
    m = CKPT_RE.search(model_zip.name)
    d = model_zip.parent
    if m:
        vn, rb = d / f"ckpt_vecnormalize_{m.group(1)}_steps.pkl", d / f"ckpt_replay_buffer_{m.group(1)}_steps.pkl"
    elif model_zip.name == "best_model.zip":
        vn, rb = d / "best_vecnormalize.pkl", d / "replay_buffer.pkl"
    else:
        vn, rb = d / "vecnormalize.pkl", d / "replay_buffer.pkl"
    return (vn if vn.is_file() else None), (rb if rb.is_file() else None)


def checkpoint_paths(run_dir: Path, steps: int) -> dict[str, Path]:
    """Files of the checkpoint at ``steps``: ``model``, ``vecnormalize``, ``replay_buffer``, ``resume``."""
    d = run_dir / "checkpoints"
    return {"model": d / f"ckpt_{steps}_steps.zip", "vecnormalize": d / f"ckpt_vecnormalize_{steps}_steps.pkl",
            "replay_buffer": d / f"ckpt_replay_buffer_{steps}_steps.pkl",
            "resume": d / f"ckpt_resume_{steps}_steps.pkl"}


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    """(steps, zip) of the complete checkpoint with the most steps in ``run_dir/checkpoints``, or None."""
    found = [(int(m.group(1)), p) for p in (run_dir / "checkpoints").glob("ckpt_*_steps.zip")
             if (m := CKPT_RE.search(p.name))]
    return max(found) if found else None


def check_agent_options(model: Path, given: dict[str, Any], flag: str = "model") -> None:
    """The options of ``--env-kwargs`` (``given``) that set what the agent observes or how its action acts
    (:data:`equiglb.envs.core.AGENT_OPTIONS`) must equal those ``model`` was trained with (its run's id's registered
    defaults, then its run's ``env_kwargs``; the environment's defaults where neither sets one): a model is
    evaluated with its own options, so another value would be reported without being used. A bare model zip
    (no ``config.yml``) runs with the options given. ``flag`` names the model's argument in the error."""
    from equiglb.envs.core import AGENT_OPTIONS, OPTION_DEFAULTS  # noqa: PLC0415 - envs.core loads the scenarios
    from equiglb.envs.registration import agent_settings  # noqa: PLC0415

    recorded = run_config(model)
    if "env_kwargs" not in recorded:
        return
    trained = {**agent_settings(recorded.get("env_id")), **(recorded.get("env_kwargs") or {})}
    for key in AGENT_OPTIONS:
        value = trained.get(key, OPTION_DEFAULTS.get(key))
        if key in given and given[key] != value:
            raise UserError(f"--env-kwargs {key}={given[key]!r}: {flag} {str(model)!r} was trained with "
                            f"{key}={value!r}, and a model is evaluated with the options it was trained with; "
                            f"drop {key} from --env-kwargs (or give the trained value)")
