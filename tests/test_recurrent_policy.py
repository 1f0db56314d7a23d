"""benchmarks/recurrent_policy.py: bad options are refused by name before any training, and one short run
of each algorithm scores the same J for the agent it trains and for the planner alone as the environment's own
episode does (the recurrent policy's state carried through the episode)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def rp():
    return load_benchmark("recurrent_policy")


@pytest.mark.parametrize("argv, match", [(["--configs", "lstm:none"], "'lstm:none' is not ALGO:OBS"),
                                         (["--configs", "ppo:forecasts"], "'ppo:forecasts' is not ALGO:OBS"),
                                         (["--steps", "100"], "--steps must be >= 2048")])
def test_bad_options_are_refused_by_name(rp, argv, match, capsys):
    with pytest.raises(SystemExit):
        rp.main(argv)
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("algo", ["ppo", "rppo"])
def test_a_short_run_scores_its_agent_and_the_planner(rp, algo):
    """One rollout of training (2,048 steps): the planner's J on val is MPC-24's with the same forecasts (action 0),
    the agent's J is finite and differs from it, and the run is reproducible from its seed."""
    import equiglb
    from equiglb.baselines import MPCPolicy
    from equiglb.ledger import evaluate

    first = rp.train_and_score(algo, "spreads", 3, 2048)
    val = equiglb.load_scenario("holdout", base="synthetic").split("val")
    mpc = evaluate(val, MPCPolicy(horizon=24).schedule(val), val.weights).objective_usd
    assert first["J_planner"] == pytest.approx(mpc, rel=1e-9)
    assert np.isfinite(first["J_agent"]) and first["J_agent"] != first["J_planner"]
    again = rp.train_and_score(algo, "spreads", 3, 2048)
    assert again["J_agent"] == first["J_agent"]
