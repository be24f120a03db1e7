"""The Prefect flow retries fetch_model only when a retry can fix what stopped it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from dvc.stage.exceptions import StageCmdFailedError
from prefect.states import Failed

from tlpipe.errors import EX_TEMPFAIL
from tlpipe.tasks.dvc_stage import StageFailedError, retry_on_transient_failure, stage_exit_status


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (StageFailedError("stage 'fetch_model' failed: hub unreachable", EX_TEMPFAIL), True),
        (StageFailedError("stage 'fetch_model' failed: package not installed", 1), False),
        (StageFailedError("stage 'fetch_model' failed: killed", None), False),
        (ValueError("a bug"), False),
    ],
    ids=["network or timeout (exit 75)", "bad config, missing package or path (exit 1)", "no status", "other error"],
)
def test_only_a_transient_stage_failure_is_retried(error: Exception, retried: bool) -> None:
    state = Failed(data=error)

    assert retry_on_transient_failure(None, None, state) is retried


@pytest.mark.parametrize("status", [EX_TEMPFAIL, 1])
def test_the_stage_exit_status_is_read_from_dvcs_error(status: int) -> None:
    assert stage_exit_status(StageCmdFailedError("tlpipe fetch-model", status)) == status


def test_the_flow_retries_fetch_model_alone_and_only_under_the_condition(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tlpipe.flows import pipeline

    options: dict[str, dict] = {}

    def with_options(**settings):
        def run(stage: str, root: str, force: bool) -> SimpleNamespace:
            options[stage] = settings
            return SimpleNamespace(result=lambda: "reproduced")

        return run

    monkeypatch.setattr(pipeline, "reproduce_stage", SimpleNamespace(with_options=with_options))
    # Every publisher, whatever their number: a real Prefect task called here would start a Prefect server in this
    # process, after which DataLoader workers forked by later tests on this worker die (conftest.py).
    for publisher in [name for name in vars(pipeline) if name.startswith("publish_")]:
        monkeypatch.setattr(pipeline, publisher, lambda *paths: None)

    pipeline.pipeline.fn(root=str(project), push=False)

    assert options["fetch_model"]["retries"] == 2
    assert all(settings["retry_condition_fn"] is retry_on_transient_failure for settings in options.values())
    assert [stage for stage, settings in options.items() if settings["retries"]] == ["fetch_model"]


def test_a_push_is_retried_after_a_failed_transfer_and_never_for_a_wrong_remote() -> None:
    from prefect.states import Failed

    from tlpipe.errors import ConfigError
    from tlpipe.tasks.dvc_remote import PushFailedError, retry_failed_transfer

    assert retry_failed_transfer(None, None, Failed(data=PushFailedError("connection reset")))
    assert not retry_failed_transfer(None, None, Failed(data=ConfigError("no such remote")))
