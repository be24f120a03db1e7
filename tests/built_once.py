"""Fixtures that cost a pipeline run, built once for the whole test run and shared by every pytest-xdist worker."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``build`` filled, built once per test run: under pytest-xdist the first worker to take the lock
    builds it and the others wait, then read it; without xdist, built here. Tests must copy it before changing it."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
    if run is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent / f"{name}-{run}"
    shared.mkdir(exist_ok=True)
    folder, done = shared / "built", shared / "built.done"
    with FileLock(shared / "build.lock"):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed half-way left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
