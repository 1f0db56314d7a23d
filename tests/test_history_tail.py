"""The history tail of MPC (:class:`equiglb.control.mpc.HistoryTail`, ``MPCPolicy(tail_days=...)``): what it reads
(only hours before the slot), what its slots stand for (the episode's hours left, each slot m hours of load and
capacity), the fast solvers pinned to the cvxpy program on its programs, and its options refused by name."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import small_synthetic

from equiglb.baselines.mpc import MPCPolicy
from equiglb.control.mpc import (
    AggregateConeSolver,
    AggregateLPSolver,
    CvxpyMPCSolver,
    DirectMPCSolver,
    HistoryTail,
    MPCCore,
    make_mpc_solver,
)
from equiglb.ledger import evaluate
from equiglb.validate import OptionError

REPO = Path(__file__).resolve().parents[1]


def _run(window, solver, tail: HistoryTail, H: int) -> np.ndarray:
    core = MPCCore(window, window.weights, H, tail=tail)
    xs = []
    for t in range(window.T):
        x = core.route(t, solver)
        core.update(t, x)
        xs.append(x)
    return np.stack(xs)


def test_tail_hours_stand_for_the_hours_left():
    """Each hour of day appears ``days`` times in the tail, and the tail's hours add up to weight x the episode's
    hours after the window, slot by slot (none in the window's last H slots)."""
    scn = small_synthetic(1, math.inf)
    window = scn.window(48, 24)
    tail = HistoryTail(scn, days=2, weight=0.75)
    tail.bind(window, 5)
    hod = np.asarray(scn.timestamps).astype("datetime64[h]").astype(np.int64) % 24
    for t in range(window.T):
        price, carbon, water, demand, m = tail.rows(t)
        assert price.shape == carbon.shape == water.shape == (48, scn.N) and demand.shape == (48, scn.J)
        assert m.sum() == pytest.approx(0.75 * max(window.T - t - 5, 0), abs=1e-12)
        end = 48 + t                                          # the history's hours before slot t
        assert np.array_equal(price, scn.price[end - 48:end])
        assert np.array_equal(demand, m[:, None] * scn.demand[end - 48:end])
        assert np.array_equal(np.bincount(hod[end - 48:end], minlength=24), np.full(24, 2))


def test_tail_reads_only_hours_before_the_slot():
    """Changing the history from slot s0 of the episode on leaves the routings of slots 0..s0 bit for bit (the
    tail is causal), and changes later ones (the tail does read the episode's past)."""
    scn = small_synthetic(1, math.inf)
    window, s0 = scn.window(24, 48), 8
    later = np.arange(scn.T) >= 24 + s0
    changed = dataclasses.replace(scn, price=np.where(later[:, None], 3.0 * scn.price, scn.price),
                                  carbon=np.where(later[:, None], 0.2 * scn.carbon, scn.carbon))
    a = MPCPolicy(5, forecast_model="perfect", tail_days=1, history=scn).schedule(window)
    b = MPCPolicy(5, forecast_model="perfect", tail_days=1, history=changed).schedule(window)
    assert np.array_equal(a[:s0 + 1], b[:s0 + 1])
    assert not np.allclose(a[s0 + 1:], b[s0 + 1:])


def test_a_history_before_the_episode_gives_the_same_tail_at_every_slot():
    scn = small_synthetic(1, math.inf)
    window, before = scn.window(48, 24), scn.window(0, 48)
    tail = HistoryTail(before, days=2)
    tail.bind(window, 5)
    first = tail.rows(0)
    for t in range(1, window.T):
        rows = tail.rows(t)
        assert all(np.array_equal(a, b) for a, b in zip(rows[:3], first[:3]))      # the same hours: the train's
        assert np.array_equal(rows[3], rows[4][:, None] * before.demand)            # standing for the hours left


def test_zero_weight_is_the_plain_planner():
    scn = small_synthetic(1, math.inf)
    window = scn.window(48, 24)
    plain = MPCPolicy(5, forecast_model="perfect").schedule(window)
    tail = MPCPolicy(5, forecast_model="perfect", tail_days=2, tail_weight=0.0, history=scn).schedule(window)
    np.testing.assert_allclose(tail, plain, rtol=0, atol=1e-9 * window.demand.max())
    with_tail = MPCPolicy(5, forecast_model="perfect", tail_days=2, history=scn).schedule(window)
    assert not np.allclose(with_tail, plain)                     # a tail that weighs changes the routing


def test_a_slot_of_m_hours_is_m_hours_of_load_and_capacity():
    """A tail of one day standing for m hours per slot gives the program value of a tail of the same day twice
    standing for m / 2 hours per slot: its demand and its capacity scale with m. The synthetic scenario's
    cheapest sites run at capacity, so a tail with the hour's capacity instead of m times it differs."""
    scn = small_synthetic(1, math.inf)
    window = scn.window(48, 24)
    day = slice(24, 48)
    twice = dataclasses.replace(scn.window(0, 48), **{k: np.concatenate([getattr(scn, k)[day]] * 2)
                                                      for k in ("price", "carbon", "water", "demand")})
    assert (np.sort(window.demand.sum(axis=1)) > scn.capacity.max()).any()     # capacity binds
    values = []
    for hist, days in ((scn.window(0, 48), 1), (twice, 2)):
        tail = HistoryTail(hist, days=days, weight=0.8)
        core = MPCCore(window, window.weights, 5, tail=tail)
        solver = make_mpc_solver(window, core.slots, window.weights)
        assert isinstance(solver, AggregateLPSolver)
        values.append([core.plan(t, solver)[1] for t in (0, 7)])
    np.testing.assert_allclose(values[0], values[1], rtol=1e-9)


def _blocked(scn, b: int):
    """``scn`` with each series constant over aligned blocks of b hours: each block's load-weighted mean (demand:
    its plain mean), so that the hourly tail and the b-hour blocks describe the same hours."""
    n = scn.T // b
    load = scn.demand.sum(axis=1).reshape(n, b, 1)

    def flat(a, w):
        mean = (w * a.reshape(n, b, -1)).sum(axis=1) / w.sum(axis=1)
        return np.repeat(mean, b, axis=0)

    ones = np.ones((n, b, 1))
    return dataclasses.replace(scn, price=flat(scn.price, load), carbon=flat(scn.carbon, load),
                               water=flat(scn.water, load), demand=flat(scn.demand, ones))


@pytest.mark.parametrize("b", [3, 24])
def test_blocks_sum_the_hours_and_average_the_series_by_load(b):
    """A tail of b-hour blocks: 24·days / b slots; each block's demand and hours are its hours' sums, its series
    the hours' means weighted by load (m times the hour's demand), from the hourly tail of the same slot; a block of
    hours that stand for none of the hours left (at t = 0 with H = 5, five hours of day have none; later more) has
    no load and the hours' plain mean."""
    scn = small_synthetic(1, math.inf)
    window = scn.window(48, 24)
    hourly, blocks = HistoryTail(scn, days=2, weight=0.75), HistoryTail(scn, days=2, weight=0.75, block_hours=b)
    hourly.bind(window, 5)
    blocks.bind(window, 5)
    assert blocks.slots == 48 // b
    for t in (0, 9, 23):
        price, carbon, water, demand, m = hourly.rows(t)
        got = blocks.rows(t)
        load = demand.sum(axis=1).reshape(-1, b)
        empty = load.sum(axis=1) == 0
        assert empty.any() or b == 24                   # the fallback is exercised (a day's block always has load)
        load[empty] = 1.0
        for a, g in ((price, got[0]), (carbon, got[1]), (water, got[2])):
            want = np.einsum("nb,nbk->nk", load, a.reshape(-1, b, a.shape[1])) / load.sum(axis=1, keepdims=True)
            np.testing.assert_allclose(g, want, rtol=1e-12)
        np.testing.assert_allclose(got[3], demand.reshape(-1, b, scn.J).sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(got[4], m.reshape(-1, b).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("b", [4, 24])
def test_blocks_give_the_hourly_program_value_where_the_series_are_constant_within_them(b):
    """On a history whose series are constant over each b-hour block (aligned with the tail's blocks: the history
    ends where the window starts), the program with b-hour blocks has the hourly tail's value, capacity binding
    or not; on the raw history (which varies within blocks) the values differ, so the check can fail."""
    scn = small_synthetic(1, math.inf)
    window = scn.window(48, 24)
    assert (window.demand.sum(axis=1) > scn.capacity.max()).any()          # capacity binds

    def values(hist, block):
        core = MPCCore(window, window.weights, 5, tail=HistoryTail(hist, days=2, weight=0.8, block_hours=block))
        solver = make_mpc_solver(window, core.slots, window.weights)
        assert isinstance(solver, AggregateLPSolver)
        return [core.plan(t, solver)[1] for t in (0, 7)]

    flat = _blocked(scn.window(0, 48), b)
    np.testing.assert_allclose(values(flat, b), values(flat, 1), rtol=1e-9)
    raw = scn.window(0, 48)
    assert not np.allclose(values(raw, b), values(raw, 1), rtol=1e-6)


def test_blocks_with_fewer_days_of_history_pad_with_empty_slots():
    """Not strict, one whole day before the slot of a two-day tail in 6-h blocks: the first 4 of 8 slots are
    empty, the last 4 hold that day's blocks, its hours standing for w n_h / 1 hours."""
    scn = small_synthetic(1, math.inf)
    window = scn.window(30, 24)
    tail = HistoryTail(scn, days=2, weight=0.5, strict=False, block_hours=6)
    tail.bind(window, 5)
    price, _, _, demand, m = tail.rows(0)
    assert price.shape == (8, scn.N) and demand.shape == (8, scn.J)
    assert not m[:4].any() and not demand[:4].any() and (m[4:] > 0).all()
    assert m.sum() == pytest.approx(0.5 * (window.T - 5), abs=1e-12)


@pytest.mark.parametrize("b", [1, 6])
def test_no_whole_day_of_history_gives_an_empty_tail(b):
    """Not strict, an episode at the scenario's first hour (no day of history yet), hourly and in blocks: every
    tail slot is empty (no demand, no hours), with the shapes of a full tail, and the program is the planner's."""
    scn = small_synthetic(1, math.inf)
    window = scn.window(0, 24)
    tail = HistoryTail(scn, days=2, weight=0.5, strict=False, block_hours=b)
    tail.bind(window, 5)
    price, carbon, water, demand, m = tail.rows(0)
    assert price.shape == carbon.shape == water.shape == (48 // b, scn.N) and demand.shape == (48 // b, scn.J)
    assert not m.any() and not demand.any()


@pytest.mark.parametrize("q,kind,reference,hours,H", [
    (1.0, AggregateLPSolver, "HIGHS", 12, 4), (math.inf, AggregateLPSolver, "HIGHS", 12, 4),
    (2.0, AggregateConeSolver, "CLARABEL", 8, 3), (1.5, DirectMPCSolver, "CLARABEL", 8, 3)])
def test_every_solver_equals_the_cvxpy_program_with_a_tail(q, kind, reference, hours, H):
    """The LP accelerator (q in {1, inf}), the interior-point accelerator (q = 2) and the direct program to Clarabel
    (q = 1.5) on programs with a tail, whose slots have capacities of their own: the same J; the LP's site loads
    too (the routings of the cone programs' optima need not be unique)."""
    scn = small_synthetic(1, q)
    window = scn.window(48, hours)
    tail = HistoryTail(scn, days=2, weight=0.6)
    solver = make_mpc_solver(window, H + tail.slots, window.weights)
    assert isinstance(solver, kind)
    fast = _run(window, solver, tail, H)
    ref = _run(window, CvxpyMPCSolver(window, H + tail.slots, window.weights, solver=reference), tail, H)
    w = window.weights
    assert evaluate(window, fast, w).objective_usd == pytest.approx(evaluate(window, ref, w).objective_usd,
                                                                     rel=1e-7 if kind is AggregateLPSolver else 1e-6)
    if kind is AggregateLPSolver:
        np.testing.assert_allclose(fast.sum(axis=(2, 3)), ref.sum(axis=(2, 3)), rtol=1e-6,
                                   atol=1e-6 * scn.demand.max())


def test_policy_labels_what_it_knew():
    scn = small_synthetic(1, math.inf)
    pol = MPCPolicy(24, tail_days=3, tail_weight=0.5, history=scn)
    assert pol.information == "forecasts (calibrated, 24 h), history tail (3 d x0.5)"
    assert MPCPolicy(24).information == "forecasts (calibrated, 24 h)"
    blocks = MPCPolicy(24, tail_days=30, tail_weight=0.75, history=scn, tail_block_hours=6)
    assert blocks.information == "forecasts (calibrated, 24 h), history tail (30 d x0.75 in 6-h blocks)"


@pytest.mark.parametrize("kwargs,needle", [
    ({"tail_days": -1}, "tail_days=-1"),
    ({"tail_days": 1.5}, "tail_days=1.5"),
    ({"tail_days": 61}, "tail_days=61"),
    ({"tail_days": 2}, "needs history="),
    ({"tail_days": 2, "tail_weight": -0.5, "history": "scn"}, "tail_weight=-0.5"),
    ({"tail_days": 2, "tail_weight": float("nan"), "history": "scn"}, "tail_weight=nan"),
    ({"history": "scn"}, "give tail_days >= 1"),
    ({"tail_days": 2, "history": "not a scenario"}, "history='not a scenario'"),
    ({"tail_days": 2, "history": "scn", "tail_block_hours": 5}, "tail_block_hours=5"),
    ({"tail_days": 2, "history": "scn", "tail_block_hours": 6.0}, "tail_block_hours=6.0"),
])
def test_bad_tail_options_are_refused_by_name(kwargs, needle):
    scn = small_synthetic(1, math.inf)
    kwargs = {k: (scn if v == "scn" else v) for k, v in kwargs.items()}
    with pytest.raises(OptionError, match=re.escape(needle)):
        MPCPolicy(24, **kwargs)


def test_a_history_that_does_not_reach_back_far_enough_is_refused_at_reset():
    scn = small_synthetic(1, math.inf)
    window = scn.window(30, 24)                       # 30 hours before it: not the 48 of two days
    pol = MPCPolicy(5, forecast_model="perfect", tail_days=2, history=scn)
    with pytest.raises(OptionError, match=r"history='synthetic' with tail_days=2: the tail needs the 48 hours "
                                          r"before .* holds 30 of them"):
        pol.reset(window, window.weights)
    other = dataclasses.replace(scn, site_names=tuple(f"x{i}" for i in range(scn.N)))
    with pytest.raises(OptionError, match="its sites"):
        MPCPolicy(5, tail_days=1, history=other).reset(scn.window(48, 24), scn.weights)


def test_history_tail_benchmark_refuses_bad_options_by_name(capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import history_tail

    for argv, needle in ((["--stage", "val", "--days", "0"], "--days='0'"),
                         (["--stage", "val", "--weights", "0.5,0.5"], "--weights='0.5,0.5'"),
                         (["--stage", "test", "--days", "3,5", "--weight", "0.5"], "--stage test takes one"),
                         (["--stage", "test"], "--stage test takes one"),
                         (["--stage", "val", "--draws", "1"], "--draws=1"),
                         (["--stage", "val", "--blocks", "5"], "--blocks='5'"),
                         (["--stage", "val", "--episode-hours", "12"], "--episode-hours=12"),
                         (["--stage", "val", "--episode-hours", "241"], "--episode-hours=241"),
                         (["--stage", "test", "--days", "3", "--weight", "0.5", "--blocks", "3,6"],
                          "--stage test takes one"),
                         (["--stage", "val", "--mpc-horizon", "0"], "--mpc-horizon=0")):
        with pytest.raises(SystemExit, match=re.escape(needle)):
            history_tail.main(argv)


@pytest.mark.parametrize("start,blocks", [(0, 1), (0, 6), (30, 1), (30, 6)])
def test_the_environment_plans_with_the_tail_and_action_zero_is_its_base(start, blocks):
    """``mpc_residual`` with ``mpc_tail_days``: action 0 plays exactly the agent's base, MPCPolicy with the same
    tail over the whole scenario (not strict: the episode from slot 0 has no day of history at first, the
    one from slot 30 has one day, then two), hourly and in 6-hour blocks (the environment's program has the
    blocks' slots), and the tail changes the routing."""
    from equiglb.envs import EquitableGLBEnv
    from equiglb.envs.core import agent_base, agent_information

    scn = small_synthetic(1, math.inf)
    opts = dict(action_mode="mpc_residual", mpc_horizon=4, forecast_model="perfect", mpc_tail_days=2,
                mpc_tail_weight=0.5, mpc_tail_block_hours=blocks)
    env = EquitableGLBEnv(scenario=scn, split="all", episode_length=30, **opts)
    env.reset(seed=0, options={"start": start})
    for _ in range(30):
        env.step(np.zeros(env.action_space.shape, np.float32))
    name, kwargs, label = agent_base(opts, scn, "all")
    tail = "2 d x0.5" + (" in 6-h blocks" if blocks == 6 else "")
    assert name == "mpc" and label == f"mpc-4 perfect (oracle) + history tail {tail} (agent's base)"
    assert agent_information(opts) == f"forecasts (perfect (oracle), mpc 4 h + history tail {tail})"
    window = env.window()
    base = MPCPolicy(**kwargs).schedule(window)
    np.testing.assert_array_equal(env.executed_schedule(), base)
    plain = MPCPolicy(4, forecast_model="perfect").schedule(window)
    assert not np.allclose(base, plain)


@pytest.mark.parametrize("K,q", [(1, math.inf), (3, math.inf), (1, 2.0)])
def test_the_environment_warm_start_plays_its_base_and_the_cold_planners_objective(K, q):
    """``mpc_warm_start`` with a tail in 6-hour blocks (the LP at q = inf, the direct program of three models, the
    cone program at q = 2): action 0
    plays the agent's base, ``MPCPolicy(warm_start=True)`` with the same tail, bit for bit; its J is the cold
    environment's (to 1e-9 for the LP's vertices, to 1e-6 for the cone program's interior-point tolerance, as
    MPCPolicy's warm start) in fewer iterations of the method."""
    from equiglb.envs import EquitableGLBEnv
    from equiglb.envs.core import agent_base

    scn = small_synthetic(K, q)
    opts = dict(action_mode="mpc_residual", mpc_horizon=4, forecast_model="perfect", mpc_tail_days=2,
                mpc_tail_weight=0.5, mpc_tail_block_hours=6)
    runs = {}
    for warm in (False, True):
        env = EquitableGLBEnv(scenario=scn, split="all", episode_length=30, mpc_warm_start=warm, **opts)
        env.reset(seed=0, options={"start": 30})
        iterations = 0
        for _ in range(30):
            env.step(np.zeros(env.action_space.shape, np.float32))
            iterations += env.unwrapped.slot.solver.last_iterations
        runs[warm] = (env.window(), env.executed_schedule(), iterations)
        assert type(env.unwrapped.slot.solver).__name__ == {1: "AggregateLPSolver", 2: "AggregateConeSolver",
                                                            3: "DirectMPCSolver"}[2 if q == 2.0 else K]
    window, warm_x, iterations = runs[True]
    assert iterations < runs[False][2]
    name, kwargs, _ = agent_base({**opts, "mpc_warm_start": True}, scn, "all")
    assert name == "mpc" and kwargs["warm_start"] is True
    np.testing.assert_array_equal(warm_x, MPCPolicy(**kwargs).schedule(window))
    j_warm = evaluate(window, warm_x, window.weights).objective_usd
    j_cold = evaluate(window, runs[False][1], window.weights).objective_usd
    assert j_warm == pytest.approx(j_cold, rel=1e-9 if q == math.inf else 1e-6)


def test_the_environment_warm_start_continues_each_copys_own_run():
    """In the native vector environment with ``mpc_warm_start`` each copy has its own program, started from its
    own previous slot: two copies on random windows with random actions give the observations and rewards of
    two single environments, and each slot's program takes the single environment's iterations (a program shared
    by the copies would start each from the other copy's basis); a pickled environment rebuilds its program with
    the same receding window."""
    import pickle

    from conftest import assert_vector_equals_single_envs

    from equiglb.envs import EquitableGLBEnv, EquitableGLBVectorEnv

    opts = dict(action_mode="mpc_residual", mpc_horizon=6, mpc_tail_days=2, mpc_tail_weight=0.5,
                mpc_tail_block_hours=6, mpc_warm_start=True, episode_length=24, random_start=True)
    assert_vector_equals_single_envs(opts, B=2, L=24, seed=5, action_seed=1, action_bound=1.0)
    venv = EquitableGLBVectorEnv(num_envs=2, **opts)
    venv.reset(seed=5)
    singles = [EquitableGLBEnv(**opts) for _ in range(2)]
    for b, e in enumerate(singles):
        e.reset(seed=5 + b)
    rng = np.random.default_rng(1)
    for _ in range(24):
        a = rng.uniform(-1, 1, (2, 2)).astype(np.float32)
        venv.step(a)
        for b, e in enumerate(singles):
            e.step(a[b])
            assert venv.slot.solvers[b].last_iterations == e.unwrapped.slot.solver.last_iterations
    env = EquitableGLBEnv(**opts)
    env.reset(seed=0)
    step = pickle.loads(pickle.dumps(env.unwrapped.slot))
    assert (step.solver.H, step.solver.window, step.solver.warm_start) == (6 + 8, 6, True)


@pytest.mark.parametrize("kwargs,needle", [({"mpc_tail_days": -1}, "mpc_tail_days=-1"),
                                           ({"mpc_tail_days": 2, "mpc_tail_weight": -1}, "mpc_tail_weight=-1"),
                                           ({"mpc_tail_days": 2, "mpc_tail_block_hours": 7},
                                            "mpc_tail_block_hours=7")])
def test_bad_environment_tail_options_are_refused_by_name(kwargs, needle):
    from equiglb.envs import EquitableGLBEnv

    with pytest.raises(OptionError, match=re.escape(needle)):
        EquitableGLBEnv(scenario=small_synthetic(1, math.inf), action_mode="mpc_residual", **kwargs)


def test_history_tail_benchmark_pairs_each_draw_with_the_planner(tmp_path, capsys):
    """A small validation run over two block lengths: each draw's change is the tail's gap minus the planner's on
    the same draw, the planner's gap is MPC-24's on that draw, and the choice (the lowest mean change) is
    printed."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import history_tail

    out = tmp_path / "tail.json"
    assert history_tail.main(["--stage", "val", "--protocol", "synthetic", "--days", "1", "--weights", "0.5",
                              "--blocks", "1,24", "--draws", "2", "--json", str(out)]) == 0
    chosen = re.search(r"validation chooses days:weight\[:blocks\] = (\S+) ", capsys.readouterr().out).group(1)
    import json

    runs = json.loads(out.read_text())["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    labels = {"1:0.5": "1 d x0.5", "1:0.5:24h": "1 d x0.5 in 24-h blocks"}
    for r in runs:
        assert set(r["configs"]) == set(labels)
        for key, label in labels.items():
            c = r["configs"][key]
            assert c["change_pts"] == pytest.approx(c["gap_pct"] - r["planner_gap_pct"], abs=1e-12)
            assert c["information"] == f"forecasts (calibrated, 24 h), history tail ({label})"
    means = {k: np.mean([r["configs"][k]["change_pts"] for r in runs]) for k in labels}
    assert chosen == min(means, key=means.get)
    assert runs[0]["configs"]["1:0.5"]["gap_pct"] != runs[0]["configs"]["1:0.5:24h"]["gap_pct"]
    assert runs[0]["planner_gap_pct"] != runs[1]["planner_gap_pct"]          # two draws of the forecast errors


def test_history_tail_benchmark_forecast_correction_is_fit_off_the_scored_window(tmp_path, capsys, monkeypatch):
    """``--forecast-correction``: each draw fits the correction on its own forecasts of the training split (``fit``
    on val, never the scored window), the corrected rows plan on them (their label says so), every change is paired
    with the planner on the same draw, and the learned part's change is the corrected tail's gap minus the raw
    tail's on the same draw."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import json

    import history_tail

    fits = []
    real_fit = history_tail.CorrectedForecaster.fit

    def spy(base, split="train", horizon=24):
        (a, n), (b, _) = base.scenario.splits[split], base.scenario.splits["val"]
        fits.append((base.seed, split, horizon, a + n <= b))                    # the fit ends before the scored window
        return real_fit(base, split, horizon)

    monkeypatch.setattr(history_tail.CorrectedForecaster, "fit", staticmethod(spy))
    out = tmp_path / "tail.json"
    assert history_tail.main(["--stage", "val", "--protocol", "synthetic", "--days", "1", "--weights", "0.5",
                              "--draws", "2", "--forecast-correction", "--json", str(out)]) == 0
    assert fits == [(0, "fit", 24, True), (1, "fit", 24, True)]
    saved = json.loads(out.read_text())
    assert saved["forecast_correction_fit_split"] == "fit"
    for r in saved["runs"]:
        assert set(r["configs"]) == {"+ correction", "1:0.5", "1:0.5 + correction"}
        for key, c in r["configs"].items():
            assert c["change_pts"] == pytest.approx(c["gap_pct"] - r["planner_gap_pct"], abs=1e-12)
            assert ("corrected (fit on fit)" in c["information"]) is key.endswith("correction")
        assert r["configs"]["1:0.5 + correction"]["gap_pct"] != r["configs"]["1:0.5"]["gap_pct"]
    text = capsys.readouterr().out
    assert "validation chooses days:weight[:blocks] = 1:0.5 " in text           # chosen on the raw forecasts
    runs = saved["runs"]
    learned = np.mean([r["configs"]["1:0.5 + correction"]["gap_pct"] - r["configs"]["1:0.5"]["gap_pct"]
                       for r in runs])
    assert re.search(rf"tail 1:0.5 +{learned:+.3f} \[", text)


def test_history_tail_benchmark_warm_start_reaches_the_same_gaps(tmp_path):
    """``--warm-start`` (the window's slots moved, the tail's kept) scores each configuration as the cold start does
    (the same optimum each slot), and the run records that it was warm-started."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import json

    import history_tail

    runs = {}
    for warm in (False, True):
        out = tmp_path / f"tail{warm}.json"
        assert history_tail.main(["--stage", "val", "--protocol", "synthetic", "--days", "2", "--weights", "0.5",
                                  "--blocks", "6", "--draws", "2", "--json", str(out)]
                                 + (["--warm-start"] if warm else [])) == 0
        runs[warm] = json.loads(out.read_text())
        assert runs[warm]["warm_start"] is warm
    for cold, warm in zip(runs[False]["runs"], runs[True]["runs"]):
        assert warm["planner_gap_pct"] == cold["planner_gap_pct"]             # the planner runs as without it
        assert warm["configs"]["2:0.5:6h"]["gap_pct"] == pytest.approx(cold["configs"]["2:0.5:6h"]["gap_pct"],
                                                                       abs=1e-6)


def test_policy_search_plans_with_the_tail_and_its_planner_row_has_it():
    """``benchmarks/policy_search.py --tail D:W[:B]``: the environment's options carry the tail (training and
    scoring), action 0 on the scored window is the planner with the same tail (its change on a draw is exactly 0),
    and a malformed value is refused by name before any work."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from conftest import load_benchmark

    bench = load_benchmark("policy_search")
    assert bench.tail_options("30:0.75:3") == {"mpc_tail_days": 30, "mpc_tail_weight": 0.75,
                                               "mpc_tail_block_hours": 3}
    for bad in ("5", "5:x", "5:0.5:3:1"):
        with pytest.raises(SystemExit, match=re.escape(f"--tail={bad!r}")):
            bench.setup(bench.parser().parse_args(["--stage", "val", "--tail", bad]))
    args = bench.parser().parse_args(["--stage", "val", "--protocol", "synthetic", "--features", "constant",
                                      "--tail", "2:0.5:6", "--draws", "1"])
    run = bench.setup(args)
    for kw in (run.train_kw, run.eval_kw):
        assert (kw["mpc_tail_days"], kw["mpc_tail_weight"], kw["mpc_tail_block_hours"]) == (2, 0.5, 6)
    assert bench.score_on_draws(lambda obs: np.zeros(2), run, 1, None, "zero") == [0.0]
    assert "mpc_warm_start" not in run.eval_kw
    warm = bench.setup(bench.parser().parse_args(["--stage", "val", "--protocol", "synthetic", "--features", "constant",
                                                  "--tail", "2:0.5:6", "--warm-start", "--draws", "1"]))
    assert warm.train_kw["mpc_warm_start"] is warm.eval_kw["mpc_warm_start"] is True
    assert bench.score_on_draws(lambda obs: np.zeros(2), warm, 1, None, "zero") == [0.0]


def test_history_tail_benchmark_episodes_tile_the_window():
    """``--episode-hours L``: windows of L hours that tile the scored window, the last flush with its end."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import history_tail

    scn = small_synthetic(1, math.inf)
    split = next(iter(scn.splits))
    whole = history_tail.episodes(scn, split)
    tiles = history_tail.episodes(scn, split, 24)
    (start, length), = [scn.splits[split]]
    assert len(whole) == 1 and whole[0].T == length
    assert all(w.T == 24 for w in tiles) and tiles[0].timestamps[0] == scn.timestamps[start]
    assert tiles[-1].timestamps[-1] == scn.timestamps[start + length - 1]
    covered = {str(t) for w in tiles for t in w.timestamps}
    assert covered == {str(t) for t in whole[0].timestamps}
