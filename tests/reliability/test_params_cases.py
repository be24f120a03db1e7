"""The reliability table for params.yaml: each mistake stops the command with the key, the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Case, check_case
from .params_edit import edit_params, setting

CASES = [
    Case("unknown key train.epoch", setting("train", "epoch", 3), ["train"], 1,
         ("params.yaml", "unknown key 'epoch' in section 'train'", "allowed keys", "epochs")),
    Case("wrong type: train.epochs 'five'", setting("train", "epochs", "five"), ["train"], 1,
         ("params.yaml", "train.epochs", "valid integer", "'five'")),
    Case("negative learning rate", setting("train", "learning_rate", -0.001), ["train"], 1,
         ("params.yaml", "train.learning_rate", "greater than 0", "-0.001")),
    Case("unknown strategy", setting("train", "strategy", "finetune"), ["train"], 1,
         ("params.yaml", "train.strategy", "known: auto", "freeze_unfreeze", "'finetune'")),
    Case("missing section split", edit_params(lambda p: p.pop("split")), ["prepare"], 1,
         ("params.yaml", "missing section(s) 'split'", "copy it")),
    Case("not YAML", lambda r: (r / "params.yaml").write_text("train: [epochs\n"), ["train"], 1,
         ("params.yaml", "not valid YAML")),
    Case("max_length above the model's 64 positions", setting("preprocess", "max_length", 128), ["train"], 1,
         ("preprocess.max_length", "128", "64", "params.yaml")),
    Case("split leaving classes without validation examples", setting("split", "validation_fraction", 0.05),
         ["prepare"], 1, ("split.validation_fraction", "validation", "0.05", "shipping")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_params_stop_the_command_with_the_key_and_the_fix(case: Case, workspace: Path) -> None:
    check_case(case, workspace)
