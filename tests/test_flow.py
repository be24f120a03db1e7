"""The flow without Prefect's engine: which stages it forces, what it writes to params.yaml, what it publishes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tlpipe.stages import STAGES
from tlpipe.tasks.params import apply_run_settings

seen_params: dict[str, dict] = {}


@pytest.fixture
def stubbed_flow(monkeypatch: pytest.MonkeyPatch):
    """The flow module with its tasks replaced by recorders: ``forced[stage]`` is the force each stage got."""
    from tlpipe.flows import pipeline

    forced: dict[str, bool] = {}

    def with_options(**settings):
        def run(stage: str, root: str, force: bool) -> SimpleNamespace:
            forced[stage] = force
            seen_params[stage] = yaml.safe_load((Path(root) / "params.yaml").read_text())
            return SimpleNamespace(result=lambda: "reproduced")

        return run

    monkeypatch.setattr(pipeline, "reproduce_stage", SimpleNamespace(with_options=with_options))
    for publisher in [name for name in vars(pipeline) if name.startswith("publish_")]:  # every one: no Prefect server
        monkeypatch.setattr(pipeline, publisher, lambda *paths: None)
    monkeypatch.setattr(pipeline, "apply_run_settings", apply_run_settings.fn)
    monkeypatch.setattr("tlpipe.tasks.params.get_run_logger", lambda: logging.getLogger("test"))
    return pipeline, forced


@pytest.mark.parametrize("changed", [True, False])
def test_a_changed_model_source_forces_fetch_model_alone(stubbed_flow, project: Path, monkeypatch, changed) -> None:
    pipeline, forced = stubbed_flow
    monkeypatch.setattr(pipeline, "source_changed", lambda source, snapshot: changed)

    pipeline.pipeline.fn(root=str(project), push=False)

    assert forced == {stage: changed and stage == "fetch_model" for stage in forced}
    assert list(forced) == list(STAGES)


def test_overrides_reach_params_yaml_before_any_stage_runs(stubbed_flow, project: Path, monkeypatch) -> None:
    pipeline, forced = stubbed_flow
    monkeypatch.setattr(pipeline, "source_changed", lambda source, snapshot: False)

    pipeline.pipeline.fn(root=str(project), push=False, overrides={"train.epochs": 7})

    assert seen_params["validate"]["train"]["epochs"] == 7  # written before the first stage ran


@pytest.mark.parametrize(
    ("reference_errors", "verdict", "level"),
    [(30, "helped", logging.INFO), (1, "inconclusive", logging.WARNING), (0, "did_not_help", logging.WARNING)],
)
def test_published_metrics_carry_the_transfer_verdict_and_log_it_at_its_level(
    tmp_path: Path, monkeypatch, caplog, reference_errors: int, verdict: str, level: int
) -> None:
    from tlpipe.tasks import publish
    from tlpipe.transfer_verdict import transfer_gain

    actual = [i % 3 for i in range(30)]
    reference = [(label + 1) % 3 if i < reference_errors else label for i, label in enumerate(actual)]
    gain = transfer_gain(actual, reference, actual, 3, "baseline", samples=500, confidence=0.95, seed=0)
    scores = {"accuracy": 1.0, "macro_f1": 1.0}
    metrics = {"test_examples": 30, "strategy": "full", "finetuned": scores, "baseline": scores}
    metrics_path = tmp_path / "metrics.json"
    metrics_path.write_text(json.dumps({**metrics, "transfer": {"over_baseline": gain.to_dict()}}))
    artifacts: list[dict] = []
    monkeypatch.setattr(publish, "create_table_artifact", lambda **artifact: artifacts.append(artifact))
    monkeypatch.setattr(publish, "get_run_logger", lambda: logging.getLogger("test.flow"))

    with caplog.at_level(logging.INFO, logger="test.flow"):
        publish.publish_metrics.fn(metrics_path)

    assert gain.verdict == verdict
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "test.flow"] == [(level, gain.message)]
    assert artifacts[0]["description"].endswith(gain.message)


def test_the_pretraining_record_is_published_and_its_absence_only_logged(tmp_path: Path, monkeypatch, caplog) -> None:
    from tlpipe.tasks import publish

    artifacts: list[dict] = []
    monkeypatch.setattr(publish, "create_table_artifact", lambda **artifact: artifacts.append(artifact))
    monkeypatch.setattr(publish, "get_run_logger", lambda: logging.getLogger("test.flow"))
    record = tmp_path / "tlpipe-pretraining.json"
    record.write_text(json.dumps({"pretrained": False, "reason": "data/source has no source data"}))

    with caplog.at_level(logging.INFO, logger="test.flow"):
        publish.publish_pretraining.fn(record)
    record.write_text(json.dumps({
        "pretrained": True, "source_data": "data/source/train.csv", "source_data_sha256": "ab" * 32,
        "source_examples": {"train": 90, "validation": 10}, "source_classes": ["a", "b"], "start_from": "pip:m",
        "strategy": "full", "settings": {"epochs": 2}, "source_validation_macro_f1": 0.9, "best_epoch": 2,
    }))  # fmt: skip
    publish.publish_pretraining.fn(record)

    assert "data/source has no source data" in caplog.text
    assert len(artifacts) == 1
    shown = {row["what"]: row["value"] for row in artifacts[0]["table"]}
    assert shown["examples (train / validation)"] == "90 / 10"
    assert shown["source validation macro-F1"].startswith("0.9000")


def test_the_label_review_artifact_shows_the_first_suspect_rows_and_says_how_many_there_are(
    tmp_path: Path, monkeypatch
) -> None:
    from tlpipe.tasks import publish

    artifacts: list[dict] = []
    monkeypatch.setattr(publish, "create_table_artifact", lambda **artifact: artifacts.append(artifact))
    review = tmp_path / "label_review"
    review.mkdir()
    (review / "summary.json").write_text(json.dumps({"suspects": 3, "examples": 40, "conflicting_duplicate_sets": 2}))
    (review / "label_review.csv").write_text(
        "text,given_label,suggested_label\nrefund please,access,billing\nlogin fails,billing,access\nparcel,a,b\n"
    )

    publish.publish_label_review.fn(review, shown=2)

    assert [row["text"] for row in artifacts[0]["table"]] == ["refund please", "login fails"]
    assert artifacts[0]["description"].startswith("Label review: 3 of 40 training labels look wrong (first 2 shown")
    assert artifacts[0]["description"].endswith("; 2 sets of near-duplicate examples carry different labels "
                                                f"({review / 'conflicting_duplicates.csv'})")  # fmt: skip
