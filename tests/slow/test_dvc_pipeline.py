"""`dvc repro` in a real git repository: runs everything once, then only what a change touches; bad data stops it
at validate with the previous outputs intact."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from factories import write_project

from tlpipe.stages import STAGES

from .repo import dvc, order_broken, stages_run

pytestmark = pytest.mark.slow
ALL = list(STAGES)


def files_under(root: Path, *folders: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for folder in folders
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def test_repro_runs_all_then_nothing_then_only_what_a_change_touches_and_stops_at_validate_on_bad_data(
    dvc_project: Path, tiny_model_dir, train_table, test_table
) -> None:
    # One project through four repros: each full repro is most of this tier's time on two cores.
    first = dvc(dvc_project, "repro")
    ran = stages_run(first.stdout)
    assert sorted(ran) == sorted(ALL) and not order_broken(dvc_project, ran), ran
    assert (dvc_project / "models" / "bundle" / "model.onnx").is_file()

    second = dvc(dvc_project, "repro")
    assert stages_run(second.stdout) == []
    assert dvc(dvc_project, "status").stdout.strip() == "Data and pipelines are up to date."

    params_path = dvc_project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["learning_rate"] = params["train"]["learning_rate"] / 2
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    third = dvc(dvc_project, "repro")
    assert stages_run(third.stdout) == ["train", "calibrate", "evaluate", "export"]

    before = files_under(dvc_project, "data/prepared", "models", "reports/evaluation")
    write_project(dvc_project, tiny_model_dir, train_table.drop(columns=["label"]), test_table)
    failed = dvc(dvc_project, "repro", check=False)

    assert failed.returncode != 0
    assert stages_run(failed.stdout) == ["validate"]
    assert "has the required column 'label'" in failed.stderr
    assert files_under(dvc_project, "data/prepared", "models", "reports/evaluation") == before
