"""Kill `tlpipe train` mid-run, run it again: it resumes and ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from factories import write_project

from tlpipe.cli import run_stage

pytestmark = pytest.mark.slow
EPOCHS = 20  # long enough to kill mid-run after epoch 3, with room to spare


def prepared_project(root: Path, tiny_model_dir: Path, train_table, test_table, monkeypatch) -> Path:
    root.mkdir()
    write_project(root, tiny_model_dir, train_table, test_table, {"train": {"epochs": EPOCHS, "dropout": 0.1}})
    monkeypatch.chdir(root)
    for stage in ("validate", "prepare", "fetch_model"):
        run_stage(stage)
    return root


def last_saved_epoch(root: Path) -> int:
    path = root / "models" / "train_state" / "full" / "last" / "trainer.pt"
    try:
        return torch.load(path, weights_only=True)["progress"]["epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0


def train(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tlpipe", "train"], cwd=root, capture_output=True, text=True, check=True)


def outcome(root: Path) -> dict:
    return json.loads((root / "models" / "checkpoint" / "history.json").read_text())  # holds no wall-clock time


def test_killed_training_resumes_and_ends_with_the_same_model(
    tmp_path, tiny_model_dir, train_table, test_table, monkeypatch
) -> None:
    interrupted = prepared_project(tmp_path / "interrupted", tiny_model_dir, train_table, test_table, monkeypatch)
    process = subprocess.Popen(["tlpipe", "train"], cwd=interrupted, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while last_saved_epoch(interrupted) < 3 and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = last_saved_epoch(interrupted)
    assert process.returncode == -signal.SIGKILL
    assert not (interrupted / "models" / "checkpoint").exists()
    assert 3 <= killed_after < EPOCHS

    print(f"killed after epoch {killed_after} of {EPOCHS}")
    resumed_log = train(interrupted).stderr

    assert f"Resuming after epoch {killed_after} of {EPOCHS}" in resumed_log
    assert not (interrupted / "models" / "train_state").exists()
    uninterrupted = prepared_project(tmp_path / "uninterrupted", tiny_model_dir, train_table, test_table, monkeypatch)
    train(uninterrupted)
    assert outcome(interrupted) == outcome(uninterrupted)
    for root in (interrupted, uninterrupted):
        monkeypatch.chdir(root)
        run_stage("calibrate")
        run_stage("evaluate")
    metrics = [json.loads((root / "reports" / "metrics.json").read_text()) for root in (interrupted, uninterrupted)]
    assert metrics[0]["finetuned"] == metrics[1]["finetuned"]
