"""Trace sources and the scenario registry: :func:`load_scenario` turns a name into a Scenario.

Registered names (see :func:`list_scenarios`):

* ``"eglb-2022"`` / ``"eglb-2022-partial"``: the real eGLB-2022 traces (full / partial connection),
  read from ``data_dir=`` (the folder holding ``eglb-2022/``, or that folder itself), from
  ``$EQUIGLB_DATA_DIR/eglb-2022``, from the deprecated ``$EQUIGLB_EGLB_2022_DIR``, or from the
  download cache filled by ``equiglb.traces.fetch("eglb-2022")`` (:mod:`equiglb.traces.datadir`). Every
  file read is first checked against the pinned manifest (size and sha256); ``verify=False`` skips the
  check for a copy edited on purpose.
* ``"world"`` / ``"world-partial"``: two years of real signals at 15 zones (sustain-cluster) and ServeGen
  demand, K = 3 (:mod:`equiglb.traces.world`); same look-up of the data folder, same verification.

Other modules register more names with :func:`register_scenario`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from equiglb.scenario import Scenario, ScenarioError, Weights
from equiglb.traces.csvio import TraceError
from equiglb.traces.datadir import DATA_DIR_ENV, dataset_dir
from equiglb.traces.eglb2022 import load_eglb_folder
from equiglb.traces.fetch import EGLB_2022_COMMIT, EGLB_2022_MANIFEST, IntegrityError, cache_root, verify_eglb_files
from equiglb.validate import OptionError, as_bool, as_float, as_int

__all__ = ["load_scenario", "register_scenario", "list_scenarios", "cache_root", "apply_options",
           "TraceError", "IntegrityError", "OptionError", "ScenarioError", "EGLB_2022_COMMIT", "DATA_DIR_ENV",
           "dataset_dir"]

_REGISTRY: dict[str, tuple[Callable[..., Scenario], str]] = {}


def register_scenario(name: str, builder: Callable[..., Scenario], description: str) -> None:
    """Register ``builder(**options) -> Scenario`` under ``name`` for :func:`load_scenario`."""
    _REGISTRY[name] = (builder, description)


def list_scenarios() -> dict[str, str]:
    """Registered scenario names and one-line descriptions."""
    return {k: v[1] for k, v in sorted(_REGISTRY.items())}


_CALENDAR_MONTH = re.compile(r"^\d{4}-\d{2}$")
_WEIGHT_KEYS = ("mu_carbon", "mu_water", "mu_social", "mu_latency", "q", "unserved_penalty_usd")


def apply_options(scn: Scenario, horizon: int | None = None, demand_scale: float = 1.0,
                  demand_tz_shift: bool = False, weights: Weights | None = None,
                  **weight_overrides: float) -> Scenario:
    """Apply the options common to every scenario.

    Every option is validated by name first (:mod:`equiglb.validate`): a wrong type or range raises
    :class:`~equiglb.validate.OptionError`.

    Args:
        horizon: keep only the first ``horizon`` hours (an integer in 1..T); named splits that do not fit
            are rescaled proportionally, except calendar-month splits (``"2024-07"``), which are dropped.
        demand_scale: multiply all demand by this factor (> 0, at most 1e12).
        demand_tz_shift: shift each region's demand by its UTC offset, so that a demand trace in UTC
            becomes the same local-time profile in every region (circular shift at the ends).
        weights: objective weights replacing the scenario's defaults.
        weight_overrides: any of mu_carbon, mu_water, mu_social, mu_latency, q, unserved_penalty_usd.
    """
    unknown = set(weight_overrides) - set(_WEIGHT_KEYS)
    if unknown:
        raise OptionError(f"scenario {scn.name!r}: unknown option(s) {sorted(unknown)}; weight options are "
                          f"{list(_WEIGHT_KEYS)}")
    demand_scale = as_float("demand_scale", demand_scale, lo=0.0, lo_open=True)
    demand_tz_shift = as_bool("demand_tz_shift", demand_tz_shift)
    if weights is not None and not isinstance(weights, Weights):
        raise OptionError(f"weights={type(weights).__name__} object: expected an equiglb.Weights "
                          f"(e.g. Weights(mu_carbon=1500, q=2)) or the weight options {list(_WEIGHT_KEYS)}")
    changes: dict[str, Any] = {}
    if horizon is not None:
        horizon = as_int("horizon", horizon, 1, scn.T, unit="hours")
        T0 = scn.T
        splits = {}
        for k, (s, n) in scn.splits.items():
            if s + n <= horizon:
                splits[k] = (s, n)
            elif _CALENDAR_MONTH.match(k):
                continue        # a calendar month ("2024-07") that does not fit is dropped, never rescaled
            else:
                s2, e2 = int(round(s * horizon / T0)), int(round((s + n) * horizon / T0))
                if e2 - s2 >= 1:
                    splits[k] = (s2, e2 - s2)
        splits["all"] = (0, horizon)
        sl = slice(0, horizon)
        changes.update(demand=scn.demand[sl], price=scn.price[sl], carbon=scn.carbon[sl],
                       water=scn.water[sl], timestamps=scn.timestamps[sl], splits=splits)
    demand = changes.get("demand", scn.demand)
    if demand_tz_shift:
        offs = np.rint(scn.utc_offset_h[: scn.J] if scn.J == scn.N else np.zeros(scn.J)).astype(int)
        demand = np.stack([np.roll(demand[:, j], -offs[j]) for j in range(scn.J)], axis=1)
        changes["demand"] = demand
    if demand_scale != 1.0:
        changes["demand"] = demand * float(demand_scale)
    w = weights if weights is not None else scn.weights
    overrides = {k: v for k, v in weight_overrides.items() if v is not None}
    if overrides:
        w = w.replace(**overrides)
    if w is not scn.weights:
        changes["weights"] = w
    return dataclasses.replace(scn, **changes) if changes else scn


def load_scenario(name: str = "synthetic", /, **options: Any) -> Scenario:
    """Load a registered scenario by name.

    Common options: ``horizon``, ``demand_scale``, ``demand_tz_shift``, ``weights`` and the weight
    keys (``mu_carbon``, ``mu_water``, ``mu_social``, ``mu_latency``, ``q``,
    ``unserved_penalty_usd``); each scenario adds its own (``data_dir``, ``seed``, ...).
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise OptionError(f"unknown scenario {name!r}; available: {sorted(_REGISTRY)}")
    builder, _ = _REGISTRY[name]
    common = {k: options.pop(k) for k in ("horizon", "demand_scale", "demand_tz_shift", "weights", *_WEIGHT_KEYS)
              if k in options}
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise OptionError(
                f"scenario {name!r}: unknown option(s) {unknown}; its own options are {sorted(params)}, the "
                f"common ones {['horizon', 'demand_scale', 'demand_tz_shift', 'weights', *_WEIGHT_KEYS]}")
    return apply_options(builder(**options), **common)


def _eglb_dir(data_dir: os.PathLike | str | None) -> Path:
    # data_dir (the data folder or the eGLB folder itself), $EQUIGLB_DATA_DIR, the deprecated
    # $EQUIGLB_EGLB_2022_DIR, the download cache: equiglb.traces.datadir
    return dataset_dir("eglb-2022", data_dir)


def _eglb_builder(partial: bool) -> Callable[..., Scenario]:
    def build(data_dir: os.PathLike | str | None = None, verify: bool = True) -> Scenario:
        """The eGLB-2022 folder; with ``verify`` (default) every file read is checked against the manifest."""
        verify = as_bool("verify", verify)
        d = _eglb_dir(data_dir)
        if not d.is_dir():
            raise TraceError(f"{d}: eGLB-2022 trace folder not found")
        if verify:
            verify_eglb_files(d, [rel for rel in EGLB_2022_MANIFEST if partial or rel != "partial_mask.csv"])
        return load_eglb_folder(d, partial=partial)

    return build


register_scenario("eglb-2022", _eglb_builder(False),
                  "real eGLB-2022 traces, 10 sites x 10 gateways, full connection, 457 h")
register_scenario("eglb-2022-partial", _eglb_builder(True),
                  "real eGLB-2022 traces with the study's partial-connection mask")


# ---------------------------------------------------------------------- generated and user scenarios
from equiglb.traces.synthetic import synthetic_scenario  # noqa: E402

register_scenario("synthetic", synthetic_scenario,
                  "embedded default: calibrated synthetic traces of the 10 eGLB sites, K=1, 1440 h (seed=, hours=)")
from equiglb.traces.multimodel import multimodel_scenario  # noqa: E402

register_scenario("synthetic-multimodel", multimodel_scenario,
                  "synthetic traces with K=3 LLaMA models (7B/13B/65B), small-model-only sites in Asia, "
                  "partial mask, q=2")
from equiglb.traces.derived import augmented_scenario, holdout_scenario  # noqa: E402
from equiglb.traces.generic import load_generic  # noqa: E402

register_scenario("holdout", holdout_scenario,
                  "a scenario's train split divided into fit and val (hyperparameter search; no test window)")
register_scenario("augmented", augmented_scenario,
                  "a scenario whose train split is extended by hours generated from a calibration on it "
                  "(source=, split=, copies=, augment_seed=; docs/data.md)")
register_scenario("csv", load_generic,
                  "your own data in the generic tidy format (data_dir= or path=; see docs/data.md)")
from equiglb.traces.world import world_scenario  # noqa: E402


def _world_partial(data_dir: os.PathLike | str | None = None, carbon: str = "lifecycle", zones: Any = None,
                   years: Any = None, demand_seed: int = 0, demand_weights: Any = None,
                   verify: bool = True) -> Scenario:
    """``world`` with the latency mask (same or neighbouring continent); options as :func:`world_scenario`."""
    return world_scenario(data_dir=data_dir, partial=True, carbon=carbon, zones=zones, years=years,
                          demand_seed=demand_seed, demand_weights=demand_weights, verify=verify)


def _world_full(data_dir: os.PathLike | str | None = None, carbon: str = "lifecycle", zones: Any = None,
                years: Any = None, demand_seed: int = 0, demand_weights: Any = None,
                verify: bool = True) -> Scenario:
    """``world``, full connection; options as :func:`world_scenario`."""
    return world_scenario(data_dir=data_dir, partial=False, carbon=carbon, zones=zones, years=years,
                          demand_seed=demand_seed, demand_weights=demand_weights, verify=verify)


register_scenario("world", _world_full,
                  "real 2023-2024 signals of 15 Electricity Maps zones (sustain-cluster) and ServeGen demand, "
                  "K=3 models, 17,544 h (data_dir=, carbon=, zones=, years=, demand_seed=; docs/data.md)")
register_scenario("world-partial", _world_partial,
                  "world with a latency mask: same or neighbouring continent (published inter-cloud RTTs)")
