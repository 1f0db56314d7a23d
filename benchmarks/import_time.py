"""Import time of ``import equiglb`` + ``gym.make`` and of every command line's ``--help``, beside a reference.

    python benchmarks/import_time.py [--repeats 5] [--src PATH]

Each case runs in ``--repeats`` fresh subprocesses, the cases in turn within each round (wall time, seconds: the
fastest run, the least disturbed by other work, and the median). The reference, measured in
the same run, is ``import gymnasium as gym; gym.make("CartPole-v1")``: a ratio to it is comparable across
machines. The target: ``import equiglb, gymnasium as gym; gym.make("equiglb/EquitableGLB-v0")`` at most
2x the reference. Then the ten modules of largest cumulative import time (``python -X importtime``) of
the equiglb case. ``--src`` measures another checkout's ``src`` folder (e.g. the main branch, for a
before/after comparison); the default is this checkout's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REFERENCE = 'import gymnasium as gym; gym.make("CartPole-v1")'
ENV_CASE = 'import equiglb, gymnasium as gym; gym.make("equiglb/EquitableGLB-v0")'
#: The target of the env case: at most this ratio to the reference.
TARGET_RATIO = 2.0

#: label -> argv after ``python`` (run from the checkout root).
CASES: dict[str, list[str]] = {
    "reference: gym.make(CartPole-v1)": ["-c", REFERENCE],
    "import equiglb; gym.make(EquitableGLB-v0)": ["-c", ENV_CASE],
    "train.py --help": ["train.py", "--help"],
    "-m equiglb.baselines --help": ["-m", "equiglb.baselines", "--help"],
    "-m equiglb.sweep --help": ["-m", "equiglb.sweep", "--help"],
    "-m equiglb.traces --help": ["-m", "equiglb.traces", "--help"],
    "-m equiglb.datasets --help": ["-m", "equiglb.datasets", "--help"],
    "-m equiglb.agents --help": ["-m", "equiglb.agents", "--help"],
}


def run_env(src: Path) -> dict[str, str]:
    """The environment of the subprocesses: ``src`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def wall_time(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds of one fresh ``python argv`` (raises on a non-zero exit)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def top_imports(code: str, env: dict[str, str], cwd: Path, n: int = 10) -> list[tuple[float, str]]:
    """The ``n`` modules of largest cumulative import time (seconds, name) of ``python -X importtime -c code``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=cwd, check=True,
                         capture_output=True, text=True).stderr
    rows: list[tuple[float, str]] = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="rounds: fresh subprocesses per case")
    p.add_argument("--src", type=Path, default=ROOT / "src", help="the src folder to measure")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    src = args.src.resolve()
    cwd = src.parent
    env = run_env(src)
    print(f"src: {src}  ({args.repeats} rounds; each round runs every case once, in turn, so that a change of the "
          "machine's load hits the reference and the cases alike)")
    labels = [label for label, case in CASES.items()
              if not (case[0] == "train.py" and not (cwd / "train.py").is_file())]
    times: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(args.repeats):
        for label in labels:
            times[label].append(wall_time(CASES[label], env, cwd))
    ref_label = "reference: gym.make(CartPole-v1)"
    best = {label: min(t) for label, t in times.items()}
    print(f"{'case':45s} {'min s':>7s} {'median s':>9s} {'ratio (min)':>12s} {'ratio (median)':>15s}")
    for label in labels:
        med = statistics.median(times[label])
        print(f"{label:45s} {best[label]:7.3f} {med:9.3f} {best[label] / best[ref_label]:12.2f} "
              f"{med / statistics.median(times[ref_label]):15.2f}")
    ratio = best["import equiglb; gym.make(EquitableGLB-v0)"] / best[ref_label]
    verdict = "holds" if ratio <= TARGET_RATIO else "missed"
    print(f"target: env case <= {TARGET_RATIO:g}x the reference (ratio of the fastest runs): {verdict} ({ratio:.2f}x)")
    print("top 10 modules by cumulative import time (equiglb case):")
    for seconds, name in top_imports(ENV_CASE, env, cwd):
        print(f"  {seconds:7.3f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
