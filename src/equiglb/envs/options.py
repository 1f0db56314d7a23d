"""The environment's keyword options, declared once (docs/env.md, "Keyword arguments").

:class:`EnvOptions` declares every option of ``gymnasium.make("equiglb/...", **options)`` that is not an
action mode's own: its type, default and meaning (field metadata ``doc``), and whether a trained agent
depends on it (``agent``). An action mode's own options are a dataclass next to the mode
(:mod:`equiglb.envs.slot`, e.g. :class:`~equiglb.envs.slot.MPCResidualOptions`) that checks its fields by
name when built. The lists of option names other modules read (``AGENT_OPTIONS``, ``MODE_OPTIONS``, ...
in :mod:`equiglb.envs.core`) are derived from these declarations; :meth:`equiglb.envs.core.EnvConfig.make`
checks every value against the scenario, once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["EnvOptions", "option", "option_defaults", "is_agent_option"]


def option(default: Any, doc: str, *, agent: bool = False) -> Any:
    """A declared option: a dataclass field with its default, its one-line meaning (``doc``, the text of the
    options table in docs/env.md) and whether a trained agent depends on it (``agent``: what the agent
    observes or what its action does)."""
    return dataclasses.field(default=default, metadata={"doc": doc, "agent": agent})


def option_defaults(options_type: type) -> dict[str, Any]:
    """The declared options of a dataclass of options, by name, with their defaults (in declaration order)."""
    return {f.name: f.default for f in dataclasses.fields(options_type)}


def is_agent_option(f: dataclasses.Field) -> bool:
    """Whether the declared option ``f`` changes what an agent observes or what its action does."""
    return bool(f.metadata.get("agent"))


@dataclasses.dataclass
class EnvOptions:
    """The environment options shared by every action mode, as given (checked by
    :meth:`equiglb.envs.core.EnvConfig.make`). The action modes' own options are declared with the modes."""

    scenario: Any = option("synthetic", "a name of `equiglb.load_scenario` or an `equiglb.Scenario`")
    data_dir: os.PathLike | str | None = option(None, "the data folder of a named scenario")
    scenario_options: Mapping[str, Any] | None = option(None, "keyword options of `load_scenario`")
    split: str | None = option(None, 'split of the episodes: "train" (default if present), "test", "all"')
    q: float | None = option(None, "the L_q norm of the equity terms (default: the scenario's)")
    mu_carbon: float | None = option(None, "weight μ_c of the carbon term, USD/t (default: the scenario's)")
    mu_water: float | None = option(None, "weight μ_w of the water term, USD/m³ (default: the scenario's)")
    mu_social: float | None = option(None, "weight μ_s of the social term, USD (default: the scenario's)")
    mu_latency: float | None = option(None, "weight μ_d of the latency, USD (default: the scenario's)")
    unserved_penalty_usd: float | None = option(None, "USD per unserved load unit (default: the scenario's)")
    region_weights: Sequence[float] | None = option(None, "region weights ω of the sites, (N,) (default: the "
                                                          "scenario's)")
    episode_length: int | None = option(None, "slots (hours) per episode (default: the whole split)")
    random_start: bool = option(False, "draw the first slot uniformly in the split")
    action_mode: str = option("site_scores", "the action mode (docs/env.md, Action modes)", agent=True)
    forecast_horizon: int = option(0, "hours of forecasts in the observation (0..8760)", agent=True)
    forecast_model: Any = option(None, '"calibrated" (default), "persistence", "perfect", "noise" or a '
                                       "`Forecaster`", agent=True)
    forecast_seed: int = option(0, "seed of the calibrated forecast errors", agent=True)
    forecast_scale: float = option(1.0, "multiplier of the calibrated errors' deviation (0..100)", agent=True)
    forecast_correction: str | None = option(None, 'fit a correction of the forecasts by their recent errors on this '
                                                   'split of the scenario (e.g. "train"; docs/forecasts.md) and '
                                                   'forecast with it; None: the raw forecasts', agent=True)
    forecast_noise: float = option(0.0, "legacy noise: relative std at 1 h (0..10)", agent=True)
    forecast_errors: bool = option(False, "append the recent forecast errors (12 entries: by signal, their mean "
                                          "absolute and signed error at 1 h and mean absolute error at the "
                                          "longest lead in use, over the last 24 h) to the observation", agent=True)
    include_prev_action: bool = option(False, "append the previous action to the observation", agent=True)
