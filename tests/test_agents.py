"""Agents: hyperparameters, a short training run of every algorithm, save/load/evaluate round trip.

Training runs are a few hundred steps on the synthetic scenario with 24-hour episodes (fast)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from equiglb.agents import ALGOS, AgentPolicy
from equiglb.agents.algos import HyperparamError, load_hyperparams, parse_overrides
from equiglb.agents.cli import main
from equiglb.agents.evaluate import evaluate_models, scenario_of
from equiglb.agents.evaluate import main as evaluate_main
from equiglb.agents.policy import EnsemblePolicy
from equiglb.agents.runs import UserError
from equiglb.baselines import compare, make_policy
from equiglb.baselines.compare import run_policies
from equiglb.ledger import evaluate

ENV = "equiglb/EquitableGLB-v0"
# the env's own action mode: its actions move the routing continuously, so two agents' schedules differ
# (the MPC residual of ppo.yml's default is covered by tests/test_mpc_solver.py's end-to-end run)
SMALL = ["--env-kwargs", "episode_length=24", "action_mode=site_scores", "--eval-freq", "0", "--no-progress",
         "--baselines"]
# off-policy algorithms must start learning within the short budget
FAST = {"ppo": ["n_steps=32", "batch_size=64", "n_epochs=2"], "a2c": ["n_steps=8"],
        "sac": ["learning_starts=100", "batch_size=32"], "td3": ["learning_starts=100", "batch_size=32"],
        "ddpg": ["learning_starts=100", "batch_size=32"]}


def test_parse_overrides_reads_yaml_values():
    got = parse_overrides(["gamma=0.995", "n_steps:128", "policy_kwargs={net_arch: [32, 32]}",
                           "normalize=false", "env_kwargs.episode_length=48"])
    assert got == {"gamma": 0.995, "n_steps": 128, "policy_kwargs": {"net_arch": [32, 32]},
                   "normalize": False, "env_kwargs": {"episode_length": 48}}
    with pytest.raises(HyperparamError, match="key=value"):
        parse_overrides(["gamma"])


def test_hyperparams_default_env_entry_and_overrides():
    for algo in ALGOS:
        hp = load_hyperparams(algo, "some/Unknown-v0")
        assert hp["policy"] == "MlpPolicy" and hp["n_timesteps"] > 0
        own = load_hyperparams(algo, "equiglb/EquitableGLB-multimodel-240h-v0")
        assert "env_kwargs" not in own          # the tuned settings are the id's registered defaults
    own = load_hyperparams("ppo", "equiglb/EquitableGLB-residual-v0")
    hp = load_hyperparams("ppo", "equiglb/EquitableGLB-residual-v0", {"gamma": 0.999,
                                                                      "env_kwargs": {"episode_length": 24}})
    assert hp["gamma"] == 0.999 and hp["env_kwargs"] == {"episode_length": 24}
    assert own["gamma"] == 0.9 and own["gamma"] != hp["gamma"]
    with pytest.raises(HyperparamError, match="unknown hyperparameter.*n_stepz"):
        load_hyperparams("ppo", ENV, {"n_stepz": 3})
    with pytest.raises(HyperparamError, match="gamma"):
        load_hyperparams("ppo", ENV, {"gamma": 1.5})


def _check_schedule(window, x):
    """Demand met (no unserved load in these instances) and capacity respected."""
    np.testing.assert_allclose(x.sum(axis=(1, 3)), window.demand, rtol=1e-9, atol=1e-9)
    it_mwh = (x @ window.energy_per_unit).sum(axis=2)
    assert np.all(it_mwh <= window.capacity[None] * (1 + 1e-9) + 1e-9)
    assert np.all(x[:, ~window.allowed] == 0) if (~window.allowed).any() else True


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_short_training_run_of_every_algorithm(algo, tmp_path):
    n = 300
    code = main(["--algo", algo, "--env", ENV, "-n", str(n), "-f", str(tmp_path), "--seed", "1",
                 "--n-envs", "2", *SMALL, "--hyperparams", *FAST[algo]])
    assert code == 0
    (run,) = (tmp_path / algo).iterdir()
    cfg = yaml.safe_load((run / "config.yml").read_text())
    assert cfg["num_timesteps"] >= n and cfg["seed"] == 1 and cfg["algo"] == algo
    assert cfg["versions"]["stable_baselines3"]
    for f in ("model.zip", "vecnormalize.pkl", "eval/table.csv", "eval/table.json", "eval/cost_vs_worst.png",
              "eval/footprints.png"):
        assert (run / f).is_file(), f
    assert any((run / "tb").rglob("events.out.tfevents.*"))
    assert (run / "replay_buffer.pkl").is_file() == (algo in ("sac", "td3", "ddpg"))
    rows = yaml.safe_load((run / "eval" / "table.json").read_text())
    assert [r["policy"] for r in rows] == [f"{algo} (agent)"]
    assert math.isfinite(rows[0]["objective"]) and rows[0]["objective"] > 0


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(["--algo", "ppo", "--env", ENV, "-n", "256", "-f", str(root), *SMALL,
                 "--hyperparams", *FAST["ppo"]]) == 0
    return next((root / "ppo").iterdir())


def test_save_load_evaluate_round_trip(trained_run):
    """A loaded agent routes feasibly, its return is -J(x) of its schedule, and it is deterministic."""
    full = scenario_of(ENV)
    window = full.split("test").window(0, 48)
    agent = AgentPolicy(trained_run / "model.zip", reference=full)
    assert agent.algo == "ppo" and agent.env_id == ENV and agent.obs_rms is not None
    x = agent.schedule(window, window.weights)
    assert x.shape == (48, window.N, window.J, window.K)
    _check_schedule(window, x)
    report = evaluate(window, x, window.weights)
    assert agent.episode_return == pytest.approx(-report.objective_usd, rel=1e-9)
    again = AgentPolicy(trained_run, reference=full).schedule(window, window.weights)   # run folder works too
    np.testing.assert_array_equal(x, again)
    # the same window without the reference: still a feasible schedule of the same shape
    alone = AgentPolicy(trained_run / "model.zip").schedule(window, window.weights)
    _check_schedule(window, alone)


def test_agent_table_row_is_the_ledger_of_its_schedule(trained_run):
    """The evaluation table's agent row is the ledger's report of the recorded schedule."""
    rows = yaml.safe_load((trained_run / "eval" / "table.json").read_text())
    full = scenario_of(ENV)
    window = full.split("test")
    x = AgentPolicy(trained_run / "model.zip", reference=full).schedule(window, window.weights)
    rep = evaluate(window, x, window.weights)
    assert rows[0]["objective"] == pytest.approx(rep.objective_usd, rel=1e-9)
    assert rows[0]["energy_cost_usd"] == pytest.approx(rep.energy_cost_usd, rel=1e-9)
    assert rows[0]["carbon_max_t"] == pytest.approx(rep.carbon_t.max(), rel=1e-9)


def test_table_has_a_row_per_policy_and_baseline_rows_equal_compare(trained_run, tmp_path):
    """Baseline rows are the baselines' compare() on the same window; no policy beats the offline optimum."""
    names = ["offline", "min-cost", "nearest", "random"]
    out = evaluate_models([trained_run, trained_run / "model.zip"], split="test", baselines=names, out_dir=tmp_path,
                          names=["agent-a", "agent-b"], print_table=False)
    rows = json.loads((out / "table.json").read_text())
    assert [r["policy"] for r in rows] == names + ["agent-a", "agent-b"]
    window = scenario_of(ENV).split("test")
    expected = compare(window, [make_policy(n) for n in names], window.weights)
    for got, exp in zip(rows, expected):
        for col in ("objective", "energy_cost_usd", "carbon_max_t", "water_max_m3", "unserved", "gap_to_offline"):
            assert got[col] == pytest.approx(exp[col], rel=1e-9, abs=1e-9), (got["policy"], col)
    assert rows[0]["gap_to_offline"] == 0
    assert all(r["gap_to_offline"] >= -1e-6 for r in rows)            # the offline optimum is optimal
    assert rows[-1]["objective"] == pytest.approx(rows[-2]["objective"], rel=1e-12)
    for f in ("table.csv", "footprints.png", "cost_vs_worst.png", "routing_agent-a.png"):
        assert (out / f).is_file(), f


def test_evaluate_command_on_another_scenario(trained_run, tmp_path, eglb_dir, capsys):
    """python -m equiglb.agents.evaluate: a synthetic-trained agent on the eGLB-2022 test window."""
    code = evaluate_main([str(trained_run), "--env", "equiglb/EquitableGLB-eglb2022-v0", "--env-kwargs",
                          f"data_dir={eglb_dir}", "--baselines", "offline", "min-cost", "-o", str(tmp_path)])
    assert code == 0
    rows = json.loads((tmp_path / "table.json").read_text())
    assert [r["policy"] for r in rows] == ["offline", "min-cost", f"ppo:{trained_run.name}"]
    assert rows[0]["scenario"] == "eglb-2022" and rows[-1]["gap_to_offline"] >= -1e-6
    assert "Table and plots in" in capsys.readouterr().out
    assert evaluate_main([str(tmp_path / "nothing.zip"), "--env", ENV]) == 2


@pytest.fixture(scope="module")
def second_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs2")
    assert main(["--algo", "ppo", "--env", ENV, "-n", "256", "-f", str(root), "--seed", "7", *SMALL,
                 "--hyperparams", *FAST["ppo"]]) == 0
    return next((root / "ppo").iterdir())


def test_an_ensemble_plays_the_mean_of_its_members_actions(trained_run, second_run):
    full = scenario_of(ENV)
    window = full.split("test").window(0, 48)
    a, b = (AgentPolicy(r / "model.zip", reference=full) for r in (trained_run, second_run))
    ens = EnsemblePolicy([a, b])
    assert ens.name == "ensemble(2)"
    x = ens.schedule(window, window.weights)
    _check_schedule(window, x)
    assert ens.episode_return == pytest.approx(-evaluate(window, x, window.weights).objective_usd, rel=1e-9)
    # by hand: one environment, both members read the same observation, the mean action is played
    ref = AgentPolicy(trained_run / "model.zip", reference=full)
    other = AgentPolicy(second_run / "model.zip", reference=full)
    ref.reset(window, window.weights)
    for t in range(window.T):
        mean = (ref.action(ref._obs).astype(np.float64) + other.action(ref._obs)) / 2
        np.testing.assert_allclose(ref.play(t, mean.astype(np.float32)), x[t], rtol=1e-12, atol=1e-12)
    assert not np.allclose(x, AgentPolicy(second_run / "model.zip", reference=full).schedule(window, window.weights))
    # an ensemble of one agent twice is that agent
    solo = AgentPolicy(trained_run / "model.zip", reference=full).schedule(window, window.weights)
    twice = EnsemblePolicy([AgentPolicy(trained_run / "model.zip", reference=full) for _ in range(2)])
    np.testing.assert_array_equal(twice.schedule(window, window.weights), solo)


def test_an_ensemble_needs_two_members_of_one_environment(trained_run):
    a = AgentPolicy(trained_run / "model.zip")
    with pytest.raises(UserError, match="at least two agents"):
        EnsemblePolicy([a])
    b = AgentPolicy(trained_run / "model.zip", env_kwargs={**a.env_kwargs, "forecast_noise": 0.1})
    with pytest.raises(UserError, match="acts in"):
        EnsemblePolicy([a, b])


def test_evaluate_ensemble_row(trained_run, second_run, tmp_path, capsys):
    out = evaluate_models([trained_run, second_run], split="test", baselines=["offline"], out_dir=tmp_path,
                          names=["a", "b"], print_table=False, ensemble=True)
    rows = json.loads((out / "table.json").read_text())
    assert [r["policy"] for r in rows] == ["offline", "a", "b", "ensemble(2)"]
    full = scenario_of(ENV)
    window = full.split("test")
    ens = EnsemblePolicy([AgentPolicy(r / "model.zip", reference=full) for r in (trained_run, second_run)])
    x = ens.schedule(window, window.weights)
    assert rows[-1]["objective"] == pytest.approx(evaluate(window, x, window.weights).objective_usd, rel=1e-9)
    assert (out / "routing_ensemble_2.png").is_file()
    assert evaluate_main([str(trained_run), "--ensemble", "-o", str(tmp_path / "one")]) == 2
    assert "--ensemble needs at least two models" in capsys.readouterr().err


def test_run_policies_schedules_each_policy_once_and_returns_what_it_evaluated():
    """compare.run_policies: one schedule() call per policy; the returned schedule, report and row agree."""
    window = scenario_of(ENV, {"scenario_options": {"hours": 288}}).split("test").window(0, 12)
    calls: dict[str, int] = {}

    class Counted:
        def __init__(self, inner):
            self.inner, self.name = inner, inner.name

        def schedule(self, scenario, weights=None):
            calls[self.name] = calls.get(self.name, 0) + 1
            return self.inner.schedule(scenario, weights)

    pols = [Counted(make_policy(n)) for n in ("min-cost", "proportional")]
    out = run_policies(window, pols, window.weights, offline_objective=1.0)
    assert calls == {"min-cost": 1, "proportional": 1}
    for row in out.rows:
        x = out.schedules[row["policy"]]
        rep = evaluate(window, x, window.weights)
        assert rep.objective_usd == out.reports[row["policy"]].objective_usd == row["objective"]
    with pytest.raises(ValueError, match="two policies are named 'min-cost'"):
        run_policies(window, [make_policy("min-cost"), make_policy("min-cost")], offline_objective=1.0)


def test_default_labels_are_distinct_for_run_folders_of_the_same_name(tmp_path):
    from equiglb.agents.evaluate import default_labels

    a, b, c = (tmp_path / "seed0" / "ppo" / "run_1" / "model.zip", tmp_path / "seed1" / "ppo" / "run_1" / "model.zip",
               tmp_path / "other" / "model.zip")
    assert default_labels([a, b, c], ["ppo", "ppo", "sac"]) == ["ppo:seed0/ppo/run_1", "ppo:seed1/ppo/run_1",
                                                                "sac:other"]
    assert default_labels([a, c], ["ppo", "ppo"]) == ["ppo:run_1", "ppo:other"]
    # the same model twice has no distinct label: it stays a collision, which evaluate refuses (give --names)
    assert default_labels([a, a], ["ppo", "ppo"])[0] == default_labels([a, a], ["ppo", "ppo"])[1]
