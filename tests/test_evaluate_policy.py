"""equiglb.evaluate_policy: one call scores a callable, an SB3 model or a baseline beside the baselines."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import small_synthetic

import equiglb
from equiglb.baselines import make_policy
from equiglb.ledger import evaluate
from equiglb.validate import OptionError

ENV = "equiglb/EquitableGLB-v0"


@pytest.fixture(scope="module")
def scn():
    return small_synthetic(1, float("inf"))


def test_zero_residual_equals_online_eglb_and_table_columns(scn):
    kw = {"scenario": scn, "action_mode": "eglb_residual"}
    env = gym.make(ENV, **kw)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    table = equiglb.evaluate_policy(lambda obs: zero, ENV, env_kwargs=kw, name="zero",
                                    baselines=["offline", "online-eglb", "min-cost"])
    assert list(table["policy"]) == ["offline", "online-eglb", "min-cost", "online-eglb (agent's base)", "zero"]
    for col in ("policy", "information", "objective", "gap_to_offline", "energy_cost_usd"):
        assert col in table.columns
    by = table.set_index("policy")
    assert by.loc["offline", "gap_to_offline"] == 0.0
    assert by.loc["offline", "information"].startswith("hindsight")
    assert by.loc["online-eglb", "information"] == "none"
    # action 0 of the eGLB residual is online eGLB exactly: the same J to the cent
    assert by.loc["zero", "objective"] == pytest.approx(by.loc["online-eglb", "objective"], rel=1e-9)
    assert by.loc["zero", "objective"] == pytest.approx(by.loc["online-eglb (agent's base)", "objective"], rel=1e-9)
    window = scn.split("test")
    j_off = evaluate(window, make_policy("offline").schedule(window)).objective_usd
    assert by.loc["zero", "gap_to_offline"] == pytest.approx(by.loc["zero", "objective"] / j_off - 1, rel=1e-9)
    assert (table["gap_to_offline"] >= -1e-9).all()


def test_env_instance_and_baseline_policy_and_sb3_model(scn):
    env = gym.make(ENV, scenario=scn)
    # an online baseline passed as the policy: its row is the baseline's, under the given name
    table = equiglb.evaluate_policy(make_policy("min-cost"), env, name="mine", baselines=["min-cost"])
    by = table.set_index("policy")
    assert by.loc["mine", "objective"] == pytest.approx(by.loc["min-cost", "objective"], rel=1e-12)
    # an SB3 model (untrained) through its predict(): the row's J is -(the episode's return)
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, seed=0, device="cpu")
    table = equiglb.evaluate_policy(model, env, name="ppo", baselines=[])
    assert list(table["policy"]) == ["ppo"]
    assert np.isfinite(table["objective"].iloc[0]) and table["gap_to_offline"].iloc[0] > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"baselines": ["nope"]}, "unknown"),
    ({"baselines": ["min-cost", "min-cost"]}, "distinct"),
    ({"name": "min-cost", "baselines": ["min-cost"]}, "distinct"),
    ({"baselines": "min-cost"}, "list of names"),
    ({"split": "nope"}, "no such split"),
    ({"env": "equiglb/Nope-v0"}, "unknown environment id"),
    ({"name": ""}, "name"),
])
def test_bad_input_is_named_before_any_work(scn, kwargs, match):
    args = {"env": ENV, "env_kwargs": {"scenario": scn}, **kwargs}
    with pytest.raises(OptionError, match=match):
        equiglb.evaluate_policy(lambda obs: obs, **args)


def test_not_a_policy_and_nonempty_plot_dir(scn, tmp_path):
    with pytest.raises(OptionError, match="neither a callable"):
        equiglb.evaluate_policy(42, ENV, env_kwargs={"scenario": scn}, baselines=[])
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(OptionError, match="plot_dir"):
        equiglb.evaluate_policy(lambda o: o, ENV, env_kwargs={"scenario": scn}, baselines=[], plot_dir=tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_plots_written(scn, tmp_path):
    env = gym.make(ENV, scenario=scn)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    out = tmp_path / "plots"
    equiglb.evaluate_policy(lambda obs: zero, env, baselines=["min-cost"], plot_dir=out)
    assert sorted(p.suffix for p in out.iterdir() if p.suffix == ".png")


def test_evaluation_module_imports_no_torch():
    code = "import sys, equiglb.evaluation; print('torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"], out.stdout


def test_agents_without_the_train_extra_names_the_extra():
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError(f'No module named {name!r} (hidden by the test)')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import equiglb.agents\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert 'pip install "equiglb[train]"' in out.stderr, out.stderr[-2000:]


def test_core_env_and_baselines_import_no_torch_sb3_ray():
    # (jax is not checked: cvxpy imports it to probe its MPAX solver whenever jax is installed)
    code = ("import sys, equiglb, gymnasium as gym; from equiglb.baselines import make_policy; "
            "e = gym.make('equiglb/EquitableGLB-v0'); e.reset(seed=0); "
            "print([m for m in ('torch', 'stable_baselines3', 'ray', 'torchrl', 'optuna') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
