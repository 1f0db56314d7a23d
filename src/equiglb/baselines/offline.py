"""eGLB-Off as a policy: :class:`OfflinePolicy` over the offline program of
:mod:`equiglb.control.offline` (:func:`~equiglb.control.offline.solve_offline`)."""

from __future__ import annotations

import numpy as np

from equiglb.baselines.policy import Policy
from equiglb.control.offline import METHODS, OfflineResult, check_solver, solve_offline
from equiglb.scenario import Scenario, Weights
from equiglb.validate import as_bool, one_of

__all__ = ["OfflinePolicy"]


class OfflinePolicy(Policy):
    """eGLB-Off: the offline optimum of the window (sees the whole future). ``last_result`` keeps the
    :class:`OfflineResult` of the latest :meth:`schedule` call. ``method`` as in :func:`solve_offline`."""

    name = "offline"

    def __init__(self, solver: str | None = None, allow_unserved: bool = True, method: str = "auto",
                 **solver_opts):
        self.solver = check_solver(solver)
        self.allow_unserved = as_bool("allow_unserved", allow_unserved)
        self.method = one_of("method", method, METHODS)
        self.solver_opts = solver_opts
        self.last_result: OfflineResult | None = None

    def solve(self, scenario: Scenario, weights: Weights | None = None) -> OfflineResult:
        """Solve and return the full :class:`OfflineResult`."""
        self.last_result = solve_offline(scenario, weights, self.solver, self.allow_unserved, self.method,
                                         **self.solver_opts)
        return self.last_result

    def schedule(self, scenario: Scenario, weights: Weights | None = None) -> np.ndarray:
        return self.solve(scenario, weights).schedule
