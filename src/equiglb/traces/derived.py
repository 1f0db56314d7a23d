"""Scenarios derived from another: ``holdout`` (a train split divided into fit and val) and
``augmented`` (a split extended with generated hours).

``load_scenario("holdout", base="eglb-2022", val_fraction=0.2, data_dir=...)`` is the base scenario
cut at the end of its train split, with the splits ``fit`` (the first part) and ``val`` (its last
``val_fraction``): hyperparameter search and model selection on it cannot see the test window.

``load_scenario("augmented", source="eglb-2022", copies=4, data_dir=...)`` is the scenario ``source``
with ``copies`` × (its ``split``'s length) generated hours placed *before* it:

* the generator (:mod:`equiglb.traces.synthetic`) is calibrated on that split only
  (:func:`equiglb.traces.calibrate.calibrate_scenario`), never on the hours after it, so the held-out
  windows (``test``, or ``val`` of the ``holdout`` scenario) play no part;
* the generated hours are one continuous history drawn with a seed derived from ``augment_seed`` by
  ``numpy.random.SeedSequence`` (never the small integer seeds of the ``synthetic`` scenario, whose
  noise they would otherwise repeat); each region's generated demand is rescaled to the split's mean
  demand of that region;
* the timestamps run on without a gap up to the source's first hour; the static data (capacity, mask,
  models, latency, weights) are the source's;
* the splits are the source's, shifted by the generated hours, and ``split`` grows to cover them; the
  new split ``generated`` names the generated hours alone.

So an environment on ``split`` (the default ``train``) trains on the real hours and the generated
ones, and every later window (``test``) holds exactly the source's data: the offline optimum and
every baseline there are unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from equiglb.scenario import Scenario
from equiglb.traces import apply_options, load_scenario
from equiglb.traces.calibrate import calibrate_scenario
from equiglb.traces.synthetic import generate_series
from equiglb.validate import OptionError, as_int, as_seed

__all__ = ["holdout_scenario", "augmented_scenario", "MAX_COPIES", "derived_seed"]

#: Most generated copies of the split accepted (the generated hours grow linearly with it).
MAX_COPIES = 100
#: Spawn key that separates the augmentation's random stream from every other seeded stream.
_AUGMENT_KEY = 0xA06


def holdout_scenario(base: str = "synthetic", val_fraction: float = 0.2, **options: Any) -> Scenario:
    """The base scenario cut at the end of its train split, with splits ``fit`` and ``val``.

    Args:
        base: name of the scenario (``equiglb.load_scenario``) whose train split is divided.
        val_fraction: share of the train split (its last hours) held out for validation.
        options: options of the base scenario (``data_dir``, ...).
    """
    if not 0 < float(val_fraction) < 1:
        raise ValueError(f"holdout: val_fraction must be in (0, 1), got {val_fraction!r}")
    scn = load_scenario(base, **options)
    if "train" not in scn.splits:
        raise ValueError(f"holdout: scenario {base!r} has no train split; available: {sorted(scn.splits)}")
    start, length = scn.splits["train"]
    n_val = max(1, int(round(length * float(val_fraction))))
    if n_val >= length:
        raise ValueError(f"holdout: the train split of {base!r} ({length} h) is too short to hold out {n_val} h")
    cut = apply_options(scn, horizon=start + length)
    return dataclasses.replace(cut, splits={"fit": (start, length - n_val), "val": (start + length - n_val, n_val)})


def derived_seed(seed: int) -> int:
    """The generator seed of the augmentation with option ``augment_seed=seed`` (below 2**63)."""
    state = np.random.SeedSequence(int(seed), spawn_key=(_AUGMENT_KEY,)).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def augmented_scenario(source: str = "synthetic", split: str = "train", copies: int = 4, augment_seed: int = 0,
                       **options: Any) -> Scenario:
    """The scenario ``source`` with ``copies`` × len(``split``) generated hours before it (module docstring).

    Args:
        source: registered scenario name (``equiglb.list_scenarios()``), e.g. ``"synthetic"``,
            ``"eglb-2022"`` or ``"holdout"`` (with ``split="fit"``).
        split: the split to calibrate on and extend; it must start at the source's first hour.
        copies: generated hours = ``copies`` × the split's length (1 .. :data:`MAX_COPIES`).
        augment_seed: seed of the generated hours (through :func:`derived_seed`).
        options: the source scenario's own options (``data_dir``, ``seed``, ``base``, ``val_fraction``, ...).

    The result is named ``"augmented"``.

    Raises:
        OptionError: a wrong option, or a split that does not exist or does not start at hour 0.
    """
    if not isinstance(source, str) or source == "augmented":
        raise OptionError(f"source={source!r}: expected the name of another registered scenario")
    copies = as_int("copies", copies, 1, MAX_COPIES)
    augment_seed = as_seed("augment_seed", augment_seed)
    scn = load_scenario(source, **options)
    if not isinstance(split, str) or split not in scn.splits:
        raise OptionError(f"split={split!r} is not a split of scenario {scn.name!r}; available: {sorted(scn.splits)}")
    start, length = scn.splits[split]
    if start != 0:
        raise OptionError(f"split={split!r} of scenario {scn.name!r} starts at hour {start}; augmentation extends "
                          f"a split that starts at hour 0 (the generated hours go before it)")
    real = scn.window(start, length)
    params = calibrate_scenario(real)
    hours = copies * length
    ts = scn.timestamps[0] - np.timedelta64(hours, "h") + np.arange(hours).astype("timedelta64[h]")
    rng = np.random.default_rng(derived_seed(augment_seed))
    gen = {sig: generate_series(getattr(params, sig), ts, rng) for sig in ("price", "carbon", "water")}
    demand = generate_series([params.demand] * scn.J, ts, rng)
    # the generator's demand is per-peak normalized: give each region the split's mean demand
    gen_mean, real_mean = demand.mean(axis=0), real.demand.mean(axis=0)
    demand = demand * np.divide(real_mean, gen_mean, out=np.zeros_like(gen_mean), where=gen_mean > 0)
    splits = {k: (s + hours, n) for k, (s, n) in scn.splits.items()}
    splits[split] = (0, hours + length)
    splits["generated"] = (0, hours)
    return dataclasses.replace(
        scn, name="augmented",
        demand=np.concatenate([demand, scn.demand]),
        price=np.concatenate([gen["price"], scn.price]),
        carbon=np.concatenate([gen["carbon"], scn.carbon]),
        water=np.concatenate([gen["water"], scn.water]),
        timestamps=np.concatenate([ts, scn.timestamps]),
        splits=splits,
        source=f"{scn.source}, its split {split!r} extended by {hours} h generated from a calibration on it "
               f"(copies={copies}, augment_seed={augment_seed})")
