"""Which model should `train.py` keep for the default id? Its periodic evaluation's choice against the final model.

    python benchmarks/checkpoint_choice.py [--seeds 0,1,2] [--json out.json] [-f FOLDER]
        [-n STEPS] [--hyperparams KEY=VALUE ...]

Validation only: the test window plays no part. Each seed trains the default id
(``equiglb/EquitableGLB-residual-constant-v0``, ppo.yml's entry: 50k steps) through train.py on the synthetic
``holdout`` scenario (``fit`` = hours 0-959 of the train split, ``val`` = its last 240 h), with no periodic
evaluation and a checkpoint at the start of every rollout. The default id's policy is state-independent (it
observes a constant), so each checkpoint *is* one pair of multipliers, its deterministic action. The models
train.py's periodic evaluation would score, and the final model, are then scored on the four 240-hour
windows that tile ``fit`` and on ``val``, as the
change of J against the planner alone on that window (%, negative = better than the planner; the
planner alone is the mode's action 0 with the same calibrated forecasts, MPC 24 h).

Three rules of choosing the model, each scored on ``val``:

* ``first window``: what train.py does on the synthetic scenario (which has no ``val`` split): evaluate on
  the first window of the training split every 10,000 steps and keep the best. Its evaluation at step
  10,000·k fires inside a rollout and scores the parameters of that rollout's start (with rollouts of
  2,048 steps: 8,192, 18,432, ..., 49,152), then the final model; those are the models compared here;
* ``mean of 4 windows``: the same steps, the mean over the four windows of ``fit``;
* ``final``: the final model.

``-n`` and ``--hyperparams`` go to train.py (a candidate setting, compared on ``val`` the same way).
Prints each seed's choice and its ``val`` change, and each rule's mean with a 95 % bootstrap CI
(``equiglb.stats.summarize``); a CartPole-v1 loop is the same-run time reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import agent_quality as aq  # noqa: E402
from policy_search import cartpole_steps_per_s, tiling  # noqa: E402

import equiglb  # noqa: E402,F401  (registers the ids)
from equiglb.agents.runs import checkpoint_paths  # noqa: E402
from equiglb.stats import summarize  # noqa: E402

ENV_ID = "equiglb/EquitableGLB-residual-constant-v0"
HOLDOUT = {"base": "synthetic", "val_fraction": 0.2}       # fit 960 h, val the last 240 h of the train split
WINDOW_H = 240
EVAL_EVERY = 10_000                                        # train.py's --eval-freq default


def make_env(split: str, reward: str = "vs-planner") -> gym.Env:
    """The default id on the holdout scenario, one window of ``WINDOW_H`` hours of ``split`` per episode."""
    return gym.make(ENV_ID, scenario="holdout", scenario_options=HOLDOUT, split=split, random_start=False,
                    episode_length=WINDOW_H, mpc_residual_reward=reward)


def episode_return(env: gym.Env, action: np.ndarray, start: int) -> float:
    """The return (USD) of the constant ``action`` on the window starting at slot ``start``."""
    env.reset(seed=0, options={"start": start})
    total, done = 0.0, False
    while not done:
        _, r, term, trunc, _ = env.step(action)
        total += float(r)
        done = term or trunc
    return total


def constant_action(model_zip: Path, vecnormalize: Path) -> np.ndarray:
    """The deterministic action of a saved model of the default id (the same at every slot)."""
    venv = DummyVecEnv([lambda: make_env("fit")])
    obs = venv.reset()
    if vecnormalize.exists():
        vn = VecNormalize.load(str(vecnormalize), venv)
        vn.training = False
        obs = vn.normalize_obs(obs)
    model = PPO.load(str(model_zip), device="cpu")
    return np.asarray(model.predict(obs, deterministic=True)[0][0], dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("-f", "--log-folder", default=None, help="where the runs go (default: a temp folder)")
    p.add_argument("--json", default=None, help="write every checkpoint's scores here")
    p.add_argument("-n", "--n-timesteps", type=int, default=None, help="training budget (default: ppo.yml's)")
    p.add_argument("--hyperparams", nargs="+", default=[], metavar="KEY=VALUE",
                   help="train.py -params overrides, e.g. learning_rate=lin_0.002")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    log = Path(args.log_folder or tempfile.mkdtemp(prefix="checkpoint_choice_"))
    ref = cartpole_steps_per_s()
    fit_env, val_env = make_env("fit"), make_env("val")
    f0, fn = fit_env.unwrapped.config.split_start, fit_env.unwrapped.config.split_length
    v0 = val_env.unwrapped.config.split_start
    starts = tiling(f0, fn, WINDOW_H)
    # J of the planner alone on each window (its return with the plain cost reward is -J): the % denominators
    cost_fit, cost_val = make_env("fit", "cost"), make_env("val", "cost")
    zero = np.zeros(fit_env.action_space.shape, dtype=np.float32)
    j_fit = [-episode_return(cost_fit, zero, s) for s in starts]
    j_val = -episode_return(cost_val, zero, v0)
    print(f"=== checkpoint_choice: {ENV_ID} on holdout (fit windows at {starts}, val at {v0}); seeds {seeds}; "
          f"budget {args.n_timesteps or 'ppo.yml'}; hyperparams {args.hyperparams or 'ppo.yml'}; "
          f"CartPole-v1 reference {ref:,.0f} steps/s ===", flush=True)
    rules: dict[str, list[float]] = {"first window": [], "mean of 4 windows": [], "final": []}
    out: dict[str, Any] = {"seeds": {}, "starts": starts, "cartpole_steps_per_s": ref,
                           "n_timesteps": args.n_timesteps, "hyperparams": args.hyperparams}
    for seed in seeds:
        t0 = time.perf_counter()
        extra = ["--hyperparams", *args.hyperparams] if args.hyperparams else []
        run = Path(aq.train_one(argparse.Namespace(algo="ppo", n_timesteps=args.n_timesteps, extra=extra), ENV_ID,
                                ["--env-kwargs", "scenario=holdout", "scenario_options=" + json.dumps(HOLDOUT)],
                                seed, log, splits=("fit", "val"),
                                more_flags=("--eval-freq", "0", "--save-freq", "1"))["run"])
        final_steps, evaluated = evaluated_steps(run)
        models = [(n, checkpoint_paths(run, n)["model"], checkpoint_paths(run, n)["vecnormalize"]) for n in evaluated]
        models.append((final_steps, run / "model.zip", run / "vecnormalize.pkl"))
        missing = [str(z) for _, z, _ in models if not z.is_file()]
        if missing:
            raise SystemExit(f"seed {seed}: no checkpoint {missing[0]} (train.py --save-freq 1 saves every rollout)")
        rows = []
        for steps, zip_path, vn_path in models:
            a = constant_action(zip_path, vn_path)
            fit = [-100 * episode_return(fit_env, a, s) / j for s, j in zip(starts, j_fit)]
            val = -100 * episode_return(val_env, a, v0) / j_val
            rows.append({"steps": steps, "action": a.tolist(), "fit_pct": fit, "val_pct": val})
            print(f"  seed {seed} step {steps:>6}: action {np.round(a, 3)}  fit windows "
                  f"{' '.join(f'{x:+.3f}' for x in fit)} %  val {val:+.3f} %", flush=True)
        picks = {"first window": min(rows, key=lambda r: r["fit_pct"][0]),
                 "mean of 4 windows": min(rows, key=lambda r: float(np.mean(r["fit_pct"]))),
                 "final": rows[-1]}
        for rule, r in picks.items():
            rules[rule].append(r["val_pct"])
        print(f"seed {seed} ({time.perf_counter() - t0:.0f} s): "
              + "; ".join(f"{rule}: step {r['steps']}, val {r['val_pct']:+.3f} %" for rule, r in picks.items()),
              flush=True)
        out["seeds"][str(seed)] = {"run": str(run), "rows": rows,
                                   "picks": {k: v["steps"] for k, v in picks.items()}}
    print("\nchange of J on val against the planner alone (%, lower is better), mean [95 % bootstrap CI]:")
    for rule, vals in rules.items():
        s = summarize(vals)
        print(f"  {rule:<18} {s['mean']:+.3f} [{s['mean_ci_low']:+.3f}, {s['mean_ci_high']:+.3f}]   per seed "
              + ", ".join(f"{v:+.3f}" for v in vals))
    out["rules"] = rules
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def evaluated_steps(run: Path) -> tuple[int, list[int]]:
    """The final model's step count and the checkpoints train.py's periodic evaluation would score: at step
    E = EVAL_EVERY·k (E below the final count) it fires inside the rollout that started at the last multiple
    of the rollout size below E, whose parameters it scores; the final model is evaluated after training."""
    cfg = yaml.safe_load((run / "config.yml").read_text())
    final = int(cfg["num_timesteps"])
    rollout = int(cfg["hyperparams"]["n_steps"]) * int(cfg["n_envs"])
    starts = sorted({(e - 1) // rollout * rollout for e in range(EVAL_EVERY, final, EVAL_EVERY)})
    return final, starts


if __name__ == "__main__":
    sys.exit(main())
