"""The reliability table for stale state: outputs left from other data are refused, never used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import make_table

from tlpipe.cli import run_stage

from .harness import Case, check_case


def report_from_other_data(root: Path) -> None:
    report = root / "reports" / "validation.json"
    report.write_text(json.dumps({**json.loads(report.read_text()), "manifest_sha256": "0" * 64}))


def relabelled_and_prepared(root: Path) -> None:
    """New data whose class 'shipping' is now 'delivery', validated and prepared; train not rerun."""
    for name, table in (("train", make_table(12)), ("test", make_table(4, offset=100))):
        table["label"] = table["label"].replace({"shipping": "delivery"})
        table.to_csv(root / "data" / "raw" / f"{name}.csv", index=False)
    run_stage("validate")
    run_stage("prepare")


CASES = [
    Case("validation report from other data", report_from_other_data, ["prepare"], 1,
         ("reports/validation.json", "is not the report of the data", "tlpipe validate")),
    Case("checkpoint from another label set: evaluate", relabelled_and_prepared, ["evaluate"], 1,
         ("models/checkpoint", "'shipping'", "'delivery'", "tlpipe train")),
    Case("checkpoint from another label set: export", relabelled_and_prepared, ["export"], 1,
         ("models/checkpoint", "'shipping'", "'delivery'", "tlpipe train")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_outputs_left_from_other_data_are_refused(case: Case, workspace: Path) -> None:
    check_case(case, workspace)
