"""The training plan (equiglb.agents.plan.TrainPlan): its fields generate train.py's flags, config.yml records
it with real values and --resume reads it back to an equal plan; the sweep's trials are plans too."""

from __future__ import annotations

from dataclasses import fields, replace

from equiglb.agents.cli import build_parser
from equiglb.agents.plan import (
    CONFIG_KEYS,
    NOT_WITH_RESUME,
    RECORDED,
    TrainPlan,
    plan_config,
    plan_from_args,
    plan_from_config,
)
from equiglb.agents.runs import read_config, write_config
from equiglb.agents.trainer import resolve
from equiglb.sweep.trial import trial_plan


def test_every_flag_is_a_field_of_the_plan():
    parser = build_parser("train.py")
    dests = {a.dest for a in parser._actions if a.option_strings and a.dest != "help"}
    assert dests == {f.name for f in fields(TrainPlan) if f.metadata["flags"]}
    assert plan_from_args(parser.parse_args([])) == TrainPlan()
    assert RECORDED == ("algo", "env_id", "n_timesteps", "seed", "n_envs", "vec_env", "eval_freq", "eval_episodes",
                        "tensorboard_log", "device", "save_freq", "eval_split", "train_split", "baselines",
                        "torch_threads")
    assert set(NOT_WITH_RESUME) == {"hyperparams", "env_kwargs", "trained_agent", "eval_only", "log_folder",
                                    "gym_packages"}
    assert set(CONFIG_KEYS) == {*RECORDED, "hyperparams", "env_kwargs", "trained_agent", "gym_packages",
                                "target_timesteps"}


def test_config_yml_round_trip(tmp_path):
    """write (real values: no class repr) and read back: the same plan, for every algorithm's defaults and
    overrides holding classes (activation_fn), schedules, lists and normalization settings."""
    for argv in (["--algo", "ppo"], ["--algo", "sac", "-n", "5000", "--baselines", "offline", "mpc"],
                 ["--algo", "a2c", "--hyperparams", "policy_kwargs=dict(net_arch=[8], activation_fn=nn.ReLU)",
                  "learning_rate=lin_0.001", "normalize=dict(norm_obs=True, norm_reward=False)",
                  "--env-kwargs", "episode_length=24", "--seed", "7", "--eval-freq", "0"]):
        plan = resolve(plan_from_args(build_parser().parse_args(argv)))
        plan = replace(plan, target_timesteps=plan.n_timesteps)
        write_config(tmp_path, plan_config(plan))
        text = (tmp_path / "config.yml").read_text()
        assert "<class" not in text and "object at" not in text, text
        back = plan_from_config(read_config(tmp_path))
        recorded = {k: getattr(plan, k) for k in CONFIG_KEYS}
        assert back == replace(TrainPlan(), **recorded), argv


def test_a_sweep_trial_is_the_plan_of_its_train_py_command_line(tmp_path):
    spec = {"trial_id": "t", "algo": "ppo", "seed": 3, "point": {"q": "inf"}, "env": "equiglb/EquitableGLB-v0",
            "env_kwargs": {"episode_length": "24", "scenario_options": "{hours: 288}"},
            "hyperparams": {"n_steps": "32", "gamma": "0.5"}, "n_timesteps": 64, "baselines": ["offline"],
            "with_baselines": True, "eval_freq": 0, "trial_dir": str(tmp_path)}
    argv = ["--algo", "ppo", "--env", "equiglb/EquitableGLB-v0", "--seed", "3", "-f", str(tmp_path), "--no-progress",
            "--eval-freq", "0", "--torch-threads", "1", "-n", "64", "--env-kwargs", "episode_length=24",
            "scenario_options={hours: 288}", "q=inf", "-params", "n_steps=32", "gamma=0.5", "--baselines", "offline"]
    assert trial_plan(spec) == plan_from_args(build_parser().parse_args(argv))
    search = {**spec, "with_baselines": False, "train_split": "fit", "eval_split": "val"}
    plan = trial_plan(search)
    assert plan.baselines == [] and (plan.train_split, plan.eval_split) == ("fit", "val")
