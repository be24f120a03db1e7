"""Every collected test is in exactly one tier (core, stages, reliability, slow), as tests/conftest.py assigns them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NOT_EXACTLY_ONE_TIER = (
    "not (core or stages or reliability or slow)"
    " or (core and (stages or reliability or slow))"
    " or (stages and (reliability or slow))"
    " or (reliability and slow)"
)


def test_every_collected_test_has_exactly_one_tier_marker() -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", NOT_EXACTLY_ONE_TIER],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
    )

    if collected.returncode == 0:
        pytest.fail(f"tests with no tier marker or more than one:\n{collected.stdout}")
    assert collected.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, collected.stdout + collected.stderr
