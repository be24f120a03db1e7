"""Export publishes the bundle and the parity report together: a run stopped between the two never leaves a new
report beside the old bundle, and a rerun publishes both."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tlpipe import artifacts
from tlpipe.cli import run_stage
from tlpipe.stages import export

from .params_edit import setting

REPORT = Path("reports/parity.json")
BUNDLE_REPORT = Path("models/bundle/parity.json")
NEW_ATOL = 1e-3  # the finished project exported with 1e-4: tells the new report from the old one


class Crash(Exception):
    """Stands for the process being killed at that moment."""


def crash_at_the_bundle_swap(monkeypatch: pytest.MonkeyPatch) -> None:
    swap = artifacts.replace_directory

    def replace_directory(source: Path, target: Path) -> None:
        if target.name == "bundle":
            raise Crash
        swap(source, target)

    monkeypatch.setattr(artifacts, "replace_directory", replace_directory)


def crash_at_the_parity_report(monkeypatch: pytest.MonkeyPatch) -> None:
    write = export.write_json

    def write_json(path: Path, payload: Any) -> None:
        if path == REPORT:
            raise Crash
        write(path, payload)

    monkeypatch.setattr(export, "write_json", write_json)


def without_int8(report: dict[str, Any]) -> dict[str, Any]:
    """The report's parity part, its quantisation (which form, and int8's gate) left out: what the bundle's own
    parity.json holds."""
    return {key: value for key, value in report.items() if key not in ("int8", "quantize")}


@pytest.mark.parametrize("crash", [crash_at_the_bundle_swap, crash_at_the_parity_report], ids=lambda c: c.__name__)
def test_export_stopped_while_publishing_never_leaves_a_report_that_disagrees_with_the_bundle(
    crash: Callable[[pytest.MonkeyPatch], None], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setting("export", "atol", NEW_ATOL)(workspace)
    with monkeypatch.context() as patched:
        crash(patched)
        with pytest.raises(Crash):
            run_stage("export")

    bundle_report = json.loads(BUNDLE_REPORT.read_text())
    if REPORT.exists():
        assert without_int8(json.loads(REPORT.read_text())) == bundle_report, "a report beside a bundle it is not of"
    run_stage("export")
    report, bundle_report = json.loads(REPORT.read_text()), json.loads(BUNDLE_REPORT.read_text())
    assert without_int8(report) == bundle_report
    assert report["atol"] == NEW_ATOL
