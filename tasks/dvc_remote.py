"""A Prefect task that pushes what the pipeline produced to the DVC remote, so a fresh clone can ``dvc pull`` it.

The remote is the project's default DVC remote (``.dvc/config``; the repository ships a local one
beside the checkout, and docs/operations.md "Sharing results" shows an S3 one). Everything DVC tracks goes:
the manifests, the prepared splits, the model snapshot, the checkpoint, the reports and the bundle.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from tlpipe.errors import ConfigError, TlpipeError


class PushFailedError(TlpipeError):
    """Files could not be transferred to the DVC remote (unreachable, full, refused): a retry may succeed."""


def retry_failed_transfer(task: object, task_run: object, state: State) -> bool:
    """Prefect ``retry_condition_fn``: retry a push that failed in transfer, never a missing or wrong remote."""
    return isinstance(state.result(raise_on_failure=False), PushFailedError)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=retry_failed_transfer)
def push_outputs(root: str) -> str:
    """``dvc push`` in ``root`` to its default remote; returns where it pushed (or why it did not)."""
    from dvc.config import NoRemoteError
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    logger = get_run_logger()
    with contextlib.chdir(root), Repo(".") as repo:
        remote = repo.config["core"].get("remote")
        if not remote:
            logger.warning(
                "No default DVC remote in %s: outputs stay local (docs/operations.md: Sharing results)", Path(root)
            )
            return "no remote configured"
        url = repo.config["remote"][remote]["url"]
        try:
            pushed = repo.push()
        except NoRemoteError as exc:
            raise ConfigError(f"DVC remote '{remote}' ({url}): {exc}. Fix it with `dvc remote modify`.") from None
        except DvcException as exc:
            raise PushFailedError(
                f"dvc push to '{remote}' ({url}) failed: {exc.__cause__ or exc}. The outputs are intact in "
                f"{Path(root).resolve()}; run `dvc push` again once the remote is reachable."
            ) from None
    logger.info("Pushed %d files to DVC remote '%s' (%s)", pushed, remote, url)
    return f"{remote} ({url}): {pushed} files pushed"
