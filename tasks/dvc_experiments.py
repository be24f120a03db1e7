"""Prefect tasks that run settings as DVC experiments: queue them, run the queue, read their results.

Queued experiments run in their own temporary copies of the project (``.dvc/tmp/exps``), so
parallel workers never contend for the workspace's DVC lock, and each leaves a git ref that
``dvc exp show`` lists and ``dvc exp apply`` brings into the workspace.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tlpipe.errors import TlpipeError


class ExperimentError(TlpipeError):
    """DVC could not queue, run or list the experiments."""


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
    root: str, jobs: int, on_done: Callable[[str, str | None], None] | None = None, poll_seconds: float = 2.0
) -> dict[str, str | None]:
    """Run every queued experiment, ``jobs`` at a time, and wait for them; return {name: experiment commit or None}.

    ``on_done(name, commit)`` is called as each one finishes (``commit`` None: it failed), in the order
    they finish, which DVC's own ``dvc queue start`` + wait reports only at the end.
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
        queue.start_workers(count=jobs)
        while waiting:
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
            if waiting:
                time.sleep(poll_seconds)
    return finished


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
