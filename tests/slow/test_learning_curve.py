"""`tlpipe learning-curve` runs its points as queued DVC experiments, reports each as it finishes, survives failures."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from .repo import dvc

pytestmark = pytest.mark.slow


def test_a_learning_curve_writes_its_table_points_and_plot_and_reports_the_points_that_failed(
    dvc_project: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    # No model at that path: the `broken` point fails at fetch_model and the curve goes on without it. It is planned
    # first, so the points after it show that a failure does not stop the queue. One size: the table, the plot and
    # the order of several sizes are the fast tier's (test_learning_curve_plan.py); each point here is a real run.
    command = ["tlpipe", "learning-curve", "--sizes", "8", "--seeds", "1",
               "--setting", "broken:model.source=/nonexistent/model", "--setting", "full",
               "--setting", "scratch:train.strategy=scratch", "--jobs", "2", "--name", "lc"]  # fmt: skip
    # The timeout turns a hang (a queue worker left alive holds the pipes open: tasks/dvc_experiments.py) into a
    # failure, well inside CI's limit.
    done = subprocess.run(command, cwd=dvc_project, env=env, capture_output=True, text=True, timeout=900)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    folder = dvc_project / "reports" / "learning_curve"
    curve = json.loads((folder / "curve.json").read_text())
    points = {(p["setting"], p["examples_per_class"]): p for p in curve["points"]}
    assert set(points) == {("broken", 8), ("full", 8), ("scratch", 8)}
    failed = {p["experiment"] for p in curve["points"] if p["test_macro_f1"] is None}
    assert failed == {points["broken", 8]["experiment"]}
    (name,) = failed
    assert f"FAILED (experiment {name}; `dvc queue logs {name}`)" in output
    assert "ModelSourceError" in output  # the failed point's own log, not just its name
    assert output.count("done: ") == len(points) and f"point {len(points)}/{len(points)} done" in output

    # The points planned after the first failure still ran.
    with (folder / "points.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {(row["setting"], int(row["examples_per_class"])) for row in rows} == {("full", 8), ("scratch", 8)}
    assert all(0.0 <= float(row[score]) <= 1.0 for row in rows for score in ("test_macro_f1", "baseline_macro_f1"))
    table = (folder / "curve.md").read_text()
    assert "| labelled examples per class | broken | full | scratch | baseline |" in table
    # The full run is compared with the scratch run on the same sample, from both experiments' predictions.
    gain = points["full", 8]["over_scratch"]
    scores = points["full", 8]["test_macro_f1"] - points["scratch", 8]["test_macro_f1"]
    assert gain["low"] <= gain["point"] <= gain["high"] and abs(gain["point"] - scores) < 0.2
    assert "Gain in test macro-F1 over scratch" in table
    assert "failed (1 of 1 failed)" in table
    assert (folder / "curve.png").read_bytes()[:4] == b"\x89PNG"

    shown = json.loads(dvc(dvc_project, "plots", "show", "--json", check=False).stdout)
    drawn = shown["data"][f"{folder.relative_to(dvc_project)}/points.csv"][0]["content"]["data"]["values"]
    assert len(drawn) == 2 * len(rows)  # test and baseline macro-F1 of each finished run
