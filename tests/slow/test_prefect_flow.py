"""The Prefect flow reproduces the DVC stages: after it, DVC agrees everything is up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlpipe.stages import STAGES

from .repo import dvc, git, stages_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect(tmp_path_factory: pytest.TempPathFactory):
    import os

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def test_flow_runs_every_stage_skips_them_all_next_time_and_a_clone_pulls_what_it_pushed(
    prefect, dvc_project: Path, tmp_path: Path
) -> None:
    from prefect.artifacts import Artifact

    from tlpipe.flows.pipeline import pipeline

    first = pipeline(root=str(dvc_project))
    assert first == {
        **dict.fromkeys(STAGES, "reproduced"),
        "push": "no remote configured",
    }
    assert dvc(dvc_project, "status").stdout.strip() == "Data and pipelines are up to date."
    assert (dvc_project / "dvc.lock").is_file()
    card = Artifact.get("model-card")
    assert card is not None and card.data == (dvc_project / "reports" / "model_card.md").read_text()

    # With a remote now, the next run reproduces nothing and pushes what the first one made.
    remote = tmp_path / "remote"
    dvc(dvc_project, "remote", "add", "--default", "shared", str(remote))
    second = pipeline(root=str(dvc_project))
    assert {second[stage] for stage in STAGES} == {"skipped"}
    assert second["push"].startswith(f"shared ({remote}):")
    git(dvc_project, "add", "-A")
    git(dvc_project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "trained")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(dvc_project), str(clone))

    pulled = dvc(clone, "pull")
    status = dvc(clone, "status")
    repro = dvc(clone, "repro")

    print(f"push: {second['push']}\ndvc pull: {pulled.stdout.strip()}\ndvc status: {status.stdout.strip()}")
    assert (clone / "models" / "bundle" / "model.onnx").is_file()
    assert (clone / "models" / "checkpoint" / "model.safetensors").is_file()
    assert status.stdout.strip() == "Data and pipelines are up to date.", status.stdout
    assert stages_run(repro.stdout) == [], repro.stdout
    assert "fetched" in pulled.stdout.lower(), pulled.stdout

    third = pipeline(root=str(dvc_project), push=False)
    assert set(third.values()) == {"skipped"}


def test_flow_fails_at_validate_on_bad_data_and_runs_nothing_after(
    prefect, dvc_project: Path, tiny_model_dir, train_table, test_table
) -> None:
    from factories import write_project

    from tlpipe.flows.pipeline import pipeline
    from tlpipe.tasks.dvc_stage import StageFailedError

    bad_test = test_table.copy()
    bad_test.loc[0, "text"] = train_table.loc[0, "text"]
    write_project(dvc_project, tiny_model_dir, train_table, bad_test)

    with pytest.raises(StageFailedError, match="stage 'validate' failed"):
        pipeline(root=str(dvc_project))
    assert not (dvc_project / "data" / "prepared").exists()
