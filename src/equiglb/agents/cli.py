"""Command line of ``python train.py`` (the flags of rl-baselines3-zoo's ``train.py``), also reached as
``equiglb-train`` and ``python -m equiglb.agents``; each caller passes its own name as ``prog``.

``python train.py --help`` lists and documents every flag. Every check happens before any run
folder is created (see :mod:`equiglb.agents.trainer`), so a wrong input never touches earlier runs.
A bad input exits with status 2 and one ``<prog>: error: ...`` line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from equiglb.agents.plan import ALGO_NAMES, TrainPlan, add_flags, plan_from_args

if TYPE_CHECKING:
    from equiglb.agents.trainer import TrainResult

# The training stack (torch, stable-baselines3, cvxpy) loads after the command line is parsed, so that
# ``--help`` and a bad flag answer without it.

__all__ = ["DEFAULT_ENV_ID", "ALGO_NAMES", "build_parser", "train_plan", "main"]

#: The environment trained on by default: the calibrated synthetic scenario (no download needed).
DEFAULT_ENV_ID = "equiglb/EquitableGLB-v0"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``train.py``, one flag per field of :class:`~equiglb.agents.plan.TrainPlan`
    (every flag documented); ``prog`` is the caller's name (default: the running script's name)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train a stable-baselines3 agent on an equiglb environment, then evaluate it on the "
                    "held-out test window beside every optimization baseline (same ledger, same J(x)). "
                    "Everything goes into one new run folder, named at the end.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_flags(p)
    return p


def train_plan(given: TrainPlan, prog: str = "train.py") -> TrainResult:
    """Run the plan ``given`` as ``train.py`` runs its command line (:func:`equiglb.agents.trainer.run`): a bad
    input prints one ``<prog>: error: ...`` line on stderr and gives exit code 2, an interruption 128 + the
    signal number (the checkpoint saved). The sweep calls this with each trial's plan."""
    from equiglb.agents.evaluate import ROBUST_MARGIN, check_robust_margin  # noqa: PLC0415
    from equiglb.agents.runs import UserError  # noqa: PLC0415
    from equiglb.agents.trainer import TrainResult, run  # noqa: PLC0415

    token = None
    try:
        token = ROBUST_MARGIN.set(check_robust_margin(given.robust_margin))
        return run(given)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return TrainResult(2)
    except KeyboardInterrupt:
        print("aborted: nothing saved since the latest checkpoint; --resume RUN_DIR continues from it "
              "(or, once training is done, redoes only the final evaluation)",
              file=sys.stderr)
        return TrainResult(128 + 2)
    finally:
        if token is not None:
            ROBUST_MARGIN.reset(token)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Entry point of ``python train.py`` (and ``equiglb-train``, ``python -m equiglb.agents``);
    returns the process exit code: 0, 2 for a bad input, 128 + signal number when interrupted."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from equiglb.agents.runs import UserError  # noqa: PLC0415

    try:
        given = plan_from_args(args)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return train_plan(given, parser.prog).exit_code


if __name__ == "__main__":
    sys.exit(main())
