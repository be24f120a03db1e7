"""The image demo's project script runs again in its own folder without touching what did not change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from factories import files_in

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
import image_demo  # noqa: E402
from demo_project import MARKER, ForeignFolderError  # noqa: E402


def head(folder: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True).stdout


def test_a_second_run_keeps_the_data_git_history_and_dvc_state_of_the_first(tmp_path: Path) -> None:
    image_demo.write_project(tmp_path, train_per_class=2, test_per_class=1, seed=0)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")  # what a `dvc repro` there leaves behind
    (tmp_path / ".dvc" / "cache" / "files" / "md5" / "ab").mkdir(parents=True)
    (tmp_path / ".dvc" / "cache" / "files" / "md5" / "ab" / "cdef").write_bytes(b"cached output")
    first, commit = files_in(tmp_path), head(tmp_path)

    image_demo.write_project(tmp_path, train_per_class=2, test_per_class=1, seed=0)

    assert files_in(tmp_path) == first
    assert head(tmp_path) == commit
    assert "data/raw/train/star/star_001.png" in first and (tmp_path / ".dvc" / "config").is_file()


def test_fewer_images_per_class_remove_the_extra_ones_and_leave_the_unchanged_ones_untouched(tmp_path: Path) -> None:
    image_demo.write_project(tmp_path, train_per_class=3, test_per_class=1, seed=0)
    kept = (tmp_path / "data/raw/train/circle/circle_000.png").stat().st_mtime_ns

    image_demo.write_project(tmp_path, train_per_class=2, test_per_class=1, seed=0)

    assert sorted(path.name for path in (tmp_path / "data/raw/train/circle").iterdir()) == [
        "circle_000.png",
        "circle_001.png",
    ]
    assert (tmp_path / "data/raw/train/circle/circle_000.png").stat().st_mtime_ns == kept


def test_a_folder_the_demo_did_not_make_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"mine")

    with pytest.raises(ForeignFolderError, match=f"{tmp_path} is not empty and is not a image demo project"):
        image_demo.write_project(tmp_path, train_per_class=1, test_per_class=1, seed=0)

    assert [path.name for path in tmp_path.iterdir()] == ["holiday.jpg"]


def test_the_transfer_demos_folder_is_refused_by_the_image_demo(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text("transfer\n")

    with pytest.raises(ForeignFolderError, match="is the transfer demo's project, not the image demo's"):
        image_demo.write_project(tmp_path, train_per_class=1, test_per_class=1, seed=0)
