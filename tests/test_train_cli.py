"""train.py command line: --help, the caller's program name, bad flags (clear message, non-zero exit,
no run folder touched), run folders never overwritten, -i and --eval-only. Interruption and
resumption are in tests/test_resume.py, the full set of hostile inputs in tests/test_hostile_train.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from stable_baselines3 import PPO

from equiglb.agents.cli import build_parser, main
from equiglb.agents.trainer import merge_env_kwargs

ENV = "equiglb/EquitableGLB-v0"
QUICK = ["--env-kwargs", "episode_length=24", "scenario_options={hours: 288}", "--eval-freq", "0", "--no-progress",
         "--baselines"]


def test_help_documents_every_flag(capsys):
    parser = build_parser()
    for action in parser._actions:
        assert action.help, f"flag {action.option_strings} has no help"
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--algo", "--env", "--n-timesteps", "--seed", "--n-envs", "--vec-env", "--eval-freq",
                 "--eval-episodes", "--log-folder", "--tensorboard-log", "--progress", "--device", "--save-freq",
                 "--hyperparams", "--trained-agent", "--resume", "--eval-only"):
        assert flag in out


@pytest.mark.parametrize("prog", ["train.py", "equiglb-train", "python -m equiglb.agents"])
def test_program_name_is_the_callers(prog, capsys):
    assert build_parser(prog).prog == prog
    assert main(["--eval-only"], prog=prog) == 2
    assert capsys.readouterr().err.startswith(f"{prog}: error: --eval-only")


@pytest.fixture()
def earlier_run(tmp_path) -> Path:
    """A log folder holding an earlier run, whose contents must never change."""
    run = tmp_path / "ppo" / "equiglb-EquitableGLB-residual-constant-v0_1"
    run.mkdir(parents=True)
    (run / "config.yml").write_text("algo: ppo\n")
    return run


def _untouched(log_folder: Path, earlier: Path) -> None:
    assert [p.name for p in (log_folder / "ppo").iterdir()] == [earlier.name]
    assert [p.name for p in earlier.iterdir()] == ["config.yml"]
    assert (earlier / "config.yml").read_text() == "algo: ppo\n"


@pytest.mark.parametrize("argv, message", [
    (["--algo", "dqn"], "invalid choice: 'dqn'"),
    (["--n-timesteps", "-5"], "positive integer"),
    (["--n-timesteps", "many"], "positive integer"),
    (["--seed", "x"], "integer"),
    (["--vec-env", "threads"], "invalid choice"),
])
def test_bad_flag_values_exit_nonzero(argv, message, tmp_path, earlier_run, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "-f", str(tmp_path)], prog="train.py")
    assert exc.value.code != 0
    assert message in capsys.readouterr().err
    _untouched(tmp_path, earlier_run)


@pytest.mark.parametrize("argv, message", [
    (["--env", "equiglb/NoSuchEnv-v0"], "unknown environment id 'equiglb/NoSuchEnv-v0'"),
    (["--hyperparams", "n_stepz=64"], "unknown hyperparameter(s) ['n_stepz']"),
    (["--hyperparams", "gamma=2"], "gamma must be in [0, 1]"),
    (["--env-kwargs", "scenario=nowhere"], "unknown scenario 'nowhere'"),
    (["--env-kwargs", "action_mode=pixels"], "action_mode"),
    (["--trained-agent", "missing.zip"], "--trained-agent 'missing.zip' does not exist"),
    (["--eval-only"], "--eval-only needs --trained-agent"),
])
def test_bad_inputs_give_a_message_and_touch_no_run_folder(argv, message, tmp_path, earlier_run, capsys):
    assert main(["-f", str(tmp_path), *QUICK, *argv], prog="train.py") == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("train.py: error:")
    _untouched(tmp_path, earlier_run)


def test_unreadable_model_file(tmp_path, earlier_run, capsys):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"this is not a zip")
    assert main(["--trained-agent", str(bad), "-f", str(tmp_path), *QUICK], prog="train.py") == 2
    assert "not a readable stable-baselines3 zip" in capsys.readouterr().err
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hello.txt", "hi")
    assert main(["--trained-agent", str(other), "-f", str(tmp_path), *QUICK], prog="train.py") == 2
    assert "not a stable-baselines3 model" in capsys.readouterr().err
    _untouched(tmp_path, earlier_run)


def test_runs_never_overwrite_each_other(tmp_path):
    argv = ["-n", "64", "-f", str(tmp_path), *QUICK, "--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1",
            "--n-envs", "2"]
    assert main(argv) == 0 and main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "ppo").iterdir()) == ["equiglb-EquitableGLB-residual-constant-v0_1",
                                                                     "equiglb-EquitableGLB-residual-constant-v0_2"]


def test_trained_agent_continues_the_step_count_in_a_new_run(tmp_path):
    fast = ["--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1", "--n-envs", "2"]
    assert main(["-n", "64", "-f", str(tmp_path), *QUICK, *fast]) == 0
    first = tmp_path / "ppo" / "equiglb-EquitableGLB-residual-constant-v0_1"
    assert main(["-n", "64", "-f", str(tmp_path), "-i", str(first / "model.zip"), *QUICK, *fast]) == 0
    second = tmp_path / "ppo" / "equiglb-EquitableGLB-residual-constant-v0_2"
    assert PPO.load(second / "model.zip").num_timesteps == 128
    assert PPO.load(first / "model.zip").num_timesteps == 64       # the earlier run is untouched
    assert yaml.safe_load((second / "config.yml").read_text())["trained_agent"] == str(first / "model.zip")


def test_eval_only_mode(tmp_path, capsys):
    fast = ["--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1", "--n-envs", "2"]
    assert main(["-n", "64", "-f", str(tmp_path), *QUICK, *fast]) == 0
    run = tmp_path / "ppo" / "equiglb-EquitableGLB-residual-constant-v0_1"
    capsys.readouterr()
    assert main(["--eval-only", "-i", str(run / "model.zip"), "-f", str(tmp_path), "--no-progress",
                 "--env-kwargs", "episode_length=24", "scenario_options={hours: 288}", "--baselines", "min-cost"]) == 0
    out = capsys.readouterr().out
    assert "min-cost" in out and "ppo:" in out
    assert (run / "eval_equiglb-EquitableGLB-residual-constant-v0_test" / "table.json").is_file()
    assert [p.name for p in (tmp_path / "ppo").iterdir()] == [run.name]     # no new run folder


def test_switching_the_action_mode_drops_the_files_residual_options(capsys):
    """--env-kwargs action_mode=site_scores on an id whose entry trains the residual mode: the entry's
    residual-only options go (with a note); options typed on the command line stay (the env names them)."""
    entry = {"episode_length": 240, "action_mode": "eglb_residual", "eglb_eta_scale": 0.7}
    assert merge_env_kwargs(entry, {"episode_length": 24}) == {**entry, "episode_length": 24}
    assert merge_env_kwargs(entry, {"action_mode": "site_scores"}) == {"episode_length": 240,
                                                                      "action_mode": "site_scores"}
    assert "eglb_eta_scale" in capsys.readouterr().out
    kept = merge_env_kwargs(entry, {"action_mode": "routing", "eglb_eta_scale": 0.5})
    assert kept["eglb_eta_scale"] == 0.5
    with pytest.raises(ValueError, match="eglb_eta_scale"):
        gym.make("equiglb/EquitableGLB-v0", **kept)
    # between the two residual modes: the entry's options of the other one go, its own stay
    mpc = {"episode_length": 240, "action_mode": "mpc_residual", "mpc_horizon": 24, "mpc_residual_max_factor": 1.5}
    assert merge_env_kwargs(mpc, {"action_mode": "eglb_residual"}) == {"episode_length": 240,
                                                                       "action_mode": "eglb_residual"}
    assert merge_env_kwargs(entry, {"action_mode": "mpc_residual", "mpc_horizon": 6}) == {
        "episode_length": 240, "action_mode": "mpc_residual", "mpc_horizon": 6}


def test_step_budget_checkpoint_choice_and_config_values(tmp_path, capsys):
    """-n 100 with rollouts of 2 x 32 = 64 steps: SB3 trains 128, said before training and recorded; the test
    window evaluates the model with the best validation return (final included), the choice stated in
    config.yml and on stdout; config.yml records policy_kwargs as the file's expression, not a class repr."""
    fast = ["--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1", "--n-envs", "2"]
    argv = ["-n", "100", "-f", str(tmp_path), "--env-kwargs", "episode_length=24", "scenario_options={hours: 288}",
            "--eval-freq", "64", "--no-progress", "--baselines", *fast]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Training 128 steps, not 100: PPO collects whole rollouts of n_steps 32 x n_envs 2 = 64 steps" in out
    (run,) = (tmp_path / "ppo").iterdir()
    cfg = yaml.safe_load((run / "config.yml").read_text())
    assert cfg["num_timesteps"] == 128 == PPO.load(run / "model.zip").num_timesteps
    assert "rounded up" in cfg["num_timesteps_why"]
    # the periodic evaluations (64, 128: the final model too) and the choice among them
    hist = np.load(run / "eval" / "evaluations.npz")
    assert list(hist["timesteps"]) == [64, 128]
    means = {int(t): float(np.mean(r)) for t, r in zip(hist["timesteps"], hist["results"])}
    choice = cfg["evaluated_model"]
    best = max(means, key=lambda t: (means[t], t == 128))
    assert choice["step"] == best and choice["file"] == ("model.zip" if best == 128 else "best_model.zip")
    assert choice["why"] in out and "validation window" in choice["why"]
    evaluated = yaml.safe_load((run / "eval" / "evaluated.yml").read_text())
    assert Path(str(evaluated["models"][0])).name == choice["file"]
    # real values, readable back by train.py and RL Zoo
    pk = cfg["hyperparams"]["policy_kwargs"]
    assert pk == "dict(net_arch=[64, 64], activation_fn=nn.Tanh, log_std_init=-1.0)", pk
    assert "<class" not in (run / "config.yml").read_text()


def test_max_episode_steps_other_than_episode_length_is_refused():
    env = gym.make(ENV, episode_length=48, max_episode_steps=24)
    with pytest.raises(ValueError, match=r"max_episode_steps=24 is not supported: pass episode_length=24"):
        env.reset(seed=0)
    env = gym.make(ENV, episode_length=48, max_episode_steps=48)          # equal: accepted
    env.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        if any(env.step(env.action_space.sample())[2:4]):
            break
    assert steps == 48 and env.unwrapped.episode_report().objective_usd > 0
    venv = gym.make_vec(ENV, num_envs=2, vectorization_mode="vector_entry_point", episode_length=6)
    venv.reset(seed=0)                                                     # the vector entry point is unaffected


def test_defaults_train_and_compare_the_tuned_configuration():
    """`python train.py --algo X` trains X's tuned id; the sweep's default id is PPO's, and its default baselines
    include MPC, the base of PPO's residual mode (the agent's action 0)."""
    from equiglb.agents.trainer import DEFAULT_ENV_IDS
    from equiglb.sweep.config import DEFAULT_BASELINES, DEFAULT_ENV_ID, SweepConfig

    ppo_id = DEFAULT_ENV_IDS["ppo"]
    assert gym.spec(ppo_id).kwargs["action_mode"] == "mpc_residual" and DEFAULT_ENV_ID == ppo_id
    assert "mpc" in DEFAULT_BASELINES and "mpc" in SweepConfig().baselines
    args = build_parser().parse_args(["--algo", "sac"])
    assert args.env_id is None and gym.spec(DEFAULT_ENV_IDS["*"]).kwargs["episode_length"] == 240
