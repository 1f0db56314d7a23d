"""The environment's options are declared once (EnvOptions and the action modes' option dataclasses): the
env's signature, the derived lists of names and the table of docs/env.md follow the declarations."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from equiglb.envs import ACTION_MODE_REGISTRY, ACTION_MODES, EquitableGLBEnv
from equiglb.envs.core import (
    AGENT_OPTIONS,
    MODE_OPTIONS,
    MPC_OPTIONS,
    OPTION_DEFAULTS,
    OPTION_FIELDS,
    RESIDUAL_OPTIONS,
)
from equiglb.envs.options import EnvOptions
from equiglb.envs.slot import SlotStep
from equiglb.validate import OptionError, UnknownOptionError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "env.md"


def test_the_env_signature_is_the_declared_options():
    params = inspect.signature(EquitableGLBEnv.__init__).parameters
    declared = [(f.name, f.default) for f in OPTION_FIELDS]
    shown = [(n, p.default) for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert shown == declared
    assert list(params)[:2] == ["self", "render_mode"] and list(params)[-1] == "unknown"
    # the defaults the agents read (an option a run's config.yml does not record) are the declared ones
    assert list(OPTION_DEFAULTS.items()) == declared


def test_the_lists_of_names_are_derived_from_the_declarations():
    assert [f.name for f in OPTION_FIELDS[:len(dataclasses.fields(EnvOptions))]] == \
        [f.name for f in dataclasses.fields(EnvOptions)]
    assert MODE_OPTIONS == {"eglb_residual": RESIDUAL_OPTIONS, "mpc_residual": MPC_OPTIONS}
    assert RESIDUAL_OPTIONS == {"eglb_eta_scale": 1.0, "eglb_z_max_scale": 1.0, "eglb_residual_max_factor": 4.0}
    assert MPC_OPTIONS == {"mpc_horizon": 6, "mpc_residual_max_factor": 4.0, "mpc_residual_observation": "full",
                           "mpc_residual_reward": "cost", "mpc_tail_days": 0, "mpc_tail_weight": 1.0,
                           "mpc_tail_block_hours": 1, "mpc_warm_start": False}
    assert AGENT_OPTIONS == ("action_mode", "forecast_horizon", "forecast_model", "forecast_seed", "forecast_scale",
                             "forecast_correction", "forecast_noise", "forecast_errors", "include_prev_action",
                             *RESIDUAL_OPTIONS, "mpc_horizon", "mpc_residual_max_factor", "mpc_residual_observation",
                             "mpc_tail_days", "mpc_tail_weight", "mpc_tail_block_hours", "mpc_warm_start")
    # the reward changes neither what the agent observes nor what its action does
    for f in OPTION_FIELDS:
        assert f.metadata["doc"], f.name


def test_an_unknown_option_is_named_with_the_list_of_options():
    with pytest.raises(UnknownOptionError, match=r"unknown environment option\(s\) \['mpc_horizont'\]; the options "
                                                 r"are \['scenario', 'data_dir', .*'mpc_residual_reward', "
                                                 r"'mpc_tail_days', 'mpc_tail_weight', 'mpc_tail_block_hours', "
                                                 r"'mpc_warm_start'\]"):
        EquitableGLBEnv(mpc_horizont=3)


def test_the_registry_has_one_leaf_class_per_mode():
    assert ACTION_MODES == tuple(ACTION_MODE_REGISTRY) == ("routing", "site_scores", "prices", "eglb_residual",
                                                           "mpc_residual")
    classes = list(ACTION_MODE_REGISTRY.values())
    for name, cls in ACTION_MODE_REGISTRY.items():
        assert issubclass(cls, SlotStep) and cls.mode == name
        assert not any(other is not cls and issubclass(other, cls) for other in classes), f"{name} is a base"
    assert EquitableGLBEnv(action_mode="routing", episode_length=2).slot.mode == "routing"


def _doc_table() -> dict[str, str]:
    """The options table of docs/env.md: each option named in a row's first cell -> the row's default cell."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Keyword arguments (all ids)", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`(\w+)`", cells[0]):
                rows[name] = cells[1]
    return rows


def _shown(default: object) -> str:
    return f'"{default}"' if isinstance(default, str) else repr(default)


@pytest.mark.parametrize("f", OPTION_FIELDS, ids=lambda f: f.name)
def test_every_option_is_in_the_docs_with_its_default(f):
    rows = _doc_table()
    assert f.name in rows, f"docs/env.md has no row for the option {f.name}"
    if f.default is None:                       # resolved from the scenario or the split: said in words
        assert rows[f.name]
    else:
        assert _shown(f.default) in rows[f.name], (f.name, rows[f.name])


def test_every_mode_is_in_the_docs():
    text = DOCS.read_text(encoding="utf-8")
    for name, cls in ACTION_MODE_REGISTRY.items():
        assert f"`{name}`" in text and cls.__name__ in text, name


@pytest.mark.parametrize("name, default, owner", [(name, default, mode) for mode, opts in MODE_OPTIONS.items()
                                                   for name, default in opts.items()])
@pytest.mark.parametrize("mode", sorted(ACTION_MODE_REGISTRY))
def test_a_mode_option_is_refused_by_name_with_another_mode(name, default, owner, mode):
    if mode == owner:
        return
    if isinstance(default, str):      # another of the option's choices
        value = {"mpc_residual_observation": "none", "mpc_residual_reward": "vs-planner"}[name]
    elif isinstance(default, bool):
        value = not default
    else:
        value = default + 1 if isinstance(default, int) else default * 1.5
    with pytest.raises(OptionError, match=rf"^{name}={value!r}: applies only with action_mode='{owner}', "
                                          rf"got action_mode='{mode}'"):
        EquitableGLBEnv(action_mode=mode, episode_length=24, **{name: value})
