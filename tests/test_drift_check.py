"""The drift-check flow without Prefect's engine: when it retrains, when it stops, what it publishes, how it fails.

Its tasks are called through ``.fn`` or replaced by recorders (a real Prefect task here would start a server);
tests/slow/test_deployment.py runs the deployment on a real server. Which raw data changed is DVC's own answer,
asked of a real DVC repository below.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest

from tlpipe import serving

QUIET = {"inputs": 24, "checked": True, "drift": False, "verdict": "no drift detected (p = 0.8000 >= 0.01)"}
DRIFTED = {"inputs": 24, "checked": True, "drift": True, "verdict": "drift: these inputs differ (p = 0.0010 < 0.01)"}
TOO_FEW = {"inputs": 3, "checked": False, "drift": False, "verdict": "too few inputs to check: 3"}


@pytest.fixture
def stubbed_check(monkeypatch: pytest.MonkeyPatch):
    """The flow module with its tasks replaced: ``set(report, new_data)`` chooses what they find; ``calls`` records
    the published checks and the pipeline runs."""
    from tlpipe.flows import drift_check

    found: dict = {"report": QUIET, "new_data": []}
    calls: dict[str, list] = {"published": [], "pipeline": [], "checked": [], "data": []}

    def check(bundle: Path, inputs: Path, column: str | None, alpha: float | None) -> dict:
        calls["checked"].append((bundle, inputs, alpha))
        return found["report"]

    def changed(root: str, stage: str, data: list[str]) -> list[str]:
        calls["data"].append((stage, data))
        return found["new_data"]

    monkeypatch.setattr(drift_check, "check_drift", check)
    monkeypatch.setattr(drift_check, "changed_data", changed)
    monkeypatch.setattr(drift_check, "publish_drift_check", lambda *args: calls["published"].append(args))
    monkeypatch.setattr(drift_check, "pipeline", lambda **settings: calls["pipeline"].append(settings) or {"x": "y"})
    monkeypatch.setattr(drift_check, "get_run_logger", lambda: logging.getLogger("test.drift"))
    return drift_check, found, calls


@pytest.mark.parametrize(
    ("report", "new_data", "decision"),
    [
        (DRIFTED, [], "retrain: drift"),
        (QUIET, ["data/raw/train.csv"], "retrain: new labelled data"),
        (DRIFTED, ["data/raw/test.csv"], "retrain: drift and new labelled data"),
    ],
)
def test_drift_or_new_labelled_data_runs_the_pipeline_with_the_run_settings(
    stubbed_check, project: Path, report: dict, new_data: list[str], decision: str
) -> None:
    drift_check, found, calls = stubbed_check
    found.update(report=report, new_data=new_data)

    outcome = drift_check.drift_check.fn(root=str(project), push=False, overrides={"train.epochs": 2})

    assert calls["pipeline"] == [
        {"root": str(project), "force": False, "push": False, "params_file": None, "overrides": {"train.epochs": 2}}
    ]
    assert outcome["decision"] == decision and outcome["pipeline"] == {"x": "y"}
    [(published_report, inputs, published_data, published_decision)] = calls["published"]
    assert (published_report, published_data, published_decision) == (report, new_data, decision)
    assert inputs == project / "data" / "incoming"


@pytest.mark.parametrize(
    ("report", "decision"),
    [
        (QUIET, "no retraining: no drift, no new labelled data"),
        (TOO_FEW, "no retraining: too few inputs to check, no new labelled data"),
    ],
)
def test_without_drift_or_new_data_the_check_is_published_and_nothing_retrains(
    stubbed_check, project: Path, report: dict, decision: str
) -> None:
    drift_check, found, calls = stubbed_check
    found.update(report=report)

    outcome = drift_check.drift_check.fn(root=str(project), inputs="recent", alpha=0.05)

    assert calls["pipeline"] == []
    assert "pipeline" not in outcome and outcome["decision"] == decision
    assert [args[3] for args in calls["published"]] == [decision]
    # The bundle and raw data of params.yaml `paths`, the inputs under root, the raw data asked of DVC's validate.
    assert calls["checked"] == [(project / "models" / "bundle", project / "recent", 0.05)]
    assert calls["data"] == [("validate", ["data/raw/train.csv", "data/raw/test.csv"])]


@pytest.fixture
def check_drift(monkeypatch: pytest.MonkeyPatch):
    """``check_drift`` as a plain function, logging to a standard logger."""
    from tlpipe.tasks import drift

    monkeypatch.setattr(drift, "get_run_logger", lambda: logging.getLogger("test.drift"))
    return drift.check_drift.fn


def test_a_missing_bundle_stops_the_check_and_says_to_build_one(check_drift, project: Path) -> None:
    from tlpipe.tasks.drift import DriftCheckError

    (project / "data" / "incoming").mkdir()

    with pytest.raises(DriftCheckError, match=r"models/bundle: no bundle .* `dvc repro`"):
        check_drift(project / "models" / "bundle", project / "data" / "incoming")


def test_a_missing_inputs_folder_stops_the_check_and_says_where_to_put_them(check_drift, project: Path) -> None:
    from tlpipe.tasks.drift import DriftCheckError

    bundle = project / "models" / "bundle"
    bundle.mkdir(parents=True)
    (bundle / serving.MANIFEST).write_text("{}")

    with pytest.raises(DriftCheckError, match=r"data/incoming: no such folder; put the recent inputs to check there"):
        check_drift(bundle, project / "data" / "incoming")


class FakePredictor:
    """A loaded text bundle whose drift test must not run."""

    modality = "text"

    def __init__(self, bundle: Path) -> None:
        self.bundle = bundle

    def drift(self, inputs: list[str], alpha: float | None = None) -> dict:
        raise AssertionError(f"drift test run on {len(inputs)} inputs")


def test_fewer_inputs_than_a_drift_check_needs_are_reported_not_tested(
    check_drift, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving, "Predictor", FakePredictor)
    bundle = project / "models" / "bundle"
    bundle.mkdir(parents=True)
    (bundle / serving.MANIFEST).write_text("{}")
    incoming = project / "data" / "incoming"
    (incoming / "monday").mkdir(parents=True)
    (incoming / "monday" / "tickets.txt").write_text("refund please\nlogin fails\n")
    (incoming / "tuesday.txt").write_text("parcel late\n\n")
    (incoming / "notes.md").write_text("not an input\n" * 30)
    (incoming / "wednesday.txt").write_text("")  # a file the day's export left empty: nothing to check, no error
    (incoming / "thursday.txt").write_text("\n\n")

    report = check_drift(bundle, incoming)

    assert report == {
        "inputs": 3,
        "checked": False,
        "drift": False,
        "verdict": f"too few inputs to check: 3 in {incoming}, a drift check needs {serving.MIN_DRIFT_INPUTS}",
    }


def test_the_published_check_shows_the_p_value_label_shift_inputs_and_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tlpipe.tasks import publish

    artifacts: list[dict] = []
    monkeypatch.setattr(publish, "create_markdown_artifact", lambda **artifact: artifacts.append(artifact))
    report = {
        **DRIFTED,
        "tested": 24,
        "reference": 12,
        "alpha": 0.01,
        "embedding_test": {"p_value": 0.001, "mmd2": 0.1234},
        "predictions": {"label_shift": 0.4167, "low_confidence_share": 0.5, "reference_low_confidence_share": 0.1},
    }

    publish.publish_drift_check.fn(report, Path("data/incoming"), ["data/raw/train.csv"], "retrain: drift")
    publish.publish_drift_check.fn(TOO_FEW, Path("data/incoming"), [], "no retraining")

    drifted, too_few = artifacts
    assert drifted["key"] == too_few["key"] == "drift-check"
    assert drifted["markdown"].startswith("## Drift check: retrain: drift\n")
    for row in ("| inputs | 24 in `data/incoming` |", "| p-value | 0.0010 (drift below alpha 0.01) |",
                "| label shift (total variation) | 0.4167 |", "| new labelled data | `data/raw/train.csv` |",
                "| decision | retrain: drift |"):  # fmt: skip
        assert row in drifted["markdown"]
    assert "p-value" not in too_few["markdown"] and "| verdict | too few inputs to check: 3 |" in too_few["markdown"]
    assert "| new labelled data | none |" in too_few["markdown"]


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A DVC repository (no git) whose validate stage reads two raw files and a code file, run once."""
    from dvc.repo import Repo

    (tmp_path / "data" / "raw").mkdir(parents=True)
    for name in ("train.csv", "test.csv"):
        (tmp_path / "data" / "raw" / name).write_text("text,label\nrefund,billing\n")
    (tmp_path / "check.py").write_text("# the validation code\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  validate:\n    cmd: cat data/raw/train.csv data/raw/test.csv > report.txt\n"
        "    deps: [data/raw/train.csv, data/raw/test.csv, check.py]\n    outs: [report.txt]\n"
    )
    with contextlib.chdir(tmp_path):
        Repo.init(no_scm=True).close()
        with Repo(".") as repo:
            repo.reproduce("validate", single_item=True)
    return tmp_path


def test_dvc_status_tells_new_labelled_data_from_a_code_change(dvc_repo: Path, monkeypatch) -> None:
    from tlpipe.tasks import dvc_stage

    monkeypatch.setattr(dvc_stage, "get_run_logger", lambda: logging.getLogger("test.drift"))
    raw = ["data/raw/train.csv", "data/raw/test.csv"]

    unchanged = dvc_stage.changed_data.fn(str(dvc_repo), "validate", raw)
    (dvc_repo / "check.py").write_text("# the validation code, edited\n")
    code_only = dvc_stage.changed_data.fn(str(dvc_repo), "validate", raw)
    with (dvc_repo / "data" / "raw" / "test.csv").open("a") as test:
        test.write("login fails,access\n")
    new_rows = dvc_stage.changed_data.fn(str(dvc_repo), "validate", raw)

    assert (unchanged, code_only, new_rows) == ([], [], ["data/raw/test.csv"])
    assert dvc_stage.changed_dependencies(str(dvc_repo), "validate") == {
        "check.py": "modified",
        "data/raw/test.csv": "modified",
    }
