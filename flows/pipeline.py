"""The whole pipeline as a Prefect flow: each task reproduces one DVC stage, in order, then pushes to the remote.

Deployment entrypoint: ``flows/pipeline.py:pipeline`` (``prefect.yaml`` deploys it on a schedule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from tlpipe.params import load_params
from tlpipe.sources import PRETRAINING_RECORD, source_changed
from tlpipe.stages import STAGES
from tlpipe.tasks.dvc_remote import push_outputs
from tlpipe.tasks.dvc_stage import reproduce_stage, retry_on_transient_failure
from tlpipe.tasks.params import apply_run_settings
from tlpipe.tasks.publish import (
    publish_label_review,
    publish_metrics,
    publish_model_card,
    publish_parity,
    publish_pretraining,
    publish_validation,
)

# The hub download is the only step that talks to a network; the others fail for good reasons. It is
# retried only when it failed for a reason a retry can fix (the stage exits with EX_TEMPFAIL).
RETRIES = {"fetch_model": 2}


@flow(name="tlpipe", log_prints=True)
def pipeline(
    root: str = ".",
    force: bool = False,
    push: bool = True,
    params_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Reproduce every stage of ``STAGES`` in order (validate to export), then ``dvc push`` (unless ``push`` is off);
    return each step's outcome.

    ``params_file`` (sections that replace params.yaml's) and ``overrides`` (dotted keys, such as
    ``{"train.epochs": 3}``) are written into ``root``/params.yaml first, so DVC records them.
    """
    if params_file or overrides:
        apply_run_settings(root, params_file, overrides or {})
    params = load_params(Path(root) / "params.yaml")
    paths, base = params.paths, Path(root)
    # DVC cannot see inside a local model folder or an upgraded package; the snapshot's fingerprint can.
    refetch = source_changed(params.model.source, base / paths.snapshot)
    outcomes: dict[str, str] = {}
    for stage in STAGES:
        task = reproduce_stage.with_options(
            retries=RETRIES.get(stage, 0), retry_delay_seconds=5, retry_condition_fn=retry_on_transient_failure
        )
        try:
            # The task returns its final state (named Skipped when DVC had nothing to do).
            outcomes[stage] = task(stage, root, force or (refetch and stage == "fetch_model")).result()
        finally:
            if stage == "validate":
                publish_validation(base / paths.validation_report)
        if stage == "pretrain":
            publish_pretraining(base / paths.source_snapshot / PRETRAINING_RECORD)
        elif stage == "review_labels":
            publish_label_review(base / paths.label_review)
        elif stage == "evaluate":
            publish_metrics(base / paths.metrics)
            publish_model_card(base / paths.model_card)
        elif stage == "export":
            publish_parity(base / paths.parity_report, base / paths.bundle)
    if push:
        outcomes["push"] = push_outputs(root)
    return outcomes
