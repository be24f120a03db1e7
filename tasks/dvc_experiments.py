"""Prefect tasks that run settings as DVC experiments: queue them, run the queue, read their results.

Queued experiments run in their own temporary copies of the project (``.dvc/tmp/exps``), so
parallel workers never contend for the workspace's DVC lock, and each leaves a git ref that
``dvc exp show`` lists and ``dvc exp apply`` brings into the workspace.

A queue worker (``dvc exp queue-worker``) killed from outside, by the out-of-memory killer or a
``kill``, leaves its experiments queued or half run for good. So while it waits, ``run_queue`` watches
the workers' processes by the pids DVC records for them, and once none has been alive for a short
grace period while experiments are unfinished, it says so and what to do instead of waiting forever.
It never sends the workers anything while they work: asking them for their status every few seconds (a
broadcast ping over the file-system broker, ``queue.worker_status()``) kept DVC's temporary worker from ever
shutting itself down once the queue was empty.

Once every experiment is done and nothing else is queued or running, it stops the queue's workers itself
(SIGTERM: celery's warm shutdown, which then cleans the broker as DVC's own shutdown does). A
worker's idle monitor asks it to shut down by a broadcast over that same file-system broker, and the
broadcast can be lost (treeverse/dvc#10427): the worker then waits for work forever, and keeps open the
terminal or pipe the command was started with, so `tlpipe sweep | tee log` never ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tlpipe.errors import TlpipeError
from tlpipe.wording import counted

# DVC records a worker's pid within a second of start_workers; none alive for this long is none at all.
WORKER_GRACE_SECONDS = 30.0
# A warm shutdown with nothing running ends within a second or two; past this a worker is killed.
WORKER_STOP_SECONDS = 30.0


class ExperimentError(TlpipeError):
    """DVC could not queue, run or list the experiments."""


class QueueWorkerLostError(ExperimentError):
    """No DVC queue worker is alive while experiments are still queued or running."""


@dataclasses.dataclass(frozen=True)
class QueueWorker:
    """A ``dvc exp queue-worker`` process as DVC recorded it when it started it (``<wdir>/<name>.json``)."""

    name: str
    pid: int
    returncode: int | None  # set by the process that started it, once it has ended
    log: Path
    recorded_at: float  # time.time() of the record's last write: when it started, or ended

    def alive(self) -> bool:
        """Whether the recorded pid is still a running queue worker (not ended, a zombie, or a reused pid)."""
        import psutil

        if self.returncode is not None:
            return False
        try:
            process = psutil.Process(self.pid)
            return process.status() != psutil.STATUS_ZOMBIE and "queue-worker" in process.cmdline()
        except psutil.Error:
            return False

    def ending(self) -> str:
        """How it ended, for a sentence: "was killed by SIGKILL", "exited with status 1", "is gone"."""
        if self.returncode is None:
            return "is gone"
        if self.returncode < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-self.returncode).name}"
            return f"was killed by signal {-self.returncode}"
        return f"exited with status {self.returncode}"


def queue_workers(wdir: str) -> list[QueueWorker]:
    """The workers DVC has started for the queue whose folder is ``wdir`` (``.dvc/tmp/exps/celery``), by name."""
    from dvc_task.proc.process import ProcessInfo

    workers = []
    for record in sorted(Path(wdir).glob("dvc-exp-worker-*.json")):
        try:
            info = ProcessInfo.load(str(record))
        except (OSError, ValueError, TypeError):  # removed meanwhile, or not a record of dvc_task's
            continue
        log = record.with_suffix(".out")
        workers.append(QueueWorker(record.stem, info.pid, info.returncode, log, record.stat().st_mtime))
    return workers


@task(cache_policy=NO_CACHE)
def queue_experiments(
    root: str, points: list[dict[str, Any]], prefix: str, targets: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Queue one experiment per point (``dvc exp run --queue -S key=value [targets]``); return {name: overrides}.

    ``targets`` are the stages to reproduce (with what they depend on); None: the whole pipeline.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    names: dict[str, dict[str, Any]] = {}
    with contextlib.chdir(root), Repo(".") as repo:
        for number, point in enumerate(points, start=1):
            name = f"{prefix}-{number:02d}"
            overrides = [f"{key}={json.dumps(value)}" for key, value in point.items()]
            try:
                repo.experiments.run(targets=targets, params=overrides, queue=True, name=name)
            except DvcException as exc:
                raise ExperimentError(f"could not queue experiment {name} ({', '.join(overrides)}): {exc}") from None
            names[name] = point
    get_run_logger().info("Queued %d experiments: %s", len(names), ", ".join(names))
    return names


@task(cache_policy=NO_CACHE)
def run_queue(
    root: str,
    jobs: int,
    on_done: Callable[[str, str | None], None] | None = None,
    poll_seconds: float = 2.0,
    worker_grace_seconds: float = WORKER_GRACE_SECONDS,
) -> dict[str, str | None]:
    """Run every queued experiment, ``jobs`` at a time, and wait for them; return {name: experiment commit or None}.

    ``on_done(name, commit)`` is called as each one finishes (``commit`` None: it failed), in the order
    they finish, which DVC's own ``dvc queue start`` + wait reports only at the end. When no queue
    worker process has been alive for ``worker_grace_seconds`` while experiments are unfinished, raises
    ``QueueWorkerLostError`` naming the worker and the experiments it left.
    """
    from dvc.repo import Repo

    logger = get_run_logger()
    finished: dict[str, str | None] = {}
    with contextlib.chdir(root), Repo(".") as repo:
        queue = repo.experiments.celery_queue
        waiting = {entry.stash_rev: entry.name or entry.stash_rev[:7]
                   for entry in itertools.chain(queue.iter_active(), queue.iter_queued())}  # fmt: skip
        if not waiting:
            return finished
        started = time.time() - 1.0  # file times lag the clock by a tick
        queue.start_workers(count=jobs)
        seen: set[str] = set()
        worker_alive_at = time.monotonic()
        while waiting:
            # Looked at before the results: a worker ends only after its last result is stored.
            live = {worker.name for worker in queue_workers(queue.wdir) if worker.alive()}
            for entry, result in queue.iter_done():
                name = waiting.pop(entry.stash_rev, None)
                if name is None:
                    continue
                ref = result.ref_info if result is not None and result.exp_hash else None
                finished[name] = repo.scm.get_ref(str(ref)) if ref else None
                if finished[name] is None:
                    logger.warning("Experiment %s failed; `dvc queue logs %s` shows why", name, name)
                if on_done is not None:
                    on_done(name, finished[name])
            if not waiting:
                break
            if live:
                seen |= live
                worker_alive_at = time.monotonic()
            elif time.monotonic() - worker_alive_at > worker_grace_seconds:
                queued = {entry.stash_rev for entry in queue.iter_queued()}
                # The workers of this wait, not an earlier run's, whose records stay behind.
                workers = [worker for worker in queue_workers(queue.wdir)
                           if worker.name in seen or worker.recorded_at >= started]  # fmt: skip
                raise QueueWorkerLostError(
                    _worker_lost_message(root, jobs, waiting, queued, workers, worker_grace_seconds)
                )
            time.sleep(poll_seconds)
        stop_idle_workers(queue)
    return finished


def stop_idle_workers(queue: Any, stop_seconds: float = WORKER_STOP_SECONDS) -> list[str]:
    """Stop the queue's live workers if no experiment is queued or running (idle, each would soon stop itself,
    unless its shutdown broadcast is lost); return the names of those stopped.

    SIGTERM first (a warm shutdown), SIGKILL for one still alive after ``stop_seconds``.
    """
    import psutil

    if any(True for _ in itertools.chain(queue.iter_active(), queue.iter_queued())):
        return []  # experiments of another command: its workers are still needed
    processes: dict[str, psutil.Process] = {}
    for worker in queue_workers(queue.wdir):
        if worker.alive():
            with contextlib.suppress(psutil.Error):
                processes[worker.name] = psutil.Process(worker.pid)
                processes[worker.name].terminate()
    _, still_alive = psutil.wait_procs(list(processes.values()), timeout=stop_seconds)
    for process in still_alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    if still_alive:
        get_run_logger().warning(
            "%s ignored SIGTERM for %g s and was killed", counted(len(still_alive), "DVC queue worker"), stop_seconds
        )
    return sorted(processes)


def _worker_lost_message(
    root: str, jobs: int, waiting: dict[str, str], queued: set[str], workers: list[QueueWorker], grace: float
) -> str:
    """What stopped, which experiments it left (running, or not started) and how to finish or clear them."""
    unfinished = counted(len(waiting), "experiment")
    if workers:
        ended = "; ".join(f"{worker.name} (pid {worker.pid}) {worker.ending()}, its log in "
                          f"{_shown_from(root, worker.log)}" for worker in workers)  # fmt: skip
        noun = "worker" if len(workers) == 1 else "workers"
        lines = [f"The DVC queue's {noun} stopped with {unfinished} unfinished in {root}: {ended}."]
    else:
        lines = [f"No DVC queue worker started within {grace:g} s for the {unfinished} in {root} "
                 "(DVC starts `dvc exp queue-worker` with the `dvc` first on PATH: is there one?)."]  # fmt: skip
    interrupted = [name for rev, name in waiting.items() if rev not in queued]
    not_started = [name for rev, name in waiting.items() if rev in queued]
    if interrupted:
        lines.append(
            f"Running when it stopped, never to finish: {', '.join(interrupted)}. `dvc queue logs {interrupted[0]}` "
            f"shows how far it got; `dvc queue kill {' '.join(interrupted)}` clears it from the queue (until "
            "`dvc queue status` shows it Failed, every later run waits on it and ends with this error)."
        )
    if not_started:
        lines.append(
            f"Still queued, not started: {', '.join(not_started)}. `dvc queue start -j {jobs}` runs them "
            "(`dvc queue status` follows them)."
        )
    lines.append(
        "Or run this command again: it queues every point anew (after `dvc queue remove --queued`, "
        "or the queued ones above run as well)."
    )
    return "\n".join(lines)


def _shown_from(root: str, path: Path) -> str:
    """``path`` relative to ``root`` where it lies inside it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(root))
    return str(path)


def experiment_json(root: str, commit: str, path: str) -> Any:
    """The JSON file ``path`` (tracked by git or DVC) as experiment ``commit`` left it."""
    try:
        return json.loads(experiment_text(root, commit, path))
    except ValueError as exc:
        raise ExperimentError(f"{path} of experiment {commit[:7]} is not JSON: {exc}") from None


def experiment_text(root: str, commit: str, path: str) -> str:
    """The text file ``path`` (tracked by git or DVC) as experiment ``commit`` left it."""
    import dvc.api

    try:
        return dvc.api.read(path, repo=root, rev=commit)
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"could not read {path} of experiment {commit[:7]}: {exc}") from None


def queue_logs(root: str, name: str, lines: int = 20) -> str:
    """The last ``lines`` lines of what experiment ``name`` printed (``dvc queue logs``), for reporting a failure."""
    shown = subprocess.run([sys.executable, "-m", "dvc", "queue", "logs", name], cwd=root, capture_output=True,
                           text=True)  # fmt: skip
    output = (shown.stdout if shown.returncode == 0 else shown.stderr).strip().splitlines()
    return "\n".join(output[-lines:])


@task(cache_policy=NO_CACHE)
def experiment_metrics(root: str, names: list[str], metrics_file: str) -> dict[str, dict[str, Any] | None]:
    """Each named experiment's ``metrics_file`` as ``dvc exp show`` reports it; None for one that failed."""
    # This interpreter's dvc, not whichever is first on PATH (none, when the venv is not activated).
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    shown = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if shown.returncode != 0:
        raise ExperimentError(f"dvc exp show failed: {shown.stderr.strip()}")
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(names)
    for commit in json.loads(shown.stdout):
        for experiment in commit.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                if rev.get("name") in found and rev.get("data"):
                    found[rev["name"]] = ((rev["data"].get("metrics") or {}).get(metrics_file) or {}).get("data")
    return found
