"""A real project in a temporary git repository: dvc.yaml, the code it depends on, tiny data and model."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import dvc_project_at


@pytest.fixture
def dvc_project(tmp_path: Path, tiny_model_dir: Path, train_table, test_table) -> Path:
    return dvc_project_at(tmp_path / "project", tiny_model_dir, train_table, test_table)
