"""A DVC project in a temporary git repository, as tests/slow builds it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from factories import REPO, make_table, write_project


def dvc_project_at(tmp_path: Path, model_dir: Path) -> Path:
    """dvc.yaml, the code it depends on, tiny data and params, committed in a fresh git + DVC repository."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    write_project(root, model_dir, make_table(12), make_table(4, offset=100))
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                    ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "p"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)  # fmt: skip
    return root
