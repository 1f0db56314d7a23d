"""online-eglb-tuned: tuned on training windows only, never worse there than the defaults, cached."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from equiglb.baselines import POLICY_NAMES, OnlineEGLBPolicy, TunedOnlineEGLBPolicy, make_policy, solve_offline
from equiglb.baselines.eglb_tuned import training_data_of, training_window_starts, tune_online_eglb
from equiglb.ledger import objective

ETA, ZMAX = (0.35, 0.7, 1.0, 1.4), (0.5, 1.0)


def _garbage_after(sc, start, seed=0):
    """``sc`` with every series from hour ``start`` on replaced by random garbage."""
    rng = np.random.default_rng(seed)
    fut = np.arange(sc.T) >= start

    def mod(a):
        b = a.copy()
        b[fut] = rng.uniform(0, 5 * a.max(), b[fut].shape)
        return b

    return dataclasses.replace(sc, price=mod(sc.price), carbon=mod(sc.carbon), water=mod(sc.water),
                               demand=np.minimum(mod(sc.demand), sc.capacity.sum() / sc.J))


def test_registered():
    assert "online-eglb-tuned" in POLICY_NAMES
    assert isinstance(make_policy("online-eglb-tuned"), TunedOnlineEGLBPolicy)


def test_window_starts():
    assert training_window_starts(336, 121, 5) == [0, 54, 108, 161, 215]
    assert training_window_starts(1200, 240, 5) == [0, 240, 480, 720, 960]
    assert training_window_starts(10, 10, 5) == [0]
    with pytest.raises(ValueError, match="window_hours"):
        training_window_starts(100, 121, 5)


def test_tuning_never_reads_the_evaluated_window(eglb):
    # the same training data gives the same choice whatever the test window holds
    test_start = eglb.splits["test"][0]
    bad = _garbage_after(eglb, test_start)
    a = TunedOnlineEGLBPolicy(train=eglb.split("train"), eta_scales=ETA, z_max_scales=ZMAX)
    b = TunedOnlineEGLBPolicy(train=bad.split("train"), eta_scales=ETA, z_max_scales=ZMAX)
    a.reset(eglb.split("test"), eglb.weights)
    b.reset(bad.split("test"), eglb.weights)
    assert a.tuning is not None and b.tuning is not None
    assert a.tuning.scores == b.tuning.scores
    assert (a.tuning.eta_scale, a.tuning.z_max_scale) == (b.tuning.eta_scale, b.tuning.z_max_scale)
    assert max(s + a.tuning.window_hours for s in a.tuning.starts) <= test_start


def test_found_training_data_is_the_train_split_and_checked(eglb):
    tr = training_data_of(eglb.split("test"))
    np.testing.assert_array_equal(tr.price, eglb.split("train").price)
    np.testing.assert_array_equal(tr.timestamps, eglb.split("train").timestamps)
    with pytest.raises(ValueError, match="overlaps"):
        training_data_of(eglb.split("train"))
    bad = _garbage_after(eglb, eglb.splits["test"][0])
    with pytest.raises(ValueError, match="train=full.split"):
        training_data_of(bad.split("test"))          # modified data is an error, not a silent mismatch


def test_no_worse_than_defaults_on_its_windows(eglb):
    train = eglb.split("train")
    res = tune_online_eglb(train, eglb.weights, window_hours=121, eta_scales=ETA, z_max_scales=ZMAX)
    assert res.score <= res.default_score
    # recompute both mean gaps independently on the same windows
    gaps: dict[str, list[float]] = {"default": [], "tuned": []}
    for s in res.starts:
        win = train.window(s, res.window_hours)
        j_off = solve_offline(win, eglb.weights).objective_usd
        for key, pol in (("default", OnlineEGLBPolicy()),
                         ("tuned", OnlineEGLBPolicy(eta_scale=res.eta_scale, z_max_scale=res.z_max_scale))):
            gaps[key].append(objective(win, pol.schedule(win, eglb.weights), eglb.weights) / j_off - 1)
    assert np.mean(gaps["tuned"]) == pytest.approx(res.score, rel=1e-9)
    assert np.mean(gaps["default"]) == pytest.approx(res.default_score, rel=1e-9)
    assert np.mean(gaps["tuned"]) <= np.mean(gaps["default"])
    assert tune_online_eglb(train, eglb.weights, window_hours=121, eta_scales=ETA, z_max_scales=ZMAX) is res  # cached


def test_bad_grid_is_an_error(eglb):
    with pytest.raises(ValueError, match="defaults 1.0"):
        tune_online_eglb(eglb.split("train"), eta_scales=(0.5, 2.0))
    with pytest.raises(ValueError, match="finite"):
        tune_online_eglb(eglb.split("train"), eta_scales=(1.0, -1.0))


def test_baselines_cli_tunes_on_the_train_split_and_refuses_an_overlapping_window(capsys):
    from equiglb.baselines.__main__ import main

    assert main(["--scenario", "synthetic", "--policies", "online-eglb-tuned"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--split 'all' overlaps" in err[0]
    assert main(["--scenario", "synthetic", "--split", "test", "--policies", "online-eglb,online-eglb-tuned"]) == 0
    assert "online-eglb-tuned" in capsys.readouterr().out
