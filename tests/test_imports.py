"""Light imports: ``import equiglb`` and ``gymnasium.make`` of every registered id in its default mode load
none of the heavy optional stacks (cvxpy is loaded only where the cvxpy program is built or solved; torch,
stable-baselines3 and Ray only by the agents and the sweep). Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, SHARED_EGLB

from equiglb.envs.registration import ENV_IDS, TUNED_IDS, WORLD_ENV_IDS

#: Modules neither ``import equiglb`` nor an environment's default path may load.
HEAVY = ("torch", "stable_baselines3", "ray", "cvxpy", "optuna", "jax", "torchrl", "minari")

SHARED_TRACES = SHARED_EGLB.parent

#: id -> the keyword arguments of ``gym.make`` beside the id (the real data's folder where it needs one).
DATA_KWARGS: dict[str, dict[str, str]] = {
    **{i: {"data_dir": str(SHARED_EGLB)} for i in ENV_IDS if "eglb2022" in i},
    **{i: {"data_dir": str(SHARED_EGLB)} for i, (base, _) in TUNED_IDS.items() if "eglb2022" in base},
    **{i: {"data_dir": str(SHARED_TRACES)} for i in WORLD_ENV_IDS},
}


def _data_present(env_id: str) -> bool:
    if env_id in WORLD_ENV_IDS:
        return all((SHARED_TRACES / n / "MANIFEST.tsv").is_file() for n in ("sustain-cluster", "servegen"))
    if env_id in DATA_KWARGS:
        return (SHARED_EGLB / "AI_workload.csv").is_file()
    return True


ALL_IDS = [*ENV_IDS, *TUNED_IDS, *WORLD_ENV_IDS]

SCRIPT = """
import json, sys
import gymnasium as gym
import equiglb
heavy = {heavy!r}
loaded = {{"import equiglb": [m for m in heavy if m in sys.modules]}}
for env_id, kwargs in {cases!r}:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
    loaded[env_id] = [m for m in heavy if m in sys.modules]
print(json.dumps(loaded))
"""


def heavy_modules_loaded(code: str) -> dict[str, list[str]]:
    """Run ``code`` (which prints a JSON object) in a fresh interpreter of this checkout; its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_equiglb_and_make_every_id_stay_light():
    cases = [(i, DATA_KWARGS.get(i, {})) for i in ALL_IDS if _data_present(i)]
    loaded = heavy_modules_loaded(SCRIPT.format(heavy=HEAVY, cases=cases))
    assert loaded == {"import equiglb": [], **{i: [] for i, _ in cases}}
    missing = [i for i in ALL_IDS if not _data_present(i)]
    if missing:
        pytest.skip(f"checked {len(cases)} ids; the real traces of {missing} are not under {SHARED_TRACES}")


def test_import_baselines_stays_light():
    """The baselines load cvxpy only when the cvxpy program runs; never torch or Ray."""
    code = ("import json, sys\nimport equiglb.baselines\n"
            f"print(json.dumps({{'baselines': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    assert heavy_modules_loaded(code) == {"baselines": []}


#: Every command line: (module run as ``__main__``, or the script ``train.py``) -> ``--help`` loads none of HEAVY.
CLIS = ["equiglb.baselines", "equiglb.sweep", "equiglb.traces", "equiglb.datasets", "equiglb.agents", "train.py"]


@pytest.mark.parametrize("cli", CLIS)
def test_help_answers_before_the_heavy_imports(cli):
    """``--help`` builds the parser before the heavy imports (the training and sweep stacks load after parsing)."""
    run = (f"runpy.run_path({str(REPO / cli)!r}, run_name='__main__')" if cli.endswith(".py")
           else f"runpy.run_module({cli!r}, run_name='__main__', alter_sys=True)")
    code = (f"import json, runpy, sys\nsys.argv = [{cli!r}, '--help']\ntry:\n    {run}\n"
            f"except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            f"print(json.dumps({{'help': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    assert heavy_modules_loaded(code) == {"help": []}


def test_train_parser_names_every_algorithm():
    from equiglb.agents import ALGOS
    from equiglb.agents.cli import ALGO_NAMES

    assert ALGO_NAMES == tuple(sorted(ALGOS))
