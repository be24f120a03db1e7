"""A tiny worker for the benchmark harness's tests: a deterministic classifier scored on synthetic labels.

Each call leaves a marker file (named by its process id and the cell), so a test can count the
subprocesses a grid started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score

ROWS = 30


def score(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Labels 0, 1, 2 in turn; the first ``params["wrong"]`` rows predicted as the next label; sleeps (itself, or in
    a process it starts) and fails on request."""
    params = cell["params"]
    marker = Path(params["markers"]) / f"{os.getpid()}-{cell['setting']}-{cell['seed']}"
    marker.write_text(cell["dataset"])
    time.sleep(params.get("sleep", 0))
    if params.get("stage_sleep"):  # as a pipeline cell runs each stage: a process of its own, waited for
        stage = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({params['stage_sleep']})"])
        (Path(params["markers"]) / f"stage-{stage.pid}").write_text("")
        stage.wait()
    if params.get("fail"):
        raise RuntimeError("the tiny worker was asked to fail")
    actual = [row % 3 for row in range(ROWS)]
    predicted = [(label + 1) % 3 if row < params["wrong"] else label for row, label in enumerate(actual)]
    return {"score": {"macro_f1": float(f1_score(actual, predicted, average="macro"))},
            "predictions": predicted, "actual": actual, "details": {"wrong": params["wrong"]}}  # fmt: skip
