"""stable-baselines3 agents for equiglb: algorithm registry and hyperparameters (:mod:`.algos`), run
folders (:mod:`.runs`), the ``train.py`` command line (:mod:`.cli`) and training loop
(:mod:`.trainer`), exact interruption and resumption (:mod:`.resume`), saved agents as policies
(:class:`AgentPolicy`), evaluation beside the baselines (:mod:`.evaluate`) and reports
(:mod:`.report`). See docs/training.md.

Imports go one way: runs <- policy <- evaluate <- trainer <- cli (``evaluate`` is not imported here,
so that ``python -m equiglb.agents.evaluate`` runs it only once).
"""

from equiglb.agents.algos import ALGOS, OFF_POLICY, load_hyperparams
from equiglb.agents.policy import AgentPolicy

__all__ = ["ALGOS", "OFF_POLICY", "load_hyperparams", "AgentPolicy"]
