"""dvc.yaml and the stage modules agree: same stages, same params sections, paths only from params.yaml."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
import yaml

from tlpipe.config import PathsConfig
from tlpipe.stages import STAGES

REPO = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_has_exactly_the_stage_modules_in_order() -> None:
    assert list(DVC) == list(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_params_are_exactly_the_sections_its_run_reads(stage: str) -> None:
    run = importlib.import_module(f"tlpipe.stages.{stage}").run

    sections = [name for name in inspect.signature(run).parameters if name != "paths"]

    assert DVC[stage]["params"] == sections


@pytest.mark.parametrize("stage", STAGES)
def test_stage_command_is_the_tlpipe_subcommand_of_the_same_name(stage: str) -> None:
    assert DVC[stage]["cmd"] == f"tlpipe {stage.replace('_', '-')}"


@pytest.mark.parametrize("stage", STAGES)
def test_artifact_paths_come_from_params_paths_only(stage: str) -> None:
    definition = DVC[stage]
    entries = list(definition.get("deps", []))
    for key in ("outs", "metrics", "plots"):
        entries += [next(iter(e)) if isinstance(e, dict) else e for e in definition.get(key, [])]

    for entry in entries:
        if entry.startswith("src/"):
            assert (REPO / entry).exists(), f"{stage}: code dependency {entry} does not exist"
            continue
        names = re.findall(r"\$\{paths\.(\w+)\}", entry)
        assert names, f"{stage}: {entry} is written literally; use ${{paths.<name>}}"
        assert set(names) <= set(PathsConfig.model_fields)


def test_core_and_stages_never_import_prefect_or_dvc() -> None:
    for path in (REPO / "src" / "tlpipe").rglob("*.py"):
        if path.name == "cli.py":
            continue
        source = path.read_text()
        assert not re.search(r"^\s*(from|import) (prefect|dvc)\b", source, re.M), path
