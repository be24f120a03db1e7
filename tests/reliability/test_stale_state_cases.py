"""The reliability table for stale state: outputs left from other data are refused, never used."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from unittest import mock

import pytest
from factories import make_table

from tlpipe.cli import run_stage

from .harness import Case, check_case
from .params_edit import setting


class Interrupted(Exception):
    """Stands for a training run stopped before it kept its checkpoint."""


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


def interrupted_training(root: Path) -> None:
    """A training run of the current data and settings stopped after saving its state, before keeping a checkpoint."""
    with mock.patch("tlpipe.stages.train._keep_checkpoint", side_effect=Interrupted), contextlib.suppress(Interrupted):
        run_stage("train")
    assert list((root / "models" / "train_state").rglob("trainer.pt")), "no training state was left to resume"


def state_then_relabelled(root: Path) -> None:
    interrupted_training(root)
    relabelled_and_prepared(root)


def state_then_other_settings(root: Path) -> None:
    interrupted_training(root)
    setting("train", "seed", 7)(root)


def checkpoint_of_the_new_labels(root: Path) -> None:
    config = json.loads((root / "models" / "checkpoint" / "classifier.json").read_text())
    assert "delivery" in config["labels"] and "shipping" not in config["labels"]
    assert not (root / "models" / "train_state").exists()


def checkpoint_of_the_new_settings(root: Path) -> None:
    config = json.loads((root / "models" / "checkpoint" / "classifier.json").read_text())
    assert config["train_settings"]["seed"] == 7
    assert not (root / "models" / "train_state").exists()


DISCARDED = ("Discarding the training state in models/train_state/", "settings or inputs changed")
CASES = [
    Case("validation report from other data", report_from_other_data, ["prepare"], 1,
         ("reports/validation.json", "is not the report of the data", "tlpipe validate")),
    Case("checkpoint from another label set: evaluate", relabelled_and_prepared, ["evaluate"], 1,
         ("models/checkpoint", "'shipping'", "'delivery'", "tlpipe train")),
    Case("checkpoint from another label set: export", relabelled_and_prepared, ["export"], 1,
         ("models/checkpoint", "'shipping'", "'delivery'", "tlpipe train")),
    Case("training state from another label set: train", state_then_relabelled, ["train"], 0, DISCARDED,
         then=checkpoint_of_the_new_labels),
    Case("training state from other settings: train", state_then_other_settings, ["train"], 0, DISCARDED,
         then=checkpoint_of_the_new_settings),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_outputs_left_from_other_data_are_refused(case: Case, workspace: Path) -> None:
    check_case(case, workspace)
