"""Two gloo processes under torchrun (``train.processes: 2``) train the demo to the single process's test macro-F1."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from factories import REPO

from tlpipe.cli import run_stage
from tlpipe.strategies import get_strategy

pytestmark = pytest.mark.slow
TOLERANCE = 0.03  # test macro-F1 points; the two runs differ in dropout draws and summation order only
EPOCHS = 3  # the head's epoch and two of all blocks: enough to learn the demo, and the test's longest part


def demo_project(root: Path) -> Path:
    """The demo's data and params, with freeze_unfreeze and its recipe named (the strategy auto picks here)."""
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"].update(strategy="freeze_unfreeze", **get_strategy("freeze_unfreeze").recipe("text"))
    params["train"]["epochs"] = EPOCHS
    # One training per run, on a held-out split: the test compares two trainings, not how epochs are chosen.
    params["split"]["cross_validate_below"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def train_and_evaluate(root: Path) -> dict:
    trained = subprocess.run(["tlpipe", "train"], cwd=root, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-3000:]
    subprocess.run(["tlpipe", "-q", "evaluate"], cwd=root, check=True, capture_output=True)
    return {
        "log": trained.stderr,
        "macro_f1": json.loads((root / "reports" / "metrics.json").read_text())["finetuned"]["macro_f1"],
        "history": json.loads((root / "models" / "checkpoint" / "history.json").read_text())["epochs"],
    }


def test_two_gloo_processes_reach_the_single_process_macro_f1_on_the_demo(tmp_path, monkeypatch) -> None:
    single = demo_project(tmp_path / "single")
    monkeypatch.chdir(single)
    for stage in ("validate", "prepare", "fetch_model"):
        run_stage(stage)
    pair = tmp_path / "pair"
    shutil.copytree(single, pair)
    params = yaml.safe_load((pair / "params.yaml").read_text())
    params["train"]["processes"] = 2
    (pair / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    alone = train_and_evaluate(single)
    together = train_and_evaluate(pair)

    print(f"test macro-F1: one process {alone['macro_f1']:.4f}, two gloo processes {together['macro_f1']:.4f}")
    assert "Process group: 2 processes (gloo)" in together["log"]
    assert "Process group" not in alone["log"]
    assert [record["epoch"] for record in together["history"]] == list(range(1, EPOCHS + 1))  # one writer, one history
    assert not (pair / "models" / "train_state").exists()
    assert abs(together["macro_f1"] - alone["macro_f1"]) <= TOLERANCE, (alone["macro_f1"], together["macro_f1"])
    assert alone["macro_f1"] > 0.85  # both really learned the task, not merely agreed
