"""Online eGLB and the online baselines: auxiliary problem, no peeking, feasibility, CLI smoke run."""

from __future__ import annotations

import dataclasses
import json
import math

import cvxpy as cp
import numpy as np
import pytest

from equiglb.baselines import OnlineEGLBPolicy, make_policy, solve_offline
from equiglb.baselines.__main__ import main
from equiglb.control.eglb import auxiliary_argmin
from equiglb.ledger import evaluate
from equiglb.scenario import Weights
from tests.test_baselines import assert_feasible, small_scenario


@pytest.mark.parametrize("q", [1.0, 1.5, 2.0, 3.0, math.inf])
@pytest.mark.parametrize("seed", range(4))
def test_auxiliary_argmin_matches_cvxpy(q, seed):
    rng = np.random.default_rng(seed)
    n = 5
    gamma = rng.normal(0.3, 0.5, n) * (1 + seed)                # both inside and outside the dual ball
    z_max = rng.uniform(0.0, 2.0, n)
    z = cp.Variable(n)
    norm = cp.max(z) if q == math.inf else cp.norm(z, q)
    prob = cp.Problem(cp.Minimize(norm - gamma @ z), [z >= 0, z <= z_max])
    prob.solve(solver="CLARABEL")
    ours = auxiliary_argmin(gamma, z_max, q)
    assert (ours >= -1e-12).all() and (ours <= z_max + 1e-12).all()
    val = (ours.max() if q == math.inf else (ours ** q).sum() ** (1 / q)) - gamma @ ours
    assert val == pytest.approx(prob.value, abs=1e-6)


def _perturb_after(sc, t0, rng):
    T = sc.T
    fut = np.arange(T) > t0

    def mod(a, lo=0.0, hi=np.inf):
        b = a.copy()
        b[fut] = np.clip(b[fut] * rng.uniform(0.2, 3.0, b[fut].shape), lo, hi)
        return b

    return dataclasses.replace(sc, price=mod(sc.price, -np.inf), carbon=mod(sc.carbon), water=mod(sc.water),
                               demand=mod(sc.demand, hi=0.3))


@pytest.mark.parametrize("name", ["online-eglb", "min-cost", "min-carbon", "min-water", "nearest",
                                  "proportional", "random"])
@pytest.mark.parametrize("social", [False, True])
def test_online_policies_do_not_peek(name, social):
    sc = small_scenario(T=12, seed=21, K=2, mask=np.array([[1, 1], [1, 0], [0, 1]], bool))
    w = Weights(mu_carbon=50.0, mu_water=5.0, mu_social=200.0 if social else 0.0, q=2.0)
    t0 = 5
    a = make_policy(name).schedule(sc, w)
    b = make_policy(name).schedule(_perturb_after(sc, t0, np.random.default_rng(1)), w)
    np.testing.assert_array_equal(a[: t0 + 1], b[: t0 + 1])
    assert not np.allclose(a[t0 + 1:], b[t0 + 1:])           # the perturbation matters later


def test_online_eglb_no_peek_on_real_traces(eglb):
    sc = eglb.window(0, 96)
    t0 = 40
    a = OnlineEGLBPolicy().schedule(sc)
    b = OnlineEGLBPolicy().schedule(_perturb_after(sc, t0, np.random.default_rng(2)))
    np.testing.assert_array_equal(a[: t0 + 1], b[: t0 + 1])


@pytest.mark.parametrize("q", [1.0, 2.0, 4.0, math.inf])
@pytest.mark.parametrize("project", [True, False])
def test_online_eglb_feasible_and_above_offline(q, project):
    sc = small_scenario(T=10, seed=22, K=2, mask=np.array([[1, 1], [1, 0], [0, 1]], bool))
    w = Weights(mu_carbon=80.0, mu_water=8.0, mu_social=100.0, mu_latency=0.01, q=q)
    pol = OnlineEGLBPolicy(project_duals=project)
    x = pol.schedule(sc, w)
    assert_feasible(sc, x)
    if project:
        assert (pol.gamma >= 0).all()
    assert evaluate(sc, x, w).objective_usd >= solve_offline(sc, w).objective_usd * (1 - 1e-7)


def test_online_eglb_beats_min_cost_on_eglb(eglb):
    # the point of eGLB: equity-aware online routing lowers J(x) against equity-oblivious min-cost
    w = eglb.weights
    x_on = OnlineEGLBPolicy().schedule(eglb, w)
    x_mc = make_policy("min-cost").schedule(eglb, w)
    assert evaluate(eglb, x_on, w).objective_usd < evaluate(eglb, x_mc, w).objective_usd


def test_eta_and_z_max_are_used():
    sc = small_scenario(T=8, seed=23, K=1)
    pol = OnlineEGLBPolicy(eta=1e-3, z_max=2.0)
    pol.schedule(sc, Weights(mu_carbon=100.0))
    assert pol.eta == 1e-3
    default = OnlineEGLBPolicy()
    default.schedule(sc, Weights(mu_carbon=100.0))
    assert default.eta > 0 and math.isfinite(default.eta)


def test_cli_smoke(tmp_path, capsys):
    out_json, out_csv = tmp_path / "rows.json", tmp_path / "rows.csv"
    rc = main(["--scenario", "synthetic", "--horizon", "48", "--split", "all", "--q", "2",
               "--policies", "offline,online-eglb,mpc,min-cost,nearest", "--mpc-horizon", "3",
               "--mu-carbon", "1000", "--json", str(out_json), "--csv", str(out_csv)])
    assert rc == 0
    text = capsys.readouterr().out
    for col in ("policy", "energy_cost_usd", "carbon_par", "water_max_m3", "gap_to_offline"):
        assert col in text
    rows = json.loads(out_json.read_text())
    assert [r["policy"] for r in rows] == ["offline", "online-eglb", "mpc", "min-cost", "nearest"]
    assert rows[0]["gap_to_offline"] == 0.0 and all(r["gap_to_offline"] > -1e-6 for r in rows)
    assert out_csv.read_text().splitlines()[0].startswith("policy,scenario,energy_cost_usd")


def test_cli_unknown_names(capsys):
    assert main(["--policies", "offline,teleport"]) != 0
    assert "valid names: offline" in capsys.readouterr().err
    assert main(["--scenario", "atlantis"]) != 0
    assert "available" in capsys.readouterr().err
