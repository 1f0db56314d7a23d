"""Shared fixtures. Tests that need ../shared (the real traces) skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_EGLB = Path(os.environ.get("EQUIGLB_SHARED_EGLB", REPO.parent / "shared" / "traces" / "eglb-2022"))


@pytest.fixture(scope="session")
def eglb_dir() -> Path:
    """The real eGLB-2022 trace folder (../shared/traces/eglb-2022), or skip."""
    if not (SHARED_EGLB / "AI_workload.csv").is_file():
        pytest.skip(f"real eGLB-2022 traces not found at {SHARED_EGLB} (set EQUIGLB_SHARED_EGLB)")
    return SHARED_EGLB


@pytest.fixture(scope="session")
def eglb(eglb_dir):
    """The eglb-2022 Scenario (full connection)."""
    import equiglb

    return equiglb.load_scenario("eglb-2022", data_dir=eglb_dir)
