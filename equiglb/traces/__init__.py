"""Trace sources and the scenario registry: :func:`load_scenario` turns a name into a Scenario.

Registered names (see :func:`list_scenarios`):

* ``"eglb-2022"`` / ``"eglb-2022-partial"``: the real eGLB-2022 traces (full / partial connection),
  read from ``data_dir=``, from ``$EQUIGLB_EGLB_2022_DIR``, or from the download cache filled by
  ``equiglb.traces.fetch("eglb-2022")``.

Other modules register more names with :func:`register_scenario`.
"""

from __future__ import annotations

import inspect
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from equiglb.scenario import Scenario, ScenarioError, Weights
from equiglb.traces.csvio import TraceError

__all__ = ["load_scenario", "register_scenario", "list_scenarios", "cache_root", "apply_options",
           "TraceError", "EGLB_2022_COMMIT"]

#: Pinned upstream commit of the eGLB-2022 traces (Ren-Research/Environmentally-Equitable-AI).
EGLB_2022_COMMIT = "182da36005763374f072c74791b18cd9fd11d724"

_REGISTRY: dict[str, tuple[Callable[..., Scenario], str]] = {}


def register_scenario(name: str, builder: Callable[..., Scenario], description: str) -> None:
    """Register ``builder(**options) -> Scenario`` under ``name`` for :func:`load_scenario`."""
    _REGISTRY[name] = (builder, description)


def list_scenarios() -> dict[str, str]:
    """Registered scenario names and one-line descriptions."""
    return {k: v[1] for k, v in sorted(_REGISTRY.items())}


def cache_root() -> Path:
    """Download cache: ``$EQUIGLB_CACHE``, else ``$XDG_CACHE_HOME/equiglb``, else ``~/.cache/equiglb``."""
    if os.environ.get("EQUIGLB_CACHE"):
        return Path(os.environ["EQUIGLB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "equiglb"


_WEIGHT_KEYS = ("mu_carbon", "mu_water", "mu_social", "mu_latency", "q", "unserved_penalty_usd")


def apply_options(scn: Scenario, horizon: int | None = None, demand_scale: float = 1.0,
                  demand_tz_shift: bool = False, weights: Weights | None = None,
                  **weight_overrides: float) -> Scenario:
    """Apply the options common to every scenario.

    Args:
        horizon: keep only the first ``horizon`` hours; named splits that do not fit are rescaled
            proportionally.
        demand_scale: multiply all demand by this factor (> 0).
        demand_tz_shift: shift each region's demand by its UTC offset, so that a demand trace in UTC
            becomes the same local-time profile in every region (circular shift at the ends).
        weights: objective weights replacing the scenario's defaults.
        weight_overrides: any of mu_carbon, mu_water, mu_social, mu_latency, q, unserved_penalty_usd.
    """
    import dataclasses

    unknown = set(weight_overrides) - set(_WEIGHT_KEYS)
    if unknown:
        raise ScenarioError(f"scenario {scn.name!r}: unknown option(s) {sorted(unknown)}; weight options are "
                            f"{list(_WEIGHT_KEYS)}")
    changes: dict[str, Any] = {}
    if horizon is not None:
        horizon = int(horizon)
        if not 1 <= horizon <= scn.T:
            raise ScenarioError(f"scenario {scn.name!r}: horizon={horizon} must be in 1..{scn.T} hours")
        T0 = scn.T
        splits = {}
        for k, (s, n) in scn.splits.items():
            if s + n <= horizon:
                splits[k] = (s, n)
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
        if not (math.isfinite(demand_scale) and demand_scale > 0):
            raise ScenarioError(f"scenario {scn.name!r}: demand_scale must be > 0, got {demand_scale!r}")
        changes["demand"] = demand * float(demand_scale)
    w = weights if weights is not None else scn.weights
    overrides = {k: v for k, v in weight_overrides.items() if v is not None}
    if overrides:
        w = w.replace(**overrides)
    if w is not scn.weights:
        changes["weights"] = w
    return dataclasses.replace(scn, **changes) if changes else scn


def load_scenario(name: str = "synthetic", **options: Any) -> Scenario:
    """Load a registered scenario by name.

    Common options: ``horizon``, ``demand_scale``, ``demand_tz_shift``, ``weights`` and the weight
    keys (``mu_carbon``, ``mu_water``, ``mu_social``, ``mu_latency``, ``q``,
    ``unserved_penalty_usd``); each scenario adds its own (``data_dir``, ``seed``, ...).
    """
    if name not in _REGISTRY:
        raise ScenarioError(f"unknown scenario {name!r}; available: {sorted(_REGISTRY)}")
    builder, _ = _REGISTRY[name]
    common = {k: options.pop(k) for k in ("horizon", "demand_scale", "demand_tz_shift", "weights", *_WEIGHT_KEYS)
              if k in options}
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ScenarioError(
                f"scenario {name!r}: unknown option(s) {unknown}; its own options are {sorted(params)}, the "
                f"common ones {['horizon', 'demand_scale', 'demand_tz_shift', 'weights', *_WEIGHT_KEYS]}")
    return apply_options(builder(**options), **common)


def _eglb_dir(data_dir: os.PathLike | str | None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("EQUIGLB_EGLB_2022_DIR")
    if env:
        return Path(env)
    cached = cache_root() / "eglb-2022" / EGLB_2022_COMMIT
    if cached.is_dir():
        return cached
    raise TraceError(
        "the eGLB-2022 traces are not available locally: pass data_dir=<folder>, set "
        "EQUIGLB_EGLB_2022_DIR, or download them once with `python -m equiglb.traces fetch eglb-2022`")


def _eglb_builder(partial: bool) -> Callable[..., Scenario]:
    def build(data_dir: os.PathLike | str | None = None) -> Scenario:
        from equiglb.traces.eglb2022 import load_eglb_folder

        return load_eglb_folder(_eglb_dir(data_dir), partial=partial)

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
from equiglb.traces.generic import load_generic  # noqa: E402

register_scenario("csv", load_generic,
                  "your own data in the generic tidy format (data_dir= or path=; see docs/data.md)")
