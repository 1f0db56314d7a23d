"""Which action mode does PPO learn better? Short PPO runs on the default scenario, both modes.

For each action mode and seed: PPO (SB3 defaults, reward normalization) on
``equiglb/EquitableGLB-v0`` with day-long episodes (24 slots) at random starts in the train split,
through the native vector env and the SB3 adapter; then the deterministic policy is evaluated on
the test split, day by day, and compared with the uniform split (all actions 0) of the same mode.
Prints the mean daily objective J (USD, lower is better) per mode.

Usage: python benchmarks/env_action_modes.py [--steps 100000] [--seeds 0 1] [--envs 8] [--env-id ID --data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without installing
import equiglb  # noqa: F401
from equiglb.envs.sb3 import make_sb3_vec_env
from equiglb.envs.vector import EquitableGLBVectorEnv


def evaluate_policy_days(predict, mode: str, env_id: str, **kw) -> float:
    """Mean daily J (USD) over the test split's whole days (all days stepped at once)."""
    kw = {**equiglb.envs.ENV_IDS[env_id], **kw, "split": "test", "action_mode": mode}
    probe = EquitableGLBVectorEnv(num_envs=1, **kw)
    start, length = probe.config.split_start, probe.config.split_length
    days = length // 24
    venv = EquitableGLBVectorEnv(num_envs=days, episode_length=24, **kw)
    obs, _ = venv.reset(seed=0, options={"start": start + 24 * np.arange(days)})
    total = np.zeros(days)
    for _ in range(24):
        obs, r, term, _, _ = venv.step(predict(obs))
        total += r
    return float(-total.mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--env-id", default="equiglb/EquitableGLB-v0")
    p.add_argument("--data-dir", default=None, help="trace folder for the eglb2022 ids")
    args = p.parse_args()
    kw = {} if args.data_dir is None else {"data_dir": args.data_dir}
    torch.set_num_threads(1)
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    print(f"PPO {args.steps} steps, {args.envs} envs, episodes of 24 h at random train starts; "
          f"evaluation: mean daily J (USD) on the test split, lower is better")
    print(f"{'action_mode':<12} {'seed':>4} {'uniform J':>12} {'PPO J':>12} {'PPO/uniform':>12} {'time s':>7}")
    for mode in ("routing", "site_scores"):
        for seed in args.seeds:
            t0 = time.perf_counter()
            venv = make_sb3_vec_env(args.env_id, num_envs=args.envs, seed=seed, episode_length=24,
                                    random_start=True, action_mode=mode, **kw)
            venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=0.99)
            model = PPO("MlpPolicy", venv, n_steps=256, batch_size=256, seed=seed, device="cpu", verbose=0)
            model.learn(args.steps)
            dim = venv.action_space.shape[0]
            j_ppo = evaluate_policy_days(lambda o, m=model: m.predict(o, deterministic=True)[0], mode, args.env_id,
                                         **kw)
            j_uni = evaluate_policy_days(lambda o, d=dim: np.zeros((o.shape[0], d), np.float32), mode, args.env_id,
                                         **kw)
            print(f"{mode:<12} {seed:>4} {j_uni:>12.1f} {j_ppo:>12.1f} {j_ppo / j_uni:>12.4f} "
                  f"{time.perf_counter() - t0:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
