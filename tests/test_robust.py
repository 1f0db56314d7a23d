"""The robust wrapper's guarantee (docs/robust.md): on every episode, whatever the agent does,
J(wrapper) - J(expert) <= margin · J+(expert) (J+ = J plus what negative prices paid the expert; = J when
no price is negative), and J(wrapper) <= (1 + margin) · J(expert) with a price floor below every price.

Every J is the ledger's (``equiglb.evaluate``) on the executed schedules: the wrapper's, and the expert's run
alone on the same window. Agents are adversarial (random actions, everything to the dirtiest site, constant
extreme actions, a routing that breaks the capacity) and one good one (MPC with perfect forecasts), on windows
of every scenario (synthetic, multimodel K = 3, eGLB-2022 full and partial when ../shared/traces is present)
and q in {1, 2, inf}. The tests can fail: they also check that the adversaries alone break the bound, so a
wrapper that followed the agent would be caught, and that the wrapper does follow a good agent.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import equiglb
from equiglb.agents import RobustPolicy
from equiglb.agents.robust import RobustnessWarning, slot_terms
from equiglb.baselines import make_policy
from equiglb.baselines.policy import OnlinePolicy
from equiglb.evaluation import EnvPolicy, scenario_of
from equiglb.ledger import evaluate
from equiglb.scenario import Scenario, Weights
from equiglb.validate import OptionError

QS = (1.0, 2.0, math.inf)
MARGIN = 0.05
#: slots per tested window and windows per scenario (starts spread over the whole scenario)
WINDOW_T = 30
WINDOWS = 3
#: relative rounding allowed between the ledger's J of whole schedules (sums in another order)
RTOL = 1e-10


def _options(request: pytest.FixtureRequest, env_id: str) -> dict[str, Any]:
    scenario = str(gym.spec(env_id).kwargs.get("scenario", ""))
    return {"data_dir": request.getfixturevalue("eglb_dir")} if scenario.startswith("eglb-2022") else {}


def _windows(full: Scenario) -> list[Scenario]:
    starts = np.linspace(0, full.T - WINDOW_T, WINDOWS).astype(int)
    return [full.window(int(s), WINDOW_T) for s in starts]


def _expert_terms(window: Scenario, weights: Weights) -> tuple[float, float]:
    """(J, J+) of online eGLB alone on the window (J+ = J + Σ -min(p, 0) E, USD)."""
    x = make_policy("online-eglb").schedule(window, weights)
    revenue = 0.0
    for t in range(window.T):
        energy = slot_terms(window, weights, t, x[t])[1]
        revenue -= float(np.minimum(window.price[t], 0.0) @ energy)
    j = evaluate(window, x, weights).objective_usd
    return j, j + revenue


def _adversaries(window: Scenario, dim: int, seed: int) -> dict[str, Any]:
    """Callables obs -> action in the default action mode (site_scores: one score per site)."""
    rng = np.random.default_rng(seed)
    dirtiest = int(np.argmax((window.carbon * window.pue).mean(axis=0)))
    one_hot = -np.ones(dim, dtype=np.float32)
    one_hot[dirtiest % dim] = 1.0
    return {"random": lambda obs: rng.uniform(-1, 1, dim).astype(np.float32),
            "dirtiest": lambda obs: one_hot,
            "constant-one": lambda obs: np.ones(dim, dtype=np.float32)}   # equal scores (as any constant)


class OverCapacity(OnlinePolicy):
    """Routes every region's whole demand to site 0 (or its first allowed site), ignoring capacity."""

    name = "over-capacity"

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.sc = scenario

    def act(self, t: int) -> np.ndarray:
        sc = self.sc
        x = np.zeros((sc.N, sc.J, sc.K))
        for j in range(sc.J):
            i = int(np.flatnonzero(sc.mask[:, j])[0])
            k = int(np.flatnonzero(sc.hosting[i])[0])
            x[i, j, k] = sc.demand[t, j] * 50.0
        return x


def _check(window: Scenario, weights: Weights, wrapper: RobustPolicy, expert: tuple[float, float],
           floor: bool) -> float:
    """Run the wrapper on the window; assert the guarantee; its J."""
    x = wrapper.schedule(window, weights)
    j_w = evaluate(window, x, weights).objective_usd
    j_e, j_plus = expert
    assert j_w - j_e <= MARGIN * j_plus + RTOL * abs(j_plus), (wrapper.name, j_w, j_e, j_plus)
    if floor:
        assert j_e >= 0
        assert j_w <= (1 + MARGIN) * j_e + RTOL * j_e, (wrapper.name, j_w, j_e)
    assert len(wrapper.played_agent) == window.T
    return j_w


ENV_IDS = ["equiglb/EquitableGLB-v0", "equiglb/EquitableGLB-multimodel-v0", "equiglb/EquitableGLB-eglb2022-v0",
           "equiglb/EquitableGLB-eglb2022-partial-v0"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_guarantee_against_adversaries(request: pytest.FixtureRequest, env_id: str) -> None:
    kw = _options(request, env_id)
    full = scenario_of(env_id, kw)
    env = gym.make(env_id, **kw)
    dim = int(env.action_space.shape[0])
    env.close()
    broken, followed = 0, 0
    for w_i, window in enumerate(_windows(full)):
        for q in QS:
            weights = dataclasses.replace(full.weights, q=q)
            expert = _expert_terms(window, weights)
            floor = float(min(window.price.min(), 0.0))
            for name, fn in _adversaries(window, dim, seed=w_i).items():
                for use_floor in (False, True) if name in ("random", "dirtiest") else (False,):
                    wrap = RobustPolicy(fn, margin=MARGIN, env=env_id, env_kwargs=kw,
                                        price_floor=floor if use_floor else None)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RobustnessWarning)
                        _check(window, weights, wrap, expert, use_floor)
                    followed += sum(wrap.played_agent)
                    # the agent acts on its own trajectory: its env's executed schedule is the agent alone
                    assert isinstance(wrap.agent, EnvPolicy)
                    j_a = evaluate(window, wrap.agent.schedule_executed(), weights).objective_usd
                    broken += j_a > (1 + MARGIN) * expert[0]
            wrap = RobustPolicy(OverCapacity(), margin=MARGIN)
            _check(window, weights, wrap, expert, False)
            assert not any(wrap.played_agent), "a routing beyond capacity was executed"
    assert broken > 0, "no adversary alone exceeded (1 + margin) J(expert): the test could not fail"
    assert followed > 0, "the wrapper never followed an adversary where it could afford to"


def test_follows_a_good_agent_and_the_expert_itself() -> None:
    full = scenario_of("equiglb/EquitableGLB-v0")
    window = full.split("test")
    weights = full.weights
    j_e, j_plus = _expert_terms(window, weights)
    same = RobustPolicy(make_policy("online-eglb"), margin=MARGIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RobustnessWarning)
        j_same = _check(window, weights, same, (j_e, j_plus), False)
    assert all(same.played_agent) and j_same == pytest.approx(j_e, rel=1e-12)
    oracle = make_policy("mpc", horizon=24)          # perfect forecasts: better than online eGLB here
    j_mpc = evaluate(window, oracle.schedule(window, weights), weights).objective_usd
    assert j_mpc < j_e
    good = RobustPolicy(make_policy("mpc", horizon=24), margin=MARGIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RobustnessWarning)
        j_good = _check(window, weights, good, (j_e, j_plus), False)
    assert good.agent_share > 0.75 and j_good < j_e


def test_negative_prices_warn_and_a_broken_floor_plays_the_expert() -> None:
    full = scenario_of("equiglb/EquitableGLB-v0")
    window = full.split("test")
    assert window.price.min() < 0                    # the synthetic test window has negative prices
    with pytest.warns(RobustnessWarning, match="negative price"):
        RobustPolicy(make_policy("online-eglb"), margin=MARGIN).schedule(window)
    wrap = RobustPolicy(make_policy("mpc", horizon=24), margin=MARGIN, price_floor=0.0)
    with pytest.warns(RobustnessWarning, match="below price_floor=0.0"):
        wrap.schedule(window)
    first = int(np.flatnonzero((window.price < 0).any(axis=1))[0])
    assert not any(wrap.played_agent[first:])


def test_evaluate_policy_takes_the_wrapper() -> None:
    wrap = RobustPolicy(lambda obs: np.zeros(10, dtype=np.float32), margin=MARGIN, price_floor=-1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RobustnessWarning)
        table = equiglb.evaluate_policy(wrap, "equiglb/EquitableGLB-v0", split="test", name="zero (robust 5%)",
                                        baselines=("online-eglb",))
    rows = table.set_index("policy")
    assert rows.loc["zero (robust 5%)", "information"].endswith("falls back to online-eglb")
    assert rows.loc["zero (robust 5%)", "objective"] <= (1 + MARGIN) * rows.loc["online-eglb", "objective"]


@pytest.mark.parametrize("kwargs, match", [
    ({"margin": -0.1}, "margin=-0.1"), ({"margin": float("nan")}, "margin=nan"), ({"margin": True}, "margin=True"),
    ({"price_floor": float("inf")}, "price_floor=inf"), ({"expert": "offline"}, "online policy"),
    ({"expert": "nope"}, "expert='nope'"), ({"expert_kwargs": {"bogus": 1}}, "expert_kwargs"),
])
def test_bad_options_are_named(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(OptionError, match=match):
        RobustPolicy(make_policy("online-eglb"), **kwargs)


def test_offline_agent_is_refused() -> None:
    with pytest.raises(OptionError, match="offline policy"):
        RobustPolicy(make_policy("offline"))


def test_social_norm_seen_reads_nothing_of_the_future() -> None:
    """``social_norm="seen"`` keeps the guarantee on the multimodel scenario (μ_s > 0), and the rule's choices
    at slots 0..t do not change when the demand of later slots does."""
    full = scenario_of("equiglb/EquitableGLB-multimodel-v0")
    assert full.weights.mu_social > 0
    window = full.window(0, WINDOW_T)
    rng = np.random.default_rng(3)
    agent = OnlineRandom(rng)
    wrap = RobustPolicy(agent, margin=MARGIN, social_norm="seen")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RobustnessWarning)
        _check(window, window.weights, wrap, _expert_terms(window, window.weights), False)
        first = list(wrap.played_agent)
        demand = window.demand.copy()
        demand[WINDOW_T // 2:] *= 3.0
        later = dataclasses.replace(window, demand=demand)
        agent.rng = np.random.default_rng(3)
        wrap.schedule(later)
    assert any(first[:WINDOW_T // 2]) and not all(first)
    assert wrap.played_agent[:WINDOW_T // 2] == first[:WINDOW_T // 2]


class OnlineRandom(OnlinePolicy):
    """Online eGLB's routing mixed 99/1 with random fractions over each region's allowed (site, model)
    pairs: close to the expert, sometimes better, sometimes worse (and reads nothing of the future)."""

    name = "perturbed-eglb"

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.base = make_policy("online-eglb")

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.sc = scenario
        self.allowed = (scenario.mask[:, :, None] > 0) & (scenario.hosting[:, None, :] > 0)
        self.base.reset(scenario, weights)

    def act(self, t: int) -> np.ndarray:
        f = self.rng.uniform(0, 1, self.allowed.shape) * self.allowed
        f = f / f.sum(axis=(0, 2), keepdims=True)
        return 0.99 * self.base.act(t) + 0.01 * f * self.sc.demand[t][None, :, None]


@pytest.mark.parametrize("q", QS)
def test_split_rule_keeps_the_guarantee(q: float) -> None:
    """``rule="split"`` (D charges the agent slots' whole footprints) also keeps the bound."""
    full = scenario_of("equiglb/EquitableGLB-v0")
    window = full.window(100, WINDOW_T)
    weights = dataclasses.replace(full.weights, q=q)
    expert = _expert_terms(window, weights)
    for seed in range(2):
        wrap = RobustPolicy(OnlineRandom(np.random.default_rng(seed)), margin=MARGIN, rule="split")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RobustnessWarning)
            _check(window, weights, wrap, expert, False)


def test_train_py_robust_margin_adds_a_row_beside_the_agent(tmp_path: Any, capsys: Any) -> None:
    """``train.py --robust-margin 0.05`` puts ``ppo (robust 5%)`` beside ``ppo (agent)``, within its bound."""
    import json

    from equiglb.agents.cli import main
    from equiglb.agents.evaluate import ROBUST_MARGIN

    argv = ["-n", "64", "-f", str(tmp_path), "--env-kwargs", "episode_length=24", "scenario_options={hours: 288}",
            "--eval-freq", "0", "--no-progress", "--hyperparams", "n_steps=32", "batch_size=32", "n_epochs=1",
            "--n-envs", "2", "--robust-margin", "0.05", "--baselines", "online-eglb"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RobustnessWarning)
        assert main(argv) == 0
    assert ROBUST_MARGIN.get() is None                  # the run's margin does not outlive it
    rows = {r["policy"]: r for r in json.loads(next(tmp_path.rglob("eval/table.json")).read_text())}
    assert {"ppo (agent)", "ppo (robust 5%)", "online-eglb"} <= set(rows)
    window = scenario_of("equiglb/EquitableGLB-v0", {"scenario_options": {"hours": 288}}).split("test")
    j_e, j_plus = _expert_terms(window, window.weights)
    assert rows["online-eglb"]["objective"] == pytest.approx(j_e, rel=1e-12)
    assert rows["ppo (robust 5%)"]["objective"] - j_e <= MARGIN * j_plus + RTOL * j_plus
    assert rows["ppo (robust 5%)"]["information"].endswith("falls back to online-eglb")
    capsys.readouterr()
    assert main(["-n", "64", "-f", str(tmp_path / "x"), "--robust-margin", "-1"]) == 2
    assert "--robust-margin -1.0: expected a finite number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
