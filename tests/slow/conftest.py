"""A real project in a temporary git repository: dvc.yaml, the code it depends on, tiny data and model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from factories import REPO, write_project

from .repo import dvc, git


@pytest.fixture
def dvc_project(tmp_path: Path, tiny_model_dir: Path, train_table, test_table) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    write_project(root, tiny_model_dir, train_table, test_table)
    git(root, "init", "-q")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project")
    return root
