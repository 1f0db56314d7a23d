"""stable-baselines3 agents for equiglb: algorithm registry and hyperparameters (:mod:`.algos`), run
folders (:mod:`.runs`), the training plan (:mod:`.plan`), the ``train.py`` command line (:mod:`.cli`) and training loop
(:mod:`.trainer`), exact interruption and resumption (:mod:`.resume`), saved agents as policies
(:class:`AgentPolicy`), a learned policy with a guarantee against an online expert
(:class:`RobustPolicy`, docs/robust.md), evaluation beside the baselines (:mod:`.evaluate`) and reports
(:mod:`.report`). See docs/training.md.

Imports go one way: runs <- plan, policy <- evaluate <- trainer <- cli (``evaluate`` is not imported here,
so that ``python -m equiglb.agents.evaluate`` runs it only once).
"""

try:
    import stable_baselines3  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # the core install (environment and baselines) has neither
    raise ImportError(f"equiglb.agents (training, train.py, equiglb-train) needs stable-baselines3 and torch ({exc}); "
                      "the core install leaves them out: pip install \"equiglb[train]\" (or \"equiglb[all]\")") from exc

from equiglb.agents.algos import ALGOS, OFF_POLICY, load_hyperparams  # noqa: E402
from equiglb.agents.policy import AgentPolicy  # noqa: E402
from equiglb.agents.robust import RobustPolicy  # noqa: E402

__all__ = ["ALGOS", "OFF_POLICY", "load_hyperparams", "AgentPolicy", "RobustPolicy"]
