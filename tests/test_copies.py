"""Copies of an environment are exact: ``copy.deepcopy`` and ``pickle`` of every registered id in every
action mode, taken at any point of an episode, continue bit-identically with the original.

Search and planning methods, subprocess vector envs and checkpoints copy environments; a copy that
drifts from its original (a ledger whose carbon and water arrays lost their link to the footprint, a
solver rebuilt in another state) would give silently wrong returns. The property checked: record
one trajectory of the original (two episodes: a seeded reset with a random start, then an unseeded
one, so the copied generator matters too), copy it at several points (before the first reset, right
after a reset, mid-episode, at the end of an episode) by both methods, replay the remaining events on
each copy and require every observation, reward, flag, info entry and the finished episodes'
metrics to be equal to the original's, bit for bit.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import equiglb  # noqa: F401  (registers the ids)
from equiglb.envs.registration import ENV_IDS
from equiglb.envs.slot import ACTION_MODE_REGISTRY

#: slots per episode of the recorded trajectories (short: the mpc_residual mode solves a program per slot)
L = 4
#: the events after which a copy is taken: 0 = before the first reset, 1 = right after it, 3 = mid-episode,
#: L + 1 = at the end of the first episode, L + 2 = right after the second reset, 2 L + 1 = mid-episode
COPY_AFTER = (0, 1, 3, L + 1, L + 2, 2 * L)
METHODS = ("deepcopy", "pickle")


def _ids() -> list[str]:
    """The base ids, and the world scenario's train id. The tuned ids (``TUNED_IDS``) are base ids with
    other defaults, so the same env classes in the same modes; the world-partial train id is world-v0 with
    a mask; the world test ids run whole calendar months per episode (``MonthlyEpisodesEnv`` around the same
    env), too long for a property test that replays two episodes per copy."""
    return sorted(ENV_IDS) + ["equiglb/EquitableGLB-world-v0"]


def _options(request: pytest.FixtureRequest, env_id: str, mode: str) -> dict[str, Any]:
    """Small-episode options of ``env_id`` in ``mode``; the real traces' ids get ``data_dir`` (or skip)."""
    kw: dict[str, Any] = {"action_mode": mode, "episode_length": L, "random_start": True}
    scenario = str(gym.spec(env_id).kwargs.get("scenario", ""))
    if scenario.startswith("eglb-2022"):
        kw["data_dir"] = request.getfixturevalue("eglb_dir")
    if scenario.startswith("world"):
        kw["data_dir"] = request.getfixturevalue("world_data_dir")
    if mode == "mpc_residual":
        kw["mpc_horizon"] = 3
    return kw


def _copy(env: Any, method: str) -> Any:
    return copy.deepcopy(env) if method == "deepcopy" else pickle.loads(pickle.dumps(env))


def assert_same(a: Any, b: Any, where: str) -> None:
    """``a`` and ``b`` equal bit for bit (arrays: same dtype, shape and values; dicts key by key)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic)):
        b = np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.array_equal(a, b), f"{where}: largest difference {np.max(np.abs(a - b))!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _events(action_space: gym.spaces.Box, seed: int) -> list[tuple[str, Any]]:
    """Two episodes: reset(seed), L steps, reset(), L steps, with actions drawn uniformly in [-1.2, 1.2]."""
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1.2, 1.2, (2 * L,) + action_space.shape).astype(action_space.dtype)
    return ([("reset", seed)] + [("step", a) for a in acts[:L]] + [("reset", None)]
            + [("step", a) for a in acts[L:]])


def _apply(env: Any, event: tuple[str, Any], metrics: Any) -> Any:
    """Apply one event; the result to compare (with the finished episode's metrics after its last step)."""
    kind, arg = event
    if kind == "reset":
        return env.reset(seed=arg)
    out = env.step(arg)
    if metrics is not None and bool(np.all(out[2])):
        return out, metrics(env)
    return out


def check_copies_continue_exactly(make: Any, events_of: Any, metrics: Any = None) -> int:
    """Record the original's trajectory while copying it after each event of :data:`COPY_AFTER`, then replay
    the remaining events on every copy; returns the number of copies compared."""
    env = make()
    events = events_of(env)
    copies: list[tuple[int, str, Any]] = []
    recorded = []
    for n in range(len(events) + 1):
        if n in COPY_AFTER:
            copies.extend((n, m, _copy(env, m)) for m in METHODS)
        if n < len(events):
            recorded.append(_apply(env, events[n], metrics))
    for n, method, twin in copies:
        for k in range(n, len(events)):
            assert_same(_apply(twin, events[k], metrics), recorded[k],
                        f"{method} taken after event {n}, event {k} ({events[k][0]})")
    return len(copies)


@pytest.mark.parametrize("mode", sorted(ACTION_MODE_REGISTRY))
@pytest.mark.parametrize("env_id", _ids())
def test_copy_of_every_id_and_mode_continues_bit_identically(request, env_id, mode):
    kw = _options(request, env_id, mode)
    n = check_copies_continue_exactly(lambda: gym.make(env_id, **kw), lambda e: _events(e.action_space, 11),
                                      metrics=lambda e: e.unwrapped.episode_metrics())
    assert n == len(COPY_AFTER) * len(METHODS)


@pytest.mark.parametrize("mode", sorted(ACTION_MODE_REGISTRY))
@pytest.mark.parametrize("env_id", _ids())
def test_copy_of_the_vector_env_continues_bit_identically(request, env_id, mode):
    kw = _options(request, env_id, mode)

    def events(venv):
        return _events(venv.action_space, 5)      # (B, dim) actions; the vector env resets itself after the end

    n = check_copies_continue_exactly(
        lambda: gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", **kw), events)
    assert n == len(COPY_AFTER) * len(METHODS)


def test_copied_ledger_keeps_its_footprint_views():
    """The root cause of the old drift: ``carbon_t`` and ``water_m3`` are the rows of ``footprint`` in
    every copy (derived, not stored as views that a copy would split)."""
    from equiglb.ledger import Ledger

    scn = equiglb.load_scenario("synthetic", hours=48, seed=1)
    led = Ledger(scn)
    led.reset(0, 48)
    led.step(0, np.full((scn.N, scn.J, scn.K), 0.01))
    for twin in (copy.deepcopy(led), pickle.loads(pickle.dumps(led))):
        twin.footprint[...] = 7.0
        assert np.all(twin.carbon_t == 7.0) and np.all(twin.water_m3 == 7.0)
        assert np.shares_memory(twin.carbon_t, twin.footprint) and np.shares_memory(twin.water_m3, twin.footprint)
    assert not np.any(led.carbon_t == 7.0)        # the original is untouched
