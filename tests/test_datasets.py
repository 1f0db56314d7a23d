"""``python -m equiglb.datasets``: Minari datasets of the baselines whose returns are -J(x) (``--action-mode
routing``), or, in the env's default action mode, the baselines projected onto it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import minari
import numpy as np
import pytest

import equiglb
from equiglb.baselines import make_policy
from equiglb.datasets import main
from equiglb.ledger import evaluate

REPO = Path(equiglb.__file__).resolve().parents[2]
POLICIES = ("offline", "online-eglb", "mpc")


@pytest.fixture
def data_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def _check_dataset(dataset_id: str, policy: str, episodes: int, rtol: float = 1e-9) -> None:
    ds = minari.load_dataset(dataset_id)
    assert ds.total_episodes == episodes
    env = ds.recover_environment()
    base = env.unwrapped
    assert base.action_map.mode == "routing"
    for ep in ds.iterate_episodes():
        # the episode's window and the baseline's schedule, recomputed here independently of the recorder
        env.reset(seed=int(ep.id))
        window, weights = base.window(), base.weights
        J = evaluate(window, make_policy(policy).schedule(window, weights), weights).objective_usd
        assert len(ep.rewards) == window.T and ep.terminations[-1] and not ep.truncations.any()
        np.testing.assert_allclose(ep.rewards.sum(), -J, rtol=rtol)
        assert ep.infos["routing"].shape == (window.T + 1, window.N, window.J, window.K)
        np.testing.assert_array_equal(ep.infos["t"][1:], base.start + np.arange(window.T))
        # the stored (float32) actions replayed in the recovered env give the same return to float32 resolution
        env.reset(seed=int(ep.id))
        replayed = [env.step(a)[1] for a in ep.actions]
        np.testing.assert_allclose(np.sum(replayed), -J, rtol=1e-6)
        np.testing.assert_allclose(ep.observations[0], env.reset(seed=int(ep.id))[0])


def test_cli_records_the_three_baselines_with_return_minus_objective(data_path):
    argv = ["--env", "equiglb/EquitableGLB-v0", "--split", "test", "--policies", ",".join(POLICIES),
            "--action-mode", "routing", "--episodes", "2", "--env-kwargs", "episode_length=24", "random_start=true",
            "--dataset-id", "equiglb/synthetic-test", "--data-path", str(data_path)]
    assert main(argv) == 0
    assert sorted(minari.list_local_datasets()) == sorted(f"equiglb/synthetic-test/{p}-v0" for p in POLICIES)
    for policy in POLICIES:
        _check_dataset(f"equiglb/synthetic-test/{policy}-v0", policy, episodes=2)


@pytest.mark.parametrize("q, rtol", [("inf", 1e-9), ("2", 1e-8)])
def test_multimodel_id_and_default_dataset_id(data_path, q, rtol):
    # q = 2 is solved by a conic solver that meets demand to about 1e-9 relative, hence --rtol 1e-8
    argv = ["--env", "equiglb/EquitableGLB-multimodel-v0", "--policies", "offline,online-eglb", "--rtol", str(rtol),
            "--action-mode", "routing",
            "--env-kwargs", "episode_length=12", "unserved_penalty_usd=1e7", f"q={q}", "--data-path", str(data_path)]
    assert main(argv) == 0
    for policy in ("offline", "online-eglb"):
        _check_dataset(f"equiglb/EquitableGLB-multimodel-train/{policy}-v0", policy, episodes=1, rtol=rtol)


def test_a_schedule_with_unserved_load_is_refused_not_recorded(data_path, capsys):
    # on 12-hour windows of the multimodel scenario the offline optimum prefers the default unserved
    # penalty to the social cost of serving Asia with the small model; the environment serves all load
    argv = ["--env", "equiglb/EquitableGLB-multimodel-v0", "--policies", "offline", "--action-mode", "routing",
            "--env-kwargs", "episode_length=12", "--data-path", str(data_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: offline: replayed return") and "unserved" in err[0]
    assert minari.list_local_datasets() == {}


def test_real_traces_test_split(data_path, eglb_dir):
    argv = ["--env", "equiglb/EquitableGLB-eglb2022-test-v0", "--policies", "offline", "--action-mode", "routing",
            "--env-kwargs", f"data_dir={eglb_dir}", "--data-path", str(data_path)]
    assert main(argv) == 0
    ds = minari.load_dataset("equiglb/EquitableGLB-eglb2022-test-test/offline-v0")
    assert ds.total_steps == 121
    _check_dataset("equiglb/EquitableGLB-eglb2022-test-test/offline-v0", "offline", episodes=1)


@pytest.mark.parametrize("args, message", [
    (["--policies", "offline,oracle"], "--policies: unknown name(s) ['oracle']"),
    (["--episodes", "0"], "--episodes must be >= 1, got 0"),
    (["--rtol", "0"], "--rtol must be in (0, 1), got 0.0"),
    (["--episodes", "3"], "--episodes 3 needs --env-kwargs random_start=true"),
    (["--env", "equiglb/Nope-v0"], "--env 'equiglb/Nope-v0'"),
    (["--env-kwargs", "episode_length"], "--env-kwargs: expected key=value, got 'episode_length'"),
    (["--env-kwargs", "action_mode=site_scores"], "--env-kwargs action_mode='site_scores'"),
    (["--action-mode", "mpc_residual"], "--action-mode 'mpc_residual': a baseline's schedule has no action"),
    (["--env", "equiglb/EquitableGLB-residual-v0"], "its action mode (give another with --action-mode) 'mpc_residual'"),
    (["--env-kwargs", "episode_length=5000"], "--env equiglb/EquitableGLB-v0"),
    (["--split", "validation"], "--split validation"),
])
def test_bad_input_exits_2_with_one_error_line(args, message, tmp_path, capsys):
    assert main(["--data-path", str(tmp_path / "d"), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not list((tmp_path / "d").rglob("*.arrow"))                  # nothing recorded before the error


def test_module_entry_point_reports_bad_input(tmp_path):
    out = subprocess.run([sys.executable, "-m", "equiglb.datasets", "--policies", "oracle", "--data-path",
                          str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert out.returncode == 2 and out.stderr.startswith("error: --policies: unknown name(s) ['oracle']"), out.stderr


def test_default_mode_records_the_baselines_projected_onto_it(data_path, capsys):
    """No --action-mode: the env's default mode (site_scores). The stored actions are the schedule's per-site,
    per-model shares; the transitions are the environment's own (replaying the stored actions in the
    recovered env gives the stored rewards), and the description states the gap to -J(x)."""
    from equiglb.datasets import site_scores_action

    argv = ["--env", "equiglb/EquitableGLB-v0", "--split", "test", "--policies", "offline,mpc",
            "--env-kwargs", "episode_length=24", "--dataset-id", "equiglb/scores", "--data-path", str(data_path)]
    assert main(argv) == 0
    assert "projected onto action_mode='site_scores'" in capsys.readouterr().out
    for policy in ("offline", "mpc"):
        ds = minari.load_dataset(f"equiglb/scores/{policy}-v0")
        env = ds.recover_environment()
        base = env.unwrapped
        assert base.config.action_mode == "site_scores" and env.action_space == ds.action_space
        (ep,) = list(ds.iterate_episodes())
        env.reset(seed=int(ep.id))
        window, weights = base.window(), base.weights
        x = make_policy(policy).schedule(window, weights)
        J = evaluate(window, x, weights).objective_usd
        # the stored actions are the schedule's shares (float32), and they give the stored rewards
        np.testing.assert_allclose(ep.actions[0], site_scores_action(base.action_map, x[0]), atol=1e-6)
        replayed = [env.step(a)[1] for a in ep.actions]
        np.testing.assert_allclose(replayed, ep.rewards, rtol=1e-5)
        gap = -ep.rewards.sum() / J - 1
        assert gap > -1e-9                         # no policy beats the offline optimum's J on its own window
        assert f"{100 * abs(gap):.3g} %" in ds.storage.metadata["description"]
