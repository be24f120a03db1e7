"""`tlpipe run` holds the workspace for the whole flow: a stage command started from outside is refused naming it,
while the stage commands the flow itself starts through DVC run under its lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from factories import dvc_project_at, make_table

from tlpipe.workspace_lock import HELD_BY_PARENT

pytestmark = pytest.mark.slow

# The validate stage's command waits at this gate before running `tlpipe validate`, so the test acts while
# `tlpipe run` is known to hold the lock; the cap only keeps a broken test from hanging.
GATE = (
    "import pathlib, time\n"
    "pathlib.Path('gate.waiting').touch()\n"
    "for _ in range(2400):\n"
    "    if pathlib.Path('gate.open').exists(): break\n"
    "    time.sleep(0.05)\n"
)


def gated_project(root: Path, model_dir: Path) -> Path:
    """A DVC project whose validate stage waits at the gate and whose prepare stage stops the flow."""
    dvc_project_at(root, model_dir, make_table(12), make_table(4, offset=100))
    (root / "gate.py").write_text(GATE)
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    pipeline["stages"]["validate"]["cmd"] = "python gate.py && tlpipe validate"
    pipeline["stages"]["prepare"]["cmd"] = "exit 3"  # what follows validate is not under test; stop there
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return root


def wait_for(path: Path, run: subprocess.Popen, log: Path) -> None:
    while not path.exists():
        assert run.poll() is None, f"`tlpipe run` ended before reaching the gate:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def test_run_refuses_an_outside_stage_command_naming_itself_and_lets_its_own_stages_run(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    root = gated_project(tmp_path / "project", tiny_model_dir)
    env = {key: value for key, value in os.environ.items() if key != HELD_BY_PARENT}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", PREFECT_HOME=str(tmp_path / "prefect"))
    log = tmp_path / "run.log"
    with log.open("w") as output:
        run = subprocess.Popen(["tlpipe", "run"], cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for(root / "gate.waiting", run, log)
            outside = subprocess.run(["tlpipe", "train"], cwd=root, env=env, capture_output=True, text=True)
        finally:
            (root / "gate.open").touch()
            run.wait(timeout=300)

    assert outside.returncode == 1
    assert f"another tlpipe run is working in this workspace (`tlpipe run`, pid {run.pid}" in outside.stderr
    report, flow_log = root / "reports" / "validation.json", log.read_text()
    assert "WorkspaceBusyError" not in flow_log, flow_log[-3000:]
    assert report.is_file() and json.loads(report.read_text())["success"] is True, flow_log[-3000:]
    assert "stage 'prepare' failed" in flow_log
