"""The control layer: the routing LPs, the eGLB core, the MPC core and the offline program.

Used by both :mod:`equiglb.envs` (the residual and price action modes) and :mod:`equiglb.baselines` (the
policies are loops over these cores); it imports neither (``tests/test_layers.py``). cvxpy loads only when
the cvxpy program is built or solved (:mod:`equiglb.control.offline`).

* :mod:`equiglb.control.routing`: per-slot routing LPs (:class:`~equiglb.control.routing.SlotRouter`,
  :class:`~equiglb.control.routing.PriceRouter`);
* :mod:`equiglb.control.eglb`: the online eGLB dual-mirror-descent core
  (:class:`~equiglb.control.eglb.EGLBCore`);
* :mod:`equiglb.control.mpc`: the MPC core and its per-slot solvers
  (:class:`~equiglb.control.mpc.MPCCore`, :func:`~equiglb.control.mpc.make_mpc_solver`), with
  :mod:`equiglb.control.densesimplex` (the dense dual simplex of its small LPs) and :mod:`equiglb.control.socipm`
  (the dense interior-point method of its q = 2 programs);
* :mod:`equiglb.control.offline`: the offline program (:func:`~equiglb.control.offline.solve_offline`),
  :mod:`equiglb.control.offline_direct`, its matrix-form accelerator, and :mod:`equiglb.control.blockipm`,
  the interior-point method that solves that matrix form by slot blocks.
"""

#: the longest MPC look-ahead accepted (hours): one week; the program grows linearly with it. Defined here,
#: not in :mod:`equiglb.control.mpc`, so that the environment's option checks read it without the solvers.
MAX_HORIZON_H = 168
#: The longest history tail of MPC, in days (:class:`~equiglb.control.mpc.HistoryTail`: 60 days make a program of
#: 1,440 tail slots)
MAX_TAIL_DAYS = 60
#: the history tail's block lengths in hours (divisors of a day): each tail slot groups that many consecutive hours
TAIL_BLOCK_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)


def tail_text(days: int, weight: float, block_hours: int = 1) -> str:
    """A history tail as labels show it: ``"5 d x0.5"``, ``"30 d x0.75 in 6-h blocks"``."""
    return f"{days} d x{weight:g}" + (f" in {block_hours}-h blocks" if block_hours > 1 else "")


__all__ = ["MAX_HORIZON_H", "MAX_TAIL_DAYS", "TAIL_BLOCK_HOURS", "tail_text"]
