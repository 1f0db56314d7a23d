"""Online eGLB (Li, Yang, Wierman, Ren 2023, Alg. 1) as a policy: a loop over
:class:`equiglb.control.eglb.EGLBCore`, where the algorithm and its defaults are described."""

from __future__ import annotations

import numpy as np

from equiglb.baselines.policy import OnlinePolicy
from equiglb.control.eglb import EGLBCore
from equiglb.scenario import Scenario, Weights

__all__ = ["OnlineEGLBPolicy"]


class OnlineEGLBPolicy(OnlinePolicy):
    """Online eGLB (dual mirror descent with auxiliary variables): a loop over :class:`EGLBCore`.

    Args:
        eta: dual step size (1/USD); None = 1 / (G √T) from the first slot's data.
        z_max: auxiliary bound in USD per slot (scalar or per coordinate); None = causal running max of
            the per-slot footprint bound.
        project_duals: clip γ at 0 after each step (the duals of B x <= z are non-negative).
        eta_scale: multiplies the step (default or given), for tuning studies.
        z_max_scale: multiplies the auxiliary bound (default or given).
    """

    name = "online-eglb"

    def __init__(self, eta: float | None = None, z_max: float | np.ndarray | None = None,
                 project_duals: bool = True, eta_scale: float = 1.0, z_max_scale: float = 1.0):
        self.eta_given, self.z_max_given = eta, z_max
        self.project_duals = project_duals
        self.eta_scale = float(eta_scale)
        self.z_max_scale = float(z_max_scale)
        self.core: EGLBCore | None = None

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        self.core = EGLBCore(scenario, weights, eta=self.eta_given, z_max=self.z_max_given,
                             project_duals=self.project_duals, eta_scale=self.eta_scale,
                             z_max_scale=self.z_max_scale)

    def act(self, t: int) -> np.ndarray:
        core = self.core
        if core is None:
            raise RuntimeError("OnlineEGLBPolicy.act called before reset")
        return core.step(t)

    @property
    def gamma(self) -> np.ndarray:
        """The duals after the last slot (see :class:`EGLBCore`)."""
        if self.core is None:
            raise RuntimeError("OnlineEGLBPolicy: no window yet (call reset or schedule)")
        return self.core.gamma

    @property
    def eta(self) -> float | None:
        """The step size in use (1/USD), known after the first slot."""
        return None if self.core is None else self.core.eta
