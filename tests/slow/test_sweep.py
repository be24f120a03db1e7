"""`tlpipe sweep` runs its points as queued DVC experiments, names the best on validation, survives a failed point."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tlpipe.tasks.dvc_experiments import queue_workers

from .repo import dvc

pytestmark = pytest.mark.slow


def test_a_sweep_compares_its_experiments_and_the_best_on_validation_can_be_applied(
    dvc_project: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    # -1 is no learning rate: that experiment fails at train and the sweep goes on without it. Two points run at
    # once: choosing among finished runs is the fast tier's (test_sweep_plan.py), and the learning curve's slow
    # test has more points than jobs.
    command = ["tlpipe", "sweep", "--set", "train.learning_rate=1e-2,-1", "--set", "train.epochs=2", "--jobs", "2",
               "--name", "lr"]  # fmt: skip
    # The timeout turns a hang (a queue worker left alive holds the pipes open: tasks/dvc_experiments.py) into a
    # failure, well inside CI's limit.
    done = subprocess.run(command, cwd=dvc_project, env=env, capture_output=True, text=True, timeout=900)

    assert done.returncode == 0, done.stderr[-3000:]
    celery = dvc_project / ".dvc" / "tmp" / "exps" / "celery"
    assert [worker.name for worker in queue_workers(str(celery))] == ["dvc-exp-worker-1", "dvc-exp-worker-2"]
    assert not [worker.name for worker in queue_workers(str(celery)) if worker.alive()]  # none left waiting
    comparison = json.loads((dvc_project / "reports" / "sweep" / "comparison.json").read_text())
    runs = {run["name"]: run for run in comparison["runs"]}
    assert set(runs) == {"lr-01", "lr-02"}
    assert runs["lr-02"]["validation_macro_f1"] is None  # the failed point, reported
    assert 0.0 <= runs["lr-01"]["validation_macro_f1"] <= 1.0
    assert comparison["best"] == "lr-01"
    assert f"dvc exp apply {comparison['best']}" in (dvc_project / "reports" / "sweep" / "comparison.md").read_text()

    dvc(dvc_project, "exp", "apply", comparison["best"])
    applied = yaml.safe_load((dvc_project / "params.yaml").read_text())["train"]
    assert applied["learning_rate"] == runs[comparison["best"]]["overrides"]["train.learning_rate"]
    assert applied["epochs"] == 2
