"""Validation only: does a recurrent policy beat the default state-independent PPO in the MPC residual mode?

    python benchmarks/recurrent_policy.py [--configs ppo:none rppo:none rppo:spreads ppo:spreads rppo:full]
        [--seeds 0 1 2] [--steps 51200] [--out recurrent.json]

The default agent of ``train.py --algo ppo`` (``equiglb/EquitableGLB-residual-constant-v0``) observes a constant:
its policy is one learned pair of multipliers of MPC-24's equity terms. A policy with memory could instead learn
a schedule over the episode or react to what the forecasts got wrong. This script trains, for each config
``ALGO:OBS`` and seed, ``ALGO`` = ``ppo`` (stable-baselines3 PPO, ``MlpPolicy``) or ``rppo`` (sb3-contrib
RecurrentPPO, ``MlpLstmPolicy``, an LSTM of 32 units before the same 64-64 heads) with the observation ``OBS`` =
``none`` (the constant 1), ``spreads`` (1, the elapsed fraction of the episode and the sites' spreads of
cumulative carbon and water) or ``full`` (the residual mode's whole observation, 6 h of forecasts), everything
else as the default run's entry (51,200 steps, 8 envs, ``n_steps`` 256, ``batch_size`` 256, 10 epochs,
``gamma`` 0.9, learning rate 1e-3, ``log_std_init`` −1, VecNormalize of observations and rewards, reward against
the planner alone, 240-h episodes at random starts).

The test window plays no part: training runs on ``fit`` of the scenario ``holdout`` (the synthetic train split
cut into ``fit``, its first 960 h, and ``val``, its last 240 h); the final model is scored once on ``val`` (one
240-h episode from its first hour, deterministic actions, the LSTM state carried along), and so is the planner
alone (action 0: MPC-24 with the same calibrated forecasts). Printed per config: the change of J against the
planner (%) per seed, its mean with a 95 % bootstrap CI (``equiglb.stats.summarize``), the gap to the offline
optimum of ``val`` (an oracle) and the training time beside a CartPole-v1 reference measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from sb3_contrib import RecurrentPPO  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402
from torch import nn  # noqa: E402

import equiglb  # noqa: E402
from equiglb.baselines import OfflinePolicy  # noqa: E402
from equiglb.ledger import evaluate  # noqa: E402
from equiglb.stats import summarize  # noqa: E402

ENV_ID = "equiglb/EquitableGLB-residual-constant-v0"
HOLDOUT = {"scenario": "holdout", "scenario_options": {"base": "synthetic"}}
OBSERVATIONS = {"none": {"mpc_residual_observation": "none"}, "spreads": {"mpc_residual_observation": "spreads"},
                "full": {"mpc_residual_observation": "full", "forecast_horizon": 6}}
ALGOS = ("ppo", "rppo")


def train_and_score(algo: str, obs: str, seed: int, steps: int) -> dict:
    """Train ``algo`` with observation ``obs`` on ``fit`` and score it and the planner alone on ``val``: J (USD)."""
    kw = {**HOLDOUT, **OBSERVATIONS[obs]}
    venv = VecNormalize(DummyVecEnv([lambda: gym.make(ENV_ID, split="fit", **kw) for _ in range(8)]), gamma=0.9)
    venv.seed(seed)
    common = dict(learning_rate=1e-3, n_steps=256, batch_size=256, n_epochs=10, gamma=0.9, gae_lambda=0.95,
                  ent_coef=0.0, clip_range=0.2, seed=seed, verbose=0, device="cpu")
    heads = dict(net_arch=[64, 64], activation_fn=nn.Tanh, log_std_init=-1.0)
    t0 = time.perf_counter()
    if algo == "ppo":
        model = PPO("MlpPolicy", venv, policy_kwargs=heads, **common)
    else:
        model = RecurrentPPO("MlpLstmPolicy", venv, policy_kwargs={**heads, "lstm_hidden_size": 32}, **common)
    model.learn(steps)
    train_s = time.perf_counter() - t0
    venv.training = False

    def score(agent: bool) -> float:
        env = gym.make(ENV_ID, split="val", episode_length=240, random_start=False, mpc_residual_reward="cost", **kw)
        o, _ = env.reset(seed=0)
        state, start, ret, done = None, np.ones((1,), dtype=bool), 0.0, False
        while not done:
            a = np.zeros(env.action_space.shape, dtype=np.float32)
            if agent:
                on = venv.normalize_obs(o[None])
                if algo == "ppo":
                    act, _ = model.predict(on, deterministic=True)
                else:
                    act, state = model.predict(on, state=state, episode_start=start, deterministic=True)
                a, start = act[0], np.zeros((1,), dtype=bool)
            o, r, term, trunc, _ = env.step(a)
            ret += float(r)
            done = term or trunc
        return -ret                                                 # the reward is minus each slot's cost: J

    j_agent, j_planner = score(True), score(False)
    return dict(algo=algo, obs=obs, seed=seed, J_agent=j_agent, J_planner=j_planner,
                change_pct=100 * (j_agent / j_planner - 1), train_s=train_s)


def cartpole_steps_per_s(seconds: float = 2.0) -> float:
    """A machine reference: CartPole-v1 steps per second (random actions)."""
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(1000):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            n += 1
            if term or trunc:
                env.reset()
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", help="ALGO:OBS pairs (ppo|rppo : none|spreads|full)",
                   default=["ppo:none", "rppo:none", "rppo:spreads", "ppo:spreads", "rppo:full"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--steps", type=int, default=51_200, help="training steps per run (summed over 8 envs)")
    p.add_argument("--out", default=None, help="write every run's figures to this JSON file")
    args = p.parse_args(argv)
    configs = []
    for c in args.configs:
        algo, _, obs = c.partition(":")
        if algo not in ALGOS or obs not in OBSERVATIONS:
            p.error(f"--configs: {c!r} is not ALGO:OBS with ALGO in {ALGOS} and OBS in {tuple(OBSERVATIONS)}")
        configs.append((algo, obs))
    if args.steps < 2048 or any(s < 0 for s in args.seeds):
        p.error(f"--steps must be >= 2048 (one rollout of 8 x 256) and --seeds >= 0, got {args.steps}, {args.seeds}")
    torch.set_num_threads(1)
    val = equiglb.load_scenario("holdout", base="synthetic").split("val")
    j_off = evaluate(val, OfflinePolicy().schedule(val), val.weights).objective_usd
    ref_before = cartpole_steps_per_s()
    runs = [train_and_score(a, o, s, args.steps) for a, o in configs for s in args.seeds]
    ref_after = cartpole_steps_per_s()
    j_plan = runs[0]["J_planner"]
    print(f"holdout val (240 h): offline J {j_off:,.2f} USD (an oracle); the planner alone (MPC-24, calibrated "
          f"forecasts) {j_plan:,.2f} USD, gap {100 * (j_plan / j_off - 1):+.3f} %; CartPole-v1 {ref_before:,.0f} "
          f"and {ref_after:,.0f} steps/s before and after")
    print(f"{'config':<14} {'change vs planner, % [95 % CI]':>32} {'gap to offline %':>17} {'share of gap':>13} "
          f"{'per seed (change %)':<30} {'train s':>8}")
    for algo, obs in configs:
        rs = [r for r in runs if (r["algo"], r["obs"]) == (algo, obs)]
        s = summarize([r["change_pct"] for r in rs])
        gap = float(np.mean([100 * (r["J_agent"] / j_off - 1) for r in rs]))
        share = (j_plan - float(np.mean([r["J_agent"] for r in rs]))) / (j_plan - j_off)
        per = ", ".join(f"{r['change_pct']:+.3f}" for r in rs)
        print(f"{algo + ':' + obs:<14} {s['mean']:>+9.3f} [{s['mean_ci_low']:+.3f}, {s['mean_ci_high']:+.3f}]      "
              f"{gap:>+16.3f} {share:>12.1%} {per:<30} {np.mean([r['train_s'] for r in rs]):>8.0f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"J_offline": j_off, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
