"""Temporary siblings of outputs: the next writer of a target clears what killed writers left, never a live one's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tlpipe.artifacts import atomic_directory, write_json

KILLED_WRITER = (
    "import sys, time; from pathlib import Path; from tlpipe.artifacts import atomic_file\n"
    "with atomic_file(Path(sys.argv[1])) as staging:\n"
    "    staging.write_text('half'); print(staging.name, flush=True); time.sleep(60)\n"
)


def dead_pid() -> int:
    """The pid of a process that has ended."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(ended.stdout)


def test_a_write_removes_temporary_files_of_dead_writers_of_its_target_and_keeps_a_live_ones(tmp_path: Path) -> None:
    dead, live = dead_pid(), os.getpid()
    left_by_dead = tmp_path / f".metrics.json.tmp.{dead}.k3j9x2ab.json"
    being_written = tmp_path / f".metrics.json.tmp.{live}.p0q8w7zz.json"
    of_another_target = tmp_path / f".parity.json.tmp.{dead}.a1b2c3d4.json"
    for path in (left_by_dead, being_written, of_another_target):
        path.write_text("half")

    write_json(tmp_path / "metrics.json", {"accuracy": 1.0})

    assert not left_by_dead.exists()
    assert being_written.exists() and of_another_target.exists()
    assert (tmp_path / "metrics.json").read_text() == '{\n  "accuracy": 1.0\n}\n'


def test_a_writer_killed_mid_write_leaves_a_temporary_file_the_next_write_clears(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    left = tmp_path / writer.stdout.readline().strip()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert left.is_file() and str(writer.pid) in left.name

    write_json(target, {"accuracy": 1.0})

    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.json"]


def test_a_folder_write_clears_a_dead_writers_staging_folder_but_not_a_live_ones(tmp_path: Path) -> None:
    dead_staging = tmp_path / f".bundle.staging.{dead_pid()}.x1y2z3w4"
    live_staging = tmp_path / f".bundle.staging.{os.getpid()}.q5r6s7t8"
    for folder in (dead_staging, live_staging):
        folder.mkdir()
        (folder / "model.onnx").write_text("half")

    with atomic_directory(tmp_path / "bundle") as staging:
        (staging / "model.onnx").write_text("whole")

    assert not dead_staging.exists() and live_staging.exists()
    assert (tmp_path / "bundle" / "model.onnx").read_text() == "whole"
