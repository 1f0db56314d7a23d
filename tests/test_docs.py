"""Every fenced code block of README.md and docs/*.md runs here, so a documented example cannot rot.

* ``python`` blocks run in order, one namespace per file, in a temporary working directory;
* ``bash`` blocks run as one ``bash -e`` script in that directory (which links ``train.py``), with
  ``python`` the interpreter running the tests and the repository on PYTHONPATH;
* ``yaml`` blocks must parse; ``text`` blocks are output or file listings and are not run.

``../shared/traces/eglb-2022`` in a block is the real trace folder (``$EQUIGLB_SHARED_EGLB``); blocks
that use it are skipped with a reason when it is absent, as are the later blocks of the same file.

A block that cannot run in CI carries the marker ``<!-- docs-test: not run: REASON -->`` on the line
before its fence and must be listed in :data:`NOT_RUN` below with the same reason: the list is here
so that a reviewer sees every example that is not executed. A block that another test runs (against
services it starts, e.g. a Ray head) carries ``<!-- docs-test: run by tests/FILE.py -->`` and is listed
in :data:`RUN_BY`; that test reads the block from the doc.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)
SHARED_EGLB = Path(os.environ.get("EQUIGLB_SHARED_EGLB", REPO.parent / "shared" / "traces" / "eglb-2022"))
DOC_FILES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*docs-test:\s*not run:\s*(.+?)\s*-->")
RUN_BY_MARKER = re.compile(r"<!--\s*docs-test:\s*run by\s+(\S+?)\s*-->")
FENCE = re.compile(r"^```(\S*)\s*$")
RUN_LANGS = {"python", "bash", "yaml", "text"}
#: a shell block still running after this many seconds has hung (a bound, not a speed test: the README sweep
#: takes about 100 s on an idle 2-core machine and over 280 s when four other jobs share its cores)
BLOCK_TIMEOUT_S = 1200

#: (file, start of the block's first line) -> why the block is not run in CI.
NOT_RUN = {
    ("README.md", "make train   # creates .venv, installs pinned depe"):
        "creates a virtual environment, installs the lock and trains for minutes",
    ("docs/data.md", "python -m equiglb.traces fetch eglb-2022     # or:"):
        "downloads from raw.githubusercontent.com; tests/test_fetch.py covers fetch with a local mirror",
    ("docs/data.md", 'python -m equiglb.traces fetch sustain-cluster   #'):
        "downloads about 100 MB from raw.githubusercontent.com; tests/test_world_fetch.py covers fetch with a "
        "local mirror",
    ("docs/data.md", 'python benchmarks/world_baselines.py --data-dir ..'):
        "the full table runs 66 (policy, month) pairs, MPC's months for minutes each",
    ("docs/experiments.md", "python -m equiglb.sweep --algos ppo,sac --seeds 0,"):
        "30 trials of 300k steps; README.md runs a 4-trial sweep and tests/test_sweep.py every path with tiny "
        "budgets",
    ("docs/experiments.md", "python -m equiglb.sweep --search optuna --n-trials"):
        "30 trials of 200k steps; tests/test_sweep.py runs the search with 2 tiny trials",
    ("docs/training.md", "import equiglb"):
        "a search plays about 800 episodes (8 minutes); tests/test_search.py runs small ones",
    ("docs/experiments.md", "ray start --head --port 6379                      "):
        "needs several machines; tests/test_sweep.py starts a head on 127.0.0.1 and sweeps with --address",
}

#: (file, start of the block's first line) -> the test file that runs the block.
RUN_BY = {
    ("docs/toolchains.md", "import gymnasium as gym"): "tests/test_rllib.py",
}


@dataclass
class Block:
    file: str
    line: int           # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None
    run_by: str | None = None

    @property
    def first_line(self) -> str:
        return next((s for s in self.code.splitlines() if s.strip()), "")[:50]


def parse_blocks(file: str) -> list[Block]:
    """The fenced blocks of ``file`` (relative to the repository root), in order."""
    lines = (REPO / file).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            raise AssertionError(f"{file}:{start + 1}: code fence is never closed")
        prev = lines[start - 1] if start > 0 else ""
        marker, run_by = MARKER.search(prev), RUN_BY_MARKER.search(prev)
        blocks.append(Block(file, start + 1, lang, "\n".join(lines[start + 1:j]) + "\n",
                            marker.group(1) if marker else None, run_by.group(1) if run_by else None))
        i = j + 1
    return blocks


ALL_BLOCKS = [b for f in DOC_FILES for b in parse_blocks(f)]


def test_every_fence_names_a_language_that_this_test_runs():
    bad = [f"{b.file}:{b.line} ```{b.lang}" for b in ALL_BLOCKS if b.lang not in RUN_LANGS]
    assert not bad, f"fences need one of {sorted(RUN_LANGS)}: {bad}"


def test_blocks_not_run_in_ci_are_exactly_the_listed_ones():
    marked = {(b.file, b.first_line): b.not_run for b in ALL_BLOCKS if b.not_run is not None}
    assert marked == NOT_RUN
    for (file, first), reason in NOT_RUN.items():
        print(f"not run in CI: {file}: {first!r}: {reason}")


def test_blocks_run_by_other_tests_are_exactly_the_listed_ones():
    marked = {(b.file, b.first_line): b.run_by for b in ALL_BLOCKS if b.run_by is not None}
    assert marked == RUN_BY
    for (file, first), test_file in RUN_BY.items():
        assert (REPO / test_file).is_file(), f"{file}: {first!r} is run by {test_file}, which does not exist"


def test_no_indented_code_blocks_outside_lists():
    # an indented block is code that this test would not see: fence it instead
    for file in DOC_FILES:
        lines = (REPO / file).read_text(encoding="utf-8").splitlines()
        in_fence = False
        for n, line in enumerate(lines):
            if FENCE.match(line) or line.strip() == "```":
                in_fence = not in_fence
                continue
            prev = lines[n - 1] if n else ""
            if (not in_fence and line.startswith("    ") and line.strip() and not prev.strip()
                    and not re.match(r"\s*([-*]|\d+\.)\s", lines[n - 2] if n > 1 else "")):
                pytest.fail(f"{file}:{n + 1}: indented code block; use a fenced block: {line.strip()!r}")


OUTSIDE_DOC = "DESIGN" + ".md"                      # the team's design notes are not part of the repository
ISSUE_NUMBER = re.compile(r"\b[Ii]ssues?\s*#?\d+|(?<![\w&/])#\d+\b")


def _project_text_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "train.py", REPO / "pyproject.toml", REPO / "Makefile"]
    for folder, pattern in (("docs", "*.md"), ("equiglb", "*.py"), ("benchmarks", "*.py"), ("tests", "*.py")):
        files += sorted((REPO / folder).rglob(pattern))
    return [f for f in files if f.is_file()]


def test_docs_and_code_cite_only_files_in_the_repository_and_no_issue_numbers():
    bad = []
    for f in _project_text_files():
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if OUTSIDE_DOC in line or ISSUE_NUMBER.search(line):
                bad.append(f"{f.relative_to(REPO)}:{n}: {line.strip()[:100]}")
    assert not bad, "cite docs/model.md (§1-§6), not files outside the repository or issue numbers:\n" + "\n".join(bad)


# ---------------------------------------------------------------------------------------------- running
class _FileState:
    """The namespace, working directory and skip state shared by the blocks of one file."""

    def __init__(self, workdir: Path):
        self.namespace: dict[str, object] = {"__name__": "__docs__"}
        self.workdir = workdir
        self.skipped: str | None = None


_STATES: dict[str, _FileState] = {}


def _substitute(code: str) -> str:
    # ../shared/traces alone is the data folder holding the data sets side by side (the world scenario's)
    return code.replace("../shared/traces/eglb-2022", str(SHARED_EGLB)).replace("../shared/traces",
                                                                                str(SHARED_EGLB.parent))


def _env(bindir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    env["MPLBACKEND"] = "Agg"
    env["OMP_NUM_THREADS"] = "1"                     # one torch thread: the examples' networks are tiny
    env["EQUIGLB_SHARED_EGLB"] = str(SHARED_EGLB)
    return env


@pytest.fixture(scope="module")
def docs_workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    bindir = root / "bin"
    bindir.mkdir()
    python = bindir / "python"                       # a wrapper: a symlink would lose the venv of sys.executable
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return root, bindir


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[f"{b.file}:{b.line}" for b in ALL_BLOCKS])
def test_doc_block_runs(block: Block, docs_workdir, monkeypatch):
    root, bindir = docs_workdir
    state = _STATES.get(block.file)
    if state is None:
        workdir = root / block.file.replace("/", "_")
        workdir.mkdir()
        (workdir / "train.py").symlink_to(REPO / "train.py")          # the docs run `python train.py` at the root
        state = _STATES[block.file] = _FileState(workdir)
    if block.not_run is not None:
        pytest.skip(f"not run in CI: {block.not_run}")
    if block.run_by is not None:
        pytest.skip(f"run by {block.run_by}")
    if block.lang == "text":
        return
    code = _substitute(block.code)
    if str(SHARED_EGLB) in code and not (SHARED_EGLB / "AI_workload.csv").is_file():
        state.skipped = f"real eGLB-2022 traces not found at {SHARED_EGLB} (set EQUIGLB_SHARED_EGLB)"
    world_data = [SHARED_EGLB.parent / name for name in ("sustain-cluster", "servegen")]
    if str(SHARED_EGLB.parent) + '"' in code and not all(d.is_dir() for d in world_data):
        state.skipped = f"the world scenario's data sets not found in {SHARED_EGLB.parent}"
    if state.skipped:
        pytest.skip(state.skipped)
    if block.lang == "yaml":
        assert yaml.safe_load(code) is not None
        return
    monkeypatch.chdir(state.workdir)
    if block.lang == "python":
        torch.set_num_threads(1)
        monkeypatch.setenv("MPLBACKEND", "Agg")
        monkeypatch.setenv("EQUIGLB_SHARED_EGLB", str(SHARED_EGLB))
        saved = dict(os.environ)                     # a block may set variables (MINARI_DATASETS_PATH)
        try:
            exec(compile(code, f"{block.file}:{block.line}", "exec"), state.namespace)  # noqa: S102 - the docs' code
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return
    try:
        out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=str(state.workdir), env=_env(bindir),
                             capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:        # a bound against a hang, not a speed test: say what it printed
        pytest.fail(f"{block.file}:{block.line} still running after {BLOCK_TIMEOUT_S} s; its output:\n"
                    f"{_text(exc.stdout)[-3000:]}\n{_text(exc.stderr)[-3000:]}")
    assert out.returncode == 0, f"{block.file}:{block.line} exited {out.returncode}:\n{out.stderr[-3000:]}"


def _text(b: bytes | str | None) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
