"""The scenario "augmented": a train split extended by generated hours, calibrated on that split only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import load_benchmark

import equiglb
from equiglb.traces import register_scenario
from equiglb.traces.derived import augmented_scenario, derived_seed
from equiglb.validate import OptionError

SERIES = ("price", "carbon", "water", "demand")


def _source(hours: int = 240, seed: int = 5, **_: object) -> equiglb.Scenario:
    return equiglb.load_scenario("synthetic", hours=hours, seed=seed)


def _source_other_test(**kw: object) -> equiglb.Scenario:
    """The same scenario with every value after the train split changed (a different held-out window)."""
    scn = _source(**kw)
    s, n = scn.splits["test"]
    changed = {}
    for name in SERIES:
        a = getattr(scn, name).copy()
        a[s:s + n] *= 3.0
        changed[name] = a
    return dataclasses.replace(scn, **changed)


register_scenario("test-augment-source", _source, "tests only")
register_scenario("test-augment-source-other-test", _source_other_test, "tests only")


def test_layout_splits_and_the_source_data_are_kept():
    src = _source()
    aug = augmented_scenario("test-augment-source", copies=3)
    s0, n0 = src.splits["train"]
    G = 3 * n0
    assert aug.T == src.T + G
    assert aug.splits["generated"] == (0, G)
    assert aug.splits["train"] == (0, G + n0)
    assert aug.splits["test"] == (src.splits["test"][0] + G, src.splits["test"][1])
    # the source's hours follow, bit for bit; the held-out window is the source's
    for name in SERIES:
        np.testing.assert_array_equal(getattr(aug, name)[G:], getattr(src, name))
        np.testing.assert_array_equal(getattr(aug.split("test"), name), getattr(src.split("test"), name))
    assert np.all(np.diff(aug.timestamps).astype(np.int64) == 1)
    assert aug.timestamps[G] == src.timestamps[0]
    for name in ("capacity", "mask", "pue", "energy_per_unit", "latency", "utc_offset_h"):
        np.testing.assert_array_equal(getattr(aug, name), getattr(src, name))
    assert aug.weights == src.weights


def test_generated_hours_depend_on_the_split_only_not_on_the_held_out_window():
    a = augmented_scenario("test-augment-source", copies=2)
    b = augmented_scenario("test-augment-source-other-test", copies=2)
    G = a.splits["generated"][1]
    for name in SERIES:
        np.testing.assert_array_equal(getattr(a, name)[:G], getattr(b, name)[:G])
        assert not np.array_equal(getattr(a.split("test"), name), getattr(b.split("test"), name))


def test_generated_hours_are_calibrated_new_draws():
    src = _source()
    aug = augmented_scenario("test-augment-source", copies=4)
    G = aug.splits["generated"][1]
    real = src.split("train")
    # each region's mean demand is the split's; the other series keep its scale (calibrated means)
    np.testing.assert_allclose(aug.demand[:G].mean(axis=0), real.demand.mean(axis=0), rtol=1e-12)
    for name in ("price", "carbon", "water"):
        g, r = getattr(aug, name)[:G], getattr(real, name)
        np.testing.assert_allclose(g.mean(axis=0), r.mean(axis=0), rtol=0.25)
    # new noise: no generated copy repeats the source's hours, and the seed changes the draw
    n = real.T
    for k in range(G // n):
        assert not np.allclose(aug.price[k * n:(k + 1) * n], real.price)
    other = augmented_scenario("test-augment-source", copies=4, augment_seed=1)
    assert not np.array_equal(other.price[:G], aug.price[:G])
    again = augmented_scenario("test-augment-source", copies=4)
    np.testing.assert_array_equal(again.price, aug.price)
    assert derived_seed(0) not in range(1000) and derived_seed(0) != derived_seed(1)


def test_the_holdout_fit_split_can_be_augmented_and_val_is_unchanged():
    hold = equiglb.load_scenario("holdout", base="synthetic", hours=240, seed=5)
    aug = equiglb.load_scenario("augmented", source="holdout", split="fit", copies=2, base="synthetic",
                                hours=240, seed=5)
    G = aug.splits["generated"][1]
    assert G == 2 * hold.splits["fit"][1]
    assert aug.splits["fit"] == (0, G + hold.splits["fit"][1])
    np.testing.assert_array_equal(aug.split("val").price, hold.split("val").price)


def test_an_environment_trains_on_the_augmented_split():
    import gymnasium as gym

    env = gym.make("equiglb/EquitableGLB-v0", scenario="augmented",
                   scenario_options={"source": "test-augment-source", "copies": 2},
                   episode_length=24, random_start=True)
    cfg = env.unwrapped.config
    assert (cfg.split, cfg.split_start, cfg.split_length) == ("train", 0, 3 * 200)
    env.reset(seed=0)
    env.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"copies": 0}, "copies=0"),
    ({"copies": 101}, "copies=101"),
    ({"copies": 1.5}, "copies=1.5"),
    ({"split": "nope"}, "split='nope' is not a split"),
    ({"split": "test"}, "starts at hour 200"),
    ({"source": "augmented"}, "another registered scenario"),
    ({"source": "nope"}, "unknown scenario 'nope'"),
    ({"augment_seed": -1}, "augment_seed=-1"),
])
def test_bad_options_are_refused_by_name(kwargs, message):
    with pytest.raises(OptionError, match=message):
        equiglb.load_scenario("augmented", **{"source": "test-augment-source", **kwargs})


@pytest.mark.parametrize("argv, message", [
    (["--augment", "-1"], "--augment must be in 0..100"),
    (["--augment", "2", "--env-kwargs", "scenario=synthetic"], "--augment sets the scenario itself"),
])
def test_agent_quality_augment_flag_is_checked(argv, message, capsys):
    aq = load_benchmark("agent_quality")
    with pytest.raises(SystemExit) as exc:
        aq.main(["--protocol", "synthetic", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_select_residual_augment_candidate():
    sr = load_benchmark("select_residual")
    assert sr.parse_candidate("a:augment=4,gamma=0.9").augment == 4
    assert sr.parse_candidate("a:gamma=0.9").augment == 0
    for bad in ("a:augment=-1", "a:augment=1.5", "a:augment=101"):
        with pytest.raises(ValueError, match="augment must be an integer"):
            sr.parse_candidate(bad)


def test_holdout_and_augmented_are_registered_with_the_package_alone():
    import subprocess
    import sys

    code = ("import equiglb; s = equiglb.list_scenarios(); assert 'holdout' in s and 'augmented' in s; "
            "print(equiglb.load_scenario('holdout', base='synthetic', hours=240).splits)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'fit': (0, 160)" in out and "'val': (160, 40)" in out
