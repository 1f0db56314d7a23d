"""benchmarks/select_residual.py: candidate parsing and argument checks (no training)."""

from __future__ import annotations

import gymnasium as gym
import pytest
from conftest import load_benchmark


def _select_residual():
    return load_benchmark("select_residual")


sr = _select_residual()


def test_a_candidate_splits_into_env_options_hyperparameters_and_budget():
    c = sr.parse_candidate("f1.5-g0.99:eglb_residual_max_factor=1.5, gamma=0.99,n=450000,forecast_horizon=6")
    assert c.label == "f1.5-g0.99"
    assert c.env == {"eglb_residual_max_factor": "1.5", "forecast_horizon": "6"}
    assert c.hyperparams == {"gamma": "0.99"}
    assert c.n_timesteps == 450000
    assert c.flags() == ["-params", "gamma=0.99"]
    empty = sr.parse_candidate("as-is:")
    assert (empty.env, empty.hyperparams, empty.n_timesteps, empty.flags()) == ({}, {}, None, [])


def test_the_default_grid_parses():
    cands = sr.parse_candidates(sr.DEFAULT_CANDIDATES)
    assert [c.label for c in cands] == ["f4-g0.9", "f1.5-g0.9", "f4-g0.99", "f1.5-g0.99", "f4-g0.9-fh6"]
    assert all(c.env["eglb_residual_max_factor"] in ("4", "1.5") and "gamma" in c.hyperparams for c in cands)


@pytest.mark.parametrize("text, message", [
    ("nolabel", "expected LABEL:KEY=VALUE"),
    (":gamma=0.9", "expected LABEL:KEY=VALUE"),
    ("bad label:gamma=0.9", "expected LABEL:KEY=VALUE"),
    ("a:gamma", "is not KEY=VALUE"),
    ("a:gamma=", "is not KEY=VALUE"),
    ("a:gamma=0.9,,n=5", "empty item"),
    ("a:gamma=0.9,gamma=0.99", "'gamma' given twice"),
    ("a:n=5,n_timesteps=6", "given twice"),
    ("a:n=0", "n must be a positive integer"),
    ("a:n=1.5e5", "n must be a positive integer"),
    ("a:eglb_eta_scale=0.5", "set by select_residual itself"),
    ("a:action_mode=prices", "action_mode must be one of"),
    ("a:split=test", "set by select_residual itself"),
])
def test_bad_candidates_are_rejected_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        sr.parse_candidate(text)


def test_duplicate_labels_are_rejected():
    with pytest.raises(ValueError, match="'a' given twice"):
        sr.parse_candidates(["a:gamma=0.9", "a:gamma=0.99"])


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--first-seed", "-1"], "--first-seed must be >= 0"),
    (["--val-hours", "0"], "--val-hours must be >= 1"),
    (["--candidate", "a:gama=0.9"], "'gama' is neither an environment option"),
    (["--candidate", "a:eglb_z_max_scale=2"], "set by select_residual itself"),
    (["--candidate", "a:gamma=0.9", "--candidate", "a:gamma=0.99"], "given twice"),
    (["--protocol", "eglb-2022", "--data-dir", "/nonexistent"], "no eGLB-2022 traces there"),
    (["--out", "/nonexistent/x.json"], "does not exist"),
])
def test_bad_arguments_exit_before_any_training(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        sr.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_val_hours_must_leave_a_fit_window(capsys):
    with pytest.raises(SystemExit) as exc:
        sr.main(["--protocol", "synthetic", "--val-hours", "1200"])
    assert exc.value.code == 2
    assert "the train split has only 1200 h" in capsys.readouterr().err


def test_eglb2022_runs_as_the_split_free_id_with_its_own_episodes():
    # the eGLB-2022 tuned id fixes split="train", which the holdout scenario lacks: it runs as HOLDOUT_ID with
    # its own registered episodes; the synthetic id runs as itself
    assert sr.run_id_and_options("ppo", "equiglb/EquitableGLB-v0") == ("equiglb/EquitableGLB-v0", [])
    eglb_id = "equiglb/EquitableGLB-eglb2022-residual-v0"
    run_id, kw = sr.run_id_and_options("ppo", eglb_id)
    assert run_id == sr.HOLDOUT_ID
    assert "episode_length=121" in kw and not any(k.startswith(("action_mode", "split=", "scenario=")) for k in kw)
    # every option HOLDOUT_ID's registration sets is given (the eGLB-2022 id's value, or the env's default)
    keys = {item.split("=", 1)[0] for item in kw}
    assert set(gym.spec(sr.HOLDOUT_ID).kwargs) - sr.SCRIPT_KEYS <= keys
    # an id whose hyperparameter entry differs from HOLDOUT_ID's is refused
    with pytest.raises(SystemExit, match="entries differ"):
        sr.run_id_and_options("ppo", "equiglb/EquitableGLB-eglb2022-partial-24h-v0")
