"""Sweeps over seeds, algorithms and environment settings on Ray Tune, with confidence intervals.

``python -m equiglb.sweep --algos ppo,sac --seeds 0,1,2 --grid q=2,inf --out sweeps/q`` runs every
combination as one ``train.py`` run (a Ray Tune trial), then writes ``trials.csv``, ``summary.csv``
(mean, IQM and 95 % bootstrap CIs over seeds) and the plots. See docs/experiments.md.
"""

from equiglb.sweep.rayauth import use_ray_token_if_present

use_ray_token_if_present()   # before any module of the sweep imports ray (Ray reads RAY_AUTH_MODE on import)

from equiglb.sweep.config import SweepConfig, SweepError, TrialSpec, expand_trials  # noqa: E402

__all__ = ["SweepConfig", "SweepError", "TrialSpec", "expand_trials"]
