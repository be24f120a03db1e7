"""One run at a time per workspace: a second stage command stops at once naming the holder; children share the lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlpipe.cli import main
from tlpipe.workspace_lock import HELD_BY_PARENT, LOCK_FILE

HOLD = (
    "import sys; from pathlib import Path; from tlpipe.workspace_lock import hold_workspace\n"
    "with hold_workspace(Path('params.yaml'), 'train'):\n"
    "    print('held', flush=True); sys.stdin.readline()\n"
)


@pytest.fixture
def held(project: Path):
    """Another process holding the project's workspace lock as `tlpipe train` would, until the test ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], cwd=project, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    yield holder
    if holder.poll() is None:
        holder.communicate("\n", timeout=60)


def test_a_second_run_stops_at_once_naming_the_holder_and_writes_nothing(
    project: Path, held: subprocess.Popen, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["validate"])

    error = capsys.readouterr().err
    assert status == 1
    assert "another tlpipe run is working in this workspace" in error
    assert f"`tlpipe train`, pid {held.pid}" in error
    assert not (project / "reports").exists() and not (project / "data" / "manifest").exists()


def test_a_child_of_the_holder_runs_under_its_lock(
    project: Path, held: subprocess.Popen, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HELD_BY_PARENT, str(project.resolve() / LOCK_FILE))

    assert main(["validate"]) == 0


def test_the_lock_is_free_again_when_the_holder_ends(project: Path, held: subprocess.Popen) -> None:
    held.communicate("\n", timeout=60)

    assert main(["validate"]) == 0
    assert HELD_BY_PARENT not in os.environ
