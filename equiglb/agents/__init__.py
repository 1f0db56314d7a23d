"""stable-baselines3 agents for equiglb: algorithm registry and hyperparameters (:mod:`.algos`),
the ``train.py`` command line (:mod:`.cli`) and training loop (:mod:`.trainer`), saved agents as
policies (:class:`AgentPolicy`), evaluation beside the baselines (:mod:`.evaluate`) and reports
(:mod:`.report`). See docs/training.md.
"""

from equiglb.agents.algos import ALGOS, OFF_POLICY, load_hyperparams
from equiglb.agents.policy import AgentPolicy

__all__ = ["ALGOS", "OFF_POLICY", "load_hyperparams", "AgentPolicy", "evaluate_models"]


def evaluate_models(*args, **kwargs):
    """See :func:`equiglb.agents.evaluate.evaluate_models`."""
    from equiglb.agents.evaluate import evaluate_models as _ev

    return _ev(*args, **kwargs)
