"""Two runs started at once on one workspace: one works, the other stops at once naming it; outputs stay whole."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from factories import dvc_project_at, make_table, write_project

from tlpipe.cli import run_stage

pytestmark = pytest.mark.slow


def test_two_train_commands_at_once_one_trains_the_other_names_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    write_project(tmp_path, tiny_model_dir, make_table(12), make_table(4, offset=100), {"train": {"epochs": 3}})
    with contextlib.chdir(tmp_path):
        for stage in ("validate", "prepare", "fetch_model"):
            run_stage(stage)

    runs = [subprocess.Popen(["tlpipe", "train"], cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(), run.stderr.read()) for run in runs]

    statuses = sorted(status for status, _ in results)
    refused = next(error for status, error in results if status != 0)
    print(f"statuses {statuses}; refused with: {refused.strip()}")
    assert statuses == [0, 1]
    assert "another tlpipe run is working in this workspace (`tlpipe train`, pid" in refused
    with contextlib.chdir(tmp_path):
        run_stage("calibrate")  # the checkpoint the winner left is whole and usable
        run_stage("evaluate")
    assert not list((tmp_path / "models").glob(".checkpoint.*"))


def test_two_dvc_repro_at_once_one_fails_on_dvcs_lock(tmp_path: Path, tiny_model_dir: Path) -> None:
    root = dvc_project_at(tmp_path / "project", tiny_model_dir, make_table(12), make_table(4, offset=100))
    runs = [subprocess.Popen(["dvc", "repro", "prepare"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for _ in range(2)]  # fmt: skip
    results = [(run.wait(), run.stdout.read()) for run in runs]

    statuses = sorted(status for status, _ in results)
    refused = next((output for status, output in results if status != 0), "")
    print(f"statuses {statuses}; refused with: {refused.strip()[-300:]}")
    assert statuses[0] == 0 and statuses[1] != 0
    assert "lock" in refused.lower()
    status = subprocess.run(["dvc", "status", "prepare"], cwd=root, capture_output=True, text=True)
    assert "changed" not in status.stdout, status.stdout
