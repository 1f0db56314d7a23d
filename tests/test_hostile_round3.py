# mypy: disable-error-code="arg-type, call-overload"
# (these tests pass wrongly typed values on purpose)
"""Hostile inputs, round 3: what landed with the sweep, the datasets CLI, the residual action modes and
``-conf`` files. One section per class (docs/errors.md):

* **silent acceptance**: a value that used to be coerced or ignored is refused (or recorded truly) with
  the option and the value named;
* **bounded waits**: what used to wait for minutes or forever fails within a bounded time, by name;
* **no tracebacks**: every command line ends a user error with exit status 2 and one ``error:`` line,
  and leaves no half-written output;
* **checked up front**: the sweep checks every trial the way the trial will, before any trial starts.

Copies of environments (the fifth class of the round) are in tests/test_copies.py.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import equiglb
from equiglb.agents.cli import main as train_main
from equiglb.envs.slot import ACTION_MODE_REGISTRY
from equiglb.validate import OptionError, UnknownOptionError

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)
SMALL = ["--env-kwargs", "episode_length=24", "scenario_options={hours: 288}", "--eval-freq", "0", "--no-progress"]
FAST = ["--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1", "policy_kwargs={net_arch: [8]}"]


def one_error_line(err: str, starts: str = "") -> str:
    """The single ``error:`` line of ``err`` (no traceback), starting with ``starts``."""
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    assert lines[0].startswith(starts), err
    return lines[0]


def run_cli(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr); argparse's SystemExit is a status too."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(main, argv: list[str], capsys, words: list[str], starts: str = "") -> str:
    """``main(argv)`` exits with status 2 and one error line naming every word of ``words``."""
    code, out, err = run_cli(main, argv, capsys)
    assert code == 2, (code, out[-2000:], err[-2000:])
    line = one_error_line(err, starts)
    for w in words:
        assert w in line, (w, line)
    return line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep_main():
    pytest.importorskip("ray")
    from equiglb.sweep.__main__ import main

    return main


def _datasets_main():
    pytest.importorskip("minari")
    from equiglb.datasets import main

    return main


def _train(argv: list[str]) -> int:
    return train_main(argv, prog="train.py")


# ====================================================================== class: silent acceptance
@pytest.mark.parametrize("argv, words", [
    (["--grid", "q=1,2", "--grid", "q=3"], ["--grid", "'q' given twice"]),
    (["--env-kwargs", "episode_length=24", "episode_length=48"], ["--env-kwargs", "'episode_length' given twice"]),
    (["--hyperparams", "gamma=0.9", "gamma=0.5"], ["--hyperparams", "'gamma' given twice"]),
    (["-n", "2048.7e0"], ["--n-timesteps", "'2048.7e0'", "whole number"]),
])
def test_sweep_flag_given_twice_or_fractional(argv, words, tmp_path, capsys):
    out = tmp_path / "sweep"
    refused(_sweep_main(), [*argv, "--out", str(out)], capsys, words)
    assert not out.exists()


@pytest.mark.parametrize("text, words", [
    ("seeds: [0.7]\n", ["seeds=0.7", "integer"]),
    ("seeds: [0, 1.5]\n", ["seeds=1.5"]),
    ("seeds: [true]\n", ["seeds=True"]),
    ("algos: [ppo]\nalgos: [sac]\n", ["'algos' given twice", "line 2"]),
    ("grid:\n  q: [1, 2]\n  q: [inf]\n", ["'q' given twice"]),
])
def test_sweep_config_file_is_read_strictly(text, words, tmp_path, capsys):
    conf = tmp_path / "sweep_config.yml"
    conf.write_text(text)
    out = tmp_path / "sweep"
    line = refused(_sweep_main(), ["--config", str(conf), "--out", str(out)], capsys, words)
    assert "--config" in line or "seeds" in line
    assert not out.exists()


def test_train_conf_file_with_a_key_written_twice(tmp_path, capsys):
    conf = tmp_path / "best_ppo.yml"
    conf.write_text("equiglb/EquitableGLB-v0:\n  n_steps: 32\n  learning_rate: 0.001\n  n_steps: 64\n")
    refused(_train, ["-conf", str(conf), *SMALL, "--baselines", "-f", str(tmp_path / "logs")], capsys,
            ["best_ppo.yml", "'n_steps' given twice", "line 4"], starts="train.py: error:")
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("value", ["2048.7e0", "2048.5", "1e400", "nan", "1e13"])
def test_train_budget_is_never_truncated(value, tmp_path, capsys):
    refused(_train, ["-n", value, *SMALL, "--baselines", "-f", str(tmp_path / "logs")], capsys,
            ["--n-timesteps", repr(value)], starts="train.py: error:")


@pytest.mark.parametrize("value, ok", [("2048.0", 2048), ("1e3", 1000), ("256", 256)])
def test_train_budget_integral_floats_are_read_exactly(value, ok):
    from equiglb.agents.cli import build_parser

    assert build_parser("train.py").parse_args(["-n", value]).n_timesteps == ok


@pytest.mark.parametrize("options, err, words", [
    ({"strat": 100}, UnknownOptionError, ["'strat'", "'start'"]),
    ({"start": 0, "seed": 3}, UnknownOptionError, ["'seed'"]),
    ({"start": 2.5}, OptionError, ["options['start']=2.5"]),
])
def test_reset_option_typo_is_refused_and_state_is_kept(options, err, words):
    env = gym.make("equiglb/EquitableGLB-v0", episode_length=6)
    env.reset(seed=0, options={"start": 3})
    env.step(env.action_space.sample())
    base = env.unwrapped
    before = (base.start, base.elapsed, base.ledger.footprint.copy())
    with pytest.raises(err) as info:
        env.reset(options=options)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert (base.start, base.elapsed) == before[:2] and np.array_equal(base.ledger.footprint, before[2])


BAD_ACTIONS = {
    "strings": lambda d: np.array(["0.5"] * d),
    "a string": lambda d: "0.5",
    "complex": lambda d: np.full(d, 0.5 + 1j),
    "complex, zero imaginary": lambda d: np.full(d, 0.5 + 0j),
    "booleans": lambda d: np.ones(d, dtype=bool),
    "objects": lambda d: np.array([0.5] * d, dtype=object),
}


@pytest.mark.parametrize("kind", sorted(BAD_ACTIONS))
@pytest.mark.parametrize("mode", sorted(ACTION_MODE_REGISTRY))
def test_actions_that_are_not_real_numbers_are_refused(mode, kind):
    kw = {"mpc_horizon": 2} if mode == "mpc_residual" else {}
    env = gym.make("equiglb/EquitableGLB-v0", action_mode=mode, episode_length=4, **kw).unwrapped
    env.reset(seed=0)
    action = BAD_ACTIONS[kind](env.action_space.shape[0])
    with pytest.raises(ValueError, match=r"action of dtype .*expected real numbers"):
        env.step(action)
    assert env.elapsed == 0                                  # nothing was stepped


def test_vector_env_refuses_actions_that_are_not_real_numbers():
    venv = gym.make_vec("equiglb/EquitableGLB-v0", num_envs=2, vectorization_mode="vector_entry_point",
                        episode_length=4)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="expected real numbers"):
        venv.step(np.full((2, venv.single_action_space.shape[0]), 0.5 + 1j))


@pytest.fixture(scope="module")
def residual_run(tmp_path_factory) -> Path:
    """A tiny PPO run trained in the eglb_residual action mode."""
    root = tmp_path_factory.mktemp("residual")
    code = train_main(["-n", "64", "-f", str(root), "--env-kwargs", "episode_length=24",
                       "scenario_options={hours: 288}", "action_mode=eglb_residual", "--eval-freq", "0",
                       "--no-progress", "--baselines", *FAST], prog="train.py")
    assert code == 0
    (run,) = (root / "ppo").iterdir()
    return run


def test_eval_only_with_another_action_mode_is_refused(residual_run, tmp_path, capsys):
    before = sorted(p.name for p in residual_run.iterdir())
    refused(_train, ["--eval-only", "-i", str(residual_run / "model.zip"), "--env-kwargs", "episode_length=24",
                     "scenario_options={hours: 288}", "action_mode=site_scores", "--baselines", "--no-progress"],
            capsys, ["action_mode='site_scores'", "action_mode='eglb_residual'"], starts="train.py: error:")
    assert sorted(p.name for p in residual_run.iterdir()) == before       # no evaluation folder written


def test_eval_only_with_the_trained_action_mode_records_it(residual_run, capsys):
    code, out, err = run_cli(_train, ["--eval-only", "-i", str(residual_run / "model.zip"), "--env-kwargs",
                                      "episode_length=24", "scenario_options={hours: 288}",
                                      "action_mode=eglb_residual", "--baselines", "--no-progress"], capsys)
    assert code == 0, err[-3000:]
    folder = Path(out.strip().splitlines()[-1].split("Results in ", 1)[1])
    evaluated = yaml.safe_load((folder / "evaluated.yml").read_text())
    assert "eglb_residual" in yaml.safe_dump(evaluated) and "site_scores" not in yaml.safe_dump(evaluated)


def test_datasets_identical_episodes_are_refused(tmp_path, capsys):
    # random_start=true on a split exactly one episode long: every episode would be the same window
    line = refused(_datasets_main(), ["--episodes", "3", "--env-kwargs", "random_start=true", "--split", "test",
                                      "--data-path", str(tmp_path / "d")], capsys,
                   ["--episodes 3", "same window", "episode_length"], starts="error:")
    assert "split 'test'" in line
    assert not list((tmp_path / "d").rglob("*.arrow"))


def test_datasets_policy_listed_twice(tmp_path, capsys):
    refused(_datasets_main(), ["--policies", "min-cost,offline,min-cost", "--data-path", str(tmp_path / "d")],
            capsys, ["--policies", "['min-cost'] listed twice"], starts="error:")
    assert not list((tmp_path / "d").rglob("*.arrow"))


# ====================================================================== class: bounded waits
def test_sweep_address_where_nothing_listens(tmp_path, capsys):
    main = _sweep_main()
    out = tmp_path / "sweep"
    address = f"127.0.0.1:{_free_port()}"
    argv = ["--address", address, "--out", str(out), "-n", "64", "--seeds", "0", "--baselines", "offline"]
    for attempt in range(2):                    # a retry gets the same answer: nothing was left behind
        t0 = time.monotonic()
        refused(main, argv, capsys, ["--address", address, "cannot connect"])
        assert time.monotonic() - t0 < 60, "the connection check is not bounded"
        assert not out.exists(), f"attempt {attempt}: the sweep folder (sweep.yml) was left behind"


@pytest.mark.parametrize("argv, words", [
    (["--address", "nowhere"], ["--address 'nowhere'", "HOST:PORT"]),
    (["--address", "127.0.0.1:99999"], ["port 99999"]),
])
def test_sweep_address_malformed(argv, words, tmp_path, capsys):
    refused(_sweep_main(), [*argv, "--out", str(tmp_path / "sweep")], capsys, words)


def test_sweep_cpus_per_trial_above_this_machine(tmp_path, capsys):
    n = os.cpu_count() or 1
    refused(_sweep_main(), ["--cpus-per-trial", str(n + 1), "--out", str(tmp_path / "s")], capsys,
            ["--cpus-per-trial", f"{n} CPUs"])
    refused(_sweep_main(), ["--cpus-per-trial", "2", "--num-cpus", "1", "--out", str(tmp_path / "s")], capsys,
            ["--cpus-per-trial 2", "--num-cpus 1"])
    assert not (tmp_path / "s").exists()


def test_sweep_cpus_per_trial_above_the_cluster_is_refused_before_submitting(monkeypatch):
    pytest.importorskip("ray")
    from equiglb.sweep import engine
    from equiglb.sweep.config import SweepConfig, SweepError

    monkeypatch.setattr(engine.ray, "cluster_resources", lambda: {"CPU": 4.0})
    monkeypatch.setattr(engine, "tune_grid", lambda *a: pytest.fail("trials submitted"))
    cfg = SweepConfig(cpus_per_trial=8, address="10.0.0.5:6379")
    with pytest.raises(SweepError, match="--cpus-per-trial 8 is more than the 4 CPUs of the Ray cluster at 10.0.0.5"):
        engine.check_cluster_cpus(cfg)
    engine.check_cluster_cpus(SweepConfig(cpus_per_trial=4, address="10.0.0.5:6379"))     # fits: no error


@pytest.mark.parametrize("argv, words", [
    (["--reps", "1000000000"], ["--reps", "100..100000"]),
    (["--n-trials", "10000000000000"], ["--n-trials"]),
    (["--grid", "q=" + ",".join(str(v) for v in range(1, 101)), "--grid", "mu_water=" + ",".join(map(str, range(101))),
      "--seeds", "0,1"], ["20200 trials", "more than 10000"]),
])
def test_sweep_counts_have_upper_bounds(argv, words, tmp_path, capsys):
    refused(_sweep_main(), [*argv, "--out", str(tmp_path / "s")], capsys, words)


def test_datasets_episodes_have_an_upper_bound(tmp_path, capsys):
    refused(_datasets_main(), ["--episodes", "100000000", "--data-path", str(tmp_path / "d")], capsys,
            ["--episodes", "'100000000'"], starts="error:")


def test_model_of_another_env_is_checked_before_any_baseline_is_tuned(residual_run, tmp_path, capsys, monkeypatch):
    import equiglb.agents.trainer as trainer

    monkeypatch.setattr(trainer, "check_baselines", lambda *a, **k: pytest.fail("baselines built (tuned) first"))
    refused(_train, ["-i", str(residual_run / "model.zip"), "--env", "equiglb/EquitableGLB-multimodel-v0",
                     "--env-kwargs", "episode_length=24", "action_mode=eglb_residual", "--baselines",
                     "online-eglb-tuned", "--no-progress", "-f", str(tmp_path / "logs")], capsys,
            ["--trained-agent", "shape"], starts="train.py: error:")
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("config.yml"))


# ====================================================================== class: no tracebacks
def test_sweep_out_in_an_unwritable_place(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    refused(_sweep_main(), ["--out", str(tmp_path / "plain" / "sweep"), "-n", "64"], capsys,
            ["--out", "plain", "cannot create the sweep folder"])


def test_sweep_resume_with_a_corrupt_sweep_yml(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.yml").write_text("algos: [ppo\n  seeds: {")
    refused(_sweep_main(), ["--out", str(out), "--resume", "-n", "64"], capsys, ["--resume", "sweep.yml",
                                                                                  "not readable"])
    (out / "sweep.yml").write_text("- just\n- a list\n")
    refused(_sweep_main(), ["--out", str(out), "--resume", "-n", "64"], capsys, ["sweep.yml", "list"])


@pytest.mark.parametrize("content", ["{\"status\": \"ok\", \"objec", "[1, 2]", "{\"trial_id\": \"x\"}", "\xff\xfe"])
def test_sweep_corrupt_trial_record_counts_as_not_finished(content, tmp_path, capsys):
    pytest.importorskip("ray")
    from equiglb.sweep.worker import RESULT_FILE, read_result

    (tmp_path / RESULT_FILE).write_bytes(content.encode("latin-1"))
    assert read_result(tmp_path) is None                                      # --resume runs the trial again
    err = capsys.readouterr().err
    assert "warning" in err and RESULT_FILE in err and "Traceback" not in err


@pytest.mark.parametrize("argv, words", [
    (["--bootstrap-seed", "-1"], ["--bootstrap-seed", "-1"]),
    (["--seeds", "0,99999999999999999999"], ["--seeds", "4294967295"]),
    (["--eval-freq", "1e400"], ["--eval-freq"]),
])
def test_sweep_numbers_refused_before_any_trial(argv, words, tmp_path, capsys):
    refused(_sweep_main(), [*argv, "--out", str(tmp_path / "s")], capsys, words)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("text, words", [
    ("n_timesteps: lots\n", ["n_timesteps='lots'"]),
    ("n_timesteps: 1.0e+400\n", ["n_timesteps"]),
    ("reps: 50.5\n", ["reps=50.5"]),
    ("bootstrap_seed: -3\n", ["bootstrap_seed=-3"]),
    ("seeds: [100000000000000000000]\n", ["seeds=100000000000000000000"]),
    ("cpus_per_trial: many\n", ["cpus_per_trial='many'"]),
    ("num_cpus: 2.5\n", ["num_cpus=2.5"]),
    ("resume: 'yes'\n", ["resume"]),
    ("out: 5\n", ["--out"]),
])
def test_sweep_config_values_of_the_wrong_type(text, words, tmp_path, capsys):
    conf = tmp_path / "c.yml"
    conf.write_text(text)
    refused(_sweep_main(), ["--config", str(conf), "--out", str(tmp_path / "s")] if "out:" not in text
            else ["--config", str(conf)], capsys, words)
    assert not (tmp_path / "s").exists()


def test_datasets_negative_seed(tmp_path, capsys):
    refused(_datasets_main(), ["--seed", "-1", "--data-path", str(tmp_path / "d")], capsys, ["--seed", "-1"],
            starts="error:")


def test_datasets_data_path_that_is_a_file(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    refused(_datasets_main(), ["--data-path", str(tmp_path / "plain")], capsys, ["--data-path", "not a folder"],
            starts="error:")
    refused(_datasets_main(), ["--data-path", str(tmp_path / "plain" / "sub")], capsys,
            ["--data-path", "cannot create"], starts="error:")


def test_datasets_existing_name_is_refused_before_anything_is_written(tmp_path, capsys):
    data = tmp_path / "d"
    taken = data / "equiglb" / "EquitableGLB-test" / "offline-v0"
    taken.mkdir(parents=True)
    (taken / "precious").write_text("kept")
    refused(_datasets_main(), ["--split", "test", "--policies", "min-cost,offline", "--env-kwargs",
                               "episode_length=6", "--data-path", str(data)], capsys,
            ["already exist", "offline-v0", "nothing was written"], starts="error:")
    assert not (data / "equiglb" / "EquitableGLB-test" / "min-cost-v0").exists()     # not half a run
    assert (taken / "precious").read_text() == "kept"


def test_datasets_a_failing_policy_leaves_no_dataset_of_the_others(tmp_path, capsys):
    # the offline optimum leaves load unserved on these windows (test_datasets): its replay is refused, and
    # min-cost, recorded before it, is not written either (all datasets of a run, or none)
    main = _datasets_main()
    code, _, err = run_cli(main, ["--env", "equiglb/EquitableGLB-multimodel-v0", "--policies", "min-cost,offline",
                                  "--action-mode", "routing", "--env-kwargs", "episode_length=12", "--data-path",
                                  str(tmp_path / "d")], capsys)
    assert code == 1 and "offline: replayed return" in one_error_line(err, "error:")
    assert not list((tmp_path / "d").rglob("*.arrow"))


def test_reset_options_that_are_not_a_dict():
    env = gym.make("equiglb/EquitableGLB-v0", episode_length=4)
    for options in ([3], "start=3", 3):
        with pytest.raises(OptionError, match=r"reset\(options=.*expected a dict"):
            env.reset(options=options)


@pytest.mark.parametrize("start, words", [([0, 1], "shape (2,)"), ([[0], [1], [2]], "shape (3, 1)"),
                                          ([0, [1, 2], 3], "a ragged list")])
def test_vector_reset_start_of_the_wrong_length(start, words):
    venv = gym.make_vec("equiglb/EquitableGLB-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        episode_length=4)
    with pytest.raises(OptionError, match=r"one slot or a list of 3 slots") as info:
        venv.reset(options={"start": start})
    assert words in str(info.value)
    venv.reset(options={"start": [0, 1, 2]})            # the right length works


def test_region_weights_whose_equity_prices_leave_the_solvers_range():
    N = equiglb.load_scenario("synthetic").N
    for mode in ("mpc_residual", "site_scores"):
        with pytest.raises(OptionError, match=r"region_weights: the largest weight 1e\+12 times mu_carbon"):
            gym.make("equiglb/EquitableGLB-v0", action_mode=mode, region_weights=[1e12] + [0.0] * (N - 1))
    env = gym.make("equiglb/EquitableGLB-v0", action_mode="mpc_residual", mpc_horizon=2, episode_length=3,
                   region_weights=[1e3] + [0.0] * (N - 1))                 # large but in range: runs
    env.reset(seed=0)
    for _ in range(3):
        assert np.isfinite(env.step(np.full(2, 1.0, np.float32))[1])


def test_proportional_baseline_with_no_capacity_anywhere():
    from equiglb.baselines import make_policy
    from equiglb.ledger import evaluate

    scn = equiglb.load_scenario("synthetic", hours=24, seed=1)
    empty = dataclasses.replace(scn, capacity=np.zeros(scn.N))
    with np.errstate(all="raise"):                          # no 0/0 on the way
        x = make_policy("proportional").schedule(empty, empty.weights)
    assert np.all(x == 0.0)
    assert evaluate(empty, x).unserved_load == pytest.approx(float(scn.demand.sum()))


@pytest.mark.parametrize("args, words", [((10.5, 5), "window start=10.5"), ((10, 5.5), "window length=5.5"),
                                         (("10", 5), "window start='10'")])
def test_scenario_window_of_non_integers(args, words):
    scn = equiglb.load_scenario("synthetic", hours=48, seed=1)
    with pytest.raises(OptionError) as info:
        scn.window(*args)
    assert words in str(info.value)
    assert scn.window(10.0, 5.0).T == 5                     # integral floats are integers


def test_clis_as_processes_exit_2_with_one_error_line(tmp_path):
    """End to end: the status, the single error line and no traceback, from real processes (started together)."""
    pytest.importorskip("ray")
    pytest.importorskip("minari")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    env.pop("RAY_ADDRESS", None)
    cases = {
        "sweep --address": ([sys.executable, "-m", "equiglb.sweep", "--address", f"127.0.0.1:{_free_port()}", "--out",
                             str(tmp_path / "s"), "-n", "64"], "cannot connect"),
        "datasets --seed": ([sys.executable, "-m", "equiglb.datasets", "--seed", "-4", "--data-path",
                             str(tmp_path / "d")], "--seed"),
        "train -n 1e400": ([sys.executable, "train.py", "-n", "1e400"], "--n-timesteps"),
    }
    procs = {name: subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (cmd, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        why = f"{name}: exit {proc.returncode}\n--- stdout ---\n{out[-2000:]}\n--- stderr ---\n{err[-3000:]}"
        assert proc.returncode == 2, why
        assert cases[name][1] in one_error_line(err), why
    assert not (tmp_path / "s").exists()


# ====================================================================== class: checked up front
@pytest.mark.parametrize("argv, words", [
    # the sweep's default id (ppo.yml's tuned one) is in the mpc_residual mode, which refuses forecast noise
    (["--grid", "forecast_noise=0.1"], ["forecast_noise", "0.1", "mpc_residual"]),
    (["--grid", "mpc_horizon=500"], ["mpc_horizon=500"]),
    (["--grid", "action_mode=routing", "--env-kwargs", "mpc_residual_max_factor=2"], ["mpc_residual_max_factor"]),
    (["--hyperparams", "n_steps=0"], ["n_steps"]),
])
def test_sweep_checks_every_trial_the_way_the_trial_will(argv, words, tmp_path, capsys):
    out = tmp_path / "sweep"
    refused(_sweep_main(), [*argv, "--out", str(out), "-n", "64", "--seeds", "0"], capsys, words)
    assert not out.exists()
