"""Prefect tasks that ask DVC to reproduce one stage of ``dvc.yaml``, or which of its dependencies changed.

DVC decides whether the stage is stale and records what ran in ``dvc.lock``, so a Prefect run
and a ``dvc repro`` leave the workspace in the same state, and an up-to-date stage is skipped.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from tlpipe.errors import EX_TEMPFAIL, TlpipeError


class StageFailedError(TlpipeError):
    """A DVC stage exited with an error; its own message is in the log above."""

    def __init__(self, message: str, stage_exit_status: int | None = None) -> None:
        super().__init__(message)
        self.stage_exit_status = stage_exit_status

    @property
    def retryable(self) -> bool:
        """The stage said a rerun may succeed (a network failure or timeout), not that its input is wrong."""
        return self.stage_exit_status == EX_TEMPFAIL


def retry_on_transient_failure(task: object, task_run: object, state: State) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed stage only if a retry can fix what stopped it."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, StageFailedError) and error.retryable


def stage_exit_status(error: BaseException) -> int | None:
    """The exit status of the stage command DVC ran, from its ``StageCmdFailedError`` ("..., exited with 75")."""
    match = re.search(r"exited with (-?\d+)", str(error))
    return int(match.group(1)) if match else None


@task(task_run_name="{stage}", cache_policy=NO_CACHE)
def reproduce_stage(stage: str, root: str, force: bool = False) -> State:
    """Run ``dvc repro --single-item <stage>`` in ``root``; the state is named Skipped when nothing changed."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    logger = get_run_logger()
    try:
        # DVC resolves targets and output paths against the working directory, not the repo root.
        with contextlib.chdir(root), Repo(".") as repo:
            reproduced = repo.reproduce(stage, single_item=True, force=force)
    except DvcException as exc:
        reason = exc.__cause__ or exc
        raise StageFailedError(
            f"stage '{stage}' failed: {reason}. Its error, if any, is printed above; "
            f"outputs of the stages before it are unchanged in {Path(root).resolve()}.",
            stage_exit_status(reason),
        ) from None
    if not reproduced:
        logger.info("Stage %s is up to date: skipped", stage)
        return Completed(name="Skipped", message=f"{stage} is up to date", data="skipped")
    logger.info("Stage %s reproduced", stage)
    return Completed(message=f"{stage} reproduced", data="reproduced")


def changed_dependencies(root: str, stage: str) -> dict[str, str]:
    """The dependencies of ``stage`` that ``dvc status`` finds changed since the stage last ran, as {path: how}
    ("modified", "deleted"; every one of a stage that never ran)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with contextlib.chdir(root), Repo(".") as repo:
            status = repo.status(targets=[stage])
    except DvcException as exc:
        raise StageFailedError(f"dvc status {stage} failed in {Path(root).resolve()}: {exc.__cause__ or exc}") from None
    changed: dict[str, str] = {}
    for entries in status.values():
        for entry in entries:
            if isinstance(entry, dict):  # else a word such as "always changed"
                changed.update(entry.get("changed deps", {}))
    return changed


@task(task_run_name="new-data-{stage}", cache_policy=NO_CACHE)
def changed_data(root: str, stage: str, data: list[str]) -> list[str]:
    """Which of ``data`` (dependencies of ``stage``, such as the raw labelled data) changed since ``stage`` last ran,
    by DVC's own status."""
    changed = {Path(path) for path in changed_dependencies(root, stage)}
    arrived = [path for path in data if Path(path) in changed]
    logger = get_run_logger()
    if arrived:
        logger.info("New labelled data: %s changed since stage %s last ran", ", ".join(arrived), stage)
    else:
        logger.info("No new labelled data: %s unchanged since stage %s last ran", ", ".join(data), stage)
    return arrived
