"""The monthly protocol of the ``world`` scenarios in train.py, ``python -m equiglb.agents.evaluate`` and
``equiglb.evaluate_policy`` (docs/data.md, *The monthly protocol*): each calendar month of the evaluated split is
one episode with its own offline optimum, the table reports the mean gap over months with a 95 % CI and
``months.csv`` every (policy, month); the test months are never seen in training or early stopping. Runs on two
zones of the real data (../shared/traces; skips with a reason when it is absent)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

import equiglb
from equiglb.protocol import episodes, evaluation_months, summary_rows, tuning_hours

ZONES = ["SG", "KR"]
TEST_MONTHS = [f"2024-{m:02d}" for m in range(7, 13)]
VAL_MONTHS = [f"2024-{m:02d}" for m in range(1, 7)]


@pytest.fixture(scope="module")
def data_dir(world_data_dir: Path) -> Path:
    """The real data folder (tests/conftest.py's ``world_data_dir``: skips with a reason when absent)."""
    return world_data_dir


@pytest.fixture(scope="module")
def small(data_dir):
    return equiglb.load_scenario("world", data_dir=data_dir, zones=ZONES)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_protocol_is_decided_by_the_scenarios_months(small):
    assert evaluation_months(equiglb.load_scenario("synthetic"), "test") is None      # one window
    assert evaluation_months(small, "test") == TEST_MONTHS
    assert evaluation_months(small, "val") == VAL_MONTHS
    assert evaluation_months(small, "2024-07") is None              # a single month is one window already
    assert tuning_hours(small) == 730                                # a mean month of the train year
    eps = episodes(small, "test")
    assert eps.months == TEST_MONTHS and eps.tune_hours == 730
    assert str(eps.probe.timestamps[0]) == "2024-07-01T00" and eps.probe.T == 744


def test_summary_is_the_mean_over_months_with_a_ci():
    rows = [{"policy": "a", "information": "none", "month": m, "hours_h": 720, "energy_cost_usd": c,
             "objective_usd": j, "offline_objective_usd": 100.0, "gap_to_offline_pct": j - 100.0, "wall_time_s": 1.0}
            for m, c, j in (("2024-07", 1.0, 110.0), ("2024-08", 3.0, 120.0), ("2024-09", 5.0, 105.0))]
    (s,) = summary_rows(rows, "x")
    assert s["months"] == 3 and s["energy_cost_usd"] == 3.0 and s["objective"] == pytest.approx(335 / 3)
    assert s["gap_to_offline"] == pytest.approx(0.35 / 3)
    assert s["gap_to_offline_ci_low"] <= s["gap_to_offline"] <= s["gap_to_offline_ci_high"]
    assert s["gap_to_offline_ci_low"] < s["gap_to_offline_ci_high"] and s["wall_time_s"] == 3.0


def test_evaluate_policy_runs_each_test_month_as_one_episode(data_dir, tmp_path):
    import gymnasium as gym

    kw = {"data_dir": str(data_dir), "scenario_options": {"zones": ZONES}}
    shape = gym.make("equiglb/EquitableGLB-world-v0", **kw).action_space.shape
    table = equiglb.evaluate_policy(lambda obs: np.zeros(shape, dtype=np.float32), "equiglb/EquitableGLB-world-v0",
                                    split="test", baselines=["offline", "min-cost"], env_kwargs=kw,
                                    plot_dir=tmp_path / "plots")
    assert list(table["policy"]) == ["offline", "min-cost", "agent"] and set(table["months"]) == {6}
    months = table.attrs["months"]
    assert len(months) == 3 * 6
    for name in table["policy"]:
        sel = months[months["policy"] == name]
        assert list(sel["month"]) == TEST_MONTHS and list(sel["hours_h"]) == [744, 744, 720, 744, 720, 744]
        row = table[table["policy"] == name].iloc[0]
        assert row["gap_to_offline"] == pytest.approx(sel["gap_to_offline_pct"].mean() / 100, rel=1e-12)
        assert row["gap_to_offline_ci_low"] <= row["gap_to_offline"] <= row["gap_to_offline_ci_high"]
    # each month has its own offline optimum, and every gap is measured against it
    off = months[months["policy"] == "offline"]
    assert (off["gap_to_offline_pct"] == 0).all() and off["offline_objective_usd"].nunique() == 6
    np.testing.assert_allclose(months["gap_to_offline_pct"],
                               100 * (months["objective_usd"] / months["offline_objective_usd"] - 1), rtol=1e-9)
    assert (months["gap_to_offline_pct"] >= -1e-6).all()
    assert len(_read_csv(tmp_path / "plots" / "months.csv")) == 18
    assert (tmp_path / "plots" / "table.csv").is_file() and (tmp_path / "plots" / "footprints.png").is_file()


def test_tiny_world_run_reports_every_test_month_and_never_sees_them(data_dir, tmp_path, capsys):
    from equiglb.agents.cli import build_parser, main
    from equiglb.agents.evaluate import main as evaluate_main
    from equiglb.agents.plan import plan_from_args
    from equiglb.agents.trainer import build, resolve

    argv = ["--algo", "ppo", "--env", "equiglb/EquitableGLB-world-v0", "--n-timesteps", "16", "--n-envs", "2",
            "--env-kwargs", f"data_dir={data_dir}", "scenario_options={zones: [SG, KR]}", "-params", "n_steps=8",
            "batch_size=16", "--eval-freq", "16", "--baselines", "online-eglb", "min-cost", "-f", str(tmp_path),
            "--no-progress", "--seed", "0"]
    # what the training and early-stopping environments cover: 2023 and the validation months, never 2024-07..12
    plan = resolve(plan_from_args(build_parser().parse_args(argv)))
    built = build(plan)
    assert built.venv is not None and built.eval_env is not None
    test_start, test_hours = built.venv.get_attr("scenario")[0].splits["test"]
    for cfg in built.venv.get_attr("config"):
        assert cfg.split == "train" and (cfg.split_start, cfg.split_length) == (0, 8760)
        assert cfg.random_start and cfg.split_start + cfg.split_length <= test_start
    assert built.eval_env.get_attr("months") == [tuple(VAL_MONTHS)] and built.eval_episodes == 6
    for env in built.eval_env.get_attr("envs")[0].values():
        assert env.config.split_start + env.config.split_length <= test_start
    built.venv.close()
    built.eval_env.close()

    assert main(argv, prog="train.py") == 0
    run_dir = next(tmp_path.glob("ppo/*_1"))
    hist = np.load(run_dir / "eval" / "evaluations.npz")
    assert [list(x) for x in hist["ep_lengths"]] == [[744, 696, 744, 720, 744, 720]] * len(hist["timesteps"])
    table = _read_csv(run_dir / "eval" / "table.csv")
    assert [r["policy"] for r in table] == ["online-eglb", "min-cost", "ppo (agent)"]
    for r in table:
        assert r["months"] == "6" and r["information"] == "none"
        lo, mean, hi = (float(r[k]) for k in ("gap_to_offline_ci_low", "gap_to_offline", "gap_to_offline_ci_high"))
        assert lo <= mean <= hi and math.isfinite(mean)
    months = _read_csv(run_dir / "eval" / "months.csv")
    assert sorted((r["policy"], r["month"]) for r in months) == sorted(
        (p, m) for p in ("online-eglb", "min-cost", "ppo (agent)") for m in TEST_MONTHS)
    assert {"objective_usd", "offline_objective_usd", "gap_to_offline_pct", "hours_h", "wall_time_s"} <= set(months[0])
    out = capsys.readouterr().out
    assert "6 calendar months, each one episode" in out

    # python -m equiglb.agents.evaluate: the same protocol on the validation months
    assert evaluate_main([str(run_dir), "--split", "val", "--baselines", "min-cost", "-o", str(tmp_path / "ev"),
                          "--no-progress"]) == 0
    months = _read_csv(tmp_path / "ev" / "months.csv")
    assert sorted({r["month"] for r in months}) == VAL_MONTHS and len(months) == 2 * 6
    # the monthly test id names the same protocol: evaluated through its train id, months cut by the evaluation
    assert evaluate_main([str(run_dir), "--env", "equiglb/EquitableGLB-world-test-v0", "--baselines", "min-cost",
                          "-o", str(tmp_path / "ev2"), "--no-progress"]) == 0
    months = _read_csv(tmp_path / "ev2" / "months.csv")
    assert sorted({r["month"] for r in months}) == TEST_MONTHS and len(months) == 2 * 6
