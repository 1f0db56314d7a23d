"""train.py command line: --help, bad flags (clear message, non-zero exit, no run folder touched),
interruption with SIGINT (checkpoint saved, named) and resumption (step count, optimizer state and
normalization statistics continue)."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from equiglb.agents.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
ENV = "equiglb/EquitableGLB-v0"
QUICK = ["--env-kwargs", "episode_length=24", "--eval-freq", "0", "--no-progress", "--baselines"]


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


@pytest.fixture()
def earlier_run(tmp_path) -> Path:
    """A log folder holding an earlier run, whose contents must never change."""
    run = tmp_path / "ppo" / "equiglb-EquitableGLB-v0_1"
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
        main([*argv, "-f", str(tmp_path)])
    assert exc.value.code != 0
    assert message in capsys.readouterr().err
    _untouched(tmp_path, earlier_run)


@pytest.mark.parametrize("argv, message", [
    (["--env", "equiglb/NoSuchEnv-v0"], "unknown environment id 'equiglb/NoSuchEnv-v0'"),
    (["--hyperparams", "n_stepz=64"], "unknown hyperparameter(s) ['n_stepz']"),
    (["--hyperparams", "gamma=2"], "gamma must be in [0, 1]"),
    (["--env-kwargs", "scenario=nowhere"], "unknown scenario 'nowhere'"),
    (["--env-kwargs", "action_mode=pixels"], "action_mode"),
    (["--trained-agent", "missing.zip"], "model file 'missing.zip' does not exist"),
    (["--resume", "no/such/run"], "no config.yml"),
    (["--eval-only"], "--eval-only needs --trained-agent"),
])
def test_bad_inputs_give_a_message_and_touch_no_run_folder(argv, message, tmp_path, earlier_run, capsys):
    assert main(["-f", str(tmp_path), *QUICK, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("train.py: error:")
    _untouched(tmp_path, earlier_run)


def test_unreadable_model_file(tmp_path, earlier_run, capsys):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"this is not a zip")
    assert main(["--trained-agent", str(bad), "-f", str(tmp_path), *QUICK]) == 2
    assert "not a readable stable-baselines3 zip" in capsys.readouterr().err
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hello.txt", "hi")
    assert main(["--trained-agent", str(other), "-f", str(tmp_path), *QUICK]) == 2
    assert "not a stable-baselines3 model" in capsys.readouterr().err
    _untouched(tmp_path, earlier_run)


def test_runs_never_overwrite_each_other(tmp_path):
    argv = ["-n", "64", "-f", str(tmp_path), *QUICK, "--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1",
            "--n-envs", "2"]
    assert main(argv) == 0 and main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "ppo").iterdir()) == ["equiglb-EquitableGLB-v0_1",
                                                                     "equiglb-EquitableGLB-v0_2"]


def _vecnorm_count(path: Path) -> float:
    with open(path, "rb") as f:
        return float(pickle.load(f).obs_rms.count)


def test_sigint_saves_a_checkpoint_and_resume_continues(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "train.py"), "-n", "1000000", "-f", str(tmp_path), "--n-envs", "2",
           *QUICK, "--hyperparams", "n_steps=64", "batch_size=64", "n_epochs=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    run_dir = None
    for line in proc.stdout:
        if line.startswith("Run folder:"):
            run_dir = Path(line.split(":", 1)[1].strip())
            break
    assert run_dir is not None
    time.sleep(4.0)                               # let it train a few thousand steps
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "checkpoint saved to" in err and f"--resume {run_dir}" in err
    (ckpt,) = (run_dir / "checkpoints").glob("ckpt_*_steps.zip")
    steps = int(ckpt.stem.split("_")[1])
    assert steps > 0
    vn_ckpt = run_dir / "checkpoints" / f"ckpt_vecnormalize_{steps}_steps.pkl"
    assert _vecnorm_count(vn_ckpt) > steps / 2     # statistics of the steps trained so far
    from stable_baselines3 import PPO

    saved = PPO.load(ckpt)
    assert saved.num_timesteps == steps
    assert saved.policy.optimizer.state_dict()["state"], "Adam moments are saved with the checkpoint"

    target = steps + 256
    res = subprocess.run([sys.executable, str(REPO / "train.py"), "--resume", str(run_dir), "-n", str(target),
                          "--no-progress"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"from step {steps}" in res.stdout
    cfg = yaml.safe_load((run_dir / "config.yml").read_text())
    assert target <= cfg["num_timesteps"] < target + 256      # continued, not restarted from 0
    assert PPO.load(run_dir / "model.zip").num_timesteps == cfg["num_timesteps"]
    assert _vecnorm_count(run_dir / "vecnormalize.pkl") > _vecnorm_count(vn_ckpt) + 200
    assert len(cfg["resumed"]) == 1 and (run_dir / "eval" / "table.json").is_file()


def test_resume_off_policy_restores_the_replay_buffer(tmp_path):
    """SAC: checkpoints hold the replay buffer; --resume continues from the latest one with it."""
    from stable_baselines3 import SAC

    argv = ["--algo", "sac", "-n", "200", "-f", str(tmp_path), "--save-freq", "100", *QUICK,
            "--hyperparams", "learning_starts=50", "batch_size=16"]
    assert main(argv) == 0
    (run,) = (tmp_path / "sac").iterdir()
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "ckpt_replay_buffer_200_steps.pkl" in ckpts and "ckpt_vecnormalize_200_steps.pkl" in ckpts
    assert main(["--resume", str(run), "-n", "300", "--no-progress"]) == 0
    model = SAC.load(run / "model.zip")
    model.load_replay_buffer(run / "replay_buffer.pkl")
    assert model.num_timesteps == 300
    # SB3's CheckpointCallback runs before the step's transition is stored: 199 saved + 100 new
    assert model.replay_buffer.size() == 299


def test_trained_agent_continues_the_step_count_in_a_new_run(tmp_path):
    from stable_baselines3 import PPO

    fast = ["--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1", "--n-envs", "2"]
    assert main(["-n", "64", "-f", str(tmp_path), *QUICK, *fast]) == 0
    first = tmp_path / "ppo" / "equiglb-EquitableGLB-v0_1"
    assert main(["-n", "64", "-f", str(tmp_path), "-i", str(first / "model.zip"), *QUICK, *fast]) == 0
    second = tmp_path / "ppo" / "equiglb-EquitableGLB-v0_2"
    assert PPO.load(second / "model.zip").num_timesteps == 128
    assert PPO.load(first / "model.zip").num_timesteps == 64       # the earlier run is untouched
    assert yaml.safe_load((second / "config.yml").read_text())["trained_agent"] == str(first / "model.zip")


def test_eval_only_mode(tmp_path, capsys):
    fast = ["--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1", "--n-envs", "2"]
    assert main(["-n", "64", "-f", str(tmp_path), *QUICK, *fast]) == 0
    run = tmp_path / "ppo" / "equiglb-EquitableGLB-v0_1"
    capsys.readouterr()
    assert main(["--eval-only", "-i", str(run / "model.zip"), "-f", str(tmp_path), "--no-progress",
                 "--env-kwargs", "episode_length=24", "--baselines", "min-cost"]) == 0
    out = capsys.readouterr().out
    assert "min-cost" in out and "ppo:" in out
    assert (run / "eval_equiglb-EquitableGLB-v0_test" / "table.json").is_file()
    assert [p.name for p in (tmp_path / "ppo").iterdir()] == [run.name]     # no new run folder
