"""Prefect tasks that run settings as DVC experiments: queue them, run the queue, read their results.

Queued experiments run in their own temporary copies of the project (``.dvc/tmp/exps``), so
parallel workers never contend for the workspace's DVC lock, and each leaves a git ref that
``dvc exp show`` lists and ``dvc exp apply`` brings into the workspace.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tlpipe.errors import TlpipeError


class ExperimentError(TlpipeError):
    """DVC could not queue, run or list the experiments."""


@task(cache_policy=NO_CACHE)
def queue_experiments(root: str, points: list[dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    """Queue one experiment per point (``dvc exp run --queue -S key=value``); return {name: overrides}."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    names: dict[str, dict[str, Any]] = {}
    with contextlib.chdir(root), Repo(".") as repo:
        for number, point in enumerate(points, start=1):
            name = f"{prefix}-{number:02d}"
            overrides = [f"{key}={json.dumps(value)}" for key, value in point.items()]
            try:
                repo.experiments.run(params=overrides, queue=True, name=name)
            except DvcException as exc:
                raise ExperimentError(f"could not queue experiment {name} ({', '.join(overrides)}): {exc}") from None
            names[name] = point
    get_run_logger().info("Queued %d experiments: %s", len(names), ", ".join(names))
    return names


@task(cache_policy=NO_CACHE)
def run_queue(root: str, jobs: int) -> None:
    """Run every queued experiment, ``jobs`` at a time, and wait for them (``dvc queue start -j``, then wait)."""
    from dvc.repo import Repo

    with contextlib.chdir(root), Repo(".") as repo:
        repo.experiments.reproduce_celery(jobs=jobs)


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
