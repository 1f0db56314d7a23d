"""Exact interruption and resumption of training.

A run can stop only at a *consistent point*: the start of a rollout, when every counted
environment step has been stored (replay buffer) or trained on (rollout buffer) and every gradient
update of the previous rollout is done. A checkpoint taken there holds everything the rest of the
run depends on:

* the model with its optimizer state, ``num_timesteps`` and ``_n_updates`` (``ckpt_<n>_steps.zip``);
* the normalization statistics (``ckpt_vecnormalize_<n>_steps.pkl``) and the running discounted
  returns of reward normalization, which SB3 does not pickle;
* the replay buffer of off-policy algorithms (``ckpt_replay_buffer_<n>_steps.pkl``);
* the states of the torch, numpy, Python and action-space random-number generators and the
  environments' replay log (``ckpt_resume_<n>_steps.pkl``).

Environments are not pickled (their internals may share memory): every episode is reset with a
seed derived from (run seed, copy, episode index), and the actions since the last reset are logged,
so a fresh environment reset with that seed and stepped with those actions is in the same state.
Resuming from a checkpoint therefore continues with the same numbers as the uninterrupted run.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from equiglb.agents.runs import checkpoint_paths

__all__ = ["derive_seed", "ReplayableEnv", "ReplayableVecEnv", "env_replay_state", "restore_env_replay",
           "Interrupted", "StopAtConsistentPoint", "ConsistentPoints", "PeriodicEval", "save_checkpoint",
           "load_resume_state", "rng_state", "set_rng_state"]


def derive_seed(base: int, episode: int) -> int:
    """The reset seed of episode ``episode`` of a copy whose base seed is ``base`` (31 bits)."""
    return int(np.random.SeedSequence([int(base) % 2**32, int(episode)]).generate_state(1)[0] % 2**31)


class ReplayableEnv(gym.Wrapper):
    """One copy inside a DummyVecEnv/SubprocVecEnv: seeded resets and a log of the episode's actions.

    In a SubprocVecEnv worker it also ignores SIGINT/SIGTERM (the trainer stops the workers itself).
    """

    def __init__(self, env: gym.Env, parent_pid: int | None = None):
        super().__init__(env)
        if parent_pid is not None and os.getpid() != parent_pid:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.base_seed: int | None = None
        self.episode = 0
        self.reset_seed: int | None = None
        self.actions: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.base_seed, self.episode = int(seed), 0
        s = None if self.base_seed is None else derive_seed(self.base_seed, self.episode)
        self.episode += 1
        self.reset_seed, self.actions = s, []
        return self.env.reset(seed=s, options=options)

    def step(self, action):
        self.actions.append(np.array(action, copy=True))
        return self.env.step(action)

    def replay_state(self) -> dict[str, Any]:
        """What :meth:`restore_replay` needs to put a fresh copy in this copy's state."""
        return {"base_seed": self.base_seed, "episode": self.episode, "reset_seed": self.reset_seed,
                "actions": [a.copy() for a in self.actions]}

    def restore_replay(self, state: dict[str, Any]) -> None:
        """Reset with the recorded seed and replay the recorded actions."""
        self.env.reset(seed=state["reset_seed"])
        for a in state["actions"]:
            self.env.step(a)
        self.base_seed, self.episode = state["base_seed"], state["episode"]
        self.reset_seed, self.actions = state["reset_seed"], [a.copy() for a in state["actions"]]


class ReplayableVecEnv(VecEnvWrapper):
    """The same for a natively batched VecEnv whose copies end their episodes together (equiglb's
    native vector env): seeded resets (``seed(s)`` before each step applies to the automatic
    reset) and a log of the batched actions since the last reset."""

    def __init__(self, venv: VecEnv):
        super().__init__(venv)
        self.base_seed: int | None = None
        self.episode = 0
        self.reset_seed: int | None = None
        self.actions: list[np.ndarray] = []
        self._pending: np.ndarray | None = None

    def seed(self, seed: int | None = None) -> list[int | None]:
        if seed is not None:
            self.base_seed, self.episode = int(seed), 0
        return [seed] * self.num_envs

    def _next_seed(self) -> int | None:
        return None if self.base_seed is None else derive_seed(self.base_seed, self.episode)

    def reset(self) -> VecEnvObs:
        s = self._next_seed()
        if s is not None:
            self.venv.seed(s)
        self.episode += 1
        self.reset_seed, self.actions = s, []
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._pending = np.array(actions, copy=True)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        s = self._next_seed()
        if s is not None:
            self.venv.seed(s)                      # used only if this step ends the episodes
        obs, rewards, dones, infos = self.venv.step_wait()
        if dones.any():
            if not dones.all():
                raise RuntimeError("ReplayableVecEnv needs copies that end their episodes together")
            self.episode += 1
            self.reset_seed, self.actions = s, []
        else:
            assert self._pending is not None
            self.actions.append(self._pending)
        return obs, rewards, dones, infos

    def replay_state(self) -> dict[str, Any]:
        """What :meth:`restore_replay` needs to put a fresh vector env in this one's state."""
        return {"base_seed": self.base_seed, "episode": self.episode, "reset_seed": self.reset_seed,
                "actions": [a.copy() for a in self.actions]}

    def restore_replay(self, state: dict[str, Any]) -> None:
        """Reset with the recorded seed and replay the recorded actions."""
        if state["reset_seed"] is not None:
            self.venv.seed(state["reset_seed"])
        self.venv.reset()
        for a in state["actions"]:
            self.venv.step(a)
        self.base_seed, self.episode = state["base_seed"], state["episode"]
        self.reset_seed, self.actions = state["reset_seed"], [a.copy() for a in state["actions"]]


def _inner(venv: VecEnv) -> VecEnv:
    while isinstance(venv, VecEnvWrapper) and not isinstance(venv, ReplayableVecEnv):
        venv = venv.venv
    return venv


def env_replay_state(venv: VecEnv) -> Any:
    """The replay log of the training env (under its VecNormalize): one dict, or one per copy."""
    inner = _inner(venv)
    if isinstance(inner, ReplayableVecEnv):
        return inner.replay_state()
    return inner.env_method("replay_state")


def restore_env_replay(venv: VecEnv, state: Any) -> None:
    """Put a freshly built training env into the state recorded by :func:`env_replay_state`."""
    inner = _inner(venv)
    if isinstance(inner, ReplayableVecEnv):
        inner.restore_replay(state)
        return
    for i, s in enumerate(state):
        inner.env_method("restore_replay", s, indices=[i])


def rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    """States of every random-number generator training draws from."""
    st: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                          "python": random.getstate(),
                          "action_space": model.action_space.np_random.bit_generator.state}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(model: BaseAlgorithm, st: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    model.action_space.np_random.bit_generator.state = st["action_space"]
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


class Interrupted:
    """SIGINT/SIGTERM handler: the first signal asks training to stop at the next consistent point
    (a checkpoint is saved there); a second one raises KeyboardInterrupt at once (nothing saved;
    ``--resume`` then starts from the latest checkpoint)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: stopping at the end of this rollout and saving a "
              "checkpoint (send it again to abort without saving)", file=sys.stderr, flush=True)

    def __enter__(self) -> Interrupted:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


class StopAtConsistentPoint(Exception):
    """Raised at the start of a rollout after a signal, once the checkpoint is saved."""


class ConsistentPoints(BaseCallback):
    """At the start of every rollout: save a checkpoint when ``save_freq`` steps have passed since the
    last one, and stop (after saving one) when a signal came."""

    def __init__(self, stop: Interrupted, save: Callable[[], Path], save_freq: int, last_saved: int):
        super().__init__()
        self.stop, self.save, self.save_freq, self.last_saved = stop, save, save_freq, last_saved
        self.saved_on_stop: Path | None = None

    def _on_rollout_start(self) -> None:
        n = self.num_timesteps
        due = self.save_freq > 0 and n // self.save_freq > self.last_saved // self.save_freq
        if self.stop.signum is not None or due:
            path = self.save()
            self.last_saved = n
            print(f"Checkpoint saved at step {n}: {path}", flush=True)
            if self.stop.signum is not None:
                self.saved_on_stop = path
                raise StopAtConsistentPoint

    def _on_step(self) -> bool:
        return True


class PeriodicEval(BaseCallback):
    """Evaluate on the validation window every ``eval_freq`` environment steps (by the step count,
    so a resumed run evaluates at the same steps); keep the history in ``eval/evaluations.npz``
    (SB3's layout: ``timesteps``, ``results``, ``ep_lengths``) and the best model."""

    def __init__(self, eval_env: VecEnv, eval_freq: int, n_episodes: int, seed: int, run_dir: Path,
                 history: dict[str, list[Any]]):
        super().__init__()
        self.eval_env, self.eval_freq, self.n_episodes, self.seed = eval_env, eval_freq, n_episodes, seed
        self.run_dir, self.history = run_dir, history
        self.last = int(history["timesteps"][-1]) if history["timesteps"] else 0
        self.best = max((float(np.mean(r)) for r in history["results"]), default=-np.inf)

    def _on_step(self) -> bool:
        if self.num_timesteps // self.eval_freq > self.last // self.eval_freq:
            self.evaluate()
        return True

    def evaluate(self) -> None:
        """One evaluation now; the eval env is reseeded so every evaluation sees the same episodes."""
        n = self.num_timesteps
        print(f"Periodic evaluation at step {n} ...", flush=True)
        train_vn = self.model.get_vec_normalize_env()
        if train_vn is not None and isinstance(self.eval_env, VecNormalize):
            self.eval_env.obs_rms = copy.deepcopy(train_vn.obs_rms)
            self.eval_env.ret_rms = copy.deepcopy(train_vn.ret_rms)
        self.eval_env.seed(self.seed)
        rewards, lengths = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_episodes,
                                           deterministic=True, return_episode_rewards=True)
        self.last = n
        self.history["timesteps"].append(n)
        self.history["results"].append(np.atleast_1d(rewards).tolist())
        self.history["ep_lengths"].append(np.atleast_1d(lengths).tolist())
        save_history(self.run_dir, self.history)
        mean = float(np.mean(rewards))
        self.logger.record("eval/mean_reward", mean)
        if mean > self.best:
            self.best = mean
            self.model.save(str(self.run_dir / "best_model.zip"))
            vn = self.model.get_vec_normalize_env()
            if vn is not None:
                vn.save(str(self.run_dir / "best_vecnormalize.pkl"))
        print(f"Periodic evaluation at step {n}: mean return {mean:.6g} USD", flush=True)


def load_history(run_dir: Path, up_to: int | None = None) -> dict[str, list[Any]]:
    """The periodic-evaluation history of a run (entries after step ``up_to`` dropped: they are redone)."""
    path = run_dir / "eval" / "evaluations.npz"
    hist: dict[str, list[Any]] = {"timesteps": [], "results": [], "ep_lengths": []}
    if path.is_file():
        with np.load(path) as z:
            for t, r, ln in zip(z["timesteps"], z["results"], z["ep_lengths"]):
                if up_to is None or t <= up_to:
                    hist["timesteps"].append(int(t))
                    hist["results"].append(list(r))
                    hist["ep_lengths"].append(list(ln))
    return hist


def save_history(run_dir: Path, hist: dict[str, list[Any]]) -> None:
    """Write ``eval/evaluations.npz`` atomically."""
    d = run_dir / "eval"
    d.mkdir(exist_ok=True)
    tmp = d / "evaluations.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, timesteps=np.asarray(hist["timesteps"], dtype=np.int64),
                 results=np.asarray(hist["results"], dtype=np.float64),
                 ep_lengths=np.asarray(hist["ep_lengths"], dtype=np.int64))
    os.replace(tmp, d / "evaluations.npz")


def save_checkpoint(model: BaseAlgorithm, run_dir: Path, off_policy: bool) -> Path:
    """Save a complete checkpoint at the model's step count (see the module docstring); the model
    zip is written last and atomically, so its presence marks a complete checkpoint."""
    steps = int(model.num_timesteps)
    paths = checkpoint_paths(run_dir, steps)
    paths["model"].parent.mkdir(parents=True, exist_ok=True)
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.save(str(paths["vecnormalize"]))
    if off_policy:
        model.save_replay_buffer(str(paths["replay_buffer"]))  # type: ignore[attr-defined]
    env = model.get_env()
    assert env is not None
    state = {"num_timesteps": steps, "n_updates": int(getattr(model, "_n_updates", 0)), "rng": rng_state(model),
             "env": env_replay_state(env), "vecnormalize_returns": None if vn is None else vn.returns.copy()}
    with open(paths["resume"], "wb") as f:
        pickle.dump(state, f)
    tmp = paths["model"].with_name(paths["model"].name + ".tmp")
    with open(tmp, "wb") as f:
        model.save(f)
    os.replace(tmp, paths["model"])
    return paths["model"]


def load_resume_state(run_dir: Path, steps: int) -> dict[str, Any]:
    """The ``ckpt_resume_<steps>_steps.pkl`` of a checkpoint."""
    with open(checkpoint_paths(run_dir, steps)["resume"], "rb") as f:
        return pickle.load(f)
