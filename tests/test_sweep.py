"""Sweeps on Ray Tune: outputs and their columns, the summary against the trials, resume, the cluster path.

Ray's start-up is slow, so the sweeps here are tiny (256 steps, two baselines) and each test runs one
or two sweeps; the configuration checks run without Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rayhead import free_port, stop_ray_head

import equiglb
from equiglb.agents.algos import load_hyperparams
from equiglb.stats import summarize, summarize_groups
from equiglb.sweep.__main__ import main
from equiglb.sweep.config import DEFAULT_ENV_ID, SweepConfig, add_arguments, config_from_args, expand_trials, parse_grid
from equiglb.sweep.engine import holdout_env_kwargs
from equiglb.sweep.trial import holdout_scenario

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)


@pytest.fixture(autouse=True)
def ray_isolated(monkeypatch):
    """Every Ray session of a test (in-process or in a subprocess it starts) is its own: a temp dir of its
    own (``RAY_TMPDIR``, short: Ray's socket paths must fit in 107 bytes) and no ``RAY_ADDRESS``, so that
    a Ray instance that other tests or users run on the machine is neither joined nor disturbed (the sweep
    starts its local instance with ``address="local"``, on ports the OS picks)."""
    tmp = tempfile.mkdtemp(prefix="eqr", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", tmp)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def run_logged(cmd: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """Start ``cmd`` with its stdout and stderr going to ``log`` (read by :func:`output_of` for assertion
    messages: a failing test shows what the process printed)."""
    fh = open(log, "w")  # noqa: SIM115 - closed with the process by the caller's wait
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, **kwargs)


def output_of(log: Path, tail: int = 4000) -> str:
    """The last ``tail`` characters a process started by :func:`run_logged` printed."""
    text = log.read_text(errors="replace") if log.is_file() else "(no output file)"
    return f"\n--- output of the process ({log}) ---\n{text[-tail:]}"


# The sweep's mechanics on an id without a planner in the loop (the default id solves two MPC programs a step,
# through cvxpy at q = 2); README.md's sweep block, run by tests/test_docs.py, sweeps the default id.
TINY = ["-n", "256", "--env", "equiglb/EquitableGLB-240h-v0", "--baselines", "offline", "online-eglb", "--num-cpus",
        "2", "--reps", "200"]
AGENT_COLUMNS = ["trial_id", "algo", "seed", "status", "objective", "gap_to_offline", "energy_cost_usd",
                 "carbon_max_t", "water_max_m3", "wall_time_s", "run_dir", "error"]


# ---------------------------------------------------------------------- without Ray
def test_grid_expands_to_algos_points_seeds_with_stable_ids():
    cfg = SweepConfig(algos=["ppo", "sac"], seeds=[0, 1, 2], grid=parse_grid(["q=1,2,inf", "mu_water=30,60"]))
    trials = expand_trials(cfg)
    assert len(trials) == 2 * 6 * 3
    assert len({t.trial_id for t in trials}) == len(trials)
    assert [t.trial_id for t in trials] == [t.trial_id for t in expand_trials(cfg)]
    assert {t.algo for t in trials if t.with_baselines} == {"ppo"}
    assert {tuple(t.point.items()) for t in trials} == {(("q", q), ("mu_water", w)) for q in ("1", "2", "inf")
                                                       for w in ("30", "60")}


@pytest.mark.parametrize("argv, needle", [
    (["--algos", "ppo,nope"], "'nope'"),
    (["--seeds", "0,x"], "--seeds"),
    (["--seeds", "1,1"], "repeated seed"),
    (["--grid", "q="], "empty value"),
    (["--grid", "q=2", "--env-kwargs", "q=3"], "also fixed"),
    (["--grid", "mu_water=-5"], "mu_water"),
    (["--grid", "nonsense_key=1"], "nonsense_key"),
    (["--baselines", "oracle"], "oracle"),
    (["--env", "equiglb/Nope-v0"], "equiglb/Nope-v0"),
    (["--search", "optuna", "--grid", "q=2,inf"], "one value per --grid key"),
    # checked the way a trial checks it: a hyperparameter of one algorithm only, given to both
    (["--algos", "ppo,a2c", "--hyperparams", "n_epochs=1"], "a2c: unknown hyperparameter(s) ['n_epochs']"),
])
def test_bad_configuration_is_refused_before_any_work(tmp_path, capsys, argv, needle):
    out = tmp_path / "sweep"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "equiglb.sweep: error:" in err and needle in err, err
    assert not out.exists()


def test_config_file_with_the_same_keys_and_flags_override(tmp_path, capsys):
    conf = tmp_path / "sweep.yml"
    conf.write_text(yaml.safe_dump({"algos": "ppo,sac", "seeds": [0, 1], "grid": {"q": [2, float("inf")]},
                                    "n-timesteps": 512, "env_kwargs": {"episode_length": 48}}))
    p = argparse.ArgumentParser()
    add_arguments(p)
    cfg = config_from_args(p.parse_args(["--config", str(conf), "--seeds", "3"]))
    assert cfg.algos == ["ppo", "sac"] and cfg.seeds == [3] and cfg.grid == {"q": ["2", "inf"]}
    assert cfg.n_timesteps == 512 and cfg.env_kwargs == {"episode_length": "48"}
    conf.write_text(yaml.safe_dump({"algos": ["ppo"], "unknown-key": 1}))
    assert main(["--config", str(conf), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'unknown-key'" in err and str(conf) in err


def test_existing_sweep_folder_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.yml").write_text("algos: [ppo]\n")
    (out / "trials.csv").write_text("precious\n")
    assert main(["--out", str(out), "--seeds", "0"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "trials.csv").read_text() == "precious\n"


def test_holdout_scenario_has_no_test_window():
    scn = holdout_scenario("synthetic", val_fraction=0.2)
    base = equiglb.load_scenario("synthetic")
    start, length = base.splits["train"]
    assert set(scn.splits) == {"fit", "val", "all"}
    fit, val = scn.splits["fit"], scn.splits["val"]
    assert fit[0] == start and fit[0] + fit[1] == val[0] and val[0] + val[1] == start + length
    assert val[1] == round(0.2 * length)
    assert scn.T == start + length < base.T          # every slot after the train split is gone
    np.testing.assert_array_equal(scn.demand, base.demand[: scn.T])
    kwargs = holdout_env_kwargs(SweepConfig(grid={"q": ["2"]}), 0.2)
    assert kwargs["scenario"] == "holdout" and kwargs["q"] == "2"
    assert yaml.safe_load(kwargs["scenario_options"]) == {"base": "synthetic", "val_fraction": 0.2}


def test_summarize_groups_is_summarize_per_group():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"policy": ["a"] * 5 + ["b"] * 3, "q": ["2"] * 8, "x": rng.normal(size=8)})
    s = summarize_groups(df, ["policy", "q"], ["x"], reps=500, seed=3)
    assert list(s["policy"]) == ["a", "b"] and list(s["n_seeds"]) == [5, 3]
    for pol, row in s.set_index("policy").iterrows():
        ref = summarize(df[df.policy == pol]["x"].to_numpy(), reps=500, seed=3)
        for k in ("mean", "iqm", "mean_ci_low", "mean_ci_high", "iqm_ci_low", "iqm_ci_high"):
            assert row[f"x_{k}"] == pytest.approx(ref[k])
        assert row["x_mean_ci_low"] <= row["x_mean"] <= row["x_mean_ci_high"]


# ---------------------------------------------------------------------- on Ray
def _check_outputs(out: Path, algos: list[str], seeds: list[int], grid_key: str, points: list[str]) -> pd.DataFrame:
    trials = pd.read_csv(out / "trials.csv", dtype={grid_key: str})
    for c in [*AGENT_COLUMNS, grid_key]:
        assert c in trials.columns, c
    assert len(trials) == len(algos) * len(seeds) * len(points)
    assert (trials["status"] == "ok").all(), trials["error"].tolist()
    assert set(map(tuple, trials[["algo", "seed", grid_key]].astype(str).values)) == \
        {(a, str(s), p) for a in algos for s in seeds for p in points}
    for _, r in trials.iterrows():   # each trial's row is its own run's agent row
        table = pd.read_csv(Path(r["run_dir"]) / "eval" / "table.csv")
        agent = table[table["policy"] == f"{r['algo']} (agent)"].iloc[0]
        assert r["objective"] == pytest.approx(agent["objective"], rel=1e-12)
        assert r["gap_to_offline"] == pytest.approx(agent["gap_to_offline"], rel=1e-12)
    summary = pd.read_csv(out / "summary.csv", dtype={grid_key: str})
    for c in ("kind", "policy", grid_key, "n_seeds", "gap_to_offline_mean", "gap_to_offline_iqm",
              "gap_to_offline_mean_ci_low", "gap_to_offline_mean_ci_high", "objective_mean", "objective_iqm",
              "objective_mean_ci_low", "objective_mean_ci_high"):
        assert c in summary.columns, c
    agents = summary[summary["kind"] == "agent"]
    assert len(agents) == len(algos) * len(points)
    for _, row in agents.iterrows():   # the summary's mean is the mean of the trials
        sub = trials[(trials["algo"] == row["policy"]) & (trials[grid_key] == row[grid_key])]
        assert row["n_seeds"] == len(seeds) == len(sub)
        assert row["gap_to_offline_mean"] == pytest.approx(sub["gap_to_offline"].mean(), rel=1e-12)
        assert row["objective_mean"] == pytest.approx(sub["objective"].mean(), rel=1e-12)
        assert row["gap_to_offline_mean_ci_low"] <= row["gap_to_offline_mean"] <= row["gap_to_offline_mean_ci_high"]
    base = summary[summary["kind"] == "baseline"]
    own = {p for p in base["policy"] if p.endswith("(agent's base)")}   # a residual agent's planner alone
    assert set(base["policy"]) - own == {"offline", "online-eglb"}
    assert len(base) == (2 + len(own)) * len(points)
    assert (summary["information"].fillna("") != "").all()
    assert np.allclose(base[base["policy"] == "offline"]["gap_to_offline_mean"], 0.0)
    assert json.loads((out / "summary.json").read_text())[0].keys() == set(summary.columns)
    assert (out / "gap_ci.png").stat().st_size > 0 and (out / "frontier.png").stat().st_size > 0
    return trials


def _run_dirs(out: Path) -> dict[str, list[str]]:
    return {d.name: sorted(p.name for p in (d / d.name.split("__")[0]).iterdir())
            for d in (out / "trials").iterdir() if (d / d.name.split("__")[0]).is_dir()}


def _finished(out: Path) -> set[str]:
    return {d.name for d in (out / "trials").iterdir() if (d / "result.json").is_file()} \
        if (out / "trials").is_dir() else set()


def _trial_logs(out: Path) -> str:
    """The end of every trial's train.log and error.json (for assertion messages)."""
    parts = []
    for d in sorted((out / "trials").iterdir()) if (out / "trials").is_dir() else []:
        for name in ("error.json", "train.log"):
            if (d / name).is_file():
                parts.append(f"--- {d.name}/{name} ---\n{(d / name).read_text(errors='replace')[-1500:]}")
    return "\n".join(parts)


def test_killed_local_sweep_resumes_only_the_missing_trials(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["--algos", "ppo,a2c", "--seeds", "0,1", "--grid", "q=2,inf", "--out", str(out), *TINY]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    log = tmp_path / "sweep_driver.log"
    proc = run_logged([sys.executable, "-m", "equiglb.sweep", *argv], log, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 900
        while len(_finished(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        proc.kill()            # the sweep's driver, killed mid-sweep
        proc.wait()
    time.sleep(5)              # the trials' processes exit with their parents
    done = _finished(out)
    why = (f"finished trials {sorted(done)}; driver exit code {proc.returncode} (-9: killed by the test)"
           f"{output_of(log)}\n{_trial_logs(out)}")
    assert 2 <= len(done) < 8, why
    runs_before = _run_dirs(out)

    code = main([*argv, "--resume"])
    captured = capsys.readouterr()
    assert code == 0, f"{captured.out[-3000:]}\n{captured.err[-3000:]}\n{_trial_logs(out)}"
    assert f"{len(done)} finished, running {8 - len(done)} " in captured.out, captured.out
    trials = _check_outputs(out, ["ppo", "a2c"], [0, 1], "q", ["2", "inf"])
    runs_after = _run_dirs(out)
    for tid in trials["trial_id"]:
        if tid in done:       # finished trials are not repeated
            assert runs_after[tid] == runs_before[tid], tid
        else:                 # the others ran once more, in a new run folder
            assert Path(trials.set_index("trial_id").loc[tid, "run_dir"]).name not in runs_before.get(tid, []), tid

    # a second sweep into the same folder is refused and changes nothing
    before = (out / "trials.csv").read_bytes()
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "trials.csv").read_bytes() == before


def test_failed_trial_is_reported_and_the_others_finish(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    # a hyperparameter of one algorithm only (PPO has n_epochs, A2C has not): the sweep refuses it before any
    # trial (test_bad_configuration_is_refused_before_any_work); with that check skipped, as for a failure only
    # train.py can see, the A2C trial fails in train.py and the others go on
    from equiglb.sweep import engine

    # sweep.__main__ imports preflight from the engine when it runs (after parsing the command line)
    monkeypatch.setattr(engine, "preflight", lambda cfg: engine.check_address(cfg.address))
    code = main(["--algos", "ppo,a2c", "--seeds", "0", "--hyperparams", "n_epochs=1", "--out", str(out), *TINY])
    captured = capsys.readouterr()
    assert code == 1, f"{captured.out[-3000:]}\n{captured.err[-3000:]}\n{_trial_logs(out)}"
    trials = pd.read_csv(out / "trials.csv")
    status = dict(zip(trials["algo"], trials["status"]))
    assert status == {"ppo": "ok", "a2c": "error"}
    err = str(trials.set_index("algo").loc["a2c", "error"])
    assert "n_epochs" in err
    assert "FAILED a2c" in captured.err and "--resume" in captured.out
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary[summary["kind"] == "agent"]["policy"]) == {"ppo"}


def test_sweep_on_a_ray_cluster_started_here(tmp_path):
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.is_file():
        ray_bin = Path(shutil.which("ray") or "ray")
    port = free_port()
    # As a user would: no RAY_AUTH_MODE set. `ray start` enables token authentication by itself when a token
    # exists (~/.ray/auth_token); the sweep must then connect with it on its own.
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    ray_tmp = tempfile.mkdtemp(prefix="eqray", dir="/tmp")   # short: Ray's socket paths must fit in 107 bytes
    start = subprocess.run([str(ray_bin), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                            "--num-cpus", "2", "--include-dashboard=false", "--temp-dir", ray_tmp],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        out = tmp_path / "sweep"
        proc = subprocess.run([sys.executable, "-m", "equiglb.sweep", "--algos", "ppo", "--seeds", "0",
                               "--grid", "mu_water=30,120", "--address", f"127.0.0.1:{port}", "--out", str(out),
                               "-n", "256", "--env", "equiglb/EquitableGLB-240h-v0", "--baselines", "offline",
                               "online-eglb", "--reps", "200"],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + _trial_logs(out)
        assert "on Ray (127.0.0.1:" in proc.stdout, proc.stdout[-3000:]
        trials = _check_outputs(out, ["ppo"], [0], "mu_water", ["30", "120"])
        # a larger water weight never increases the offline optimum's worst-region water
        base = pd.read_csv(out / "baselines.csv", dtype={"mu_water": str})
        off = base[base["policy"] == "offline"].groupby("mu_water")["water_max_m3"].mean()
        assert off["120"] <= off["30"] + 1e-6
        assert len(trials) == 2
    finally:
        stop_ray_head(ray_tmp, port)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_search_scores_on_the_validation_window_and_writes_a_best_config(tmp_path, capsys):
    out = tmp_path / "search"
    code = main(["--search", "optuna", "--n-trials", "2", "--algos", "ppo", "--seeds", "0", "--out", str(out),
                 "-n", "256", "--num-cpus", "2", "--hyperparams", "n_epochs=1"])
    captured = capsys.readouterr()
    assert code == 0, f"{captured.out[-3000:]}\n{captured.err[-3000:]}\n{_trial_logs(out)}"
    table = pd.read_csv(out / "search_ppo.csv")
    assert len(table) == 2 and (table["status"] == "ok").all(), table.to_dict("records")
    assert table["val_gap_to_offline"].is_monotonic_increasing          # best first
    for spec in (out / "trials").glob("*/spec.json"):                   # trained on fit, scored on val
        s = json.loads(spec.read_text())
        assert s["train_split"] == "fit" and s["eval_split"] == "val" and s["env_kwargs"]["scenario"] == "holdout"
        run = next((spec.parent / "ppo").iterdir())
        cfg = yaml.safe_load((run / "config.yml").read_text())
        assert cfg["eval_split"] == "val" and cfg["train_split"] == "fit"
    best = yaml.safe_load((out / "best_ppo.yml").read_text())[DEFAULT_ENV_ID]   # the sweep's env id
    row = table.iloc[0]
    assert best["learning_rate"] == pytest.approx(row["learning_rate"]) and best["gamma"] == row["gamma"]
    assert best["n_epochs"] == row["n_epochs"]       # searched values override the fixed -params
    assert f"-conf {out / 'best_ppo.yml'}" in captured.out
    # a complete entry that train.py (-conf) and RL Zoo read as they read the shipped files
    hp = load_hyperparams("ppo", DEFAULT_ENV_ID, path=out / "best_ppo.yml")
    assert hp["learning_rate"] == pytest.approx(row["learning_rate"]) and hp["n_timesteps"] > 0
