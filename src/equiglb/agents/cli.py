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

from equiglb.agents.algos import ALGOS
from equiglb.agents.evaluate import ROBUST_MARGIN, check_robust_margin
from equiglb.agents.runs import UserError
from equiglb.agents.trainer import run
from equiglb.validate import cli_int

__all__ = ["DEFAULT_ENV_ID", "build_parser", "main"]

#: The environment trained on by default: the calibrated synthetic scenario (no download needed).
DEFAULT_ENV_ID = "equiglb/EquitableGLB-v0"
VEC_ENVS = ("dummy", "subproc", "native")


#: largest value of a count flag (``-n``, ``--n-envs``, ...): 1e12 environment steps is far beyond any run;
#: a larger number is a typo (or ``1e400``, infinity) that would otherwise fail deep inside training
MAX_COUNT = 10**12
#: largest seed: SB3 seeds numpy's legacy generator, which takes seeds below 2**32
MAX_SEED = 2**32 - 1


def _positive_int(text: str) -> int:
    return cli_int(text, 1, MAX_COUNT, "a positive integer")


def _nonneg_int(text: str) -> int:
    return cli_int(text, 0, MAX_SEED, "an integer >= 0")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``train.py`` (every flag documented); ``prog`` is the caller's name
    (default: the running script's name)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train a stable-baselines3 agent on an equiglb environment, then evaluate it on the "
                    "held-out test window beside every optimization baseline (same ledger, same J(x)). "
                    "Everything goes into one new run folder, named at the end.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--algo", choices=sorted(ALGOS), default=None,
                   help="RL algorithm; default: that of the model given with -i, else ppo")
    p.add_argument("--env", default=None,
                   help="registered environment id (equiglb/EquitableGLB-v0 is the synthetic scenario, "
                        "equiglb/EquitableGLB-eglb2022-v0 the real eGLB-2022 traces); default: the tuned "
                        "settings of the algorithm, equiglb/EquitableGLB-residual-v0 for ppo (the MPC residual "
                        "mode, 240-hour episodes), equiglb/EquitableGLB-240h-v0 for the others")
    p.add_argument("-n", "--n-timesteps", type=_positive_int, default=None,
                   help="training budget in environment steps (summed over parallel envs); default: the "
                        "hyperparameter file's n_timesteps")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (envs, network init, sampling)")
    p.add_argument("--n-envs", type=_positive_int, default=None,
                   help="number of parallel environments; default: the hyperparameter file's n_envs")
    p.add_argument("--vec-env", choices=VEC_ENVS, default=None,
                   help="vector env: dummy (in-process loop), subproc (one process per env) or native "
                        "(equiglb's batched vector env, gymnasium.make_vec(..., 'vector_entry_point'), the "
                        "fastest); default: native for equiglb ids, else dummy")
    p.add_argument("--eval-freq", type=int, default=10_000,
                   help="evaluate on the validation window every N environment steps (summed over envs) "
                        "and keep best_model.zip; <= 0 disables")
    p.add_argument("--eval-episodes", type=_positive_int, default=1,
                   help="episodes per periodic evaluation")
    p.add_argument("-f", "--log-folder", default="logs",
                   help="root folder; runs go to <log-folder>/<algo>/<env>_<n>/ (n increases, never overwritten)")
    p.add_argument("-tb", "--tensorboard-log", default=None,
                   help="TensorBoard log folder; default: <run folder>/tb")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar during training and evaluation")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, auto")
    p.add_argument("--save-freq", type=int, default=-1,
                   help="save a checkpoint (model, normalization stats, replay buffer, random states) at the "
                        "first consistent point (start of a rollout) after every N environment steps (summed "
                        "over envs); <= 0 saves only on interruption. After SIGKILL, --resume redoes only the "
                        "steps since the last checkpoint")
    p.add_argument("-params", "--hyperparams", nargs="+", metavar="KEY=VALUE", default=None,
                   help="override hyperparameters, values as YAML: gamma=0.995 n_steps=512 "
                        "'policy_kwargs={net_arch: [128, 128]}' normalize=false")
    p.add_argument("--env-kwargs", nargs="+", metavar="KEY=VALUE", default=None,
                   help="keyword arguments of gymnasium.make (scenario options), values as YAML: "
                        "episode_length=48 q=2 action_mode=routing data_dir=../shared/traces/eglb-2022")
    p.add_argument("-i", "--trained-agent", default=None, metavar="MODEL_ZIP",
                   help="continue training this saved model (its vecnormalize.pkl and replay buffer next to it "
                        "are loaded when present) for --n-timesteps more steps, in a new run folder")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="resume an interrupted run in its own folder from its latest checkpoint, with its "
                        "recorded configuration (budget, seed, device, save and eval frequencies), to exactly "
                        "the steps, updates and parameters of an uninterrupted run")
    p.add_argument("--eval-only", action="store_true",
                   help="do not train: evaluate --trained-agent beside the baselines on the test window")
    p.add_argument("--eval-split", default="test", help="scenario split for the final comparison table")
    p.add_argument("--train-split", default="train", help="scenario split the agent trains on")
    p.add_argument("--baselines", nargs="*", default=None, metavar="NAME",
                   help="baselines in the final table (default: all of equiglb.baselines.POLICY_NAMES; "
                        "give none to skip)")
    p.add_argument("--robust-margin", type=float, default=None, metavar="M",
                   help="the final table also shows the agent inside RobustPolicy (falls back to online eGLB so "
                        "that J <= (1 + M) J(online eGLB) on the episode; docs/robust.md): the row "
                        "'<algo> (robust <M>%%)', e.g. 0.05")
    p.add_argument("--torch-threads", type=_positive_int, default=None,
                   help="torch intra-op threads; default 1 (the fastest for the small MLPs here; see "
                        "docs/experiments-log.md)")
    p.add_argument("-conf", "--conf-file", default=None, metavar="YAML",
                   help="hyperparameter file in the rl-baselines3-zoo layout (e.g. the best_<algo>.yml of "
                        "python -m equiglb.sweep --search optuna); default: the package's hyperparams/<algo>.yml")
    p.add_argument("--gym-packages", nargs="+", default=(), metavar="MODULE",
                   help="extra modules to import so that their environment ids are registered")
    p.add_argument("-v", "--verbose", type=int, default=0, choices=(0, 1, 2),
                   help="verbosity of SB3 (1 prints its training tables; TensorBoard has them anyway)")
    return p


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Entry point of ``python train.py`` (and ``equiglb-train``, ``python -m equiglb.agents``);
    returns the process exit code: 0, 2 for a bad input, 128 + signal number when interrupted."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    token = None
    try:
        token = ROBUST_MARGIN.set(check_robust_margin(args.robust_margin))
        return run(args, parser)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aborted: nothing saved since the latest checkpoint; --resume RUN_DIR continues from it "
              "(or, once training is done, redoes only the final evaluation)",
              file=sys.stderr)
        return 128 + 2
    finally:
        if token is not None:
            ROBUST_MARGIN.reset(token)


if __name__ == "__main__":
    sys.exit(main())
