"""Waiting for the experiment queue: a queue whose workers are gone fails with what was left, never hangs.

No DVC worker is started here: the workers' status, which ``dvc queue status`` reads too, is
replaced by what a dead worker looks like (no worker answers).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tlpipe.tasks import dvc_experiments
from tlpipe.tasks.dvc_experiments import QueueWorkerLostError, queue_experiments, run_queue


@pytest.fixture(autouse=True)
def logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dvc_experiments, "get_run_logger", lambda: logging.getLogger("test"))


def committed_dvc_repo(root: Path) -> Path:
    """A git + DVC repository with one stage that reads ``x`` from params.yaml."""
    (root / "params.yaml").write_text("x: 1\n")
    stage = {"cmd": "python -c \"print('ran')\"", "params": ["x"]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"echo": stage}}))
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    return root


def test_queued_experiments_with_no_live_worker_fail_naming_them_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.repo.experiments.queue.celery import LocalCeleryQueue

    root = str(committed_dvc_repo(tmp_path))
    queue_experiments.fn(root, [{"x": 2}, {"x": 3}], "curve")
    monkeypatch.setattr(LocalCeleryQueue, "start_workers", lambda self, count: 0)  # a worker that died at once
    monkeypatch.setattr(LocalCeleryQueue, "worker_status", lambda self: {})

    with pytest.raises(QueueWorkerLostError) as raised:
        run_queue.fn(root, jobs=2, poll_seconds=0.0, worker_grace_seconds=0.0)

    message = str(raised.value)
    assert f"with 2 experiments unfinished in {root}" in message
    assert "Still queued, not started: curve-01, curve-02." in message
    assert "`dvc queue start -j 2`" in message and "run this command again" in message
    assert "Running when" not in message


class ScriptedQueue:
    """A celery queue whose workers answer ``answers`` times, then never again; nothing finishes."""

    def __init__(self, running: list[str], queued: list[str], answers: int) -> None:
        self.running = [SimpleNamespace(stash_rev=f"rev-{name}", name=name) for name in running]
        self.queued = [SimpleNamespace(stash_rev=f"rev-{name}", name=name) for name in queued]
        self.answers, self.asked = answers, 0

    def iter_active(self):
        return iter(self.running)

    def iter_queued(self):
        return iter(self.queued)

    def iter_done(self):
        return iter([])

    def start_workers(self, count: int) -> int:
        return count

    def worker_status(self) -> dict[str, list[dict]]:
        self.asked += 1
        return {"dvc-exp-abc123-1@localhost": [{"id": "task"}]} if self.asked <= self.answers else {}


def run_scripted(monkeypatch: pytest.MonkeyPatch, queue: ScriptedQueue) -> str:
    repo = SimpleNamespace(experiments=SimpleNamespace(celery_queue=queue), scm=None)

    class Repo:
        def __init__(self, root: str) -> None:
            pass

        def __enter__(self) -> SimpleNamespace:
            return repo

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr("dvc.repo.Repo", Repo)
    with pytest.raises(QueueWorkerLostError) as raised:
        run_queue.fn(".", jobs=1, poll_seconds=0.0, worker_grace_seconds=0.0)
    return str(raised.value)


def test_a_worker_that_still_answers_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = ScriptedQueue(running=["lr-01"], queued=[], answers=3)

    run_scripted(monkeypatch, queue)

    assert queue.asked == 4  # three answers kept it waiting; the first silence past the grace ended it


def test_an_experiment_its_worker_died_running_is_named_apart_from_the_queued_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = run_scripted(monkeypatch, ScriptedQueue(running=["lr-01"], queued=["lr-02", "lr-03"], answers=0))

    assert "with 3 experiments unfinished" in message
    assert "Still queued, not started: lr-02, lr-03." in message
    assert "Running when their worker stopped, and never to finish: lr-01. `dvc queue kill lr-01`" in message
