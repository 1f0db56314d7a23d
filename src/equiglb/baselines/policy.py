"""One interface for every policy: baselines now, RL agents later.

* An **offline** policy sees the whole window and returns a schedule at once.
* An **online** policy acts slot by slot; :meth:`OnlinePolicy.act` at slot t may use only data of
  slots ``0..t`` (the current slot's prices, intensities and demand are known when it routes).

Every policy is evaluated the same way: its schedule ``x[t, i, j, k]`` (load units) is accounted by
the ledger (:func:`equiglb.ledger.evaluate`).
"""

from __future__ import annotations

import abc

import numpy as np

from equiglb.ledger import weights_in_force
from equiglb.scenario import Scenario, Weights

__all__ = ["Policy", "OnlinePolicy"]


class Policy(abc.ABC):
    """A routing policy. Subclasses set ``name`` and implement :meth:`schedule`."""

    name: str = "policy"
    online: bool = False

    @abc.abstractmethod
    def schedule(self, scenario: Scenario, weights: Weights | None = None) -> np.ndarray:
        """The routing ``x[t, i, j, k]`` (load units, shape (T, N, J, K)) for the whole window."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class OnlinePolicy(Policy):
    """A policy that routes slot by slot without seeing the future."""

    online = True

    @abc.abstractmethod
    def reset(self, scenario: Scenario, weights: Weights) -> None:
        """Prepare for a new window of ``scenario``."""

    @abc.abstractmethod
    def act(self, t: int) -> np.ndarray:
        """Routing of slot t, shape (N, J, K). May read the scenario's data of slots 0..t only."""

    def schedule(self, scenario: Scenario, weights: Weights | None = None) -> np.ndarray:
        w = weights_in_force(scenario, weights)
        self.reset(scenario, w)
        return np.stack([self.act(t) for t in range(scenario.T)])
