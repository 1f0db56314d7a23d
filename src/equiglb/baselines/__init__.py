"""Optimization baselines: offline optimum, equity-oblivious GLB, online eGLB, MPC, random.

Every baseline is a :class:`~equiglb.baselines.policy.Policy`; :func:`make_policy` builds one by name
and :func:`~equiglb.baselines.compare.compare` tabulates any list of policies through the ledger.
Command line: ``python -m equiglb.baselines --help``. The cores the policies loop over (routing LPs, the
eGLB core, the MPC core, the offline program) live one layer below, in :mod:`equiglb.control`; the names
re-exported here from there (``EGLBCore``, ``solve_offline``, ...) keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from equiglb.baselines.compare import TABLE_COLUMNS, compare, format_table, write_csv, write_json
from equiglb.baselines.eglb_tuned import TunedOnlineEGLBPolicy, tune_online_eglb
from equiglb.baselines.mpc import MPCPolicy
from equiglb.baselines.oblivious import MinSignalPolicy, NearestPolicy, ProportionalPolicy, RandomPolicy
from equiglb.baselines.offline import OfflinePolicy
from equiglb.baselines.online_eglb import OnlineEGLBPolicy
from equiglb.baselines.policy import OnlinePolicy, Policy
from equiglb.control.eglb import EGLBCore
from equiglb.control.offline import InfeasibleError, OfflineResult, SolverError, solve_offline

__all__ = ["Policy", "OnlinePolicy", "OfflinePolicy", "OfflineResult", "OnlineEGLBPolicy", "EGLBCore",
           "TunedOnlineEGLBPolicy", "tune_online_eglb", "MPCPolicy",
           "MinSignalPolicy", "NearestPolicy", "ProportionalPolicy", "RandomPolicy", "InfeasibleError",
           "SolverError", "solve_offline", "make_policy", "POLICY_NAMES", "compare", "format_table",
           "write_csv", "write_json", "TABLE_COLUMNS"]

_FACTORIES: dict[str, Callable[..., Policy]] = {
    "offline": OfflinePolicy,
    "online-eglb": OnlineEGLBPolicy,
    "online-eglb-tuned": TunedOnlineEGLBPolicy,
    "mpc": MPCPolicy,
    "min-cost": lambda **kw: MinSignalPolicy("price", **kw),
    "min-carbon": lambda **kw: MinSignalPolicy("carbon", **kw),
    "min-water": lambda **kw: MinSignalPolicy("water", **kw),
    "nearest": NearestPolicy,
    "proportional": ProportionalPolicy,
    "random": RandomPolicy,
}

#: Names accepted by :func:`make_policy` (and ``--policies`` on the command line).
POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_policy(name: str, **kwargs: Any) -> Policy:
    """Build the baseline ``name`` (one of :data:`POLICY_NAMES`) with constructor keyword arguments.

    Examples: ``make_policy("offline", solver="CLARABEL")``, ``make_policy("mpc", horizon=12)``,
    ``make_policy("online-eglb", eta_scale=0.3)``, ``make_policy("random", seed=1)``,
    ``make_policy("online-eglb-tuned", train=full.split("train"))``.
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown policy {name!r}; valid names: {', '.join(POLICY_NAMES)}")
    return _FACTORIES[name](**kwargs)
