"""Drift-triggered retraining as a Prefect flow: check recent inputs against the bundle, and retrain when they drifted
or when new labelled data arrived; otherwise record the check and stop.

Deployment entrypoint: ``flows/drift_check.py:drift_check`` (``prefect.yaml`` deploys it daily as ``drift-check``).
Drift alone changes nothing DVC can see: the pipeline it starts reproduces only what is stale (``force`` reruns
every stage, ``overrides`` change the settings). The lasting answer to drift is to label some of the drifted inputs
into the raw data, which the next check finds as new labelled data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from tlpipe.flows.pipeline import pipeline
from tlpipe.params import load_params
from tlpipe.tasks.drift import check_drift
from tlpipe.tasks.dvc_stage import changed_data
from tlpipe.tasks.publish import publish_drift_check

DATA_STAGE = "validate"  # the stage that reads the raw labelled data: DVC says when its data changed


@flow(name="tlpipe-drift-check", log_prints=True)
def drift_check(
    root: str = ".",
    inputs: str = "data/incoming",
    column: str | None = None,
    alpha: float | None = None,
    force: bool = False,
    push: bool = True,
    params_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check ``inputs`` (a folder or file under ``root``) for drift against the bundle, and ask DVC whether the raw
    labelled data changed since the last run; if either, run the pipeline flow with ``force``, ``push``,
    ``params_file`` and ``overrides`` and return its outcomes under ``pipeline``. Either way publish the check.

    ``column``: the text column of CSV inputs; ``alpha``: the drift test's significance level (default: the bundle's).
    """
    base = Path(root)
    paths = load_params(base / "params.yaml").paths
    report = check_drift(base / paths.bundle, base / inputs, column, alpha)
    new_data = changed_data(root, DATA_STAGE, [str(paths.raw_train), str(paths.raw_test)])
    reasons = [reason for reason, found in (("drift", report["drift"]), ("new labelled data", new_data)) if found]
    checked = "no drift" if report["checked"] else "too few inputs to check"
    decision = f"retrain: {' and '.join(reasons)}" if reasons else f"no retraining: {checked}, no new labelled data"
    publish_drift_check(report, base / inputs, new_data, decision)
    get_run_logger().info("Drift check decision: %s", decision)
    outcome = {"drift": report["drift"], "verdict": report["verdict"], "new_data": new_data, "decision": decision}
    if not reasons:
        return outcome
    retrained = pipeline(root=root, force=force, push=push, params_file=params_file, overrides=overrides)
    return {**outcome, "pipeline": retrained}
