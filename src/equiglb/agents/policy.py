""":class:`AgentPolicy`: a saved stable-baselines3 model as an equiglb :class:`OnlinePolicy`.

The agent routes slot by slot *through the environment* (same action map, same capacity repair as
in training) and records ``info["routing"]``, the executed x of each slot. Its schedule is then
accounted by the ledger exactly like a baseline's, so its row in a comparison table is on the same
scale as every other row.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from equiglb.agents.algos import ALGOS
from equiglb.agents.runs import UserError, check_model_file, companions, detect_algo, run_config
from equiglb.baselines.policy import OnlinePolicy
from equiglb.envs.registration import agent_settings
from equiglb.evaluation import WINDOW_KEYS, EnvPolicy
from equiglb.scenario import Scenario, Weights

__all__ = ["AgentPolicy", "EnsemblePolicy", "load_model", "normalizes_obs"]

def load_model(path: Path, algo: str, device: str = "cpu", option: str = "model file") -> Any:
    """``ALGOS[algo].load(path)``; a file that does not load raises :class:`UserError` naming it."""
    saved = detect_algo(path)
    if saved != algo:
        raise UserError(f"{option} {str(path)!r} was trained with {saved}, not {algo}")
    try:
        return ALGOS[algo].load(str(path), device=device)
    except Exception as exc:  # a damaged member, a pickled class that no longer exists, ...
        raise UserError(f"{option} {str(path)!r} does not load as a {algo} model: "
                        f"{type(exc).__name__}: {exc}") from exc


def normalizes_obs(cfg: dict[str, Any]) -> bool:
    """Whether the run of ``cfg`` (its ``config.yml``) trained on normalized observations."""
    norm = (cfg.get("hyperparams") or {}).get("normalize", False)
    if isinstance(norm, str):  # rl-baselines3-zoo writes the VecNormalize kwargs as a string
        return norm.strip().lower() not in ("false", "0", "") and "norm_obs=false" not in norm.replace(" ", "")
    if isinstance(norm, dict):
        return bool(norm.get("norm_obs", True))
    return bool(norm)


class AgentPolicy(EnvPolicy):
    """A trained SB3 agent acting in an equiglb environment built on the window to evaluate (an
    :class:`~equiglb.evaluation.EnvPolicy` whose action is the model's, on normalized observations).

    Args:
        model_path: the SB3 model zip.
        env_id: the registered environment id the agent was trained on (default: from its config.yml).
        env_kwargs: options of ``gymnasium.make`` (action mode, observation options, ...); the window
            options (scenario, split, episode_length, random_start) are set by :meth:`reset`.
        vecnormalize_path: observation-normalization statistics (default: ``vecnormalize.pkl`` or the
            checkpoint's stats next to the model, if present).
        name: row label (default: the algorithm name).
        deterministic: act with the mean action (True) or sample.
        algo: the algorithm (default: detected).
        reference: the whole scenario the agent was trained on. The environment scales its
            observations by statistics of the scenario it is given, so when the window handed to
            :meth:`reset` is a window of ``reference`` the environment is built on ``reference``
            (restricted to that window) and the agent sees observations on its training scale.
    """

    def __init__(self, model_path: str | Path, env_id: str | None = None, env_kwargs: dict[str, Any] | None = None,
                 vecnormalize_path: str | Path | None = None, name: str | None = None, deterministic: bool = True,
                 algo: str | None = None, device: str = "cpu", reference: Scenario | None = None):
        self.model_path = check_model_file(model_path)
        cfg = run_config(self.model_path)
        self.algo = algo or detect_algo(self.model_path)
        found_id = env_id or cfg.get("env_id")
        if found_id is None:
            raise UserError(f"model file {str(self.model_path)!r}: no environment id given and no config.yml "
                            "next to the model")
        self.env_id: str = str(found_id)
        kw = {**agent_settings(cfg.get("env_id")), **(cfg.get("env_kwargs") or {})} if env_kwargs is None \
            else dict(env_kwargs)
        self.env_kwargs = {k: v for k, v in kw.items() if k not in WINDOW_KEYS}
        self.model = load_model(self.model_path, self.algo, device)
        self._check_spaces(reference)
        if vecnormalize_path is None:
            vecnormalize_path = companions(self.model_path)[0]
            if vecnormalize_path is None and normalizes_obs(cfg):
                raise UserError(f"model file {str(self.model_path)!r} was trained on normalized observations but "
                                f"its statistics ({self.model_path.stem.replace('model', 'vecnormalize')}.pkl) "
                                "are missing next to it; give them with vecnormalize_path")
            if vecnormalize_path is None and not cfg:
                print(f"warning: {self.model_path}: no config.yml and no vecnormalize.pkl next to it; "
                      "the agent sees raw (unnormalized) observations", file=sys.stderr)
        self.obs_rms = None
        if vecnormalize_path is not None:
            try:
                with open(vecnormalize_path, "rb") as f:
                    vn = pickle.load(f)
                norm_obs = bool(vn.norm_obs)
            except Exception as exc:
                raise UserError(f"normalization statistics {str(vecnormalize_path)!r} are not readable: "
                                f"{type(exc).__name__}: {exc}") from exc
            self.obs_rms = vn if norm_obs else None
        self.deterministic = deterministic
        super().__init__(self._act, self.env_id, self.env_kwargs, name=name or self.algo, reference=reference)

    def _check_spaces(self, scenario: Scenario | None) -> None:
        """The model's observation and action shapes are those of the environment on ``scenario``
        (default: the env id's own scenario); else :class:`UserError`."""
        kw = dict(self.env_kwargs) if scenario is None else {**self.env_kwargs, "scenario": scenario}
        try:
            env = gym.make(self.env_id, **kw)
        except Exception as exc:
            raise UserError(f"cannot make environment {self.env_id!r} with {self.env_kwargs}: {exc}") from exc
        try:
            for what, mine, env_space in (("observation", self.model.observation_space, env.observation_space),
                                          ("action", self.model.action_space, env.action_space)):
                if mine.shape != env_space.shape:
                    on = self.env_id if scenario is None else f"{self.env_id} on scenario {scenario.name!r}"
                    raise UserError(f"model file {str(self.model_path)!r} expects {what}s of shape {mine.shape} "
                                    f"but {on} with {self.env_kwargs} has {env_space.shape}")
        finally:
            env.close()

    def _normalize(self, obs: np.ndarray) -> np.ndarray:
        if self.obs_rms is None:
            return obs
        return self.obs_rms.normalize_obs(obs)  # VecNormalize without its venv: uses the saved statistics

    def _act(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(self._normalize(obs), deterministic=self.deterministic)
        return np.asarray(action)


class EnsemblePolicy(OnlinePolicy):
    """Several trained agents acting as one: each slot, the mean of their actions.

    The first member's environment is stepped; every member reads the same observation, normalized
    with its own statistics, and proposes its action (deterministic by default); the mean action is
    played. The members must act in the same environment (id and agent options, so the same spaces
    and the same action map), else :class:`UserError` names the first that differs.

    Args:
        members: at least two :class:`AgentPolicy`.
        name: row label (default ``"ensemble(<k>)"``).
    """

    def __init__(self, members: list[AgentPolicy], name: str | None = None):
        if len(members) < 2:
            raise UserError(f"an ensemble needs at least two agents, got {len(members)}")
        lead = members[0]
        for m in members[1:]:
            if (m.env_id, m.env_kwargs) != (lead.env_id, lead.env_kwargs):
                raise UserError(f"ensemble: {m.model_path} acts in {m.env_id} with {m.env_kwargs}, but "
                                f"{lead.model_path} in {lead.env_id} with {lead.env_kwargs}")
        self.members = list(members)
        self.name = name or f"ensemble({len(members)})"

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        """Build the first member's environment on ``scenario`` and reset it."""
        self.members[0].reset(scenario, weights)

    def act(self, t: int) -> np.ndarray:
        """Routing of slot t: one step of the first member's environment with the members' mean action."""
        lead = self.members[0]
        lead._check_slot(t)
        assert lead.env is not None
        action = np.mean([m.action(lead._obs) for m in self.members], axis=0)
        return lead.play(t, action.astype(lead.env.action_space.dtype))

    def schedule_executed(self) -> np.ndarray:
        """The executed schedule x[t, i, j, k] of the slots played since reset."""
        return self.members[0].schedule_executed()

    @property
    def episode_return(self) -> float:
        """Sum of the env's rewards over the slots played since reset (= -J(x) on a whole window)."""
        return self.members[0].episode_return
