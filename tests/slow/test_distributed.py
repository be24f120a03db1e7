"""Two gloo processes under torchrun (``train.processes: 2``) train to the single process's test macro-F1."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from factories import make_table, write_project

from tlpipe.cli import run_stage

pytestmark = pytest.mark.slow
TOLERANCE = 0.03  # test macro-F1 points; the two runs differ in dropout draws and summation order only
EPOCHS = 15  # to convergence, where two runs of a tiny model agree; an epoch costs well under a second here


def tiny_project(root: Path, model_dir: Path) -> Path:
    """The tiny BERT on keyword tickets: the processes, not the model, are under test, so the model is the cheapest
    one that learns. One training per run, on a held-out split (the factory's default)."""
    write_project(root, model_dir, make_table(24), make_table(20, offset=100), {"train": {"epochs": EPOCHS}})
    return root


def train_and_evaluate(root: Path) -> dict:
    trained = subprocess.run(["tlpipe", "train"], cwd=root, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-3000:]
    for stage in ("calibrate", "evaluate"):
        subprocess.run(["tlpipe", "-q", stage], cwd=root, check=True, capture_output=True)
    return {
        "log": trained.stderr,
        "macro_f1": json.loads((root / "reports" / "metrics.json").read_text())["finetuned"]["macro_f1"],
        "history": json.loads((root / "models" / "checkpoint" / "history.json").read_text())["epochs"],
    }


def test_two_gloo_processes_reach_the_single_process_macro_f1(tmp_path, tiny_model_dir, monkeypatch) -> None:
    single = tiny_project(tmp_path / "single", tiny_model_dir)
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
