"""Hostile inputs to ``train.py`` and ``python -m equiglb.agents.evaluate``.

Every case asserts the specific error, that the message names the option, file or value, that
exactly one ``error:`` line is printed, and that no run folder (or output folder) exists
afterwards: everything that can be known in advance is checked before anything is written.
Most cases call the CLIs' ``main`` in-process (exit status 2 from argparse's ``SystemExit`` or the
returned code); a few run them as subprocesses to check the status, the single ``error:`` line and
the absence of a traceback end to end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from equiglb.agents.cli import main
from equiglb.agents.evaluate import main as evaluate_main

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)
SMALL = ["--env-kwargs", "episode_length=24", "scenario_options={hours: 288}", "--eval-freq", "0", "--no-progress"]
FAST = ["--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1", "policy_kwargs={net_arch: [8]}"]

# A two-site scenario in the generic format, without a latency matrix ('nearest' cannot run on it).
META = """\
name: no-latency
units: {price: USD/MWh, carbon: g/kWh, water: L/kWh}
sites:
  - {name: east, capacity_mw: 2.0}
  - {name: west, capacity_mw: 2.0}
regions: [na, eu]
models:
  - {name: small, energy_mwh_per_unit: 0.2, quality_loss: 0.3}
splits: {train: [0, 36], test: [36, 12]}
"""


def _no_latency_folder(root: Path) -> Path:
    d = root / "fleet"
    d.mkdir(exist_ok=True)
    (d / "scenario.yaml").write_text(META)
    sig, dem = ["time,site,signal,value"], ["time,region,demand"]
    for h in range(48):
        t = f"2024-01-{1 + h // 24:02d}T{h % 24:02d}:00Z"
        for site, base in (("east", 10.0), ("west", 20.0)):
            sig += [f"{t},{site},price,{base + h % 5}", f"{t},{site},carbon,{400 + h}", f"{t},{site},water,{2 + h % 3}"]
        dem += [f"{t},{r},0.5" for r in ("na", "eu")]
    (d / "signals.csv").write_text("\n".join(sig) + "\n")
    (d / "demand.csv").write_text("\n".join(dem) + "\n")
    return d


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny trained PPO run (model.zip, vecnormalize.pkl, config.yml, finished)."""
    root = tmp_path_factory.mktemp("trained")
    assert main(["-n", "64", "-f", str(root), *SMALL, "--baselines", *FAST]) == 0
    (run,) = (root / "ppo").iterdir()
    return run


def _one_error_line(err: str, prog: str) -> str:
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error:"), err
    assert "Traceback" not in err
    return lines[0]


def _rejected(argv: list[str], logs: Path, capsys, words: list[str]) -> None:
    """train.py ``argv`` exits with status 2, one error line naming ``words``, and no run folder."""
    try:
        code = main([*argv] if "--resume" in argv else [*argv, "-f", str(logs)], prog="train.py")
    except SystemExit as exc:            # argparse
        code = exc.code
    assert code == 2
    line = _one_error_line(capsys.readouterr().err, "train.py")
    for w in words:
        assert w in line, (w, line)
    assert not logs.exists() or not any(logs.rglob("config.yml")), "a run folder was created"


# ---------------------------------------------------------------------- flags and hyperparameters
@pytest.mark.parametrize("argv, words", [
    (["--algo", "dqn"], ["--algo", "invalid choice: 'dqn'"]),
    (["-n", "-5"], ["--n-timesteps", "positive integer", "'-5'"]),
    (["-n", "many"], ["--n-timesteps", "'many'"]),
    (["--seed", "x"], ["--seed", "'x'"]),
    (["--vec-env", "threads"], ["--vec-env", "'threads'"]),
    (["--n-envs", "0"], ["--n-envs", "'0'"]),
    (["--eval-episodes", "0"], ["--eval-episodes", "'0'"]),
    (["--torch-threads", "0"], ["--torch-threads", "'0'"]),
    (["--verbose", "7"], ["--verbose", "7"]),
    (["--hyperparams", "n_stepz=64"], ["--hyperparams", "n_stepz"]),
    (["--hyperparams", "gamma=2"], ["--hyperparams", "gamma", "2"]),
    (["--hyperparams", "n_steps=0"], ["--hyperparams", "n_steps", "0"]),
    (["--hyperparams", "batch_size=1"], ["--hyperparams", "batch_size"]),
    (["--hyperparams", "policy=CnnPolicy"], ["--hyperparams", "CnnPolicy"]),
    (["--hyperparams", "learning_rate=fast"], ["--hyperparams", "learning_rate", "fast"]),
    (["--hyperparams", "normalize=maybe"], ["--hyperparams", "normalize", "maybe"]),
    (["--hyperparams", "gamma"], ["--hyperparams", "'gamma'", "key=value"]),
    (["--hyperparams", "torch_num_threads=0"], ["torch_num_threads", "0"]),
    (["--env-kwargs", "episode_length"], ["--env-kwargs", "'episode_length'"]),
    (["--env-kwargs", "split=test"], ["--env-kwargs split", "--eval-split"]),
    (["--env-kwargs", "scenario=nowhere"], ["unknown scenario 'nowhere'"]),
    (["--env-kwargs", "action_mode=pixels"], ["action_mode", "pixels"]),
    (["--env-kwargs", "episode_length=100000"], ["episode_length", "100000"]),
    (["--env", "equiglb/NoSuchEnv-v0"], ["--env", "'equiglb/NoSuchEnv-v0'"]),
    (["--gym-packages", "no_such_module_xyz"], ["--gym-packages", "'no_such_module_xyz'"]),
    (["--device", "gpu9"], ["--device", "'gpu9'"]),
    (["--device", "cuda:7"], ["--device", "'cuda:7'"]),
    (["--eval-split", "nosuch"], ["--eval-split", "'nosuch'", "available"]),
    (["--train-split", "nosuch"], ["--train-split", "'nosuch'"]),
    (["--baselines", "nosuch"], ["--baselines", "'nosuch'"]),
    (["--baselines", "min-cost", "min-cost"], ["--baselines", "twice"]),
    (["--eval-only"], ["--eval-only", "--trained-agent"]),
    (["--trained-agent", "missing.zip"], ["--trained-agent", "'missing.zip'", "does not exist"]),
    (["--resume", "no/such/run"], ["'no/such/run'", "no config.yml"]),
])
def test_bad_flags_and_values(argv, words, tmp_path, capsys):
    if argv[:2] == ["--device", "cuda:7"] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    if argv[0] == "--resume":
        _rejected([*argv], tmp_path / "logs", capsys, words)
    else:
        _rejected([*SMALL, "--baselines", *argv], tmp_path / "logs", capsys, words)


def test_cuda_missing(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    _rejected([*SMALL, "--device", "cuda"], tmp_path / "logs", capsys, ["--device", "'cuda'", "not available"])


# ---------------------------------------------------------------------- folders
def test_log_folder_under_a_file(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    try:
        code = main([*SMALL, "--baselines", "-f", str(tmp_path / "plain" / "logs")], prog="train.py")
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    line = _one_error_line(capsys.readouterr().err, "train.py")
    assert "--log-folder" in line and "plain" in line and "is a file" in line


def test_tensorboard_folder_under_a_file(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    _rejected([*SMALL, "--baselines", "-tb", str(tmp_path / "plain" / "tb")], tmp_path / "logs", capsys,
              ["--tensorboard-log", "plain", "is a file"])


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_log_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _rejected([*SMALL, "--baselines"], ro / "logs", capsys, ["--log-folder", "not writable"])
    finally:
        ro.chmod(0o700)


# ---------------------------------------------------------------------- scenario the evaluation cannot run
def test_baseline_the_scenario_cannot_run(tmp_path, capsys):
    """'nearest' needs a latency matrix: the run is refused before training, not after."""
    d = _no_latency_folder(tmp_path)
    _rejected(["--env-kwargs", "scenario=csv", f"data_dir={d}", "episode_length=12", "--eval-freq", "0",
               "--no-progress", "--baselines", "min-cost", "nearest"], tmp_path / "logs", capsys,
              ["--baselines nearest", "no-latency", "latency"])


# ---------------------------------------------------------------------- models given with -i
def test_model_of_another_algorithm(trained, tmp_path, capsys):
    _rejected(["--algo", "sac", "-i", str(trained / "model.zip"), *SMALL, "--baselines"], tmp_path / "logs",
              capsys, ["--trained-agent", "model.zip", "trained with ppo", "sac"])


def test_model_of_another_observation_shape(trained, tmp_path, capsys):
    _rejected(["-i", str(trained / "model.zip"), *SMALL[:3], "mpc_residual_observation=full", *SMALL[3:],
               "--baselines"],
              tmp_path / "logs",
              capsys, ["--trained-agent", "model.zip", "observations of shape"])


def test_model_of_another_action_shape(trained, tmp_path, capsys):
    _rejected(["-i", str(trained / "model.zip"), *SMALL[:3], "action_mode=routing", *SMALL[3:], "--baselines"],
              tmp_path / "logs",
              capsys, ["--trained-agent", "model.zip", "shape"])


def test_model_not_a_zip(tmp_path, capsys):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"this is not a zip")
    _rejected(["-i", str(bad), *SMALL, "--baselines"], tmp_path / "logs", capsys,
              ["--trained-agent", "broken.zip", "not a readable stable-baselines3 zip"])


def test_model_zip_without_sb3_data(tmp_path, capsys):
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hello.txt", "hi")
    _rejected(["-i", str(other), *SMALL, "--baselines"], tmp_path / "logs", capsys,
              ["--trained-agent", "other.zip", "not a stable-baselines3 model"])


def test_model_with_a_damaged_member(trained, tmp_path, capsys):
    bad = tmp_path / "damaged" / "model.zip"
    bad.parent.mkdir()
    with zipfile.ZipFile(trained / "model.zip") as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data[: len(data) // 2] if name == "policy.pth" else data)
    shutil.copy(trained / "vecnormalize.pkl", bad.parent / "vecnormalize.pkl")
    _rejected(["-i", str(bad), *SMALL, "--baselines"], tmp_path / "logs", capsys,
              ["--trained-agent", "model.zip", "does not load"])


def test_model_without_its_normalization_statistics(trained, tmp_path, capsys):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(trained / "model.zip", lone / "model.zip")
    shutil.copy(trained / "config.yml", lone / "config.yml")
    _rejected(["-i", str(lone / "model.zip"), *SMALL, "--baselines"], tmp_path / "logs", capsys,
              ["--trained-agent", "model.zip", "vecnormalize.pkl is missing"])


def test_eval_only_on_a_missing_split(trained, tmp_path, capsys):
    _rejected(["--eval-only", "-i", str(trained / "model.zip"), *SMALL, "--eval-split", "val", "--baselines"],
              tmp_path / "logs", capsys, ["--eval-split", "'val'"])
    assert [p.name for p in trained.iterdir() if p.name.startswith("eval_")] == []


# ---------------------------------------------------------------------- --resume
def _copy_run(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "ppo" / trained.name
    shutil.copytree(trained, run)
    return run


def test_resume_a_finished_run(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    _rejected(["--resume", str(run)], tmp_path / "logs", capsys, ["--resume", "finished"])


def test_resume_with_a_corrupt_config(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    (run / "config.yml").write_text("algo: [unclosed\n")
    _rejected(["--resume", str(run)], tmp_path / "logs", capsys, ["config.yml", "not readable YAML"])


def test_resume_without_a_checkpoint(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    cfg = yaml.safe_load((run / "config.yml").read_text())
    for k in ("finished_utc", "trained_utc"):
        cfg.pop(k)
    (run / "config.yml").write_text(yaml.safe_dump(cfg))
    _rejected(["--resume", str(run)], tmp_path / "logs", capsys, ["--resume", "no checkpoint", "checkpoints"])


def test_resume_with_another_budget(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    _rejected(["--resume", str(run), "-n", "128"], tmp_path / "logs", capsys,
              ["--n-timesteps", "128", "recorded n_timesteps: 64"])
    assert yaml.safe_load((run / "config.yml").read_text())["n_timesteps"] == 64


def test_resume_with_other_hyperparameters(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    _rejected(["--resume", str(run), "--hyperparams", "gamma=0.5"], tmp_path / "logs", capsys,
              ["--resume", "--hyperparams", "cannot be given"])


# ---------------------------------------------------------------------- python -m equiglb.agents.evaluate
def _eval_rejected(argv: list[str], capsys, words: list[str], out: Path | None = None) -> None:
    assert evaluate_main([*argv, "--no-progress"], prog="evaluate") == 2
    line = _one_error_line(capsys.readouterr().err, "evaluate")
    for w in words:
        assert w in line, (w, line)
    if out is not None:
        assert not out.exists()


def test_evaluate_missing_model(tmp_path, capsys):
    _eval_rejected([str(tmp_path / "nothing.zip"), "--env", "equiglb/EquitableGLB-v0"], capsys,
                   ["nothing.zip", "does not exist"])


def test_evaluate_unknown_env(trained, tmp_path, capsys):
    _eval_rejected([str(trained), "--env", "equiglb/Nope-v0", "-o", str(tmp_path / "o")], capsys,
                   ["'equiglb/Nope-v0'"], tmp_path / "o")


def test_evaluate_unknown_split(trained, tmp_path, capsys):
    _eval_rejected([str(trained), "--split", "later", "-o", str(tmp_path / "o")], capsys,
                   ["--split", "'later'", "available"], tmp_path / "o")


def test_evaluate_unknown_baseline(trained, tmp_path, capsys):
    _eval_rejected([str(trained), "--baselines", "oracle", "-o", str(tmp_path / "o")], capsys,
                   ["--baselines", "'oracle'"], tmp_path / "o")


def test_evaluate_output_holding_a_table(trained, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "table.csv").write_text("policy\nx\n")
    _eval_rejected([str(trained), "--baselines", "-o", str(tmp_path / "o")], capsys,
                   ["--out", "already holds a table"])
    assert (tmp_path / "o" / "table.csv").read_text() == "policy\nx\n"


def test_evaluate_output_is_a_file(trained, tmp_path, capsys):
    (tmp_path / "o").write_text("x")
    _eval_rejected([str(trained), "--baselines", "-o", str(tmp_path / "o")], capsys, ["--out", "is a file"])


def test_evaluate_model_without_statistics(trained, tmp_path, capsys):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(trained / "model.zip", lone / "model.zip")
    shutil.copy(trained / "config.yml", lone / "config.yml")
    _eval_rejected([str(lone / "model.zip"), "--baselines", "-o", str(tmp_path / "o")], capsys,
                   ["model.zip", "normalized observations", "vecnormalize.pkl"], tmp_path / "o")


def test_evaluate_model_of_another_shape(trained, tmp_path, capsys):
    """A 10-site agent observing the sites' entries on a 2-site scenario is refused; the default agent (it observes
    a constant and scales the planner's two equity weights) runs on any fleet."""
    d = _no_latency_folder(tmp_path)
    _eval_rejected([str(trained), "--env", "equiglb/EquitableGLB-v0", "--env-kwargs", "scenario=csv", f"data_dir={d}",
                    "mpc_residual_observation=full", "--baselines", "-o", str(tmp_path / "o")], capsys,
                   ["mpc_residual_observation"], tmp_path / "o")
    assert evaluate_main([str(trained), "--env", "equiglb/EquitableGLB-v0", "--env-kwargs", "scenario=csv",
                          f"data_dir={d}", "--baselines", "-o", str(tmp_path / "o2"), "--no-progress"],
                         prog="evaluate") == 0
    out = capsys.readouterr().out
    assert "no-latency split 'test'" in out and "ppo:" in out, out


def test_evaluate_wrong_algorithm(trained, tmp_path, capsys):
    _eval_rejected([str(trained), "--algo", "sac", "--baselines", "-o", str(tmp_path / "o")], capsys,
                   ["model.zip", "trained with ppo, not sac"], tmp_path / "o")


def test_evaluate_names_do_not_match_models(trained, tmp_path, capsys):
    _eval_rejected([str(trained), "--names", "a", "b", "--baselines", "-o", str(tmp_path / "o")], capsys,
                   ["--names", "2 label(s) for 1 model(s)"], tmp_path / "o")


def test_evaluate_nearest_without_latency(trained, tmp_path, capsys):
    d = _no_latency_folder(tmp_path)
    _eval_rejected([str(trained), "--env", "equiglb/EquitableGLB-v0", "--env-kwargs", "scenario=csv",
                    f"data_dir={d}", "--baselines", "nearest", "-o", str(tmp_path / "o")], capsys,
                   ["nearest", "latency"], tmp_path / "o")


def test_evaluate_bad_env_kwargs(trained, tmp_path, capsys):
    _eval_rejected([str(trained), "--env-kwargs", "q", "-o", str(tmp_path / "o")], capsys,
                   ["--env-kwargs", "'q'"], tmp_path / "o")


def test_second_eval_only_does_not_overwrite_the_first(trained, tmp_path):
    """Two --eval-only runs of the same model with other weights write two tables."""
    run = _copy_run(trained, tmp_path)
    for mu in ("1000", "5000"):
        assert main(["--eval-only", "-i", str(run / "model.zip"), "-f", str(tmp_path), "--no-progress",
                     "--env-kwargs", "scenario_options={hours: 288}", f"mu_carbon={mu}", "--baselines"]) == 0
    first, second = (run / "eval_equiglb-EquitableGLB-residual-constant-v0_test",
                     run / "eval_equiglb-EquitableGLB-residual-constant-v0_test_2")
    a, b = (yaml.safe_load((d / "table.json").read_text()) for d in (first, second))
    assert a[0]["objective"] != b[0]["objective"]
    assert yaml.safe_load((first / "evaluated.yml").read_text())["env_kwargs"]["mu_carbon"] == 1000


# ---------------------------------------------------------------------- end to end, as subprocesses
@pytest.mark.parametrize("argv, words", [
    (["train.py", *SMALL, "--hyperparams", "n_steps=0"], ["train.py: error:", "n_steps"]),
    (["train.py", *SMALL, "--device", "gpu9"], ["train.py: error:", "--device 'gpu9'"]),
    (["-m", "equiglb.agents.evaluate", "nothing.zip", "--env", "equiglb/EquitableGLB-v0"],
     ["python -m equiglb.agents.evaluate: error:", "nothing.zip"]),
])
def test_subprocess_exit_status_and_one_error_line(argv, words, tmp_path):
    cmd = [sys.executable, *([str(REPO / argv[0])] if argv[0] == "train.py" else argv[:2])]
    rest = argv[1:] if argv[0] == "train.py" else argv[2:]
    res = subprocess.run([*cmd, *rest, "-f" if argv[0] == "train.py" else "--no-progress",
                          *([str(tmp_path / "logs")] if argv[0] == "train.py" else [])],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(SRC)},
                         timeout=300)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    errs = [ln for ln in res.stderr.splitlines() if "error:" in ln]
    assert len(errs) == 1, res.stderr
    for w in words:
        assert w in errs[0]
    assert not (tmp_path / "logs").exists()
