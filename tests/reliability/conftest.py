"""Private copies of the finished text project (tests/conftest.py) and of a validated image project, one per row of
the table."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from tlpipe.cli import run_stage

from .harness import RESULTS
from .images import write_image_project


@pytest.fixture(scope="session")
def validated_image_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image project (class folders of small noise images) after a passing validate."""
    root = tmp_path_factory.mktemp("images")
    write_image_project(root)
    with contextlib.chdir(root):
        run_stage("validate")
    return root


def copy_of(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = Path(shutil.copytree(project, tmp_path / "project", symlinks=True))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def workspace(finished_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the finished text project (tests/conftest.py); the cwd."""
    return copy_of(finished_project, tmp_path, monkeypatch)


@pytest.fixture
def image_workspace(validated_image_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the validated image project; the cwd."""
    return copy_of(validated_image_project, tmp_path, monkeypatch)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """With -v, the table of rows run: name, exit status, the message's first line."""
    if not RESULTS or terminalreporter.config.option.verbose < 1:
        return
    terminalreporter.section("reliability table")
    for name, status, message in RESULTS:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        # A data-check failure's first line only counts them; its first failed check says more.
        shown = next((line for line in lines if line.startswith(("x ", "- "))), lines[0] if lines else "")
        terminalreporter.write_line(f"{name:50.50} | {status:>3} | {shown[:220]}")
