"""equiglb: equity-aware geographical load balancing of AI inference (the model: docs/model.md)."""

import equiglb.envs  # noqa: E402,F401  (registers the Gymnasium ids equiglb/EquitableGLB-*)
from equiglb.ledger import Ledger, Report, evaluate, objective
from equiglb.scenario import EGLB_WEIGHTS, Scenario, ScenarioError, Weights
from equiglb.traces import list_scenarios, load_scenario

__version__ = "0.1.0"

__all__ = ["Scenario", "ScenarioError", "Weights", "EGLB_WEIGHTS", "Ledger", "Report", "evaluate",
           "objective", "load_scenario", "list_scenarios", "evaluate_policy", "__version__"]


def __getattr__(name: str):  # PEP 562: the baselines load on first use of evaluate_policy only
    if name == "evaluate_policy":
        from equiglb.evaluation import evaluate_policy  # noqa: PLC0415

        return evaluate_policy
    raise AttributeError(f"module 'equiglb' has no attribute {name!r}")
