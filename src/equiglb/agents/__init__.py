"""stable-baselines3 agents for equiglb: algorithm registry and hyperparameters (:mod:`.algos`), run
folders (:mod:`.runs`), the training plan (:mod:`.plan`), the ``train.py`` command line (:mod:`.cli`) and training loop
(:mod:`.trainer`), exact interruption and resumption (:mod:`.resume`), saved agents as policies
(:class:`AgentPolicy`), a learned policy with a guarantee against an online expert
(:class:`RobustPolicy`, docs/robust.md), evaluation beside the baselines (:mod:`.evaluate`) and reports
(:mod:`.report`). See docs/training.md.

Imports go one way: runs <- plan, policy <- evaluate <- trainer <- cli (``evaluate`` is not imported here,
so that ``python -m equiglb.agents.evaluate`` runs it only once).
"""

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from equiglb.agents.algos import ALGOS, OFF_POLICY, load_hyperparams
    from equiglb.agents.policy import AgentPolicy
    from equiglb.agents.robust import RobustPolicy


def _require_train_extra() -> None:
    """ImportError naming the ``train`` extra when stable-baselines3 or torch is missing (the core install,
    environment and baselines, has neither). Looked up, not imported: torch takes seconds to import and
    ``train.py --help`` does not need it; the names below load on first use (PEP 562)."""
    for name in ("stable_baselines3", "torch"):
        try:
            why = None if importlib.util.find_spec(name) is not None else f"No module named {name!r}"
        except ImportError as exc:
            why = str(exc)
        if why is not None:
            raise ImportError(f"equiglb.agents (training, train.py, equiglb-train) needs stable-baselines3 and torch "
                              f"({why}); the core install leaves them out: pip install \"equiglb[train]\" "
                              "(or \"equiglb[all]\")")


_require_train_extra()

__all__ = ["ALGOS", "OFF_POLICY", "load_hyperparams", "AgentPolicy", "RobustPolicy"]


def __getattr__(name: str) -> Any:
    """The names of :data:`__all__`, imported on first use (with torch and stable-baselines3)."""
    if name in ("ALGOS", "OFF_POLICY", "load_hyperparams"):
        from equiglb.agents import algos  # noqa: PLC0415  (the submodule)

        return getattr(algos, name)
    if name == "AgentPolicy":
        from equiglb.agents.policy import AgentPolicy  # noqa: PLC0415

        return AgentPolicy
    if name == "RobustPolicy":
        from equiglb.agents.robust import RobustPolicy  # noqa: PLC0415

        return RobustPolicy
    raise AttributeError(f"module 'equiglb.agents' has no attribute {name!r}")
