"""Waiting for the experiment queue: when its worker process is gone, the wait ends with what was left, never hangs.

The workers here are stand-ins: short Python processes whose command line reads like DVC's
(``... exp queue-worker <node>``), started the way DVC starts its own (dvc_task's
``ManagedProcess.spawn``, which records the pid in ``<wdir>/dvc-exp-worker-N.json``), then killed.
Nothing runs an experiment: the queue is scripted, or, in the one test on a real DVC queue, the
worker dies before it takes any.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from dvc_task.proc.process import ManagedProcess, ProcessInfo

from tlpipe.tasks import dvc_experiments
from tlpipe.tasks.dvc_experiments import (
    QueueWorker,
    QueueWorkerLostError,
    queue_experiments,
    queue_workers,
    run_queue,
    stop_idle_workers,
)

# A wait that has not ended by then would never end: the test fails instead of hanging.
MOST_POLLS = 200
SLEEPS = [sys.executable, "-c", "import time; time.sleep(120)"]
DIES_AT_ONCE = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
# A worker that will not stop when asked.
IGNORES_SIGTERM = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                   "time.sleep(120)"]  # fmt: skip


@pytest.fixture(autouse=True)
def logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dvc_experiments, "get_run_logger", lambda: logging.getLogger("test"))


class StandInWorkers:
    """Starts stand-in queue workers in a queue folder and kills them, as the out-of-memory killer would."""

    def __init__(self, wdir: Path) -> None:
        self.wdir = wdir
        self.started: list[int] = []

    def start(self, number: int = 1, stand_in: list[str] = SLEEPS) -> QueueWorker:
        command = [*stand_in, "exp", "queue-worker", f"dvc-exp-test-{number}@localhost"]
        ManagedProcess.spawn(command, wdir=str(self.wdir), name=f"dvc-exp-worker-{number}")
        worker = self.recorded(f"dvc-exp-worker-{number}", lambda worker: worker.alive())
        self.started.append(worker.pid)
        return worker

    def kill(self, worker: QueueWorker) -> QueueWorker:
        os.kill(worker.pid, signal.SIGKILL)
        return self.recorded(worker.name, lambda worker: worker.returncode is not None)

    def recorded(self, name: str, until: Callable[[QueueWorker], bool]) -> QueueWorker:
        """The record of worker ``name`` once ``until`` holds for it (a few seconds at most)."""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            for worker in queue_workers(str(self.wdir)):
                if worker.name == name and until(worker):
                    return worker
            time.sleep(0.02)
        raise AssertionError(f"{name} in {self.wdir} never got there: {queue_workers(str(self.wdir))}")


def ignores_sigterm(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGTERM now (Linux: the SigIgn mask in /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    [mask] = [line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")]
    return bool(int(mask, 16) & 1 << (signal.SIGTERM - 1))


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[StandInWorkers]:
    stand_ins = StandInWorkers(tmp_path / "celery")
    yield stand_ins
    for worker in queue_workers(str(stand_ins.wdir)):
        if worker.pid in stand_ins.started and worker.alive():
            os.kill(worker.pid, signal.SIGKILL)


class ScriptedQueue:
    """A celery queue in ``wdir`` with experiments running and queued; ``at_poll(n)`` names those done at poll n."""

    def __init__(
        self, wdir: Path, running: list[str], queued: list[str], at_poll: Callable[[int], list[str]] = lambda n: []
    ) -> None:
        self.wdir = str(wdir)
        self.entries = {name: SimpleNamespace(stash_rev=f"rev-{name}", name=name) for name in running + queued}
        self.running, self.queued = running, queued
        self.at_poll, self.polls = at_poll, 0
        self.done: set[str] = set()

    def iter_active(self) -> Iterator[SimpleNamespace]:
        return iter([self.entries[name] for name in self.running if name not in self.done])

    def iter_queued(self) -> Iterator[SimpleNamespace]:
        return iter([self.entries[name] for name in self.queued if name not in self.done])

    def iter_done(self) -> Iterator[tuple[SimpleNamespace, None]]:
        self.polls += 1
        assert self.polls < MOST_POLLS, "still waiting"
        self.done.update(self.at_poll(self.polls))
        return iter([(self.entries[name], None) for name in sorted(self.done)])  # None: failed, no commit

    def start_workers(self, count: int) -> int:
        return 0  # the test starts its stand-ins itself


def run_scripted(monkeypatch: pytest.MonkeyPatch, queue: ScriptedQueue, grace: float) -> dict[str, str | None]:
    repo = SimpleNamespace(experiments=SimpleNamespace(celery_queue=queue), scm=None)

    class Repo:
        def __init__(self, root: str) -> None:
            pass

        def __enter__(self) -> SimpleNamespace:
            return repo

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr("dvc.repo.Repo", Repo)
    return run_queue.fn(str(Path(queue.wdir).parent), jobs=1, poll_seconds=0.01, worker_grace_seconds=grace)


def test_a_live_worker_is_waited_for_until_its_experiment_finishes(
    monkeypatch: pytest.MonkeyPatch, workers: StandInWorkers
) -> None:
    workers.start()
    queue = ScriptedQueue(workers.wdir, running=["lr-01"], queued=[], at_poll=lambda n: ["lr-01"] if n == 4 else [])

    finished = run_scripted(monkeypatch, queue, grace=0.0)

    assert finished == {"lr-01": None}
    assert queue.polls == 4


def test_once_the_queue_is_empty_its_idle_worker_is_stopped_instead_of_left_to_its_own_shutdown(
    monkeypatch: pytest.MonkeyPatch, workers: StandInWorkers
) -> None:
    worker = workers.start()  # sleeps for 2 minutes: as a worker whose shutdown broadcast was lost, for ever
    queue = ScriptedQueue(workers.wdir, running=["lr-01"], queued=[], at_poll=lambda n: ["lr-01"] if n == 2 else [])

    finished = run_scripted(monkeypatch, queue, grace=0.0)

    assert finished == {"lr-01": None}
    # Ended by SIGTERM within the few seconds `recorded` waits: run_queue stopped it (alone it would sleep on).
    stopped = workers.recorded(worker.name, lambda worker: worker.returncode is not None)
    assert stopped.returncode == -signal.SIGTERM


def test_a_worker_is_left_running_while_experiments_of_another_command_are_queued(
    monkeypatch: pytest.MonkeyPatch, workers: StandInWorkers
) -> None:
    worker = workers.start()
    queue = ScriptedQueue(workers.wdir, running=[], queued=["other-01"])

    assert stop_idle_workers(queue) == []
    assert workers.recorded(worker.name, lambda worker: worker.alive()).pid == worker.pid


def test_a_worker_that_ignores_its_stop_is_killed(workers: StandInWorkers, caplog: pytest.LogCaptureFixture) -> None:
    worker = workers.start(stand_in=IGNORES_SIGTERM)
    workers.recorded(worker.name, lambda worker: ignores_sigterm(worker.pid))  # its handler is in place
    queue = ScriptedQueue(workers.wdir, running=[], queued=[])

    assert stop_idle_workers(queue, stop_seconds=0.5) == [worker.name]

    assert workers.recorded(worker.name, lambda worker: worker.returncode is not None).returncode == -signal.SIGKILL
    assert "1 DVC queue worker ignored SIGTERM for 0.5 s and was killed" in caplog.text


def test_a_worker_killed_while_running_an_experiment_is_reported_with_what_it_left(
    monkeypatch: pytest.MonkeyPatch, workers: StandInWorkers
) -> None:
    worker = workers.start()
    killed: list[QueueWorker] = []

    def kill_at_second_poll(poll: int) -> list[str]:
        if poll == 2:
            killed.append(workers.kill(worker))
        return []

    queue = ScriptedQueue(workers.wdir, running=["lr-01"], queued=["lr-02", "lr-03"], at_poll=kill_at_second_poll)

    with pytest.raises(QueueWorkerLostError) as raised:
        run_scripted(monkeypatch, queue, grace=0.0)

    message = str(raised.value)
    assert queue.polls == 3  # the first look after the kill
    assert killed[0].returncode == -signal.SIGKILL
    assert f"worker stopped with 3 experiments unfinished in {workers.wdir.parent}:" in message
    log = "celery/dvc-exp-worker-1.out"
    assert f"dvc-exp-worker-1 (pid {worker.pid}) was killed by SIGKILL, its log in {log}" in message
    assert "Running when it stopped, never to finish: lr-01. `dvc queue logs lr-01`" in message
    assert "`dvc queue kill lr-01`" in message
    assert "Still queued, not started: lr-02, lr-03. `dvc queue start -j 1`" in message
    assert "run this command again" in message


def test_a_worker_still_starting_within_the_grace_period_is_waited_for(
    monkeypatch: pytest.MonkeyPatch, workers: StandInWorkers
) -> None:
    def start_at_third_poll_finish_at_fifth(poll: int) -> list[str]:
        if poll == 3:
            workers.start()
        return ["lr-01"] if poll == 5 else []

    queue = ScriptedQueue(workers.wdir, running=[], queued=["lr-01"], at_poll=start_at_third_poll_finish_at_fifth)

    finished = run_scripted(monkeypatch, queue, grace=60.0)

    assert finished == {"lr-01": None}


def test_no_worker_past_the_grace_period_is_reported_and_an_earlier_runs_worker_is_not_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wdir = tmp_path / "celery"
    wdir.mkdir()
    earlier = wdir / "dvc-exp-worker-1.json"
    ProcessInfo(pid=4321, stdin=None, stdout=None, stderr=None, returncode=0).dump(str(earlier))
    os.utime(earlier, (time.time() - 3600, time.time() - 3600))
    queue = ScriptedQueue(wdir, running=[], queued=["lr-01"])

    with pytest.raises(QueueWorkerLostError) as raised:
        run_scripted(monkeypatch, queue, grace=0.05)

    message = str(raised.value)
    assert queue.polls > 1  # it looked again within the grace period
    assert f"No DVC queue worker started within 0.05 s for the 1 experiment in {tmp_path}" in message
    assert "4321" not in message
    assert "Still queued, not started: lr-01." in message and "Running when" not in message


def test_a_recorded_pid_that_now_belongs_to_another_process_is_not_taken_for_a_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wdir = tmp_path / "celery"
    wdir.mkdir()
    reused = ProcessInfo(pid=os.getpid(), stdin=None, stdout=None, stderr=None, returncode=None)  # alive: pytest
    reused.dump(str(wdir / "dvc-exp-worker-1.json"))
    queue = ScriptedQueue(wdir, running=["lr-01"], queued=[])

    with pytest.raises(QueueWorkerLostError) as raised:
        run_scripted(monkeypatch, queue, grace=0.0)

    assert f"dvc-exp-worker-1 (pid {os.getpid()}) is gone" in str(raised.value)


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


def test_on_a_real_queue_a_worker_that_dies_at_once_is_found_where_dvc_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(committed_dvc_repo(tmp_path))
    queue_experiments.fn(root, [{"x": 2}, {"x": 3}], "curve")
    from dvc.repo.experiments.queue.celery import LocalCeleryQueue

    spawn = ManagedProcess.spawn.__func__  # type: ignore[attr-defined]

    def dying_stand_in(cls: type[ManagedProcess], args: list[str], **kwargs: object) -> int | None:
        assert args[:3] == ["dvc", "exp", "queue-worker"]  # what DVC's start_workers runs
        return spawn(cls, [*DIES_AT_ONCE, *args[1:]], **kwargs)

    monkeypatch.setattr(ManagedProcess, "spawn", classmethod(dying_stand_in))
    polls, iter_done = itertools.count(1), LocalCeleryQueue.iter_done

    def iter_done_a_while(self: LocalCeleryQueue) -> Iterator[tuple[object, object]]:
        assert next(polls) < MOST_POLLS, "still waiting"
        return iter_done(self)

    monkeypatch.setattr(LocalCeleryQueue, "iter_done", iter_done_a_while)

    with pytest.raises(QueueWorkerLostError) as raised:
        run_queue.fn(root, jobs=1, poll_seconds=0.1, worker_grace_seconds=2.0)

    message = str(raised.value)
    assert "dvc-exp-worker-1 (pid " in message and ") was killed by SIGKILL" in message
    assert "dvc-exp-worker-1.out" in message
    assert "Still queued, not started: curve-01, curve-02. `dvc queue start -j 1`" in message
