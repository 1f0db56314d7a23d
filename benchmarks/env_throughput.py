"""Environment throughput beside CartPole-v1, measured in the same run.

Single env: ``gymnasium.make`` of both (with their default wrappers), steps/s with a fixed action
(auto-reset at episode end). Vector env: the native vector env of both
(``vectorization_mode="vector_entry_point"``) at B = 1, 64, 1024, env-steps/s = B × steps/s.
Each figure is the best of ``--repeats`` timed blocks (the machine may be shared).
Targets: a single-env step through ``gymnasium.make`` costs at most 2.5× a CartPole-v1 step; at
B = 1024 the native vector env's per-env-step cost is at most 6× that of CartPole's vector env
(``gymnasium.make_vec("CartPole-v1", num_envs=1024, vectorization_mode="vector_entry_point")``).
The script prints whether each target holds.

Usage: python benchmarks/env_throughput.py [--env-id equiglb/EquitableGLB-v0] [--action-mode site_scores]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without installing
import equiglb  # noqa: E402,F401


def best_rate(step, n: int, repeats: int) -> float:
    """Best steps/s over ``repeats`` blocks of ``n`` calls of ``step()``."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def single_rate(env: gym.Env, n: int, repeats: int, seed: int = 0) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    action = env.action_space.sample()

    def step():
        if env.step(action)[2]:
            env.reset()

    step()
    return best_rate(step, n, repeats)


def vector_rate(venv, n: int, repeats: int, seed: int = 0) -> float:
    venv.reset(seed=seed)
    venv.action_space.seed(seed)
    actions = venv.action_space.sample()
    return venv.num_envs * best_rate(lambda: venv.step(actions), n, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="equiglb/EquitableGLB-v0")
    p.add_argument("--action-mode", default=None, help="default: the id's default (site_scores)")
    p.add_argument("--steps", type=int, default=3000, help="single-env steps per timed block")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    kw = {} if args.action_mode is None else {"action_mode": args.action_mode}

    rows = []
    ours = single_rate(gym.make(args.env_id, **kw), args.steps, args.repeats)
    cart = single_rate(gym.make("CartPole-v1"), args.steps * 4, args.repeats)
    rows.append(("single (gymnasium.make)", 1, ours, cart))
    for B in (1, 64, 1024):
        n = max(20, args.steps // max(1, B // 8))
        venv = gym.make_vec(args.env_id, num_envs=B, vectorization_mode="vector_entry_point", **kw)
        cvenv = gym.make_vec("CartPole-v1", num_envs=B, vectorization_mode="vector_entry_point")
        rows.append((f"vector B={B}", B, vector_rate(venv, n, args.repeats),
                     vector_rate(cvenv, n, args.repeats)))
    mode = gym.make(args.env_id, **kw).unwrapped.config.action_mode
    print(f"{args.env_id} (action_mode={mode}) vs CartPole-v1, best of {args.repeats} blocks")
    print(f"{'setting':<26}{'equiglb steps/s':>17}{'CartPole steps/s':>18}{'step cost ratio':>17}")
    for name, _, r_ours, r_cart in rows:
        print(f"{name:<26}{r_ours:>17,.0f}{r_cart:>18,.0f}{r_cart / r_ours:>16.2f}x")
    single, vec = rows[0][3] / rows[0][2], rows[-1][3] / rows[-1][2]
    print(f"single-env step cost = {single:.2f} x CartPole-v1: target <= 2.5 {'holds' if single <= 2.5 else 'MISSED'}")
    print(f"vector env B=1024 per-env-step cost = {vec:.2f} x CartPole's vector env: target <= 6 "
          f"{'holds' if vec <= 6 else 'MISSED'}")


if __name__ == "__main__":
    main()
